//! Authorisation, twice: the bus policy (`data/org.driverprofiled1.conf`, from the checkout) and
//! the daemon's own check (`[access]`). The real daemon runs as the service user on a system-like
//! `dbus-daemon`; each client is this test binary again (`client_helper`), run as uid 65534
//! through `setpriv` with the group of one role, or none. For every mutating method and each
//! role: allowed where the policy says, AccessDenied elsewhere, and nothing changed by a denied
//! call. Then the same on a bus that allows everything: the daemon's check alone holds.
//!
//! These tests need root (CI runs them as root and they must not skip there); elsewhere they
//! print why they skip.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::system::*;
use common::*;
use driverprofiled_api::interface::{ACTUATOR, MANAGER, MOCK, PROFILE, VEHICLE};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use zbus::proxy::CacheProperties;
use zbus::{Connection, ObjectPath};

/// Set in a client's environment: the bus it connects to.
const CLIENT_ENV: &str = "DRIVERPROFILED_TEST_CLIENT_BUS";
/// Begins each answer of a client.
const MARK: &str = "@@ ";
const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ui,
    Gateway,
    Developer,
    /// In none of the groups.
    Nobody,
}

/// The role a method needs.
#[derive(Debug, Clone, Copy)]
enum Need {
    Ui,
    Gateway,
    Developer,
    /// Any of the three (Stop, Inhibit).
    Any,
}

impl Need {
    /// As the daemon's AccessDenied message says it.
    fn words(self) -> &'static str {
        match self {
            Need::Ui => "ui",
            Need::Gateway => "gateway",
            Need::Developer => "developer",
            Need::Any => "ui, gateway or developer",
        }
    }
}

impl Role {
    const ALL: [Role; 4] = [Role::Ui, Role::Gateway, Role::Developer, Role::Nobody];

    fn holds(self, need: Need) -> bool {
        matches!(
            (self, need),
            (Role::Ui | Role::Gateway | Role::Developer, Need::Any)
                | (Role::Ui, Need::Ui)
                | (Role::Gateway, Need::Gateway)
                | (Role::Developer, Need::Developer)
        )
    }

    fn groups(self, u: &Users) -> Vec<u32> {
        match self {
            Role::Ui => vec![u.ui],
            Role::Gateway => vec![u.gateway],
            Role::Developer => vec![u.developer],
            Role::Nobody => vec![],
        }
    }
}

/// Every mutating call: the client's command, the method as the daemon names it, the role.
const CALLS: [(&str, &str, Need); 23] = [
    ("CreateProfile", "Manager.CreateProfile", Need::Ui),
    ("SelectProfile", "Manager.SelectProfile", Need::Ui),
    ("Stop", "Manager.Stop", Need::Any),
    ("ImportProfiles", "Manager.ImportProfiles", Need::Ui),
    ("ImportProfilesEx", "Manager.ImportProfilesEx", Need::Ui),
    ("Inhibit", "Manager.Inhibit", Need::Any),
    ("SetPositions", "Profile.SetPositions", Need::Ui),
    (
        "SaveCurrentPositions",
        "Profile.SaveCurrentPositions",
        Need::Ui,
    ),
    ("BindKey", "Profile.BindKey", Need::Ui),
    ("UnbindKey", "Profile.UnbindKey", Need::Ui),
    ("Delete", "Profile.Delete", Need::Ui),
    ("SetName", "Profile.Name (set)", Need::Ui),
    ("SetEasyExit", "Profile.EasyExit (set)", Need::Ui),
    ("SetAutoSave", "Profile.AutoSave (set)", Need::Ui),
    ("SetReverseTilt", "Profile.ReverseTilt (set)", Need::Ui),
    (
        "SetReverseTiltEnabled",
        "Profile.ReverseTiltEnabled (set)",
        Need::Ui,
    ),
    ("MoveTo", "Actuator.MoveTo", Need::Ui),
    ("ActuatorStop", "Actuator.Stop", Need::Any),
    ("UpdateSignals", "Vehicle.UpdateSignals", Need::Gateway),
    ("ReportRanges", "Vehicle.ReportRanges", Need::Gateway),
    ("SetSpeedFactor", "Mock.SetSpeedFactor", Need::Developer),
    ("InjectFault", "Mock.InjectFault", Need::Developer),
    ("SetPosition", "Mock.SetPosition", Need::Developer),
];

