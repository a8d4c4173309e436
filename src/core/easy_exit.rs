//! Easy exit and restore: retract the seat and wheel when the car is parked, bring them back
//! when the driver is in again. This part owns the trigger and restore state; the motions
//! themselves run in the one engine like any other (automatic, so locked doors hold them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::axes::Axes;
use super::{Gear, Reason, Vehicle};
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
    /// What is on disk (a fingerprint of [`EasyExit::state`]), so that an unchanged state is
    /// not written again.
    saved: (bool, Vec<(usize, f64)>),
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
        self.saved = self.persisted();
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
    fn persisted(&self) -> (bool, Vec<(usize, f64)>) {
        (self.active, self.pre_retract.clone())
    }

    /// Whether the state differs from what is on disk.
    pub fn unsaved(&self) -> bool {
        self.persisted() != self.saved
    }

    /// The state is on disk now.
    pub fn mark_saved(&mut self) {
        self.saved = self.persisted();
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// A retract trigger was dropped (motion is inhibited): a retract held back by locked
    /// doors does not run when they unlock either.
    pub fn drop_pending(&mut self) {
        self.pending = false;
    }

    /// A restore was due but refused (motion is inhibited): the car stays retracted, and only
    /// a fresh press of the restore signal restores it (not the one held now).
    pub fn restore_refused(&mut self) {
        self.restore_primed = false;
    }

    /// An explicit recall ends easy exit: the profile is what the driver wants.
    pub fn end(&mut self) {
        self.active = false;
        self.pending = false;
    }

    /// After a signal update from `before` to `v`: whether a retract is due now. The trigger
    /// is an *event*: the gear going into P (from a reported other gear) or, for
    /// `park_and_unbuckle`, also the driver's belt being unbuckled; either only counts in P at
    /// standstill with the driver seated. A change of speed alone never triggers (noise on
    /// the speed signal would retract the seat again), and neither does the first report
    /// after a restart (no transition was seen). A retract held back only by locked doors
    /// runs when they unlock, while the driver is still seated and the car still in P.
    pub fn retract_due(&mut self, before: &Vehicle, v: &Vehicle, cfg: &Config) -> bool {
        if !end_of_drive_condition(v, cfg) {
            // The driver has left, buckled up, or the car moves: a held-back retract would
            // surprise whoever comes next.
            self.pending = false;
            return false;
        }
        if drive_ended(before, v, cfg) {
            return true;
        }
        self.pending
            && v.interlock_for(Reason::EasyExit, cfg.speed_threshold_kmh)
                .is_none()
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

    /// What must be on disk before a retract to `targets` may start: without it a restart
    /// (an OTA update while parked) would lose the restore.
    pub fn state_after_retract(&self, targets: &[(usize, f64)], axes: &Axes) -> EasyExitState {
        EasyExitState {
            active: true,
            pre_retract: targets
                .iter()
                .filter_map(|&(i, _)| Some((axes.config(i).name.clone(), axes.position(i)?)))
                .collect(),
        }
    }

    /// The retract to `targets` starts (its state is on disk): remember where the axes were.
    pub fn retracting(&mut self, targets: &[(usize, f64)], v: &Vehicle, axes: &Axes) {
        self.pre_retract = targets
            .iter()
            .filter_map(|&(i, _)| axes.position(i).map(|p| (i, p)))
            .collect();
        self.active = true;
        self.restore_primed = !restore_signal(v, &axes.cfg);
        self.mark_saved();
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

/// Parked at standstill with the driver seated (and, for `park_and_unbuckle`, unbuckled).
fn end_of_drive_condition(v: &Vehicle, cfg: &Config) -> bool {
    let unbuckle = cfg.easy_exit.trigger == EasyExitTrigger::ParkAndUnbuckle;
    v.parked(cfg.speed_threshold_kmh)
        && v.driver_seat_occupied
        && !(unbuckle && v.driver_belt_buckled)
}

/// The end of a drive, the moment easy exit triggers (`easy_exit.trigger`), whether or not
/// easy exit is on: the gear went into P (or, for `park_and_unbuckle`, the belt came off in
/// P) at standstill with the driver seated. Only a transition counts.
pub(super) fn drive_ended(before: &Vehicle, v: &Vehicle, cfg: &Config) -> bool {
    let unbuckle = cfg.easy_exit.trigger == EasyExitTrigger::ParkAndUnbuckle;
    let into_park = v.gear == Some(Gear::P) && before.gear.is_some_and(|g| g != Gear::P);
    let unbuckled = unbuckle && before.driver_belt_buckled && !v.driver_belt_buckled;
    end_of_drive_condition(v, cfg) && (into_park || unbuckled)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::backend::mock::sim::Sim;
    use crate::config::{self, Config, EasyExitTrigger};
    use crate::core::store::Store;
    use crate::core::{
        AxisId, Core, EasyExitState, Effect, Gear, NoStorage, Reason, Request, SaveError, Signal,
        Storage,
    };

    fn core_with(cfg: Config) -> Core {
        let known: BTreeMap<AxisId, f64> = AxisId::all(&cfg.axes)
            .map(|(id, a)| (id, a.initial))
            .collect();
        Core::new(
            Arc::new(cfg),
            Store::default(),
            &known,
            "t".into(),
            "t".into(),
        )
    }

    /// Apply signals; the effects.
    fn signals(c: &mut Core, s: Vec<Signal>, st: &mut dyn Storage) -> Vec<Effect> {
        c.request(Request::UpdateSignals(s), 0, st).unwrap();
        c.take_effects()
    }

    fn retract_started(fx: &[Effect]) -> bool {
        fx.iter().any(|e| {
            matches!(
                e,
                Effect::MotionStarted {
                    reason: Reason::EasyExit,
                    ..
                }
            )
        })
    }

    /// Apply signals; whether an easy-exit retract started.
    fn retracts(c: &mut Core, s: Vec<Signal>, st: &mut dyn Storage) -> bool {
        retract_started(&signals(c, s, st))
    }

    /// Driving with the driver seated and belted.
    fn driving(trigger: EasyExitTrigger) -> Core {
        let mut cfg = config::builtin().unwrap();
        cfg.easy_exit.trigger = trigger;
        let mut c = core_with(cfg);
        let st = &mut NoStorage;
        let drive = vec![
            Signal::Gear(Gear::D),
            Signal::SpeedKmh(30.0),
            Signal::DriverSeatOccupied(true),
            Signal::DriverBeltBuckled(true),
        ];
        assert!(!retracts(&mut c, drive, st));
        assert!(!retracts(&mut c, vec![Signal::SpeedKmh(0.0)], st));
        c
    }

    #[test]
    fn park_retracts_once_and_speed_noise_never_again() {
        let mut c = driving(EasyExitTrigger::Park);
        let st = &mut NoStorage;
        let mut fx = signals(&mut c, vec![Signal::Gear(Gear::P)], st);
        assert!(retract_started(&fx));
        // The retract runs to its end on the simulated motors; the brake restores.
        let mut sim = Sim::new(AxisId::all(&c.axes.cfg.axes));
        for now in 1..10_000 {
            for e in &fx {
                if let Effect::Backend(cmd) = e {
                    sim.command(cmd, 0.0);
                }
            }
            for fb in sim.step(0.1) {
                c.feedback(fb, now * 100);
            }
            fx = c.take_effects();
            if !c.is_moving() {
                break;
            }
        }
        assert!(!c.is_moving());
        assert!(c.view().easy_exit_active);
        assert!(!retracts(&mut c, vec![Signal::BrakePressed(true)], st));
        assert!(!c.view().easy_exit_active, "restored");
        c.take_effects();
        // Still in P, driver seated: noise on the speed signal is not a trigger.
        for s in [0.6, 0.0, 3.0, 0.0] {
            assert!(
                !retracts(&mut c, vec![Signal::SpeedKmh(s)], st),
                "speed {s}"
            );
        }
        // Only a real P transition is.
        assert!(!retracts(&mut c, vec![Signal::Gear(Gear::R)], st));
        assert!(retracts(&mut c, vec![Signal::Gear(Gear::P)], st));
    }

    #[test]
    fn an_empty_seat_or_the_first_report_never_retracts() {
        let mut c = core_with(config::builtin().unwrap());
        let st = &mut NoStorage;
        // First report after a restart in a parked car: no transition was seen.
        let parked = vec![
            Signal::Gear(Gear::P),
            Signal::SpeedKmh(0.0),
            Signal::DriverSeatOccupied(true),
        ];
        assert!(!retracts(&mut c, parked, st));
        // Nobody in the seat: nothing to help out of.
        let mut c = driving(EasyExitTrigger::Park);
        assert!(!retracts(
            &mut c,
            vec![Signal::DriverSeatOccupied(false)],
            st
        ));
        assert!(!retracts(&mut c, vec![Signal::Gear(Gear::P)], st));
        for s in [3.0, 0.0] {
            assert!(!retracts(&mut c, vec![Signal::SpeedKmh(s)], st));
        }
    }

    #[test]
    fn park_and_unbuckle_fires_on_the_unbuckle_in_park_only() {
        let mut c = driving(EasyExitTrigger::ParkAndUnbuckle);
        let st = &mut NoStorage;
        assert!(!retracts(&mut c, vec![Signal::Gear(Gear::P)], st), "belted");
        assert!(!retracts(&mut c, vec![Signal::SpeedKmh(0.6)], st));
        // Unbuckled while rolling: no.
        assert!(!retracts(
            &mut c,
            vec![Signal::DriverBeltBuckled(false)],
            st
        ));
        assert!(
            !retracts(&mut c, vec![Signal::SpeedKmh(0.0)], st),
            "speed alone"
        );
        assert!(!retracts(&mut c, vec![Signal::DriverBeltBuckled(true)], st));
        assert!(retracts(&mut c, vec![Signal::DriverBeltBuckled(false)], st));
    }

    /// Run the motion to its end on the simulated motors; every axis commanded to move.
    fn run_out(c: &mut Core, sim: &mut Sim, mut fx: Vec<Effect>, t0: u64) -> Vec<AxisId> {
        let mut moved = Vec::new();
        for k in 1..10_000 {
            for e in &fx {
                if let Effect::Backend(cmd) = e {
                    if let crate::core::BackendCommand::Move { axis, .. } = cmd {
                        moved.push(*axis);
                    }
                    sim.command(cmd, 0.0);
                }
            }
            for fb in sim.step(0.1) {
                c.feedback(fb, t0 + k * 100);
            }
            fx = c.take_effects();
            if !c.is_moving() {
                break;
            }
        }
        moved.sort();
        moved.dedup();
        moved
    }

    #[test]
    fn the_restore_brings_back_what_the_retract_moved_and_leaves_the_mirrors() {
        let cfg = config::builtin().unwrap();
        let axis = |name: &str| {
            AxisId::all(&cfg.axes)
                .find(|(_, a)| a.name == name)
                .unwrap()
                .0
        };
        let (seat, height, wheel_tilt, wheel_ext, mirror) = (
            axis("seat_position"),
            axis("seat_height"),
            axis("wheel_tilt"),
            axis("wheel_extension"),
            axis("mirror_passenger_tilt"),
        );
        // Anna's profile is active; on the way she lowered the seat and tilted the mirror.
        let positions = [
            ("seat_position", 130.0),
            ("seat_height", 60.0),
            ("wheel_tilt", 50.0),
            ("wheel_extension", 50.0),
            ("mirror_passenger_tilt", 40.0),
        ];
        let store = anna_store(&positions, false);
        let known: BTreeMap<AxisId, f64> = AxisId::all(&cfg.axes)
            .map(|(id, a)| (id, if id == mirror { -30.0 } else { a.initial }))
            .collect();
        let mut c = Core::new(Arc::new(cfg.clone()), store, &known, "t".into(), "t".into());
        let mut sim = Sim::new(AxisId::all(&cfg.axes));
        sim.set_position(mirror, -30.0);
        let st = &mut NoStorage;
        drive_seated(&mut c);
        let fx = signals(&mut c, vec![Signal::Gear(Gear::P)], st);
        assert!(retract_started(&fx));
        let retracted = run_out(&mut c, &mut sim, fx, 0);
        assert_eq!(
            retracted,
            [seat, wheel_tilt, wheel_ext],
            "the retract's axes only"
        );
        // The brake: the retracted axes go back to the profile, nothing else moves.
        signals(&mut c, vec![Signal::BrakePressed(false)], st);
        let fx = signals(&mut c, vec![Signal::BrakePressed(true)], st);
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::MotionStarted {
                reason: Reason::Restore,
                ..
            }
        )));
        let restored = run_out(&mut c, &mut sim, fx, 100_000);
        assert_eq!(restored, [seat, wheel_tilt, wheel_ext]);
        assert!(!c.view().easy_exit_active);
        let at = |a| sim.position(a).unwrap();
        assert!((at(seat) - 130.0).abs() <= 0.5, "{}", at(seat));
        assert!((at(wheel_tilt) - 50.0).abs() <= 0.5, "{}", at(wheel_tilt));
        assert_eq!(at(height), 30.0, "the seat height she set stays");
        assert_eq!(at(mirror), -30.0, "the mirror is left alone");
    }

    /// Storage that records what was written, in order.
    #[derive(Default)]
    struct Recorder(Vec<(&'static str, Option<Store>)>);
    impl Storage for Recorder {
        fn save(&mut self, s: &Store) -> Result<(), SaveError> {
            self.0.push(("profiles", Some(s.clone())));
            Ok(())
        }
        fn save_easy_exit(&mut self, _: &EasyExitState) -> Result<(), SaveError> {
            self.0.push(("easy-exit", None));
            Ok(())
        }
    }

    /// A store whose one profile, Anna (AutoSave `auto_save`), is active with `positions`.
    fn anna_store(positions: &[(&str, f64)], auto_save: bool) -> Store {
        Store {
            schema: crate::core::store::SCHEMA_VERSION,
            next_id: 2,
            active: Some(crate::core::ProfileId::new(1)),
            profiles: vec![crate::core::store::Profile {
                positions: positions.iter().map(|(a, p)| (a.to_string(), *p)).collect(),
                auto_save,
                ..crate::core::store::Profile::new(crate::core::ProfileId::new(1), "Anna".into())
            }],
        }
    }

    /// In D at standstill, the driver seated and belted (no retract).
    fn drive_seated(c: &mut Core) {
        let drive = vec![
            Signal::Gear(Gear::D),
            Signal::SpeedKmh(0.0),
            Signal::DriverSeatOccupied(true),
            Signal::DriverBeltBuckled(true),
        ];
        assert!(!retracts(c, drive, &mut NoStorage));
    }

    /// A core whose active profile Anna (AutoSave `auto_save`) stores the seat's height at 60
    /// and its position at 130, driving, seat height at 30.
    fn anna_driving(auto_save: bool) -> Core {
        let mut c = core_with(config::builtin().unwrap());
        c.store = anna_store(
            &[("seat_position", 130.0), ("seat_height", 60.0)],
            auto_save,
        );
        drive_seated(&mut c);
        c
    }

    #[test]
    fn auto_save_keeps_what_the_driver_left_before_the_retract_and_writes_only_changes() {
        let mut c = anna_driving(true);
        let mut rec = Recorder::default();
        assert!(retracts(&mut c, vec![Signal::Gear(Gear::P)], &mut rec));
        let kinds: Vec<&str> = rec.0.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            ["profiles", "easy-exit"],
            "saved once, before the retract"
        );
        let saved = rec.0[0].1.as_ref().unwrap();
        let p = &saved.profiles[0];
        assert_eq!(p.positions["seat_height"], 30.0, "where the driver left it");
        assert_eq!(p.positions["seat_position"], 130.0);
        // Every axis known and healthy is kept, the mirrors too.
        assert_eq!(p.positions.len(), c.axes.cfg.axes.len());
        assert_eq!(saved.schema_needed(), 3);
        assert_eq!(c.store.get(p.id), Some(p), "in effect once written");
        // The next end of a drive with nothing changed writes nothing (the retract's
        // positions are not the driver's: the restore first).
        let mut c = anna_driving(true);
        c.store.profiles[0].positions = p.positions.clone();
        let mut rec = Recorder::default();
        assert!(retracts(&mut c, vec![Signal::Gear(Gear::P)], &mut rec));
        let kinds: Vec<&str> = rec.0.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ["easy-exit"], "no profile write without a change");
    }

    #[test]
    fn auto_save_off_or_no_active_profile_writes_nothing() {
        let mut c = anna_driving(false);
        let mut rec = Recorder::default();
        assert!(retracts(&mut c, vec![Signal::Gear(Gear::P)], &mut rec));
        assert!(rec.0.iter().all(|(k, _)| *k != "profiles"), "AutoSave off");
        let mut c = anna_driving(true);
        c.store.active = None;
        let mut rec = Recorder::default();
        assert!(retracts(&mut c, vec![Signal::Gear(Gear::P)], &mut rec));
        assert!(
            rec.0.iter().all(|(k, _)| *k != "profiles"),
            "no active profile"
        );
        // With easy exit off, the same moment saves.
        let mut c = anna_driving(true);
        c.store.profiles[0].easy_exit = false;
        let mut rec = Recorder::default();
        assert!(!retracts(&mut c, vec![Signal::Gear(Gear::P)], &mut rec));
        let kinds: Vec<&str> = rec.0.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ["profiles"]);
    }

    /// Storage whose easy-exit file cannot be written (a full disk).
    struct Full;
    impl Storage for Full {
        fn save(&mut self, _: &Store) -> Result<(), SaveError> {
            Err("No space left on device".into())
        }
        fn save_easy_exit(&mut self, _: &EasyExitState) -> Result<(), SaveError> {
            Err("No space left on device".into())
        }
    }

    #[test]
    fn no_retract_without_its_restore_on_disk() {
        let mut c = driving(EasyExitTrigger::Park);
        assert!(!retracts(&mut c, vec![Signal::Gear(Gear::P)], &mut Full));
        let v = c.view();
        assert!(!v.easy_exit_active);
        assert!(!c.is_moving());
        let why = v.storage_error.unwrap_or_default();
        assert!(why.contains("easy exit did not run"), "{why}");
        // Space again: the next P retracts and the error is gone.
        let st = &mut NoStorage;
        assert!(!retracts(&mut c, vec![Signal::Gear(Gear::D)], st));
        assert!(retracts(&mut c, vec![Signal::Gear(Gear::P)], st));
        assert_eq!(c.view().storage_error, None);
    }
}
