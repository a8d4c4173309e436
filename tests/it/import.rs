//! Manager.ImportProfiles against the real daemon: all or nothing, in one write.

use crate::common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use driverprofiled_api::ImportedProfile;
use zbus::OwnedObjectPath;
use zbus::proxy::CacheProperties;

/// The Manager, its properties read from the daemon on every call.
async fn manager(s: &Setup) -> ManagerProxy<'static> {
    ManagerProxy::builder(&s.conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap()
}

fn item(name: &str, positions: &[(&str, f64)], keys: &[&str]) -> ImportedProfile {
    (
        name.to_string(),
        true,
        positions.iter().map(|(a, p)| (a.to_string(), *p)).collect(),
        keys.iter().map(|k| k.to_string()).collect(),
    )
}

/// Everything a client can see of the profiles, and the store's bytes.
async fn snapshot(s: &Setup) -> (String, String, Vec<u8>) {
    let objects: BTreeMap<_, _> = s
        .object_manager()
        .await
        .get_managed_objects()
        .await
        .unwrap()
        .into_iter()
        .map(|(path, ifaces)| {
            let ifaces: BTreeMap<_, BTreeMap<_, _>> = ifaces
                .into_iter()
                .map(|(i, props)| (i.to_string(), props.into_iter().collect()))
                .collect();
            (path.to_string(), format!("{ifaces:?}"))
        })
        .collect();
    let all = s
        .properties(ROOT)
        .await
        .get_all("org.driverprofiled1.Manager".try_into().unwrap())
        .await
        .unwrap();
    let manager: BTreeMap<_, _> = all
        .into_iter()
        .filter(|(k, _)| k == "Profiles" || k == "ActiveProfile")
        .collect();
    let bytes = std::fs::read(s.state.path().join("profiles.toml")).unwrap_or_default();
    (format!("{objects:?}"), format!("{manager:?}"), bytes)
}