/// Reading, open to everyone.
const READS: [&str; 5] = ["Get", "GetAll", "GetManagedObjects", "Introspect", "Ping"];

#[tokio::test]
async fn shipped_policy_each_role_each_mutating_method() {
    matrix(
        Policy::Shipped,
        "shipped_policy_each_role_each_mutating_method",
    )
    .await;
}

#[tokio::test]
async fn permissive_bus_the_daemon_alone_denies() {
    matrix(Policy::Permissive, "permissive_bus_the_daemon_alone_denies").await;
}

async fn matrix(policy: Policy, test: &str) {
    let Some(users) = users_or_skip(test) else {
        return;
    };
    let mut w = World::start(policy, users).await;
    w.s.mock().await.set_speed_factor(100.0).await.unwrap();
    w.s.park().await;
    let mut names = Vec::new();
    for role in Role::ALL {
        let mut c = w.client(role).await;
        for (cmd, method, need) in CALLS {
            w.check(&mut c, role, cmd, method, need).await;
        }
        for read in READS {
            let (name, msg) = c.call(read).await;
            assert_eq!(name, "ok", "{role:?} may read ({read}): {msg}");
        }
        if policy == Policy::Shipped {
            let (name, msg) = c.call("Own").await;
            assert_eq!(name, ACCESS_DENIED, "{role:?} may not own the name: {msg}");
        }
        names.push((role, c.finish().await));
    }

    let log = w.s.daemon.stderr();
    let denials: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("access denied"))
        .collect();
    match policy {
        // The bus stops every call the daemon would deny: the two layers agree.
        Policy::Shipped => assert!(denials.is_empty(), "calls got past the bus: {denials:#?}"),
        // Each denial is logged with the uid and the method (every method is denied to someone).
        Policy::Permissive => {
            for (_, method, _) in CALLS {
                let line = format!("access denied: uid {CLIENT_UID} may not call {method} (");
                assert!(log.contains(&line), "no {line:?} in the log:\n{log}");
            }
        }
    }
    if policy == Policy::Permissive {
        // One credentials lookup per connection for its 18 calls; forgotten once it has gone.
        for (role, name) in &names {
            let lookups = log
                .matches(&format!("caller {name}: uid {CLIENT_UID}"))
                .count();
            assert_eq!(
                lookups, 1,
                "{role:?} ({name}): credentials looked up {lookups} times"
            );
            w.s.daemon_logs(&format!("caller {name} has left the bus"))
                .await;
        }
    }
}

/// The daemon on a system-like bus, the client executable, and root's view of the daemon.
struct World {
    s: Setup,
    policy: Policy,
    users: &'static Users,
    /// The test binary, where the clients can run it.
    exe: PathBuf,
    _staging: tempfile::TempDir,
    /// Numbers the objects each call works on.
    n: u32,
}

impl World {
    async fn start(policy: Policy, users: &'static Users) -> World {
        let staging = tempfile::tempdir().unwrap();
        let bin = runnable_by_others(staging.path(), Path::new(BIN));
        let exe = runnable_by_others(staging.path(), &std::env::current_exe().unwrap());
        let bus = Bus::start_with(|dir| system_bus_config(dir, policy));
        let state = tempfile::tempdir().unwrap();
        give(state.path(), users.service);
        let conn = bus.connect().await;
        let (uid, gid) = users.service;
        let daemon = Daemon::start_as(
            &conn,
            &bus,
            state.path(),
            &[],
            &bin,
            &as_user(uid, gid, &[]),
        )
        .await;
        World {
            s: Setup {
                bus,
                state,
                conn,
                daemon,
            },
            policy,
            users,
            exe,
            _staging: staging,
            n: 0,
        }
    }

    async fn client(&self, role: Role) -> Client {
        let wrapper = as_user(CLIENT_UID, CLIENT_UID, &role.groups(self.users));
        Client::spawn(&wrapper, &self.exe, &self.s.bus.address).await
    }

    async fn manager(&self) -> ManagerProxy<'static> {
        ManagerProxy::builder(&self.s.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap()
    }

