//! The axes as the core knows them: position (once the backend has reported it), what the bus
//! was last shown, target, fault, and each axis' running-time bookkeeping for the duty limit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::{AxisId, Millis, PUBLISH_INTERVAL_MS};
use crate::config::{AxisConfig, Config};

#[derive(Debug, Clone)]
pub(super) struct Axis {
    /// `None` until the backend reports where the axis is.
    pub position: Option<f64>,
    /// The position last shown on the bus (throttled while moving).
    pub published: Option<f64>,
    pub last_publish: Option<Millis>,
    /// The last commanded target (`None` before any).
    pub target: Option<f64>,
    pub moving: bool,
    /// `None` when healthy.
    pub fault: Option<Fault>,
    /// While running: when the position last changed, and to what.
    pub progress_at: Millis,
    pub progress_pos: f64,
    pub duty: Duty,
}

/// What is wrong with an axis.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Fault {
    /// A fault of the axis itself (the backend's report, a stall, the duty limit): it stays
    /// until the axis moves again.
    Axis(String),
    /// The link to the axis is lost ([`super::Feedback::PositionUnknown`]): no fault of the
    /// axis; the next position report (the link is back) clears it.
    Link(String),
}

impl Fault {
    pub fn message(&self) -> &str {
        let (Fault::Axis(m) | Fault::Link(m)) = self;
        m
    }
}

/// Running time of an axis within the sliding duty window.
#[derive(Debug, Clone, Default)]
pub(super) struct Duty {
    /// Finished runs (start, end) that may still fall within the window.
    runs: VecDeque<(Millis, Millis)>,
    /// When the current run started, if the axis runs.
    run_start: Option<Millis>,
    /// While running: when to check the duty limit next.
    pub deadline: Option<Millis>,
}

impl Duty {
    /// Running time within the window ending at `now`.
    pub fn used(&self, now: Millis, window: Millis) -> Millis {
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

    /// When the limit can be reached at the earliest, seen from `now`.
    pub fn next_check(&self, now: Millis, limit: Millis, window: Millis) -> Millis {
        now + limit.saturating_sub(self.used(now, window)).max(1)
    }

    pub fn start(&mut self, now: Millis, limit: Millis, window: Millis) {
        self.run_start = Some(now);
        self.deadline = Some(self.next_check(now, limit, window));
    }

    pub fn stop(&mut self, now: Millis, window: Millis) {
        self.deadline = None;
        if let Some(s) = self.run_start.take() {
            self.runs.push_back((s, now));
        }
        while self.runs.front().is_some_and(|&(_, e)| e + window < now) {
            self.runs.pop_front();
        }
    }
}

pub(super) struct Axes {
    pub cfg: Arc<Config>,
    state: Vec<Axis>,
}

impl Axes {
    /// Axes at the positions the backends reported at start; the others are not known until
    /// reported.
    pub fn new(cfg: Arc<Config>, known: &BTreeMap<AxisId, f64>) -> Axes {
        let state = AxisId::all(&cfg.axes)
            .map(|(id, _)| {
                let p = known.get(&id).copied().filter(|p| p.is_finite());
                Axis {
                    position: p,
                    published: p,
                    last_publish: None,
                    target: p,
                    moving: false,
                    fault: None,
                    progress_at: 0,
                    progress_pos: p.unwrap_or(0.0),
                    duty: Duty::default(),
                }
            })
            .collect();
        Axes { cfg, state }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.cfg.axes.iter().position(|a| a.name == name)
    }

    /// The index of axis `id`, if the config has it.
    pub fn index_of(&self, id: AxisId) -> Option<usize> {
        (id.index() < self.state.len()).then_some(id.index())
    }

    pub fn config(&self, i: usize) -> &AxisConfig {
        &self.cfg.axes[i]
    }

