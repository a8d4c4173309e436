//! State on disk, in the state directory:
//! - `profiles.toml`: the profile store (schema 2, or 3 once a profile uses AutoSave or its
//!   reverse tilt settings; see [`store_file`]);
//! - `easy-exit.toml`: whether the car is retracted, and the positions to restore without a
//!   profile. Kept apart so that the profile store's schema does not change for it (an older
//!   daemon after an OTA rollback still reads the profiles, and ignores this file).
//!
//! Files are written atomically and durably (temp file, fsync, rename, fsync of the directory).
//! A corrupt file (not TOML, or a schema this daemon knows that does not validate) is renamed
//! aside to `<name>.corrupt-<unix-time>` and never overwritten in place; a profile store of a
//! newer schema is never written, renamed or removed (see [`FileStorage::load_store`]).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::core::store::{SCHEMA_VERSION, Store};
use crate::core::{EasyExitState, ReverseTiltState, SaveError, Storage};

mod store_file;
pub use store_file::{StateReport, StoreFile, Unreadable, check_state};

pub const FILE_NAME: &str = "profiles.toml";
pub const EASY_EXIT_FILE: &str = "easy-exit.toml";
/// Where tilted mirrors were before reversing (a file of its own, like easy exit's).
pub const REVERSE_TILT_FILE: &str = "reverse-tilt.toml";

const HEADER: &str =
    "# driverprofiled state. Written by the daemon; edit only while it is stopped.\n";

/// Why state could not be written.
#[derive(Debug)]
pub enum WriteError {
    /// The file may not be written at all, because of what was found at start.
    Frozen(String),
    /// Writing, syncing or renaming `path` failed.
    Io { path: PathBuf, source: io::Error },
    /// The state could not be put into TOML (a value TOML cannot hold).
    Encode(toml::ser::Error),
}

impl WriteError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
        move |source| WriteError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The I/O error's kind (a full disk, a read-only file system, ...), if it is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            WriteError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Frozen(why) => f.write_str(why),
            WriteError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            WriteError::Encode(e) => write!(f, "cannot encode the state: {e}"),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Frozen(_) => None,
            WriteError::Io { source, .. } => Some(source),
            WriteError::Encode(e) => Some(e),
        }
    }
}

pub struct FileStorage {
    dir: PathBuf,
    /// Why the easy-exit state may not be written (it could be neither read nor moved aside).
    easy_exit_frozen: Option<String>,
    /// Why the reverse-tilt state may not be written (likewise): then no mirror tilts.
    reverse_tilt_frozen: Option<String>,
    /// The `[units]` written with the store: each axis' unit in the config.
    units: BTreeMap<String, String>,
}

/// What loading found.
pub struct Loaded<T> {
    pub value: T,
    /// Where an unreadable file was moved to, if one was.
    pub renamed_to: Option<PathBuf>,
}

