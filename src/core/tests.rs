//! Unit tests of the core on a fake clock: no runtime, no bus.

use super::*;
use crate::config;

fn core() -> Core {
    let cfg = Arc::new(config::builtin().unwrap());
    Core::new(cfg, Store::default(), "mock".into(), "test".into())
}

fn park(c: &mut Core) {
    let r = c.request(
        Request::UpdateSignals(vec![
            ("gear".into(), SignalValue::Str("P".into())),
            ("speed_kmh".into(), SignalValue::F64(0.0)),
        ]),
        0,
        &mut NoStorage,
    );
    assert_eq!(r, Ok(Reply::Done));
}

fn create(c: &mut Core, name: &str) -> String {
    match c.request(
        Request::CreateProfile { name: name.into() },
        0,
        &mut NoStorage,
    ) {
        Ok(Reply::Created(id)) => id,
        other => panic!("{other:?}"),
    }
}

fn moves(effects: &[Effect]) -> Vec<(String, f64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Backend(BackendCommand::Move { axis, target }) => Some((axis.clone(), *target)),
            _ => None,
        })
        .collect()
}

#[test]
fn recall_is_interlocked_until_parked_and_still() {
    let mut c = core();
    let id = create(&mut c, "Anna");
    let r = c.request(Request::SelectProfile { id: id.clone() }, 0, &mut NoStorage);
    assert!(matches!(r, Err(Error::Interlocked(_))), "{r:?}");
    assert!(c.take_effects().is_empty());
    assert_eq!(c.store().active, None);
    park(&mut c);
    let r = c.request(
        Request::UpdateSignals(vec![("speed_kmh".into(), SignalValue::F64(3.0))]),
        0,
        &mut NoStorage,
    );
    assert_eq!(r, Ok(Reply::Done));
    let r = c.request(Request::SelectProfile { id }, 0, &mut NoStorage);
    assert!(matches!(r, Err(Error::Interlocked(_))), "{r:?}");
}

#[test]
fn recall_moves_axes_and_completes_on_arrival() {
    let mut c = core();
    let id = create(&mut c, "Anna");
    c.request(
        Request::SetPositions {
            id: id.clone(),
            positions: vec![("seat_position".into(), 200.0), ("wheel_tilt".into(), 80.0)],
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    park(&mut c);
    c.request(
        Request::SelectProfile { id: id.clone() },
        10,
        &mut NoStorage,
    )
    .unwrap();
    let fx = c.take_effects();
    let mut m = moves(&fx);
    m.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        m,
        vec![("seat_position".into(), 200.0), ("wheel_tilt".into(), 80.0)]
    );
    assert!(matches!(
        fx[0],
        Effect::MotionStarted {
            reason: Reason::Recall,
            ..
        }
    ));
    assert!(c.is_moving());
    c.feedback(
        Feedback::Position {
            axis: "seat_position".into(),
            position: 200.0,
        },
        50,
    );
    assert!(c.is_moving());
    c.feedback(
        Feedback::Position {
            axis: "wheel_tilt".into(),
            position: 80.0,
        },
        60,
    );
    assert!(!c.is_moving());
    assert_eq!(
        c.take_effects(),
        vec![Effect::MotionFinished {
            reason: Reason::Recall,
            outcome: Outcome::Completed
        }]
    );
    assert_eq!(c.view().actuators["seat_position"].position, 200.0);
}

#[test]
fn leaving_park_halts_every_axis_in_the_same_step() {
    let mut c = core();
    let id = create(&mut c, "Anna");
    c.request(
        Request::SetPositions {
            id: id.clone(),
            positions: vec![("seat_position".into(), 10.0)],
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    park(&mut c);
    c.request(Request::SelectProfile { id }, 0, &mut NoStorage)
        .unwrap();
    c.take_effects();
    c.request(
        Request::UpdateSignals(vec![("gear".into(), SignalValue::Str("D".into()))]),
        20,
        &mut NoStorage,
    )
    .unwrap();
    let fx = c.take_effects();
    assert!(fx.contains(&Effect::Backend(BackendCommand::Stop {
        axis: "seat_position".into()
    })));
    assert!(fx.contains(&Effect::MotionFinished {
        reason: Reason::Recall,
        outcome: Outcome::Interlocked
    }));
    assert!(!c.is_moving());
}

#[test]
fn stall_is_detected_on_the_fake_clock_and_cleared_by_movement() {
    let mut c = core();
    park(&mut c);
    c.request(
        Request::MoveTo {
            axis: "seat_position".into(),
            target: 20.0,
        },
        1000,
        &mut NoStorage,
    )
    .unwrap();
    c.take_effects();
    // The axis never moves: the stall deadline is 200 ms after the command.
    assert_eq!(c.next_deadline(), Some(1200));
    c.tick(1199, &mut NoStorage);
    assert!(c.is_moving());
    c.tick(1200, &mut NoStorage);
    assert!(!c.is_moving());
    let v = c.view();
    assert!(
        v.actuators["seat_position"]
            .fault
            .starts_with("stalled at 130 mm"),
        "{v:?}"
    );
    assert!(c.take_effects().contains(&Effect::MotionFinished {
        reason: Reason::Manual,
        outcome: Outcome::Fault
    }));
    // Idle again: no timer at all.
    assert_eq!(c.next_deadline(), None);
    // A manual move tries again and clears the fault once the axis moves.
    c.request(
        Request::MoveTo {
            axis: "seat_position".into(),
            target: 20.0,
        },
        2000,
        &mut NoStorage,
    )
    .unwrap();
    c.feedback(
        Feedback::Position {
            axis: "seat_position".into(),
            position: 120.0,
        },
        2050,
    );
    assert_eq!(c.view().actuators["seat_position"].fault, "");
}

#[test]
fn positions_are_published_at_most_every_100ms_while_moving() {
    let mut c = core();
    park(&mut c);
    c.request(
        Request::MoveTo {
            axis: "seat_position".into(),
            target: 0.0,
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    c.feedback(
        Feedback::Position {
            axis: "seat_position".into(),
            position: 129.0,
        },
        10,
    );
    assert_eq!(c.view().actuators["seat_position"].position, 129.0);
    c.feedback(
        Feedback::Position {
            axis: "seat_position".into(),
            position: 128.0,
        },
        50,
    );
    assert_eq!(c.view().actuators["seat_position"].position, 129.0);
    assert_eq!(c.next_deadline(), Some(110));
    c.tick(110, &mut NoStorage);
    assert_eq!(c.view().actuators["seat_position"].position, 128.0);
}

#[test]
fn failed_save_changes_nothing() {
    struct Broken;
    impl Storage for Broken {
        fn save(&mut self, _: &Store) -> Result<(), String> {
            Err("disk full".into())
        }
    }
    let mut c = core();
    let r = c.request(
        Request::CreateProfile {
            name: "Anna".into(),
        },
        0,
        &mut Broken,
    );
    assert!(matches!(r, Err(Error::Failed(_))), "{r:?}");
    assert!(c.store().profiles.is_empty());
    assert_eq!(c.store().next_id, 1);
}

#[test]
fn bad_signal_batch_applies_nothing() {
    let mut c = core();
    let r = c.request(
        Request::UpdateSignals(vec![
            ("gear".into(), SignalValue::Str("P".into())),
            ("speed_kmh".into(), SignalValue::F64(f64::NAN)),
        ]),
        0,
        &mut NoStorage,
    );
    assert!(matches!(r, Err(Error::InvalidArgs(_))));
    assert_eq!(c.vehicle().gear, None);
}
