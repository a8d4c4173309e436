//! Key-selection benchmark: simulated walks to the car ([`driverprofiled::walksim`]: BLE with
//! log-normal shadowing, body and car-body loss, uncalibrated phones, outliers and dropouts;
//! UWB with non-line-of-sight bias; walkers from every side at 1.1-1.7 m/s from 15 m) replayed
//! through the daemon's own core on a fake clock ([`driverprofiled::trace::replay`]), with the
//! shipped configuration. Prints, per locator and scenario, how often the right profile was
//! recalled by the door opening + 1 s, every wrong-key motion, and the head start; then the
//! locator's CPU cost at 1,000 readings/s against a baseline measured in the same run.
//!
//! Run: `cargo bench --bench selection -- [RUNS] [--write-traces DIR] [--seed N]
//! [--no-car-shadow] [--no-uwb-nlos] [--rssi-sigma-db DB] [--locator-sigma-db DB]
//! [--only TEXT]` (RUNS per row, default 2000; `--only`: the rows whose name contains TEXT,
//! e.g. "UWB"). `--write-traces DIR` writes each run with a
//! wrong-key motion or without the right profile as DIR/<row>-<seed>.jsonl, for
//! `driverprofiled-replay`. `--no-car-shadow`: a world where the car's body does not block the
//! radio (as a simpler simulator has it), to check that the locator does not depend on it.
//! `--no-uwb-nlos`: UWB distances without the non-line-of-sight bias, to see what a perfect
//! model of it could buy.
//! `--rssi-sigma-db DB`: every phone's fast RSSI shadowing DB instead of 3.5-5.5 dB, to check
//! that a noisier car park than the one the locator was tuned in costs right runs, not wrong
//! keys. `--locator-sigma-db DB`: the locator's own `[keys.ble] sigma_db`, as a carmaker would
//! tune it.

use std::sync::Arc;
use std::time::Instant;

use driverprofiled::backend::mock::sim::Sim;
use driverprofiled::config::{self, Config};
use driverprofiled::core::store::Store;
use driverprofiled::core::{AxisId, Core, NoStorage, Reply, Request};
use driverprofiled::names;
use driverprofiled::trace::{self, TraceEvent};
use driverprofiled::walksim::{self, Locator, Run, Scenario, Score};

struct Args {
    runs: u64,
    write_traces: Option<std::path::PathBuf>,
    seed: u64,
    world: walksim::World,
    /// Only the rows whose name contains this.
    only: Option<String>,
    /// The locator's own model of RSSI shadowing, instead of the shipped config's.
    locator_sigma_db: Option<f64>,
}

