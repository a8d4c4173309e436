//! Nearest-key selection over the real bus: readings scripted through ReportRanges, paced in
//! real time (100 ms per step), with short config timings and fast simulated motors.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use zbus::Variant;

const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
/// The default config with short timings: stale after 1 s, dwell 0.3 s.
fn key_config() -> String {
    test_config(&[
        ("expire_s = 2.0", "expire_s = 1.0"),
        ("dwell_s = 0.4", "dwell_s = 0.3"),
    ])
}

/// Every NearestKey value in the PropertiesChanged signals received so far (non-blocking).
fn drain_nearest(msgs: &mut Vec<String>, stream: &mut zbus::MessageStream) {
    while let Some(Some(Ok(m))) = futures_util::FutureExt::now_or_never(stream.next()) {
        if let Ok((iface, changed, _)) =
            m.body()
                .deserialize::<(String, HashMap<String, zbus::OwnedVariant>, Vec<String>)>()
            && iface == driverprofiled_api::interface::VEHICLE
            && let Some(v) = changed.get("NearestKey")
        {
            msgs.push(String::try_from(v.clone()).unwrap());
        }
    }
}

async fn nearest_stream(s: &Setup) -> zbus::MessageStream {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .path(ROOT)
        .build()
        .unwrap();
    zbus::MessageStream::for_match_rule(rule, &s.conn, None)
        .await
        .unwrap()
}

/// Wait until NearestKey equals `want`.
async fn await_nearest(s: &Setup, stream: &mut zbus::MessageStream, want: &str) {
    let v = s.vehicle().await;
    loop {
        if v.nearest_key().await.unwrap() == want {
            return;
        }
        next(stream, &format!("NearestKey {want:?}")).await.unwrap();
    }
}

#[tokio::test]
async fn one_driver_walking_up_is_recalled_before_the_door_opens() {
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna-phone", 200.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    // From 8 m ahead-left to the driver's door handle, then standing there.
    walk(&s, &[("anna-phone", (-4.0, 7.0), (-1.3, 0.0))], 25).await;
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
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "anna-phone");
    assert_eq!(m.active_profile().await.unwrap(), anna);
    assert_position(&s, "seat_position", 200.0).await;
    assert_eq!(
        s.actuator("wheel_tilt").await.position().await.unwrap(),
        50.0
    );
}

#[tokio::test]
async fn driver_at_driver_door_beats_passenger_at_passenger_door() {
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    driver(&s, "Ben", "ben", 60.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    walk(
        &s,
        &[
            ("anna", (-5.0, 6.0), (-1.3, 0.0)),
            ("ben", (5.0, 6.0), (1.3, 0.0)),
        ],
        25,
    )
    .await;
    assert_eq!(
        started(&mut st).await,
        ("key-approach".into(), anna.to_string())
    );
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "anna");
    assert_eq!(m.active_profile().await.unwrap(), anna);
    // Ben's key never caused a motion: no second MotionStarted is queued.
    assert!(futures_util::FutureExt::now_or_never(st.next()).is_none());
}

#[tokio::test]
async fn the_nearer_of_two_keys_wins_without_flip_flop() {
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    driver(&s, "Ben", "ben", 60.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut changes = nearest_stream(&s).await;
    // Both walk to the driver's door, Anna 2 m ahead of Ben.
    walk(
        &s,
        &[
            ("anna", (-1.3, 6.0), (-1.3, 1.0)),
            ("ben", (-1.3, 8.0), (-1.3, 3.0)),
        ],
        20,
    )
    .await;
    await_nearest(&s, &mut changes, "anna").await;
    assert_eq!(started(&mut st).await.1, anna.to_string());
    // Ben steps up beside her, 0.3 m nearer: within the hysteresis, nothing changes.
    let mut seen = Vec::new();
    drain_nearest(&mut seen, &mut changes);
    stand(&s, &[("anna", (-1.3, 1.0)), ("ben", (-1.2, 0.7))], 15).await;
    drain_nearest(&mut seen, &mut changes);
    assert!(
        seen.iter().all(|k| k == "anna"),
        "NearestKey flipped: {seen:?}"
    );
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "anna");
    assert!(
        futures_util::FutureExt::now_or_never(st.next()).is_none(),
        "a second motion started"
    );
}

