//! Client proxies for every interface. Their names and signatures follow `dbus/*.xml`; the
//! doc comments there say what each member does.
//!
//! The interface names are repeated here as literals because proxy attributes need them;
//! `tests/it/introspection.rs` checks them against [`crate::interface`].

use std::collections::HashMap;

use zbus::{ObjectPath, OwnedObjectPath, Variant};

#[zbus::proxy(
    interface = "org.driverprofiled1.Manager",
    default_service = "org.driverprofiled1",
    default_path = "/org/driverprofiled1"
)]
pub trait Manager {
    fn create_profile(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn select_profile(&self, profile: &ObjectPath<'_>) -> zbus::Result<()>;
    fn stop(&self) -> zbus::Result<()>;
    /// Keep every actuator still while the returned descriptor is open.
    fn inhibit(&self, who: &str, why: &str) -> zbus::Result<zbus::OwnedFd>;
    /// Import profiles all or nothing; `mode` is [`crate::ImportMode`]'s string.
    fn import_profiles(
        &self,
        profiles: &[crate::ImportedProfile],
        mode: &str,
        dry_run: bool,
    ) -> zbus::Result<Vec<OwnedObjectPath>>;
    /// The same, each profile's fields by name ([`crate::import_field`]).
    fn import_profiles_ex(
        &self,
        profiles: &[crate::ImportedProfileEx],
        mode: &str,
        dry_run: bool,
    ) -> zbus::Result<Vec<OwnedObjectPath>>;
    #[zbus(property)]
    fn active_profile(&self) -> zbus::Result<OwnedObjectPath>;
    #[zbus(property)]
    fn profiles(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    #[zbus(property)]
    fn actuators(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn easy_exit_active(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn backend(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    /// "" while state can be written; else why not.
    #[zbus(property)]
    fn storage_error(&self) -> zbus::Result<String>;
    /// (who, why, uid, pid) of each inhibitor held.
    #[zbus(property)]
    fn inhibitors(&self) -> zbus::Result<Vec<(String, String, u32, u32)>>;
    /// "" when the store loaded as found; else what was done with it at start.
    #[zbus(property)]
    fn store_status(&self) -> zbus::Result<String>;
    #[zbus(signal)]
    fn motion_started(&self, reason: String, profile: OwnedObjectPath) -> zbus::Result<()>;
    #[zbus(signal)]
    fn motion_finished(&self, reason: String, outcome: String) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.driverprofiled1.Profile",
    default_service = "org.driverprofiled1"
)]
pub trait Profile {
    fn set_positions(&self, positions: HashMap<&str, f64>) -> zbus::Result<()>;
    fn save_current_positions(&self) -> zbus::Result<()>;
    fn bind_key(&self, key: &str) -> zbus::Result<()>;
    fn unbind_key(&self, key: &str) -> zbus::Result<()>;
    fn delete(&self) -> zbus::Result<()>;
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn set_name(&self, name: &str) -> zbus::Result<()>;
    #[zbus(property)]
    fn keys(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn positions(&self) -> zbus::Result<HashMap<String, f64>>;
    #[zbus(property)]
    fn easy_exit(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn set_easy_exit(&self, enabled: bool) -> zbus::Result<()>;
    #[zbus(property)]
    fn auto_save(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn set_auto_save(&self, enabled: bool) -> zbus::Result<()>;
    #[zbus(property)]
    fn reverse_tilt(&self) -> zbus::Result<HashMap<String, f64>>;
    #[zbus(property)]
    fn set_reverse_tilt(&self, positions: HashMap<String, f64>) -> zbus::Result<()>;
    #[zbus(property)]
    fn reverse_tilt_enabled(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn set_reverse_tilt_enabled(&self, enabled: bool) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.driverprofiled1.Actuator",
    default_service = "org.driverprofiled1"
)]
pub trait Actuator {
    fn move_to(&self, position: f64) -> zbus::Result<()>;
    fn stop(&self) -> zbus::Result<()>;
    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn unit(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn min(&self) -> zbus::Result<f64>;
    #[zbus(property)]
    fn max(&self) -> zbus::Result<f64>;
    #[zbus(property)]
    fn vss(&self) -> zbus::Result<String>;
    /// NaN while the position is not known (the backend has not reported it).
    #[zbus(property)]
    fn position(&self) -> zbus::Result<f64>;
    #[zbus(property)]
    fn target(&self) -> zbus::Result<f64>;
    #[zbus(property)]
    fn moving(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn fault(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.driverprofiled1.Vehicle",
    default_service = "org.driverprofiled1",
    default_path = "/org/driverprofiled1"
)]
pub trait Vehicle {
    fn update_signals(&self, signals: HashMap<&str, Variant<'_>>) -> zbus::Result<()>;
    fn report_ranges(&self, readings: Vec<(String, String, f64)>) -> zbus::Result<()>;
    /// (key id, anchor, RSSI in dBm) from a BLE key locator.
    fn report_rssi(&self, readings: Vec<(String, String, f64)>) -> zbus::Result<()>;
    /// "dbus" or "kuksa": where the vehicle signals come from.
    #[zbus(property(emits_changed_signal = "const"))]
    fn source(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn gear(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn speed_kmh(&self) -> zbus::Result<f64>;
    #[zbus(property)]
    fn driver_door_open(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn driver_seat_occupied(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn driver_belt_buckled(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn brake_pressed(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn rear_occupied(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn manual_control(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn doors_locked(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn nearest_key(&self) -> zbus::Result<String>;
    /// (key id, x, y, probability of being the one at or heading to the driver's door).
    #[zbus(property)]
    fn key_estimates(&self) -> zbus::Result<Vec<(String, f64, f64, f64)>>;
    /// (name, x, y) of each anchor, then "driver_spot"; empty without geometry.
    #[zbus(property(emits_changed_signal = "const"))]
    fn key_geometry(&self) -> zbus::Result<Vec<(String, f64, f64)>>;
    #[zbus(property)]
    fn interlock(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.driverprofiled1.Mock",
    default_service = "org.driverprofiled1",
    default_path = "/org/driverprofiled1"
)]
pub trait Mock {
    fn set_speed_factor(&self, factor: f64) -> zbus::Result<()>;
    fn inject_fault(&self, axis: &str, kind: &str) -> zbus::Result<()>;
    fn set_position(&self, axis: &str, position: f64) -> zbus::Result<()>;
}
