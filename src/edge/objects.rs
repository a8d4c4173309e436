//! `org.freedesktop.DBus.ObjectManager`, served from the view rather than from zbus's object
//! tree. A deleted profile's object stays exported as a *tombstone* (kept by the engine in
//! `mod.rs`), so that a client holding its path gets `org.driverprofiled1.Error.NotFound` from
//! its methods and `Properties.Get`/`Set` (not `UnknownObject`, which reads like a broken
//! daemon; `GetAll` returns an empty dict, as zbus leaves out properties that fail). zbus's own
//! object manager would list the tombstones; this one lists only what exists.

use std::borrow::Cow;
use std::collections::HashMap;

use driverprofiled_api::{interface, path};
use zbus::fdo::ManagedObjects;
use zbus::names::{InterfaceName, OwnedInterfaceName};
use zbus::object_server::SignalEmitter;
use zbus::{ObjectPath, OwnedObjectPath, OwnedVariant, Variant};

use super::ifaces::Shared;
use super::props::{self, Props};
use super::to_variant;
use crate::config::Config;
use crate::core::view::View;

/// Tombstones recreated at start: the most recently deleted ids (ids are never reused).
pub const TOMBSTONES_AT_START: usize = 64;
/// Most tombstones kept while running. Past this (a thousand deletions in one run) the oldest
/// is dropped, and zbus then sends a second `InterfacesRemoved` for it: it cannot unexport an
/// object below an object manager silently.
pub const MAX_TOMBSTONES: usize = 1024;

pub struct ObjectManager {
    pub shared: Shared,
}

fn variants(props: Props) -> HashMap<String, OwnedVariant> {
    props
        .iter()
        .filter_map(|(name, v)| {
            Some((
                name.to_string(),
                OwnedVariant::try_from(to_variant(v)).ok()?,
            ))
        })
        .collect()
}

fn entry(out: &mut ManagedObjects, object: String, iface: &'static str, props: Props) {
    let iface = OwnedInterfaceName::from(InterfaceName::from_static_str_unchecked(iface));
    out.insert(
        OwnedObjectPath::from(ObjectPath::from_string_unchecked(object)),
        HashMap::from([(iface, variants(props))]),
    );
}

/// Every profile and actuator with all its properties.
fn managed_objects(v: &View, cfg: &Config) -> ManagedObjects {
    let mut out = ManagedObjects::new();
    for p in &v.profiles {
        entry(
            &mut out,
            props::profile_path(p.id),
            interface::PROFILE,
            props::profile(p),
        );
    }
    for (ac, a) in cfg.axes.iter().zip(&v.axes) {
        let mut all = props::actuator_const(ac);
        all.extend(props::actuator(a));
        entry(
            &mut out,
            path::actuator_path(&ac.name),
            interface::ACTUATOR,
            all,
        );
    }
    out
}

#[zbus::interface(name = "org.freedesktop.DBus.ObjectManager")]
impl ObjectManager {
    /// Every profile and actuator below this object, with the properties of their interfaces
    /// (the same dicts Properties.GetAll returns).
    async fn get_managed_objects(&self) -> ManagedObjects {
        self.shared.read(|v| managed_objects(v, &self.shared.cfg))
    }

    /// An object was added (a profile created), with its interfaces and properties.
    #[zbus(signal)]
    pub async fn interfaces_added(
        emitter: &SignalEmitter<'_>,
        object_path: ObjectPath<'_>,
        interfaces_and_properties: HashMap<InterfaceName<'_>, HashMap<&str, Variant<'_>>>,
    ) -> zbus::Result<()>;

    /// An object was removed (a profile deleted).
    #[zbus(signal)]
    pub async fn interfaces_removed(
        emitter: &SignalEmitter<'_>,
        object_path: ObjectPath<'_>,
        interfaces: Cow<'_, [InterfaceName<'_>]>,
    ) -> zbus::Result<()>;
}