#[tokio::test]
async fn a_one_off_outlier_does_not_switch() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    driver(&s, "Ben", "ben", 60.0).await;
    s.park().await;
    let mut changes = nearest_stream(&s).await;
    stand(&s, &[("anna", (-1.6, 1.0))], 8).await;
    await_nearest(&s, &mut changes, "anna").await;
    // Ben is 8 m away; one reflection puts him at 0.3 m from the driver's door, and then
    // that anchor drops out for 0.5 s (longer than the dwell), so a filter that trusted the
    // latest reading would switch to Ben.
    let mut tick = tokio::time::interval(STEP);
    let mut seen = Vec::new();
    for i in 0..15 {
        tick.tick().await;
        let mut r = readings("anna", -1.6, 1.0);
        let mut b = readings("ben", 4.0, 8.0);
        match i {
            5 => b[0].2 = 0.3,
            6..=10 => {
                b.remove(0);
            }
            _ => {}
        }
        r.extend(b);
        report(&s, r).await.unwrap();
    }
    drain_nearest(&mut seen, &mut changes);
    assert!(seen.iter().all(|k| k == "anna"), "{seen:?}");
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "anna");
}

#[tokio::test]
async fn a_silent_key_expires() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    let mut changes = nearest_stream(&s).await;
    stand(&s, &[("anna", (-1.6, 1.0))], 6).await;
    await_nearest(&s, &mut changes, "anna").await;
    // No more readings: after expire_s (0.6 s) the key is gone.
    await_nearest(&s, &mut changes, "").await;
}

#[tokio::test]
async fn selection_locks_when_the_door_opens() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    driver(&s, "Ben", "ben", 60.0).await;
    let mut changes = nearest_stream(&s).await;
    stand(&s, &[("anna", (-2.5, 1.0))], 6).await;
    await_nearest(&s, &mut changes, "anna").await;
    s.signals(&[("driver_door_open", Variant::from(true))])
        .await
        .unwrap();
    // Ben walks right up to the handle: far nearer than Anna, but the selection is locked.
    walk(
        &s,
        &[
            ("anna", (-2.5, 1.0), (-2.5, 1.0)),
            ("ben", (-3.0, 4.0), (-1.1, 0.0)),
        ],
        15,
    )
    .await;
    let mut seen = Vec::new();
    drain_nearest(&mut seen, &mut changes);
    assert!(seen.iter().all(|k| k == "anna"), "{seen:?}");
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "anna");
}

#[tokio::test]
async fn a_late_key_and_a_seated_driver_change_nothing() {
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    driver(&s, "Ben", "ben", 60.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    // Anna is in the car already (seat occupied, door closed) before any key was seen.
    s.signals(&[("driver_seat_occupied", Variant::from(true))])
        .await
        .unwrap();
    walk(&s, &[("ben", (-3.0, 5.0), (-1.2, 0.0))], 15).await;
    stand(&s, &[("ben", (-1.2, 0.0))], 6).await;
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "");
    assert!(
        futures_util::FutureExt::now_or_never(st.next()).is_none(),
        "a motion started"
    );
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
    let _ = anna;
}

#[tokio::test]
async fn locked_doors_hold_the_recall_until_unlocked() {
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    s.park().await;
    s.signals(&[("doors_locked", Variant::from(true))])
        .await
        .unwrap();
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut changes = nearest_stream(&s).await;
    stand(&s, &[("anna", (-1.5, 0.5))], 8).await;
    await_nearest(&s, &mut changes, "anna").await;
    // Selected, but the doors are locked: nothing moves.
    stand(&s, &[("anna", (-1.5, 0.5))], 4).await;
    assert!(
        futures_util::FutureExt::now_or_never(st.next()).is_none(),
        "moved while locked"
    );
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
    // Unlocking while the same key is selected lets the recall happen then.
    s.signals(&[("doors_locked", Variant::from(false))])
        .await
        .unwrap();
    assert_eq!(
        started(&mut st).await,
        ("key-approach".into(), anna.to_string())
    );
}

#[tokio::test]
async fn pre_adjust_off_waits_for_the_door() {
    let cfg = key_config().replacen("pre_adjust = true", "pre_adjust = false", 1);
    let (s, _d) = setup(&cfg).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut changes = nearest_stream(&s).await;
    stand(&s, &[("anna", (-1.5, 0.5))], 8).await;
    await_nearest(&s, &mut changes, "anna").await;
    assert!(
        futures_util::FutureExt::now_or_never(st.next()).is_none(),
        "moved before the door opened"
    );
    s.signals(&[("driver_door_open", Variant::from(true))])
        .await
        .unwrap();
    assert_eq!(
        started(&mut st).await,
        ("key-approach".into(), anna.to_string())
    );
}

