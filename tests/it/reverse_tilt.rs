//! Reverse tilt-down over the real bus with the mock actuators, and through the KUKSA
//! databroker: the gear into R tilts the passenger mirror (and nothing else), leaving R brings
//! it back after the delay, and a restart while tilted does not forget it. The rules (the
//! delay, R -> D -> R, speed, hand, Stop, inhibitors, the seat never moving outside P) are
//! tested on the core's fake clock in `src/core/tests.rs`.

use crate::common;

use common::*;
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
