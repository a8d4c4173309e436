//! The core's typed [`View`] as D-Bus properties. The only place where property names meet the
//! core's values: the interface getters and the `PropertiesChanged` diff both read from here.

use driverprofiled_api::{State, path};

use crate::config::{AxisConfig, Config};
use crate::core::store::{Profile, ProfileId};
use crate::core::view::{AxisView, View};

/// A property value, free of any D-Bus library type.
#[derive(Debug, Clone)]
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
    Map(Vec<(String, f64)>),
    /// Inhibitors: (who, why, uid, pid) each (`a(ssuu)`).
    Inhibitors(Vec<InhibitorTuple>),
    /// Key estimates: (key, x, y, probability) each (`a(sddd)`).
    KeyEstimates(Vec<(String, f64, f64, f64)>),
}

/// One inhibitor as `Manager.Inhibitors` shows it: (who, why, uid, pid).
pub type InhibitorTuple = (String, String, u32, u32);

impl PartialEq for PropValue {
    /// Numbers compare by their bits: a NaN position ("not known") equals itself, so an
    /// unknown axis is not signalled as changed on every event.
    fn eq(&self, other: &Self) -> bool {
        use PropValue::*;
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits();
        match (self, other) {
            (Str(a), Str(b)) | (Path(a), Path(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (F64(a), F64(b)) => same(*a, *b),
            (Paths(a), Paths(b)) | (Strs(a), Strs(b)) => a == b,
            (Inhibitors(a), Inhibitors(b)) => a == b,
            (KeyEstimates(a), KeyEstimates(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(a, b)| {
                        a.0 == b.0 && same(a.1, b.1) && same(a.2, b.2) && same(a.3, b.3)
                    })
            }
            (Map(a), Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && same(*va, *vb))
            }
            _ => false,
        }
    }
}

pub type Props = Vec<(&'static str, PropValue)>;

/// The properties of `new` that differ from `old`.
pub fn changed(old: &Props, new: Props) -> Props {
    new.into_iter()
        .filter(|(name, v)| old.iter().find(|(n, _)| n == name).map(|(_, o)| o) != Some(v))
        .collect()
}

/// A profile path, or "/" for none.
/// The object path of profile `id`.
pub fn profile_path(id: ProfileId) -> String {
    path::profile_path(&id.to_string())
}

pub fn profile_path_or_none(id: Option<ProfileId>) -> String {
    id.map(profile_path)
        .unwrap_or_else(|| path::NONE.to_string())
}

// Manager

pub fn active_profile(v: &View) -> String {
    profile_path_or_none(v.active_profile)
}

pub fn profiles(v: &View) -> Vec<String> {
    v.profiles.iter().map(|p| profile_path(p.id)).collect()
}

pub fn actuators(cfg: &Config) -> Vec<String> {
    cfg.axes
        .iter()
        .map(|a| path::actuator_path(&a.name))
        .collect()
}

pub fn state(v: &View) -> &'static str {
    if v.moving {
        State::Moving.as_str()
    } else {
        State::Idle.as_str()
    }
}

/// (who, why, uid, pid) of each inhibitor, oldest first.
pub fn inhibitors(v: &View) -> Vec<InhibitorTuple> {
    v.inhibitors
        .iter()
        .map(|h| (h.who.clone(), h.why.clone(), h.uid, h.pid))
        .collect()
}

pub fn manager(v: &View, cfg: &Config) -> Props {
    vec![
        ("ActiveProfile", PropValue::Path(active_profile(v))),
        ("Profiles", PropValue::Paths(profiles(v))),
        ("Actuators", PropValue::Paths(actuators(cfg))),
        ("State", PropValue::Str(state(v).into())),
        ("EasyExitActive", PropValue::Bool(v.easy_exit_active)),
        ("Inhibitors", PropValue::Inhibitors(inhibitors(v))),
        ("Backend", PropValue::Str(v.backend.clone())),
        ("Version", PropValue::Str(v.version.clone())),
        (
            "StorageError",
            PropValue::Str(v.storage_error.clone().unwrap_or_default()),
        ),
        ("StoreStatus", PropValue::Str(v.store_status.clone())),
    ]
}

// Vehicle

/// "" until reported.
pub fn gear(v: &View) -> String {
    v.vehicle.gear.map(|g| format!("{g:?}")).unwrap_or_default()
}

/// Negative until reported.
pub fn speed_kmh(v: &View) -> f64 {
    v.vehicle.speed_kmh.unwrap_or(-1.0)
}

pub fn vehicle(v: &View) -> Props {
    let s = &v.vehicle;
    vec![
        ("Gear", PropValue::Str(gear(v))),
        ("SpeedKmh", PropValue::F64(speed_kmh(v))),
        ("DriverDoorOpen", PropValue::Bool(s.driver_door_open)),
        (
            "DriverSeatOccupied",
            PropValue::Bool(s.driver_seat_occupied),
        ),
        ("DriverBeltBuckled", PropValue::Bool(s.driver_belt_buckled)),
        ("BrakePressed", PropValue::Bool(s.brake_pressed)),
        ("RearOccupied", PropValue::Bool(s.rear_occupied)),
        ("ManualControl", PropValue::Bool(s.seat_switch)),
        ("DoorsLocked", PropValue::Bool(s.doors_locked)),
        (
            "NearestKey",
            PropValue::Str(v.nearest_key.clone().unwrap_or_default()),
        ),
        (
            "KeyEstimates",
            PropValue::KeyEstimates(v.key_estimates.clone()),
        ),
        (
            "Interlock",
            PropValue::Str(v.interlock.clone().unwrap_or_default()),
        ),
    ]
}

/// (name, x, y) of every anchor, then the driver's spot; empty without geometry.
pub fn key_geometry(cfg: &Config) -> Vec<(String, f64, f64)> {
    let k = &cfg.keys;
    let Some(g) = &k.geometry else {
        return Vec::new();
    };
    (k.anchors.iter().zip(&g.anchors))
        .map(|(n, p)| (n.clone(), p[0], p[1]))
        .chain([(
            crate::config::DRIVER_SPOT.to_string(),
            g.driver_spot[0],
            g.driver_spot[1],
        )])
        .collect()
}

// Profile

pub fn profile(p: &Profile) -> Props {
    vec![
        ("Id", PropValue::Str(p.id.to_string())),
        ("Name", PropValue::Str(p.name.clone())),
        ("Keys", PropValue::Strs(p.keys.clone())),
        (
            "Positions",
            PropValue::Map(p.positions.iter().map(|(k, v)| (k.clone(), *v)).collect()),
        ),
        ("EasyExit", PropValue::Bool(p.easy_exit)),
        ("AutoSave", PropValue::Bool(p.auto_save)),
        (
            "ReverseTilt",
            PropValue::Map(
                p.reverse_tilt
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            ),
        ),
        (
            "ReverseTiltEnabled",
            PropValue::Bool(p.reverse_tilt_enabled),
        ),
    ]
}

// Actuator

/// The properties that never change.
pub fn actuator_const(ac: &AxisConfig) -> Props {
    vec![
        ("Name", PropValue::Str(ac.name.clone())),
        ("Unit", PropValue::Str(ac.unit.as_str().into())),
        ("Min", PropValue::F64(ac.min)),
        ("Max", PropValue::F64(ac.max)),
        ("Vss", PropValue::Str(ac.vss.clone())),
    ]
}

/// NaN while not known.
pub fn position(a: &AxisView) -> f64 {
    a.position.unwrap_or(f64::NAN)
}

/// NaN before any target is known.
pub fn target(a: &AxisView) -> f64 {
    a.target.unwrap_or(f64::NAN)
}

pub fn actuator(a: &AxisView) -> Props {
    vec![
        ("Position", PropValue::F64(position(a))),
        ("Target", PropValue::F64(target(a))),
        ("Moving", PropValue::Bool(a.moving)),
        ("Fault", PropValue::Str(a.fault.clone().unwrap_or_default())),
    ]
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

    #[test]
    fn an_unknown_position_is_not_a_change() {
        let old = vec![("Position", PropValue::F64(f64::NAN))];
        assert!(changed(&old, old.clone()).is_empty());
    }
}
