//! State on disk, in the state directory:
//! - `profiles.toml`: the profile store (schema 2, see [`store_file`]);
//! - `easy-exit.toml`: whether the car is retracted, and the positions to restore without a
//!   profile. Kept apart so that the profile store's schema does not change for it (an older
//!   daemon after an OTA rollback still reads the profiles, and ignores this file).
//!
//! Files are written atomically and durably (temp file, fsync, rename, fsync of the directory).
//! A file that cannot be read or does not validate is renamed aside to
//! `<name>.corrupt-<unix-time>` and never overwritten in place.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::core::store::{SCHEMA_VERSION, Store};
use crate::core::{EasyExitState, Storage};

mod store_file;
pub use store_file::{StateReport, StoreFile, Unreadable, check_state};

pub const FILE_NAME: &str = "profiles.toml";
pub const EASY_EXIT_FILE: &str = "easy-exit.toml";

const HEADER: &str =
    "# driverprofiled state. Written by the daemon; edit only while it is stopped.\n";

pub struct FileStorage {
    dir: PathBuf,
    /// Why nothing may be written (a store that could not be read must not be overwritten).
    frozen: Option<String>,
    /// The `[units]` written with the store: each axis' unit in the config.
    units: BTreeMap<String, String>,
}

/// What loading found.
pub struct Loaded<T> {
    pub value: T,
    /// Where an unreadable file was moved to, if one was.
    pub renamed_to: Option<PathBuf>,
}

impl FileStorage {
    /// Use `dir`, creating it if needed.
    pub fn open(dir: &Path) -> io::Result<FileStorage> {
        fs::create_dir_all(dir)?;
        Ok(FileStorage::at(dir))
    }

    /// Use `dir` as it is; [`FileStorage::check`] says whether it can be written.
    pub fn at(dir: &Path) -> FileStorage {
        FileStorage {
            dir: dir.to_path_buf(),
            frozen: None,
            units: BTreeMap::new(),
        }
    }

    /// Write the units of `cfg`'s axes with the store from now on (kept for axes the config
    /// no longer has, from the store as loaded).
    pub fn set_units(&mut self, cfg: &Config) {
        for a in &cfg.axes {
            self.units
                .insert(a.name.clone(), a.unit.as_str().to_string());
        }
    }

    /// Write nothing from now on, saying `why` to whoever tries.
    pub fn freeze(&mut self, why: String) {
        self.frozen = Some(why);
    }

    /// Whether state can be written here: creates the directory if needed, then writes,
    /// syncs and removes a probe file. A daemon whose state cannot be written runs on (the UI
    /// keeps working and Stop always works) but says so.
    pub fn check(&self) -> Result<(), String> {
        let probe = self.dir.join(".write-check");
        let r = (|| -> io::Result<()> {
            fs::create_dir_all(&self.dir)?;
            let mut f = File::create(&probe)?;
            f.write_all(b"ok\n")?;
            f.sync_all()?;
            fs::remove_file(&probe)
        })();
        r.map_err(|e| {
            let _ = fs::remove_file(&probe);
            format!(
                "the state directory {} cannot be written: {e}",
                self.dir.display()
            )
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Load the profile store; see [`FileStorage::load_file`].
    pub fn load(&self) -> io::Result<Loaded<Store>> {
        let shown = self.path().display().to_string();
        self.load_with(FILE_NAME, |bytes| {
            store_file::parse(&shown, bytes)
                .map(|f| f.store)
                .map_err(|e| e.message().to_string())
        })
    }

    /// Load the easy-exit state; see [`FileStorage::load_file`].
    pub fn load_easy_exit(&self) -> io::Result<Loaded<EasyExitState>> {
        self.load_file(EASY_EXIT_FILE, |s: &EasyExitState| s.validate())
    }

    /// Load `name`. A missing file is the default; a corrupt one is renamed aside and the
    /// default returned. Fails only if a corrupt file cannot be moved out of the way (then
    /// starting would risk overwriting it).
    fn load_file<T: DeserializeOwned + Default>(
        &self,
        name: &str,
        validate: impl Fn(&T) -> Result<(), String>,
    ) -> io::Result<Loaded<T>> {
        self.load_with(name, |bytes| parse(bytes, &validate))
    }

    fn load_with<T: Default>(
        &self,
        name: &str,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> io::Result<Loaded<T>> {
        let path = self.dir.join(name);
        let problem = match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    value: T::default(),
                    renamed_to: None,
                });
            }
            Err(e) => format!("cannot read: {e}"),
            Ok(bytes) => match parse(&bytes) {
                Ok(value) => {
                    return Ok(Loaded {
                        value,
                        renamed_to: None,
                    });
                }
                Err(e) => e,
            },
        };
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut aside = self.dir.join(format!("{name}.corrupt-{secs}"));
        let mut n = 1;
        while aside.exists() {
            aside = self.dir.join(format!("{name}.corrupt-{secs}.{n}"));
            n += 1;
        }
        fs::rename(&path, &aside)?;
        sync_dir(&self.dir)?;
        tracing::error!(
            "{} is unusable ({problem}); moved to {} and starting without it",
            path.display(),
            aside.display()
        );
        Ok(Loaded {
            value: T::default(),
            renamed_to: Some(aside),
        })
    }

