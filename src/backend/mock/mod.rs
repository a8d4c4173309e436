//! The mock backend: simulated motors for tests and for developers without a car.
//!
//! The [`sim::Sim`] runs on tokio: each moving axis reports its position every [`TICK`] and
//! once when it stops; nothing ticks while no axis moves. It starts with every axis at its
//! configured `initial` position and reports those at once, or after
//! `[backend.mock] positions_after_ms` to play a backend that must probe first (the speed
//! factor to start with is `[backend.mock] speed_factor`). Its controls (speed factor, fault
//! injection, a hand on the switch) are [`Mock`]'s methods; the edge serves them on the bus as
//! `org.driverprofiled1.Mock` ([`Backend::mock`]).

pub mod sim;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::sleep_until;

use super::{Backend, BackendAxis, Driver, FeedbackSender, StartError, StartFuture, Started};
use crate::config::Config;
use crate::core::{AxisId, BackendCommand, Feedback};
use sim::Sim;

/// How often a moving simulated axis reports its position.
pub const TICK: Duration = Duration::from_millis(40);

pub const DRIVER: Driver = Driver {
    name: "mock",
    start,
};

#[derive(Debug)]
enum Msg {
    Command(BackendCommand),
    SpeedFactor(f64),
    Stall { axis: AxisId, stalled: bool },
    SetPosition { axis: AxisId, position: f64 },
}

/// Handle to the running simulation; cheap to clone.
#[derive(Clone)]
pub struct Mock {
    tx: mpsc::UnboundedSender<Msg>,
    axes: Arc<[BackendAxis]>,
    /// The simulation, shared with the task that runs it so that [`Backend::stop_all`] can
    /// halt it at once, without a message and without awaiting (also from a panic hook).
    state: Arc<Mutex<State>>,
    feedback: FeedbackSender,
}

/// The simulation and when it last moved. Locked briefly, never across an `.await`.
struct State {
    sim: Sim,
    last: Instant,
}

/// The simulation needs no probing: it starts at once.
fn start<'a>(
    cfg: &'a Config,
    axes: &'a [BackendAxis],
    feedback: FeedbackSender,
) -> StartFuture<'a> {
    Box::pin(std::future::ready(start_now(cfg, axes, feedback)))
}

fn start_now(
    cfg: &Config,
    axes: &[BackendAxis],
    feedback: FeedbackSender,
) -> Result<Started, StartError> {
    let delay = Duration::from_millis(cfg.mock.positions_after_ms);
    let mut sim = Sim::new(axes.iter().map(|(id, a)| (*id, a)));
    sim.set_speed_factor(cfg.mock.speed_factor);
    let positions: BTreeMap<AxisId, f64> = if delay.is_zero() {
        sim.positions().collect()
    } else {
        // Known only later, as feedback.
        let later: Vec<Feedback> = sim
            .positions()
            .map(|(axis, position)| Feedback::Position { axis, position })
            .collect();
        let fb = feedback.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            for f in later {
                let _ = fb.send(f);
            }
        });
        BTreeMap::new()
    };
    Ok(Started {
        backend: Arc::new(Mock::start(sim, axes, feedback)),
        positions,
    })
}

impl Mock {
    /// Run `sim` on the current tokio runtime.
    fn start(sim: Sim, axes: &[BackendAxis], feedback: FeedbackSender) -> Mock {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(State {
            sim,
            last: Instant::now(),
        }));
        tokio::spawn(run(state.clone(), rx, feedback.clone()));
        Mock {
            tx,
            axes: axes.into(),
            state,
            feedback,
        }
    }

    /// The simulated axes.
    pub fn axes(&self) -> &[BackendAxis] {
        &self.axes
    }

    /// The name of axis `id`, for the log.
    fn name(&self, id: AxisId) -> &str {
        self.axes
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("?", |(_, a)| a.name.as_str())
    }

    fn send(&self, msg: Msg) {
        if self.tx.send(msg).is_err() {
            tracing::error!("mock backend is gone; message dropped");
        }
    }

    pub fn set_speed_factor(&self, factor: f64) {
        self.send(Msg::SpeedFactor(factor));
    }

    pub fn set_stall(&self, axis: AxisId, stalled: bool) {
        self.send(Msg::Stall { axis, stalled });
    }

    /// As if the occupant moved the axis by hand.
    pub fn set_position(&self, axis: AxisId, position: f64) {
        self.send(Msg::SetPosition { axis, position });
    }
}

