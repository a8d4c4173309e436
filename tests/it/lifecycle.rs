//! The daemon's life: state across restarts, a corrupt store, config errors, exit codes, idling.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[tokio::test]
async fn store_and_active_profile_survive_restart_without_moving() {
    let (mut s, d) = setup(&test_config(&[])).await;
    let m = s.manager().await;
    let anna = m.create_profile("Anna").await.unwrap();
    let ben = m.create_profile("Ben").await.unwrap();
    let p = s.profile(&anna).await;
    p.set_positions([("seat_position", 90.0)].into_iter().collect())
        .await
        .unwrap();
    p.bind_key("phone-anna").await.unwrap();
    p.set_easy_exit(false).await.unwrap();
    s.profile(&ben).await.delete().await.unwrap();
    s.mock().await.set_speed_factor(50.0).await.unwrap();
    s.park().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    m.select_profile(&anna).await.unwrap();
    assert_eq!(finished(&mut fin).await.1, "completed");

    let status = s.stop_daemon();
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0");
    let cfg = d.path().join("config.toml");
    s.restart_daemon(&["--config", cfg.to_str().unwrap()]).await;

    let m = s.manager().await;
    assert_eq!(m.profiles().await.unwrap(), vec![anna.clone()]);
    assert_eq!(m.active_profile().await.unwrap(), anna);
    let p = s.profile(&anna).await;
    assert_eq!(p.name().await.unwrap(), "Anna");
    assert_eq!(p.keys().await.unwrap(), vec!["phone-anna"]);
    assert!(!p.easy_exit().await.unwrap());
    assert_eq!(p.positions().await.unwrap()["seat_position"], 90.0);
    // Nothing moves on start: the mock starts at the configured initial positions.
    assert_eq!(m.state().await.unwrap(), "idle");
    let seat = s.actuator("seat_position").await;
    assert_eq!(seat.position().await.unwrap(), 130.0);
    assert!(!seat.moving().await.unwrap());
    // Ids stay unique after a restart: Ben's id 2 is not handed out again.
    assert_eq!(
        m.create_profile("Cleo").await.unwrap().as_str(),
        "/org/driverprofiled1/profiles/3"
    );
}

#[tokio::test]
async fn every_change_is_on_disk_before_the_reply() {
    let s = Setup::new().await;
    let m = s.manager().await;
    let store = s.state.path().join("profiles.toml");
    assert!(!store.exists());
    let p = s.profile(&m.create_profile("Anna").await.unwrap()).await;
    assert!(
        std::fs::read_to_string(&store)
            .unwrap()
            .contains("\"Anna\"")
    );
    p.set_name("Anne").await.unwrap();
    assert!(
        std::fs::read_to_string(&store)
            .unwrap()
            .contains("\"Anne\"")
    );
    p.bind_key("fob-7").await.unwrap();
    assert!(std::fs::read_to_string(&store).unwrap().contains("fob-7"));
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(s.state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["profiles.toml"]);
}

#[tokio::test]
async fn corrupt_store_is_renamed_aside_and_the_daemon_starts_empty() {
    let bus = Bus::start();
    let state = tempfile::tempdir().unwrap();
    let garbage = b"schema = 1\nnext_id = 3\n[[profile]\nid = \"1\"";
    std::fs::write(state.path().join("profiles.toml"), garbage).unwrap();
    let conn = bus.connect().await;
    let daemon = Daemon::start(&conn, &bus, state.path(), &[]).await;
    let m = ManagerProxy::new(&conn).await.unwrap();
    assert!(m.profiles().await.unwrap().is_empty());

    let aside: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("profiles.toml.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "expected one renamed store");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);
    assert!(daemon.stderr().contains("unusable"), "{}", daemon.stderr());

    // New changes go to a fresh store; the renamed one is left as it was.
    m.create_profile("Anna").await.unwrap();
    assert!(state.path().join("profiles.toml").exists());
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);
}

#[tokio::test]
async fn inconsistent_store_is_treated_as_corrupt() {
    let bus = Bus::start();
    let state = tempfile::tempdir().unwrap();
    // Well-formed TOML, but two profiles share a key.
    let text = "schema = 1\nnext_id = 3\n\
        [[profile]]\nid = \"1\"\nname = \"A\"\nkeys = [\"k\"]\n\
        [[profile]]\nid = \"2\"\nname = \"B\"\nkeys = [\"k\"]\n";
    std::fs::write(state.path().join("profiles.toml"), text).unwrap();
    let conn = bus.connect().await;
    let _daemon = Daemon::start(&conn, &bus, state.path(), &[]).await;
    let m = ManagerProxy::new(&conn).await.unwrap();
    assert!(m.profiles().await.unwrap().is_empty());
    let n = std::fs::read_dir(state.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("profiles.toml.corrupt-")
        })
        .count();
    assert_eq!(n, 1);
}

/// Run the binary to completion (killed and failed after [`TIMEOUT`]).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run driverprofiled");
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!(
                "driverprofiled {args:?} did not exit: {}",
                std::fs::read_to_string(&err).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code(),
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&err).unwrap(),
    )
}

