//! The daemon's command line (clap, as the other tools of the workspace).

use std::path::PathBuf;

use clap::Parser;
use driverprofiled::edge::Bus;

const EXIT_CODES: &str = "\
Exit codes: 0 after SIGTERM/SIGINT, 1 bus unreachable or name taken, 64 usage, 78 bad config";

#[derive(Parser, Debug)]
#[command(
    name = "driverprofiled",
    version,
    about = "Driver profiles over D-Bus: seat, headrest and steering-wheel positions",
    after_help = EXIT_CODES,
    // As before clap: a flag given twice takes the last value (repeatable ones add up).
    args_override_self = true
)]
struct Args {
    /// Configuration (default /etc/driverprofiled/config.toml when present, else the built-in
    /// defaults)
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where profiles.toml lives
    #[arg(long, value_name = "DIR", default_value = "/var/lib/driverprofiled")]
    state_dir: PathBuf,
    /// system (the default), session, or a D-Bus address (unix:path=...)
    #[arg(long, value_name = "BUS", value_parser = bus)]
    bus: Option<Bus>,
    /// Drive the simulated actuators whatever the config says
    #[arg(long)]
    mock: bool,
    /// Start a private dbus-daemon, serve on it and print DBUS_SESSION_BUS_ADDRESS=<address>
    /// on stdout
    #[arg(long, conflicts_with = "bus")]
    private_bus: bool,
    /// Validate a configuration file and exit 0 (valid) or 78 (invalid)
    #[arg(long, value_name = "PATH", exclusive = true)]
    check_config: Option<PathBuf>,
}

fn bus(s: &str) -> Result<Bus, String> {
    match s {
        "system" => Ok(Bus::System),
        "session" => Ok(Bus::Session),
        a if a.contains(':') => Ok(Bus::Address(a.to_string())),
        _ => Err("expected system, session or an address".into()),
    }
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Options),
    CheckConfig(PathBuf),
}

#[derive(Debug, PartialEq)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub bus: Bus,
    pub mock: bool,
    pub private_bus: bool,
}

/// The command line, or clap's error: help and version are errors too (`use_stderr()` false,
/// exit 0), so the caller prints it and picks the exit code.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, clap::Error> {
    let a = Args::try_parse_from(std::iter::once("driverprofiled".to_string()).chain(args))?;
    if let Some(path) = a.check_config {
        return Ok(Command::CheckConfig(path));
    }
    Ok(Command::Run(Options {
        config: a.config,
        state_dir: a.state_dir,
        bus: a.bus.unwrap_or(Bus::System),
        mock: a.mock,
        private_bus: a.private_bus,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, clap::Error> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let Ok(Command::Run(o)) = p(&[]) else {
            panic!()
        };
        assert_eq!(o.bus, Bus::System);
        assert_eq!(o.state_dir, PathBuf::from("/var/lib/driverprofiled"));
        let Ok(Command::Run(o)) = p(&["--bus", "unix:path=/x", "--mock", "--state-dir=/s"]) else {
            panic!()
        };
        assert_eq!(o.bus, Bus::Address("unix:path=/x".into()));
        assert!(o.mock);
        assert_eq!(o.state_dir, PathBuf::from("/s"));
        let Ok(Command::Run(o)) = p(&["--state-dir", "/a", "--state-dir", "/b"]) else {
            panic!()
        };
        assert_eq!(o.state_dir, PathBuf::from("/b"), "the last one wins");
        assert_eq!(
            p(&["--check-config", "/c"]).ok(),
            Some(Command::CheckConfig("/c".into()))
        );
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["--config"]).is_err());
        assert!(p(&["--bus", "nowhere"]).is_err());
        assert!(p(&["--private-bus", "--bus", "session"]).is_err());
        assert!(p(&["--check-config", "/c", "--mock"]).is_err());
        let help = p(&["--help"]).err().map(|e| e.use_stderr());
        assert_eq!(help, Some(false), "help goes to stdout with exit 0");
    }
}
