//! The key locator: where each key is, from every reading of every anchor over the whole walk,
//! and which key is the driver's (pure, on the core's clock; used with `[keys.geometry]`).
//!
//! Each present key has a particle filter over its position and walking velocity in the car
//! frame. Between readings the particles walk (a velocity that changes smoothly, as a person's
//! does, at most [`MAX_SPEED`]); each reading weighs them by its likelihood: a UWB distance
//! narrowly, with a mixture for a too-long non-line-of-sight path and for outliers; an RSSI
//! with the log-distance path-loss model, log-normal shadowing, a body-blocked component and
//! outliers. From the particles come, per key, the probability of being *at* the driver's spot
//! and of being at it or walking to it (the velocity's path passes the spot within the
//! horizon: intent, not only distance).
//!
//! The selection, before the door opens: a key whose probability of heading to the driver's
//! spot reaches `select_probability` within `select_radius_m`, for `dwell_s` and two batches
//! of readings, while no other key is as plausible and not clearly farther. A fast precise
//! locator gets there metres away; a slow or noisy one rarely, and then the door decides:
//! when the driver's door opens with no key selected, the key with the highest probability of
//! being the one at the spot is selected at once if that reaches `door_probability` (for
//! `door_window_s` more readings may come). A key that was not present is never selected.
//! Once the door has been decided, or the seat is occupied, nothing changes until the door
//! closes with the seat empty.
//!
//! The filters are seeded from the key id: the same readings at the same times give the same
//! decisions, in the daemon and in the replay tool.

use std::collections::BTreeMap;

use super::Millis;
use crate::config::{Geometry, KeyConfig, Point};

/// Particles per key.
pub const PARTICLES: usize = 512;
/// No one walks faster (m/s).
pub const MAX_SPEED: f64 = 2.5;
/// A walker changes course, stops or sets off about this often (s).
const MANOEUVRE_S: f64 = 3.0;
/// The random acceleration of a walk between manoeuvres (m/s per square root of a second).
const ACCEL_SIGMA: f64 = 0.25;
/// Position noise beside the walk (m per square root of a second).
const WANDER_SIGMA: f64 = 0.2;
/// The spread of a fresh walking velocity, per axis (m/s).
const WALK_SIGMA: f64 = 1.0;
/// A person slower than this is standing, not walking somewhere.
const MIN_WALK_SPEED: f64 = 0.4;
/// How far ahead a walk counts as heading to the spot (s).
const HORIZON_S: f64 = 8.0;
/// A walk heads to the spot when it passes within `spot_radius_m` * 1.25 of it, plus this
/// share of the way still to go (a person aims better as the door nears).
const AIM_SPREAD: f64 = 0.15;
/// The walking velocity is the slope of the mean positions over this long (ms)...
const TRACK_MS: Millis = 2000;
/// ... once they span at least this long.
const TRACK_MIN_MS: Millis = 1000;
/// ... and the slope over the last this long alone must head there too, once it spans half
/// of it (ms): a turn shows there first.
const RECENT_TRACK_MS: Millis = 1000;
/// Particles are kept within this distance of the driver's spot (m).
const FIELD_M: f64 = 40.0;
/// A prediction step is taken when at least this much time has passed.
const MIN_STEP_MS: Millis = 20;
/// Share of readings that are outliers (reflections), and of RSSI readings an anchor sees
/// through the holder's body, and of UWB distances over a non-line-of-sight path.
const OUTLIER: f64 = 0.03;
const BODY_BLOCKED: f64 = 0.3;
const NLOS: f64 = 0.25;
/// ln of the outlier density: an RSSI anywhere within 80 dB, a distance within 30 m.
const RSSI_FLOOR: f64 = -7.888_609_052_210_118; // ln(0.03 / 80)
const RANGE_FLOOR: f64 = -6.907_755_278_982_137; // ln(0.03 / 30)
/// Another key plausibly on the driver's side, and not clearly farther from the spot, keeps a
/// selection from being made.
const RIVAL_PROBABILITY: f64 = 0.3;
/// A selected key heading to the spot with less than this is released.
const RELEASE_PROBABILITY: f64 = 0.3;
/// At the door: a key with less than this probability of being at the spot is not chosen.
const DOOR_MIN_AT_SPOT: f64 = 0.2;
/// At the door with no other key on the driver's side, it is enough that a key is on that
/// side within this distance of the spot (m): someone is at the handle, and a BLE filter
/// cannot place a phone to the metre there, with the car's body shadowing two of its anchors.
const DOOR_NEAR_M: f64 = 3.0;
/// ... and that it is near with at least this probability.
const DOOR_NEAR_MIN: f64 = 0.5;
/// The weight of "someone with none of the bound keys opened the door" (a valet, a physical
/// key): the door's choice is at most `p / (p + NOBODY)` sure.
const NOBODY: f64 = 0.05;
/// Readings of one anchor this recent describe where the key is now, for drawing new
/// particles (ms).
const RECENT_MS: Millis = 1500;
/// When the door checks who stands at the spot, a slow locator's readings of this long are
/// weighed (ms): it has one or two readings of an anchor within [`RECENT_MS`], and one faded
/// reading of the driver's phone must not hand the seat to the companion. Whoever reached the
/// handle first has the more readings from there.
const DOOR_LOOK_BACK_MS: Millis = 3000;
/// A locator is slow, for [`DOOR_LOOK_BACK_MS`], while a key has fewer readings than this
/// within [`RECENT_MS`]; a fast one is weighed on the last reading of each anchor (a longer look
/// back counts the walk up to the handle against being at it).
const SLOW_BELOW_READINGS: usize = 8;
/// With one key on the driver's side, a slow locator's look back also vetoes the door's
/// choice when another key's readings fit the spot nearly as well (within this, in mean
/// log-likelihood per reading): that key's filter may be lost to the far side while its phone
/// is at the handle. Narrower than [`DOOR_FIT_MARGIN`]: a passenger who walked beside the
/// driver until 3 s ago fits the spot for part of it (at 0.5 the driver-and-passenger row
/// loses 2 points more, and no more wrong keys are caught).
const DOOR_LONG_MARGIN: f64 = 0.25;
/// Augmented MCL: the short- and long-term averages of how well the particles explain the
/// readings (their rates per batch); while the short one falls behind, particles are drawn
/// anew from the recent readings, at most this share per batch, at least the floor.
const FIT_FAST: f64 = 0.3;
const FIT_SLOW: f64 = 0.03;
const INJECT_MAX: f64 = 0.25;
const INJECT_FLOOR: f64 = 0.01;
/// RSSI shadowing stays alike for about this long (ms), and a reading counts as at least
/// this share of an independent one.
const SHADOW_MS: Millis = 1000;
const MIN_NEWS: f64 = 0.15;
/// Candidate positions drawn for each new particle, of which one is kept by its likelihood.
const CANDIDATES: usize = 6;
/// Two keys at the driver's door: the door weighs this long of readings before it decides
/// (within the door window; ms).
const DOOR_CONTEST_MS: Millis = 800;
/// A key's estimate is summed up from its particles at most this often (ms).
const SUMMARY_MS: Millis = 100;
/// At the door, the candidate's recent readings must fit a phone at the spot better than any
/// other key's by this much (mean log-likelihood per reading).
const DOOR_FIT_MARGIN: f64 = 0.75;
/// Key estimates are published at most this often.
pub const ESTIMATE_INTERVAL_MS: Millis = 200;
/// A selection's dwell grows by this much per metre from the spot (ms). A passenger walking
/// straight at the driver's spot turns to the car's corner 2-4 m short of it now and then; a
/// precise locator (UWB with its non-line-of-sight bias corrected) saw the walk head there
/// until 0.5 s after the turn and selected the passenger's key 2.8 m out at 120 ms per metre.
const DWELL_PER_M: f64 = 180.0;
/// Before the door opens, with another key on the driver's side within the select radius,
/// only a key this near the spot is selected (m): the one in front of two walking in line
/// at the driver's door may still turn to the front of the car 1.5 m short of it.
const CONTESTED_SELECT_M: f64 = 1.0;
/// Batches of readings a selection needs during its dwell.
const DWELL_BATCHES: u64 = 2;

/// One reading of one anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// A distance in metres (UWB).
    Range(f64),
    /// A received signal strength in dBm (BLE).
    Rssi(f64),
}

