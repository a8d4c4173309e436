//! The pure core of driverprofiled: it takes events (requests, vehicle signals, actuator
//! feedback, the passing of time) and produces effects (actuator commands, motion events). No
//! tokio, no D-Bus, no clock of its own: time is handed in as milliseconds since start, so the
//! core is deterministic and testable with a fake clock. It speaks in profile ids, axis
//! indices and typed values; names and paths of the bus exist only at the edge.
//!
//! [`Core`] dispatches; each part owns its state:
//! - [`store::Store`]: the profiles and the edits made to them;
//! - `axes::Axes`: positions (known once a backend reports them), targets, faults, duty;
//! - `motion::Motion`: the one engine every motion runs in, with its budget slots;
//! - `easy_exit::EasyExit`: trigger, restore and the pre-retract positions;
//! - `reverse::Reverse`: the mirrors tilted down in R, and when they return;
//! - [`keys::Tracker`]: nearest-key selection;
//! - [`Vehicle`]: the latest signals and the interlock they make;
//! - `inhibit::Inhibitors`: who keeps every actuator still, and why ([`Request::Inhibit`]).
//!
//! Persistence goes through the [`Storage`] trait, called *before* a change is committed in
//! memory: if saving fails, the request fails and nothing changes.

mod axes;
mod easy_exit;
pub mod inhibit;
pub mod keys;
pub mod locate;
mod motion;
pub mod plan;
mod reverse;
pub mod select;
pub mod store;
pub use store::ProfileId;
mod vehicle;
pub mod view;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::config::{AxisConfig, Config};
use axes::Axes;
use easy_exit::EasyExit;
pub use easy_exit::EasyExitState;
pub use inhibit::Inhibitor;
use inhibit::Inhibitors;
use motion::{Cx, Motion};
use reverse::Reverse;
pub use reverse::ReverseTiltState;
use store::{Profile, Store};
pub use vehicle::{Gear, Signal, Vehicle};
use view::{AxisView, View};

/// An actuator axis: its place in the config's `[[axis]]` list (the order the bus lists the
/// actuators in). Its name is for the edges and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AxisId(usize);

impl AxisId {
    pub const fn new(index: usize) -> AxisId {
        AxisId(index)
    }

    pub const fn index(self) -> usize {
        self.0
    }

    /// The axis `cfg` names `name`.
    pub fn of(cfg: &Config, name: &str) -> Option<AxisId> {
        cfg.axes.iter().position(|a| a.name == name).map(AxisId)
    }

    /// Every axis of `axes` (a config's list), with its id.
    pub fn all(axes: &[AxisConfig]) -> impl Iterator<Item = (AxisId, &AxisConfig)> {
        axes.iter().enumerate().map(|(i, a)| (AxisId(i), a))
    }
}

impl fmt::Display for AxisId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "axis #{}", self.0)
    }
}

/// Milliseconds on a monotonic clock (the edge uses time since start).
pub type Millis = u64;

/// Position changes of a moving axis are published at most this often.
pub const PUBLISH_INTERVAL_MS: Millis = 100;

/// Most readings accepted in one `ReportRanges` request.
pub const MAX_READINGS: usize = 256;
/// Farthest distance a reading may report, in metres.
pub const MAX_DISTANCE_M: f64 = 100.0;
/// The RSSI a reading may report, in dBm.
pub const RSSI_RANGE_DBM: std::ops::RangeInclusive<f64> = -127.0..=20.0;
/// Most characters of client input quoted back in an error message.
pub const QUOTE_MAX: usize = 64;

/// Why a motion runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A profile recalled on a client's request (`SelectProfile`).
    Recall,
    /// One axis moved to a target on a client's request (`Actuator.MoveTo`; "manual" on the
    /// bus).
    MoveTo,
    /// The selected key approached the driver's door.
    KeyApproach,
    /// The car was parked: seat back, wheel up and in.
    EasyExit,
    /// The driver is in again after an easy exit.
    Restore,
    /// The gear went into R: the mirrors of `[reverse_tilt]` tilt down (the one motion
    /// allowed outside P, and only for those axes).
    ReverseTilt,
    /// The gear has left R: the tilted mirrors go back to where they were.
    ReverseReturn,
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

/// How a motion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Stopped,
    Superseded,
    Interlocked,
    /// The occupant took over (manual switch or moving an axis by hand).
    Overridden,
    Fault,
    /// An inhibitor was taken ([`Request::Inhibit`]).
    Inhibited,
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
    /// Motion is inhibited: an inhibitor is held ([`Request::Inhibit`]).
    Inhibited(String),
    /// The config does not provide for this request (RSSI without `[keys.geometry]`).
    NotSupported(String),
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
        | Error::NotReady(m)
        | Error::Inhibited(m)
        | Error::NotSupported(m)) = self;
        m
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Client input quoted for a message: escaped (control and bidi characters as `\u{..}`), and at
/// most [`QUOTE_MAX`] characters of the escaped text are shown; longer input ends in `…` and its
/// length in bytes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(QUOTE_MAX) + 2);
    out.push('"');
    let mut shown = 0;
    for c in s.chars() {
        let esc = escape_char(c);
        let n = esc.chars().count();
        if shown + n > QUOTE_MAX {
            out.push_str(&format!("\"… ({} bytes)", s.len()));
            return out;
        }
        shown += n;
        out.push_str(&esc);
    }
    out.push('"');
    out
}

/// One character as [`quote`] shows it.
fn escape_char(c: char) -> String {
    // Bidi controls reorder the text around them; other format characters are invisible.
    let bidi = matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    let invisible =
        matches!(c, '\u{00ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}');
    if c.is_control() || bidi || invisible {
        match c {
            '\n' => "\\n".into(),
            '\r' => "\\r".into(),
            '\t' => "\\t".into(),
            _ => format!("\\u{{{:x}}}", c as u32),
        }
    } else {
        c.escape_debug().collect()
    }
}

