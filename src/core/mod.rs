//! The pure core of driverprofiled: it takes events (requests, vehicle signals, actuator
//! feedback, the passing of time) and produces effects (actuator commands, signals). No tokio,
//! no D-Bus, no clock of its own: time is handed in as milliseconds since start, so the core is
//! deterministic and testable with a fake clock.
//!
//! Persistence goes through the [`Storage`] trait, called *before* a change is committed in
//! memory: if saving fails, the request fails and nothing changes.

pub mod keys;
pub mod store;
pub mod view;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::paths;
use store::{Profile, Store};
use view::{ActuatorView, ManagerView, ProfileView, VehicleView, View};

/// Milliseconds on a monotonic clock (the edge uses time since start).
pub type Millis = u64;

/// Position changes of a moving axis are published at most this often.
pub const PUBLISH_INTERVAL_MS: Millis = 100;

/// Why a motion runs. Part of the D-Bus contract (`MotionStarted`/`MotionFinished`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Recall,
    Manual,
    /// The selected key approached the driver's door.
    KeyApproach,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Recall => "recall",
            Reason::Manual => "manual",
            Reason::KeyApproach => "key-approach",
        }
    }
}

/// How a motion ended. Part of the D-Bus contract (`MotionFinished`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Stopped,
    Superseded,
    Interlocked,
    /// The occupant took over (manual switch or moving an axis by hand).
    Overridden,
    Fault,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Stopped => "stopped",
            Outcome::Superseded => "superseded",
            Outcome::Interlocked => "interlocked",
            Outcome::Overridden => "overridden",
            Outcome::Fault => "fault",
        }
    }
}

/// A typed request error; the edge maps each variant to a D-Bus error name.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    InvalidArgs(String),
    NotFound(String),
    AlreadyExists(String),
    OutOfRange(String),
    Interlocked(String),
    LimitReached(String),
    KeyInUse(String),
    /// The change could not be stored; nothing was changed.
    Failed(String),
}

impl Error {
    /// The human-readable message.
    pub fn message(&self) -> &str {
        let (Error::InvalidArgs(m)
        | Error::NotFound(m)
        | Error::AlreadyExists(m)
        | Error::OutOfRange(m)
        | Error::Interlocked(m)
        | Error::LimitReached(m)
        | Error::KeyInUse(m)
        | Error::Failed(m)) = self;
        m
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A value in an `UpdateSignals` call, decoded from its D-Bus variant by the edge.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalValue {
    Str(String),
    F64(f64),
    Bool(bool),
    /// Any other D-Bus type, with its signature, for the error message.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    CreateProfile {
        name: String,
    },
    SelectProfile {
        id: String,
    },
    Stop,
    Rename {
        id: String,
        name: String,
    },
    SetPositions {
        id: String,
        positions: Vec<(String, f64)>,
    },
    SaveCurrentPositions {
        id: String,
    },
    BindKey {
        id: String,
        key: String,
    },
    UnbindKey {
        id: String,
        key: String,
    },
    SetEasyExit {
        id: String,
        enabled: bool,
    },
    Delete {
        id: String,
    },
    MoveTo {
        axis: String,
        target: f64,
    },
    StopAxis {
        axis: String,
    },
    UpdateSignals(Vec<(String, SignalValue)>),
    /// (key id, anchor, distance in metres) from the key-locator service.
    ReportRanges(Vec<(String, String, f64)>),
}

/// Most readings accepted in one `ReportRanges` call.
pub const MAX_READINGS: usize = 256;
/// Farthest distance a reading may report, in metres.
pub const MAX_DISTANCE_M: f64 = 100.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Done,
    /// The id of a newly created profile.
    Created(String),
}

