//! Daemon configuration: parsed from TOML, validated, never written by the daemon.
//!
//! serde parses the file's shape (types, enum values, unknown keys); the code below checks only
//! the rules serde cannot express. The shipped `config/driverprofiled.toml` is the one source
//! of defaults: a file is merged over it before it is deserialized, so whatever a file omits
//! takes the shipped value.
//!
//! Every error carries `file:line:col` so that an OTA script validating a new config with
//! `driverprofiled --check-config PATH` can point at the offending value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The default configuration: `config/driverprofiled.toml`, which also supplies whatever a
/// configuration file omits.
pub const DEFAULT_CONFIG: &str = include_str!("../config/driverprofiled.toml");
/// Name under which the built-in defaults are reported in errors.
pub const BUILTIN_NAME: &str = "<built-in defaults>";

/// Tables a file replaces whole when it has them, instead of key by key.
const REPLACED_WHOLE: &[&str] = &["easy_exit.retract", "keys.geometry"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// The motor group whose current budget the axis counts against (an index into
    /// [`Config::groups`]); `None`: the main one, `[motion] max_concurrent`.
    pub group: Option<usize>,
}

/// A motor group with a current budget of its own (`[motion.groups]`): the mirror motors on
/// the door modules do not draw from the seat's supply.
#[derive(Debug, Clone, PartialEq)]
pub struct MotorGroup {
    pub name: String,
    /// At most this many of the group's motors run at once.
    pub max_concurrent: usize,
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
    /// `[keys.geometry]`: where the anchors are. With it the key locator weighs every reading
    /// of every anchor over time ([`crate::core::locate`]); without it keys are selected by
    /// distances alone ([`crate::core::keys`]), as before geometry existed.
    pub geometry: Option<Geometry>,
    /// `[keys.ble]`: the path-loss model `Vehicle.ReportRssi` readings are weighed with.
    pub ble: BleModel,
    /// `[keys.uwb]`: the error model of `Vehicle.ReportRanges` distances.
    pub uwb: UwbModel,
    /// `[keys.locator]`: when the locator selects.
    pub locator: LocatorConfig,
}

/// A point in the car frame, metres: x toward the passenger side, y forward.
pub type Point = [f64; 2];

/// `[keys.geometry]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// Each anchor's position, in the order of [`KeyConfig::anchors`].
    pub anchors: Vec<Point>,
    /// Where the driver stands to open the door.
    pub driver_spot: Point,
    /// The car's body as a rectangle, its rear-left and front-right corners: a reading
    /// through it is weaker (BLE) or longer (UWB). None: the locator does not know the car.
    pub body: Option<[Point; 2]>,
}

/// `[keys.ble]`: RSSI = `rssi_at_1m_dbm` - 10 `path_loss_exponent` log10(d), log-normal
/// shadowing of `sigma_db`, `body_loss_db` less where the holder's body hides the phone, and
/// `car_loss_db` less through the car's body (with the body in `[keys.geometry]`).
#[derive(Debug, Clone, PartialEq)]
pub struct BleModel {
    pub rssi_at_1m_dbm: f64,
    pub path_loss_exponent: f64,
    pub sigma_db: f64,
    pub body_loss_db: f64,
    pub car_loss_db: f64,
}

/// `[keys.uwb]`: distance error `sigma_m`, and up to `nlos_bias_m` too long without a line of
/// sight.
#[derive(Debug, Clone, PartialEq)]
pub struct UwbModel {
    pub sigma_m: f64,
    pub nlos_bias_m: f64,
}

/// `[keys.locator]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatorConfig {
    /// A key heading for the driver's spot is selected within this distance of it...
    pub select_radius_m: f64,
    /// ... when the probability that it is at or heading to the spot is at least this.
    pub select_probability: f64,
    /// At the spot: within this distance of it.
    pub spot_radius_m: f64,
    /// When the driver's door opens with no key selected: the key most likely at the spot,
    /// with at least this probability of being the one there.
    pub door_probability: f64,
    /// How long after the door opened that decision may still be taken (more readings).
    pub door_window_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub max_profiles: usize,
    pub max_keys: usize,
    pub speed_threshold_kmh: f64,
    pub motion_timeout_ms: u64,
    /// At most this many motors run at once (current budget) among the axes of no group.
    pub max_concurrent: usize,
    /// Motor groups with budgets of their own, by name.
    pub groups: Vec<MotorGroup>,
    /// An axis may run this long within any `duty_window_ms`.
    pub duty_limit_ms: u64,
    pub duty_window_ms: u64,
    pub axes: Vec<AxisConfig>,
    pub keys: KeyConfig,
    pub easy_exit: EasyExitConfig,
    pub reverse_tilt: ReverseTiltConfig,
    /// `[backend.mock]`: the simulated actuators.
    pub mock: MockConfig,
    /// `[access]`: who may change anything.
    pub access: AccessConfig,
    /// `[vehicle] source`: where the vehicle signals come from.
    pub vehicle_source: VehicleSource,
    /// `[kuksa]`: the KUKSA databroker (vehicle signals and `backend = "kuksa"` axes).
    pub kuksa: KuksaConfig,
}

impl Config {
    /// How many motors of a motor group may run at once (`None`: the axes of no group).
    pub fn budget(&self, group: Option<usize>) -> usize {
        group
            .and_then(|g| self.groups.get(g))
            .map_or(self.max_concurrent, |g| g.max_concurrent)
    }
}

/// `[vehicle] source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VehicleSource {
    /// A gateway calls `org.driverprofiled1.Vehicle.UpdateSignals`.
    Dbus,
    /// The daemon subscribes to the VSS signals at the KUKSA databroker (`[kuksa.signals]`).
    Kuksa,
}

/// `[kuksa]`: how to reach the KUKSA databroker.
#[derive(Debug, Clone, PartialEq)]
pub struct KuksaConfig {
    /// `host:port`, `http://host:port` or `unix:/path`.
    pub address: String,
    /// A file holding a bearer token (JWT).
    pub token_file: Option<std::path::PathBuf>,
    /// An unreachable broker at start is fatal (exit 1); else start interlocked and retry.
    pub required: bool,
    pub connect_timeout_ms: u64,
    /// Reconnect backoff: 500 ms, doubling up to this.
    pub reconnect_max_ms: u64,
    pub signals: VssSignals,
}

/// `[kuksa.signals]`: the VSS paths of the vehicle signals.
#[derive(Debug, Clone, PartialEq)]
pub struct VssSignals {
    pub gear: String,
    pub speed: String,
    pub driver_door_open: String,
    pub doors_locked: String,
    pub driver_seat_occupancy: String,
    pub rear_occupancy: String,
    pub driver_belt: String,
    /// Numeric (pressed above `brake_threshold`) or boolean.
    pub brake: String,
    pub brake_threshold: f64,
    /// Any of them true = a manual control is in use.
    pub manual_switches: Vec<String>,
}

/// A group as `[access]` names it: by name (resolved to a gid at start) or by gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    Name(String),
    Gid(u32),
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::Name(n) => f.write_str(n),
            Group::Gid(g) => write!(f, "gid {g}"),
        }
    }
}

/// `[access]`: the groups whose members hold each role. Root always holds every role (and so
/// does the daemon's own user); see `crate::access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// The user interface: Manager, Profile, Actuator.
    pub ui: Vec<Group>,
    /// The vehicle gateway: Vehicle.
    pub gateway: Vec<Group>,
    /// Developers: the Mock interface.
    pub developer: Vec<Group>,
}

