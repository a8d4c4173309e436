//! Simulated walks to the car with a key locator, as hard as a car park: people carrying their
//! phone key from 15 m to their door from every side (around the car when they must, some
//! along an aisle first, some stopping on the way), read by a BLE or UWB locator with the
//! physics that make key selection hard: log-normal shadowing with a slow part, the holder's
//! body and the car's body between phone and anchor, per-phone calibration and path-loss
//! exponents the locator does not know, multipath outliers, dropouts; for UWB a
//! non-line-of-sight bias whenever the car or a body is in the way and now and then anyway.
//!
//! A run is a [`crate::trace`] (readings, vehicle signals, bind and truth lines), so the
//! selection benchmark, the core's tests and `driverprofiled-replay` all see the same walks, and
//! [`score`] reads the replay's decisions: was the right profile recalled by the door opening
//! + 1 s, which recalls went to a profile that was not the driver's (wrong-key motions), and how
//!   long before the door the recall started (the head start). See `docs/key-selection.md`.
//!
//! Not used by the daemon. The car is the one of the shipped config (anchors from the config
//! it is given; the body a 1.8 m x 4.8 m box around the origin, the passenger's spot mirroring
//! the driver's).

use crate::config::{KeyConfig, Point};
use crate::core::{Millis, Outcome, Reason, Signal};
use crate::trace::{Decision, TraceEvent, TraceLine, What, r2};

/// The car's body: |x| <= HALF_WIDTH, |y| <= HALF_LENGTH (m).
const HALF_WIDTH: f64 = 0.9;
const HALF_LENGTH: f64 = 2.4;
/// People walk around the car this far from its body (m).
const CLEARANCE: f64 = 0.7;
/// Where a walk starts: this far from the walker's spot (m).
const START_M: f64 = 15.0;
/// Each anchor's height above the phone's, at most (m).
const MAX_DZ: f64 = 0.5;

/// The key locators of the benchmark's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locator {
    /// A connected phone key: RSSI of each anchor every 0.1-0.3 s.
    BleFast,
    /// An advertising key, or a locator that reports slowly: every 0.5-2 s per anchor.
    BleSlow,
    /// Ultra-wideband ranging: a round of all anchors every 0.1-0.25 s.
    Uwb,
}

impl Locator {
    pub const ALL: [Locator; 3] = [Locator::BleFast, Locator::BleSlow, Locator::Uwb];

    pub fn name(self) -> &'static str {
        match self {
            Locator::BleFast => "BLE RSSI every 0.1-0.3 s",
            Locator::BleSlow => "BLE RSSI every 0.5-2 s",
            Locator::Uwb => "UWB every 0.1-0.25 s",
        }
    }

    /// Seconds between two readings of one anchor.
    fn interval_s(self) -> (f64, f64) {
        match self {
            Locator::BleFast => (0.1, 0.3),
            Locator::BleSlow => (0.5, 2.0),
            Locator::Uwb => (0.1, 0.25),
        }
    }
}

/// Who walks where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The driver walks to the driver's door and opens it.
    DriverAlone,
    /// The driver and a passenger (half the time walking together from the same place) walk
    /// to their doors; the driver opens the driver's door.
    DriverAndPassenger,
    /// Two people walk to the driver's door one behind the other, 1-3 m apart; the first
    /// opens it and the other waits behind.
    TwoToDriverDoor,
    /// Only a passenger walks to the passenger's door (from any side); the driver's door
    /// stays shut.
    PassengerOnly,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::DriverAlone,
        Scenario::DriverAndPassenger,
        Scenario::TwoToDriverDoor,
        Scenario::PassengerOnly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::DriverAlone => "driver alone",
            Scenario::DriverAndPassenger => "driver and passenger",
            Scenario::TwoToDriverDoor => "two to the driver door",
            Scenario::PassengerOnly => "passenger only",
        }
    }
}

/// The profile each walker's key is bound to.
pub const DRIVER: (&str, &str) = ("driver-key", "Driver");
pub const PASSENGER: (&str, &str) = ("passenger-key", "Passenger");
pub const COMPANION: (&str, &str) = ("companion-key", "Companion");

/// xorshift64*: small, seeded, enough for a simulation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that neighbouring seeds start far apart; never 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn gauss(&mut self) -> f64 {
        let u1 = self.uniform(1e-12, 1.0);
        let u2 = self.uniform(0.0, 1.0);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform(0.0, 1.0) < p
    }
}

fn dist(a: Point, b: Point) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// How far `p` is from the line through `a` and `b`.
fn line_distance(a: Point, b: Point, p: Point) -> f64 {
    let cross = (p[0] - a[0]) * (b[1] - a[1]) - (p[1] - a[1]) * (b[0] - a[0]);
    cross.abs() / dist(a, b).max(1e-9)
}

