//! Daemon benchmark against a same-run baseline.
//!
//! Run: `cargo bench --bench daemon`. It starts a private dbus-daemon and, in turn, a minimal
//! zbus 6 echo service (this very binary, re-executed with `--echo`, on a current-thread tokio
//! runtime: the baseline) and the real `driverprofiled --mock` in two builds, both as
//! `cargo build --release` makes them (built here): as built (default features: with the
//! KUKSA client, unused with `--mock`) and mock-only (`--no-default-features`, into
//! `target/mock-only`) — and measures for
//! each:
//! time from exec to owning the bus name, round-trip latency of a method call that does real
//! work (Echo for the baseline; `Manager.Stop()`, which goes through the engine, for the
//! daemon) and of a property read, resident memory, threads, and wakeups while idle for 10 s.
//! All three are started afresh [`ROUNDS`] times, in turn, and the medians are printed with the
//! daemon/baseline ratios (resident memory varies by ~±100 KiB from start to start, with how the
//! page cache holds the executable; idle wakeups are counted in the last round).
//!
//! Resident memory is split into anonymous memory (heap, stacks, relocated data) and mapped
//! files, which is mostly the executable's own code. What a service really costs is its
//! anonymous (private) memory: resident code pages are clean, shared with every other process
//! that maps the file, and dropped by the kernel under pressure, so no goal is set on them
//! (docs/benchmarks.md). The baseline's figure includes this benchmark's own client code: a stand-alone
//! echo binary with the same dependencies and the release profile measured 2800 KiB against
//! this one's ~3640.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driverprofiled::privatebus::PrivateBus;
use driverprofiled_api::proxy::ManagerProxy;
use driverprofiled_api::{BUS_NAME, interface as iface, path};
use futures_util::StreamExt;
use zbus::{Connection, interface, proxy};

const ECHO_NAME: &str = "org.driverprofiled1.BenchEcho";
const CALLS: usize = 2000;
const IDLE: Duration = Duration::from_secs(10);
const ROUNDS: usize = 5;

struct Echo;

#[interface(name = "org.driverprofiled1.BenchEcho")]
impl Echo {
    fn echo(&self, s: String) -> String {
        s
    }

    #[zbus(property)]
    fn state(&self) -> String {
        "idle".into()
    }
}

#[proxy(
    interface = "org.driverprofiled1.BenchEcho",
    default_service = "org.driverprofiled1.BenchEcho",
    default_path = "/org/driverprofiled1/BenchEcho"
)]
trait EchoClient {
    fn echo(&self, s: &str) -> zbus::Result<String>;
}

/// The baseline service: serve Echo until killed.
fn run_echo(address: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async {
        let _conn = zbus::connection::Builder::address(address)
            .serve_at("/org/driverprofiled1/BenchEcho", Echo)
            .name(ECHO_NAME)
            .build()
            .await
            .unwrap_or_else(|e| panic!("echo service: {e}"));
        std::future::pending::<()>().await;
    });
}

