//! Who may change anything: the daemon's own check of every mutating call, the second line
//! behind the bus policy (`data/org.driverprofiled1.conf`), which a permissive or mistaken bus
//! configuration would otherwise leave as the only one.
//!
//! A caller holds a role when one of its groups is one of the role's groups in `[access]`.
//! root holds every role, and so does the daemon's own uid: a process of that user can already
//! signal the daemon and write its state directory, and it is what makes a developer's session
//! or private bus (daemon and client as the same user) work unchanged. Its groups and uid come
//! from the bus (`GetConnectionCredentials`: `UnixUserID`, `UnixGroupIDs`), never from its
//! PID, which could be reused by another process (the PID, `ProcessID`, is kept for display
//! only: `Manager.Inhibitors` shows it). They are cached per unique name (never reused
//! on a bus), so a call from a known connection costs no bus round trip, and dropped when the
//! bus says the name is gone (`NameOwnerChanged`).

use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use zbus::fdo::ConnectionCredentials;
use zbus::message::{Header, Type};
use zbus::names::UniqueName;
use zbus::{Connection, MatchRule, MessageStream};

use crate::config::{AccessConfig, Group};

/// A set of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    pub const NONE: Roles = Roles(0);
    /// The user interface: Manager, Profile, Actuator.MoveTo.
    pub const UI: Roles = Roles(1);
    /// The vehicle gateway: Vehicle.
    pub const GATEWAY: Roles = Roles(2);
    /// Developers: the Mock interface.
    pub const DEVELOPER: Roles = Roles(4);
    /// Any one of the roles: what Manager.Stop, Manager.Inhibit and Actuator.Stop need.
    pub const ANY: Roles = Roles(7);

    const NAMES: [(Roles, &'static str); 3] = [
        (Roles::UI, "ui"),
        (Roles::GATEWAY, "gateway"),
        (Roles::DEVELOPER, "developer"),
    ];

    pub fn intersects(self, other: Roles) -> bool {
        self.0 & other.0 != 0
    }

    fn with(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }
}

impl fmt::Display for Roles {
    /// "ui", "ui or gateway", "ui, gateway or developer", "no".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Roles::NAMES
            .iter()
            .filter(|(r, _)| self.intersects(*r))
            .map(|(_, n)| *n)
            .collect();
        match names.as_slice() {
            [] => f.write_str("no"),
            [one] => f.write_str(one),
            [init @ .., last] => write!(f, "{} or {last}", init.join(", ")),
        }
    }
}

/// What the bus says about a caller.
#[derive(Debug, Clone)]
struct Caller {
    uid: u32,
    gids: Vec<u32>,
    /// For display only, never for a decision; 0 when the bus did not say.
    pid: u32,
}

/// Who made a call that was allowed, as the bus reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerId {
    pub uid: u32,
    /// For display only (it could be reused once the process has gone); 0 when unknown.
    pub pid: u32,
}

/// Most callers cached at once. Past it the cache starts over (a miss costs one round trip).
/// It bounds what a caller can leave behind when it leaves before its entry is made (during
/// its lookup, or before `NameOwnerChanged` is subscribed at start): a harmless entry, since
/// unique names are never reused.
const MAX_CACHED: usize = 1024;

/// The role check of the D-Bus edge, shared by every interface object.
pub struct Access {
    /// The gids holding each role.
    groups: Vec<(Roles, Vec<u32>)>,
    /// The daemon's own uid: holds every role.
    own_uid: u32,
    /// Callers by unique name.
    callers: Mutex<HashMap<String, Caller>>,
}

impl Access {
    /// Resolve the group names of `[access]` to gids (once, at start). A name that does not
    /// resolve is logged and matches nobody.
    pub fn new(cfg: &AccessConfig) -> Access {
        let resolve = |role: &str, list: &[Group]| -> Vec<u32> {
            list.iter()
                .filter_map(|g| match g {
                    Group::Gid(gid) => Some(*gid),
                    Group::Name(name) => match gid_of(name) {
                        Ok(Some(gid)) => Some(gid),
                        Ok(None) => {
                            tracing::warn!(
                                "[access] {role}: there is no group {name:?}; it matches nobody"
                            );
                            None
                        }
                        Err(e) => {
                            tracing::warn!(
                                "[access] {role}: cannot look up group {name:?} ({e}); it matches nobody"
                            );
                            None
                        }
                    },
                })
                .collect()
        };
        let groups = vec![
            (Roles::UI, resolve("ui", &cfg.ui)),
            (Roles::GATEWAY, resolve("gateway", &cfg.gateway)),
            (Roles::DEVELOPER, resolve("developer", &cfg.developer)),
        ];
        // SAFETY: geteuid cannot fail and has no preconditions.
        let own_uid = unsafe { libc::geteuid() };
        Access::with_gids(groups, own_uid)
    }

