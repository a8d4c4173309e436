//! The persisted profile store: data model and its validation (no I/O here).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// Schema version written into `profiles.toml`.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub schema: u32,
    /// Next profile id to hand out: ids are never reused.
    pub next_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    #[serde(default, rename = "profile")]
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default = "default_true")]
    pub easy_exit: bool,
    #[serde(default)]
    pub positions: BTreeMap<String, f64>,
}

fn default_true() -> bool {
    true
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
    pub fn get(&self, id: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Profile> {
        self.profiles.iter_mut().find(|p| p.id == id)
    }

    /// The profile holding `name` (ignoring case), other than `except`.
    pub fn name_taken(&self, name: &str, except: Option<&str>) -> Option<&Profile> {
        let lower = name.to_lowercase();
        self.profiles
            .iter()
            .find(|p| Some(p.id.as_str()) != except && p.name.to_lowercase() == lower)
    }

    pub fn key_owner(&self, key: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.keys.iter().any(|k| k == key))
    }

    pub fn key_count(&self) -> usize {
        self.profiles.iter().map(|p| p.keys.len()).sum()
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
            let n: u64 =
                p.id.parse()
                    .map_err(|_| format!("profile id {:?} is not a number", p.id))?;
            if n == 0 || n >= self.next_id || p.id != n.to_string() {
                return Err(format!("profile id {:?} is out of sequence", p.id));
            }
            if !ids.insert(p.id.as_str()) {
                return Err(format!("profile id {:?} appears twice", p.id));
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
        }
        if let Some(a) = &self.active
            && !ids.contains(a.as_str())
        {
            return Err(format!("active profile {a:?} does not exist"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: &str, name: &str) -> Profile {
        Profile {
            id: id.into(),
            name: name.into(),
            keys: vec![],
            easy_exit: true,
            positions: BTreeMap::new(),
        }
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
    fn validate_catches_inconsistencies() {
        let mut s = Store {
            next_id: 3,
            profiles: vec![profile("1", "Anna"), profile("2", "Ben")],
            ..Store::default()
        };
        assert!(s.validate().is_ok());
        s.profiles[1].name = "ANNA".into();
        assert!(s.validate().is_err());
        s.profiles[1].name = "Ben".into();
        s.next_id = 2;
        assert!(s.validate().is_err());
        s.next_id = 3;
        s.active = Some("7".into());
        assert!(s.validate().is_err());
        s.active = Some("2".into());
        s.profiles[0].keys = vec!["k".into()];
        s.profiles[1].keys = vec!["k".into()];
        assert!(s.validate().is_err());
    }

    #[test]
    fn toml_round_trip() {
        let mut s = Store {
            next_id: 2,
            active: Some("1".into()),
            profiles: vec![profile("1", "Anna")],
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
