//! A car on a laptop, end to end: the real daemon with `[vehicle] source = "kuksa"` and every
//! axis `backend = "kuksa"`, the in-process test broker, and the `driverprofiled-mock-seat`
//! process as the seat's VSS provider. Vehicle signals are published at the broker as a
//! sensor provider would; the seat moves only on what the broker forwards; the daemon sees
//! the positions only through the broker.
#![cfg(feature = "kuksa")]

use crate::common;

use std::time::Duration;

use common::kuksa::*;
use common::seat::{POSITION, Seat};
use common::*;

/// The test config reading its signals from the broker at `address` ([`kuksa_config`]) with
/// every axis on the kuksa backend (the shipped config already gives the integer VSS axes the
/// tolerance of half a unit the backend needs), then `edits`.
fn car_config(address: &str, edits: &[(&str, &str)]) -> String {
    let c = kuksa_config(address, &[]).replace("backend = \"mock\"", "backend = \"kuksa\"");
    edit(&c, edits)
}

/// The three parts, started in the order a developer would: broker, seat, daemon.
struct Car {
    b: TestBroker,
    seat: Seat,
    s: Setup,
    _dir: tempfile::TempDir,
}

impl Car {
    /// The config ([`car_config`]) is written to a file both the seat and the daemon read;
    /// `seat_args` go to the seat. Returns once the daemon knows every axis' position (from
    /// the broker).
    async fn start(seat_args: &[&str]) -> Car {
        Car::start_with(|c| c, seat_args).await
    }

    /// [`Car::start`] with the config ([`car_config`]) changed by `config`.
    async fn start_with(config: impl FnOnce(String) -> String, seat_args: &[&str]) -> Car {
        let b = TestBroker::start().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config(car_config(&b.address(), &[]))).unwrap();
        let seat = Seat::start(&b.address(), Some(&path), seat_args).await;
        let s = Setup::configured(&path).await;
        for a in AXES {
            wait_position(&s, a, |p| !p.is_nan()).await;
        }
        Car {
            b,
            seat,
            s,
            _dir: dir,
        }
    }

    /// The daemon's and the seat's logs, for a failing assertion.
    fn logs(&self) -> String {
        format!(
            "--- daemon:\n{}\n--- seat:\n{}",
            self.s.daemon.stderr(),
            self.seat.stderr()
        )
    }

    fn broker_position(&self) -> f64 {
        common::seat::num(&self.b.handle().get(POSITION)).expect("the broker has the position")
    }
}

/// Wait until the daemon shows `axis` at a position `ok` accepts; returns it.
async fn wait_position(s: &Setup, axis: &str, ok: impl Fn(f64) -> bool) -> f64 {
    wait_prop(s, axis, "Position", |p: &f64| ok(*p)).await
}

/// The positions are the seat's (`--at`), not the config's `initial`; a recall completes at
/// the targets, and the broker holds them.
#[tokio::test]
async fn recall_completes_with_positions_from_the_broker() {
    let car = Car::start(&["--at", "seat_position=111", "--speed-factor", "10"]).await;
    let s = &car.s;
    assert_eq!(
        s.actuator("seat_position").await.position().await.unwrap(),
        111.0
    );
    assert_eq!(
        s.actuator("backrest_recline")
            .await
            .position()
            .await
            .unwrap(),
        22.0
    );
    park(&car.b, s).await;
    let m = s.manager().await;
    let path = m.create_profile("Anna").await.unwrap();
    let targets = [
        ("seat_position", 180.0),
        ("seat_height", 40.0),
        ("backrest_recline", 30.0),
        ("wheel_tilt", 70.0),
        // int8 at the broker, below zero: the glass tilted down, turned left.
        ("mirror_passenger_tilt", -30.0),
        ("mirror_driver_yaw", -15.0),
    ];
    s.profile(&path)
        .await
        .set_positions(targets.iter().map(|(a, p)| (*a, *p)).collect())
        .await
        .unwrap();
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = recall(s, &path).await;
    assert_eq!(started(&mut st).await.0, "recall");
    assert_eq!(finished(&mut fin).await.1, "completed", "{}", car.logs());
    for (axis, t) in targets {
        assert_eq!(
            s.actuator(axis).await.position().await.unwrap(),
            t,
            "{axis}"
        );
    }
    assert_eq!(car.broker_position(), 180.0);
}

/// Motion is interlocked until the broker reports P at standstill; leaving P, or speeding up,
/// mid-motion halts it (outcome interlocked) and the seat stops where it is.
#[tokio::test]
async fn interlock_from_selected_gear_and_speed() {
    let car = Car::start(&[]).await;
    let s = &car.s;
    let seat = s.actuator("seat_position").await;
    assert_eq!(
        err_name(seat.move_to(200.0).await),
        ErrorName::Interlocked.as_str()
    );
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    for halt in ["gear", "speed"] {
        park(&car.b, s).await;
        let from = s.actuator("seat_position").await.position().await.unwrap();
        // At the seat's own 25 mm/s: the way to 250 takes seconds.
        seat.move_to(250.0).await.unwrap();
        wait_position(s, "seat_position", |p| p >= from + 3.0).await;
        match halt {
            "gear" => car.b.gear(GEAR_D),
            _ => car.b.speed(12.0),
        }
        assert_eq!(finished(&mut fin).await.1, "interlocked", "{halt}");
        assert_halted_between(s, "seat_position", from, 250.0, 25.0).await;
        assert!(car.broker_position() < 250.0);
    }
}