    fn with_gids(groups: Vec<(Roles, Vec<u32>)>, own_uid: u32) -> Access {
        Access {
            groups,
            own_uid,
            callers: Mutex::new(HashMap::new()),
        }
    }

    /// The roles a caller with this uid and these groups holds.
    fn roles_of(&self, c: &Caller) -> Roles {
        if c.uid == 0 || c.uid == self.own_uid {
            return Roles::ANY;
        }
        self.groups
            .iter()
            .filter(|(_, gids)| gids.iter().any(|g| c.gids.contains(g)))
            .fold(Roles::NONE, |all, (r, _)| all.with(*r))
    }

    fn callers(&self) -> MutexGuard<'_, HashMap<String, Caller>> {
        // The map is valid after any panic (each operation is a single insert or remove).
        self.callers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ok if the sender of the call `hdr` holds one of the roles `need`; else AccessDenied,
    /// naming `method` ("Manager.CreateProfile"), and a log line with the caller's uid.
    /// `hdr` is None for a property set from inside the daemon, which never happens: denied.
    pub async fn check(
        &self,
        conn: &Connection,
        hdr: Option<&Header<'_>>,
        method: &str,
        need: Roles,
    ) -> Result<(), Denied> {
        self.caller(conn, hdr, method, need).await.map(drop)
    }

    /// [`Access::check`], and who the caller is (from the same cache).
    pub async fn caller(
        &self,
        conn: &Connection,
        hdr: Option<&Header<'_>>,
        method: &str,
        need: Roles,
    ) -> Result<CallerId, Denied> {
        let Some(sender) = hdr.and_then(|h| h.sender()) else {
            tracing::warn!(method, "access denied: a call to {method} without a sender");
            return Err(denied(method, need));
        };
        // The lock is released before any await.
        let cached = self
            .callers()
            .get(sender.as_str())
            .map(|c| (c.uid, c.pid, self.roles_of(c)));
        let (uid, pid, roles) = match cached {
            Some(hit) => hit,
            None => {
                let caller = self.lookup(conn, sender, method, need).await?;
                let hit = (caller.uid, caller.pid, self.roles_of(&caller));
                let mut callers = self.callers();
                if callers.len() >= MAX_CACHED {
                    callers.clear();
                }
                callers.insert(sender.to_string(), caller);
                hit
            }
        };
        if roles.intersects(need) {
            Ok(CallerId { uid, pid })
        } else {
            tracing::warn!(
                uid,
                method,
                "access denied: uid {uid} may not call {method} (it needs the {need} role)"
            );
            Err(denied(method, need))
        }
    }

    /// Ask the bus who `sender` is.
    async fn lookup(
        &self,
        conn: &Connection,
        sender: &UniqueName<'_>,
        method: &str,
        need: Roles,
    ) -> Result<Caller, Denied> {
        let fail = |why: String| {
            tracing::warn!(
                method,
                "access denied: {method} from {sender}, whose credentials are unknown: {why}"
            );
            denied(method, need)
        };
        // A plain call: zbus's DBusProxy would bring its proxy machinery (property cache,
        // signal streams), over half a MiB more resident memory, for two calls.
        let reply = conn
            .call_method(
                Some(BUS),
                "/org/freedesktop/DBus",
                Some(BUS),
                "GetConnectionCredentials",
                &(sender,),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        let creds: ConnectionCredentials = reply
            .body()
            .deserialize()
            .map_err(|e| fail(e.to_string()))?;
        let uid = creds
            .unix_user_id()
            .ok_or_else(|| fail("the bus reports no UnixUserID".into()))?;
        let pid = creds.process_id().unwrap_or(0);
        // Without UnixGroupIDs (an old bus) only the uid counts.
        let gids = creds.into_unix_group_ids().unwrap_or_default();
        tracing::debug!("caller {sender}: uid {uid}, groups {gids:?}, pid {pid}");
        Ok(Caller { uid, gids, pid })
    }

    /// Forget a caller whose connection has gone.
    fn forget(&self, name: &str) {
        if self.callers().remove(name).is_some() {
            tracing::debug!("caller {name} has left the bus");
        }
    }

    /// Drop each caller from the cache when the bus says its connection has gone (a unique
    /// name losing its owner). The subscription is made before this returns.
    pub async fn watch(self: &Arc<Self>, conn: &Connection) -> zbus::Result<()> {
        // arg2 (new owner) '': names that lost their owner only, not every name change.
        let rule = MatchRule::builder()
            .msg_type(Type::Signal)
            .sender(BUS)
            .interface(BUS)
            .member("NameOwnerChanged")
            .arg(2, "")
            .build()?;
        let mut lost = MessageStream::for_match_rule(rule, conn, None).await?;
        let access = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = lost.next().await {
                let Some(access) = access.upgrade() else {
                    return;
                };
                let body = msg.body();
                if let Ok((name, _old, new)) = body.deserialize::<(&str, &str, &str)>()
                    && name.starts_with(':')
                    && new.is_empty()
                {
                    access.forget(name);
                }
            }
        });
        Ok(())
    }

    /// How many callers are cached (for tests).
    #[cfg(test)]
    fn cached(&self) -> usize {
        self.callers().len()
    }
}

