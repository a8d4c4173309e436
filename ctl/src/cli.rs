//! The command line, as clap derives it. `completions` and `man` generate from these same
//! definitions, so they cannot drift from what the binary accepts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub const EXIT_CODES: &str = "\
Exit codes:
  0   ok
  64  usage: bad arguments
  65  bad data: InvalidArgs, OutOfRange, AlreadyExists, KeyInUse, NotFound, LimitReached,
      a malformed import file, problems found by check-config or check-state
  66  an input file cannot be opened
  69  service unavailable: no bus, nobody owns org.driverprofiled1, wait-ready timed out,
      NotSupported
  70  an unexpected reply (a bug)
  74  Failed: the daemon could not store the change (nothing changed)
  75  temporary: Interlocked, Inhibited, DutyLimit, NotReady; select --wait ended other
      than completed
  77  AccessDenied
  78  bad config (check-config)
inhibit exits with its command's code (126 cannot run it, 127 not found, 128+N killed by
signal N). Errors from the daemon are printed as `driverprofilectl: NAME: MESSAGE`.";

/// Command-line client of driverprofiled (org.driverprofiled1): driver profiles, recall,
/// export and import, inhibitors, and checks for OTA update scripts.
#[derive(Debug, Parser)]
#[command(name = "driverprofilectl", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The bus: system, session, or a D-Bus address such as unix:path=/run/x.
    #[arg(long, global = true, default_value = "system", value_name = "BUS")]
    pub bus: String,
    /// Print one JSON document (read commands) or one JSON object per line (monitor).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Backend, state, active profile, vehicle signals and their source, interlock, faults,
    /// easy exit, nearest key, storage health and inhibitors.
    Status,
    /// Every profile, oldest first.
    List,
    /// One profile: its positions, keys, and its easy-exit and auto-save flags.
    Show {
        /// A profile id, or a name (ignoring case).
        profile: String,
    },
    /// Create a profile. The daemon stores the current position of every axis in a new
    /// profile; say so with --from-current, or give AXIS=VALUE pairs that replace some of them
    /// (if they are refused, the new profile is deleted again).
    #[command(after_help = "Prints the new profile's id.")]
    Create {
        /// The new profile's name (1-64 characters, unique ignoring case).
        name: String,
        /// Store where the actuators are now.
        #[arg(long, required_unless_present = "positions")]
        from_current: bool,
        /// Positions to store instead of the current ones, e.g. seat_position=180.
        #[arg(value_name = "AXIS=VALUE")]
        positions: Vec<String>,
    },
    /// Rename a profile.
    Rename {
        profile: String,
        /// 1-64 characters, unique ignoring case.
        new_name: String,
    },
    /// Delete a profile.
    Delete { profile: String },
    /// Set positions of a profile (all or nothing: one SetPositions call), its AutoSave and its
    /// reverse tilt. The reverse positions are set first, then the positions, then the rest.
    Set {
        profile: String,
        /// e.g. seat_position=180 wheel_tilt=70 (in each axis' unit).
        #[arg(
            value_name = "AXIS=VALUE",
            required_unless_present_any = ["auto_save", "reverse_tilt"]
        )]
        positions: Vec<String>,
        /// Store the positions the driver leaves the axes at, at the end of each drive.
        #[arg(long, value_name = "on|off", value_parser = on_off)]
        auto_save: Option<bool>,
        /// Reverse tilt-down with this profile: on or off, or where a mirror goes while
        /// reversing (mirror_passenger_tilt=-40; AXIS=default: the configured offset). Other
        /// axes' reverse positions are kept. Repeatable.
        #[arg(long, value_name = "on|off|AXIS=VALUE", value_parser = reverse_tilt)]
        reverse_tilt: Vec<ReverseTilt>,
    },
    /// Store where the actuators are now in a profile.
    Save { profile: String },
    /// Bind a key id to a profile (its approach recalls the profile).
    Bind { profile: String, key: String },
    /// Unbind a key id from a profile.
    Unbind { profile: String, key: String },
    /// Make a profile active and recall it.
    Select {
        profile: String,
        /// Wait for the motion to end; exit 0 only if it completed (else 75).
        #[arg(long)]
        wait: bool,
    },
    /// Halt all motion now.
    Stop,
    /// Print signals and property changes as they happen; on a terminal (without --json), a
    /// live view of every axis.
    Monitor {
        /// Only the keys: where each key is (Vehicle.KeyEstimates) and which one is selected
        /// (NearestKey). On a terminal, a live top view of the car and the keys around it;
        /// else one line per change (JSON with --json). Exit 69 when the car config has no
        /// key geometry.
        #[arg(long)]
        keys: bool,
    },
    /// Export every profile as JSON in VSS terms (format driverprofiled-profiles, version 1).
    Export {
        /// Write here (atomically) instead of standard output.
        file: Option<PathBuf>,
    },
    /// Import profiles from an export, all or nothing (one Manager.ImportProfilesEx call).
    Import(ImportArgs),
    /// Keep every actuator still while COMMAND runs; exit with its exit code.
    Inhibit {
        /// Why, for whoever reads Manager.Inhibitors (1-256 characters).
        #[arg(long, required = true)]
        why: String,
        /// Who asks (1-64 characters).
        #[arg(long, default_value = "driverprofilectl")]
        who: String,
        /// The command and its arguments.
        #[arg(required = true, last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Wait until the service owns its name and knows every actuator's position.
    #[command(after_help = "Exit 0 when ready, 69 on timeout.")]
    WaitReady {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30.0, value_name = "S")]
        timeout: f64,
    },
    /// Validate a config file as the daemon would; with --state, report every stored profile
    /// the new config would clamp or whose axis it lacks.
    CheckConfig {
        file: PathBuf,
        /// A state directory (holding profiles.toml) to check against the config.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
    },
    /// Validate a state directory without starting the daemon (changes nothing).
    CheckState { dir: PathBuf },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file written by export (at most 1 MiB).
    pub file: PathBuf,
    /// Delete every existing profile first.
    #[arg(long, conflicts_with = "merge")]
    pub replace: bool,
    /// Update profiles with the same name (ignoring case) in place, create the others
    /// (the default).
    #[arg(long)]
    pub merge: bool,
    /// Check everything, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One `--reverse-tilt` argument.
#[derive(Debug, Clone, PartialEq)]
pub enum ReverseTilt {
    Enabled(bool),
    /// An axis' reverse position; `None`: back to the configured offset.
    Position(String, Option<f64>),
}

fn reverse_tilt(s: &str) -> Result<ReverseTilt, String> {
    if let Ok(on) = on_off(s) {
        return Ok(ReverseTilt::Enabled(on));
    }
    let bad = || format!("{s:?}: expected on, off, AXIS=VALUE or AXIS=default");
    let (axis, v) = s.split_once('=').ok_or_else(bad)?;
    if axis.is_empty() {
        return Err(bad());
    }
    let v = match v.trim() {
        "default" => None,
        v => Some(
            v.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(bad)?,
        ),
    };
    Ok(ReverseTilt::Position(axis.to_string(), v))
}

/// `on` or `off`.
fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s:?} is neither on nor off")),
    }
}
