//! The D-Bus interface types. Methods take `&self`, check what can be checked without state,
//! and forward to the core over a channel; property reads come from the latest [`View`].
//! No lock is held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::wire::Signature;
use zbus::{Connection, ObjectPath, OwnedObjectPath, OwnedVariant, Variant, interface};

use driverprofiled_api::{Gear as WireGear, path as paths, signal};

use super::error::Error;
use super::{inhibit, props};
use crate::access::{Access, Roles};
use crate::config::{AxisConfig, Config, VehicleSource};
use crate::core::store::Profile as StoredProfile;
use crate::core::view::{AxisView, View};
use crate::core::{self, AxisId, ProfileId, Reply, Request, Signal, quote};
use crate::engine::Call;
use crate::names;

/// What every interface object shares: the way to the core, the latest view, the config, the
/// role check.
#[derive(Clone)]
pub struct Shared {
    pub calls: mpsc::Sender<Call>,
    pub view: Arc<RwLock<View>>,
    /// The config the daemon started with. The edge reads only what a reload may not change
    /// (the axes, the vehicle source, access, the key geometry: `Core::reconfigure` refuses a
    /// change to any of them), so this copy never goes stale; everything a reload may change
    /// is the core's and reaches the edge in the view.
    pub cfg: Arc<Config>,
    pub access: Arc<Access>,
}

impl Shared {
    /// Ok if the caller holds one of the roles `need` for `method`; else AccessDenied.
    /// Every method that changes anything calls it first, before looking at its arguments.
    async fn allow(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        method: &str,
        need: Roles,
    ) -> Result<(), Error> {
        Ok(self.access.check(conn, Some(hdr), method, need).await?)
    }

    pub(super) async fn call(&self, request: Request) -> Result<Reply, Error> {
        let (reply, rx) = oneshot::channel();
        let gone = || Error::Core(core::Error::Failed("the daemon is shutting down".into()));
        self.calls
            .send(Call { request, reply })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?.map_err(Error::Core)
    }

    /// Read the view; a poisoned lock still holds a complete view (it is replaced whole).
    pub fn read<T>(&self, f: impl FnOnce(&View) -> T) -> T {
        let guard = self.view.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }
}

fn path(p: &str) -> OwnedObjectPath {
    OwnedObjectPath::from(ObjectPath::from_string_unchecked(p.to_string()))
}

fn paths_of(v: &[String]) -> Vec<OwnedObjectPath> {
    v.iter().map(|p| path(p)).collect()
}

/// zbus hands a method that takes no arguments whatever a call carried: refuse the call
/// instead (`Delete s "junk"` must not delete).
fn no_args(hdr: &Header<'_>) -> Result<(), Error> {
    match hdr.signature() {
        Signature::Unit => Ok(()),
        s => Err(Error::invalid_args(format!(
            "this method takes no arguments, not {}",
            quote(&s.to_string())
        ))),
    }
}

/// The profile id an object path names; anything else is not found.
fn profile_id(p: &ObjectPath<'_>) -> Result<ProfileId, Error> {
    paths::profile_id(p.as_str())
        .and_then(ProfileId::parse)
        .ok_or_else(|| {
            Error::Core(core::Error::NotFound(format!(
                "{} is not a profile",
                quote(p.as_str())
            )))
        })
}

pub struct Manager {
    pub shared: Shared,
}

impl Manager {
    /// What ImportProfiles and ImportProfilesEx share once the profiles are read.
    async fn import(
        &self,
        profiles: Vec<core::store::ImportItem>,
        mode: &str,
        dry_run: bool,
    ) -> Result<Vec<OwnedObjectPath>, Error> {
        let mode = match driverprofiled_api::ImportMode::parse(mode) {
            Some(driverprofiled_api::ImportMode::Replace) => core::store::ImportMode::Replace,
            Some(driverprofiled_api::ImportMode::Merge) => core::store::ImportMode::Merge,
            None => {
                return Err(Error::invalid_args(format!(
                    "unknown mode {}: \"replace\" or \"merge\"",
                    quote(mode)
                )));
            }
        };
        let request = Request::ImportProfiles {
            profiles,
            mode,
            dry_run,
        };
        match self.shared.call(request).await? {
            Reply::Imported(ids) => Ok(ids
                .iter()
                .map(|&id| path(&props::profile_path(id)))
                .collect()),
            _ => Err(Error::Core(core::Error::Failed(
                "nothing was imported".into(),
            ))),
        }
    }
}

