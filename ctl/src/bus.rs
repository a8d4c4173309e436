//! The bus side: connecting, exit codes of errors, and one consistent snapshot of the service
//! (`GetManagedObjects`: every object and property in one reply).

use std::collections::{BTreeMap, HashMap};

use driverprofiled_api::path::{self, ROOT};
use driverprofiled_api::{BUS_NAME, ErrorName, interface};
use serde_json::{Value, json};
use zbus::{Connection, OwnedVariant, Variant};

/// Exit codes (sysexits.h where one fits).
pub mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 64;
    pub const DATAERR: u8 = 65;
    pub const NOINPUT: u8 = 66;
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
    pub const IOERR: u8 = 74;
    pub const TEMPFAIL: u8 = 75;
    pub const NOPERM: u8 = 77;
    pub const CONFIG: u8 = 78;
}

/// Why the command failed: what to print on stderr and the exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub msg: String,
}

impl Fail {
    pub fn new(code: u8, msg: impl Into<String>) -> Fail {
        Fail {
            code,
            msg: msg.into(),
        }
    }

    /// A failed call: `NAME: message` and the exit code its error name maps to.
    pub fn dbus(e: zbus::Error) -> Fail {
        let Some(name) = ErrorName::of(&e) else {
            return match e {
                zbus::Error::InputOutput(_) => {
                    Fail::new(exit::UNAVAILABLE, format!("the bus connection failed: {e}"))
                }
                e => Fail::new(exit::SOFTWARE, format!("unexpected reply: {e}")),
            };
        };
        let message = match &e {
            zbus::Error::MethodError(_, Some(m), _) => m.clone(),
            zbus::Error::FDO(f) => {
                let f: &dyn zbus::DBusError = f.as_ref();
                f.description().unwrap_or_default().to_string()
            }
            _ => String::new(),
        };
        Fail::new(error_code(&name), format!("{name}: {message}"))
    }
}

impl From<zbus::Error> for Fail {
    fn from(e: zbus::Error) -> Fail {
        Fail::dbus(e)
    }
}

impl From<zbus::fdo::Error> for Fail {
    fn from(e: zbus::fdo::Error) -> Fail {
        Fail::dbus(zbus::Error::FDO(Box::new(e)))
    }
}

/// The exit code of a D-Bus error name.
pub fn error_code(name: &str) -> u8 {
    match ErrorName::parse(name) {
        Some(
            ErrorName::InvalidArgs
            | ErrorName::OutOfRange
            | ErrorName::AlreadyExists
            | ErrorName::KeyInUse
            | ErrorName::NotFound
            | ErrorName::LimitReached,
        ) => exit::DATAERR,
        Some(ErrorName::Failed) => exit::IOERR,
        Some(
            ErrorName::Interlocked
            | ErrorName::Inhibited
            | ErrorName::DutyLimit
            | ErrorName::NotReady,
        ) => exit::TEMPFAIL,
        Some(ErrorName::AccessDenied) => exit::NOPERM,
        // The daemon's config rules the call out (UpdateSignals with source = "kuksa").
        Some(ErrorName::NotSupported) => exit::UNAVAILABLE,
        None => match name {
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner"
            | "org.freedesktop.DBus.Error.NoReply"
            | "org.freedesktop.DBus.Error.Disconnected"
            | "org.freedesktop.DBus.Error.NoServer"
            | "org.freedesktop.DBus.Error.Spawn.ServiceNotFound"
            | "org.freedesktop.DBus.Error.Spawn.ChildExited"
            | "org.freedesktop.DBus.Error.TimedOut"
            | "org.freedesktop.DBus.Error.Timeout" => exit::UNAVAILABLE,
            // A path never handed out, or a member this daemon lacks (an older version).
            "org.freedesktop.DBus.Error.UnknownObject"
            | "org.freedesktop.DBus.Error.UnknownMethod"
            | "org.freedesktop.DBus.Error.UnknownInterface"
            | "org.freedesktop.DBus.Error.UnknownProperty" => exit::DATAERR,
            _ => exit::SOFTWARE,
        },
    }
}

/// Connect to `bus`: "system", "session" or an address.
pub async fn connect(bus: &str) -> Result<Connection, Fail> {
    let (what, b) = match bus {
        "system" => ("the system bus", zbus::connection::Builder::system()),
        "session" => ("the session bus", zbus::connection::Builder::session()),
        a if a.contains(':') => ("the bus", zbus::connection::Builder::address(a)),
        a => {
            return Err(Fail::new(
                exit::USAGE,
                format!(
                    "--bus {}: expected system, session or an address (unix:path=...)",
                    driverprofiled::core::quote(a)
                ),
            ));
        }
    };
    b.build()
        .await
        .map_err(|e| Fail::new(exit::UNAVAILABLE, format!("cannot connect to {what}: {e}")))
}

