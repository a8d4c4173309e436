//! The XML under `dbus/` is the contract: it must equal what the running daemon introspects.

use crate::common;

use std::collections::BTreeMap;

use common::*;
use zbus_xml::{ArgDirection, Interface, Node, PropertyAccess};

/// An interface as comparable lines: members, argument names, types, directions, access and
/// annotations. Doc comments are not compared.
fn describe(i: &Interface<'_>) -> Vec<String> {
    let args = |args: &[zbus_xml::Arg<'_>]| {
        args.iter()
            .map(|a| {
                let dir = match a.direction() {
                    Some(ArgDirection::In) => "in ",
                    Some(ArgDirection::Out) => "out ",
                    None => "",
                };
                format!("{dir}{} {}", a.ty(), a.name().unwrap_or("?"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let annotations = |an: &[zbus_xml::Annotation<'_>]| {
        an.iter()
            .map(|a| format!(" @{}={}", a.name(), a.value()))
            .collect::<String>()
    };
    let mut out = Vec::new();
    for m in i.methods() {
        out.push(format!(
            "method {}({}){}",
            m.name(),
            args(m.args()),
            annotations(m.annotations())
        ));
    }
    for s in i.signals() {
        out.push(format!(
            "signal {}({}){}",
            s.name(),
            args(s.args()),
            annotations(s.annotations())
        ));
    }
    for p in i.properties() {
        let access = match p.access() {
            PropertyAccess::Read => "read",
            PropertyAccess::Write => "write",
            PropertyAccess::ReadWrite => "readwrite",
        };
        out.push(format!(
            "property {} {} {access}{}",
            p.name(),
            p.ty(),
            annotations(p.annotations())
        ));
    }
    out.sort();
    out
}

/// The daemon's introspection XML of the object at `path`.
async fn introspect_xml(s: &Setup, path: &str) -> String {
    let proxy = zbus::fdo::IntrospectableProxy::builder(&s.conn)
        .destination(NAME)
        .path(path.to_string())
        .build()
        .await
        .unwrap();
    proxy.introspect().await.unwrap()
}

async fn introspect(s: &Setup, path: &str) -> Node<'static> {
    Node::from_reader(introspect_xml(s, path).await.as_bytes()).unwrap()
}

#[tokio::test]
async fn dbus_xml_matches_the_running_daemon() {
    let s = Setup::new().await;
    let profile = s.manager().await.create_profile("Anna").await.unwrap();

    // What the daemon serves, per object kind.
    let mut served: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut on_root = Vec::new();
    for path in [
        ROOT,
        profile.as_str(),
        "/org/driverprofiled1/actuators/seat_position",
    ] {
        for i in introspect(&s, path).await.interfaces() {
            if path == ROOT {
                on_root.push(i.name().to_string());
            }
            if i.name().starts_with("org.driverprofiled1.") {
                served.insert(i.name().to_string(), describe(i));
            }
        }
    }
    assert!(
        on_root.contains(&"org.freedesktop.DBus.ObjectManager".to_string()),
        "{on_root:?}"
    );
    for want in ["Manager", "Vehicle", "Mock"] {
        assert!(
            on_root.contains(&format!("org.driverprofiled1.{want}")),
            "{on_root:?}"
        );
    }

    // What the contract says.
    let mut contract: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dbus");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            let node = Node::from_reader(std::fs::File::open(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for i in node.interfaces() {
                let file = path.file_stem().unwrap().to_string_lossy().into_owned();
                assert_eq!(
                    file,
                    i.name().to_string(),
                    "one interface per file, named after it"
                );
                contract.insert(i.name().to_string(), describe(i));
            }
        }
    }

    assert_eq!(
        contract.keys().collect::<Vec<_>>(),
        served.keys().collect::<Vec<_>>(),
        "interfaces in dbus/ and on the bus differ"
    );
    for (name, lines) in &contract {
        assert_eq!(
            lines, &served[name],
            "{name}: dbus/{name}.xml differs from the daemon"
        );
    }
}

/// The `<interface name="NAME">…</interface>` block of `xml`, as text.
fn interface_block<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    // At the top level of a node only (two spaces in), not a child node's copy.
    let open = format!("\n  <interface name=\"{name}\">");
    let close = "\n  </interface>\n";
    let start = xml.find(&open)? + 1;
    let end = start + xml[start..].find(close)? + close.len();
    Some(&xml[start..end])
}

/// The XML files are golden files of the daemon's introspection, doc comments included: each
/// file's `<interface>` block must be exactly what the daemon serves. After an intended change
/// of the API's docs, rewrite the blocks with
/// `DRIVERPROFILED_BLESS_XML=1 cargo test --test it introspection`, and review the diff: the
/// XML is the contract (extend, never rename).
#[tokio::test]
async fn dbus_xml_docs_are_what_the_daemon_serves() {
    let s = Setup::new().await;
    let profile = s.manager().await.create_profile("Anna").await.unwrap();
    let mut served = String::new();
    for path in [
        ROOT.to_string(),
        profile.to_string(),
        actuator_path("seat_position"),
    ] {
        served.push_str(&introspect_xml(&s, &path).await);
    }
    let bless = std::env::var_os("DRIVERPROFILED_BLESS_XML").is_some();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dbus");
    let mut seen = Vec::new();
    for name in driverprofiled_api::interface::ALL {
        let path = format!("{dir}/{name}.xml");
        let file = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let want =
            interface_block(&served, name).unwrap_or_else(|| panic!("the daemon serves no {name}"));
        let have = interface_block(&file, name).unwrap_or_else(|| panic!("{path}: no {name}"));
        if have != want {
            if bless {
                std::fs::write(&path, file.replace(have, want)).unwrap();
                eprintln!("rewrote {path}");
            } else {
                panic!(
                    "{path} differs from what the daemon serves \
                     (DRIVERPROFILED_BLESS_XML=1 rewrites it):\n--- file\n{have}\n--- daemon\n{want}"
                );
            }
        }
        seen.push(format!("{name}.xml"));
    }
    // Every file is an interface of the api crate, and the other way round.
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    files.sort();
    seen.sort();
    assert_eq!(
        files, seen,
        "dbus/ and driverprofiled_api::interface::ALL differ"
    );
}
