//! `export` and `import`: profiles as JSON in VSS terms, so that another car (other axis
//! names, other ranges) can take them. The format (docs/cli.md, "Export format"):
//!
//! ```json
//! {"format": "driverprofiled-profiles", "version": 1,
//!  "profiles": [{"name": "Anna", "easy_exit": true, "keys": ["key-1"],
//!                "positions": [{"vss": "Vehicle.Cabin.Seat.Row1.DriverSide.Position",
//!                               "unit": "mm", "value": 180.0}],
//!                "auto_save": true, "reverse_tilt_enabled": false,
//!                "reverse_tilt": [{"vss": "Vehicle.Body.Mirrors.PassengerSide.Tilt",
//!                                  "unit": "percent", "value": -40.0}]}]}
//! ```
//!
//! `auto_save`, `reverse_tilt_enabled` and `reverse_tilt` are written only when not the
//! default (false, true, empty), so that a file of profiles that do not use them is what an
//! older driverprofilectl reads. Left out of a file, they keep what a merged profile has.
//!
//! Import maps each VSS path to this car's axis through `Actuator.Vss`; a path this car lacks,
//! a unit that differs or a value outside the axis' range is reported, never dropped or
//! clamped, and then nothing is imported. Otherwise one `Manager.ImportProfilesEx` call imports
//! the whole set, all or nothing. A daemon older than that method gets `Manager.ImportProfiles`
//! instead when no profile of the file has a setting that method cannot carry; otherwise the
//! import is refused, never done without those settings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use zbus::Connection;
use zbus::wire::OwnedVariant;

use driverprofiled::core::quote;
use driverprofiled_api::proxy::ManagerProxy;
use driverprofiled_api::{ImportMode, ImportedProfile, ImportedProfileEx, import_field};

use crate::bus::{Fail, Snapshot, exit};
use crate::cli::ImportArgs;

pub const FORMAT: &str = "driverprofiled-profiles";
pub const VERSION: u32 = 1;
/// Larger import files are refused unread: ten profiles take a few KiB.
pub const MAX_FILE: u64 = 1024 * 1024;
/// Problems listed at most (the count of the rest follows).
const MAX_PROBLEMS: usize = 50;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub format: String,
    pub version: u32,
    pub profiles: Vec<ExportProfile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportProfile {
    pub name: String,
    pub easy_exit: bool,
    pub keys: Vec<String>,
    pub positions: Vec<ExportPosition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_save: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_tilt_enabled: Option<bool>,
    /// Reverse positions of the mirrors that tilt in reverse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_tilt: Option<Vec<ExportPosition>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportPosition {
    pub vss: String,
    pub unit: String,
    pub value: f64,
}

/// Only the header, read first: a newer version is refused as such, not as unknown fields.
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