/// A D-Bus value as JSON: numbers, strings, arrays, objects (dicts with their keys as
/// strings), structs as arrays. A NaN or infinite double is `null`.
pub fn to_json(v: &Variant<'_>) -> Value {
    match v {
        Variant::U8(x) => json!(x),
        Variant::Bool(x) => json!(x),
        Variant::I16(x) => json!(x),
        Variant::U16(x) => json!(x),
        Variant::I32(x) => json!(x),
        Variant::U32(x) => json!(x),
        Variant::I64(x) => json!(x),
        Variant::U64(x) => json!(x),
        Variant::F64(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Variant::Str(s) => json!(s.as_str()),
        Variant::Signature(s) => json!(s.to_string()),
        Variant::ObjectPath(p) => json!(p.as_str()),
        Variant::Variant(v) => to_json(v),
        Variant::Array(a) => Value::Array(a.inner().iter().map(to_json).collect()),
        Variant::Dict(d) => Value::Object(
            d.iter()
                .map(|(k, v)| {
                    let k = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, to_json(v))
                })
                .collect(),
        ),
        Variant::Structure(s) => Value::Array(s.fields().iter().map(to_json).collect()),
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

/// Properties of one interface of one object.
#[derive(Debug, Clone, Default)]
pub struct Props(pub HashMap<String, OwnedVariant>);

impl Props {
    pub fn str(&self, name: &str) -> String {
        match self.0.get(name).map(|v| &**v) {
            Some(Variant::Str(s)) => s.as_str().to_string(),
            Some(Variant::ObjectPath(p)) => p.as_str().to_string(),
            _ => String::new(),
        }
    }

    /// A double; None when absent or not finite (NaN: not known yet).
    pub fn f64(&self, name: &str) -> Option<f64> {
        match self.0.get(name).map(|v| &**v) {
            Some(Variant::F64(x)) if x.is_finite() => Some(*x),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.0.get(name).map(|v| &**v), Some(Variant::Bool(true)))
    }

    pub fn json(&self, name: &str) -> Value {
        self.0.get(name).map_or(Value::Null, |v| to_json(v))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.json(name) {
            Value::Array(a) => a
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub id: String,
    pub path: String,
    pub name: String,
    pub keys: Vec<String>,
    pub easy_exit: bool,
    pub auto_save: bool,
    pub positions: BTreeMap<String, f64>,
    /// On unless the daemon says off.
    pub reverse_tilt_enabled: bool,
    pub reverse_tilt: BTreeMap<String, f64>,
}

impl Profile {
    fn from_props(path: &str, p: &Props) -> Option<Profile> {
        let id = path::profile_id(path)?.to_string();
        let map = |name| match p.json(name) {
            Value::Object(m) => m
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_f64()?)))
                .collect(),
            _ => BTreeMap::new(),
        };
        Some(Profile {
            id,
            path: path.to_string(),
            name: p.str("Name"),
            keys: p.strings("Keys"),
            easy_exit: p.bool("EasyExit"),
            auto_save: p.bool("AutoSave"),
            positions: map("Positions"),
            reverse_tilt_enabled: !p.has("ReverseTiltEnabled") || p.bool("ReverseTiltEnabled"),
            reverse_tilt: map("ReverseTilt"),
        })
    }

    /// The profile as JSON (list, show).
    pub fn to_json(&self, active: bool) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "active": active,
            "easy_exit": self.easy_exit,
            "auto_save": self.auto_save,
            "keys": self.keys,
            "positions": self.positions,
            "reverse_tilt_enabled": self.reverse_tilt_enabled,
            "reverse_tilt": self.reverse_tilt,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Actuator {
    pub name: String,
    pub path: String,
    pub props: Props,
}

impl Actuator {
    pub fn vss(&self) -> String {
        self.props.str("Vss")
    }
    pub fn unit(&self) -> String {
        self.props.str("Unit")
    }
    pub fn min(&self) -> f64 {
        self.props.f64("Min").unwrap_or(f64::NAN)
    }
    pub fn max(&self) -> f64 {
        self.props.f64("Max").unwrap_or(f64::NAN)
    }
    pub fn position(&self) -> Option<f64> {
        self.props.f64("Position")
    }
}

/// Everything the service shows, from one `GetManagedObjects` reply.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub manager: Props,
    pub vehicle: Props,
    /// In `Manager.Profiles` order (oldest first).
    pub profiles: Vec<Profile>,
    /// In `Manager.Actuators` order (config order).
    pub actuators: Vec<Actuator>,
}

impl Snapshot {
    pub async fn read(conn: &Connection) -> Result<Snapshot, Fail> {
        let om = zbus::fdo::ObjectManagerProxy::builder(conn)
            .destination(BUS_NAME)
            .path(ROOT)
            .build()
            .await?;
        // The root object itself is not among its managed objects: its interfaces first.
        let root = zbus::fdo::PropertiesProxy::builder(conn)
            .destination(BUS_NAME)
            .path(ROOT)
            .build()
            .await?;
        let mut snap = Snapshot {
            manager: Props(root.get_all(iface_name(interface::MANAGER)?).await?),
            vehicle: Props(root.get_all(iface_name(interface::VEHICLE)?).await?),
            ..Snapshot::default()
        };
        let objects = om.get_managed_objects().await?;
        let mut profiles = HashMap::new();
        let mut actuators = HashMap::new();
        for (p, ifaces) in objects {
            for (iface, props) in ifaces {
                let props = Props(props);
                match iface.as_str() {
                    interface::MANAGER => snap.manager = props,
                    interface::VEHICLE => snap.vehicle = props,
                    interface::PROFILE => {
                        if let Some(prof) = Profile::from_props(p.as_str(), &props) {
                            profiles.insert(p.as_str().to_string(), prof);
                        }
                    }
                    interface::ACTUATOR => {
                        if let Some(name) = path::actuator_name(p.as_str()) {
                            let a = Actuator {
                                name: name.to_string(),
                                path: p.as_str().to_string(),
                                props,
                            };
                            actuators.insert(p.as_str().to_string(), a);
                        }
                    }
                    _ => {}
                }
            }
        }
        for p in snap.manager.strings("Profiles") {
            if let Some(prof) = profiles.remove(&p) {
                snap.profiles.push(prof);
            }
        }
        // Any not listed (a change between the two): after them, by id.
        let mut rest: Vec<Profile> = profiles.into_values().collect();
        rest.sort_by_key(|p| p.id.parse::<u64>().unwrap_or(u64::MAX));
        snap.profiles.extend(rest);
        for p in snap.manager.strings("Actuators") {
            if let Some(a) = actuators.remove(&p) {
                snap.actuators.push(a);
            }
        }
        let mut rest: Vec<Actuator> = actuators.into_values().collect();
        rest.sort_by(|a, b| a.name.cmp(&b.name));
        snap.actuators.extend(rest);
        Ok(snap)
    }

    pub fn active_path(&self) -> String {
        self.manager.str("ActiveProfile")
    }

    /// The profile `which` names: an id (digits) when a profile has that id, else a name,
    /// ignoring case.
    pub fn find(&self, which: &str) -> Result<&Profile, Fail> {
        if !which.is_empty()
            && which.bytes().all(|b| b.is_ascii_digit())
            && let Some(p) = self.profiles.iter().find(|p| p.id == which)
        {
            return Ok(p);
        }
        let lower = which.to_lowercase();
        self.profiles
            .iter()
            .find(|p| p.name.to_lowercase() == lower)
            .ok_or_else(|| {
                Fail::new(
                    exit::DATAERR,
                    format!(
                        "{}: no profile with id or name {}",
                        ErrorName::NotFound,
                        driverprofiled::core::quote(which)
                    ),
                )
            })
    }

    pub fn actuator(&self, name: &str) -> Option<&Actuator> {
        self.actuators.iter().find(|a| a.name == name)
    }

    /// Every actuator's position known (none NaN), and at least one actuator.
    pub fn ready(&self) -> bool {
        !self.actuators.is_empty() && self.actuators.iter().all(|a| a.position().is_some())
    }
}

fn iface_name(name: &'static str) -> Result<zbus::names::InterfaceName<'static>, Fail> {
    zbus::names::InterfaceName::try_from(name).map_err(Fail::dbus)
}

/// A short display of a profile path: "1 (Anna)", or "none".
pub fn describe_path(snap: &Snapshot, p: &str) -> String {
    if p.is_empty() || p == path::NONE {
        return "none".into();
    }
    match snap.profiles.iter().find(|x| x.path == p) {
        Some(x) => format!("{} ({})", x.id, x.name),
        None => p.to_string(),
    }
}
