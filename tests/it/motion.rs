//! Recall and manual motion over the real bus with the mock actuators: each way into the
//! engine (methods, signals, the mock's hand and fault injection) and each way out (commands
//! to the backend, properties and signals, error names). The engine's rules themselves are
//! scenario-tested on the core's fake clock in `src/core/tests.rs`.

use crate::common;

use std::collections::HashMap;
use std::time::Instant;

use common::*;
use futures_util::{FutureExt, StreamExt};
use zbus::Variant;

const INTERLOCKED: &str = ErrorName::Interlocked.as_str();

/// Distinct in-range targets for all twelve axes (none equal to the initial position).
fn targets() -> HashMap<&'static str, f64> {
    [
        ("mirror_driver_tilt", -20.0),
        ("mirror_driver_yaw", 15.0),
        ("mirror_passenger_tilt", -35.0),
        ("mirror_passenger_yaw", -10.0),
        ("seat_position", 180.0),
        ("seat_height", 45.0),
        ("seat_tilt", 8.0),
        ("backrest_recline", 25.0),
        ("headrest_height", 35.0),
        ("headrest_angle", 9.0),
        ("wheel_tilt", 70.0),
        ("wheel_extension", 30.0),
    ]
    .into_iter()
    .collect()
}

#[tokio::test]
async fn recall_moves_every_axis_to_the_profile() {
    let (s, _d) = setup(&test_config(&[])).await;
    let m = s.manager().await;
    let path = m.create_profile("Anna").await.unwrap();
    let p = s.profile(&path).await;
    p.set_positions(targets()).await.unwrap();
    s.mock().await.set_speed_factor(50.0).await.unwrap();
    s.park().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();

    m.select_profile(&path).await.unwrap();
    assert_eq!(started(&mut st).await, ("recall".into(), path.to_string()));
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert_eq!(m.active_profile().await.unwrap(), path);
    assert_eq!(m.state().await.unwrap(), "idle");
    for (axis, want) in targets() {
        let a = s.actuator(axis).await;
        assert_near(a.position().await.unwrap(), want, tolerance(axis), axis);
        // The target is the profile's value itself.
        assert_eq!(a.target().await.unwrap(), want, "{axis}");
        assert!(!a.moving().await.unwrap(), "{axis}");
        assert_eq!(a.fault().await.unwrap(), "", "{axis}");
    }
}

#[tokio::test]
async fn recall_and_manual_move_refused_out_of_park() {
    // Without reverse tilt: R moves nothing at all here (the mirror's tilt in R is tested in
    // reverse_tilt.rs).
    let (s, _d) = setup(&test_config(&[(
        "axes = [\"mirror_passenger_tilt\"]",
        "axes = []",
    )]))
    .await;
    let m = s.manager().await;
    let path = m.create_profile("Anna").await.unwrap();
    s.profile(&path)
        .await
        .set_positions(targets())
        .await
        .unwrap();
    let seat = s.actuator("seat_position").await;
    let mut st = m.receive_motion_started().await.unwrap();

    // Gear never reported: interlocked.
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);
    for (gear, speed) in [("D", 0.0), ("R", 0.0), ("N", 0.0), ("P", 0.5), ("P", 12.0)] {
        s.signals(&[
            ("gear", Variant::from(gear)),
            ("speed_kmh", Variant::from(speed)),
        ])
        .await
        .unwrap();
        assert_eq!(
            err_name(m.select_profile(&path).await),
            INTERLOCKED,
            "{gear} {speed}"
        );
        assert_eq!(
            err_name(seat.move_to(10.0).await),
            INTERLOCKED,
            "{gear} {speed}"
        );
    }
    s.signals(&[
        ("gear", Variant::from("P")),
        ("speed_kmh", Variant::from(0.0)),
        ("manual_control", Variant::from(true)),
    ])
    .await
    .unwrap();
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);

    // Nothing was commanded, nothing became active.
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
    assert_eq!(seat.position().await.unwrap(), 130.0);
    assert_eq!(seat.target().await.unwrap(), 130.0);
    // The first MotionStarted is the one of this allowed move, not of a refused call.
    s.signals(&[("manual_control", Variant::from(false))])
        .await
        .unwrap();
    s.mock().await.set_speed_factor(50.0).await.unwrap();
    seat.move_to(120.0).await.unwrap();
    assert_eq!(started(&mut st).await, ("manual".into(), "/".into()));
}