/// A hand move at the seat holds its switch: the daemon's motion is overridden and halts,
/// and it shows where the occupant put the seat.
#[tokio::test]
async fn override_from_a_seat_switch() {
    let mut car = Car::start(&[]).await;
    park(&car.b, &car.s).await;
    let s = &car.s;
    let mut fin = move_axis(s, "seat_position", 250.0).await;
    wait_position(s, "seat_position", |p| p >= 133.0).await;
    // Holds ...DriverSide.IsUpSwitchEngaged while the seat rises.
    car.seat.send("move seat_height 40").await;
    assert_eq!(finished(&mut fin).await.1, "overridden");
    wait_position(&car.s, "seat_height", |p| p == 40.0).await;
    let at = car
        .s
        .actuator("seat_position")
        .await
        .position()
        .await
        .unwrap();
    assert!(at > 130.0 && at < 250.0, "{at}");
}

/// A seat that takes the target and never moves (`--stall`): the daemon's stall rule halts
/// the motion with outcome fault.
#[tokio::test]
async fn stall_from_the_seat() {
    // A short stall time for the seat (the test config's is far longer than any test).
    let car = Car::start_with(
        |c| set_stall_ms(&c, Some("seat_position"), 400),
        &["--stall", "seat_position", "--speed-factor", "10"],
    )
    .await;
    let s = &car.s;
    park(&car.b, s).await;
    let mut fin = move_axis(s, "seat_position", 200.0).await;
    assert_eq!(finished(&mut fin).await.1, "fault");
    let fault = s.actuator("seat_position").await.fault().await.unwrap();
    assert!(fault.contains("stall"), "{fault}");
    assert_eq!(car.broker_position(), 130.0);
}

/// The broker dies mid-motion: the motion halts with outcome fault, the seat stops. When the
/// broker is back, the seat claims its actuators again and the daemon reconnects and shows
/// where the seat is; nothing resumes by itself, and a later recall works.
#[tokio::test]
async fn broker_loss_mid_motion_halts_and_the_daemon_reconnects() {
    let mut car = Car::start(&[]).await;
    park(&car.b, &car.s).await;
    let m = car.s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    car.s
        .actuator("seat_position")
        .await
        .move_to(250.0)
        .await
        .unwrap();
    wait_position(&car.s, "seat_position", |p| p >= 133.0).await;
    car.b.stop().await;
    // The actuators' subscription and the vehicle signals' each notice the loss: whichever
    // is first halts the motion (the seat's Fault, or the gear no longer reported).
    let outcome = finished(&mut fin).await.1;
    assert!(
        outcome == "fault" || outcome == "interlocked",
        "{outcome}\n{}",
        car.logs()
    );
    // Either way the axis says what happened to it.
    wait_prop(&car.s, "seat_position", "Fault", |f: &String| !f.is_empty()).await;

    car.b.restart().await;
    car.seat.ready().await;
    let stopped = car.broker_position();
    assert!(stopped > 130.0 && stopped < 250.0, "{stopped}");
    // The daemon subscribes again and shows where the seat stopped.
    wait_position(&car.s, "seat_position", |p| p == stopped).await;
    park(&car.b, &car.s).await;
    // A measurement window, not a synchronisation: a resumed seat would cover 25 mm in it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(car.broker_position(), stopped, "the seat resumed by itself");
    assert_eq!(
        car.s
            .actuator("seat_position")
            .await
            .position()
            .await
            .unwrap(),
        stopped
    );

    car.seat.send("speed 10").await;
    car.s
        .actuator("seat_position")
        .await
        .move_to(150.0)
        .await
        .unwrap();
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_eq!(car.broker_position(), 150.0);
}

/// The next motion, `reason`, completed with the seat at `seat` at the broker and the wheel at
/// (tilt, extension) as the daemon shows them.
async fn completed_at(
    car: &Car,
    fin: &mut MotionFinishedStream,
    reason: &str,
    seat: f64,
    (tilt, extension): (f64, f64),
) {
    assert_eq!(
        finished(fin).await,
        (reason.into(), "completed".into()),
        "{}",
        car.logs()
    );
    assert_eq!(car.broker_position(), seat);
    let s = &car.s;
    assert_eq!(
        s.actuator("wheel_tilt").await.position().await.unwrap(),
        tilt
    );
    assert_eq!(
        s.actuator("wheel_extension")
            .await
            .position()
            .await
            .unwrap(),
        extension
    );
}

/// Easy exit from the broker's signals: D then P at standstill retracts (seat back, wheel up
/// and in); with the driver seated, a press of the brake pedal (PedalPosition above the
/// threshold) restores.
#[tokio::test]
async fn easy_exit_and_restore_on_the_brake_pedal() {
    let car = Car::start(&["--speed-factor", "10"]).await;
    let (b, s) = (&car.b, &car.s);
    b.speed(0.0);
    b.driver_seat("OCCUPIED");
    // An automatic motion needs the lock reported unlocked, and a retract a rear seat
    // reported empty (unknown counts as locked and as occupied).
    b.doors_locked(false);
    b.rear_seat("EMPTY");
    b.brake(0);
    drive(b, s).await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    b.gear(GEAR_P);
    assert_eq!(started(&mut st).await.0, "easy-exit");
    completed_at(&car, &mut fin, "easy-exit", 180.0, (100.0, 0.0)).await;
    assert!(m.easy_exit_active().await.unwrap());

    b.brake(60);
    assert_eq!(started(&mut st).await.0, "restore");
    completed_at(&car, &mut fin, "restore", 130.0, (50.0, 50.0)).await;
}
