//! Object paths of the API, and their parsing.

/// The root object: `ObjectManager`, `Manager`, `Vehicle` (and `Mock` with the mock backend).
pub const ROOT: &str = "/org/driverprofiled1";
/// Profiles are at `PROFILES/<id>` (ids are decimal, stable, never reused).
pub const PROFILES: &str = "/org/driverprofiled1/profiles";
/// Actuators are at `ACTUATORS/<axis name>`.
pub const ACTUATORS: &str = "/org/driverprofiled1/actuators";
/// The "no object" path: `ActiveProfile` with none, `MotionStarted` without a profile.
pub const NONE: &str = "/";

pub fn profile_path(id: &str) -> String {
    format!("{PROFILES}/{id}")
}

pub fn actuator_path(axis: &str) -> String {
    format!("{ACTUATORS}/{axis}")
}

/// The profile id named by an object path, if the path is a profile path at all.
pub fn profile_id(path: &str) -> Option<&str> {
    let id = path.strip_prefix(PROFILES)?.strip_prefix('/')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// The axis named by an actuator object path.
pub fn actuator_name(path: &str) -> Option<&str> {
    let axis = path.strip_prefix(ACTUATORS)?.strip_prefix('/')?;
    (!axis.is_empty() && !axis.contains('/')).then_some(axis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        assert_eq!(profile_id(&profile_path("12")), Some("12"));
        assert_eq!(profile_id("/org/driverprofiled1/profiles"), None);
        assert_eq!(profile_id("/org/driverprofiled1/profiles/"), None);
        assert_eq!(profile_id("/org/driverprofiled1/profiles/1/x"), None);
        assert_eq!(profile_id("/"), None);
        assert_eq!(
            actuator_name(&actuator_path("seat_tilt")),
            Some("seat_tilt")
        );
        assert_eq!(actuator_name("/org/driverprofiled1/actuators/"), None);
    }
}