    pub fn get(&self, i: usize) -> &Axis {
        &self.state[i]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut Axis {
        &mut self.state[i]
    }

    pub fn iter(&self) -> impl Iterator<Item = (&AxisConfig, &Axis)> {
        self.cfg.axes.iter().zip(&self.state)
    }

    pub fn position(&self, i: usize) -> Option<f64> {
        self.state[i].position
    }

    /// Whether axis `i` is known to be within tolerance of `target` (clamped to its range).
    pub fn at(&self, i: usize, target: f64) -> bool {
        let c = self.config(i);
        self.state[i]
            .position
            .is_some_and(|p| (p - c.clamp(target)).abs() <= c.tolerance)
    }

    /// Every axis' position (rounded to 1/1000), or the name of one that is not known.
    pub fn current_positions(&self) -> Result<BTreeMap<String, f64>, &str> {
        self.iter()
            .map(|(c, a)| match a.position {
                Some(p) => Ok((c.name.clone(), (p * 1000.0).round() / 1000.0)),
                None => Err(c.name.as_str()),
            })
            .collect()
    }

    /// Axis `i` faults with `message` (a fault of the axis itself: it stays until the axis
    /// moves again).
    pub fn set_fault(&mut self, i: usize, message: String) {
        let a = &mut self.state[i];
        a.fault = Some(Fault::Axis(message));
    }

    /// Axis `i` reports `position`: it is known there (an axis not known before stands where
    /// it is), and a lost link is back. Returns the link fault this clears, if any.
    pub fn reported(&mut self, i: usize, position: f64) -> Option<String> {
        let a = &mut self.state[i];
        a.position = Some(position);
        a.target.get_or_insert(position);
        match a.fault.take() {
            Some(Fault::Link(why)) => Some(why),
            other => {
                a.fault = other;
                None
            }
        }
    }

    /// Axis `i`'s position is no longer known (`why`: its link is lost): it is as if it had
    /// never been reported (not known, shown as NaN, no target, not running), and `why` is
    /// its fault until a position is reported again. The caller has halted a motion that
    /// involved it.
    pub fn forget(&mut self, i: usize, why: String, now: Millis) {
        let window = self.cfg.duty_window_ms;
        let a = &mut self.state[i];
        a.position = None;
        a.target = None;
        a.moving = false;
        a.duty.stop(now, window);
        a.fault = Some(Fault::Link(why));
        self.publish(i, now);
    }

    /// Show axis `i`'s position on the bus now.
    pub fn publish(&mut self, i: usize, now: Millis) {
        let a = &mut self.state[i];
        a.published = a.position;
        a.last_publish = Some(now);
    }

    /// Whether axis `i` may be shown now without exceeding the publish rate while it moves.
    pub fn may_publish(&self, i: usize, now: Millis) -> bool {
        let a = &self.state[i];
        !a.moving
            || a.last_publish
                .is_none_or(|l| now >= l + PUBLISH_INTERVAL_MS)
    }

    /// Publish the throttled positions that are due.
    pub fn publish_due(&mut self, now: Millis) {
        for i in 0..self.state.len() {
            let a = &self.state[i];
            if a.published != a.position
                && a.last_publish
                    .is_none_or(|l| now >= l + PUBLISH_INTERVAL_MS)
            {
                self.publish(i, now);
            }
        }
    }

    /// When a throttled position is next due to be shown.
    pub fn next_publish(&self) -> Option<Millis> {
        self.state
            .iter()
            .filter(|a| a.published != a.position)
            .filter_map(|a| a.last_publish.map(|l| l + PUBLISH_INTERVAL_MS))
            .min()
    }

    pub fn duty_used(&self, i: usize, now: Millis) -> Millis {
        self.state[i].duty.used(now, self.cfg.duty_window_ms)
    }

    /// Whether axis `i` has run out of its duty budget.
    pub fn duty_exhausted(&self, i: usize, now: Millis) -> bool {
        self.duty_used(i, now) >= self.cfg.duty_limit_ms
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::config;
    use crate::core::store::Store;
    use crate::core::{
        AxisId, BackendCommand, Core, Effect, Error, Feedback, Gear, NoStorage, ProfileId, Reply,
        Request, Signal,
    };

    /// The id of the built-in config's axis `name`.
    fn ax(name: &str) -> AxisId {
        AxisId::of(&config::builtin().unwrap(), name).unwrap()
    }

    /// The built-in config's name of axis `id`.
    fn name(id: AxisId) -> String {
        config::builtin().unwrap().axes[id.index()].name.clone()
    }

    /// A parked core whose backends have reported only `known`.
    fn core_knowing(known: BTreeMap<AxisId, f64>) -> Core {
        let cfg = Arc::new(config::builtin().unwrap());
        let mut c = Core::new(cfg, Store::default(), &known, "t".into(), "t".into());
        let park = vec![Signal::Gear(Gear::P), Signal::SpeedKmh(0.0)];
        c.request(Request::UpdateSignals(park), 0, &mut NoStorage)
            .unwrap();
        c
    }

    fn all_but_wheel_tilt() -> BTreeMap<AxisId, f64> {
        let cfg = config::builtin().unwrap();
        AxisId::all(&cfg.axes)
            .filter(|(_, a)| a.name != "wheel_tilt")
            .map(|(id, a)| (id, a.initial))
            .collect()
    }

    #[test]
    fn nothing_is_stored_or_moved_from_an_unknown_position() {
        let mut c = core_knowing(all_but_wheel_tilt());
        let st = &mut NoStorage;
        let wheel = c.axes.index("wheel_tilt").unwrap();
        assert_eq!(c.view().axes[wheel].position, None);
        assert_eq!(c.view().axes[wheel].target, None);
        let r = c.request(Request::CreateProfile { name: "A".into() }, 0, st);
        assert!(
            matches!(&r, Err(Error::NotReady(m)) if m.contains("wheel_tilt")),
            "{r:?}"
        );
        assert!(c.store().profiles.is_empty());
        let r = c.request(
            Request::MoveTo {
                axis: ax("wheel_tilt"),
                target: 10.0,
            },
            0,
            st,
        );
        assert!(matches!(r, Err(Error::NotReady(_))), "{r:?}");
        assert!(c.take_effects().is_empty());
        assert!(!c.is_moving());

        // The backend reports it: everything works.
        c.feedback(
            Feedback::Position {
                axis: ax("wheel_tilt"),
                position: 42.0,
            },
            10,
        );
        assert_eq!(c.view().axes[wheel].position, Some(42.0));
        assert_eq!(
            c.view().axes[wheel].target,
            Some(42.0),
            "it stands where it is"
        );
        let r = c.request(Request::CreateProfile { name: "A".into() }, 20, st);
        assert_eq!(r, Ok(Reply::Created(ProfileId::new(1))));
        assert_eq!(c.store().profiles[0].positions["wheel_tilt"], 42.0);
    }

    #[test]
    fn a_recall_through_an_unknown_axis_is_refused_whole() {
        let mut c = core_knowing([(ax("seat_position"), 130.0)].into());
        let st = &mut NoStorage;
        let mut store = Store::default();
        store
            .create(
                "A".into(),
                [
                    ("seat_position".to_string(), 100.0),
                    ("wheel_tilt".to_string(), 10.0),
                ]
                .into_iter()
                .collect(),
                10,
            )
            .unwrap();
        c.store = store;
        let r = c.request(
            Request::SelectProfile {
                id: ProfileId::new(1),
            },
            0,
            st,
        );
        assert!(matches!(r, Err(Error::NotReady(_))), "{r:?}");
        assert!(c.take_effects().is_empty(), "nothing moves");
        assert_eq!(c.store().active, None, "nothing changes");
        // Once known, the same recall runs and moves both.
        c.feedback(
            Feedback::Position {
                axis: ax("wheel_tilt"),
                position: 50.0,
            },
            5,
        );
        c.request(
            Request::SelectProfile {
                id: ProfileId::new(1),
            },
            10,
            st,
        )
        .unwrap();
        let moved: Vec<String> = c
            .take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Backend(BackendCommand::Move { axis, .. }) => Some(name(axis)),
                _ => None,
            })
            .collect();
        assert_eq!(moved.len(), 2, "{moved:?}");
    }

