//! `driverprofiled-test-broker`: the in-repo kuksa.val.v2 test broker as a program, for a car
//! on a laptop without the real KUKSA databroker (see `driverprofiled_kuksa::broker` for what
//! it implements and how it differs).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use driverprofiled_kuksa::broker::{self, Listen, Vss};

const AFTER_HELP: &str = "\
Commands on stdin, one per line:
  set PATH VALUE     publish a value (`none` = no value), as a sensor provider would
  get PATH           print the current value
  quit               stop (at the end of input it keeps serving: stop it with a signal)";

const EX_USAGE: u8 = 64;

/// A kuksa.val.v2 test broker (a subset of the Eclipse KUKSA databroker) for developing
/// without a car. Prints `listening on ADDRESS` once it accepts connections.
#[derive(clap::Parser)]
#[command(
    name = "driverprofiled-test-broker",
    version,
    after_help = AFTER_HELP,
    args_override_self = true
)]
struct Args {
    /// The VSS tree, in the JSON format of the real broker's --vss (default: the built-in test
    /// VSS, a VSS 6.0 extract)
    #[arg(long, value_name = "FILE")]
    vss: Option<PathBuf>,
    /// host:port or unix:/path/to/socket
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:55555", value_parser = listen)]
    address: Listen,
    /// Require `authorization: Bearer <the file's token>` on every call
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// An initial value (repeatable), e.g. --set Vehicle.Powertrain.Transmission.SelectedGear=126
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = path_value)]
    sets: Vec<(String, String)>,
}

fn listen(s: &str) -> Result<Listen, String> {
    s.parse::<Listen>()
}

fn path_value(v: &str) -> Result<(String, String), String> {
    let (p, x) = v
        .split_once('=')
        .ok_or_else(|| "expected PATH=VALUE".to_string())?;
    Ok((p.to_string(), x.to_string()))
}

fn main() -> ExitCode {
    use clap::Parser;
    let args = match Args::try_parse() {
        Ok(a) => a,
        // Help and version (to stdout, exit 0) or a usage error (to stderr, exit 64).
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EX_USAGE } else { 0 });
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("driverprofiled-test-broker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let vss = match &args.vss {
        Some(p) => Vss::load(p)?,
        None => broker::test_vss(),
    };
    let token = match &args.token_file {
        Some(p) => Some(driverprofiled_kuksa::connect::read_token(p)?),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        let handle = Arc::new(broker::start(vss, args.address, token).await?);
        for (p, v) in &args.sets {
            handle.set_str(p, v)?;
        }
        println!("listening on {}", handle.address());
        let (quit_tx, mut quit_rx) = tokio::sync::mpsc::channel::<()>(1);
        // Held here too, so that the end of stdin does not stop the broker.
        let _keep = quit_tx.clone();
        let h = handle.clone();
        // stdin is read on its own thread (blocking); set/get are synchronous.
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    [] => {}
                    ["quit"] => {
                        let _ = quit_tx.blocking_send(());
                        return;
                    }
                    ["set", path, rest @ ..] => {
                        let text = rest.join(" ");
                        match h.set_str(path, &text) {
                            Ok(()) => println!("ok"),
                            Err(e) => println!("error: {e}"),
                        }
                    }
                    ["get", path] => match h.get(path) {
                        Some(v) => println!("{path} = {:?}", v.typed_value),
                        None => println!("{path} = none"),
                    },
                    _ => println!("error: commands: set PATH VALUE | get PATH | quit"),
                }
            }
            // End of input: keep serving (run it with </dev/null in the background).
        });
        let _ = quit_rx.recv().await;
        Ok::<(), String>(())
    })
}
