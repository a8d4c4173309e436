//! The pure core of driverprofiled: it takes events (requests, vehicle signals, actuator
//! feedback, the passing of time) and produces effects (actuator commands, signals). No tokio,
//! no D-Bus, no clock of its own: time is handed in as milliseconds since start, so the core is
//! deterministic and testable with a fake clock.
//!
//! Persistence goes through the [`Storage`] trait, called *before* a change is committed in
//! memory: if saving fails, the request fails and nothing changes.

mod easy_exit;
pub mod keys;
mod motion;
pub mod plan;
pub mod store;
pub mod view;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use driverprofiled_api::path as paths;
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
    /// The car was parked: seat back, wheel up and in.
    EasyExit,
    /// The driver is in again after an easy exit.
    Restore,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Recall => "recall",
            Reason::Manual => "manual",
            Reason::KeyApproach => "key-approach",
            Reason::EasyExit => "easy-exit",
            Reason::Restore => "restore",
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
    /// An axis has run too long lately and must rest.
    DutyLimit(String),
    /// The change could not be stored; nothing was changed.
    Failed(String),
    /// An actuator's position is not known yet.
    NotReady(String),
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
        | Error::DutyLimit(m)
        | Error::Failed(m)
        | Error::NotReady(m)) = self;
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

    /// Keep the easy-exit state across restarts (best effort: a failure is logged).
    fn save_easy_exit(&mut self, _state: &EasyExitState) -> Result<(), String> {
        Ok(())
    }
}

/// Easy-exit state that must survive a restart (an OTA update restarts the daemon while the
/// car is parked, possibly retracted): without it the next driver would get no restore.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// While running: when the position last changed, and to what.
    progress_at: Millis,
    progress_pos: f64,
    duty: motion::Duty,
}