/// Does the segment a-b pass through the box |x| < hw, |y| < hl? (Liang-Barsky clipping.)
fn crosses_box(a: Point, b: Point, hw: f64, hl: f64) -> bool {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a[0] + hw),
        (dx, hw - a[0]),
        (-dy, a[1] + hl),
        (dy, hl - a[1]),
    ] {
        if p == 0.0 {
            if q <= 0.0 {
                return false;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    t1 - t0 > 1e-9
}

/// The shortest walk from `a` to `b` that keeps [`CLEARANCE`] from the car: straight, or by
/// the corners of the clearance box (a visibility graph of six points).
fn route(a: Point, b: Point) -> Vec<Point> {
    let (hw, hl) = (HALF_WIDTH + CLEARANCE, HALF_LENGTH + CLEARANCE);
    // Slightly inside the clearance box, so that walking along its edge is allowed.
    let blocked = |p: Point, q: Point| crosses_box(p, q, hw - 0.05, hl - 0.05);
    let nodes = [a, b, [-hw, -hl], [hw, -hl], [hw, hl], [-hw, hl]];
    let n = nodes.len();
    let mut best = vec![f64::INFINITY; n];
    let mut prev = vec![usize::MAX; n];
    let mut done = vec![false; n];
    best[0] = 0.0;
    // The spots are near the body: the last leg may enter the clearance box.
    let leg_ok = |i: usize, j: usize, nodes: &[Point]| {
        let (p, q) = (nodes[i], nodes[j]);
        if i == 1 || j == 1 {
            !crosses_box(p, q, HALF_WIDTH + 0.2, HALF_LENGTH + 0.2)
        } else {
            !blocked(p, q)
        }
    };
    for _ in 0..n {
        let Some(u) = (0..n)
            .filter(|&i| !done[i] && best[i].is_finite())
            .min_by(|&i, &j| best[i].total_cmp(&best[j]))
        else {
            break;
        };
        done[u] = true;
        for v in 0..n {
            if !done[v] && leg_ok(u, v, &nodes) {
                let d = best[u] + dist(nodes[u], nodes[v]);
                if d < best[v] {
                    best[v] = d;
                    prev[v] = u;
                }
            }
        }
    }
    let mut path = vec![b];
    let mut at = 1;
    while prev[at] != usize::MAX && prev[at] != 0 {
        at = prev[at];
        path.push(nodes[at]);
    }
    path.push(a);
    path.reverse();
    path
}

/// A person with a phone key: a walk along waypoints at one speed, with stops, then standing.
#[derive(Debug, Clone)]
struct Walker {
    key: &'static str,
    /// (time s, position): the walk's corners, the last where they stop.
    legs: Vec<(f64, Point)>,
    /// Where they stand at the end faces this way (the door).
    face: Point,
    /// The phone's body loss toward anchors behind the holder (dB), and the holder's sway.
    body_db: f64,
    sway: f64,
}

impl Walker {
    /// Walks `path` from `t0` at `speed`, pausing `pause` s at its `pause_at` share.
    fn new(
        key: &'static str,
        path: &[Point],
        t0: f64,
        speed: f64,
        pause: Option<(f64, f64)>,
        rng: &mut Rng,
    ) -> Walker {
        let mut legs = vec![(t0, path[0])];
        let total: f64 = path.windows(2).map(|w| dist(w[0], w[1])).sum();
        let (mut t, mut walked) = (t0, 0.0);
        let mut paused = false;
        for w in path.windows(2) {
            let d = dist(w[0], w[1]);
            if let Some((share, secs)) = pause
                && !paused
                && walked + d >= share * total
            {
                let f = (share * total - walked) / d.max(1e-9);
                let p = [
                    w[0][0] + f * (w[1][0] - w[0][0]),
                    w[0][1] + f * (w[1][1] - w[0][1]),
                ];
                t += f * d / speed;
                legs.push((t, p));
                t += secs;
                legs.push((t, p));
                t += (1.0 - f) * d / speed;
                legs.push((t, w[1]));
                paused = true;
            } else {
                t += d / speed;
                legs.push((t, w[1]));
            }
            walked += d;
        }
        let end = path[path.len() - 1];
        Walker {
            key,
            legs,
            face: [if end[0] < 0.0 { 1.0 } else { -1.0 }, 0.0],
            body_db: rng.uniform(5.0, 10.0),
            sway: rng.uniform(0.02, 0.08),
        }
    }

    /// Does the walk go straight to where it ends: no aisle's end, no corner of the car on
    /// the way (a pause on a straight walk is still straight)?
    fn straight(&self) -> bool {
        let (a, b) = (self.legs[0].1, self.legs[self.legs.len() - 1].1);
        (self.legs.iter()).all(|&(_, p)| line_distance(a, b, p) < 0.05)
    }

    /// Where a walk that does not end at `spot` turns away after heading straight for it:
    /// the distance from `spot` of the first turn that ends a leg of at least 3 m aimed
    /// within 1 m of it. Until that turn the walk is a walk to `spot`, to any locator.
    fn turns_short_of(&self, spot: Point) -> Option<f64> {
        let end = self.legs[self.legs.len() - 1].1;
        if dist(end, spot) < 1.0 {
            return None;
        }
        // The walk's turns: its corners less a pause's, which lies on a straight line.
        let mut turns: Vec<Point> = vec![self.legs[0].1];
        for &(_, p) in &self.legs[1..] {
            match turns[..] {
                [.., a] if dist(a, p) < 1e-6 => {}
                [.., a, b] if line_distance(a, p, b) < 1e-6 => {
                    let n = turns.len();
                    turns[n - 1] = p;
                }
                _ => turns.push(p),
            }
        }
        turns.windows(2).find_map(|w| {
            let (a, b) = (w[0], w[1]);
            let len = dist(a, b);
            let along = ((spot[0] - a[0]) * (b[0] - a[0]) + (spot[1] - a[1]) * (b[1] - a[1])) / len;
            let heads = line_distance(a, b, spot) <= 1.0 && along > len;
            (b != end && len >= 3.0 && heads).then(|| dist(b, spot))
        })
    }

    /// How far round from straight out of the car's side at `spot` the walk set off, seen
    /// from where it ends (degrees, 0-180; the car's middle is at x = 0, so a right-hand
    /// drive car's spot, at +x, is measured from +x).
    fn bearing_deg(&self, spot: Point) -> f64 {
        let (a, b) = (self.legs[0].1, self.legs[self.legs.len() - 1].1);
        let out = if spot[0] < 0.0 { -1.0 } else { 1.0 };
        (a[1] - b[1]).atan2(out * (a[0] - b[0])).to_degrees().abs()
    }

    fn arrival_s(&self) -> f64 {
        self.legs.last().map_or(0.0, |l| l.0)
    }

    /// Where the phone is at `t` and which way its holder faces.
    fn at(&self, t: f64) -> (Point, Point) {
        let first = self.legs[0];
        if t <= first.0 {
            let next = self.legs.get(1).map_or(first.1, |l| l.1);
            return (first.1, unit(first.1, next).unwrap_or(self.face));
        }
        for w in self.legs.windows(2) {
            let ((ta, a), (tb, b)) = (w[0], w[1]);
            if t <= tb {
                let f = if tb > ta { (t - ta) / (tb - ta) } else { 1.0 };
                let p = [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])];
                return (p, unit(a, b).unwrap_or(self.face));
            }
        }
        // Standing: a little sway.
        let end = self.legs[self.legs.len() - 1].1;
        let s = self.sway * (t * 1.3).sin();
        ([end[0] + s, end[1] + 0.5 * s], self.face)
    }
}

