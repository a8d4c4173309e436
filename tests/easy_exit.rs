//! Easy exit, restore, entry pose, and the engine's rules for every motion, on the real bus.

mod common;

use std::collections::HashMap;

use common::*;
use futures_util::{FutureExt, StreamExt};
use zbus::{OwnedObjectPath, Variant};

/// The test config (no stalls from scheduling) with `edits`.
fn config(edits: &[(&str, &str)]) -> String {
    test_config(edits)
}

type Streams = (
    ManagerProxy<'static>,
    MotionStartedStream,
    MotionFinishedStream,
);

/// Park, recall `profile` (if any), then drive off with the driver seated and belted: the
/// next P at standstill is a real transition into Park.
async fn drive_with(s: &Setup, profile: Option<&OwnedObjectPath>, brake: bool) -> Streams {
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    if let Some(p) = profile {
        m.select_profile(p).await.unwrap();
        assert_eq!(started(&mut st).await.0, "recall");
        assert_eq!(finished(&mut fin).await.1, "completed");
    }
    s.signals(&[
        ("gear", Variant::from("D")),
        ("driver_seat_occupied", Variant::from(true)),
        ("driver_belt_buckled", Variant::from(true)),
        ("brake_pressed", Variant::from(brake)),
    ])
    .await
    .unwrap();
    (m, st, fin)
}

async fn position(s: &Setup, axis: &str) -> f64 {
    s.actuator(axis).await.position().await.unwrap()
}

async fn shift_to_park(s: &Setup) {
    s.signals(&[("gear", Variant::from("P"))]).await.unwrap();
}

/// After a reply to UpdateSignals, the daemon has acted on it: nothing started.
async fn assert_no_motion(s: &Setup, st: &mut MotionStartedStream) {
    let m = s.manager().await;
    assert_eq!(m.state().await.unwrap(), "idle");
    assert!(!m.easy_exit_active().await.unwrap());
    assert!(st.next().now_or_never().is_none(), "a motion started");
}