pub async fn export(conn: &Connection, file: Option<&Path>) -> Result<(), Fail> {
    let snap = Snapshot::read(conn).await?;
    let mut profiles = Vec::new();
    for p in &snap.profiles {
        let in_vss = |positions: &BTreeMap<String, f64>| {
            (positions.iter())
                .map(|(axis, value)| {
                    let a = snap.actuator(axis).ok_or_else(|| {
                        Fail::new(
                            exit::SOFTWARE,
                            format!("profile {}: axis {axis} has no actuator", p.id),
                        )
                    })?;
                    Ok(ExportPosition {
                        vss: a.vss(),
                        unit: a.unit(),
                        value: *value,
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()
        };
        profiles.push(ExportProfile {
            name: p.name.clone(),
            easy_exit: p.easy_exit,
            keys: p.keys.clone(),
            positions: in_vss(&p.positions)?,
            auto_save: p.auto_save.then_some(true),
            reverse_tilt_enabled: (!p.reverse_tilt_enabled).then_some(false),
            reverse_tilt: match p.reverse_tilt.is_empty() {
                true => None,
                false => Some(in_vss(&p.reverse_tilt)?),
            },
        });
    }
    let doc = Export {
        format: FORMAT.into(),
        version: VERSION,
        profiles,
    };
    let mut text = serde_json::to_string_pretty(&doc)
        .map_err(|e| Fail::new(exit::SOFTWARE, format!("cannot write JSON: {e}")))?;
    text.push('\n');
    match file {
        None => {
            print!("{text}");
            crate::flush();
            Ok(())
        }
        Some(path) => write_atomically(path, text.as_bytes())
            .map_err(|e| Fail::new(exit::IOERR, format!("cannot write {}: {e}", path.display()))),
    }
}

/// Temp file beside `path`, fsync, rename over it: a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// A parse error message, short: serde's messages may quote the input.
fn short_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let max = 160;
    match msg.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &msg[..cut]),
        None => msg,
    }
}

/// Read and parse an export file; 66 when it cannot be opened, 65 when it is too large or
/// malformed.
pub fn read_file(path: &Path) -> Result<Export, Fail> {
    let shown = path.display();
    let f = std::fs::File::open(path)
        .map_err(|e| Fail::new(exit::NOINPUT, format!("cannot open {shown}: {e}")))?;
    let too_large = || {
        Fail::new(
            exit::DATAERR,
            format!("{shown}: larger than {MAX_FILE} bytes (1 MiB): refused unread"),
        )
    };
    if f.metadata().map(|m| m.len() > MAX_FILE).unwrap_or(false) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Fail::new(exit::NOINPUT, format!("cannot read {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(too_large());
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Fail::new(exit::DATAERR, format!("{shown}: not UTF-8 text: {e}")))?;
    let bad = |e: serde_json::Error| {
        Fail::new(
            exit::DATAERR,
            format!("{shown}: malformed: {}", short_error(&e)),
        )
    };
    let header: Header = serde_json::from_str(text).map_err(bad)?;
    match header.format.as_ref().and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        _ => {
            return Err(Fail::new(
                exit::DATAERR,
                format!(
                    "{shown}: not a driverprofilectl export (\"format\": \"{FORMAT}\" missing)"
                ),
            ));
        }
    }
    match header.version.as_ref().and_then(|v| v.as_u64()) {
        Some(v) if v == VERSION as u64 => {}
        Some(v) => {
            return Err(Fail::new(
                exit::DATAERR,
                format!(
                    "{shown}: format version {v}; this driverprofilectl reads version {VERSION}"
                ),
            ));
        }
        None => {
            return Err(Fail::new(
                exit::DATAERR,
                format!("{shown}: \"version\" missing or not a number"),
            ));
        }
    }
    serde_json::from_str(text).map_err(bad)
}

/// The file's profiles mapped to this car's axes, for each import method.
pub struct Mapped {
    pub ex: Vec<ImportedProfileEx>,
    /// For a daemon without ImportProfilesEx: `None` when a profile has a setting
    /// ImportProfiles cannot carry.
    pub plain: Option<Vec<ImportedProfile>>,
}

/// Map the file's profiles to this car's axes; every problem found, or the profiles.
pub fn map_profiles(doc: &Export, snap: &Snapshot) -> Result<Mapped, Vec<String>> {
    let by_vss: HashMap<String, &crate::bus::Actuator> =
        snap.actuators.iter().map(|a| (a.vss(), a)).collect();
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut plain = Some(Vec::new());
    for p in &doc.profiles {
        let who = format!("profile {}", quote(&p.name));
        let mut map = |list: &[ExportPosition], what: &str| {
            map_positions(&format!("{who}{what}"), list, &by_vss, &mut problems)
        };
        let positions = map(&p.positions, "");
        let reverse_tilt = p.reverse_tilt.as_deref().map(|r| map(r, ": reverse_tilt"));
        let mut fields: HashMap<String, OwnedVariant> = HashMap::new();
        let mut put = |k: &str, v: zbus::wire::Variant<'_>| {
            if let Ok(v) = OwnedVariant::try_from(v) {
                fields.insert(k.to_string(), v);
            }
        };
        let newer =
            p.auto_save.is_some() || p.reverse_tilt_enabled.is_some() || p.reverse_tilt.is_some();
        match &mut plain {
            Some(list) if !newer => list.push((
                p.name.clone(),
                p.easy_exit,
                positions.clone(),
                p.keys.clone(),
            )),
            _ => plain = None,
        }
        put(import_field::EASY_EXIT, p.easy_exit.into());
        put(import_field::POSITIONS, positions.into());
        put(import_field::KEYS, p.keys.clone().into());
        if let Some(on) = p.auto_save {
            put(import_field::AUTO_SAVE, on.into());
        }
        if let Some(on) = p.reverse_tilt_enabled {
            put(import_field::REVERSE_TILT_ENABLED, on.into());
        }
        if let Some(r) = reverse_tilt {
            put(import_field::REVERSE_TILT, r.into());
        }
        out.push((p.name.clone(), fields));
    }
    if problems.is_empty() {
        Ok(Mapped { ex: out, plain })
    } else {
        Err(problems)
    }
}

