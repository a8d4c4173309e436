//! The mock backend: simulated motors for tests and for developers without a car.
//!
//! The [`sim::Sim`] runs on tokio: each moving axis reports its position every [`TICK`] and
//! once when it stops; nothing ticks while no axis moves. It starts with every axis at its
//! configured `initial` position and reports those at once, or after
//! `[backend.mock] positions_after_ms` to play a backend that must probe first (the speed
//! factor to start with is `[backend.mock] speed_factor`). Its D-Bus control interface
//! (`org.driverprofiled1.Mock`: speed factor, fault injection, a hand on the switch) is served
//! through the backend's [`Backend::serve`] hook, see [`dbus`].

pub mod dbus;
pub mod sim;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::sleep_until;

use super::{Backend, Driver, FeedbackSender, Started};
use crate::config::{AxisConfig, Config};
use crate::core::{BackendCommand, Feedback};
use crate::edge::access::Access;
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
    Stall { axis: String, stalled: bool },
    SetPosition { axis: String, position: f64 },
}

/// Handle to the running simulation; cheap to clone.
#[derive(Clone)]
pub struct Mock {
    tx: mpsc::UnboundedSender<Msg>,
    axes: Arc<[AxisConfig]>,
}

fn start(cfg: &Config, axes: &[AxisConfig], feedback: FeedbackSender) -> Result<Started, String> {
    let delay = Duration::from_millis(cfg.mock.positions_after_ms);
    let mut sim = Sim::new(axes);
    sim.set_speed_factor(cfg.mock.speed_factor);
    let positions: BTreeMap<String, f64> = if delay.is_zero() {
        sim.positions().map(|(a, p)| (a.to_string(), p)).collect()
    } else {
        // Known only later, as feedback.
        let later: Vec<Feedback> = sim
            .positions()
            .map(|(axis, position)| Feedback::Position {
                axis: axis.to_string(),
                position,
            })
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
    fn start(sim: Sim, axes: &[AxisConfig], feedback: FeedbackSender) -> Mock {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(sim, rx, feedback));
        Mock {
            tx,
            axes: axes.into(),
        }
    }

    fn send(&self, msg: Msg) {
        if self.tx.send(msg).is_err() {
            tracing::error!("mock backend is gone; message dropped");
        }
    }

    pub fn set_speed_factor(&self, factor: f64) {
        self.send(Msg::SpeedFactor(factor));
    }

    pub fn set_stall(&self, axis: &str, stalled: bool) {
        self.send(Msg::Stall {
            axis: axis.into(),
            stalled,
        });
    }

    /// As if the occupant moved the axis by hand.
    pub fn set_position(&self, axis: &str, position: f64) {
        self.send(Msg::SetPosition {
            axis: axis.into(),
            position,
        });
    }
}

impl Backend for Mock {
    fn name(&self) -> &'static str {
        DRIVER.name
    }

    fn command(&self, cmd: &BackendCommand) {
        self.send(Msg::Command(cmd.clone()));
    }

    fn serve<'a>(
        &self,
        b: zbus::connection::Builder<'a>,
        access: &Arc<Access>,
    ) -> zbus::connection::Builder<'a> {
        dbus::serve(self.clone(), self.axes.clone(), access.clone(), b)
    }
}

async fn run(mut sim: Sim, mut rx: mpsc::UnboundedReceiver<Msg>, fb: FeedbackSender) {
    let mut last = Instant::now();
    loop {
        let moving = sim.is_moving();
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
        let reports = match msg {
            None => {
                let dt = now.duration_since(last).as_secs_f64();
                last = now;
                sim.step(dt)
            }
            Some(Msg::Command(cmd)) => {
                if !moving {
                    last = now;
                }
                let since = now.duration_since(last).as_secs_f64();
                sim.command(&cmd, since).into_iter().collect()
            }
            Some(Msg::SpeedFactor(f)) => {
                sim.set_speed_factor(f);
                Vec::new()
            }
            Some(Msg::Stall { axis, stalled }) => {
                sim.set_stall(&axis, stalled);
                Vec::new()
            }
            Some(Msg::SetPosition { axis, position }) => {
                sim.set_position(&axis, position).into_iter().collect()
            }
        };
        for r in reports {
            let _ = fb.send(r);
        }
    }
}