fn unit(a: Point, b: Point) -> Option<Point> {
    let d = dist(a, b);
    (d > 1e-6).then(|| [(b[0] - a[0]) / d, (b[1] - a[1]) / d])
}

/// One phone's radio, as the world treats it (none of this is known to the locator).
#[derive(Debug, Clone)]
struct Radio {
    /// RSSI at 1 m and the path-loss exponent, this phone in this car park.
    p1m: f64,
    n: f64,
    /// The fast (independent) and the slow (correlated, per anchor) shadowing, dB.
    fast_db: f64,
    slow: Vec<f64>,
    /// Loss through the car's body (dB), through the cabin's glass to the cabin anchor.
    car_db: f64,
    glass_db: f64,
    /// Each anchor's height over the phone (m).
    dz: Vec<f64>,
    /// UWB: each anchor's non-line-of-sight bias now, if any (m).
    nlos: Vec<Option<f64>>,
    /// The next reading of each anchor (s).
    next: Vec<f64>,
}

/// The slow shadowing's spread (dB) and its correlation time (s).
const SLOW_DB: f64 = 3.0;
const SLOW_TAU_S: f64 = 1.5;
/// Readings lost, and multipath outliers.
const DROPOUT: f64 = 0.03;
const OUTLIER: f64 = 0.02;
/// Below this the phone is not heard (dBm).
const SENSITIVITY_DBM: f64 = -100.0;

impl Radio {
    fn new(cfg: &KeyConfig, anchors: usize, rng: &mut Rng) -> Radio {
        Radio {
            p1m: cfg.ble.rssi_at_1m_dbm + rng.uniform(-3.0, 3.0),
            n: rng.uniform(1.8, 2.4),
            fast_db: rng.uniform(3.5, 5.5),
            slow: (0..anchors).map(|_| SLOW_DB * rng.gauss()).collect(),
            car_db: rng.uniform(6.0, 12.0),
            glass_db: rng.uniform(1.0, 4.0),
            dz: (0..anchors).map(|_| rng.uniform(0.0, MAX_DZ)).collect(),
            nlos: vec![None; anchors],
            next: (0..anchors).map(|_| rng.uniform(0.0, 0.3)).collect(),
        }
    }
}

/// Anchors on the car's skin see past the car from their own side only; an anchor inside the
/// body (more than this inside its outline) sits behind glass.
const SKIN_M: f64 = 0.3;

fn inside_cabin(a: Point) -> bool {
    a[0].abs() < HALF_WIDTH - SKIN_M && a[1].abs() < HALF_LENGTH - SKIN_M
}

/// Is the line from phone to anchor blocked by the car's body?
fn car_between(p: Point, a: Point) -> bool {
    !inside_cabin(a) && crosses_box(p, a, HALF_WIDTH - SKIN_M, HALF_LENGTH - SKIN_M)
}

/// Is the anchor behind the holder? 0 (ahead) to 1 (straight behind).
fn behind(p: Point, face: Point, a: Point) -> f64 {
    let Some(u) = unit(p, a) else { return 0.0 };
    let cos = u[0] * face[0] + u[1] * face[1];
    ((0.2 - cos) / 1.2).clamp(0.0, 1.0)
}

/// One simulated run: the trace and what a right decision is.
#[derive(Debug, Clone)]
pub struct Run {
    pub locator: Locator,
    pub scenario: Scenario,
    pub lines: Vec<TraceLine>,
    /// The profile the driver's door should get (`None`: no one opens it).
    pub driver_profile: Option<&'static str>,
    /// When the driver's door opens (ms).
    pub door_ms: Option<Millis>,
    /// How the run's people walked.
    pub walks: Walks,
}

/// How a run's people walked: what makes a run easy or hard for a locator.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Walks {
    /// The driver walked straight to the door, with neither an aisle's end nor a corner of
    /// the car on the way: a walk whose intent a locator can tell from afar.
    pub driver_straight: bool,
    /// How far round from straight out of the driver's door the driver set off (degrees,
    /// 0-180: 0 from the side, 90 from ahead or behind the car).
    pub driver_bearing_deg: Option<f64>,
    /// How near the driver's spot the nearest of the others walked straight at it before
    /// turning away (m): up to there, they walk as a driver does.
    pub others_turn_m: Option<f64>,
}

/// Which way someone comes from: a bearing (degrees, from the +x axis) around their spot.
fn start_from(rng: &mut Rng, spot: Point, bearings: (f64, f64)) -> Point {
    let b = rng.uniform(bearings.0, bearings.1).to_radians();
    [spot[0] + START_M * b.cos(), spot[1] + START_M * b.sin()]
}

