//! Inhibitors over the real bus: `Manager.Inhibit` hands out a descriptor, `Inhibitors` lists
//! who holds one, motion is refused (Error.Inhibited) or halted (outcome "inhibited") while
//! one is held, and the inhibitor ends when the descriptor closes — also when its holder is
//! killed with SIGKILL. The rules for every motion source (key approach, retract, restore,
//! nothing replayed afterwards) are scenario-tested on the core's fake clock in
//! `src/core/tests.rs`.

use crate::common;

use std::collections::HashMap;
use std::process::Stdio;

use common::*;
use zbus::proxy::CacheProperties;
use zbus::{OwnedObjectPath, Variant};

const INHIBITED: &str = ErrorName::Inhibited.as_str();

/// (who, why, uid, pid), as `Manager.Inhibitors` lists them.
type Inhibitors = Vec<(String, String, u32, u32)>;

/// A manager proxy that reads every property from the daemon.
async fn uncached(s: &Setup) -> ManagerProxy<'static> {
    ManagerProxy::builder(&s.conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// Wait, through `Inhibitors`' PropertiesChanged, until the list satisfies `done`; the list.
async fn inhibitors_until(s: &Setup, what: &str, done: impl Fn(&Inhibitors) -> bool) -> Inhibitors {
    let m = ManagerProxy::builder(&s.conn)
        .cache_properties(CacheProperties::Lazily)
        .build()
        .await
        .unwrap();
    // Subscribed before the first read: no change can fall in between.
    let mut changes = m.receive_inhibitors_changed().await;
    let now = uncached(s).await.inhibitors().await.unwrap();
    if done(&now) {
        return now;
    }
    loop {
        let list = next(&mut changes, what).await.get().await.unwrap();
        if done(&list) {
            return list;
        }
    }
}

/// Anna's profile: every axis somewhere else than where it starts.
async fn anna(s: &Setup) -> OwnedObjectPath {
    let path = s.manager().await.create_profile("Anna").await.unwrap();
    let positions: HashMap<&str, f64> = [
        ("seat_position", 180.0),
        ("seat_height", 45.0),
        ("wheel_tilt", 70.0),
    ]
    .into_iter()
    .collect();
    s.profile(&path)
        .await
        .set_positions(positions)
        .await
        .unwrap();
    path
}

fn own_uid() -> u32 {
    // SAFETY: getuid cannot fail and has no preconditions.
    unsafe { libc::getuid() }
}

#[tokio::test]
async fn inhibit_lists_the_caller_and_refuses_motion_until_the_fd_closes() {
    let (s, _d) = setup(&test_config(&[])).await;
    let path = anna(&s).await;
    s.park().await;
    let m = uncached(&s).await;
    let mut started = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    assert_eq!(m.inhibitors().await.unwrap(), []);

    let fd = m.inhibit("inhibit-test", "checking the fd").await.unwrap();
    // The reply comes after the daemon published the new list.
    let who = (
        "inhibit-test".to_string(),
        "checking the fd".to_string(),
        own_uid(),
        std::process::id(),
    );
    assert_eq!(m.inhibitors().await.unwrap(), std::slice::from_ref(&who));

    // Motion is refused, and the message says who inhibits.
    let e = m.select_profile(&path).await.unwrap_err();
    assert_eq!(ErrorName::of(&e).as_deref(), Some(INHIBITED), "{e}");
    assert!(e.to_string().contains("inhibit-test"), "{e}");
    let seat = s.actuator("seat_position").await;
    assert_eq!(err_name(seat.move_to(100.0).await), INHIBITED);
    assert_eq!(m.active_profile().await.unwrap().as_str(), "/");
    assert_eq!(seat.position().await.unwrap(), 130.0);
    // Stop still works, and so do edits and imports, which move nothing (an update script
    // imports under its own inhibitor).
    m.stop().await.unwrap();
    let ben: driverprofiled_api::ImportedProfile = (
        "Ben".into(),
        true,
        HashMap::from([("seat_position".to_string(), 150.0)]),
        vec![],
    );
    let imported = m.import_profiles(&[ben], "merge", false).await.unwrap();
    assert_eq!(imported.len(), 1);
    s.profile(&imported[0])
        .await
        .set_name("Benno")
        .await
        .unwrap();
    assert_eq!(m.profiles().await.unwrap().len(), 2);

    // A second inhibitor: listed after the first.
    let fd2 = m.inhibit("second", "two at once").await.unwrap();
    let list = m.inhibitors().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], who);
    assert_eq!(list[1].0, "second");

    // Closing the first descriptor ends the first inhibitor only.
    drop(fd);
    let list = inhibitors_until(&s, "the first inhibitor gone", |l| l.len() == 1).await;
    assert_eq!(list[0].0, "second");
    assert_eq!(err_name(m.select_profile(&path).await), INHIBITED);
    drop(fd2);
    inhibitors_until(&s, "no inhibitor", |l| l.is_empty()).await;

    // Motion works again; nothing was started meanwhile.
    m.select_profile(&path).await.unwrap();
    assert_eq!(
        common::started(&mut started).await,
        ("recall".into(), path.to_string())
    );
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert_position(&s, "seat_position", 180.0).await;
}

