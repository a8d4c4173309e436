//! Nearest-key selection from noisy ranging (pure, on the core's clock).
//!
//! Per key and anchor the tracker keeps the last few distances. The filtered distance is their
//! median (with three or more), their maximum (with two), and unknown with one: a single low
//! outlier can never make a key look near, and a missing reading changes nothing until the
//! anchor's readings go stale (`expire_ms`). A key is present while any anchor's readings are
//! fresh.
//!
//! A *candidate* is a present key whose filtered distance to the driver's door handle is
//! within the approach radius and smaller than its distance to every other anchor. The
//! selection only changes after the change has been wanted continuously for `dwell_ms`, and a
//! selected key is only replaced by one nearer by `hysteresis_m`. While locked (the driver's
//! door is open or the seat occupied) nothing changes.

use std::collections::{BTreeMap, VecDeque};

use super::Millis;
use crate::config::KeyConfig;

/// Readings kept per key and anchor.
pub const HISTORY: usize = 5;
/// New readings at the driver's door a selection needs during its dwell: for a slow locator
/// (BLE, seconds apart) the dwell alone would confirm a lucky value with no new evidence.
pub const DWELL_READINGS: u64 = 2;

#[derive(Debug, Clone, Default)]
struct AnchorTrack {
    readings: VecDeque<f64>,
    last: Millis,
    /// Readings received in all.
    count: u64,
}

#[derive(Debug, Clone)]
struct KeyTrack {
    anchors: Vec<AnchorTrack>,
}

#[derive(Debug, Clone)]
struct Challenger {
    wanted: Option<String>,
    since: Millis,
    /// The wanted key's reading count at the driver's door when the challenge began.
    count: u64,
    /// The dwell time has passed; only fresh readings (events, not a timer) can complete it.
    timed_out: bool,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: KeyConfig,
    keys: BTreeMap<String, KeyTrack>,
    selected: Option<String>,
    /// The selection wanted instead of the current one.
    challenger: Option<Challenger>,
    locked: bool,
}

impl Tracker {
    pub fn new(cfg: KeyConfig) -> Tracker {
        Tracker {
            cfg,
            keys: BTreeMap::new(),
            selected: None,
            challenger: None,
            locked: false,
        }
    }

    /// New settings with the same anchors (a config reload): the readings stay valid.
    pub fn set_config(&mut self, cfg: KeyConfig) {
        debug_assert_eq!(cfg.anchors, self.cfg.anchors);
        self.cfg = cfg;
    }

    pub fn config(&self) -> &KeyConfig {
        &self.cfg
    }

    pub fn anchor_index(&self, name: &str) -> Option<usize> {
        self.cfg.anchors.iter().position(|a| a == name)
    }

    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// Record one reading (already validated) of a bound key.
    pub fn report(&mut self, key: &str, anchor: usize, distance: f64, now: Millis) {
        let n = self.cfg.anchors.len();
        let track = self
            .keys
            .entry(key.to_string())
            .or_insert_with(|| KeyTrack {
                anchors: vec![AnchorTrack::default(); n],
            });
        if let Some(a) = track.anchors.get_mut(anchor) {
            if a.readings.len() == HISTORY {
                a.readings.pop_front();
            }
            a.readings.push_back(distance);
            a.last = now;
            a.count += 1;
        }
    }

