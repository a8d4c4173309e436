//! The profile store's file format, by schema, and a read-only check of a state directory.
//!
//! - Schema 1: `schema`, `next_id`, `active`, `[[profile]]`.
//! - Schema 2: schema 1 plus `[units]`, axis name to the unit the axis had in the config when
//!   the file was written, so that a config changing an axis' unit can never make the daemon
//!   read stored numbers in another unit.
//! - Schema 3: schema 2 plus a profile's `auto_save`.
//! - Schema 4: schema 3 plus a profile's `reverse_tilt` and `reverse_tilt_enabled`.
//! - The daemon writes the oldest schema that holds the store (2 until a profile uses one of
//!   those fields), so that a daemon rolled back to an older release reads what it can.
//! - A newer schema (a newer daemon wrote it; this one runs after an OTA rollback) is read
//!   leniently: unknown fields are ignored, what this daemon knows must still be there and
//!   validate. It is then served read-only (see `super::LoadedStore`).
//!
//! Parsing is pure: nothing here writes, renames or creates anything.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{Config, line_col};
use crate::core::quote;
use crate::core::store::{Profile, ProfileId, SCHEMA_VERSION, Store};

/// A store file as read: its schema as found, the store (in memory always of this daemon's
/// schema) and its units (empty for schema 1, which has none).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFile {
    pub schema: u32,
    pub store: Store,
    pub units: BTreeMap<String, String>,
}

impl StoreFile {
    /// Written by a newer daemon: to be served read-only.
    pub fn is_newer(&self) -> bool {
        self.schema > SCHEMA_VERSION
    }
}

/// Why a store file cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum Unreadable {
    /// Not TOML, or a schema this daemon writes (or an older one) that does not validate:
    /// truly corrupt, to be moved aside.
    Corrupt(String),
    /// A newer schema this daemon cannot make sense of: to be left untouched.
    Newer { schema: u32, why: String },
}

impl Unreadable {
    pub fn message(&self) -> &str {
        let (Unreadable::Corrupt(m) | Unreadable::Newer { why: m, .. }) = self;
        m
    }
}

/// Schemas 1 to 4: every field known, nothing else allowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    schema: u32,
    next_id: u64,
    #[serde(default)]
    active: Option<ProfileId>,
    #[serde(default)]
    units: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "profile")]
    profiles: Vec<Profile>,
}

/// A newer schema: the fields this daemon knows, whatever else there is.
#[derive(Deserialize)]
struct Lenient {
    next_id: u64,
    #[serde(default)]
    active: Option<ProfileId>,
    units: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "profile")]
    profiles: Vec<LenientProfile>,
}

#[derive(Deserialize)]
struct LenientProfile {
    id: ProfileId,
    name: String,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default = "default_true")]
    easy_exit: bool,
    #[serde(default)]
    positions: BTreeMap<String, f64>,
    #[serde(default)]
    auto_save: bool,
    #[serde(default)]
    reverse_tilt: BTreeMap<String, f64>,
    #[serde(default = "default_true")]
    reverse_tilt_enabled: bool,
}

fn default_true() -> bool {
    true
}

/// What this daemon writes (schema 2, or the newer one the store needs).
#[derive(Serialize)]
pub(super) struct Written<'a> {
    pub schema: u32,
    pub next_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: &'a Option<ProfileId>,
    pub units: &'a BTreeMap<String, String>,
    #[serde(rename = "profile")]
    pub profiles: &'a [Profile],
}

/// `PATH:LINE:COL: message` for a TOML error, `PATH: message` without a place.
fn toml_error(path: &str, text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{path}:{line}:{col}: {}", e.message().trim())
        }
        None => format!("{path}: {}", e.message().trim()),
    }
}

