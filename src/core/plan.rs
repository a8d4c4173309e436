//! Motion planning under a current budget: at most `slots` motors run at once.
//!
//! McNaughton's wrap-around rule gives the optimal completion time for preemptive scheduling on
//! identical slots, `max(longest travel, total travel / slots)`: fill the slots one after the
//! other up to that bound, splitting the travel that crosses it into a head (at the start of
//! the next slot) and a tail (at the end of this one). Because no travel is longer than the
//! bound, an axis' head always ends before its tail begins, so an axis never needs two motors.
//! A split axis stops at a waypoint and resumes later, which the budget allows.
//!
//! The plan is executed by events, not by the clock: a slot starts its next piece when the
//! previous one arrives. All axes move at their configured speeds scaled alike, so the order of
//! events — and the completion time relative to the bound — is the plan's.

/// One axis' travel, in its unit and unit per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Travel {
    pub axis: usize,
    pub from: f64,
    pub to: f64,
    pub speed: f64,
}

impl Travel {
    /// Travel time in seconds.
    pub fn secs(&self) -> f64 {
        (self.to - self.from).abs() / self.speed
    }
}

/// Move `axis` to `to` (a waypoint, or its final target).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    pub axis: usize,
    pub to: f64,
}

/// The least possible completion time in seconds.
pub fn lower_bound(travels: &[Travel], slots: usize) -> f64 {
    let slots = slots.max(1) as f64;
    let longest = travels.iter().map(Travel::secs).fold(0.0, f64::max);
    let total: f64 = travels.iter().map(Travel::secs).sum();
    longest.max(total / slots)
}

/// Per slot, the pieces to run in order.
pub fn plan(travels: &[Travel], slots: usize) -> Vec<Vec<Piece>> {
    let m = slots.max(1).min(travels.len().max(1));
    let mut out: Vec<Vec<Piece>> = vec![Vec::new(); m];
    if travels.is_empty() {
        return out;
    }
    let bound = lower_bound(travels, m);
    let eps = bound * 1e-9;
    let mut sorted: Vec<&Travel> = travels.iter().collect();
    sorted.sort_by(|a, b| b.secs().total_cmp(&a.secs()));
    let (mut s, mut t) = (0usize, 0.0f64);
    for tr in sorted {
        let p = tr.secs();
        if t + p <= bound + eps || s + 1 >= m {
            out[s].push(Piece {
                axis: tr.axis,
                to: tr.to,
            });
            t += p;
            if t >= bound - eps && s + 1 < m {
                s += 1;
                t = 0.0;
            }
        } else {
            // Tail [t, bound] on slot s; head [0, head] on slot s + 1.
            let head = p - (bound - t);
            let waypoint = tr.from + (tr.to - tr.from).signum() * tr.speed * head;
            out[s + 1].push(Piece {
                axis: tr.axis,
                to: waypoint,
            });
            out[s].push(Piece {
                axis: tr.axis,
                to: tr.to,
            });
            s += 1;
            t = head;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(axis: usize, dist: f64, speed: f64) -> Travel {
        Travel {
            axis,
            from: 0.0,
            to: dist,
            speed,
        }
    }

    /// Simulate the plan by events at exact speeds: (completion time, most motors at once).
    fn execute(travels: &[Travel], slots: &[Vec<Piece>]) -> (f64, usize) {
        let speed = |a: usize| {
            travels
                .iter()
                .find(|t| t.axis == a)
                .map_or(1.0, |t| t.speed)
        };
        let mut pos: Vec<f64> = vec![0.0; travels.iter().map(|t| t.axis + 1).max().unwrap_or(0)];
        let mut next = vec![0usize; slots.len()];
        let mut now = 0.0;
        let mut most = 0;
        loop {
            // Which slots run now: their current piece's axis is not running elsewhere.
            let mut running: Vec<(usize, Piece)> = Vec::new();
            for (s, pieces) in slots.iter().enumerate() {
                if let Some(p) = pieces.get(next[s])
                    && !running.iter().any(|(_, r)| r.axis == p.axis)
                {
                    running.push((s, *p));
                }
            }
            if running.is_empty() {
                return (now, most);
            }
            most = most.max(running.len());
            let dt = running
                .iter()
                .map(|(_, p)| (p.to - pos[p.axis]).abs() / speed(p.axis))
                .fold(f64::INFINITY, f64::min);
            now += dt;
            for (s, p) in running {
                let d = p.to - pos[p.axis];
                let step = speed(p.axis) * dt;
                if d.abs() <= step + 1e-9 {
                    pos[p.axis] = p.to;
                    next[s] += 1;
                } else {
                    pos[p.axis] += step.copysign(d);
                }
            }
        }
    }

    #[test]
    fn wrap_around_meets_the_bound_exactly() {
        let travels = [
            tr(0, 10.0, 1.0),
            tr(1, 6.0, 1.0),
            tr(2, 6.0, 2.0),
            tr(3, 8.0, 1.0),
        ];
        let plan = plan(&travels, 2);
        let (done, most) = execute(&travels, &plan);
        let bound = lower_bound(&travels, 2);
        assert_eq!(bound, 13.5);
        assert!((done - bound).abs() < 1e-6, "{done} vs {bound}: {plan:?}");
        assert!(most <= 2);
    }

    #[test]
    fn one_long_travel_sets_the_bound() {
        let travels = [tr(0, 30.0, 1.0), tr(1, 2.0, 1.0), tr(2, 3.0, 1.0)];
        let (done, _) = execute(&travels, &plan(&travels, 2));
        assert!((done - 30.0).abs() < 1e-6);
    }

    #[test]
    fn more_slots_than_axes() {
        let travels = [tr(0, 3.0, 1.0)];
        let p = plan(&travels, 4);
        assert_eq!(p.len(), 1);
        assert_eq!(execute(&travels, &p).0, 3.0);
    }
}