/// Positions in VSS terms to this car's axis names; each problem is added to `problems`.
fn map_positions(
    who: &str,
    list: &[ExportPosition],
    by_vss: &HashMap<String, &crate::bus::Actuator>,
    problems: &mut Vec<String>,
) -> HashMap<String, f64> {
    let mut positions = HashMap::new();
    let mut seen = HashSet::new();
    for pos in list {
        let vss = quote(&pos.vss);
        if !seen.insert(pos.vss.as_str()) {
            problems.push(format!("{who}: {vss} given twice"));
            continue;
        }
        let Some(a) = by_vss.get(&pos.vss) else {
            problems.push(format!(
                "{who}: {vss}: this car has no axis with this VSS path"
            ));
            continue;
        };
        if a.unit() != pos.unit {
            problems.push(format!(
                "{who}: {vss}: unit {} but this car's {} is in {}",
                quote(&pos.unit),
                a.name,
                a.unit()
            ));
            continue;
        }
        let (min, max) = (a.min(), a.max());
        if !(pos.value >= min && pos.value <= max) {
            problems.push(format!(
                "{who}: {vss} = {} {} is outside this car's range {min}..{max} ({})",
                pos.value, pos.unit, a.name
            ));
            continue;
        }
        positions.insert(a.name.clone(), pos.value);
    }
    positions
}

pub async fn import(conn: &Connection, args: &ImportArgs) -> Result<(), Fail> {
    let doc = read_file(&args.file)?;
    let snap = Snapshot::read(conn).await?;
    let shown = args.file.display();
    let mapped = map_profiles(&doc, &snap).map_err(|problems| {
        let n = problems.len();
        let mut msg = format!(
            "{shown}: {n} problem{} for this car; nothing imported:",
            if n == 1 { "" } else { "s" }
        );
        for p in problems.iter().take(MAX_PROBLEMS) {
            msg += "\n  ";
            msg += p;
        }
        if n > MAX_PROBLEMS {
            msg += &format!("\n  ... and {} more", n - MAX_PROBLEMS);
        }
        Fail::new(exit::DATAERR, msg)
    })?;
    let mode = if args.replace {
        ImportMode::Replace
    } else {
        ImportMode::Merge
    };
    let m = ManagerProxy::new(conn).await?;
    let profiles = &mapped.ex;
    let paths = match m
        .import_profiles_ex(profiles, mode.as_str(), args.dry_run)
        .await
    {
        Err(zbus::Error::MethodError(name, ..))
            if name.as_str() == "org.freedesktop.DBus.Error.UnknownMethod" =>
        {
            let Some(plain) = &mapped.plain else {
                return Err(Fail::new(
                    exit::UNAVAILABLE,
                    format!(
                        "{shown}: this daemon is older than Manager.ImportProfilesEx and cannot \
                         store auto_save or the reverse tilt settings; nothing imported"
                    ),
                ));
            };
            m.import_profiles(plain, mode.as_str(), args.dry_run)
                .await?
        }
        r => r?,
    };
    let n = profiles.len();
    let s = if n == 1 { "" } else { "s" };
    if args.dry_run {
        println!("{shown}: {n} profile{s} can be imported ({mode}); nothing changed");
        return Ok(());
    }
    println!("{shown}: imported {n} profile{s} ({mode})");
    for (p, (name, _)) in paths.iter().zip(profiles) {
        let id = driverprofiled_api::profile_id(p.as_str()).unwrap_or(p.as_str());
        println!("{id:>4}  {name}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(auto_save: Option<bool>) -> Export {
        Export {
            format: FORMAT.into(),
            version: VERSION,
            profiles: vec![ExportProfile {
                name: "Anna".into(),
                easy_exit: false,
                keys: vec!["key-1".into()],
                positions: Vec::new(),
                auto_save,
                reverse_tilt_enabled: None,
                reverse_tilt: None,
            }],
        }
    }

    #[test]
    fn an_older_daemon_gets_the_plain_import_only_when_nothing_would_be_lost() {
        let snap = Snapshot::default();
        let m = map_profiles(&doc(None), &snap).unwrap();
        assert_eq!(m.ex.len(), 1);
        let plain = m.plain.unwrap();
        assert_eq!(plain.len(), 1);
        assert_eq!((plain[0].0.as_str(), plain[0].1), ("Anna", false));
        assert_eq!(plain[0].3, vec!["key-1".to_string()]);
        // AutoSave, even off, is a setting ImportProfiles cannot carry.
        for on in [true, false] {
            let m = map_profiles(&doc(Some(on)), &snap).unwrap();
            assert!(m.plain.is_none(), "auto_save = {on}");
            assert!(m.ex[0].1.contains_key(import_field::AUTO_SAVE));
        }
    }
}
