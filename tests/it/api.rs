//! Profile management over the real bus: round trips and every error.

use crate::common;

use std::collections::HashMap;

use common::*;
use zbus::{ObjectPath, Variant};

const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
const NOT_FOUND: &str = ErrorName::NotFound.as_str();
const ALREADY_EXISTS: &str = ErrorName::AlreadyExists.as_str();
const OUT_OF_RANGE: &str = ErrorName::OutOfRange.as_str();
const LIMIT_REACHED: &str = ErrorName::LimitReached.as_str();
const KEY_IN_USE: &str = ErrorName::KeyInUse.as_str();

#[tokio::test]
async fn create_rename_delete_round_trip() {
    let s = Setup::new().await;
    let m = s.manager().await;
    assert_eq!(m.backend().await.unwrap(), "mock");
    assert_eq!(m.version().await.unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(m.state().await.unwrap(), "idle");
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
    assert_eq!(m.actuators().await.unwrap().len(), 12);

    let path = m.create_profile("Anna").await.unwrap();
    assert_eq!(path.as_str(), "/org/driverprofiled1/profiles/1");
    let p = s.profile(&path).await;
    assert_eq!(p.id().await.unwrap(), "1");
    assert_eq!(p.name().await.unwrap(), "Anna");
    assert!(p.easy_exit().await.unwrap());
    assert!(p.keys().await.unwrap().is_empty());
    // Captured from the current actuator positions (the config's initial values).
    let pos = p.positions().await.unwrap();
    assert_eq!(pos.len(), 12);
    assert_eq!(pos["seat_position"], 130.0);
    assert_eq!(pos["wheel_tilt"], 50.0);

    p.set_name("Anna B").await.unwrap();
    assert_eq!(p.name().await.unwrap(), "Anna B");
    // Changing only the case of one's own name is allowed.
    p.set_name("ANNA B").await.unwrap();
    p.set_easy_exit(false).await.unwrap();
    assert!(!p.easy_exit().await.unwrap());

    let second = m.create_profile("Ben").await.unwrap();
    assert_eq!(second.as_str(), "/org/driverprofiled1/profiles/2");
    assert_eq!(
        m.profiles().await.unwrap(),
        vec![path.clone(), second.clone()]
    );

    p.delete().await.unwrap();
    assert_eq!(m.profiles().await.unwrap(), vec![second.clone()]);
    // Gone: a client still holding the path is told so.
    assert_eq!(err_name(p.name().await), NOT_FOUND);
    // Ids are never reused.
    let third = m.create_profile("Anna").await.unwrap();
    assert_eq!(third.as_str(), "/org/driverprofiled1/profiles/3");
}

#[tokio::test]
async fn profile_name_errors() {
    let s = Setup::new().await;
    let m = s.manager().await;
    assert_eq!(err_name(m.create_profile("").await), INVALID_ARGS);
    assert_eq!(err_name(m.create_profile("   ").await), INVALID_ARGS);
    assert_eq!(
        err_name(m.create_profile(&"x".repeat(65)).await),
        INVALID_ARGS
    );
    assert_eq!(err_name(m.create_profile("tab\there").await), INVALID_ARGS);
    m.create_profile(&"é".repeat(64)).await.unwrap();
    let anna = m.create_profile("Anna").await.unwrap();
    assert_eq!(err_name(m.create_profile("aNNA").await), ALREADY_EXISTS);
    let ben = s.profile(&m.create_profile("Ben").await.unwrap()).await;
    assert_eq!(err_name(ben.set_name("ANNA").await), ALREADY_EXISTS);
    assert_eq!(err_name(ben.set_name("").await), INVALID_ARGS);
    assert_eq!(ben.name().await.unwrap(), "Ben");
    assert_eq!(m.profiles().await.unwrap().len(), 3);
    assert_eq!(s.profile(&anna).await.name().await.unwrap(), "Anna");
}

#[tokio::test]
async fn profile_limit() {
    let s = Setup::new().await;
    let m = s.manager().await;
    for i in 0..10 {
        m.create_profile(&format!("Driver {i}")).await.unwrap();
    }
    assert_eq!(err_name(m.create_profile("Eleventh").await), LIMIT_REACHED);
    assert_eq!(m.profiles().await.unwrap().len(), 10);
}

#[tokio::test]
async fn keys_bind_unbind_and_errors() {
    let s = Setup::new().await;
    let m = s.manager().await;
    let a = s.profile(&m.create_profile("Anna").await.unwrap()).await;
    let b = s.profile(&m.create_profile("Ben").await.unwrap()).await;
    a.bind_key("phone-anna").await.unwrap();
    a.bind_key("fob-anna").await.unwrap();
    // Binding again to the same profile is harmless.
    a.bind_key("fob-anna").await.unwrap();
    assert_eq!(a.keys().await.unwrap(), vec!["phone-anna", "fob-anna"]);
    assert_eq!(err_name(b.bind_key("phone-anna").await), KEY_IN_USE);
    assert_eq!(err_name(b.bind_key("").await), INVALID_ARGS);
    assert_eq!(err_name(b.bind_key(&"k".repeat(65)).await), INVALID_ARGS);
    assert_eq!(err_name(b.bind_key("bad\u{1}key").await), INVALID_ARGS);
    assert_eq!(err_name(b.unbind_key("phone-anna").await), NOT_FOUND);
    a.unbind_key("phone-anna").await.unwrap();
    assert_eq!(a.keys().await.unwrap(), vec!["fob-anna"]);
    b.bind_key("phone-anna").await.unwrap();
    assert!(b.keys().await.unwrap().contains(&"phone-anna".to_string()));

    // 19 keys in all: two are bound, 17 more fit, the 20th does not.
    for i in 0..17 {
        b.bind_key(&format!("k{i}")).await.unwrap();
    }
    assert_eq!(err_name(a.bind_key("one-too-many").await), LIMIT_REACHED);
    assert_eq!(a.keys().await.unwrap(), vec!["fob-anna"]);
    // Deleting a profile frees its keys.
    b.delete().await.unwrap();
    a.bind_key("phone-anna").await.unwrap();
}

#[tokio::test]
async fn set_positions_is_all_or_nothing() {
    let s = Setup::new().await;
    let m = s.manager().await;
    let p = s.profile(&m.create_profile("Anna").await.unwrap()).await;
    let before = p.positions().await.unwrap();

    let mut ok = HashMap::new();
    ok.insert("seat_position", 200.0);
    ok.insert("wheel_tilt", 75.5);
    p.set_positions(ok).await.unwrap();
    let after = p.positions().await.unwrap();
    assert_eq!(after["seat_position"], 200.0);
    assert_eq!(after["wheel_tilt"], 75.5);
    assert_eq!(after["seat_height"], before["seat_height"]);

    for (bad, expect) in [
        (
            vec![("seat_position", 10.0), ("no_such_axis", 1.0)],
            INVALID_ARGS,
        ),
        (
            vec![("seat_position", 10.0), ("wheel_tilt", 101.0)],
            OUT_OF_RANGE,
        ),
        (
            vec![("seat_position", 10.0), ("seat_height", -0.5)],
            OUT_OF_RANGE,
        ),
        (vec![("seat_position", f64::NAN)], INVALID_ARGS),
        (vec![("seat_position", f64::INFINITY)], INVALID_ARGS),
    ] {
        let map: HashMap<&str, f64> = bad.into_iter().collect();
        assert_eq!(err_name(p.set_positions(map).await), expect);
        assert_eq!(
            p.positions().await.unwrap(),
            after,
            "a failed update changed something"
        );
    }
}

#[tokio::test]
async fn not_found_errors() {
    let s = Setup::new().await;
    let m = s.manager().await;
    s.park().await;
    let ghost = ObjectPath::try_from("/org/driverprofiled1/profiles/42").unwrap();
    assert_eq!(err_name(m.select_profile(&ghost).await), NOT_FOUND);
    let elsewhere = ObjectPath::try_from("/org/driverprofiled1").unwrap();
    assert_eq!(err_name(m.select_profile(&elsewhere).await), NOT_FOUND);
    let p = m.create_profile("Anna").await.unwrap();
    s.profile(&p).await.delete().await.unwrap();
    assert_eq!(err_name(m.select_profile(&p).await), NOT_FOUND);
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
}

#[tokio::test]
async fn bad_vehicle_signals_are_rejected_whole() {
    let s = Setup::new().await;
    let v = s.vehicle().await;
    assert_eq!(v.gear().await.unwrap(), "");
    assert!(v.speed_kmh().await.unwrap() < 0.0);
    assert!(!v.interlock().await.unwrap().is_empty());
    let cases: Vec<Vec<(&str, Variant<'_>)>> = vec![
        vec![
            ("gear", Variant::from("P")),
            ("warp_drive", Variant::from(true)),
        ],
        vec![
            ("gear", Variant::from("P")),
            ("speed_kmh", Variant::from(f64::NAN)),
        ],
        vec![
            ("gear", Variant::from("P")),
            ("speed_kmh", Variant::from(f64::INFINITY)),
        ],
        vec![
            ("gear", Variant::from("P")),
            ("speed_kmh", Variant::from(-1.0)),
        ],
        vec![
            ("gear", Variant::from("P")),
            ("speed_kmh", Variant::from(3u32)),
        ],
        vec![("gear", Variant::from("X"))],
        vec![("gear", Variant::from(1i32))],
        vec![
            ("gear", Variant::from("P")),
            ("brake_pressed", Variant::from("yes")),
        ],
    ];
    for c in cases {
        let what = format!("{c:?}");
        assert_eq!(err_name(s.signals(&c).await), INVALID_ARGS, "{what}");
        assert_eq!(v.gear().await.unwrap(), "", "{what} applied a part");
    }
    s.signals(&[
        ("gear", Variant::from("P")),
        ("speed_kmh", Variant::from(0.2)),
        ("manual_control", Variant::from(false)),
    ])
    .await
    .unwrap();
    assert_eq!(v.gear().await.unwrap(), "P");
    assert_eq!(v.speed_kmh().await.unwrap(), 0.2);
    assert_eq!(v.interlock().await.unwrap(), "");
}

#[tokio::test]
async fn actuator_and_mock_errors() {
    let s = Setup::new().await;
    let seat = s.actuator("seat_position").await;
    assert_eq!(seat.unit().await.unwrap(), "mm");
    assert_eq!(
        seat.vss().await.unwrap(),
        "Vehicle.Cabin.Seat.Row1.DriverSide.Position"
    );
    assert_eq!(
        (seat.min().await.unwrap(), seat.max().await.unwrap()),
        (0.0, 260.0)
    );
    s.park().await;
    assert_eq!(err_name(seat.move_to(261.0).await), OUT_OF_RANGE);
    assert_eq!(err_name(seat.move_to(f64::NAN).await), INVALID_ARGS);
    let mock = s.mock().await;
    assert_eq!(err_name(mock.set_speed_factor(0.0).await), INVALID_ARGS);
    assert_eq!(
        err_name(mock.set_speed_factor(f64::NAN).await),
        INVALID_ARGS
    );
    assert_eq!(
        err_name(mock.inject_fault("seat_position", "melt").await),
        INVALID_ARGS
    );
    assert_eq!(
        err_name(mock.inject_fault("nope", "stall").await),
        NOT_FOUND
    );
    assert_eq!(
        err_name(mock.set_position("seat_position", 300.0).await),
        OUT_OF_RANGE
    );
    assert_eq!(seat.position().await.unwrap(), 130.0);
}

#[tokio::test]
async fn object_manager_lists_profiles_and_actuators() {
    let s = Setup::new().await;
    let m = s.manager().await;
    let p = m.create_profile("Anna").await.unwrap();
    let om = s.object_manager().await;
    let objects = om.get_managed_objects().await.unwrap();
    let profile = objects.get(&p).expect("profile managed");
    assert!(profile.contains_key(driverprofiled_api::interface::PROFILE));
    let act = objects
        .keys()
        .filter(|k| k.as_str().starts_with("/org/driverprofiled1/actuators/"))
        .count();
    assert_eq!(act, 12);
}

/// A deleted profile's path answers NotFound for every method and property, also after a
/// restart; the object manager no longer lists it. A path never exported is UnknownObject.
#[tokio::test]
async fn a_stale_profile_path_is_not_found_everywhere() {
    let mut s = Setup::new().await;
    let m = s.manager().await;
    let om = s.object_manager().await;
    let mut removed = om.receive_interfaces_removed().await.unwrap();
    let path = m.create_profile("Anna").await.unwrap();
    let p = s.profile(&path).await;
    p.delete().await.unwrap();
    let sig = next(&mut removed, "InterfacesRemoved").await;
    assert_eq!(sig.args().unwrap().object_path().as_str(), path.as_str());
    assert!(!om.get_managed_objects().await.unwrap().contains_key(&path));

    for _ in 0..2 {
        let p = s.profile(&path).await;
        assert_eq!(err_name(p.delete().await), NOT_FOUND);
        assert_eq!(err_name(p.save_current_positions().await), NOT_FOUND);
        assert_eq!(err_name(p.bind_key("k").await), NOT_FOUND);
        assert_eq!(
            err_name(p.set_positions([("seat_position", 1.0)].into()).await),
            NOT_FOUND
        );
        assert_eq!(err_name(p.name().await), NOT_FOUND);
        assert_eq!(err_name(p.set_name("Ben").await), NOT_FOUND);
        assert_eq!(err_name(p.positions().await), NOT_FOUND);
        let props = s.properties(path.as_str()).await;
        let iface = driverprofiled_api::interface::PROFILE.try_into().unwrap();
        assert!(props.get_all(iface).await.unwrap().is_empty());
        assert_eq!(
            err_name(s.manager().await.select_profile(&path).await),
            NOT_FOUND
        );
        s.restart_daemon(&[]).await;
    }
    assert!(s.manager().await.profiles().await.unwrap().is_empty());

    let never = ObjectPath::try_from("/org/driverprofiled1/profiles/99").unwrap();
    let p = s.profile(&never.into()).await;
    assert_eq!(
        err_name(p.delete().await),
        "org.freedesktop.DBus.Error.UnknownObject"
    );
}

/// Error messages quote at most a short piece of what the client sent.
#[tokio::test]
async fn errors_quote_client_input_briefly() {
    let s = Setup::new().await;
    let huge = "x".repeat(1 << 20);
    let p = s
        .profile(&s.manager().await.create_profile("Anna").await.unwrap())
        .await;
    for r in [
        p.set_positions([(huge.as_str(), 1.0)].into()).await,
        p.unbind_key(&huge).await,
        s.signals(&[(huge.as_str(), Variant::from(true))]).await,
    ] {
        let msg = match &r {
            Err(zbus::Error::MethodError(_, Some(msg), _)) => msg.clone(),
            Err(zbus::Error::FDO(e)) => {
                let e: &dyn zbus::DBusError = e.as_ref();
                e.description().unwrap_or_default().to_string()
            }
            _ => panic!("expected an error reply, got {r:?}"),
        };
        assert!(msg.len() < 200, "{} bytes of message", msg.len());
        assert!(msg.contains("xxxx"), "{msg}");
    }
}

/// A backend that must probe before it knows its positions (the mock with
/// `positions_after_ms`): until it reports, Position reads NaN and nothing can be stored or
/// recalled from them (NotReady); afterwards everything works.
#[tokio::test]
async fn nothing_is_stored_before_the_backend_reports_positions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    // Long enough that the start-up below never races it, even on a loaded machine.
    std::fs::write(&cfg, "[backend.mock]\npositions_after_ms = 5000\n").unwrap();
    let s = Setup::with_args(&["--config", cfg.to_str().unwrap()]).await;
    let m = s.manager().await;
    let last = s.actuator("wheel_extension").await;
    let props = s.properties(&actuator_path("wheel_extension")).await;
    let mut changes = props.receive_properties_changed().await.unwrap();
    assert!(last.position().await.unwrap().is_nan());
    assert_eq!(
        err_name(m.create_profile("Anna").await),
        ErrorName::NotReady.as_str()
    );
    assert!(m.profiles().await.unwrap().is_empty());
    s.park().await;
    assert_eq!(
        err_name(s.actuator("seat_position").await.move_to(100.0).await),
        ErrorName::NotReady.as_str()
    );

    // The backend reports (all axes at once; the last one listed is the last one known).
    let known = loop {
        let c = next(&mut changes, "Position of wheel_extension").await;
        let args = c.args().unwrap();
        if let Some(v) = args.changed_properties().get("Position") {
            break f64::try_from(v).unwrap();
        }
    };
    assert_eq!(known, 50.0);
    assert_eq!(last.position().await.unwrap(), 50.0);
    let p = m.create_profile("Anna").await.unwrap();
    let positions = s.profile(&p).await.positions().await.unwrap();
    assert_eq!(positions.len(), 12);
    assert_eq!(positions["seat_position"], 130.0);
}