    #[test]
    fn an_automatic_motion_leaves_an_unknown_axis_out() {
        let mut c = core_knowing(all_but_wheel_tilt());
        let st = &mut NoStorage;
        // Drive, then park with the driver in: easy exit retracts the seat (known) and would
        // raise the wheel (not known).
        let mut sig = |s: Vec<Signal>, c: &mut Core| {
            c.request(Request::UpdateSignals(s), 0, st).unwrap();
        };
        sig(
            vec![Signal::DriverSeatOccupied(true), Signal::Gear(Gear::D)],
            &mut c,
        );
        c.take_effects();
        sig(vec![Signal::Gear(Gear::P)], &mut c);
        let fx = c.take_effects();
        let moved: Vec<String> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Backend(BackendCommand::Move { axis, .. }) => Some(name(*axis)),
                _ => None,
            })
            .collect();
        assert!(moved.iter().any(|a| a == "seat_position"), "{fx:?}");
        assert!(!moved.iter().any(|a| a == "wheel_tilt"), "{fx:?}");
    }

    fn effects_of(c: &mut Core) -> (Vec<String>, Vec<Effect>) {
        let fx = c.take_effects();
        let stops = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Backend(BackendCommand::Stop { axis }) => Some(name(*axis)),
                _ => None,
            })
            .collect();
        (stops, fx)
    }

    #[test]
    fn a_position_no_longer_known_is_as_if_never_reported_until_reported_again() {
        let cfg = config::builtin().unwrap();
        let all: BTreeMap<AxisId, f64> = AxisId::all(&cfg.axes)
            .map(|(id, a)| (id, a.initial))
            .collect();
        let mut c = core_knowing(all);
        let st = &mut NoStorage;
        let seat = c.axes.index("seat_position").unwrap();
        c.request(
            Request::MoveTo {
                axis: ax("seat_position"),
                target: 200.0,
            },
            0,
            st,
        )
        .unwrap();
        c.take_effects();
        assert!(c.is_moving());
        let lost = "lost the KUKSA databroker (gone)".to_string();
        c.feedback(
            Feedback::PositionUnknown {
                axis: ax("seat_position"),
                why: lost.clone(),
            },
            10,
        );
        // The motion through it halts (a stop, outcome fault) ...
        let (stops, fx) = effects_of(&mut c);
        assert_eq!(stops, vec!["seat_position".to_string()], "{fx:?}");
        assert!(
            fx.iter().any(|e| matches!(
                e,
                Effect::MotionFinished {
                    outcome: crate::core::Outcome::Fault,
                    ..
                }
            )),
            "{fx:?}"
        );
        assert!(!c.is_moving());
        // ... and the axis is as if never reported: not known (NaN on the bus), no target,
        // its fault says why; whatever needs its position is refused NotReady.
        let v = &c.view().axes[seat];
        assert_eq!((v.position, v.target), (None, None));
        assert_eq!(v.fault, Some(lost));
        assert!(!v.moving);
        let r = c.request(Request::CreateProfile { name: "A".into() }, 20, st);
        assert!(
            matches!(&r, Err(Error::NotReady(m)) if m.contains("seat_position")),
            "{r:?}"
        );
        let r = c.request(
            Request::MoveTo {
                axis: ax("seat_position"),
                target: 150.0,
            },
            20,
            st,
        );
        assert!(matches!(r, Err(Error::NotReady(_))), "{r:?}");
        assert!(c.take_effects().is_empty(), "nothing moves");

        // Reported again (the link is back): known where it is, the link fault is gone.
        c.feedback(
            Feedback::Position {
                axis: ax("seat_position"),
                position: 161.0,
            },
            30,
        );
        let v = &c.view().axes[seat];
        assert_eq!((v.position, v.target), (Some(161.0), Some(161.0)));
        assert_eq!(v.fault, None, "a link fault clears at the next report");
        assert!(c.take_effects().is_empty(), "nothing resumes");
    }

    #[test]
    fn a_fault_of_the_axis_is_not_cleared_by_a_report() {
        let mut c = core_knowing(all_but_wheel_tilt());
        let seat = c.axes.index("seat_position").unwrap();
        let report = |c: &mut Core, at: f64| {
            c.feedback(
                Feedback::Position {
                    axis: ax("seat_position"),
                    position: at,
                },
                10,
            )
        };
        c.feedback(
            Feedback::Fault {
                axis: ax("seat_position"),
                message: "over-current".into(),
            },
            0,
        );
        report(&mut c, 131.0);
        assert_eq!(c.view().axes[seat].fault.as_deref(), Some("over-current"));
        // A fault found while the link was down (its signals do not match, say) stays too.
        c.feedback(
            Feedback::PositionUnknown {
                axis: ax("seat_position"),
                why: "lost".into(),
            },
            20,
        );
        c.feedback(
            Feedback::Fault {
                axis: ax("seat_position"),
                message: "mismatch".into(),
            },
            30,
        );
        report(&mut c, 132.0);
        assert_eq!(c.view().axes[seat].fault.as_deref(), Some("mismatch"));
        assert_eq!(c.view().axes[seat].position, Some(132.0));
    }
}
