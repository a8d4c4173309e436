//! Easy exit and restore: retract the seat and wheel when the car is parked, bring them back
//! when the driver is in again. This part owns the trigger and restore state; the motions
//! themselves run in the one engine like any other (automatic, so locked doors hold them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::axes::Axes;
use super::{Reason, Vehicle};
use crate::config::{Config, EasyExitTrigger, RestoreOn};

/// Easy-exit state that must survive a restart (an OTA update restarts the daemon while the
/// car is parked, possibly retracted): without it the next driver would get no restore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EasyExitState {
    pub active: bool,
    /// Axis name to position before the retract (restored when no profile is active).
    #[serde(default)]
    pub pre_retract: BTreeMap<String, f64>,
}

impl EasyExitState {
    pub fn validate(&self) -> Result<(), String> {
        match self.pre_retract.iter().find(|(_, v)| !v.is_finite()) {
            Some((axis, v)) => Err(format!("pre_retract {axis} = {v} is not finite")),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct EasyExit {
    /// From an easy-exit retract until the restore.
    active: bool,
    /// The trigger condition was seen false with the gear known: a transition into it may
    /// trigger (the first report after a restart may not).
    armed: bool,
    /// A retract was held back only by locked doors (cars often unlock just after P): it runs
    /// when they unlock, while the driver is still seated and the car still in P.
    pending: bool,
    /// Positions before the retract, restored when no profile is active.
    pre_retract: Vec<(usize, f64)>,
    /// The restore signal (brake or belt) was seen released since the retract: only a fresh
    /// press restores (the driver usually holds the brake while shifting into P).
    restore_primed: bool,
}

impl EasyExit {
    /// Take up the state kept from before a restart.
    pub fn resume(&mut self, state: EasyExitState, axes: &Axes) {
        self.active = state.active;
        self.pre_retract = state
            .pre_retract
            .iter()
            .filter_map(|(axis, v)| axes.index(axis).map(|i| (i, *v)))
            .collect();
        if state.active {
            tracing::info!("resuming: the car was left retracted; the restore is pending");
        }
    }

    /// What must survive a restart.
    pub fn state(&self, axes: &Axes) -> EasyExitState {
        EasyExitState {
            active: self.active,
            pre_retract: self
                .pre_retract
                .iter()
                .map(|&(i, v)| (axes.config(i).name.clone(), v))
                .collect(),
        }
    }

    /// A cheap fingerprint of [`EasyExit::state`], to see whether it changed.
    pub fn persisted(&self) -> (bool, Vec<(usize, f64)>) {
        (self.active, self.pre_retract.clone())
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// An explicit recall ends easy exit: the profile is what the driver wants.
    pub fn end(&mut self) {
        self.active = false;
        self.pending = false;
    }

    /// After a signal update: whether a retract is due now (the transition into the trigger
    /// condition, or a held-back retract whose doors were unlocked).
    pub fn retract_due(&mut self, v: &Vehicle, cfg: &Config) -> bool {
        let condition = v.parked(cfg.speed_threshold_kmh)
            && match cfg.easy_exit.trigger {
                EasyExitTrigger::Park => true,
                EasyExitTrigger::ParkAndUnbuckle => !v.driver_belt_buckled,
            };
        if !v.driver_seat_occupied {
            // The driver has left: a held-back retract would surprise whoever comes next.
            self.pending = false;
        }
        if !condition {
            // Only a transition seen with the gear known triggers.
            if v.gear.is_some() {
                self.armed = true;
            }
            self.pending = false;
            false
        } else if self.armed {
            self.armed = false;
            true
        } else {
            self.pending
                && v.interlock_for(Reason::EasyExit, cfg.speed_threshold_kmh)
                    .is_none()
        }
    }

    /// After a signal update: whether the restore is due (a fresh press of the restore signal
    /// with the driver seated, while retracted).
    pub fn restore_due(&mut self, v: &Vehicle, cfg: &Config) -> bool {
        if !self.active {
            return false;
        }
        if !restore_signal(v, cfg) {
            self.restore_primed = true;
            false
        } else {
            self.restore_primed && v.driver_seat_occupied
        }
    }

    /// The retract's targets, or `None` when it must not run now (`enabled`: the active
    /// profile's or the default easy-exit switch). Held back only by locked doors, it stays
    /// pending while the driver is seated.
    pub fn plan_retract(
        &mut self,
        v: &Vehicle,
        axes: &Axes,
        enabled: bool,
    ) -> Option<Vec<(usize, f64)>> {
        if !enabled {
            tracing::info!("easy exit: disabled for this profile");
            return None;
        }
        self.pending = false;
        let threshold = axes.cfg.speed_threshold_kmh;
        if let Some(why) = v.interlock(threshold) {
            tracing::info!("easy exit: not now ({why})");
            return None;
        }
        if let Some(why) = v.interlock_for(Reason::EasyExit, threshold) {
            self.pending = v.driver_seat_occupied;
            tracing::info!("easy exit: held back ({why})");
            return None;
        }
        Some(
            axes.cfg
                .easy_exit
                .retract
                .iter()
                .filter_map(|&(i, rule)| {
                    let from = axes.position(i)?;
                    Some((
                        i,
                        rear_guard(v, axes, i, from, rule.target(axes.config(i), from)),
                    ))
                })
                .collect(),
        )
    }

    /// The retract to `targets` starts: remember where the axes were.
    pub fn retracting(&mut self, targets: &[(usize, f64)], v: &Vehicle, axes: &Axes) {
        self.pre_retract = targets
            .iter()
            .filter_map(|&(i, _)| axes.position(i).map(|p| (i, p)))
            .collect();
        self.active = true;
        self.restore_primed = !restore_signal(v, &axes.cfg);
    }

    /// The restore starts: where to go when no profile is active.
    pub fn restoring(&mut self) -> Vec<(usize, f64)> {
        self.active = false;
        self.pre_retract.clone()
    }

    /// Profile targets with the retract applied: the pose to enter a retracted car in.
    pub fn entry_pose(
        &self,
        v: &Vehicle,
        axes: &Axes,
        targets: Vec<(usize, f64)>,
    ) -> Vec<(usize, f64)> {
        targets
            .into_iter()
            .filter_map(|(i, p)| {
                let ac = axes.config(i);
                let rule = axes.cfg.easy_exit.retract.iter().find(|(a, _)| *a == i);
                let t = rule.map_or(ac.clamp(p), |(_, r)| r.target(ac, ac.clamp(p)));
                Some((i, rear_guard(v, axes, i, axes.position(i)?, t)))
            })
            .collect()
    }
}

/// Whether the configured restore signal (brake or belt) is on.
fn restore_signal(v: &Vehicle, cfg: &Config) -> bool {
    match cfg.easy_exit.restore_on {
        RestoreOn::Brake => v.brake_pressed,
        RestoreOn::Belt => v.driver_belt_buckled,
    }
}

/// Where the rear guard lets axis `i` go from `from` toward `target`.
fn rear_guard(v: &Vehicle, axes: &Axes, i: usize, from: f64, target: f64) -> f64 {
    let e = &axes.cfg.easy_exit;
    if v.rear_occupied && e.rear_guard_axis == Some(i) && target > from {
        target.min(from + e.rear_occupied_back_mm)
    } else {
        target
    }
}
