//! The daemon's integration tests, one binary: each module runs the real `driverprofiled` on a
//! private `dbus-daemon` (`common/` is the harness), never the machine's own buses. One
//! binary links the daemon's dependencies once; `cargo test --test it MODULE::` runs one
//! module.

mod common;

mod access;
mod api;
mod easy_exit;
mod easy_exit_trigger;
mod failsafe;
mod import;
mod inhibit;
mod introspection;
mod keys;
mod kuksa_backend;
mod kuksa_car;
mod kuksa_vehicle;
mod layers;
mod lifecycle;
mod mock_seat;
mod motion;
mod reverse_tilt;
mod schema;
mod storage;
mod systemd;
mod zbus_replies;
