//! The persisted profile store: data model, its validation, and the edits clients make to it
//! (no I/O here: the core saves a edited copy before it becomes current).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Error, quote};
use crate::config::AxisConfig;

/// A profile: the number it was created with (1, 2, ...; never reused). On the bus it is the
/// last element of the profile's object path; in `profiles.toml`, a string of that number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileId(u64);

impl ProfileId {
    pub const fn new(n: u64) -> ProfileId {
        ProfileId(n)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The id written as `s` (decimal, no leading zero, not 0), if it is one.
    pub fn parse(s: &str) -> Option<ProfileId> {
        let n: u64 = s.parse().ok()?;
        (n != 0 && n.to_string() == s).then_some(ProfileId(n))
    }
}

impl std::fmt::Display for ProfileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<String> for ProfileId {
    type Error = String;

    fn try_from(s: String) -> Result<ProfileId, String> {
        ProfileId::parse(&s).ok_or_else(|| format!("profile id {} is not a number", quote(&s)))
    }
}

impl From<ProfileId> for String {
    fn from(id: ProfileId) -> String {
        id.to_string()
    }
}

/// Most problems an import's error message lists.
pub const IMPORT_PROBLEMS_LISTED: usize = 20;

/// What an import does with the profiles there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Every existing profile is deleted (ids are never reused).
    Replace,
    /// A profile with the same name (ignoring case) is updated in place, keeping its id;
    /// the others are created; the rest are kept.
    Merge,
}

/// One profile to import, as a client gave it. A field that is `None` was left out: a merged
/// profile keeps what it has, a new one gets the default (easy exit and reverse tilt on, no
/// positions, no keys, AutoSave off).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    pub name: String,
    pub easy_exit: Option<bool>,
    /// Axis name to position; an axis left out is not moved when the profile is recalled.
    pub positions: Option<Vec<(String, f64)>>,
    pub keys: Option<Vec<String>>,
    pub auto_save: Option<bool>,
    /// Reverse positions, only of `[reverse_tilt]` axes.
    pub reverse_tilt: Option<Vec<(String, f64)>>,
    pub reverse_tilt_enabled: Option<bool>,
}

impl ImportItem {
    /// An item that gives a name and leaves every other field out.
    pub fn named(name: String) -> ImportItem {
        ImportItem {
            name,
            easy_exit: None,
            positions: None,
            keys: None,
            auto_save: None,
            reverse_tilt: None,
            reverse_tilt_enabled: None,
        }
    }

    /// An item of the first import method: every field but the newer settings given.
    pub fn with(
        name: String,
        easy_exit: bool,
        positions: Vec<(String, f64)>,
        keys: Vec<String>,
    ) -> ImportItem {
        ImportItem {
            easy_exit: Some(easy_exit),
            positions: Some(positions),
            keys: Some(keys),
            ..ImportItem::named(name)
        }
    }
}

/// The kinds of import problems, most fundamental first: the error names the first kind found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Problem {
    Invalid,
    Range,
    KeyInUse,
    Limit,
}

