//! The `kuksa` actuator backend on the real daemon: every axis `backend = "kuksa"`, the
//! vehicle signals over D-Bus (UpdateSignals), the in-process test broker and an in-test
//! provider (tests/common/kuksa_provider.rs) that claims the axes' actuators and moves them.
#![cfg(feature = "kuksa")]

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::kuksa_provider::Provider;
use common::*;
use driverprofiled::config::AxisConfig;
use driverprofiled_kuksa::broker::{self, BrokerHandle, Listen};
use driverprofiled_kuksa::connect;
use driverprofiled_kuksa::proto::value::TypedValue;
use driverprofiled_kuksa::proto::{DataType, Value};

/// The in-test provider moves this many times faster than the axes' speeds (a recall takes a
/// fraction of a second), except where a test needs the motion to last.
const FAST: f64 = 20.0;

async fn start_broker(listen: Listen) -> BrokerHandle {
    broker::start(broker::test_vss(), listen, None)
        .await
        .unwrap()
}

fn any_port() -> Listen {
    Listen::Tcp("127.0.0.1:0".parse().unwrap())
}

/// The TCP address a broker listens on, to start another one there later.
fn socket(b: &BrokerHandle) -> SocketAddr {
    b.address()
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}

/// The default config (test stall and timeout limits) with every axis on the kuksa backend at
/// `address` (the shipped config gives the axes whose VSS 6.0 signals are integers the
/// tolerance of half a unit they need), then `edits`.
/// The comment the shipped config puts above an integer axis' tolerance.
const WHOLE: &str =
    "# VSS 6.0 carries it in whole units (an integer signal): arrived within half a unit.";

fn kuksa_config(address: &str, edits: &[(&str, &str)]) -> String {
    let c = test_config(&[(
        "address = \"127.0.0.1:55555\"",
        &format!("address = {address:?}"),
    )])
    .replace("backend = \"mock\"", "backend = \"kuksa\"");
    edit(&c, edits)
}

fn axes(config: &str) -> Vec<AxisConfig> {
    driverprofiled::config::parse("test.toml", config)
        .unwrap()
        .axes
}

/// Each axis' `initial`, by VSS path.
fn initial(axes: &[AxisConfig]) -> BTreeMap<String, f64> {
    axes.iter().map(|a| (a.vss.clone(), a.initial)).collect()
}

fn vss(axis: &str) -> String {
    driverprofiled::config::builtin()
        .unwrap()
        .axes
        .into_iter()
        .find(|a| a.name == axis)
        .unwrap()
        .vss
}

/// Bus + the daemon with `config` (its backends as configured, no `--mock`).
async fn daemon(config: &str) -> (Setup, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    (Setup::configured(&path).await, dir)
}

/// `axis`' position is not known (NaN) and, parked (so that nothing else refuses it), a move
/// of it is refused with NotReady.
async fn assert_not_ready(s: &Setup, axis: &str, to: f64) {
    let at = s.actuator(axis).await.position().await.unwrap();
    assert!(at.is_nan(), "{axis} at {at}");
    s.park().await;
    assert_eq!(
        err_name(s.actuator(axis).await.move_to(to).await),
        ErrorName::NotReady.as_str(),
        "{axis}"
    );
}

/// A free TCP port for a broker that is not there yet, and the config for it (not required,
/// retried at least every second).
fn absent_broker() -> (SocketAddr, String) {
    let at = free_port();
    let config = kuksa_config(
        &format!("http://{at}"),
        &[("reconnect_max_s = 30.0", "reconnect_max_s = 1.0")],
    );
    (at, config)
}

/// The seat under way at its own speed (25 mm/s: 130 -> 250 takes seconds): a provider at
/// broker `b` for the axes of `config`, the daemon with `config`, parked, the seat asked to 250
/// (subscribed to MotionFinished first; the Actuate seen at the provider) and seen past 130.
/// The provider, the daemon, its config's directory, the subscription and the first position
/// seen past 130.
async fn seat_under_way(
    b: &BrokerHandle,
    config: &str,
) -> (
    Provider,
    Setup,
    tempfile::TempDir,
    MotionFinishedStream,
    f64,
) {
    let axes = axes(config);
    let mut p = Provider::start(&b.address(), &axes, 1.0, &initial(&axes)).await;
    let (s, d) = daemon(config).await;
    wait_prop(&s, "seat_position", "Position", |x: &f64| *x == 130.0).await;
    s.park().await;
    let fin = move_axis(&s, "seat_position", 250.0).await;
    assert_eq!(p.next_actuation().await, (vss("seat_position"), 250.0));
    let seen = wait_prop(&s, "seat_position", "Position", |x: &f64| *x > 130.0).await;
    (p, s, d, fin, seen)
}

