//! Nearest-key selection over the real bus: the edge only. The selection itself (walks,
//! two people, outliers, hysteresis, locks, held-back recalls) is scenario-tested on the core's
//! fake clock in `src/core/tests.rs`; here a key reported at the door through `ReportRanges`
//! must show in `Vehicle.NearestKey`, start a key-approach recall, and expire on the daemon's
//! own timer.

mod common;

use common::*;

const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";

/// The test config with short key timings: stale after 1 s, dwell 0.3 s.
fn key_config() -> String {
    test_config(&[
        ("expire_s = 2.0", "expire_s = 1.0"),
        ("dwell_s = 0.4", "dwell_s = 0.3"),
    ])
}

#[tokio::test]
async fn a_key_at_the_door_is_selected_and_recalled_before_the_door_opens() {
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna-phone", 200.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    // Reported at the driver's door handle until NearestKey (a PropertiesChanged) says so.
    approach(&s, "anna-phone", (-1.3, 0.0)).await;
    assert_eq!(
        started(&mut st).await,
        ("key-approach".into(), anna.to_string())
    );
    assert_eq!(
        finished(&mut fin).await,
        ("key-approach".into(), "completed".into())
    );
    // The door has not been opened: this all happened before.
    assert!(!s.vehicle().await.driver_door_open().await.unwrap());
    assert_eq!(m.active_profile().await.unwrap(), anna);
    assert_position(&s, "seat_position", 200.0).await;
    // Her wheel tilt (50) is where the wheel was: not moved.
    assert_eq!(
        s.actuator("wheel_tilt").await.position().await.unwrap(),
        50.0
    );
}

#[tokio::test]
async fn a_silent_key_expires_on_the_daemons_timer() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    let v = VehicleProxy::new(&s.conn).await.unwrap();
    let mut changes = v.receive_nearest_key_changed().await;
    approach(&s, "anna", (-1.6, 1.0)).await;
    // No more readings and no more requests: after expire_s (1 s) the daemon wakes up by
    // itself and signals that the key is gone.
    loop {
        let c = next(&mut changes, "NearestKey \"\"").await;
        if c.get().await.unwrap().is_empty() {
            break;
        }
    }
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "");
}

#[tokio::test]
async fn bad_readings_are_invalid_args() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    let k = |key: &str, anchor: &str, d: f64| (key.to_string(), anchor.to_string(), d);
    let bad = vec![
        vec![k("anna", "trunk", 1.0)],
        vec![k("", "cabin", 1.0)],
        vec![k(&"x".repeat(65), "cabin", 1.0)],
        vec![k("an\nna", "cabin", 1.0)],
        vec![k("anna", "cabin", f64::NAN)],
        vec![k("anna", "cabin", f64::INFINITY)],
        vec![k("anna", "cabin", -0.1)],
        vec![k("anna", "cabin", 100.5)],
        (0..257).map(|i| k("anna", ANCHORS[i % 4].0, 1.0)).collect(),
    ];
    for b in bad {
        assert_eq!(err_name(report(&s, b).await), INVALID_ARGS);
    }
    // 256 readings is fine.
    let ok: Vec<_> = (0..256)
        .map(|i| k("anna", ANCHORS[i % 4].0, 1.0 + i as f64 / 100.0))
        .collect();
    report(&s, ok).await.unwrap();
}
