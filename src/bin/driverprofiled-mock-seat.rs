//! `driverprofiled-mock-seat`: a seat at the KUKSA databroker for developers and tests (a VSS
//! provider for the configured axes, moved by the in-process mock's simulator). See
//! `driverprofiled::mockseat` and `--help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use driverprofiled::config;
use driverprofiled::mockseat::{self, Fatal};

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 64;
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let opts = match mockseat::parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        // Help and version (to stdout, exit 0) or a usage error (to stderr, exit 64).
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    init_logging();
    let cfg = match &opts.config {
        Some(p) => config::load(p),
        None => config::builtin(),
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("driverprofiled-mock-seat: invalid config: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = mockseat::axes_at(&cfg, &opts) {
        eprintln!("driverprofiled-mock-seat: {e} (see --help)");
        return ExitCode::from(EXIT_USAGE);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("driverprofiled-mock-seat: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match rt.block_on(mockseat::run(cfg, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal::Config(e)) => {
            tracing::error!("{e}");
            eprintln!("driverprofiled-mock-seat: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Fatal::Failed(e)) => {
            tracing::error!("{e}");
            eprintln!("driverprofiled-mock-seat: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Log to stderr at info (RUST_LOG changes it).
fn init_logging() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
}