#[test]
fn invalid_config_exits_78_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = DEFAULT_CONFIG.replacen("speed = 25", "speed = -25", 1);
    let line = text.lines().position(|l| l == "speed = -25").unwrap() + 1;
    std::fs::write(&path, &text).unwrap();
    let p = path.to_str().unwrap();
    let state = dir.path().join("state");

    // The daemon refuses to start (before touching any bus)...
    let (code, _, err) = run(&[
        "--config",
        p,
        "--state-dir",
        state.to_str().unwrap(),
        "--bus",
        "unix:path=/nonexistent",
    ]);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains(&format!("{p}:{line}:9:")), "{err}");
    assert!(err.contains("speed must be greater than 0"), "{err}");

    // ... and --check-config says the same.
    let (code, _, err) = run(&["--check-config", p]);
    assert_eq!(code, Some(78));
    assert!(err.contains(&format!("{p}:{line}:9:")), "{err}");

    // Unknown keys are errors too, located.
    let text = DEFAULT_CONFIG.replacen("[profiles]\n", "[profiles]\nmax_profile = 3\n", 1);
    let line = text.lines().position(|l| l == "max_profile = 3").unwrap() + 1;
    std::fs::write(&path, &text).unwrap();
    let (code, _, err) = run(&["--check-config", p]);
    assert_eq!(code, Some(78));
    assert!(err.contains(&format!("{p}:{line}:1:")), "{err}");
    assert!(err.contains("max_profile"), "{err}");
}

#[test]
fn check_config_accepts_the_shipped_config() {
    let (code, out, err) = run(&[
        "--check-config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/driverprofiled.toml"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("valid, 12 axes"), "{out}");
}

#[test]
fn bad_usage_exits_64() {
    let (code, _, err) = run(&["--frobnicate"]);
    assert_eq!(code, Some(64));
    assert!(err.contains("Usage:"), "{err}");
}

#[tokio::test]
async fn second_instance_exits_1() {
    let s = Setup::new().await;
    let other = tempfile::tempdir().unwrap();
    let (code, _, err) = tokio::task::spawn_blocking({
        let addr = s.bus.address.clone();
        let dir = other.path().to_str().unwrap().to_string();
        move || run(&["--bus", &addr, "--mock", "--state-dir", &dir])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("already owned"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The first instance is unharmed.
    assert_eq!(s.manager().await.state().await.unwrap(), "idle");
}

#[test]
fn unreachable_bus_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[
        "--bus",
        "unix:path=/nonexistent/bus",
        "--mock",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot serve"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Sum of context switches over all threads of `pid`.
fn context_switches(pid: u32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches")
                || line.starts_with("nonvoluntary_ctxt_switches")
            {
                total += line
                    .split_whitespace()
                    .last()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
            }
        }
    }
    total
}

#[tokio::test]
async fn idle_daemon_does_not_wake_up() {
    let (s, _d) = setup(&test_config(&[])).await;
    let m = s.manager().await;
    s.park().await;
    s.mock().await.set_speed_factor(50.0).await.unwrap();
    // Move something first, so that any timer left behind by a motion would show.
    let mut fin = m.receive_motion_finished().await.unwrap();
    s.actuator("seat_position")
        .await
        .move_to(120.0)
        .await
        .unwrap();
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_eq!(m.state().await.unwrap(), "idle");
    let pid = s.daemon.pid();
    // Let the daemon finish answering and go to sleep: the counter must hold still for two
    // successive reads (bounded), then the measurement starts.
    let mut before = context_switches(pid);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = context_switches(pid);
        if now == before {
            break;
        }
        before = now;
    }
    // A measurement window, not a synchronisation.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = context_switches(pid);
    assert_eq!(
        after - before,
        0,
        "the idle daemon woke up {} times in 3 s",
        after - before
    );
}

#[test]
fn the_test_config_has_generous_stall_times_and_is_otherwise_the_default() {
    let parse = |text: &str| driverprofiled::config::parse("test.toml", text).unwrap();
    let shipped = parse(DEFAULT_CONFIG);
    let relaxed = parse(&test_config(&[]));
    assert_eq!(relaxed.motion_timeout_ms, TEST_TIMEOUT_S * 1000);
    assert!(relaxed.axes.iter().all(|a| a.stall_ms == TEST_STALL_MS));
    // Nothing else differs.
    let mut back = relaxed.clone();
    back.motion_timeout_ms = shipped.motion_timeout_ms;
    for (a, s) in back.axes.iter_mut().zip(&shipped.axes) {
        a.stall_ms = s.stall_ms;
    }
    assert_eq!(back, shipped);
    // One axis' stall time, for a stall test.
    let one = parse(&set_stall_ms(&test_config(&[]), Some("seat_height"), 1000));
    for a in &one.axes {
        let want = if a.name == "seat_height" {
            1000
        } else {
            TEST_STALL_MS
        };
        assert_eq!(a.stall_ms, want, "{}", a.name);
    }
}

/// Ctrl-C at a terminal signals the whole foreground process group. With `--private-bus` the
/// bus must not die of it before the daemon has shut down, or the daemon exits 1 ("the bus
/// connection is lost") instead of 0.
#[test]
fn ctrl_c_to_the_process_group_with_a_private_bus_exits_0() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let mut child = Command::new(BIN)
        .args(["--private-bus", "--mock", "--state-dir", state])
        .env("RUST_LOG", "info")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (serving_tx, serving) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("serving org.driverprofiled1") {
                let _ = serving_tx.send(());
            }
            log += &line;
            log += "\n";
        }
        log
    });
    let bus =
        (stdout.lines().map_while(Result::ok)).find(|l| l.starts_with("DBUS_SESSION_BUS_ADDRESS="));
    assert!(bus.is_some(), "no bus line");
    let up = serving.recv_timeout(Duration::from_secs(30));
    assert!(up.is_ok(), "not serving");
    let pgid = child.id() as i32;
    // SAFETY: a signal to the process group this test started.
    assert_eq!(unsafe { libc::killpg(pgid, libc::SIGINT) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains("connection is lost"), "{log}");
}