fn args() -> Args {
    let mut a = Args {
        runs: 2000,
        write_traces: None,
        seed: 1,
        world: walksim::World::default(),
        only: None,
        locator_sigma_db: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(s) = it.next() {
        match s.as_str() {
            "--write-traces" => a.write_traces = it.next().map(Into::into),
            "--seed" => a.seed = it.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--no-car-shadow" => a.world.car_shadow = false,
            "--no-uwb-nlos" => a.world.uwb_nlos = false,
            "--rssi-sigma-db" => a.world.rssi_sigma_db = it.next().and_then(|v| v.parse().ok()),
            "--only" => a.only = it.next(),
            "--locator-sigma-db" => a.locator_sigma_db = it.next().and_then(|v| v.parse().ok()),
            "--bench" => {}
            n => {
                if let Ok(n) = n.parse() {
                    a.runs = n;
                }
            }
        }
    }
    a
}

/// One row: a locator and a scenario, with its goal.
struct Row {
    locator: Locator,
    scenario: Scenario,
    scores: Vec<(u64, Score)>,
}

impl Row {
    fn right(&self) -> usize {
        self.scores.iter().filter(|(_, s)| s.right).count()
    }
    fn wrong(&self) -> usize {
        self.scores.iter().map(|(_, s)| s.wrong_motions.len()).sum()
    }
    /// The goal for "right by door + 1 s" (None: no driver's door in this scenario).
    fn goal(&self) -> Option<f64> {
        match (self.scenario, self.locator) {
            (Scenario::PassengerOnly, _) => None,
            (_, Locator::BleSlow) => Some(0.95),
            (Scenario::DriverAlone, Locator::Uwb) => Some(0.999),
            _ => Some(0.99),
        }
    }
    /// The share of the runs that `which` takes (%).
    fn percent_of(&self, which: impl Fn(&Score) -> bool) -> f64 {
        let n = self.scores.iter().filter(|(_, s)| which(s)).count();
        100.0 * n as f64 / self.scores.len().max(1) as f64
    }
    fn head_start_median(&self) -> Option<f64> {
        self.head_start_median_of(|_| true)
    }
    /// Over the right runs of those `which` takes.
    fn head_start_median_of(&self, which: impl Fn(&Score) -> bool) -> Option<f64> {
        let mut h: Vec<i64> = (self.scores.iter())
            .filter(|(_, s)| which(s))
            .filter_map(|(_, s)| s.head_start_ms)
            .collect();
        if h.is_empty() {
            return None;
        }
        h.sort_unstable();
        Some(h[h.len() / 2] as f64 / 1000.0)
    }
    fn name(&self) -> String {
        format!("{} / {}", self.locator.name(), self.scenario.name())
    }
}

/// A head start as the tables print it.
fn seconds(h: Option<f64>) -> String {
    h.map_or("-".into(), |h| format!("{h:.1} s"))
}

fn run_row(cfg: &Arc<Config>, locator: Locator, scenario: Scenario, a: &Args) -> Row {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let seeds: Vec<u64> = (0..a.runs).map(|i| a.seed * 1_000_000 + i).collect();
    let mut scores: Vec<(u64, Score)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = &seeds;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for &seed in seeds.iter().skip(t as usize).step_by(threads as usize) {
                        let run = walksim::simulate_in(a.world, &cfg.keys, locator, scenario, seed);
                        let decisions = trace::replay(cfg.clone(), &run.lines);
                        let score = walksim::score(&run, &decisions);
                        if let Some(dir) = &a.write_traces
                            && (!score.wrong_motions.is_empty()
                                || (run.driver_profile.is_some() && !score.right))
                        {
                            write_trace(dir, seed, &run);
                        }
                        out.push((seed, score));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    scores.sort_by_key(|s| s.0);
    Row {
        locator,
        scenario,
        scores,
    }
}

/// A row's name in a file name: `uwb-driver-alone`.
fn slug(locator: Locator, scenario: Scenario) -> String {
    let l = match locator {
        Locator::BleFast => "ble-fast",
        Locator::BleSlow => "ble-slow",
        Locator::Uwb => "uwb",
    };
    let s = match scenario {
        Scenario::DriverAlone => "driver-alone",
        Scenario::DriverAndPassenger => "driver-and-passenger",
        Scenario::TwoToDriverDoor => "two-to-driver-door",
        Scenario::PassengerOnly => "passenger-only",
    };
    format!("{l}-{s}")
}

/// `run` as a trace file in `dir`, named by its row and seed.
fn write_trace(dir: &std::path::Path, seed: u64, run: &Run) {
    let text: String = (run.lines.iter())
        .map(|l| trace::to_json_line(l) + "\n")
        .collect();
    let path = dir.join(format!("{}-{seed}.jsonl", slug(run.locator, run.scenario)));
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("selection: {}: {e}", path.display());
    }
}

/// Microseconds of core time per reading with three bound keys, RSSI or ranges, and the
/// same with no geometry (distances alone, the baseline).
fn cpu_per_reading(cfg: &Arc<Config>, locator: Locator) -> f64 {
    let keys = ["k1", "k2", "k3"];
    // Where the axes are, as the daemon knows them from its backends: without it the core
    // takes no requests.
    let known = Sim::new(AxisId::all(&cfg.axes)).positions().collect();
    let mut core = Core::new(
        cfg.clone(),
        Store::default(),
        &known,
        "sim".into(),
        "bench".into(),
    );
    for k in keys {
        if let Ok(Reply::Created(id)) =
            core.request(Request::CreateProfile { name: k.into() }, 0, &mut NoStorage)
        {
            let _ = core.request(Request::BindKey { id, key: k.into() }, 0, &mut NoStorage);
        }
    }
    // Three people walking about, one simulated run each, their readings interleaved.
    let mut batches = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let run = walksim::simulate(&cfg.keys, locator, Scenario::DriverAlone, 77 + i as u64);
        for l in run.lines {
            match l.event {
                TraceEvent::Rssi(mut b) | TraceEvent::Ranges(mut b) => {
                    for r in &mut b {
                        r.0 = k.to_string();
                    }
                    batches.push((l.t_ms, b));
                }
                _ => {}
            }
        }
    }
    batches.sort_by_key(|b| b.0);
    let readings: usize = batches.iter().map(|b| b.1.len()).sum();
    let start = Instant::now();
    let mut refused = 0;
    for (t, b) in batches {
        let req = if locator == Locator::Uwb {
            Request::ReportRanges(b)
        } else {
            Request::ReportRssi(b)
        };
        if core.request(req, t, &mut NoStorage).is_err() {
            refused += 1;
        }
        core.tick(t, &mut NoStorage);
        let _ = core.take_effects();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / readings.max(1) as f64;
    if refused > 0 {
        eprintln!("selection: the core refused {refused} batches: the CPU figure is wrong");
    }
    us
}

fn main() {
    let a = args();
    let cfg = match config::builtin() {
        Ok(mut c) => {
            if let Some(sigma) = a.locator_sigma_db {
                c.keys.ble.sigma_db = sigma;
            }
            Arc::new(c)
        }
        Err(e) => {
            eprintln!("selection: the built-in config: {}", e.message);
            std::process::exit(1);
        }
    };
    println!(
        "key selection: {} runs per row, shipped config, simulated time{}\n",
        a.runs,
        if a.world.car_shadow {
            ""
        } else {
            ", the car's body not blocking the radio"
        },
    );
    if !a.world.uwb_nlos {
        println!("UWB distances without a non-line-of-sight bias\n");
    }
    if let Some(sigma) = a.world.rssi_sigma_db {
        println!("every phone's fast RSSI shadowing: {sigma} dB (instead of 3.5-5.5 dB)\n");
    }
    if let Some(sigma) = a.locator_sigma_db {
        println!("the locator's sigma_db: {sigma} dB (instead of the shipped config's)\n");
    }
    println!(
        "{:<52} {:>10} {:>8} {:>7} {:>12}",
        "locator / scenario", "right", "goal", "wrong", "head start"
    );
    let mut rows = Vec::new();
    let t0 = Instant::now();
    for locator in Locator::ALL {
        for scenario in Scenario::ALL {
            let name = format!("{} / {}", locator.name(), scenario.name());
            if a.only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
                continue;
            }
            let row = run_row(&cfg, locator, scenario, &a);
            let right = match row.goal() {
                Some(_) => format!("{:.2} %", 100.0 * row.right() as f64 / a.runs as f64),
                None => "-".into(),
            };
            let goal = row
                .goal()
                .map_or("-".into(), |g| format!(">= {:.1} %", g * 100.0));
            let hs = seconds(row.head_start_median());
            println!(
                "{:<52} {:>10} {:>8} {:>7} {:>12}",
                row.name(),
                right,
                goal,
                row.wrong(),
                hs
            );
            rows.push(row);
        }
    }
    println!("({:.0} s)\n", t0.elapsed().as_secs_f64());
    let mut wrong = 0;
    for row in &rows {
        for (seed, s) in &row.scores {
            for w in &s.wrong_motions {
                wrong += 1;
                let ended = w
                    .ended
                    .map_or("still running at the end".into(), |(ms, o)| {
                        let o = names::outcome(o).as_str();
                        format!("{o} after {:.2} s", ms as f64 / 1000.0)
                    });
                println!(
                    "wrong-key motion: {} seed {seed}: {:?} recalled at {:.2} s, {ended}",
                    row.name(),
                    w.profile,
                    w.t_ms as f64 / 1000.0
                );
            }
        }
    }
    let mut missed = Vec::new();
    for row in &rows {
        if let Some(g) = row.goal()
            && (row.right() as f64) < g * a.runs as f64
        {
            missed.push(row.name());
        }
    }
    let uwb =
        (rows.iter()).find(|r| r.locator == Locator::Uwb && r.scenario == Scenario::DriverAlone);
    println!("wrong-key motions in all rows: {wrong} (goal 0)");
    if let Some(r) = uwb {
        // The walks whose intent shows from afar, apart: the rest turn at an aisle's end or
        // round a corner of the car close to the door.
        println!(
            "UWB driver alone, median head start: {} (goal >= 5 s); of the {:.0} % who walk straight to the door: {}",
            seconds(r.head_start_median()),
            r.percent_of(|s| s.walks.driver_straight),
            seconds(r.head_start_median_of(|s| s.walks.driver_straight)),
        );
        // Of those, by where they came from: from the side, the walk shows where it ends from
        // metres away; along the car, it passes the corner that is as much the way round.
        let share = |lo: f64, hi: f64| {
            let of = |s: &Score| {
                s.walks.driver_straight
                    && s.walks
                        .driver_bearing_deg
                        .is_some_and(|b| lo <= b && b < hi)
            };
            (r.percent_of(of), seconds(r.head_start_median_of(of)))
        };
        for (what, lo, hi) in [
            (
                "from the side (within 30 degrees of straight out)",
                0.0,
                30.0,
            ),
            ("at 30-60 degrees", 30.0, 60.0),
            ("along the car (60 degrees or more)", 60.0, 181.0),
        ] {
            let (pct, h) = share(lo, hi);
            println!("  straight {what}: {pct:.0} % of the runs, {h}");
        }
    }
    // Walks a locator cannot tell from a driver's until they turn: someone who walks
    // straight at the driver's spot and turns away a few metres short of it. Selecting a
    // walker farther out than these turns would select them too.
    for r in rows.iter().filter(|r| r.locator == Locator::Uwb) {
        // (Two at the driver's door: the other stops short of it, and does not turn away.)
        if matches!(
            r.scenario,
            Scenario::DriverAlone | Scenario::TwoToDriverDoor
        ) || r.scores.is_empty()
        {
            continue;
        }
        let within = |m: f64| r.percent_of(|s| s.walks.others_turn_m.is_some_and(|t| t < m));
        println!(
            "{}: {:.1} % of the others walk straight at the driver's spot, then turn away within 2 / 4 / 6 / 8 m of it: {:.1} / {:.1} / {:.1} / {:.1} %",
            r.scenario.name(),
            r.percent_of(|s| s.walks.others_turn_m.is_some()),
            within(2.0),
            within(4.0),
            within(6.0),
            within(8.0),
        );
    }
    for m in &missed {
        println!("below its goal: {m}");
    }

    // CPU: the core's time per reading with three bound keys, against distances alone (the
    // locator without geometry) measured here too.
    let mut plain = (*cfg).clone();
    plain.keys.geometry = None;
    let plain = Arc::new(plain);
    let base = cpu_per_reading(&plain, Locator::Uwb);
    println!("\nCPU per reading, 3 bound keys:");
    println!("  distances alone (no geometry, baseline): {base:.1} us");
    for l in [Locator::BleFast, Locator::Uwb] {
        let us = cpu_per_reading(&cfg, l);
        println!(
            "  {:<28} {us:.1} us = {:.1} % of one core at 1,000 readings/s ({:.0} x the baseline; goal < 5 %)",
            l.name(),
            us / 10.0,
            us / base.max(1e-9)
        );
    }
}
