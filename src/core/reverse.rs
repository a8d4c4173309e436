//! Reverse tilt-down: while reversing, the mirrors of `[reverse_tilt]` tilt down and return
//! when the gear has left R. The only motion allowed outside P, and only for those axes. This
//! part owns the positions before the tilt (kept on disk before the tilt starts) and when the
//! return is due; the motions themselves run in the one engine like any other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::axes::Axes;
use super::store::Profile;
use super::{Gear, Millis, Vehicle};
use crate::config::Config;

/// What must survive a restart while a mirror is tilted: where it was before (without it a
/// restarted daemon would leave the mirror down).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReverseTiltState {
    /// Axis name to position before the tilt; empty when nothing is tilted.
    #[serde(default)]
    pub pre_tilt: BTreeMap<String, f64>,
}

impl ReverseTiltState {
    pub fn validate(&self) -> Result<(), String> {
        match self.pre_tilt.iter().find(|(_, v)| !v.is_finite()) {
            Some((axis, v)) => Err(format!("pre_tilt {axis} = {v} is not finite")),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Reverse {
    /// The tilted axes and where they were before; empty when none is tilted.
    pre_tilt: Vec<(usize, f64)>,
    /// When the return is due, once the gear has left R (or the speed passed the limit).
    return_at: Option<Millis>,
    /// The return motion has been started: when it ends, however it ends, nothing is tilted
    /// any more (a hand or a Stop that halts it leaves the mirror where the occupant wants).
    returning: bool,
    /// Tilted axes the occupant moved by hand while in R: where they are left becomes the
    /// profile's reverse position when the gear leaves R.
    adjusted: Vec<usize>,
    /// Reverse positions to remember now (axis, position), for [`Reverse::take_remembered`].
    remembered: Vec<(usize, f64)>,
}

/// What the core should do about reverse tilt after an event.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    Nothing,
    /// Tilt these axes (targets); persist `pre_tilt` first.
    Tilt(Vec<(usize, f64)>),
    /// Bring the tilted axes back to these positions.
    Return(Vec<(usize, f64)>),
    /// The return has ended: persist that nothing is tilted.
    Untilted,
}

impl Reverse {
    /// Take up the state kept from before a restart: a mirror left tilted returns as soon as
    /// the gear is reported out of R.
    pub fn resume(&mut self, state: ReverseTiltState, axes: &Axes) {
        self.pre_tilt = (state.pre_tilt.iter())
            .filter_map(|(name, v)| Some((axes.index(name)?, *v)))
            .collect();
        if !self.pre_tilt.is_empty() {
            tracing::info!("resuming: a mirror was left tilted; it returns once out of R");
        }
    }

    /// The state to keep on disk.
    pub fn state(&self, axes: &Axes) -> ReverseTiltState {
        ReverseTiltState {
            pre_tilt: (self.pre_tilt.iter())
                .map(|(i, v)| (axes.config(*i).name.clone(), *v))
                .collect(),
        }
    }

    /// Where a tilted axis was before the tilt.
    pub fn pre_tilt(&self, i: usize) -> Option<f64> {
        self.pre_tilt.iter().find(|(a, _)| *a == i).map(|(_, v)| *v)
    }

    /// When [`Reverse::step`] must run again. While a motion runs, not before it ends (a
    /// return waits for it; its end asks again).
    pub fn deadline(&self, motion_running: bool) -> Option<Millis> {
        if motion_running {
            None
        } else if self.returning {
            Some(0)
        } else {
            self.return_at
        }
    }

    /// The occupant moved axis `i` by hand (`in_r`: with the gear in R). A tilted mirror
    /// adjusted while reversing is remembered as the profile's reverse position once the gear
    /// leaves R.
    pub fn hand_moved(&mut self, i: usize, in_r: bool) {
        if in_r && !self.returning && self.pre_tilt(i).is_some() && !self.adjusted.contains(&i) {
            self.adjusted.push(i);
        }
    }

    /// A client has just set the active profile's reverse positions: that is newer than the
    /// hand adjustments made so far in this R, which are forgotten (a later one still counts).
    pub fn client_set(&mut self) {
        self.adjusted.clear();
    }

    /// The reverse positions the occupant set by hand, to store in the active profile: filled
    /// when the gear leaves R (or the speed passes the limit in R), before the return.
    pub fn take_remembered(&mut self) -> Vec<(usize, f64)> {
        std::mem::take(&mut self.remembered)
    }

    /// After new vehicle signals (`before` → `v`) or the passing of time: what to do.
    /// `motion_running`: whether the engine runs a motion now (a return waits for it).
    /// `profile`: the active profile, whose reverse positions the mirrors tilt to (an axis it
    /// has none for moves by the configured offset) and whose setting may turn the tilt off.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        before: &Vehicle,
        v: &Vehicle,
        cfg: &Config,
        axes: &Axes,
        profile: Option<&Profile>,
        motion_running: bool,
        now: Millis,
    ) -> Step {
        let rt = &cfg.reverse_tilt;
        if self.returning {
            if motion_running {
                return Step::Nothing;
            }
            self.returning = false;
            self.pre_tilt.clear();
            self.adjusted.clear();
            return Step::Untilted;
        }
        let in_r = v.gear == Some(Gear::R);
        let slow = v.speed_kmh.is_some_and(|s| s < rt.max_speed_kmh);
        if !self.pre_tilt.is_empty() {
            if in_r && slow {
                // Back in R within the delay (R -> D -> R while parking): stay tilted.
                self.return_at = None;
            } else if self.return_at.is_none() {
                // The occupant's hand adjustments in R are what they want when reversing.
                self.remembered = (self.adjusted.drain(..))
                    .filter_map(|i| {
                        let a = axes.get(i);
                        Some((i, a.position.filter(|_| a.fault.is_none())?))
                    })
                    .collect();
                // Out of R (after the delay), or too fast in R, or out of R at a restart
                // (at once: how long ago is not known).
                let delay = if in_r || before.gear.is_none() {
                    0
                } else {
                    rt.return_delay_ms
                };
                self.return_at = Some(now + delay);
            }
            if self.return_at.is_some_and(|t| now >= t) && !motion_running {
                self.return_at = None;
                self.returning = true;
                return Step::Return(self.pre_tilt.clone());
            }
            return Step::Nothing;
        }
        let into_r = in_r && before.gear.is_some_and(|g| g != Gear::R);
        let wanted = profile.is_none_or(|p| p.reverse_tilt_enabled);
        if !(rt.enabled && wanted && into_r && slow) {
            return Step::Nothing;
        }
        let (pre, targets): (Vec<_>, Vec<_>) = (rt.axes.iter())
            .filter_map(|&i| {
                let a = axes.get(i);
                let at = a.position.filter(|_| a.fault.is_none())?;
                let ac = axes.config(i);
                let stored = profile.and_then(|p| p.reverse_tilt.get(&ac.name));
                let target = stored.copied().unwrap_or(at + rt.default_offset);
                Some(((i, at), (i, ac.clamp(target))))
            })
            .unzip();
        if targets.is_empty() {
            return Step::Nothing;
        }
        self.pre_tilt = pre;
        Step::Tilt(targets)
    }

    /// The tilt could not be persisted: it does not run, and nothing is tilted.
    pub fn tilt_refused(&mut self) {
        self.pre_tilt.clear();
        self.adjusted.clear();
    }

    /// The return could not start now (an inhibitor, a switch): it is tried again later.
    pub fn return_refused(&mut self) {
        self.returning = false;
    }

    /// Another motion takes axis `i` somewhere (a recall in P): it is no longer tilted, and
    /// no return will undo that motion. Whether anything changed.
    pub fn forget(&mut self, i: usize) -> bool {
        let before = self.pre_tilt.len();
        self.pre_tilt.retain(|(a, _)| *a != i);
        self.adjusted.retain(|a| *a != i);
        if self.pre_tilt.is_empty() {
            self.return_at = None;
        }
        before != self.pre_tilt.len()
    }
}
