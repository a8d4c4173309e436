//! Test harness: a private `dbus-daemon` per test, the real `driverprofiled` binary with the
//! mock backend and a temporary state dir, and zbus proxies to drive it. Never touches the
//! machine's system or session bus.

#[cfg(feature = "kuksa")]
pub mod kuksa;
#[cfg(feature = "kuksa")]
pub mod kuksa_provider;
#[cfg(feature = "kuksa")]
pub mod seat;
pub mod system;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedObjectPath, Variant};

pub use driverprofiled::privatebus::PrivateBus;
pub use driverprofiled_api::path::ROOT;
pub use driverprofiled_api::proxy::*;
pub use driverprofiled_api::{BUS_NAME as NAME, ErrorName, actuator_path};

pub const BIN: &str = env!("CARGO_BIN_EXE_driverprofiled");
/// Guard against a hung test; never used to wait for something to happen.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A private `dbus-daemon` (the daemon's own `--private-bus` launcher), killed on drop.
pub struct Bus(PrivateBus);

impl std::ops::Deref for Bus {
    type Target = PrivateBus;
    fn deref(&self) -> &PrivateBus {
        &self.0
    }
}

impl Bus {
    pub fn start() -> Bus {
        Bus(PrivateBus::start().unwrap_or_else(|e| panic!("private bus: {e}")))
    }

    /// A bus whose configuration `config` writes for its listening directory.
    pub fn start_with(config: impl FnOnce(&Path) -> String) -> Bus {
        Bus(PrivateBus::start_with(config).unwrap_or_else(|e| panic!("private bus: {e}")))
    }

    pub async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
            .expect("connect to the private bus")
    }
}

/// The real daemon binary, on a bus, with a state dir.
pub struct Daemon {
    child: Option<Child>,
    pub stderr_path: PathBuf,
}

pub struct Setup {
    pub bus: Bus,
    pub state: tempfile::TempDir,
    pub conn: Connection,
    pub daemon: Daemon,
}

impl Setup {
    /// Bus + daemon (mock, fresh state dir) + a client connection.
    pub async fn new() -> Setup {
        Self::with_args(&[]).await
    }

    pub async fn with_args(extra: &[&str]) -> Setup {
        let bus = Bus::start();
        let state = tempfile::tempdir().expect("tempdir");
        let conn = bus.connect().await;
        let daemon = Daemon::start(&conn, &bus, state.path(), extra).await;
        Setup {
            bus,
            state,
            conn,
            daemon,
        }
    }

    #[cfg(feature = "kuksa")]
    /// Bus + the daemon with the config file `config`, its backends as it names them (no
    /// `--mock`).
    pub async fn configured(config: &Path) -> Setup {
        let bus = Bus::start();
        let state = tempfile::tempdir().expect("tempdir");
        let conn = bus.connect().await;
        let config = config.to_str().expect("a UTF-8 config path");
        let daemon =
            Daemon::start_configured(&conn, &bus, state.path(), &["--config", config]).await;
        Setup {
            bus,
            state,
            conn,
            daemon,
        }
    }