/// A walk to `spot` from `start`: along a car-park aisle first now and then, and around the
/// car where it stands in the way.
fn path_to(rng: &mut Rng, start: Point, spot: Point) -> Vec<Point> {
    let mut path = vec![start];
    if rng.chance(0.3) {
        // Down an aisle: a corner 3-6 m out on the walker's side of the car.
        let side = if start[0] < 0.0 { -1.0 } else { 1.0 };
        let corner = [side * rng.uniform(3.0, 6.0), rng.uniform(-4.0, 4.0)];
        if dist(corner, spot) < dist(start, spot) {
            path.push(corner);
        }
    }
    let from = path[path.len() - 1];
    path.extend(route(from, spot).into_iter().skip(1));
    path
}

/// The bearings someone usually comes from to a spot on `side` (-1 driver, +1 passenger),
/// and now and then from anywhere (then around the car).
fn bearing_range(rng: &mut Rng, side: f64) -> (f64, f64) {
    if rng.chance(0.15) {
        (0.0, 360.0)
    } else if side < 0.0 {
        (100.0, 260.0)
    } else {
        (-80.0, 80.0)
    }
}

/// Not everyone stops exactly on the spot.
fn near(rng: &mut Rng, spot: Point) -> Point {
    [spot[0] + 0.12 * rng.gauss(), spot[1] + 0.15 * rng.gauss()]
}

/// Someone walking alone to `spot` on `side` (-1 driver, +1 passenger), perhaps pausing.
fn alone(rng: &mut Rng, key: &'static str, spot: Point, side: f64) -> Walker {
    let range = bearing_range(rng, side);
    let start = start_from(rng, spot, range);
    let end = near(rng, spot);
    let path = path_to(rng, start, end);
    let (t0, v, p) = (rng.uniform(0.0, 1.0), rng.uniform(1.1, 1.7), pause(rng));
    Walker::new(key, &path, t0, v, p, rng)
}

fn pause(rng: &mut Rng) -> Option<(f64, f64)> {
    rng.chance(0.1)
        .then(|| (rng.uniform(0.2, 0.7), rng.uniform(1.0, 3.0)))
}

/// How hard the world is beyond what every locator faces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct World {
    /// The car's body blocks the radio: weaker RSSI, a non-line-of-sight UWB path. Off, the
    /// world of a simpler simulator: a locator that knows the car must not depend on it.
    pub car_shadow: bool,
    /// Every phone's fast RSSI shadowing (dB), instead of 3.5-5.5 dB drawn per phone: a
    /// noisier car park than the one the locator was tuned in.
    pub rssi_sigma_db: Option<f64>,
    /// UWB distances are too long over a non-line-of-sight path. Off, an ideal UWB radio
    /// (σ 0.1 m, outliers, dropouts, no bias): what a perfect model of the bias could buy.
    pub uwb_nlos: bool,
}

impl Default for World {
    fn default() -> World {
        World {
            car_shadow: true,
            rssi_sigma_db: None,
            uwb_nlos: true,
        }
    }
}

/// Simulate one run of `scenario` with `locator` for the car of `cfg` (which has a geometry).
pub fn simulate(cfg: &KeyConfig, locator: Locator, scenario: Scenario, seed: u64) -> Run {
    simulate_in(World::default(), cfg, locator, scenario, seed)
}

