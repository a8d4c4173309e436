//! The core's values as the API names them ([`driverprofiled_api`]): motion reasons and
//! outcomes, gears, the boolean vehicle signals. Shared by the D-Bus edge, the engine's log
//! lines and the trace format, so that every one of them says the same words.

use driverprofiled_api::{Outcome as WireOutcome, Reason as WireReason};

use crate::core::{Gear, Outcome, Reason, Signal};

pub fn reason(r: Reason) -> WireReason {
    match r {
        Reason::Recall => WireReason::Recall,
        Reason::MoveTo => WireReason::Manual,
        Reason::KeyApproach => WireReason::KeyApproach,
        Reason::EasyExit => WireReason::EasyExit,
        Reason::Restore => WireReason::Restore,
        Reason::ReverseTilt => WireReason::ReverseTilt,
        Reason::ReverseReturn => WireReason::ReverseReturn,
    }
}

pub fn outcome(o: Outcome) -> WireOutcome {
    match o {
        Outcome::Completed => WireOutcome::Completed,
        Outcome::Stopped => WireOutcome::Stopped,
        Outcome::Superseded => WireOutcome::Superseded,
        Outcome::Interlocked => WireOutcome::Interlocked,
        Outcome::Overridden => WireOutcome::Overridden,
        Outcome::Fault => WireOutcome::Fault,
        Outcome::Inhibited => WireOutcome::Inhibited,
    }
}

/// The vehicle signal a boolean `UpdateSignals` key (or trace signal) stands for.
pub fn boolean_signal(key: &str) -> Option<fn(bool) -> Signal> {
    use driverprofiled_api::signal as sig;
    Some(match key {
        sig::DRIVER_DOOR_OPEN => Signal::DriverDoorOpen,
        sig::DRIVER_SEAT_OCCUPIED => Signal::DriverSeatOccupied,
        sig::DRIVER_BELT_BUCKLED => Signal::DriverBeltBuckled,
        sig::BRAKE_PRESSED => Signal::BrakePressed,
        sig::REAR_OCCUPIED => Signal::RearOccupied,
        sig::MANUAL_CONTROL => Signal::SeatSwitch,
        sig::DOORS_LOCKED => Signal::DoorsLocked,
        _ => return None,
    })
}

pub fn gear_from_wire(g: driverprofiled_api::Gear) -> Gear {
    use driverprofiled_api::Gear as W;
    match g {
        W::P => Gear::P,
        W::R => Gear::R,
        W::N => Gear::N,
        W::D => Gear::D,
    }
}