#[tokio::test]
async fn an_active_profile_already_in_place_does_not_move() {
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    m.select_profile(&anna).await.unwrap();
    assert_eq!(finished(&mut fin).await.1, "completed");
    let mut st = m.receive_motion_started().await.unwrap();
    let mut changes = nearest_stream(&s).await;
    stand(&s, &[("anna", (-1.5, 0.5))], 8).await;
    await_nearest(&s, &mut changes, "anna").await;
    stand(&s, &[("anna", (-1.5, 0.5))], 3).await;
    assert!(
        futures_util::FutureExt::now_or_never(st.next()).is_none(),
        "moved for nothing"
    );
}

#[tokio::test]
async fn unbound_keys_are_ignored() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    walk(&s, &[("stranger", (-3.0, 5.0), (-1.2, 0.0))], 10).await;
    stand(&s, &[("stranger", (-1.2, 0.0))], 6).await;
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "");
    assert!(futures_util::FutureExt::now_or_never(st.next()).is_none());
}

#[tokio::test]
async fn bad_readings_reject_the_whole_batch() {
    let (s, _d) = setup(&key_config()).await;
    driver(&s, "Anna", "anna", 200.0).await;
    let good = || readings("anna", -1.5, 0.5);
    let with = |extra: (String, String, f64)| {
        let mut r = good();
        r.push(extra);
        r
    };
    let k = |key: &str, anchor: &str, d: f64| (key.to_string(), anchor.to_string(), d);
    let bad = vec![
        with(k("anna", "trunk", 1.0)),
        with(k("", "cabin", 1.0)),
        with(k(&"x".repeat(65), "cabin", 1.0)),
        with(k("an\nna", "cabin", 1.0)),
        with(k("anna", "cabin", f64::NAN)),
        with(k("anna", "cabin", f64::INFINITY)),
        with(k("anna", "cabin", -0.1)),
        with(k("anna", "cabin", 100.5)),
        (0..257).map(|i| k("anna", ANCHORS[i % 4].0, 1.0)).collect(),
    ];
    let mut tick = tokio::time::interval(STEP);
    for b in bad {
        tick.tick().await;
        assert_eq!(err_name(report(&s, b).await), INVALID_ARGS);
    }
    // Every rejected batch carried good readings of Anna at the door, 100 ms apart: had they
    // been kept, she would have been selected during those 0.9 s (dwell 0.3 s and fresh
    // readings). One more good reading alone cannot select her.
    report(&s, good()).await.unwrap();
    // A measurement window, not a synchronisation: twice the dwell.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.vehicle().await.nearest_key().await.unwrap(), "");
    // 256 readings is fine.
    let ok: Vec<_> = (0..256)
        .map(|i| k("anna", ANCHORS[i % 4].0, 1.0 + i as f64 / 100.0))
        .collect();
    report(&s, ok).await.unwrap();
}

#[tokio::test]
async fn a_seated_driver_is_never_overridden() {
    let (s, _d) = setup(&key_config()).await;
    let anna = driver(&s, "Anna", "anna", 200.0).await;
    driver(&s, "Ben", "ben", 60.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    walk(&s, &[("anna", (-3.0, 5.0), (-1.3, 0.0))], 12).await;
    assert_eq!(started(&mut st).await.1, anna.to_string());
    assert_eq!(finished(&mut fin).await.1, "completed");
    // Anna gets in: door opens, she sits, the door closes. Her key is now in the cabin.
    for sig in [
        ("driver_door_open", true),
        ("driver_seat_occupied", true),
        ("driver_door_open", false),
    ] {
        s.signals(&[(sig.0, Variant::from(sig.1))]).await.unwrap();
    }
    let mut changes = nearest_stream(&s).await;
    // Ben walks right up to the driver's door while Anna's key reads from the cabin.
    walk(
        &s,
        &[
            ("anna", (-0.2, 0.0), (-0.2, 0.0)),
            ("ben", (-4.0, 5.0), (-1.1, 0.0)),
        ],
        15,
    )
    .await;
    stand(&s, &[("anna", (-0.2, 0.0)), ("ben", (-1.1, 0.0))], 5).await;
    let mut seen = Vec::new();
    drain_nearest(&mut seen, &mut changes);
    assert!(
        seen.is_empty(),
        "NearestKey changed under a seated driver: {seen:?}"
    );
    assert!(
        futures_util::FutureExt::now_or_never(st.next()).is_none(),
        "a motion started"
    );
    assert_eq!(m.active_profile().await.unwrap(), anna);
    assert_position(&s, "seat_position", 200.0).await;
}