/// [`simulate`] in `world`.
pub fn simulate_in(
    world: World,
    cfg: &KeyConfig,
    locator: Locator,
    scenario: Scenario,
    seed: u64,
) -> Run {
    let mut rng = Rng::new(seed);
    let Some(geometry) = cfg.geometry.as_ref() else {
        return Run {
            locator,
            scenario,
            lines: Vec::new(),
            driver_profile: None,
            door_ms: None,
            walks: Walks::default(),
        };
    };
    let driver_spot = geometry.driver_spot;
    let passenger_spot = [-driver_spot[0], driver_spot[1]];
    let mut walkers = Vec::new();
    match scenario {
        Scenario::DriverAlone => walkers.push(alone(&mut rng, DRIVER.0, driver_spot, -1.0)),
        Scenario::PassengerOnly => walkers.push(alone(&mut rng, PASSENGER.0, passenger_spot, 1.0)),
        Scenario::DriverAndPassenger => {
            let together = rng.chance(0.5);
            let d_start = if together {
                // From anywhere, side by side, at one pace.
                let b = rng.uniform(0.0, 360.0).to_radians();
                [START_M * b.cos(), driver_spot[1] + START_M * b.sin()]
            } else {
                let range = bearing_range(&mut rng, -1.0);
                start_from(&mut rng, driver_spot, range)
            };
            let p_start = if together {
                let b = rng.uniform(0.0, 360.0).to_radians();
                [d_start[0] + b.cos(), d_start[1] + b.sin()]
            } else {
                let range = bearing_range(&mut rng, 1.0);
                start_from(&mut rng, passenger_spot, range)
            };
            let d_end = near(&mut rng, driver_spot);
            let p_end = near(&mut rng, passenger_spot);
            let dpath = path_to(&mut rng, d_start, d_end);
            let ppath = path_to(&mut rng, p_start, p_end);
            let v = rng.uniform(1.1, 1.7);
            let (dv, pv) = if together {
                (v, v)
            } else {
                (v, rng.uniform(1.1, 1.7))
            };
            let (dt0, pt0) = (rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0));
            walkers.push(Walker::new(DRIVER.0, &dpath, dt0, dv, None, &mut rng));
            walkers.push(Walker::new(PASSENGER.0, &ppath, pt0, pv, None, &mut rng));
        }
        Scenario::TwoToDriverDoor => {
            let range = bearing_range(&mut rng, -1.0);
            let start = start_from(&mut rng, driver_spot, range);
            let end = near(&mut rng, driver_spot);
            let path = path_to(&mut rng, start, end);
            let gap = rng.uniform(1.0, 3.0);
            let v = rng.uniform(1.1, 1.7);
            let t0 = rng.uniform(0.0, 1.0);
            walkers.push(Walker::new(DRIVER.0, &path, t0, v, None, &mut rng));
            // The other follows the same way, `gap` behind, a little to one side, and
            // stops `gap` short of the door.
            let total: f64 = path.windows(2).map(|w| dist(w[0], w[1])).sum();
            let side = 0.4 * rng.gauss();
            let follow = shorten(&path, total - gap, side);
            walkers.push(Walker::new(
                COMPANION.0,
                &follow,
                t0 + gap / v,
                v,
                None,
                &mut rng,
            ));
        }
    }
    let driver_walker = (scenario != Scenario::PassengerOnly).then_some(0);
    let door_s = driver_walker.map(|i| walkers[i].arrival_s() + rng.uniform(0.3, 1.0));
    let end_s = door_s
        .unwrap_or_else(|| walkers.iter().map(Walker::arrival_s).fold(0.0, f64::max) + 1.0)
        + 3.0;

    let mut lines = Vec::new();
    let line = |t_s: f64, event| TraceLine {
        t_ms: (t_s * 1000.0).round().max(0.0) as u64,
        event,
    };
    for w in &walkers {
        let profile = [DRIVER, PASSENGER, COMPANION]
            .into_iter()
            .find(|k| k.0 == w.key)
            .map_or(w.key, |k| k.1);
        lines.push(line(
            0.0,
            TraceEvent::Bind {
                key: w.key.to_string(),
                profile: profile.to_string(),
            },
        ));
    }
    lines.push(line(
        0.0,
        TraceEvent::Signals(vec![
            Signal::Gear(crate::core::Gear::P),
            Signal::SpeedKmh(0.0),
            Signal::DoorsLocked(false),
            Signal::DriverDoorOpen(false),
            Signal::DriverSeatOccupied(false),
        ]),
    ));
    let anchors = &geometry.anchors;
    let mut radios: Vec<Radio> = (walkers.iter())
        .map(|_| Radio::new(cfg, anchors.len(), &mut rng))
        .collect();
    if let Some(sigma) = world.rssi_sigma_db {
        radios.iter_mut().for_each(|r| r.fast_db = sigma);
    }
    let (lo, hi) = locator.interval_s();
    if locator == Locator::Uwb {
        for r in &mut radios {
            let first = r.next[0];
            r.next.fill(first);
        }
    }
    // Time steps of 10 ms: the slow shadowing and the NLOS states evolve, readings fall due.
    let dt = 0.01;
    let decay = (-dt / SLOW_TAU_S).exp();
    let mut truth_next = 0.0;
    let mut t = 0.0;
    let mut door_done = false;
    while t <= end_s {
        if let Some(d) = door_s
            && !door_done
            && t >= d
        {
            lines.push(line(
                d,
                TraceEvent::Signals(vec![Signal::DriverDoorOpen(true)]),
            ));
            door_done = true;
        }
        for (w, radio) in walkers.iter().zip(radios.iter_mut()) {
            let (p, face) = w.at(t);
            if t >= truth_next {
                lines.push(line(
                    t,
                    TraceEvent::Truth {
                        key: w.key.to_string(),
                        x: r2(p[0]),
                        y: r2(p[1]),
                    },
                ));
            }
            let mut batch = Vec::new();
            for (i, &a) in anchors.iter().enumerate() {
                radio.slow[i] =
                    decay * radio.slow[i] + SLOW_DB * (1.0 - decay * decay).sqrt() * rng.gauss();
                let blocked_by_car = world.car_shadow && car_between(p, a);
                let body = behind(p, face, a);
                if locator == Locator::Uwb {
                    // NLOS: whenever the car or the holder's body is in the way, and a fifth
                    // of the time anyway (other cars, people); an episode lasts about a second.
                    let forced = blocked_by_car || body > 0.5;
                    match radio.nlos[i] {
                        None if forced || rng.chance(dt * 0.25) => {
                            radio.nlos[i] = Some(rng.uniform(0.3, 1.0));
                        }
                        Some(_) if !forced && rng.chance(dt * 1.0) => radio.nlos[i] = None,
                        _ => {}
                    }
                }
                if t < radio.next[i] {
                    continue;
                }
                if locator != Locator::Uwb {
                    radio.next[i] = t + rng.uniform(lo, hi);
                }
                if rng.chance(DROPOUT) {
                    continue;
                }
                let d2 = (p[0] - a[0]).powi(2) + (p[1] - a[1]).powi(2);
                let d3 = (d2 + radio.dz[i].powi(2)).sqrt().max(0.1);
                let name = cfg.anchors[i].clone();
                match locator {
                    Locator::Uwb => {
                        let m = if rng.chance(OUTLIER) {
                            rng.uniform(0.2, 20.0)
                        } else {
                            d3 + 0.1 * rng.gauss()
                                + radio.nlos[i].filter(|_| world.uwb_nlos).unwrap_or(0.0)
                        };
                        if m <= 30.0 {
                            batch.push((w.key.to_string(), name, r2(m.max(0.0))));
                        }
                    }
                    Locator::BleFast | Locator::BleSlow => {
                        let mut dbm = radio.p1m - 10.0 * radio.n * d3.log10()
                            + radio.slow[i]
                            + radio.fast_db * rng.gauss()
                            - body * w.body_db;
                        if blocked_by_car {
                            dbm -= radio.car_db;
                        }
                        if inside_cabin(a) {
                            dbm -= radio.glass_db;
                        }
                        if rng.chance(OUTLIER) {
                            dbm += rng.uniform(-25.0, 10.0);
                        }
                        if dbm >= SENSITIVITY_DBM {
                            let dbm = dbm.round().clamp(-127.0, 20.0);
                            lines.push(line(
                                t,
                                TraceEvent::Rssi(vec![(w.key.to_string(), name, dbm)]),
                            ));
                        }
                    }
                }
            }
            if locator == Locator::Uwb && t >= radio.next[0] {
                let next = t + rng.uniform(lo, hi);
                radio.next.fill(next);
                if !batch.is_empty() {
                    lines.push(line(t, TraceEvent::Ranges(batch)));
                }
            }
        }
        if t >= truth_next {
            truth_next += 0.5;
        }
        t += dt;
    }
    lines.sort_by_key(|l| l.t_ms);
    Run {
        locator,
        scenario,
        lines,
        driver_profile: driver_walker.map(|_| {
            // The first walker is the one at the driver's door.
            DRIVER.1
        }),
        door_ms: door_s.map(|d| (d * 1000.0).round() as Millis),
        walks: Walks {
            driver_straight: driver_walker.is_some_and(|i| walkers[i].straight()),
            driver_bearing_deg: driver_walker.map(|i| walkers[i].bearing_deg(driver_spot)),
            others_turn_m: (walkers.iter().enumerate())
                .filter(|&(i, _)| Some(i) != driver_walker)
                .filter_map(|(_, w)| w.turns_short_of(driver_spot))
                .min_by(f64::total_cmp),
        },
    }
}

