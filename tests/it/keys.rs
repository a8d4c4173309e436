//! Key selection over the real bus: the edge only. The selection itself (walks, two people,
//! outliers, locks, held-back recalls; the locator's scenarios) is tested on the core's fake
//! clock in `src/core/tests.rs` and `src/core/locate.rs`; here a key reported at the door
//! through `ReportRanges` or `ReportRssi` must show in `Vehicle.NearestKey` and
//! `Vehicle.KeyEstimates`, start a key-approach recall, and expire on the daemon's own timer,
//! with the shipped geometry and with a config from before geometry existed; and a simulated
//! walk fed in real time must give the decisions the replay tool gives.

use crate::common;

use common::*;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use zbus::proxy::CacheProperties;

const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
const NOT_SUPPORTED: &str = "org.driverprofiled1.Error.NotSupported";

/// A config as cars had it before `[keys.geometry]`: its own anchors, no positions.
fn legacy_config() -> String {
    let c = key_config();
    let start = c
        .find("[keys.geometry]")
        .expect("geometry in the shipped config");
    let end = start + c[start..].find("\n\n").expect("end of the geometry table");
    format!("{}{}", &c[..start], &c[end + 2..])
}

/// RSSI of a key standing at `at`, by the shipped `[keys.ble]` model (-59 dBm at 1 m,
/// exponent 2).
fn rssi(key: &str, at: Point) -> Vec<(String, String, f64)> {
    readings(key, at.0, at.1)
        .into_iter()
        .map(|(k, a, d)| (k, a, (-59.0 - 20.0 * d.max(0.2).log10()).round()))
        .collect()
}

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
    approach(&s, "anna-phone", DRIVER_SPOT).await;
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
    approach(&s, "anna", DRIVER_SPOT).await;
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

#[tokio::test]
async fn a_config_without_geometry_selects_by_distance_as_before() {
    let (s, _d) = setup(&legacy_config()).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let n = approach(&s, "anna", (-1.3, 0.3)).await;
    // Two readings and the dwell: the distance-only rule of earlier versions.
    assert!(n >= 3, "selected after {n} reports");
    assert_eq!(
        started(&mut st).await,
        ("key-approach".into(), anna.to_string())
    );
    let v = s.vehicle().await;
    assert!(v.key_estimates().await.unwrap().is_empty());
    assert!(v.key_geometry().await.unwrap().is_empty());
    // RSSI needs geometry.
    assert_eq!(
        err_name(v.report_rssi(rssi("anna", DRIVER_SPOT)).await),
        NOT_SUPPORTED
    );
}

#[tokio::test]
async fn key_geometry_is_the_configured_one() {
    let (s, _d) = setup(&key_config()).await;
    let g = s.vehicle().await.key_geometry().await.unwrap();
    let mut want: Vec<(String, f64, f64)> = ANCHORS
        .iter()
        .map(|(n, x, y)| (n.to_string(), *x, *y))
        .collect();
    want.push(("driver_spot".into(), DRIVER_SPOT.0, DRIVER_SPOT.1));
    assert_eq!(g, want);
}

#[tokio::test]
async fn key_estimates_show_where_bound_keys_are_and_are_throttled() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    let v = VehicleProxy::builder(&s.conn)
        .cache_properties(CacheProperties::Lazily)
        .build()
        .await
        .unwrap();
    let mut changes = v.receive_key_estimates_changed().await;
    // Anna stands 4 m from the car, a stranger's key beside her: only bound keys are shown.
    let (x, y) = (-5.0, 3.0);
    let start = std::time::Instant::now();
    let mut seen = 0;
    let mut last = Vec::new();
    while start.elapsed() < Duration::from_secs(2) {
        let mut r = readings("anna", x, y);
        r.extend(readings("stranger", x, y));
        report(&s, r).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Some(Some(c)) = changes.next().now_or_never() {
            last = c.get().await.unwrap();
            seen += 1;
        }
    }
    // 100 reports in 2 s; at most 5 changes a second (and one more at the start).
    assert!(
        (1..=11).contains(&seen),
        "{seen} KeyEstimates changes in 2 s"
    );
    let e = v.key_estimates().await.unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    let (key, ex, ey, p) = &e[0];
    assert_eq!(key, "anna");
    assert!((ex - x).abs() < 0.5 && (ey - y).abs() < 0.5, "{e:?}");
    assert!(
        *p < 0.5,
        "standing still 4 m away is not heading for the door: {p}"
    );
    assert_eq!(last.len(), 1);
}