impl Backend for Mock {
    fn name(&self) -> &'static str {
        DRIVER.name
    }

    fn command(&self, cmd: &BackendCommand) {
        self.send(Msg::Command(cmd.clone()));
    }

    /// Stops every simulated axis now, and says so on the log (one line per axis, with the
    /// `axis` field): the tests watch for it.
    fn stop_all(&self) {
        // `try_lock`: a panic hook may call this while the panicking code holds the lock (on
        // this very thread); waiting would never end. Poisoned is fine: `State` is plain data.
        let mut state = match self.state.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                tracing::error!("mock: the simulation is locked; it ends with the process");
                return;
            }
        };
        let since = state.last.elapsed().as_secs_f64();
        let stopped = state.sim.stop_all(since);
        drop(state);
        if stopped.is_empty() {
            tracing::info!("mock: stop all: no axis was moving");
        }
        for fb in stopped {
            if let Feedback::Position { axis, position } = &fb {
                let name = self.name(*axis);
                tracing::warn!(axis = %name, position, "mock: axis stopped (stop all)");
            }
            let _ = self.feedback.send(fb);
        }
    }

    fn mock(&self) -> Option<Mock> {
        Some(self.clone())
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run(state: Arc<Mutex<State>>, mut rx: mpsc::UnboundedReceiver<Msg>, fb: FeedbackSender) {
    loop {
        let (moving, last) = {
            let s = lock(&state);
            (s.sim.is_moving(), s.last)
        };
        let msg = if moving {
            tokio::select! {
                m = rx.recv() => m.map(Some),
                _ = sleep_until((last + TICK).into()) => Some(None),
            }
        } else {
            rx.recv().await.map(Some)
        };
        let Some(msg) = msg else { return };
        let now = Instant::now();
        let reports = lock(&state).handle(msg, now);
        for r in reports {
            let _ = fb.send(r);
        }
    }
}

impl State {
    /// A message, or a tick (`None`), at `now`.
    fn handle(&mut self, msg: Option<Msg>, now: Instant) -> Vec<Feedback> {
        let sim = &mut self.sim;
        match msg {
            None => {
                let dt = now.duration_since(self.last).as_secs_f64();
                self.last = now;
                sim.step(dt)
            }
            Some(Msg::Command(cmd)) => {
                if !sim.is_moving() {
                    self.last = now;
                }
                let since = now.duration_since(self.last).as_secs_f64();
                sim.command(&cmd, since).into_iter().collect()
            }
            Some(Msg::SpeedFactor(f)) => {
                sim.set_speed_factor(f);
                Vec::new()
            }
            Some(Msg::Stall { axis, stalled }) => {
                sim.set_stall(axis, stalled);
                Vec::new()
            }
            Some(Msg::SetPosition { axis, position }) => {
                sim.set_position(axis, position).into_iter().collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    /// `stop_all` halts the simulation itself, synchronously: no message, no task turn.
    #[tokio::test(flavor = "current_thread")]
    async fn stop_all_halts_the_simulation_at_once() {
        let cfg = config::builtin().unwrap();
        let (fb_tx, mut fb_rx) = mpsc::unbounded_channel();
        let axes: Vec<BackendAxis> = AxisId::all(&cfg.axes)
            .map(|(id, a)| (id, a.clone()))
            .collect();
        let mock = Mock::start(Sim::new(AxisId::all(&cfg.axes)), &axes, fb_tx);
        let seat = &cfg.axes[0];
        mock.command(&BackendCommand::Move {
            axis: AxisId::new(0),
            target: seat.max,
        });
        // The first report on the way says it runs.
        let Some(Feedback::Position { position, .. }) = fb_rx.recv().await else {
            panic!("no report from the moving seat");
        };
        assert!(position > seat.initial);
        mock.stop_all();
        // Stopped before anything else ran: the state says so right away.
        assert!(!lock(&mock.state).sim.is_moving());
        let Some(Feedback::Position { position: at, .. }) = fb_rx.recv().await else {
            panic!("no report of where the seat stopped");
        };
        assert!(at >= position && at < seat.max, "{at}");
        // And nothing moves afterwards: over three ticks no report comes.
        let quiet = tokio::time::timeout(TICK * 3, fb_rx.recv()).await;
        assert!(quiet.is_err(), "the seat kept moving: {quiet:?}");
    }
}