/// Start `cmd` and return it with the time until `name` was owned on the bus.
async fn start_service(conn: &Connection, mut cmd: Command, name: &str) -> (Child, Duration) {
    let dbus = zbus::fdo::DBusProxy::new(conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut owner = dbus
        .receive_name_owner_changed_with_args(&[(0, name)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    loop {
        let has = dbus
            .name_has_owner(name.try_into().unwrap_or_else(|e| panic!("{e}")))
            .await
            .unwrap_or(false);
        if has {
            break;
        }
        tokio::time::timeout(Duration::from_secs(10), owner.next())
            .await
            .unwrap_or_else(|_| panic!("{name} never appeared"));
    }
    (child, t0.elapsed())
}

fn stop(mut c: Child) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(c.id() as i32, libc::SIGTERM);
    }
    let _ = c.wait();
}

/// A field of `/proc/PID/FILE` (`status`, `smaps_rollup`), its first number: `Threads:` in
/// `status`; in `smaps_rollup`, in KiB, `Rss:` (what `VmRSS` shows) and `Anonymous:` (heap,
/// stacks and relocated data; the rest of the resident memory is mapped files, which is mostly
/// the executable's code: on this kernel nearly all of its text ends up mapped).
fn proc_field(pid: u32, file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Whether the process has glibc NSS modules mapped (they stay once loaded).
fn nss_loaded(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .contains("libnss_")
}

fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .map(|t| {
            let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            s.lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

#[derive(Default, Clone, Copy)]
struct Figures {
    start_ms: f64,
    call_p50_us: f64,
    call_p99_us: f64,
    get_p50_us: f64,
    rss_kb: u64,
    anon_kb: u64,
    threads: u64,
    idle_wakeups: u64,
    nss: bool,
}

/// Medians over the rounds; threads the most seen, idle wakeups from the round that counted.
fn median(rounds: &[Figures]) -> Figures {
    let mid = |get: fn(&Figures) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(get).collect();
        percentile(&mut v, 0.5)
    };
    Figures {
        start_ms: mid(|f| f.start_ms),
        call_p50_us: mid(|f| f.call_p50_us),
        call_p99_us: mid(|f| f.call_p99_us),
        get_p50_us: mid(|f| f.get_p50_us),
        rss_kb: mid(|f| f.rss_kb as f64) as u64,
        anon_kb: mid(|f| f.anon_kb as f64) as u64,
        threads: rounds.iter().map(|f| f.threads).max().unwrap_or(0),
        idle_wakeups: rounds.iter().map(|f| f.idle_wakeups).max().unwrap_or(0),
        nss: rounds.iter().any(|f| f.nss),
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// What to measure: the bus name, and the object, interface and property to read.
struct Service<'a> {
    name: &'a str,
    path: &'a str,
    iface: &'a str,
    prop: &'a str,
}

async fn measure<F, Fut>(
    conn: &Connection,
    cmd: Command,
    service: &Service<'_>,
    idle: bool,
    mut call: F,
) -> Figures
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Service {
        name,
        path,
        iface,
        prop,
    } = *service;
    let mut f = Figures::default();
    let (child, took) = start_service(conn, cmd, name).await;
    f.start_ms = took.as_secs_f64() * 1000.0;
    let pid = child.id();
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(name.to_string())
        .path(path.to_string())
        .build()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let iface =
        zbus::names::InterfaceName::try_from(iface.to_string()).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..200 {
        call().await;
    }
    let mut calls = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        call().await;
        calls.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut gets = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        props
            .get(iface.as_ref(), prop)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        gets.push(t.elapsed().as_secs_f64() * 1e6);
    }
    f.call_p50_us = percentile(&mut calls, 0.5);
    f.call_p99_us = percentile(&mut calls, 0.99);
    f.get_p50_us = percentile(&mut gets, 0.5);
    f.rss_kb = proc_field(pid, "smaps_rollup", "Rss:");
    f.anon_kb = proc_field(pid, "smaps_rollup", "Anonymous:");
    f.threads = proc_field(pid, "status", "Threads:");
    f.nss = nss_loaded(pid);
    if idle {
        // Let it settle, then count wakeups over the idle window.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = context_switches(pid);
        tokio::time::sleep(IDLE).await;
        f.idle_wakeups = context_switches(pid) - before;
    }
    stop(child);
    f
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--echo") {
        let addr = args.get(i + 1).cloned().unwrap_or_default();
        run_echo(&addr);
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let bus = PrivateBus::start().unwrap_or_else(|e| panic!("private bus: {e}"));
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .build()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let me = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));

        let echo_proxy = EchoClientProxy::new(&conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let manager = ManagerProxy::new(&conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let as_built = release::daemon(false);
        let mock_only = release::daemon(true);
        let builds: [(&str, &std::path::Path); 2] = [
            ("as built", as_built.as_path()),
            ("mock-only", mock_only.as_path()),
        ];
        let mut echoes = Vec::new();
        let mut daemons: [Vec<Figures>; 2] = [Vec::new(), Vec::new()];
        for round in 0..ROUNDS {
            let idle = round + 1 == ROUNDS;
            let mut echo_cmd = Command::new(&me);
            echo_cmd.args(["--echo", &bus.address]);
            echoes.push(
                measure(
                    &conn,
                    echo_cmd,
                    &Service {
                        name: ECHO_NAME,
                        path: "/org/driverprofiled1/BenchEcho",
                        iface: ECHO_NAME,
                        prop: "State",
                    },
                    idle,
                    || {
                        let p = echo_proxy.clone();
                        async move {
                            p.echo("ping").await.unwrap_or_else(|e| panic!("{e}"));
                        }
                    },
                )
                .await,
            );
            for (i, (_, exe)) in builds.iter().enumerate() {
                let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
                let mut d_cmd = Command::new(exe);
                d_cmd
                    .args(["--bus", &bus.address, "--mock", "--state-dir"])
                    .arg(state.path())
                    .env("RUST_LOG", "warn");
                daemons[i].push(
                    measure(
                        &conn,
                        d_cmd,
                        &Service {
                            name: BUS_NAME,
                            path: path::ROOT,
                            iface: iface::MANAGER,
                            prop: "State",
                        },
                        idle,
                        || {
                            let p = manager.clone();
                            async move {
                                p.stop().await.unwrap_or_else(|e| panic!("{e}"));
                            }
                        },
                    )
                    .await,
                );
            }
        }
        let echo = median(&echoes);
        let [full, mock] = [median(&daemons[0]), median(&daemons[1])];
        for (i, e) in echoes.iter().enumerate() {
            println!(
                "round {}: resident memory {} / {} / {} KiB, method p50 {:.0} / {:.0} / {:.0} µs",
                i + 1,
                e.rss_kb,
                daemons[0][i].rss_kb,
                daemons[1][i].rss_kb,
                e.call_p50_us,
                daemons[0][i].call_p50_us,
                daemons[1][i].call_p50_us,
            );
        }

        type Get = fn(&Figures) -> f64;
        let rows: Vec<(&str, Get, bool)> = vec![
            ("exec to bus name owned (ms)", |f| f.start_ms, true),
            ("method round trip p50 (µs)", |f| f.call_p50_us, false),
            ("method round trip p99 (µs)", |f| f.call_p99_us, false),
            ("property Get p50 (µs)", |f| f.get_p50_us, false),
            ("resident memory (KiB)", |f| f.rss_kb as f64, false),
            ("  of which anonymous (KiB)", |f| f.anon_kb as f64, false),
            (
                "  of which mapped files (KiB)",
                |f| (f.rss_kb - f.anon_kb) as f64,
                false,
            ),
            ("threads", |f| f.threads as f64, false),
            ("wakeups in 10 s idle", |f| f.idle_wakeups as f64, false),
        ];
        println!(
            "daemon benchmark: {CALLS} calls each, same private dbus-daemon, same run, \
             medians of {ROUNDS} starts each; driverprofiled as built (default features: \
             with KUKSA support) and mock-only (--no-default-features), both with --mock"
        );
        println!(
            "{:<30} {:>9} {:>9} {:>6} {:>9} {:>6}",
            "", "echo", "as built", "ratio", "mock-only", "ratio"
        );
        let ratio = |base: f64, ours: f64| {
            if base > 0.0 {
                format!("{:.2}", ours / base)
            } else if ours == 0.0 {
                "=".to_string()
            } else {
                "n/a".to_string()
            }
        };
        let num = |x: f64, one_decimal: bool| {
            if one_decimal {
                format!("{x:.1}")
            } else {
                format!("{x:.0}")
            }
        };
        for (what, get, one_decimal) in rows {
            let (b, o, m) = (get(&echo), get(&full), get(&mock));
            println!(
                "{what:<30} {:>9} {:>9} {:>6} {:>9} {:>6}",
                num(b, one_decimal),
                num(o, one_decimal),
                ratio(b, o),
                num(m, one_decimal),
                ratio(b, m),
            );
        }
        // What the daemon costs the car is its private memory; its file-backed pages are
        // clean and shared, reported above but given no goal.
        for (name, daemon) in [("as built", &full), ("mock-only", &mock)] {
            println!(
                "private (anonymous) memory, {name}: {} KiB, {:+} KiB over the baseline ({:.2}x)",
                daemon.anon_kb,
                daemon.anon_kb as i64 - echo.anon_kb as i64,
                daemon.anon_kb as f64 / echo.anon_kb.max(1) as f64,
            );
        }
        let wakeups = full.idle_wakeups.max(mock.idle_wakeups) as f64;
        if full.nss || mock.nss {
            println!(
                "note: the daemon loaded glibc's NSS modules (~700 KiB resident) because an \
                 [access] group is not in /etc/group on this machine; on a car sysusers puts \
                 the groups there (data/driverprofiled.sysusers). Create them (groupadd \
                 driverprofiled-ui, -gateway, -dev) to measure as on a car."
            );
        }
        println!(
            "\nidle goal (0 wakeups in 10 s): {}",
            if wakeups == 0.0 { "met" } else { "NOT met" }
        );
    });
}

/// The daemon as a car gets it: `cargo build --release`.
mod release {
    use std::process::{Command, Stdio};

    /// The daemon as `cargo build --release` builds it, with the default features (`as built`,
    /// the KUKSA client linked in) or without (`mock-only`: no gRPC, in a target directory of its
    /// own so that the two builds do not replace each other). Not the binary cargo builds for a
    /// benchmark: the bench profile is not what a car gets.
    pub fn daemon(mock_only: bool) -> std::path::PathBuf {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root).args([
            "build",
            "--release",
            "--message-format=json",
            "-p",
            "driverprofiled",
            "--bin",
            "driverprofiled",
        ]);
        if mock_only {
            // Its own target directory, beside the one cargo uses, wherever that is.
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            cmd.arg("--no-default-features")
                .arg("--target-dir")
                .arg(target.join("mock-only"));
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cargo build --release: {e}"));
        assert!(out.status.success(), "cargo build --release failed");
        // The path cargo reports, so that a target directory set anywhere (environment, config)
        // is followed and a stale binary is never measured.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "driverprofiled"
            })
            .find_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
            .unwrap_or_else(|| {
                panic!("cargo build --release reported no driverprofiled executable")
            })
    }
}
