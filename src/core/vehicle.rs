//! The vehicle signals the core acts on, and the interlock they make.

use super::{Error, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gear {
    P,
    R,
    N,
    D,
}

/// One vehicle signal, decoded and typed by the edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    Gear(Gear),
    /// km/h; must be finite and >= 0.
    SpeedKmh(f64),
    DriverDoorOpen(bool),
    DriverSeatOccupied(bool),
    DriverBeltBuckled(bool),
    BrakePressed(bool),
    RearOccupied(bool),
    /// A seat or wheel switch is held ("manual_control" on the bus): no motion starts, one in
    /// progress halts (the occupant wins).
    SeatSwitch(bool),
    DoorsLocked(bool),
    /// The gear is no longer reported (a source lost, or its value UNKNOWN): interlocked.
    GearUnknown,
    /// The speed is no longer reported: interlocked.
    SpeedUnknown,
}

/// The latest vehicle signals; `None` = not reported yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vehicle {
    pub gear: Option<Gear>,
    pub speed_kmh: Option<f64>,
    pub driver_door_open: bool,
    pub driver_seat_occupied: bool,
    pub driver_belt_buckled: bool,
    pub brake_pressed: bool,
    pub rear_occupied: bool,
    pub seat_switch: bool,
    pub doors_locked: bool,
}

impl Vehicle {
    /// Apply a batch of signals, all or nothing.
    pub fn apply(&mut self, signals: &[Signal]) -> Result<(), Error> {
        let mut v = self.clone();
        for s in signals {
            match *s {
                Signal::Gear(g) => v.gear = Some(g),
                Signal::SpeedKmh(s) if !s.is_finite() || s < 0.0 => {
                    return Err(Error::InvalidArgs(format!(
                        "speed_kmh must be a finite number >= 0, not {s}"
                    )));
                }
                Signal::SpeedKmh(s) => v.speed_kmh = Some(s),
                Signal::DriverDoorOpen(b) => v.driver_door_open = b,
                Signal::DriverSeatOccupied(b) => v.driver_seat_occupied = b,
                Signal::DriverBeltBuckled(b) => v.driver_belt_buckled = b,
                Signal::BrakePressed(b) => v.brake_pressed = b,
                Signal::RearOccupied(b) => v.rear_occupied = b,
                Signal::SeatSwitch(b) => v.seat_switch = b,
                Signal::DoorsLocked(b) => v.doors_locked = b,
                Signal::GearUnknown => v.gear = None,
                Signal::SpeedUnknown => v.speed_kmh = None,
            }
        }
        *self = v;
        Ok(())
    }

    /// In P with a reported speed below `threshold`.
    pub fn parked(&self, threshold: f64) -> bool {
        self.gear == Some(Gear::P) && self.speed_kmh.is_some_and(|s| s < threshold)
    }

    /// Why motion is not allowed right now, or `None` when it is.
    pub fn interlock(&self, threshold: f64) -> Option<String> {
        match self.gear {
            None => return Some("gear not reported yet".into()),
            Some(Gear::P) => {}
            Some(g) => return Some(format!("gear is {g:?}, not P")),
        }
        match self.speed_kmh {
            None => return Some("vehicle speed not reported yet".into()),
            Some(s) if s >= threshold => {
                return Some(format!(
                    "vehicle speed {s} km/h is not below {threshold} km/h"
                ));
            }
            Some(_) => {}
        }
        if self.seat_switch {
            return Some("a manual seat or wheel switch is in use".into());
        }
        None
    }

    /// Why a reverse tilt-down motion is not allowed now: the tilt (`tilt`) only in R below
    /// `max_speed` km/h, its return in any reported gear at any reported speed; neither with a
    /// switch held. These motions move only the mirrors `[reverse_tilt]` names.
    pub fn reverse_interlock(&self, tilt: bool, max_speed: f64) -> Option<String> {
        if self.seat_switch {
            return Some("a manual seat or wheel switch is in use".into());
        }
        let Some(g) = self.gear else {
            return Some("gear not reported yet".into());
        };
        let Some(s) = self.speed_kmh else {
            return Some("vehicle speed not reported yet".into());
        };
        if tilt && g != Gear::R {
            return Some(format!("gear is {g:?}, not R"));
        }
        if tilt && s >= max_speed {
            return Some(format!(
                "vehicle speed {s} km/h is not below {max_speed} km/h"
            ));
        }
        None
    }

    /// Why a motion for `reason` is not allowed now: the interlock, and for automatic motions
    /// also locked doors.
    pub fn interlock_for(&self, reason: Reason, threshold: f64) -> Option<String> {
        self.interlock(threshold).or_else(|| {
            (reason.automatic() && self.doors_locked)
                .then(|| "the doors are locked (no automatic motion)".to_string())
        })
    }
}