/// Start a slow recall (real speed: the seat needs ~3 s), wait until it is under way.
async fn slow_recall(s: &Setup) -> (ManagerProxy<'static>, MotionFinishedStream) {
    let m = s.manager().await;
    let path = m.create_profile("Anna").await.unwrap();
    s.profile(&path)
        .await
        .set_positions(targets())
        .await
        .unwrap();
    s.park().await;
    let fin = recall(s, &path).await;
    assert_eq!(m.state().await.unwrap(), "moving");
    // Under way: the seat reports a position other than where it was.
    wait_prop(s, "seat_position", "Position", |p: &f64| *p != 130.0).await;
    (m, fin)
}

/// A slow recall halted by `cause` ends with its outcome, every axis stopped.
async fn recall_halted_by(cause: Halt) -> (Setup, tempfile::TempDir) {
    let (s, d) = setup(&test_config(&[])).await;
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    let (_m, mut fin) = slow_recall(&s).await;
    cause.apply(&s).await;
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), cause.outcome().into()),
        "{cause:?}"
    );
    assert_halted_between(&s, "seat_position", 130.0, 180.0, 25.0).await;
    (s, d)
}

#[tokio::test]
async fn leaving_park_halts_motion_midway() {
    recall_halted_by(Halt::LeavePark).await;
}

#[tokio::test]
async fn speed_rising_halts_motion() {
    recall_halted_by(Halt::SpeedUp).await;
}

#[tokio::test]
async fn stop_halts_motion() {
    recall_halted_by(Halt::Stop).await;
}

#[tokio::test]
async fn actuator_stop_halts_motion() {
    recall_halted_by(Halt::ActuatorStop).await;
}

#[tokio::test]
async fn manual_switch_overrides_motion() {
    recall_halted_by(Halt::ManualSwitch).await;
}

#[tokio::test]
async fn moving_an_axis_by_hand_overrides_motion() {
    let (s, _d) = recall_halted_by(Halt::HandMove).await;
    assert_eq!(
        s.actuator("wheel_tilt").await.position().await.unwrap(),
        10.0
    );
}

#[tokio::test]
async fn second_recall_supersedes_the_first() {
    let (s, _d) = setup(&test_config(&[])).await;
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    let (m, mut fin) = slow_recall(&s).await;
    let ben = m.create_profile("Ben").await.unwrap();
    let mut ben_pos = targets();
    ben_pos.insert("seat_position", 100.0);
    s.profile(&ben).await.set_positions(ben_pos).await.unwrap();
    let mut st = m.receive_motion_started().await.unwrap();
    s.mock().await.set_speed_factor(50.0).await.unwrap();
    m.select_profile(&ben).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "superseded".into())
    );
    assert_eq!(started(&mut st).await, ("recall".into(), ben.to_string()));
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert_eq!(m.active_profile().await.unwrap(), ben);
    assert_position(&s, "seat_position", 100.0).await;
}

#[tokio::test]
async fn manual_move_to_completes() {
    let (s, _d) = setup(&test_config(&[])).await;
    let m = s.manager().await;
    s.park().await;
    s.mock().await.set_speed_factor(50.0).await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    let wheel = s.actuator("wheel_extension").await;
    wheel.move_to(5.0).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("manual".into(), "completed".into())
    );
    assert_position(&s, "wheel_extension", 5.0).await;
    // No profile was made active by a manual move.
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
}

#[tokio::test]
async fn stalled_axis_faults_and_is_cleared_by_a_manual_move() {
    // The stall is injected; a second is long enough to see it.
    let cfg = set_stall_ms(&test_config(&[]), Some("seat_height"), 1000);
    let (s, _d) = setup(&cfg).await;
    let m = s.manager().await;
    s.park().await;
    let mock = s.mock().await;
    mock.set_speed_factor(50.0).await.unwrap();
    mock.inject_fault("seat_height", "stall").await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    let h = s.actuator("seat_height").await;
    h.move_to(60.0).await.unwrap();
    assert_eq!(finished(&mut fin).await, ("manual".into(), "fault".into()));
    let fault = h.fault().await.unwrap();
    assert!(fault.starts_with("stalled at 30 mm"), "{fault}");
    assert!(!h.moving().await.unwrap());
    assert_eq!(h.position().await.unwrap(), 30.0);

    mock.inject_fault("seat_height", "none").await.unwrap();
    h.move_to(60.0).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("manual".into(), "completed".into())
    );
    assert_eq!(h.fault().await.unwrap(), "");
    assert_position(&s, "seat_height", 60.0).await;
}

