//! The motion engine: every motion (recall, manual, key approach, easy exit, restore) runs
//! here under the same rules.
//!
//! - Interlock: gear P, speed below the threshold, no manual switch; for automatic reasons
//!   also doors not locked. Checked before a motion starts; a break halts it in the same step.
//! - Current budget: at most `max_concurrent` motors at once, planned by [`plan`] so that the
//!   motion ends as early as the budget allows.
//! - Stall: a running axis whose position does not change for its `stall_ms` halts the motion
//!   and gets a `Fault`; automatic motions skip a faulted axis.
//! - Whole-motion timeout, and a duty limit per axis (running time within a sliding window).

use std::collections::VecDeque;

use super::plan::{self, Piece, Travel};
use super::{BackendCommand, Core, Effect, Millis, Outcome, Reason, fmt_num};

#[derive(Debug, Clone)]
pub(super) struct Motion {
    pub reason: Reason,
    pub started: Millis,
    /// Axes of this motion (index, final target) not yet arrived.
    pub pending: Vec<(usize, f64)>,
    /// Per budget slot, the pieces still to run; the front one runs when `running[slot]`.
    pub slots: Vec<VecDeque<Piece>>,
    pub running: Vec<bool>,
}

/// Per-axis bookkeeping of the engine.
#[derive(Debug, Clone, Default)]
pub(super) struct Duty {
    /// Finished runs (start, end) that may still fall within the window.
    runs: VecDeque<(Millis, Millis)>,
    /// When the current run started, if the axis runs.
    pub run_start: Option<Millis>,
    /// While running: when to check the duty limit next.
    pub deadline: Option<Millis>,
}

impl Duty {
    /// Running time within the window ending at `now`.
    fn used(&self, now: Millis, window: Millis) -> Millis {
        let from = now.saturating_sub(window);
        let done: Millis = self
            .runs
            .iter()
            .map(|&(s, e)| e.min(now).saturating_sub(s.max(from)))
            .sum();
        done + self
            .run_start
            .map_or(0, |s| now.saturating_sub(s.max(from)))
    }

    /// Start a run at `now`; the limit can be reached no earlier than `limit - used` later.
    pub fn start(&mut self, now: Millis, limit: Millis, window: Millis) {
        self.run_start = Some(now);
        self.deadline = Some(now + limit.saturating_sub(self.used(now, window)).max(1));
    }

    fn stop(&mut self, now: Millis, window: Millis) {
        self.deadline = None;
        if let Some(s) = self.run_start.take() {
            self.runs.push_back((s, now));
        }
        while self.runs.front().is_some_and(|&(_, e)| e + window < now) {
            self.runs.pop_front();
        }
    }
}

impl Reason {
    /// Motions nobody asked for just now: they skip faulted axes and need unlocked doors.
    pub fn automatic(self) -> bool {
        matches!(
            self,
            Reason::KeyApproach | Reason::EasyExit | Reason::Restore
        )
    }
}

impl Core {
    /// Why a motion for `reason` is not allowed now, or `None` when it is.
    pub fn interlock_for(&self, reason: Reason) -> Option<String> {
        self.interlock().or_else(|| {
            (reason.automatic() && self.vehicle.doors_locked)
                .then(|| "the doors are locked (no automatic motion)".to_string())
        })
    }

    pub(super) fn duty_used(&self, i: usize, now: Millis) -> Millis {
        self.axes[i].duty.used(now, self.cfg.duty_window_ms)
    }

    /// Whether axis `i` has run out of its duty budget.
    pub(super) fn duty_exhausted(&self, i: usize, now: Millis) -> bool {
        self.duty_used(i, now) >= self.cfg.duty_limit_ms
    }

    /// Whether axis `i` is in the running motion and has not arrived.
    pub(super) fn in_motion(&self, i: usize) -> bool {
        self.motion
            .as_ref()
            .is_some_and(|m| m.pending.iter().any(|(a, _)| *a == i))
    }

    /// The slot axis `i` runs in, if it runs.
    fn running_slot(&self, i: usize) -> Option<usize> {
        let m = self.motion.as_ref()?;
        m.slots
            .iter()
            .zip(&m.running)
            .position(|(q, r)| *r && q.front().is_some_and(|p| p.axis == i))
    }

