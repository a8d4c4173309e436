//! Key-locator traces: what a key locator reported and what the car's signals did, one JSON
//! object per line (`docs/key-selection.md`), and [`replay`]: the daemon's own [`Core`]
//! run over a trace on a fake clock, with the mock actuator simulator, printing its decisions.
//!
//! A line is `{"t_ms": N, EVENT}` with exactly one EVENT: `"signals": {...}` (the keys of
//! `Vehicle.UpdateSignals`), `"rssi": [[key, anchor, dBm], ...]`, `"ranges": [[key, anchor,
//! metres], ...]`, `"bind": {"key": K, "profile": NAME}` or `"truth": {"key": K, "x": X, "y":
//! Y}`. Blank lines and lines starting with `#` are comments. Unknown fields are errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::backend::mock::sim::Sim;
use crate::config::Config;
use crate::core::locate::Estimate;
use crate::core::store::{ProfileId, Store};
use crate::core::{
    AxisId, Core, Effect, Feedback, Gear, Millis, NoStorage, Outcome, Reason, Reply, Request,
    Signal, quote,
};
use driverprofiled_api::signal as sig;

/// The simulated actuators are stepped this often (fake time).
pub const STEP_MS: Millis = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct TraceLine {
    /// Milliseconds since the trace began.
    pub t_ms: u64,
    pub event: TraceEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TraceEvent {
    /// As `Vehicle.UpdateSignals`.
    Signals(Vec<Signal>),
    /// (key, anchor, dBm): one batch, as `Vehicle.ReportRssi`.
    Rssi(Vec<(String, String, f64)>),
    /// (key, anchor, metres): one batch, as `Vehicle.ReportRanges`.
    Ranges(Vec<(String, String, f64)>),
    /// The key belongs to that profile (the replay creates the profile).
    Bind { key: String, profile: String },
    /// Where the key really was (metres, car frame): for tuning only.
    Truth { key: String, x: f64, y: f64 },
}

/// JSON as written: objects keep their order and duplicate keys, numbers keep whether they
/// were integers.
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Int(u64),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn kind(&self) -> &'static str {
        match self {
            J::Null => "null",
            J::Bool(_) => "a boolean",
            J::Int(_) | J::Num(_) => "a number",
            J::Str(_) => "a string",
            J::Arr(_) => "an array",
            J::Obj(_) => "an object",
        }
    }
    fn num(&self) -> Option<f64> {
        match *self {
            J::Int(i) => Some(i as f64),
            J::Num(n) => Some(n),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_u64<E>(self, v: u64) -> Result<J, E> {
                Ok(J::Int(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<J, E> {
                Ok(J::Num(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<J, E> {
                Ok(J::Num(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<J, E> {
                Ok(J::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<J, E> {
                Ok(J::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(J::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(J::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields of an object, each once, none but `allowed`.
fn fields<'a>(what: &str, v: &'a J, allowed: &[&str]) -> Result<BTreeMap<&'a str, &'a J>, String> {
    let J::Obj(entries) = v else {
        return Err(format!("{what} must be an object, not {}", v.kind()));
    };
    let mut out = BTreeMap::new();
    for (k, x) in entries {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "unknown field {} in {what} (expected {})",
                quote(k),
                allowed.join(", ")
            ));
        }
        if out.insert(k.as_str(), x).is_some() {
            return Err(format!("field {} given twice in {what}", quote(k)));
        }
    }
    Ok(out)
}

fn string(what: &str, v: Option<&&J>) -> Result<String, String> {
    match v {
        Some(J::Str(s)) => Ok(s.clone()),
        Some(x) => Err(format!("{what} must be a string, not {}", x.kind())),
        None => Err(format!("{what} is missing")),
    }
}

fn number(what: &str, v: Option<&&J>) -> Result<f64, String> {
    match v {
        Some(x) => x
            .num()
            .ok_or_else(|| format!("{what} must be a number, not {}", x.kind())),
        None => Err(format!("{what} is missing")),
    }
}

fn signal(name: &str, v: &J) -> Result<Signal, String> {
    let wrong = |want: &str| format!("signal {} takes {want}, not {}", quote(name), v.kind());
    let boolean = || match v {
        J::Bool(b) => Ok(*b),
        _ => Err(wrong("a boolean")),
    };
    Ok(match name {
        sig::GEAR => match v {
            J::Null => Signal::GearUnknown,
            J::Str(s) => Signal::Gear(match s.as_str() {
                "P" => Gear::P,
                "R" => Gear::R,
                "N" => Gear::N,
                "D" => Gear::D,
                _ => {
                    return Err(format!(
                        "gear {} is not one of \"P\", \"R\", \"N\", \"D\"",
                        quote(s)
                    ));
                }
            }),
            _ => return Err(wrong("a string (or null)")),
        },
        sig::SPEED_KMH => match v {
            J::Null => Signal::SpeedUnknown,
            _ => Signal::SpeedKmh(v.num().ok_or_else(|| wrong("a number (or null)"))?),
        },
        _ if let Some(make) = crate::names::boolean_signal(name) => make(boolean()?),
        _ => return Err(format!("unknown signal {}", quote(name))),
    })
}

fn readings(what: &str, v: &J) -> Result<Vec<(String, String, f64)>, String> {
    let J::Arr(items) = v else {
        return Err(format!(
            "{what} must be an array of [key, anchor, value], not {}",
            v.kind()
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, r)| match r {
            J::Arr(t) => match t.as_slice() {
                [J::Str(k), J::Str(a), x] => match x.num() {
                    Some(d) => Ok((k.clone(), a.clone(), d)),
                    None => Err(format!(
                        "{what} reading {}: the value must be a number, not {}",
                        i + 1,
                        x.kind()
                    )),
                },
                _ => Err(format!(
                    "{what} reading {}: must be [key, anchor, value] (two strings and a number)",
                    i + 1
                )),
            },
            _ => Err(format!(
                "{what} reading {}: must be an array [key, anchor, value], not {}",
                i + 1,
                r.kind()
            )),
        })
        .collect()
}

const EVENTS: [&str; 5] = ["signals", "rssi", "ranges", "bind", "truth"];

/// One line of a trace: `None` for a blank line or a comment (`#`).
pub fn parse_line(line: &str) -> Result<Option<TraceLine>, String> {
    let text = line.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let v: J = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut allowed = vec!["t_ms"];
    allowed.extend(EVENTS);
    let f = fields("a trace line", &v, &allowed)?;
    let t_ms = match f.get("t_ms") {
        Some(J::Int(t)) => *t,
        Some(x) => {
            return Err(format!(
                "t_ms must be a whole number of milliseconds >= 0, not {}",
                match x {
                    J::Num(n) => n.to_string(),
                    _ => x.kind().to_string(),
                }
            ));
        }
        None => return Err("t_ms is missing".into()),
    };
    let given: Vec<&str> = EVENTS.into_iter().filter(|e| f.contains_key(e)).collect();
    let [name] = given.as_slice() else {
        return Err(format!(
            "a line has exactly one of {}, not {}",
            EVENTS.join(", "),
            if given.is_empty() {
                "none".to_string()
            } else {
                given.join(" and ")
            }
        ));
    };
    let body = f[name];
    let event = match *name {
        "signals" => {
            let J::Obj(entries) = body else {
                return Err(format!("signals must be an object, not {}", body.kind()));
            };
            let mut seen = BTreeSet::new();
            let mut list = Vec::with_capacity(entries.len());
            for (k, x) in entries {
                if !seen.insert(k.as_str()) {
                    return Err(format!("signal {} given twice", quote(k)));
                }
                list.push(signal(k, x)?);
            }
            TraceEvent::Signals(list)
        }
        "rssi" => TraceEvent::Rssi(readings("rssi", body)?),
        "ranges" => TraceEvent::Ranges(readings("ranges", body)?),
        "bind" => {
            let b = fields("bind", body, &["key", "profile"])?;
            TraceEvent::Bind {
                key: string("bind.key", b.get("key"))?,
                profile: string("bind.profile", b.get("profile"))?,
            }
        }
        _ => {
            let b = fields("truth", body, &["key", "x", "y"])?;
            TraceEvent::Truth {
                key: string("truth.key", b.get("key"))?,
                x: number("truth.x", b.get("x"))?,
                y: number("truth.y", b.get("y"))?,
            }
        }
    };
    Ok(Some(TraceLine { t_ms, event }))
}

/// A whole trace, each line with its line number (from 1). Errors say `line N: ...`; times
/// must not go backwards.
pub fn parse_numbered(text: &str) -> Result<Vec<(usize, TraceLine)>, String> {
    let mut out: Vec<(usize, TraceLine)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some(l) = parse_line(line).map_err(|e| format!("line {n}: {e}"))? else {
            continue;
        };
        if let Some((pn, prev)) = out.last()
            && l.t_ms < prev.t_ms
        {
            return Err(format!(
                "line {n}: t_ms {} goes back in time (line {pn} has {})",
                l.t_ms, prev.t_ms
            ));
        }
        out.push((n, l));
    }
    Ok(out)
}

/// A whole trace. Errors say `line N: ...`; times must not go backwards.
pub fn parse(text: &str) -> Result<Vec<TraceLine>, String> {
    Ok(parse_numbered(text)?.into_iter().map(|(_, l)| l).collect())
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A number as JSON (a non-finite one, which no trace can hold, as null).
fn json_num(v: f64) -> String {
    if v.is_finite() {
        serde_json::to_string(&v).unwrap_or_else(|_| "null".into())
    } else {
        "null".into()
    }
}

fn signal_json(s: &Signal) -> (&'static str, String) {
    let b = |v: bool| v.to_string();
    match *s {
        Signal::Gear(g) => (sig::GEAR, format!("\"{g:?}\"")),
        Signal::GearUnknown => (sig::GEAR, "null".into()),
        Signal::SpeedKmh(v) => (sig::SPEED_KMH, json_num(v)),
        Signal::SpeedUnknown => (sig::SPEED_KMH, "null".into()),
        Signal::DriverDoorOpen(v) => (sig::DRIVER_DOOR_OPEN, b(v)),
        Signal::DriverSeatOccupied(v) => (sig::DRIVER_SEAT_OCCUPIED, b(v)),
        Signal::DriverBeltBuckled(v) => (sig::DRIVER_BELT_BUCKLED, b(v)),
        Signal::BrakePressed(v) => (sig::BRAKE_PRESSED, b(v)),
        Signal::RearOccupied(v) => (sig::REAR_OCCUPIED, b(v)),
        Signal::SeatSwitch(v) => (sig::MANUAL_CONTROL, b(v)),
        Signal::DoorsLocked(v) => (sig::DOORS_LOCKED, b(v)),
    }
}

/// One line of a trace (no newline), `t_ms` first.
pub fn to_json_line(l: &TraceLine) -> String {
    let mut s = format!("{{\"t_ms\":{},", l.t_ms);
    let list = |s: &mut String, name: &str, r: &[(String, String, f64)]| {
        let items: Vec<String> = r
            .iter()
            .map(|(k, a, v)| format!("[{},{},{}]", json_str(k), json_str(a), json_num(*v)))
            .collect();
        let _ = write!(s, "\"{name}\":[{}]", items.join(","));
    };
    match &l.event {
        TraceEvent::Signals(sigs) => {
            let items: Vec<String> = sigs
                .iter()
                .map(|x| {
                    let (k, v) = signal_json(x);
                    format!("\"{k}\":{v}")
                })
                .collect();
            let _ = write!(s, "\"signals\":{{{}}}", items.join(","));
        }
        TraceEvent::Rssi(r) => list(&mut s, "rssi", r),
        TraceEvent::Ranges(r) => list(&mut s, "ranges", r),
        TraceEvent::Bind { key, profile } => {
            let _ = write!(
                s,
                "\"bind\":{{\"key\":{},\"profile\":{}}}",
                json_str(key),
                json_str(profile)
            );
        }
        TraceEvent::Truth { key, x, y } => {
            let _ = write!(
                s,
                "\"truth\":{{\"key\":{},\"x\":{},\"y\":{}}}",
                json_str(key),
                json_num(*x),
                json_num(*y)
            );
        }
    }
    s.push('}');
    s
}

/// Where a key really was (the trace's `truth` line nearest in time).
#[derive(Debug, Clone, PartialEq)]
pub struct TruthAt {
    pub x: f64,
    pub y: f64,
    /// Each key with truth lines, and its true distance to the driver's spot then (metres;
    /// empty without `[keys.geometry]`).
    pub distances: Vec<(String, f64)>,
}

/// How long before the driver's door opened the key-approach recall of the active profile
/// started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadStart {
    DoorNeverOpened,
    NoRecall,
    Ms(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// A key read without any bind line got a profile of its own, named after it.
    OwnProfile {
        key: String,
        profile: String,
    },
    /// The selected key changed (`None`: no key is selected now).
    Selected {
        key: Option<String>,
        estimate: Option<Estimate>,
        truth: Option<TruthAt>,
    },
    /// A motion started; `profile` is the profile's name.
    MotionStarted {
        reason: Reason,
        profile: Option<String>,
    },
    MotionFinished {
        reason: Reason,
        outcome: Outcome,
    },
    DoorOpened {
        head_start: HeadStart,
    },
    DoorClosed,
    /// The core refused the trace's line `line` (the daemon would have too).
    Refused {
        line: usize,
        error: String,
    },
    /// Where the filter has a key (with `--estimates`), and where the key really was.
    Estimate {
        key: String,
        estimate: Estimate,
        truth: Option<(f64, f64)>,
    },
    /// The end of the trace.
    End {
        selected: Option<String>,
        active: Option<String>,
        head_start: HeadStart,
        /// A motion still running then.
        moving: Option<Reason>,
    },
}

/// One decision of the core, at `t_ms` of the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub t_ms: u64,
    pub what: What,
}

fn reason_str(r: Reason) -> &'static str {
    crate::names::reason(r).as_str()
}

fn outcome_str(o: Outcome) -> &'static str {
    crate::names::outcome(o).as_str()
}

fn recall(r: Reason) -> bool {
    matches!(r, Reason::KeyApproach | Reason::Recall)
}

fn head_start_text(h: HeadStart) -> String {
    match h {
        HeadStart::DoorNeverOpened => "the driver's door never opened".into(),
        HeadStart::NoRecall => "no recall before the door opened".into(),
        HeadStart::Ms(ms) => format!("{:.2} s", ms as f64 / 1000.0),
    }
}

fn or_none(s: &Option<String>) -> String {
    s.as_deref().map_or("none".into(), quote)
}

/// `v` to the centimetre (or hundredth): the shortest decimal, as traces and decisions print it.
pub(crate) fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

impl Decision {
    /// One line for people: `   3.20 s  selected driver-key  (x -4.1 y 2.0, p 0.93)`.
    pub fn text(&self) -> String {
        let mut s = format!("{:>7.2} s  ", self.t_ms as f64 / 1000.0);
        match &self.what {
            What::OwnProfile { key, profile } => {
                let _ = write!(
                    s,
                    "key {key} has no bind line: profile {} created for it",
                    quote(profile)
                );
            }
            What::Selected {
                key,
                estimate,
                truth,
            } => {
                match key {
                    Some(k) => {
                        let _ = write!(s, "selected {k}");
                    }
                    None => s.push_str("no key selected"),
                }
                if let Some(e) = estimate {
                    let _ = write!(s, "  (x {:.1} y {:.1}, p {:.2})", e.x, e.y, e.heading);
                }
                if let Some(t) = truth {
                    let _ = write!(s, "  truth x {:.1} y {:.1}", t.x, t.y);
                    if !t.distances.is_empty() {
                        let d: Vec<String> = (t.distances.iter())
                            .map(|(k, d)| format!("{k} {d:.1} m"))
                            .collect();
                        let _ = write!(s, "; to the spot: {}", d.join(", "));
                    }
                }
            }
            What::Estimate {
                key,
                estimate: e,
                truth,
            } => {
                let _ = write!(
                    s,
                    "estimate {key}: x {:.1} y {:.1}, {:.1} m from the spot, heading {:.2}, at it {:.2}",
                    e.x, e.y, e.distance, e.heading, e.at_spot
                );
                if let Some((x, y)) = truth {
                    let _ = write!(s, "  truth x {x:.1} y {y:.1}");
                }
            }
            What::MotionStarted { reason, profile } => {
                let p = or_none(profile);
                if recall(*reason) {
                    let _ = write!(s, "recall started: profile {p} ({})", reason_str(*reason));
                } else {
                    let _ = write!(s, "motion started: {} (profile {p})", reason_str(*reason));
                }
            }
            What::MotionFinished { reason, outcome } => {
                let _ = write!(
                    s,
                    "motion finished: {} {}",
                    reason_str(*reason),
                    outcome_str(*outcome)
                );
            }
            What::DoorOpened { head_start } => {
                let _ = write!(
                    s,
                    "driver's door opened (head start: {})",
                    head_start_text(*head_start)
                );
            }
            What::DoorClosed => s.push_str("driver's door closed"),
            What::Refused { line, error } => {
                let _ = write!(s, "line {line} refused: {error}");
            }
            What::End {
                selected,
                active,
                head_start,
                moving,
            } => {
                let _ = write!(
                    s,
                    "end: selected {}, active profile {}, head start {}",
                    selected.as_deref().unwrap_or("none"),
                    or_none(active),
                    head_start_text(*head_start)
                );
                if let Some(r) = moving {
                    let _ = write!(s, ", a {} motion still running", reason_str(*r));
                }
            }
        }
        s
    }

    /// One JSON object (no newline): `t_s`, `event` and the event's fields.
    pub fn json(&self) -> String {
        use serde_json::{Map, Value, json};
        let mut m = Map::new();
        m.insert("t_s".into(), json!(self.t_ms as f64 / 1000.0));
        let hs = |h: HeadStart| match h {
            HeadStart::Ms(ms) => json!(ms as f64 / 1000.0),
            _ => Value::Null,
        };
        let (event, fields): (&str, Vec<(&str, Value)>) = match &self.what {
            What::OwnProfile { key, profile } => (
                "own_profile",
                vec![("key", json!(key)), ("profile", json!(profile))],
            ),
            What::Selected {
                key,
                estimate,
                truth,
            } => {
                let mut f = vec![("key", json!(key))];
                if let Some(e) = estimate {
                    f.push(("x", json!(r2(e.x))));
                    f.push(("y", json!(r2(e.y))));
                    f.push(("p", json!(r2(e.heading))));
                    f.push(("at_spot", json!(r2(e.at_spot))));
                    f.push(("distance", json!(r2(e.distance))));
                }
                if let Some(t) = truth {
                    f.push(("true_x", json!(r2(t.x))));
                    f.push(("true_y", json!(r2(t.y))));
                    let d: Map<String, Value> = (t.distances.iter())
                        .map(|(k, d)| (k.clone(), json!(r2(*d))))
                        .collect();
                    f.push(("true_distances", Value::Object(d)));
                }
                ("selected", f)
            }
            What::Estimate {
                key,
                estimate: e,
                truth,
            } => {
                let mut f = vec![
                    ("key", json!(key)),
                    ("x", json!(r2(e.x))),
                    ("y", json!(r2(e.y))),
                    ("distance", json!(r2(e.distance))),
                    ("p", json!(r2(e.heading))),
                    ("at_spot", json!(r2(e.at_spot))),
                ];
                if let Some((x, y)) = truth {
                    f.push(("true_x", json!(r2(*x))));
                    f.push(("true_y", json!(r2(*y))));
                }
                ("estimate", f)
            }
            What::MotionStarted { reason, profile } => (
                if recall(*reason) {
                    "recall_started"
                } else {
                    "motion_started"
                },
                vec![
                    ("reason", json!(reason_str(*reason))),
                    ("profile", json!(profile)),
                ],
            ),
            What::MotionFinished { reason, outcome } => (
                "motion_finished",
                vec![
                    ("reason", json!(reason_str(*reason))),
                    ("outcome", json!(outcome_str(*outcome))),
                ],
            ),
            What::DoorOpened { head_start } => {
                ("door_opened", vec![("head_start_s", hs(*head_start))])
            }
            What::DoorClosed => ("door_closed", vec![]),
            What::Refused { line, error } => (
                "refused",
                vec![("line", json!(line)), ("error", json!(error))],
            ),
            What::End {
                selected,
                active,
                head_start,
                moving,
            } => (
                "end",
                vec![
                    ("key", json!(selected)),
                    ("profile", json!(active)),
                    ("head_start_s", hs(*head_start)),
                    (
                        "door_opened",
                        json!(*head_start != HeadStart::DoorNeverOpened),
                    ),
                    ("moving", json!(moving.map(reason_str))),
                ],
            ),
        };
        m.insert("event".into(), json!(event));
        for (k, v) in fields {
            m.insert(k.into(), v);
        }
        Value::Object(m).to_string()
    }
}

struct Replay {
    core: Core,
    sim: Sim,
    cfg: Arc<Config>,
    now: Millis,
    next_step: Millis,
    last_step: Millis,
    ticked_at: Option<Millis>,
    selected: Option<String>,
    /// The last key-approach recall not yet taken by a door opening: (when, profile id).
    key_recall: Option<(Millis, ProfileId)>,
    head_start: HeadStart,
    truths: BTreeMap<String, Vec<(Millis, f64, f64)>>,
    out: Vec<Decision>,
}

impl Replay {
    fn push(&mut self, what: What) {
        self.out.push(Decision {
            t_ms: self.now,
            what,
        });
    }

    fn profile_name(&self, id: ProfileId) -> String {
        self.core
            .store()
            .get(id)
            .map_or_else(|| id.to_string(), |p| p.name.clone())
    }

    fn push_estimates(&mut self) {
        for key in self.core.tracked_keys() {
            if let Some(estimate) = self.core.key_estimate(&key) {
                let truth = self.truth_of(&key, self.now);
                self.push(What::Estimate {
                    key,
                    estimate,
                    truth,
                });
            }
        }
    }

    fn truth_of(&self, key: &str, t: Millis) -> Option<(f64, f64)> {
        let list = self.truths.get(key)?;
        list.iter()
            .min_by_key(|(at, _, _)| at.abs_diff(t))
            .map(|&(_, x, y)| (x, y))
    }

    /// Note a change of the selected key, then carry out the effects.
    fn settle(&mut self) {
        let sel = self.core.nearest_key().map(str::to_string);
        if sel != self.selected {
            self.selected = sel.clone();
            let estimate = sel.as_deref().and_then(|k| self.core.key_estimate(k));
            let truth = sel.as_deref().and_then(|k| {
                let (x, y) = self.truth_of(k, self.now)?;
                let spot = self.cfg.keys.geometry.as_ref().map(|g| g.driver_spot);
                let distances = match spot {
                    Some([sx, sy]) => (self.truths.keys())
                        .filter_map(|k| {
                            let (x, y) = self.truth_of(k, self.now)?;
                            Some((k.clone(), (x - sx).hypot(y - sy)))
                        })
                        .collect(),
                    None => Vec::new(),
                };
                Some(TruthAt { x, y, distances })
            });
            self.push(What::Selected {
                key: sel,
                estimate,
                truth,
            });
        }
        loop {
            let fx = self.core.take_effects();
            if fx.is_empty() {
                break;
            }
            for e in fx {
                match e {
                    Effect::Backend(cmd) => {
                        let since = (self.now - self.last_step) as f64 / 1000.0;
                        if let Some(fb) = self.sim.command(&cmd, since) {
                            self.core.feedback(fb, self.now);
                        }
                    }
                    Effect::MotionStarted { reason, profile } => {
                        if let (Reason::KeyApproach, Some(id)) = (reason, &profile) {
                            self.key_recall = Some((self.now, *id));
                        }
                        let profile = profile.map(|id| self.profile_name(id));
                        self.push(What::MotionStarted { reason, profile });
                    }
                    Effect::MotionFinished { reason, outcome } => {
                        self.push(What::MotionFinished { reason, outcome });
                    }
                }
            }
        }
    }

    fn request(&mut self, req: Request, line: usize) -> Option<Reply> {
        let r = self.core.request(req, self.now, &mut NoStorage);
        let reply = match r {
            Ok(reply) => Some(reply),
            Err(e) => {
                self.push(What::Refused {
                    line,
                    error: e.to_string(),
                });
                None
            }
        };
        self.settle();
        reply
    }

    /// Let fake time pass up to `t`: the simulator every [`STEP_MS`], ticks at deadlines.
    fn advance_to(&mut self, t: Millis) {
        loop {
            let earliest = if self.ticked_at == Some(self.now) {
                self.now + 1
            } else {
                self.now
            };
            let deadline = self.core.next_deadline().map(|d| d.max(earliest));
            let next = deadline.map_or(self.next_step, |d| d.min(self.next_step));
            if next > t {
                break;
            }
            self.now = next;
            if next == self.next_step {
                let fbs: Vec<Feedback> = self.sim.step(STEP_MS as f64 / 1000.0);
                for fb in fbs {
                    self.core.feedback(fb, self.now);
                }
                self.last_step = self.now;
                self.next_step += STEP_MS;
            }
            if deadline.is_some_and(|d| d <= self.now) {
                self.core.tick(self.now, &mut NoStorage);
                self.ticked_at = Some(self.now);
            }
            self.settle();
        }
        self.now = t;
    }
}

/// [`replay_numbered`] with the lines numbered 1, 2, ... in order.
pub fn replay(cfg: Arc<Config>, lines: &[TraceLine]) -> Vec<Decision> {
    let numbered: Vec<(usize, TraceLine)> = (lines.iter().cloned().enumerate())
        .map(|(i, l)| (i + 1, l))
        .collect();
    replay_numbered(cfg, &numbered, None)
}

/// Run the trace (line number, line) through a fresh [`Core`] with `cfg` on a fake clock,
/// with the mock simulator's actuators starting at each axis' `initial`, and return every
/// decision in time order, ending with [`What::End`] at the last line's time. Deterministic.
/// With `estimates_every`, also every key's [`What::Estimate`] that often.
pub fn replay_numbered(
    cfg: Arc<Config>,
    lines: &[(usize, TraceLine)],
    estimates_every: Option<Millis>,
) -> Vec<Decision> {
    // Every profile the trace makes: its bind profiles, then keys read with no bind line.
    let mut names: Vec<String> = Vec::new();
    let mut bound: BTreeSet<&str> = BTreeSet::new();
    for (_, l) in lines {
        if let TraceEvent::Bind { key, profile } = &l.event {
            bound.insert(key);
            if !names.contains(profile) {
                names.push(profile.clone());
            }
        }
    }
    let mut own: Vec<&str> = Vec::new();
    for (_, l) in lines {
        if let TraceEvent::Rssi(r) | TraceEvent::Ranges(r) = &l.event {
            for (k, _, _) in r {
                if !bound.contains(k.as_str()) && !own.contains(&k.as_str()) {
                    own.push(k);
                }
            }
        }
    }
    let total = names.len() + own.len();
    let mut truths: BTreeMap<String, Vec<(Millis, f64, f64)>> = BTreeMap::new();
    for (_, l) in lines {
        if let TraceEvent::Truth { key, x, y } = &l.event {
            truths
                .entry(key.clone())
                .or_default()
                .push((l.t_ms, *x, *y));
        }
    }
    let sim = Sim::new(AxisId::all(&cfg.axes));
    let known = sim.positions().collect();
    let core = Core::new(
        cfg.clone(),
        Store::default(),
        &known,
        "sim".into(),
        "replay".into(),
    );
    let mut r = Replay {
        core,
        sim,
        cfg: cfg.clone(),
        now: 0,
        next_step: STEP_MS,
        last_step: 0,
        ticked_at: None,
        selected: None,
        key_recall: None,
        head_start: HeadStart::DoorNeverOpened,
        truths,
        out: Vec::new(),
    };
    // Profile name -> id, in the order created.
    let mut profiles: Vec<(String, ProfileId)> = Vec::new();
    let mut create = |r: &mut Replay, name: &str, line: usize| -> Option<ProfileId> {
        if let Some((_, id)) = profiles.iter().find(|(n, _)| n == name) {
            return Some(*id);
        }
        let k = profiles.len();
        let Some(Reply::Created(id)) = r.request(
            Request::CreateProfile {
                name: name.to_string(),
            },
            line,
        ) else {
            return None;
        };
        let share = (k + 1) as f64 / (total + 2) as f64;
        let positions = AxisId::all(&cfg.axes)
            .map(|(axis, a)| {
                let v = a.min + share * (a.max - a.min);
                (axis, (v * 10.0).round() / 10.0)
            })
            .collect();
        r.request(Request::SetPositions { id, positions }, line);
        profiles.push((name.to_string(), id));
        Some(id)
    };
    let mut own_made: BTreeSet<String> = BTreeSet::new();
    let mut next_estimates = 0;
    for (line, l) in lines {
        r.advance_to(l.t_ms);
        if let Some(every) = estimates_every
            && r.now >= next_estimates
        {
            r.push_estimates();
            next_estimates = r.now + every.max(1);
        }
        let line = *line;
        match &l.event {
            TraceEvent::Signals(s) => {
                let before = r.core.vehicle().driver_door_open;
                let active = r.core.store().active;
                let res = r
                    .core
                    .request(Request::UpdateSignals(s.clone()), r.now, &mut NoStorage);
                let after = r.core.vehicle().driver_door_open;
                if let Err(e) = res {
                    r.push(What::Refused {
                        line,
                        error: e.to_string(),
                    });
                }
                if !before && after {
                    let head_start = match r.key_recall.take() {
                        Some((t, id)) if active == Some(id) => HeadStart::Ms(r.now - t),
                        _ => HeadStart::NoRecall,
                    };
                    r.head_start = head_start;
                    r.push(What::DoorOpened { head_start });
                } else if before && !after {
                    r.push(What::DoorClosed);
                }
                r.settle();
            }
            TraceEvent::Rssi(batch) | TraceEvent::Ranges(batch) => {
                for (key, _, _) in batch {
                    if own.contains(&key.as_str()) && own_made.insert(key.clone()) {
                        if let Some(id) = create(&mut r, key, line) {
                            r.request(
                                Request::BindKey {
                                    id,
                                    key: key.clone(),
                                },
                                line,
                            );
                        }
                        r.push(What::OwnProfile {
                            key: key.clone(),
                            profile: key.clone(),
                        });
                    }
                }
                let req = match &l.event {
                    TraceEvent::Rssi(_) => Request::ReportRssi(batch.clone()),
                    _ => Request::ReportRanges(batch.clone()),
                };
                r.request(req, line);
            }
            TraceEvent::Bind { key, profile } => {
                if let Some(id) = create(&mut r, profile, line) {
                    r.request(
                        Request::BindKey {
                            id,
                            key: key.clone(),
                        },
                        line,
                    );
                }
            }
            TraceEvent::Truth { .. } => {}
        }
    }
    let active = r.core.store().active.map(|id| r.profile_name(id));
    let end = What::End {
        selected: r.core.nearest_key().map(str::to_string),
        active,
        head_start: r.head_start,
        moving: r.core.motion_reason(),
    };
    r.push(end);
    r.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t_ms: u64, event: TraceEvent) -> TraceLine {
        TraceLine { t_ms, event }
    }

    #[test]
    fn every_event_round_trips() {
        let lines = vec![
            line(
                0,
                TraceEvent::Signals(vec![
                    Signal::Gear(Gear::P),
                    Signal::SpeedKmh(0.0),
                    Signal::DoorsLocked(false),
                    Signal::DriverDoorOpen(true),
                    Signal::DriverSeatOccupied(false),
                    Signal::DriverBeltBuckled(true),
                    Signal::BrakePressed(false),
                    Signal::RearOccupied(true),
                    Signal::SeatSwitch(false),
                ]),
            ),
            line(
                5,
                TraceEvent::Signals(vec![Signal::GearUnknown, Signal::SpeedUnknown]),
            ),
            line(5, TraceEvent::Signals(vec![])),
            line(
                10,
                TraceEvent::Rssi(vec![("k\"ey".into(), "cabin".into(), -61.5)]),
            ),
            line(
                20,
                TraceEvent::Ranges(vec![
                    ("driver-key".into(), "driver_door".into(), 3.21),
                    ("driver-key".into(), "rear".into(), 1e-3),
                ]),
            ),
            line(20, TraceEvent::Ranges(vec![])),
            line(
                30,
                TraceEvent::Bind {
                    key: "driver-key".into(),
                    profile: "Drïver 1".into(),
                },
            ),
            line(
                40,
                TraceEvent::Truth {
                    key: "driver-key".into(),
                    x: -3.2,
                    y: 1.0,
                },
            ),
        ];
        let text: String = lines.iter().map(|l| to_json_line(l) + "\n").collect();
        assert_eq!(parse(&text), Ok(lines.clone()));
        for l in &lines {
            assert_eq!(parse_line(&to_json_line(l)), Ok(Some(l.clone())));
        }
    }

    #[test]
    fn written_lines_read_as_documented() {
        let l = parse_line(
            r#"{"t_ms": 3200, "signals": {"gear": "P", "speed_kmh": 0, "doors_locked": false}}"#,
        );
        assert_eq!(
            l,
            Ok(Some(line(
                3200,
                TraceEvent::Signals(vec![
                    Signal::Gear(Gear::P),
                    Signal::SpeedKmh(0.0),
                    Signal::DoorsLocked(false)
                ])
            )))
        );
        assert_eq!(
            to_json_line(&line(1, TraceEvent::Signals(vec![Signal::Gear(Gear::D)]))),
            r#"{"t_ms":1,"signals":{"gear":"D"}}"#
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("   "), Ok(None));
        assert_eq!(parse_line("# a comment {"), Ok(None));
        assert_eq!(parse("# head\n\n"), Ok(vec![]));
    }

    #[test]
    fn mistakes_are_errors_naming_the_line() {
        let bad = [
            (r#"{"t_ms": 0, "signal": {}}"#, "unknown field \"signal\""),
            (
                r#"{"t_ms": 0, "signals": {"gears": "P"}}"#,
                "unknown signal",
            ),
            (r#"{"t_ms": 0, "signals": {"gear": "X"}}"#, "not one of"),
            (r#"{"t_ms": 0, "signals": {"gear": 1}}"#, "takes a string"),
            (
                r#"{"t_ms": 0, "signals": {"brake_pressed": 1}}"#,
                "a boolean",
            ),
            (
                r#"{"t_ms": 0, "signals": {"gear": "P", "gear": "D"}}"#,
                "given twice",
            ),
            (r#"{"t_ms": 0}"#, "exactly one of"),
            (
                r#"{"t_ms": 0, "rssi": [], "ranges": []}"#,
                "rssi and ranges",
            ),
            (r#"{"signals": {}}"#, "t_ms is missing"),
            (r#"{"t_ms": -1, "signals": {}}"#, "t_ms must be"),
            (r#"{"t_ms": 1.5, "signals": {}}"#, "t_ms must be"),
            (r#"{"t_ms": 0, "ranges": [["k", "a"]]}"#, "reading 1"),
            (
                r#"{"t_ms": 0, "ranges": [["k", "a", "1"]]}"#,
                "must be a number",
            ),
            (r#"{"t_ms": 0, "rssi": {}}"#, "must be an array"),
            (
                r#"{"t_ms": 0, "bind": {"key": "k"}}"#,
                "bind.profile is missing",
            ),
            (
                r#"{"t_ms": 0, "bind": {"key": "k", "profile": "P", "x": 1}}"#,
                "unknown field \"x\" in bind",
            ),
            (r#"{"t_ms": 0, "truth": {"key": "k", "x": 1}}"#, "truth.y"),
            (
                r#"{"t_ms": 0, "truth": {"key": "k", "x": 1, "y": true}}"#,
                "number",
            ),
            (r#"[1]"#, "must be an object"),
            (r#"{"t_ms": 0,"#, "not JSON"),
        ];
        for (text, want) in bad {
            let e = parse(&format!("# first\n{text}\n")).expect_err(text);
            assert!(e.starts_with("line 2: "), "{text}: {e}");
            assert!(e.contains(want), "{text}: {e} (wanted {want:?})");
        }
    }

    #[test]
    fn time_may_not_go_back() {
        let text = "{\"t_ms\": 5, \"signals\": {}}\n{\"t_ms\": 5, \"signals\": {}}\n\
                    {\"t_ms\": 4, \"signals\": {}}\n";
        let e = parse(text).expect_err("backwards");
        assert!(e.starts_with("line 3: "), "{e}");
    }

    /// Where the shipped anchors are ([keys.geometry] of the built-in config).
    const ANCHORS: [(&str, f64, f64); 4] = [
        ("driver_door", -0.95, 0.2),
        ("passenger_door", 0.95, 0.2),
        ("rear", 0.0, -2.2),
        ("cabin", 0.0, 0.3),
    ];
    const SPOT: (f64, f64) = (-1.45, 0.2);

    /// A key walking in a straight line from 10 m out (to the left of and ahead of the car) to
    /// the driver's spot at 1.4 m/s, exact distances every 150 ms, then the driver's door
    /// opening a second after it arrived and readings going on for a few seconds.
    pub(crate) fn walk_trace() -> Vec<TraceLine> {
        let mut lines = vec![
            line(
                0,
                TraceEvent::Bind {
                    key: "driver-key".into(),
                    profile: "Driver".into(),
                },
            ),
            line(
                0,
                TraceEvent::Signals(vec![
                    Signal::Gear(Gear::P),
                    Signal::SpeedKmh(0.0),
                    Signal::DoorsLocked(false),
                ]),
            ),
        ];
        let bearing = 150f64.to_radians();
        let start = (SPOT.0 + 10.0 * bearing.cos(), SPOT.1 + 10.0 * bearing.sin());
        let arrive_ms = 10.0 / 1.4 * 1000.0;
        // On a reading's tick, about a second after arrival.
        let door_ms = ((arrive_ms as u64 + 1000) / 150 + 1) * 150;
        let mut t = 0;
        while t <= door_ms + 8000 {
            let f = (t as f64 / arrive_ms).min(1.0);
            let (x, y) = (
                start.0 + (SPOT.0 - start.0) * f,
                start.1 + (SPOT.1 - start.1) * f,
            );
            let batch = ANCHORS
                .iter()
                .map(|&(a, ax, ay)| {
                    let d = ((x - ax).hypot(y - ay) * 1000.0).round() / 1000.0;
                    ("driver-key".to_string(), a.to_string(), d)
                })
                .collect();
            lines.push(line(t, TraceEvent::Ranges(batch)));
            if t % 600 == 0 {
                lines.push(line(
                    t,
                    TraceEvent::Truth {
                        key: "driver-key".into(),
                        x: r2(x),
                        y: r2(y),
                    },
                ));
            }
            if t == door_ms {
                lines.push(line(
                    t,
                    TraceEvent::Signals(vec![Signal::DriverDoorOpen(true)]),
                ));
            }
            t += 150;
        }
        lines
    }

    fn builtin() -> Arc<Config> {
        match crate::config::builtin() {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_key_walking_to_the_driver_spot_is_selected_and_its_profile_recalled() {
        let decisions = replay(builtin(), &walk_trace());
        let text: Vec<String> = decisions.iter().map(Decision::text).collect();
        let all = text.join("\n");
        let Some(Decision {
            what: What::End {
                selected, active, ..
            },
            ..
        }) = decisions.last()
        else {
            panic!("no end:\n{all}")
        };
        assert_eq!(selected.as_deref(), Some("driver-key"), "\n{all}");
        assert_eq!(active.as_deref(), Some("Driver"), "\n{all}");
        assert!(
            decisions
                .iter()
                .any(|d| matches!(d.what, What::DoorOpened { .. })),
            "\n{all}"
        );
        assert!(
            decisions.iter().any(|d| matches!(
                &d.what,
                What::MotionStarted {
                    reason: Reason::KeyApproach,
                    profile: Some(p)
                } if p == "Driver"
            )),
            "\n{all}"
        );
        assert!(!all.contains("refused"), "\n{all}");
        // Deterministic, and every decision is one JSON object.
        assert_eq!(replay(builtin(), &walk_trace()), decisions);
        for d in &decisions {
            let v: serde_json::Value = match serde_json::from_str(&d.json()) {
                Ok(v) => v,
                Err(e) => panic!("{e}: {}", d.json()),
            };
            assert!(v.get("t_s").is_some() && v.get("event").is_some());
        }
    }

    #[test]
    fn a_key_without_a_bind_line_gets_a_profile_of_its_own() {
        let lines: Vec<TraceLine> = walk_trace()
            .into_iter()
            .filter(|l| !matches!(l.event, TraceEvent::Bind { .. }))
            .collect();
        let decisions = replay(builtin(), &lines);
        assert!(decisions.iter().any(|d| d.what
            == What::OwnProfile {
                key: "driver-key".into(),
                profile: "driver-key".into()
            }));
        assert!(
            !decisions
                .iter()
                .any(|d| matches!(d.what, What::Refused { .. }))
        );
    }

    #[test]
    fn refused_lines_are_decisions_naming_the_line() {
        let lines = vec![
            line(
                0,
                TraceEvent::Bind {
                    key: "k".into(),
                    profile: "P".into(),
                },
            ),
            line(
                10,
                TraceEvent::Ranges(vec![("k".into(), "nowhere".into(), 1.0)]),
            ),
        ];
        let d = replay(builtin(), &lines);
        assert!(
            d.iter()
                .any(|d| matches!(&d.what, What::Refused { line: 2, error }
                if error.contains("unknown anchor"))),
            "{d:?}"
        );
    }
}