/// Parse and validate a store file's bytes; `path` names it in messages.
pub fn parse(path: &str, bytes: &[u8]) -> Result<StoreFile, Unreadable> {
    let corrupt = Unreadable::Corrupt;
    let text =
        std::str::from_utf8(bytes).map_err(|e| corrupt(format!("{path}: not UTF-8: {e}")))?;
    let table: toml::Table =
        toml::from_str(text).map_err(|e| corrupt(toml_error(path, text, &e)))?;
    let schema = match table.get("schema") {
        None => return Err(corrupt(format!("{path}: no schema number"))),
        Some(v) => v
            .as_integer()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n >= 1)
            .ok_or_else(|| corrupt(format!("{path}: schema {v} is not a schema number")))?,
    };
    if schema > SCHEMA_VERSION {
        let newer = |why: String| Unreadable::Newer {
            schema,
            why: format!(
                "{path} was written by a newer driverprofiled (schema {schema}) and this one \
                 (schema {SCHEMA_VERSION}) cannot read it: {why}"
            ),
        };
        let l: Lenient = table
            .try_into()
            .map_err(|e: toml::de::Error| newer(e.message().trim().to_string()))?;
        let units = l
            .units
            .ok_or_else(|| newer("it has no [units] table".into()))?;
        let store = Store {
            schema: SCHEMA_VERSION,
            next_id: l.next_id,
            active: l.active,
            profiles: l
                .profiles
                .into_iter()
                .map(|p| Profile {
                    id: p.id,
                    name: p.name,
                    keys: p.keys,
                    easy_exit: p.easy_exit,
                    positions: p.positions,
                    auto_save: p.auto_save,
                    reverse_tilt: p.reverse_tilt,
                    reverse_tilt_enabled: p.reverse_tilt_enabled,
                })
                .collect(),
        };
        store.validate().map_err(newer)?;
        return Ok(StoreFile {
            schema,
            store,
            units,
        });
    }
    let s: Strict = toml::from_str(text).map_err(|e| corrupt(toml_error(path, text, &e)))?;
    let units = match (s.schema, s.units) {
        (1, None) => BTreeMap::new(),
        (1, Some(_)) => return Err(corrupt(format!("{path}: schema 1 has no [units] table"))),
        (_, Some(u)) => u,
        (_, None) => return Err(corrupt(format!("{path}: the [units] table is missing"))),
    };
    // What an older daemon would call corrupt is not clean here either.
    if let Some((field, needs)) = (s.profiles.iter())
        .filter_map(|p| p.newest_field())
        .find(|&(_, needs)| needs > s.schema)
    {
        let why = format!(
            "{path}: {field} needs schema {needs}, the file says {}",
            s.schema
        );
        return Err(corrupt(why));
    }
    let store = Store {
        schema: SCHEMA_VERSION,
        next_id: s.next_id,
        active: s.active,
        profiles: s.profiles,
    };
    store
        .validate()
        .map_err(|e| corrupt(format!("{path}: {e}")))?;
    Ok(StoreFile {
        schema: s.schema,
        store,
        units,
    })
}

/// Axes whose stored unit differs from the configured one: (axis, stored, configured).
pub fn unit_mismatches(
    units: &BTreeMap<String, String>,
    cfg: &Config,
) -> Vec<(String, String, String)> {
    cfg.axes
        .iter()
        .filter_map(|a| {
            let stored = units.get(&a.name)?;
            (stored != a.unit.as_str())
                .then(|| (a.name.clone(), stored.clone(), a.unit.as_str().to_string()))
        })
        .collect()
}

/// What to tell about an axis whose stored unit differs from the config's.
pub fn unit_mismatch_message(
    path: &str,
    (axis, stored, configured): &(String, String, String),
) -> String {
    format!(
        "{path} holds {axis} in {stored} but the config says {configured}: not serving the \
         profiles (nothing would move to numbers read in the wrong unit); set the axis' unit \
         back to {stored}, or convert the profiles' {axis} positions and the [units] entry \
         to {configured} while the daemon is stopped"
    )
}

/// What [`check_state`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct StateReport {
    /// The store's schema as found; 0 when there is no store file.
    pub schema: u32,
    pub profiles: usize,
    /// One line per problem found (against the config, when one was given); empty when the
    /// daemon would serve the store as it is.
    pub problems: Vec<String>,
}

