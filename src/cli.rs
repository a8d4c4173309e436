//! Command-line parsing (a handful of flags: no parser crate needed).

use std::path::PathBuf;

use driverprofiled::edge::Bus;

pub const USAGE: &str = "\
usage: driverprofiled [--config PATH] [--state-dir DIR] [--bus system|session|ADDRESS]
                      [--mock] [--private-bus]
       driverprofiled --check-config PATH
       driverprofiled --help | --version

  --config PATH      configuration (default /etc/driverprofiled/config.toml when present,
                     else the built-in defaults)
  --state-dir DIR    where profiles.toml lives (default /var/lib/driverprofiled)
  --bus BUS          system (default), session, or a D-Bus address (unix:path=...)
  --mock             drive the simulated actuators whatever the config says
  --private-bus      start a private dbus-daemon, serve on it and print
                     DBUS_SESSION_BUS_ADDRESS=<address> on stdout
  --check-config P   validate a configuration file and exit 0 (valid) or 78 (invalid)

exit codes: 0 after SIGTERM/SIGINT, 1 bus unreachable or name taken, 64 usage, 78 bad config";

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Options),
    CheckConfig(PathBuf),
    Help,
    Version,
}

#[derive(Debug, PartialEq)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub bus: Bus,
    pub mock: bool,
    pub private_bus: bool,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut opts = Options {
        config: None,
        state_dir: PathBuf::from("/var/lib/driverprofiled"),
        bus: Bus::System,
        mock: false,
        private_bus: false,
    };
    let mut bus_given = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--check-config" => return Ok(Command::CheckConfig(value("--check-config")?.into())),
            "--config" => opts.config = Some(value("--config")?.into()),
            "--state-dir" => opts.state_dir = value("--state-dir")?.into(),
            "--bus" => {
                bus_given = true;
                opts.bus = match value("--bus")?.as_str() {
                    "system" => Bus::System,
                    "session" => Bus::Session,
                    a if a.contains(':') => Bus::Address(a.to_string()),
                    a => {
                        return Err(format!(
                            "--bus {a:?}: expected system, session or an address"
                        ));
                    }
                }
            }
            "--mock" => opts.mock = true,
            "--private-bus" => opts.private_bus = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.private_bus && bus_given {
        return Err("--private-bus and --bus exclude each other".into());
    }
    Ok(Command::Run(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let Ok(Command::Run(o)) = p(&[]) else {
            panic!()
        };
        assert_eq!(o.bus, Bus::System);
        let Ok(Command::Run(o)) = p(&["--bus", "unix:path=/x", "--mock", "--state-dir=/s"]) else {
            panic!()
        };
        assert_eq!(o.bus, Bus::Address("unix:path=/x".into()));
        assert!(o.mock);
        assert_eq!(o.state_dir, PathBuf::from("/s"));
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["--config"]).is_err());
        assert!(p(&["--private-bus", "--bus", "session"]).is_err());
    }
}
