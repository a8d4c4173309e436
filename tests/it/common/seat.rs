//! The out-of-process mock seat (`driverprofiled-mock-seat`, a VSS provider), the in-process
//! test broker it talks to, and a `kuksa.val.v2` client to watch and actuate signals.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use driverprofiled_kuksa::broker::{self, BrokerHandle, Listen};
use driverprofiled_kuksa::connect::{Address, Bearer, Client, connect};
use driverprofiled_kuksa::proto::{
    ActuateRequest, SignalId, SubscribeRequest, SubscribeResponse, Value, signal_id,
};
use driverprofiled_kuksa::value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tonic::Streaming;

use super::TIMEOUT;

pub const SEAT_BIN: &str = env!("CARGO_BIN_EXE_driverprofiled-mock-seat");

pub const POSITION: &str = "Vehicle.Cabin.Seat.Row1.DriverSide.Position";
pub const BACKWARD_SWITCH: &str = "Vehicle.Cabin.Seat.Row1.DriverSide.IsBackwardSwitchEngaged";
pub const FORWARD_SWITCH: &str = "Vehicle.Cabin.Seat.Row1.DriverSide.IsForwardSwitchEngaged";

/// Bounds a wait by [`TIMEOUT`]: a broken part fails the test instead of hanging it.
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The test broker with the test VSS on a free local port.
pub async fn start_broker() -> BrokerHandle {
    broker::start(broker::test_vss(), "127.0.0.1:0".parse().unwrap(), None)
        .await
        .expect("start the test broker")
}

/// The broker again where `old` listened (after `old.stop()`).
pub async fn restart_broker(address: &str) -> BrokerHandle {
    let listen: Listen = address.parse().unwrap();
    broker::start(broker::test_vss(), listen, None)
        .await
        .expect("restart the test broker")
}

/// The mock seat process: stdin for commands, stdout for its `ready` lines; killed on drop.
pub struct Seat {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    pub stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Seat {
    /// Start it against the broker at `address` (with the daemon's `config` file, if any) and
    /// wait for its first `ready`.
    pub async fn start(address: &str, config: Option<&Path>, extra: &[&str]) -> Seat {
        let mut s = Seat::spawn(address, config, extra);
        s.ready().await;
        s
    }

    /// Start it without waiting.
    pub fn spawn(address: &str, config: Option<&Path>, extra: &[&str]) -> Seat {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = dir.path().join("seat.stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log");
        let mut cmd = Command::new(SEAT_BIN);
        cmd.args(["--address", address]);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .args(extra)
            .env(
                "RUST_LOG",
                "debug,h2=info,tower=info,hyper=info,hyper_util=info",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn driverprofiled-mock-seat");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Seat {
            child,
            stdin,
            stdout,
            stderr_path,
            _dir: dir,
        }
    }

    /// Wait for its next `ready` line (it claimed the actuators and published the positions).
    pub async fn ready(&mut self) {
        let line = tokio::time::timeout(TIMEOUT, self.stdout.next_line()).await;
        match line {
            Ok(Ok(Some(l))) if l == "ready" => {}
            other => panic!(
                "the mock seat did not say ready ({other:?}):\n{}",
                self.stderr()
            ),
        }
    }

    /// One command on its stdin.
    pub async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the mock seat");
        stdin.flush().await.expect("flush");
    }

    /// Wait for it to exit.
    pub async fn exit(&mut self) -> ExitStatus {
        within("the mock seat to exit", self.child.wait())
            .await
            .expect("wait for the mock seat")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// A client of the broker at `address`.
pub async fn client(address: &str) -> Client {
    let addr: Address = address.parse().unwrap();
    within(
        "a broker connection",
        connect(&addr, Bearer::default(), Duration::from_secs(5)),
    )
    .await
    .expect("connect to the broker")
}

/// `Actuate` `path` to `value`.
pub async fn actuate(c: &mut Client, path: &str, value: Value) -> Result<(), tonic::Status> {
    c.actuate(ActuateRequest {
        signal_id: Some(SignalId {
            signal: Some(signal_id::Signal::Path(path.to_string())),
        }),
        value: Some(value),
    })
    .await
    .map(|_| ())
}

/// A uint8/16/32 value (the seat's Position and Height, the wheel's Tilt and Extension).
pub fn uint(x: u32) -> Value {
    Value {
        typed_value: Some(driverprofiled_kuksa::proto::value::TypedValue::Uint32(x)),
    }
}

/// The number a value holds.
pub fn num(v: &Option<Value>) -> Option<f64> {
    v.as_ref().and_then(value::to_f64)
}

pub fn boolean(v: &Option<Value>) -> Option<bool> {
    v.as_ref().and_then(value::to_bool)
}

/// A subscription, and the latest value of each of its paths.
pub struct Watch {
    stream: Streaming<SubscribeResponse>,
    pub values: HashMap<String, Option<Value>>,
}

impl Watch {
    /// Subscribe to `paths` (buffered: no change is dropped) and take the first response,
    /// which carries every path.
    pub async fn new(c: &mut Client, paths: &[&str]) -> Watch {
        let stream = c
            .subscribe(SubscribeRequest {
                signal_paths: paths.iter().map(|p| p.to_string()).collect(),
                buffer_size: 1000,
                filter: None,
            })
            .await
            .expect("subscribe")
            .into_inner();
        let mut w = Watch {
            stream,
            values: HashMap::new(),
        };
        w.next().await;
        w
    }

    /// The next response; the paths it changed.
    pub async fn next(&mut self) -> Vec<(String, Option<Value>)> {
        let r = within("a subscription response", self.stream.message())
            .await
            .expect("subscription error")
            .expect("subscription ended");
        let changed: Vec<(String, Option<Value>)> =
            r.entries.into_iter().map(|(p, d)| (p, d.value)).collect();
        for (p, v) in &changed {
            self.values.insert(p.clone(), v.clone());
        }
        changed
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.values.get(path).cloned().flatten()
    }

    /// Wait until `pred` holds for the latest values.
    pub async fn until(&mut self, mut pred: impl FnMut(&HashMap<String, Option<Value>>) -> bool) {
        while !pred(&self.values) {
            self.next().await;
        }
    }
}