/// The newest schema of `profiles.toml` this daemon reads and writes. Schema 3 adds a
/// profile's `auto_save`, schema 4 its `reverse_tilt` and `reverse_tilt_enabled`. A store is
/// written in the oldest schema that holds it ([`Store::schema_needed`]), so that an older
/// daemon (after an update is rolled back) still serves it as it is when it can, and serves it
/// read-only when it cannot: never renamed aside as corrupt, never lost.
pub const SCHEMA_VERSION: u32 = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub schema: u32,
    /// Next profile id to hand out: ids are never reused.
    pub next_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ProfileId>,
    #[serde(default, rename = "profile")]
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub id: ProfileId,
    pub name: String,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default = "default_true")]
    pub easy_exit: bool,
    #[serde(default)]
    pub positions: BTreeMap<String, f64>,
    /// At the end of each drive, store the positions the driver left the axes at (schema 3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_save: bool,
    /// Where the `[reverse_tilt]` axes go while reversing: axis name to position (schema 4).
    /// An axis not here moves by the configured offset.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reverse_tilt: BTreeMap<String, f64>,
    /// Whether the mirrors tilt down in reverse with this profile active (schema 4 when off).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub reverse_tilt_enabled: bool,
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Profile {
    /// A new profile: no keys, no positions, easy exit and reverse tilt on, AutoSave off.
    pub fn new(id: ProfileId, name: String) -> Profile {
        Profile {
            id,
            name,
            keys: Vec::new(),
            easy_exit: true,
            positions: BTreeMap::new(),
            auto_save: false,
            reverse_tilt: BTreeMap::new(),
            reverse_tilt_enabled: true,
        }
    }

    /// The newest field this profile uses that schema 2 cannot hold, with the schema that
    /// brought it in; `None` when schema 2 holds the profile.
    pub fn newest_field(&self) -> Option<(&'static str, u32)> {
        if !self.reverse_tilt.is_empty() {
            Some(("reverse_tilt", 4))
        } else if !self.reverse_tilt_enabled {
            Some(("reverse_tilt_enabled", 4))
        } else if self.auto_save {
            Some(("auto_save", 3))
        } else {
            None
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Store {
            schema: SCHEMA_VERSION,
            next_id: 1,
            active: None,
            profiles: Vec::new(),
        }
    }
}

pub(super) fn not_found(id: ProfileId) -> Error {
    Error::NotFound(format!("no profile {id}"))
}

/// Why a profile name is unacceptable, if it is.
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(format!("a profile name has 1 to 64 characters, not {n}"));
    }
    if name.chars().any(char::is_control) {
        return Err("a profile name may not contain control characters".into());
    }
    if name.trim().is_empty() {
        return Err("a profile name may not be blank".into());
    }
    Ok(())
}

/// Why a key id is unacceptable, if it is.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 64 {
        return Err(format!("a key id has 1 to 64 bytes, not {}", key.len()));
    }
    if key.chars().any(char::is_control) {
        return Err("a key id may not contain control characters".into());
    }
    Ok(())
}

impl Store {
    pub fn get(&self, id: ProfileId) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    pub fn get_mut(&mut self, id: ProfileId) -> Option<&mut Profile> {
        self.profiles.iter_mut().find(|p| p.id == id)
    }

    /// The profile holding `name` (ignoring case), other than `except`.
    pub fn name_taken(&self, name: &str, except: Option<ProfileId>) -> Option<&Profile> {
        let lower = name.to_lowercase();
        self.profiles
            .iter()
            .find(|p| Some(p.id) != except && p.name.to_lowercase() == lower)
    }

