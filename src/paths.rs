//! Object paths and names of the D-Bus API, version 1. These are a contract: extend, never rename.

pub const BUS_NAME: &str = "org.driverprofiled1";
pub const ROOT: &str = "/org/driverprofiled1";
pub const PROFILES: &str = "/org/driverprofiled1/profiles";
pub const ACTUATORS: &str = "/org/driverprofiled1/actuators";
/// The "no object" path, used for `ActiveProfile` and `MotionStarted` without a profile.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_paths_round_trip() {
        assert_eq!(profile_id(&profile_path("12")), Some("12"));
        assert_eq!(profile_id("/org/driverprofiled1/profiles"), None);
        assert_eq!(profile_id("/org/driverprofiled1/profiles/"), None);
        assert_eq!(profile_id("/org/driverprofiled1/profiles/1/x"), None);
        assert_eq!(profile_id("/"), None);
    }
}