#[tokio::test]
async fn data_written_into_the_fd_is_drained_and_does_not_release() {
    let (s, _d) = setup(&test_config(&[])).await;
    let path = anna(&s).await;
    s.park().await;
    let m = uncached(&s).await;
    let fd = m.inhibit("chatty", "writes into its fd").await.unwrap();
    // 1 MiB through a pipe of 64 KiB (the write end blocks): it completes only as the daemon
    // reads, so the daemon has seen data many times over when it does.
    let write = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::from(std::os::fd::OwnedFd::from(fd));
        std::io::Write::write_all(&mut file, &vec![b'x'; 1 << 20]).map(|()| file)
    });
    let file = tokio::time::timeout(TIMEOUT, write)
        .await
        .expect("the daemon does not drain the pipe")
        .unwrap()
        .unwrap();
    assert_eq!(m.inhibitors().await.unwrap().len(), 1);
    assert_eq!(err_name(m.select_profile(&path).await), INHIBITED);
    drop(file);
    inhibitors_until(&s, "no inhibitor", |l| l.is_empty()).await;
    m.select_profile(&path).await.unwrap();
}

#[tokio::test]
async fn an_inhibitor_halts_the_motion_in_progress() {
    let (s, _d) = setup(&test_config(&[])).await;
    let path = anna(&s).await;
    s.park().await;
    // Real speed: the seat needs 2 s for its 50 mm.
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    let m = uncached(&s).await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    let seat = ActuatorProxy::builder(&s.conn)
        .path(actuator_path("seat_position"))
        .build()
        .await
        .unwrap();
    let mut moved = seat.receive_position_changed().await;
    m.select_profile(&path).await.unwrap();
    // Under way.
    loop {
        let p = next(&mut moved, "seat Position").await.get().await.unwrap();
        if p != 130.0 {
            break;
        }
    }
    let _fd = m.inhibit("inhibit-test", "halt it").await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "inhibited".into())
    );
    // Properties are published before the signal.
    for axis in ["seat_position", "seat_height", "wheel_tilt"] {
        assert!(!s.actuator(axis).await.moving().await.unwrap(), "{axis}");
    }
    assert_eq!(m.state().await.unwrap(), "idle");
    assert_halted_between(&s, "seat_position", 130.0, 180.0, 25.0).await;
}

#[tokio::test]
async fn easy_exit_does_not_retract_while_inhibited() {
    let (s, _d) = setup(&test_config(&[])).await;
    anna(&s).await;
    s.park().await;
    let m = uncached(&s).await;
    let mut started = m.receive_motion_started().await.unwrap();
    let mut fin = m.receive_motion_finished().await.unwrap();
    // Driving with the driver seated: the next P is a real transition into Park.
    s.signals(&[
        ("gear", Variant::from("D")),
        ("driver_seat_occupied", Variant::from(true)),
    ])
    .await
    .unwrap();
    let fd = m.inhibit("inhibit-test", "no easy exit").await.unwrap();
    s.signals(&[("gear", Variant::from("P"))]).await.unwrap();
    // The reply follows whatever the signal started: nothing.
    assert_eq!(m.state().await.unwrap(), "idle");
    assert!(!m.easy_exit_active().await.unwrap());
    drop(fd);
    inhibitors_until(&s, "no inhibitor", |l| l.is_empty()).await;
    assert!(!m.easy_exit_active().await.unwrap(), "retracted afterwards");
    // Nothing was started meanwhile, nor when the inhibitor ended: the next MotionStarted is
    // the manual move below (signals from the daemon arrive in the order it sends them).
    let seat = s.actuator("seat_position").await;
    seat.move_to(120.0).await.unwrap();
    assert_eq!(
        common::started(&mut started).await,
        ("manual".into(), "/".into())
    );
    assert_eq!(
        finished(&mut fin).await,
        ("manual".into(), "completed".into())
    );
    // The next real P transition retracts as ever.
    s.signals(&[("gear", Variant::from("D"))]).await.unwrap();
    s.signals(&[("gear", Variant::from("P"))]).await.unwrap();
    assert_eq!(common::started(&mut started).await.0, "easy-exit");
}

