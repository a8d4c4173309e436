//! Daemon configuration: parsed from TOML, validated, never written by the daemon.
//!
//! Every error carries `file:line:col` so that an OTA script validating a new config with
//! `driverprofiled --check-config PATH` can point at the offending value.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// The default configuration, identical to `config/driverprofiled.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../config/driverprofiled.toml");
/// Name under which the built-in defaults are reported in errors.
pub const BUILTIN_NAME: &str = "<built-in defaults>";

/// Backends the daemon knows how to drive.
pub const KNOWN_BACKENDS: &[&str] = &["mock"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Mm,
    Deg,
    Percent,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Mm => "mm",
            Unit::Deg => "deg",
            Unit::Percent => "percent",
        }
    }
}

/// One actuated axis (seat position, wheel tilt, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct AxisConfig {
    /// Axis name: the object path element and the key in `Positions`.
    pub name: String,
    pub vss: String,
    pub unit: Unit,
    pub min: f64,
    pub max: f64,
    /// Position the mock backend starts at.
    pub initial: f64,
    /// Travel speed in units per second.
    pub speed: f64,
    /// An axis counts as arrived when within this distance of its target.
    pub tolerance: f64,
    /// A commanded axis whose position does not change for this long is stalled.
    pub stall_ms: u64,
    pub backend: String,
}

impl AxisConfig {
    pub fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.min, self.max)
    }
}

/// Key-locator settings for nearest-key selection.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyConfig {
    pub anchors: Vec<String>,
    /// Index into `anchors` of the driver's door handle.
    pub driver_anchor: usize,
    pub expire_ms: u64,
    pub approach_radius_m: f64,
    pub hysteresis_m: f64,
    pub dwell_ms: u64,
    /// Recall before the door opens (else when it opens).
    pub pre_adjust: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub max_profiles: usize,
    pub max_keys: usize,
    pub speed_threshold_kmh: f64,
    pub motion_timeout_ms: u64,
    /// At most this many motors run at once (current budget).
    pub max_concurrent: usize,
    /// An axis may run this long within any `duty_window_ms`.
    pub duty_limit_ms: u64,
    pub duty_window_ms: u64,
    pub axes: Vec<AxisConfig>,
    pub keys: KeyConfig,
    pub easy_exit: EasyExitConfig,
}

/// Where easy exit moves an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retract {
    /// By this much from where the axis is (positive: larger values).
    Relative(f64),
    Min,
    Max,
    Absolute(f64),
}

