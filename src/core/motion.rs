//! The motion engine: every motion (recall, manual, key approach, easy exit, restore) runs
//! here under the same rules.
//!
//! - Current budget: at most `max_concurrent` motors at once, and each motor group
//!   (`[motion.groups]`, the mirrors on the door modules) at most its own budget beside it.
//!   Each group is planned by [`plan`] on its own, so that its axes arrive as early as its
//!   budget allows. Each budget slot runs its pieces in order.
//! - Stall: a running axis whose position does not change for its `stall_ms` halts the motion
//!   and gets a `Fault`.
//! - Whole-motion timeout, and a duty limit per axis (running time within a sliding window).
//! - Only axes whose position is known are ever planned.
//!
//! The interlock is checked by the caller before a motion starts ([`super::Vehicle`]).

use std::collections::VecDeque;

use super::axes::Axes;
use super::plan::{self, Piece, Travel};
use super::{AxisId, BackendCommand, Effect, Error, Millis, Outcome, ProfileId, Reason, fmt_num};

/// What the engine acts on: the axes, and the effects it produces.
pub(super) struct Cx<'a> {
    pub axes: &'a mut Axes,
    pub fx: &'a mut Vec<Effect>,
}

/// The engine; at most one motion runs at a time.
#[derive(Debug, Default)]
pub(super) struct Motion {
    run: Option<Run>,
}

#[derive(Debug)]
struct Run {
    reason: Reason,
    started: Millis,
    /// Axes of this motion (index, final target) not yet arrived.
    pending: Vec<(usize, f64)>,
    slots: Vec<Slot>,
}

/// One motor of the current budget: the pieces it still has to run, the front one running.
#[derive(Debug)]
struct Slot {
    pieces: VecDeque<Piece>,
    running: bool,
}

impl Slot {
    /// The axis this slot runs right now.
    fn running_axis(&self) -> Option<usize> {
        if self.running {
            self.pieces.front().map(|p| p.axis)
        } else {
            None
        }
    }
}

impl Motion {
    /// Why the running motion runs, if one does.
    pub fn reason(&self) -> Option<Reason> {
        self.run.as_ref().map(|r| r.reason)
    }

    /// How many motors run right now.
    pub fn running_motors(&self) -> usize {
        self.run
            .as_ref()
            .map_or(0, |r| r.slots.iter().filter_map(Slot::running_axis).count())
    }