/// `[backend.mock]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Simulated motion runs this many times faster than the axes' speeds.
    pub speed_factor: f64,
    /// 0: the positions are known at start. Otherwise the mock reports them only this long
    /// after start, as a real backend that has to probe first would.
    pub positions_after_ms: u64,
}

/// Where easy exit moves an axis. Written "+N"/"-N", "min", "max", or a position.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "RetractText")]
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

/// A retract target as the file writes it.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a retract target: \"+N\", \"-N\", \"min\", \"max\" or a number"
)]
enum RetractText {
    Text(String),
    Position(f64),
}

impl TryFrom<RetractText> for Retract {
    type Error = String;

    fn try_from(r: RetractText) -> Result<Retract, String> {
        let t = match r {
            RetractText::Position(v) => return Ok(Retract::Absolute(v)),
            RetractText::Text(t) => t,
        };
        match t.as_str() {
            "min" => Ok(Retract::Min),
            "max" => Ok(Retract::Max),
            _ if t.starts_with(['+', '-']) => match t.parse::<f64>() {
                Ok(d) if d.is_finite() => Ok(Retract::Relative(d)),
                _ => Err(format!("{t:?} is not a relative amount like \"+50\"")),
            },
            _ => Err(format!(
                "{t:?} must be \"+N\", \"-N\", \"min\", \"max\" or a number"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EasyExitTrigger {
    /// Gear becomes P at standstill.
    Park,
    /// P at standstill and the driver's belt unbuckled.
    ParkAndUnbuckle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// `[reverse_tilt]`: the mirrors tilting down while reversing, the one motion allowed
/// outside P.
#[derive(Debug, Clone, PartialEq)]
pub struct ReverseTiltConfig {
    pub enabled: bool,
    /// The axes that tilt (indices; mirror axes only).
    pub axes: Vec<usize>,
    /// Only below this speed in R; above it, a tilted mirror returns at once.
    pub max_speed_kmh: f64,
    /// A tilted mirror returns this long after the gear left R.
    pub return_delay_ms: u64,
    /// Where a tilt goes, relative to where the mirror is (in the axis unit).
    pub default_offset: f64,
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

// The file's shape. Keys are required here (but an axis' tolerance and stall_ms): the shipped
// defaults are merged in first. A new section (such as [backend.mock]) is a new field here and
// a table in the shipped file.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    profiles: RawProfiles,
    motion: RawMotion,
    keys: RawKeys,
    easy_exit: RawEasyExit,
    reverse_tilt: RawReverseTilt,
    axis: Spanned<Vec<RawAxis>>,
    backend: RawBackend,
    access: RawAccess,
    vehicle: RawVehicle,
    kuksa: RawKuksa,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReverseTilt {
    enabled: bool,
    axes: Vec<Spanned<String>>,
    max_speed_kmh: Spanned<f64>,
    return_delay_s: Spanned<f64>,
    default_offset: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVehicle {
    source: Spanned<VehicleSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKuksa {
    address: Spanned<String>,
    token_file: Spanned<String>,
    required: bool,
    connect_timeout_s: Spanned<f64>,
    reconnect_max_s: Spanned<f64>,
    signals: RawVssSignals,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVssSignals {
    gear: Spanned<String>,
    speed: Spanned<String>,
    driver_door_open: Spanned<String>,
    doors_locked: Spanned<String>,
    driver_seat_occupancy: Spanned<String>,
    rear_occupancy: Spanned<String>,
    driver_belt: Spanned<String>,
    brake: Spanned<String>,
    brake_threshold: Spanned<f64>,
    manual_switches: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    ui: Vec<Spanned<RawGroup>>,
    gateway: Vec<Spanned<RawGroup>>,
    developer: Vec<Spanned<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a group name (a string) or a gid (an integer)")]
enum RawGroup {
    Name(String),
    Gid(i64),
}

/// One section per backend of the registry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    mock: RawMock,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMock {
    speed_factor: Spanned<f64>,
    positions_after_ms: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfiles {
    max_profiles: Spanned<i64>,
    max_keys: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMotion {
    speed_threshold_kmh: Spanned<f64>,
    timeout_s: Spanned<f64>,
    max_concurrent: Spanned<i64>,
    duty_limit_s: Spanned<f64>,
    duty_window_s: Spanned<f64>,
    /// For an axis without its own.
    stall_ms: Spanned<i64>,
    groups: BTreeMap<Spanned<String>, Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    anchors: Spanned<Vec<Spanned<String>>>,
    driver_anchor: Spanned<String>,
    expire_s: Spanned<f64>,
    approach_radius_m: Spanned<f64>,
    hysteresis_m: Spanned<f64>,
    dwell_s: Spanned<f64>,
    pre_adjust: bool,
    geometry: Spanned<RawGeometry>,
    ble: RawBle,
    uwb: RawUwb,
    locator: RawLocator,
}

/// `[keys.geometry]`: name = [x, y].
type RawGeometry = BTreeMap<Spanned<String>, Spanned<Vec<Spanned<f64>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBle {
    rssi_at_1m_dbm: Spanned<f64>,
    path_loss_exponent: Spanned<f64>,
    sigma_db: Spanned<f64>,
    body_loss_db: Spanned<f64>,
    car_loss_db: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUwb {
    sigma_m: Spanned<f64>,
    nlos_bias_m: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocator {
    select_radius_m: Spanned<f64>,
    select_probability: Spanned<f64>,
    spot_radius_m: Spanned<f64>,
    door_probability: Spanned<f64>,
    door_window_s: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEasyExit {
    enabled: bool,
    trigger: EasyExitTrigger,
    restore_on: RestoreOn,
    rear_occupied_back_mm: Spanned<f64>,
    rear_guard_axis: Spanned<String>,
    retract: BTreeMap<Spanned<String>, Spanned<Retract>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxis {
    name: Spanned<String>,
    vss: Spanned<String>,
    unit: Unit,
    min: Spanned<f64>,
    max: Spanned<f64>,
    initial: Spanned<f64>,
    speed: Spanned<f64>,
    tolerance: Option<Spanned<f64>>,
    stall_ms: Option<Spanned<i64>>,
    backend: Spanned<String>,
    group: Option<Spanned<String>>,
}

/// Turn a byte offset into 1-based line and column (columns count characters).
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count());
    (before.matches('\n').count() + 1, col + 1)
}

/// Locates spans. The defaults are parsed as if they followed the file (after padding as long
/// as it), so a span past the file's end points into the defaults: a value the file did not
/// write.
struct Src<'a> {
    file: &'a str,
    text: &'a str,
}

impl Src<'_> {
    fn is_default<T>(&self, v: &Spanned<T>) -> bool {
        v.span().start > self.text.len()
    }

    fn err_at(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let (file, text, offset) = match offset.checked_sub(self.text.len() + 1) {
            Some(offset) => (BUILTIN_NAME, DEFAULT_CONFIG, offset),
            None => (self.file, self.text, offset),
        };
        let (line, col) = line_col(text, offset);
        ConfigError {
            file: file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    fn err<T>(&self, v: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.err_at(v.span().start, message)
    }

    fn toml_err(&self, e: toml::de::Error) -> ConfigError {
        self.err_at(e.span().map_or(0, |s| s.start), e.message().trim())
    }

    /// An error at `v` unless `ok`.
    fn ensure<T>(
        &self,
        ok: bool,
        v: &Spanned<T>,
        message: impl Into<String>,
    ) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.err(v, message))
        }
    }

    fn finite(&self, v: &Spanned<f64>, what: &str) -> Result<f64, ConfigError> {
        let x = *v.get_ref();
        self.ensure(x.is_finite(), v, format!("{what} must be a finite number"))?;
        Ok(x)
    }

    /// `v` if it is greater than 0 and at most `max` (finite).
    fn positive(&self, v: &Spanned<f64>, what: &str, max: f64) -> Result<f64, ConfigError> {
        let x = *v.get_ref();
        let most = if max.is_finite() {
            format!(" and at most {max}")
        } else {
            String::new()
        };
        let ok = x > 0.0 && x <= max && x.is_finite();
        self.ensure(
            ok,
            v,
            format!("{what} must be greater than 0{most}, not {x}"),
        )?;
        Ok(x)
    }

    fn between<T>(&self, v: &Spanned<T>, what: &str, lo: T, hi: T) -> Result<T, ConfigError>
    where
        T: PartialOrd + fmt::Display + Copy,
    {
        let x = *v.get_ref();
        let ok = (lo..=hi).contains(&x);
        self.ensure(
            ok,
            v,
            format!("{what} must be between {lo} and {hi}, not {x}"),
        )?;
        Ok(x)
    }

    /// An axis or anchor name: an object path element.
    fn name<'v>(&self, v: &'v Spanned<String>, what: &str) -> Result<&'v String, ConfigError> {
        let name = v.get_ref();
        let ok = name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && (name.bytes()).all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let rule = "1-64 characters of a-z, 0-9 and _, starting with a letter";
        self.ensure(ok, v, format!("{what} name {name:?} must be {rule}"))?;
        Ok(name)
    }
}

fn ms(seconds: f64) -> u64 {
    (seconds * 1000.0).round() as u64
}

/// Merge `defaults` into `table`: a key the table lacks takes the default, a table both have
/// is merged in turn (unless in `REPLACED_WHOLE`), and any other value in `table` stays whole
/// (a file's `[[axis]]` list replaces all the shipped axes).
fn merge<'i>(table: &mut DeTable<'i>, defaults: DeTable<'i>, path: &str) {
    for (key, default) in defaults {
        let path = match path {
            "" => key.get_ref().to_string(),
            _ => format!("{path}.{}", key.get_ref()),
        };
        match table.get_mut(key.get_ref().as_ref()) {
            None => {
                table.insert(key, default);
            }
            Some(mine) => {
                if let (DeValue::Table(mine), DeValue::Table(default)) =
                    (mine.get_mut(), default.into_inner())
                    && !REPLACED_WHOLE.contains(&path.as_str())
                {
                    merge(mine, default, &path);
                }
            }
        }
    }
}

/// Parse and validate a configuration text. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let src = Src { file, text };
    let padded = format!("{:1$}\n{DEFAULT_CONFIG}", "", text.len());
    let defaults = DeTable::parse(&padded).map_err(|e| src.toml_err(e))?;
    let mut doc = DeTable::parse(text).map_err(|e| src.toml_err(e))?;
    merge(doc.get_mut(), defaults.into_inner(), "");
    let raw =
        RawConfig::deserialize(toml::de::Deserializer::from(doc)).map_err(|e| src.toml_err(e))?;

    let m = &raw.motion;
    let duty_window_s = src.positive(&m.duty_window_s, "duty_window_s", 3600.0)?;
    let duty_limit_s = src.positive(&m.duty_limit_s, "duty_limit_s", f64::INFINITY)?;
    // Point at the value the file wrote.
    let at = if src.is_default(&m.duty_limit_s) {
        &m.duty_window_s
    } else {
        &m.duty_limit_s
    };
    let message =
        format!("duty_limit_s ({duty_limit_s}) must not exceed duty_window_s ({duty_window_s})");
    src.ensure(duty_limit_s <= duty_window_s, at, message)?;
    let stall_ms = src.between(&m.stall_ms, "stall_ms", 50, 10_000)? as u64;
    let groups = m
        .groups
        .iter()
        .map(|(name, n)| {
            let name = src.name(name, "motor group")?;
            let what = format!("[motion.groups] {name}");
            Ok(MotorGroup {
                name: name.clone(),
                max_concurrent: src.between(n, &what, 1, 64)? as usize,
            })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let axes = axes(&src, &raw.axis, stall_ms, &groups)?;
    Ok(Config {
        max_profiles: src.between(&raw.profiles.max_profiles, "max_profiles", 1, 1000)? as usize,
        max_keys: src.between(&raw.profiles.max_keys, "max_keys", 0, 10_000)? as usize,
        speed_threshold_kmh: src.positive(&m.speed_threshold_kmh, "speed_threshold_kmh", 10.0)?,
        motion_timeout_ms: ms(src.positive(&m.timeout_s, "timeout_s", 600.0)?),
        max_concurrent: src.between(&m.max_concurrent, "max_concurrent", 1, 64)? as usize,
        groups,
        duty_limit_ms: ms(duty_limit_s),
        duty_window_ms: ms(duty_window_s),
        keys: keys(&src, &raw.keys)?,
        easy_exit: easy_exit(&src, &raw.easy_exit, &axes)?,
        reverse_tilt: reverse_tilt(&src, &raw.reverse_tilt, &axes)?,
        axes,
        mock: MockConfig {
            speed_factor: src.positive(&raw.backend.mock.speed_factor, "speed_factor", 10_000.0)?,
            positions_after_ms: src.between(
                &raw.backend.mock.positions_after_ms,
                "positions_after_ms",
                0,
                600_000,
            )? as u64,
        },
        access: access(&src, &raw.access)?,
        // Every build reads it alike; a daemon built without the kuksa feature refuses to
        // start with it (as with a kuksa backend).
        vehicle_source: *raw.vehicle.source.get_ref(),
        kuksa: kuksa(&src, &raw.kuksa)?,
    })
}

/// A VSS path: "Vehicle." and no whitespace or control characters.
fn vss_path(src: &Src<'_>, v: &Spanned<String>, what: &str) -> Result<String, ConfigError> {
    let path = v.get_ref();
    let ok = path.starts_with("Vehicle.")
        && path.len() <= 1000
        && !path.chars().any(|c| c.is_whitespace() || c.is_control());
    src.ensure(
        ok,
        v,
        format!("{what} {path:?} must be a VSS path starting with \"Vehicle.\""),
    )?;
    Ok(path.clone())
}

fn kuksa(src: &Src<'_>, raw: &RawKuksa) -> Result<KuksaConfig, ConfigError> {
    let address = raw.address.get_ref().trim();
    src.ensure(
        !address.is_empty(),
        &raw.address,
        "address must not be empty",
    )?;
    if let Err(e) = address.parse::<driverprofiled_kuksa::address::Address>() {
        return Err(src.err(&raw.address, format!("address: {e}")));
    }
    let token = raw.token_file.get_ref();
    let ok = token.is_empty() || token.starts_with('/');
    src.ensure(
        ok,
        &raw.token_file,
        "token_file must be an absolute path (or \"\")",
    )?;
    let s = &raw.signals;
    let mut manual_switches = Vec::new();
    for p in &s.manual_switches {
        manual_switches.push(vss_path(src, p, "manual_switches entry")?);
    }
    Ok(KuksaConfig {
        address: address.to_string(),
        token_file: (!token.is_empty()).then(|| token.into()),
        required: raw.required,
        connect_timeout_ms: ms(src.positive(&raw.connect_timeout_s, "connect_timeout_s", 300.0)?),
        reconnect_max_ms: ms(src.positive(&raw.reconnect_max_s, "reconnect_max_s", 3600.0)?),
        signals: VssSignals {
            gear: vss_path(src, &s.gear, "gear")?,
            speed: vss_path(src, &s.speed, "speed")?,
            driver_door_open: vss_path(src, &s.driver_door_open, "driver_door_open")?,
            doors_locked: vss_path(src, &s.doors_locked, "doors_locked")?,
            driver_seat_occupancy: vss_path(
                src,
                &s.driver_seat_occupancy,
                "driver_seat_occupancy",
            )?,
            rear_occupancy: vss_path(src, &s.rear_occupancy, "rear_occupancy")?,
            driver_belt: vss_path(src, &s.driver_belt, "driver_belt")?,
            brake: vss_path(src, &s.brake, "brake")?,
            brake_threshold: src.finite(&s.brake_threshold, "brake_threshold")?,
            manual_switches,
        },
    })
}

fn access(src: &Src<'_>, raw: &RawAccess) -> Result<AccessConfig, ConfigError> {
    let groups = |list: &[Spanned<RawGroup>]| -> Result<Vec<Group>, ConfigError> {
        list.iter()
            .map(|g| match g.get_ref() {
                RawGroup::Name(name) => {
                    // What /etc/group can hold; a name of digits is meant as a gid.
                    let ok = !name.is_empty()
                        && name.len() <= 256
                        && !name.bytes().all(|b| b.is_ascii_digit())
                        && !name
                            .chars()
                            .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == ',');
                    let rule =
                        "1-256 characters without spaces, ':' or ',' (write a gid as a number)";
                    src.ensure(ok, g, format!("group name {name:?} must be {rule}"))?;
                    Ok(Group::Name(name.clone()))
                }
                // Not (gid_t)-1: that means "no group" to the kernel.
                RawGroup::Gid(gid) => {
                    let most = u32::MAX - 1;
                    let ok = (0..=i64::from(most)).contains(gid);
                    src.ensure(
                        ok,
                        g,
                        format!("gid must be between 0 and {most}, not {gid}"),
                    )?;
                    Ok(Group::Gid(*gid as u32))
                }
            })
            .collect()
    };
    Ok(AccessConfig {
        ui: groups(&raw.ui)?,
        gateway: groups(&raw.gateway)?,
        developer: groups(&raw.developer)?,
    })
}

fn axes(
    src: &Src<'_>,
    raw: &Spanned<Vec<RawAxis>>,
    stall_ms: u64,
    groups: &[MotorGroup],
) -> Result<Vec<AxisConfig>, ConfigError> {
    let ok = !raw.get_ref().is_empty();
    src.ensure(ok, raw, "no [[axis]] declared: at least one axis is needed")?;
    let mut axes: Vec<AxisConfig> = Vec::new();
    for a in raw.get_ref() {
        let name = src.name(&a.name, "axis")?;
        let ok = !axes.iter().any(|x| x.name == *name);
        src.ensure(ok, &a.name, format!("axis {name:?} is declared twice"))?;
        let vss = vss_path(src, &a.vss, "vss")?;
        let (min, max) = (src.finite(&a.min, "min")?, src.finite(&a.max, "max")?);
        src.ensure(
            max > min,
            &a.max,
            format!("max ({max}) must be greater than min ({min})"),
        )?;
        // VSS percent actuators: 0..100 (the steering column), -100..100 (the mirrors).
        if a.unit == Unit::Percent {
            let within = "a percent axis must lie within -100..100";
            src.ensure(min >= -100.0, &a.min, within)?;
            src.ensure(max <= 100.0, &a.max, within)?;
        }
        let initial = src.finite(&a.initial, "initial")?;
        let ok = (min..=max).contains(&initial);
        src.ensure(
            ok,
            &a.initial,
            format!("initial ({initial}) must lie within min..max ({min}..{max})"),
        )?;
        let backend = a.backend.get_ref();
        let known = BACKENDS.join(", ");
        let ok = BACKENDS.contains(&backend.as_str());
        src.ensure(
            ok,
            &a.backend,
            format!("unknown backend {backend:?} (known: {known})"),
        )?;
        axes.push(AxisConfig {
            name: name.clone(),
            vss,
            unit: a.unit,
            min,
            max,
            initial,
            speed: src.positive(&a.speed, "speed", f64::INFINITY)?,
            tolerance: match &a.tolerance {
                // At most a tenth of the axis range.
                Some(t) => src.positive(t, "tolerance", (max - min) / 10.0)?,
                None => ((max - min) / 1000.0).max(0.01),
            },
            stall_ms: match &a.stall_ms {
                Some(s) => src.between(s, "stall_ms", 50, 10_000)? as u64,
                None => stall_ms,
            },
            backend: backend.clone(),
            group: match &a.group {
                None => None,
                Some(g) => {
                    let found = groups.iter().position(|x| x.name == *g.get_ref());
                    let known: Vec<&str> = groups.iter().map(|x| x.name.as_str()).collect();
                    let message = format!(
                        "unknown motor group {:?} (declared in [motion.groups]: {})",
                        g.get_ref(),
                        known.join(", ")
                    );
                    src.ensure(found.is_some(), g, message)?;
                    found
                }
            },
        });
    }
    Ok(axes)
}

fn easy_exit(
    src: &Src<'_>,
    raw: &RawEasyExit,
    axes: &[AxisConfig],
) -> Result<EasyExitConfig, ConfigError> {
    let back = &raw.rear_occupied_back_mm;
    let ok = back.get_ref().is_finite() && *back.get_ref() >= 0.0;
    src.ensure(
        ok,
        back,
        "rear_occupied_back_mm must be a finite number, 0 or more",
    )?;
    // An axis the file names must be declared; one only the shipped defaults name (such as
    // "seat_position") is skipped when the file declares no such axis.
    let axis = |name: &Spanned<String>, what: &str| {
        let i = axes.iter().position(|a| a.name == *name.get_ref());
        let ok = i.is_some() || src.is_default(name);
        src.ensure(
            ok,
            name,
            format!("{what}: no axis {:?} is declared", name.get_ref()),
        )?;
        Ok(i)
    };
    let mut retract = Vec::new();
    for (name, rule) in &raw.retract {
        let Some(i) = axis(name, "retract")? else {
            continue;
        };
        let a = &axes[i];
        if let Retract::Absolute(v) = *rule.get_ref() {
            let ok = (a.min..=a.max).contains(&v);
            src.ensure(
                ok,
                rule,
                format!("retract {}: {v} is outside {}..{}", a.name, a.min, a.max),
            )?;
        }
        retract.push((i, *rule.get_ref()));
    }
    Ok(EasyExitConfig {
        enabled: raw.enabled,
        trigger: raw.trigger,
        restore_on: raw.restore_on,
        rear_occupied_back_mm: *back.get_ref(),
        rear_guard_axis: axis(&raw.rear_guard_axis, "rear_guard_axis")?,
        retract,
    })
}

/// The prefix of the VSS actuators that may move outside P (the outside mirrors).
pub const MIRRORS_VSS: &str = "Vehicle.Body.Mirrors.";

fn reverse_tilt(
    src: &Src<'_>,
    raw: &RawReverseTilt,
    axes: &[AxisConfig],
) -> Result<ReverseTiltConfig, ConfigError> {
    let mut list = Vec::new();
    for name in &raw.axes {
        let i = axes.iter().position(|a| a.name == *name.get_ref());
        // As in [easy_exit]: an axis only the shipped defaults name is skipped when the file
        // declares no such axis.
        let ok = i.is_some() || src.is_default(name);
        let what = format!("reverse_tilt: no axis {:?} is declared", name.get_ref());
        src.ensure(ok, name, what)?;
        let Some(i) = i else { continue };
        let a = &axes[i];
        let mirror = a.vss.starts_with(MIRRORS_VSS);
        let what = format!(
            "reverse_tilt: {} ({}) is not a mirror: only {MIRRORS_VSS}* axes may move outside P",
            a.name, a.vss
        );
        src.ensure(mirror, name, what)?;
        let twice = format!("reverse_tilt: {} is listed twice", a.name);
        src.ensure(!list.contains(&i), name, twice)?;
        list.push(i);
    }
    let offset = src.finite(&raw.default_offset, "default_offset")?;
    let ok = (-100.0..=100.0).contains(&offset);
    src.ensure(
        ok,
        &raw.default_offset,
        "default_offset must lie within -100..100",
    )?;
    let delay = src.finite(&raw.return_delay_s, "return_delay_s")?;
    let ok = (0.0..=60.0).contains(&delay);
    src.ensure(
        ok,
        &raw.return_delay_s,
        "return_delay_s must be between 0 and 60",
    )?;
    Ok(ReverseTiltConfig {
        enabled: raw.enabled,
        axes: list,
        max_speed_kmh: src.positive(&raw.max_speed_kmh, "max_speed_kmh", 30.0)?,
        return_delay_ms: ms(delay),
        default_offset: offset,
    })
}

fn keys(src: &Src<'_>, raw: &RawKeys) -> Result<KeyConfig, ConfigError> {
    let mut anchors: Vec<String> = Vec::new();
    for a in raw.anchors.get_ref() {
        let name = src.name(a, "anchor")?;
        src.ensure(
            !anchors.contains(name),
            a,
            format!("anchor {name:?} is listed twice"),
        )?;
        anchors.push(name.clone());
    }
    src.ensure(
        !anchors.is_empty(),
        &raw.anchors,
        "at least one anchor is needed",
    )?;
    let driver = &raw.driver_anchor;
    let Some(driver_anchor) = anchors.iter().position(|a| a == driver.get_ref()) else {
        let name = driver.get_ref();
        // Point at what the file wrote: an inherited driver_anchor missing from its anchors.
        return Err(if src.is_default(driver) {
            src.err(
                &raw.anchors,
                format!("anchors has no {name:?}: set driver_anchor"),
            )
        } else {
            src.err(driver, format!("driver_anchor {name:?} is not in anchors"))
        });
    };
    let b = &raw.ble;
    let ble = BleModel {
        rssi_at_1m_dbm: src.between(&b.rssi_at_1m_dbm, "rssi_at_1m_dbm", -120.0, 20.0)?,
        path_loss_exponent: src.between(&b.path_loss_exponent, "path_loss_exponent", 1.0, 6.0)?,
        sigma_db: src.between(&b.sigma_db, "sigma_db", 1.0, 20.0)?,
        body_loss_db: src.between(&b.body_loss_db, "body_loss_db", 0.0, 30.0)?,
        car_loss_db: src.between(&b.car_loss_db, "car_loss_db", 0.0, 40.0)?,
    };
    let uwb = UwbModel {
        sigma_m: src.between(&raw.uwb.sigma_m, "sigma_m", 0.01, 5.0)?,
        nlos_bias_m: src.between(&raw.uwb.nlos_bias_m, "nlos_bias_m", 0.0, 10.0)?,
    };
    let l = &raw.locator;
    let locator = LocatorConfig {
        select_radius_m: src.between(&l.select_radius_m, "select_radius_m", 0.0, 30.0)?,
        select_probability: src.between(&l.select_probability, "select_probability", 0.5, 1.0)?,
        spot_radius_m: src.between(&l.spot_radius_m, "spot_radius_m", 0.2, 3.0)?,
        door_probability: src.between(&l.door_probability, "door_probability", 0.5, 1.0)?,
        door_window_ms: ms(src.between(&l.door_window_s, "door_window_s", 0.0, 10.0)?),
    };
    // A file that lists its own anchors uses its own geometry or none: the shipped positions
    // are of the shipped anchors, not of a car configured before geometry existed.
    let geometry = if src.is_default(&raw.geometry) && !src.is_default(&raw.anchors) {
        None
    } else {
        Some(geometry(src, &raw.geometry, &anchors)?)
    };
    Ok(KeyConfig {
        geometry,
        ble,
        uwb,
        locator,
        anchors,
        driver_anchor,
        expire_ms: ms(src.positive(&raw.expire_s, "expire_s", 60.0)?),
        approach_radius_m: src.positive(&raw.approach_radius_m, "approach_radius_m", 100.0)?,
        hysteresis_m: src.between(&raw.hysteresis_m, "hysteresis_m", 0.0, 10.0)?,
        dwell_ms: ms(src.between(&raw.dwell_s, "dwell_s", 0.0, 10.0)?),
        pre_adjust: raw.pre_adjust,
    })
}

/// Every actuator backend driverprofiled has, by the name an axis' `backend` gives. A build
/// without the kuksa feature reads a config naming "kuksa" alike, and refuses to start with it.
pub const BACKENDS: &[&str] = &["mock", "kuksa"];

/// The name in `[keys.geometry]` of where the driver stands to open the door.
pub const DRIVER_SPOT: &str = "driver_spot";
/// The names in `[keys.geometry]` of the car body's corners (optional, both or neither).
pub const BODY_REAR_LEFT: &str = "body_rear_left";
pub const BODY_FRONT_RIGHT: &str = "body_front_right";

/// `[keys.geometry]`: a position for every anchor and the driver's spot, optionally the car
/// body's corners, and nothing else.
fn geometry(
    src: &Src<'_>,
    raw: &Spanned<RawGeometry>,
    anchors: &[String],
) -> Result<Geometry, ConfigError> {
    let mut points: BTreeMap<&str, Point> = BTreeMap::new();
    for (name, v) in raw.get_ref() {
        let n = name.get_ref().as_str();
        src.ensure(
            [DRIVER_SPOT, BODY_REAR_LEFT, BODY_FRONT_RIGHT].contains(&n)
                || anchors.iter().any(|a| a == n),
            name,
            format!("{n:?} is neither an anchor, nor {DRIVER_SPOT:?}, nor a body corner"),
        )?;
        let xy = v.get_ref();
        src.ensure(xy.len() == 2, v, format!("{n} must be [x, y] in metres"))?;
        let mut p = [0.0; 2];
        for (i, c) in xy.iter().enumerate() {
            p[i] = src.finite(c, n)?;
            src.ensure(
                p[i].abs() <= 50.0,
                c,
                format!("{n}: {} is more than 50 m from the origin", p[i]),
            )?;
        }
        points.insert(n, p);
    }
    let mut at = |n: &str| {
        points
            .remove(n)
            .ok_or_else(|| src.err(raw, format!("[keys.geometry] has no position for {n:?}")))
    };
    let driver_spot = at(DRIVER_SPOT)?;
    let anchors = anchors.iter().map(|a| at(a)).collect::<Result<_, _>>()?;
    let body = match (
        points.remove(BODY_REAR_LEFT),
        points.remove(BODY_FRONT_RIGHT),
    ) {
        (None, None) => None,
        (Some(lo), Some(hi)) => {
            src.ensure(
                lo[0] < hi[0] && lo[1] < hi[1],
                raw,
                format!("{BODY_REAR_LEFT} must lie left of and behind {BODY_FRONT_RIGHT}"),
            )?;
            Some([lo, hi])
        }
        _ => {
            return Err(src.err(
                raw,
                format!("the car's body needs both {BODY_REAR_LEFT} and {BODY_FRONT_RIGHT}"),
            ));
        }
    };
    Ok(Geometry {
        anchors,
        driver_spot,
        body,
    })
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
    fn default_config_parses_with_twelve_axes() {
        let cfg = builtin().unwrap();
        assert_eq!(cfg.axes.len(), 12);
        assert_eq!(cfg.max_profiles, 10);
        assert_eq!(cfg.max_keys, 19);
        assert_eq!(cfg.speed_threshold_kmh, 0.5);
        let wheel = cfg.axes.iter().find(|a| a.name == "wheel_tilt").unwrap();
        assert_eq!(wheel.unit, Unit::Percent);
        assert_eq!(wheel.stall_ms, 1000);
        assert_eq!(wheel.vss, "Vehicle.Chassis.SteeringWheel.Tilt");
    }

    #[test]
    fn the_car_body_is_optional_and_needs_both_corners_in_order() {
        let without = DEFAULT_CONFIG
            .replacen("body_rear_left = [-0.9, -2.4]\n", "", 1)
            .replacen("body_front_right = [0.9, 2.4]\n", "", 1);
        let g = parse("x.toml", &without).unwrap().keys.geometry.unwrap();
        assert_eq!(g.body, None);
        let one = DEFAULT_CONFIG.replacen("body_rear_left = [-0.9, -2.4]\n", "", 1);
        let e = parse("x.toml", &one).unwrap_err();
        assert!(e.message.contains("needs both"), "{e}");
        let swapped = DEFAULT_CONFIG.replacen("[-0.9, -2.4]", "[0.9, 2.4]", 1);
        let e = parse("x.toml", &swapped).unwrap_err();
        assert!(e.message.contains("left of and behind"), "{e}");
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

    /// The shipped config with the first `from` replaced by `to`, and the line of `from`.
    fn edited(from: &str, to: &str) -> (String, usize) {
        let at = DEFAULT_CONFIG
            .find(from)
            .unwrap_or_else(|| panic!("no {from:?}"));
        let line = DEFAULT_CONFIG[..at].matches('\n').count() + 1;
        (DEFAULT_CONFIG.replacen(from, to, 1), line)
    }

    #[test]
    #[rustfmt::skip]
    fn builtin_config_is_the_shipped_file() {
        // VSS 6.0's integer signals are shipped with tolerance 0.5, the others default.
        let whole = ["seat_position", "seat_height", "headrest_height", "wheel_tilt", "wheel_extension"];
        let axis = |name: &str, vss: &str, unit, (min, max): (f64, f64), initial, speed, stall_ms| AxisConfig {
            name: name.into(),
            vss: format!("Vehicle.{vss}"),
            unit, min, max, initial, speed,
            tolerance: if whole.contains(&name) || name.starts_with("mirror_") { 0.5 } else { ((max - min) / 1000.0).max(0.01) },
            stall_ms,
            backend: "mock".into(),
            group: None,
        };
        let mirror = |name: &str, vss: &str, group| AxisConfig {
            group: Some(group),
            ..axis(name, vss, Unit::Percent, (-100.0, 100.0), 0.0, 25.0, 500)
        };
        let want = Config {
            max_profiles: 10,
            max_keys: 19,
            speed_threshold_kmh: 0.5,
            motion_timeout_ms: 60_000,
            max_concurrent: 2,
            groups: vec![
                MotorGroup { name: "driver_door_module".into(), max_concurrent: 1 },
                MotorGroup { name: "passenger_door_module".into(), max_concurrent: 1 },
            ],
            duty_limit_ms: 120_000,
            duty_window_ms: 300_000,
            axes: vec![
                axis("seat_position", "Cabin.Seat.Row1.DriverSide.Position", Unit::Mm, (0.0, 260.0), 130.0, 25.0, 200),
                axis("seat_height", "Cabin.Seat.Row1.DriverSide.Height", Unit::Mm, (0.0, 70.0), 30.0, 10.0, 200),
                axis("seat_tilt", "Cabin.Seat.Row1.DriverSide.Tilt", Unit::Deg, (0.0, 15.0), 5.0, 3.0, 200),
                axis("backrest_recline", "Cabin.Seat.Row1.DriverSide.Backrest.Recline", Unit::Deg, (0.0, 60.0), 22.0, 4.0, 200),
                axis("headrest_height", "Cabin.Seat.Row1.DriverSide.Headrest.Height", Unit::Mm, (0.0, 80.0), 20.0, 12.0, 200),
                axis("headrest_angle", "Cabin.Seat.Row1.DriverSide.Headrest.Angle", Unit::Deg, (0.0, 20.0), 5.0, 4.0, 200),
                axis("wheel_tilt", "Chassis.SteeringWheel.Tilt", Unit::Percent, (0.0, 100.0), 50.0, 10.0, 1000),
                axis("wheel_extension", "Chassis.SteeringWheel.Extension", Unit::Percent, (0.0, 100.0), 50.0, 10.0, 1000),
                mirror("mirror_driver_tilt", "Body.Mirrors.DriverSide.Tilt", 0),
                mirror("mirror_driver_yaw", "Body.Mirrors.DriverSide.Yaw", 0),
                mirror("mirror_passenger_tilt", "Body.Mirrors.PassengerSide.Tilt", 1),
                mirror("mirror_passenger_yaw", "Body.Mirrors.PassengerSide.Yaw", 1),
            ],
            keys: KeyConfig {
                anchors: ["driver_door", "passenger_door", "rear", "cabin"].map(String::from).to_vec(),
                driver_anchor: 0,
                expire_ms: 2000,
                approach_radius_m: 5.0,
                hysteresis_m: 0.5,
                dwell_ms: 400,
                pre_adjust: true,
                geometry: Some(Geometry {
                    anchors: vec![[-0.95, 0.2], [0.95, 0.2], [0.0, -2.2], [0.0, 0.3]],
                    driver_spot: [-1.45, 0.2],
                    body: Some([[-0.9, -2.4], [0.9, 2.4]]),
                }),
                ble: BleModel { rssi_at_1m_dbm: -59.0, path_loss_exponent: 2.0, sigma_db: 6.0, body_loss_db: 8.0, car_loss_db: 9.0 },
                uwb: UwbModel { sigma_m: 0.1, nlos_bias_m: 1.0 },
                locator: LocatorConfig {
                    select_radius_m: 9.0,
                    select_probability: 0.9,
                    spot_radius_m: 0.8,
                    door_probability: 0.8,
                    door_window_ms: 1500,
                },
            },
            easy_exit: EasyExitConfig {
                enabled: true,
                trigger: EasyExitTrigger::Park,
                restore_on: RestoreOn::Brake,
                rear_occupied_back_mm: 0.0,
                rear_guard_axis: Some(0),
                retract: vec![(0, Retract::Relative(50.0)), (7, Retract::Min), (6, Retract::Max)],
            },
            reverse_tilt: ReverseTiltConfig {
                enabled: true,
                axes: vec![10],
                max_speed_kmh: 15.0,
                return_delay_ms: 5000,
                default_offset: -25.0,
            },
            mock: MockConfig {
                speed_factor: 1.0,
                positions_after_ms: 0,
            },
            access: AccessConfig {
                ui: vec![Group::Name("driverprofiled-ui".into())],
                gateway: vec![Group::Name("driverprofiled-gateway".into())],
                developer: vec![Group::Name("driverprofiled-dev".into())],
            },
            vehicle_source: VehicleSource::Dbus,
            kuksa: KuksaConfig {
                address: "127.0.0.1:55555".into(),
                token_file: None,
                required: false,
                connect_timeout_ms: 5000,
                reconnect_max_ms: 30_000,
                signals: VssSignals {
                    gear: "Vehicle.Powertrain.Transmission.SelectedGear".into(),
                    speed: "Vehicle.Speed".into(),
                    driver_door_open: "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen".into(),
                    doors_locked: "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked".into(),
                    driver_seat_occupancy: "Vehicle.Cabin.Seat.Row1.DriverSide.OccupancyStatus".into(),
                    rear_occupancy: "Vehicle.Cabin.Seat.Row2.DriverSide.OccupancyStatus".into(),
                    driver_belt: "Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted".into(),
                    brake: "Vehicle.Chassis.Brake.PedalPosition".into(),
                    brake_threshold: 5.0,
                    manual_switches: [
                        "IsForwardSwitchEngaged", "IsBackwardSwitchEngaged", "IsUpSwitchEngaged",
                        "IsDownSwitchEngaged", "IsTiltForwardSwitchEngaged", "IsTiltBackwardSwitchEngaged",
                        "Backrest.IsReclineForwardSwitchEngaged", "Backrest.IsReclineBackwardSwitchEngaged",
                        "Headrest.IsUpSwitchEngaged", "Headrest.IsDownSwitchEngaged",
                        "Headrest.IsForwardSwitchEngaged", "Headrest.IsBackwardSwitchEngaged",
                    ].map(|s| format!("Vehicle.Cabin.Seat.Row1.DriverSide.{s}")).to_vec(),
                },
            },
        };
        assert_eq!(builtin().unwrap(), want);
        // An empty file is the defaults.
        assert_eq!(parse("x.toml", "").unwrap(), want);
    }

    #[test]
    fn kuksa_sections_are_checked_and_located() {
        let cfg = parse(
            "x.toml",
            "[vehicle]\nsource = \"kuksa\"\n[kuksa]\naddress = \"unix:/run/kuksa/databroker.sock\"\n",
        )
        .unwrap();
        assert_eq!(cfg.vehicle_source, VehicleSource::Kuksa);
        assert_eq!(cfg.kuksa.address, "unix:/run/kuksa/databroker.sock");
        let e = parse("x.toml", "[vehicle]\nsource = \"can\"\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 10), "{e}");
        assert!(e.message.contains("kuksa"), "{e}");
        let e = parse("x.toml", "[kuksa]\naddress = \"https://b:1\"\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 11), "{e}");
        let e = parse("x.toml", "[kuksa]\ntoken_file = \"jwt\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("x.toml", "[kuksa.signals]\ngear = \"Gear\"\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 8), "{e}");
    }

    #[test]
    fn a_backend_section_is_merged_and_checked() {
        let cfg = parse("x.toml", "[backend.mock]\npositions_after_ms = 1500\n").unwrap();
        assert_eq!(cfg.mock.positions_after_ms, 1500);
        assert_eq!(
            cfg.mock.speed_factor, 1.0,
            "the rest of the section is the default"
        );
        let e = parse("x.toml", "[backend.mock]\nspeed_factor = 0\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 16), "{e}");
        let e = parse("x.toml", "[backend.mock]\nwarp = 1\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("warp"), "{e}");
    }

    #[test]
    fn access_takes_names_and_gids_and_a_file_replaces_a_role_whole() {
        let cfg = parse(
            "x.toml",
            "[access]\nui = [\"cockpit\", 1234]\ndeveloper = []\n",
        )
        .unwrap();
        let a = cfg.access;
        assert_eq!(a.ui, [Group::Name("cockpit".into()), Group::Gid(1234)]);
        assert_eq!(
            a.gateway,
            [Group::Name("driverprofiled-gateway".into())],
            "the default"
        );
        assert!(a.developer.is_empty());
    }

    #[test]
    #[rustfmt::skip]
    fn access_errors_are_located() {
        for (text, (line, col), message) in [
            ("[access]\nui = [\"a b\"]\n", (2, 7), "group name \"a b\" must be"),
            ("[access]\nui = [\"\"]\n", (2, 7), "group name \"\" must be"),
            ("[access]\nui = [\"wheel\", \"123\"]\n", (2, 16), "write a gid as a number"),
            ("[access]\ngateway = [-1]\n", (2, 12), "gid must be between 0 and 4294967294, not -1"),
            ("[access]\ndeveloper = [4294967295]\n", (2, 14), "not 4294967295"),
            ("[access]\nui = [true]\n", (2, 6), "a group name (a string) or a gid"),
            ("[access]\nui = \"wheel\"\n", (2, 6), "sequence"),
            ("[access]\nroot = []\n", (2, 1), "root"),
        ] {
            let e = parse("x.toml", text).unwrap_err();
            assert_eq!((e.file.as_str(), e.line, e.col), ("x.toml", line, col), "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn unknown_enum_value_is_located_with_the_choices() {
        let (text, line) = edited("unit = \"mm\"", "unit = \"inch\"");
        let e = parse("x.toml", &text).unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.col), ("x.toml", line, 8), "{e}");
        for word in ["inch", "mm", "deg", "percent"] {
            assert!(e.message.contains(word), "{e}");
        }
        let (text, line) = edited("trigger = \"park\"", "trigger = \"parked\"");
        let e = parse("x.toml", &text).unwrap_err();
        assert_eq!((e.line, e.col), (line, 11), "{e}");
        assert!(e.message.contains("park_and_unbuckle"), "{e}");
    }

    #[test]
    fn integers_are_accepted_for_floats() {
        let text = "[motion]\nspeed_threshold_kmh = 1\n[keys]\nexpire_s = 3\nhysteresis_m = 1\n";
        let cfg = parse("x.toml", text).unwrap();
        assert_eq!(cfg.speed_threshold_kmh, 1.0);
        assert_eq!(cfg.keys.expire_ms, 3000);
        assert_eq!(cfg.keys.hysteresis_m, 1.0);
    }

    #[test]
    fn a_file_with_one_axis_gets_the_shipped_defaults_for_the_rest() {
        let text = "[[axis]]\nname = \"seat_position\"\n\
                    vss = \"Vehicle.Cabin.Seat.Row1.DriverSide.Position\"\nunit = \"mm\"\n\
                    min = 0\nmax = 300\ninitial = 100\nspeed = 20\nbackend = \"mock\"\n";
        let cfg = parse("x.toml", text).unwrap();
        let shipped = builtin().unwrap();
        let mut seat = shipped.axes[0].clone();
        (seat.max, seat.initial, seat.speed, seat.tolerance) = (300.0, 100.0, 20.0, 0.3);
        let want = Config {
            axes: vec![seat],
            easy_exit: EasyExitConfig {
                // The shipped wheel retracts are skipped: this file has no wheel.
                retract: vec![(0, Retract::Relative(50.0))],
                ..shipped.easy_exit.clone()
            },
            // Likewise the shipped mirror of [reverse_tilt].
            reverse_tilt: ReverseTiltConfig {
                axes: vec![],
                ..shipped.reverse_tilt.clone()
            },
            ..shipped
        };
        assert_eq!(cfg, want);
    }

    #[test]
    fn a_section_merges_key_by_key_but_retract_is_replaced_whole() {
        let shipped = builtin().unwrap();
        let cfg = parse("x.toml", "[easy_exit]\nenabled = false\n").unwrap();
        assert!(!cfg.easy_exit.enabled);
        assert_eq!(cfg.easy_exit.retract, shipped.easy_exit.retract);
        let cfg = parse("x.toml", "[easy_exit.retract]\nwheel_tilt = \"min\"\n").unwrap();
        assert!(cfg.easy_exit.enabled);
        assert_eq!(cfg.easy_exit.retract, [(6, Retract::Min)]);
    }

    #[test]
    fn an_axis_without_stall_ms_takes_the_motion_default() {
        // wheel_tilt without its stall_ms; [motion] stall_ms (the first) 300.
        let (text, _) = edited("stall_ms = 1000\n", "");
        let text = text.replacen("stall_ms = 200\n", "stall_ms = 300\n", 1);
        let cfg = parse("x.toml", &text).unwrap();
        assert_eq!(cfg.axes[0].stall_ms, 200, "the axis' own");
        assert_eq!(cfg.axes[6].stall_ms, 300, "[motion] stall_ms");
        assert_eq!(cfg.axes[7].stall_ms, 1000);
    }

    #[test]
    fn a_missing_axis_field_is_located_at_its_axis() {
        let (text, line) = edited("vss = \"Vehicle.Cabin.Seat.Row1.DriverSide.Height\"\n", "");
        let e = parse("x.toml", &text).unwrap_err();
        assert!(e.message.contains("missing field `vss`"), "{e}");
        // The [[axis]] header two lines up (above `name`).
        assert_eq!((e.line, e.col), (line - 2, 1), "{e}");
    }

    #[test]
    #[rustfmt::skip]
    fn each_rule_rejects_at_the_offending_line() {
        for (from, to, message) in [
            ("max = 260", "max = -5", "must be greater than min"),
            ("initial = 130", "initial = 300", "must lie within min..max"),
            ("max = 100", "max = 120", "percent axis must lie within -100..100"),
            ("min = -100", "min = -101", "percent axis must lie within -100..100"),
            ("group = \"driver_door_module\"", "group = \"roof\"", "unknown motor group \"roof\" (declared in [motion.groups]: driver_door_module, passenger_door_module)"),
            ("driver_door_module = 1", "driver_door_module = 0", "between 1 and 64"),
            ("tolerance = 0.5\n", "tolerance = 30\n", "tolerance must be greater than 0 and at most 26"),
            ("name = \"seat_height\"", "name = \"seat_position\"", "declared twice"),
            ("name = \"seat_height\"", "name = \"Seat\"", "axis name \"Seat\" must be"),
            ("vss = \"Vehicle.Cabin", "vss = \"Cabin", "starting with \"Vehicle.\""),
            ("speed = 25", "speed = 0", "speed must be greater than 0"),
            ("min = 0", "min = nan", "min must be a finite number"),
            ("backend = \"mock\"", "backend = \"can\"", "unknown backend \"can\""),
            ("stall_ms = 1000", "stall_ms = 10001", "stall_ms must be between 50 and 10000"),
            ("stall_ms = 200", "stall_ms = 20", "stall_ms must be between 50 and 10000"),
            ("max_profiles = 10", "max_profiles = 0", "max_profiles must be between 1 and 1000"),
            ("max_keys = 19", "max_keys = 10001", "max_keys must be between 0 and 10000"),
            ("speed_threshold_kmh = 0.5", "speed_threshold_kmh = 11", "at most 10"),
            ("timeout_s = 60", "timeout_s = 601", "timeout_s must be greater than 0 and at most 600"),
            ("max_concurrent = 2", "max_concurrent = 65", "between 1 and 64"),
            ("duty_window_s = 300", "duty_window_s = 3601", "at most 3600"),
            ("duty_limit_s = 120", "duty_limit_s = 301", "must not exceed duty_window_s"),
            ("\"rear\", \"cabin\"", "\"rear\", \"rear\"", "anchor \"rear\" is listed twice"),
            ("\"rear\", \"cabin\"", "\"rear\", \"Cabin\"", "anchor name \"Cabin\" must be"),
            ("anchors = [\"driver_door\", \"passenger_door\", \"rear\", \"cabin\"]", "anchors = []", "at least one anchor"),
            ("driver_anchor = \"driver_door\"", "driver_anchor = \"trunk\"", "not in anchors"),
            ("expire_s = 2.0", "expire_s = 61", "expire_s must be greater than 0 and at most 60"),
            ("approach_radius_m = 5.0", "approach_radius_m = 0", "approach_radius_m must be greater than 0"),
            ("hysteresis_m = 0.5", "hysteresis_m = 11", "hysteresis_m must be between 0 and 10"),
            ("dwell_s = 0.4", "dwell_s = -1", "dwell_s must be between 0 and 10"),
            ("rear_occupied_back_mm = 0", "rear_occupied_back_mm = -1", "0 or more"),
            ("rear_guard_axis = \"seat_position\"", "rear_guard_axis = \"trunk\"", "rear_guard_axis: no axis \"trunk\""),
            ("seat_position = \"+50\"", "trunk = \"+50\"", "retract: no axis \"trunk\""),
            ("seat_position = \"+50\"", "seat_position = 300", "retract seat_position: 300 is outside 0..260"),
            ("seat_position = \"+50\"", "seat_position = \"sideways\"", "must be \"+N\", \"-N\", \"min\", \"max\" or a number"),
            ("seat_position = \"+50\"", "seat_position = \"+x\"", "not a relative amount"),
            ("seat_position = \"+50\"", "seat_position = true", "a retract target"),
            ("axes = [\"mirror_passenger_tilt\"]", "axes = [\"seat_position\"]", "reverse_tilt: seat_position (Vehicle.Cabin.Seat.Row1.DriverSide.Position) is not a mirror: only Vehicle.Body.Mirrors.* axes may move outside P"),
            ("axes = [\"mirror_passenger_tilt\"]", "axes = [\"mirror\"]", "reverse_tilt: no axis \"mirror\" is declared"),
            ("axes = [\"mirror_passenger_tilt\"]", "axes = [\"mirror_passenger_tilt\", \"mirror_passenger_tilt\"]", "listed twice"),
            ("max_speed_kmh = 15.0", "max_speed_kmh = 31", "max_speed_kmh must be greater than 0 and at most 30"),
            ("return_delay_s = 5.0", "return_delay_s = -1", "return_delay_s must be between 0 and 60"),
            ("default_offset = -25.0", "default_offset = -125", "default_offset must lie within -100..100"),
        ] {
            let (text, line) = edited(from, to);
            let e = parse("x.toml", &text).unwrap_err();
            assert_eq!((e.file.as_str(), e.line), ("x.toml", line), "{to}: {e}");
            assert!(e.message.contains(message), "{to}: {e}");
        }
    }

    #[test]
    fn a_rule_broken_with_an_inherited_value_points_at_the_files_value() {
        let e = parse("x.toml", "[motion]\nduty_window_s = 60\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 17), "{e}");
        assert!(e.message.contains("duty_limit_s (120)"), "{e}");
        let e = parse("x.toml", "[keys]\nanchors = [\"front\"]\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 11), "{e}");
        assert!(e.message.contains("driver_anchor"), "{e}");
        let e = parse("x.toml", "axis = []\n").unwrap_err();
        assert_eq!((e.line, e.col), (1, 8), "{e}");
    }

    #[test]
    fn spans_past_the_file_point_into_the_defaults() {
        let src = Src {
            file: "x.toml",
            text: "a = 1",
        };
        let e = src.err_at(6, "m");
        assert_eq!((e.file.as_str(), e.line, e.col), (BUILTIN_NAME, 1, 1));
        let e = src.err_at(5, "m");
        assert_eq!((e.file.as_str(), e.line, e.col), ("x.toml", 1, 6));
    }
}