/// Run the daemon with `config` until it exits (it must, at start): its status and stderr.
fn run_to_exit(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let bus = Bus::start();
    let out = Command::new(BIN)
        .args(["--bus", &bus.address, "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Positions: NaN (NotReady) until the provider publishes them; then a recall completes at the
/// targets, each sent as an Actuate of the signal's type.
#[tokio::test]
async fn positions_come_from_the_broker_and_a_recall_completes() {
    let b = start_broker(any_port()).await;
    let config = kuksa_config(&b.address(), &[]);
    let axes = axes(&config);
    // The provider claims the actuators but has published nothing yet.
    let mut p = Provider::start(&b.address(), &axes, FAST, &BTreeMap::new()).await;
    let (s, _d) = daemon(&config).await;
    let m = s.manager().await;
    assert_not_ready(&s, "seat_position", 100.0).await;
    assert_eq!(
        err_name(m.create_profile("Anna").await),
        ErrorName::NotReady.as_str()
    );
    assert_eq!(s.actuator("seat_position").await.fault().await.unwrap(), "");

    for a in &axes {
        p.publish(&a.vss, a.initial);
    }
    for a in &axes {
        let at: f64 = wait_prop(&s, &a.name, "Position", |x: &f64| !x.is_nan()).await;
        assert_eq!(at, a.initial, "{}", a.name);
    }
    assert!(p.taken_actuations().is_empty(), "nothing was actuated");

    let path = m.create_profile("Anna").await.unwrap();
    let targets: BTreeMap<&str, f64> = [
        ("seat_position", 100.0),
        ("seat_height", 40.0),
        ("seat_tilt", 7.5),
        ("backrest_recline", 25.0),
        ("headrest_height", 30.0),
        ("headrest_angle", 10.0),
        ("wheel_tilt", 60.0),
        ("wheel_extension", 40.0),
    ]
    .into();
    s.profile(&path)
        .await
        .set_positions(targets.clone().into_iter().collect())
        .await
        .unwrap();
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = recall(&s, &path).await;
    assert_eq!(started(&mut st).await.0, "recall");
    let (_, outcome) = finished(&mut fin).await;
    assert_eq!(outcome, "completed", "{}", s.daemon.stderr());
    for (axis, t) in &targets {
        let at = s.actuator(axis).await.position().await.unwrap();
        let tol = axes.iter().find(|a| a.name == *axis).unwrap().tolerance;
        assert_near(at, *t, tol, axis);
        assert_eq!(s.actuator(axis).await.fault().await.unwrap(), "", "{axis}");
    }
    // Each axis was actuated to its target (then told to stop where it arrived).
    let got = p.taken_actuations();
    for (axis, t) in &targets {
        assert!(
            got.iter().any(|(path, x)| *path == vss(axis) && x == t),
            "{axis}: no actuation to {t} in {got:?}"
        );
    }
    // The broker's value is where the provider put it.
    assert_eq!(
        b.get(&vss("seat_position")),
        Some(Value {
            typed_value: Some(TypedValue::Uint32(100))
        })
    );
}

/// A provider that takes the actuation and never moves: the core's stall rule halts the
/// motion (outcome fault, the axis' Fault says it stalled).
#[tokio::test]
async fn a_provider_that_never_moves_is_a_stall() {
    let b = start_broker(any_port()).await;
    let config = set_stall_ms(&kuksa_config(&b.address(), &[]), Some("seat_position"), 300);
    let axes = axes(&config);
    let mut p = Provider::start(&b.address(), &axes, FAST, &initial(&axes)).await;
    p.set_stall(true);
    let (s, _d) = daemon(&config).await;
    wait_prop(&s, "seat_position", "Position", |x: &f64| *x == 130.0).await;
    s.park().await;
    let mut fin = move_axis(&s, "seat_position", 200.0).await;
    assert_eq!(p.next_actuation().await, (vss("seat_position"), 200.0));
    assert_eq!(finished(&mut fin).await.1, "fault");
    let fault = s.actuator("seat_position").await.fault().await.unwrap();
    assert!(fault.contains("stalled"), "{fault}");
    // The stop was sent: an actuation of where the seat is.
    assert_eq!(p.next_actuation().await, (vss("seat_position"), 130.0));
}

/// No provider claims the actuator: the broker answers UNAVAILABLE, the axis faults with the
/// broker's words and the motion halts.
#[tokio::test]
async fn no_provider_is_a_fault_with_the_brokers_words() {
    let b = start_broker(any_port()).await;
    let config = kuksa_config(&b.address(), &[]);
    let (s, _d) = daemon(&config).await;
    // Positions known (published as a sensor would), but nobody provides the actuators.
    for a in axes(&config) {
        let ty = signal_type(&b.address(), None, &a.vss).await;
        let v = driverprofiled_kuksa::value::from_f64(a.initial, ty).unwrap();
        b.set(&a.vss, Some(v)).unwrap();
    }
    wait_prop(&s, "wheel_extension", "Position", |x: &f64| *x == 50.0).await;
    s.park().await;
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    s.actuator("wheel_tilt").await.move_to(70.0).await.unwrap();
    assert_eq!(finished(&mut fin).await.1, "fault");
    let fault: String = wait_prop(&s, "wheel_tilt", "Fault", |f: &String| !f.is_empty()).await;
    assert!(fault.contains("Unavailable"), "{fault}");
    assert!(fault.contains(&vss("wheel_tilt")), "{fault}");
}

/// The data type of a signal, as the broker's metadata says.
async fn signal_type(address: &str, token: Option<&str>, path: &str) -> DataType {
    let mut c = connect::connect(
        &address.parse().unwrap(),
        connect::Bearer::new(token).unwrap(),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    let meta = driverprofiled::kuksa::metadata(&mut c, &[path])
        .await
        .unwrap();
    DataType::try_from(meta[path].data_type).unwrap()
}

/// The broker goes away mid-motion: the motion halts (outcome fault, the axis' Fault says the
/// broker was lost). When it is back the daemon reconnects by itself and shows the fresh
/// positions; nothing resumes (the old target is never sent again), and a later move works.
#[tokio::test]
async fn losing_the_broker_halts_and_nothing_resumes_after_the_reconnect() {
    let b = start_broker(any_port()).await;
    let at = socket(&b);
    let config = kuksa_config(
        &b.address(),
        &[("reconnect_max_s = 30.0", "reconnect_max_s = 1.0")],
    );
    let axes = axes(&config);
    let seat = vss("seat_position");
    let (p, s, _d, mut fin, _) = seat_under_way(&b, &config).await;
    let m = s.manager().await;

    b.stop().await;
    assert_eq!(finished(&mut fin).await.1, "fault");
    let fault = s.actuator("seat_position").await.fault().await.unwrap();
    assert!(fault.contains("lost the KUKSA databroker"), "{fault}");
    assert!(!s.actuator("seat_position").await.moving().await.unwrap());
    // Every position is forgotten (NaN), so a move while the broker is away is refused
    // NotReady, not queued for later; every axis says why.
    for a in &axes {
        let at: f64 = wait_prop(&s, &a.name, "Position", |x: &f64| x.is_nan()).await;
        assert!(at.is_nan(), "{}", a.name);
    }
    assert_eq!(
        err_name(s.actuator("wheel_tilt").await.move_to(70.0).await),
        ErrorName::NotReady.as_str()
    );
    let fault = s.actuator("wheel_tilt").await.fault().await.unwrap();
    assert!(fault.contains("lost the KUKSA databroker"), "{fault}");
    let where_it_stopped = p.position(&seat).unwrap();
    assert!(where_it_stopped < 250.0);
    drop(p);

    // Back, with the seat a little further on (it coasted): the daemon shows it.
    let b = start_broker(Listen::Tcp(at)).await;
    let coasted = where_it_stopped.round() + 1.0;
    let mut positions = initial(&axes);
    positions.insert(seat.clone(), coasted);
    let mut p = Provider::start(&b.address(), &axes, 1.0, &positions).await;
    wait_prop(&s, "seat_position", "Position", |x: &f64| *x == coasted).await;
    assert!(!s.actuator("seat_position").await.moving().await.unwrap());
    // The loss of the link was no fault of the axes: their first fresh position clears it.
    for a in &axes {
        wait_prop(&s, &a.name, "Position", |x: &f64| !x.is_nan()).await;
        let fault: String = wait_prop(&s, &a.name, "Fault", |f: &String| f.is_empty()).await;
        assert_eq!(fault, "", "{}", a.name);
    }

    // A later move works; before it, the seat was at most told to stop where it is.
    let mut fin3 = m.receive_motion_finished().await.unwrap();
    s.actuator("seat_position")
        .await
        .move_to(coasted + 5.0)
        .await
        .unwrap();
    assert_eq!(finished(&mut fin3).await.1, "completed");
    let got = p.taken_actuations();
    let moved = got
        .iter()
        .position(|a| *a == (seat.clone(), coasted + 5.0))
        .unwrap_or_else(|| panic!("the move was not sent: {got:?}"));
    for (path, x) in &got[..moved] {
        assert_eq!(path, &seat, "{got:?}");
        assert_eq!(*x, coasted, "only a stop where it is: {got:?}");
    }
    assert!(
        got.iter().all(|(_, x)| *x != 250.0),
        "the old target was sent again: {got:?}"
    );
    let at = s.actuator("seat_position").await.position().await.unwrap();
    assert_near(at, coasted + 5.0, 0.5, "seat_position");
}

/// SIGTERM mid-motion: stop_all tells the broker to stop the running seat where it was last
/// reported, from its own thread and connection, before the daemon exits 0.
#[tokio::test]
async fn a_shutdown_mid_motion_tells_the_provider_to_stop() {
    let b = start_broker(any_port()).await;
    let config = kuksa_config(&b.address(), &[]);
    let seat = vss("seat_position");
    let (mut p, mut s, _d, _fin, seen) = seat_under_way(&b, &config).await;

    // Waited for on a thread of its own: the in-process broker must answer meanwhile.
    let (s, status) = tokio::task::spawn_blocking(move || {
        let status = s.stop_daemon();
        (s, status)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
    let (path, x) = p.next_actuation().await;
    assert_eq!(path, seat);
    assert!((seen..250.0).contains(&x), "stopped at {x}, seen {seen}");
    // Whether the broker answered within STOP_ALL_WAIT depends on the machine's load; that
    // the stop arrived is the point.
    let log = s.daemon.stderr();
    assert!(log.contains("kuksa: stop all: telling it to stop"), "{log}");
}

/// Config mismatches at start exit 78 with a message naming the axis, the path and the
/// problem: a signal the broker does not have, a sensor, another unit.
#[tokio::test]
async fn a_config_that_does_not_match_the_broker_exits_78() {
    let b = start_broker(any_port()).await;
    let seat = vss("seat_position");
    let cases = [
        (
            format!("vss = \"{seat}\""),
            "vss = \"Vehicle.Cabin.Seat.Row1.DriverSide.NoSuchAxis\"".to_string(),
            "axis seat_position (Vehicle.Cabin.Seat.Row1.DriverSide.NoSuchAxis): the broker has \
             no such signal",
        ),
        (
            format!("vss = \"{seat}\""),
            "vss = \"Vehicle.Speed\"".to_string(),
            "axis seat_position (Vehicle.Speed): it is not an actuator (the broker says a sensor)",
        ),
        (
            "unit = \"deg\"\nmin = 0\nmax = 15".to_string(),
            "unit = \"percent\"\nmin = 0\nmax = 15".to_string(),
            "axis seat_tilt (Vehicle.Cabin.Seat.Row1.DriverSide.Tilt): its unit is \"degrees\", \
             the axis' is \"percent\"",
        ),
        (
            // The first integer axis at 50 moving at 10 %/s is wheel_tilt.
            format!("initial = 50\nspeed = 10\n{WHOLE}\ntolerance = 0.5"),
            format!("initial = 50\nspeed = 10\n{WHOLE}\ntolerance = 0.1"),
            "axis wheel_tilt (Vehicle.Chassis.SteeringWheel.Tilt): it is an integer signal \
             (uint8), so the axis reaches targets to the nearest whole percent: give the axis \
             tolerance = 0.5 or more (it has 0.1)",
        ),
    ];
    for (from, to, expected) in cases {
        let config = kuksa_config(&b.address(), &[(&from, &to)]);
        let (code, stderr) = tokio::task::spawn_blocking(move || run_to_exit(&config))
            .await
            .unwrap();
        assert_eq!(code, Some(78), "{stderr}");
        assert!(stderr.contains(expected), "{stderr:?} lacks {expected:?}");
        assert!(stderr.contains("does not match"), "{stderr}");
    }
}

/// A port nothing listens on (taken from the system, then freed).
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `[kuksa] required = true` and no broker: exit 1, saying so.
#[tokio::test]
async fn an_unreachable_required_broker_exits_1() {
    let at = free_port();
    let config = kuksa_config(
        &format!("http://{at}"),
        &[("required = false", "required = true")],
    );
    let (code, stderr) = tokio::task::spawn_blocking(move || run_to_exit(&config))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("required = true"), "{stderr}");
    assert!(stderr.contains(&at.to_string()), "{stderr}");
}

/// Not required and no broker: the daemon starts with the positions not known, and once the
/// broker is there it connects by itself and the positions come.
#[tokio::test]
async fn an_unreachable_broker_that_is_not_required_is_waited_for() {
    let (at, config) = absent_broker();
    let axes = axes(&config);
    let (s, _d) = daemon(&config).await;
    assert_not_ready(&s, "wheel_tilt", 70.0).await;
    let b = start_broker(Listen::Tcp(at)).await;
    let mut p = Provider::start(&b.address(), &axes, FAST, &initial(&axes)).await;
    wait_prop(&s, "wheel_tilt", "Position", |x: &f64| *x == 50.0).await;
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    s.actuator("wheel_tilt").await.move_to(70.0).await.unwrap();
    assert_eq!(p.next_actuation().await, (vss("wheel_tilt"), 70.0));
    assert_eq!(finished(&mut fin).await.1, "completed");
}

/// The broker's VSS, with every "degrees" unit changed to "percent" (a broker of another VSS
/// release, say).
fn vss_with_percent_degrees() -> broker::Vss {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/kuksa/vss/test-vss.json");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("\"unit\": \"degrees\""));
    broker::Vss::from_json(&text.replace("\"unit\": \"degrees\"", "\"unit\": \"percent\"")).unwrap()
}

/// Started before the broker (not required), the daemon finds a mismatch only when the broker
/// comes: it says so as every axis' Fault, and nothing moves (the positions stay unknown).
#[tokio::test]
async fn a_mismatch_found_when_the_broker_comes_faults_every_axis() {
    let (at, config) = absent_broker();
    let (s, _d) = daemon(&config).await;
    let b = broker::start(vss_with_percent_degrees(), Listen::Tcp(at), None)
        .await
        .unwrap();
    let fault: String = wait_prop(&s, "seat_position", "Fault", |f: &String| !f.is_empty()).await;
    assert!(fault.contains("do not match the config"), "{fault}");
    assert!(
        fault.contains(
            "axis seat_tilt (Vehicle.Cabin.Seat.Row1.DriverSide.Tilt): its unit is \"percent\""
        ),
        "{fault}"
    );
    assert_not_ready(&s, "seat_position", 100.0).await;
    drop(b);
}

/// A broker with a token: the daemon sends the one in `[kuksa] token_file` and works; a wrong
/// one is refused (UNAUTHENTICATED), fatal when the broker is required.
#[tokio::test]
async fn the_token_file_is_sent_to_the_broker() {
    let b = broker::start(broker::test_vss(), any_port(), Some("s3cret".into()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.token");
    std::fs::write(&good, "s3cret\n").unwrap();
    let bad = dir.path().join("bad.token");
    std::fs::write(&bad, "guess").unwrap();

    let config = kuksa_config(
        &b.address(),
        &[
            (
                "token_file = \"\"",
                &format!("token_file = {:?}", bad.to_str().unwrap()),
            ),
            ("required = false", "required = true"),
        ],
    );
    let (code, stderr) = tokio::task::spawn_blocking(move || run_to_exit(&config))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Unauthenticated"), "{stderr}");

    let config = kuksa_config(
        &b.address(),
        &[(
            "token_file = \"\"",
            &format!("token_file = {:?}", good.to_str().unwrap()),
        )],
    );
    let (s, _d) = daemon(&config).await;
    let axes = axes(&config);
    // Published through the handle: the daemon's calls are the point here.
    for a in &axes {
        let ty = signal_type(&b.address(), Some("s3cret"), &a.vss).await;
        b.set(
            &a.vss,
            Some(driverprofiled_kuksa::value::from_f64(a.initial, ty).unwrap()),
        )
        .unwrap();
    }
    wait_prop(&s, "wheel_extension", "Position", |x: &f64| *x == 50.0).await;
}

/// While no motion runs, a position change the daemon did not command (a hand on the seat
/// switch, the ECU's own move) is just the new position: no fault, nothing sent back.
#[tokio::test]
async fn a_position_change_while_idle_is_just_a_position() {
    let b = start_broker(any_port()).await;
    let config = kuksa_config(&b.address(), &[]);
    let axes = axes(&config);
    let mut p = Provider::start(&b.address(), &axes, FAST, &initial(&axes)).await;
    let (s, _d) = daemon(&config).await;
    wait_prop(&s, "seat_position", "Position", |x: &f64| *x == 130.0).await;
    p.publish(&vss("seat_position"), 140.0);
    wait_prop(&s, "seat_position", "Position", |x: &f64| *x == 140.0).await;
    let seat = s.actuator("seat_position").await;
    assert_eq!(seat.fault().await.unwrap(), "");
    assert!(!seat.moving().await.unwrap());
    // Nothing was sent: the next actuation is the one a move asks for.
    s.park().await;
    seat.move_to(150.0).await.unwrap();
    assert_eq!(p.next_actuation().await, (vss("seat_position"), 150.0));
    assert!(p.taken_actuations().iter().all(|(_, x)| *x != 130.0));
}

/// A token without the scope to actuate the seat (PERMISSION_DENIED): the move faults the axis
/// with the broker's words, and the other axes still move.
#[tokio::test]
async fn a_denied_actuation_is_a_fault_of_that_axis() {
    let b = start_broker(any_port()).await;
    let config = kuksa_config(&b.address(), &[]);
    let axes = axes(&config);
    let mut p = Provider::start(&b.address(), &axes, FAST, &initial(&axes)).await;
    let (s, _d) = daemon(&config).await;
    wait_prop(&s, "wheel_extension", "Position", |x: &f64| *x == 50.0).await;
    b.deny(&vss("wheel_tilt"), true).unwrap();
    s.park().await;
    let m = s.manager().await;
    let mut fin = m.receive_motion_finished().await.unwrap();
    s.actuator("wheel_tilt").await.move_to(70.0).await.unwrap();
    assert_eq!(finished(&mut fin).await.1, "fault");
    let fault = s.actuator("wheel_tilt").await.fault().await.unwrap();
    assert!(fault.contains("PermissionDenied"), "{fault}");
    assert!(fault.contains(&vss("wheel_tilt")), "{fault}");
    s.actuator("wheel_extension")
        .await
        .move_to(60.0)
        .await
        .unwrap();
    assert_eq!(p.next_actuation().await, (vss("wheel_extension"), 60.0));
    assert_eq!(finished(&mut fin).await.1, "completed");
}

/// One axis' actuations held at the broker (a broker, or a link, slow to take that actuator's
/// requests) do not hold back another axis: each axis has its own queue and its own calls, so
/// the other axis' move and then its stop reach the provider while the held move still waits.
#[tokio::test]
async fn a_slow_actuation_of_one_axis_does_not_hold_back_another() {
    const HOLD: Duration = Duration::from_secs(6);
    let b = start_broker(any_port()).await;
    // Calls may take that long before they count as failed: the held one must not fail here.
    let config = kuksa_config(
        &b.address(),
        &[("connect_timeout_s = 5.0", "connect_timeout_s = 30.0")],
    );
    let axes = axes(&config);
    let mut p = Provider::start(&b.address(), &axes, FAST, &initial(&axes)).await;
    let (s, _d) = daemon(&config).await;
    wait_prop(&s, "wheel_extension", "Position", |x: &f64| *x == 50.0).await;
    let m = s.manager().await;
    let path = m.create_profile("Anna").await.unwrap();
    s.profile(&path)
        .await
        .set_positions([("wheel_tilt", 70.0), ("wheel_extension", 60.0)].into())
        .await
        .unwrap();
    b.hold_actuations(&vss("wheel_tilt"), Some(HOLD)).unwrap();
    s.park().await;
    let asked = std::time::Instant::now();
    let mut fin = recall(&s, &path).await;
    // Both axes move at once (max_concurrent = 2); wheel_tilt's Actuate is held.
    assert_eq!(p.next_actuation().await, (vss("wheel_extension"), 60.0));
    m.stop().await.unwrap();
    assert_eq!(finished(&mut fin).await.1, "stopped");
    // Until the held move comes through, the provider gets wheel_extension's actuations only:
    // its stop (to where it was last reported; also one when it arrives), not behind the
    // held move. (The stall time, 10 s, is longer than the hold: no stall meanwhile.)
    let mut before = Vec::new();
    let held = loop {
        let a = p.next_actuation().await;
        if a.0 == vss("wheel_tilt") {
            break a;
        }
        before.push((a, asked.elapsed()));
    };
    assert_eq!(held.1, 70.0);
    assert!(
        asked.elapsed() >= HOLD,
        "the hold did not hold: {:?}",
        asked.elapsed()
    );
    assert!(
        !before.is_empty()
            && before
                .iter()
                .all(|((path, _), t)| *path == vss("wheel_extension") && *t < HOLD),
        "wheel_extension's stop must come before the held move: {before:?}"
    );
}

/// `stop_all` as a panic hook calls it: synchronously, on the runtime thread that drives the
/// backend, which never runs again meanwhile. The stop still reaches the broker (running on a
/// thread of its own here, as a real broker runs in its own process): a fresh connection on a
/// thread of the backend's own.
#[tokio::test]
async fn stop_all_works_while_the_backends_runtime_is_blocked() {
    use driverprofiled::backend::Router;
    use driverprofiled::core::{AxisId, BackendCommand, Feedback};

    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
    let broker_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let b = start_broker(any_port()).await;
            let config = kuksa_config(&b.address(), &[]);
            let axes = axes(&config);
            let p = Provider::start(&b.address(), &axes, 1.0, &initial(&axes)).await;
            up_tx.send((config, b.actuations())).unwrap();
            let _ = end_rx.await;
            drop(p);
        });
    });
    let (config, mut actuations) = up_rx.recv().unwrap();
    let cfg = driverprofiled::config::parse("test.toml", &config).unwrap();
    let seat = vss("seat_position");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (router, known) = Router::start(&cfg, None, &tx).await.unwrap();
    assert!(known.is_empty(), "positions come as feedback");
    let seat_id = AxisId::of(&cfg, "seat_position").unwrap();
    let mut sent = false;
    let moving = async {
        loop {
            match rx.recv().await.unwrap() {
                Feedback::Position { axis, position } if axis == seat_id => {
                    if position > 130.0 {
                        return position;
                    }
                    if !std::mem::replace(&mut sent, true) {
                        router.command(&BackendCommand::Move {
                            axis,
                            target: 250.0,
                        });
                    }
                }
                Feedback::Fault { axis, message } => panic!("{axis}: {message}"),
                _ => {}
            }
        }
    };
    let seen = tokio::time::timeout(TIMEOUT, moving).await.unwrap();
    let moved = tokio::time::timeout(TIMEOUT, actuations.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.0, seat);
    assert!(actuations.is_empty(), "one move only");

    // Blocks this thread (and so the backend's runtime) until the broker took the stop, or
    // STOP_ALL_WAIT passed.
    router.stop_all("test");
    // It may arrive after STOP_ALL_WAIT on a loaded machine: awaited, not polled.
    let (path, v) = tokio::time::timeout(TIMEOUT, actuations.recv())
        .await
        .expect("the stop did not reach the broker")
        .unwrap();
    assert_eq!(path, seat);
    let at = driverprofiled_kuksa::value::to_f64(&v).unwrap();
    assert!((seen..250.0).contains(&at), "stopped at {at}, seen {seen}");

    let _ = end_tx.send(());
    broker_thread.join().unwrap();
}

/// A stop the broker refuses (here: PERMISSION_DENIED) is not forgotten: it is sent again at
/// the axis' next position report, and the seat stops short of the old target.
#[tokio::test]
async fn a_refused_stop_is_sent_again_at_the_next_report() {
    let b = start_broker(any_port()).await;
    let config = kuksa_config(&b.address(), &[]);
    let seat = vss("seat_position");
    let (mut p, s, _d, mut fin, seen) = seat_under_way(&b, &config).await;
    let actuator = s.actuator("seat_position").await;

    // The provider holds still (publishing nothing) and the broker refuses the seat's
    // actuations: the stop does not arrive.
    p.stall(true).await;
    b.deny(&seat, true).unwrap();
    actuator.stop().await.unwrap();
    finished(&mut fin).await;
    let fault: String = wait_prop(&s, "seat_position", "Fault", |f: &String| {
        f.contains("PermissionDenied")
    })
    .await;
    assert!(fault.contains("(stop)"), "{fault}");
    assert!(p.taken_actuations().is_empty(), "the stop did not arrive");

    // Allowed again, the provider goes on towards 250: its first report brings the stop.
    b.deny(&seat, false).unwrap();
    p.stall(false).await;
    let (path, x) = p.next_actuation().await;
    assert_eq!(path, seat);
    assert!((seen..250.0).contains(&x), "stopped at {x}, seen {seen}");
    assert!(p.position(&seat).unwrap() < 250.0);
}

/// A TCP relay to a broker: `cut()` ends every connection it relays (a broken link: the
/// daemon's subscription fails) while it keeps taking new ones.
struct Relay {
    addr: SocketAddr,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(to: SocketAddr) -> Relay {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                let Ok(mut out) = tokio::net::TcpStream::connect(to).await else {
                    continue;
                };
                kept.lock().unwrap().push(tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }));
            }
        });
        Relay {
            addr,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The link to the broker breaks mid-motion while the broker itself is fine: the running
/// seat is told at once (over a fresh connection) to stop where it was last reported, and
/// once more where the broker reports it after the reconnect; the motion ends with outcome
/// fault, nothing resumes, and the axes' link fault clears with their fresh positions.
#[tokio::test]
async fn a_broken_link_stops_the_running_seat_at_once() {
    let b = start_broker(any_port()).await;
    let relay = Relay::start(socket(&b)).await;
    let config = kuksa_config(&format!("http://{}", relay.addr), &[]);
    let axes = axes(&config);
    let seat = vss("seat_position");
    let mut p = Provider::start(&b.address(), &axes, 1.0, &initial(&axes)).await;
    let (s, _d) = daemon(&config).await;
    wait_prop(&s, "seat_position", "Position", |x: &f64| *x == 130.0).await;
    s.park().await;
    let mut fin = move_axis(&s, "seat_position", 250.0).await;
    assert_eq!(p.next_actuation().await, (seat.clone(), 250.0));
    let seen = wait_prop(&s, "seat_position", "Position", |x: &f64| *x > 130.0).await;

    relay.cut();
    assert_eq!(finished(&mut fin).await.1, "fault");
    // Two stops: the one sent at once (where the daemon last saw it) and the one owed at the
    // first report after the reconnect (where it then is), in whichever order they arrive.
    for _ in 0..2 {
        let (path, x) = p.next_actuation().await;
        assert_eq!(path, seat);
        assert!((seen..250.0).contains(&x), "stopped at {x}, seen {seen}");
    }
    let log = s.daemon.stderr();
    assert!(
        log.contains("the link was lost while it was commanded: stop sent at once"),
        "{log}"
    );
    for a in &axes {
        wait_prop(&s, &a.name, "Position", |x: &f64| !x.is_nan()).await;
        wait_prop(&s, &a.name, "Fault", |f: &String| f.is_empty()).await;
    }
    assert!(!s.actuator("seat_position").await.moving().await.unwrap());
    assert!(
        p.taken_actuations().iter().all(|(_, x)| *x < 250.0),
        "nothing resumed"
    );
}

/// The backend itself (not only the core) never sends a move for an axis whose position it
/// does not know, nor one a stop came after, nor any move once `stop_all` was called.
#[tokio::test]
async fn the_backend_sends_no_move_blind_nor_stopped_nor_after_stop_all() {
    use driverprofiled::backend::Router;
    use driverprofiled::core::{AxisId, BackendCommand, Feedback};

    let b = start_broker(any_port()).await;
    let config = kuksa_config(&b.address(), &[]);
    let axes = axes(&config);
    let mut actuations = b.actuations();
    // Claimed, but no position published yet.
    let p = Provider::start(&b.address(), &axes, FAST, &BTreeMap::new()).await;
    let cfg = driverprofiled::config::parse("test.toml", &config).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (router, _) = Router::start(&cfg, None, &tx).await.unwrap();
    let id = |name: &str| AxisId::of(&cfg, name).unwrap();
    let fault = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Feedback>| loop {
        match tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Feedback::Fault { axis, message } if axis == id("seat_position") => return message,
            _ => {}
        }
    };
    let move_seat = || {
        router.command(&BackendCommand::Move {
            axis: id("seat_position"),
            target: 200.0,
        })
    };
    let reported = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Feedback>, name: &str| loop {
        if let Feedback::Position { axis, .. } = tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .unwrap()
            .unwrap()
            && axis == id(name)
        {
            return;
        }
    };
    // Another axis reports: the session with the broker runs.
    p.publish(&vss("wheel_tilt"), 50.0);
    reported(&mut rx, "wheel_tilt").await;
    move_seat();
    let why = fault(&mut rx).await;
    assert!(why.contains("its position is not known"), "{why}");

    p.publish(&vss("seat_position"), 130.0);
    reported(&mut rx, "seat_position").await;
    // A stop drops its axis' moves not sent yet (both commands are made before the backend's
    // tasks run again): only the stop, where the seat is, reaches the broker.
    move_seat();
    router.command(&BackendCommand::Stop {
        axis: id("seat_position"),
    });
    let (path, v) = tokio::time::timeout(TIMEOUT, actuations.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(path, vss("seat_position"));
    assert_eq!(
        driverprofiled_kuksa::value::to_f64(&v),
        Some(130.0),
        "a stop"
    );

    router.stop_all("test");
    move_seat();
    let why = fault(&mut rx).await;
    assert!(why.contains("every axis was stopped"), "{why}");
    // The refusals are decided before anything is sent: nothing reached the broker.
    assert!(actuations.try_recv().is_err(), "a move was sent");
}
