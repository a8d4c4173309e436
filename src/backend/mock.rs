//! The mock backend: simulated motors for tests and for developers without a car.
//!
//! Each axis moves from its position toward its target at its configured speed times the
//! speed factor, reporting its position every [`TICK`] while it moves and once when it stops.
//! Nothing ticks while no axis moves. Faults can be injected (`stall`: the axis stops moving
//! while commanded) and the occupant's hand simulated (`set_position`).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::sleep_until;

use super::{Backend, FeedbackSender};
use crate::config::AxisConfig;
use crate::core::{BackendCommand, Feedback};

/// How often a moving simulated axis reports its position.
pub const TICK: Duration = Duration::from_millis(40);

#[derive(Debug)]
enum Msg {
    Command(BackendCommand),
    SpeedFactor(f64),
    Stall { axis: String, stalled: bool },
    SetPosition { axis: String, position: f64 },
}

struct SimAxis {
    name: String,
    min: f64,
    max: f64,
    speed: f64,
    position: f64,
    target: Option<f64>,
    stalled: bool,
}

/// Handle to the running simulation; cheap to clone.
#[derive(Clone)]
pub struct Mock {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Mock {
    /// Start the simulation on the current tokio runtime.
    pub fn start(axes: &[AxisConfig], feedback: FeedbackSender) -> Mock {
        let (tx, rx) = mpsc::unbounded_channel();
        let sim = axes
            .iter()
            .map(|a| SimAxis {
                name: a.name.clone(),
                min: a.min,
                max: a.max,
                speed: a.speed,
                position: a.initial,
                target: None,
                stalled: false,
            })
            .collect();
        tokio::spawn(run(sim, rx, feedback));
        Mock { tx }
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
        "mock"
    }

    fn command(&self, cmd: &BackendCommand) {
        self.send(Msg::Command(cmd.clone()));
    }
}

async fn run(mut axes: Vec<SimAxis>, mut rx: mpsc::UnboundedReceiver<Msg>, fb: FeedbackSender) {
    let mut factor = 1.0;
    let mut last = Instant::now();
    loop {
        let moving = axes.iter().any(|a| a.target.is_some());
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
        match msg {
            None => {
                let dt = now.duration_since(last).as_secs_f64();
                last = now;
                for a in axes.iter_mut() {
                    step(a, dt * factor, &fb);
                }
            }
            Some(Msg::Command(BackendCommand::Move { axis, target })) => {
                if !moving {
                    last = now;
                }
                if let Some(a) = axes.iter_mut().find(|a| a.name == axis) {
                    a.target = Some(target.clamp(a.min, a.max));
                }
            }
            Some(Msg::Command(BackendCommand::Stop { axis })) => {
                if let Some(a) = axes.iter_mut().find(|a| a.name == axis) {
                    if moving {
                        // Account for the travel since the last tick before stopping.
                        let dt = now.duration_since(last).as_secs_f64();
                        step_partial(a, dt * factor);
                    }
                    a.target = None;
                    report(&fb, a);
                }
            }
            Some(Msg::SpeedFactor(f)) => factor = f,
            Some(Msg::Stall { axis, stalled }) => {
                if let Some(a) = axes.iter_mut().find(|a| a.name == axis) {
                    a.stalled = stalled;
                }
            }
            Some(Msg::SetPosition { axis, position }) => {
                if let Some(a) = axes.iter_mut().find(|a| a.name == axis) {
                    a.position = position.clamp(a.min, a.max);
                    a.target = None;
                    let _ = fb.send(Feedback::Manual {
                        axis: a.name.clone(),
                        position: a.position,
                    });
                }
            }
        }
    }
}

/// Move `a` for `sim_secs` of simulated time without reporting.
fn step_partial(a: &mut SimAxis, sim_secs: f64) {
    let Some(target) = a.target else { return };
    if a.stalled {
        return;
    }
    let max_step = a.speed * sim_secs;
    let d = target - a.position;
    a.position = if d.abs() <= max_step {
        target
    } else {
        a.position + max_step.copysign(d)
    };
}

fn step(a: &mut SimAxis, sim_secs: f64, fb: &FeedbackSender) {
    let Some(target) = a.target else { return };
    if a.stalled {
        return;
    }
    step_partial(a, sim_secs);
    if a.position == target {
        a.target = None;
    }
    report(fb, a);
}

fn report(fb: &FeedbackSender, a: &SimAxis) {
    let _ = fb.send(Feedback::Position {
        axis: a.name.clone(),
        position: a.position,
    });
}
