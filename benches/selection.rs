//! Selection-quality benchmark: simulated walking approaches through the pure core at
//! simulated time (no bus, no sleeping), with the default config and simulated actuators at
//! their configured speeds.
//!
//! Run: `cargo bench --bench selection` (add a number of runs per scenario, default 500).
//!
//! People walk at 1.4 m/s (±0.2) from 15 m to half a metre outside their door; the door they
//! walk to opens 0.5 s after they arrive. Ranging per noise class:
//! - UWB-like: σ = 0.1 m, a batch every 100–250 ms;
//! - BLE-like: σ = 1 m, a batch every 0.5–3 s;
//!
//! both with 2 % outliers (a reflection: uniform 0.2–10 m) and 2 % dropouts per reading.
//! Every run starts with the seat at a third person's positions, so a recall is needed.

use std::sync::Arc;

use driverprofiled::backend::mock::sim::Sim;
use driverprofiled::config;
use driverprofiled::core::store::Store;
use driverprofiled::core::{Core, Effect, Gear, Millis, NoStorage, Reason, Reply, Request, Signal};

/// Anchors in the car frame (x toward the passenger side, y forward), metres.
const ANCHORS: [(&str, f64, f64); 4] = [
    ("driver_door", -0.9, 0.0),
    ("passenger_door", 0.9, 0.0),
    ("rear", 0.0, -2.5),
    ("cabin", 0.0, 0.0),
];
const DRIVER_SPOT: (f64, f64) = (-1.4, 0.0);
const PASSENGER_SPOT: (f64, f64) = (1.4, 0.0);
const STEP_MS: Millis = 10;

/// xorshift64*: small, seeded, good enough for a simulation.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    fn gauss(&mut self) -> f64 {
        let u1 = self.uniform(1e-12, 1.0);
        let u2 = self.uniform(0.0, 1.0);
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    fn chance(&mut self, p: f64) -> bool {
        self.uniform(0.0, 1.0) < p
    }
}

#[derive(Clone, Copy)]
struct Noise {
    name: &'static str,
    sigma: f64,
    interval_ms: (f64, f64),
    /// `keys.expire_s` for this locator: longer than its longest update gap.
    expire_ms: Millis,
}

const UWB: Noise = Noise {
    name: "UWB-like",
    sigma: 0.1,
    interval_ms: (100.0, 250.0),
    expire_ms: 2000,
};
const BLE: Noise = Noise {
    name: "BLE-like",
    sigma: 1.0,
    interval_ms: (500.0, 3000.0),
    expire_ms: 4000,
};

/// Someone walking a straight line to `end`, starting at `start_ms`, then standing.
struct Walker {
    key: &'static str,
    start: (f64, f64),
    end: (f64, f64),
    speed: f64,
    start_ms: f64,
    next_report: f64,
}

impl Walker {
    fn at(&self, t: f64) -> (f64, f64) {
        let (dx, dy) = (self.end.0 - self.start.0, self.end.1 - self.start.1);
        let len = (dx * dx + dy * dy).sqrt();
        let walked = ((t - self.start_ms) / 1000.0 * self.speed).clamp(0.0, len);
        (
            self.start.0 + dx * walked / len,
            self.start.1 + dy * walked / len,
        )
    }
    fn arrival_ms(&self) -> f64 {
        let (dx, dy) = (self.end.0 - self.start.0, self.end.1 - self.start.1);
        self.start_ms + (dx * dx + dy * dy).sqrt() / self.speed * 1000.0
    }
}

/// A start 15 m from `spot`, at a bearing (degrees from +x) within `bearings`.
fn start_near(rng: &mut Rng, spot: (f64, f64), bearings: (f64, f64)) -> (f64, f64) {
    let b = rng.uniform(bearings.0, bearings.1).to_radians();
    (spot.0 + 15.0 * b.cos(), spot.1 + 15.0 * b.sin())
}

fn driver_side(rng: &mut Rng) -> (f64, f64) {
    start_near(rng, DRIVER_SPOT, (100.0, 260.0))
}

