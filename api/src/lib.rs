//! The driverprofiled D-Bus API, version 1: what a client needs to talk to the daemon.
//!
//! The XML under `dbus/` is the contract; this crate is its Rust form, used by the daemon, its
//! command-line client, the tests and the benchmarks. Names, signatures and error names are a
//! contract: extend, never rename.
//!
//! - [`BUS_NAME`], the object paths ([`path`]) and [`interface`] names;
//! - [`ErrorName`]: every error the daemon replies with;
//! - [`Reason`] and [`Outcome`]: the strings of `MotionStarted`/`MotionFinished`;
//! - [`signal`]: the keys of `Vehicle.UpdateSignals`;
//! - [`proxy`]: a zbus proxy for every interface.

pub mod path;
pub mod proxy;

pub use path::{actuator_name, actuator_path, profile_id, profile_path};

/// The well-known bus name of the service.
pub const BUS_NAME: &str = "org.driverprofiled1";

/// Interface names.
pub mod interface {
    pub const MANAGER: &str = "org.driverprofiled1.Manager";
    pub const VEHICLE: &str = "org.driverprofiled1.Vehicle";
    pub const PROFILE: &str = "org.driverprofiled1.Profile";
    pub const ACTUATOR: &str = "org.driverprofiled1.Actuator";
    /// Served only with the mock backend.
    pub const MOCK: &str = "org.driverprofiled1.Mock";
    /// Every interface of the API, in the order of the `dbus/` files.
    pub const ALL: [&str; 5] = [ACTUATOR, MANAGER, MOCK, PROFILE, VEHICLE];
}

/// Every error name the daemon replies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// Malformed arguments (`org.freedesktop.DBus.Error.InvalidArgs`).
    InvalidArgs,
    NotFound,
    AlreadyExists,
    OutOfRange,
    Interlocked,
    LimitReached,
    KeyInUse,
    /// An axis has run too long lately and must rest.
    DutyLimit,
    /// The change could not be stored; nothing changed.
    Failed,
    /// An actuator's position is not known yet (its backend has not reported it).
    NotReady,
    /// Motion is inhibited: an inhibitor taken with `Manager.Inhibit` is held.
    Inhibited,
    /// The caller lacks the role the call needs (`org.freedesktop.DBus.Error.AccessDenied`),
    /// from the bus policy or from the daemon's own check.
    AccessDenied,
    /// The daemon is configured not to take this call: `Vehicle.UpdateSignals` while the
    /// vehicle signals come from the KUKSA databroker (`[vehicle] source = "kuksa"`).
    NotSupported,
}

impl ErrorName {
    pub const ALL: [ErrorName; 13] = [
        ErrorName::InvalidArgs,
        ErrorName::NotFound,
        ErrorName::AlreadyExists,
        ErrorName::OutOfRange,
        ErrorName::Interlocked,
        ErrorName::LimitReached,
        ErrorName::KeyInUse,
        ErrorName::DutyLimit,
        ErrorName::Failed,
        ErrorName::NotReady,
        ErrorName::Inhibited,
        ErrorName::AccessDenied,
        ErrorName::NotSupported,
    ];

