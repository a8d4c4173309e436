//! Easy exit and restore over the real bus: the edge only. The rules (triggers, locks, rear
//! guard, disabled profiles, halts, faults, entry pose) are scenario-tested on the core's fake
//! clock in `src/core/tests.rs`; here signals sent with `Vehicle.UpdateSignals` must retract
//! and restore the mock's axes, with `Manager.EasyExitActive` signalled, and the retract must
//! survive a restart of the daemon (`easy-exit.toml`).

use crate::common;

use std::collections::HashMap;

use common::*;
use zbus::{OwnedObjectPath, Variant};

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

#[tokio::test]
async fn park_retracts_and_a_fresh_brake_press_restores() {
    let (s, _d) = setup(&test_config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    // The driver holds the brake while shifting into P: that press must not undo the retract.
    let (m, mut st, mut fin) = drive_with(&s, Some(&anna), true).await;
    let mut active = m.receive_easy_exit_active_changed().await;
    assert!(!m.easy_exit_active().await.unwrap());
    let seat = position(&s, "seat_position").await;
    assert_near(seat, 150.0, tolerance("seat_position"), "recalled seat");
    shift_to_park(&s).await;
    assert_eq!(
        started(&mut st).await,
        ("easy-exit".into(), anna.to_string())
    );
    assert_eq!(
        finished(&mut fin).await,
        ("easy-exit".into(), "completed".into())
    );
    loop {
        let c = next(&mut active, "EasyExitActive true").await;
        if c.get().await.unwrap() {
            break;
        }
    }
    // 50 mm back from where the recall left it.
    assert_position(&s, "seat_position", seat + 50.0).await;
    assert_position(&s, "wheel_tilt", 100.0).await;
    assert_position(&s, "wheel_extension", 0.0).await;
    // Axes without a retract rule stay.
    assert_eq!(position(&s, "seat_height").await, 30.0);
    assert_eq!(position(&s, "backrest_recline").await, 22.0);

    // Still held: nothing. Released, then pressed again with the driver seated: restore.
    s.signals(&[("brake_pressed", Variant::from(true))])
        .await
        .unwrap();
    assert!(m.easy_exit_active().await.unwrap());
    assert_eq!(m.state().await.unwrap(), "idle");
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
    loop {
        let c = next(&mut active, "EasyExitActive false").await;
        if !c.get().await.unwrap() {
            break;
        }
    }
    assert_position(&s, "seat_position", 150.0).await;
    assert_position(&s, "wheel_tilt", 37.5).await;
    assert_position(&s, "wheel_extension", 50.0).await;
}

#[tokio::test]
async fn a_restart_while_retracted_still_restores() {
    let (mut s, d) = setup(&test_config(&[])).await;
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

/// AutoSave: the end of the drive stores where the driver left the axes — a mirror adjusted
/// by hand on the way — before the retract, and the UI sees the profile's Positions change.
#[tokio::test]
async fn auto_save_stores_the_adjusted_mirror_at_park_before_the_retract() {
    let (s, _d) = setup(&test_config(&[])).await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let p = s.profile(&anna).await;
    assert!(!p.auto_save().await.unwrap(), "off by default");
    p.set_auto_save(true).await.unwrap();
    assert!(p.auto_save().await.unwrap());
    let store = std::fs::read_to_string(s.state.path().join("profiles.toml")).unwrap();
    assert!(store.contains("\nschema = 3\n"), "{store}");
    assert!(store.contains("auto_save = true"), "{store}");
    let (_m, mut st, mut fin) = drive_with(&s, Some(&anna), false).await;
    // On the way, the driver turns the mirror by hand.
    s.mock()
        .await
        .set_position("mirror_driver_yaw", 12.0)
        .await
        .unwrap();
    wait_prop(&s, "mirror_driver_yaw", "Position", |v: &f64| *v == 12.0).await;
    let props = s.properties(anna.as_str()).await;
    let mut changes = props.receive_properties_changed().await.unwrap();
    shift_to_park(&s).await;
    let saved: HashMap<String, f64> = loop {
        let c = next(&mut changes, "Positions saved").await;
        let args = c.args().unwrap();
        if let Some(v) = args.changed_properties().get("Positions") {
            break v.try_to_owned().unwrap().try_into().unwrap();
        }
    };
    assert_eq!(saved.get("mirror_driver_yaw"), Some(&12.0), "{saved:?}");
    assert_near(
        saved["seat_position"],
        150.0,
        tolerance("seat_position"),
        "seat",
    );
    // Then the retract, which is not saved.
    assert_eq!(
        started(&mut st).await,
        ("easy-exit".into(), anna.to_string())
    );
    assert_eq!(finished(&mut fin).await.1, "completed");
    let after = p.positions().await.unwrap();
    assert_eq!(after, saved, "the retract's positions are not the driver's");
    // Off again: the store goes back to schema 2, readable by an older daemon.
    p.set_auto_save(false).await.unwrap();
    let store = std::fs::read_to_string(s.state.path().join("profiles.toml")).unwrap();
    assert!(store.contains("\nschema = 2\n"), "{store}");
}
