//! Reverse tilt-down over the real bus with the mock actuators, and through the KUKSA
//! databroker: the gear into R tilts the passenger mirror (and nothing else), leaving R brings
//! it back after the delay, and a restart while tilted does not forget it. The rules (the
//! delay, R -> D -> R, speed, hand, Stop, inhibitors, the seat never moving outside P) are
//! tested on the core's fake clock in `src/core/tests.rs`.

use crate::common;

use common::*;
use std::collections::HashMap;
use zbus::Variant;

const MIRROR: &str = "mirror_passenger_tilt";

/// The test config with a short return delay (the 5 s rule itself is tested on the fake
/// clock).
fn config() -> String {
    test_config(&[("return_delay_s = 5.0", "return_delay_s = 0.3")])
}

async fn gear(s: &Setup, g: &str) {
    s.signals(&[("gear", Variant::from(g))]).await.unwrap();
}

#[tokio::test]
async fn reverse_tilts_the_passenger_mirror_only_and_leaving_r_returns_it() {
    let (s, _d) = setup(&config()).await;
    s.park().await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    gear(&s, "R").await;
    assert_eq!(started(&mut st).await.0, "reverse-tilt");
    assert_eq!(
        finished(&mut fin).await,
        ("reverse-tilt".into(), "completed".into())
    );
    assert_position(&s, MIRROR, -25.0).await;
    let kept = std::fs::read_to_string(s.state.path().join("reverse-tilt.toml")).unwrap();
    assert!(kept.contains("mirror_passenger_tilt = 0.0"), "{kept}");
    // Nothing else moved: every other axis is where it started.
    let cfg = driverprofiled::config::builtin().unwrap();
    for a in cfg.axes.iter().filter(|a| a.name != MIRROR) {
        let at = s.actuator(&a.name).await.position().await.unwrap();
        assert_eq!(at, a.initial, "{} moved outside P", a.name);
    }
    gear(&s, "D").await;
    assert_eq!(started(&mut st).await.0, "reverse-return");
    assert_eq!(
        finished(&mut fin).await,
        ("reverse-return".into(), "completed".into())
    );
    assert_position(&s, MIRROR, 0.0).await;
    let kept = std::fs::read_to_string(s.state.path().join("reverse-tilt.toml")).unwrap();
    assert!(!kept.contains("mirror_passenger_tilt"), "{kept}");
}

/// The profile's reverse position: a client sets it and R tilts there; the occupant adjusting
/// the mirror by hand in R replaces it when R is left (and the UI sees ReverseTilt change);
/// with ReverseTiltEnabled off, R moves nothing.
#[tokio::test]
async fn the_profile_keeps_its_reverse_position_and_a_hand_in_r_changes_it() {
    let (s, _d) = setup(&config()).await;
    s.park().await;
    let anna = driver(&s, "Anna", "anna", 150.0).await;
    let mut fin = recall(&s, &anna).await;
    assert_eq!(finished(&mut fin).await.1, "completed");
    let p = s.profile(&anna).await;
    assert!(
        p.reverse_tilt().await.unwrap().is_empty(),
        "empty by default"
    );
    assert!(p.reverse_tilt_enabled().await.unwrap(), "on by default");
    let seat = HashMap::from([("seat_position".to_string(), 100.0)]);
    let e = err_name(p.set_reverse_tilt(seat).await);
    assert_eq!(e, "org.freedesktop.DBus.Error.InvalidArgs");
    assert!(
        p.reverse_tilt().await.unwrap().is_empty(),
        "a refusal changes nothing"
    );
    let low = HashMap::from([(MIRROR.to_string(), -40.0)]);
    p.set_reverse_tilt(low.clone()).await.unwrap();
    assert_eq!(p.reverse_tilt().await.unwrap(), low);

    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    gear(&s, "R").await;
    assert_eq!(
        started(&mut st).await,
        ("reverse-tilt".into(), anna.to_string())
    );
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, MIRROR, -40.0).await;
    // A hand lowers it further while reversing.
    s.mock().await.set_position(MIRROR, -55.0).await.unwrap();
    wait_prop(&s, MIRROR, "Position", |v: &f64| *v == -55.0).await;
    let props = s.properties(anna.as_str()).await;
    let mut changes = props.receive_properties_changed().await.unwrap();
    gear(&s, "D").await;
    let kept: HashMap<String, f64> = loop {
        let c = next(&mut changes, "ReverseTilt kept").await;
        let args = c.args().unwrap();
        if let Some(v) = args.changed_properties().get("ReverseTilt") {
            break v.try_to_owned().unwrap().try_into().unwrap();
        }
    };
    assert_eq!(kept, HashMap::from([(MIRROR.to_string(), -55.0)]));
    let store = std::fs::read_to_string(s.state.path().join("profiles.toml")).unwrap();
    assert!(store.contains("\nschema = 4\n"), "{store}");
    assert!(store.contains("mirror_passenger_tilt = -55.0"), "{store}");
    // The return still goes to where the mirror was before the tilt.
    assert_eq!(started(&mut st).await.0, "reverse-return");
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, MIRROR, 0.0).await;

    // Off for this profile: R tilts nothing. The next motion announced is the one asked for
    // in P afterwards, not a tilt.
    p.set_reverse_tilt_enabled(false).await.unwrap();
    assert!(!p.reverse_tilt_enabled().await.unwrap());
    gear(&s, "R").await;
    s.park().await;
    s.actuator(MIRROR).await.move_to(10.0).await.unwrap();
    assert_eq!(started(&mut st).await.0, "manual");
}

#[tokio::test]
async fn a_restart_while_tilted_brings_the_mirror_back_out_of_r() {
    let (mut s, d) = setup(&config()).await;
    s.park().await;
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    gear(&s, "R").await;
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, MIRROR, -25.0).await;
    let path = d.path().join("config.toml");
    s.restart_daemon(&["--config", path.to_str().unwrap()])
        .await;
    s.mock().await.set_speed_factor(100.0).await.unwrap();
    // The mock starts where its config says; put the mirror where the real one would be.
    s.mock().await.set_position(MIRROR, -25.0).await.unwrap();
    wait_prop(&s, MIRROR, "Position", |v: &f64| *v == -25.0).await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    s.signals(&[
        ("gear", Variant::from("D")),
        ("speed_kmh", Variant::from(0.0)),
    ])
    .await
    .unwrap();
    assert_eq!(started(&mut st).await.0, "reverse-return");
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, MIRROR, 0.0).await;
}

#[cfg(feature = "kuksa")]
#[tokio::test]
async fn through_the_broker_a_negative_selected_gear_tilts_and_d_returns() {
    use common::kuksa::*;
    let (b, s, _d) = kuksa_setup(&[("return_delay_s = 5.0", "return_delay_s = 0.3")]).await;
    park(&b, &s).await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    b.gear(GEAR_R);
    assert_eq!(started(&mut st).await.0, "reverse-tilt");
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, MIRROR, -25.0).await;
    assert_eq!(
        s.actuator("seat_position").await.position().await.unwrap(),
        130.0
    );
    b.gear(GEAR_D);
    assert_eq!(started(&mut st).await.0, "reverse-return");
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, MIRROR, 0.0).await;
}
