//! The `driverprofiled-test-broker` program: its arguments, stdin commands and token; and the
//! client's keepalive noticing a broker that stops answering without closing the connection.

use std::process::Stdio;
use std::time::Duration;

use driverprofiled_kuksa::connect::{Address, Bearer, Client, connect};
use driverprofiled_kuksa::proto::value::TypedValue;
use driverprofiled_kuksa::proto::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_driverprofiled-test-broker");
const GEAR: &str = "Vehicle.Powertrain.Transmission.SelectedGear";
const SPEED: &str = "Vehicle.Speed";

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("timed out")
}

struct Broker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    address: String,
}

impl Broker {
    async fn start(args: &[&str]) -> Broker {
        let mut child = Command::new(BIN)
            .args(["--address", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = within(stdout.next_line()).await.unwrap().unwrap();
        let address = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Broker {
            child,
            stdin,
            stdout,
            address,
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        within(self.stdout.next_line()).await.unwrap().unwrap()
    }

    async fn client(&self, token: Option<&str>) -> Client {
        let addr: Address = self.address.parse().unwrap();
        within(connect(
            &addr,
            Bearer::new(token).unwrap(),
            Duration::from_secs(5),
        ))
        .await
        .unwrap()
    }
}

async fn value(c: &mut Client, p: &str) -> Option<Value> {
    c.get_value(GetValueRequest {
        signal_id: Some(SignalId {
            signal: Some(signal_id::Signal::Path(p.into())),
        }),
    })
    .await
    .unwrap()
    .into_inner()
    .data_point
    .unwrap()
    .value
}

fn val(tv: TypedValue) -> Option<Value> {
    Some(Value {
        typed_value: Some(tv),
    })
}

#[tokio::test]
async fn usage_errors_exit_64() {
    for args in [
        &["--bogus"][..],
        &["--address"],
        &["--address", "nowhere"],
        &["--set", "novalue"],
    ] {
        let out = Command::new(BIN).args(args).output().await.unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error:") && err.contains("--help"),
            "{args:?}: {err}"
        );
    }
    let out = Command::new(BIN).arg("--help").output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Not a usage error, but a failure: exit 1 with the reason.
    let out = Command::new(BIN)
        .args(["--vss", "/nonexistent.json"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.json"));
}

#[tokio::test]
async fn initial_values_and_stdin_commands() {
    let mut b = Broker::start(&["--set", &format!("{GEAR}=126")]).await;
    let mut c = b.client(None).await;
    assert_eq!(value(&mut c, GEAR).await, val(TypedValue::Int32(126)));

    let mut s = c
        .subscribe(SubscribeRequest {
            signal_paths: vec![SPEED.into()],
            buffer_size: 10,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    within(s.message()).await.unwrap().unwrap();
    assert_eq!(b.command(&format!("set {SPEED} 12.5")).await, "ok");
    let r = within(s.message()).await.unwrap().unwrap();
    assert_eq!(r.entries[SPEED].value, val(TypedValue::Float(12.5)));
    assert!(
        b.command(&format!("set {SPEED} fast"))
            .await
            .starts_with("error:")
    );
    assert!(b.command("set Vehicle.Nope 1").await.starts_with("error:"));
    assert_eq!(
        b.command(&format!("get {GEAR}")).await,
        format!("{GEAR} = Some(Int32(126))")
    );

    b.stdin.write_all(b"quit\n").await.unwrap();
    let status = within(b.child.wait()).await.unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn token_file() {
    let dir = std::env::temp_dir().join(format!("dp-test-broker-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "abc.def.ghi\n").unwrap();
    let b = Broker::start(&["--token-file", file.to_str().unwrap()]).await;
    let mut c = b.client(None).await;
    let e = c
        .list_metadata(ListMetadataRequest {
            root: "Vehicle".into(),
            filter: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut c = b.client(Some("abc.def.ghi")).await;
    assert!(
        c.list_metadata(ListMetadataRequest {
            root: "Vehicle".into(),
            filter: String::new(),
        })
        .await
        .is_ok()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_frozen_broker_is_noticed_by_the_keepalive() {
    // A broker that stops answering without closing the connection (here: SIGSTOP; in a car:
    // power loss, a cable, a hung host): the client's PINGs go unanswered and its stream
    // fails within the keepalive interval + timeout, instead of waiting forever.
    let b = Broker::start(&[]).await;
    let mut c = b.client(None).await;
    let mut s = c
        .subscribe(SubscribeRequest {
            signal_paths: vec![SPEED.into()],
            buffer_size: 0,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    within(s.message()).await.unwrap().unwrap();
    let pid = b.child.id().unwrap().to_string();
    let stopped = Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .await
        .unwrap();
    assert!(stopped.success());
    let r = within(s.message()).await;
    assert!(r.is_err(), "{r:?}");
    // (kill_on_drop's SIGKILL ends the stopped process.)
}