    /// Whether axis `i` is in the running motion and has not arrived.
    pub fn involves(&self, i: usize) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| r.pending.iter().any(|(a, _)| *a == i))
    }

    /// The slot axis `i` runs in, if it runs.
    fn running_slot(&self, i: usize) -> Option<usize> {
        let r = self.run.as_ref()?;
        r.slots.iter().position(|s| s.running_axis() == Some(i))
    }

    /// Deadlines of the motion: timeout, stalls and duty limits of running axes.
    pub fn deadline(&self, axes: &Axes) -> Option<Millis> {
        let r = self.run.as_ref()?;
        let mut next = r.started + axes.cfg.motion_timeout_ms;
        for i in r.slots.iter().filter_map(Slot::running_axis) {
            let a = axes.get(i);
            next = next.min(a.progress_at + axes.config(i).stall_ms);
            if let Some(d) = a.duty.deadline {
                next = next.min(d);
            }
        }
        Some(next)
    }

    /// Check the running motion against the clock: timeout, stalls, duty limits.
    pub fn tick(&mut self, cx: &mut Cx<'_>, now: Millis) {
        let Some(r) = &self.run else { return };
        let cfg = cx.axes.cfg.clone();
        if now >= r.started + cfg.motion_timeout_ms {
            tracing::warn!(
                "motion ({:?}) not complete after {} ms: halting",
                r.reason,
                cfg.motion_timeout_ms
            );
            self.halt(cx, Outcome::Fault, now);
            return;
        }
        let running: Vec<usize> = r.slots.iter().filter_map(Slot::running_axis).collect();
        for i in running {
            let ac = &cfg.axes[i];
            let a = cx.axes.get(i);
            let fault = if now >= a.progress_at + ac.stall_ms {
                Some(format!(
                    "stalled at {} {} (no movement for {} ms)",
                    fmt_num(a.position.unwrap_or(a.progress_pos)),
                    ac.unit.as_str(),
                    ac.stall_ms
                ))
            } else if a.duty.deadline.is_some_and(|d| now >= d) && cx.axes.duty_exhausted(i, now) {
                Some(format!(
                    "duty limit: ran {} s within {} s",
                    cfg.duty_limit_ms / 1000,
                    cfg.duty_window_ms / 1000
                ))
            } else {
                None
            };
            if let Some(msg) = fault {
                tracing::warn!("{}: {msg}", ac.name);
                cx.axes.set_fault(i, msg);
                self.halt(cx, Outcome::Fault, now);
                return;
            }
            // Older runs slid out of the window: the limit is further away than it was.
            let duty = &mut cx.axes.get_mut(i).duty;
            if duty.deadline.is_some_and(|d| now >= d) {
                duty.deadline = Some(duty.next_check(now, cfg.duty_limit_ms, cfg.duty_window_ms));
            }
        }
    }

    /// A position report for axis `i`.
    pub fn position_update(&mut self, cx: &mut Cx<'_>, i: usize, position: f64, now: Millis) {
        let tol = cx.axes.config(i).tolerance;
        let name = cx.axes.config(i).name.clone();
        let slot = self.running_slot(i);
        if let Some(why) = cx.axes.reported(i, position) {
            // The link is back: its loss was no fault of the axis.
            tracing::info!("{name}: reported again, link fault cleared: {why}");
        }
        let a = cx.axes.get_mut(i);
        if slot.is_some() && (position - a.progress_pos).abs() > tol / 10.0 {
            a.progress_at = now;
            a.progress_pos = position;
            if a.fault.take().is_some() {
                tracing::info!("{name}: moving again, fault cleared");
            }
        }
        let reached = slot.filter(|&s| {
            self.run
                .as_ref()
                .and_then(|r| r.slots[s].pieces.front())
                .is_some_and(|p| (position - p.to).abs() <= tol)
        });
        if let Some(s) = reached {
            // Arrived within tolerance: stop the motor now, so that the next piece never
            // makes one motor more than the budget while this one creeps its last fraction.
            if let Some(r) = &mut self.run {
                r.slots[s].running = false;
            }
            stop_axis(cx, i, now);
            self.drop_piece(cx.axes, s, i);
            self.advance(cx, now);
        } else if cx.axes.may_publish(i, now) {
            cx.axes.publish(i, now);
        }
    }

    /// Start every slot's next piece that can start; finish when nothing is left.
    fn advance(&mut self, cx: &mut Cx<'_>, now: Millis) {
        loop {
            let Some(r) = &self.run else { return };
            if r.pending.is_empty() {
                self.finish(cx, Outcome::Completed);
                return;
            }
            // A slot whose next piece's axis runs in another slot waits for it.
            let startable = r.slots.iter().position(|s| {
                !s.running
                    && s.pieces
                        .front()
                        .is_some_and(|p| !r.slots.iter().any(|o| o.running_axis() == Some(p.axis)))
            });
            let Some(s) = startable else {
                if r.slots.iter().all(|s| !s.running) {
                    // Nothing runs and nothing can start: the plan is exhausted although an
                    // axis has not arrived (it was moved meanwhile). Do not retry blindly.
                    tracing::warn!("motion ({:?}) plan exhausted early", r.reason);
                    self.finish(cx, Outcome::Fault);
                }
                return;
            };
            let Some(p) = r.slots[s].pieces.front().copied() else {
                return;
            };
            if cx.axes.at(p.axis, p.to) {
                // Already there (a waypoint the axis passed, or no travel at all).
                self.drop_piece(cx.axes, s, p.axis);
                continue;
            }
            if let Some(r) = &mut self.run {
                r.slots[s].running = true;
            }
            let (limit, window) = (cx.axes.cfg.duty_limit_ms, cx.axes.cfg.duty_window_ms);
            let axis = AxisId::new(p.axis);
            let a = cx.axes.get_mut(p.axis);
            a.moving = true;
            a.progress_at = now;
            a.progress_pos = a.position.unwrap_or(p.to);
            a.duty.start(now, limit, window);
            cx.fx
                .push(Effect::Backend(BackendCommand::Move { axis, target: p.to }));
        }
    }

    /// Drop slot `s`'s front piece (axis `i` is at its end); the axis is no longer pending
    /// once that was its final target.
    fn drop_piece(&mut self, axes: &Axes, s: usize, i: usize) {
        if let Some(r) = &mut self.run {
            r.slots[s].pieces.pop_front();
            if let Some(k) = r
                .pending
                .iter()
                .position(|&(ax, t)| ax == i && axes.at(i, t))
            {
                r.pending.swap_remove(k);
            }
        }
    }

    /// Stop every axis of the running motion and end it with `outcome`.
    pub fn halt(&mut self, cx: &mut Cx<'_>, outcome: Outcome, now: Millis) {
        let Some(r) = &self.run else { return };
        let stop: Vec<usize> = r.pending.iter().map(|(i, _)| *i).collect();
        for i in stop {
            stop_axis(cx, i, now);
        }
        self.finish(cx, outcome);
    }

    fn finish(&mut self, cx: &mut Cx<'_>, outcome: Outcome) {
        if let Some(r) = self.run.take() {
            tracing::info!("motion ({:?}) finished: {outcome:?}", r.reason);
            cx.fx.push(Effect::MotionFinished {
                reason: r.reason,
                outcome,
            });
        }
    }

    /// Start a motion to `targets` (axis index, position), superseding any running motion.
    /// The caller has checked the interlock, the duty limits and that the axes are known;
    /// an axis whose position is not known is left out all the same.
    pub fn start(
        &mut self,
        cx: &mut Cx<'_>,
        reason: Reason,
        profile: Option<ProfileId>,
        targets: Vec<(usize, f64)>,
        now: Millis,
    ) {
        if let Some(old) = &self.run {
            let stop: Vec<usize> = old
                .pending
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| cx.axes.get(*i).moving)
                .collect();
            for i in stop {
                stop_axis(cx, i, now);
            }
            self.finish(cx, Outcome::Superseded);
        }
        tracing::info!("motion ({reason:?}) started");
        cx.fx.push(Effect::MotionStarted { reason, profile });
        let cfg = cx.axes.cfg.clone();
        let mut travels = Vec::new();
        let mut pending = Vec::new();
        for (i, target) in targets {
            let ac = &cfg.axes[i];
            let target = ac.clamp(target);
            let Some(from) = cx.axes.position(i) else {
                continue;
            };
            cx.axes.get_mut(i).target = Some(target);
            if (from - target).abs() > ac.tolerance {
                travels.push(Travel {
                    axis: i,
                    from,
                    to: target,
                    speed: ac.speed,
                });
                pending.push((i, target));
            }
        }
        // One plan per motor group, each on slots of its own.
        let mut groups: Vec<Option<usize>> =
            travels.iter().map(|t| cfg.axes[t.axis].group).collect();
        groups.sort_unstable();
        groups.dedup();
        let slots = groups
            .into_iter()
            .flat_map(|g| {
                let own: Vec<Travel> = travels
                    .iter()
                    .filter(|t| cfg.axes[t.axis].group == g)
                    .copied()
                    .collect();
                plan::plan(&own, cfg.budget(g))
            })
            .map(|pieces| Slot {
                pieces: pieces.into(),
                running: false,
            })
            .collect();
        self.run = Some(Run {
            reason,
            started: now,
            pending,
            slots,
        });
        self.advance(cx, now);
    }
}

