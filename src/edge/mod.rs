//! The D-Bus edge: exports the objects, forwards method calls to the engine as
//! [`Call`]s, and shows the engine's view: objects added and removed, `PropertiesChanged`,
//! the motion signals ([`Engine`](crate::engine::Engine) drives it through [`Edge`]). See
//! docs/dbus-api.md.

pub mod error;
pub mod ifaces;
pub mod inhibit;
pub mod mock;
pub mod objects;
pub mod props;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, RwLock};

use driverprofiled_api::{BUS_NAME, interface, path as paths};
use tokio::sync::mpsc;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, ObjectPath, Variant, connection};

use crate::access::Access;
use crate::backend::Router;
use crate::config::Config;
use crate::core::view::View;
use crate::core::{Outcome, ProfileId, Reason};
use crate::engine::{Call, Edge};
use crate::names;
use ifaces::{Actuator, Manager, Profile, Shared, Vehicle};
use props::{PropValue, Props, changed};

/// Which bus to serve on.
#[derive(Debug, Clone, PartialEq)]
pub enum Bus {
    System,
    Session,
    Address(String),
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::System => f.write_str("system bus"),
            Bus::Session => f.write_str("session bus"),
            Bus::Address(a) => write!(f, "bus at {a}"),
        }
    }
}

/// The D-Bus side of the daemon: its connection, the objects' shared state, the tombstones.
pub struct Dbus {
    conn: Connection,
    shared: Shared,
    /// Ids of deleted profiles whose objects still answer NotFound, oldest first.
    tombstones: VecDeque<ProfileId>,
}

/// Connect, export every object for `view` (the mock's controls too, if the mock backend
/// drives an axis) and take the bus name; method calls go to the engine over `calls`. Fails
/// if the bus is unreachable or the name is owned already.
pub async fn connect(
    bus: &Bus,
    cfg: Arc<Config>,
    view: &View,
    next_id: u64,
    calls: mpsc::Sender<Call>,
    router: &Router,
) -> zbus::Result<Dbus> {
    let access = Arc::new(Access::new(&cfg.access));
    let shared = Shared {
        calls,
        view: Arc::new(RwLock::new(view.clone())),
        cfg: cfg.clone(),
        access: access.clone(),
    };
    let mut b = match bus {
        Bus::System => connection::Builder::system(),
        Bus::Session => connection::Builder::session(),
        Bus::Address(a) => connection::Builder::address(a.as_str()),
    };
    b = b
        .serve_at(
            paths::ROOT,
            objects::ObjectManager {
                shared: shared.clone(),
            },
        )
        .serve_at(
            paths::ROOT,
            Manager {
                shared: shared.clone(),
            },
        )
        .serve_at(
            paths::ROOT,
            Vehicle {
                shared: shared.clone(),
            },
        );
    if let Some(mock) = router.mock() {
        b = b.serve_at(paths::ROOT, mock::MockControl::new(mock, access.clone()));
    }
    for (index, a) in cfg.axes.iter().enumerate() {
        b = b.serve_at(
            paths::actuator_path(&a.name),
            Actuator {
                index,
                shared: shared.clone(),
            },
        );
    }
    // Live profiles, and tombstones for the most recently deleted ids (also after a
    // restart: a client may hold a path from before it).
    let tombstones: VecDeque<ProfileId> = (next_id
        .saturating_sub(objects::TOMBSTONES_AT_START as u64)
        .max(1)..next_id)
        .map(ProfileId::new)
        .filter(|&id| view.profile(id).is_none())
        .collect();
    for &id in view.profiles.iter().map(|p| &p.id).chain(&tombstones) {
        b = b.serve_at(
            props::profile_path(id),
            Profile {
                id,
                shared: shared.clone(),
            },
        );
    }
    // zbus requests names with ALLOW_REPLACEMENT | REPLACE_EXISTING by default: a second
    // instance would silently take the name (and the motors) from the first. Neither.
    let conn = b
        .name(BUS_NAME)
        .allow_name_replacements(false)
        .replace_existing_names(false)
        .build()
        .await?;
    access.watch(&conn).await?;
    Ok(Dbus {
        conn,
        shared,
        tombstones,
    })
}

impl Edge for Dbus {
    async fn publish(&mut self, old: &View, new: &View) {
        *self.shared.view.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
        self.show(old, new).await;
    }

