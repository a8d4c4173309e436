//! The key selection the config asks for: the key locator ([`super::locate`]) with
//! `[keys.geometry]`, the distance-only tracker ([`super::keys`]) without (a config from
//! before geometry existed keeps its behaviour).

use super::Millis;
use super::keys::Tracker;
use super::locate::{Locator, Reading};
use crate::config::KeyConfig;

#[derive(Debug, Clone)]
pub enum Selector {
    Distances(Box<Tracker>),
    Locator(Box<Locator>),
}

impl Selector {
    pub fn new(cfg: KeyConfig) -> Selector {
        match Locator::new(cfg.clone()) {
            Some(l) => Selector::Locator(Box::new(l)),
            None => Selector::Distances(Box::new(Tracker::new(cfg))),
        }
    }

    /// New settings with the same anchors and geometry (a config reload refuses a change
    /// to either): the readings and the filters stay valid.
    pub fn set_config(&mut self, cfg: KeyConfig) {
        match self {
            Selector::Locator(l) => l.set_config(cfg),
            Selector::Distances(t) => t.set_config(cfg),
        }
    }

    /// Whether readings are weighed with the car's geometry (and RSSI is taken).
    pub fn has_geometry(&self) -> bool {
        matches!(self, Selector::Locator(_))
    }

    pub fn selected(&self) -> Option<&str> {
        match self {
            Selector::Distances(t) => t.selected(),
            Selector::Locator(l) => l.selected(),
        }
    }

    /// The keys being tracked.
    pub fn tracked(&self) -> Vec<String> {
        match self {
            Selector::Distances(t) => t.tracked().map(str::to_string).collect(),
            Selector::Locator(l) => l.tracked().map(str::to_string).collect(),
        }
    }

    pub fn forget(&mut self, key: &str) {
        match self {
            Selector::Distances(t) => t.forget(key),
            Selector::Locator(l) => l.forget(key),
        }
    }

    /// The driver's door and seat as reported now.
    pub fn set_vehicle(&mut self, door_open: bool, seat_occupied: bool, now: Millis) {
        match self {
            Selector::Distances(t) => t.set_locked(door_open || seat_occupied),
            Selector::Locator(l) => l.set_vehicle(door_open, seat_occupied, now),
        }
    }

    /// One key's readings of one batch (validated; anchor indices).
    pub fn report(&mut self, key: &str, readings: &[(usize, Reading)], now: Millis) {
        match self {
            Selector::Distances(t) => {
                for &(a, r) in readings {
                    if let Reading::Range(d) = r {
                        t.report(key, a, d, now);
                    }
                }
            }
            Selector::Locator(l) => l.report(key, readings, now),
        }
    }

    /// Let time pass; true when the selection changed.
    pub fn update(&mut self, now: Millis) -> bool {
        match self {
            Selector::Distances(t) => t.update(now),
            Selector::Locator(l) => l.update(now),
        }
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        match self {
            Selector::Distances(t) => t.next_deadline(),
            Selector::Locator(l) => l.next_deadline(),
        }
    }

    /// Bring `Vehicle.KeyEstimates` up to date (throttled).
    pub fn publish(&mut self, now: Millis) {
        if let Selector::Locator(l) = self {
            l.publish(now);
        }
    }

    /// (key, x, y, probability of being the one at or heading to the driver's door), as last
    /// published; empty without geometry.
    pub fn estimates(&self) -> Vec<(String, f64, f64, f64)> {
        match self {
            Selector::Distances(_) => Vec::new(),
            Selector::Locator(l) => l.published().to_vec(),
        }
    }

    /// What the locator says of `key` now, if it has geometry and the key is present.
    pub fn estimate(&self, key: &str) -> Option<super::locate::Estimate> {
        match self {
            Selector::Distances(_) => None,
            Selector::Locator(l) => l.estimate(key),
        }
    }
}