impl Reading {
    /// Smaller for a reading that places the key more tightly (nearer its anchor).
    fn telling(&self) -> f64 {
        match *self {
            Reading::Rssi(dbm) => -dbm,
            Reading::Range(m) => m,
        }
    }
}

/// What the filter says of one key.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// The mean position.
    pub x: f64,
    pub y: f64,
    /// Probability of being within `spot_radius_m` of the driver's spot.
    pub at_spot: f64,
    /// Probability of being at the spot or walking to it (within `select_radius_m`).
    pub heading: f64,
    /// Mean and spread of the distance to the spot.
    pub distance: f64,
    pub distance_sd: f64,
    /// Probability of being on the driver's side of the car's middle.
    pub driver_side: f64,
    /// Probability of being near the driver's door: on the driver's side and within
    /// [`DOOR_NEAR_M`] of the spot.
    pub near_door: f64,
}

/// xorshift64*, seeded per key.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn seeded(key: &str) -> Rng {
        // FNV-1a of the key id; never 0.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    #[inline]
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Two independent standard normal numbers (Box-Muller).
    fn gauss2(&mut self) -> (f64, f64) {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        (r * c, r * s)
    }
}

fn normal_ln(e: f64, sigma: f64) -> f64 {
    -0.5 * (e / sigma).powi(2) - sigma.ln() - 0.918_938_533_204_672_8
}

/// The mean log-likelihood per reading of `readings` for a phone at `p` (None without one).
fn mean_fit<'a>(
    readings: impl Iterator<Item = &'a (Point, Millis, Reading)>,
    p: Point,
    models: &Models,
) -> Option<f64> {
    let (sum, n) = readings.fold((0.0, 0), |(sum, n), &(a, _, r)| {
        (sum + models.ln_likelihood(r, p, a), n + 1)
    });
    (n > 0).then(|| sum / n as f64)
}

