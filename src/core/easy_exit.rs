//! Easy exit and restore: retract the seat and wheel when the car is parked, bring them back
//! when the driver is in again. Both are automatic motions of the one engine.

use super::{Core, Gear, Millis, Reason};
use crate::config::{EasyExitTrigger, RestoreOn};

impl Core {
    /// Whether the configured restore signal (brake or belt) is on.
    fn restore_signal(&self) -> bool {
        match self.cfg.easy_exit.restore_on {
            RestoreOn::Brake => self.vehicle.brake_pressed,
            RestoreOn::Belt => self.vehicle.driver_belt_buckled,
        }
    }

    /// After a signal update: retract on the transition into the trigger condition, restore
    /// on a fresh press of the restore signal with the driver seated.
    pub(super) fn easy_exit_step(&mut self, now: Millis) {
        let v = &self.vehicle;
        let parked = v.gear == Some(Gear::P)
            && v.speed_kmh
                .is_some_and(|s| s < self.cfg.speed_threshold_kmh);
        let condition = parked
            && match self.cfg.easy_exit.trigger {
                EasyExitTrigger::Park => true,
                EasyExitTrigger::ParkAndUnbuckle => !v.driver_belt_buckled,
            };
        if !v.driver_seat_occupied {
            // The driver has left: a held-back retract would surprise whoever comes next.
            self.easy_exit_pending = false;
        }
        if !condition {
            // Only a transition seen with the gear known triggers: the first report after a
            // restart of the daemon in a parked car moves nothing.
            if v.gear.is_some() {
                self.easy_exit_armed = true;
            }
            self.easy_exit_pending = false;
        } else if self.easy_exit_armed {
            self.easy_exit_armed = false;
            self.retract(now);
        } else if self.easy_exit_pending && self.interlock_for(Reason::EasyExit).is_none() {
            self.retract(now);
        }

        if self.easy_exit_active {
            if !self.restore_signal() {
                self.restore_primed = true;
            } else if self.restore_primed && self.vehicle.driver_seat_occupied {
                self.restore(now);
            }
        }
    }

    /// Where the rear guard lets axis `i` go from `from` toward `target`.
    fn rear_guard(&self, i: usize, from: f64, target: f64) -> f64 {
        let e = &self.cfg.easy_exit;
        if self.vehicle.rear_occupied && e.rear_guard_axis == Some(i) && target > from {
            target.min(from + e.rear_occupied_back_mm)
        } else {
            target
        }
    }

    /// Profile targets with the retract applied: the pose to enter a retracted car in.
    pub(super) fn entry_pose(&self, targets: Vec<(usize, f64)>) -> Vec<(usize, f64)> {
        targets
            .into_iter()
            .map(|(i, p)| {
                let ac = &self.cfg.axes[i];
                let rule = self.cfg.easy_exit.retract.iter().find(|(a, _)| *a == i);
                let t = rule.map_or(ac.clamp(p), |(_, r)| r.target(ac, ac.clamp(p)));
                (i, self.rear_guard(i, self.axes[i].position, t))
            })
            .collect()
    }

    fn retract(&mut self, now: Millis) {
        let active = self.store.active.clone();
        let enabled = match active.as_deref().and_then(|id| self.store.get(id)) {
            Some(p) => p.easy_exit,
            None => self.cfg.easy_exit.enabled,
        };
        if !enabled {
            tracing::info!("easy exit: disabled for {:?}", active);
            return;
        }
        self.easy_exit_pending = false;
        if let Some(why) = self.interlock() {
            tracing::info!("easy exit: not now ({why})");
            return;
        }
        if let Some(why) = self.interlock_for(Reason::EasyExit) {
            // Only the locks hold it back: wait for them while the driver is seated.
            self.easy_exit_pending = self.vehicle.driver_seat_occupied;
            tracing::info!("easy exit: held back ({why})");
            return;
        }
        let targets: Vec<(usize, f64)> = self
            .cfg
            .easy_exit
            .retract
            .iter()
            .map(|&(i, rule)| {
                let from = self.axes[i].position;
                (
                    i,
                    self.rear_guard(i, from, rule.target(&self.cfg.axes[i], from)),
                )
            })
            .collect();
        let targets = self.automatic_targets(targets, now);
        self.pre_retract = targets
            .iter()
            .map(|&(i, _)| (i, self.axes[i].position))
            .collect();
        self.easy_exit_active = true;
        self.restore_primed = !self.restore_signal();
        self.start_motion(Reason::EasyExit, active, targets, now);
    }

    fn restore(&mut self, now: Millis) {
        if let Some(why) = self.interlock_for(Reason::Restore) {
            tracing::info!("restore: not now ({why})");
            return;
        }
        let active = self.store.active.clone();
        let targets = match active.as_deref().and_then(|id| self.store.get(id)) {
            Some(p) => self.profile_targets(p),
            None => self.pre_retract.clone(),
        };
        let targets = self.automatic_targets(targets, now);
        self.easy_exit_active = false;
        self.start_motion(Reason::Restore, active, targets, now);
    }
}
