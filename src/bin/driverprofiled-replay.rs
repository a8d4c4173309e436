//! driverprofiled-replay: run a key-locator trace (JSON lines, docs/key-selection.md)
//! through the daemon's own core on a fake clock, with the mock actuators, and print every
//! decision: key selections, recalls, motions, the driver's door and the head start.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use driverprofiled::{config, trace};

#[derive(Parser)]
#[command(
    version,
    about = "Replay a key-locator trace through driverprofiled's core"
)]
struct Args {
    /// The daemon's configuration file (default: the built-in configuration).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Also print every key's estimate this often (milliseconds of the trace).
    #[arg(long, value_name = "MS")]
    estimates: Option<u64>,
    /// Also log the core's reasoning (why the door declined, a filter starting again) to
    /// standard error.
    #[arg(long)]
    log: bool,
    /// Print the decisions as JSON lines.
    #[arg(long)]
    json: bool,
    /// The trace: one JSON object per line.
    #[arg(value_name = "TRACE.jsonl")]
    trace: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.log {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .without_time()
            .with_target(false)
            .with_writer(std::io::stderr)
            .init();
    }
    let cfg = match &args.config {
        Some(p) => config::load(p),
        None => config::builtin(),
    };
    let cfg = match cfg {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!(
                "driverprofiled-replay: {}:{}:{}: {}",
                e.file, e.line, e.col, e.message
            );
            return ExitCode::from(2);
        }
    };
    let name = args.trace.display();
    let text = match std::fs::read_to_string(&args.trace) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("driverprofiled-replay: {name}: cannot read: {e}");
            return ExitCode::from(2);
        }
    };
    let lines = match trace::parse_numbered(&text) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("driverprofiled-replay: {name}: {e}");
            return ExitCode::from(2);
        }
    };
    for d in trace::replay_numbered(cfg, &lines, args.estimates) {
        if args.json {
            println!("{}", d.json());
        } else {
            println!("{}", d.text());
        }
    }
    ExitCode::SUCCESS
}
