//! The `driverprofiled` daemon.

mod cli;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use futures_util::StreamExt;
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;

use driverprofiled::backend::{Router, StartError};
use driverprofiled::config::{self, Config};
use driverprofiled::core::Core;
use driverprofiled::edge::{self, Bus};
use driverprofiled::engine::{self, Control, Ended, Engine};
use driverprofiled::failsafe;
use driverprofiled::persist::FileStorage;
use driverprofiled::privatebus::PrivateBus;
use driverprofiled_api::BUS_NAME;

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 64;
const EXIT_CONFIG: u8 = 78;
const SYSTEM_CONFIG: &str = "/etc/driverprofiled/config.toml";
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Run(opts)) => opts,
        Ok(cli::Command::CheckConfig(path)) => {
            return match config::load(&path) {
                Ok(cfg) => {
                    let n = cfg.axes.len();
                    let axes = if n == 1 { "axis" } else { "axes" };
                    println!("{}: valid, {n} {axes}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("driverprofiled: invalid config: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            };
        }
        // Help and version (to stdout, exit 0) or a usage error (to stderr, exit 64).
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let bad_filter = init_logging();
    if let Some(e) = bad_filter {
        tracing::warn!("RUST_LOG not understood ({e}): logging at info");
    }

    let cfg = match read_config(opts.config.as_deref()) {
        Ok(cfg) => Arc::new(cfg),
        Err(e) => {
            eprintln!("driverprofiled: invalid config: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("driverprofiled: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = match rt.block_on(serve(opts, cfg)) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("driverprofiled: {msg}");
            EXIT_FAILURE
        }
    };
    // Every axis is stopped by now; do not let a straggling blocking task hold up the exit.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}

/// The config: the `--config` file, else the system one when present, else the built-in
/// defaults. The same at start and on SIGHUP.
fn read_config(path: Option<&Path>) -> Result<Config, config::ConfigError> {
    match path {
        Some(path) => config::load(path),
        None if Path::new(SYSTEM_CONFIG).exists() => config::load(Path::new(SYSTEM_CONFIG)),
        None => config::builtin(),
    }
}

/// The signals handled: every one whose default action ends the process and that a process
/// can catch. (SIGKILL cannot be caught; SIGSEGV and the like are faults of the process
/// itself; SIGPIPE is ignored, as Rust programs do: a write to a closed socket fails with
/// EPIPE instead, and a closed bus connection is a bus loss.)
fn handled_signals() -> Vec<i32> {
    use libc::*;
    let mut v = vec![
        SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU,
        SIGXFSZ, SIGIO, SIGPWR, SIGSTKFLT,
    ];
    v.extend(SIGRTMIN()..=SIGRTMAX());
    v
}

/// What a signal means to the daemon:
/// - SIGTERM, SIGINT: halt motion, exit 0 (a stop asked for: systemd's, Ctrl-C);
/// - SIGHUP: read the config again and apply it (motion and profiles go on);
/// - SIGUSR1, SIGUSR2: nothing (logged); they have no meaning here and a stray one (a log
///   rotation script, a mistyped `kill`) must neither stop the service nor its motion;
/// - any other (SIGQUIT, SIGALRM, SIGXCPU, real-time signals, ...): not a way to stop a
///   service cleanly, so it counts as a failure: halt motion, exit 128 + the signal's number
///   (SIGQUIT: 131), and systemd restarts the daemon.
fn on_signal(sig: i32, config: Option<&Path>) -> Option<Control> {
    let name = signal_hook::low_level::signal_name(sig)
        .map(str::to_string)
        .unwrap_or_else(|| format!("signal {sig}"));
    match sig {
        libc::SIGTERM | libc::SIGINT => Some(Control::Shutdown { why: name, code: 0 }),
        libc::SIGHUP => {
            tracing::info!("{name}: reading the config again");
            Some(Control::Reload(
                read_config(config).map(Arc::new).map_err(|e| e.to_string()),
            ))
        }
        libc::SIGUSR1 | libc::SIGUSR2 => {
            tracing::info!("{name} means nothing to driverprofiled: ignored");
            None
        }
        _ => {
            let code = 128 + sig as u8;
            Some(Control::Shutdown {
                why: format!("{name} (exit {code})"),
                code,
            })
        }
    }
}

/// Log to stderr (or the journal, under systemd), filtered by `RUST_LOG` (`info` when unset or not understood; then the
/// reason is returned). The filter takes levels and `target=level` lists, e.g.
/// `debug,zbus=info`: `Targets` parses those without the regex engine `EnvFilter` links in,
/// which cost ~650 KiB of resident memory (its code and unicode tables).
fn init_logging() -> Option<String> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    let info = || Targets::new().with_default(LevelFilter::INFO);
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => match s.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (info(), Some(format!("{s:?}: {e}"))),
        },
        _ => (info(), None),
    };
    // Under systemd, stderr is the journal: structured entries go to it instead of text.
    let journal = driverprofiled::systemd::journal_layer();
    let text = journal.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    tracing_subscriber::registry()
        .with(text)
        .with(journal)
        .with(filter)
        .init();
    bad
}