#[tokio::test]
async fn position_signals_are_throttled_to_about_10_per_second() {
    let (s, _d) = setup(&test_config(&[])).await;
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    let m = s.manager().await;
    s.park().await;
    // Real speed: 10 %/s over 20 % = 2 s of motion; the mock reports every 40 ms.
    let wheel = s.actuator("wheel_tilt").await;
    let props = s.properties(&actuator_path("wheel_tilt")).await;
    let mut changes = props.receive_properties_changed().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    let t0 = Instant::now();
    wheel.move_to(70.0).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("manual".into(), "completed".into())
    );
    let secs = t0.elapsed().as_secs_f64();
    let mut values = Vec::new();
    // Every change was emitted before MotionFinished, so all are queued already: take them
    // without waiting.
    while let Some(Some(c)) = changes.next().now_or_never() {
        let args = c.args().unwrap();
        if let Some(v) = args.changed_properties().get("Position") {
            values.push(f64::try_from(v).unwrap());
        }
    }
    let last = values.last().copied().expect("no Position signals");
    assert_near(
        last,
        70.0,
        tolerance("wheel_tilt"),
        "the final value signalled",
    );
    assert!(
        values.len() >= 5,
        "too few updates while moving: {values:?}"
    );
    let allowed = (secs * 10.0).ceil() as usize + 2;
    assert!(
        values.len() <= allowed,
        "{} Position signals in {secs:.2} s: {values:?}",
        values.len()
    );
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "not monotonic: {values:?}"
    );
}

#[tokio::test]
async fn an_axis_over_its_duty_limit_is_stopped_and_refused() {
    let cfg = test_config(&[("duty_limit_s = 120", "duty_limit_s = 0.6")]);
    let (s, _d) = setup(&cfg).await;
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    s.park().await;
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    let seat = s.actuator("seat_position").await;
    // 130 mm at 25 mm/s: 5.2 s of running, far over the 0.6 s limit.
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
}

#[tokio::test]
async fn a_full_recall_never_runs_more_motors_than_the_budget() {
    let (s, _d) = setup(&test_config(&[])).await;
    s.mock().await.set_speed_factor(20.0).await.unwrap();
    let m = s.manager().await;
    let p = m.create_profile("Anna").await.unwrap();
    let targets: HashMap<&str, f64> = [
        ("mirror_driver_tilt", -60.0),
        ("mirror_driver_yaw", 50.0),
        ("mirror_passenger_tilt", -70.0),
        ("mirror_passenger_yaw", 40.0),
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
    // The motor group of an axis' object path: the seat and column share max_concurrent (2),
    // each door module drives one of its mirror's motors at a time.
    let group = |path: &str| {
        if path.contains("/mirror_driver_") {
            "driver_door_module"
        } else if path.contains("/mirror_passenger_") {
            "passenger_door_module"
        } else {
            "seat"
        }
    };
    let mut moving: HashMap<String, bool> = HashMap::new();
    let mut most: HashMap<&str, usize> = HashMap::new();
    let (mut most_at_once, mut changes) = (0, 0);
    while let Some(Some(Ok(msg))) = props.next().now_or_never() {
        let path = msg
            .header()
            .path()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let (_, changed, _): (String, HashMap<String, zbus::OwnedVariant>, Vec<String>) =
            msg.body().deserialize().unwrap();
        if let Some(v) = changed.get("Moving") {
            let g = group(&path);
            moving.insert(path, bool::try_from(v).unwrap());
            let n = moving.iter().filter(|(p, m)| **m && group(p) == g).count();
            let e = most.entry(g).or_default();
            *e = (*e).max(n);
            most_at_once = most_at_once.max(moving.values().filter(|m| **m).count());
            changes += 1;
        }
    }
    assert!(changes >= 24, "saw {changes} Moving changes");
    assert_eq!(
        most["seat"], 2,
        "at most 2 seat motors at once, and the budget is used"
    );
    assert_eq!(most["driver_door_module"], 1);
    assert_eq!(most["passenger_door_module"], 1);
    assert_eq!(
        most_at_once, 4,
        "the mirrors move while the seat's two motors run"
    );
    for (axis, want) in targets {
        assert_position(&s, axis, want).await;
    }
}
