//! The D-Bus edge: exports the objects, and runs the engine loop that owns the core.
//!
//! One task owns the [`Core`]. Interface objects send it requests over a channel; the backend
//! sends it feedback; a timer wakes it only at the core's next deadline (never when idle).
//! After every event the loop sends actuator commands first, then publishes the new view
//! (objects added/removed, `PropertiesChanged`), then motion signals, then the method reply:
//! a client that gets a reply or a motion signal finds the properties already up to date.
//!
//! Fail-safe: the loop ends on [`Control::Shutdown`] (a signal), when the bus connection is
//! lost, or when a part of the engine fails; every way out stops every axis at the backends
//! first ([`Router::stop_all`]), then tells the clients if the bus is still there, and
//! [`Engine::run`] says how it ended ([`Ended`]). The loop also pets the systemd watchdog
//! (only when systemd asks for it: a stuck loop stops petting) and keeps `STATUS=` current.

pub mod access;
pub mod error;
pub mod ifaces;
pub mod inhibit;
pub mod objects;
pub mod props;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use driverprofiled_api::{BUS_NAME, interface, path as paths};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout};
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, ObjectPath, Variant, connection};

use crate::backend::Router;
use crate::config::Config;
use crate::core::view::View;
use crate::core::{Core, Effect, Feedback, Millis, Request, Storage};
use crate::systemd::{self, Notifier};
use access::Access;
use ifaces::{Actuator, Call, Manager, Profile, Shared, Vehicle};
use props::{PropValue, Props, changed};

/// Which bus to serve on.
#[derive(Debug, Clone, PartialEq)]
pub enum Bus {
    System,
    Session,
    Address(String),
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::System => f.write_str("system bus"),
            Bus::Session => f.write_str("session bus"),
            Bus::Address(a) => write!(f, "bus at {a}"),
        }
    }
}

/// What the daemon is told from outside the bus (the signals, in `main`).
#[derive(Debug)]
pub enum Control {
    /// Halt motion and end the loop; the process exits with `code` (0 for SIGTERM/SIGINT).
    Shutdown { why: String, code: u8 },
    /// The config as read again (SIGHUP): apply it, or log why not and keep the running one.
    /// An unreadable or invalid file is its `file:line:col: message`.
    Reload(Result<Arc<Config>, String>),
}

/// How the engine loop ended. Whichever it was, every axis was stopped at the backends.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// As asked ([`Control::Shutdown`]): exit with this status.
    Shutdown(u8),
    /// The bus connection is lost, or a part of the engine failed: exit non-zero, so that
    /// systemd restarts the daemon.
    Fault(String),
}

/// How long clients may hold up the exit while they are told that motion halted: a bus
/// that does not take the signals in time is given up on (the motors are stopped already).
const GOODBYE: Duration = Duration::from_millis(500);

pub struct Engine {
    core: Core,
    storage: Box<dyn Storage + Send>,
    router: Router,
    conn: Connection,
    shared: Shared,
    /// What the bus has been told so far.
    shown: View,
    /// Ids of deleted profiles whose objects still answer NotFound, oldest first.
    tombstones: VecDeque<String>,
    start: Instant,
    notifier: Notifier,
    /// The last `STATUS=` sent.
    status: String,
}

