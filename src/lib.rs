//! driverprofiled: driver profiles (seat, headrest, steering wheel) served over D-Bus.
//!
//! A pure [`core`] takes events and returns effects; [`dbus`] is the edge that serves the API
//! and runs the engine loop; [`backend`] holds one file per actuator backend.

pub mod backend;
pub mod config;
pub mod core;
pub mod dbus;
pub mod paths;
pub mod persist;
pub mod privatebus;