/// Check the state in `dir` as the daemon would load it, and, with `cfg`, against that
/// config: positions the config would clamp, axes it no longer has, units that differ,
/// more profiles or keys than it allows. Never modifies, renames or creates anything.
///
/// `Err` when the store cannot be used at all: not readable, not TOML, invalid, or of a newer
/// schema this daemon cannot read (the message says which, with `file:line:col` for a TOML
/// error). A missing store (or directory) is an empty store. A newer schema that can be read
/// (the daemon would serve it read-only) is `Ok`, with a problem saying so.
pub fn check_state(dir: &Path, cfg: Option<&Config>) -> Result<StateReport, String> {
    let path = dir.join(super::FILE_NAME);
    let shown = path.display().to_string();
    let mut problems = Vec::new();
    let ee = dir.join(super::EASY_EXIT_FILE);
    match fs::read(&ee) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => problems.push(format!("{}: cannot read: {e}", ee.display())),
        Ok(bytes) => {
            if let Err(e) = super::parse(&bytes, |s: &crate::core::EasyExitState| s.validate()) {
                problems.push(format!(
                    "{}: {e} (the daemon would move it aside and forget the easy-exit restore)",
                    ee.display()
                ));
            }
        }
    }
    let bytes = match fs::read(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(StateReport {
                schema: 0,
                profiles: 0,
                problems,
            });
        }
        Err(e) => return Err(format!("{shown}: cannot read: {e}")),
        Ok(b) => b,
    };
    let file = parse(&shown, &bytes).map_err(|e| match e {
        Unreadable::Corrupt(m) => {
            format!("{m} (the daemon would move it aside and start without profiles)")
        }
        Unreadable::Newer { why, .. } => {
            format!("{why} (the daemon would start without profiles and leave it untouched)")
        }
    })?;
    if file.is_newer() {
        problems.push(format!(
            "{shown} was written by a newer driverprofiled (schema {}); this one reads schemas \
             up to {SCHEMA_VERSION} and would serve it read-only (profiles can be recalled, not changed)",
            file.schema
        ));
    }
    if let Some(cfg) = cfg {
        problems.extend(config_problems(&shown, &file, cfg));
    }
    Ok(StateReport {
        schema: file.schema,
        profiles: file.store.profiles.len(),
        problems,
    })
}

/// How [`config_problems`] tells of one kind of stored position.
struct Stored {
    /// For an axis the config does not use for them: (the axis, quoted; the position).
    missing: fn(&str, f64) -> String,
    prefix: &'static str,
    /// What the config makes of a position outside the axis' range.
    effect: &'static str,
}

impl Stored {
    /// A problem for each of `positions` that `axis_of` does not know, or that lies outside
    /// its axis' range (unless its unit differs: that is told once, for the whole axis).
    fn problems<'c>(
        &self,
        who: &str,
        positions: &BTreeMap<String, f64>,
        mismatches: &[(String, String, String)],
        problems: &mut Vec<String>,
        axis_of: impl Fn(&str) -> Option<&'c crate::config::AxisConfig>,
    ) {
        for (axis, &v) in positions {
            let Some(a) = axis_of(axis) else {
                problems.push(format!("{who}: {}", (self.missing)(&quote(axis), v)));
                continue;
            };
            if mismatches.iter().any(|(m, _, _)| m == axis) {
                continue;
            }
            if v < a.min || v > a.max {
                let u = a.unit.as_str();
                problems.push(format!(
                    "{who}: {}{axis} {v} {u} is outside {}..{} {u} ({} {})",
                    self.prefix,
                    a.min,
                    a.max,
                    self.effect,
                    a.clamp(v)
                ));
            }
        }
    }
}