impl Retract {
    /// The retract target for an axis at `from`, within the axis' range.
    pub fn target(self, axis: &AxisConfig, from: f64) -> f64 {
        axis.clamp(match self {
            Retract::Relative(d) => from + d,
            Retract::Min => axis.min,
            Retract::Max => axis.max,
            Retract::Absolute(v) => v,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EasyExitTrigger {
    /// Gear becomes P at standstill.
    Park,
    /// P at standstill and the driver's belt unbuckled.
    ParkAndUnbuckle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOn {
    /// Seat occupied and brake pressed.
    Brake,
    /// Seat occupied and belt buckled.
    Belt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EasyExitConfig {
    /// Whether easy exit runs when no profile is active.
    pub enabled: bool,
    pub trigger: EasyExitTrigger,
    pub restore_on: RestoreOn,
    /// With someone behind the driver, the guarded axis moves back at most this much.
    pub rear_occupied_back_mm: f64,
    /// The seat fore/aft axis the rear guard applies to (larger = further back).
    pub rear_guard_axis: Option<usize>,
    /// Retract rule per axis index.
    pub retract: Vec<(usize, Retract)>,
}

/// A configuration error with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    profiles: Option<Spanned<RawProfiles>>,
    #[serde(default)]
    motion: Option<Spanned<RawMotion>>,
    #[serde(default)]
    axis: Vec<Spanned<RawAxis>>,
    #[serde(default)]
    keys: Option<Spanned<RawKeys>>,
    #[serde(default)]
    easy_exit: Option<Spanned<RawEasyExit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEasyExit {
    enabled: Option<bool>,
    trigger: Option<Spanned<String>>,
    restore_on: Option<Spanned<String>>,
    rear_occupied_back_mm: Option<Spanned<Number>>,
    rear_guard_axis: Option<Spanned<String>>,
    retract: Option<Spanned<std::collections::BTreeMap<String, Spanned<RetractValue>>>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RetractValue {
    Text(String),
    Number(Number),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    anchors: Option<Spanned<Vec<Spanned<String>>>>,
    driver_anchor: Option<Spanned<String>>,
    expire_s: Option<Spanned<Number>>,
    approach_radius_m: Option<Spanned<Number>>,
    hysteresis_m: Option<Spanned<Number>>,
    dwell_s: Option<Spanned<Number>>,
    pre_adjust: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfiles {
    max_profiles: Option<Spanned<i64>>,
    max_keys: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMotion {
    speed_threshold_kmh: Option<Spanned<Number>>,
    timeout_s: Option<Spanned<Number>>,
    max_concurrent: Option<Spanned<i64>>,
    duty_limit_s: Option<Spanned<Number>>,
    duty_window_s: Option<Spanned<Number>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxis {
    name: Spanned<String>,
    vss: Spanned<String>,
    unit: Spanned<String>,
    min: Spanned<Number>,
    max: Spanned<Number>,
    initial: Spanned<Number>,
    speed: Spanned<Number>,
    tolerance: Option<Spanned<Number>>,
    stall_ms: Option<Spanned<i64>>,
    backend: Spanned<String>,
}

/// A TOML number: integers are accepted where a float is meant (`min = 0`).
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn get(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// Turn a byte offset into 1-based line and column (columns count characters).
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err_at(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(self.text, offset);
        ConfigError {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    fn err<T>(&self, s: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.err_at(s.span().start, message)
    }

    fn finite(&self, s: &Spanned<Number>, what: &str) -> Result<f64, ConfigError> {
        let v = s.get_ref().get();
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.err(s, format!("{what} must be a finite number")))
        }
    }

    fn positive(&self, s: &Spanned<Number>, what: &str) -> Result<f64, ConfigError> {
        let v = self.finite(s, what)?;
        if v > 0.0 {
            Ok(v)
        } else {
            Err(self.err(s, format!("{what} must be greater than 0, not {v}")))
        }
    }

    fn int_in(&self, s: &Spanned<i64>, what: &str, lo: i64, hi: i64) -> Result<i64, ConfigError> {
        let v = *s.get_ref();
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(self.err(s, format!("{what} must be between {lo} and {hi}, not {v}")))
        }
    }
}

fn valid_axis_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase()
}

/// Parse and validate a configuration text. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let ctx = Ctx { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        ctx.err_at(offset, e.message().trim().to_string())
    })?;

    let mut cfg = Config {
        max_profiles: 10,
        max_keys: 19,
        speed_threshold_kmh: 0.5,
        motion_timeout_ms: 60_000,
        max_concurrent: 2,
        duty_limit_ms: 120_000,
        duty_window_ms: 300_000,
        axes: Vec::new(),
        easy_exit: EasyExitConfig {
            enabled: true,
            trigger: EasyExitTrigger::Park,
            restore_on: RestoreOn::Brake,
            rear_occupied_back_mm: 0.0,
            rear_guard_axis: None,
            retract: Vec::new(),
        },
        keys: KeyConfig {
            anchors: ["driver_door", "passenger_door", "rear", "cabin"]
                .map(String::from)
                .to_vec(),
            driver_anchor: 0,
            expire_ms: 2000,
            approach_radius_m: 5.0,
            hysteresis_m: 0.5,
            dwell_ms: 400,
            pre_adjust: true,
        },
    };
    if let Some(p) = &raw.profiles {
        let p = p.get_ref();
        if let Some(v) = &p.max_profiles {
            cfg.max_profiles = ctx.int_in(v, "max_profiles", 1, 1000)? as usize;
        }
        if let Some(v) = &p.max_keys {
            cfg.max_keys = ctx.int_in(v, "max_keys", 0, 10_000)? as usize;
        }
    }
    if let Some(m) = &raw.motion {
        let m = m.get_ref();
        if let Some(v) = &m.speed_threshold_kmh {
            let t = ctx.positive(v, "speed_threshold_kmh")?;
            if t > 10.0 {
                return Err(ctx.err(
                    v,
                    "speed_threshold_kmh must be at most 10 (motion is for a car at standstill)",
                ));
            }
            cfg.speed_threshold_kmh = t;
        }
        if let Some(v) = &m.timeout_s {
            let t = ctx.positive(v, "timeout_s")?;
            if t > 600.0 {
                return Err(ctx.err(v, "timeout_s must be at most 600"));
            }
            cfg.motion_timeout_ms = (t * 1000.0).round() as u64;
        }
        if let Some(v) = &m.max_concurrent {
            cfg.max_concurrent = ctx.int_in(v, "max_concurrent", 1, 64)? as usize;
        }
        if let Some(v) = &m.duty_window_s {
            let w = ctx.positive(v, "duty_window_s")?;
            if w > 3600.0 {
                return Err(ctx.err(v, "duty_window_s must be at most 3600"));
            }
            cfg.duty_window_ms = (w * 1000.0).round() as u64;
        }
        if let Some(v) = &m.duty_limit_s {
            let l = ctx.positive(v, "duty_limit_s")?;
            cfg.duty_limit_ms = (l * 1000.0).round() as u64;
            if cfg.duty_limit_ms > cfg.duty_window_ms {
                return Err(ctx.err(v, "duty_limit_s must not exceed duty_window_s"));
            }
        }
    }

    if let Some(k) = &raw.keys {
        parse_keys(&ctx, k, &mut cfg.keys)?;
    }

    if raw.axis.is_empty() {
        return Err(ctx.err_at(
            text.len(),
            "no [[axis]] declared: at least one axis is needed",
        ));
    }
    for a in &raw.axis {
        let a = a.get_ref();
        let name = a.name.get_ref().clone();
        if !valid_axis_name(&name) {
            return Err(ctx.err(
                &a.name,
                format!("axis name {name:?} must be 1-64 characters of a-z, 0-9 and _, starting with a letter"),
            ));
        }
        if cfg.axes.iter().any(|x| x.name == name) {
            return Err(ctx.err(&a.name, format!("axis {name:?} is declared twice")));
        }
        let vss = a.vss.get_ref().clone();
        if !vss.starts_with("Vehicle.") || vss.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ctx.err(
                &a.vss,
                format!("vss {vss:?} must be a VSS path starting with \"Vehicle.\""),
            ));
        }
        let unit = match a.unit.get_ref().as_str() {
            "mm" => Unit::Mm,
            "deg" => Unit::Deg,
            "percent" => Unit::Percent,
            other => {
                return Err(ctx.err(
                    &a.unit,
                    format!("unit {other:?} must be one of \"mm\", \"deg\", \"percent\""),
                ));
            }
        };
        let min = ctx.finite(&a.min, "min")?;
        let max = ctx.finite(&a.max, "max")?;
        if max <= min {
            return Err(ctx.err(
                &a.max,
                format!("max ({max}) must be greater than min ({min})"),
            ));
        }
        if unit == Unit::Percent && (min < 0.0 || max > 100.0) {
            return Err(ctx.err(&a.min, "a percent axis must lie within 0..100"));
        }
        let initial = ctx.finite(&a.initial, "initial")?;
        if !(min..=max).contains(&initial) {
            return Err(ctx.err(
                &a.initial,
                format!("initial ({initial}) must lie within min..max ({min}..{max})"),
            ));
        }
        let speed = ctx.positive(&a.speed, "speed")?;
        let tolerance = match &a.tolerance {
            Some(t) => {
                let t = ctx.positive(t, "tolerance")?;
                if t > (max - min) / 10.0 {
                    return Err(ctx.err(
                        a.tolerance.as_ref().unwrap_or(&a.max),
                        "tolerance must be at most a tenth of the axis range",
                    ));
                }
                t
            }
            None => ((max - min) / 1000.0).max(0.01),
        };
        let default_stall = if name.starts_with("wheel") { 1000 } else { 200 };
        let stall_ms = match &a.stall_ms {
            Some(s) => ctx.int_in(s, "stall_ms", 50, 10_000)? as u64,
            None => default_stall,
        };
        let backend = a.backend.get_ref().clone();
        if !KNOWN_BACKENDS.contains(&backend.as_str()) {
            return Err(ctx.err(
                &a.backend,
                format!(
                    "unknown backend {backend:?} (known: {})",
                    KNOWN_BACKENDS.join(", ")
                ),
            ));
        }
        cfg.axes.push(AxisConfig {
            name,
            vss,
            unit,
            min,
            max,
            initial,
            speed,
            tolerance,
            stall_ms,
            backend,
        });
    }
    match &raw.easy_exit {
        Some(e) => parse_easy_exit(&ctx, e, &mut cfg)?,
        None => default_easy_exit(&mut cfg),
    }
    Ok(cfg)
}

/// Without an [easy_exit] table: seat 50 mm back, wheel up and toward the dashboard, for the
/// axes of those names that exist.
fn default_easy_exit(cfg: &mut Config) {
    let find = |n: &str| cfg.axes.iter().position(|a| a.name == n);
    let e = &mut cfg.easy_exit;
    e.rear_guard_axis = find("seat_position");
    e.retract = [
        ("seat_position", Retract::Relative(50.0)),
        ("wheel_tilt", Retract::Max),
        ("wheel_extension", Retract::Min),
    ]
    .into_iter()
    .filter_map(|(n, r)| find(n).map(|i| (i, r)))
    .collect();
}

fn parse_easy_exit(
    ctx: &Ctx<'_>,
    e: &Spanned<RawEasyExit>,
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    default_easy_exit(cfg);
    let raw = e.get_ref();
    let axis_of = |s: &Spanned<String>, what: &str| {
        cfg.axes
            .iter()
            .position(|a| a.name == *s.get_ref())
            .ok_or_else(|| ctx.err(s, format!("{what}: no axis {:?} is declared", s.get_ref())))
    };
    let mut out = cfg.easy_exit.clone();
    if let Some(b) = raw.enabled {
        out.enabled = b;
    }
    if let Some(t) = &raw.trigger {
        out.trigger = match t.get_ref().as_str() {
            "park" => EasyExitTrigger::Park,
            "park_and_unbuckle" => EasyExitTrigger::ParkAndUnbuckle,
            other => {
                return Err(ctx.err(
                    t,
                    format!("trigger {other:?} must be \"park\" or \"park_and_unbuckle\""),
                ));
            }
        };
    }
    if let Some(r) = &raw.restore_on {
        out.restore_on = match r.get_ref().as_str() {
            "brake" => RestoreOn::Brake,
            "belt" => RestoreOn::Belt,
            other => {
                return Err(ctx.err(
                    r,
                    format!("restore_on {other:?} must be \"brake\" or \"belt\""),
                ));
            }
        };
    }
    if let Some(v) = &raw.rear_occupied_back_mm {
        let b = ctx.finite(v, "rear_occupied_back_mm")?;
        if b < 0.0 {
            return Err(ctx.err(v, "rear_occupied_back_mm must be 0 or more"));
        }
        out.rear_occupied_back_mm = b;
    }
    if let Some(a) = &raw.rear_guard_axis {
        out.rear_guard_axis = Some(axis_of(a, "rear_guard_axis")?);
    }
    if let Some(table) = &raw.retract {
        out.retract.clear();
        for (name, value) in table.get_ref() {
            let i = cfg
                .axes
                .iter()
                .position(|a| &a.name == name)
                .ok_or_else(|| ctx.err(value, format!("retract: no axis {name:?} is declared")))?;
            let a = &cfg.axes[i];
            let rule = match value.get_ref() {
                RetractValue::Text(t) if t == "min" => Retract::Min,
                RetractValue::Text(t) if t == "max" => Retract::Max,
                RetractValue::Text(t) if t.starts_with('+') || t.starts_with('-') => {
                    match t.parse::<f64>() {
                        Ok(d) if d.is_finite() => Retract::Relative(d),
                        _ => {
                            return Err(ctx.err(
                                value,
                                format!(
                                    "retract {name}: {t:?} is not a relative amount like \"+50\""
                                ),
                            ));
                        }
                    }
                }
                RetractValue::Text(t) => {
                    return Err(ctx.err(value, format!("retract {name}: {t:?} must be \"+N\", \"-N\", \"min\", \"max\" or a number")));
                }
                RetractValue::Number(n) => {
                    let v = n.get();
                    if !v.is_finite() || v < a.min || v > a.max {
                        return Err(ctx.err(
                            value,
                            format!("retract {name}: {v} is outside {}..{}", a.min, a.max),
                        ));
                    }
                    Retract::Absolute(v)
                }
            };
            out.retract.push((i, rule));
        }
    }
    cfg.easy_exit = out;
    Ok(())
}

fn parse_keys(ctx: &Ctx<'_>, k: &Spanned<RawKeys>, out: &mut KeyConfig) -> Result<(), ConfigError> {
    let k = k.get_ref();
    if let Some(list) = &k.anchors {
        let mut anchors: Vec<String> = Vec::new();
        for a in list.get_ref() {
            let name = a.get_ref();
            if !valid_axis_name(name) {
                return Err(ctx.err(
                    a,
                    format!("anchor name {name:?} must be 1-64 characters of a-z, 0-9 and _"),
                ));
            }
            if anchors.contains(name) {
                return Err(ctx.err(a, format!("anchor {name:?} is listed twice")));
            }
            anchors.push(name.clone());
        }
        if anchors.is_empty() {
            return Err(ctx.err(list, "at least one anchor is needed"));
        }
        out.anchors = anchors;
    }
    let driver = match &k.driver_anchor {
        Some(d) => out
            .anchors
            .iter()
            .position(|a| a == d.get_ref())
            .ok_or_else(|| {
                ctx.err(
                    d,
                    format!("driver_anchor {:?} is not in anchors", d.get_ref()),
                )
            })?,
        None => out
            .anchors
            .iter()
            .position(|a| a == "driver_door")
            .ok_or_else(|| {
                ctx.err_at(
                    0,
                    "driver_anchor must be set when anchors has no \"driver_door\"",
                )
            })?,
    };
    out.driver_anchor = driver;
    if let Some(v) = &k.expire_s {
        let s = ctx.positive(v, "expire_s")?;
        if s > 60.0 {
            return Err(ctx.err(v, "expire_s must be at most 60"));
        }
        out.expire_ms = (s * 1000.0).round() as u64;
    }
    if let Some(v) = &k.approach_radius_m {
        let r = ctx.positive(v, "approach_radius_m")?;
        if r > 100.0 {
            return Err(ctx.err(v, "approach_radius_m must be at most 100"));
        }
        out.approach_radius_m = r;
    }
    if let Some(v) = &k.hysteresis_m {
        let h = ctx.finite(v, "hysteresis_m")?;
        if !(0.0..=10.0).contains(&h) {
            return Err(ctx.err(v, "hysteresis_m must be between 0 and 10"));
        }
        out.hysteresis_m = h;
    }
    if let Some(v) = &k.dwell_s {
        let d = ctx.finite(v, "dwell_s")?;
        if !(0.0..=10.0).contains(&d) {
            return Err(ctx.err(v, "dwell_s must be between 0 and 10"));
        }
        out.dwell_ms = (d * 1000.0).round() as u64;
    }
    if let Some(p) = k.pre_adjust {
        out.pre_adjust = p;
    }
    Ok(())
}

/// Read and validate a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        col: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(&file, &text)
}

/// The built-in defaults.
pub fn builtin() -> Result<Config, ConfigError> {
    parse(BUILTIN_NAME, DEFAULT_CONFIG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_with_eight_axes() {
        let cfg = builtin().unwrap();
        assert_eq!(cfg.axes.len(), 8);
        assert_eq!(cfg.max_profiles, 10);
        assert_eq!(cfg.max_keys, 19);
        assert_eq!(cfg.speed_threshold_kmh, 0.5);
        let wheel = cfg.axes.iter().find(|a| a.name == "wheel_tilt").unwrap();
        assert_eq!(wheel.unit, Unit::Percent);
        assert_eq!(wheel.stall_ms, 1000);
        assert_eq!(wheel.vss, "Vehicle.Chassis.SteeringWheel.Tilt");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = parse("x.toml", "[motion]\nspeed_threshold_kmh = = 1\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 23), "{e}");
    }

    #[test]
    fn unknown_field_is_located() {
        let text = DEFAULT_CONFIG.replacen("[motion]\n", "[motion]\nbogus = 1\n", 1);
        let e = parse("x.toml", &text).unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
        let line = text.lines().position(|l| l.starts_with("bogus")).unwrap() + 1;
        assert_eq!(e.line, line);
    }

    #[test]
    fn semantic_error_is_located() {
        let text = DEFAULT_CONFIG.replacen("max = 260", "max = -5", 1);
        let e = parse("x.toml", &text).unwrap_err();
        let line = text
            .lines()
            .position(|l| l.starts_with("max = -5"))
            .unwrap()
            + 1;
        assert_eq!((e.line, e.col), (line, 7), "{e}");
        assert!(e.message.contains("greater than min"), "{e}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