fn stop_axis(cx: &mut Cx<'_>, i: usize, now: Millis) {
    cx.fx.push(Effect::Backend(BackendCommand::Stop {
        axis: AxisId::new(i),
    }));
    let window = cx.axes.cfg.duty_window_ms;
    let a = cx.axes.get_mut(i);
    a.moving = false;
    a.duty.stop(now, window);
    cx.axes.publish(i, now);
}

/// Refuse a requested motion if an axis that would have to move is not known or has run out
/// of duty.
pub(super) fn admit(axes: &Axes, targets: &[(usize, f64)], now: Millis) -> Result<(), Error> {
    for &(i, t) in targets {
        let ac = axes.config(i);
        if axes.position(i).is_none() {
            return Err(Error::NotReady(format!(
                "the position of {} is not known yet",
                ac.name
            )));
        }
        if !axes.at(i, t) && axes.duty_exhausted(i, now) {
            return Err(Error::DutyLimit(format!(
                "{} ran {} s within the last {} s and must rest",
                ac.name,
                axes.duty_used(i, now) / 1000,
                axes.cfg.duty_window_ms / 1000
            )));
        }
    }
    Ok(())
}

/// For automatic motions: leave out axes that are faulted, out of duty or not known.
pub(super) fn automatic_targets(
    axes: &Axes,
    targets: Vec<(usize, f64)>,
    now: Millis,
) -> Vec<(usize, f64)> {
    targets
        .into_iter()
        .filter(|&(i, _)| {
            let a = axes.get(i);
            let skip = a.fault.is_some() || a.position.is_none() || axes.duty_exhausted(i, now);
            if skip {
                tracing::info!(
                    "{}: left out of an automatic motion (fault, duty limit or position unknown)",
                    axes.config(i).name
                );
            }
            !skip
        })
        .collect()
}