/// What an actuator backend reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Feedback {
    /// The axis is at `position` (sent while it moves and when it stops).
    Position { axis: String, position: f64 },
    /// The occupant moved the axis by hand (a seat switch): the occupant wins.
    Manual { axis: String, position: f64 },
    /// The backend detected a fault on the axis (over-current, lost calibration, ...).
    Fault { axis: String, message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum BackendCommand {
    Move { axis: String, target: f64 },
    Stop { axis: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Backend(BackendCommand),
    MotionStarted {
        reason: Reason,
        profile: Option<String>,
    },
    MotionFinished {
        reason: Reason,
        outcome: Outcome,
    },
}

/// Where the store is made durable. Called before a change takes effect in memory.
pub trait Storage {
    fn save(&mut self, store: &Store) -> Result<(), String>;
}

/// Storage that keeps nothing: for tests of the core.
#[derive(Debug, Default)]
pub struct NoStorage;

impl Storage for NoStorage {
    fn save(&mut self, _store: &Store) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gear {
    P,
    R,
    N,
    D,
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
    pub manual_control: bool,
    pub doors_locked: bool,
}

#[derive(Debug, Clone)]
struct AxisState {
    position: f64,
    /// The position last shown on D-Bus (throttled while moving).
    published: f64,
    last_publish: Option<Millis>,
    target: f64,
    moving: bool,
    fault: String,
    /// While commanded: when the position last changed, and to what.
    progress_at: Millis,
    progress_pos: f64,
}

#[derive(Debug, Clone)]
struct Motion {
    reason: Reason,
    /// Targets by axis index; `done` once the axis has arrived.
    axes: Vec<MotionAxis>,
    started: Millis,
}

#[derive(Debug, Clone)]
struct MotionAxis {
    index: usize,
    done: bool,
}

pub struct Core {
    cfg: Arc<Config>,
    store: Store,
    vehicle: Vehicle,
    axes: Vec<AxisState>,
    motion: Option<Motion>,
    backend: String,
    version: String,
    effects: Vec<Effect>,
    keys: keys::Tracker,
    /// The selected key's profile still has to be recalled once conditions allow.
    key_recall_pending: bool,
}

impl Core {
    /// A core over `store` (already loaded and validated) with actuators at their configured
    /// initial positions. `backend` is shown in `Manager.Backend`.
    pub fn new(cfg: Arc<Config>, store: Store, backend: String, version: String) -> Core {
        let axes = cfg
            .axes
            .iter()
            .map(|a| AxisState {
                position: a.initial,
                published: a.initial,
                last_publish: None,
                target: a.initial,
                moving: false,
                fault: String::new(),
                progress_at: 0,
                progress_pos: a.initial,
            })
            .collect();
        Core {
            keys: keys::Tracker::new(cfg.keys.clone()),
            key_recall_pending: false,
            cfg,
            store,
            vehicle: Vehicle::default(),
            axes,
            motion: None,
            backend,
            version,
            effects: Vec::new(),
        }
    }

    /// The selected (nearest) key, if any.
    pub fn nearest_key(&self) -> Option<&str> {
        self.keys.selected()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn vehicle(&self) -> &Vehicle {
        &self.vehicle
    }

    pub fn is_moving(&self) -> bool {
        self.motion.is_some()
    }

    /// The effects produced since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn axis_index(&self, name: &str) -> Option<usize> {
        self.cfg.axes.iter().position(|a| a.name == name)
    }

    /// Why motion is not allowed right now, or `None` when it is.
    pub fn interlock(&self) -> Option<String> {
        let v = &self.vehicle;
        match v.gear {
            None => return Some("gear not reported yet".into()),
            Some(Gear::P) => {}
            Some(g) => return Some(format!("gear is {g:?}, not P")),
        }
        match v.speed_kmh {
            None => return Some("vehicle speed not reported yet".into()),
            Some(s) if s >= self.cfg.speed_threshold_kmh => {
                return Some(format!(
                    "vehicle speed {s} km/h is not below {} km/h",
                    self.cfg.speed_threshold_kmh
                ));
            }
            Some(_) => {}
        }
        if v.manual_control {
            return Some("a manual seat or wheel switch is in use".into());
        }
        None
    }

    /// When [`Core::tick`] must next be called, if at all. `None` while nothing is in motion
    /// and nothing waits to be published: an idle daemon sets no timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        let mut next: Option<Millis> = None;
        let mut at = |t: Millis| next = Some(next.map_or(t, |n| n.min(t)));
        for a in &self.axes {
            if a.published != a.position
                && let Some(last) = a.last_publish
            {
                at(last + PUBLISH_INTERVAL_MS);
            }
        }
        if let Some(t) = self.keys.next_deadline() {
            at(t);
        }
        if let Some(m) = &self.motion {
            at(m.started + self.cfg.motion_timeout_ms);
            for ma in m.axes.iter().filter(|ma| !ma.done) {
                let a = &self.axes[ma.index];
                at(a.progress_at + self.cfg.axes[ma.index].stall_ms);
            }
        }
        next
    }

    /// Let time pass: publish throttled positions, detect stalls and the motion timeout.
    pub fn tick(&mut self, now: Millis, storage: &mut dyn Storage) {
        for i in 0..self.axes.len() {
            let a = &self.axes[i];
            if a.published != a.position
                && a.last_publish
                    .is_none_or(|l| now >= l + PUBLISH_INTERVAL_MS)
            {
                self.publish(i, now);
            }
        }
        self.key_step(now, storage);
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
        let stalled = m.axes.iter().filter(|ma| !ma.done).find_map(|ma| {
            let a = &self.axes[ma.index];
            (now >= a.progress_at + self.cfg.axes[ma.index].stall_ms).then_some(ma.index)
        });
        if let Some(i) = stalled {
            let ac = &self.cfg.axes[i];
            let msg = format!(
                "stalled at {} {} (no movement for {} ms)",
                fmt_num(self.axes[i].position),
                ac.unit.as_str(),
                ac.stall_ms
            );
            tracing::warn!("{}: {msg}", ac.name);
            self.axes[i].fault = msg;
            self.halt(Outcome::Fault, now);
        }
    }

    fn publish(&mut self, i: usize, now: Millis) {
        let a = &mut self.axes[i];
        a.published = a.position;
        a.last_publish = Some(now);
    }

    /// Handle actuator feedback.
    pub fn feedback(&mut self, fb: Feedback, now: Millis) {
        match fb {
            Feedback::Position { axis, position } => {
                let Some(i) = self.axis_index(&axis) else {
                    tracing::warn!("feedback for unknown axis {axis:?} ignored");
                    return;
                };
                if !position.is_finite() {
                    tracing::warn!("{axis}: backend reported a non-finite position; ignored");
                    return;
                }
                self.position_update(i, position, now);
            }
            Feedback::Manual { axis, position } => {
                let Some(i) = self.axis_index(&axis) else {
                    return;
                };
                if !position.is_finite() {
                    return;
                }
                let in_motion = self.commanded(i);
                self.axes[i].position = position;
                self.publish(i, now);
                if in_motion {
                    tracing::info!("{axis} moved by hand during a motion: the occupant wins");
                    self.halt(Outcome::Overridden, now);
                }
            }
            Feedback::Fault { axis, message } => {
                let Some(i) = self.axis_index(&axis) else {
                    return;
                };
                tracing::warn!("{axis}: backend fault: {message}");
                self.axes[i].fault = message;
                if self.commanded(i) {
                    self.halt(Outcome::Fault, now);
                }
            }
        }
    }

    /// Whether axis `i` is part of the running motion and has not arrived.
    fn commanded(&self, i: usize) -> bool {
        self.motion
            .as_ref()
            .is_some_and(|m| m.axes.iter().any(|ma| ma.index == i && !ma.done))
    }

    fn position_update(&mut self, i: usize, position: f64, now: Millis) {
        let tol = self.cfg.axes[i].tolerance;
        let commanded = self.commanded(i);
        let a = &mut self.axes[i];
        a.position = position;
        if commanded && (position - a.progress_pos).abs() > tol / 10.0 {
            a.progress_at = now;
            a.progress_pos = position;
            if !a.fault.is_empty() {
                tracing::info!("{}: moving again, fault cleared", self.cfg.axes[i].name);
                a.fault.clear();
            }
        }
        let arrived = commanded && (position - a.target).abs() <= tol;
        if arrived {
            a.moving = false;
        }
        if arrived
            || !a.moving
            || a.last_publish
                .is_none_or(|l| now >= l + PUBLISH_INTERVAL_MS)
        {
            self.publish(i, now);
        }
        if arrived {
            self.axis_arrived(i, now);
        }
    }

    fn axis_arrived(&mut self, i: usize, now: Millis) {
        let Some(m) = &mut self.motion else { return };
        for ma in m.axes.iter_mut().filter(|ma| ma.index == i) {
            ma.done = true;
        }
        if m.axes.iter().all(|ma| ma.done) {
            self.finish(Outcome::Completed, now);
        }
    }

    /// End the running motion: stop every axis still commanded and report the outcome.
    fn halt(&mut self, outcome: Outcome, now: Millis) {
        let Some(m) = &self.motion else { return };
        let pending: Vec<usize> = m
            .axes
            .iter()
            .filter(|ma| !ma.done)
            .map(|ma| ma.index)
            .collect();
        for i in pending {
            self.effects.push(Effect::Backend(BackendCommand::Stop {
                axis: self.cfg.axes[i].name.clone(),
            }));
            self.axes[i].moving = false;
            self.publish(i, now);
        }
        self.finish(outcome, now);
    }

    fn finish(&mut self, outcome: Outcome, _now: Millis) {
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
    /// The caller has checked the interlock.
    fn start_motion(
        &mut self,
        reason: Reason,
        profile: Option<String>,
        targets: Vec<(usize, f64)>,
        now: Millis,
    ) {
        if let Some(old) = self.motion.take() {
            for ma in old.axes.iter().filter(|ma| !ma.done) {
                if !targets.iter().any(|(i, _)| *i == ma.index) {
                    self.effects.push(Effect::Backend(BackendCommand::Stop {
                        axis: self.cfg.axes[ma.index].name.clone(),
                    }));
                    self.axes[ma.index].moving = false;
                    self.publish(ma.index, now);
                }
            }
            self.motion = Some(old);
            self.finish(Outcome::Superseded, now);
        }
        tracing::info!("motion ({}) started", reason.as_str());
        self.effects.push(Effect::MotionStarted { reason, profile });
        let mut axes = Vec::new();
        for (i, target) in targets {
            let ac = &self.cfg.axes[i];
            let target = ac.clamp(target);
            let a = &mut self.axes[i];
            a.target = target;
            let done = (a.position - target).abs() <= ac.tolerance;
            if done {
                if a.moving {
                    self.effects.push(Effect::Backend(BackendCommand::Stop {
                        axis: ac.name.clone(),
                    }));
                    a.moving = false;
                }
            } else {
                a.moving = true;
                a.progress_at = now;
                a.progress_pos = a.position;
                self.effects.push(Effect::Backend(BackendCommand::Move {
                    axis: ac.name.clone(),
                    target,
                }));
            }
            axes.push(MotionAxis { index: i, done });
        }
        self.motion = Some(Motion {
            reason,
            axes,
            started: now,
        });
        if self
            .motion
            .as_ref()
            .is_some_and(|m| m.axes.iter().all(|ma| ma.done))
        {
            self.finish(Outcome::Completed, now);
        }
    }

    /// Apply `f` to a copy of the store, save the copy, and only then make it current.
    fn mutate<T>(
        &mut self,
        storage: &mut dyn Storage,
        f: impl FnOnce(&mut Store) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut next = self.store.clone();
        let out = f(&mut next)?;
        if next != self.store {
            storage.save(&next).map_err(|e| {
                tracing::error!("could not save profiles: {e}");
                Error::Failed(format!("could not save profiles: {e}"))
            })?;
            self.store = next;
        }
        Ok(out)
    }

    fn current_positions(&self) -> BTreeMap<String, f64> {
        self.cfg
            .axes
            .iter()
            .zip(&self.axes)
            .map(|(c, a)| (c.name.clone(), round3(a.position)))
            .collect()
    }

    /// Handle a client request. Effects are collected for [`Core::take_effects`].
    pub fn request(
        &mut self,
        req: Request,
        now: Millis,
        storage: &mut dyn Storage,
    ) -> Result<Reply, Error> {
        let result = self.handle(req, now, storage);
        // Signals, ranges and key bindings all bear on the key selection.
        self.key_step(now, storage);
        result
    }

    fn handle(
        &mut self,
        req: Request,
        now: Millis,
        storage: &mut dyn Storage,
    ) -> Result<Reply, Error> {
        match req {
            Request::CreateProfile { name } => {
                store::check_name(&name).map_err(Error::InvalidArgs)?;
                let positions = self.current_positions();
                let max_profiles = self.cfg.max_profiles;
                let id = self.mutate(storage, |s| {
                    if let Some(p) = s.name_taken(&name, None) {
                        return Err(Error::AlreadyExists(format!(
                            "a profile named {:?} exists already",
                            p.name
                        )));
                    }
                    if s.profiles.len() >= max_profiles {
                        return Err(Error::LimitReached(format!(
                            "at most {max_profiles} profiles can be kept"
                        )));
                    }
                    let id = s.next_id.to_string();
                    s.next_id += 1;
                    s.profiles.push(Profile {
                        id: id.clone(),
                        name: name.clone(),
                        keys: Vec::new(),
                        easy_exit: true,
                        positions,
                    });
                    Ok(id)
                })?;
                tracing::info!("profile {id} {name:?} created");
                Ok(Reply::Created(id))
            }
            Request::SelectProfile { id } => {
                let profile = self.profile(&id)?.clone();
                if let Some(why) = self.interlock() {
                    return Err(Error::Interlocked(format!("cannot recall now: {why}")));
                }
                self.mutate(storage, |s| {
                    s.active = Some(id.clone());
                    Ok(())
                })?;
                let targets = profile
                    .positions
                    .iter()
                    .filter_map(|(axis, v)| self.axis_index(axis).map(|i| (i, *v)))
                    .collect();
                self.start_motion(Reason::Recall, Some(id), targets, now);
                Ok(Reply::Done)
            }
            Request::Stop => {
                self.halt(Outcome::Stopped, now);
                Ok(Reply::Done)
            }
            Request::Rename { id, name } => {
                self.profile(&id)?;
                store::check_name(&name).map_err(Error::InvalidArgs)?;
                self.mutate(storage, |s| {
                    if let Some(p) = s.name_taken(&name, Some(&id)) {
                        return Err(Error::AlreadyExists(format!(
                            "a profile named {:?} exists already",
                            p.name
                        )));
                    }
                    if let Some(p) = s.get_mut(&id) {
                        p.name = name;
                    }
                    Ok(())
                })?;
                Ok(Reply::Done)
            }
            Request::SetPositions { id, positions } => {
                self.profile(&id)?;
                let mut checked = Vec::with_capacity(positions.len());
                for (axis, v) in positions {
                    let Some(i) = self.axis_index(&axis) else {
                        return Err(Error::InvalidArgs(format!("unknown axis {axis:?}")));
                    };
                    if !v.is_finite() {
                        return Err(Error::InvalidArgs(format!("{axis}: {v} is not a number")));
                    }
                    let ac = &self.cfg.axes[i];
                    if v < ac.min || v > ac.max {
                        return Err(Error::OutOfRange(format!(
                            "{axis}: {v} is outside {}..{} {}",
                            fmt_num(ac.min),
                            fmt_num(ac.max),
                            ac.unit.as_str()
                        )));
                    }
                    checked.push((axis, v));
                }
                self.mutate(storage, |s| {
                    if let Some(p) = s.get_mut(&id) {
                        p.positions.extend(checked);
                    }
                    Ok(())
                })?;
                Ok(Reply::Done)
            }
            Request::SaveCurrentPositions { id } => {
                self.profile(&id)?;
                let positions = self.current_positions();
                self.mutate(storage, |s| {
                    if let Some(p) = s.get_mut(&id) {
                        p.positions = positions;
                    }
                    Ok(())
                })?;
                Ok(Reply::Done)
            }
            Request::BindKey { id, key } => {
                self.profile(&id)?;
                store::check_key(&key).map_err(Error::InvalidArgs)?;
                let max_keys = self.cfg.max_keys;
                self.mutate(storage, |s| {
                    match s.key_owner(&key) {
                        Some(p) if p.id == id => return Ok(()),
                        Some(p) => {
                            return Err(Error::KeyInUse(format!(
                                "key {key:?} is bound to profile {:?}",
                                p.name
                            )));
                        }
                        None => {}
                    }
                    if s.key_count() >= max_keys {
                        return Err(Error::LimitReached(format!(
                            "at most {max_keys} keys can be bound in all"
                        )));
                    }
                    if let Some(p) = s.get_mut(&id) {
                        p.keys.push(key);
                    }
                    Ok(())
                })?;
                Ok(Reply::Done)
            }
            Request::UnbindKey { id, key } => {
                self.profile(&id)?;
                self.mutate(storage, |s| {
                    let p = s.get_mut(&id).ok_or_else(|| not_found(&id))?;
                    let before = p.keys.len();
                    p.keys.retain(|k| *k != key);
                    if p.keys.len() == before {
                        return Err(Error::NotFound(format!(
                            "key {key:?} is not bound to profile {:?}",
                            p.name
                        )));
                    }
                    Ok(())
                })?;
                Ok(Reply::Done)
            }
            Request::SetEasyExit { id, enabled } => {
                self.profile(&id)?;
                self.mutate(storage, |s| {
                    if let Some(p) = s.get_mut(&id) {
                        p.easy_exit = enabled;
                    }
                    Ok(())
                })?;
                Ok(Reply::Done)
            }
            Request::Delete { id } => {
                self.profile(&id)?;
                self.mutate(storage, |s| {
                    s.profiles.retain(|p| p.id != id);
                    if s.active.as_deref() == Some(id.as_str()) {
                        s.active = None;
                    }
                    Ok(())
                })?;
                tracing::info!("profile {id} deleted");
                Ok(Reply::Done)
            }
            Request::MoveTo { axis, target } => {
                let i = self
                    .axis_index(&axis)
                    .ok_or_else(|| Error::NotFound(format!("no actuator {axis:?}")))?;
                if !target.is_finite() {
                    return Err(Error::InvalidArgs(format!("{target} is not a number")));
                }
                let ac = &self.cfg.axes[i];
                if target < ac.min || target > ac.max {
                    return Err(Error::OutOfRange(format!(
                        "{axis}: {target} is outside {}..{} {}",
                        fmt_num(ac.min),
                        fmt_num(ac.max),
                        ac.unit.as_str()
                    )));
                }
                if let Some(why) = self.interlock() {
                    return Err(Error::Interlocked(format!("cannot move now: {why}")));
                }
                self.start_motion(Reason::Manual, None, vec![(i, target)], now);
                Ok(Reply::Done)
            }
            Request::StopAxis { axis } => {
                let i = self
                    .axis_index(&axis)
                    .ok_or_else(|| Error::NotFound(format!("no actuator {axis:?}")))?;
                if self.commanded(i) {
                    self.halt(Outcome::Stopped, now);
                }
                Ok(Reply::Done)
            }
            Request::UpdateSignals(signals) => {
                let mut v = self.vehicle.clone();
                for (key, value) in signals {
                    apply_signal(&mut v, &key, value)?;
                }
                self.vehicle = v;
                if self.motion.is_some() {
                    if self.vehicle.manual_control {
                        tracing::info!("manual switch pressed during motion: the occupant wins");
                        self.halt(Outcome::Overridden, now);
                    } else if let Some(why) = self.interlock() {
                        tracing::warn!("interlock broken during motion ({why}): halting");
                        self.halt(Outcome::Interlocked, now);
                    }
                }
                Ok(Reply::Done)
            }
            Request::ReportRanges(readings) => {
                if readings.len() > MAX_READINGS {
                    return Err(Error::InvalidArgs(format!(
                        "at most {MAX_READINGS} readings in one call, not {}",
                        readings.len()
                    )));
                }
                let mut checked = Vec::with_capacity(readings.len());
                for (key, anchor, d) in readings {
                    store::check_key(&key).map_err(Error::InvalidArgs)?;
                    let Some(a) = self.keys.anchor_index(&anchor) else {
                        return Err(Error::InvalidArgs(format!("unknown anchor {anchor:?}")));
                    };
                    if !d.is_finite() || !(0.0..=MAX_DISTANCE_M).contains(&d) {
                        return Err(Error::InvalidArgs(format!(
                            "distance {d} of key {key:?} is not within 0..{MAX_DISTANCE_M} m"
                        )));
                    }
                    checked.push((key, a, d));
                }
                for (key, a, d) in checked {
                    // Only keys bound to a profile take part.
                    if self.store.key_owner(&key).is_some() {
                        self.keys.report(&key, a, d, now);
                    }
                }
                Ok(Reply::Done)
            }
        }
    }

    /// Re-evaluate the key selection and start a key-approach recall when it is due.
    fn key_step(&mut self, now: Millis, storage: &mut dyn Storage) {
        let v = &self.vehicle;
        self.keys
            .set_locked(v.driver_door_open || v.driver_seat_occupied);
        let store = &self.store;
        let unbound: Vec<String> = self
            .keys
            .tracked()
            .filter(|k| store.key_owner(k).is_none())
            .map(str::to_string)
            .collect();
        for k in unbound {
            self.keys.forget(&k);
        }
        if self.keys.update(now) {
            tracing::info!("nearest key: {:?}", self.keys.selected());
            self.key_recall_pending = self.keys.selected().is_some();
        }
        if !self.key_recall_pending {
            return;
        }
        let Some(profile) = self
            .keys
            .selected()
            .and_then(|k| self.store.key_owner(k))
            .cloned()
        else {
            self.key_recall_pending = false;
            return;
        };
        let v = &self.vehicle;
        let door_ok = self.cfg.keys.pre_adjust || v.driver_door_open;
        if !door_ok || v.driver_seat_occupied || v.doors_locked || self.interlock().is_some() {
            return;
        }
        self.key_recall_pending = false;
        let targets: Vec<(usize, f64)> = profile
            .positions
            .iter()
            .filter_map(|(axis, p)| self.axis_index(axis).map(|i| (i, *p)))
            .collect();
        let reached = targets.iter().all(|(i, p)| {
            let c = &self.cfg.axes[*i];
            (self.axes[*i].position - c.clamp(*p)).abs() <= c.tolerance
        });
        if self.store.active.as_deref() == Some(profile.id.as_str()) && reached {
            return;
        }
        let id = profile.id.clone();
        if let Err(e) = self.mutate(storage, |s| {
            s.active = Some(id.clone());
            Ok(())
        }) {
            tracing::error!("key approach: cannot make profile {id} active: {e}");
            return;
        }
        tracing::info!("key approach: recalling profile {id} {:?}", profile.name);
        self.start_motion(Reason::KeyApproach, Some(id), targets, now);
    }

    fn profile(&self, id: &str) -> Result<&Profile, Error> {
        self.store.get(id).ok_or_else(|| not_found(id))
    }

    /// Everything the D-Bus objects show, as of now.
    pub fn view(&self) -> View {
        let v = &self.vehicle;
        View {
            manager: ManagerView {
                active_profile: self
                    .store
                    .active
                    .as_deref()
                    .map(paths::profile_path)
                    .unwrap_or_else(|| paths::NONE.into()),
                profiles: self
                    .store
                    .profiles
                    .iter()
                    .map(|p| paths::profile_path(&p.id))
                    .collect(),
                actuators: self
                    .cfg
                    .axes
                    .iter()
                    .map(|a| paths::actuator_path(&a.name))
                    .collect(),
                state: if self.motion.is_some() {
                    "moving"
                } else {
                    "idle"
                },
                backend: self.backend.clone(),
                version: self.version.clone(),
            },
            vehicle: VehicleView {
                gear: v.gear.map(|g| format!("{g:?}")).unwrap_or_default(),
                speed_kmh: v.speed_kmh.unwrap_or(-1.0),
                driver_door_open: v.driver_door_open,
                driver_seat_occupied: v.driver_seat_occupied,
                driver_belt_buckled: v.driver_belt_buckled,
                brake_pressed: v.brake_pressed,
                rear_occupied: v.rear_occupied,
                manual_control: v.manual_control,
                doors_locked: v.doors_locked,
                nearest_key: self.keys.selected().unwrap_or_default().to_string(),
                interlock: self.interlock().unwrap_or_default(),
            },
            profiles: self
                .store
                .profiles
                .iter()
                .map(|p| {
                    (
                        p.id.clone(),
                        ProfileView {
                            id: p.id.clone(),
                            name: p.name.clone(),
                            keys: p.keys.clone(),
                            positions: p.positions.clone(),
                            easy_exit: p.easy_exit,
                        },
                    )
                })
                .collect(),
            actuators: self
                .cfg
                .axes
                .iter()
                .zip(&self.axes)
                .map(|(c, a)| {
                    (
                        c.name.clone(),
                        ActuatorView {
                            name: c.name.clone(),
                            unit: c.unit.as_str(),
                            min: c.min,
                            max: c.max,
                            vss: c.vss.clone(),
                            position: a.published,
                            target: a.target,
                            moving: a.moving,
                            fault: a.fault.clone(),
                        },
                    )
                })
                .collect(),
        }
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("no profile {id}"))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn fmt_num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    format!("{r}")
}

fn apply_signal(v: &mut Vehicle, key: &str, value: SignalValue) -> Result<(), Error> {
    let wrong =
        |want: &str| Error::InvalidArgs(format!("signal {key:?} takes a value of type {want}"));
    let boolean = |value: &SignalValue| match value {
        SignalValue::Bool(b) => Ok(*b),
        _ => Err(wrong("b")),
    };
    match key {
        "gear" => {
            let SignalValue::Str(s) = &value else {
                return Err(wrong("s"));
            };
            v.gear = Some(match s.as_str() {
                "P" => Gear::P,
                "R" => Gear::R,
                "N" => Gear::N,
                "D" => Gear::D,
                _ => {
                    return Err(Error::InvalidArgs(format!(
                        "gear {s:?} is not one of \"P\", \"R\", \"N\", \"D\""
                    )));
                }
            });
        }
        "speed_kmh" => {
            let SignalValue::F64(s) = value else {
                return Err(wrong("d"));
            };
            if !s.is_finite() || s < 0.0 {
                return Err(Error::InvalidArgs(format!(
                    "speed_kmh must be a finite number >= 0, not {s}"
                )));
            }
            v.speed_kmh = Some(s);
        }
        "driver_door_open" => v.driver_door_open = boolean(&value)?,
        "driver_seat_occupied" => v.driver_seat_occupied = boolean(&value)?,
        "driver_belt_buckled" => v.driver_belt_buckled = boolean(&value)?,
        "brake_pressed" => v.brake_pressed = boolean(&value)?,
        "rear_occupied" => v.rear_occupied = boolean(&value)?,
        "manual_control" => v.manual_control = boolean(&value)?,
        "doors_locked" => v.doors_locked = boolean(&value)?,
        _ => return Err(Error::InvalidArgs(format!("unknown signal {key:?}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
