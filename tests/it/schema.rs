//! The profile store across versions, with the real daemon: an older schema is migrated with
//! a backup, a newer one is served read-only or left untouched, units that differ stop the
//! store from being served, and only a truly corrupt file is moved aside.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use zbus::proxy::CacheProperties;

const V1: &str = "schema = 1\nnext_id = 3\nactive = \"2\"\n\
    [[profile]]\nid = \"2\"\nname = \"Anna\"\nkeys = [\"fob-1\"]\n\
    [profile.positions]\nseat_position = 120.0\n";

/// Written by a "future" daemon: a field and a table this one does not know.
const V5: &str = "schema = 5\nnext_id = 3\nfleet_sync = \"2027-01-01\"\n\
    [units]\nseat_position = \"mm\"\n\
    [[profile]]\nid = \"2\"\nname = \"Anna\"\nkeys = [\"fob-1\"]\n\
    [profile.positions]\nseat_position = 120.0\n\
    [profile.massage]\nprogram = \"wave\"\n";

/// Bus + daemon on a state directory holding `profiles.toml` = `text`.
async fn start_with_store(text: &str) -> Setup {
    let bus = Bus::start();
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("profiles.toml"), text).unwrap();
    let conn = bus.connect().await;
    let daemon = Daemon::start(&conn, &bus, state.path(), &[]).await;
    Setup {
        bus,
        state,
        conn,
        daemon,
    }
}

async fn manager(s: &Setup) -> ManagerProxy<'static> {
    ManagerProxy::builder(&s.conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap()
}

fn store_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("profiles.toml")).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn schema_1_is_migrated_and_the_old_file_kept() {
    let s = start_with_store(V1).await;
    let m = manager(&s).await;
    let backup = s.state.path().join("profiles.toml.schema1.bak");
    assert_eq!(
        m.store_status().await.unwrap(),
        format!(
            "migrated from schema 1; the old file is kept as {}",
            backup.display()
        )
    );
    assert_eq!(std::fs::read(&backup).unwrap(), V1.as_bytes());
    let text = String::from_utf8(store_bytes(s.state.path())).unwrap();
    assert!(text.contains("schema = 2\n"), "{text}");
    assert!(text.contains("[units]"), "{text}");
    assert!(s.daemon.stderr().contains("migrated from schema 1"));
    // The profiles are served, and writable.
    let p = m.profiles().await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(s.profile(&p[0]).await.name().await.unwrap(), "Anna");
    assert_eq!(m.active_profile().await.unwrap(), p[0]);
    assert_eq!(m.storage_error().await.unwrap(), "");
    m.create_profile("Ben").await.unwrap();
    assert_eq!(std::fs::read(&backup).unwrap(), V1.as_bytes());
}

#[tokio::test]
async fn a_newer_schema_is_served_read_only_and_never_written() {
    let mut s = start_with_store(V5).await;
    let m = manager(&s).await;
    let status = m.store_status().await.unwrap();
    assert!(
        status.contains("newer driverprofiled (schema 5)"),
        "{status}"
    );
    assert!(status.contains("read-only"), "{status}");
    let why = m.storage_error().await.unwrap();
    assert!(why.starts_with("read-only: "), "{why}");
    assert!(
        why.contains(
            "written by a newer driverprofiled (schema 5); this one reads schemas up to 4"
        ),
        "{why}"
    );
    assert!(s.daemon.stderr().contains("read-only"));

    // Listed and recallable ...
    let p = m.profiles().await.unwrap();
    assert_eq!(p.len(), 1);
    let anna = s.profile(&p[0]).await;
    assert_eq!(anna.keys().await.unwrap(), ["fob-1"]);
    s.mock().await.set_speed_factor(100.0).await.unwrap();
    s.park().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    m.select_profile(&p[0]).await.unwrap();
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, "seat_position", 120.0).await;
    assert_eq!(m.active_profile().await.unwrap(), p[0]);

    // ... but every change fails, and changes nothing.
    let failed = ErrorName::Failed.as_str();
    assert_eq!(err_name(m.create_profile("Ben").await), failed);
    assert_eq!(err_name(anna.set_name("Anne").await), failed);
    assert_eq!(err_name(anna.bind_key("fob-2").await), failed);
    assert_eq!(err_name(anna.delete().await), failed);
    let positions = HashMap::from([("seat_position", 100.0)]);
    assert_eq!(err_name(anna.set_positions(positions).await), failed);
    let import = [("Ben".to_string(), true, HashMap::new(), vec![])];
    assert_eq!(
        err_name(m.import_profiles(&import, "merge", false).await),
        failed
    );
    assert_eq!(
        err_name(m.import_profiles(&import, "merge", true).await),
        failed
    );
    assert_eq!(m.profiles().await.unwrap(), p);
    assert_eq!(anna.name().await.unwrap(), "Anna");
    assert_eq!(store_bytes(s.state.path()), V5.as_bytes());
    assert_eq!(
        m.storage_error().await.unwrap(),
        why,
        "still read-only, nothing else"
    );

    s.stop_daemon();
    assert_eq!(store_bytes(s.state.path()), V5.as_bytes());
    assert!(
        !names(s.state.path())
            .iter()
            .any(|n| n.starts_with("profiles.toml.")),
        "nothing renamed or copied: {:?}",
        names(s.state.path())
    );
}

