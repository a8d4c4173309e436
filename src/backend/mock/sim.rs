//! The actuator simulator: axes that move toward their targets at their configured speeds
//! (times a speed factor), can be stalled, and can be moved by hand. Pure: time is handed in.
//! The mock backend runs it on tokio; the core's tests and the selection benchmark run it on a
//! fake clock, so that there is one model of a motor, not three.

use crate::config::AxisConfig;
use crate::core::{AxisId, BackendCommand, Feedback};

#[derive(Debug, Clone)]
struct SimAxis {
    id: AxisId,
    min: f64,
    max: f64,
    speed: f64,
    position: f64,
    target: Option<f64>,
    stalled: bool,
}

#[derive(Debug, Clone)]
pub struct Sim {
    axes: Vec<SimAxis>,
    factor: f64,
}

impl Sim {
    /// Every axis at its configured `initial` position (e.g. `AxisId::all(&cfg.axes)`).
    pub fn new<'a>(axes: impl IntoIterator<Item = (AxisId, &'a AxisConfig)>) -> Sim {
        Sim {
            axes: axes
                .into_iter()
                .map(|(id, a)| SimAxis {
                    id,
                    min: a.min,
                    max: a.max,
                    speed: a.speed,
                    position: a.initial,
                    target: None,
                    stalled: false,
                })
                .collect(),
            factor: 1.0,
        }
    }

    fn axis_mut(&mut self, id: AxisId) -> Option<&mut SimAxis> {
        self.axes.iter_mut().find(|a| a.id == id)
    }

    /// Every axis' position, as reported at start.
    pub fn positions(&self) -> impl Iterator<Item = (AxisId, f64)> {
        self.axes.iter().map(|a| (a.id, a.position))
    }

    pub fn position(&self, axis: AxisId) -> Option<f64> {
        self.axes.iter().find(|a| a.id == axis).map(|a| a.position)
    }

    /// Whether `axis` is commanded to move (it has a target it has not reached).
    pub fn is_commanded(&self, axis: AxisId) -> bool {
        self.axes.iter().any(|a| a.id == axis && a.target.is_some())
    }

    /// How many axes are commanded to move.
    pub fn running(&self) -> usize {
        self.axes.iter().filter(|a| a.target.is_some()).count()
    }

    pub fn is_moving(&self) -> bool {
        self.running() > 0
    }

    /// Carry out a command. A stop first accounts for `since_step` seconds of travel of that
    /// axis since the last [`Sim::step`], and reports where it stopped.
    pub fn command(&mut self, cmd: &BackendCommand, since_step: f64) -> Option<Feedback> {
        let factor = self.factor;
        match cmd {
            BackendCommand::Move { axis, target } => {
                let a = self.axis_mut(*axis)?;
                a.target = Some(target.clamp(a.min, a.max));
                None
            }
            BackendCommand::Stop { axis } => {
                let a = self.axis_mut(*axis)?;
                advance(a, since_step * factor);
                a.target = None;
                Some(report(a))
            }
        }
    }

    /// Stop every commanded axis at once, first accounting for `since_step` seconds of travel
    /// since the last [`Sim::step`]; report where each one stopped.
    pub fn stop_all(&mut self, since_step: f64) -> Vec<Feedback> {
        let dt = since_step * self.factor;
        self.axes
            .iter_mut()
            .filter(|a| a.target.is_some())
            .map(|a| {
                advance(a, dt);
                a.target = None;
                report(a)
            })
            .collect()
    }

    /// Let `secs` pass: move every commanded axis and report each one that moved or arrived.
    pub fn step(&mut self, secs: f64) -> Vec<Feedback> {
        let dt = secs * self.factor;
        let mut out = Vec::new();
        for a in self.axes.iter_mut() {
            let Some(target) = a.target else { continue };
            if a.stalled {
                continue;
            }
            advance(a, dt);
            if a.position == target {
                a.target = None;
            }
            out.push(report(a));
        }
        out
    }

    /// Run `factor` times faster than the configured speeds.
    pub fn set_speed_factor(&mut self, factor: f64) {
        self.factor = factor;
    }

    /// A stalled axis stops moving while commanded.
    pub fn set_stall(&mut self, axis: AxisId, stalled: bool) {
        if let Some(a) = self.axis_mut(axis) {
            a.stalled = stalled;
        }
    }

    /// As if the occupant moved the axis by hand.
    pub fn set_position(&mut self, axis: AxisId, position: f64) -> Option<Feedback> {
        let a = self.axis_mut(axis)?;
        a.position = position.clamp(a.min, a.max);
        a.target = None;
        Some(Feedback::HandMoved {
            axis: a.id,
            position: a.position,
        })
    }
}

/// Move `a` toward its target for `sim_secs` of simulated time.
fn advance(a: &mut SimAxis, sim_secs: f64) {
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

fn report(a: &SimAxis) -> Feedback {
    Feedback::Position {
        axis: a.id,
        position: a.position,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    #[test]
    fn moves_at_speed_and_stops_on_arrival() {
        let cfg = config::builtin().unwrap();
        let mut sim = Sim::new(AxisId::all(&cfg.axes));
        let id = AxisId::of(&cfg, "seat_position").unwrap();
        let seat = &cfg.axes[id.index()];
        sim.command(
            &BackendCommand::Move {
                axis: id,
                target: seat.initial + 10.0,
            },
            0.0,
        );
        let fb = sim.step(0.2);
        assert_eq!(fb.len(), 1);
        let p = sim.position(id).unwrap();
        assert!((p - (seat.initial + seat.speed * 0.2)).abs() < 1e-9, "{p}");
        sim.step(10.0);
        assert_eq!(sim.position(id), Some(seat.initial + 10.0));
        assert_eq!(sim.running(), 0);
        sim.set_stall(id, true);
        sim.command(
            &BackendCommand::Move {
                axis: id,
                target: seat.min,
            },
            0.0,
        );
        assert!(sim.step(1.0).is_empty(), "a stalled axis reports nothing");
        assert_eq!(sim.running(), 1);
        let stopped = sim.stop_all(0.5);
        assert_eq!(sim.running(), 0);
        assert_eq!(
            stopped,
            vec![Feedback::Position {
                axis: id,
                position: seat.initial + 10.0,
            }]
        );
        assert!(sim.step(1.0).is_empty(), "nothing moves after stop_all");
    }
}
