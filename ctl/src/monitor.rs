//! `monitor`: every signal of the service as it comes — one line each (text, or a JSON object
//! with `--json`), or, on a terminal, a live view of every axis that redraws in place.

use std::collections::HashMap;
use std::io::IsTerminal;

use futures_util::StreamExt;
use serde_json::{Value, json};
use zbus::{Connection, Message, OwnedVariant};

use driverprofiled_api::path::{self, ROOT};
use driverprofiled_api::{BUS_NAME, interface};

use crate::bus::{Fail, Snapshot, describe_path, exit, to_json};

pub mod keys;

/// One signal, decoded.
struct Event {
    json: Value,
    text: String,
    /// Property changes of an object: (path, interface, changed).
    changed: Option<(String, String, HashMap<String, OwnedVariant>)>,
}

pub async fn run(conn: &Connection, json: bool) -> Result<(), Fail> {
    // Subscribe before reading the snapshot, so that no change falls between the two.
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(BUS_NAME)
        .path_namespace(ROOT)
        .build()?;
    let mut signals = zbus::MessageStream::for_match_rule(rule, conn, None).await?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut owner = dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    let live = !json && std::io::stdout().is_terminal();
    let mut view = if live {
        Some(Live::new(Snapshot::read(conn).await?))
    } else {
        None
    };
    if let Some(v) = &mut view {
        v.draw("");
    }
    loop {
        tokio::select! {
            msg = signals.next() => {
                let Some(msg) = msg else { break };
                let Ok(msg) = msg else { continue };
                // A well-known sender cannot be checked locally: keep only the service's paths.
                let Some(ev) = decode(&msg) else { continue };
                match &mut view {
                    Some(v) => {
                        if let Some((p, iface, changed)) = &ev.changed {
                            v.update(p, iface, changed);
                        }
                        let text = ev.text.clone();
                        v.draw(&text);
                    }
                    None if json => println!("{}", ev.json),
                    None => println!("{}", ev.text),
                }
            }
            sig = owner.next() => {
                let Some(sig) = sig else { break };
                let Ok(args) = sig.args() else { continue };
                let new = args.new_owner().as_ref().map(|o| o.to_string()).unwrap_or_default();
                let text = if new.is_empty() {
                    format!("{BUS_NAME} has no owner now")
                } else {
                    format!("{BUS_NAME} owned by {new}")
                };
                match &mut view {
                    Some(v) => {
                        if !new.is_empty()
                            && let Ok(s) = Snapshot::read(conn).await
                        {
                            v.snap = s;
                        }
                        v.draw(&text);
                    }
                    None if json => println!(
                        "{}",
                        json!({"version": 1, "signal": "NameOwnerChanged", "name": BUS_NAME,
                               "owner": new})
                    ),
                    None => println!("NameOwnerChanged {text}"),
                }
            }
        }
        crate::flush();
    }
    Err(Fail::new(exit::UNAVAILABLE, "the bus connection ended"))
}

fn short(p: &str) -> &str {
    p.strip_prefix(ROOT)
        .map(|s| s.trim_start_matches('/'))
        .filter(|s| !s.is_empty())
        .unwrap_or(p)
}

