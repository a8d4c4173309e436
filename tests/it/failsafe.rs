//! Fail-safe on every fault: a lost bus, each signal, a panic; and what systemd is told
//! (READY, STATUS, RELOADING, STOPPING, the watchdog).
//!
//! The real daemon on a private `dbus-daemon` (never the machine's buses), started here rather
//! than by `common::Setup` because these tests set its environment (`NOTIFY_SOCKET`,
//! `WATCHDOG_*`) and await its exit (tokio's child handle, woken by SIGCHLD). Every test also
//! gets a notify socket of its own: `READY=1` tells when the daemon has started and when a
//! reload is done, so nothing here sleeps to synchronise.

use crate::common;

use std::collections::HashMap;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use zbus::proxy::CacheProperties;
use zbus::{Connection, Variant};

/// The daemon, its bus, and what it tells systemd.
struct Rig {
    bus: Bus,
    conn: Connection,
    child: Child,
    /// Holds the state dir, the config file, the notify socket and the daemon's stderr.
    dir: tempfile::TempDir,
    /// Every notification, as sent. Read off the socket at once by a task of its own: like
    /// systemd, the test must never let the queue fill (a full one blocks the sender).
    notify: mpsc::UnboundedReceiver<String>,
}

impl Rig {
    /// The daemon (mock backend) with `config` as its config file, and `env` on top of a
    /// notify socket of the test's; returns once it has said READY=1.
    async fn start(config: &str, env: &[(&str, &str)]) -> Rig {
        let bus = Bus::start();
        let conn = bus.connect().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let socket = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&socket).expect("notify socket");
        let (tx, notify) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf).await {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(BIN)
            .args(["--bus", &bus.address, "--mock", "--state-dir"])
            .arg(&state)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .env("NOTIFY_SOCKET", &socket)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn driverprofiled");
        let mut rig = Rig {
            bus,
            conn,
            child,
            dir,
            notify,
        };
        let ready = rig.notified("READY=1").await;
        assert!(ready.contains("STATUS=idle"), "{ready:?}");
        // READY=1 only once the name is owned (and so every object exported before it).
        let dbus = zbus::fdo::DBusProxy::new(&rig.conn).await.unwrap();
        assert!(
            dbus.name_has_owner(NAME.try_into().unwrap()).await.unwrap(),
            "READY=1 before the name was owned"
        );
        rig
    }

    /// The next notification holding `line`, skipping others; panics if the daemon exits
    /// without having sent it, or after [`TIMEOUT`].
    async fn notified(&mut self, line: &str) -> String {
        let (notify, child) = (&mut self.notify, &mut self.child);
        let wait = async {
            loop {
                let msg = notify.recv().await.expect("notify socket closed");
                if msg.lines().any(|l| l == line) {
                    return msg;
                }
            }
        };
        tokio::pin!(wait);
        let status = tokio::select! {
            biased;
            msg = &mut wait => return msg,
            status = child.wait() => status,
            _ = tokio::time::sleep(TIMEOUT) => panic!("no {line} notification"),
        };
        // It exited: whatever it sent before is queued already.
        match tokio::time::timeout(Duration::from_secs(1), wait).await {
            Ok(msg) => msg,
            Err(_) => panic!(
                "the daemon exited ({status:?}) without notifying {line}:\n{}",
                stderr_of(&self.dir)
            ),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id().expect("daemon running") as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Await the daemon's exit.
    async fn exit(&mut self) -> ExitStatus {
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("the daemon did not exit")
            .expect("wait")
    }

    fn stderr(&self) -> String {
        stderr_of(&self.dir)
    }

    async fn manager(&self) -> ManagerProxy<'static> {
        ManagerProxy::new(&self.conn).await.unwrap()
    }

    async fn signals(&self, s: &[(&str, Variant<'_>)]) {
        let v = VehicleProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap();
        let map: HashMap<&str, Variant<'_>> = s.iter().map(|(k, v)| (*k, v.clone())).collect();
        v.update_signals(map).await.unwrap();
    }

    /// A recall of the seat from 130 to 250 mm, the mock `factor` times faster than real
    /// (4.8 s at 1); returns once it has started, with the stream of MotionFinished.
    async fn recalling(&self, factor: f64) -> MotionFinishedStream {
        let m = self.manager().await;
        MockProxy::new(&self.conn)
            .await
            .unwrap()
            .set_speed_factor(factor)
            .await
            .unwrap();
        self.signals(&[
            ("gear", Variant::from("P")),
            ("speed_kmh", Variant::from(0.0)),
        ])
        .await;
        let anna = m.create_profile("Anna").await.unwrap();
        ProfileProxy::builder(&self.conn)
            .path(anna.clone())
            .build()
            .await
            .unwrap()
            .set_positions([("seat_position", 250.0)].into_iter().collect())
            .await
            .unwrap();
        let mut st = m.receive_motion_started().await.unwrap();
        let fin = m.receive_motion_finished().await.unwrap();
        m.select_profile(&anna).await.unwrap();
        assert_eq!(started(&mut st).await.0, "recall");
        fin
    }

    /// MotionFinished as (reason, outcome); panics if the daemon exits first.
    async fn finished(&mut self, fin: &mut MotionFinishedStream) -> (String, String) {
        tokio::select! {
            f = finished(fin) => f,
            status = self.child.wait() => panic!(
                "the daemon exited ({status:?}) during the motion:\n{}",
                self.stderr()
            ),
        }
    }
}

fn stderr_of(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
}

/// The mock's line for an axis that `stop_all` stopped.
const SEAT_STOPPED: &str = "mock: axis stopped (stop all) axis=seat_position";

#[tokio::test]
async fn bus_loss_mid_motion_stops_every_axis_and_exits_within_a_second() {
    let mut r = Rig::start("", &[]).await;
    let _fin = r.recalling(1.0).await;
    // SAFETY: a signal to the bus daemon this test started.
    assert_eq!(unsafe { libc::kill(r.bus.pid() as i32, libc::SIGKILL) }, 0);
    let t0 = Instant::now();
    let status = r.exit().await;
    let took = t0.elapsed();
    let log = r.stderr();
    assert!(
        took < Duration::from_secs(1),
        "exited after {took:?}:\n{log}"
    );
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("the bus connection is lost"), "{log}");
    assert!(log.contains(SEAT_STOPPED), "no stop at the backend:\n{log}");
    assert!(
        !log.contains("could not emit"),
        "it talked on to a dead bus:\n{log}"
    );
}

#[tokio::test]
async fn bus_loss_while_idle_exits_too() {
    let mut r = Rig::start("", &[]).await;
    // SAFETY: a signal to the bus daemon this test started.
    assert_eq!(unsafe { libc::kill(r.bus.pid() as i32, libc::SIGKILL) }, 0);
    let t0 = Instant::now();
    let status = r.exit().await;
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(status.code(), Some(1), "{}", r.stderr());
    assert!(r.stderr().contains("stop all: no axis was moving"));
}

/// `sig` mid-motion: the motion halts at the backend and is reported, then the daemon exits
/// with `code`.
async fn halts_reports_and_exits(sig: i32, code: i32) {
    let mut r = Rig::start("", &[]).await;
    let mut fin = r.recalling(1.0).await;
    r.signal(sig);
    // Reported before the exit (so not raced against it).
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "stopped".into())
    );
    assert!(
        r.notified("STOPPING=1")
            .await
            .contains("STATUS=shutting down")
    );
    let status = r.exit().await;
    let log = r.stderr();
    assert_eq!(status.code(), Some(code), "{log}");
    assert!(log.contains(SEAT_STOPPED), "no stop at the backend:\n{log}");
}