fn ln_sum(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// The car's body as the radio sees it: the outline shrunk by [`SKIN_M`]. A straight path
/// from the key to an anchor that crosses it goes through the car; an anchor inside it is in
/// the cabin, behind glass, and sees out all round.
#[derive(Debug, Clone, Copy)]
struct Body {
    lo: Point,
    hi: Point,
}

/// Anchors sit on the car's skin and see past the car on their own side: the body that
/// blocks is the outline less this much (m).
const SKIN_M: f64 = 0.3;
/// Of readings through the car's body: the share that are weakened by it (BLE: some come
/// round it by reflections), and of UWB distances, the share over a non-line-of-sight path.
/// Half, not the most a car park shows: with more, a car whose body blocks less than the
/// model says (a low anchor, an open window) places keys worse than with no body at all.
const CAR_BLOCKED: f64 = 0.5;
const CAR_NLOS: f64 = 0.5;

impl Body {
    fn new([lo, hi]: [Point; 2]) -> Option<Body> {
        let lo = [lo[0] + SKIN_M, lo[1] + SKIN_M];
        let hi = [hi[0] - SKIN_M, hi[1] - SKIN_M];
        (lo[0] < hi[0] && lo[1] < hi[1]).then_some(Body { lo, hi })
    }

    #[inline]
    fn inside(&self, a: Point) -> bool {
        (self.lo[0] < a[0] && a[0] < self.hi[0]) && (self.lo[1] < a[1] && a[1] < self.hi[1])
    }

    /// Does the straight path from `p` to the anchor at `a` cross the body? (The slab test.)
    #[inline]
    fn blocks(&self, p: Point, a: Point) -> bool {
        if self.inside(a) {
            return false;
        }
        // Most paths never reach the body: both ends lie beyond one of its faces (a particle
        // on the anchor's own side of the car). Saying so spares the slab test's divisions,
        // for every particle and reading; the slab test would say the same.
        for k in 0..2 {
            if (p[k] <= self.lo[k] && a[k] <= self.lo[k])
                || (p[k] >= self.hi[k] && a[k] >= self.hi[k])
            {
                return false;
            }
        }
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for k in 0..2 {
            let d = a[k] - p[k];
            if d.abs() < 1e-12 {
                if p[k] <= self.lo[k] || p[k] >= self.hi[k] {
                    return false;
                }
                continue;
            }
            let (ta, tb) = ((self.lo[k] - p[k]) / d, (self.hi[k] - p[k]) / d);
            t0 = t0.max(ta.min(tb));
            t1 = t1.min(ta.max(tb));
            if t1 <= t0 {
                return false;
            }
        }
        true
    }
}

/// The measurement models, from `[keys.ble]` and `[keys.uwb]`, with their log-likelihoods
/// tabulated by residual (a reading weighs hundreds of particles): one table for a path in
/// the open and, with the car's body known, one for a path through it.
#[derive(Debug, Clone)]
struct Models {
    p1m: f64,
    /// 10 n / ln 10: RSSI = p1m - k ln d.
    k: f64,
    sigma_db: f64,
    sigma_m: f64,
    nlos_m: f64,
    body: Option<Body>,
    /// ln p(RSSI residual), from -RSSI_SPAN by RSSI_STEP; beyond it the outlier floor. In the
    /// open and through the car.
    rssi: Vec<f64>,
    rssi_car: Vec<f64>,
    /// ln p(distance residual), from RANGE_LO by RANGE_STEP.
    range: Vec<f64>,
    range_car: Vec<f64>,
    /// Standard normal numbers to draw from (a table: a draw is one random number).
    /// (An array: the top 12 bits of a draw index it with no bounds check.)
    normals: Box<[f64; NORMALS]>,
}

const RSSI_SPAN: f64 = 80.0;
const RSSI_STEP: f64 = 0.25;
const RANGE_LO: f64 = -4.0;
const RANGE_HI: f64 = 8.0;
const RANGE_STEP: f64 = 0.005;
/// Table entries per dB and per metre, for [`lookup`].
const RSSI_PER_DB: f64 = 1.0 / RSSI_STEP;
const RANGE_PER_M: f64 = 1.0 / RANGE_STEP;
const NORMALS: usize = 4096;

fn table(lo: f64, hi: f64, step: f64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let n = ((hi - lo) / step).round() as usize;
    (0..=n).map(|i| f(lo + i as f64 * step)).collect()
}

/// The entry of `t` (from `lo`, `per_unit` entries per unit) nearest `e`; beyond it, `floor`.
/// This runs for every particle and reading: it multiplies rather than divides, and adds a
/// half and truncates rather than calling `f64::round` (a libm call on x86-64, which costs
/// more than the rest of the lookup).
#[inline]
fn lookup(t: &[f64], lo: f64, per_unit: f64, e: f64, floor: f64) -> f64 {
    let i = (e - lo) * per_unit + 0.5;
    // Truncation is the floor for i >= 0; a NaN fails the test, and `as` saturates a huge i
    // to beyond the table.
    if i >= 0.0 {
        t.get(i as usize).copied().unwrap_or(floor)
    } else {
        floor
    }
}

impl Models {
    fn new(cfg: &KeyConfig) -> Models {
        let (sigma_db, body_db) = (cfg.ble.sigma_db, cfg.ble.body_loss_db);
        let car_db = cfg.ble.car_loss_db;
        // The particles are no finer than a few centimetres.
        let sigma_m = cfg.uwb.sigma_m.hypot(0.05);
        let nlos_m = cfg.uwb.nlos_bias_m;
        // In the open: shadowing, the holder's body now and then, outliers.
        let open = |e: f64, widen: f64| {
            let sigma = sigma_db + widen;
            let clear = (1.0 - BODY_BLOCKED - OUTLIER).ln() + normal_ln(e, sigma);
            let blocked = BODY_BLOCKED.ln() + normal_ln(e + body_db, sigma + 1.0);
            ln_sum(clear, blocked)
        };
        let rssi = table(-RSSI_SPAN, RSSI_SPAN, RSSI_STEP, |e| {
            ln_sum(open(e, 0.0), RSSI_FLOOR)
        });
        // Through the car: most readings weaker by about car_db (how much varies with the
        // path: wider), some come round it.
        let rssi_car = table(-RSSI_SPAN, RSSI_SPAN, RSSI_STEP, |e| {
            let round = (1.0 - CAR_BLOCKED).ln() + open(e, 0.0);
            let through = CAR_BLOCKED.ln() + open(e + car_db, 2.0);
            ln_sum(ln_sum(round, through), RSSI_FLOOR)
        });
        let half = nlos_m / 2.0;
        let range_with = |nlos: f64| {
            table(RANGE_LO, RANGE_HI, RANGE_STEP, |e| {
                let los = (1.0 - nlos - OUTLIER).ln() + normal_ln(e, sigma_m);
                let nlos = nlos.ln() + normal_ln(e - half, (half / 3f64.sqrt()).hypot(sigma_m));
                ln_sum(ln_sum(los, nlos), RANGE_FLOOR)
            })
        };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let normals = Box::new(std::array::from_fn(|_| rng.gauss2().0));
        Models {
            p1m: cfg.ble.rssi_at_1m_dbm,
            k: 10.0 * cfg.ble.path_loss_exponent / std::f64::consts::LN_10,
            sigma_db,
            sigma_m,
            nlos_m,
            body: cfg
                .geometry
                .as_ref()
                .and_then(|g| g.body)
                .and_then(Body::new),
            rssi,
            rssi_car,
            range: range_with(NLOS),
            range_car: range_with(CAR_NLOS),
            normals,
        }
    }

    /// A standard normal number.
    // Inlined, as the other small functions below that run for every particle: a build for
    // size (opt-level "s", as this crate once was) otherwise leaves them calls in the hot loops.
    #[inline]
    fn normal(&self, rng: &mut Rng) -> f64 {
        self.normals[(rng.next_u64() >> 52) as usize]
    }

    /// ln p(reading of the anchor at `a` | the key is at `p`).
    // Always inlined: weighing calls it for every particle, and inlined there the work that
    // depends on the reading alone is done once per batch, not once per particle. A build for
    // size would keep it a call (with the body's box copied to the stack each time).
    #[inline(always)]
    fn ln_likelihood(&self, r: Reading, p: Point, a: Point) -> f64 {
        let d2 = (p[0] - a[0]).powi(2) + (p[1] - a[1]).powi(2);
        let car = self.body.is_some_and(|b| b.blocks(p, a));
        match r {
            Reading::Rssi(dbm) => {
                // Nearer than 20 cm the model says nothing more.
                let pred = self.p1m - self.k * 0.5 * d2.max(0.04).ln();
                let t = if car { &self.rssi_car } else { &self.rssi };
                lookup(t, -RSSI_SPAN, RSSI_PER_DB, dbm - pred, RSSI_FLOOR)
            }
            Reading::Range(m) => {
                let t = if car { &self.range_car } else { &self.range };
                lookup(t, RANGE_LO, RANGE_PER_M, m - d2.sqrt(), RANGE_FLOOR)
            }
        }
    }

    /// A distance from the anchor a reading suggests, drawn from its spread.
    fn sample_distance(&self, r: Reading, rng: &mut Rng) -> f64 {
        let g = self.normal(rng);
        match r {
            Reading::Rssi(dbm) => {
                let ln_d = (self.p1m - dbm) / self.k;
                // Wider than the model: body loss and calibration make it look farther.
                (ln_d + g * 1.5 * self.sigma_db / self.k).exp()
            }
            Reading::Range(m) => m - rng.unit() * self.nlos_m + 2.0 * self.sigma_m * g,
        }
        .clamp(0.1, FIELD_M)
    }
}

/// One key's filter: particles as columns.
#[derive(Debug, Clone)]
struct Filter {
    x: Vec<f64>,
    y: Vec<f64>,
    vx: Vec<f64>,
    vy: Vec<f64>,
    /// Normalised weights, and their logarithms (less the largest).
    w: Vec<f64>,
    lw: Vec<f64>,
    rng: Rng,
    /// Time the particles stand at.
    at: Millis,
    /// The last reading.
    last: Millis,
    /// Batches of readings taken in all.
    batches: u64,
    /// Batches in a row that no particle explained.
    lost: u32,
    /// The last reading of each anchor: (anchor, time, reading).
    recent: Vec<(Point, Millis, Reading)>,
    /// Every reading of the last [`DOOR_LOOK_BACK_MS`]: (anchor, time, reading).
    heard: std::collections::VecDeque<(Point, Millis, Reading)>,
    /// When the estimate was last summed up.
    summarised: Option<Millis>,
    /// Short- and long-term averages of the mean likelihood per reading (augmented MCL).
    fit_fast: f64,
    fit_slow: f64,
    /// The mean position after each batch of the last [`TRACK_MS`]: (time, x, y).
    track: std::collections::VecDeque<(Millis, f64, f64)>,
    est: Estimate,
}

impl Filter {
    fn new(key: &str, now: Millis) -> Filter {
        Filter {
            x: vec![0.0; PARTICLES],
            y: vec![0.0; PARTICLES],
            vx: vec![0.0; PARTICLES],
            vy: vec![0.0; PARTICLES],
            w: vec![1.0 / PARTICLES as f64; PARTICLES],
            lw: vec![0.0; PARTICLES],
            rng: Rng::seeded(key),
            at: now,
            last: now,
            batches: 0,
            lost: 0,
            recent: Vec::new(),
            heard: std::collections::VecDeque::new(),
            summarised: None,
            fit_fast: 0.0,
            fit_slow: 0.0,
            track: std::collections::VecDeque::new(),
            est: Estimate::default(),
        }
    }

    /// Spread the particles over what `batch` allows: around the anchor with the most telling
    /// reading, at the distances it suggests, in every direction, walking any way.
    fn seed(&mut self, batch: &[(Point, Reading)], models: &Models) {
        let Some(&(anchor, r)) = batch
            .iter()
            .min_by(|a, b| a.1.telling().total_cmp(&b.1.telling()))
        else {
            return;
        };
        for i in 0..PARTICLES {
            let d = models.sample_distance(r, &mut self.rng);
            let (s, c) = (std::f64::consts::TAU * self.rng.unit()).sin_cos();
            self.x[i] = anchor[0] + d * c;
            self.y[i] = anchor[1] + d * s;
            self.vx[i] = WALK_SIGMA * models.normal(&mut self.rng);
            self.vy[i] = WALK_SIGMA * models.normal(&mut self.rng);
            self.w[i] = 1.0 / PARTICLES as f64;
            self.lw[i] = 0.0;
        }
    }

    /// Let the particles walk until `now`: most keep their velocity, with a small random
    /// acceleration (people walk straight); a few turn, stop or set off anew (a manoeuvre,
    /// about every [`MANOEUVRE_S`]), so that the filter follows a walker who does.
    fn predict(&mut self, now: Millis, spot: Point, models: &Models) {
        if now < self.at + MIN_STEP_MS {
            return;
        }
        let dt = (now - self.at) as f64 / 1000.0;
        self.at = now;
        let manoeuvre = 1.0 - (-dt / MANOEUVRE_S).exp();
        let kick = ACCEL_SIGMA * dt.sqrt();
        let rng = &mut self.rng;
        for i in 0..PARTICLES {
            let (gx, gy) = (models.normal(rng), models.normal(rng));
            let (mut vx, mut vy) = if rng.unit() < manoeuvre {
                if rng.unit() < 0.5 {
                    let slow = 0.3 * rng.unit();
                    (self.vx[i] * slow, self.vy[i] * slow)
                } else {
                    (WALK_SIGMA * gx, WALK_SIGMA * gy)
                }
            } else {
                (self.vx[i] + kick * gx, self.vy[i] + kick * gy)
            };
            // Squares and sqrt, not hypot: libm's hypot costs more than the rest of a step.
            let v2 = vx * vx + vy * vy;
            if v2 > MAX_SPEED * MAX_SPEED {
                let v = v2.sqrt();
                vx *= MAX_SPEED / v;
                vy *= MAX_SPEED / v;
            }
            // And a little wander of its own, so that the cloud follows the readings even
            // where its velocities are wrong.
            let (hx, hy) = (models.normal(rng), models.normal(rng));
            let mut x = self.x[i] + vx * dt + WANDER_SIGMA * dt.sqrt() * hx;
            let mut y = self.y[i] + vy * dt + WANDER_SIGMA * dt.sqrt() * hy;
            let (dx, dy) = (x - spot[0], y - spot[1]);
            let r2 = dx * dx + dy * dy;
            if r2 > FIELD_M * FIELD_M {
                let r = r2.sqrt();
                x = spot[0] + dx * FIELD_M / r;
                y = spot[1] + dy * FIELD_M / r;
            }
            (self.x[i], self.y[i], self.vx[i], self.vy[i]) = (x, y, vx, vy);
        }
    }

    /// Weigh the particles by one batch of readings; resample when few carry the weight.
    /// Returns false when no particle explained the batch (the filter has lost the key).
    /// `news` is how much each reading of `batch` tells that its anchor's last did not (see
    /// [`Filter::news`]).
    fn weigh(&mut self, batch: &[(Point, Reading)], news: &[f64], models: &Models) -> bool {
        let mut best_fit = f64::NEG_INFINITY;
        let readings: f64 = news.iter().sum();
        let per_reading = 1.0 / readings.max(1e-9);
        let mut mean_fit = 0.0;
        // Reading by reading over all the particles, not particle by particle over the
        // readings: the steps of the loop (a logarithm each, for RSSI) are then independent of
        // each other and overlap. The sums are the same, added in the same order.
        let mut fits = [0.0; PARTICLES];
        for (&(a, r), &k) in batch.iter().zip(news) {
            for ((fit, &x), &y) in fits.iter_mut().zip(&self.x).zip(&self.y) {
                *fit += k * models.ln_likelihood(r, [x, y], a);
            }
        }
        for (i, &fit) in fits.iter().enumerate() {
            best_fit = best_fit.max(fit);
            // How well the cloud explains the batch, from every fourth particle (an exp each).
            if i % 4 == 0 {
                mean_fit += 4.0 * self.w[i] * (fit * per_reading).exp();
            }
            self.lw[i] += fit;
        }
        if self.fit_slow == 0.0 {
            (self.fit_slow, self.fit_fast) = (mean_fit, mean_fit);
        } else {
            self.fit_slow += FIT_SLOW * (mean_fit - self.fit_slow);
            self.fit_fast += FIT_FAST * (mean_fit - self.fit_fast);
        }
        let max = self.lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for (w, lw) in self.w.iter_mut().zip(self.lw.iter_mut()) {
            *lw -= max;
            *w = lw.exp();
            sum += *w;
        }
        let mut sq = 0.0;
        for w in self.w.iter_mut() {
            *w /= sum;
            sq += *w * *w;
        }
        if 1.0 / sq < PARTICLES as f64 / 2.0 {
            self.resample(models);
        }
        // Every reading an outlier to every particle: not one of them is near the key.
        best_fit >= (RSSI_FLOOR.max(RANGE_FLOOR) + 1.0) * readings
    }

    /// Systematic resampling, with a little jitter so that copies part again.
    fn resample(&mut self, models: &Models) {
        let n = PARTICLES;
        let step = 1.0 / n as f64;
        let mut u = self.rng.unit() * step;
        let (mut j, mut c) = (0, self.w[0]);
        let mut pick = Vec::with_capacity(n);
        for _ in 0..n {
            while u > c && j + 1 < n {
                j += 1;
                c += self.w[j];
            }
            pick.push(j);
            u += step;
        }
        let take = |v: &[f64]| pick.iter().map(|&j| v[j]).collect::<Vec<f64>>();
        (self.x, self.y, self.vx, self.vy) =
            (take(&self.x), take(&self.y), take(&self.vx), take(&self.vy));
        let rng = &mut self.rng;
        for i in 0..n {
            self.x[i] += 0.03 * models.normal(rng);
            self.y[i] += 0.03 * models.normal(rng);
            self.vx[i] += 0.05 * models.normal(rng);
            self.vy[i] += 0.05 * models.normal(rng);
            self.w[i] = step;
            self.lw[i] = 0.0;
        }
    }

    /// How much each RSSI reading of `batch` is news: shadowing (walls, cars, the holder's
    /// hand) changes over about [`SHADOW_MS`], so a reading soon after its anchor's last one
    /// largely repeats its error, and weighing both in full would make the filter far surer
    /// than the radio allows (a key two metres from the door taken for the one at it). Each
    /// counts as `dt / SHADOW_MS` of a reading (at least [`MIN_NEWS`], at most 1). Distances
    /// count in full.
    fn news(&self, batch: &[(Point, Reading)], now: Millis) -> Vec<f64> {
        (batch.iter())
            .map(|&(a, r)| match r {
                Reading::Range(_) => 1.0,
                Reading::Rssi(_) => self.recent.iter().find(|e| e.0 == a).map_or(1.0, |e| {
                    ((now - e.1) as f64 / SHADOW_MS as f64).clamp(MIN_NEWS, 1.0)
                }),
            })
            .collect()
    }

    /// How well this key's recent readings fit a phone at `p`: the mean log-likelihood per
    /// reading (None without a recent reading).
    fn fit_at(&self, p: Point, now: Millis, models: &Models) -> Option<f64> {
        let recent = self.recent.iter().filter(|e| e.1 + RECENT_MS >= now);
        mean_fit(recent, p, models)
    }

    /// How well this key's readings fit a phone at `p` for the door's check: as
    /// [`Filter::fit_at`], but with a slow locator every reading of the last
    /// [`DOOR_LOOK_BACK_MS`].
    fn door_fit(&self, p: Point, now: Millis, models: &Models) -> Option<f64> {
        let recent = (self.heard.iter().rev())
            .take_while(|e| e.1 + RECENT_MS >= now)
            .count();
        if recent >= SLOW_BELOW_READINGS {
            return self.fit_at(p, now, models);
        }
        let since = now.saturating_sub(DOOR_LOOK_BACK_MS);
        mean_fit(self.heard.iter().filter(|e| e.1 >= since), p, models)
    }

    /// Remember `batch` as the latest reading of each of its anchors, forgetting the stale.
    fn remember(&mut self, batch: &[(Point, Reading)], now: Millis) {
        for &(a, r) in batch {
            match self.recent.iter_mut().find(|e| e.0 == a) {
                Some(e) => (e.1, e.2) = (now, r),
                None => self.recent.push((a, now, r)),
            }
        }
        self.recent.retain(|e| e.1 + RECENT_MS >= now);
        self.heard.extend(batch.iter().map(|&(a, r)| (a, now, r)));
        while self
            .heard
            .front()
            .is_some_and(|e| e.1 + DOOR_LOOK_BACK_MS < now)
        {
            self.heard.pop_front();
        }
    }

    /// Augmented MCL: while the particles explain the readings worse than they used to (the
    /// walker is not where the cloud is: it got lost far out, where a reading says little),
    /// replace the least likely of them with particles drawn from the recent readings of
    /// every anchor: around the anchor with the most telling one, at the distance it suggests,
    /// kept by how well they explain all of them.
    /// Leaves the weights for [`Filter::weigh`] to renormalise: call it right before.
    fn inject(&mut self, models: &Models) {
        let share = (1.0 - self.fit_fast / self.fit_slow.max(f64::MIN_POSITIVE))
            .clamp(INJECT_FLOOR, INJECT_MAX);
        let Some(&(anchor, _, reference)) =
            (self.recent.iter()).min_by(|a, b| a.2.telling().total_cmp(&b.2.telling()))
        else {
            return;
        };
        let n = (share * PARTICLES as f64).round() as usize;
        if n == 0 {
            return;
        }
        let mut order: Vec<usize> = (0..PARTICLES).collect();
        order.select_nth_unstable_by(n - 1, |&a, &b| self.lw[a].total_cmp(&self.lw[b]));
        // The weights are exp(lw) / S with the largest lw 0, so S = 1 / the largest weight:
        // a new particle gets the mean weight, S / N, without an exp per particle.
        let max_w = self.w.iter().copied().fold(0.0, f64::max);
        let lw = -(max_w * PARTICLES as f64).max(f64::MIN_POSITIVE).ln();
        for &i in &order[..n] {
            let mut best = (f64::NEG_INFINITY, anchor);
            let mut total = 0.0;
            for _ in 0..CANDIDATES {
                let d = models.sample_distance(reference, &mut self.rng);
                let (s, c) = (std::f64::consts::TAU * self.rng.unit()).sin_cos();
                let p = [anchor[0] + d * c, anchor[1] + d * s];
                let fit: f64 = (self.recent.iter())
                    .map(|&(a, _, r)| models.ln_likelihood(r, p, a))
                    .sum();
                // One of the candidates, each by its likelihood (reservoir sampling).
                let l = fit.exp();
                total += l;
                if best.0 == f64::NEG_INFINITY || self.rng.unit() * total < l {
                    best = (fit, p);
                }
            }
            (self.x[i], self.y[i]) = (best.1[0], best.1[1]);
            self.vx[i] = WALK_SIGMA * models.normal(&mut self.rng);
            self.vy[i] = WALK_SIGMA * models.normal(&mut self.rng);
            self.lw[i] = lw;
            // Near enough for weigh's fit, which comes next and renormalises from lw.
            self.w[i] = 1.0 / PARTICLES as f64;
        }
    }

    /// The walking velocity and its uncertainty (per axis, m/s): the least-squares slope of
    /// the mean positions over the last [`TRACK_MS`], its standard error taken no smaller than
    /// the spread of the particles allows (a cloud metres wide cannot tell a walk's direction).
    fn velocity(&self, spread: f64) -> Option<(f64, f64, f64)> {
        self.velocity_over(spread, TRACK_MS, TRACK_MIN_MS)
    }

    /// [`Filter::velocity`] from the mean positions of the last `window` ms only, once they
    /// span at least `min` ms.
    fn velocity_over(&self, spread: f64, window: Millis, min: Millis) -> Option<(f64, f64, f64)> {
        let &(t1, ..) = self.track.back()?;
        let track: Vec<(Millis, f64, f64)> = (self.track.iter())
            .filter(|p| p.0 + window >= t1)
            .copied()
            .collect();
        let &(t0, ..) = track.first()?;
        if t1 < t0 + min || track.len() < 3 {
            return None;
        }
        let n = track.len() as f64;
        let ts = |t: Millis| (t - t0) as f64 / 1000.0;
        let tm = track.iter().map(|p| ts(p.0)).sum::<f64>() / n;
        let xm = track.iter().map(|p| p.1).sum::<f64>() / n;
        let ym = track.iter().map(|p| p.2).sum::<f64>() / n;
        let stt: f64 = track.iter().map(|p| (ts(p.0) - tm).powi(2)).sum();
        let sx: f64 = track.iter().map(|p| (ts(p.0) - tm) * (p.1 - xm)).sum();
        let sy: f64 = track.iter().map(|p| (ts(p.0) - tm) * (p.2 - ym)).sum();
        let (vx, vy) = (sx / stt, sy / stt);
        let resid: f64 = (track.iter())
            .map(|p| {
                let t = ts(p.0) - tm;
                (p.1 - xm - vx * t).powi(2) + (p.2 - ym - vy * t).powi(2)
            })
            .sum::<f64>()
            / (2.0 * (n - 2.0).max(1.0));
        let span = ts(t1);
        let se = (resid / stt)
            .sqrt()
            .max(spread * std::f64::consts::SQRT_2 / span);
        Some((vx, vy, se))
    }

    /// The estimate from the particles.
    fn summarise(
        &mut self,
        now: Millis,
        spot: Point,
        (spot_radius, select_radius): (f64, f64),
        models: &Models,
        side: Side,
    ) {
        let path_radius = spot_radius * 1.25;
        let mut e = Estimate::default();
        for i in 0..PARTICLES {
            e.x += self.w[i] * self.x[i];
            e.y += self.w[i] * self.y[i];
        }
        let spread = (0..PARTICLES)
            .map(|i| self.w[i] * ((self.x[i] - e.x).powi(2) + (self.y[i] - e.y).powi(2)))
            .sum::<f64>()
            .sqrt()
            / std::f64::consts::SQRT_2;
        self.track.push_back((now, e.x, e.y));
        while self.track.front().is_some_and(|p| p.0 + TRACK_MS < now) {
            self.track.pop_front();
        }
        let velocity = self.velocity(spread);
        // The walk of the last second alone, too: a turn (at an aisle's end, toward the car's
        // corner) shows there long before the slope of two seconds follows it.
        let recent = self.velocity_over(spread, RECENT_TRACK_MS, RECENT_TRACK_MS / 2);
        let (mut d_sum, mut d2_sum) = (0.0, 0.0);
        for i in 0..PARTICLES {
            let w = self.w[i];
            let (rx, ry) = (spot[0] - self.x[i], spot[1] - self.y[i]);
            let d = (rx * rx + ry * ry).sqrt();
            d_sum += w * d;
            d2_sum += w * d * d;
            if d <= spot_radius {
                e.at_spot += w;
                e.heading += w;
                e.driver_side += w;
                e.near_door += w;
                continue;
            }
            // Only a walk on the driver's side of the car: a path through the car leads to
            // another door.
            let outside = side.outside([self.x[i], self.y[i]]);
            if outside > side.middle {
                e.driver_side += w;
                if d <= DOOR_NEAR_M {
                    e.near_door += w;
                }
            }
            let Some((vx, vy, se)) = velocity else {
                continue;
            };
            // A walk this particle may be on: the velocity, within its uncertainty.
            let (gx, gy) = (models.normal(&mut self.rng), models.normal(&mut self.rng));
            let (vx, vy) = (vx + se * gx, vy + se * gy);
            let v = (vx * vx + vy * vy).sqrt();
            if d > select_radius || v < MIN_WALK_SPEED || outside <= 0.0 {
                continue;
            }
            let reach = |along: f64| path_radius + AIM_SPREAD * along;
            let p = [self.x[i], self.y[i]];
            let heads = |vx: f64, vy: f64, v: f64| {
                let along = (rx * vx + ry * vy) / v;
                let miss = (rx * vy - ry * vx).abs() / v;
                along > 0.0
                    && miss <= reach(along)
                    && along / v <= HORIZON_S
                    && !side.rounds_corner(p, [vx / v, vy / v], along, reach)
            };
            if !heads(vx, vy, v) {
                continue;
            }
            // Heading there over both the last two seconds and the last one: intent that
            // holds across time, not a walk that has just turned away. (Slowing down, about
            // to stop at the door, is not turning away.)
            let recent_heads = recent.is_none_or(|(rvx, rvy, rse)| {
                let (gx, gy) = (models.normal(&mut self.rng), models.normal(&mut self.rng));
                let (vx, vy) = (rvx + rse * gx, rvy + rse * gy);
                let v = (vx * vx + vy * vy).sqrt();
                v < MIN_WALK_SPEED || heads(vx, vy, v)
            });
            if recent_heads {
                e.heading += w;
            }
        }
        e.distance = d_sum;
        e.distance_sd = (d2_sum - d_sum * d_sum).max(0.0).sqrt();
        self.est = e;
    }
}

impl Estimate {
    /// Farther from the spot than `other` by `margin` and twice both spreads.
    fn clearly_farther_than(&self, other: &Estimate, margin: f64) -> bool {
        self.distance - other.distance >= margin + 2.0 * (self.distance_sd + other.distance_sd)
    }
}

/// The driver's side of the car: the driver's door anchor, the unit normal from it toward the
/// spot where the driver stands, and the car's middle along that normal (the anchors' mean);
/// with the car's body known, the two corners on that side that someone walks round to reach
/// another door.
#[derive(Debug, Clone, Copy)]
struct Side {
    door: Point,
    normal: Point,
    middle: f64,
    corners: Option<[Point; 2]>,
}

/// People walk round a car's corner about this far from its body, on each axis (m).
const ROUND_M: f64 = 0.7;

impl Side {
    fn new(g: &Geometry, driver_anchor: usize) -> Side {
        let (anchors, spot) = (&g.anchors, g.driver_spot);
        let door = anchors.get(driver_anchor).copied().unwrap_or(spot);
        let (nx, ny) = (spot[0] - door[0], spot[1] - door[1]);
        let len = nx.hypot(ny);
        if len < 1e-6 {
            // The anchor at the spot itself: every side counts.
            return Side {
                door: [f64::NEG_INFINITY, 0.0],
                normal: [1.0, 0.0],
                middle: f64::NEG_INFINITY,
                corners: None,
            };
        }
        let normal = [nx / len, ny / len];
        let mut side = Side {
            door,
            normal,
            middle: 0.0,
            corners: None,
        };
        let n = anchors.len().max(1) as f64;
        side.middle = anchors.iter().map(|&a| side.outside(a)).sum::<f64>() / n;
        // The body's corners on the driver's side (the spot's side of the body's middle), each
        // pushed out to where a walk rounds it.
        side.corners = g.body.map(|[lo, hi]| {
            let mid = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
            let all = [
                [lo[0], lo[1]],
                [lo[0], hi[1]],
                [hi[0], lo[1]],
                [hi[0], hi[1]],
            ];
            let mut near: Vec<Point> = all.to_vec();
            near.sort_by(|a, b| {
                let d = |c: &Point| (c[0] - spot[0]).hypot(c[1] - spot[1]);
                d(a).total_cmp(&d(b))
            });
            [near[0], near[1]].map(|c| {
                let out = |v: f64, m: f64| v + ROUND_M * (v - m).signum();
                [out(c[0], mid[0]), out(c[1], mid[1])]
            })
        });
        side
    }

    /// Does a walk from `p` along the unit direction `u` round one of the driver's side's
    /// corners before it comes to `along` metres: the way to another door as much as to the
    /// driver's? (`reach`: how near a walk must pass a point to be heading there, by distance.)
    fn rounds_corner(&self, p: Point, u: Point, along: f64, reach: impl Fn(f64) -> f64) -> bool {
        self.corners.is_some_and(|cs| {
            cs.iter().any(|c| {
                let (rx, ry) = (c[0] - p[0], c[1] - p[1]);
                let a = rx * u[0] + ry * u[1];
                a > 0.0 && a < along && (rx * u[1] - ry * u[0]).abs() <= reach(a)
            })
        })
    }

    /// `p` mirrored across the car's middle: the same place on the other side.
    fn mirror(&self, p: Point) -> Point {
        let d = 2.0 * (self.outside(p) - self.middle);
        [p[0] - d * self.normal[0], p[1] - d * self.normal[1]]
    }

    /// How far `p` is outside the driver's door, toward the driver's spot (m).
    fn outside(&self, p: Point) -> f64 {
        (p[0] - self.door[0]) * self.normal[0] + (p[1] - self.door[1]) * self.normal[1]
    }
}

/// Who the locator wants selected, and since when.
#[derive(Debug, Clone)]
struct Challenger {
    wanted: Option<String>,
    since: Millis,
    /// The wanted key's batch count when the challenge began.
    batches: u64,
    /// How long the challenge must hold.
    dwell: Millis,
}

/// What the door weighs of one key: sums over the summaries since it opened.
#[derive(Debug, Clone, Copy, Default)]
struct DoorEvidence {
    at_spot: f64,
    near_door: f64,
    n: u32,
}

impl DoorEvidence {
    fn add(&mut self, e: &Estimate) {
        self.at_spot += e.at_spot;
        self.near_door += e.near_door;
        self.n += 1;
    }

    /// The mean probabilities: at the spot, near the door.
    fn means(&self) -> (f64, f64) {
        let n = f64::from(self.n.max(1));
        (self.at_spot / n, self.near_door / n)
    }
}

#[derive(Debug, Clone)]
pub struct Locator {
    cfg: KeyConfig,
    models: Models,
    anchors: Vec<Point>,
    spot: Point,
    /// The driver's side of the car.
    side: Side,
    keys: BTreeMap<String, Filter>,
    selected: Option<String>,
    challenger: Option<Challenger>,
    door_open: bool,
    seat_occupied: bool,
    /// The driver's door opened at this time and the door has not decided yet.
    door_pending: Option<Millis>,
    /// Since the door opened: per key, the sums of its probabilities of being at the spot and
    /// near the door after each batch, and the batches.
    door_evidence: BTreeMap<String, DoorEvidence>,
    /// Nothing changes (the door has decided, or the seat is occupied).
    locked: bool,
    /// What `Vehicle.KeyEstimates` shows, and when it was last changed.
    published: Vec<(String, f64, f64, f64)>,
    published_at: Option<Millis>,
    estimates_dirty: bool,
    /// The time of the last update.
    now: Millis,
}

impl Locator {
    /// A locator for `cfg`, which has a geometry (else `None`).
    pub fn new(cfg: KeyConfig) -> Option<Locator> {
        let g = cfg.geometry.clone()?;
        Some(Locator {
            side: Side::new(&g, cfg.driver_anchor),
            models: Models::new(&cfg),
            anchors: g.anchors,
            spot: g.driver_spot,
            cfg,
            keys: BTreeMap::new(),
            selected: None,
            challenger: None,
            door_open: false,
            seat_occupied: false,
            door_pending: None,
            door_evidence: BTreeMap::new(),
            locked: false,
            published: Vec::new(),
            published_at: None,
            estimates_dirty: false,
            now: 0,
        })
    }

    /// New settings with the same anchors and geometry (a config reload refuses a change to
    /// either): the filters stay valid; the models are made again from the new settings.
    pub fn set_config(&mut self, cfg: KeyConfig) {
        debug_assert_eq!(cfg.geometry, self.cfg.geometry);
        self.models = Models::new(&cfg);
        self.cfg = cfg;
    }

    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// The keys being tracked.
    pub fn tracked(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// What the filter says of `key`, if it is present.
    pub fn estimate(&self, key: &str) -> Option<Estimate> {
        self.keys.get(key).map(|f| f.est)
    }

    /// Forget a key that is no longer bound (or whose profile is gone).
    pub fn forget(&mut self, key: &str) {
        if self.keys.remove(key).is_some() {
            self.estimates_dirty = true;
        }
        if self.selected.as_deref() == Some(key) {
            self.selected = None;
            self.challenger = None;
        }
    }

    /// Take one batch of readings (already validated) of a bound key: anchor index, reading.
    pub fn report(&mut self, key: &str, readings: &[(usize, Reading)], now: Millis) {
        let batch: Vec<(Point, Reading)> = readings
            .iter()
            .filter_map(|&(a, r)| self.anchors.get(a).map(|&p| (p, r)))
            .collect();
        if batch.is_empty() {
            return;
        }
        let (spot, models) = (self.spot, &self.models);
        let l = &self.cfg.locator;
        let f = self
            .keys
            .entry(key.to_string())
            .or_insert_with(|| Filter::new(key, now));
        let news = f.news(&batch, now);
        f.remember(&batch, now);
        if f.batches == 0 {
            f.seed(&batch, models);
            f.at = now;
        } else {
            f.predict(now, spot, models);
            f.inject(models);
        }
        if f.weigh(&batch, &news, models) {
            f.lost = 0;
        } else {
            f.lost += 1;
            if f.lost >= 3 {
                // Wherever the particles are, the key is not: start again from these readings.
                tracing::debug!("key locator: lost {key}, starting again");
                f.seed(&batch, models);
                f.track.clear();
                f.weigh(&batch, &news, models);
                f.lost = 0;
            }
        }
        f.last = now;
        f.batches += 1;
        // The estimate is summed up at most every SUMMARY_MS: a BLE locator sends one reading
        // a batch, dozens a second per key, and nothing decides that often.
        if f.summarised.is_none_or(|t| now >= t + SUMMARY_MS) {
            f.summarised = Some(now);
            f.summarise(
                now,
                spot,
                (l.spot_radius_m, l.select_radius_m),
                models,
                self.side,
            );
            if self.door_pending.is_some() {
                self.door_evidence
                    .entry(key.to_string())
                    .or_default()
                    .add(&f.est);
            }
            self.estimates_dirty = true;
        }
    }

    /// The driver's door and seat, as the vehicle reports them now.
    pub fn set_vehicle(&mut self, door_open: bool, seat_occupied: bool, now: Millis) {
        if door_open && !self.door_open && !seat_occupied {
            self.door_pending = Some(now);
            self.door_evidence = (self.keys.iter())
                .map(|(k, f)| {
                    let mut e = DoorEvidence::default();
                    e.add(&f.est);
                    (k.clone(), e)
                })
                .collect();
        }
        if seat_occupied || !door_open {
            self.door_pending = None;
        }
        self.locked = seat_occupied || (door_open && self.door_pending.is_none());
        if self.locked {
            self.challenger = None;
        }
        self.door_open = door_open;
        self.seat_occupied = seat_occupied;
    }

    /// Nothing changes the selection now.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    fn present(&self, f: &Filter, now: Millis) -> bool {
        now < f.last + self.cfg.expire_ms
    }

    /// The key the door chooses now: the one most likely at the spot, if it is likely enough
    /// the one there. While another key on the driver's side is not clearly farther (two
    /// people at the door), a moment's estimate is not enough: the door waits
    /// [`DOOR_CONTEST_MS`] (`last`) and weighs every batch since it opened. Also says whether
    /// the door is contested so.
    fn door_candidate(&self, last: bool) -> Option<(String, bool)> {
        // Each key's probability of being at the spot, averaged over the summaries since the
        // door opened: with a slow locator one reading can swap two clouds for a moment.
        let means = |k: &str| self.door_evidence.get(k).map_or((0.0, 0.0), |e| e.means());
        let (key, (at_spot, near)) = (self.keys.keys())
            .map(|k| (k, means(k)))
            .max_by(|a, b| a.1.0.total_cmp(&b.1.0))?;
        let b = self.keys.get(key)?.est;
        let contested = self.keys.iter().any(|(k, o)| {
            let o = o.est;
            k != key
                && o.driver_side >= RIVAL_PROBABILITY
                && !o.clearly_farther_than(&b, self.cfg.hysteresis_m)
        });
        let sure = self.cfg.locator.door_probability;
        let share = |mine: f64, all: f64| mine / (all + NOBODY);
        if !contested {
            // The only key on the driver's side: near the door is enough, if no other key is
            // anywhere near it either, and its recent readings place a phone at the handle
            // rather than at the same place on the other side of the car.
            let total: f64 = self.keys.keys().map(|k| means(k).1).sum();
            let f = self.keys.get(key)?;
            let fit = |p: Point| f.fit_at(p, self.now, &self.models);
            let this_side = fit(self.spot).zip(fit(self.side.mirror(self.spot)));
            if near >= DOOR_NEAR_MIN
                && share(near, total) >= sure
                && this_side.is_some_and(|(here, there)| here >= there + DOOR_FIT_MARGIN)
            {
                return Some((key.clone(), false));
            }
        }
        let batches = self.door_evidence.get(key).map_or(0, |e| e.n);
        if contested && !(last && batches >= 2) {
            return None;
        }
        let total: f64 = self.keys.keys().map(|k| means(k).0).sum();
        (at_spot >= DOOR_MIN_AT_SPOT && share(at_spot, total) >= sure)
            .then(|| (key.clone(), contested))
    }

    /// The door's candidate, if no other key's recent readings fit a phone at the spot nearly
    /// as well as its own (within [`DOOR_FIT_MARGIN`]): whatever the filters say (one of them
    /// may be lost), the person who has just pulled the handle stands there. Between two keys
    /// at the door, the readings of [`Filter::door_fit`]; with one, those too must not fit
    /// another key within [`DOOR_LONG_MARGIN`].
    fn door_choice(&self, last: bool) -> Option<String> {
        let (key, contested) = self.door_candidate(last)?;
        let (spot, now, models) = (self.spot, self.now, &self.models);
        let fits = |k: &str| {
            let f = self.keys.get(k)?;
            Some((f.fit_at(spot, now, models), f.door_fit(spot, now, models)))
        };
        let (own, own_long) = fits(&key)?;
        // Without readings of its own to weigh, the candidate cannot be checked.
        (if contested { own_long } else { own })?;
        let beaten = (self.keys.keys())
            .filter(|k| **k != key)
            .filter_map(|k| fits(k))
            .any(|(other, other_long)| {
                let long = other_long.zip(own_long);
                match contested {
                    true => long.is_some_and(|(o, m)| o > m - DOOR_FIT_MARGIN),
                    false => {
                        other.zip(own).is_some_and(|(o, m)| o > m - DOOR_FIT_MARGIN)
                            || long.is_some_and(|(o, m)| o > m - DOOR_LONG_MARGIN)
                    }
                }
            });
        if beaten {
            tracing::debug!(
                "key locator: the door declines {key}: another key fits the spot better"
            );
        }
        (!beaten).then_some(key)
    }

    /// The key that is heading to the spot before the door opens, if exactly one is.
    fn approach_choice(&self) -> Option<String> {
        let l = &self.cfg.locator;
        let (key, best) = self
            .keys
            .iter()
            .filter(|(_, f)| f.est.heading >= l.select_probability)
            .min_by(|a, b| a.1.est.distance.total_cmp(&b.1.est.distance))?;
        let (b, margin) = (best.est, self.cfg.hysteresis_m);
        // Any other key on the driver's side that is not clearly farther from the spot, walking
        // there or not (a driver pausing at the corner is still the nearer one). And with
        // another key on the driver's side at all, only a key about to open the door: people
        // walking together to the car are a metre or two apart until one of them turns to the
        // far side.
        let rivals = self.keys.iter().any(|(k, f)| {
            let o = f.est;
            k != key
                && o.driver_side >= RIVAL_PROBABILITY
                && (!o.clearly_farther_than(&b, margin)
                    || (o.distance <= l.select_radius_m && b.distance > CONTESTED_SELECT_M))
        });
        (!rivals).then(|| key.clone())
    }

    /// Let time pass and re-evaluate the selection. Returns true when it changed.
    pub fn update(&mut self, now: Millis) -> bool {
        let gone: Vec<String> = (self.keys.iter())
            .filter(|(_, f)| !self.present(f, now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.keys.remove(k);
            self.estimates_dirty = true;
        }
        self.now = now;
        if let Some(opened) = self.door_pending {
            // The door decides: once, within its window.
            let window = self.cfg.locator.door_window_ms;
            let choice = self.door_choice(now >= opened + window.min(DOOR_CONTEST_MS));
            if choice.is_some() || now >= opened + window {
                self.door_pending = None;
                self.locked = true;
            }
            self.challenger = None;
            return match choice {
                Some(k) if self.selected.as_ref() != Some(&k) => {
                    tracing::info!("key locator: the driver's door opened with {k} at it");
                    self.selected = Some(k);
                    true
                }
                _ => false,
            };
        }
        if self.locked || self.door_open {
            return false;
        }
        let mut changed = false;
        if let Some(s) = &self.selected
            && !self.keys.contains_key(s)
        {
            // The selected key expired: it is gone, not just noisy.
            self.selected = None;
            self.challenger = None;
            changed = true;
        }
        let wanted = match self.selected.as_ref().and_then(|s| self.keys.get(s)) {
            Some(f) if f.est.heading >= RELEASE_PROBABILITY => self.selected.clone(),
            _ => self.approach_choice(),
        };
        if wanted == self.selected {
            self.challenger = None;
            return changed;
        }
        let batches = |k: &Option<String>| {
            k.as_ref()
                .and_then(|k| self.keys.get(k))
                .map_or(0, |f| f.batches)
        };
        let count = batches(&wanted);
        match &self.challenger {
            Some(c) if c.wanted == wanted => {
                // Deselecting needs only time; selecting also fresh evidence.
                let evidence = wanted.is_none() || count >= c.batches + DWELL_BATCHES;
                if now >= c.since + c.dwell && evidence {
                    self.selected = wanted;
                    self.challenger = None;
                    changed = true;
                }
            }
            _ => {
                // Intent from afar is less sure than at the door: the farther the key, the
                // longer its walk must hold (a walker heading for the car's corner may still
                // turn to the far side).
                let far = (wanted.as_ref().and_then(|k| self.keys.get(k)))
                    .map_or(0.0, |f| f.est.distance - self.cfg.locator.spot_radius_m);
                self.challenger = Some(Challenger {
                    dwell: self.cfg.dwell_ms + (far.max(0.0) * DWELL_PER_M) as Millis,
                    wanted,
                    since: now,
                    batches: count,
                })
            }
        }
        changed
    }

    /// When [`Locator::update`] or [`Locator::publish`] must run again.
    pub fn next_deadline(&self) -> Option<Millis> {
        let dwell = (self.challenger.as_ref())
            .map(|c| c.since + c.dwell)
            .filter(|&t| t > self.now);
        let window = self.cfg.locator.door_window_ms;
        let door = (self.door_pending)
            .map(|t| [t + window.min(DOOR_CONTEST_MS), t + window])
            .and_then(|ts| ts.into_iter().find(|&t| t > self.now));
        let stale = (self.keys.values())
            .map(|f| f.last + self.cfg.expire_ms)
            .min();
        let publish = self
            .estimates_dirty
            .then(|| self.published_at.map_or(0, |t| t + ESTIMATE_INTERVAL_MS));
        [dwell, door, stale, publish].into_iter().flatten().min()
    }

    /// Bring the published estimates up to date if they may change now (at most every
    /// [`ESTIMATE_INTERVAL_MS`]); returns them.
    pub fn publish(&mut self, now: Millis) -> &[(String, f64, f64, f64)] {
        let due = self
            .published_at
            .is_none_or(|t| now >= t + ESTIMATE_INTERVAL_MS);
        if self.estimates_dirty && due {
            let round = |v: f64, step: f64| (v / step).round() * step;
            let next: Vec<_> = (self.keys.iter())
                .map(|(k, f)| {
                    let e = f.est;
                    let p = e.heading.max(e.at_spot);
                    (
                        k.clone(),
                        round(e.x, 0.01),
                        round(e.y, 0.01),
                        round(p, 0.01),
                    )
                })
                .collect();
            if next != self.published {
                self.published = next;
                self.published_at = Some(now);
            }
            self.estimates_dirty = false;
        }
        &self.published
    }

    /// The estimates as last published.
    pub fn published(&self) -> &[(String, f64, f64, f64)] {
        &self.published
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> KeyConfig {
        crate::config::builtin().unwrap().keys
    }

    fn anchors(cfg: &KeyConfig) -> Vec<Point> {
        cfg.geometry.as_ref().unwrap().anchors.clone()
    }

    /// Exact readings of a key at `p`: distances, or RSSI by the configured model.
    fn exact(cfg: &KeyConfig, p: Point, rssi: bool) -> Vec<(usize, Reading)> {
        anchors(cfg)
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let d = (p[0] - a[0]).hypot(p[1] - a[1]);
                let r = if rssi {
                    let b = &cfg.ble;
                    Reading::Rssi(b.rssi_at_1m_dbm - 10.0 * b.path_loss_exponent * d.log10())
                } else {
                    Reading::Range(d)
                };
                (i, r)
            })
            .collect()
    }

    /// Walk `key` from `from` to `to` at `speed`, a batch every `every` ms; returns the time
    /// of the first selection of `key` and the arrival time.
    fn walk(
        l: &mut Locator,
        key: &str,
        from: Point,
        to: Point,
        speed: f64,
        every: Millis,
        rssi: bool,
    ) -> (Option<Millis>, Millis) {
        let cfg = l.cfg.clone();
        let len = (to[0] - from[0]).hypot(to[1] - from[1]);
        let arrive = (len / speed * 1000.0) as Millis;
        let mut selected = None;
        let mut t = 0;
        while t <= arrive + 1000 {
            let f = (t as f64 / arrive as f64).min(1.0);
            let p = [
                from[0] + (to[0] - from[0]) * f,
                from[1] + (to[1] - from[1]) * f,
            ];
            l.report(key, &exact(&cfg, p, rssi), t);
            l.update(t);
            if selected.is_none() && l.selected() == Some(key) {
                selected = Some(t);
            }
            t += every;
        }
        (selected, arrive)
    }

    #[test]
    fn a_precise_locator_selects_a_walker_heading_for_the_door_from_afar() {
        let mut l = Locator::new(cfg()).unwrap();
        let spot = [-1.45, 0.2];
        let (sel, arrive) = walk(&mut l, "a", [-12.0, 6.0], spot, 1.4, 150, false);
        let sel = sel.expect("never selected");
        // Metres out. This walk also points at the car's front corner (the way round to the
        // passenger's door) until about 9 m, and the dwell from there is about 1.9 s: about
        // 2.5 s before arriving, 3.5 m out; the walk of the last second must head there too,
        // and its slope over half the time is twice as uncertain, which costs some of it:
        // about 2.0 s.
        assert!(
            arrive - sel >= 1800,
            "selected {} ms before arriving",
            arrive - sel
        );
    }

    #[test]
    fn a_walker_on_the_way_round_the_car_is_not_selected() {
        // From behind, along the driver's side, to the rear corner, on the way round to the
        // passenger's door: the walk points at the driver's door all along, but at the corner
        // first.
        let mut l = Locator::new(cfg()).unwrap();
        let (sel, _) = walk(&mut l, "p", [-2.0, -12.0], [-1.6, -3.1], 1.4, 150, false);
        assert_eq!(sel, None);
        // Without the body the locator cannot know the corner, and takes the walk for the
        // driver's.
        let mut c = cfg();
        c.geometry.as_mut().unwrap().body = None;
        let mut l = Locator::new(c).unwrap();
        let (sel, _) = walk(&mut l, "p", [-2.0, -12.0], [-1.6, -3.1], 1.4, 150, false);
        assert!(sel.is_some());
    }

    #[test]
    fn the_car_blocks_paths_across_it_but_not_from_the_cabin() {
        let b = Body::new([[-0.9, -2.4], [0.9, 2.4]]).unwrap();
        let (driver_door, passenger_door, cabin) = ([-0.95, 0.2], [0.95, 0.2], [0.0, 0.3]);
        assert!(b.blocks([-1.45, 0.2], passenger_door));
        assert!(!b.blocks([-1.45, 0.2], driver_door));
        assert!(!b.blocks([1.45, 0.2], cabin));
        assert!(!b.blocks([-1.45, 5.0], [0.95, 5.0]), "ahead of the car");
        assert!(b.blocks([-1.45, -5.0], [0.95, 5.0]), "the diagonal");
    }

    #[test]
    fn a_walker_heading_for_the_passenger_door_is_never_selected() {
        for rssi in [false, true] {
            let mut l = Locator::new(cfg()).unwrap();
            let (sel, _) = walk(&mut l, "p", [12.0, 5.0], [1.45, 0.2], 1.4, 150, rssi);
            assert_eq!(sel, None, "rssi {rssi}");
        }
    }

    #[test]
    fn the_filter_finds_a_standing_key() {
        let c = cfg();
        let mut l = Locator::new(c.clone()).unwrap();
        for i in 0..20 {
            l.report("a", &exact(&c, [-4.0, 3.0], false), i * 150);
        }
        let e = l.estimate("a").unwrap();
        assert!((e.x + 4.0).abs() < 0.3 && (e.y - 3.0).abs() < 0.3, "{e:?}");
        assert!(e.at_spot < 0.01);
    }

    #[test]
    fn the_door_decides_for_a_key_at_the_spot() {
        let c = cfg();
        let mut l = Locator::new(c.clone()).unwrap();
        // Slow RSSI: a reading every 1.5 s while walking up, nothing selected before the door.
        l.set_vehicle(false, false, 0);
        for (i, x) in [-5.0, -3.0, -1.45].into_iter().enumerate() {
            l.report("a", &exact(&c, [x, 0.2], true), i as Millis * 1500);
            l.update(i as Millis * 1500);
        }
        l.set_vehicle(true, false, 3100);
        assert!(l.update(3100) || l.selected() == Some("a"));
        assert_eq!(l.selected(), Some("a"));
        // Locked now: another key changes nothing.
        l.report("b", &exact(&c, [-1.45, 0.2], false), 3200);
        l.update(3200);
        assert_eq!(l.selected(), Some("a"));
    }

    #[test]
    fn alone_at_the_door_a_key_at_the_other_door_is_never_chosen() {
        // Someone without a key opens the driver's door while a key waits at the passenger's.
        let c = cfg();
        let mut l = Locator::new(c.clone()).unwrap();
        l.set_vehicle(false, false, 0);
        for (i, x) in [6.0, 4.0, 2.5, 1.45, 1.45].into_iter().enumerate() {
            l.report("p", &exact(&c, [x, 0.2], true), i as Millis * 1000);
            l.update(i as Millis * 1000);
        }
        l.set_vehicle(true, false, 4100);
        for t in (4100..6000).step_by(100) {
            l.report("p", &exact(&c, [1.45, 0.2], true), t);
            l.update(t);
        }
        assert_eq!(l.selected(), None);
        assert!(l.is_locked(), "the door has declined");
    }

    #[test]
    fn estimates_are_published_at_most_five_times_a_second() {
        let c = cfg();
        let mut l = Locator::new(c.clone()).unwrap();
        let mut changes = 0;
        let mut last = Vec::new();
        for t in (0..2000).step_by(20) {
            l.report("a", &exact(&c, [-8.0 + t as f64 / 500.0, 1.0], false), t);
            l.update(t);
            let p = l.publish(t).to_vec();
            if p != last {
                changes += 1;
                last = p;
            }
        }
        assert!((2..=11).contains(&changes), "{changes} changes in 2 s");
        assert!(l.next_deadline().is_some_and(|d| d > 1980));
    }
}
