//! KUKSA helpers shared by the tests: the in-process test broker (`driverprofiled_kuksa::broker`)
//! with the test VSS, daemon configs that use it, publishing vehicle signals as a sensor
//! provider would, and waiting for the daemon to have taken them (a broker value reaches the
//! daemon asynchronously: tests await the property, never sleep).
//!
//! Compiled into every test binary that has `mod common;` (as the rest of the harness); it
//! needs no feature of the daemon, only the dev-dependency's `broker`.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};

use driverprofiled_kuksa::broker::{self, BrokerHandle, Listen, Vss};
use driverprofiled_kuksa::proto::{Value, value::TypedValue};
use zbus::OwnedVariant;
use zbus::names::InterfaceName;

use super::*;

/// The `[kuksa.signals]` of the shipped config (the paths the test VSS has).
pub fn vss_signals() -> driverprofiled::config::VssSignals {
    driverprofiled::config::builtin()
        .expect("built-in config")
        .kuksa
        .signals
}

/// VSS `SelectedGear` values.
pub const GEAR_P: i32 = 126;
pub const GEAR_D: i32 = 127;
pub const GEAR_N: i32 = 0;
pub const GEAR_R: i32 = -1;

pub fn int32(x: i32) -> Value {
    Value {
        typed_value: Some(TypedValue::Int32(x)),
    }
}

pub fn uint32(x: u32) -> Value {
    Value {
        typed_value: Some(TypedValue::Uint32(x)),
    }
}

pub fn float(x: f32) -> Value {
    Value {
        typed_value: Some(TypedValue::Float(x)),
    }
}

pub fn boolean(b: bool) -> Value {
    Value {
        typed_value: Some(TypedValue::Bool(b)),
    }
}

pub fn string(s: &str) -> Value {
    Value {
        typed_value: Some(TypedValue::String(s.into())),
    }
}

/// The in-process test broker with the test VSS, on a TCP port of its own; it can be stopped
/// and started again on the same port (a broker restart, as the daemon sees it).
pub struct TestBroker {
    handle: Option<BrokerHandle>,
    pub addr: SocketAddr,
}

impl TestBroker {
    /// A broker on a free port of 127.0.0.1.
    pub async fn start() -> TestBroker {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// A broker listening on `addr` (port 0: any free port).
    pub async fn start_at(addr: SocketAddr) -> TestBroker {
        Self::start_with(broker::test_vss(), addr).await
    }

    /// A broker with `vss` listening on `addr`.
    pub async fn start_with(vss: Vss, addr: SocketAddr) -> TestBroker {
        Self::start_full(vss, addr, None).await
    }

    /// A broker that refuses every call without `authorization: Bearer <token>`.
    pub async fn start_with_token(token: &str) -> TestBroker {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_full(broker::test_vss(), any, Some(token.to_string())).await
    }

    async fn start_full(vss: Vss, addr: SocketAddr, token: Option<String>) -> TestBroker {
        let handle = broker::start(vss, Listen::Tcp(addr), token)
            .await
            .unwrap_or_else(|e| panic!("test broker on {addr}: {e}"));
        let addr = handle
            .address()
            .trim_start_matches("http://")
            .parse()
            .expect("the broker's address");
        TestBroker {
            handle: Some(handle),
            addr,
        }
    }

    /// "http://127.0.0.1:PORT", for `[kuksa] address`.
    pub fn address(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn handle(&self) -> &BrokerHandle {
        self.handle.as_ref().expect("the broker is stopped")
    }

    /// Stop it: the listener closes and every open stream ends at once.
    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop().await;
        }
    }

    /// Start it again on the same port, with no values (a fresh broker).
    pub async fn restart(&mut self) {
        self.restart_with(broker::test_vss()).await;
    }

    /// Start it again on the same port with `vss` (a broker updated to another VSS).
    pub async fn restart_with(&mut self, vss: Vss) {
        self.stop().await;
        *self = Self::start_with(vss, self.addr).await;
    }

    /// Publish `value` for `path` as a sensor provider does (`None`: no value).
    pub fn set(&self, path: &str, value: Option<Value>) {
        self.handle()
            .set(path, value.clone())
            .unwrap_or_else(|e| panic!("set {path} = {value:?}: {e}"));
    }

    pub fn gear(&self, g: i32) {
        self.set(&vss_signals().gear, Some(int32(g)));
    }

    pub fn speed(&self, kmh: f32) {
        self.set(&vss_signals().speed, Some(float(kmh)));
    }

    pub fn driver_door_open(&self, b: bool) {
        self.set(&vss_signals().driver_door_open, Some(boolean(b)));
    }

    pub fn doors_locked(&self, b: bool) {
        self.set(&vss_signals().doors_locked, Some(boolean(b)));
    }

    pub fn belt(&self, b: bool) {
        self.set(&vss_signals().driver_belt, Some(boolean(b)));
    }

    /// OCCUPIED, EMPTY or UNKNOWN.
    pub fn driver_seat(&self, status: &str) {
        self.set(&vss_signals().driver_seat_occupancy, Some(string(status)));
    }

    pub fn rear_seat(&self, status: &str) {
        self.set(&vss_signals().rear_occupancy, Some(string(status)));
    }

    /// Brake pedal position, percent (VSS uint8).
    pub fn brake(&self, percent: u32) {
        self.set(&vss_signals().brake, Some(uint32(percent)));
    }