fn decode(msg: &Message) -> Option<Event> {
    let h = msg.header();
    let p = h.path()?.as_str().to_string();
    if !p.starts_with(ROOT) {
        return None;
    }
    let iface = h.interface().map(|i| i.to_string()).unwrap_or_default();
    let member = h.member()?.to_string();
    let body = msg.body();
    let ev = match member.as_str() {
        "PropertiesChanged" => {
            let (of, changed, invalidated): (String, HashMap<String, OwnedVariant>, Vec<String>) =
                body.deserialize().ok()?;
            let mut names: Vec<&String> = changed.keys().collect();
            names.sort();
            let mut text = format!("PropertiesChanged {}", short(&p));
            for n in names {
                let v = to_json(&changed[n]);
                text += &format!(" {n}={}", plain(&v));
            }
            for n in &invalidated {
                text += &format!(" {n}=(invalidated)");
            }
            let obj: serde_json::Map<String, Value> = changed
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect();
            Event {
                json: json!({"version": 1, "signal": member, "path": p, "interface": of,
                             "changed": obj, "invalidated": invalidated}),
                text,
                changed: Some((p, of, changed)),
            }
        }
        "MotionStarted" => {
            let (reason, profile): (String, zbus::OwnedObjectPath) = body.deserialize().ok()?;
            let id = path::profile_id(profile.as_str()).unwrap_or("none");
            Event {
                text: format!("MotionStarted reason={reason} profile={id}"),
                json: json!({"version": 1, "signal": member, "path": p, "reason": reason,
                             "profile": profile.as_str()}),
                changed: None,
            }
        }
        "MotionFinished" => {
            let (reason, outcome): (String, String) = body.deserialize().ok()?;
            Event {
                text: format!("MotionFinished reason={reason} outcome={outcome}"),
                json: json!({"version": 1, "signal": member, "path": p, "reason": reason,
                             "outcome": outcome}),
                changed: None,
            }
        }
        "InterfacesAdded" | "InterfacesRemoved" => {
            let args = body
                .deserialize::<zbus::Structure<'_>>()
                .ok()
                .map(|s| s.fields().iter().map(to_json).collect::<Vec<_>>())
                .unwrap_or_default();
            let obj = args
                .first()
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            Event {
                text: format!("{member} {}", short(&obj)),
                json: json!({"version": 1, "signal": member, "path": p, "object": obj}),
                changed: None,
            }
        }
        _ => {
            let args = body
                .deserialize::<zbus::Structure<'_>>()
                .ok()
                .map(|s| s.fields().iter().map(to_json).collect::<Vec<_>>())
                .unwrap_or_default();
            Event {
                text: format!(
                    "{member} {} {}",
                    short(&p),
                    args.iter().map(plain).collect::<Vec<_>>().join(" ")
                ),
                json: json!({"version": 1, "signal": member, "path": p, "interface": iface,
                             "args": args}),
                changed: None,
            }
        }
    };
    Some(ev)
}

/// A JSON value for a text line: strings bare, NaN/null as "unknown", numbers rounded.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "unknown".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{}", (f * 100.0).round() / 100.0),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Cells of an axis' bar in the live view.
const BAR: usize = 20;

/// The live view: every axis, redrawn in place: its numbers, and a bar between its limits
/// with the target marked, so that the seat and the mirrors are seen to travel.
struct Live {
    snap: Snapshot,
    lines: usize,
}

impl Live {
    fn new(snap: Snapshot) -> Live {
        Live { snap, lines: 0 }
    }

    fn update(&mut self, p: &str, iface: &str, changed: &HashMap<String, OwnedVariant>) {
        let props = if iface == interface::ACTUATOR {
            self.snap
                .actuators
                .iter_mut()
                .find(|a| a.path == p)
                .map(|a| &mut a.props)
        } else if iface == interface::MANAGER {
            Some(&mut self.snap.manager)
        } else if iface == interface::VEHICLE {
            Some(&mut self.snap.vehicle)
        } else {
            None
        };
        if let Some(props) = props {
            for (k, v) in changed {
                if let Ok(v) = v.try_clone() {
                    props.0.insert(k.clone(), v);
                }
            }
        }
    }

    fn draw(&mut self, last: &str) {
        let s = &self.snap;
        let mut out = String::new();
        if self.lines > 0 {
            out += &format!("\x1b[{}A", self.lines);
        }
        let mut lines = vec![
            format!(
                "state {}  active {}  gear {}  interlock {}",
                s.manager.str("State"),
                describe_path(s, &s.active_path()),
                s.vehicle.str("Gear"),
                match s.vehicle.str("Interlock") {
                    i if i.is_empty() => "none".to_string(),
                    i => i,
                }
            ),
            format!(
                "{:<21} {:>7} {:>7} {:<7} {:<6} {:<w$} FAULT",
                "AXIS",
                "POSITION",
                "TARGET",
                "UNIT",
                "MOVING",
                "[# at | target]",
                w = BAR + 2
            ),
        ];
        for a in &s.actuators {
            let target = a.props.f64("Target");
            lines.push(format!(
                "{:<21} {:>7} {:>7} {:<7} {:<6} [{}] {}",
                a.name,
                num(a.position()),
                num(target),
                a.unit(),
                if a.props.bool("Moving") { "yes" } else { "-" },
                crate::bar::axis(a.min(), a.max(), a.position(), target, BAR),
                a.props.str("Fault")
            ));
        }
        lines.push(format!("last: {last}"));
        // One screen row per line, or moving up by `lines` would not land on the first.
        let (cols, _) = crate::bar::terminal_size();
        for l in &lines {
            out += "\r\x1b[2K";
            out += &crate::bar::fit(l, cols);
            out += "\n";
        }
        self.lines = lines.len();
        print!("{out}");
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{v:.1}"),
        None => "?".into(),
    }
}