#[tokio::test]
async fn an_unreadable_newer_schema_is_left_untouched_and_not_served() {
    // A newer schema whose next_id this daemon cannot read.
    let text = V5.replace("next_id = 3", "next_id = { seq = 3 }");
    let mut s = start_with_store(&text).await;
    let m = manager(&s).await;
    assert!(m.profiles().await.unwrap().is_empty());
    let status = m.store_status().await.unwrap();
    assert!(
        status.contains("newer driverprofiled (schema 5)"),
        "{status}"
    );
    assert!(status.contains("cannot read it"), "{status}");
    assert!(status.contains("leaving it untouched"), "{status}");
    let why = m.storage_error().await.unwrap();
    assert!(why.contains("schema 5"), "{why}");
    assert_eq!(
        err_name(m.create_profile("Ben").await),
        ErrorName::Failed.as_str()
    );
    s.stop_daemon();
    assert_eq!(store_bytes(s.state.path()), text.as_bytes());
    assert_eq!(names(s.state.path()), ["profiles.toml"]);
}

#[tokio::test]
async fn a_unit_that_differs_from_the_config_stops_the_store_from_being_served() {
    let text = V5
        .replace("schema = 5", "schema = 2")
        .replace("fleet_sync = \"2027-01-01\"\n", "")
        .replace("[profile.massage]\nprogram = \"wave\"\n", "")
        .replace("seat_position = \"mm\"", "seat_position = \"deg\"");
    let mut s = start_with_store(&text).await;
    let m = manager(&s).await;
    assert!(m.profiles().await.unwrap().is_empty(), "not served");
    for what in [
        m.store_status().await.unwrap(),
        m.storage_error().await.unwrap(),
    ] {
        assert!(
            what.contains("seat_position in deg but the config says mm"),
            "{what}"
        );
    }
    assert_eq!(
        err_name(m.create_profile("Ben").await),
        ErrorName::Failed.as_str()
    );
    s.stop_daemon();
    assert_eq!(store_bytes(s.state.path()), text.as_bytes());
}

#[tokio::test]
async fn a_corrupt_store_is_moved_aside_and_status_says_where() {
    let garbage = "schema = 2\nnext_id = 3\n[[profile]\nid = \"1\"";
    let s = start_with_store(garbage).await;
    let m = manager(&s).await;
    assert!(m.profiles().await.unwrap().is_empty());
    let status = m.store_status().await.unwrap();
    let aside = status
        .rsplit(" was moved to ")
        .next()
        .filter(|p| p.contains("profiles.toml.corrupt-"))
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(std::fs::read(aside).unwrap(), garbage.as_bytes());
    assert!(status.contains("profiles.toml:3:"), "{status}");
    // The daemon writes a new store; the old one stays where it went.
    assert_eq!(m.storage_error().await.unwrap(), "");
    m.create_profile("Ben").await.unwrap();
    assert_eq!(std::fs::read(aside).unwrap(), garbage.as_bytes());
}

const MIRRORS: [&str; 4] = [
    "mirror_driver_tilt",
    "mirror_driver_yaw",
    "mirror_passenger_tilt",
    "mirror_passenger_yaw",
];

/// Written before the mirrors existed: the seat's and the column's eight axes only.
const BEFORE_MIRRORS: &str = "schema = 2\nnext_id = 3\n\
    [units]\nseat_position = \"mm\"\nseat_height = \"mm\"\nseat_tilt = \"deg\"\n\
    backrest_recline = \"deg\"\nheadrest_height = \"mm\"\nheadrest_angle = \"deg\"\n\
    wheel_tilt = \"percent\"\nwheel_extension = \"percent\"\n\
    [[profile]]\nid = \"2\"\nname = \"Anna\"\nkeys = [\"fob-1\"]\n\
    [profile.positions]\nseat_position = 200.0\nwheel_tilt = 70.0\n";

#[tokio::test]
async fn a_store_from_before_the_mirrors_checks_clean_and_recalls_without_moving_them() {
    let s = start_with_store(BEFORE_MIRRORS).await;
    let cfg = driverprofiled::config::builtin().unwrap();
    let report = driverprofiled::persist::check_state(s.state.path(), Some(&cfg)).unwrap();
    assert_eq!(
        report.problems,
        Vec::<String>::new(),
        "no mirror positions is no problem"
    );
    assert_eq!(report.profiles, 1);
    let m = manager(&s).await;
    let p = m.profiles().await.unwrap();
    let positions = s.profile(&p[0]).await.positions().await.unwrap();
    assert!(
        !positions.keys().any(|a| a.starts_with("mirror_")),
        "{positions:?}"
    );
    s.mock().await.set_speed_factor(50.0).await.unwrap();
    // The mirrors somewhere else than where they start: a recall that drove an axis the
    // profile lacks to its initial position would show.
    for axis in MIRRORS {
        s.mock().await.set_position(axis, -40.0).await.unwrap();
        wait_prop(&s, axis, "Position", |v: &f64| *v == -40.0).await;
    }
    s.park().await;
    let mut fin = recall(&s, &p[0]).await;
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert_position(&s, "seat_position", 200.0).await;
    assert_position(&s, "wheel_tilt", 70.0).await;
    for axis in MIRRORS {
        let a = s.actuator(axis).await;
        assert_eq!(a.position().await.unwrap(), -40.0, "{axis} was moved");
        assert!(!a.moving().await.unwrap(), "{axis}");
    }
}