#[tokio::test]
async fn rssi_at_the_door_opening_recalls_at_once() {
    // A slow BLE locator: one batch at the driver's spot, then the door opens. Nothing could
    // be selected before (a selection needs more readings); the door decides.
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    driver(&s, "Ben", "ben", 50.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let v = s.vehicle().await;
    v.report_rssi(rssi("anna", DRIVER_SPOT)).await.unwrap();
    // Ben is at the passenger door.
    v.report_rssi(rssi("ben", (1.45, 0.2))).await.unwrap();
    assert_eq!(v.nearest_key().await.unwrap(), "");
    s.signals(&[("driver_door_open", true.into())])
        .await
        .unwrap();
    assert_eq!(
        started(&mut st).await,
        ("key-approach".into(), anna.to_string())
    );
    assert_eq!(v.nearest_key().await.unwrap(), "anna");
    assert_eq!(m.active_profile().await.unwrap(), anna);
}

#[tokio::test]
async fn rssi_alone_never_moves_a_seat_with_the_doors_locked() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    s.park().await;
    s.signals(&[("doors_locked", true.into())]).await.unwrap();
    let v = VehicleProxy::builder(&s.conn)
        .cache_properties(CacheProperties::Lazily)
        .build()
        .await
        .unwrap();
    let mut changes = v.receive_nearest_key_changed().await;
    // At the door until she is selected: selected, but nothing moves while locked. RSSI
    // standing still rarely makes the locator sure before the door opens (shadowing repeats
    // itself), so after two seconds the door opens too and decides.
    let mut batches = 0;
    loop {
        v.report_rssi(rssi("anna", DRIVER_SPOT)).await.unwrap();
        batches += 1;
        if batches == 20 {
            s.signals(&[("driver_door_open", true.into())])
                .await
                .unwrap();
        }
        assert!(batches < 200, "anna was never selected");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(Some(c)) = changes.next().now_or_never()
            && c.get().await.unwrap() == "anna"
        {
            break;
        }
    }
    let m = s.manager().await;
    assert_eq!(m.state().await.unwrap(), "idle");
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
}

#[tokio::test]
async fn bad_rssi_is_invalid_args_and_changes_nothing() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    let k = |key: &str, anchor: &str, dbm: f64| (key.to_string(), anchor.to_string(), dbm);
    let good = k("anna", "cabin", -60.0);
    let bad = vec![
        k("anna", "trunk", -60.0),
        k("", "cabin", -60.0),
        k(&"x".repeat(65), "cabin", -60.0),
        k("anna", "cabin", f64::NAN),
        k("anna", "cabin", -127.5),
        k("anna", "cabin", 20.5),
    ];
    let v = s.vehicle().await;
    for b in bad {
        // The good reading beside it is ignored with it.
        let e = v.report_rssi(vec![good.clone(), b.clone()]).await;
        assert_eq!(err_name(e), INVALID_ARGS, "{b:?}");
    }
    let many: Vec<_> = (0..257)
        .map(|i| k("anna", ANCHORS[i % 4].0, -60.0))
        .collect();
    assert_eq!(err_name(v.report_rssi(many).await), INVALID_ARGS);
    assert!(v.key_estimates().await.unwrap().is_empty());
    // The message quotes a long key id only in part.
    let e = v
        .report_rssi(vec![k(&"y".repeat(500), "cabin", -60.0)])
        .await;
    let msg = format!("{e:?}");
    assert!(!msg.contains(&"y".repeat(70)), "{msg}");
    v.report_rssi(vec![good]).await.unwrap();
}

