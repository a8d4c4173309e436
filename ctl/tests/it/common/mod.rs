//! Harness of the driverprofilectl tests: a private `dbus-daemon` (the daemon's own launcher,
//! `driverprofiled::privatebus`), the real `driverprofiled --mock` with a temporary state dir,
//! and the real `driverprofilectl` binary run against them. Never the machine's own buses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus::{Connection, Variant};

pub use driverprofiled::privatebus::PrivateBus;
pub use driverprofiled_api::proxy::*;
pub use driverprofiled_api::{BUS_NAME, actuator_path};

pub const CTL: &str = env!("CARGO_BIN_EXE_driverprofilectl");
/// Guard against a hung test; never used to wait for something to happen.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The daemon binary, built up to date.
///
/// `CARGO_BIN_EXE_driverprofiled` exists only in the root package's own tests, and cargo
/// builds another package's binaries only when the whole workspace is built. So: run the
/// same cargo that built this test (`$CARGO`, set by cargo when it runs tests; else `cargo`)
/// to build the daemon into the same target directory and profile, once per test binary. It
/// is a no-op when `cargo test --workspace` built it already, and it never runs a stale daemon
/// after `cargo test -p driverprofilectl` (cargo releases its build lock before it runs tests).
pub fn daemon_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let ctl = Path::new(CTL);
        let profile_dir = ctl.parent().expect("target/<profile>");
        let target = profile_dir.parent().expect("target dir");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("profile dir name");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "driverprofiled",
            "--bin",
            "driverprofiled",
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("run cargo build for the daemon");
        assert!(status.success(), "cargo build of driverprofiled failed");
        let bin = profile_dir.join("driverprofiled");
        assert!(bin.exists(), "no daemon binary at {}", bin.display());
        bin
    })
}

/// The shipped config with stall times and the motion timeout no loaded machine reaches
/// (the same reasoning as the root package's `test_config`), then `edits` applied.
pub fn test_config(edits: &[(&str, &str)]) -> String {
    let mut c = driverprofiled::config::DEFAULT_CONFIG
        .replace("stall_ms = 1000\n", "stall_ms = 10000\n")
        .replace("stall_ms = 200\n", "stall_ms = 10000\n")
        .replace("timeout_s = 60\n", "timeout_s = 600\n");
    for (from, to) in edits {
        assert!(c.contains(from), "config has no {from:?}");
        c = c.replacen(from, to, 1);
    }
    c
}

pub struct Env {
    pub bus: PrivateBus,
    pub dir: tempfile::TempDir,
    pub conn: Connection,
    daemon: Option<Child>,
}

impl Env {
    /// Bus + daemon with the test config.
    pub async fn new() -> Env {
        Env::with_config(&test_config(&[])).await
    }

    pub async fn with_config(config: &str) -> Env {
        let mut env = Env::bus_only().await;
        env.start_daemon(config).await;
        env
    }

    /// A bus without a daemon.
    pub async fn bus_only() -> Env {
        Env::on_bus(PrivateBus::start().expect("private bus")).await
    }

    /// Bus + daemon (as root, the test config) on a bus every user may connect to and call
    /// anything on: only the daemon's own `[access]` check stands between them.
    pub async fn open_to_all_users() -> Env {
        let bus = PrivateBus::start_with(|dir| {
            driverprofiled::privatebus::config_xml(dir).replacen(
                "<policy context=\"default\">",
                "<policy context=\"default\">\n    <allow user=\"*\"/>",
                1,
            )
        })
        .expect("private bus");
        let mut env = Env::on_bus(bus).await;
        env.start_daemon(&test_config(&[])).await;
        env
    }

    async fn on_bus(bus: PrivateBus) -> Env {
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .build()
            .await
            .expect("connect");
        Env {
            bus,
            dir: tempfile::tempdir().expect("tempdir"),
            conn,
            daemon: None,
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Start the daemon and wait until it owns its name (NameOwnerChanged).
    pub async fn start_daemon(&mut self, config: &str) {
        let cfg = self.dir.path().join("config.toml");
        std::fs::write(&cfg, config).unwrap();
        let dbus = zbus::fdo::DBusProxy::new(&self.conn).await.unwrap();
        let mut owner = dbus
            .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
            .await
            .unwrap();
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).unwrap();
        let child = Command::new(daemon_bin())
            .args(["--bus", &self.bus.address, "--mock", "--config"])
            .arg(&cfg)
            .arg("--state-dir")
            .arg(self.state())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn driverprofiled");
        self.daemon = Some(child);
        let owned = async {
            while !dbus
                .name_has_owner(BUS_NAME.try_into().unwrap())
                .await
                .unwrap()
            {
                owner.next().await.expect("NameOwnerChanged");
            }
        };
        tokio::time::timeout(TIMEOUT, owned)
            .await
            .expect("driverprofiled did not take its name");
    }

    /// Run driverprofilectl on this bus and wait for it.
    pub fn ctl(&self, args: &[&str]) -> Out {
        let out = self.ctl_cmd(args).output().expect("run driverprofilectl");
        Out(out)
    }

    /// driverprofilectl on this bus, not started.
    pub fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(CTL);
        c.args(["--bus", &self.bus.address])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub async fn manager(&self) -> ManagerProxy<'static> {
        ManagerProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap()
    }

    pub async fn actuator(&self, axis: &str) -> ActuatorProxy<'static> {
        ActuatorProxy::builder(&self.conn)
            .path(actuator_path(axis))
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap()
    }

    pub async fn signals(&self, s: &[(&str, Variant<'_>)]) {
        let v = VehicleProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap();
        let map: HashMap<&str, Variant<'_>> = s.iter().map(|(k, v)| (*k, v.clone())).collect();
        v.update_signals(map).await.unwrap();
    }

    /// Gear P, standstill.
    pub async fn park(&self) {
        self.signals(&[
            ("gear", Variant::from("P")),
            ("speed_kmh", Variant::from(0.0)),
        ])
        .await;
    }

    pub async fn speed_factor(&self, f: f64) {
        MockProxy::new(&self.conn)
            .await
            .unwrap()
            .set_speed_factor(f)
            .await
            .unwrap();
    }

    pub async fn profile_names(&self) -> Vec<String> {
        let m = self.manager().await;
        let mut names = Vec::new();
        for p in m.profiles().await.unwrap() {
            let pr = ProfileProxy::builder(&self.conn)
                .path(p)
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .unwrap();
            names.push(pr.name().await.unwrap());
        }
        names
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// True when this test can run commands as other users: root, with `setpriv`. Otherwise
/// false after printing why it skips; in CI (`CI` set and not "false", as the root package's
/// `tests/it/common/system.rs` decides) not being able to run is a failure instead.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    let why = match (root, setpriv) {
        (false, _) => "needs root",
        (true, false) => "needs setpriv (util-linux)",
        (true, true) => return true,
    };
    assert!(!ci, "{test}: cannot run in CI: it {why}");
    eprintln!("SKIPPED {test} ({why})");
    false
}

/// A finished run of driverprofilectl.
pub struct Out(pub Output);

impl Out {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }
    /// Exit code `code`, else panic with the output.
    #[track_caller]
    pub fn expect(self, code: i32) -> Out {
        assert_eq!(
            self.code(),
            code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}