    /// Deadlines of the motion: timeout, stalls and duty limits of running axes.
    pub(super) fn motion_deadline(&self) -> Option<Millis> {
        let m = self.motion.as_ref()?;
        let mut next = m.started + self.cfg.motion_timeout_ms;
        for (q, r) in m.slots.iter().zip(&m.running) {
            if let (true, Some(p)) = (*r, q.front()) {
                let a = &self.axes[p.axis];
                next = next.min(a.progress_at + self.cfg.axes[p.axis].stall_ms);
                if let Some(d) = a.duty.deadline {
                    next = next.min(d);
                }
            }
        }
        Some(next)
    }

    /// Check the running motion against the clock.
    pub(super) fn motion_tick(&mut self, now: Millis) {
        let Some(m) = &self.motion else { return };
        if now >= m.started + self.cfg.motion_timeout_ms {
            tracing::warn!(
                "motion ({}) not complete after {} ms: halting",
                m.reason.as_str(),
                self.cfg.motion_timeout_ms
            );
            self.halt(Outcome::Fault, now);
            return;
        }
        let running: Vec<usize> = m
            .slots
            .iter()
            .zip(&m.running)
            .filter_map(|(q, r)| if *r { q.front().map(|p| p.axis) } else { None })
            .collect();
        for i in running {
            let ac = &self.cfg.axes[i];
            let fault = if now >= self.axes[i].progress_at + ac.stall_ms {
                Some(format!(
                    "stalled at {} {} (no movement for {} ms)",
                    fmt_num(self.axes[i].position),
                    ac.unit.as_str(),
                    ac.stall_ms
                ))
            } else if self.axes[i].duty.deadline.is_some_and(|d| now >= d)
                && self.duty_exhausted(i, now)
            {
                Some(format!(
                    "duty limit: ran {} s within {} s",
                    self.cfg.duty_limit_ms / 1000,
                    self.cfg.duty_window_ms / 1000
                ))
            } else {
                None
            };
            if let Some(msg) = fault {
                tracing::warn!("{}: {msg}", ac.name);
                self.axes[i].fault = msg;
                self.halt(Outcome::Fault, now);
                return;
            }
            // Older runs slid out of the window: the limit is further away than it was.
            let (limit, window) = (self.cfg.duty_limit_ms, self.cfg.duty_window_ms);
            let duty = &mut self.axes[i].duty;
            if duty.deadline.is_some_and(|d| now >= d) {
                duty.deadline = Some(now + limit.saturating_sub(duty.used(now, window)).max(1));
            }
        }
    }

    /// A position report for axis `i`.
    pub(super) fn position_update(&mut self, i: usize, position: f64, now: Millis) {
        let tol = self.cfg.axes[i].tolerance;
        let slot = self.running_slot(i);
        let a = &mut self.axes[i];
        a.position = position;
        if slot.is_some() && (position - a.progress_pos).abs() > tol / 10.0 {
            a.progress_at = now;
            a.progress_pos = position;
            if !a.fault.is_empty() {
                tracing::info!("{}: moving again, fault cleared", self.cfg.axes[i].name);
                a.fault.clear();
            }
        }
        let reached_piece = slot.and_then(|s| {
            let m = self.motion.as_ref()?;
            let p = m.slots[s].front()?;
            ((position - p.to).abs() <= tol).then_some(s)
        });
        if let Some(s) = reached_piece {
            self.piece_done(s, i, now);
        } else if !self.axes[i].moving
            || self.axes[i]
                .last_publish
                .is_none_or(|l| now >= l + super::PUBLISH_INTERVAL_MS)
        {
            self.publish(i, now);
        }
    }

    /// The running piece of slot `s` (axis `i`) arrived.
    fn piece_done(&mut self, s: usize, i: usize, now: Millis) {
        let Some(m) = &mut self.motion else { return };
        m.running[s] = false;
        // Arrived within tolerance: stop the motor now, so that the next piece never makes
        // one motor more than the budget while this one creeps its last fraction.
        self.stop_axis(i, now);
        self.drop_piece(s, i);
        self.advance(now);
    }