#[tokio::test]
async fn bad_who_or_why_is_invalid_args_and_65_is_the_limit() {
    let s = Setup::new().await;
    let m = uncached(&s).await;
    let long_who = "w".repeat(65);
    let long_why = "y".repeat(257);
    for (who, why) in [
        ("", "a reason"),
        (long_who.as_str(), "a reason"),
        ("ota", ""),
        ("ota", long_why.as_str()),
        ("o\nta", "a reason"),
        ("ota", "a\treason"),
    ] {
        assert_eq!(
            err_name(m.inhibit(who, why).await),
            ErrorName::InvalidArgs.as_str(),
            "{who:?} {why:?}"
        );
    }
    assert_eq!(m.inhibitors().await.unwrap(), []);
    // The limits themselves are accepted.
    let mut fds = vec![m.inhibit(&"w".repeat(64), &"y".repeat(256)).await.unwrap()];
    for n in 1..64 {
        fds.push(
            m.inhibit(&format!("holder {n}"), "filling up")
                .await
                .unwrap(),
        );
    }
    assert_eq!(m.inhibitors().await.unwrap().len(), 64);
    let e = m.inhibit("one too many", "filling up").await.unwrap_err();
    assert_eq!(
        ErrorName::of(&e).as_deref(),
        Some(ErrorName::LimitReached.as_str()),
        "{e}"
    );
    assert_eq!(m.inhibitors().await.unwrap().len(), 64);
    // One closed: room for one more.
    drop(fds.swap_remove(10));
    inhibitors_until(&s, "63 inhibitors", |l| l.len() == 63).await;
    fds.push(m.inhibit("one more", "room again").await.unwrap());
    let list = m.inhibitors().await.unwrap();
    assert_eq!(list.len(), 64);
    assert!(!list.iter().any(|i| i.0 == "holder 10"));
    assert_eq!(list.last().map(|i| i.0.as_str()), Some("one more"));
    drop(fds);
    inhibitors_until(&s, "no inhibitor", |l| l.is_empty()).await;
}

/// Set in the environment of [`holder_child`]: the bus to take an inhibitor on.
const HOLDER_ENV: &str = "DRIVERPROFILED_TEST_INHIBIT_HOLDER";

/// The holder of `sigkill_of_the_holder_releases_its_inhibitor`: takes an inhibitor and
/// blocks until killed. Does nothing (and passes) when run as a test of its own.
#[test]
fn holder_child() {
    child_on_bus(HOLDER_ENV, |conn| async move {
        let m = ManagerProxy::new(&conn).await.expect("manager");
        let _fd = m.inhibit("holder", "until killed").await.expect("inhibit");
        std::future::pending::<()>().await;
    });
}

#[tokio::test]
async fn sigkill_of_the_holder_releases_its_inhibitor() {
    let s = Setup::new().await;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "inhibit::holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ENV, &s.bus.address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().expect("the holder runs");
    let list = inhibitors_until(&s, "the holder's inhibitor", |l| !l.is_empty()).await;
    assert_eq!(
        list,
        [(
            "holder".to_string(),
            "until killed".to_string(),
            own_uid(),
            pid
        )]
    );
    // SIGKILL: nothing of the holder runs any more; the kernel closes its descriptors.
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    inhibitors_until(&s, "no inhibitor after SIGKILL", |l| l.is_empty()).await;
    // And motion works again.
    let path = anna(&s).await;
    s.park().await;
    uncached(&s).await.select_profile(&path).await.unwrap();
    let log = s.daemon.stderr();
    assert!(log.contains("inhibitor taken"), "{log}");
    assert!(log.contains("inhibitor released"), "{log}");
}