#[tokio::test]
async fn park_retracts_seat_back_and_wheel_up_and_in() {
    let (s, _d) = setup(&config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let (m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
    assert!(!m.easy_exit_active().await.unwrap());
    shift_to_park(&s).await;
    assert_eq!(
        started(&mut st).await,
        ("easy-exit".into(), anna.to_string())
    );
    assert_eq!(
        finished(&mut fin).await,
        ("easy-exit".into(), "completed".into())
    );
    assert!(m.easy_exit_active().await.unwrap());
    assert_position(&s, "seat_position", 200.0).await;
    assert_position(&s, "wheel_tilt", 100.0).await;
    assert_position(&s, "wheel_extension", 0.0).await;
    // Axes without a retract rule stay.
    assert_eq!(position(&s, "seat_height").await, 30.0);
    assert_eq!(position(&s, "backrest_recline").await, 22.0);
}

#[tokio::test]
async fn park_and_unbuckle_waits_for_the_belt() {
    let (s, _d) = setup(&config(&[(
        "trigger = \"park\"",
        "trigger = \"park_and_unbuckle\"",
    )]))
    .await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let (m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
    shift_to_park(&s).await;
    assert_no_motion(&s, &mut st).await;
    s.signals(&[("driver_belt_buckled", Variant::from(false))])
        .await
        .unwrap();
    assert_eq!(
        started(&mut st).await,
        ("easy-exit".into(), anna.to_string())
    );
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert!(m.easy_exit_active().await.unwrap());
}

#[tokio::test]
async fn the_first_report_after_a_restart_moves_nothing() {
    let (s, _d) = setup(&config(&[])).await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    // The daemon starts in a parked car: P is not a transition it saw.
    s.park().await;
    assert_no_motion(&s, &mut st).await;
}

#[tokio::test]
async fn easy_exit_can_be_disabled_per_profile_and_without_a_profile() {
    let (s, _d) = setup(&config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    s.profile(&anna).await.set_easy_exit(false).await.unwrap();
    let (_m, mut st, _fin) = drive_with(&s, Some(&anna), false).await;
    shift_to_park(&s).await;
    assert_no_motion(&s, &mut st).await;

    // No active profile: the config decides.
    let (s, _d) = setup(&config(&[("enabled = true", "enabled = false")])).await;
    let (_m, mut st, _fin) = drive_with(&s, None, false).await;
    shift_to_park(&s).await;
    assert_no_motion(&s, &mut st).await;

    let (s, _d) = setup(&config(&[])).await;
    let (_m, mut st, mut fin) = drive_with(&s, None, false).await;
    shift_to_park(&s).await;
    assert_eq!(started(&mut st).await, ("easy-exit".into(), "/".into()));
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, "seat_position", 180.0).await;
}

#[tokio::test]
async fn rear_guard_limits_the_seat_going_back() {
    for (back, seat) in [("0", 150.0), ("20", 170.0)] {
        let cfg = config(&[(
            "rear_occupied_back_mm = 0",
            &format!("rear_occupied_back_mm = {back}"),
        )]);
        let (s, _d) = setup(&cfg).await;
        let anna = driver(&s, "Anna", "anna", 150.0).await;
        let (_m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
        s.signals(&[("rear_occupied", Variant::from(true))])
            .await
            .unwrap();
        shift_to_park(&s).await;
        assert_eq!(started(&mut st).await.0, "easy-exit");
        assert_eq!(finished(&mut fin).await.1, "completed");
        assert_position(&s, "seat_position", seat).await;
        assert_position(&s, "wheel_tilt", 100.0).await; // the wheel still retracts
    }
}

#[tokio::test]
async fn restore_on_a_fresh_brake_press_with_the_driver_seated() {
    let (s, _d) = setup(&config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    // The driver holds the brake while shifting into P: that press must not undo the retract.
    let (m, mut st, mut fin) = drive_with(&s, Some(&anna), true).await;
    shift_to_park(&s).await;
    assert_eq!(started(&mut st).await.0, "easy-exit");
    assert_eq!(finished(&mut fin).await.1, "completed");
    s.signals(&[("brake_pressed", Variant::from(true))])
        .await
        .unwrap();
    assert!(m.easy_exit_active().await.unwrap());
    assert_eq!(m.state().await.unwrap(), "idle");
    // Released, then pressed again with the driver seated: restore.
    s.signals(&[("brake_pressed", Variant::from(false))])
        .await
        .unwrap();
    s.signals(&[("brake_pressed", Variant::from(true))])
        .await
        .unwrap();
    assert_eq!(started(&mut st).await, ("restore".into(), anna.to_string()));
    assert_eq!(
        finished(&mut fin).await,
        ("restore".into(), "completed".into())
    );
    assert!(!m.easy_exit_active().await.unwrap());
    assert_position(&s, "seat_position", 150.0).await;
    assert_position(&s, "wheel_tilt", 37.5).await;
    assert_position(&s, "wheel_extension", 50.0).await;
}

#[tokio::test]
async fn a_restart_while_retracted_still_restores() {
    let (mut s, d) = setup(&config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let (_m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
    shift_to_park(&s).await;
    assert_eq!(started(&mut st).await.0, "easy-exit");
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert!(s.state.path().join("easy-exit.toml").exists());

    // An OTA update restarts the daemon while the car is parked and retracted.
    let cfg = d.path().join("config.toml");
    s.restart_daemon(&["--config", cfg.to_str().unwrap()]).await;
    s.mock().await.set_speed_factor(100.0).await.unwrap();
    let m = s.manager().await;
    assert!(
        m.easy_exit_active().await.unwrap(),
        "the retract was forgotten"
    );
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    // The gateway reports again (not a transition into P: nothing moves), then the driver
    // presses the brake.
    s.signals(&[
        ("gear", Variant::from("P")),
        ("speed_kmh", Variant::from(0.0)),
        ("driver_seat_occupied", Variant::from(true)),
        ("brake_pressed", Variant::from(false)),
    ])
    .await
    .unwrap();
    s.signals(&[("brake_pressed", Variant::from(true))])
        .await
        .unwrap();
    assert_eq!(started(&mut st).await, ("restore".into(), anna.to_string()));
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert!(!m.easy_exit_active().await.unwrap());
    assert_position(&s, "seat_position", 150.0).await;
}

#[tokio::test]
async fn a_key_approaching_a_retracted_car_gets_its_entry_pose() {
    let (s, _d) = setup(&config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let ben = driver(&s, "Ben", "ben", 100.0).await;
    let (m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
    shift_to_park(&s).await;
    assert_eq!(started(&mut st).await.0, "easy-exit");
    assert_eq!(finished(&mut fin).await.1, "completed");
    // Anna gets out and walks away.
    for (k, v) in [
        ("driver_door_open", true),
        ("driver_seat_occupied", false),
        ("driver_door_open", false),
    ] {
        s.signals(&[(k, Variant::from(v))]).await.unwrap();
    }
    // Ben walks up: his profile, but retracted, so that he can get in.
    walk(&s, &[("ben", (-3.5, 5.0), (-1.3, 0.0))], 15).await;
    assert_eq!(
        started(&mut st).await,
        ("key-approach".into(), ben.to_string())
    );
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_eq!(m.active_profile().await.unwrap(), ben);
    assert!(m.easy_exit_active().await.unwrap());
    assert_position(&s, "seat_position", 150.0).await; // Ben's 100 mm + 50
    assert_position(&s, "wheel_tilt", 100.0).await;
    assert_position(&s, "wheel_extension", 0.0).await;
    // He gets in and presses the brake: the restore completes his profile.
    for (k, v) in [
        ("driver_door_open", true),
        ("driver_seat_occupied", true),
        ("driver_door_open", false),
    ] {
        s.signals(&[(k, Variant::from(v))]).await.unwrap();
    }
    s.signals(&[("brake_pressed", Variant::from(true))])
        .await
        .unwrap();
    assert_eq!(started(&mut st).await, ("restore".into(), ben.to_string()));
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, "seat_position", 100.0).await;
    assert_position(&s, "wheel_tilt", 25.0).await;
}

/// Start a retract at real speed and wait until the seat is under way.
async fn slow_retract(s: &Setup) -> Streams {
    let anna = driver(s, "Anna", "anna", 150.0).await;
    let (m, mut st, fin) = drive_with(s, Some(&anna), false).await;
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    let seat = ActuatorProxy::builder(&s.conn)
        .path(actuator_path("seat_position"))
        .build()
        .await
        .unwrap();
    let mut changes = seat.receive_position_changed().await;
    shift_to_park(s).await;
    assert_eq!(started(&mut st).await.0, "easy-exit");
    loop {
        if next(&mut changes, "seat moving").await.get().await.unwrap() > 150.0 {
            break;
        }
    }
    (m, st, fin)
}

/// Every cause halts an easy exit as it halts a recall: one engine, one set of rules.
async fn easy_exit_halted_by(cause: Halt) {
    let (s, _d) = setup(&config(&[])).await;
    let (_m, _st, mut fin) = slow_retract(&s).await;
    cause.apply(&s).await;
    assert_eq!(
        finished(&mut fin).await,
        ("easy-exit".into(), cause.outcome().into()),
        "{cause:?}"
    );
    assert_halted_between(&s, "seat_position", 150.0, 200.0, 25.0).await;
}

#[tokio::test]
async fn easy_exit_halts_on_leaving_park() {
    easy_exit_halted_by(Halt::LeavePark).await;
}

#[tokio::test]
async fn easy_exit_halts_when_the_doors_lock() {
    easy_exit_halted_by(Halt::DoorsLocked).await;
}

#[tokio::test]
async fn easy_exit_halts_on_stop() {
    easy_exit_halted_by(Halt::Stop).await;
}

#[tokio::test]
async fn easy_exit_halts_on_a_manual_switch() {
    easy_exit_halted_by(Halt::ManualSwitch).await;
}

#[tokio::test]
async fn locked_doors_hold_automatic_motion_but_not_a_requested_recall() {
    let (s, _d) = setup(&config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let (m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
    s.signals(&[("doors_locked", Variant::from(true))])
        .await
        .unwrap();
    shift_to_park(&s).await;
    assert_no_motion(&s, &mut st).await;
    // A recall the occupant asks for from the UI is not automatic.
    let ben = driver(&s, "Ben", "ben", 100.0).await;
    m.select_profile(&ben).await.unwrap();
    assert_eq!(started(&mut st).await.0, "recall");
    assert_eq!(finished(&mut fin).await.1, "completed");
}

#[tokio::test]
async fn a_retract_held_back_by_locked_doors_runs_when_they_unlock() {
    let (s, _d) = setup(&config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    // Locked while driving; the gateway reports P before the car unlocks itself.
    let (m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
    s.signals(&[("doors_locked", Variant::from(true))])
        .await
        .unwrap();
    shift_to_park(&s).await;
    assert_no_motion(&s, &mut st).await;
    s.signals(&[("doors_locked", Variant::from(false))])
        .await
        .unwrap();
    assert_eq!(
        started(&mut st).await,
        ("easy-exit".into(), anna.to_string())
    );
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert!(m.easy_exit_active().await.unwrap());

    // But not once the driver has left: nobody is there to be helped out.
    let (s, _d) = setup(&config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let (_m, mut st, _fin) = drive_with(&s, Some(&anna), false).await;
    s.signals(&[("doors_locked", Variant::from(true))])
        .await
        .unwrap();
    shift_to_park(&s).await;
    s.signals(&[("driver_seat_occupied", Variant::from(false))])
        .await
        .unwrap();
    s.signals(&[("doors_locked", Variant::from(false))])
        .await
        .unwrap();
    assert_no_motion(&s, &mut st).await;
}

#[tokio::test]
async fn stall_faults_the_axis_which_automatic_motions_skip_until_a_manual_move() {
    // The seat's stall is injected; a second is long enough to see it, and the other
    // motions here do not depend on the scheduling of a 200 ms window.
    let cfg = set_stall_ms(&config(&[]), Some("seat_position"), 1000);
    let (s, _d) = setup(&cfg).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let mock = s.mock().await;
    let (m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
    shift_to_park(&s).await;
    assert_eq!(started(&mut st).await.0, "easy-exit");
    assert_eq!(
        finished(&mut fin).await,
        ("easy-exit".into(), "completed".into())
    );
    // The seat motor stalls during the restore.
    mock.inject_fault("seat_position", "stall").await.unwrap();
    s.signals(&[("brake_pressed", Variant::from(true))])
        .await
        .unwrap();
    assert_eq!(started(&mut st).await.0, "restore");
    assert_eq!(finished(&mut fin).await, ("restore".into(), "fault".into()));
    let seat = s.actuator("seat_position").await;
    let fault = seat.fault().await.unwrap();
    assert!(fault.starts_with("stalled at 200 mm"), "{fault}");
    assert!(!seat.moving().await.unwrap());

    // The motor is fine again, but the daemon keeps the fault: the next easy exit skips it.
    mock.inject_fault("seat_position", "none").await.unwrap();
    s.signals(&[
        ("gear", Variant::from("D")),
        ("brake_pressed", Variant::from(false)),
    ])
    .await
    .unwrap();
    shift_to_park(&s).await;
    assert_eq!(started(&mut st).await.0, "easy-exit");
    assert_eq!(finished(&mut fin).await.1, "completed");
    // A faulted axis is not moved automatically (it stays where the retract left it).
    assert_position(&s, "seat_position", 200.0).await;
    assert!(!seat.fault().await.unwrap().is_empty());

    // A manual move tries it again and clears the fault once it moves.
    seat.move_to(120.0).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("manual".into(), "completed".into())
    );
    assert_eq!(seat.fault().await.unwrap(), "");
    assert_position(&s, "seat_position", 120.0).await;
    let _ = m;
}

#[tokio::test]
async fn a_motion_past_its_timeout_is_halted_with_a_fault() {
    let (s, _d) = setup(&config(&[("timeout_s = 600", "timeout_s = 0.5")])).await;
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    s.park().await;
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    let seat = s.actuator("seat_position").await;
    // 130 mm at 25 mm/s: 5 s, far past the 0.5 s timeout.
    seat.move_to(0.0).await.unwrap();
    assert_eq!(finished(&mut fin).await, ("manual".into(), "fault".into()));
    let p = seat.position().await.unwrap();
    assert!(p > 100.0 && p < 130.0, "seat at {p}");
    assert!(!seat.moving().await.unwrap());
}

#[tokio::test]
async fn an_axis_over_its_duty_limit_is_stopped_and_refused_until_rested() {
    let cfg = config(&[("duty_limit_s = 120", "duty_limit_s = 0.6")]);
    let (s, _d) = setup(&cfg).await;
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    s.park().await;
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    let seat = s.actuator("seat_position").await;
    seat.move_to(0.0).await.unwrap();
    assert_eq!(finished(&mut fin).await, ("manual".into(), "fault".into()));
    let fault = seat.fault().await.unwrap();
    assert!(fault.starts_with("duty limit"), "{fault}");
    assert_eq!(
        err_name(seat.move_to(10.0).await),
        ErrorName::DutyLimit.as_str()
    );
    let anna = m.create_profile("Anna").await.unwrap();
    s.profile(&anna)
        .await
        .set_positions([("seat_position", 40.0)].into_iter().collect())
        .await
        .unwrap();
    assert_eq!(
        err_name(m.select_profile(&anna).await),
        ErrorName::DutyLimit.as_str()
    );
    assert_eq!(
        m.active_profile().await.unwrap().as_str(),
        "/",
        "a refused recall changed the active profile"
    );
    // Other axes have their own budget.
    s.mock().await.set_speed_factor(100.0).await.unwrap();
    s.actuator("wheel_tilt").await.move_to(60.0).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("manual".into(), "completed".into())
    );
}

#[tokio::test]
async fn a_full_recall_never_runs_more_motors_than_the_budget() {
    let (s, _d) = setup(&config(&[])).await;
    s.mock().await.set_speed_factor(20.0).await.unwrap();
    let m = s.manager().await;
    let p = m.create_profile("Anna").await.unwrap();
    let targets: HashMap<&str, f64> = [
        ("seat_position", 200.0),
        ("seat_height", 60.0),
        ("seat_tilt", 12.0),
        ("backrest_recline", 40.0),
        ("headrest_height", 70.0),
        ("headrest_angle", 15.0),
        ("wheel_tilt", 90.0),
        ("wheel_extension", 10.0),
    ]
    .into_iter()
    .collect();
    s.profile(&p)
        .await
        .set_positions(targets.clone())
        .await
        .unwrap();
    s.park().await;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .path_namespace(driverprofiled_api::path::ACTUATORS)
        .build()
        .unwrap();
    let mut props = zbus::MessageStream::for_match_rule(rule, &s.conn, None)
        .await
        .unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    m.select_profile(&p).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    // Every Moving change was emitted before MotionFinished: replay them in order.
    let mut moving: HashMap<String, bool> = HashMap::new();
    let (mut most, mut changes) = (0, 0);
    while let Some(Some(Ok(msg))) = props.next().now_or_never() {
        let path = msg
            .header()
            .path()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let (_, changed, _): (String, HashMap<String, zbus::OwnedVariant>, Vec<String>) =
            msg.body().deserialize().unwrap();
        if let Some(v) = changed.get("Moving") {
            moving.insert(path, bool::try_from(v).unwrap());
            most = most.max(moving.values().filter(|m| **m).count());
            changes += 1;
        }
    }
    assert!(changes >= 16, "saw {changes} Moving changes");
    assert_eq!(most, 2, "at most 2 motors at once, and the budget is used");
    for (axis, want) in targets {
        assert_position(&s, axis, want).await;
    }
}

#[test]
fn bad_easy_exit_config_exits_78_with_line_and_column() {
    for (from, to, needle) in [
        (
            "trigger = \"park\"",
            "trigger = \"parked\"",
            "trigger = \"parked\"",
        ),
        (
            "seat_position = \"+50\"",
            "seat_position = \"sideways\"",
            "seat_position = \"sideways\"",
        ),
        (
            "wheel_tilt = \"max\"",
            "wheel_tilt = 140",
            "wheel_tilt = 140",
        ),
        (
            "wheel_extension = \"min\"",
            "trunk = \"min\"",
            "trunk = \"min\"",
        ),
        (
            "max_concurrent = 2",
            "max_concurrent = 0",
            "max_concurrent = 0",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let text = edit(DEFAULT_CONFIG, &[(from, to)]);
        let line = text.lines().position(|l| l == needle).unwrap() + 1;
        std::fs::write(&path, &text).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["--check-config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{to}: {err}");
        assert!(err.contains(&format!("c.toml:{line}:")), "{to}: {err}");
    }
}