/// A number the client sent, for a message: short whatever its size (`1e308`, not 309 digits).
pub fn quote_num(v: f64) -> String {
    let plain = format!("{v}");
    if plain.len() <= 16 {
        plain
    } else {
        format!("{v:e}")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    CreateProfile {
        name: String,
    },
    SelectProfile {
        id: ProfileId,
    },
    Stop,
    Rename {
        id: ProfileId,
        name: String,
    },
    SetPositions {
        id: ProfileId,
        positions: Vec<(AxisId, f64)>,
    },
    SaveCurrentPositions {
        id: ProfileId,
    },
    BindKey {
        id: ProfileId,
        key: String,
    },
    UnbindKey {
        id: ProfileId,
        key: String,
    },
    SetEasyExit {
        id: ProfileId,
        enabled: bool,
    },
    /// At the end of each drive, store the positions the driver left the axes at.
    SetAutoSave {
        id: ProfileId,
        enabled: bool,
    },
    /// Replace the profile's reverse positions (only `[reverse_tilt]` axes); empty: the
    /// configured offset for every axis.
    SetReverseTilt {
        id: ProfileId,
        positions: Vec<(AxisId, f64)>,
    },
    /// Whether the mirrors tilt down in reverse with this profile active.
    SetReverseTiltEnabled {
        id: ProfileId,
        enabled: bool,
    },
    Delete {
        id: ProfileId,
    },
    MoveTo {
        axis: AxisId,
        target: f64,
    },
    StopAxis {
        axis: AxisId,
    },
    /// Vehicle signals, applied all or nothing.
    UpdateSignals(Vec<Signal>),
    /// (key id, anchor, distance in metres) from the key-locator service.
    ReportRanges(Vec<(String, String, f64)>),
    /// (key id, anchor, RSSI in dBm) from a BLE key locator (needs `[keys.geometry]`).
    ReportRssi(Vec<(String, String, f64)>),
    /// Import a whole set of profiles, all or nothing, in one write.
    ImportProfiles {
        profiles: Vec<store::ImportItem>,
        mode: store::ImportMode,
        /// Check everything, change nothing.
        dry_run: bool,
    },
    /// Keep every actuator still until [`Request::Uninhibit`] with the id replied
    /// ([`Reply::Inhibitor`]). `uid` and `pid` are the caller's, as the bus reported them (pid
    /// 0 if it did not); they are shown, never checked.
    Inhibit {
        who: String,
        why: String,
        uid: u32,
        pid: u32,
    },
    /// The holder of inhibitor `id` let it go (the edge saw its descriptor closed).
    Uninhibit {
        id: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Done,
    /// The id of a newly created profile.
    Created(ProfileId),
    /// The ids of the imported profiles, in the order given (none on a dry run).
    Imported(Vec<ProfileId>),
    /// The id of a newly taken inhibitor.
    Inhibitor(u64),
}

/// What an actuator backend reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Feedback {
    /// The axis is at `position` (at start, while it moves and when it stops).
    Position { axis: AxisId, position: f64 },
    /// The occupant moved the axis by hand (a seat switch, as the backend saw it): the
    /// occupant wins. Not [`Signal::SeatSwitch`], the vehicle's "a switch is held" signal.
    HandMoved { axis: AxisId, position: f64 },
    /// The backend detected a fault on the axis (over-current, lost calibration, ...). It
    /// stays until the axis moves again.
    Fault { axis: AxisId, message: String },
    /// The backend no longer knows where the axis is (`why`: it lost its link to it, e.g. the
    /// KUKSA databroker). The core forgets the position, exactly as for an axis never
    /// reported (NaN on the bus, motions through it refused NotReady), halts a motion that
    /// involves it (outcome `fault`) and shows `why` as its fault: a *link* fault, cleared by
    /// the next position report (the link is back), unlike a [`Feedback::Fault`].
    PositionUnknown { axis: AxisId, why: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum BackendCommand {
    Move { axis: AxisId, target: f64 },
    Stop { axis: AxisId },
}

impl BackendCommand {
    pub fn axis(&self) -> AxisId {
        let (BackendCommand::Move { axis, .. } | BackendCommand::Stop { axis }) = self;
        *axis
    }
}

impl Feedback {
    pub fn axis(&self) -> AxisId {
        let (Feedback::Position { axis, .. }
        | Feedback::HandMoved { axis, .. }
        | Feedback::Fault { axis, .. }
        | Feedback::PositionUnknown { axis, .. }) = self;
        *axis
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Backend(BackendCommand),
    MotionStarted {
        reason: Reason,
        /// The profile id recalled (or active, for easy exit and restore).
        profile: Option<ProfileId>,
    },
    MotionFinished {
        reason: Reason,
        outcome: Outcome,
    },
}

/// Why a [`Storage`] could not save. The core only reports it; what it holds is the storage's
/// own error (the daemon's file storage gives a `persist::WriteError`, with the I/O error).
pub type SaveError = Box<dyn std::error::Error + Send + Sync>;

/// Where the store is made durable. Called before a change takes effect in memory.
pub trait Storage {
    fn save(&mut self, store: &Store) -> Result<(), SaveError>;

    /// Keep the easy-exit state across restarts (best effort: a failure is logged).
    fn save_easy_exit(&mut self, _state: &EasyExitState) -> Result<(), SaveError> {
        Ok(())
    }

    /// Keep the positions of tilted mirrors across restarts; a tilt runs only once saved.
    fn save_reverse_tilt(&mut self, _state: &ReverseTiltState) -> Result<(), SaveError> {
        Ok(())
    }
}

/// Storage that keeps nothing: for tests of the core.
#[derive(Debug, Default)]
pub struct NoStorage;

impl Storage for NoStorage {
    fn save(&mut self, _store: &Store) -> Result<(), SaveError> {
        Ok(())
    }
}

pub struct Core {
    cfg: Arc<Config>,
    store: Store,
    vehicle: Vehicle,
    axes: Axes,
    motion: Motion,
    easy_exit: EasyExit,
    reverse: Reverse,
    /// The reverse-tilt state last written (or loaded).
    reverse_saved: ReverseTiltState,
    keys: select::Selector,
    inhibitors: Inhibitors,
    /// The selected key's profile still has to be recalled once conditions allow.
    key_recall_pending: bool,
    /// Why state cannot be written, if it cannot (the last write failed, or the check at
    /// start did); cleared by the next write that succeeds.
    storage_error: Option<String>,
    /// Why the profile store may not be written at all (read-only, or not served), for as
    /// long as the daemon runs; profiles can still be recalled.
    store_frozen: Option<String>,
    /// What was done with the store at start ("" when loaded as found).
    store_status: String,
    backend: String,
    version: String,
    effects: Vec<Effect>,
}

impl Core {
    /// A core over `store` (already loaded and validated). `known` holds the positions the
    /// backends reported at start; other axes are not known until reported.
    /// `backend` is shown in `Manager.Backend`.
    pub fn new(
        cfg: Arc<Config>,
        store: Store,
        known: &BTreeMap<AxisId, f64>,
        backend: String,
        version: String,
    ) -> Core {
        Core {
            keys: select::Selector::new(cfg.keys.clone()),
            key_recall_pending: false,
            storage_error: None,
            store_frozen: None,
            store_status: String::new(),
            axes: Axes::new(cfg.clone(), known),
            motion: Motion::default(),
            easy_exit: EasyExit::default(),
            reverse: Reverse::default(),
            reverse_saved: ReverseTiltState::default(),
            inhibitors: Inhibitors::default(),
            cfg,
            store,
            vehicle: Vehicle::default(),
            backend,
            version,
            effects: Vec::new(),
        }
    }

    /// Take up the easy-exit state kept from before a restart.
    pub fn resume_easy_exit(&mut self, state: EasyExitState) {
        self.easy_exit.resume(state, &self.axes);
    }

    /// Take up the reverse-tilt state kept from before a restart (a mirror left tilted).
    pub fn resume_reverse_tilt(&mut self, state: ReverseTiltState) {
        self.reverse.resume(state, &self.axes);
        self.reverse_saved = self.reverse.state(&self.axes);
    }

    /// Report that state cannot be written (found by the edge's check at start).
    pub fn storage_failed(&mut self, why: String) {
        tracing::error!("{why}");
        self.storage_error = Some(why);
    }

    /// The profile store may not be written while the daemon runs, because `why`: every
    /// change to it fails with `Failed` (without trying), while recall works (the active
    /// profile is then kept in memory only). `Manager.StorageError` says why.
    pub fn freeze_store(&mut self, why: String) {
        self.store_frozen = Some(why);
    }

    /// What was done with the store at start (`Manager.StoreStatus`).
    pub fn set_store_status(&mut self, status: String) {
        self.store_status = status;
    }

    /// Take up a config read again (SIGHUP) and return the sections that changed. What fixes
    /// the daemon's shape cannot change while it runs — the axes (objects, backends,
    /// positions), a backend's own section, the key anchors (the readings are kept per
    /// anchor), the access roles (their groups are resolved at start) — and such a config is
    /// refused whole, with the reason, changing nothing.
    /// Profiles and a running motion are kept; should the new limits break the interlock of
    /// the running motion (say, a lower speed threshold), it halts as if a signal had broken
    /// it.
    pub fn reconfigure(
        &mut self,
        cfg: Arc<Config>,
        now: Millis,
    ) -> Result<Vec<&'static str>, String> {
        let old = &self.cfg;
        let restart = "apply it with a restart of driverprofiled";
        if cfg.axes != old.axes {
            return Err(format!("the [[axis]] list differs: {restart}"));
        }
        if cfg.mock != old.mock {
            return Err(format!("[backend.mock] differs: {restart}"));
        }
        if (cfg.vehicle_source, &cfg.kuksa) != (old.vehicle_source, &old.kuksa) {
            // The connection and subscriptions are made at start.
            return Err(format!("[vehicle] source or [kuksa] differs: {restart}"));
        }
        if cfg.access != old.access {
            // The edge resolves the groups once, at start.
            return Err(format!("[access] differs: {restart}"));
        }
        if (&cfg.keys.anchors, cfg.keys.driver_anchor)
            != (&old.keys.anchors, old.keys.driver_anchor)
        {
            return Err(format!("[keys] anchors differ: {restart}"));
        }
        if cfg.keys.geometry != old.keys.geometry {
            // The car's shape: `Vehicle.KeyGeometry` is constant while the daemon runs, and
            // whether RSSI is taken at all depends on it.
            return Err(format!("[keys.geometry] differs: {restart}"));
        }
        let changed: Vec<&'static str> = [
            (
                "profiles",
                (cfg.max_profiles, cfg.max_keys) != (old.max_profiles, old.max_keys),
            ),
            (
                "motion",
                (
                    cfg.speed_threshold_kmh,
                    cfg.motion_timeout_ms,
                    cfg.max_concurrent,
                    &cfg.groups,
                    cfg.duty_limit_ms,
                    cfg.duty_window_ms,
                ) != (
                    old.speed_threshold_kmh,
                    old.motion_timeout_ms,
                    old.max_concurrent,
                    &old.groups,
                    old.duty_limit_ms,
                    old.duty_window_ms,
                ),
            ),
            ("keys", cfg.keys != old.keys),
            ("easy_exit", cfg.easy_exit != old.easy_exit),
            ("reverse_tilt", cfg.reverse_tilt != old.reverse_tilt),
        ]
        .into_iter()
        .filter_map(|(section, differs)| differs.then_some(section))
        .collect();
        self.keys.set_config(cfg.keys.clone());
        self.axes.cfg = cfg.clone();
        self.cfg = cfg;
        if let Some(why) = self.motion.reason().and_then(|r| self.interlock_for(r)) {
            tracing::warn!("interlock broken under the new config ({why}): halting");
            self.halt(Outcome::Interlocked, now);
        }
        Ok(changed)
    }

    /// The selected (nearest) key, if any.
    pub fn nearest_key(&self) -> Option<&str> {
        self.keys.selected()
    }

    /// What the key locator says of `key` now (with `[keys.geometry]`, while it is present).
    pub fn key_estimate(&self, key: &str) -> Option<locate::Estimate> {
        self.keys.estimate(key)
    }

    /// The keys the selection is tracking now.
    pub fn tracked_keys(&self) -> Vec<String> {
        self.keys.tracked()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn vehicle(&self) -> &Vehicle {
        &self.vehicle
    }

    pub fn is_moving(&self) -> bool {
        self.motion.reason().is_some()
    }

    /// Why the running motion runs, if one does.
    pub fn motion_reason(&self) -> Option<Reason> {
        self.motion.reason()
    }

    /// How many motors the engine has running (for tests of the budget).
    pub fn running_motors(&self) -> usize {
        self.motion.running_motors()
    }

    /// The effects produced since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Why motion is not allowed right now, or `None` when it is.
    pub fn interlock(&self) -> Option<String> {
        self.vehicle.interlock(self.cfg.speed_threshold_kmh)
    }

    /// Why a motion for `reason` is not allowed now, or `None` when it is.
    pub fn interlock_for(&self, reason: Reason) -> Option<String> {
        let max = self.cfg.reverse_tilt.max_speed_kmh;
        match reason {
            Reason::ReverseTilt => self.vehicle.reverse_interlock(true, max),
            Reason::ReverseReturn => self.vehicle.reverse_interlock(false, max),
            _ => (self.vehicle).interlock_for(reason, self.cfg.speed_threshold_kmh),
        }
    }

    /// The engine and what it acts on.
    fn engine(&mut self) -> (&mut Motion, Cx<'_>) {
        (
            &mut self.motion,
            Cx {
                axes: &mut self.axes,
                fx: &mut self.effects,
            },
        )
    }

    /// Whether an inhibitor is held: then nothing moves (module [`inhibit`]).
    pub fn inhibited(&self) -> bool {
        self.inhibitors.is_held()
    }

    /// Ok when no inhibitor is held; else [`Error::Inhibited`] saying that `action` ("cannot
    /// recall now") is refused and who inhibits. For every request refused while inhibited.
    pub fn not_inhibited(&self, action: &str) -> Result<(), Error> {
        self.inhibitors.refuse(action)
    }

    /// The inhibitors held, oldest first.
    pub fn inhibitors(&self) -> &[Inhibitor] {
        self.inhibitors.list()
    }

    /// Every motion starts here. Callers check the inhibitors first (a request fails, an
    /// automatic trigger is dropped before it changes any state); this is the last guard.
    fn start_motion(
        &mut self,
        reason: Reason,
        profile: Option<ProfileId>,
        targets: Vec<(usize, f64)>,
        now: Millis,
    ) {
        if self.inhibited() {
            tracing::error!("motion ({reason:?}) not started: inhibited");
            return;
        }
        let reverse = matches!(reason, Reason::ReverseTilt | Reason::ReverseReturn);
        if !reverse {
            // Where this motion takes a tilted mirror, no return undoes it.
            for (i, _) in &targets {
                self.reverse.forget(*i);
            }
        }
        let (m, mut cx) = self.engine();
        m.start(&mut cx, reason, profile, targets, now);
    }

    fn halt(&mut self, outcome: Outcome, now: Millis) {
        let (m, mut cx) = self.engine();
        m.halt(&mut cx, outcome, now);
    }

    /// When [`Core::tick`] must next be called, if at all. `None` while nothing is in motion
    /// and nothing waits to be published: an idle daemon sets no timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        [
            self.axes.next_publish(),
            self.keys.next_deadline(),
            self.motion.deadline(&self.axes),
            self.reverse.deadline(self.motion.reason().is_some()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Let time pass: publish throttled positions, detect stalls, duty limits and the motion
    /// timeout, and let the key selection's dwell and expiry take effect.
    pub fn tick(&mut self, now: Millis, storage: &mut dyn Storage) {
        self.axes.publish_due(now);
        let (m, mut cx) = self.engine();
        m.tick(&mut cx, now);
        self.key_step(now, storage);
        let v = self.vehicle.clone();
        self.reverse_step(&v, now, storage);
    }

    /// Handle actuator feedback.
    pub fn feedback(&mut self, fb: Feedback, now: Millis) {
        let Some(i) = self.axes.index_of(fb.axis()) else {
            tracing::warn!("feedback for unknown {} ignored", fb.axis());
            return;
        };
        let axis = self.axes.config(i).name.clone();
        match fb {
            Feedback::Position { position, .. } => {
                if !position.is_finite() {
                    tracing::warn!("{axis}: backend reported a non-finite position; ignored");
                    return;
                }
                let (m, mut cx) = self.engine();
                m.position_update(&mut cx, i, position, now);
            }
            Feedback::HandMoved { position, .. } => {
                if !position.is_finite() {
                    return;
                }
                if let Some(why) = self.axes.reported(i, position) {
                    tracing::info!("{axis}: reported again, link fault cleared: {why}");
                }
                self.axes.publish(i, now);
                self.reverse
                    .hand_moved(i, self.vehicle.gear == Some(Gear::R));
                if self.motion.involves(i) {
                    tracing::info!("{axis} moved by hand during a motion: the occupant wins");
                    self.halt(Outcome::Overridden, now);
                }
            }
            Feedback::Fault { message, .. } => {
                tracing::warn!("{axis}: backend fault: {message}");
                self.axes.set_fault(i, message);
                if self.motion.involves(i) {
                    self.halt(Outcome::Fault, now);
                }
            }
            Feedback::PositionUnknown { why, .. } => {
                tracing::warn!("{axis}: position no longer known: {why}");
                if self.motion.involves(i) {
                    self.halt(Outcome::Fault, now);
                }
                self.axes.forget(i, why, now);
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
            if let Some(why) = &self.store_frozen {
                return Err(Error::Failed(format!("profiles cannot be changed: {why}")));
            }
            if let Err(e) = storage.save(&next) {
                let why = format!("could not save profiles: {e}");
                self.storage_failed(why.clone());
                return Err(Error::Failed(why));
            }
            self.storage_error = None;
            self.store = next;
        }
        Ok(out)
    }

    /// Every axis' current position, or `NotReady` naming one that is not known.
    fn current_positions(&self) -> Result<BTreeMap<String, f64>, Error> {
        self.axes.current_positions().map_err(|axis| {
            Error::NotReady(format!(
                "the position of {axis} is not known yet (its backend has not reported it)"
            ))
        })
    }

    /// Handle a client request. Effects are collected for [`Core::take_effects`].
    pub fn request(
        &mut self,
        req: Request,
        now: Millis,
        storage: &mut dyn Storage,
    ) -> Result<Reply, Error> {
        let before = self.vehicle.clone();
        let result = self.handle(req, now, storage);
        // Signals, ranges and key bindings all bear on the key selection.
        self.key_step(now, storage);
        // Signals, inhibitors and motions bear on the mirrors tilted for reversing.
        self.reverse_step(&before, now, storage);
        // The end of an easy exit (a retract saves its state before it starts).
        if self.easy_exit.unsaved() {
            match storage.save_easy_exit(&self.easy_exit.state(&self.axes)) {
                Ok(()) => self.easy_exit.mark_saved(),
                Err(e) => self.storage_failed(format!("could not save the easy-exit state: {e}")),
            }
        }
        result
    }

    fn handle(
        &mut self,
        req: Request,
        now: Millis,
        storage: &mut dyn Storage,
    ) -> Result<Reply, Error> {
        let max_keys = self.cfg.max_keys;
        let done = |r: Result<(), Error>| r.map(|()| Reply::Done);
        match req {
            Request::CreateProfile { name } => self.create_profile(name, storage),
            Request::SelectProfile { id } => done(self.select_profile(id, now, storage)),
            Request::Stop => {
                self.halt(Outcome::Stopped, now);
                Ok(Reply::Done)
            }
            Request::Rename { id, name } => done(self.mutate(storage, |s| s.rename(id, name))),
            Request::SetPositions { id, positions } => {
                done(self.set_positions(id, positions, storage))
            }
            Request::SaveCurrentPositions { id } => {
                self.profile(id)?;
                let positions = self.current_positions()?;
                done(self.mutate(storage, |s| s.replace_positions(id, positions)))
            }
            Request::BindKey { id, key } => {
                done(self.mutate(storage, |s| s.bind_key(id, key, max_keys)))
            }
            Request::UnbindKey { id, key } => {
                done(self.mutate(storage, |s| s.unbind_key(id, &key)))
            }
            Request::SetEasyExit { id, enabled } => {
                done(self.mutate(storage, |s| s.set_easy_exit(id, enabled)))
            }
            Request::SetAutoSave { id, enabled } => {
                done(self.mutate(storage, |s| s.set_auto_save(id, enabled)))
            }
            Request::SetReverseTilt { id, positions } => {
                done(self.set_reverse_tilt(id, positions, storage))
            }
            Request::SetReverseTiltEnabled { id, enabled } => {
                done(self.mutate(storage, |s| s.set_reverse_tilt_enabled(id, enabled)))
            }
            Request::Delete { id } => {
                self.mutate(storage, |s| s.delete(id))?;
                tracing::info!("profile {id} deleted");
                Ok(Reply::Done)
            }
            Request::MoveTo { axis, target } => done(self.move_to(axis, target, now)),
            Request::StopAxis { axis } => {
                let i = self.axis(axis)?;
                if self.motion.involves(i) {
                    self.halt(Outcome::Stopped, now);
                }
                Ok(Reply::Done)
            }
            Request::UpdateSignals(signals) => {
                self.update_signals(&signals, now, storage)?;
                Ok(Reply::Done)
            }
            Request::ReportRanges(readings) => {
                self.report_readings(readings, false, now)?;
                Ok(Reply::Done)
            }
            Request::ReportRssi(readings) => {
                self.report_readings(readings, true, now)?;
                Ok(Reply::Done)
            }
            Request::ImportProfiles {
                profiles,
                mode,
                dry_run,
            } => self.import_profiles(profiles, mode, dry_run, storage),
            Request::Inhibit { who, why, uid, pid } => self.inhibit(who, why, uid, pid, now),
            Request::Uninhibit { id } => {
                self.uninhibit(id);
                Ok(Reply::Done)
            }
        }
    }

    /// Take an inhibitor; a motion in progress halts at once (outcome `Inhibited`).
    fn inhibit(
        &mut self,
        who: String,
        why: String,
        uid: u32,
        pid: u32,
        now: Millis,
    ) -> Result<Reply, Error> {
        let id = self.inhibitors.take(who, why, uid, pid)?;
        if let Some(h) = self.inhibitors.list().last() {
            tracing::info!(
                who = h.who.as_str(),
                why = h.why.as_str(),
                uid,
                pid,
                "inhibitor taken by {:?} (uid {uid}, pid {pid}): {:?}; nothing moves until it ends",
                h.who,
                h.why
            );
        }
        if let Some(reason) = self.motion.reason() {
            tracing::info!("motion ({reason:?}) halted: inhibited");
            self.halt(Outcome::Inhibited, now);
        }
        Ok(Reply::Inhibitor(id))
    }

    /// End an inhibitor. Nothing that was refused or dropped while it was held is replayed.
    fn uninhibit(&mut self, id: u64) {
        let Some(h) = self.inhibitors.release(id) else {
            tracing::warn!("inhibitor {id} released twice");
            return;
        };
        let (uid, pid) = (h.uid, h.pid);
        let left = self.inhibitors.list().len();
        tracing::info!(
            who = h.who.as_str(),
            why = h.why.as_str(),
            uid,
            pid,
            "inhibitor released by {:?} (uid {uid}, pid {pid}): {:?}; {left} held",
            h.who,
            h.why
        );
    }

    fn import_profiles(
        &mut self,
        profiles: Vec<store::ImportItem>,
        mode: store::ImportMode,
        dry_run: bool,
        storage: &mut dyn Storage,
    ) -> Result<Reply, Error> {
        let cfg = self.cfg.clone();
        let (n, max_profiles, max_keys) = (profiles.len(), cfg.max_profiles, cfg.max_keys);
        let reverse: Vec<&str> = (cfg.reverse_tilt.axes.iter())
            .map(|&i| cfg.axes[i].name.as_str())
            .collect();
        let import =
            |s: &mut Store| s.import(profiles, mode, &cfg.axes, &reverse, max_profiles, max_keys);
        if dry_run {
            import(&mut self.store.clone())?;
            if let Some(why) = &self.store_frozen {
                // The import itself would fail so.
                return Err(Error::Failed(format!("profiles cannot be changed: {why}")));
            }
            return Ok(Reply::Imported(Vec::new()));
        }
        let ids = self.mutate(storage, import)?;
        tracing::info!("{n} profiles imported ({mode:?})");
        Ok(Reply::Imported(ids))
    }

    fn create_profile(&mut self, name: String, storage: &mut dyn Storage) -> Result<Reply, Error> {
        store::check_name(&name).map_err(Error::InvalidArgs)?;
        let positions = self.current_positions()?;
        let max = self.cfg.max_profiles;
        let id = self.mutate(storage, |s| s.create(name, positions, max))?;
        tracing::info!("profile {id} created");
        Ok(Reply::Created(id))
    }

    fn select_profile(
        &mut self,
        id: ProfileId,
        now: Millis,
        storage: &mut dyn Storage,
    ) -> Result<(), Error> {
        let profile = self.profile(id)?;
        let targets = self.profile_targets(profile);
        self.not_inhibited("cannot recall now")?;
        if let Some(why) = self.interlock_for(Reason::Recall) {
            return Err(Error::Interlocked(format!("cannot recall now: {why}")));
        }
        motion::admit(&self.axes, &targets, now)?;
        self.make_active(id, storage)?;
        self.easy_exit.end();
        self.start_motion(Reason::Recall, Some(id), targets, now);
        Ok(())
    }

    fn set_positions(
        &mut self,
        id: ProfileId,
        positions: Vec<(AxisId, f64)>,
        storage: &mut dyn Storage,
    ) -> Result<(), Error> {
        self.profile(id)?;
        let named = self.checked_positions(positions, false)?;
        self.mutate(storage, |s| s.set_positions(id, named))
    }

    fn set_reverse_tilt(
        &mut self,
        id: ProfileId,
        positions: Vec<(AxisId, f64)>,
        storage: &mut dyn Storage,
    ) -> Result<(), Error> {
        self.profile(id)?;
        let named = self.checked_positions(positions, true)?;
        self.mutate(storage, |s| {
            s.set_reverse_tilt(id, named.into_iter().collect())
        })?;
        if self.store.active == Some(id) {
            self.reverse.client_set();
        }
        Ok(())
    }

    /// Positions a client sent, by axis name, each within its axis' range (`reversing`: and
    /// of an axis that tilts in reverse); the first problem found is the error.
    fn checked_positions(
        &self,
        positions: Vec<(AxisId, f64)>,
        reversing: bool,
    ) -> Result<Vec<(String, f64)>, Error> {
        let mut named = Vec::with_capacity(positions.len());
        for (axis, v) in positions {
            let i = self.axis(axis)?;
            let cfg = self.axes.config(i);
            if reversing && !self.cfg.reverse_tilt.axes.contains(&i) {
                return Err(Error::InvalidArgs(format!(
                    "{} does not tilt in reverse (not in the config's [reverse_tilt] axes)",
                    cfg.name
                )));
            }
            check_position(cfg, v)?;
            named.push((cfg.name.clone(), v));
        }
        Ok(named)
    }

    fn move_to(&mut self, axis: AxisId, target: f64, now: Millis) -> Result<(), Error> {
        let i = self.axis(axis)?;
        check_position(self.axes.config(i), target)?;
        self.not_inhibited("cannot move now")?;
        if let Some(why) = self.interlock_for(Reason::MoveTo) {
            return Err(Error::Interlocked(format!("cannot move now: {why}")));
        }
        motion::admit(&self.axes, &[(i, target)], now)?;
        self.start_motion(Reason::MoveTo, None, vec![(i, target)], now);
        Ok(())
    }

    fn update_signals(
        &mut self,
        signals: &[Signal],
        now: Millis,
        storage: &mut dyn Storage,
    ) -> Result<(), Error> {
        let before = self.vehicle.clone();
        self.vehicle.apply(signals)?;
        if let Some(reason) = self.motion.reason() {
            if self.vehicle.seat_switch {
                tracing::info!("manual switch pressed during motion: the occupant wins");
                self.halt(Outcome::Overridden, now);
            } else if let Some(why) = self.interlock_for(reason) {
                tracing::warn!("interlock broken during motion ({why}): halting");
                self.halt(Outcome::Interlocked, now);
            }
        }
        if easy_exit::drive_ended(&before, &self.vehicle, &self.cfg) {
            // Before any retract: what the driver left the axes at.
            self.auto_save(storage);
        }
        if self
            .easy_exit
            .retract_due(&before, &self.vehicle, &self.cfg)
        {
            self.retract(now, storage);
        }
        if self.easy_exit.restore_due(&self.vehicle, &self.cfg) {
            self.restore(now);
        }
        Ok(())
    }

    /// Readings of a key locator: distances, or RSSI (`rssi`). All are checked before any is
    /// taken; each key's readings are one batch.
    fn report_readings(
        &mut self,
        readings: Vec<(String, String, f64)>,
        rssi: bool,
        now: Millis,
    ) -> Result<(), Error> {
        if rssi && !self.keys.has_geometry() {
            return Err(Error::NotSupported(
                "RSSI needs the car's geometry: the config has no [keys.geometry]".into(),
            ));
        }
        if readings.len() > MAX_READINGS {
            return Err(Error::InvalidArgs(format!(
                "at most {MAX_READINGS} readings in one call, not {}",
                readings.len()
            )));
        }
        let mut checked = Vec::with_capacity(readings.len());
        for (key, anchor, d) in readings {
            store::check_key(&key).map_err(Error::InvalidArgs)?;
            let Some(a) = self.cfg.keys.anchors.iter().position(|n| *n == anchor) else {
                return Err(Error::InvalidArgs(format!(
                    "unknown anchor {}",
                    quote(&anchor)
                )));
            };
            let reading = if rssi {
                if !d.is_finite() || !RSSI_RANGE_DBM.contains(&d) {
                    return Err(Error::InvalidArgs(format!(
                        "RSSI {} of key {} is not within {}..{} dBm",
                        quote_num(d),
                        quote(&key),
                        RSSI_RANGE_DBM.start(),
                        RSSI_RANGE_DBM.end()
                    )));
                }
                locate::Reading::Rssi(d)
            } else {
                if !d.is_finite() || !(0.0..=MAX_DISTANCE_M).contains(&d) {
                    return Err(Error::InvalidArgs(format!(
                        "distance {} of key {} is not within 0..{MAX_DISTANCE_M} m",
                        quote_num(d),
                        quote(&key)
                    )));
                }
                locate::Reading::Range(d)
            };
            checked.push((key, a, reading));
        }
        // One batch per key, in the order the keys came.
        let mut batches: Vec<(String, Vec<(usize, locate::Reading)>)> = Vec::new();
        for (key, a, r) in checked {
            // Only keys bound to a profile take part.
            if self.store.key_owner(&key).is_none() {
                continue;
            }
            match batches.iter_mut().find(|(k, _)| *k == key) {
                Some((_, b)) => b.push((a, r)),
                None => batches.push((key, vec![(a, r)])),
            }
        }
        for (key, batch) in batches {
            self.keys.report(&key, &batch, now);
        }
        Ok(())
    }

    /// Easy exit's retract, when its trigger fired. Its state is saved first: a retract that
    /// could not be restored after a restart does not start.
    fn retract(&mut self, now: Millis, storage: &mut dyn Storage) {
        if self.inhibited() {
            // Dropped, not deferred: no retract once the inhibitor ends.
            tracing::info!("easy exit: not now (inhibited)");
            self.easy_exit.drop_pending();
            return;
        }
        let active = self.store.active;
        let enabled = match active.and_then(|id| self.store.get(id)) {
            Some(p) => p.easy_exit,
            None => self.cfg.easy_exit.enabled,
        };
        let Some(targets) = self
            .easy_exit
            .plan_retract(&self.vehicle, &self.axes, enabled)
        else {
            return;
        };
        let targets = motion::automatic_targets(&self.axes, targets, now);
        let state = self.easy_exit.state_after_retract(&targets, &self.axes);
        if let Err(e) = storage.save_easy_exit(&state) {
            self.storage_failed(format!(
                "easy exit did not run: its restore could not be saved ({e})"
            ));
            return;
        }
        self.storage_error = None;
        self.easy_exit
            .retracting(&targets, &self.vehicle, &self.axes);
        self.start_motion(Reason::EasyExit, active, targets, now);
    }

    /// Reverse tilt-down after an event (`before`: the signals before it): tilt in R, return
    /// once out of it, and keep on disk what is tilted.
    fn reverse_step(&mut self, before: &Vehicle, now: Millis, storage: &mut dyn Storage) {
        let running = self.motion.reason().is_some();
        let profile = self.store.active.and_then(|id| self.store.get(id));
        let (v, cfg, axes) = (&self.vehicle, &self.cfg, &self.axes);
        let step = (self.reverse).step(before, v, cfg, axes, profile, running, now);
        self.remember_reverse_tilt(storage);
        match step {
            reverse::Step::Nothing | reverse::Step::Untilted => {}
            reverse::Step::Tilt(targets) => {
                let refused = if self.inhibited() {
                    Some("inhibited".to_string())
                } else {
                    self.interlock_for(Reason::ReverseTilt)
                };
                if let Some(why) = refused {
                    tracing::info!("reverse tilt: not now ({why})");
                    self.reverse.tilt_refused();
                    return;
                }
                // Where the mirrors were, on disk before they move.
                let state = self.reverse.state(&self.axes);
                if let Err(e) = storage.save_reverse_tilt(&state) {
                    self.storage_failed(format!(
                        "could not save the reverse-tilt state: {e}; the mirrors do not tilt"
                    ));
                    self.reverse.tilt_refused();
                    return;
                }
                self.reverse_saved = state;
                let targets = motion::automatic_targets(&self.axes, targets, now);
                let active = self.store.active;
                self.start_motion(Reason::ReverseTilt, active, targets, now);
            }
            reverse::Step::Return(targets) => {
                let refused = if self.inhibited() {
                    Some("inhibited".to_string())
                } else {
                    self.interlock_for(Reason::ReverseReturn)
                };
                if let Some(why) = refused {
                    tracing::info!("reverse return: not now ({why})");
                    self.reverse.return_refused();
                    return;
                }
                let targets = motion::automatic_targets(&self.axes, targets, now);
                let active = self.store.active;
                self.start_motion(Reason::ReverseReturn, active, targets, now);
                if self.motion.reason().is_none() {
                    // Nothing to move (already there, or faulted): the return is over.
                    let v = self.vehicle.clone();
                    (self.reverse).step(&v, &v, &self.cfg, &self.axes, None, false, now);
                }
            }
        }
        let state = self.reverse.state(&self.axes);
        if state != self.reverse_saved {
            match storage.save_reverse_tilt(&state) {
                Ok(()) => self.reverse_saved = state,
                Err(e) => {
                    self.storage_failed(format!("could not save the reverse-tilt state: {e}"))
                }
            }
        }
    }

    /// The occupant adjusted a tilted mirror by hand in R and has left R: the active profile
    /// keeps where it was left as its reverse position, in one write, before the return.
    fn remember_reverse_tilt(&mut self, storage: &mut dyn Storage) {
        let remembered = self.reverse.take_remembered();
        let Some(id) = self.store.active else {
            return;
        };
        if remembered.is_empty() {
            return;
        }
        let named: Vec<(String, f64)> = (remembered.into_iter())
            .map(|(i, at)| {
                let ac = self.axes.config(i);
                (ac.name.clone(), ac.clamp(at))
            })
            .collect();
        let axes: Vec<&str> = named.iter().map(|(a, _)| a.as_str()).collect();
        let axes = axes.join(", ");
        match self.mutate(storage, |s| s.remember_reverse_tilt(id, named)) {
            Ok(()) => tracing::info!("reverse tilt: profile {id} keeps {axes} as set by hand"),
            Err(e) => tracing::warn!("reverse tilt: profile {id} could not keep {axes}: {e}"),
        }
    }

    /// The end of a drive: the active profile, if its AutoSave is on, keeps the positions the
    /// driver left the axes at: those known and not faulted that differ from the stored ones
    /// by more than the axis' tolerance, in one write. Nothing is written when none differs.
    fn auto_save(&mut self, storage: &mut dyn Storage) {
        if self.easy_exit.is_active() {
            // Still retracted (a retract halted by a quick shift out of P, or an unbuckle
            // again in P): these positions are the retract's, not the driver's.
            return;
        }
        let Some(p) = self.store.active.and_then(|id| self.store.get(id)) else {
            return;
        };
        if !p.auto_save {
            return;
        }
        let id = p.id;
        let changed: Vec<(String, f64)> = (self.cfg.axes.iter().enumerate())
            .filter_map(|(i, ac)| {
                let a = self.axes.get(i);
                let at = a.position.filter(|_| a.fault.is_none())?;
                // A mirror tilted for reversing: where the driver had it.
                let at = self.reverse.pre_tilt(i).unwrap_or(at);
                let same = p
                    .positions
                    .get(&ac.name)
                    .is_some_and(|s| (s - at).abs() <= ac.tolerance);
                (!same).then(|| (ac.name.clone(), ac.clamp(at)))
            })
            .collect();
        if changed.is_empty() {
            return;
        }
        let axes: Vec<&str> = changed.iter().map(|(a, _)| a.as_str()).collect();
        let axes = axes.join(", ");
        match self.mutate(storage, |s| s.set_positions(id, changed)) {
            Ok(()) => tracing::info!("auto-save: profile {id} keeps {axes}"),
            Err(e) => tracing::warn!("auto-save: profile {id} not saved: {e}"),
        }
    }

    /// The restore after an easy exit, when its signal came.
    fn restore(&mut self, now: Millis) {
        if let Some(why) = self.interlock_for(Reason::Restore) {
            tracing::info!("restore: not now ({why})");
            return;
        }
        if self.inhibited() {
            // Still retracted; a fresh press restores once the inhibitor has ended.
            tracing::info!("restore: not now (inhibited)");
            self.easy_exit.restore_refused();
            return;
        }
        let active = self.store.active;
        let pre_retract = self.easy_exit.restoring();
        // Only the axes the retract moved come back: the rest (the mirrors, an axis the
        // driver adjusted on the way) stays where the driver left it.
        // The profile's position of each, or where it was before when the profile has none.
        let profile = active.and_then(|id| self.store.get(id));
        let wanted = profile.map(|p| self.profile_targets(p)).unwrap_or_default();
        let targets = (pre_retract.into_iter())
            .map(|(i, before)| {
                let t = wanted
                    .iter()
                    .find(|(w, _)| *w == i)
                    .map_or(before, |(_, t)| *t);
                (i, t)
            })
            .collect();
        let targets = motion::automatic_targets(&self.axes, targets, now);
        self.start_motion(Reason::Restore, active, targets, now);
    }

    /// Re-evaluate the key selection and start a key-approach recall when it is due.
    fn key_step(&mut self, now: Millis, storage: &mut dyn Storage) {
        let v = &self.vehicle;
        self.keys
            .set_vehicle(v.driver_door_open, v.driver_seat_occupied, now);
        let store = &self.store;
        let unbound: Vec<String> = (self.keys.tracked().into_iter())
            .filter(|k| store.key_owner(k).is_none())
            .collect();
        for k in unbound {
            self.keys.forget(&k);
        }
        if self.keys.update(now) {
            tracing::info!("nearest key: {:?}", self.keys.selected());
            self.key_recall_pending = self.keys.selected().is_some();
            if self.keys.selected().is_none() && self.motion.reason() == Some(Reason::KeyApproach) {
                // The key walked away before anyone opened the door (a passenger who turned
                // to the car's corner): its profile is not wanted, so the seat goes no
                // farther toward it.
                tracing::info!("key approach: the key was released; recall stopped");
                self.halt(Outcome::Stopped, now);
            }
        }
        self.keys.publish(now);
        if !self.key_recall_pending {
            return;
        }
        let Some(profile) = self.keys.selected().and_then(|k| self.store.key_owner(k)) else {
            self.key_recall_pending = false;
            return;
        };
        if self.inhibited() {
            // Dropped, not deferred: no recall out of the blue once the inhibitor ends.
            tracing::info!(
                "key approach: profile {} not recalled (inhibited)",
                profile.id
            );
            self.key_recall_pending = false;
            return;
        }
        let v = &self.vehicle;
        let door_ok = self.cfg.keys.pre_adjust || v.driver_door_open;
        if !door_ok || v.driver_seat_occupied || self.interlock_for(Reason::KeyApproach).is_some() {
            return;
        }
        self.key_recall_pending = false;
        let id = profile.id;
        let mut targets = self.profile_targets(profile);
        if self.easy_exit.is_active() {
            // The car is retracted: bring it to the profile's entry pose; the restore
            // completes it once the driver is in.
            targets = self.easy_exit.entry_pose(v, &self.axes, targets);
        }
        let targets = motion::automatic_targets(&self.axes, targets, now);
        let reached = targets.iter().all(|&(i, p)| self.axes.at(i, p));
        if self.store.active == Some(id) && reached {
            return;
        }
        if let Err(e) = self.make_active(id, storage) {
            tracing::error!("key approach: cannot make profile {id} active: {e}");
            return;
        }
        tracing::info!("key approach: recalling profile {id}");
        self.start_motion(Reason::KeyApproach, Some(id), targets, now);
    }

    /// Make `id` the active profile: saved, or, while the store may not be written, kept in
    /// memory only (a read-only store's profiles can still be recalled).
    fn make_active(&mut self, id: ProfileId, storage: &mut dyn Storage) -> Result<(), Error> {
        if self.store_frozen.is_some() {
            return self.store.set_active(id);
        }
        self.mutate(storage, |s| s.set_active(id))
    }

    /// A profile's positions as (axis index, target), for the axes that exist.
    fn profile_targets(&self, profile: &Profile) -> Vec<(usize, f64)> {
        profile
            .positions
            .iter()
            .filter_map(|(axis, v)| self.axes.index(axis).map(|i| (i, *v)))
            .collect()
    }

    fn profile(&self, id: ProfileId) -> Result<&Profile, Error> {
        self.store.get(id).ok_or_else(|| store::not_found(id))
    }

    fn axis(&self, id: AxisId) -> Result<usize, Error> {
        self.axes
            .index_of(id)
            .ok_or_else(|| Error::NotFound(format!("no actuator {id}")))
    }

    /// Everything the bus shows, as of now.
    pub fn view(&self) -> View {
        View {
            active_profile: self.store.active,
            profiles: self.store.profiles.clone(),
            axes: self
                .axes
                .iter()
                .map(|(_, a)| AxisView {
                    position: a.published,
                    target: a.target,
                    moving: a.moving,
                    fault: a.fault.as_ref().map(|f| f.message().to_string()),
                })
                .collect(),
            moving: self.is_moving(),
            easy_exit_active: self.easy_exit.is_active(),
            backend: self.backend.clone(),
            version: self.version.clone(),
            vehicle: self.vehicle.clone(),
            nearest_key: self.keys.selected().map(str::to_string),
            key_estimates: self.keys.estimates(),
            interlock: self.interlock(),
            storage_error: match (&self.store_frozen, &self.storage_error) {
                (Some(f), Some(e)) if !e.contains(f.as_str()) => Some(format!("{f}; {e}")),
                (f, e) => f.clone().or_else(|| e.clone()),
            },
            store_status: self.store_status.clone(),
            inhibitors: self.inhibitors.list().to_vec(),
        }
    }
}

/// A position for axis `ac` must be a number within its range.
pub fn check_position(ac: &AxisConfig, v: f64) -> Result<(), Error> {
    if !v.is_finite() {
        return Err(Error::InvalidArgs(format!(
            "{}: {} is not a number",
            ac.name,
            quote_num(v)
        )));
    }
    if v < ac.min || v > ac.max {
        return Err(Error::OutOfRange(format!(
            "{}: {} is outside {}..{} {}",
            ac.name,
            quote_num(v),
            fmt_num(ac.min),
            fmt_num(ac.max),
            ac.unit.as_str()
        )));
    }
    Ok(())
}

fn fmt_num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    format!("{r}")
}

#[cfg(test)]
mod tests;