/// Where `file` and `cfg` disagree.
fn config_problems(shown: &str, file: &StoreFile, cfg: &Config) -> Vec<String> {
    let mismatches = unit_mismatches(&file.units, cfg);
    let mut problems: Vec<String> = mismatches
        .iter()
        .map(|m| unit_mismatch_message(shown, m))
        .collect();
    let store = &file.store;
    if store.profiles.len() > cfg.max_profiles {
        problems.push(format!(
            "{} profiles are stored but max_profiles is {}: no profile can be created until \
             some are deleted",
            store.profiles.len(),
            cfg.max_profiles
        ));
    }
    if store.key_count() > cfg.max_keys {
        problems.push(format!(
            "{} keys are bound but max_keys is {}: no key can be bound until some are unbound",
            store.key_count(),
            cfg.max_keys
        ));
    }
    for p in &store.profiles {
        let who = format!("profile {}", quote(&p.name));
        let recall = Stored {
            missing: |axis, v| {
                format!("axis {axis} no longer exists (its stored position {v} is not used)")
            },
            prefix: "",
            effect: "a recall would move to",
        };
        recall.problems(&who, &p.positions, &mismatches, &mut problems, |axis| {
            cfg.axes.iter().find(|a| a.name == axis)
        });
        let reversing = Stored {
            missing: |axis, v| {
                format!(
                    "reverse_tilt: {axis} does not tilt in reverse with this config (its stored \
                     reverse position {v} is not used)"
                )
            },
            prefix: "reverse_tilt: ",
            effect: "reversing would tilt it to",
        };
        reversing.problems(&who, &p.reverse_tilt, &mismatches, &mut problems, |axis| {
            (cfg.reverse_tilt.axes.iter())
                .map(|&i| &cfg.axes[i])
                .find(|a| a.name == axis)
        });
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        crate::config::builtin().unwrap()
    }

    const V2: &str = "schema = 2\nnext_id = 3\nactive = \"1\"\n\
        [units]\nseat_position = \"mm\"\nwheel_tilt = \"percent\"\n\
        [[profile]]\nid = \"1\"\nname = \"Anna\"\nkeys = [\"fob-1\"]\n\
        [profile.positions]\nseat_position = 120.0\n\
        [[profile]]\nid = \"2\"\nname = \"Ben\"\n\
        [profile.positions]\nwheel_tilt = 40.0\n";

    fn dir_with(text: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("profiles.toml"), text).unwrap();
        d
    }

    /// Every file in `dir` with its bytes.
    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_good_store_has_no_problems() {
        let d = dir_with(V2);
        let r = check_state(d.path(), Some(&cfg())).unwrap();
        assert_eq!(
            r,
            StateReport {
                schema: 2,
                profiles: 2,
                problems: vec![]
            }
        );
        assert_eq!(check_state(d.path(), None).unwrap(), r);
    }

    #[test]
    fn a_missing_store_is_empty_and_nothing_is_created() {
        let d = tempfile::tempdir().unwrap();
        let r = check_state(d.path(), Some(&cfg())).unwrap();
        assert_eq!((r.schema, r.profiles, r.problems.len()), (0, 0, 0));
        assert!(snapshot(d.path()).is_empty());
        let r = check_state(&d.path().join("nope"), None).unwrap();
        assert_eq!(r.profiles, 0);
        assert!(!d.path().join("nope").exists());
    }

    #[test]
    fn a_schema_1_store_is_read() {
        let d = dir_with(
            "schema = 1\nnext_id = 2\n[[profile]]\nid = \"1\"\nname = \"Anna\"\n\
             [profile.positions]\nseat_position = 100.0\n",
        );
        let r = check_state(d.path(), Some(&cfg())).unwrap();
        assert_eq!((r.schema, r.profiles), (1, 1));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn positions_a_config_would_clamp_and_axes_gone_are_listed() {
        let d = dir_with(V2);
        let mut c = cfg();
        let seat = c
            .axes
            .iter_mut()
            .find(|a| a.name == "seat_position")
            .unwrap();
        seat.min = 0.0;
        seat.max = 100.0;
        c.axes.retain(|a| a.name != "wheel_tilt");
        let r = check_state(d.path(), Some(&c)).unwrap();
        assert_eq!(
            r.problems,
            vec![
                "profile \"Anna\": seat_position 120 mm is outside 0..100 mm (a recall would \
                 move to 100)"
                    .to_string(),
                "profile \"Ben\": axis \"wheel_tilt\" no longer exists (its stored position 40 \
                 is not used)"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn reverse_positions_a_config_would_clamp_or_not_use_are_listed() {
        let text = V2.replace("schema = 2", "schema = 4").replace(
            "[profile.positions]\nseat_position = 120.0\n",
            "[profile.positions]\nseat_position = 120.0\n[profile.reverse_tilt]\n\
             mirror_driver_tilt = -30.0\nmirror_passenger_tilt = -40.0\n",
        );
        let d = dir_with(&text);
        let c = cfg();
        assert!(
            check_state(d.path(), Some(&c))
                .unwrap()
                .problems
                .iter()
                .any(
                    |p| p.contains("reverse_tilt: \"mirror_driver_tilt\" does not tilt in reverse")
                )
        );
        let mut c = cfg();
        let mirror = c
            .axes
            .iter_mut()
            .find(|a| a.name == "mirror_passenger_tilt");
        mirror.unwrap().min = -20.0;
        let r = check_state(d.path(), Some(&c)).unwrap();
        assert_eq!(
            r.problems,
            vec![
                "profile \"Anna\": reverse_tilt: \"mirror_driver_tilt\" does not tilt in reverse \
                 with this config (its stored reverse position -30 is not used)"
                    .to_string(),
                "profile \"Anna\": reverse_tilt: mirror_passenger_tilt -40 percent is outside \
                 -20..100 percent (reversing would tilt it to -20)"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn a_unit_that_differs_is_a_problem() {
        let d = dir_with(&V2.replace("seat_position = \"mm\"", "seat_position = \"deg\""));
        let r = check_state(d.path(), Some(&cfg())).unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        let p = &r.problems[0];
        assert!(
            p.contains("seat_position in deg but the config says mm"),
            "{p}"
        );
    }

    #[test]
    fn more_profiles_or_keys_than_allowed_are_problems() {
        let d = dir_with(V2);
        let mut c = cfg();
        c.max_profiles = 1;
        c.max_keys = 0;
        let r = check_state(d.path(), Some(&c)).unwrap();
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0].contains("max_profiles is 1"));
        assert!(r.problems[1].contains("max_keys is 0"));
    }

    #[test]
    fn a_toml_error_has_line_and_column_and_nothing_is_touched() {
        let d = dir_with("schema = 2\nnext_id = \"x\n");
        let before = snapshot(d.path());
        let e = check_state(d.path(), None).unwrap_err();
        assert!(e.contains("profiles.toml:2:"), "{e}");
        assert!(e.contains("move it aside"), "{e}");
        assert_eq!(snapshot(d.path()), before);
    }

    #[test]
    fn an_invalid_store_is_an_error() {
        // Well-formed, but a key bound twice.
        let d = dir_with(&V2.replace("name = \"Ben\"", "name = \"Ben\"\nkeys = [\"fob-1\"]"));
        let e = check_state(d.path(), None).unwrap_err();
        assert!(e.contains("bound twice"), "{e}");
        // An unknown field in a schema this daemon writes.
        let d = dir_with(&V2.replace("next_id = 3", "next_id = 3\ncolour = \"red\""));
        let e = check_state(d.path(), None).unwrap_err();
        assert!(e.contains("profiles.toml:3:1"), "{e}");
        // Schema 2 without units; schema 1 with them.
        let d = dir_with("schema = 2\nnext_id = 1\n");
        assert!(check_state(d.path(), None).unwrap_err().contains("[units]"));
        let d = dir_with("schema = 1\nnext_id = 1\n[units]\n");
        assert!(check_state(d.path(), None).unwrap_err().contains("[units]"));
        let d = dir_with("next_id = 1\n");
        assert!(check_state(d.path(), None).unwrap_err().contains("schema"));
    }

    #[test]
    fn a_readable_newer_schema_is_a_problem_not_an_error() {
        let text = V2.replace("schema = 2", "schema = 5\nmirror_fold = true")
            + "[profile.lumbar]\nx = 1\n";
        let d = dir_with(&text);
        let before = snapshot(d.path());
        let r = check_state(d.path(), Some(&cfg())).unwrap();
        assert_eq!((r.schema, r.profiles), (5, 2));
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.problems[0].contains("newer driverprofiled (schema 5)"));
        assert!(r.problems[0].contains("read-only"));
        assert_eq!(snapshot(d.path()), before);
    }

    #[test]
    fn an_unreadable_newer_schema_is_an_error() {
        let d = dir_with("schema = 5\nnext_id = \"three\"\n[units]\n");
        let before = snapshot(d.path());
        let e = check_state(d.path(), None).unwrap_err();
        assert!(e.contains("newer driverprofiled (schema 5)"), "{e}");
        assert!(e.contains("untouched"), "{e}");
        assert_eq!(snapshot(d.path()), before);
        // Valid TOML of a newer schema that does not validate: also unreadable, not corrupt.
        let d = dir_with(
            &V2.replace("schema = 2", "schema = 9")
                .replace("next_id = 3", "next_id = 1"),
        );
        let e = check_state(d.path(), None).unwrap_err();
        assert!(e.contains("schema 9"), "{e}");
    }

    #[test]
    fn reverse_tilt_settings_need_schema_4_and_auto_save_schema_3() {
        let v4 = V2.replace("schema = 2", "schema = 4").replace(
            "[profile.positions]\nseat_position = 120.0\n",
            "reverse_tilt_enabled = false\n[profile.positions]\nseat_position = 120.0\n\
             [profile.reverse_tilt]\nmirror_passenger_tilt = -40.0\n",
        );
        let f = parse("p", v4.as_bytes()).unwrap();
        let anna = &f.store.profiles[0];
        assert!(!anna.reverse_tilt_enabled);
        assert_eq!(anna.reverse_tilt.get("mirror_passenger_tilt"), Some(&-40.0));
        assert!(f.store.profiles[1].reverse_tilt_enabled, "on by default");
        assert_eq!(f.store.schema_needed(), 4);
        // In a schema-3 or schema-2 file they are what an older daemon calls corrupt: the
        // release that wrote schema 3 knows auto_save only.
        for older in ["schema = 3", "schema = 2"] {
            let e = parse("p", v4.replace("schema = 4", older).as_bytes()).err();
            assert!(
                matches!(&e, Some(Unreadable::Corrupt(m)) if m.contains("needs schema 4")),
                "{older}: {e:?}"
            );
        }
        let only_tilt_off = V2.replace("schema = 2", "schema = 3").replace(
            "[profile.positions]\nseat_position = 120.0\n",
            "reverse_tilt_enabled = false\n",
        );
        let e = parse("p", only_tilt_off.as_bytes()).err();
        assert!(
            matches!(&e, Some(Unreadable::Corrupt(m)) if m.contains("reverse_tilt_enabled needs schema 4"))
        );
        // AutoSave alone needs schema 3, no more.
        let v3 = V2.replace("schema = 2", "schema = 3").replace(
            "[profile.positions]\nseat_position = 120.0\n",
            "auto_save = true\n[profile.positions]\nseat_position = 120.0\n",
        );
        let f = parse("p", v3.as_bytes()).unwrap();
        assert!(f.store.profiles[0].auto_save);
        assert_eq!(f.store.schema_needed(), 3);
        let e = parse("p", v3.replace("schema = 3", "schema = 2").as_bytes()).err();
        assert!(
            matches!(&e, Some(Unreadable::Corrupt(m)) if m.contains("auto_save needs schema 3"))
        );
        let nan = v4.replace("-40.0", "nan");
        assert!(matches!(
            parse("p", nan.as_bytes()),
            Err(Unreadable::Corrupt(_))
        ));
    }

    #[test]
    fn a_corrupt_easy_exit_file_is_a_problem() {
        let d = dir_with(V2);
        fs::write(d.path().join("easy-exit.toml"), "active = maybe").unwrap();
        let r = check_state(d.path(), None).unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.problems[0].contains("easy-exit.toml"));
    }
}