#[tokio::test]
async fn sigterm_mid_motion_halts_and_exits_0() {
    halts_reports_and_exits(libc::SIGTERM, 0).await;
}

#[tokio::test]
async fn sigint_mid_motion_halts_and_exits_0() {
    halts_reports_and_exits(libc::SIGINT, 0).await;
}

#[tokio::test]
async fn sigquit_mid_motion_halts_and_exits_131() {
    halts_reports_and_exits(libc::SIGQUIT, 131).await;
}

/// Any other terminating signal counts as a failure too (exit 128 + N: systemd restarts it).
#[tokio::test]
async fn sigalrm_mid_motion_halts_and_exits_142() {
    halts_reports_and_exits(libc::SIGALRM, 142).await;
}

/// `sig` mid-motion changes nothing: the motion completes and the daemon serves on.
async fn carries_on(sig: i32) -> String {
    let mut r = Rig::start("", &[]).await;
    let mut fin = r.recalling(4.0).await;
    r.signal(sig);
    assert_eq!(
        r.finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert_eq!(r.manager().await.state().await.unwrap(), "idle");
    r.signal(libc::SIGTERM);
    let status = r.exit().await;
    assert_eq!(status.code(), Some(0), "{}", r.stderr());
    r.stderr()
}

#[tokio::test]
async fn sigusr1_is_harmless() {
    let log = carries_on(libc::SIGUSR1).await;
    assert!(
        log.contains("SIGUSR1 means nothing to driverprofiled: ignored"),
        "{log}"
    );
}

#[tokio::test]
async fn sigusr2_is_harmless() {
    let log = carries_on(libc::SIGUSR2).await;
    assert!(
        log.contains("SIGUSR2 means nothing to driverprofiled: ignored"),
        "{log}"
    );
}

#[tokio::test]
async fn sigpipe_is_harmless() {
    carries_on(libc::SIGPIPE).await;
}

/// Send SIGHUP and await the end of the reload (RELOADING=1, then READY=1).
async fn reload(r: &mut Rig, config: &str) {
    std::fs::write(r.dir.path().join("config.toml"), config).unwrap();
    r.signal(libc::SIGHUP);
    r.notified("RELOADING=1").await;
    r.notified("READY=1").await;
}

#[tokio::test]
async fn sighup_applies_a_valid_config_and_the_motion_goes_on() {
    let mut r = Rig::start("", &[]).await;
    let mut fin = r.recalling(2.0).await;
    reload(&mut r, "[motion]\nspeed_threshold_kmh = 5.0\n").await;
    // 2 km/h broke the interlock under 0.5; under 5 it does not.
    r.signals(&[("speed_kmh", Variant::from(2.0))]).await;
    assert_eq!(
        r.finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert!(r.stderr().contains("config reloaded: motion changed"));
    // The profile is still there.
    assert_eq!(r.manager().await.profiles().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sighup_keeps_the_running_config_when_the_new_one_is_invalid_or_needs_a_restart() {
    let mut r = Rig::start("", &[]).await;
    let mut fin = r.recalling(1.0).await;
    // Invalid: logged with file:line:col, the old config stays.
    reload(&mut r, "[motion]\nspeed_threshold_kmh = \"fast\"\n").await;
    let log = r.stderr();
    let at = format!("{}:2:", r.dir.path().join("config.toml").display());
    assert!(
        log.contains("config not reloaded, keeping the running one:") && log.contains(&at),
        "{log}"
    );
    // Valid but a different shape (one axis instead of twelve): refused.
    reload(
        &mut r,
        "[motion]\nspeed_threshold_kmh = 5.0\n\n[easy_exit]\nrear_guard_axis = \"seat_position\"\n\
         \n[easy_exit.retract]\nseat_position = \"+50\"\n\n[[axis]]\nname = \"seat_position\"\n\
         vss = \"Vehicle.Cabin.Seat.Row1.DriverSide.Position\"\nunit = \"mm\"\nmin = 0\n\
         max = 260\ninitial = 130\nspeed = 25\nbackend = \"mock\"\n",
    )
    .await;
    let log = r.stderr();
    assert!(
        log.contains("config reload refused, keeping the running one: the [[axis]] list differs"),
        "{log}"
    );
    // The motion ran on through both; 0.5 km/h is still the threshold.
    r.signals(&[("speed_kmh", Variant::from(2.0))]).await;
    assert_eq!(
        r.finished(&mut fin).await,
        ("recall".into(), "interlocked".into())
    );
}

#[tokio::test]
async fn status_and_the_watchdog_go_to_systemd() {
    let mut r = Rig::start("", &[("WATCHDOG_USEC", "200000")]).await;
    // Petted at half the interval, from the engine loop.
    let t0 = Instant::now();
    for _ in 0..3 {
        r.notified("WATCHDOG=1").await;
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(150),
        "petted too often: 3 in {took:?}"
    );
    let mut fin = r.recalling(4.0).await;
    r.notified("STATUS=moving (recall)").await;
    assert_eq!(r.finished(&mut fin).await.1, "completed");
    r.notified("STATUS=idle").await;
    r.signal(libc::SIGTERM);
    r.notified("STOPPING=1").await;
    assert_eq!(r.exit().await.code(), Some(0));
}

#[tokio::test]
async fn no_watchdog_when_systemd_asks_another_process() {
    let mut r = Rig::start("", &[("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")]).await;
    // Measured, not a synchronisation: five intervals without a single pet.
    let got = tokio::time::timeout(Duration::from_millis(500), r.notify.recv()).await;
    assert!(got.is_err(), "unexpected notification: {got:?}");
    assert!(!r.stderr().contains("watchdog"), "{}", r.stderr());
}

/// Set in the environment of the child process the panic test starts.
const PANIC_CHILD: &str = "DRIVERPROFILED_TEST_PANIC_CHILD";

/// The child of `a_panic_in_any_task_stops_every_axis_and_exits_101`; does nothing (and
/// passes) when run as a test of its own.
#[test]
fn panic_child() {
    use driverprofiled::backend::Router;
    use driverprofiled::core::{AxisId, BackendCommand, Feedback};
    if std::env::var_os(PANIC_CHILD).is_none() {
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = driverprofiled::config::builtin().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (router, _) = Router::start(&cfg, Some("mock"), &tx).await.unwrap();
        // The hook the daemon installs at start.
        driverprofiled::failsafe::stop_on_panic(router.clone());
        router.command(&BackendCommand::Move {
            axis: AxisId::of(&cfg, "seat_position").unwrap(),
            target: 250.0,
        });
        // The seat runs.
        let Some(Feedback::Position { .. }) = rx.recv().await else {
            panic!("the seat did not move");
        };
        eprintln!("seat running");
        // A bug in some task: tokio would catch it and carry on.
        let _ = tokio::spawn(async { panic!("a bug in a task") }).await;
        eprintln!("still running after the panic");
        std::process::exit(0);
    });
}

/// A panic anywhere (here in a spawned task, which tokio alone would survive) stops every
/// axis before the process ends, and the process ends with 101. The hook is the daemon's
/// own (`failsafe::stop_on_panic`), run in a child process over the real mock backend: no
/// way to make the daemon binary panic is built into it.
#[test]
fn a_panic_in_any_task_stops_every_axis_and_exits_101() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "failsafe::panic_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PANIC_CHILD, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{err}");
    assert!(!err.contains("still running"), "{err}");
    let running = err.find("seat running").expect("the seat never ran");
    let stopped = err.find(SEAT_STOPPED).expect("no stop at the backend");
    let report = err.find("a bug in a task").expect("no panic message");
    assert!(
        running < stopped && stopped < report,
        "stop after the report:\n{err}"
    );
}