/// The bus itself: its name, and its interface.
const BUS: &str = "org.freedesktop.DBus";

/// A call refused for the caller's roles: the edge answers it as
/// `org.freedesktop.DBus.Error.AccessDenied` with this message, which names the method and the
/// role, never the caller's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn denied(method: &str, need: Roles) -> Denied {
    Denied(format!("{method} needs the {need} role"))
}

/// The gid of group `name`, None when there is no such group.
///
/// `/etc/group` first, as NSS's `files` source would: a group found there (sysusers puts the
/// service's groups there) costs nothing more. Only a group it lacks is asked of NSS, which
/// loads its modules into the daemon for good (libnss_systemd with libcap and libm: ~700 KiB
/// resident, a third of what the daemon adds to a minimal zbus service).
fn gid_of(name: &str) -> io::Result<Option<u32>> {
    if let Some(gid) = std::fs::read_to_string(ETC_GROUP)
        .ok()
        .and_then(|text| gid_in_group_file(&text, name))
    {
        return Ok(Some(gid));
    }
    gid_from_nss(name)
}

const ETC_GROUP: &str = "/etc/group";

/// The gid of `name` in the text of a group(5) file.
fn gid_in_group_file(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.trim().parse().ok()
    })
}

fn gid_from_nss(name: &str) -> io::Result<Option<u32>> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: a zeroed `struct group` is a valid out-parameter (integers and null pointers).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is the buffer's size;
        // the result is read only from `grp` (which may point into `buf`, still alive).
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some(grp.gr_gid)),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            // "Not found" as glibc may report it for some NSS sources.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            rc => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::with_gids(
            vec![
                (Roles::UI, vec![100, 101]),
                (Roles::GATEWAY, vec![200]),
                (Roles::DEVELOPER, vec![300]),
            ],
            1000,
        )
    }

    #[test]
    fn groups_are_read_from_a_group_file() {
        let text = "root:x:0:\n# not a group\nwheel:x:10:anna,bo\nwheelie:x:11:\nodd:x:nan:\n";
        assert_eq!(gid_in_group_file(text, "root"), Some(0));
        assert_eq!(gid_in_group_file(text, "wheel"), Some(10));
        assert_eq!(gid_in_group_file(text, "whe"), None);
        assert_eq!(gid_in_group_file(text, "odd"), None);
        assert_eq!(gid_in_group_file(text, "nobody-here"), None);
    }

    fn roles(uid: u32, gids: &[u32]) -> Roles {
        access().roles_of(&Caller {
            uid,
            gids: gids.to_vec(),
            pid: 0,
        })
    }

    #[test]
    fn roles_come_from_groups_root_and_the_own_uid() {
        assert_eq!(roles(0, &[]), Roles::ANY, "root");
        assert_eq!(roles(1000, &[]), Roles::ANY, "the daemon's own uid");
        assert_eq!(roles(65534, &[65534]), Roles::NONE);
        assert_eq!(roles(5, &[7, 101]), Roles::UI);
        assert_eq!(roles(5, &[200, 300]), Roles::GATEWAY.with(Roles::DEVELOPER));
        assert!(roles(5, &[200]).intersects(Roles::ANY), "Stop");
        assert!(!roles(5, &[200]).intersects(Roles::UI));
    }

    #[test]
    fn roles_read_as_words() {
        assert_eq!(Roles::UI.to_string(), "ui");
        assert_eq!(Roles::ANY.to_string(), "ui, gateway or developer");
        assert_eq!(
            Roles::UI.with(Roles::DEVELOPER).to_string(),
            "ui or developer"
        );
        assert_eq!(Roles::NONE.to_string(), "no");
    }

    #[test]
    fn the_denial_names_the_method_and_role_only() {
        let e = denied("Profile.Delete", Roles::UI);
        assert_eq!(e.0, "Profile.Delete needs the ui role");
    }

    #[test]
    fn group_names_resolve_and_unknown_ones_match_nobody() {
        assert_eq!(gid_of("root").unwrap(), Some(0));
        assert_eq!(gid_of("no-such-group-driverprofiled").unwrap(), None);
        assert_eq!(gid_of("nul\0byte").unwrap(), None);
        let a = Access::new(&AccessConfig {
            ui: vec![Group::Name("root".into()), Group::Gid(42)],
            gateway: vec![Group::Name("no-such-group-driverprofiled".into())],
            developer: vec![],
        });
        assert_eq!(a.groups[0].1, [0, 42]);
        assert!(a.groups[1].1.is_empty());
        assert_eq!(a.cached(), 0);
    }
}
