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

use driverprofiled::backend::Router;
use driverprofiled::config::{self, Config};
use driverprofiled::core::Core;
use driverprofiled::edge::{self, Bus};
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
        Err(e) => {
            eprintln!("driverprofiled: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

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

async fn serve(opts: cli::Options, cfg: Arc<Config>) -> Result<(), String> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("cannot handle signals: {e}"))?;

    let mut storage = FileStorage::at(&opts.state_dir);
    let mut problems: Vec<String> = storage
        .check()
        .err()
        .map(|why| format!("{why}; changes will fail until it can"))
        .into_iter()
        .collect();
    // A store that can be neither read nor moved aside: run on without it (the UI keeps
    // working, Stop always works) but write nothing, so that it is never overwritten.
    let mut unreadable = |what: &str, e: std::io::Error, storage: &mut FileStorage| {
        let why = format!(
            "the {what} in {} can be neither read nor moved aside ({e}); \
             running without it and writing nothing until a restart",
            opts.state_dir.display()
        );
        storage.freeze(why.clone());
        problems.push(why);
    };
    let profiles = match storage.load() {
        Ok(loaded) => {
            if let Some(aside) = &loaded.renamed_to {
                tracing::warn!(
                    "the unreadable profile store was kept as {}",
                    aside.display()
                );
            }
            loaded.value
        }
        Err(e) => {
            unreadable("profile store", e, &mut storage);
            Default::default()
        }
    };
    let easy_exit = match storage.load_easy_exit() {
        Ok(loaded) => loaded.value,
        Err(e) => {
            unreadable("easy-exit state", e, &mut storage);
            Default::default()
        }
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
    let (router, known) = Router::start(&cfg, opts.mock.then_some("mock"), &fb_tx)?;
    let mut core = Core::new(
        cfg.clone(),
        profiles,
        &known,
        router.describe(),
        VERSION.into(),
    );
    core.resume_easy_exit(easy_exit);
    if !problems.is_empty() {
        core.storage_failed(problems.join("; "));
    }
    let (engine, calls) = edge::connect(&bus, cfg, core, Box::new(storage), router)
        .await
        .map_err(|e| match e {
            zbus::Error::NameTaken => format!(
                "the name {BUS_NAME} is already owned on the bus: is another driverprofiled running?"
            ),
            e => format!("cannot serve on the {bus}: {e}"),
        })?;
    if let Some(pb) = &private_bus {
        println!("DBUS_SESSION_BUS_ADDRESS={}", pb.address);
        let _ = std::io::stdout().flush();
    }
    tracing::info!("serving {BUS_NAME} on the {bus}");

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