fn passenger_side(rng: &mut Rng) -> (f64, f64) {
    start_near(rng, PASSENGER_SPOT, (-80.0, 80.0))
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// The driver alone, to the driver's door.
    DriverAlone,
    /// Only a passenger, to the passenger's door: any key-approach motion is wrong.
    PassengerOnly,
    /// Driver to the driver's door, passenger to the passenger's door, random offsets.
    DriverAndPassenger,
    /// Two key holders to the driver's door in file, the driver 1–3 m ahead.
    TwoInFile,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::DriverAlone => "driver alone",
            Scenario::PassengerOnly => "passenger only",
            Scenario::DriverAndPassenger => "driver + passenger",
            Scenario::TwoInFile => "two in file, 1-3 m gap",
        }
    }
}

#[derive(Default)]
struct Tally {
    runs: usize,
    correct: usize,
    at_target: usize,
    wrong_motions: usize,
    motions: usize,
    /// Sum over correct runs of how long before the door opened the recall began.
    head_start_ms: f64,
    /// Sum over correct runs of the share of the recall's travel done when the door opened.
    progress: f64,
}

fn profile_positions(rng: &mut Rng, cfg: &config::Config) -> Vec<(String, f64)> {
    cfg.axes
        .iter()
        .map(|a| {
            let v = rng.uniform(a.min, a.max);
            (a.name.clone(), (v * 10.0).round() / 10.0)
        })
        .collect()
}

