//! Replies that zbus's object server builds itself (unknown property, method, interface or
//! object, arguments of the wrong signature, Set of a read-only property) keep the daemon's
//! promise: at most ~64 characters of what the client sent, escaped, and the right error name.

use crate::common;

use common::*;
use driverprofiled_api::{interface, path};
use zbus::wire::{StructureBuilder, Variant};

/// Longest error message accepted: 64 quoted characters, the ellipsis and the size, and the
/// few words around them.
const MESSAGE_MAX: usize = 100;
/// Longest message that names two things, the client's and the expected one.
const MISMATCH_MAX: usize = 128;

/// A 1 MiB name full of control and bidi characters (no NUL: D-Bus strings cannot hold one).
fn huge_name() -> String {
    let unit = "Ab\u{1b}[2J\u{202e}\n\u{7}";
    unit.repeat((1 << 20) / unit.len() + 1)
}

/// The error name and message of a failed call; panics if it succeeded.
fn error_of<T: std::fmt::Debug>(r: zbus::Result<T>) -> (String, String) {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(zbus::Error::MethodError(name, desc, _)) => {
            (name.to_string(), desc.unwrap_or_default())
        }
        Err(zbus::Error::FDO(e)) => {
            let e: &dyn zbus::DBusError = e.as_ref();
            (
                e.name().to_string(),
                e.description().unwrap_or_default().to_string(),
            )
        }
        Err(e) => panic!("expected a D-Bus error reply, got {e:?}"),
    }
}

/// The message is short, and shows no raw control or bidi characters.
fn assert_bounded(msg: &str, what: &str) {
    assert_bounded_by(msg, MESSAGE_MAX, what)
}

fn assert_bounded_by(msg: &str, max: usize, what: &str) {
    assert!(
        msg.chars().count() <= max,
        "{what}: {} characters: {:?}",
        msg.chars().count(),
        msg.chars().take(200).collect::<String>()
    );
    assert!(
        !msg.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{what}: raw control characters in {msg:?}"
    );
}

async fn call<B>(s: &Setup, path: &str, iface: &str, member: &str, body: &B) -> (String, String)
where
    B: serde::Serialize + zbus::wire::DynamicType,
{
    error_of(
        s.conn
            .call_method(Some(NAME), path, Some(iface), member, body)
            .await,
    )
}

const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

#[tokio::test]
async fn unknown_property_names_are_quoted_short() {
    let s = Setup::new().await;
    let name = huge_name();

    let (e, msg) = call(
        &s,
        path::ROOT,
        PROPERTIES,
        "Get",
        &(interface::MANAGER, &name),
    )
    .await;
    assert_eq!(
        e, "org.freedesktop.DBus.Error.UnknownProperty",
        "Get: {msg}"
    );
    assert_bounded(&msg, "Get");
    assert!(
        msg.contains("Ab\\u{1b}[2J\\u{202e}\\u{a}\\u{7}"),
        "Get shows the start escaped: {msg}"
    );

    let value = Variant::from("x");
    let (e, msg) = call(
        &s,
        path::ROOT,
        PROPERTIES,
        "Set",
        &(interface::MANAGER, &name, &value),
    )
    .await;
    assert_eq!(
        e, "org.freedesktop.DBus.Error.UnknownProperty",
        "Set: {msg}"
    );
    assert_bounded(&msg, "Set");
}

#[tokio::test]
async fn unknown_interfaces_of_properties_are_quoted_short() {
    let s = Setup::new().await;
    // An interface name has at most 255 characters.
    let iface = format!("org.{}", "x".repeat(250));
    for (member, r) in [
        (
            "GetAll",
            call(&s, path::ROOT, PROPERTIES, "GetAll", &(&iface,)).await,
        ),
        (
            "Get",
            call(&s, path::ROOT, PROPERTIES, "Get", &(&iface, "State")).await,
        ),
    ] {
        let (e, msg) = r;
        assert_eq!(
            e, "org.freedesktop.DBus.Error.UnknownInterface",
            "{member}: {msg}"
        );
        assert_bounded(&msg, member);
    }
}

#[tokio::test]
async fn unknown_methods_interfaces_and_objects_are_quoted_short() {
    let s = Setup::new().await;
    // A member or interface name has at most 255 characters; a path has no limit of its own.
    let member = format!("M{}", "x".repeat(254));
    let (e, msg) = call(&s, path::ROOT, interface::MANAGER, &member, &()).await;
    assert_eq!(e, "org.freedesktop.DBus.Error.UnknownMethod", "{msg}");
    assert_bounded(&msg, "unknown method");

    let iface = format!("org.{}", "y".repeat(250));
    let (e, msg) = call(&s, path::ROOT, &iface, "Foo", &()).await;
    assert_eq!(e, "org.freedesktop.DBus.Error.UnknownInterface", "{msg}");
    assert_bounded(&msg, "unknown interface");

    let far = format!("{}/{}", path::ROOT, "z".repeat(100_000));
    let (e, msg) = call(&s, &far, interface::MANAGER, "Stop", &()).await;
    assert_eq!(e, "org.freedesktop.DBus.Error.UnknownObject", "{msg}");
    assert_bounded(&msg, "unknown object");
    let (e, msg) = call(
        &s,
        &far,
        "org.freedesktop.DBus.Introspectable",
        "Introspect",
        &(),
    )
    .await;
    // An unknown path answers either way; the message is short whichever it is.
    assert!(
        e.starts_with("org.freedesktop.DBus.Error.Unknown"),
        "{e}: {msg}"
    );
    assert_bounded(&msg, "introspect of an unknown object");
}

#[tokio::test]
async fn arguments_of_a_long_wrong_signature_are_quoted_short() {
    let s = Setup::new().await;
    let mut b = StructureBuilder::new();
    for _ in 0..250 {
        b = b.add_field(0u8);
    }
    let body = b.build().expect("a structure of 250 bytes");
    let (e, msg) = call(&s, path::ROOT, interface::MANAGER, "CreateProfile", &body).await;
    assert_eq!(e, "org.freedesktop.DBus.Error.InvalidArgs", "{msg}");
    assert_bounded_by(&msg, MISMATCH_MAX, "wrong signature");
    assert!(msg.contains("(yyyy"), "the signature is shown: {msg}");
}

#[tokio::test]
async fn set_of_a_read_only_property_is_property_read_only() {
    let s = Setup::new().await;
    let m = s.manager().await;
    let before = m.state().await.expect("State");
    let value = Variant::from("Moving");
    let (e, msg) = call(
        &s,
        path::ROOT,
        PROPERTIES,
        "Set",
        &(interface::MANAGER, "State", &value),
    )
    .await;
    assert_eq!(e, "org.freedesktop.DBus.Error.PropertyReadOnly", "{msg}");
    assert_bounded(&msg, "read-only");
    assert_eq!(m.state().await.expect("State"), before, "Set changed State");

    // Every property the daemon serves read-only says so, on every interface.
    let props = s.properties(path::ROOT).await;
    let all = props
        .get_all(interface::MANAGER.try_into().expect("interface name"))
        .await
        .expect("GetAll");
    assert!(all.contains_key("State"), "GetAll has State: {all:?}");
    let (e, _) = call(
        &s,
        &actuator_path(AXES[0]),
        PROPERTIES,
        "Set",
        &(interface::ACTUATOR, "Position", &Variant::from(1.0)),
    )
    .await;
    assert_eq!(e, "org.freedesktop.DBus.Error.PropertyReadOnly");
}