    pub async fn manager(&self) -> ManagerProxy<'static> {
        ManagerProxy::new(&self.conn).await.expect("manager proxy")
    }

    pub async fn vehicle(&self) -> VehicleProxy<'static> {
        VehicleProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .expect("vehicle proxy")
    }

    pub async fn mock(&self) -> MockProxy<'static> {
        MockProxy::new(&self.conn).await.expect("mock proxy")
    }

    pub async fn profile(&self, path: &OwnedObjectPath) -> ProfileProxy<'static> {
        ProfileProxy::builder(&self.conn)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .expect("profile proxy")
    }

    /// The daemon's `org.freedesktop.DBus.ObjectManager`.
    pub async fn object_manager(&self) -> zbus::fdo::ObjectManagerProxy<'static> {
        zbus::fdo::ObjectManagerProxy::builder(&self.conn)
            .destination(NAME)
            .path(ROOT)
            .build()
            .await
            .expect("object manager proxy")
    }

    /// `org.freedesktop.DBus.Properties` of the object at `path` (for PropertiesChanged and
    /// GetAll, which the typed proxies do not offer uncached).
    pub async fn properties(&self, path: &str) -> zbus::fdo::PropertiesProxy<'static> {
        zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination(NAME)
            .path(path.to_string())
            .build()
            .await
            .expect("properties proxy")
    }

    /// An actuator proxy that reads properties from the daemon every time.
    pub async fn actuator(&self, axis: &str) -> ActuatorProxy<'static> {
        ActuatorProxy::builder(&self.conn)
            .path(actuator_path(axis))
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .expect("actuator proxy")
    }

    /// Gear P, standstill: motion allowed.
    pub async fn park(&self) {
        self.signals(&[
            ("gear", Variant::from("P")),
            ("speed_kmh", Variant::from(0.0)),
        ])
        .await
        .expect("park");
    }

    pub async fn signals(&self, s: &[(&str, Variant<'_>)]) -> zbus::Result<()> {
        let map: HashMap<&str, Variant<'_>> = s.iter().map(|(k, v)| (*k, v.clone())).collect();
        self.vehicle().await.update_signals(map).await
    }

    /// Stop the daemon with SIGTERM and return its exit status.
    pub fn stop_daemon(&mut self) -> ExitStatus {
        self.daemon.terminate()
    }

    /// Start the daemon again on the same bus and state dir.
    pub async fn restart_daemon(&mut self, extra: &[&str]) {
        if self.daemon.child.is_some() {
            self.daemon.terminate();
        }
        self.daemon = Daemon::start(&self.conn, &self.bus, self.state.path(), extra).await;
    }
}

impl Daemon {
    /// Start the daemon and wait until it owns its bus name (via NameOwnerChanged).
    pub async fn start(conn: &Connection, bus: &Bus, state: &Path, extra: &[&str]) -> Daemon {
        Self::start_as(conn, bus, state, extra, Path::new(BIN), &[]).await
    }

    /// [`Daemon::start`] with the binary `bin`, run through `wrapper` (such as
    /// `setpriv --reuid=...`; the wrapper must exec it, keeping the process id).
    pub async fn start_as(
        conn: &Connection,
        bus: &Bus,
        state: &Path,
        extra: &[&str],
        bin: &Path,
        wrapper: &[String],
    ) -> Daemon {
        Self::spawn(
            conn,
            bus,
            state,
            &[&["--mock"], extra].concat(),
            bin,
            wrapper,
        )
        .await
    }

    #[cfg(feature = "kuksa")]
    /// [`Daemon::start`] with the backends the config names (no `--mock`).
    pub async fn start_configured(
        conn: &Connection,
        bus: &Bus,
        state: &Path,
        extra: &[&str],
    ) -> Daemon {
        Self::spawn(conn, bus, state, extra, Path::new(BIN), &[]).await
    }

    async fn spawn(
        conn: &Connection,
        bus: &Bus,
        state: &Path,
        extra: &[&str],
        bin: &Path,
        wrapper: &[String],
    ) -> Daemon {
        let dbus = zbus::fdo::DBusProxy::new(conn).await.expect("dbus proxy");
        let mut owner_changed = dbus
            .receive_name_owner_changed_with_args(&[(0, NAME)])
            .await
            .expect("subscribe NameOwnerChanged");
        let stderr_path = state.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args(["--bus", &bus.address, "--state-dir"])
            .arg(state)
            .args(extra)
            .env("RUST_LOG", "debug,zbus=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn driverprofiled");
        let owned = async {
            loop {
                if dbus
                    .name_has_owner(NAME.try_into().expect("name"))
                    .await
                    .unwrap_or(false)
                {
                    return;
                }
                owner_changed
                    .next()
                    .await
                    .expect("NameOwnerChanged stream ended");
            }
        };
        let exited = async {
            // The daemon exiting early is a failure; poll its status while waiting for the name.
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            _ = owned => {}
            status = exited => panic!(
                "driverprofiled exited with {status} before owning its name:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            ),
            _ = tokio::time::sleep(TIMEOUT) => panic!("driverprofiled did not take its name"),
        }
        Daemon {
            child: Some(child),
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        child.wait().expect("wait for daemon")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The D-Bus error name of a failed call; panics if the call succeeded.
pub fn err_name<T: std::fmt::Debug>(r: zbus::Result<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => {
            ErrorName::of(&e).unwrap_or_else(|| panic!("expected a D-Bus error reply, got {e:?}"))
        }
    }
}

/// Next item of a stream, or panic after [`TIMEOUT`].
pub async fn next<S: Stream + Unpin>(s: &mut S, what: &str) -> S::Item {
    match tokio::time::timeout(TIMEOUT, s.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("stream of {what} ended"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Wait for the next MotionFinished and return (reason, outcome).
pub async fn finished(s: &mut MotionFinishedStream) -> (String, String) {
    let sig = next(s, "MotionFinished").await;
    let a = sig.args().expect("MotionFinished args");
    (a.reason().clone(), a.outcome().clone())
}

/// Wait for the next MotionStarted and return (reason, profile path).
pub async fn started(s: &mut MotionStartedStream) -> (String, String) {
    let sig = next(s, "MotionStarted").await;
    let a = sig.args().expect("MotionStarted args");
    (a.reason().clone(), a.profile().to_string())
}

#[cfg(feature = "kuksa")]
/// The twelve axes of the default config.
pub const AXES: [&str; 12] = [
    "seat_position",
    "seat_height",
    "seat_tilt",
    "backrest_recline",
    "headrest_height",
    "headrest_angle",
    "wheel_tilt",
    "wheel_extension",
    "mirror_driver_tilt",
    "mirror_driver_yaw",
    "mirror_passenger_tilt",
    "mirror_passenger_yaw",
];

// Test configs: the shipped defaults, with stall and timeout limits no loaded machine reaches.

pub use driverprofiled::config::DEFAULT_CONFIG;

/// Stall time of every axis in [`test_config`]: under load the mock's 40 ms position ticks can
/// be starved for far longer than the shipped 200 ms, which a test not about stalls must not
/// see as a stall. Stall tests inject one (`Mock.InjectFault`) and set their own stall time.
pub const TEST_STALL_MS: u64 = 10_000;
/// Motion timeout in [`test_config`] (seconds).
pub const TEST_TIMEOUT_S: u64 = 600;

/// The default config with every stall time [`TEST_STALL_MS`], the motion timeout
/// [`TEST_TIMEOUT_S`], then `edits` (each `from` must occur) applied.
pub fn test_config(edits: &[(&str, &str)]) -> String {
    let mut c = set_stall_ms(DEFAULT_CONFIG, None, TEST_STALL_MS);
    c = edit(
        &c,
        &[(
            "timeout_s = 60\n",
            &format!("timeout_s = {TEST_TIMEOUT_S}\n"),
        )],
    );
    edit(&c, edits)
}

/// `text` with each `(from, to)` replaced once; `from` must occur.
pub fn edit(text: &str, edits: &[(&str, &str)]) -> String {
    let mut c = text.to_string();
    for (from, to) in edits {
        assert!(c.contains(from), "config has no {from:?}");
        c = c.replacen(from, to, 1);
    }
    c
}

/// `text` with the stall time of `axis` (every axis, and the `[motion]` default if the config
/// has one, when `None`) set to `ms`, whether the axis states one or not.
pub fn set_stall_ms(text: &str, axis: Option<&str>, ms: u64) -> String {
    let stall = format!("stall_ms = {ms}");
    let is_stall = |l: &str| l.trim_start().starts_with("stall_ms");
    let mut out: Vec<String> = Vec::new();
    let mut block: Option<Vec<String>> = None;
    let flush = |block: Vec<String>, out: &mut Vec<String>| {
        let name = block.iter().find_map(|l| {
            let v = l.trim_start().strip_prefix("name")?.trim_start();
            Some(v.strip_prefix('=')?.trim().trim_matches('"').to_string())
        });
        if axis.is_some_and(|a| name.as_deref() != Some(a)) {
            out.extend(block);
            return;
        }
        if block.iter().any(|l| is_stall(l)) {
            out.extend(
                block
                    .into_iter()
                    .map(|l| if is_stall(&l) { stall.clone() } else { l }),
            );
        } else {
            let mut lines = block.into_iter();
            out.extend(lines.next());
            out.push(stall.clone());
            out.extend(lines);
        }
    };
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            if let Some(b) = block.take() {
                flush(b, &mut out);
            }
            if t.starts_with("[[axis]]") {
                block = Some(vec![line.to_string()]);
                continue;
            }
        }
        match &mut block {
            Some(b) => b.push(line.to_string()),
            None if axis.is_none() && is_stall(line) => out.push(stall.clone()),
            None => out.push(line.to_string()),
        }
    }
    if let Some(b) = block.take() {
        flush(b, &mut out);
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// Bus + daemon with this config text; the mock runs 100 times faster than real.
pub async fn setup(config: &str) -> (Setup, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let s = Setup::with_args(&["--config", path.to_str().unwrap()]).await;
    s.mock().await.set_speed_factor(100.0).await.unwrap();
    (s, dir)
}

// Positions reached by motion are compared within the axis tolerance: the engine stops an axis
// once it is that close, and where the motor stops depends on when the stop lands.

/// The arrival tolerance of `axis` in the default config (range / 1000 unless set).
pub fn tolerance(axis: &str) -> f64 {
    driverprofiled::config::builtin()
        .expect("built-in config")
        .axes
        .iter()
        .find(|a| a.name == axis)
        .unwrap_or_else(|| panic!("no axis {axis}"))
        .tolerance
}

/// `actual` is within `tol` of `expected`.
#[track_caller]
pub fn assert_near(actual: f64, expected: f64, tol: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: {actual} is not within {tol} of {expected}"
    );
}

/// The daemon shows `axis` within its tolerance of `expected`.
pub async fn assert_position(s: &Setup, axis: &str, expected: f64) {
    let p = s.actuator(axis).await.position().await.unwrap();
    assert_near(p, expected, tolerance(axis), axis);
}

// Key ranging: anchors, and readings of a person standing somewhere. Walks are scenarios of
// the core and run on its fake clock (src/core/tests.rs); the bus only needs a key at the door.

pub const STEP: Duration = Duration::from_millis(100);

/// Anchor positions (metres, car frame: x to the passenger side, y forward), as the shipped
/// `[keys.geometry]` has them.
pub const ANCHORS: [(&str, f64, f64); 4] = [
    ("driver_door", -0.95, 0.2),
    ("passenger_door", 0.95, 0.2),
    ("rear", 0.0, -2.2),
    ("cabin", 0.0, 0.3),
];

/// Where the driver stands to open the door (the shipped `[keys.geometry]`).
pub const DRIVER_SPOT: Point = (-1.45, 0.2);

/// Readings of `key` standing at (x, y).
pub fn readings(key: &str, x: f64, y: f64) -> Vec<(String, String, f64)> {
    ANCHORS
        .iter()
        .map(|(a, ax, ay)| {
            (
                key.to_string(),
                a.to_string(),
                ((x - ax).powi(2) + (y - ay).powi(2)).sqrt(),
            )
        })
        .collect()
}

pub async fn report(s: &Setup, r: Vec<(String, String, f64)>) -> zbus::Result<()> {
    s.vehicle().await.report_ranges(r).await
}

/// A point in the car frame (metres).
pub type Point = (f64, f64);

/// Report `key` standing at `at` every [`STEP`] until `Vehicle.NearestKey` (awaited through
/// its PropertiesChanged signal) is `key`; returns how many reports it took. However late the
/// reports come, this ends as soon as the daemon has seen enough of them.
pub async fn approach(s: &Setup, key: &str, at: Point) -> usize {
    let v = VehicleProxy::builder(&s.conn)
        .cache_properties(CacheProperties::Lazily)
        .build()
        .await
        .expect("vehicle proxy");
    let mut changes = v.receive_nearest_key_changed().await;
    let mut tick = tokio::time::interval(STEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let walk = async {
        let mut n = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    report(s, readings(key, at.0, at.1)).await.unwrap();
                    n += 1;
                }
                c = changes.next() => {
                    let c = c.expect("NearestKey stream ended");
                    if c.get().await.unwrap() == key {
                        return n;
                    }
                }
            }
        }
    };
    tokio::time::timeout(TIMEOUT, walk)
        .await
        .unwrap_or_else(|_| panic!("{key} was not selected"))
}

/// A profile with one key and distinct positions.
pub async fn driver(s: &Setup, name: &str, key: &str, seat: f64) -> OwnedObjectPath {
    let m = s.manager().await;
    let path = m.create_profile(name).await.unwrap();
    let p = s.profile(&path).await;
    p.bind_key(key).await.unwrap();
    p.set_positions(
        [("seat_position", seat), ("wheel_tilt", seat / 4.0)]
            .into_iter()
            .collect(),
    )
    .await
    .unwrap();
    path
}

/// Everything that must halt a motion in progress, and the outcome it must end with.
#[derive(Debug, Clone, Copy)]
pub enum Halt {
    LeavePark,
    SpeedUp,
    Stop,
    ActuatorStop,
    ManualSwitch,
    HandMove,
}

impl Halt {
    pub fn outcome(self) -> &'static str {
        match self {
            Halt::LeavePark | Halt::SpeedUp => "interlocked",
            Halt::Stop | Halt::ActuatorStop => "stopped",
            Halt::ManualSwitch | Halt::HandMove => "overridden",
        }
    }

    /// Do it (the seat is the axis under way).
    pub async fn apply(self, s: &Setup) {
        match self {
            Halt::LeavePark => s.signals(&[("gear", Variant::from("D"))]).await.unwrap(),
            Halt::SpeedUp => s
                .signals(&[("speed_kmh", Variant::from(4.0))])
                .await
                .unwrap(),
            Halt::Stop => s.manager().await.stop().await.unwrap(),
            Halt::ActuatorStop => s.actuator("seat_position").await.stop().await.unwrap(),
            Halt::ManualSwitch => s
                .signals(&[("manual_control", Variant::from(true))])
                .await
                .unwrap(),
            Halt::HandMove => s
                .mock()
                .await
                .set_position("wheel_tilt", 10.0)
                .await
                .unwrap(),
        }
    }
}

/// After a halt: `axis` stopped strictly between `from` and `to`, stays there, all idle.
/// `speed` is the axis' speed (units/s, at the mock's speed factor).
pub async fn assert_halted_between(s: &Setup, axis: &str, from: f64, to: f64, speed: f64) {
    let a = s.actuator(axis).await;
    assert!(!a.moving().await.unwrap());
    assert_eq!(s.manager().await.state().await.unwrap(), "idle");
    let p = a.position().await.unwrap();
    // A measurement window, not a synchronisation: a motor still running would cover
    // `speed * 0.5` in it (or reach `to`). The motor's own report of where it stopped may land
    // in the window and move the shown position by what it ran since its last report: allow
    // a fifth of a second of that, however late the report.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let q = a.position().await.unwrap();
    let lo = from.min(to) + tolerance(axis);
    let hi = from.max(to) - tolerance(axis);
    assert!(
        p > lo && p < hi && q > lo && q < hi,
        "{axis} at {p}, then {q}"
    );
    assert_near(q, p, speed * 0.2, &format!("{axis} kept moving"));
    assert!(!a.moving().await.unwrap());
}

/// For a child process a test starts by re-executing its own binary (to run as another user,
/// or to be killed): when the environment variable `var` names a bus address, connect to it on
/// a current-thread runtime and run `f`; when it is unset (the child run as a test of its
/// own), do nothing.
pub fn child_on_bus<F, Fut>(var: &str, f: F)
where
    F: FnOnce(zbus::Connection) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(address) = std::env::var_os(var) else {
        return;
    };
    let address = address.into_string().expect("address");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let conn = zbus::connection::Builder::address(address.as_str())
                .build()
                .await
                .expect("connect");
            f(conn).await
        });
}