/// Positions in axis name order, so that problems are listed in a stable order.
fn sorted(positions: HashMap<String, f64>) -> Vec<(String, f64)> {
    let sorted: BTreeMap<_, _> = positions.into_iter().collect();
    sorted.into_iter().collect()
}

/// One profile of ImportProfilesEx (the `i`th): its fields by name.
fn import_item(
    i: usize,
    name: String,
    fields: HashMap<String, OwnedVariant>,
) -> Result<core::store::ImportItem, Error> {
    use driverprofiled_api::import_field as f;
    let mut item = core::store::ImportItem::named(name);
    let mut fields: Vec<_> = fields.into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in fields {
        let at = || format!("#{} {}: {}", i + 1, quote(&item.name), quote(&key));
        let mut v: Variant<'_> = Variant::from(value);
        while let Variant::Variant(inner) = v {
            v = *inner;
        }
        let sig = quote(&v.value_signature().to_string());
        let wrong =
            |want: &str| Error::invalid_args(format!("{} takes type {want}, not {sig}", at()));
        let boolean = |v: &Variant<'_>| match v {
            Variant::Bool(b) => Ok(*b),
            _ => Err(wrong("b")),
        };
        let map = |v: Variant<'_>| HashMap::<String, f64>::try_from(v).map_err(|_| wrong("a{sd}"));
        match key.as_str() {
            f::EASY_EXIT => item.easy_exit = Some(boolean(&v)?),
            f::AUTO_SAVE => item.auto_save = Some(boolean(&v)?),
            f::REVERSE_TILT_ENABLED => item.reverse_tilt_enabled = Some(boolean(&v)?),
            f::POSITIONS => item.positions = Some(sorted(map(v)?)),
            f::REVERSE_TILT => item.reverse_tilt = Some(sorted(map(v)?)),
            f::KEYS => item.keys = Some(Vec::<String>::try_from(v).map_err(|_| wrong("as"))?),
            _ => {
                return Err(Error::invalid_args(format!(
                    "{}: unknown field (the fields are {})",
                    at(),
                    f::ALL.join(", ")
                )));
            }
        }
    }
    Ok(item)
}