    /// Wait until nothing moves.
    async fn wait_idle(&self) {
        let m = self.manager().await;
        let mut finished = m.receive_motion_finished().await.unwrap();
        while m.state().await.unwrap() == "moving" {
            next(&mut finished, "MotionFinished").await;
        }
    }

    /// Wait until no inhibitor is held (through `Inhibitors`' PropertiesChanged).
    async fn wait_uninhibited(&self) {
        let m = ManagerProxy::builder(&self.s.conn)
            .cache_properties(CacheProperties::Lazily)
            .build()
            .await
            .unwrap();
        let mut changes = m.receive_inhibitors_changed().await;
        if self.manager().await.inhibitors().await.unwrap().is_empty() {
            return;
        }
        while !next(&mut changes, "Inhibitors empty")
            .await
            .get()
            .await
            .unwrap()
            .is_empty()
        {}
    }

    /// Everything a client can read: every object's properties, Manager's and Vehicle's.
    async fn snapshot(&self) -> BTreeMap<String, String> {
        let conn = &self.s.conn;
        let mut out = BTreeMap::new();
        let om = zbus::fdo::ObjectManagerProxy::builder(conn)
            .destination(NAME)
            .path(ROOT)
            .build()
            .await
            .unwrap();
        for (path, ifaces) in om.get_managed_objects().await.unwrap() {
            for (iface, props) in ifaces {
                for (k, v) in props {
                    out.insert(format!("{path} {iface}.{k}"), format!("{v:?}"));
                }
            }
        }
        let props = zbus::fdo::PropertiesProxy::builder(conn)
            .destination(NAME)
            .path(ROOT)
            .build()
            .await
            .unwrap();
        for iface in [MANAGER, VEHICLE] {
            let all = props.get_all(iface.try_into().unwrap()).await.unwrap();
            for (k, v) in all {
                out.insert(format!("{ROOT} {iface}.{k}"), format!("{v:?}"));
            }
        }
        // Where the keys are changes with time alone (a key with no reading expires), not
        // with a call.
        out.retain(|k, _| !k.ends_with(".KeyEstimates"));
        out
    }

    /// An actuated move of `axis` by `by` completes at once: no stall injected, no slowed
    /// simulation.
    async fn assert_motion_normal(&self, axis: &str, by: f64) {
        let a = self.s.actuator(axis).await;
        let m = self.manager().await;
        let mut finished = m.receive_motion_finished().await.unwrap();
        let from = a.position().await.unwrap();
        let to = if from + by <= a.max().await.unwrap() {
            from + by
        } else {
            from - by
        };
        a.move_to(to).await.unwrap();
        let sig = tokio::time::timeout(Duration::from_secs(3), finished.next())
            .await
            .expect("a 5 unit move did not finish within 3 s: the simulation was slowed")
            .expect("MotionFinished");
        let args = sig.args().unwrap();
        assert_eq!(
            (args.reason().as_str(), args.outcome().as_str()),
            ("manual", "completed"),
            "{axis}: {}",
            a.fault().await.unwrap()
        );
    }