    pub fn key_owner(&self, key: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.keys.iter().any(|k| k == key))
    }

    pub fn key_count(&self) -> usize {
        self.profiles.iter().map(|p| p.keys.len()).sum()
    }

    fn profile_mut(&mut self, id: ProfileId) -> Result<&mut Profile, Error> {
        self.get_mut(id).ok_or_else(|| not_found(id))
    }

    fn check_name_free(&self, name: &str, except: Option<ProfileId>) -> Result<(), Error> {
        check_name(name).map_err(Error::InvalidArgs)?;
        match self.name_taken(name, except) {
            Some(p) => Err(Error::AlreadyExists(format!(
                "a profile named {} exists already",
                quote(&p.name)
            ))),
            None => Ok(()),
        }
    }

    /// Add a profile; returns its id (never one used before).
    pub fn create(
        &mut self,
        name: String,
        positions: BTreeMap<String, f64>,
        max_profiles: usize,
    ) -> Result<ProfileId, Error> {
        self.check_name_free(&name, None)?;
        if self.profiles.len() >= max_profiles {
            return Err(Error::LimitReached(format!(
                "at most {max_profiles} profiles can be kept"
            )));
        }
        let id = self.take_id()?;
        self.profiles.push(Profile {
            positions,
            ..Profile::new(id, name)
        });
        Ok(id)
    }

    /// A new id: `next_id`, never handed out before.
    fn take_id(&mut self) -> Result<ProfileId, Error> {
        let id = ProfileId(self.next_id);
        self.next_id = self
            .next_id
            .checked_add(1)
            .ok_or_else(|| Error::LimitReached("no profile ids are left".into()))?;
        Ok(id)
    }

    pub fn rename(&mut self, id: ProfileId, name: String) -> Result<(), Error> {
        self.profile_mut(id)?;
        self.check_name_free(&name, Some(id))?;
        self.profile_mut(id)?.name = name;
        Ok(())
    }

    /// Update some positions (already checked against the axes).
    pub fn set_positions(
        &mut self,
        id: ProfileId,
        positions: Vec<(String, f64)>,
    ) -> Result<(), Error> {
        self.profile_mut(id)?.positions.extend(positions);
        Ok(())
    }

    pub fn replace_positions(
        &mut self,
        id: ProfileId,
        positions: BTreeMap<String, f64>,
    ) -> Result<(), Error> {
        self.profile_mut(id)?.positions = positions;
        Ok(())
    }

    pub fn bind_key(&mut self, id: ProfileId, key: String, max_keys: usize) -> Result<(), Error> {
        self.profile_mut(id)?;
        check_key(&key).map_err(Error::InvalidArgs)?;
        match self.key_owner(&key) {
            Some(p) if p.id == id => return Ok(()),
            Some(p) => {
                return Err(Error::KeyInUse(format!(
                    "key {} is bound to profile {}",
                    quote(&key),
                    quote(&p.name)
                )));
            }
            None => {}
        }
        if self.key_count() >= max_keys {
            return Err(Error::LimitReached(format!(
                "at most {max_keys} keys can be bound in all"
            )));
        }
        self.profile_mut(id)?.keys.push(key);
        Ok(())
    }

    pub fn unbind_key(&mut self, id: ProfileId, key: &str) -> Result<(), Error> {
        let p = self.profile_mut(id)?;
        let before = p.keys.len();
        p.keys.retain(|k| k != key);
        if p.keys.len() == before {
            return Err(Error::NotFound(format!(
                "key {} is not bound to profile {}",
                quote(key),
                quote(&p.name)
            )));
        }
        Ok(())
    }

    pub fn set_easy_exit(&mut self, id: ProfileId, enabled: bool) -> Result<(), Error> {
        self.profile_mut(id)?.easy_exit = enabled;
        Ok(())
    }

    pub fn set_auto_save(&mut self, id: ProfileId, enabled: bool) -> Result<(), Error> {
        self.profile_mut(id)?.auto_save = enabled;
        Ok(())
    }

    /// Replace the profile's reverse positions (already checked against the axes).
    pub fn set_reverse_tilt(
        &mut self,
        id: ProfileId,
        positions: BTreeMap<String, f64>,
    ) -> Result<(), Error> {
        self.profile_mut(id)?.reverse_tilt = positions;
        Ok(())
    }

    /// Keep some reverse positions (a hand adjustment in R), the others as they are.
    pub fn remember_reverse_tilt(
        &mut self,
        id: ProfileId,
        positions: Vec<(String, f64)>,
    ) -> Result<(), Error> {
        self.profile_mut(id)?.reverse_tilt.extend(positions);
        Ok(())
    }

    pub fn set_reverse_tilt_enabled(&mut self, id: ProfileId, enabled: bool) -> Result<(), Error> {
        self.profile_mut(id)?.reverse_tilt_enabled = enabled;
        Ok(())
    }

    /// The oldest schema that holds this store: 4 once a profile has reverse tilt settings,
    /// 3 once one uses AutoSave, else 2.
    pub fn schema_needed(&self) -> u32 {
        (self.profiles.iter())
            .filter_map(|p| p.newest_field())
            .map(|(_, schema)| schema)
            .fold(2, u32::max)
    }

    pub fn set_active(&mut self, id: ProfileId) -> Result<(), Error> {
        self.profile_mut(id)?;
        self.active = Some(id);
        Ok(())
    }

    /// Remove a profile (and its key bindings).
    pub fn delete(&mut self, id: ProfileId) -> Result<(), Error> {
        self.profile_mut(id)?;
        self.profiles.retain(|p| p.id != id);
        if self.active == Some(id) {
            self.active = None;
        }
        Ok(())
    }

    /// Import `items`, all or nothing, and return their ids in the order given. Every problem
    /// is collected first (the error names the most fundamental kind found and lists up to
    /// [`IMPORT_PROBLEMS_LISTED`] of them); nothing is clamped. On an error the store is
    /// unchanged.
    pub fn import(
        &mut self,
        items: Vec<ImportItem>,
        mode: ImportMode,
        axes: &[AxisConfig],
        reverse_axes: &[&str],
        max_profiles: usize,
        max_keys: usize,
    ) -> Result<Vec<ProfileId>, Error> {
        let mut problems: Vec<(Problem, String)> = Vec::new();
        let merge = mode == ImportMode::Merge;
        // Lower-cased name -> its index in `items`; key -> its index.
        let mut names: std::collections::HashMap<String, usize> = Default::default();
        let mut keys: std::collections::HashMap<&str, usize> = Default::default();
        let label = |i: usize, name: &str| format!("#{} {}", i + 1, quote(name));
        // Existing profiles an item updates in place (merge), by index.
        let mut updates: Vec<Option<ProfileId>> = Vec::with_capacity(items.len());
        // The keys each item's profile will have: those given, or those it keeps.
        let mut item_keys: Vec<&[String]> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = label(i, &item.name);
            let mut bad = |p: Problem, m: String| problems.push((p, format!("{at}: {m}")));
            let existing = if merge {
                self.name_taken(&item.name, None)
            } else {
                None
            };
            updates.push(existing.map(|p| p.id));
            let its_keys = match (&item.keys, existing) {
                (Some(k), _) => k.as_slice(),
                (None, Some(p)) => p.keys.as_slice(),
                (None, None) => &[],
            };
            item_keys.push(its_keys);
            if let Err(e) = check_name(&item.name) {
                bad(Problem::Invalid, e);
            } else if let Some(j) = names.insert(item.name.to_lowercase(), i) {
                bad(
                    Problem::Invalid,
                    format!("the name is given twice (also #{}, ignoring case)", j + 1),
                );
            }
            let mut own = HashSet::new();
            for k in its_keys {
                if let Err(e) = check_key(k) {
                    bad(Problem::Invalid, format!("key {}: {e}", quote(k)));
                } else if !own.insert(k.as_str()) {
                    bad(
                        Problem::Invalid,
                        format!("key {} is listed twice", quote(k)),
                    );
                } else if let Some(j) = keys.insert(k.as_str(), i) {
                    bad(
                        Problem::KeyInUse,
                        format!("key {} is also given to #{}", quote(k), j + 1),
                    );
                }
            }
            let reverse = item.reverse_tilt.iter().flatten();
            let given = item.positions.iter().flatten();
            let all = (given.map(|p| (p, false))).chain(reverse.map(|p| (p, true)));
            for ((axis, v), reversing) in all {
                let Some(ac) = axes.iter().find(|a| &a.name == axis) else {
                    bad(Problem::Invalid, format!("unknown axis {}", quote(axis)));
                    continue;
                };
                if reversing && !reverse_axes.contains(&axis.as_str()) {
                    let m = format!("reverse_tilt: {axis} does not tilt in reverse in this car");
                    bad(Problem::Invalid, m);
                    continue;
                }
                match super::check_position(ac, *v) {
                    Ok(()) => {}
                    Err(Error::OutOfRange(m)) => bad(Problem::Range, m),
                    Err(e) => bad(Problem::Invalid, e.message().to_string()),
                }
            }
        }
        // What stays: in a merge, the profiles no item updates.
        let kept: Vec<&Profile> = if merge {
            self.profiles
                .iter()
                .filter(|p| !updates.contains(&Some(p.id)))
                .collect()
        } else {
            Vec::new()
        };
        for p in &kept {
            for k in &p.keys {
                if let Some(&i) = keys.get(k.as_str()) {
                    problems.push((
                        Problem::KeyInUse,
                        format!(
                            "{}: key {} is bound to profile {}, which is kept",
                            label(i, &items[i].name),
                            quote(k),
                            quote(&p.name)
                        ),
                    ));
                }
            }
        }
        let total = kept.len() + items.len();
        if total > max_profiles {
            problems.push((
                Problem::Limit,
                format!(
                    "the import would make {total} profiles; at most {max_profiles} can be kept"
                ),
            ));
        }
        let total_keys = kept.iter().map(|p| p.keys.len()).sum::<usize>()
            + item_keys.iter().map(|k| k.len()).sum::<usize>();
        if total_keys > max_keys {
            problems.push((
                Problem::Limit,
                format!(
                    "the import would bind {total_keys} keys; at most {max_keys} can be bound in all"
                ),
            ));
        }
        if let Some(kind) = problems.iter().map(|(k, _)| *k).min() {
            let n = problems.len();
            let mut msg = if n == 1 {
                String::new()
            } else {
                format!("{n} problems: ")
            };
            let listed: Vec<&str> = problems
                .iter()
                .take(IMPORT_PROBLEMS_LISTED)
                .map(|(_, m)| m.as_str())
                .collect();
            msg.push_str(&listed.join("; "));
            if n > IMPORT_PROBLEMS_LISTED {
                msg.push_str(&format!("; and {} more", n - IMPORT_PROBLEMS_LISTED));
            }
            msg.push_str("; nothing was imported");
            return Err(match kind {
                Problem::Invalid => Error::InvalidArgs(msg),
                Problem::Range => Error::OutOfRange(msg),
                Problem::KeyInUse => Error::KeyInUse(msg),
                Problem::Limit => Error::LimitReached(msg),
            });
        }

        let mut next = self.clone();
        if !merge {
            next.profiles.clear();
            next.active = None;
        }
        let mut ids = Vec::with_capacity(items.len());
        for (item, update) in items.into_iter().zip(updates) {
            let id = match update {
                Some(id) => id,
                None => {
                    let id = next.take_id()?;
                    next.profiles.push(Profile::new(id, String::new()));
                    id
                }
            };
            let p = next.profile_mut(id)?;
            p.name = item.name;
            if let Some(on) = item.easy_exit {
                p.easy_exit = on;
            }
            if let Some(positions) = item.positions {
                p.positions = positions.into_iter().collect();
            }
            if let Some(keys) = item.keys {
                p.keys = keys;
            }
            if let Some(on) = item.auto_save {
                p.auto_save = on;
            }
            if let Some(tilt) = item.reverse_tilt {
                p.reverse_tilt = tilt.into_iter().collect();
            }
            if let Some(on) = item.reverse_tilt_enabled {
                p.reverse_tilt_enabled = on;
            }
            ids.push(id);
        }
        *self = next;
        Ok(ids)
    }

    /// Check a loaded store for consistency; an inconsistent store is treated as corrupt.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema != SCHEMA_VERSION {
            return Err(format!(
                "schema {} is not supported (this daemon reads schema {SCHEMA_VERSION})",
                self.schema
            ));
        }
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        for p in &self.profiles {
            // Not a number at all, or 0, is refused as the file is read.
            if p.id.get() >= self.next_id {
                return Err(format!("profile id \"{}\" is out of sequence", p.id));
            }
            if !ids.insert(p.id) {
                return Err(format!("profile id \"{}\" appears twice", p.id));
            }
            check_name(&p.name).map_err(|e| format!("profile {}: {e}", p.id))?;
            if !names.insert(p.name.to_lowercase()) {
                return Err(format!("profile name {:?} appears twice", p.name));
            }
            for k in &p.keys {
                check_key(k).map_err(|e| format!("profile {}: {e}", p.id))?;
                if !keys.insert(k.as_str()) {
                    return Err(format!("key {k:?} is bound twice"));
                }
            }
            if let Some((axis, v)) = p.positions.iter().find(|(_, v)| !v.is_finite()) {
                return Err(format!(
                    "profile {}: position {axis} = {v} is not finite",
                    p.id
                ));
            }
            if let Some((axis, v)) = p.reverse_tilt.iter().find(|(_, v)| !v.is_finite()) {
                return Err(format!(
                    "profile {}: reverse_tilt {axis} = {v} is not finite",
                    p.id
                ));
            }
        }
        if let Some(a) = &self.active
            && !ids.contains(a)
        {
            return Err(format!("active profile \"{a}\" does not exist"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: u64, name: &str) -> Profile {
        Profile::new(ProfileId(id), name.into())
    }

    #[test]
    fn names() {
        assert!(check_name("Anna").is_ok());
        assert!(check_name(&"é".repeat(64)).is_ok());
        assert!(check_name(&"é".repeat(65)).is_err());
        assert!(check_name("").is_err());
        assert!(check_name("  ").is_err());
        assert!(check_name("a\nb").is_err());
    }

    #[test]
    fn keys() {
        assert!(check_key("fob-1").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(65)).is_err());
        assert!(check_key("a\u{7}").is_err());
    }

    #[test]
    fn a_profile_id_is_a_canonical_nonzero_number() {
        assert_eq!(ProfileId::parse("1"), Some(ProfileId(1)));
        assert_eq!(ProfileId::parse("42"), Some(ProfileId(42)));
        for bad in [
            "",
            "0",
            "01",
            "-1",
            "+1",
            " 1",
            "1a",
            "x",
            "18446744073709551616",
        ] {
            assert_eq!(ProfileId::parse(bad), None, "{bad:?}");
        }
        // In the store file it is a string, as it always was; anything else is refused.
        let p: Profile = toml::from_str("id = \"7\"\nname = \"Anna\"\n").unwrap();
        assert_eq!(p.id, ProfileId(7));
        assert!(toml::to_string(&p).unwrap().contains("id = \"7\""));
        let e = toml::from_str::<Profile>("id = \"x\"\nname = \"Anna\"\n").unwrap_err();
        assert!(
            e.to_string().contains("profile id \"x\" is not a number"),
            "{e}"
        );
        assert!(toml::from_str::<Profile>("id = 7\nname = \"Anna\"\n").is_err());
    }

    #[test]
    fn validate_catches_inconsistencies() {
        let mut s = Store {
            next_id: 3,
            profiles: vec![profile(1, "Anna"), profile(2, "Ben")],
            ..Store::default()
        };
        assert!(s.validate().is_ok());
        s.profiles[1].name = "ANNA".into();
        assert!(s.validate().is_err());
        s.profiles[1].name = "Ben".into();
        s.next_id = 2;
        assert!(s.validate().is_err());
        s.next_id = 3;
        s.active = Some(ProfileId::new(7));
        assert!(s.validate().is_err());
        s.active = Some(ProfileId::new(2));
        s.profiles[0].keys = vec!["k".into()];
        s.profiles[1].keys = vec!["k".into()];
        assert!(s.validate().is_err());
    }

    #[test]
    fn toml_round_trip() {
        let mut s = Store {
            next_id: 2,
            active: Some(ProfileId::new(1)),
            profiles: vec![profile(1, "Anna")],
            ..Store::default()
        };
        s.profiles[0]
            .positions
            .insert("seat_position".into(), 120.5);
        s.profiles[0].keys.push("phone-a".into());
        let text = toml::to_string(&s).unwrap();
        let back: Store = toml::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