    /// Write `value` to `name` atomically and durably.
    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), String> {
        if let Some(why) = &self.frozen {
            return Err(why.clone());
        }
        let text = toml::to_string(value).map_err(|e| e.to_string())?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(HEADER.as_bytes())?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("{}: {e}", path.display())
        })
    }
}

fn parse<T: DeserializeOwned>(
    bytes: &[u8],
    validate: impl Fn(&T) -> Result<(), String>,
) -> Result<T, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let value: T = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    validate(&value)?;
    Ok(value)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for FileStorage {
    fn save(&mut self, store: &Store) -> Result<(), String> {
        let written = store_file::Written {
            schema: SCHEMA_VERSION,
            next_id: store.next_id,
            active: &store.active,
            units: &self.units,
            profiles: &store.profiles,
        };
        self.write(FILE_NAME, &written)
    }

    fn save_easy_exit(&mut self, state: &EasyExitState) -> Result<(), String> {
        self.write(EASY_EXIT_FILE, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut fs_ = FileStorage::open(dir.path()).unwrap();
        let store = Store {
            next_id: 4,
            ..Store::default()
        };
        fs_.save(&store).unwrap();
        let loaded = fs_.load().unwrap();
        assert_eq!(loaded.value, store);
        assert!(loaded.renamed_to.is_none());

        let mut ee = EasyExitState {
            active: true,
            ..EasyExitState::default()
        };
        ee.pre_retract.insert("seat_position".into(), 130.0);
        fs_.save_easy_exit(&ee).unwrap();
        assert_eq!(fs_.load_easy_exit().unwrap().value, ee);
    }

    #[test]
    fn check_finds_a_directory_that_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(FileStorage::at(&dir.path().join("new")).check(), Ok(()));
        assert!(dir.path().join("new").is_dir(), "created");
        // A file where the directory should be: never writable, whoever runs the test.
        let blocked = dir.path().join("blocked");
        fs::write(&blocked, b"").unwrap();
        let e = FileStorage::at(&blocked.join("state")).check().unwrap_err();
        assert!(e.contains("cannot be written"), "{e}");
    }

    #[test]
    fn corrupt_store_is_renamed_aside_with_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let fs_ = FileStorage::open(dir.path()).unwrap();
        fs::write(fs_.path(), b"schema = 1\nnext_id = \"x").unwrap();
        let loaded = fs_.load().unwrap();
        assert_eq!(loaded.value, Store::default());
        let aside = loaded.renamed_to.unwrap();
        assert_eq!(fs::read(&aside).unwrap(), b"schema = 1\nnext_id = \"x");
        assert!(!fs_.path().exists());
    }
}
