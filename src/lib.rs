//! driverprofiled: driver profiles (seat, headrest, steering wheel) served over D-Bus.
//!
//! Layers that point down only (docs/design.md; `tests/it/layers.rs` keeps them so): a pure
//! [`core`] takes events and time and returns effects; [`backend`] holds one module per
//! actuator backend; the [`engine`] owns the core and drives the backends; the edges feed it:
//! [`edge`] serves the D-Bus API, `signals` reads the vehicle from the KUKSA databroker.
//! Names, paths and proxies of the API are in the `driverprofiled-api` crate (`api/`).

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
#[cfg(feature = "kuksa")]
pub mod signals;
pub mod systemd;
pub mod trace;
pub mod walksim;