    /// One mutating call by one role, from a fresh profile, with state compared around it.
    async fn check(&mut self, c: &mut Client, role: Role, cmd: &str, method: &str, need: Need) {
        self.n += 1;
        let n = self.n;
        let root = &self.s;
        let m = self.manager().await;
        // A fresh profile with a key, its seat apart from where the seat is.
        let path = m.create_profile(&format!("p{n}")).await.unwrap();
        let p = root.profile(&path).await;
        p.bind_key(&format!("k{n}")).await.unwrap();
        let seat = HashMap::from([("seat_position", f64::from(n))]);
        p.set_positions(seat).await.unwrap();
        let height = root.actuator("seat_height").await.position().await.unwrap();
        let other_height = if height > 35.0 {
            height - 10.0
        } else {
            height + 10.0
        };
        let stop = matches!(cmd, "Stop" | "ActuatorStop");
        if stop {
            // A motion to stop: the seat across its travel, at its real speed (5 s or more).
            self.wait_idle().await;
            root.mock().await.set_speed_factor(1.0).await.unwrap();
            let a = root.actuator("seat_position").await;
            let to = if a.position().await.unwrap() < 130.0 {
                260.0
            } else {
                0.0
            };
            a.move_to(to).await.unwrap();
        }
        // Input a denial must not quote. No hex digit first: the bus daemon's own denials
        // name the test binary, whose file name ends in a hash.
        let (name, key, new_name) = (format!("n{n}"), format!("k{n}"), format!("r{n}"));
        let line = match cmd {
            "CreateProfile" | "ImportProfiles" | "ImportProfilesEx" => format!("{cmd} {name}"),
            "BindKey" => format!("BindKey {path} b{n}"),
            "UnbindKey" => format!("UnbindKey {path} {key}"),
            "SetName" => format!("SetName {path} {new_name}"),
            "MoveTo" | "SetPosition" => format!("{cmd} seat_height {other_height}"),
            "ActuatorStop" => "ActuatorStop seat_position".to_string(),
            "ReportRanges" => format!("ReportRanges {key}"),
            // Slow the simulation a thousandfold; stall the seat height.
            "SetSpeedFactor" => "SetSpeedFactor 0.001".to_string(),
            "InjectFault" => "InjectFault seat_height stall".to_string(),
            "Stop" | "Inhibit" | "UpdateSignals" => cmd.to_string(),
            _ => format!("{cmd} {path}"),
        };
        if !stop {
            self.wait_idle().await;
        }
        let before = self.snapshot().await;
        let (reply, msg) = c.call(&line).await;
        let what = format!("{role:?} {method} ({:?} policy)", self.policy);
        if role.holds(need) {
            assert_eq!(reply, "ok", "{what} must be allowed: {msg}");
            if stop {
                assert_eq!(m.state().await.unwrap(), "idle", "{what} did not stop");
            }
        } else {
            assert_eq!(reply, ACCESS_DENIED, "{what} must be denied: {msg}");
            for input in [&name, &key, &new_name] {
                assert!(
                    !msg.contains(input.as_str()),
                    "{what}: {msg:?} quotes input"
                );
            }
            if self.policy == Policy::Permissive {
                assert_eq!(msg, format!("{method} needs the {} role", need.words()));
            }
            if stop {
                assert_eq!(
                    m.state().await.unwrap(),
                    "moving",
                    "{what} stopped the motion"
                );
            } else {
                let after = self.snapshot().await;
                let changed: Vec<_> = after
                    .iter()
                    .filter(|(k, v)| before.get(*k) != Some(v))
                    .map(|(k, v)| format!("{k}: {:?} -> {v}", before.get(k)))
                    .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
                    .collect();
                assert!(changed.is_empty(), "{what} changed {changed:#?}");
            }
            if matches!(cmd, "SetSpeedFactor" | "InjectFault") {
                // Neither shows in a property: a motion shows it.
                self.assert_motion_normal("seat_height", 5.0).await;
            }
        }

        // Put everything back for the next call.
        let mock = root.mock().await;
        if stop {
            m.stop().await.unwrap();
        }
        match cmd {
            "Stop" | "ActuatorStop" | "SetSpeedFactor" => {
                mock.set_speed_factor(100.0).await.unwrap()
            }
            "InjectFault" => mock.inject_fault("seat_height", "none").await.unwrap(),
            "UpdateSignals" => root
                .signals(&[("rear_occupied", false.into())])
                .await
                .unwrap(),
            "Inhibit" => self.wait_uninhibited().await,
            _ => {}
        }
        self.wait_idle().await;
        for p in m.profiles().await.unwrap() {
            root.profile(&p).await.delete().await.unwrap();
        }
    }
}

