//! `driverprofiled-mock-seat` as a VSS provider at the in-process test broker, watched and
//! actuated with the generated `kuksa.val.v2` client (no daemon here: tests/kuksa_car.rs runs
//! the three together).
#![cfg(feature = "kuksa")]

use crate::common;

use std::time::Duration;

use common::seat::*;

const AXIS_PATHS: [&str; 8] = [
    "Vehicle.Cabin.Seat.Row1.DriverSide.Position",
    "Vehicle.Cabin.Seat.Row1.DriverSide.Height",
    "Vehicle.Cabin.Seat.Row1.DriverSide.Tilt",
    "Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline",
    "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.Height",
    "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.Angle",
    "Vehicle.Chassis.SteeringWheel.Tilt",
    "Vehicle.Chassis.SteeringWheel.Extension",
];

fn pos(w: &Watch) -> f64 {
    num(&w.get(POSITION)).expect("a position")
}

/// It claims every axis, publishes the initial positions (each axis' `initial`, or `--at`),
/// and moves an axis to an actuated target at its speed, publishing on the way.
#[tokio::test]
async fn claims_publishes_and_moves() {
    let b = start_broker().await;
    let addr = b.address();
    let _seat = Seat::start(
        &addr,
        None,
        &["--at", "seat_position=100", "--speed-factor", "2"],
    )
    .await;
    for p in AXIS_PATHS {
        assert!(b.claimed(p), "{p} claimed");
    }
    // `ready` means the broker holds the positions.
    assert_eq!(num(&b.get(POSITION)), Some(100.0));
    assert_eq!(
        num(&b.get("Vehicle.Chassis.SteeringWheel.Tilt")),
        Some(50.0)
    );
    assert_eq!(
        num(&b.get("Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline")),
        Some(22.0)
    );

    let mut c = client(&addr).await;
    let mut w = Watch::new(&mut c, &[POSITION]).await;
    actuate(&mut c, POSITION, uint(130)).await.unwrap();
    let mut seen = Vec::new();
    while pos(&w) != 130.0 {
        w.next().await;
        seen.push(pos(&w));
    }
    // 30 mm at 50 mm/s, published every 50 ms: several steps, only ever forward.
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.windows(2).all(|s| s[0] < s[1]), "{seen:?}");
    assert!(seen.iter().all(|&p| p > 100.0 && p <= 130.0), "{seen:?}");
}

/// An Actuate of the value the axis reports is a stop: it stops where it is, and does not
/// turn back to that value.
#[tokio::test]
async fn actuate_of_the_current_value_stops() {
    let b = start_broker().await;
    let addr = b.address();
    let _seat = Seat::start(&addr, None, &["--at", "seat_position=100"]).await;
    let mut c = client(&addr).await;
    let mut w = Watch::new(&mut c, &[POSITION]).await;
    actuate(&mut c, POSITION, uint(250)).await.unwrap();
    w.until(|v| num(&v.get(POSITION).cloned().flatten()).is_some_and(|p| p >= 105.0))
        .await;
    let reported = pos(&w);
    actuate(&mut c, POSITION, uint(reported as u32))
        .await
        .unwrap();
    // A measurement window, not a synchronisation: at 25 mm/s a seat still moving would
    // cover 25 mm in it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let p = num(&b.get(POSITION)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let q = num(&b.get(POSITION)).unwrap();
    assert_eq!(p, q, "still moving");
    assert!(
        p >= reported && p < 250.0,
        "stopped at {p}, reported {reported}"
    );
}

/// `--stall AXIS`: the target is accepted and the axis does not move; `stall AXIS off` on
/// stdin lets it go on to the target.
#[tokio::test]
async fn stall_from_the_command_line_and_stdin() {
    let b = start_broker().await;
    let addr = b.address();
    let mut seat = Seat::start(
        &addr,
        None,
        &[
            "--at",
            "seat_position=100",
            "--stall",
            "seat_position",
            "--speed-factor",
            "4",
        ],
    )
    .await;
    let mut c = client(&addr).await;
    let mut w = Watch::new(&mut c, &[POSITION]).await;
    actuate(&mut c, POSITION, uint(120)).await.unwrap();
    // A measurement window: at 100 mm/s a moving seat would arrive in 0.2 s.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(num(&b.get(POSITION)), Some(100.0), "a stalled axis moved");
    seat.send("stall seat_position off").await;
    w.until(|v| num(&v.get(POSITION).cloned().flatten()) == Some(120.0))
        .await;
}

