//! `driverprofiled-test-broker`: the in-repo kuksa.val.v2 test broker as a program, for a car
//! on a laptop without the real KUKSA databroker (see `driverprofiled_kuksa::broker` for what
//! it implements and how it differs).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use driverprofiled_kuksa::broker::{self, Listen, Vss};

const USAGE: &str = "\
usage: driverprofiled-test-broker [--vss FILE] [--address ADDRESS] [--token-file FILE]
                                  [--set PATH=VALUE]...

A kuksa.val.v2 test broker (a subset of the Eclipse KUKSA databroker) for developing without
a car. Prints `listening on ADDRESS` once it accepts connections.

  --vss FILE         the VSS tree, in the JSON format of the real broker's --vss
                     (default: the built-in test VSS, a VSS 6.0 extract)
  --address ADDRESS  host:port (default 127.0.0.1:55555) or unix:/path/to/socket
  --token-file FILE  require `authorization: Bearer <the file's token>` on every call
  --set PATH=VALUE   an initial value (repeatable), e.g.
                     --set Vehicle.Powertrain.Transmission.SelectedGear=126

Commands on stdin, one per line:
  set PATH VALUE     publish a value (`none` = no value), as a sensor provider would
  get PATH           print the current value
  quit               stop (at the end of input it keeps serving: stop it with a signal)
";

const EX_USAGE: u8 = 64;

struct Args {
    vss: Option<PathBuf>,
    address: Listen,
    token_file: Option<PathBuf>,
    sets: Vec<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut vss = None;
    let mut address = None;
    let mut token_file = None;
    let mut sets = Vec::new();
    while let Some(a) = args.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--vss" => vss = Some(PathBuf::from(value("a file")?)),
            "--address" => address = Some(value("an address")?.parse::<Listen>()?),
            "--token-file" => token_file = Some(PathBuf::from(value("a file")?)),
            "--set" => {
                let v = value("PATH=VALUE")?;
                let (p, x) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--set needs PATH=VALUE, not {v:?}"))?;
                sets.push((p.to_string(), x.to_string()));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let address = match address {
        Some(a) => a,
        None => "127.0.0.1:55555".parse()?,
    };
    Ok(Args {
        vss,
        address,
        token_file,
        sets,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("driverprofiled-test-broker: {e}\n\n{USAGE}");
            return ExitCode::from(EX_USAGE);
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