    /// Start every slot's next piece that can start; finish when nothing is left.
    fn advance(&mut self, now: Millis) {
        loop {
            let Some(m) = &self.motion else { return };
            if m.pending.is_empty() {
                self.finish(Outcome::Completed);
                return;
            }
            // A slot whose next piece's axis runs elsewhere waits for it.
            let startable = (0..m.slots.len()).find(|&s| {
                !m.running[s]
                    && m.slots[s].front().is_some_and(|p| {
                        !m.slots
                            .iter()
                            .zip(&m.running)
                            .any(|(q, r)| *r && q.front().is_some_and(|o| o.axis == p.axis))
                    })
            });
            let Some(s) = startable else {
                if m.running.iter().all(|r| !r) {
                    // Nothing runs and nothing can start: the plan is exhausted although an
                    // axis has not arrived (it was moved meanwhile). Do not retry blindly.
                    tracing::warn!("motion ({}) plan exhausted early", m.reason.as_str());
                    self.finish(Outcome::Fault);
                }
                return;
            };
            let Some(p) = m.slots[s].front().copied() else {
                return;
            };
            let ac = &self.cfg.axes[p.axis];
            if (self.axes[p.axis].position - p.to).abs() <= ac.tolerance {
                // Already there (a waypoint the axis passed, or no travel at all).
                self.drop_piece(s, p.axis);
                continue;
            }
            if let Some(m) = &mut self.motion {
                m.running[s] = true;
            }
            let a = &mut self.axes[p.axis];
            a.moving = true;
            a.progress_at = now;
            a.progress_pos = a.position;
            a.duty
                .start(now, self.cfg.duty_limit_ms, self.cfg.duty_window_ms);
            self.effects.push(Effect::Backend(BackendCommand::Move {
                axis: ac.name.clone(),
                target: p.to,
            }));
        }
    }

    /// Drop slot `s`'s front piece (axis `i` is at its end); the axis is no longer pending
    /// once that was its final target.
    fn drop_piece(&mut self, s: usize, i: usize) {
        let tol = self.cfg.axes[i].tolerance;
        let pos = self.axes[i].position;
        if let Some(m) = &mut self.motion {
            m.slots[s].pop_front();
            if let Some(k) = m
                .pending
                .iter()
                .position(|(ax, t)| *ax == i && (pos - t).abs() <= tol)
            {
                m.pending.swap_remove(k);
            }
        }
    }

    /// Stop every running axis and end the motion with `outcome`.
    pub(super) fn halt(&mut self, outcome: Outcome, now: Millis) {
        let Some(m) = &self.motion else { return };
        let stop: Vec<usize> = m.pending.iter().map(|(i, _)| *i).collect();
        for i in stop {
            self.stop_axis(i, now);
        }
        self.finish(outcome);
    }

    fn stop_axis(&mut self, i: usize, now: Millis) {
        self.effects.push(Effect::Backend(BackendCommand::Stop {
            axis: self.cfg.axes[i].name.clone(),
        }));
        let window = self.cfg.duty_window_ms;
        let a = &mut self.axes[i];
        a.moving = false;
        a.duty.stop(now, window);
        self.publish(i, now);
    }

    pub(super) fn finish(&mut self, outcome: Outcome) {
        if let Some(m) = self.motion.take() {
            tracing::info!(
                "motion ({}) finished: {}",
                m.reason.as_str(),
                outcome.as_str()
            );
            self.effects.push(Effect::MotionFinished {
                reason: m.reason,
                outcome,
            });
        }
    }

    /// Start a motion to `targets` (axis index, position), superseding any running motion.
    /// The caller has checked the interlock and the duty limits it cares about.
    pub(super) fn start_motion(
        &mut self,
        reason: Reason,
        profile: Option<String>,
        targets: Vec<(usize, f64)>,
        now: Millis,
    ) {
        if let Some(old) = &self.motion {
            let stop: Vec<usize> = old
                .pending
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| self.axes[*i].moving)
                .collect();
            for i in stop {
                self.stop_axis(i, now);
            }
            self.finish(Outcome::Superseded);
        }
        tracing::info!("motion ({}) started", reason.as_str());
        self.effects.push(Effect::MotionStarted { reason, profile });
        let mut travels = Vec::new();
        let mut pending = Vec::new();
        for (i, target) in targets {
            let ac = &self.cfg.axes[i];
            let target = ac.clamp(target);
            let a = &mut self.axes[i];
            a.target = target;
            if (a.position - target).abs() > ac.tolerance {
                travels.push(Travel {
                    axis: i,
                    from: a.position,
                    to: target,
                    speed: ac.speed,
                });
                pending.push((i, target));
            }
        }
        let slots: Vec<VecDeque<Piece>> = plan::plan(&travels, self.cfg.max_concurrent)
            .into_iter()
            .map(VecDeque::from)
            .collect();
        let n = slots.len();
        self.motion = Some(Motion {
            reason,
            started: now,
            pending,
            slots,
            running: vec![false; n],
        });
        self.advance(now);
    }

    /// How many motors the engine has running (for tests of the budget).
    pub fn running_motors(&self) -> usize {
        self.motion
            .as_ref()
            .map_or(0, |m| m.running.iter().filter(|r| **r).count())
    }
}
