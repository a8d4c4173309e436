//! `driverprofilectl` against the real daemon on a private bus (`common/` is the harness), one
//! binary.

mod common;

mod cli;
mod monitor_keys;
mod terminal;