/// What loading the profile store at start found, and did about it.
#[derive(Debug)]
pub struct LoadedStore {
    /// The profiles to serve (none when the file is not served).
    pub store: Store,
    /// `Manager.StoreStatus`: "" when the store was loaded as found; else what was done.
    pub status: String,
    /// Why the store must not be written (then `Manager.StorageError` says so): served
    /// read-only, or not served and left untouched. The caller hands it to the core
    /// (`Core::freeze_store`), the one place that refuses changes to a frozen store.
    pub frozen: Option<String>,
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
            easy_exit_frozen: None,
            reverse_tilt_frozen: None,
            units: BTreeMap::new(),
        }
    }

    /// Write the units of `cfg`'s axes with the store from now on (entries for axes the
    /// config no longer has are kept from the store as loaded).
    pub fn set_units(&mut self, cfg: &Config) {
        for a in &cfg.axes {
            self.units
                .insert(a.name.clone(), a.unit.as_str().to_string());
        }
    }

    /// Write no easy-exit state from now on, saying `why` to whoever tries.
    pub fn freeze_easy_exit(&mut self, why: String) {
        self.easy_exit_frozen = Some(why);
    }

    /// Write no reverse-tilt state from now on (so no mirror tilts), saying `why`.
    pub fn freeze_reverse_tilt(&mut self, why: String) {
        self.reverse_tilt_frozen = Some(why);
    }

    /// Whether state can be written here: creates the directory if needed, then writes,
    /// syncs and removes a probe file. A daemon whose state cannot be written runs on (the UI
    /// keeps working and Stop always works) but says so.
    pub fn check(&self) -> Result<(), WriteError> {
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
            WriteError::io(&self.dir)(e)
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Load the profile store at start, for `cfg`, and deal with what is found (each case is
    /// logged and told in [`LoadedStore::status`]):
    /// - none: no profiles;
    /// - schema 2 or 3: served as it is, unless an axis' stored unit differs from the config's:
    ///   then it is not served and left untouched (frozen) until the config or the file is
    ///   put right;
    /// - schema 1: migrated: its bytes are first copied durably to `profiles.toml.schema1.bak`
    ///   (an existing backup is never overwritten: the new one gets a suffix), then schema 2
    ///   (the oldest that holds it) is written atomically with the config's units. Should that fail, the profiles are
    ///   served from the old file, which is not written (frozen);
    /// - a newer schema this daemon can read: served read-only (frozen), never written,
    ///   renamed or removed; one it cannot read: not served, left untouched (frozen);
    /// - a file that cannot be read (I/O error): not served, left untouched (frozen);
    /// - a corrupt file (not TOML, or an old or current schema that does not validate):
    ///   renamed aside to `profiles.toml.corrupt-<unix-time>`; if even that fails, not
    ///   served and frozen.
    pub fn load_store(&mut self, cfg: &Config) -> LoadedStore {
        self.set_units(cfg);
        let path = self.path();
        let shown = path.display().to_string();
        let empty = |status: String, frozen: Option<String>| LoadedStore {
            store: Store::default(),
            status,
            frozen,
        };
        match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => empty(String::new(), None),
            Err(e) => {
                let why = format!(
                    "{shown} cannot be read ({e}): running without profiles, leaving it \
                     untouched and writing no profiles until a restart"
                );
                tracing::error!("{why}");
                empty(why.clone(), Some(why))
            }
            Ok(bytes) => match store_file::parse(&shown, &bytes) {
                Ok(file) => self.take(file, &bytes, cfg),
                Err(Unreadable::Newer { schema, why }) => {
                    let why = format!(
                        "{why}; running without profiles and leaving it untouched (a \
                         driverprofiled that writes schema {schema} or later reads it)"
                    );
                    tracing::error!("{why}");
                    empty(why.clone(), Some(why))
                }
                Err(Unreadable::Corrupt(problem)) => match self.move_aside(FILE_NAME) {
                    Ok(aside) => {
                        tracing::error!(
                            "{shown} is unusable ({problem}); moved to {} and starting without it",
                            aside.display()
                        );
                        empty(
                            format!(
                                "{shown} was unusable ({problem}) and was moved to {}",
                                aside.display()
                            ),
                            None,
                        )
                    }
                    Err(e) => {
                        let why = format!(
                            "{shown} is unusable ({problem}) and cannot be moved aside ({e}); \
                             running without profiles and writing none until a restart"
                        );
                        tracing::error!("{why}");
                        empty(why.clone(), Some(why))
                    }
                },
            },
        }
    }

    /// Serve a store file that parsed: check its units, migrate schema 1, serve a newer one
    /// read-only.
    fn take(&mut self, file: StoreFile, bytes: &[u8], cfg: &Config) -> LoadedStore {
        let shown = self.path().display().to_string();
        let mismatches = store_file::unit_mismatches(&file.units, cfg);
        if !mismatches.is_empty() {
            let why = mismatches
                .iter()
                .map(|m| store_file::unit_mismatch_message(&shown, m))
                .collect::<Vec<_>>()
                .join("; ");
            tracing::error!("{why}");
            return LoadedStore {
                store: Store::default(),
                status: why.clone(),
                frozen: Some(why),
            };
        }
        // Units of axes the config no longer has are kept (the positions are).
        for (axis, unit) in &file.units {
            self.units
                .entry(axis.clone())
                .or_insert_with(|| unit.clone());
        }
        if file.is_newer() {
            let why = format!(
                "read-only: {shown} was written by a newer driverprofiled (schema {}); this one \
                 reads schemas up to {SCHEMA_VERSION}. Its profiles can be recalled but not changed, \
                 and the file is left as it is",
                file.schema
            );
            tracing::warn!("{why}");
            return LoadedStore {
                store: file.store,
                status: format!(
                    "{shown} was written by a newer driverprofiled (schema {}): served read-only",
                    file.schema
                ),
                frozen: Some(why),
            };
        }
        // Schema 3 only adds to schema 2: both are served as they are.
        if file.schema >= 2 {
            return LoadedStore {
                store: file.store,
                status: String::new(),
                frozen: None,
            };
        }
        let old = file.schema;
        match self.migrate(old, bytes, &file.store) {
            Ok(backup) => {
                let status = format!(
                    "migrated from schema {old}; the old file is kept as {}",
                    backup.display()
                );
                tracing::info!("{shown}: {status}");
                LoadedStore {
                    store: file.store,
                    status,
                    frozen: None,
                }
            }
            Err(e) => {
                let why = format!(
                    "{shown} (schema {old}) could not be migrated to schema 2 \
                     ({e}); its profiles are served but not changed until a restart migrates it"
                );
                tracing::error!("{why}");
                LoadedStore {
                    store: file.store,
                    status: why.clone(),
                    frozen: Some(why),
                }
            }
        }
    }

    /// Keep `bytes` (the store of schema `old`) durably as a backup that overwrites nothing,
    /// then write `store` in this daemon's schema; the backup's path.
    fn migrate(&mut self, old: u32, bytes: &[u8], store: &Store) -> Result<PathBuf, WriteError> {
        let base = format!("{FILE_NAME}.schema{old}.bak");
        let mut n = 0;
        let backup = loop {
            let name = match n {
                0 => base.clone(),
                n => format!("{base}.{n}"),
            };
            let path = self.dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let r = f.write_all(bytes).and_then(|()| f.sync_all());
                    if let Err(e) = r {
                        drop(f);
                        let _ = fs::remove_file(&path);
                        return Err(WriteError::io(&path)(e));
                    }
                    break path;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(WriteError::io(&path)(e)),
            }
        };
        sync_dir(&self.dir).map_err(WriteError::io(&self.dir))?;
        self.write_store(store)?;
        Ok(backup)
    }

    /// Rename `name` aside to `<name>.corrupt-<unix-time>` (with a suffix if that exists).
    fn move_aside(&self, name: &str) -> io::Result<PathBuf> {
        let path = self.dir.join(name);
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
        Ok(aside)
    }

    /// Load the easy-exit state; see [`FileStorage::load_file`].
    pub fn load_easy_exit(&self) -> io::Result<Loaded<EasyExitState>> {
        self.load_file(EASY_EXIT_FILE, |s: &EasyExitState| s.validate())
    }

    /// Load the reverse-tilt state; see [`FileStorage::load_file`].
    pub fn load_reverse_tilt(&self) -> io::Result<Loaded<ReverseTiltState>> {
        self.load_file(REVERSE_TILT_FILE, |s: &ReverseTiltState| s.validate())
    }

    /// Load `name`. A missing file is the default; a corrupt one is renamed aside and the
    /// default returned. Fails only if a corrupt file cannot be moved out of the way (then
    /// starting would risk overwriting it).
    fn load_file<T: DeserializeOwned + Default>(
        &self,
        name: &str,
        validate: impl Fn(&T) -> Result<(), String>,
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
            Ok(bytes) => match parse(&bytes, &validate) {
                Ok(value) => {
                    return Ok(Loaded {
                        value,
                        renamed_to: None,
                    });
                }
                Err(e) => e,
            },
        };
        let aside = self.move_aside(name)?;
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
    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), WriteError> {
        let frozen = match name {
            EASY_EXIT_FILE => &self.easy_exit_frozen,
            REVERSE_TILT_FILE => &self.reverse_tilt_frozen,
            _ => &None,
        };
        if let Some(why) = frozen {
            return Err(WriteError::Frozen(why.clone()));
        }
        let text = toml::to_string(value).map_err(WriteError::Encode)?;
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
            WriteError::io(&path)(e)
        })
    }

    /// Write the profile store in the oldest schema that holds it (2, or 3 with AutoSave or
    /// reverse tilt settings), with the config's units.
    fn write_store(&self, store: &Store) -> Result<(), WriteError> {
        let written = store_file::Written {
            schema: store.schema_needed(),
            next_id: store.next_id,
            active: &store.active,
            units: &self.units,
            profiles: &store.profiles,
        };
        self.write(FILE_NAME, &written)
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
    fn save(&mut self, store: &Store) -> Result<(), SaveError> {
        Ok(self.write_store(store)?)
    }

    fn save_easy_exit(&mut self, state: &EasyExitState) -> Result<(), SaveError> {
        Ok(self.write(EASY_EXIT_FILE, state)?)
    }

    fn save_reverse_tilt(&mut self, state: &ReverseTiltState) -> Result<(), SaveError> {
        Ok(self.write(REVERSE_TILT_FILE, state)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        crate::config::builtin().unwrap()
    }

    fn storage() -> (tempfile::TempDir, FileStorage) {
        let dir = tempfile::tempdir().unwrap();
        let fs_ = FileStorage::open(dir.path()).unwrap();
        (dir, fs_)
    }

    /// Every file in the directory with its bytes.
    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }

    const V1: &str = "schema = 1\nnext_id = 3\nactive = \"2\"\n\
        [[profile]]\nid = \"2\"\nname = \"Anna\"\nkeys = [\"fob-1\"]\n\
        [profile.positions]\nseat_position = 120.0\nlumbar = 3.0\n";

    #[test]
    fn save_then_load_round_trips() {
        let (_dir, mut fs_) = storage();
        fs_.set_units(&cfg());
        let mut store = Store {
            next_id: 4,
            ..Store::default()
        };
        store
            .create(
                "Anna".into(),
                BTreeMap::from([("seat_position".into(), 1.0)]),
                9,
            )
            .unwrap();
        fs_.save(&store).unwrap();
        let text = fs::read_to_string(fs_.path()).unwrap();
        assert!(text.contains("schema = 2\n"), "{text}");
        assert!(text.contains("[units]\n"), "{text}");
        assert!(text.contains("seat_position = \"mm\""), "{text}");
        assert!(text.contains("wheel_tilt = \"percent\""), "{text}");
        let loaded = fs_.load_store(&cfg());
        assert_eq!(loaded.store, store);
        assert_eq!((loaded.status.as_str(), loaded.frozen), ("", None));

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
        assert!(FileStorage::at(&dir.path().join("new")).check().is_ok());
        assert!(dir.path().join("new").is_dir(), "created");
        // A file where the directory should be: never writable, whoever runs the test.
        let blocked = dir.path().join("blocked");
        fs::write(&blocked, b"").unwrap();
        let e = FileStorage::at(&blocked.join("state")).check().unwrap_err();
        // The I/O error is kept, not only its text.
        assert_eq!(e.io_kind(), Some(io::ErrorKind::NotADirectory), "{e}");
        assert!(
            e.to_string().starts_with(&blocked.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn corrupt_store_is_renamed_aside_with_its_bytes() {
        let (_dir, mut fs_) = storage();
        fs::write(fs_.path(), b"schema = 1\nnext_id = \"x").unwrap();
        let loaded = fs_.load_store(&cfg());
        assert_eq!(loaded.store, Store::default());
        assert_eq!(loaded.frozen, None);
        let aside = loaded.status.rsplit(" was moved to ").next().unwrap();
        assert!(
            aside.contains("profiles.toml.corrupt-"),
            "{}",
            loaded.status
        );
        assert_eq!(fs::read(aside).unwrap(), b"schema = 1\nnext_id = \"x");
        assert!(!fs_.path().exists());
        fs_.save(&Store::default()).unwrap();
    }

    #[test]
    fn schema_1_is_migrated_with_a_backup_that_overwrites_nothing() {
        let (dir, mut fs_) = storage();
        fs::write(dir.path().join("profiles.toml.schema1.bak"), b"older").unwrap();
        fs::write(fs_.path(), V1).unwrap();
        let loaded = fs_.load_store(&cfg());
        assert_eq!(loaded.frozen, None);
        assert_eq!(loaded.store.profiles[0].name, "Anna");
        let backup = dir.path().join("profiles.toml.schema1.bak.1");
        assert_eq!(
            loaded.status,
            format!(
                "migrated from schema 1; the old file is kept as {}",
                backup.display()
            )
        );
        assert_eq!(fs::read(&backup).unwrap(), V1.as_bytes());
        assert_eq!(
            fs::read(dir.path().join("profiles.toml.schema1.bak")).unwrap(),
            b"older"
        );
        let text = fs::read_to_string(fs_.path()).unwrap();
        assert!(
            text.contains("schema = 2\n") && text.contains("[units]"),
            "{text}"
        );
        // What was written loads as it is, with the same profiles.
        let again = FileStorage::at(dir.path()).load_store(&cfg());
        assert_eq!((again.store, again.status), (loaded.store, String::new()));
    }

    #[test]
    fn a_readable_newer_schema_is_served_read_only_and_never_written() {
        let (_dir, mut fs_) = storage();
        let text = V1.replace("schema = 1", "schema = 5\nfuture = true")
            + "[units]\nseat_position = \"mm\"\n";
        fs::write(fs_.path(), &text).unwrap();
        let loaded = fs_.load_store(&cfg());
        assert_eq!(loaded.store.profiles.len(), 1);
        let why = loaded.frozen.unwrap();
        assert!(why.starts_with("read-only: "), "{why}");
        assert!(why.contains("newer driverprofiled (schema 5); this one reads schemas up to 4"));
        assert!(
            loaded.status.contains("served read-only"),
            "{}",
            loaded.status
        );
        // Loading wrote nothing; the core refuses changes (`Core::freeze_store`).
        // The easy-exit state is a file of its own: still written.
        fs_.save_easy_exit(&EasyExitState::default()).unwrap();
        assert_eq!(fs::read_to_string(fs_.path()).unwrap(), text);
    }

    #[test]
    fn an_unreadable_newer_schema_is_left_untouched() {
        let (dir, mut fs_) = storage();
        fs::write(fs_.path(), "schema = 7\nnext_id = [1]\n").unwrap();
        let before = files(dir.path());
        let loaded = fs_.load_store(&cfg());
        assert_eq!(loaded.store, Store::default());
        assert!(loaded.status.contains("schema 7"), "{}", loaded.status);
        assert!(loaded.status.contains("untouched"), "{}", loaded.status);
        assert_eq!(loaded.frozen.as_deref(), Some(loaded.status.as_str()));
        assert_eq!(files(dir.path()), before);
    }

    #[test]
    fn a_unit_that_differs_freezes_the_store_untouched() {
        let (dir, mut fs_) = storage();
        let text = V1.replace("schema = 1", "schema = 2")
            + "[units]\nseat_position = \"deg\"\nlumbar = \"mm\"\n";
        fs::write(fs_.path(), &text).unwrap();
        let before = files(dir.path());
        let loaded = fs_.load_store(&cfg());
        assert_eq!(loaded.store, Store::default(), "not served");
        let why = loaded.frozen.unwrap();
        assert!(
            why.contains("seat_position in deg but the config says mm"),
            "{why}"
        );
        assert_eq!(files(dir.path()), before);
    }

    #[test]
    fn units_of_axes_the_config_no_longer_has_are_kept() {
        let (_dir, mut fs_) = storage();
        let text = V1.replace("schema = 1", "schema = 2")
            + "[units]\nseat_position = \"mm\"\nlumbar = \"mm\"\n";
        fs::write(fs_.path(), &text).unwrap();
        let loaded = fs_.load_store(&cfg());
        assert_eq!(loaded.frozen, None);
        fs_.save(&loaded.store).unwrap();
        let written = fs::read_to_string(fs_.path()).unwrap();
        assert!(written.contains("lumbar = \"mm\""), "{written}");
        assert!(written.contains("wheel_tilt = \"percent\""), "{written}");
    }
}