    /// The `i`th of `[kuksa.signals] manual_switches`.
    pub fn switch(&self, i: usize, engaged: bool) {
        self.set(&vss_signals().manual_switches[i], Some(boolean(engaged)));
    }
}

/// The test config (see [`test_config`]) reading the vehicle signals from the broker at
/// `address`, reconnecting within a second, then `edits`.
pub fn kuksa_config(address: &str, edits: &[(&str, &str)]) -> String {
    let address = format!("address = \"{address}\"");
    let mut all: Vec<(&str, &str)> = vec![
        ("source = \"dbus\"", "source = \"kuksa\""),
        ("address = \"127.0.0.1:55555\"", &address),
        ("reconnect_max_s = 30.0", "reconnect_max_s = 1.0"),
        ("connect_timeout_s = 5.0", "connect_timeout_s = 2.0"),
    ];
    all.extend_from_slice(edits);
    test_config(&all)
}

/// Wait until the daemon's `org.driverprofiled1.Vehicle` property `name` is `want` (awaited
/// through PropertiesChanged; at most [`TIMEOUT`]).
pub async fn wait_vehicle<T>(s: &Setup, name: &str, want: T)
where
    T: TryFrom<OwnedVariant> + PartialEq + Debug,
{
    let props = s.properties(ROOT).await;
    let mut changes = props
        .receive_properties_changed()
        .await
        .expect("subscribe PropertiesChanged");
    let iface = InterfaceName::from_static_str(driverprofiled_api::interface::VEHICLE)
        .expect("interface name");
    let mut last = None;
    let wait = async {
        loop {
            let v = props
                .get(iface.clone(), name)
                .await
                .expect("Vehicle property");
            let v = T::try_from(v).ok();
            if v.as_ref() == Some(&want) {
                return;
            }
            last = Some(v);
            changes
                .next()
                .await
                .expect("PropertiesChanged stream ended");
        }
    };
    if tokio::time::timeout(TIMEOUT, wait).await.is_err() {
        panic!("Vehicle.{name} did not become {want:?} (last {last:?})");
    }
}

/// The test VSS with the leaf `name` (e.g. "SelectedGear") renamed: its signal is missing.
pub fn vss_without(name: &str) -> Vss {
    let from = format!("\"{name}\":");
    assert!(
        broker::TEST_VSS_JSON.contains(&from),
        "no {name} in the test VSS"
    );
    let text = broker::TEST_VSS_JSON.replacen(&from, &format!("\"{name}Renamed\":"), 1);
    Vss::from_json(&text).expect("the edited test VSS")
}

/// Wait until the daemon's log (stderr) has a line containing `needle`. Only for what the
/// daemon shows nowhere else (it stays as it is and says why only in the log): polls the
/// file, at most [`TIMEOUT`].
pub async fn wait_log(s: &Setup, needle: &str) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !s.daemon.stderr().contains(needle) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon never logged {needle:?}:\n{}",
            s.daemon.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// How many lines of the daemon's log contain `needle`.
pub fn log_count(s: &Setup, needle: &str) -> usize {
    s.daemon
        .stderr()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Wait until the daemon's log has `n` lines containing `needle` (see [`wait_log`]): what it
/// did again, e.g. a retry.
pub async fn wait_log_count(s: &Setup, needle: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while log_count(s, needle) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon logged {needle:?} fewer than {n} times:\n{}",
            s.daemon.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Publish P at standstill and wait until the daemon shows it (motion allowed).
pub async fn park(b: &TestBroker, s: &Setup) {
    b.gear(GEAR_P);
    b.speed(0.0);
    wait_vehicle(s, "Gear", "P".to_string()).await;
    wait_vehicle(s, "SpeedKmh", 0.0).await;
    wait_vehicle(s, "Interlock", String::new()).await;
}

/// Publish D and wait until the daemon shows it.
pub async fn drive(b: &TestBroker, s: &Setup) {
    b.gear(GEAR_D);
    wait_vehicle(s, "Gear", "D".to_string()).await;
}

/// Broker + bus + daemon (mock backend, 100 times faster than real) reading its vehicle
/// signals from the broker; the config's `edits` on top of [`kuksa_config`].
pub async fn kuksa_setup(edits: &[(&str, &str)]) -> (TestBroker, Setup, tempfile::TempDir) {
    let b = TestBroker::start().await;
    let (s, d) = setup(&kuksa_config(&b.address(), edits)).await;
    (b, s, d)
}

/// A free TCP port of 127.0.0.1 now (nothing listens there until a test starts something).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("its address")
}

/// Run the daemon (mock backend) with `config` on `bus` until it exits by itself; its status
/// and stderr. Panics if it is still running after [`TIMEOUT`] (it should have refused to
/// start).
pub async fn run_until_exit(bus: &Bus, config: &str) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("write config");
    let state = dir.path().join("state");
    let mut child = tokio::process::Command::new(BIN)
        .args(["--bus", &bus.address, "--mock", "--config"])
        .arg(&path)
        .arg("--state-dir")
        .arg(&state)
        .env("RUST_LOG", "debug,zbus=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn driverprofiled");
    let mut stderr = child.stderr.take().expect("stderr");
    let read = async {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s)
            .await
            .expect("read stderr");
        s
    };
    match tokio::time::timeout(TIMEOUT, async { tokio::join!(child.wait(), read) }).await {
        Ok((status, err)) => (status.expect("wait for driverprofiled"), err),
        Err(_) => panic!("driverprofiled kept running with this config"),
    }
}