pub struct Core {
    cfg: Arc<Config>,
    store: Store,
    vehicle: Vehicle,
    axes: Vec<AxisState>,
    motion: Option<motion::Motion>,
    backend: String,
    version: String,
    effects: Vec<Effect>,
    keys: keys::Tracker,
    /// The selected key's profile still has to be recalled once conditions allow.
    key_recall_pending: bool,
    /// From an easy-exit retract until the restore.
    easy_exit_active: bool,
    /// The easy-exit trigger condition was seen false with the gear known: a transition into
    /// it may trigger (the first report after a restart may not).
    easy_exit_armed: bool,
    /// A retract was held back only by locked doors (cars often unlock just after P): it runs
    /// when they unlock, while the driver is still seated and the car still in P.
    easy_exit_pending: bool,
    /// Positions before the retract, restored when no profile is active.
    pre_retract: Vec<(usize, f64)>,
    /// The restore signal (brake or belt) was seen released since the retract: only a fresh
    /// press restores (the driver usually holds the brake while shifting into P).
    restore_primed: bool,
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
                duty: motion::Duty::default(),
            })
            .collect();
        Core {
            keys: keys::Tracker::new(cfg.keys.clone()),
            key_recall_pending: false,
            easy_exit_active: false,
            easy_exit_armed: false,
            easy_exit_pending: false,
            pre_retract: Vec::new(),
            restore_primed: false,
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

    /// Take up the easy-exit state kept from before a restart.
    pub fn resume_easy_exit(&mut self, state: EasyExitState) {
        self.easy_exit_active = state.active;
        self.pre_retract = state
            .pre_retract
            .iter()
            .filter_map(|(axis, v)| self.axis_index(axis).map(|i| (i, *v)))
            .collect();
        if state.active {
            tracing::info!("resuming: the car was left retracted; the restore is pending");
        }
    }

    fn easy_exit_state(&self) -> EasyExitState {
        EasyExitState {
            active: self.easy_exit_active,
            pre_retract: self
                .pre_retract
                .iter()
                .map(|&(i, v)| (self.cfg.axes[i].name.clone(), v))
                .collect(),
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

    /// Why the running motion runs, if one does.
    pub fn motion_reason(&self) -> Option<Reason> {
        self.motion.as_ref().map(|m| m.reason)
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
        if let Some(t) = self.motion_deadline() {
            at(t);
        }
        next
    }

    /// Let time pass: publish throttled positions, detect stalls, duty limits and the motion
    /// timeout, and let the key selection's dwell and expiry take effect.
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
        self.motion_tick(now);
        self.key_step(now, storage);
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
                let in_motion = self.in_motion(i);
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
                if self.in_motion(i) {
                    self.halt(Outcome::Fault, now);
                }
            }
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
        let easy_exit_before = (self.easy_exit_active, self.pre_retract.clone());
        let result = self.handle(req, now, storage);
        // Signals, ranges and key bindings all bear on the key selection.
        self.key_step(now, storage);
        if (self.easy_exit_active, &self.pre_retract) != (easy_exit_before.0, &easy_exit_before.1)
            && let Err(e) = storage.save_easy_exit(&self.easy_exit_state())
        {
            tracing::error!("could not save the easy-exit state: {e}");
        }
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
                if let Some(why) = self.interlock_for(Reason::Recall) {
                    return Err(Error::Interlocked(format!("cannot recall now: {why}")));
                }
                let targets = self.profile_targets(&profile);
                self.check_duty(&targets, now)?;
                self.mutate(storage, |s| {
                    s.active = Some(id.clone());
                    Ok(())
                })?;
                // An explicit recall ends any easy exit: the profile is what the driver wants.
                self.easy_exit_active = false;
                self.easy_exit_pending = false;
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
                    check_position(&self.cfg.axes[i], v)?;
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
                check_position(&self.cfg.axes[i], target)?;
                if let Some(why) = self.interlock_for(Reason::Manual) {
                    return Err(Error::Interlocked(format!("cannot move now: {why}")));
                }
                self.check_duty(&[(i, target)], now)?;
                self.start_motion(Reason::Manual, None, vec![(i, target)], now);
                Ok(Reply::Done)
            }
            Request::StopAxis { axis } => {
                let i = self
                    .axis_index(&axis)
                    .ok_or_else(|| Error::NotFound(format!("no actuator {axis:?}")))?;
                if self.in_motion(i) {
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
                if let Some(reason) = self.motion.as_ref().map(|m| m.reason) {
                    if self.vehicle.manual_control {
                        tracing::info!("manual switch pressed during motion: the occupant wins");
                        self.halt(Outcome::Overridden, now);
                    } else if let Some(why) = self.interlock_for(reason) {
                        tracing::warn!("interlock broken during motion ({why}): halting");
                        self.halt(Outcome::Interlocked, now);
                    }
                }
                self.easy_exit_step(now);
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
        if !door_ok || v.driver_seat_occupied || self.interlock_for(Reason::KeyApproach).is_some() {
            return;
        }
        self.key_recall_pending = false;
        let mut targets = self.profile_targets(&profile);
        if self.easy_exit_active {
            // The car is retracted: bring it to the profile's entry pose; the restore
            // completes it once the driver is in.
            targets = self.entry_pose(targets);
        }
        let targets = self.automatic_targets(targets, now);
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

    /// A profile's positions as (axis index, target), for the axes that exist.
    fn profile_targets(&self, profile: &Profile) -> Vec<(usize, f64)> {
        profile
            .positions
            .iter()
            .filter_map(|(axis, v)| self.axis_index(axis).map(|i| (i, *v)))
            .collect()
    }

    /// Refuse a requested motion if an axis that would have to move has run out of duty.
    fn check_duty(&self, targets: &[(usize, f64)], now: Millis) -> Result<(), Error> {
        for &(i, t) in targets {
            let ac = &self.cfg.axes[i];
            let moves = (self.axes[i].position - ac.clamp(t)).abs() > ac.tolerance;
            if moves && self.duty_exhausted(i, now) {
                return Err(Error::DutyLimit(format!(
                    "{} ran {} s within the last {} s and must rest",
                    ac.name,
                    self.duty_used(i, now) / 1000,
                    self.cfg.duty_window_ms / 1000
                )));
            }
        }
        Ok(())
    }

    /// For automatic motions: leave out faulted axes and axes out of duty.
    fn automatic_targets(&self, targets: Vec<(usize, f64)>, now: Millis) -> Vec<(usize, f64)> {
        targets
            .into_iter()
            .filter(|&(i, _)| {
                let skip = !self.axes[i].fault.is_empty() || self.duty_exhausted(i, now);
                if skip {
                    tracing::info!(
                        "{}: left out of an automatic motion (fault or duty limit)",
                        self.cfg.axes[i].name
                    );
                }
                !skip
            })
            .collect()
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
                easy_exit_active: self.easy_exit_active,
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

/// A position for axis `ac` must be a number within its range.
pub fn check_position(ac: &crate::config::AxisConfig, v: f64) -> Result<(), Error> {
    if !v.is_finite() {
        return Err(Error::InvalidArgs(format!(
            "{}: {v} is not a number",
            ac.name
        )));
    }
    if v < ac.min || v > ac.max {
        return Err(Error::OutOfRange(format!(
            "{}: {v} is outside {}..{} {}",
            ac.name,
            fmt_num(ac.min),
            fmt_num(ac.max),
            ac.unit.as_str()
        )));
    }
    Ok(())
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