/// Wait until the daemon shows `axis`' property `name` with a value `ok` accepts
/// (PropertiesChanged, after a first read); returns it.
pub async fn wait_prop<T>(s: &Setup, axis: &str, name: &str, ok: impl Fn(&T) -> bool) -> T
where
    T: TryFrom<zbus::OwnedVariant>,
    T::Error: std::fmt::Debug,
{
    let props = s.properties(&actuator_path(axis)).await;
    let mut changes = props.receive_properties_changed().await.unwrap();
    let iface = "org.driverprofiled1.Actuator".try_into().unwrap();
    let now: T = props.get(iface, name).await.unwrap().try_into().unwrap();
    if ok(&now) {
        return now;
    }
    loop {
        let c = next(&mut changes, &format!("{axis} {name}")).await;
        let args = c.args().unwrap();
        let Some(v) = args.changed_properties().get(name) else {
            continue;
        };
        let v = T::try_from(v.try_to_owned().unwrap()).unwrap();
        if ok(&v) {
            return v;
        }
    }
}

/// Recall the profile at `path` (`Manager.SelectProfile`), subscribed to MotionFinished first
/// so that the motion's end cannot be missed; the subscription.
pub async fn recall(s: &Setup, path: &OwnedObjectPath) -> MotionFinishedStream {
    let m = s.manager().await;
    let fin = m
        .receive_motion_finished()
        .await
        .expect("MotionFinished subscription");
    m.select_profile(path)
        .await
        .unwrap_or_else(|e| panic!("SelectProfile({path}): {e}"));
    fin
}

#[cfg(feature = "kuksa")]
/// Ask `axis` to move to `target` (`Actuator.MoveTo`), subscribed to MotionFinished first so
/// that the motion's end cannot be missed; the subscription.
pub async fn move_axis(s: &Setup, axis: &str, target: f64) -> MotionFinishedStream {
    let fin = s
        .manager()
        .await
        .receive_motion_finished()
        .await
        .expect("MotionFinished subscription");
    s.actuator(axis)
        .await
        .move_to(target)
        .await
        .unwrap_or_else(|e| panic!("{axis}.MoveTo({target}): {e}"));
    fin
}
