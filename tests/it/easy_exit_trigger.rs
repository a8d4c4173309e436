//! What triggers easy exit on the real daemon: the gear going into P (or the belt being
//! unbuckled in P, with `park_and_unbuckle`), never a change of speed alone. The rules in
//! detail are tested on the fake clock in `src/core/easy_exit.rs`.

use crate::common;

use common::*;
use zbus::Variant;

#[tokio::test]
async fn speed_blips_in_park_never_retract_again() {
    let (s, _d) =
        setup(&driverprofiled::config::DEFAULT_CONFIG.replace("stall_ms = 200", "stall_ms = 2000"))
            .await;
    let m = s.manager().await;
    let mut started = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    s.park().await;
    s.signals(&[
        ("gear", Variant::from("D")),
        ("driver_seat_occupied", Variant::from(true)),
    ])
    .await
    .unwrap();
    s.signals(&[("gear", Variant::from("P"))]).await.unwrap();
    assert_eq!(common::started(&mut started).await.0, "easy-exit");
    assert_eq!(
        finished(&mut fin).await,
        ("easy-exit".into(), "completed".into())
    );
    s.signals(&[("brake_pressed", Variant::from(true))])
        .await
        .unwrap();
    assert_eq!(common::started(&mut started).await.0, "restore");
    assert_eq!(
        finished(&mut fin).await,
        ("restore".into(), "completed".into())
    );

    // Still in P with the driver seated: speed noise, then an empty seat and more noise.
    for (k, v) in [
        ("speed_kmh", Variant::from(0.6)),
        ("speed_kmh", Variant::from(0.0)),
        ("driver_seat_occupied", Variant::from(false)),
        ("speed_kmh", Variant::from(3.0)),
        ("speed_kmh", Variant::from(0.0)),
    ] {
        s.signals(&[(k, v)]).await.unwrap();
        // The reply follows whatever the signals started.
        assert_eq!(m.state().await.unwrap(), "idle", "after {k}");
        assert!(!m.easy_exit_active().await.unwrap(), "after {k}");
    }
    // Nothing was started meanwhile: the next MotionStarted is the manual move below.
    s.actuator("seat_position")
        .await
        .move_to(10.0)
        .await
        .unwrap();
    assert_eq!(common::started(&mut started).await.0, "manual");
}