    /// The keys being tracked.
    pub fn tracked(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Forget a key that is no longer bound (or whose profile is gone).
    pub fn forget(&mut self, key: &str) {
        self.keys.remove(key);
        if self.selected.as_deref() == Some(key) {
            self.selected = None;
            self.challenger = None;
        }
    }

    pub fn set_locked(&mut self, locked: bool) {
        self.locked = locked;
        if locked {
            self.challenger = None;
        }
    }

    fn fresh(&self, a: &AnchorTrack, now: Millis) -> bool {
        !a.readings.is_empty() && now < a.last + self.cfg.expire_ms
    }

    /// The filtered distance of `key` to `anchor`, if known. With three or more readings it
    /// is their median. With fewer it leans the safe way: `far` (for the driver's door) takes
    /// the larger of two and knows nothing from one; near (for the other anchors) takes the
    /// smaller, so that noise makes a key less of a candidate, never more.
    pub fn filtered(&self, key: &str, anchor: usize, now: Millis, far: bool) -> Option<f64> {
        let a = self.keys.get(key)?.anchors.get(anchor)?;
        if !self.fresh(a, now) {
            return None;
        }
        let mut v: Vec<f64> = a.readings.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        match (v.len(), far) {
            (0, _) | (1, true) => None,
            (1, false) => Some(v[0]),
            (2, true) => Some(v[1]),
            (2, false) => Some(v[0]),
            (n, _) => Some(v[n / 2]),
        }
    }

    /// The key's filtered distance to the driver's door if it is a candidate.
    pub fn candidate_distance(&self, key: &str, now: Millis) -> Option<f64> {
        let d = self.filtered(key, self.cfg.driver_anchor, now, true)?;
        if d > self.cfg.approach_radius_m {
            return None;
        }
        let nearest_is_driver = (0..self.cfg.anchors.len())
            .filter(|&i| i != self.cfg.driver_anchor)
            .all(|i| {
                self.filtered(key, i, now, false)
                    .is_none_or(|other| d < other)
            });
        nearest_is_driver.then_some(d)
    }

    /// Readings of `key` at the driver's door received so far.
    fn driver_count(&self, key: Option<&str>) -> u64 {
        key.and_then(|k| self.keys.get(k))
            .and_then(|k| k.anchors.get(self.cfg.driver_anchor))
            .map_or(0, |a| a.count)
    }

    fn present(&self, key: &str, now: Millis) -> bool {
        self.keys
            .get(key)
            .is_some_and(|k| k.anchors.iter().any(|a| self.fresh(a, now)))
    }

    /// Let time pass and re-evaluate the selection. Returns true when it changed.
    pub fn update(&mut self, now: Millis) -> bool {
        // Forget stale readings (a silent anchor knows nothing), then keys gone silent.
        let expire = self.cfg.expire_ms;
        for k in self.keys.values_mut() {
            for a in k.anchors.iter_mut() {
                if now >= a.last + expire {
                    a.readings.clear();
                }
            }
        }
        let gone: Vec<String> = self
            .keys
            .keys()
            .filter(|k| !self.present(k, now))
            .cloned()
            .collect();
        for k in &gone {
            self.keys.remove(k);
        }
        if self.locked {
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
        let mut best: Option<(&str, f64)> = None;
        for k in self.keys.keys() {
            if let Some(d) = self.candidate_distance(k, now)
                && best.is_none_or(|(_, bd)| d < bd)
            {
                best = Some((k, d));
            }
        }
        let wanted: Option<String> = match (&self.selected, best) {
            (None, b) => b.map(|(k, _)| k.to_string()),
            (Some(s), b) => match self.candidate_distance(s, now) {
                None => b.map(|(k, _)| k.to_string()),
                Some(sd) => match b {
                    Some((k, d)) if k != s && d + self.cfg.hysteresis_m <= sd => {
                        Some(k.to_string())
                    }
                    _ => Some(s.clone()),
                },
            },
        };
        if wanted == self.selected {
            self.challenger = None;
        } else {
            let count = self.driver_count(wanted.as_deref());
            match &mut self.challenger {
                Some(c) if c.wanted == wanted => {
                    // Deselecting needs only time; selecting also fresh evidence.
                    let evidence = wanted.is_none() || count >= c.count + DWELL_READINGS;
                    let timed_out = now >= c.since + self.cfg.dwell_ms;
                    if timed_out && evidence {
                        self.selected = wanted;
                        self.challenger = None;
                        changed = true;
                    } else {
                        c.timed_out = timed_out;
                    }
                }
                _ => {
                    self.challenger = Some(Challenger {
                        wanted,
                        since: now,
                        count,
                        timed_out: false,
                    })
                }
            }
        }
        changed
    }

    /// When [`Tracker::update`] must run again: the end of a dwell, or readings going stale.
    pub fn next_deadline(&self) -> Option<Millis> {
        let dwell = self
            .challenger
            .as_ref()
            .filter(|c| !c.timed_out)
            .map(|c| c.since + self.cfg.dwell_ms);
        let stale = self
            .keys
            .values()
            .flat_map(|k| k.anchors.iter())
            .filter(|a| !a.readings.is_empty())
            .map(|a| a.last + self.cfg.expire_ms)
            .min();
        match (dwell, stale) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> KeyConfig {
        crate::config::builtin().unwrap().keys
    }

    /// Report `key` at distances (driver door, passenger door, rear, cabin).
    fn at(t: &mut Tracker, key: &str, d: [f64; 4], now: Millis) {
        for (i, d) in d.iter().enumerate() {
            t.report(key, i, *d, now);
        }
        t.update(now);
    }

    #[test]
    fn a_key_is_selected_after_the_dwell() {
        let mut t = Tracker::new(cfg());
        at(&mut t, "a", [3.0, 4.5, 6.0, 3.5], 0);
        at(&mut t, "a", [2.9, 4.4, 6.0, 3.4], 100);
        assert_eq!(t.selected(), None, "one reading is not enough, two are");
        assert_eq!(t.next_deadline(), Some(100 + 400));
        at(&mut t, "a", [2.8, 4.3, 6.0, 3.3], 200);
        t.update(500);
        assert_eq!(t.selected(), None, "the dwell needs two new readings");
        at(&mut t, "a", [2.7, 4.2, 6.0, 3.2], 550);
        assert_eq!(t.selected(), Some("a"));
    }

    #[test]
    fn the_dwell_needs_time_as_well() {
        let mut t = Tracker::new(cfg());
        for i in 0..4 {
            at(&mut t, "a", [3.0, 4.5, 6.0, 3.5], i * 50);
        }
        assert_eq!(t.selected(), None, "four readings in 150 ms are not 400 ms");
        t.update(450);
        assert_eq!(t.selected(), Some("a"));
    }

    #[test]
    fn one_outlier_cannot_select() {
        let mut t = Tracker::new(cfg());
        for i in 0..10 {
            let d = if i == 5 { 0.3 } else { 8.0 };
            at(&mut t, "a", [d, 9.0, 10.0, 8.5], i * 100);
        }
        t.update(2000);
        assert_eq!(t.selected(), None);
    }

    #[test]
    fn passenger_door_nearest_is_not_a_candidate() {
        let mut t = Tracker::new(cfg());
        for i in 0..10 {
            at(&mut t, "p", [1.9, 0.4, 2.5, 1.0], i * 100);
        }
        assert_eq!(t.selected(), None);
    }

    #[test]
    fn hysteresis_and_dwell_prevent_flip_flop() {
        let mut t = Tracker::new(cfg());
        for i in 0..6 {
            at(&mut t, "a", [2.0, 3.8, 5.0, 2.8], i * 100);
        }
        assert_eq!(t.selected(), Some("a"));
        // b is nearer, but by less than the margin.
        for i in 6..20 {
            at(&mut t, "a", [2.0, 3.8, 5.0, 2.8], i * 100);
            at(&mut t, "b", [1.7, 3.5, 5.0, 2.5], i * 100);
        }
        assert_eq!(t.selected(), Some("a"));
        // Now clearly nearer: switches after the dwell.
        for i in 20..30 {
            at(&mut t, "a", [2.0, 3.8, 5.0, 2.8], i * 100);
            at(&mut t, "b", [1.0, 2.8, 5.0, 1.8], i * 100);
        }
        assert_eq!(t.selected(), Some("b"));
    }

    #[test]
    fn dropouts_keep_and_silence_expires() {
        let mut t = Tracker::new(cfg());
        for i in 0..6 {
            at(&mut t, "a", [2.0, 3.8, 5.0, 2.8], i * 100);
        }
        assert_eq!(t.selected(), Some("a"));
        t.update(500 + 1900);
        assert_eq!(t.selected(), Some("a"), "1.9 s of silence is a dropout");
        assert_eq!(t.next_deadline(), Some(500 + 2000));
        t.update(500 + 2000);
        assert_eq!(t.selected(), None, "2 s of silence: gone");
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn the_filter_rejects_one_outlier_and_leans_safe_with_few_readings() {
        let mut t = Tracker::new(cfg());
        t.report("a", 0, 0.3, 0);
        assert_eq!(
            t.filtered("a", 0, 0, true),
            None,
            "one reading: unknown for the door"
        );
        assert_eq!(
            t.filtered("a", 0, 0, false),
            Some(0.3),
            "but counts as near elsewhere"
        );
        t.report("a", 0, 8.0, 10);
        assert_eq!(t.filtered("a", 0, 10, true), Some(8.0));
        assert_eq!(t.filtered("a", 0, 10, false), Some(0.3));
        t.report("a", 0, 8.2, 20);
        assert_eq!(
            t.filtered("a", 0, 20, true),
            Some(8.0),
            "median of 0.3, 8.0, 8.2"
        );
        for (i, d) in [7.9, 8.1, 0.2].into_iter().enumerate() {
            t.report("a", 0, d, 30 + i as u64 * 10);
        }
        // The last five: 8.0, 8.2, 7.9, 8.1, 0.2.
        assert_eq!(t.filtered("a", 0, 60, true), Some(8.0));
        // Stale readings are unknown.
        assert_eq!(t.filtered("a", 0, 60 + 2000, true), None);
    }

    #[test]
    fn no_deadline_is_left_in_the_past() {
        let mut t = Tracker::new(cfg());
        // The passenger-door anchor goes silent while the others keep reporting.
        for i in 0..40 {
            t.report("a", 0, 2.0, i * 100);
            if i < 5 {
                t.report("a", 1, 3.8, i * 100);
            }
            t.update(i * 100);
            assert!(
                t.next_deadline().is_none_or(|d| d > i * 100),
                "at {}",
                i * 100
            );
        }
        // A challenger past its dwell time waits for readings, not for a timer.
        let mut t = Tracker::new(cfg());
        t.report("b", 0, 2.0, 0);
        t.report("b", 0, 2.0, 10);
        t.update(10);
        t.update(500);
        assert_eq!(t.selected(), None);
        assert!(t.next_deadline().is_none_or(|d| d > 500));
    }

    #[test]
    fn locked_selection_does_not_change() {
        let mut t = Tracker::new(cfg());
        for i in 0..6 {
            at(&mut t, "a", [2.0, 3.8, 5.0, 2.8], i * 100);
        }
        t.set_locked(true);
        for i in 6..30 {
            at(&mut t, "b", [0.3, 2.0, 4.0, 1.0], i * 100);
        }
        assert_eq!(t.selected(), Some("a"));
        // Even when a's readings stop, the locked selection stays.
        t.update(10_000);
        assert_eq!(t.selected(), Some("a"));
    }
}