/// `path` cut off after `length` metres, shifted `side` metres to its left.
fn shorten(path: &[Point], length: f64, side: f64) -> Vec<Point> {
    let mut out = vec![path[0]];
    let mut left = length.max(0.0);
    for w in path.windows(2) {
        let d = dist(w[0], w[1]);
        if d >= left {
            let f = left / d.max(1e-9);
            out.push([
                w[0][0] + f * (w[1][0] - w[0][0]),
                w[0][1] + f * (w[1][1] - w[0][1]),
            ]);
            break;
        }
        out.push(w[1]);
        left -= d;
    }
    if out.len() == 1 {
        out.push(path[0]);
    }
    // Beside the leader: shift every point along the first leg's normal.
    let (a, b) = (out[0], out[1]);
    let n = unit(a, b).map_or([0.0, 0.0], |u| [-u[1], u[0]]);
    out.iter()
        .map(|p| [p[0] + side * n[0], p[1] + side * n[1]])
        .collect()
}

/// What a run's decisions came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    /// The driver's profile was the last one recalled for a key by the door opening + 1 s.
    pub right: bool,
    /// Key-approach recalls of a profile that is not the one of the person at the driver's
    /// door (in a passenger-only run: any).
    pub wrong_motions: Vec<WrongMotion>,
    /// The right recall started this long before the door opened (ms; negative: after).
    pub head_start_ms: Option<i64>,
    /// How the run's people walked ([`Run::walks`]).
    pub walks: Walks,
}

/// A key-approach recall of a profile that is not the driver's.
#[derive(Debug, Clone, PartialEq)]
pub struct WrongMotion {
    /// When it started (ms).
    pub t_ms: Millis,
    pub profile: String,
    /// How long it ran, and how it ended (`None`: still running when the trace ended).
    pub ended: Option<(Millis, Outcome)>,
}