async fn error(r: zbus::Result<Vec<OwnedObjectPath>>) -> (String, String) {
    match r {
        Err(zbus::Error::MethodError(name, Some(msg), _)) => (name.to_string(), msg),
        Err(zbus::Error::FDO(e)) => {
            let e: &dyn zbus::DBusError = e.as_ref();
            (
                e.name().to_string(),
                e.description().unwrap_or("").to_string(),
            )
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Two profiles, Anna (active, key fob-a) and Ben.
async fn two_profiles(s: &Setup) -> (OwnedObjectPath, OwnedObjectPath) {
    let m = manager(s).await;
    let a = m.create_profile("Anna").await.unwrap();
    let b = m.create_profile("Ben").await.unwrap();
    let pa = s.profile(&a).await;
    pa.bind_key("fob-a").await.unwrap();
    pa.set_positions(HashMap::from([("seat_position", 100.0)]))
        .await
        .unwrap();
    s.park().await;
    // Let the recall finish: the tests compare snapshots that include the positions.
    let mut fin = m.receive_motion_finished().await.unwrap();
    m.select_profile(&a).await.unwrap();
    assert_eq!(finished(&mut fin).await.1, "completed");
    (a, b)
}

#[tokio::test]
async fn replace_deletes_every_profile_and_merge_updates_by_name() {
    let s = Setup::new().await;
    let m = manager(&s).await;
    let (a, b) = two_profiles(&s).await;
    let om = s.object_manager().await;
    let mut removed = om.receive_interfaces_removed().await.unwrap();

    let paths = m
        .import_profiles(
            &[
                item("Cleo", &[("seat_position", 50.0)], &["fob-a"]),
                item("anna", &[("wheel_tilt", 20.0)], &[]),
            ],
            "replace",
            false,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        ids,
        [
            "/org/driverprofiled1/profiles/3",
            "/org/driverprofiled1/profiles/4"
        ],
        "new ids, never reused"
    );
    assert_eq!(m.profiles().await.unwrap(), paths);
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
    // The old ones are gone as a Delete would make them go.
    let mut gone = Vec::new();
    for _ in 0..2 {
        let sig = next(&mut removed, "InterfacesRemoved").await;
        gone.push(sig.args().unwrap().object_path().to_string());
    }
    gone.sort();
    assert_eq!(gone, [a.to_string(), b.to_string()]);
    for old in [&a, &b] {
        let r = s.profile(old).await.name().await;
        assert_eq!(err_name(r), ErrorName::NotFound.as_str());
    }
    let objects = om.get_managed_objects().await.unwrap();
    assert!(!objects.keys().any(|p| p == &a || p == &b));
    let cleo = s.profile(&paths[0]).await;
    assert_eq!(cleo.keys().await.unwrap(), ["fob-a"]);
    assert_eq!(
        cleo.positions().await.unwrap(),
        HashMap::from([("seat_position".to_string(), 50.0)])
    );
    assert_eq!(s.profile(&paths[1]).await.name().await.unwrap(), "anna");

    // Merge: CLEO is Cleo, updated in place; Dora is new; anna is kept.
    let mut cleo_new = item("CLEO", &[("seat_height", 30.0)], &[]);
    cleo_new.1 = false;
    let merged = m
        .import_profiles(&[cleo_new, item("Dora", &[], &["fob-d"])], "merge", false)
        .await
        .unwrap();
    assert_eq!(merged[0], paths[0], "same name ignoring case: same id");
    assert_eq!(merged[1].as_str(), "/org/driverprofiled1/profiles/5");
    assert_eq!(
        m.profiles().await.unwrap(),
        [paths[0].clone(), paths[1].clone(), merged[1].clone()]
    );
    assert_eq!(cleo.name().await.unwrap(), "CLEO");
    assert!(!cleo.easy_exit().await.unwrap());
    assert!(cleo.keys().await.unwrap().is_empty());
    assert_eq!(
        cleo.positions().await.unwrap(),
        HashMap::from([("seat_height".to_string(), 30.0)])
    );
    let text = std::fs::read_to_string(s.state.path().join("profiles.toml")).unwrap();
    assert!(
        text.contains("\"Dora\"") && text.contains("\"CLEO\""),
        "{text}"
    );
}

#[tokio::test]
async fn an_omitted_axis_is_not_moved_on_recall() {
    let s = Setup::new().await;
    let m = manager(&s).await;
    s.mock().await.set_speed_factor(100.0).await.unwrap();
    s.park().await;
    let tilt = s.actuator("wheel_tilt").await.position().await.unwrap();
    let seat = s.actuator("seat_position").await.position().await.unwrap();
    let to = if seat > 150.0 {
        seat - 60.0
    } else {
        seat + 60.0
    };
    let paths = m
        .import_profiles(
            &[item("Anna", &[("seat_position", to)], &[])],
            "merge",
            false,
        )
        .await
        .unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    m.select_profile(&paths[0]).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert_position(&s, "seat_position", to).await;
    let now = s.actuator("wheel_tilt").await.position().await.unwrap();
    assert_eq!(
        now, tilt,
        "wheel_tilt was not in the profile and must not move"
    );
}

#[tokio::test]
async fn a_dry_run_checks_everything_and_changes_nothing() {
    let s = Setup::new().await;
    let m = manager(&s).await;
    two_profiles(&s).await;
    let before = snapshot(&s).await;
    let r = m
        .import_profiles(
            &[item("Cleo", &[("seat_position", 10.0)], &[])],
            "replace",
            true,
        )
        .await
        .unwrap();
    assert!(r.is_empty());
    assert_eq!(snapshot(&s).await, before);
    // A dry run finds what the real import would.
    let (name, _) = error(
        m.import_profiles(&[item("Cleo", &[], &["fob-a"])], "merge", true)
            .await,
    )
    .await;
    assert_eq!(name, ErrorName::KeyInUse.as_str());
    assert_eq!(snapshot(&s).await, before);
}

#[tokio::test]
async fn positions_out_of_range_are_all_listed_and_nothing_changes() {
    let s = Setup::new().await;
    let m = manager(&s).await;
    two_profiles(&s).await;
    let before = snapshot(&s).await;
    let (name, msg) = error(
        m.import_profiles(
            &[
                item(
                    "Cleo",
                    &[("seat_position", 400.0), ("wheel_tilt", 50.0)],
                    &[],
                ),
                item("Dora", &[("seat_height", -5.0)], &[]),
                item("Emil", &[("wheel_tilt", 101.0)], &[]),
            ],
            "replace",
            false,
        )
        .await,
    )
    .await;
    assert_eq!(name, ErrorName::OutOfRange.as_str(), "{msg}");
    assert!(msg.starts_with("3 problems: "), "{msg}");
    for part in [
        "#1 \"Cleo\": seat_position: 400 is outside",
        "#2 \"Dora\": seat_height: -5 is outside",
        "#3 \"Emil\": wheel_tilt: 101 is outside",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    assert_eq!(
        snapshot(&s).await,
        before,
        "nothing clamped, nothing imported"
    );
}

#[tokio::test]
async fn bad_input_is_refused_whole() {
    let s = Setup::new().await;
    let m = manager(&s).await;
    two_profiles(&s).await;
    let before = snapshot(&s).await;

    // A name twice (ignoring case).
    let (name, msg) = error(
        m.import_profiles(
            &[item("Cleo", &[], &[]), item("CLEO", &[], &[])],
            "merge",
            false,
        )
        .await,
    )
    .await;
    assert_eq!(name, ErrorName::InvalidArgs.as_str());
    assert!(
        msg.contains("#2 \"CLEO\": the name is given twice"),
        "{msg}"
    );

    // An unknown mode.
    let (name, msg) = error(
        m.import_profiles(&[item("Cleo", &[], &[])], "append", false)
            .await,
    )
    .await;
    assert_eq!(name, ErrorName::InvalidArgs.as_str());
    assert!(msg.contains("unknown mode \"append\""), "{msg}");

    // An unknown axis, a value that is not a number.
    let (name, msg) = error(
        m.import_profiles(
            &[item(
                "Cleo",
                &[("lumbar", 1.0), ("seat_position", f64::NAN)],
                &[],
            )],
            "merge",
            false,
        )
        .await,
    )
    .await;
    assert_eq!(name, ErrorName::InvalidArgs.as_str());
    assert!(msg.contains("unknown axis \"lumbar\""), "{msg}");
    assert!(msg.contains("seat_position: NaN is not a number"), "{msg}");

    // A huge name: quoted, at most 64 characters of it.
    let huge = "x".repeat(100_000);
    let (name, msg) = error(
        m.import_profiles(&[item(&huge, &[], &[])], "replace", false)
            .await,
    )
    .await;
    assert_eq!(name, ErrorName::InvalidArgs.as_str());
    assert!(msg.contains(&"x".repeat(64)), "{msg}");
    assert!(
        !msg.contains(&"x".repeat(65)),
        "quotes too much: {} bytes",
        msg.len()
    );
    assert!(msg.len() < 400, "{msg}");

    // 1000 profiles: more than max_profiles (10).
    let many: Vec<_> = (0..1000)
        .map(|i| {
            item(
                &format!("p{i}"),
                &[("seat_position", 100.0)],
                &[&format!("k{i}")],
            )
        })
        .collect();
    let (name, msg) = error(m.import_profiles(&many, "replace", false).await).await;
    assert_eq!(name, ErrorName::LimitReached.as_str());
    assert!(msg.contains("1000 profiles; at most 10"), "{msg}");
    assert!(msg.contains("1000 keys; at most 19"), "{msg}");

    assert_eq!(
        snapshot(&s).await,
        before,
        "every refused import changed nothing"
    );
}

#[tokio::test]
async fn a_storage_failure_changes_nothing_in_memory_either() {
    let s = Setup::new().await;
    let m = manager(&s).await;
    two_profiles(&s).await;
    let before = snapshot(&s).await;
    // The store cannot be replaced: a directory where the temporary file goes.
    let blocker = s.state.path().join(".profiles.toml.tmp");
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("x"), b"").unwrap();
    let (name, msg) = error(
        m.import_profiles(&[item("Cleo", &[], &[])], "replace", false)
            .await,
    )
    .await;
    assert_eq!(name, ErrorName::Failed.as_str(), "{msg}");
    assert_eq!(snapshot(&s).await, before);
    assert!(!m.storage_error().await.unwrap().is_empty());
    std::fs::remove_dir_all(&blocker).unwrap();
    let done = m
        .import_profiles(&[item("Cleo", &[], &[])], "replace", false)
        .await
        .unwrap();
    assert_eq!(m.profiles().await.unwrap(), done);
    assert_eq!(m.storage_error().await.unwrap(), "");
}

/// ImportProfilesEx: each profile's fields by name. The settings ImportProfiles cannot carry
/// come along; an unknown field, a field of the wrong type or a reverse position of an axis
/// that does not tilt in reverse is InvalidArgs, and nothing changes.
#[tokio::test]
async fn import_ex_carries_every_setting_and_refuses_what_it_cannot_honour() {
    use driverprofiled_api::import_field as f;
    use zbus::wire::{OwnedVariant, Variant};
    let s = Setup::new().await;
    let m = manager(&s).await;
    two_profiles(&s).await;
    let before = snapshot(&s).await;
    let fields = |extra: &[(&str, Variant<'static>)]| -> HashMap<String, OwnedVariant> {
        let mut map = HashMap::from([
            (
                f::POSITIONS.to_string(),
                Variant::from(HashMap::from([("seat_position", 120.0)])),
            ),
            (f::KEYS.to_string(), Variant::from(vec!["fob-c"])),
        ]);
        map.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        (map.into_iter())
            .map(|(k, v)| (k, OwnedVariant::try_from(v).unwrap()))
            .collect()
    };
    let cleo = |extra: &[(&str, Variant<'static>)]| vec![("Cleo".to_string(), fields(extra))];
    for (extra, want) in [
        (
            vec![("colour", Variant::from("red"))],
            "#1 \"Cleo\": \"colour\": unknown field",
        ),
        (
            vec![(f::AUTO_SAVE, Variant::from("yes"))],
            "#1 \"Cleo\": \"auto_save\" takes type b, not \"s\"",
        ),
        (
            vec![(
                f::REVERSE_TILT,
                Variant::from(HashMap::from([("seat_position", 1.0)])),
            )],
            "reverse_tilt: seat_position does not tilt in reverse",
        ),
    ] {
        let (name, msg) = error(m.import_profiles_ex(&cleo(&extra), "merge", false).await).await;
        assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs", "{msg}");
        assert!(msg.contains(want), "{msg}");
        assert!(snapshot(&s).await == before, "{want}: something changed");
    }
    let tilt = HashMap::from([("mirror_passenger_tilt", -40.0)]);
    let settings = [
        (f::AUTO_SAVE, Variant::from(true)),
        (f::REVERSE_TILT_ENABLED, Variant::from(false)),
        (f::REVERSE_TILT, Variant::from(tilt.clone())),
    ];
    let paths = m
        .import_profiles_ex(&cleo(&settings), "merge", false)
        .await
        .unwrap();
    let p = s.profile(&paths[0]).await;
    assert!(p.auto_save().await.unwrap());
    assert!(!p.reverse_tilt_enabled().await.unwrap());
    let want: HashMap<String, f64> = tilt.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    assert_eq!(p.reverse_tilt().await.unwrap(), want);
    assert_eq!(p.keys().await.unwrap(), ["fob-c"]);
    assert_eq!(p.positions().await.unwrap()["seat_position"], 120.0);
    // A merge giving one field only changes that field: the rest is kept.
    let only = HashMap::from([(
        f::AUTO_SAVE.to_string(),
        OwnedVariant::try_from(Variant::from(false)).unwrap(),
    )]);
    let again = m
        .import_profiles_ex(&[("cleo".to_string(), only)], "merge", false)
        .await
        .unwrap();
    assert_eq!(again, paths, "the same profile, updated in place");
    assert!(!p.auto_save().await.unwrap());
    assert_eq!(p.keys().await.unwrap(), ["fob-c"]);
    assert_eq!(p.positions().await.unwrap()["seat_position"], 120.0);
    assert!(!p.reverse_tilt_enabled().await.unwrap());
    assert_eq!(p.reverse_tilt().await.unwrap(), want);
}
