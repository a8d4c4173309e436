//! The engine: one task that owns the [`Core`], feeds it requests, backend feedback and time,
//! carries out its effects at the backends and hands what changed to the [`Edge`] (the D-Bus
//! edge in the daemon). See docs/design.md.
//!
//! Requests come over a channel of [`Call`]s (the D-Bus methods, the vehicle signals from the
//! KUKSA databroker: one order for all); the backends send feedback; a timer wakes the loop
//! only at the core's next deadline (never when idle). After every event the loop sends
//! actuator commands first, then has the edge publish the new view, then the motion signals,
//! then the reply: a client that gets a reply or a motion signal finds the properties up to
//! date.
//!
//! Fail-safe: the loop ends on [`Control::Shutdown`] (a signal), when the edge is closed (the
//! bus connection lost), or when a part of the engine fails; every way out stops every axis
//! at the backends first ([`Router::stop_all`]), then tells the clients if the edge is still
//! there, and [`Engine::run`] says how it ended ([`Ended`]). The loop also pets the systemd
//! watchdog (only when systemd asks for it: a stuck loop stops petting) and keeps `STATUS=`
//! current.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout};

use crate::backend::Router;
use crate::config::Config;
use crate::core::view::View;
use crate::core::{
    self, Core, Effect, Feedback, Millis, Outcome, ProfileId, Reason, Reply, Request, Storage,
};
use crate::names;
use crate::systemd::{self, Notifier};

/// A request for the engine, with where to send its result.
pub struct Call {
    pub request: Request,
    pub reply: oneshot::Sender<Result<Reply, core::Error>>,
}

/// The way requests reach the engine, and the end it reads them from.
pub fn calls() -> (mpsc::Sender<Call>, mpsc::Receiver<Call>) {
    mpsc::channel(64)
}

/// Where the engine shows what the core did: the D-Bus edge in the daemon.
pub trait Edge {
    /// Show `new` to the clients; `old` is what they were shown last.
    fn publish(&mut self, old: &View, new: &View) -> impl Future<Output = ()> + Send;
    /// A motion started (`profile`: the profile it moves to, if any).
    fn motion_started(
        &self,
        reason: Reason,
        profile: Option<ProfileId>,
    ) -> impl Future<Output = ()> + Send;
    /// A motion ended.
    fn motion_finished(&self, reason: Reason, outcome: Outcome) -> impl Future<Output = ()> + Send;
    /// Ends when the clients can no longer reach the daemon (the bus connection is lost):
    /// nothing reaches the core then (not gear, speed or the manual switch), so nothing may
    /// keep moving.
    fn closed(&self) -> impl Future<Output = ()> + Send + 'static;
    fn is_closed(&self) -> bool;
}

/// What the daemon is told from outside the edge (the signals, in `main`).
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

/// How long clients may hold up the exit while they are told that motion halted: an edge
/// that does not take the signals in time is given up on (the motors are stopped already).
const GOODBYE: Duration = Duration::from_millis(500);

pub struct Engine<E> {
    core: Core,
    storage: Box<dyn Storage + Send>,
    router: Router,
    edge: E,
    /// What the edge has been shown so far.
    shown: View,
    start: Instant,
    notifier: Notifier,
    /// The last `STATUS=` sent.
    status: String,
}

impl<E: Edge> Engine<E> {
    /// The engine for `core`, whose view `edge` shows already.
    pub fn new(core: Core, storage: Box<dyn Storage + Send>, router: Router, edge: E) -> Self {
        Engine {
            shown: core.view(),
            core,
            storage,
            router,
            edge,
            start: Instant::now(),
            notifier: Notifier::from_env(),
            status: String::new(),
        }
    }

    fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    /// Serve until told to stop by `control`, the edge is closed, or a part of the engine
    /// fails. Tells systemd the daemon is ready first (the edge serves everything by now).
    /// Before returning, every axis is stopped at the backends.
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
        let closed = self.edge.closed();
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
    /// tell the clients, if the edge is still there and takes it within [`GOODBYE`].
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
        // Where the backends say the axes stopped, for the last properties the edge shows.
        while let Ok(fb) = feedback.try_recv() {
            self.core.feedback(fb, now);
        }
        if let Some(reason) = self.core.motion_reason() {
            tracing::info!(reason = names::reason(reason).as_str(), "halting motion");
        }
        let _ = self.core.request(Request::Stop, now, self.storage.as_mut());
        if self.edge.is_closed() {
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
            Some(r) => format!("moving ({})", names::reason(r).as_str()),
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
            self.edge.publish(&self.shown, &view).await;
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
            match e {
                Effect::Backend(_) => {}
                Effect::MotionStarted { reason, profile } => {
                    tracing::info!(
                        reason = names::reason(reason).as_str(),
                        profile = profile.map(|p| p.to_string()).unwrap_or_default(),
                        "motion started"
                    );
                    self.edge.motion_started(reason, profile).await;
                }
                Effect::MotionFinished { reason, outcome } => {
                    tracing::info!(
                        reason = names::reason(reason).as_str(),
                        outcome = names::outcome(outcome).as_str(),
                        "motion finished"
                    );
                    self.edge.motion_finished(reason, outcome).await;
                }
            }
        }
    }
}