/// `move AXIS POS` on stdin is a hand move: the matching seat switch is engaged before the
/// axis moves, and released once it is there.
#[tokio::test]
async fn hand_move_holds_the_seat_switch() {
    let b = start_broker().await;
    let addr = b.address();
    let mut seat = Seat::start(
        &addr,
        None,
        &["--at", "seat_position=100", "--speed-factor", "4"],
    )
    .await;
    let mut c = client(&addr).await;
    let mut w = Watch::new(&mut c, &[POSITION, BACKWARD_SWITCH, FORWARD_SWITCH]).await;
    seat.send("move seat_position 140").await;
    let mut switch_seen_at = None;
    let mut released = false;
    while !released {
        for (path, v) in w.next().await {
            match path.as_str() {
                BACKWARD_SWITCH if boolean(&v) == Some(true) => {
                    switch_seen_at = Some(pos(&w));
                }
                BACKWARD_SWITCH if boolean(&v) == Some(false) => {
                    assert!(switch_seen_at.is_some(), "released before engaged");
                    released = true;
                }
                POSITION => assert!(
                    switch_seen_at.is_some(),
                    "the axis moved before the switch was engaged"
                ),
                _ => {}
            }
        }
    }
    assert_eq!(switch_seen_at, Some(100.0));
    assert_eq!(num(&b.get(POSITION)), Some(140.0));
    assert_ne!(boolean(&b.get(FORWARD_SWITCH)), Some(true));
}

/// A lost broker stops the seat; it reconnects, claims again, publishes where it stopped,
/// and resumes nothing.
#[tokio::test]
async fn broker_loss_stops_and_reclaims() {
    let b = start_broker().await;
    let addr = b.address();
    let mut seat = Seat::start(&addr, None, &["--at", "seat_position=100"]).await;
    let mut c = client(&addr).await;
    let mut w = Watch::new(&mut c, &[POSITION]).await;
    actuate(&mut c, POSITION, uint(250)).await.unwrap();
    w.until(|v| num(&v.get(POSITION).cloned().flatten()).is_some_and(|p| p >= 103.0))
        .await;
    b.stop().await;
    let b = restart_broker(&addr).await;
    assert_eq!(b.get(POSITION), None, "a fresh broker knows nothing");
    seat.ready().await;
    for p in AXIS_PATHS {
        assert!(b.claimed(p), "{p} claimed again");
    }
    let p = num(&b.get(POSITION)).unwrap();
    assert!((103.0..250.0).contains(&p), "{p}");
    // A measurement window: a seat that resumed would cover 25 mm in it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(num(&b.get(POSITION)), Some(p), "the seat resumed by itself");
}

/// `quit` on stdin: exit 0, and the claims are gone.
#[tokio::test]
async fn quit_releases_the_actuators() {
    let b = start_broker().await;
    let mut seat = Seat::start(&b.address(), None, &[]).await;
    seat.send("quit").await;
    assert!(seat.exit().await.success());
    within("the claim to go", b.wait_claimed(POSITION, false)).await;
}

/// A broker whose VSS lacks an axis' signal (or has it as a non-actuator) is a config
/// mismatch: exit 78, naming the axis and the path.
#[tokio::test]
async fn vss_mismatch_exits_78() {
    let b = start_broker().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let text = common::DEFAULT_CONFIG.replacen(
        "vss = \"Vehicle.Cabin.Seat.Row1.DriverSide.Height\"",
        "vss = \"Vehicle.Cabin.Seat.Row1.DriverSide.Lift\"",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let mut seat = Seat::spawn(&b.address(), Some(&cfg), &[]);
    assert_eq!(seat.exit().await.code(), Some(78));
    let err = seat.stderr();
    assert!(
        err.contains("seat_height") && err.contains("Vehicle.Cabin.Seat.Row1.DriverSide.Lift"),
        "{err}"
    );

    let text = common::DEFAULT_CONFIG.replacen(
        "vss = \"Vehicle.Cabin.Seat.Row1.DriverSide.Height\"",
        "vss = \"Vehicle.Speed\"",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let mut seat = Seat::spawn(&b.address(), Some(&cfg), &[]);
    assert_eq!(seat.exit().await.code(), Some(78));
    assert!(
        seat.stderr().contains("not an actuator"),
        "{}",
        seat.stderr()
    );
}

/// Usage errors exit 64.
#[tokio::test]
async fn usage_errors_exit_64() {
    for args in [
        &["--bogus"][..],
        &["--stall", "no_such_axis"],
        &["--at", "seat_position=1000"],
        &["--speed-factor", "0"],
    ] {
        let mut seat = Seat::spawn("127.0.0.1:1", None, args);
        assert_eq!(seat.exit().await.code(), Some(64), "{args:?}");
    }
}

/// `--token-file`: the seat sends the token on every call (a broker with authorisation).
#[tokio::test]
async fn a_token_file_is_sent() {
    let b = driverprofiled_kuksa::broker::start(
        driverprofiled_kuksa::broker::test_vss(),
        "127.0.0.1:0".parse().unwrap(),
        Some("s3cret".into()),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let _seat = Seat::start(
        &b.address(),
        None,
        &["--token-file", token.to_str().unwrap()],
    )
    .await;
    for p in AXIS_PATHS {
        assert!(b.claimed(p), "{p} claimed");
    }
    assert_eq!(num(&b.get(POSITION)), Some(130.0));
}