/// Profiles, recall, inhibitors and the state of motion. CreateProfile, SelectProfile,
/// ImportProfiles and ImportProfilesEx need the ui role, Stop and Inhibit any role (ui, gateway, developer);
/// without it a call fails with org.freedesktop.DBus.Error.AccessDenied. Properties are open
/// to every caller.
#[interface(name = "org.driverprofiled1.Manager")]
impl Manager {
    /// Create a profile named `name` holding the current actuator positions.
    /// Errors: InvalidArgs (name not 1-64 characters, or control characters), AlreadyExists
    /// (same name ignoring case), LimitReached (max_profiles), NotReady (an actuator's
    /// position is not known yet).
    #[zbus(out_args("profile"))]
    async fn create_profile(
        &self,
        name: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<OwnedObjectPath, Error> {
        let method = "Manager.CreateProfile";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        match self.shared.call(Request::CreateProfile { name }).await? {
            Reply::Created(id) => Ok(path(&props::profile_path(id))),
            _ => Err(Error::Core(core::Error::Failed(
                "no profile was created".into(),
            ))),
        }
    }

    /// Make `profile` the active profile and move every actuator to its positions.
    /// Only in gear P below the speed threshold, else Interlocked and nothing moves; DutyLimit
    /// when an axis that must move has run too long lately; NotReady when an axis' position is
    /// not known yet; Inhibited while an inhibitor is held. A motion in progress is superseded.
    async fn select_profile(
        &self,
        profile: ObjectPath<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Manager.SelectProfile";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        let id = profile_id(&profile)?;
        self.shared
            .call(Request::SelectProfile { id })
            .await
            .map(drop)
    }

    /// Halt all motion now (outcome "stopped").
    async fn stop(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Manager.Stop";
        self.shared.allow(conn, &hdr, method, Roles::ANY).await?;
        no_args(&hdr)?;
        self.shared.call(Request::Stop).await.map(drop)
    }

    /// Keep every actuator still until the returned file descriptor is closed, as logind's
    /// inhibitors do. While any inhibitor is held, SelectProfile and Actuator.MoveTo fail with
    /// Inhibited, key approach and easy exit (retract and restore) do not start, and a motion in
    /// progress halts at once with outcome "inhibited". Editing and importing profiles still
    /// work: they move nothing (an update script imports under its own inhibitor). The
    /// inhibitor ends when every copy of the descriptor is closed, also when its holder exits or
    /// is killed. who: the program asking (1-64 characters), why: for whom reads Inhibitors
    /// (1-256 characters). Errors: InvalidArgs, LimitReached (64 inhibitors held already).
    #[zbus(out_args("fd"))]
    async fn inhibit(
        &self,
        who: String,
        why: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<zbus::OwnedFd, Error> {
        let method = "Manager.Inhibit";
        let access = &self.shared.access;
        let caller = access.caller(conn, Some(&hdr), method, Roles::ANY).await?;
        // The pipe first: once the core holds the inhibitor, only its end of file ends it.
        let (read, write) = inhibit::pipe().map_err(|e| {
            Error::Core(core::Error::Failed(format!(
                "cannot make the inhibitor's descriptor: {e}"
            )))
        })?;
        let request = Request::Inhibit {
            who,
            why,
            uid: caller.uid,
            pid: caller.pid,
        };
        let Reply::Inhibitor(id) = self.shared.call(request).await? else {
            return Err(Error::Core(core::Error::Failed(
                "no inhibitor was taken".into(),
            )));
        };
        tokio::spawn(inhibit::watch(read, id, self.shared.clone()));
        // The only copy of the write end goes into the reply and is closed once it is sent
        // (or could not be: a caller that has gone away takes nothing, and the watch ends it).
        Ok(zbus::OwnedFd::from(write))
    }

    /// Import a whole set of profiles, all or nothing: either every profile is stored, in one
    /// write, or nothing changes. profiles: (name, easy_exit, positions, keys) each, positions
    /// by axis name in the axis unit; an axis a profile omits is not moved when it is recalled.
    /// mode: "replace" (every existing profile is deleted; ids are never reused) or "merge" (a
    /// profile with the same name, ignoring case, is updated in place and keeps its id; the
    /// others are created). dry_run: check everything, change nothing. Returns the paths of the
    /// imported profiles in the order given (none on a dry run).
    /// Errors: InvalidArgs (a bad name or key, a name twice, an unknown axis, not a number, an
    /// unknown mode; the message lists every problem found, at most 20), OutOfRange (the same,
    /// for positions outside Min..Max: nothing is clamped), KeyInUse (a key bound to a profile
    /// that is kept, or to two imported profiles), LimitReached (max_profiles, max_keys),
    /// Failed.
    #[zbus(out_args("imported"))]
    async fn import_profiles(
        &self,
        profiles: Vec<driverprofiled_api::ImportedProfile>,
        mode: String,
        dry_run: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Vec<OwnedObjectPath>, Error> {
        let method = "Manager.ImportProfiles";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        let profiles = profiles
            .into_iter()
            .map(|(name, easy_exit, positions, keys)| {
                core::store::ImportItem::with(name, easy_exit, sorted(positions), keys)
            })
            .collect();
        self.import(profiles, &mode, dry_run).await
    }

    /// ImportProfiles with each profile's fields by name, so that a profile's every setting
    /// comes along: (name, fields). Fields: easy_exit (b, default true), positions (a{sd}),
    /// keys (as), auto_save (b, default false), reverse_tilt (a{sd}: only the config's
    /// [reverse_tilt] axes), reverse_tilt_enabled (b, default true). A field left out keeps
    /// what a merged profile has, and is the default for a new one. mode, dry_run, the reply
    /// and the errors are those of ImportProfiles; an unknown field or one of the wrong type
    /// is InvalidArgs.
    #[zbus(out_args("imported"))]
    async fn import_profiles_ex(
        &self,
        profiles: Vec<(String, HashMap<String, OwnedVariant>)>,
        mode: String,
        dry_run: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Vec<OwnedObjectPath>, Error> {
        let method = "Manager.ImportProfilesEx";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        let profiles = (profiles.into_iter().enumerate())
            .map(|(i, (name, fields))| import_item(i, name, fields))
            .collect::<Result<_, _>>()?;
        self.import(profiles, &mode, dry_run).await
    }

    /// The active profile, "/" when none.
    #[zbus(property)]
    fn active_profile(&self) -> OwnedObjectPath {
        self.shared.read(|v| path(&props::active_profile(v)))
    }

    /// All profiles, oldest first.
    #[zbus(property)]
    fn profiles(&self) -> Vec<OwnedObjectPath> {
        self.shared.read(|v| paths_of(&props::profiles(v)))
    }

    /// All actuators, in config order.
    #[zbus(property)]
    fn actuators(&self) -> Vec<OwnedObjectPath> {
        paths_of(&props::actuators(&self.shared.cfg))
    }

    /// "idle" or "moving".
    #[zbus(property)]
    fn state(&self) -> String {
        self.shared.read(|v| props::state(v).to_string())
    }

    /// True from an easy-exit retract until the restore.
    #[zbus(property)]
    fn easy_exit_active(&self) -> bool {
        self.shared.read(|v| v.easy_exit_active)
    }

    /// The inhibitors held, oldest first: (who, why, uid, pid) of the caller of Inhibit.
    /// Empty when motion is not inhibited.
    #[zbus(property)]
    fn inhibitors(&self) -> Vec<props::InhibitorTuple> {
        self.shared.read(props::inhibitors)
    }

    /// The actuator backend(s) in use, e.g. "mock".
    #[zbus(property)]
    fn backend(&self) -> String {
        self.shared.read(|v| v.backend.clone())
    }

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> String {
        self.shared.read(|v| v.version.clone())
    }

    /// "" while state can be written; else why not (the state directory is not writable,
    /// the disk is full, ...). Changes then fail with Failed and change nothing, easy exit
    /// does not retract (its restore could not be kept), and everything else (recall, Stop)
    /// works. Cleared by the next write that succeeds.
    #[zbus(property)]
    fn storage_error(&self) -> String {
        self.shared
            .read(|v| v.storage_error.clone().unwrap_or_default())
    }

    /// "" when the profile store was loaded as it was found; else what the daemon did with it
    /// at start, for status displays and update scripts: migrated from an older schema (and
    /// where the backup is), written by a newer driverprofiled (served read-only, or, if it
    /// cannot be read, left untouched and not served: StorageError then says why changes
    /// fail), or unreadable and moved aside (and where to).
    #[zbus(property)]
    fn store_status(&self) -> String {
        self.shared.read(|v| v.store_status.clone())
    }

    /// A motion began. reason: "recall", "manual", "key-approach", "easy-exit", "restore",
    /// "reverse-tilt" or "reverse-return" (the mirrors tilting down in R and back, the only
    /// motions outside P); profile: the profile recalled (or active, for easy exit, restore and
    /// reverse tilt), or "/".
    #[zbus(signal)]
    pub async fn motion_started(
        emitter: &SignalEmitter<'_>,
        reason: &str,
        profile: ObjectPath<'_>,
    ) -> zbus::Result<()>;

    /// A motion ended. outcome: "completed", "stopped" (Stop, or a key-approach recall whose
    /// key walked away before the door opened), "superseded", "interlocked",
    /// "overridden" (the occupant used a switch or moved an axis by hand), "fault" or
    /// "inhibited" (an inhibitor was taken, see Inhibit).
    #[zbus(signal)]
    pub async fn motion_finished(
        emitter: &SignalEmitter<'_>,
        reason: &str,
        outcome: &str,
    ) -> zbus::Result<()>;
}

pub struct Profile {
    pub id: ProfileId,
    pub shared: Shared,
}

impl Profile {
    /// Read the profile; a deleted one (its object is a tombstone) is NotFound.
    fn read<T>(&self, f: impl FnOnce(&StoredProfile) -> T) -> Result<T, Error> {
        self.shared
            .read(|v| v.profile(self.id).map(f))
            .ok_or_else(|| Error::Core(core::Error::NotFound(format!("no profile {}", self.id))))
    }

    fn id(&self) -> ProfileId {
        self.id
    }
}

/// Axis names to ids, in name order (so that the first problem found is the same whatever the
/// order sent); an unknown name is InvalidArgs.
fn axis_ids(cfg: &Config, positions: HashMap<String, f64>) -> Result<Vec<(AxisId, f64)>, Error> {
    let sorted: BTreeMap<_, _> = positions.into_iter().collect();
    (sorted.into_iter())
        .map(|(name, v)| match AxisId::of(cfg, &name) {
            Some(axis) => Ok((axis, v)),
            None => Err(Error::Core(core::Error::InvalidArgs(format!(
                "unknown axis {}",
                quote(&name)
            )))),
        })
        .collect()
}

/// A driver profile. Its methods and setting any of its properties need the ui role (else
/// org.freedesktop.DBus.Error.AccessDenied).
#[interface(name = "org.driverprofiled1.Profile")]
impl Profile {
    /// Update some positions (axis name to position in the axis unit), all or nothing.
    /// Errors: InvalidArgs (unknown axis, not a number), OutOfRange (outside Min..Max).
    async fn set_positions(
        &self,
        positions: HashMap<String, f64>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Profile.SetPositions";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        // A deleted profile is NotFound whatever it is sent.
        self.read(|_| ())?;
        let positions = axis_ids(&self.shared.cfg, positions)?;
        let id = self.id();
        self.shared
            .call(Request::SetPositions { id, positions })
            .await
            .map(drop)
    }

    /// Store the actuators' current positions in this profile.
    /// Errors: NotReady (an actuator's position is not known yet).
    async fn save_current_positions(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Profile.SaveCurrentPositions";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        no_args(&hdr)?;
        let id = self.id();
        self.shared
            .call(Request::SaveCurrentPositions { id })
            .await
            .map(drop)
    }

    /// Bind a key (1-64 bytes, no control characters) to this profile.
    /// Errors: KeyInUse (bound to another profile), LimitReached (max_keys in all).
    async fn bind_key(
        &self,
        key: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Profile.BindKey";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        let id = self.id();
        self.shared
            .call(Request::BindKey { id, key })
            .await
            .map(drop)
    }

    /// Unbind a key. Errors: NotFound (not bound to this profile).
    async fn unbind_key(
        &self,
        key: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Profile.UnbindKey";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        let id = self.id();
        self.shared
            .call(Request::UnbindKey { id, key })
            .await
            .map(drop)
    }

    /// Delete this profile (and its key bindings).
    async fn delete(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Profile.Delete";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        no_args(&hdr)?;
        let id = self.id();
        self.shared.call(Request::Delete { id }).await.map(drop)
    }

    /// Stable id, never reused.
    #[zbus(property, name = "Id")]
    fn id_property(&self) -> Result<String, Error> {
        self.read(|p| p.id.to_string())
    }

    /// Display name; writable (rename). Errors as for CreateProfile.
    #[zbus(property)]
    fn name(&self) -> Result<String, Error> {
        self.read(|p| p.name.clone())
    }

    #[zbus(property)]
    async fn set_name(
        &self,
        name: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), Error> {
        let method = "Profile.Name (set)";
        let access = &self.shared.access;
        access.check(conn, hdr.as_ref(), method, Roles::UI).await?;
        let id = self.id();
        self.shared
            .call(Request::Rename { id, name })
            .await
            .map(drop)
    }

    /// Keys bound to this profile.
    #[zbus(property)]
    fn keys(&self) -> Result<Vec<String>, Error> {
        self.read(|p| p.keys.clone())
    }

    /// Axis name to position, in the axis unit.
    #[zbus(property)]
    fn positions(&self) -> Result<HashMap<String, f64>, Error> {
        self.read(|p| p.positions.clone().into_iter().collect())
    }

    /// Whether easy exit runs for this profile (default true).
    #[zbus(property)]
    fn easy_exit(&self) -> Result<bool, Error> {
        self.read(|p| p.easy_exit)
    }

    #[zbus(property)]
    async fn set_easy_exit(
        &self,
        enabled: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), Error> {
        let method = "Profile.EasyExit (set)";
        let access = &self.shared.access;
        access.check(conn, hdr.as_ref(), method, Roles::UI).await?;
        let id = self.id();
        self.shared
            .call(Request::SetEasyExit { id, enabled })
            .await
            .map(drop)
    }

    /// Whether the end of each drive (the gear into P with the driver seated, before any easy
    /// exit) stores the positions the driver left the axes at in this profile: one write, only
    /// axes whose position is known and not faulted, none when nothing changed; Positions
    /// then changes (default false).
    #[zbus(property)]
    fn auto_save(&self) -> Result<bool, Error> {
        self.read(|p| p.auto_save)
    }

    #[zbus(property)]
    async fn set_auto_save(
        &self,
        enabled: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), Error> {
        let method = "Profile.AutoSave (set)";
        let access = &self.shared.access;
        access.check(conn, hdr.as_ref(), method, Roles::UI).await?;
        let id = self.id();
        self.shared
            .call(Request::SetAutoSave { id, enabled })
            .await
            .map(drop)
    }

    /// Where the mirrors of the config's [reverse_tilt] axes go while reversing with this
    /// profile active: axis name to position, in the axis unit. An axis not here moves by the
    /// configured offset from where it is (empty: every axis). Adjusting such a mirror by hand
    /// while in R stores where it is left here when the gear leaves R. Writable: replaces the
    /// whole map. Errors: InvalidArgs (unknown axis, one that does not tilt in reverse, not a
    /// number), OutOfRange (outside Min..Max).
    #[zbus(property)]
    fn reverse_tilt(&self) -> Result<HashMap<String, f64>, Error> {
        self.read(|p| p.reverse_tilt.clone().into_iter().collect())
    }

    #[zbus(property)]
    async fn set_reverse_tilt(
        &self,
        positions: HashMap<String, f64>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), Error> {
        let method = "Profile.ReverseTilt (set)";
        let access = &self.shared.access;
        access.check(conn, hdr.as_ref(), method, Roles::UI).await?;
        self.read(|_| ())?;
        let positions = axis_ids(&self.shared.cfg, positions)?;
        let id = self.id();
        self.shared
            .call(Request::SetReverseTilt { id, positions })
            .await
            .map(drop)
    }

    /// Whether the mirrors tilt down in reverse with this profile active (default true).
    #[zbus(property)]
    fn reverse_tilt_enabled(&self) -> Result<bool, Error> {
        self.read(|p| p.reverse_tilt_enabled)
    }

    #[zbus(property)]
    async fn set_reverse_tilt_enabled(
        &self,
        enabled: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), Error> {
        let method = "Profile.ReverseTiltEnabled (set)";
        let access = &self.shared.access;
        access.check(conn, hdr.as_ref(), method, Roles::UI).await?;
        let id = self.id();
        self.shared
            .call(Request::SetReverseTiltEnabled { id, enabled })
            .await
            .map(drop)
    }
}

pub struct Actuator {
    /// Index of the axis in the config (and in the view).
    pub index: usize,
    pub shared: Shared,
}

impl Actuator {
    fn config(&self) -> &AxisConfig {
        &self.shared.cfg.axes[self.index]
    }

    fn read<T: Default>(&self, f: impl FnOnce(&AxisView) -> T) -> T {
        self.shared
            .read(|v| v.axes.get(self.index).map(f).unwrap_or_default())
    }
}

/// One actuated axis. MoveTo needs the ui role, Stop any role (ui, gateway, developer), else
/// org.freedesktop.DBus.Error.AccessDenied.
#[interface(name = "org.driverprofiled1.Actuator")]
impl Actuator {
    /// Move this axis to `position` (reason "manual"), under the same interlock as a recall.
    /// Errors: InvalidArgs (not a number), OutOfRange, Interlocked, DutyLimit, NotReady, Inhibited.
    async fn move_to(
        &self,
        position: f64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Actuator.MoveTo";
        self.shared.allow(conn, &hdr, method, Roles::UI).await?;
        self.shared
            .call(Request::MoveTo {
                axis: AxisId::new(self.index),
                target: position,
            })
            .await
            .map(drop)
    }

    /// Halt the motion this axis is part of (outcome "stopped"); nothing if it is not moving.
    async fn stop(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Actuator.Stop";
        self.shared.allow(conn, &hdr, method, Roles::ANY).await?;
        no_args(&hdr)?;
        let axis = AxisId::new(self.index);
        self.shared.call(Request::StopAxis { axis }).await.map(drop)
    }

    /// Axis name, e.g. "seat_position".
    #[zbus(property(emits_changed_signal = "const"))]
    fn name(&self) -> String {
        self.config().name.clone()
    }

    /// "mm", "deg" or "percent".
    #[zbus(property(emits_changed_signal = "const"))]
    fn unit(&self) -> String {
        self.config().unit.as_str().to_string()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn min(&self) -> f64 {
        self.config().min
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn max(&self) -> f64 {
        self.config().max
    }

    /// The COVESA VSS signal of this axis.
    #[zbus(property(emits_changed_signal = "const"))]
    fn vss(&self) -> String {
        self.config().vss.clone()
    }

    /// Current position; NaN until the backend has reported it. Changes are signalled at most
    /// ~10 times/s while moving, and the final value when the axis stops.
    #[zbus(property)]
    fn position(&self) -> f64 {
        self.read(props::position)
    }

    /// The last commanded target (NaN while the position has never been known).
    #[zbus(property)]
    fn target(&self) -> f64 {
        self.read(props::target)
    }

    #[zbus(property)]
    fn moving(&self) -> bool {
        self.read(|a| a.moving)
    }

    /// "" when healthy, else what went wrong (e.g. "stalled at 120 mm ...").
    #[zbus(property)]
    fn fault(&self) -> String {
        self.read(|a| a.fault.clone().unwrap_or_default())
    }
}

pub struct Vehicle {
    pub shared: Shared,
}

/// Decode one `UpdateSignals` entry.
fn decode_signal(key: &str, value: &Variant<'_>) -> Result<Signal, Error> {
    if let Variant::Variant(inner) = value {
        return decode_signal(key, inner);
    }
    let wrong = |want: &str| {
        Error::invalid_args(format!(
            "signal {} takes a value of type {want}, not {}",
            quote(key),
            value.value_signature()
        ))
    };
    let boolean = || match value {
        Variant::Bool(b) => Ok(*b),
        _ => Err(wrong("b")),
    };
    Ok(match key {
        signal::GEAR => {
            let Variant::Str(s) = value else {
                return Err(wrong("s"));
            };
            let g = WireGear::parse(s.as_str()).ok_or_else(|| {
                Error::invalid_args(format!(
                    "gear {} is not one of \"P\", \"R\", \"N\", \"D\"",
                    quote(s.as_str())
                ))
            })?;
            Signal::Gear(names::gear_from_wire(g))
        }
        signal::SPEED_KMH => match value {
            Variant::F64(d) => Signal::SpeedKmh(*d),
            _ => return Err(wrong("d")),
        },
        _ if let Some(make) = names::boolean_signal(key) => make(boolean()?),
        _ => {
            return Err(Error::invalid_args(format!(
                "unknown signal {}",
                quote(key)
            )));
        }
    })
}

/// Vehicle signals pushed by the vehicle gateway. Its methods need the gateway role (else
/// org.freedesktop.DBus.Error.AccessDenied).
#[interface(name = "org.driverprofiled1.Vehicle")]
impl Vehicle {
    /// Update signals: gear (s: P R N D), speed_kmh (d, >= 0), driver_door_open,
    /// driver_seat_occupied, driver_belt_buckled, brake_pressed, rear_occupied, manual_control,
    /// doors_locked (b). An unknown key or a wrong type is InvalidArgs and nothing is applied. Breaking the
    /// interlock halts any motion at once. NotSupported (nothing is applied) when Source is
    /// "kuksa": the signals come from the KUKSA databroker then, from nowhere else.
    async fn update_signals(
        &self,
        signals: HashMap<String, OwnedVariant>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Vehicle.UpdateSignals";
        self.shared
            .allow(conn, &hdr, method, Roles::GATEWAY)
            .await?;
        if self.shared.cfg.vehicle_source == VehicleSource::Kuksa {
            return Err(Error::NotSupported(
                "vehicle signals come from the KUKSA databroker ([vehicle] source = \"kuksa\"); \
                 UpdateSignals is refused"
                    .into(),
            ));
        }
        let mut entries: Vec<_> = signals.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let list = entries
            .into_iter()
            .map(|(k, v)| decode_signal(k, v))
            .collect::<Result<Vec<_>, _>>()?;
        self.shared
            .call(Request::UpdateSignals(list))
            .await
            .map(drop)
    }

    /// Key ranging from the key-locator service: (key id, anchor, distance in metres).
    /// Anchors are those of the config. An unknown anchor, a key id empty, over 64 bytes or
    /// with control characters, a distance not within 0..100 m, or more than 256 readings is
    /// InvalidArgs and the whole batch is ignored. Readings of keys bound to no profile are
    /// ignored.
    async fn report_ranges(
        &self,
        readings: Vec<(String, String, f64)>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Vehicle.ReportRanges";
        self.shared
            .allow(conn, &hdr, method, Roles::GATEWAY)
            .await?;
        self.shared
            .call(Request::ReportRanges(readings))
            .await
            .map(drop)
    }

    /// BLE key ranging from the key-locator service: (key id, anchor, RSSI in dBm, -127..20).
    /// Validated like ReportRanges: an unknown anchor, a bad key id, an RSSI out of range or not
    /// a number, or more than 256 readings is InvalidArgs and the whole batch is ignored.
    /// Readings of keys bound to no profile are ignored. The RSSI is weighed with the path-loss
    /// model of the config's [keys.ble]; RSSI alone never moves a seat while the doors are
    /// locked. Needs [keys.geometry] (else NotSupported: a car configured without anchor
    /// positions can only take distances).
    async fn report_rssi(
        &self,
        readings: Vec<(String, String, f64)>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        let method = "Vehicle.ReportRssi";
        self.shared
            .allow(conn, &hdr, method, Roles::GATEWAY)
            .await?;
        self.shared
            .call(Request::ReportRssi(readings))
            .await
            .map(drop)
    }

    /// Where the vehicle signals come from: "dbus" (a gateway calls UpdateSignals) or "kuksa"
    /// (the daemon subscribes to them at the KUKSA databroker; UpdateSignals is refused).
    #[zbus(property(emits_changed_signal = "const"))]
    fn source(&self) -> String {
        match self.shared.cfg.vehicle_source {
            VehicleSource::Dbus => "dbus",
            VehicleSource::Kuksa => "kuksa",
        }
        .to_string()
    }

    /// "P", "R", "N" or "D"; "" until reported (motion is interlocked until then).
    #[zbus(property)]
    fn gear(&self) -> String {
        self.shared.read(props::gear)
    }

    /// Vehicle speed in km/h; negative until reported.
    #[zbus(property)]
    fn speed_kmh(&self) -> f64 {
        self.shared.read(props::speed_kmh)
    }

    #[zbus(property)]
    fn driver_door_open(&self) -> bool {
        self.shared.read(|v| v.vehicle.driver_door_open)
    }

    #[zbus(property)]
    fn driver_seat_occupied(&self) -> bool {
        self.shared.read(|v| v.vehicle.driver_seat_occupied)
    }

    #[zbus(property)]
    fn driver_belt_buckled(&self) -> bool {
        self.shared.read(|v| v.vehicle.driver_belt_buckled)
    }

    #[zbus(property)]
    fn brake_pressed(&self) -> bool {
        self.shared.read(|v| v.vehicle.brake_pressed)
    }

    /// Someone sits behind the driver.
    #[zbus(property)]
    fn rear_occupied(&self) -> bool {
        self.shared.read(|v| v.vehicle.rear_occupied)
    }

    /// A physical seat or wheel switch is being pressed.
    #[zbus(property)]
    fn manual_control(&self) -> bool {
        self.shared.read(|v| v.vehicle.seat_switch)
    }

    /// The doors are locked: no automatic motion (relay attacks on phone keys are real).
    #[zbus(property)]
    fn doors_locked(&self) -> bool {
        self.shared.read(|v| v.vehicle.doors_locked)
    }

    /// The bound key selected as nearest the driver's door handle; "" when none.
    #[zbus(property)]
    fn nearest_key(&self) -> String {
        self.shared
            .read(|v| v.nearest_key.clone().unwrap_or_default())
    }

    /// Why motion is not allowed now; "" when it is.
    #[zbus(property)]
    fn interlock(&self) -> String {
        self.shared
            .read(|v| v.interlock.clone().unwrap_or_default())
    }

    /// Where the key locator believes each bound key present is: (key id, x, y, probability of
    /// being the one at or heading to the driver's door), x and y in metres in the car frame of
    /// [keys.geometry] (x toward the passenger side, y forward). Sorted by key id; empty without
    /// [keys.geometry]. Changes are signalled at most five times a second.
    #[zbus(property)]
    fn key_estimates(&self) -> Vec<(String, f64, f64, f64)> {
        self.shared.read(|v| v.key_estimates.clone())
    }

    /// The car as the key locator sees it: (name, x, y) of every anchor of [keys.geometry], then
    /// "driver_spot" (where the driver stands to open the door). Empty without [keys.geometry].
    #[zbus(property(emits_changed_signal = "const"))]
    fn key_geometry(&self) -> Vec<(String, f64, f64)> {
        props::key_geometry(&self.shared.cfg)
    }
}