/// Score the replay's `decisions` of `run`.
pub fn score(run: &Run, decisions: &[Decision]) -> Score {
    let mut s = Score {
        walks: run.walks,
        ..Score::default()
    };
    let mut last: Option<(Millis, String)> = None;
    let deadline = run.door_ms.map(|d| d + 1000);
    // The wrong-key motion still running, if any.
    let mut open: Option<usize> = None;
    for d in decisions {
        if let What::MotionFinished {
            reason: Reason::KeyApproach,
            outcome,
        } = d.what
            && let Some(w) = open.take().and_then(|i| s.wrong_motions.get_mut(i))
        {
            w.ended = Some((d.t_ms.saturating_sub(w.t_ms), outcome));
        }
        if let What::MotionStarted {
            reason: Reason::KeyApproach,
            profile: Some(p),
        } = &d.what
        {
            if run.driver_profile != Some(p.as_str()) {
                open = Some(s.wrong_motions.len());
                s.wrong_motions.push(WrongMotion {
                    t_ms: d.t_ms,
                    profile: p.clone(),
                    ended: None,
                });
            }
            if deadline.is_some_and(|dl| d.t_ms <= dl) {
                last = Some((d.t_ms, p.clone()));
            }
        }
    }
    if let (Some(want), Some(door), Some((t, p))) = (run.driver_profile, run.door_ms, &last)
        && p == want
    {
        s.right = true;
        s.head_start_ms = Some(door as i64 - *t as i64);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped config, as the benchmark replays walks with.
    fn shipped() -> std::sync::Arc<crate::config::Config> {
        match crate::config::builtin() {
            Ok(c) => std::sync::Arc::new(c),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn routes_go_around_the_car() {
        let spot = [-1.45, 0.2];
        // From the passenger side: around the front or the back, never through the body.
        let r = route([10.0, 0.0], spot);
        assert!(r.len() >= 4, "{r:?}");
        for w in r.windows(2) {
            assert!(!crosses_box(w[0], w[1], HALF_WIDTH, HALF_LENGTH), "{r:?}");
        }
        // From the driver's side: straight.
        assert_eq!(route([-10.0, 3.0], spot).len(), 2);
    }

    #[test]
    fn the_car_blocks_the_far_side() {
        assert!(car_between([1.5, 0.0], [-0.95, 0.2]));
        assert!(!car_between([-1.5, 0.0], [-0.95, 0.2]));
        assert!(!car_between([1.5, 0.0], [0.0, 0.3]));
        assert!(inside_cabin([0.0, 0.3]));
    }

    #[test]
    fn a_walk_arrives_and_the_door_opens_after() {
        let cfg = shipped().keys.clone();
        for seed in 0..20 {
            let run = simulate(&cfg, Locator::BleFast, Scenario::DriverAlone, seed);
            let door = run.door_ms.unwrap_or_default();
            assert!(door > 8000, "{door}");
            let rssi = run
                .lines
                .iter()
                .filter(|l| matches!(l.event, TraceEvent::Rssi(_)))
                .count();
            // Four anchors at 5/s for about 12 s, less those lost or too weak.
            assert!(rssi > 100, "{rssi}");
            assert!(run.lines.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
        }
    }

    #[test]
    fn a_walk_round_the_car_or_down_an_aisle_is_not_straight() {
        let mut rng = Rng::new(1);
        let spot = [-1.45, 0.2];
        let walk = |path: &[Point], rng: &mut Rng| Walker::new("k", path, 0.0, 1.4, None, rng);
        assert!(walk(&route([-15.0, 1.0], spot), &mut rng).straight());
        // Paused half way, still straight.
        let paused = Walker::new(
            "k",
            &[[-15.0, 1.0], spot],
            0.0,
            1.4,
            Some((0.5, 2.0)),
            &mut rng,
        );
        assert!(paused.straight());
        // From the passenger's side, round a corner; down an aisle, with a turn at its end.
        assert!(!walk(&route([10.0, 0.0], spot), &mut rng).straight());
        assert!(!walk(&[[-15.0, 8.0], [-5.0, 0.0], spot], &mut rng).straight());
        // Of the benchmark's lone drivers, some walk straight and some do not.
        let cfg = shipped().keys.clone();
        let straight = (0..40)
            .filter(|&seed| {
                simulate(&cfg, Locator::Uwb, Scenario::DriverAlone, seed)
                    .walks
                    .driver_straight
            })
            .count();
        assert!((5..35).contains(&straight), "{straight} of 40");
    }

    #[test]
    fn a_walk_at_the_drivers_spot_that_turns_away_short_of_it_is_told_apart() {
        let mut rng = Rng::new(1);
        let spot = [-1.45, 0.2];
        let passenger = [1.45, 0.2];
        let walk =
            |path: &[Point], pause, rng: &mut Rng| Walker::new("k", path, 0.0, 1.4, pause, rng);
        // Straight at the spot down an aisle that ends 3 m short of it, then round the front.
        let decoy = walk(
            &[[-15.0, 0.2], [-4.45, 0.2], [-1.6, 3.1], passenger],
            None,
            &mut rng,
        );
        let turn = decoy.turns_short_of(spot);
        assert!(turn.is_some_and(|m| (m - 3.0).abs() < 1e-9), "{turn:?}");
        // A pause on the way is no turn; a driver who gets there has not turned away.
        let paused = walk(
            &[[-15.0, 0.2], [-4.45, 0.2], [-1.6, 3.1], passenger],
            Some((0.2, 1.0)),
            &mut rng,
        );
        assert!(
            paused
                .turns_short_of(spot)
                .is_some_and(|m| (m - 3.0).abs() < 1e-9)
        );
        assert_eq!(
            walk(&[[-15.0, 0.2], spot], None, &mut rng).turns_short_of(spot),
            None
        );
        // Straight at the front corner instead, 2.9 m ahead: a walk past the spot's side.
        let by = walk(&[[-15.0, 12.0], [-1.6, 3.1], passenger], None, &mut rng);
        assert_eq!(by.turns_short_of(spot), None);
        // Where they came from, seen from the door: from the side, from ahead.
        let side = walk(&[[-15.0, 0.2], spot], None, &mut rng).bearing_deg(spot);
        let ahead = walk(&[[-1.45, 15.2], spot], None, &mut rng).bearing_deg(spot);
        // A right-hand drive car's door, on the other side.
        let rhd = [1.45, 0.2];
        let rhd_side = walk(&[[15.0, 0.2], rhd], None, &mut rng).bearing_deg(rhd);
        assert!(
            side.abs() < 1e-9 && (ahead - 90.0).abs() < 1e-9 && rhd_side.abs() < 1e-9,
            "{side} {ahead} {rhd_side}"
        );
        // Of the benchmark's lone passengers, a few walk as a driver would at first.
        let cfg = shipped().keys.clone();
        let decoys = (0..400)
            .filter(|&seed| {
                let run = simulate(&cfg, Locator::Uwb, Scenario::PassengerOnly, seed);
                run.walks.others_turn_m.is_some()
            })
            .count();
        assert!((1..40).contains(&decoys), "{decoys} of 400");
    }

    /// [`simulate_in`] with the shipped config, scored on the daemon's own core.
    fn replayed(world: World, locator: Locator, scenario: Scenario, seed: u64) -> (Run, Score) {
        let cfg = shipped();
        let run = simulate_in(world, &cfg.keys, locator, scenario, seed);
        let s = score(&run, &crate::trace::replay(cfg, &run.lines));
        (run, s)
    }

    #[test]
    fn a_slow_locator_at_the_door_does_not_take_a_moment_for_the_truth() {
        // Walks where, in a world whose car body does not block, one slow reading swapped the
        // two keys' clouds at the moment the driver's door opened, and the seat moved to the
        // other person's profile.
        let open = World {
            car_shadow: false,
            ..World::default()
        };
        for (scenario, seed) in [
            (Scenario::DriverAndPassenger, 1_001_188),
            (Scenario::TwoToDriverDoor, 1_001_185),
        ] {
            let (_, s) = replayed(open, Locator::BleSlow, scenario, seed);
            assert!(
                s.wrong_motions.is_empty(),
                "{scenario:?}: {:?}",
                s.wrong_motions
            );
        }
    }

    #[test]
    fn with_precise_uwb_a_walker_who_turns_short_of_the_drivers_spot_is_not_selected() {
        // Walks of a UWB world without the non-line-of-sight bias, where the locator is
        // precise enough to select from metres out: a lone passenger walked straight at the
        // driver's spot and turned to the car's rear corner 3 m short of it, and was selected
        // half a second after the turn; the one in front of two walking in line at the
        // driver's door turned to the front of the car 1.5 m short of the spot, and was
        // selected while the driver was 2.5 m out.
        let precise = World {
            uwb_nlos: false,
            ..World::default()
        };
        for (scenario, seed) in [
            (Scenario::PassengerOnly, 1_001_617),
            (Scenario::DriverAndPassenger, 3_001_691),
        ] {
            let (run, s) = replayed(precise, Locator::Uwb, scenario, seed);
            let turn = run.walks.others_turn_m;
            assert!(turn.is_some_and(|m| m < 3.5), "{scenario:?}: {turn:?}");
            assert!(
                s.wrong_motions.is_empty(),
                "{scenario:?}: {:?}",
                s.wrong_motions
            );
        }
    }

    #[test]
    fn the_one_known_wrong_key_motion_stops_when_the_walker_turns_away() {
        // A world whose car body does not block the radio: a lone passenger walks straight
        // at the driver's spot down an aisle that ends 1.7 m from it and is selected as they
        // turn to the front corner. The recall stops once the key is released, well before
        // the seat would have reached the passenger's profile.
        let open = World {
            car_shadow: false,
            ..World::default()
        };
        let (_, s) = replayed(open, Locator::Uwb, Scenario::PassengerOnly, 1_000_524);
        assert!(
            (s.wrong_motions.iter()).all(|w| w
                .ended
                .is_some_and(|(ms, o)| o == Outcome::Stopped && ms < 1500)),
            "{:?}",
            s.wrong_motions
        );
    }

    #[test]
    fn two_at_the_door_a_faded_reading_does_not_hand_the_seat_to_the_companion() {
        // Walks of a noisier car park (fast shadowing 7.4 and 8 dB) where, with a slow locator,
        // the last reading of each anchor fitted the companion at the handle better than the
        // driver, whose phone had faded, and the door chose the companion. In the last two the
        // driver's filter was lost to the far side, so the companion's key looked alone.
        for (sigma, seed) in [
            (7.4, 1_000_519),
            (7.4, 1_000_679),
            (7.4, 2_000_463),
            (8.0, 3_000_872),
            (8.0, 1_000_867),
            // The driver's filter lost to the far side: one key on the driver's side.
            (7.4, 2_000_337),
            (8.0, 3_000_366),
        ] {
            let noisy = World {
                rssi_sigma_db: Some(sigma),
                ..World::default()
            };
            let scenario = Scenario::TwoToDriverDoor;
            let (_, s) = replayed(noisy, Locator::BleSlow, scenario, seed);
            assert!(
                s.wrong_motions.is_empty(),
                "seed {seed}: {:?}",
                s.wrong_motions
            );
        }
    }

    /// Walks of a lone driver with a BLE phone whose filter placed the phone a metre or two
    /// off the spot when the door opened (the car's body shadows the far anchors): the door,
    /// with no other key on the driver's side, chooses it.
    #[test]
    fn a_lone_ble_driver_placed_off_the_spot_is_chosen_by_the_door() {
        let cfg = shipped();
        for seed in SEEDS_OFF_THE_SPOT {
            let run = simulate(&cfg.keys, Locator::BleFast, Scenario::DriverAlone, seed);
            let s = score(&run, &crate::trace::replay(cfg.clone(), &run.lines));
            assert!(s.right && s.wrong_motions.is_empty(), "seed {seed}: {s:?}");
        }
    }

    const SEEDS_OFF_THE_SPOT: [u64; 4] = [1000002, 1000101, 1000126, 1000148];

    /// Every row of the selection benchmark, a few fixed seeds each, through the daemon's own
    /// core (`trace::replay`): never a wrong-key motion, and the right profile by the door
    /// opening + 1 s in most runs (a lower bar than the benchmark's goals; its figures are
    /// in docs/key-selection.md).
    #[test]
    fn every_row_with_fixed_seeds() {
        let cfg = shipped();
        const RUNS: u64 = 8;
        let mut report = Vec::new();
        let mut failures = Vec::new();
        for locator in Locator::ALL {
            for scenario in Scenario::ALL {
                let mut right = 0;
                for seed in 0..RUNS {
                    let run = simulate(&cfg.keys, locator, scenario, 7_000 + seed);
                    let s = score(&run, &crate::trace::replay(cfg.clone(), &run.lines));
                    for w in &s.wrong_motions {
                        failures.push(format!(
                            "{} / {} seed {seed}: {} recalled at {} ms",
                            w.profile,
                            w.t_ms,
                            locator.name(),
                            scenario.name()
                        ));
                    }
                    right += u64::from(s.right);
                }
                // Shares well below the benchmark's figures: a regression, not bad luck.
                let share = match (scenario, locator) {
                    (Scenario::PassengerOnly, _) => 0.0,
                    // About a quarter in the benchmark: in 8 runs, 1 is as likely as 2.
                    (Scenario::TwoToDriverDoor, Locator::BleSlow | Locator::BleFast) => 0.1,
                    (_, Locator::BleSlow) => 0.6,
                    _ => 0.85,
                };
                let bar = (share * RUNS as f64).ceil() as u64;
                report.push(format!(
                    "{} / {}: right {right} of {RUNS}",
                    locator.name(),
                    scenario.name()
                ));
                if right < bar {
                    failures.push(format!(
                        "{} / {}: right {right} of {RUNS}, fewer than {bar}",
                        locator.name(),
                        scenario.name()
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}\n{report:#?}");
    }
}