impl Setup {
    /// Wait until the daemon's log has `line` (it logs what it does as it does it).
    async fn daemon_logs(&self, line: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.daemon.stderr().contains(line) {
            assert!(
                Instant::now() < deadline,
                "the daemon never logged {line:?}:\n{}",
                self.daemon.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A client process: this test binary as another user, in `client_helper` mode. It takes one
/// command a line and answers `@@ ok` or `@@ ERROR-NAME message`.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    name: String,
}

impl Client {
    async fn spawn(wrapper: &[String], exe: &Path, address: &str) -> Client {
        let mut child = tokio::process::Command::new(&wrapper[0])
            .args(&wrapper[1..])
            .arg(exe)
            .args([
                "--exact",
                "access::client_helper",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CLIENT_ENV, address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn a client");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut c = Client {
            child,
            stdin,
            stdout,
            name: String::new(),
        };
        let hello = c.answer().await;
        c.name = hello
            .strip_prefix("name ")
            .unwrap_or_else(|| panic!("client: {hello}"))
            .to_string();
        c
    }

    /// The client's next answer (the test harness prints lines of its own around them).
    async fn answer(&mut self) -> String {
        loop {
            let line = tokio::time::timeout(TIMEOUT, self.stdout.next_line())
                .await
                .expect("the client did not answer")
                .expect("read from the client")
                .expect("the client ended");
            // The harness may have begun the line ("test access::client_helper ... ").
            if let Some((_, a)) = line.split_once(MARK) {
                return a.to_string();
            }
        }
    }

    /// Run one command: ("ok", "") or (error name, message).
    async fn call(&mut self, line: &str) -> (String, String) {
        let stdin = self.stdin.as_mut().expect("client running");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        let a = self.answer().await;
        let (name, msg) = a.split_once(' ').unwrap_or((&a, ""));
        (name.to_string(), msg.to_string())
    }

    /// End the client (it exits at the end of its input); its unique name.
    async fn finish(mut self) -> String {
        drop(self.stdin.take());
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("the client did not exit")
            .unwrap();
        assert!(status.success(), "client: {status}");
        self.name
    }
}

/// The client side, run as another user by [`Client::spawn`]; a no-op as a test of its own.
#[test]
fn client_helper() {
    child_on_bus(CLIENT_ENV, |conn| async move {
        println!("{MARK}name {}", conn.unique_name().expect("unique name"));
        // Blocking reads are fine: nothing is under way between commands.
        for line in std::io::stdin().lines() {
            let line = line.expect("stdin");
            let words: Vec<&str> = line.split(' ').collect();
            match command(&conn, &words).await {
                Ok(()) => println!("{MARK}ok"),
                Err(e) => {
                    let (name, msg) = describe(&e);
                    println!("{MARK}{name} {}", msg.replace('\n', " "));
                }
            }
        }
    });
}

/// The error name and message of a failed call.
fn describe(e: &zbus::Error) -> (String, String) {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            (name.to_string(), msg.clone().unwrap_or_default())
        }
        zbus::Error::FDO(f) => {
            let f: &dyn zbus::DBusError = f.as_ref();
            (
                f.name().to_string(),
                f.description().unwrap_or("").to_string(),
            )
        }
        e => ("other".to_string(), e.to_string()),
    }
}

async fn call<B>(
    conn: &Connection,
    path: &str,
    iface: &str,
    member: &str,
    body: &B,
) -> zbus::Result<()>
where
    B: serde::Serialize + zbus::DynamicType,
{
    conn.call_method(Some(NAME), path, Some(iface), member, body)
        .await
        .map(drop)
}

/// One client command: the call, with fixed arguments where the test passes none.
async fn command(conn: &Connection, w: &[&str]) -> zbus::Result<()> {
    let arg = |i: usize| w.get(i).copied().unwrap_or("");
    let num = |i: usize| arg(i).parse::<f64>().unwrap_or(f64::NAN);
    let axis = actuator_path(arg(1));
    let props = "org.freedesktop.DBus.Properties";
    match w[0] {
        "CreateProfile" => call(conn, ROOT, MANAGER, "CreateProfile", &(arg(1),)).await,
        "SelectProfile" => {
            let p = ObjectPath::try_from(arg(1))?;
            call(conn, ROOT, MANAGER, "SelectProfile", &(p,)).await
        }
        "Stop" => call(conn, ROOT, MANAGER, "Stop", &()).await,
        "ImportProfiles" => {
            // Merged: a new profile beside the others.
            let p = (
                arg(1),
                true,
                HashMap::from([("seat_position", 100.0)]),
                vec!["ik"],
            );
            call(
                conn,
                ROOT,
                MANAGER,
                "ImportProfiles",
                &(vec![p], "merge", false),
            )
            .await
        }
        "ImportProfilesEx" => {
            let fields = HashMap::from([
                ("auto_save", zbus::Variant::from(true)),
                ("keys", zbus::Variant::from(vec!["ixk"])),
            ]);
            let p = (arg(1), fields);
            let args = (vec![p], "merge", false);
            call(conn, ROOT, MANAGER, "ImportProfilesEx", &args).await
        }
        // The reply, and with it the descriptor, is dropped at once: the inhibitor ends.
        "Inhibit" => call(conn, ROOT, MANAGER, "Inhibit", &("access-test", "a test")).await,
        "SetPositions" => {
            let positions = HashMap::from([("seat_position", 100.0)]);
            call(conn, arg(1), PROFILE, "SetPositions", &(positions,)).await
        }
        "SaveCurrentPositions" => call(conn, arg(1), PROFILE, "SaveCurrentPositions", &()).await,
        "BindKey" => call(conn, arg(1), PROFILE, "BindKey", &(arg(2),)).await,
        "UnbindKey" => call(conn, arg(1), PROFILE, "UnbindKey", &(arg(2),)).await,
        "Delete" => call(conn, arg(1), PROFILE, "Delete", &()).await,
        "SetName" => {
            let v = zbus::Variant::from(arg(2));
            call(conn, arg(1), props, "Set", &(PROFILE, "Name", v)).await
        }
        "SetEasyExit" => {
            let v = zbus::Variant::from(false);
            call(conn, arg(1), props, "Set", &(PROFILE, "EasyExit", v)).await
        }
        "SetAutoSave" => {
            let v = zbus::Variant::from(true);
            call(conn, arg(1), props, "Set", &(PROFILE, "AutoSave", v)).await
        }
        "SetReverseTilt" => {
            let positions = HashMap::from([("mirror_passenger_tilt", -30.0)]);
            let v = zbus::Variant::from(positions);
            call(conn, arg(1), props, "Set", &(PROFILE, "ReverseTilt", v)).await
        }
        "SetReverseTiltEnabled" => {
            let v = zbus::Variant::from(false);
            call(
                conn,
                arg(1),
                props,
                "Set",
                &(PROFILE, "ReverseTiltEnabled", v),
            )
            .await
        }
        "MoveTo" => call(conn, &axis, ACTUATOR, "MoveTo", &(num(2),)).await,
        "ActuatorStop" => call(conn, &axis, ACTUATOR, "Stop", &()).await,
        "UpdateSignals" => {
            let signals = HashMap::from([("rear_occupied", zbus::Variant::from(true))]);
            call(conn, ROOT, VEHICLE, "UpdateSignals", &(signals,)).await
        }
        "ReportRanges" => {
            let r = readings(arg(1), -1.5, 0.0);
            call(conn, ROOT, VEHICLE, "ReportRanges", &(r,)).await
        }
        "SetSpeedFactor" => call(conn, ROOT, MOCK, "SetSpeedFactor", &(num(1),)).await,
        "InjectFault" => call(conn, ROOT, MOCK, "InjectFault", &(arg(1), arg(2))).await,
        "SetPosition" => call(conn, ROOT, MOCK, "SetPosition", &(arg(1), num(2))).await,
        "Get" => call(conn, ROOT, props, "Get", &(MANAGER, "State")).await,
        "GetAll" => call(conn, ROOT, props, "GetAll", &(VEHICLE,)).await,
        "GetManagedObjects" => {
            let om = "org.freedesktop.DBus.ObjectManager";
            call(conn, ROOT, om, "GetManagedObjects", &()).await
        }
        "Introspect" => {
            let i = "org.freedesktop.DBus.Introspectable";
            call(conn, ROOT, i, "Introspect", &()).await
        }
        "Ping" => call(conn, ROOT, "org.freedesktop.DBus.Peer", "Ping", &()).await,
        "Own" => {
            // RequestName(name, DO_NOT_QUEUE).
            let bus = "org.freedesktop.DBus";
            conn.call_method(
                Some(bus),
                "/org/freedesktop/DBus",
                Some(bus),
                "RequestName",
                &(NAME, 4u32),
            )
            .await
            .map(drop)
        }
        other => panic!("unknown client command {other:?}"),
    }
}
