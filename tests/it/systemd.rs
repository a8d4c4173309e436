//! The systemd side of the package: the unit in `data/` verifies and scores at most 1.0 in
//! `systemd-analyze security`, the sysusers file makes the user, the D-Bus activation file
//! names the service, and under systemd the log goes to the journal with structured fields.
//!
//! These need systemd's tools (`.ci/run` installs them), and the journal test root (a mount
//! namespace). Without them a test skips with a message on a developer's machine, and fails
//! in CI (`CI=true`): there they must run.

use crate::common;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use tokio::net::UnixDatagram;
use zbus::Variant;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
/// The most `systemd-analyze security` may find exposed (the bound).
const MAX_EXPOSURE: f64 = 1.0;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skip (`false`) with a message, unless in CI where it is a failure.
fn can_run(what: &str, ok: bool) -> bool {
    if !ok {
        assert!(!in_ci(), "{what}: required in CI");
        eprintln!("SKIPPED: {what} (runs in CI)");
    }
    ok
}

fn have(tool: &str) -> bool {
    can_run(
        &format!("{tool} is not installed (apt-get install systemd)"),
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn data(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

#[test]
fn the_unit_verifies() {
    if !have("systemd-analyze") {
        return;
    }
    // `verify` checks that ExecStart= exists: point it at the binary just built.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(data("driverprofiled.service")).unwrap();
    assert!(unit.contains("\nExecStart=/usr/bin/driverprofiled\n"));
    let unit = unit.replace(
        "\nExecStart=/usr/bin/driverprofiled\n",
        &format!("\nExecStart={BIN}\n"),
    );
    let path = dir.path().join("driverprofiled.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "systemd-analyze verify:\n{said}");
    assert!(
        !said.contains("driverprofiled.service"),
        "systemd-analyze verify complains:\n{said}"
    );
}

/// `systemd-analyze security --offline=yes` of `args`: its overall exposure score and report.
fn exposure(args: &[&std::ffi::OsStr]) -> (f64, String) {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "→ Overall exposure level for driverprofiled.service: 0.2 SAFE 😀"
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{text}"));
    let score: f64 = line
        .rsplit_once(": ")
        .and_then(|(_, s)| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    eprintln!("{line}");
    (score, text)
}

#[test]
fn the_unit_scores_at_most_1_0_in_systemd_analyze_security() {
    if !have("systemd-analyze") {
        return;
    }
    let (score, text) = exposure(&[data("driverprofiled.service").as_os_str()]);
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{text}"
    );
}

/// The drop-in for a KUKSA broker over TCP opens IP to localhost only and keeps the unit
/// within the bound.
#[test]
fn the_unit_with_the_kuksa_tcp_drop_in_still_scores_at_most_1_0() {
    if !have("systemd-analyze") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(units.join("driverprofiled.service.d")).unwrap();
    std::fs::copy(
        data("driverprofiled.service"),
        units.join("driverprofiled.service"),
    )
    .unwrap();
    std::fs::copy(
        data("driverprofiled-kuksa-tcp.conf"),
        units.join("driverprofiled.service.d/kuksa-tcp.conf"),
    )
    .unwrap();
    let root_arg = format!("--root={}", root.path().display());
    let (score, text) = exposure(&[
        std::ffi::OsStr::new(&root_arg),
        std::ffi::OsStr::new("driverprofiled.service"),
    ]);
    // The drop-in is in effect: internet sockets are allowed now.
    assert!(
        text.contains("Service may allocate Internet sockets"),
        "the drop-in was not applied:\n{text}"
    );
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{text}"
    );
}

#[test]
fn the_sysusers_file_makes_the_service_user() {
    if !have("systemd-sysusers") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(data("driverprofiled.sysusers"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("driverprofiled:"))
        .unwrap_or_else(|| panic!("no driverprofiled user in:\n{passwd}"));
    // A system user that cannot log in.
    let fields: Vec<&str> = user.split(':').collect();
    assert!(fields[2].parse::<u32>().unwrap() < 1000, "{user}");
    assert!(fields[6].ends_with("nologin"), "{user}");
    // The unit runs as that user.
    let unit = std::fs::read_to_string(data("driverprofiled.service")).unwrap();
    assert!(unit.contains("\nUser=driverprofiled\n") && !unit.contains("DynamicUser=yes"));
}

/// A bus that reads the activation file from a service directory lists the name as
/// activatable, and the file hands activation to the unit.
#[tokio::test]
async fn the_activation_file_names_the_bus_name_and_the_unit() {
    let text = std::fs::read_to_string(data("org.driverprofiled1.service")).unwrap();
    for line in [
        "[D-BUS Service]",
        &format!("Name={NAME}"),
        "Exec=/bin/false",
        "User=driverprofiled",
        "SystemdService=driverprofiled.service",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    let services = tempfile::tempdir().unwrap();
    std::fs::copy(
        data("org.driverprofiled1.service"),
        services.path().join("org.driverprofiled1.service"),
    )
    .unwrap();
    let dir = services.path().to_owned();
    let bus = PrivateBus::start_with(|listen| {
        driverprofiled::privatebus::config_xml(listen).replace(
            "</busconfig>",
            &format!("  <servicedir>{}</servicedir>\n</busconfig>", dir.display()),
        )
    })
    .unwrap();
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap();
    let names = zbus::fdo::DBusProxy::new(&conn)
        .await
        .unwrap()
        .list_activatable_names()
        .await
        .unwrap();
    assert!(
        names.iter().any(|n| n.as_str() == NAME),
        "{NAME} not activatable: {names:?}"
    );
}

/// One journal entry in the native protocol: `KEY=value` lines, or `KEY`, a little-endian
/// u64 length and the value.
fn journal_fields(mut b: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    while let Some(nl) = b.iter().position(|&c| c == b'\n') {
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            fields.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            b = &b[nl + 1..];
        } else {
            let rest = &b[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            fields.insert(
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
            );
            b = &rest[8 + len + 1..];
        }
    }
    fields
}

/// With stderr the journal (`JOURNAL_STREAM` naming it), every log line is a journal entry
/// with the event's fields as journal fields, and nothing is written to stderr as text. The
/// daemon runs in a mount namespace of its own where /run/systemd/journal/socket is the
/// test's socket (never the machine's journal).
#[tokio::test]
async fn under_systemd_the_log_is_structured_journal_entries() {
    if !can_run("the journal test needs root (a mount namespace)", is_root()) || !have("unshare") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).unwrap();
    let journal = UnixDatagram::bind(journal_dir.join("socket")).unwrap();
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let state = dir.path().join("state");
    let bus = Bus::start();
    let conn = bus.connect().await;
    let mut child = tokio::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(
            "mount -t tmpfs tmpfs /run; mkdir -p /run/systemd/journal; \
             mount --bind \"$1\" /run/systemd/journal; shift; exec \"$@\"",
        )
        .arg("sh")
        .arg(&journal_dir)
        .args([BIN, "--mock", "--bus", &bus.address, "--state-dir"])
        .arg(&state)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut entries = Vec::new();
    // The next entry whose MESSAGE starts with `message`.
    macro_rules! entry {
        ($message:expr) => {{
            let wait = async {
                loop {
                    let n = journal.recv(&mut buf).await.unwrap();
                    let e = journal_fields(&buf[..n]);
                    entries.push(e.clone());
                    if e.get("MESSAGE").is_some_and(|m| m.starts_with($message)) {
                        return e;
                    }
                }
            };
            tokio::select! {
                e = wait => e,
                st = child.wait() => panic!(
                    "the daemon exited ({st:?}):\n{}\n{entries:?}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                ),
                _ = tokio::time::sleep(TIMEOUT) => panic!("no {:?} entry: {entries:?}", $message),
            }
        }};
    }
    let serving = entry!("serving");
    assert_eq!(serving["SYSLOG_IDENTIFIER"], "driverprofiled");
    assert_eq!(serving["PRIORITY"], "5", "info is notice");

    let m = ManagerProxy::new(&conn).await.unwrap();
    MockProxy::new(&conn)
        .await
        .unwrap()
        .set_speed_factor(4.0)
        .await
        .unwrap();
    let vehicle = VehicleProxy::new(&conn).await.unwrap();
    let park: HashMap<&str, Variant<'_>> = [
        ("gear", Variant::from("P")),
        ("speed_kmh", Variant::from(0.0)),
    ]
    .into_iter()
    .collect();
    vehicle.update_signals(park).await.unwrap();
    let anna = m.create_profile("Anna").await.unwrap();
    ProfileProxy::builder(&conn)
        .path(anna.clone())
        .build()
        .await
        .unwrap()
        .set_positions([("seat_position", 160.0)].into_iter().collect())
        .await
        .unwrap();
    m.select_profile(&anna).await.unwrap();
    let started = entry!("motion started");
    assert_eq!(started["REASON"], "recall");
    assert_eq!(started["PROFILE"], "1");
    let done = entry!("motion finished");
    assert_eq!(done["REASON"], "recall");
    assert_eq!(done["OUTCOME"], "completed");

    // Stopped mid-motion by SIGTERM: the backend's line names the axis.
    ActuatorProxy::builder(&conn)
        .path(actuator_path("seat_position"))
        .build()
        .await
        .unwrap()
        .move_to(0.0)
        .await
        .unwrap();
    assert_eq!(entry!("motion started")["REASON"], "manual");
    // SAFETY: a signal to our own child (sh exec'd into the daemon).
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let stopped = entry!("mock: axis stopped");
    assert_eq!(stopped["AXIS"], "seat_position");
    assert_eq!(stopped["PRIORITY"], "4", "warn is warning");
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(text.is_empty(), "text on stderr as well:\n{text}");
}
