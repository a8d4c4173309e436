//! The `driverprofiled` daemon.

mod cli;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use futures_util::StreamExt;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;

use driverprofiled::backend::mock::Mock;
use driverprofiled::backend::{Backend, Router};
use driverprofiled::config::{self, Config};
use driverprofiled::core::Core;
use driverprofiled::edge::{self as dbus, Bus};
use driverprofiled::persist::FileStorage;
use driverprofiled::privatebus::PrivateBus;

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 64;
const EXIT_CONFIG: u8 = 78;
const SYSTEM_CONFIG: &str = "/etc/driverprofiled/config.toml";
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Run(opts)) => opts,
        Ok(cli::Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Command::Version) => {
            println!("driverprofiled {VERSION}");
            return ExitCode::SUCCESS;
        }
        Ok(cli::Command::CheckConfig(path)) => {
            return match config::load(&path) {
                Ok(cfg) => {
                    println!("{}: valid ({} axes)", path.display(), cfg.axes.len());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("driverprofiled: invalid config: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            };
        }
        Err(e) => {
            eprintln!("driverprofiled: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let bad_filter = init_logging();
    if let Some(e) = bad_filter {
        tracing::warn!("RUST_LOG not understood ({e}): logging at info");
    }

    let loaded = match &opts.config {
        Some(path) => config::load(path),
        None if Path::new(SYSTEM_CONFIG).exists() => config::load(Path::new(SYSTEM_CONFIG)),
        None => config::builtin(),
    };
    let cfg = match loaded {
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
    match rt.block_on(serve(opts, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("driverprofiled: {msg}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Log to stderr, filtered by `RUST_LOG` (`info` when unset or not understood; then the
/// reason is returned). The filter takes levels and `target=level` lists, e.g.
/// `debug,zbus=info`: `Targets` parses those without the regex engine `EnvFilter` links in,
/// which cost ~650 KiB of resident memory (its code and unicode tables; issue 7).
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
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
    bad
}

async fn serve(opts: cli::Options, cfg: Arc<Config>) -> Result<(), String> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("cannot handle signals: {e}"))?;

    let storage = FileStorage::open(&opts.state_dir)
        .map_err(|e| format!("state directory {}: {e}", opts.state_dir.display()))?;
    let loaded = storage
        .load()
        .map_err(|e| format!("profile store {}: {e}", storage.path().display()))?;
    if let Some(aside) = &loaded.renamed_to {
        tracing::warn!(
            "the unreadable profile store was kept as {}",
            aside.display()
        );
    }
    let easy_exit = storage
        .load_easy_exit()
        .map_err(|e| format!("easy-exit state in {}: {e}", opts.state_dir.display()))?;

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
    let mut mock = None;
    let mut router = Router::default();
    for axis in &cfg.axes {
        let name = if opts.mock {
            "mock"
        } else {
            axis.backend.as_str()
        };
        let backend: Arc<dyn Backend> = match name {
            "mock" => Arc::new(
                mock.get_or_insert_with(|| Mock::start(&cfg.axes, fb_tx.clone()))
                    .clone(),
            ),
            other => return Err(format!("axis {}: no backend {other:?}", axis.name)),
        };
        router.add(&axis.name, backend);
    }

    let mut core = Core::new(cfg.clone(), loaded.value, router.describe(), VERSION.into());
    core.resume_easy_exit(easy_exit.value);
    let (engine, calls) = dbus::connect(&bus, cfg, core, Box::new(storage), router, mock)
        .await
        .map_err(|e| match e {
            zbus::Error::NameTaken => format!(
                "the name {} is already owned on the bus: is another driverprofiled running?",
                driverprofiled_api::BUS_NAME
            ),
            e => format!("cannot serve on the {bus:?} bus: {e}"),
        })?;
    if let Some(pb) = &private_bus {
        println!("DBUS_SESSION_BUS_ADDRESS={}", pb.address);
        let _ = std::io::stdout().flush();
    }
    tracing::info!("serving {} on {bus:?}", driverprofiled_api::BUS_NAME);

    engine
        .run(calls, fb_rx, async move {
            if let Some(sig) = signals.next().await {
                tracing::info!("signal {sig}: shutting down");
            }
        })
        .await;
    drop(private_bus);
    Ok(())
}