fn run_once(rng: &mut Rng, cfg: &Arc<config::Config>, noise: Noise, sc: Scenario, t: &mut Tally) {
    let mut c = (**cfg).clone();
    c.keys.expire_ms = noise.expire_ms;
    let cfg = &Arc::new(c);
    let mut sim = Sim::new(&cfg.axes);
    let known = sim.positions().map(|(a, p)| (a.to_string(), p)).collect();
    let mut core = Core::new(
        cfg.clone(),
        Store::default(),
        &known,
        "sim".into(),
        "bench".into(),
    );
    let st = &mut NoStorage;
    let mut create = |core: &mut Core, name: &str, key: &str, rng: &mut Rng| -> String {
        let Ok(Reply::Created(id)) =
            core.request(Request::CreateProfile { name: name.into() }, 0, st)
        else {
            panic!("create")
        };
        core.request(
            Request::SetPositions {
                id: id.clone(),
                positions: profile_positions(rng, cfg),
            },
            0,
            st,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        core.request(
            Request::BindKey {
                id: id.clone(),
                key: key.into(),
            },
            0,
            st,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        id
    };
    let driver = create(&mut core, "Driver", "driver-key", rng);
    let other = create(&mut core, "Other", "other-key", rng);
    // The car was last set for a third person.
    for (axis, p) in profile_positions(rng, cfg) {
        if let Some(fb) = sim.set_position(&axis, p) {
            core.feedback(fb, 0);
        }
    }
    core.request(
        Request::UpdateSignals(vec![Signal::Gear(Gear::P), Signal::SpeedKmh(0.0)]),
        0,
        st,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    core.take_effects();

    let speed = |rng: &mut Rng| rng.uniform(1.2, 1.6);
    let mut walkers = Vec::new();
    match sc {
        Scenario::DriverAlone => walkers.push(Walker {
            key: "driver-key",
            start: driver_side(rng),
            end: DRIVER_SPOT,
            speed: speed(rng),
            start_ms: 0.0,
            next_report: 0.0,
        }),
        Scenario::PassengerOnly => walkers.push(Walker {
            key: "other-key",
            start: passenger_side(rng),
            end: PASSENGER_SPOT,
            speed: speed(rng),
            start_ms: 0.0,
            next_report: 0.0,
        }),
        Scenario::DriverAndPassenger => {
            walkers.push(Walker {
                key: "driver-key",
                start: driver_side(rng),
                end: DRIVER_SPOT,
                speed: speed(rng),
                start_ms: rng.uniform(0.0, 2000.0),
                next_report: 0.0,
            });
            walkers.push(Walker {
                key: "other-key",
                start: passenger_side(rng),
                end: PASSENGER_SPOT,
                speed: speed(rng),
                start_ms: rng.uniform(0.0, 2000.0),
                next_report: 0.0,
            });
        }
        Scenario::TwoInFile => {
            let start = driver_side(rng);
            let v = speed(rng);
            let gap = rng.uniform(1.0, 3.0);
            walkers.push(Walker {
                key: "driver-key",
                start,
                end: DRIVER_SPOT,
                speed: v,
                start_ms: 0.0,
                next_report: 0.0,
            });
            // The follower walks the same line `gap` behind and stops `gap` short.
            let (dx, dy) = (DRIVER_SPOT.0 - start.0, DRIVER_SPOT.1 - start.1);
            let len = (dx * dx + dy * dy).sqrt();
            walkers.push(Walker {
                key: "other-key",
                start: (start.0 - dx / len * gap, start.1 - dy / len * gap),
                end: (
                    DRIVER_SPOT.0 - dx / len * gap,
                    DRIVER_SPOT.1 - dy / len * gap,
                ),
                speed: v,
                start_ms: 0.0,
                next_report: 0.0,
            });
        }
    }
    for w in walkers.iter_mut() {
        w.next_report = rng.uniform(0.0, noise.interval_ms.1);
    }
    // The door that opens: the first walker's (the driver's, or the passenger's).
    let door_ms = walkers[0].arrival_ms() + 500.0;
    let end_ms = door_ms + 3000.0;
    let driver_profile = if sc == Scenario::PassengerOnly {
        None
    } else {
        Some(driver.clone())
    };

    let mut now: Millis = 0;
    let mut door_open = false;
    let mut recall_started: Option<Millis> = None;
    // Travel time left (sum over axes, at configured speed) to the driver's positions.
    let travel_left = |sim: &Sim, core: &Core, d: &str| -> f64 {
        let p = core
            .store()
            .get(d)
            .map(|p| p.positions.clone())
            .unwrap_or_default();
        cfg.axes
            .iter()
            .map(|a| match (p.get(&a.name), sim.position(&a.name)) {
                (Some(v), Some(at)) => (v - at).abs() / a.speed,
                _ => 0.0,
            })
            .sum()
    };
    let initial_travel = travel_left(&sim, &core, &driver);
    while (now as f64) < end_ms {
        now += STEP_MS;
        // Ranging.
        for w in walkers.iter_mut() {
            if (now as f64) < w.next_report {
                continue;
            }
            w.next_report = now as f64 + rng.uniform(noise.interval_ms.0, noise.interval_ms.1);
            let (x, y) = w.at(now as f64);
            let mut batch = Vec::new();
            for (name, ax, ay) in ANCHORS {
                if rng.chance(0.02) {
                    continue;
                }
                let truth = ((x - ax).powi(2) + (y - ay).powi(2)).sqrt();
                let d = if rng.chance(0.02) {
                    rng.uniform(0.2, 10.0)
                } else {
                    (truth + noise.sigma * rng.gauss()).clamp(0.0, 100.0)
                };
                batch.push((w.key.to_string(), name.to_string(), d));
            }
            core.request(Request::ReportRanges(batch), now, st)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // The door.
        if !door_open && now as f64 >= door_ms {
            door_open = true;
            let signal = if sc == Scenario::PassengerOnly {
                // The passenger's door: the driver's door stays closed.
                None
            } else {
                Some(Signal::DriverDoorOpen(true))
            };
            if let Some(sig) = signal {
                core.request(Request::UpdateSignals(vec![sig]), now, st)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            if let Some(d) = &driver_profile {
                t.runs += 1;
                if core.store().active.as_deref() == Some(d.as_str()) {
                    t.correct += 1;
                    t.head_start_ms += recall_started.map_or(0.0, |s| door_ms - s as f64);
                    if initial_travel > 0.0 {
                        t.progress += 1.0 - travel_left(&sim, &core, d) / initial_travel;
                    }
                    let p = core
                        .store()
                        .get(d)
                        .map(|p| p.positions.clone())
                        .unwrap_or_default();
                    let reached = cfg.axes.iter().all(|a| {
                        p.get(&a.name).is_none_or(|v| {
                            sim.position(&a.name)
                                .is_some_and(|at| (at - v).abs() <= a.tolerance)
                        })
                    });
                    if reached {
                        t.at_target += 1;
                    }
                }
            } else {
                t.runs += 1;
            }
        }
        // Time and actuators.
        if core.next_deadline().is_some_and(|d| d <= now) {
            core.tick(now, st);
        }
        for fb in sim.step(STEP_MS as f64 / 1000.0) {
            core.feedback(fb, now);
        }
        for e in core.take_effects() {
            match e {
                Effect::Backend(cmd) => {
                    sim.command(&cmd, 0.0);
                }
                Effect::MotionStarted {
                    reason: Reason::KeyApproach,
                    profile,
                } => {
                    t.motions += 1;
                    if profile.as_deref() != driver_profile.as_deref() {
                        t.wrong_motions += 1;
                    } else {
                        recall_started = Some(now);
                    }
                }
                _ => {}
            }
        }
    }
    let _ = other;
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "n/a".into()
    } else {
        format!("{:.1} %", 100.0 * n as f64 / d as f64)
    }
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let cfg = Arc::new(config::builtin().unwrap_or_else(|e| panic!("{e}")));
    let k = &cfg.keys;
    println!(
        "selection benchmark: {runs} runs per row; radius {} m, hysteresis {} m, dwell {} ms, expiry {} ms",
        k.approach_radius_m, k.hysteresis_m, k.dwell_ms, k.expire_ms
    );
    println!(
        "{:<9} {:<24} {:>6} {:>9} {:>10} {:>7} {:>11} {:>8} {:>10}",
        "noise",
        "scenario",
        "runs",
        "correct",
        "at target",
        "done",
        "head start",
        "motions",
        "wrong-key"
    );
    let t0 = std::time::Instant::now();
    let mut verdicts = Vec::new();
    for noise in [UWB, BLE] {
        for sc in [
            Scenario::DriverAlone,
            Scenario::PassengerOnly,
            Scenario::DriverAndPassenger,
            Scenario::TwoInFile,
        ] {
            let mut rng =
                Rng(0x9E37_79B9_7F4A_7C15 ^ ((sc as u64 + 1) * 7919) ^ noise.sigma.to_bits());
            let mut t = Tally::default();
            for _ in 0..runs {
                run_once(&mut rng, &cfg, noise, sc, &mut t);
            }
            let passenger = sc == Scenario::PassengerOnly;
            let per_correct = |sum: f64, f: &dyn Fn(f64) -> String| {
                if passenger || t.correct == 0 {
                    "n/a".to_string()
                } else {
                    f(sum / t.correct as f64)
                }
            };
            let head = per_correct(t.head_start_ms, &|ms| format!("{:.1} s", ms / 1000.0));
            let done = per_correct(t.progress, &|p| format!("{:.0} %", 100.0 * p));
            let rate = |n| {
                if passenger {
                    "n/a".to_string()
                } else {
                    pct(n, t.runs)
                }
            };
            println!(
                "{:<9} {:<24} {:>6} {:>9} {:>10} {:>7} {:>11} {:>8} {:>10}",
                noise.name,
                sc.name(),
                t.runs,
                rate(t.correct),
                rate(t.at_target),
                done,
                head,
                t.motions,
                t.wrong_motions
            );
            if passenger {
                verdicts.push(format!(
                    "{} passenger only: wrong-key motions {} (target 0): {}",
                    noise.name,
                    t.wrong_motions,
                    if t.wrong_motions == 0 {
                        "met"
                    } else {
                        "NOT met"
                    }
                ));
            }
            if sc == Scenario::TwoInFile || sc == Scenario::DriverAndPassenger {
                let rate = t.correct as f64 / t.runs.max(1) as f64;
                verdicts.push(format!(
                    "{} {}: correct profile {} (target >= 99 %): {}",
                    noise.name,
                    sc.name(),
                    pct(t.correct, t.runs),
                    if rate >= 0.99 { "met" } else { "NOT met" }
                ));
            }
        }
    }
    println!();
    for v in verdicts {
        println!("{v}");
    }
    println!(
        "\nsimulated {} runs in {:.1} s",
        runs * 8,
        t0.elapsed().as_secs_f64()
    );
}
