//! State that cannot be written: the daemon runs on, says why, and never starts what it could
//! not undo after a restart.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use zbus::Variant;

/// A state directory under a regular file: nobody can create or write it, root included.
#[tokio::test]
async fn an_unwritable_state_dir_is_reported_and_the_daemon_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let state = dir.path().join("file/state");
    let s = Setup::with_args(&["--state-dir", state.to_str().unwrap()]).await;
    let m = s.manager().await;
    let why = m.storage_error().await.unwrap();
    assert!(why.contains("cannot be written"), "{why}");
    assert!(s.daemon.stderr().contains("cannot be written"));
    // Changes fail and change nothing ...
    assert_eq!(
        err_name(m.create_profile("Anna").await),
        ErrorName::Failed.as_str()
    );
    assert!(m.profiles().await.unwrap().is_empty());
    // ... everything else works: a manual move, and Stop.
    s.park().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    s.actuator("seat_position")
        .await
        .move_to(100.0)
        .await
        .unwrap();
    m.stop().await.unwrap();
    assert_eq!(finished(&mut fin).await.1, "stopped");
}

/// A small tmpfs, unmounted on drop (before its mount point's directory goes).
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    /// Mount one (needs root: in CI it must work; elsewhere the test is skipped).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("state");
        std::fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to mount a tmpfs"
            );
            eprintln!("skipped: mounting a tmpfs needs root (CI runs this test)");
            return None;
        }
        Some(Tmpfs(at, dir))
    }

    /// Fill it up; returns the filler file.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = [0u8; 4096];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// With the disk full the retract does not run (its restore could not survive a restart),
/// and the reason is visible; with space again it runs.
#[tokio::test]
async fn disk_full_holds_the_retract_back_and_says_why() {
    let Some(disk) = Tmpfs::mount("256k") else {
        return;
    };
    let mut s = Setup::with_args(&["--state-dir", disk.path().to_str().unwrap()]).await;
    let m = s.manager().await;
    let anna = m.create_profile("Anna").await.unwrap();
    s.park().await;
    m.select_profile(&anna).await.unwrap();
    let drive = [
        ("gear", Variant::from("D")),
        ("driver_seat_occupied", Variant::from(true)),
    ];
    s.signals(&drive).await.unwrap();
    let filler = disk.fill();
    s.signals(&[("gear", Variant::from("P"))]).await.unwrap();
    // The reply comes after the daemon acted on the signals.
    assert!(!m.easy_exit_active().await.unwrap());
    assert_eq!(m.state().await.unwrap(), "idle");
    let why = m.storage_error().await.unwrap();
    assert!(why.contains("easy exit did not run"), "{why}");

    std::fs::remove_file(filler).unwrap();
    s.signals(&[("gear", Variant::from("D"))]).await.unwrap();
    let mut started = m.receive_motion_started().await.unwrap();
    s.signals(&[("gear", Variant::from("P"))]).await.unwrap();
    assert_eq!(common::started(&mut started).await.0, "easy-exit");
    assert!(m.easy_exit_active().await.unwrap());
    assert_eq!(m.storage_error().await.unwrap(), "");
    s.stop_daemon();
}

/// Methods that take no arguments refuse calls that pass some, and do nothing.
#[tokio::test]
async fn no_argument_methods_refuse_arguments() {
    let s = Setup::new().await;
    let m = s.manager().await;
    let p = m.create_profile("Anna").await.unwrap();
    let seat = actuator_path("seat_position");
    let calls = [
        (p.as_str(), driverprofiled_api::interface::PROFILE, "Delete"),
        (
            p.as_str(),
            driverprofiled_api::interface::PROFILE,
            "SaveCurrentPositions",
        ),
        (ROOT, driverprofiled_api::interface::MANAGER, "Stop"),
        (
            seat.as_str(),
            driverprofiled_api::interface::ACTUATOR,
            "Stop",
        ),
    ];
    for (path, iface, method) in calls {
        let r = s
            .conn
            .call_method(Some(NAME), path, Some(iface), method, &("junk",))
            .await;
        assert_eq!(
            err_name(r.map(drop)),
            ErrorName::InvalidArgs.as_str(),
            "{iface}.{method}"
        );
    }
    assert_eq!(m.profiles().await.unwrap(), vec![p]);
}
