//! What the D-Bus objects show. The core builds a [`View`] after every event; the D-Bus edge
//! serves property reads from the latest one and emits `PropertiesChanged` for what differs
//! from the previous one, so no code path can forget to signal a change.

use std::collections::BTreeMap;

/// A property value, free of any D-Bus library type.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    Str(String),
    Bool(bool),
    F64(f64),
    /// An object path (`o`).
    Path(String),
    /// A list of object paths (`ao`).
    Paths(Vec<String>),
    /// A list of strings (`as`).
    Strs(Vec<String>),
    /// Axis name to position (`a{sd}`).
    Map(BTreeMap<String, f64>),
}

pub type Props = Vec<(&'static str, PropValue)>;

#[derive(Debug, Clone, PartialEq)]
pub struct ManagerView {
    pub active_profile: String,
    pub profiles: Vec<String>,
    pub actuators: Vec<String>,
    pub state: &'static str,
    pub easy_exit_active: bool,
    pub backend: String,
    pub version: String,
}

impl ManagerView {
    pub fn props(&self) -> Props {
        vec![
            (
                "ActiveProfile",
                PropValue::Path(self.active_profile.clone()),
            ),
            ("Profiles", PropValue::Paths(self.profiles.clone())),
            ("Actuators", PropValue::Paths(self.actuators.clone())),
            ("State", PropValue::Str(self.state.into())),
            ("EasyExitActive", PropValue::Bool(self.easy_exit_active)),
            ("Backend", PropValue::Str(self.backend.clone())),
            ("Version", PropValue::Str(self.version.clone())),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VehicleView {
    /// "" while unknown.
    pub gear: String,
    /// Negative while unknown.
    pub speed_kmh: f64,
    pub driver_door_open: bool,
    pub driver_seat_occupied: bool,
    pub driver_belt_buckled: bool,
    pub brake_pressed: bool,
    pub rear_occupied: bool,
    pub manual_control: bool,
    pub doors_locked: bool,
    /// The key selected as nearest the driver's door; "" when none.
    pub nearest_key: String,
    /// Why motion is not allowed now; "" when it is.
    pub interlock: String,
}

impl VehicleView {
    pub fn props(&self) -> Props {
        vec![
            ("Gear", PropValue::Str(self.gear.clone())),
            ("SpeedKmh", PropValue::F64(self.speed_kmh)),
            ("DriverDoorOpen", PropValue::Bool(self.driver_door_open)),
            (
                "DriverSeatOccupied",
                PropValue::Bool(self.driver_seat_occupied),
            ),
            (
                "DriverBeltBuckled",
                PropValue::Bool(self.driver_belt_buckled),
            ),
            ("BrakePressed", PropValue::Bool(self.brake_pressed)),
            ("RearOccupied", PropValue::Bool(self.rear_occupied)),
            ("ManualControl", PropValue::Bool(self.manual_control)),
            ("DoorsLocked", PropValue::Bool(self.doors_locked)),
            ("NearestKey", PropValue::Str(self.nearest_key.clone())),
            ("Interlock", PropValue::Str(self.interlock.clone())),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProfileView {
    pub id: String,
    pub name: String,
    pub keys: Vec<String>,
    pub positions: BTreeMap<String, f64>,
    pub easy_exit: bool,
}

impl ProfileView {
    pub fn props(&self) -> Props {
        vec![
            ("Id", PropValue::Str(self.id.clone())),
            ("Name", PropValue::Str(self.name.clone())),
            ("Keys", PropValue::Strs(self.keys.clone())),
            ("Positions", PropValue::Map(self.positions.clone())),
            ("EasyExit", PropValue::Bool(self.easy_exit)),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActuatorView {
    pub name: String,
    pub unit: &'static str,
    pub min: f64,
    pub max: f64,
    pub vss: String,
    pub position: f64,
    pub target: f64,
    pub moving: bool,
    pub fault: String,
}

impl ActuatorView {
    pub fn props(&self) -> Props {
        vec![
            ("Name", PropValue::Str(self.name.clone())),
            ("Unit", PropValue::Str(self.unit.into())),
            ("Min", PropValue::F64(self.min)),
            ("Max", PropValue::F64(self.max)),
            ("Vss", PropValue::Str(self.vss.clone())),
            ("Position", PropValue::F64(self.position)),
            ("Target", PropValue::F64(self.target)),
            ("Moving", PropValue::Bool(self.moving)),
            ("Fault", PropValue::Str(self.fault.clone())),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub manager: ManagerView,
    pub vehicle: VehicleView,
    /// By profile id.
    pub profiles: BTreeMap<String, ProfileView>,
    /// By axis name.
    pub actuators: BTreeMap<String, ActuatorView>,
}

/// The properties of `new` that differ from `old`.
pub fn changed(old: &Props, new: Props) -> Props {
    new.into_iter()
        .filter(|(name, v)| old.iter().find(|(n, _)| n == name).map(|(_, o)| o) != Some(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lists_only_differences() {
        let old = vec![("A", PropValue::Bool(true)), ("B", PropValue::F64(1.0))];
        let new = vec![("A", PropValue::Bool(true)), ("B", PropValue::F64(2.0))];
        assert_eq!(changed(&old, new), vec![("B", PropValue::F64(2.0))]);
    }
}