/// A simulated walk of a driver and a passenger (UWB), fed to the live daemon over D-Bus in
/// real time, gives the decisions that `driverprofiled-replay`'s core gives on its fake clock:
/// the same profiles recalled for key approach, in the same order, and the same key selected
/// at the end.
#[tokio::test]
async fn a_trace_gives_the_live_daemon_the_replays_decisions() {
    use driverprofiled::core::{Gear, Reason, Signal};
    use driverprofiled::trace::{self, TraceEvent, What};
    use driverprofiled::walksim::{self, Locator, Scenario};
    use std::sync::Arc;
    use zbus::zvariant::Variant;

    let text = key_config();
    let cfg = Arc::new(driverprofiled::config::parse("test", &text).expect("the test config"));
    let run = walksim::simulate(&cfg.keys, Locator::Uwb, Scenario::DriverAndPassenger, 11);
    let decisions = trace::replay(cfg.clone(), &run.lines);
    let mut want_recalls: Vec<String> = Vec::new();
    let mut want_selected = String::new();
    for d in &decisions {
        match &d.what {
            What::MotionStarted {
                reason: Reason::KeyApproach,
                profile: Some(p),
            } => want_recalls.push(p.clone()),
            What::Selected { key, .. } => want_selected = key.clone().unwrap_or_default(),
            _ => {}
        }
    }
    assert_eq!(want_recalls, ["Driver"], "the replay: {decisions:#?}");

    let (s, _d) = setup(&text).await;
    let mut names = std::collections::HashMap::new();
    for (key, name, seat) in [
        (walksim::DRIVER.0, walksim::DRIVER.1, 200.0),
        (walksim::PASSENGER.0, walksim::PASSENGER.1, 50.0),
    ] {
        names.insert(driver(&s, name, key, seat).await.to_string(), name);
    }
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let v = s.vehicle().await;
    // The trace at its own pace: its times are the walk's.
    let start = tokio::time::Instant::now();
    for l in &run.lines {
        tokio::time::sleep_until(start + Duration::from_millis(l.t_ms)).await;
        match &l.event {
            TraceEvent::Signals(sigs) => {
                let map: Vec<(&str, Variant<'_>)> = sigs
                    .iter()
                    .map(|sig| match *sig {
                        Signal::Gear(g) => (
                            "gear",
                            Variant::from(match g {
                                Gear::P => "P",
                                Gear::R => "R",
                                Gear::N => "N",
                                Gear::D => "D",
                            }),
                        ),
                        Signal::SpeedKmh(k) => ("speed_kmh", Variant::from(k)),
                        Signal::DoorsLocked(b) => ("doors_locked", Variant::from(b)),
                        Signal::DriverDoorOpen(b) => ("driver_door_open", Variant::from(b)),
                        Signal::DriverSeatOccupied(b) => ("driver_seat_occupied", Variant::from(b)),
                        ref other => panic!("the simulator sent {other:?}"),
                    })
                    .collect();
                s.signals(&map).await.unwrap();
            }
            TraceEvent::Ranges(b) => v.report_ranges(b.clone()).await.unwrap(),
            TraceEvent::Rssi(b) => v.report_rssi(b.clone()).await.unwrap(),
            TraceEvent::Bind { .. } | TraceEvent::Truth { .. } => {}
        }
    }
    let mut recalls = Vec::new();
    let (reason, path) = started(&mut st).await;
    assert_eq!(reason, "key-approach");
    recalls.push(names.get(&path).copied().unwrap_or("?"));
    // A reply comes after every signal the daemon sent before it: whatever else started has
    // been received by then.
    let selected = v.nearest_key().await.unwrap();
    while let Some(Some(sig)) = st.next().now_or_never() {
        let a = sig.args().unwrap();
        if a.reason() == "key-approach" {
            recalls.push(names.get(&a.profile().to_string()).copied().unwrap_or("?"));
        }
    }
    assert_eq!(recalls, want_recalls);
    assert_eq!(selected, want_selected);
}