/// Serve until a signal or a fault ends it; the exit status.
async fn serve(opts: cli::Options, cfg: Arc<Config>) -> Result<u8, String> {
    let signals =
        Signals::new(handled_signals()).map_err(|e| format!("cannot handle signals: {e}"))?;

    let mut storage = FileStorage::at(&opts.state_dir);
    let mut problems: Vec<String> = storage
        .check()
        .err()
        .map(|e| {
            format!("the state directory cannot be written ({e}); changes will fail until it can")
        })
        .into_iter()
        .collect();
    // A store that is not served as it is (a newer schema, units that differ, a file that
    // cannot be read or moved aside) is frozen: never written, so never lost.
    let loaded = storage.load_store(&cfg);
    let easy_exit = match storage.load_easy_exit() {
        Ok(loaded) => loaded.value,
        Err(e) => {
            // Neither read nor moved aside: never overwritten.
            let why = format!(
                "the easy-exit state in {} can be neither read nor moved aside ({e}); \
                 running without it and writing none until a restart",
                opts.state_dir.display()
            );
            storage.freeze_easy_exit(why.clone());
            problems.push(why);
            Default::default()
        }
    };

    let reverse_tilt = match storage.load_reverse_tilt() {
        Ok(loaded) => loaded.value,
        Err(e) => {
            let why = format!(
                "the reverse-tilt state in {} can be neither read nor moved aside ({e}); \
                 no mirror tilts for reversing until a restart",
                opts.state_dir.display()
            );
            storage.freeze_reverse_tilt(why.clone());
            problems.push(why);
            Default::default()
        }
    };

    // The vehicle signals' source is checked before anything is served: a signal the broker
    // does not know (or of another type) stops the daemon here, never a motion later.
    #[cfg(not(feature = "kuksa"))]
    if cfg.vehicle_source == config::VehicleSource::Kuksa {
        eprintln!(
            "driverprofiled: [vehicle] source = \"kuksa\" needs a driverprofiled built with the \
             kuksa feature"
        );
        return Ok(EXIT_CONFIG);
    }
    #[cfg(feature = "kuksa")]
    let vehicle_feed = match cfg.vehicle_source {
        config::VehicleSource::Kuksa => {
            match driverprofiled::signals::check(&cfg.kuksa).await {
                Ok(checked) => Some(checked),
                // A signal missing or of another type: a restart would fail the same way.
                Err(StartError::Config(msg)) => {
                    eprintln!("driverprofiled: {msg}");
                    return Ok(EXIT_CONFIG);
                }
                Err(StartError::Failed(msg)) => return Err(msg),
            }
        }
        config::VehicleSource::Dbus => None,
    };

    let private_bus = if opts.private_bus {
        Some(PrivateBus::start().map_err(|e| format!("private bus: {e}"))?)
    } else {
        None
    };
    let bus = match &private_bus {
        Some(pb) => Bus::Address(pb.address.clone()),
        None => opts.bus.clone(),
    };

    let (fb_tx, fb_rx) = mpsc::unbounded_channel();
    let (router, known) = match Router::start(&cfg, opts.mock.then_some("mock"), &fb_tx).await {
        Ok(started) => started,
        // The config does not match the actuators: a restart would fail the same way.
        Err(StartError::Config(msg)) => {
            eprintln!("driverprofiled: the config does not match the actuators: {msg}");
            return Ok(EXIT_CONFIG);
        }
        Err(StartError::Failed(msg)) => return Err(msg),
    };
    // The backends hold the senders now: feedback ends only when every backend is gone.
    drop(fb_tx);
    failsafe::stop_on_panic(router.clone());
    let mut core = Core::new(
        cfg.clone(),
        loaded.store,
        &known,
        router.describe(),
        VERSION.into(),
    );
    core.resume_easy_exit(easy_exit);
    core.resume_reverse_tilt(reverse_tilt);
    core.set_store_status(loaded.status);
    if let Some(why) = loaded.frozen {
        core.freeze_store(why);
    }
    if !problems.is_empty() {
        core.storage_failed(problems.join("; "));
    }
    let (calls_tx, calls) = engine::calls();
    let view = core.view();
    let next_id = core.store().next_id;
    let dbus = edge::connect(&bus, cfg.clone(), &view, next_id, calls_tx.clone(), &router)
        .await
        .map_err(|e| match e {
            zbus::Error::NameTaken => format!(
                "the name {BUS_NAME} is already owned on the bus: is another driverprofiled running?"
            ),
            e => format!("cannot serve on the {bus}: {e}"),
        })?;
    let engine = Engine::new(core, Box::new(storage), router, dbus);
    if let Some(pb) = &private_bus {
        println!("DBUS_SESSION_BUS_ADDRESS={}", pb.address);
        let _ = std::io::stdout().flush();
    }
    tracing::info!("serving {BUS_NAME} on the {bus}");
    #[cfg(feature = "kuksa")]
    if let Some(checked) = vehicle_feed {
        driverprofiled::signals::spawn(cfg.kuksa.clone(), checked, calls_tx.clone());
    }

    let config = opts.config.clone();
    let control = signals
        .filter_map(move |sig| futures_util::future::ready(on_signal(sig, config.as_deref())));
    let ended = engine.run(calls, fb_rx, Box::pin(control)).await;
    drop(private_bus);
    match ended {
        Ended::Shutdown(code) => Ok(code),
        Ended::Fault(why) => Err(why),
    }
}
