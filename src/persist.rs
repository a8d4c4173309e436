//! The profile store on disk: `<state-dir>/profiles.toml`.
//!
//! Written atomically and durably (temp file, fsync, rename, fsync of the directory). A store
//! that cannot be read or does not validate is renamed aside to
//! `profiles.toml.corrupt-<unix-time>` and never overwritten in place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::core::Storage;
use crate::core::store::Store;

pub const FILE_NAME: &str = "profiles.toml";

const HEADER: &str =
    "# driverprofiled profile store. Written by the daemon; edit only while it is stopped.\n";

pub struct FileStorage {
    dir: PathBuf,
}

/// What loading found.
pub struct Loaded {
    pub store: Store,
    /// Where an unreadable store was moved to, if one was.
    pub renamed_to: Option<PathBuf>,
}

impl FileStorage {
    /// Use `dir`, creating it if needed.
    pub fn open(dir: &Path) -> io::Result<FileStorage> {
        fs::create_dir_all(dir)?;
        Ok(FileStorage {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Load the store. A missing file is an empty store; a corrupt one is renamed aside and an
    /// empty store returned. Fails only if a corrupt file cannot be moved out of the way (then
    /// starting would risk overwriting it).
    pub fn load(&self) -> io::Result<Loaded> {
        let path = self.path();
        let problem = match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    store: Store::default(),
                    renamed_to: None,
                });
            }
            Err(e) => format!("cannot read: {e}"),
            Ok(bytes) => match parse(&bytes) {
                Ok(store) => {
                    return Ok(Loaded {
                        store,
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
        let mut aside = self.dir.join(format!("{FILE_NAME}.corrupt-{secs}"));
        let mut n = 1;
        while aside.exists() {
            aside = self.dir.join(format!("{FILE_NAME}.corrupt-{secs}.{n}"));
            n += 1;
        }
        fs::rename(&path, &aside)?;
        sync_dir(&self.dir)?;
        tracing::error!(
            "profile store {} is unusable ({problem}); moved to {} and starting with no profiles",
            path.display(),
            aside.display()
        );
        Ok(Loaded {
            store: Store::default(),
            renamed_to: Some(aside),
        })
    }
}

fn parse(bytes: &[u8]) -> Result<Store, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let store: Store = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    store.validate()?;
    Ok(store)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for FileStorage {
    fn save(&mut self, store: &Store) -> Result<(), String> {
        let text = toml::to_string(store).map_err(|e| e.to_string())?;
        let tmp = self.dir.join(format!(".{FILE_NAME}.tmp"));
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
            fs::rename(&tmp, self.path())?;
            sync_dir(&self.dir)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("{}: {e}", self.path().display())
        })
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
        assert_eq!(loaded.store, store);
        assert!(loaded.renamed_to.is_none());
    }

    #[test]
    fn corrupt_store_is_renamed_aside_with_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let fs_ = FileStorage::open(dir.path()).unwrap();
        fs::write(fs_.path(), b"schema = 1\nnext_id = \"x").unwrap();
        let loaded = fs_.load().unwrap();
        assert_eq!(loaded.store, Store::default());
        let aside = loaded.renamed_to.unwrap();
        assert_eq!(fs::read(&aside).unwrap(), b"schema = 1\nnext_id = \"x");
        assert!(!fs_.path().exists());
    }
}
