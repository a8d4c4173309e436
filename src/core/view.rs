//! What the core shows: a [`View`] built after every event, in ids and typed values. The edge
//! turns it into objects and properties and signals whatever differs from the previous one,
//! so no code path can forget to signal a change.

use super::store::{Profile, ProfileId};
use super::{Inhibitor, Vehicle};

/// One axis, in config order. `None` = not known yet (position) or never commanded (target).
#[derive(Debug, Clone, PartialEq)]
pub struct AxisView {
    /// The position last published (throttled while moving).
    pub position: Option<f64>,
    pub target: Option<f64>,
    pub moving: bool,
    /// What is wrong with the axis; `None` when healthy.
    pub fault: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// The active profile's id.
    pub active_profile: Option<ProfileId>,
    /// Oldest first.
    pub profiles: Vec<Profile>,
    /// In config order.
    pub axes: Vec<AxisView>,
    pub moving: bool,
    pub easy_exit_active: bool,
    pub backend: String,
    pub version: String,
    pub vehicle: Vehicle,
    pub nearest_key: Option<String>,
    /// (key, x, y, probability of being the one at or heading to the driver's door), as the
    /// key locator last published them; empty without `[keys.geometry]`.
    pub key_estimates: Vec<(String, f64, f64, f64)>,
    /// Why motion is not allowed now.
    pub interlock: Option<String>,
    /// Why state cannot be written, if it cannot.
    pub storage_error: Option<String>,
    /// The inhibitors held, oldest first.
    pub inhibitors: Vec<Inhibitor>,
    /// What was done with the profile store at start ("" when loaded as found).
    pub store_status: String,
}

impl View {
    pub fn profile(&self, id: ProfileId) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.id == id)
    }
}