/// Connect, export every object (the backends' own too) and take the bus name. Fails if the
/// bus is unreachable or the name is owned already.
pub async fn connect(
    bus: &Bus,
    cfg: Arc<Config>,
    core: Core,
    storage: Box<dyn Storage + Send>,
    router: Router,
) -> zbus::Result<(Engine, mpsc::Receiver<Call>)> {
    let (calls_tx, calls_rx) = mpsc::channel(64);
    let view = core.view();
    let access = Arc::new(Access::new(&cfg.access));
    let shared = Shared {
        calls: calls_tx,
        view: Arc::new(RwLock::new(view.clone())),
        cfg: cfg.clone(),
        access: access.clone(),
    };
    let mut b = match bus {
        Bus::System => connection::Builder::system(),
        Bus::Session => connection::Builder::session(),
        Bus::Address(a) => connection::Builder::address(a.as_str()),
    };
    b = b
        .serve_at(
            paths::ROOT,
            objects::ObjectManager {
                shared: shared.clone(),
            },
        )
        .serve_at(
            paths::ROOT,
            Manager {
                shared: shared.clone(),
            },
        )
        .serve_at(
            paths::ROOT,
            Vehicle {
                shared: shared.clone(),
            },
        );
    b = router.serve(b, &access);
    for (index, a) in cfg.axes.iter().enumerate() {
        b = b.serve_at(
            paths::actuator_path(&a.name),
            Actuator {
                index,
                shared: shared.clone(),
            },
        );
    }
    // Live profiles, and tombstones for the most recently deleted ids (also after a
    // restart: a client may hold a path from before it).
    let next_id = core.store().next_id;
    let tombstones: VecDeque<String> = (next_id
        .saturating_sub(objects::TOMBSTONES_AT_START as u64)
        .max(1)..next_id)
        .map(|n| n.to_string())
        .filter(|id| view.profile(id).is_none())
        .collect();
    for id in view.profiles.iter().map(|p| &p.id).chain(&tombstones) {
        b = b.serve_at(
            paths::profile_path(id),
            Profile {
                id: id.clone(),
                shared: shared.clone(),
            },
        );
    }
    // zbus requests names with ALLOW_REPLACEMENT | REPLACE_EXISTING by default: a second
    // instance would silently take the name (and the motors) from the first. Neither.
    let conn = b
        .name(BUS_NAME)
        .allow_name_replacements(false)
        .replace_existing_names(false)
        .build()
        .await?;
    access.watch(&conn).await?;
    Ok((
        Engine {
            core,
            storage,
            router,
            conn,
            shared,
            shown: view,
            tombstones,
            start: Instant::now(),
            notifier: Notifier::from_env(),
            status: String::new(),
        },
        calls_rx,
    ))
}

impl Engine {
    /// A way to the core for a part of the daemon that is not on the bus (the vehicle signals
    /// from the KUKSA databroker): the channel D-Bus calls take, so its requests are applied in
    /// the same order and the same way.
    pub fn requests(&self) -> mpsc::Sender<Call> {
        self.shared.calls.clone()
    }

    fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    /// Serve until told to stop by `control`, the bus connection is lost, or a part of the
    /// engine fails. Tells systemd the daemon is ready first (the name is owned and every
    /// object exported by now). Before returning, every axis is stopped at the backends.
    pub async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        mut feedback: mpsc::UnboundedReceiver<Feedback>,
        mut control: impl Stream<Item = Control> + Unpin,
    ) -> Ended {
        self.status = self.status_line();
        self.notifier.ready(&self.status);
        let watchdog = systemd::watchdog_interval();
        if let Some(every) = watchdog {
            tracing::info!("petting the systemd watchdog every {every:?}");
            self.notifier.watchdog();
        }
        let mut pet_at = watchdog.map(|every| Instant::now() + every);
        // zbus ends this future when the connection closes: the bus daemon died or dropped
        // us, or the socket failed (EOF, EPIPE). Nothing reaches the daemon any more then
        // (not gear, speed or the manual switch), so nothing may keep moving.
        let conn = self.conn.clone();
        let closed = conn.closed();
        tokio::pin!(closed);
        let ended = loop {
            let deadline = self
                .core
                .next_deadline()
                .map(|ms| self.start + Duration::from_millis(ms));
            tokio::select! {
                biased;
                _ = &mut closed => break Ended::Fault("the bus connection is lost".into()),
                _ = async { if let Some(t) = pet_at { sleep_until(t.into()).await } }, if pet_at.is_some() => {
                    // Petted from the loop itself: a loop that no longer turns stops petting,
                    // and systemd kills and restarts the daemon.
                    self.notifier.watchdog();
                    pet_at = watchdog.map(|every| Instant::now() + every);
                }
                c = control.next() => match c {
                    Some(Control::Shutdown { why, code }) => {
                        tracing::info!("{why}: shutting down");
                        break Ended::Shutdown(code);
                    }
                    Some(Control::Reload(cfg)) => self.reload(cfg).await,
                    None => break Ended::Fault("signal handling ended".into()),
                },
                fb = feedback.recv() => match fb {
                    Some(fb) => {
                        let now = self.now();
                        self.core.feedback(fb, now);
                        self.flush().await;
                    }
                    None => break Ended::Fault("every backend is gone (feedback closed)".into()),
                },
                call = calls.recv() => match call {
                    Some(call) => {
                        let now = self.now();
                        let result = self.core.request(call.request, now, self.storage.as_mut());
                        self.flush().await;
                        // The caller may have gone away; nothing to do then.
                        let _ = call.reply.send(result);
                    }
                    None => break Ended::Fault("the request channel closed".into()),
                },
                _ = async { if let Some(d) = deadline { sleep_until(d.into()).await } }, if deadline.is_some() => {
                    let now = self.now();
                    self.core.tick(now, self.storage.as_mut());
                    self.flush().await;
                }
            }
        };
        self.finish(&ended, &mut feedback).await;
        ended
    }

    /// Stop every axis at the backends before anything else, then halt the core's motion and
    /// tell the clients, if the bus is still there and takes it within [`GOODBYE`].
    async fn finish(&mut self, ended: &Ended, feedback: &mut mpsc::UnboundedReceiver<Feedback>) {
        let why = match ended {
            Ended::Shutdown(_) => "shutting down".to_string(),
            Ended::Fault(why) => why.clone(),
        };
        self.router.stop_all(&why);
        self.notifier.stopping(&why);
        if let Ended::Fault(why) = ended {
            tracing::error!("{why}: every axis stopped; exiting");
        }
        let now = self.now();
        // Where the backends say the axes stopped, for the last properties the bus shows.
        while let Ok(fb) = feedback.try_recv() {
            self.core.feedback(fb, now);
        }
        if let Some(reason) = self.core.motion_reason() {
            tracing::info!(reason = props::reason(reason).as_str(), "halting motion");
        }
        let _ = self.core.request(Request::Stop, now, self.storage.as_mut());
        if self.conn.is_closed() {
            self.core.take_effects();
            return;
        }
        if timeout(GOODBYE, self.flush()).await.is_err() {
            tracing::warn!("the bus did not take the last signals in time");
        }
    }

    /// Apply a config read again (SIGHUP), or log why not; the running one stays then.
    async fn reload(&mut self, cfg: Result<Arc<Config>, String>) {
        self.notifier.reloading();
        match cfg {
            Err(e) => tracing::error!("config not reloaded, keeping the running one: {e}"),
            Ok(cfg) => {
                let now = self.now();
                match self.core.reconfigure(cfg, now) {
                    Ok(changed) if changed.is_empty() => {
                        tracing::info!("config reloaded: nothing changed")
                    }
                    Ok(changed) => {
                        tracing::info!("config reloaded: {} changed", changed.join(", "))
                    }
                    Err(e) => {
                        tracing::error!("config reload refused, keeping the running one: {e}")
                    }
                }
                self.flush().await;
            }
        }
        self.notifier.ready(&self.status);
    }

    /// `STATUS=` for systemd: what the daemon is doing.
    fn status_line(&self) -> String {
        let state = match self.core.motion_reason() {
            Some(r) => format!("moving ({})", props::reason(r).as_str()),
            None => "idle".into(),
        };
        match self.shown.storage_error.as_deref() {
            Some(why) => format!("{state}; storage not writable: {why}"),
            None => state,
        }
    }

    /// Carry out the core's effects and publish what changed.
    async fn flush(&mut self) {
        let effects = self.core.take_effects();
        for e in &effects {
            if let Effect::Backend(cmd) = e {
                self.router.command(cmd);
            }
        }
        let view = self.core.view();
        if view != self.shown {
            *self.shared.view.write().unwrap_or_else(|e| e.into_inner()) = view.clone();
            self.publish(&view).await;
            self.shown = view;
        }
        if self.notifier.enabled() {
            let status = self.status_line();
            if status != self.status {
                self.notifier.status(&status);
                self.status = status;
            }
        }
        for e in effects {
            let r = match e {
                Effect::Backend(_) => continue,
                Effect::MotionStarted { reason, profile } => {
                    tracing::info!(
                        reason = props::reason(reason).as_str(),
                        profile = profile.as_deref().unwrap_or(""),
                        "motion started"
                    );
                    let p = props::profile_path_or_none(profile.as_deref());
                    match self.emitter(paths::ROOT) {
                        Ok(em) => {
                            Manager::motion_started(
                                &em,
                                props::reason(reason).as_str(),
                                ObjectPath::from_string_unchecked(p),
                            )
                            .await
                        }
                        Err(e) => Err(e),
                    }
                }
                Effect::MotionFinished { reason, outcome } => {
                    tracing::info!(
                        reason = props::reason(reason).as_str(),
                        outcome = props::outcome(outcome).as_str(),
                        "motion finished"
                    );
                    match self.emitter(paths::ROOT) {
                        Ok(em) => {
                            Manager::motion_finished(
                                &em,
                                props::reason(reason).as_str(),
                                props::outcome(outcome).as_str(),
                            )
                            .await
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = r {
                tracing::warn!("could not emit a motion signal: {e}");
            }
        }
    }

    fn emitter(&self, path: &str) -> zbus::Result<SignalEmitter<'static>> {
        SignalEmitter::new(&self.conn, path.to_string())
    }

    async fn publish(&mut self, view: &View) {
        let server = self.conn.object_server();
        for p in &view.profiles {
            if self.shown.profile(&p.id).is_none() {
                let obj = Profile {
                    id: p.id.clone(),
                    shared: self.shared.clone(),
                };
                if let Err(e) = server.at(paths::profile_path(&p.id), obj).await {
                    tracing::error!("could not export profile {}: {e}", p.id);
                }
            }
        }
        let cfg = self.shared.cfg.clone();
        self.emit_changed(
            paths::ROOT,
            interface::MANAGER,
            &props::manager(&self.shown, &cfg),
            props::manager(view, &cfg),
        )
        .await;
        self.emit_changed(
            paths::ROOT,
            interface::VEHICLE,
            &props::vehicle(&self.shown),
            props::vehicle(view),
        )
        .await;
        for p in &view.profiles {
            if let Some(old) = self.shown.profile(&p.id) {
                self.emit_changed(
                    &paths::profile_path(&p.id),
                    interface::PROFILE,
                    &props::profile(old),
                    props::profile(p),
                )
                .await;
            }
        }
        // Axes that stop first, then the rest: a client replaying the signals never sees more
        // motors moving than ever ran at once.
        let pairs: Vec<_> = self.shown.axes.iter().zip(&view.axes).enumerate().collect();
        let (first, rest): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(_, (old, new))| old.moving && !new.moving);
        for (i, (old, new)) in first.into_iter().chain(rest) {
            self.emit_changed(
                &paths::actuator_path(&cfg.axes[i].name),
                interface::ACTUATOR,
                &props::actuator(old),
                props::actuator(new),
            )
            .await;
        }
        let deleted: Vec<String> = self
            .shown
            .profiles
            .iter()
            .filter(|p| view.profile(&p.id).is_none())
            .map(|p| p.id.clone())
            .collect();
        for id in deleted {
            // The object stays as a tombstone that answers NotFound; for clients it is gone.
            let path = paths::profile_path(&id);
            let r = match self.emitter(paths::ROOT) {
                Ok(em) => {
                    objects::ObjectManager::interfaces_removed(
                        &em,
                        ObjectPath::from_string_unchecked(path),
                        Cow::Borrowed(&[InterfaceName::from_static_str_unchecked(
                            interface::PROFILE,
                        )]),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::warn!("could not emit InterfacesRemoved for profile {id}: {e}");
            }
            self.tombstones.push_back(id);
        }
        while self.tombstones.len() > objects::MAX_TOMBSTONES {
            let Some(id) = self.tombstones.pop_front() else {
                break;
            };
            if let Err(e) = server.remove::<Profile, _>(paths::profile_path(&id)).await {
                tracing::error!("could not unexport profile {id}: {e}");
            }
        }
    }

    async fn emit_changed(&self, path: &str, iface: &'static str, old: &Props, new: Props) {
        let diff = changed(old, new);
        if diff.is_empty() {
            return;
        }
        let values: HashMap<&str, Variant<'_>> = diff
            .iter()
            .map(|(name, v)| (*name, to_variant(v)))
            .collect();
        let r = match self.emitter(path) {
            Ok(em) => {
                zbus::fdo::Properties::properties_changed(
                    &em,
                    InterfaceName::from_static_str_unchecked(iface),
                    values,
                    Cow::Borrowed(&[]),
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            tracing::warn!("could not emit PropertiesChanged on {path}: {e}");
        }
    }
}

fn to_variant(v: &PropValue) -> Variant<'static> {
    match v {
        PropValue::Str(s) => Variant::from(s.clone()),
        PropValue::Bool(b) => Variant::from(*b),
        PropValue::F64(d) => Variant::from(*d),
        PropValue::Path(p) => Variant::from(ObjectPath::from_string_unchecked(p.clone())),
        PropValue::Paths(ps) => Variant::from(
            ps.iter()
                .map(|p| ObjectPath::from_string_unchecked(p.clone()))
                .collect::<Vec<_>>(),
        ),
        PropValue::Strs(ss) => Variant::from(ss.clone()),
        PropValue::Map(m) => Variant::from(m.iter().cloned().collect::<HashMap<String, f64>>()),
        PropValue::Inhibitors(list) => Variant::from(list.clone()),
        PropValue::KeyEstimates(list) => Variant::from(list.clone()),
    }
}
