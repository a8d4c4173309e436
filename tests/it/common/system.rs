//! A system-like bus for tests that need more than one user: a private `dbus-daemon` with
//! `<type>system</type>`, EXTERNAL auth, the stock system.conf's deny-by-default policy and a
//! service policy (the checkout's `data/org.driverprofiled1.conf`, not an installed copy, or a
//! permissive one). The daemon runs as the service user and clients as other users, through
//! `setpriv`. That needs root: in CI (`CI` set) a test without it fails; elsewhere it is skipped
//! with a message. Users and groups that are missing are created (system ones, idempotently).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The bus policy under test, from the checkout.
pub const POLICY_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/org.driverprofiled1.conf");

/// The service user, and the groups of the shipped `[access]` section and bus policy.
pub const SERVICE_USER: &str = "driverprofiled";
pub const UI_GROUP: &str = "driverprofiled-ui";
pub const GATEWAY_GROUP: &str = "driverprofiled-gateway";
pub const DEVELOPER_GROUP: &str = "driverprofiled-dev";
/// The uid clients run as (nobody); only their groups differ.
pub const CLIENT_UID: u32 = 65534;

/// What the bus allows besides talking to the bus itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `data/org.driverprofiled1.conf`.
    Shipped,
    /// Everything, for everyone: only the daemon's own check stands.
    Permissive,
}

/// A `<type>system</type>` bus configuration listening in `listen_dir`.
pub fn system_bus_config(listen_dir: &Path, policy: Policy) -> String {
    let service = match policy {
        Policy::Shipped => format!("<include>{POLICY_FILE}</include>"),
        Policy::Permissive => r#"<policy context="default">
    <allow own="*"/>
    <allow send_destination="*"/>
  </policy>"#
            .to_string(),
    };
    // The default policy of the stock system.conf (dbus 1.14).
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  {service}
</busconfig>
"#,
        dir = listen_dir.display()
    )
}

/// The ids the tests run as.
#[derive(Debug)]
pub struct Users {
    /// The service user's uid and primary gid.
    pub service: (u32, u32),
    pub ui: u32,
    pub gateway: u32,
    pub developer: u32,
}

/// The users and groups, created if missing; None (with a message) when the test cannot run
/// here: not root, outside CI. In CI, not being able to run is a failure.
pub fn users_or_skip(test: &str) -> Option<&'static Users> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let tools = ["setpriv", "getent", "groupadd", "useradd"]
        .into_iter()
        .filter(|t| tool(t).is_none())
        .collect::<Vec<_>>();
    let why = if !root {
        Some("it needs root (to run the daemon and its clients as other users)".to_string())
    } else if !tools.is_empty() {
        Some(format!("{} not found", tools.join(", ")))
    } else {
        None
    };
    if let Some(why) = why {
        assert!(!ci, "{test}: cannot run in CI: {why}");
        eprintln!("SKIPPED {test}: {why}; run it as root (CI does)");
        return None;
    }
    static USERS: OnceLock<Users> = OnceLock::new();
    Some(USERS.get_or_init(|| {
        let ui = group(UI_GROUP);
        let gateway = group(GATEWAY_GROUP);
        let developer = group(DEVELOPER_GROUP);
        Users {
            service: user(SERVICE_USER),
            ui,
            gateway,
            developer,
        }
    }))
}

/// Where `name` is: on PATH, or in the sbin directories a non-login root shell may lack.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn getent(db: &str, name: &str) -> Option<Vec<String>> {
    let out = Command::new("getent").args([db, name]).output().ok()?;
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .to_string();
    out.status
        .success()
        .then(|| line.split(':').map(String::from).collect())
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(tool(cmd).unwrap_or_else(|| cmd.into()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    // 9: "already exists" (another test process got there first).
    let ok = out.status.success() || out.status.code() == Some(9);
    assert!(
        ok,
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The gid of a system group, created if missing.
fn group(name: &str) -> u32 {
    if getent("group", name).is_none() {
        run("groupadd", &["--system", name]);
    }
    let g = getent("group", name).unwrap_or_else(|| panic!("no group {name}"));
    g[2].parse()
        .unwrap_or_else(|e| panic!("gid of {name}: {e}"))
}

/// The uid and primary gid of a system user, created (with a group of its name) if missing.
fn user(name: &str) -> (u32, u32) {
    if getent("passwd", name).is_none() {
        let args = [
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ];
        run("useradd", &args);
    }
    let u = getent("passwd", name).unwrap_or_else(|| panic!("no user {name}"));
    let id = |i: usize| -> u32 { u[i].parse().unwrap_or_else(|e| panic!("{name}: {e}")) };
    (id(2), id(3))
}

/// The `setpriv` prefix that runs a program as `uid`/`gid` with exactly `groups`.
pub fn as_user(uid: u32, gid: u32, groups: &[u32]) -> Vec<String> {
    let groups = match groups {
        [] => "--clear-groups".to_string(),
        g => format!(
            "--groups={}",
            g.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        ),
    };
    vec![
        "setpriv".into(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        groups,
        "--".into(),
    ]
}

/// Executables other users can run: each path as it is if every directory above it is
/// open to others, else a link or copy in `dir` (a checkout under /root is not).
pub fn runnable_by_others(dir: &Path, path: &Path) -> PathBuf {
    let open = |p: &Path, bits: u32| {
        std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & bits == bits)
    };
    let reachable = open(path, 0o005) && path.ancestors().skip(1).all(|d| open(d, 0o001));
    if reachable {
        return path.to_path_buf();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let to = dir.join(path.file_name().expect("a file name"));
    if std::fs::hard_link(path, &to).is_err() {
        std::fs::copy(path, &to).unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
    }
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    to
}

/// Hand a directory (a state dir) to `uid`.
pub fn give(dir: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", dir.display()));
    let m = std::fs::metadata(dir).expect("metadata");
    assert_eq!(m.uid(), uid);
}