    /// The D-Bus error name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorName::InvalidArgs => "org.freedesktop.DBus.Error.InvalidArgs",
            ErrorName::NotFound => "org.driverprofiled1.Error.NotFound",
            ErrorName::AlreadyExists => "org.driverprofiled1.Error.AlreadyExists",
            ErrorName::OutOfRange => "org.driverprofiled1.Error.OutOfRange",
            ErrorName::Interlocked => "org.driverprofiled1.Error.Interlocked",
            ErrorName::LimitReached => "org.driverprofiled1.Error.LimitReached",
            ErrorName::KeyInUse => "org.driverprofiled1.Error.KeyInUse",
            ErrorName::DutyLimit => "org.driverprofiled1.Error.DutyLimit",
            ErrorName::Failed => "org.driverprofiled1.Error.Failed",
            ErrorName::NotReady => "org.driverprofiled1.Error.NotReady",
            ErrorName::Inhibited => "org.driverprofiled1.Error.Inhibited",
            ErrorName::AccessDenied => "org.freedesktop.DBus.Error.AccessDenied",
            ErrorName::NotSupported => "org.driverprofiled1.Error.NotSupported",
        }
    }

    /// The error a D-Bus error name stands for, if it is one of ours.
    pub fn parse(name: &str) -> Option<ErrorName> {
        ErrorName::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The error name of a failed call, if the call failed with a D-Bus error reply.
    pub fn of(e: &zbus::Error) -> Option<String> {
        match e {
            zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
            zbus::Error::FDO(e) => {
                let e: &dyn zbus::DBusError = e.as_ref();
                Some(e.name().to_string())
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Defines a wire-string enum: `as_str`, `parse` and `ALL`.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s,)* }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Why a motion runs (`MotionStarted`/`MotionFinished` `reason`).
    Reason {
        /// `Manager.SelectProfile`.
        Recall = "recall",
        /// `Actuator.MoveTo`.
        Manual = "manual",
        /// The selected key approached the driver's door.
        KeyApproach = "key-approach",
        /// The car was parked: seat back, wheel up and in.
        EasyExit = "easy-exit",
        /// The driver is in again after an easy exit.
        Restore = "restore",
        /// The gear went into R: the mirrors tilt down.
        ReverseTilt = "reverse-tilt",
        /// The gear has left R: the tilted mirrors return.
        ReverseReturn = "reverse-return",
    }
}

wire_enum! {
    /// How a motion ended (`MotionFinished` `outcome`).
    Outcome {
        Completed = "completed",
        Stopped = "stopped",
        Superseded = "superseded",
        Interlocked = "interlocked",
        /// The occupant took over (manual switch or moving an axis by hand).
        Overridden = "overridden",
        Fault = "fault",
        /// An inhibitor was taken (`Manager.Inhibit`).
        Inhibited = "inhibited",
    }
}

wire_enum! {
    /// The `mode` of `Manager.ImportProfiles`.
    ImportMode {
        /// Every existing profile is deleted.
        Replace = "replace",
        /// A profile with the same name (ignoring case) is updated in place.
        Merge = "merge",
    }
}

/// One profile of `Manager.ImportProfiles` (`(sba{sd}as)`): name, easy exit, positions (axis
/// name to position in the axis unit), keys.
pub type ImportedProfile = (
    String,
    bool,
    std::collections::HashMap<String, f64>,
    Vec<String>,
);

/// One profile of `Manager.ImportProfilesEx` (`(sa{sv})`): its name and its fields by name
/// ([`import_field`]); a field left out keeps what a merged profile has, and is the default
/// for a new one.
pub type ImportedProfileEx = (
    String,
    std::collections::HashMap<String, zbus::wire::OwnedVariant>,
);

/// The fields of `Manager.ImportProfilesEx`, with their D-Bus types.
pub mod import_field {
    /// `b`, default true.
    pub const EASY_EXIT: &str = "easy_exit";
    /// `a{sd}`: axis name to position in the axis unit; an axis left out is not moved when
    /// the profile is recalled.
    pub const POSITIONS: &str = "positions";
    /// `as`.
    pub const KEYS: &str = "keys";
    /// `b`, default false.
    pub const AUTO_SAVE: &str = "auto_save";
    /// `a{sd}`: reverse positions of the car's reverse-tilt axes; default empty.
    pub const REVERSE_TILT: &str = "reverse_tilt";
    /// `b`, default true.
    pub const REVERSE_TILT_ENABLED: &str = "reverse_tilt_enabled";
    pub const ALL: [&str; 6] = [
        EASY_EXIT,
        POSITIONS,
        KEYS,
        AUTO_SAVE,
        REVERSE_TILT,
        REVERSE_TILT_ENABLED,
    ];
}

wire_enum! {
    /// `Manager.State`.
    State {
        Idle = "idle",
        Moving = "moving",
    }
}

wire_enum! {
    /// `Vehicle.Gear` and the `gear` signal ("" in the property until reported).
    Gear {
        P = "P",
        R = "R",
        N = "N",
        D = "D",
    }
}

wire_enum! {
    /// Fault kinds of `Mock.InjectFault`.
    MockFault {
        Stall = "stall",
        None = "none",
    }
}

/// The keys of `Vehicle.UpdateSignals` and their D-Bus types.
pub mod signal {
    /// `s`: one of [`crate::Gear`].
    pub const GEAR: &str = "gear";
    /// `d`: km/h, finite and >= 0.
    pub const SPEED_KMH: &str = "speed_kmh";
    /// `b`.
    pub const DRIVER_DOOR_OPEN: &str = "driver_door_open";
    /// `b`.
    pub const DRIVER_SEAT_OCCUPIED: &str = "driver_seat_occupied";
    /// `b`.
    pub const DRIVER_BELT_BUCKLED: &str = "driver_belt_buckled";
    /// `b`.
    pub const BRAKE_PRESSED: &str = "brake_pressed";
    /// `b`.
    pub const REAR_OCCUPIED: &str = "rear_occupied";
    /// `b`.
    pub const MANUAL_CONTROL: &str = "manual_control";
    /// `b`.
    pub const DOORS_LOCKED: &str = "doors_locked";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(*r));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(*o));
        }
        for e in ErrorName::ALL {
            assert_eq!(ErrorName::parse(e.as_str()), Some(e));
        }
        assert_eq!(Reason::parse("bogus"), None);
        assert_eq!(Reason::KeyApproach.to_string(), "key-approach");
    }
}