    async fn motion_started(&self, reason: Reason, profile: Option<ProfileId>) {
        let p = props::profile_path_or_none(profile);
        let r = match self.emitter(paths::ROOT) {
            Ok(em) => {
                Manager::motion_started(
                    &em,
                    names::reason(reason).as_str(),
                    ObjectPath::from_string_unchecked(p),
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            tracing::warn!("could not emit MotionStarted: {e}");
        }
    }

    async fn motion_finished(&self, reason: Reason, outcome: Outcome) {
        let r = match self.emitter(paths::ROOT) {
            Ok(em) => {
                Manager::motion_finished(
                    &em,
                    names::reason(reason).as_str(),
                    names::outcome(outcome).as_str(),
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            tracing::warn!("could not emit MotionFinished: {e}");
        }
    }

    fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        // zbus ends this future when the connection closes: the bus daemon died or dropped
        // us, or the socket failed (EOF, EPIPE).
        let conn = self.conn.clone();
        async move { conn.closed().await }
    }

    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

impl Dbus {
    fn emitter(&self, path: &str) -> zbus::Result<SignalEmitter<'static>> {
        SignalEmitter::new(&self.conn, path.to_string())
    }

    /// Export the new profiles, signal what changed from `old` to `view`, and turn deleted
    /// profiles into tombstones.
    async fn show(&mut self, old: &View, view: &View) {
        let server = self.conn.object_server();
        for p in &view.profiles {
            if old.profile(p.id).is_none() {
                let obj = Profile {
                    id: p.id,
                    shared: self.shared.clone(),
                };
                if let Err(e) = server.at(props::profile_path(p.id), obj).await {
                    tracing::error!("could not export profile {}: {e}", p.id);
                }
            }
        }
        let cfg = self.shared.cfg.clone();
        self.emit_changed(
            paths::ROOT,
            interface::MANAGER,
            &props::manager(old, &cfg),
            props::manager(view, &cfg),
        )
        .await;
        self.emit_changed(
            paths::ROOT,
            interface::VEHICLE,
            &props::vehicle(old),
            props::vehicle(view),
        )
        .await;
        for p in &view.profiles {
            if let Some(was) = old.profile(p.id) {
                self.emit_changed(
                    &props::profile_path(p.id),
                    interface::PROFILE,
                    &props::profile(was),
                    props::profile(p),
                )
                .await;
            }
        }
        // Axes that stop first, then the rest: a client replaying the signals never sees more
        // motors moving than ever ran at once.
        let pairs: Vec<_> = old.axes.iter().zip(&view.axes).enumerate().collect();
        let (first, rest): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(_, (was, new))| was.moving && !new.moving);
        for (i, (was, new)) in first.into_iter().chain(rest) {
            self.emit_changed(
                &paths::actuator_path(&cfg.axes[i].name),
                interface::ACTUATOR,
                &props::actuator(was),
                props::actuator(new),
            )
            .await;
        }
        let deleted: Vec<ProfileId> = old
            .profiles
            .iter()
            .filter(|p| view.profile(p.id).is_none())
            .map(|p| p.id)
            .collect();
        for id in deleted {
            // The object stays as a tombstone that answers NotFound; for clients it is gone.
            let path = props::profile_path(id);
            let r = match self.emitter(paths::ROOT) {
                Ok(em) => {
                    objects::ObjectManager::interfaces_removed(
                        &em,
                        ObjectPath::from_string_unchecked(path),
                        Cow::Borrowed(&[InterfaceName::from_static_str_unchecked(
                            interface::PROFILE,
                        )]),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::warn!("could not emit InterfacesRemoved for profile {id}: {e}");
            }
            self.tombstones.push_back(id);
        }
        while self.tombstones.len() > objects::MAX_TOMBSTONES {
            let Some(id) = self.tombstones.pop_front() else {
                break;
            };
            if let Err(e) = server.remove::<Profile, _>(props::profile_path(id)).await {
                tracing::error!("could not unexport profile {id}: {e}");
            }
        }
    }

    async fn emit_changed(&self, path: &str, iface: &'static str, old: &Props, new: Props) {
        let diff = changed(old, new);
        if diff.is_empty() {
            return;
        }
        let values: HashMap<&str, Variant<'_>> = diff
            .iter()
            .map(|(name, v)| (*name, to_variant(v)))
            .collect();
        let r = match self.emitter(path) {
            Ok(em) => {
                zbus::fdo::Properties::properties_changed(
                    &em,
                    InterfaceName::from_static_str_unchecked(iface),
                    values,
                    Cow::Borrowed(&[]),
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            tracing::warn!("could not emit PropertiesChanged on {path}: {e}");
        }
    }
}

fn to_variant(v: &PropValue) -> Variant<'static> {
    match v {
        PropValue::Str(s) => Variant::from(s.clone()),
        PropValue::Bool(b) => Variant::from(*b),
        PropValue::F64(d) => Variant::from(*d),
        PropValue::Path(p) => Variant::from(ObjectPath::from_string_unchecked(p.clone())),
        PropValue::Paths(ps) => Variant::from(
            ps.iter()
                .map(|p| ObjectPath::from_string_unchecked(p.clone()))
                .collect::<Vec<_>>(),
        ),
        PropValue::Strs(ss) => Variant::from(ss.clone()),
        PropValue::Map(m) => Variant::from(m.iter().cloned().collect::<HashMap<String, f64>>()),
        PropValue::Inhibitors(list) => Variant::from(list.clone()),
        PropValue::KeyEstimates(list) => Variant::from(list.clone()),
    }
}
