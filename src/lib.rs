//! driverprofiled: driver profiles (seat, headrest, steering wheel) served over D-Bus.
//!
//! A pure [`core`] takes events and returns effects; [`edge`] is the D-Bus edge that serves the
//! API and runs the engine loop; [`backend`] holds one module per actuator backend. Names,
//! paths and proxies of the API are in the `driverprofiled-api` crate (`api/`).

pub mod access;
pub mod backend;
pub mod config;
pub mod core;
pub mod edge;
pub mod engine;
pub mod failsafe;
#[cfg(feature = "kuksa")]
pub mod kuksa;
#[cfg(feature = "kuksa")]
pub mod mockseat;
pub mod names;
pub mod persist;
pub mod privatebus;
pub mod systemd;
pub mod trace;
pub mod walksim;
