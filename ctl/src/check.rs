//! `check-config` and `check-state`: the daemon's own parsers, without a bus. Neither writes
//! anything.

use std::path::Path;

use driverprofiled::config::{self, Config};

use crate::bus::{Fail, exit};

/// Opened at all? (66 rather than a config error for a path that is not there.)
fn readable(path: &Path) -> Result<(), Fail> {
    std::fs::File::open(path).map(drop).map_err(|e| {
        Fail::new(
            exit::NOINPUT,
            format!("cannot open {}: {e}", path.display()),
        )
    })
}

pub fn config(file: &Path, state: Option<&Path>) -> Result<(), Fail> {
    readable(file)?;
    let cfg =
        config::load(file).map_err(|e| Fail::new(exit::CONFIG, format!("invalid config: {e}")))?;
    let n = cfg.axes.len();
    println!(
        "{}: valid, {n} {}",
        file.display(),
        if n == 1 { "axis" } else { "axes" }
    );
    match state {
        None => Ok(()),
        Some(dir) => check_state(dir, Some(&cfg)),
    }
}

pub fn state(dir: &Path) -> Result<(), Fail> {
    check_state(dir, None)
}

fn check_state(dir: &Path, cfg: Option<&Config>) -> Result<(), Fail> {
    if !dir.is_dir() {
        return Err(Fail::new(
            exit::NOINPUT,
            format!("{}: not a directory", dir.display()),
        ));
    }
    let report = driverprofiled::persist::check_state(dir, cfg)
        .map_err(|e| Fail::new(exit::DATAERR, format!("{}: {e}", dir.display())))?;
    let n = report.profiles;
    println!(
        "{}: store schema {}, {n} profile{}",
        dir.display(),
        report.schema,
        if n == 1 { "" } else { "s" }
    );
    if report.problems.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{}: {} problem{}:",
        dir.display(),
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" }
    );
    for p in &report.problems {
        msg += "\n  ";
        msg += p;
    }
    Err(Fail::new(exit::DATAERR, msg))
}
