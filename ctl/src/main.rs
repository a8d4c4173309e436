//! `driverprofilectl`: the command-line client of driverprofiled, for OTA update scripts,
//! integrators and developers. Everything goes through the D-Bus API (the
//! `driverprofiled-api` proxies); only `check-config` and `check-state` read files, with the
//! daemon's own parsers.

mod bar;
mod bus;
mod check;
mod cli;
mod inhibit;
mod monitor;
mod transfer;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use futures_util::StreamExt;
use serde_json::{Value, json};
use zbus::Connection;
use zbus::proxy::CacheProperties;

use driverprofiled::core::quote;
use driverprofiled_api::path::ROOT;
use driverprofiled_api::proxy::{ManagerProxy, ProfileProxy};
use driverprofiled_api::{BUS_NAME, Outcome, Reason, interface};

use bus::{Fail, Snapshot, describe_path, exit};
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::*;
            let code = match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => exit::OK,
                _ => exit::USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Commands that need no bus.
    let local = match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "driverprofilectl", &mut std::io::stdout());
            Some(Ok(()))
        }
        Command::Man => Some(
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| Fail::new(exit::IOERR, format!("cannot write: {e}"))),
        ),
        Command::CheckConfig { file, state } => Some(check::config(file, state.as_deref())),
        Command::CheckState { dir } => Some(check::state(dir)),
        Command::Inhibit { why, who, command } => {
            // Not async: it only waits for its child. The fd is taken on a runtime of its own.
            return ExitCode::from(inhibit::run(&cli.bus, who, why, command));
        }
        _ => None,
    };
    let result = match local {
        Some(r) => r,
        None => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(run(cli)),
            Err(e) => Err(Fail::new(
                exit::SOFTWARE,
                format!("cannot start the runtime: {e}"),
            )),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("driverprofilectl: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Fail> {
    let conn = bus::connect(&cli.bus).await?;
    let json = cli.json;
    match cli.command {
        Command::Status => status(&conn, json).await,
        Command::List => list(&conn, json).await,
        Command::Show { profile } => show(&conn, &profile, json).await,
        Command::Create {
            name,
            from_current: _,
            positions,
        } => create(&conn, &name, &positions).await,
        Command::Rename { profile, new_name } => {
            let p = profile_proxy(&conn, &profile).await?;
            p.set_name(&new_name).await?;
            Ok(())
        }
        Command::Delete { profile } => Ok(profile_proxy(&conn, &profile).await?.delete().await?),
        Command::Set {
            profile,
            positions,
            auto_save,
            reverse_tilt,
        } => {
            let positions = parse_positions(&positions)?;
            let p = profile_proxy(&conn, &profile).await?;
            let mut enabled = None;
            let mut tilt = None;
            for arg in reverse_tilt {
                match arg {
                    cli::ReverseTilt::Enabled(on) => enabled = Some(on),
                    cli::ReverseTilt::Position(axis, v) => {
                        if tilt.is_none() {
                            tilt = Some(p.reverse_tilt().await?);
                        }
                        let map = tilt.get_or_insert_default();
                        match v {
                            Some(v) => map.insert(axis, v),
                            None => map.remove(&axis),
                        };
                    }
                }
            }
            if let Some(map) = tilt {
                p.set_reverse_tilt(map).await?;
            }
            if !positions.is_empty() {
                p.set_positions(positions.iter().map(|(k, v)| (k.as_str(), *v)).collect())
                    .await?;
            }
            if let Some(on) = auto_save {
                p.set_auto_save(on).await?;
            }
            if let Some(on) = enabled {
                p.set_reverse_tilt_enabled(on).await?;
            }
            Ok(())
        }
        Command::Save { profile } => Ok(profile_proxy(&conn, &profile)
            .await?
            .save_current_positions()
            .await?),
        Command::Bind { profile, key } => {
            Ok(profile_proxy(&conn, &profile).await?.bind_key(&key).await?)
        }
        Command::Unbind { profile, key } => Ok(profile_proxy(&conn, &profile)
            .await?
            .unbind_key(&key)
            .await?),
        Command::Select { profile, wait } => select(&conn, &profile, wait, json).await,
        Command::Stop => Ok(ManagerProxy::new(&conn).await?.stop().await?),
        Command::Monitor { keys: false } => monitor::run(&conn, json).await,
        Command::Monitor { keys: true } => monitor::keys::run(&conn, json).await,
        Command::Export { file } => transfer::export(&conn, file.as_deref()).await,
        Command::Import(args) => transfer::import(&conn, &args).await,
        Command::WaitReady { timeout } => wait_ready(&conn, timeout).await,
        Command::Completions { .. }
        | Command::Man
        | Command::CheckConfig { .. }
        | Command::CheckState { .. }
        | Command::Inhibit { .. } => Err(Fail::new(exit::SOFTWARE, "handled before")),
    }
}

/// Print a JSON document on one line.
pub fn print_json(v: &Value) {
    println!("{v}");
}

async fn profile_proxy(conn: &Connection, which: &str) -> Result<ProfileProxy<'static>, Fail> {
    let snap = Snapshot::read(conn).await?;
    let p = snap.find(which)?;
    Ok(ProfileProxy::builder(conn)
        .path(p.path.clone())
        .cache_properties(CacheProperties::No)
        .build()
        .await?)
}

/// `AXIS=VALUE` pairs; a value must be a finite number.
fn parse_positions(args: &[String]) -> Result<Vec<(String, f64)>, Fail> {
    args.iter()
        .map(|a| {
            let bad = || {
                Fail::new(
                    exit::USAGE,
                    format!("{}: expected AXIS=VALUE, e.g. seat_position=180", quote(a)),
                )
            };
            let (axis, v) = a.split_once('=').ok_or_else(bad)?;
            let v: f64 = v.trim().parse().map_err(|_| bad())?;
            if axis.is_empty() || !v.is_finite() {
                return Err(bad());
            }
            Ok((axis.to_string(), v))
        })
        .collect()
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{}", (v * 100.0).round() / 100.0),
        None => "unknown".into(),
    }
}

async fn status(conn: &Connection, json: bool) -> Result<(), Fail> {
    let snap = Snapshot::read(conn).await?;
    let m = &snap.manager;
    let v = &snap.vehicle;
    let active = snap.find_path(&snap.active_path());
    let faults: Vec<Value> = snap
        .actuators
        .iter()
        .filter(|a| !a.props.str("Fault").is_empty())
        .map(|a| json!({"axis": a.name, "fault": a.props.str("Fault")}))
        .collect();
    let inhibitors: Vec<Value> = match m.json("Inhibitors") {
        Value::Array(a) => a
            .into_iter()
            .map(|i| json!({"who": i[0], "why": i[1], "uid": i[2], "pid": i[3]}))
            .collect(),
        _ => Vec::new(),
    };
    let vehicle_keys = [
        "Gear",
        "SpeedKmh",
        "DriverDoorOpen",
        "DriverSeatOccupied",
        "DriverBeltBuckled",
        "BrakePressed",
        "RearOccupied",
        "ManualControl",
        "DoorsLocked",
    ];
    if json {
        let vehicle: serde_json::Map<String, Value> =
            vehicle_keys.iter().map(|k| (snake(k), v.json(k))).collect();
        print_json(&json!({
            "version": 1,
            "daemon_version": m.str("Version"),
            "backend": m.str("Backend"),
            "state": m.str("State"),
            "active_profile": active.map(|p| json!({
                "id": p.id,
                "name": p.name,
                "auto_save": p.auto_save,
                "reverse_tilt_enabled": p.reverse_tilt_enabled,
                "reverse_tilt": p.reverse_tilt,
            })),
            "easy_exit_active": m.bool("EasyExitActive"),
            "vehicle": vehicle,
            "vehicle_source": v.str("Source"),
            "interlock": v.str("Interlock"),
            "nearest_key": v.str("NearestKey"),
            "faults": faults,
            "storage_error": m.str("StorageError"),
            "store_status": m.str("StoreStatus"),
            "inhibitors": inhibitors,
            "ready": snap.ready(),
        }));
        return Ok(());
    }
    let or = |s: String, none: &str| if s.is_empty() { none.to_string() } else { s };
    println!(
        "driverprofiled {} (backend {})",
        m.str("Version"),
        m.str("Backend")
    );
    println!("state:          {}", m.str("State"));
    println!(
        "active profile: {}",
        describe_path(&snap, &snap.active_path())
    );
    if let Some(p) = active {
        println!("auto-save:      {}", yes(p.auto_save, "on", "off"));
        println!("reverse tilt:   {}", describe_reverse_tilt(&snap, p));
    }
    println!(
        "easy exit:      {}",
        if m.bool("EasyExitActive") {
            "active (retracted)"
        } else {
            "not active"
        }
    );
    println!(
        "vehicle:        gear {}, {} km/h, door {}, seat {}, belt {}, brake {}, rear {}, manual {}, locked {}",
        or(v.str("Gear"), "?"),
        match v.f64("SpeedKmh") {
            Some(s) if s >= 0.0 => fmt_num(Some(s)),
            _ => "?".into(),
        },
        yes(v.bool("DriverDoorOpen"), "open", "closed"),
        yes(v.bool("DriverSeatOccupied"), "occupied", "empty"),
        yes(v.bool("DriverBeltBuckled"), "buckled", "unbuckled"),
        yes(v.bool("BrakePressed"), "pressed", "released"),
        yes(v.bool("RearOccupied"), "occupied", "empty"),
        yes(v.bool("ManualControl"), "yes", "no"),
        yes(v.bool("DoorsLocked"), "yes", "no"),
    );
    println!(
        "signals from:   {}",
        match v.str("Source").as_str() {
            "dbus" => "D-Bus (Vehicle.UpdateSignals)".to_string(),
            "kuksa" => "the KUKSA databroker".to_string(),
            other => or(other.to_string(), "?"),
        }
    );
    println!(
        "interlock:      {}",
        or(v.str("Interlock"), "none (motion allowed)")
    );
    println!("nearest key:    {}", or(v.str("NearestKey"), "none"));
    if faults.is_empty() {
        println!("faults:         none");
    } else {
        for f in &faults {
            println!(
                "fault:          {}: {}",
                f["axis"].as_str().unwrap_or(""),
                f["fault"].as_str().unwrap_or("")
            );
        }
    }
    println!("storage:        {}", or(m.str("StorageError"), "ok"));
    if m.has("StoreStatus") {
        println!(
            "store:          {}",
            or(m.str("StoreStatus"), "loaded as found")
        );
    }
    if inhibitors.is_empty() {
        println!("inhibitors:     none");
    } else {
        for i in &inhibitors {
            println!(
                "inhibited by:   {} ({}), uid {}, pid {}",
                i["who"].as_str().unwrap_or(""),
                i["why"].as_str().unwrap_or(""),
                i["uid"],
                i["pid"]
            );
        }
    }
    if !snap.ready() {
        println!("positions:      not all known yet");
    }
    Ok(())
}

fn yes(b: bool, t: &'static str, f: &'static str) -> &'static str {
    if b { t } else { f }
}

/// "SpeedKmh" -> "speed_kmh".
fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl Snapshot {
    fn find_path(&self, p: &str) -> Option<&bus::Profile> {
        self.profiles.iter().find(|x| x.path == p)
    }
}

async fn list(conn: &Connection, json: bool) -> Result<(), Fail> {
    let snap = Snapshot::read(conn).await?;
    let active = snap.active_path();
    if json {
        let profiles: Vec<Value> = snap
            .profiles
            .iter()
            .map(|p| p.to_json(p.path == active))
            .collect();
        print_json(&json!({"version": 1, "profiles": profiles}));
        return Ok(());
    }
    if snap.profiles.is_empty() {
        println!("no profiles");
        return Ok(());
    }
    let w = snap
        .profiles
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("  {:>4}  {:<w$}  {:<9}  KEYS", "ID", "NAME", "EASY-EXIT");
    for p in &snap.profiles {
        println!(
            "{} {:>4}  {:<w$}  {:<9}  {}",
            if p.path == active { "*" } else { " " },
            p.id,
            p.name,
            yes(p.easy_exit, "on", "off"),
            p.keys.join(",")
        );
    }
    Ok(())
}

async fn show(conn: &Connection, which: &str, json: bool) -> Result<(), Fail> {
    let snap = Snapshot::read(conn).await?;
    let p = snap.find(which)?;
    let active = p.path == snap.active_path();
    if json {
        let mut v = p.to_json(active);
        v["version"] = json!(1);
        print_json(&v);
        return Ok(());
    }
    println!(
        "profile {}: {}{}",
        p.id,
        p.name,
        yes(active, " (active)", "")
    );
    println!("easy exit: {}", yes(p.easy_exit, "on", "off"));
    println!("auto-save: {}", yes(p.auto_save, "on", "off"));
    println!("reverse tilt: {}", describe_reverse_tilt(&snap, p));
    println!(
        "keys: {}",
        if p.keys.is_empty() {
            "none".to_string()
        } else {
            p.keys.join(", ")
        }
    );
    for (axis, v) in &p.positions {
        let unit = snap.actuator(axis).map(|a| a.unit()).unwrap_or_default();
        println!("  {axis:<18} {:>8} {unit}", fmt_num(Some(*v)));
    }
    Ok(())
}

/// "on, mirror_passenger_tilt -40 percent", "on (the configured offset)", "off".
fn describe_reverse_tilt(snap: &Snapshot, p: &bus::Profile) -> String {
    if !p.reverse_tilt_enabled {
        return "off".into();
    }
    if p.reverse_tilt.is_empty() {
        return "on (the configured offset)".into();
    }
    let axes: Vec<String> = (p.reverse_tilt.iter())
        .map(|(axis, v)| {
            let unit = snap.actuator(axis).map(|a| a.unit()).unwrap_or_default();
            format!("{axis} {} {unit}", fmt_num(Some(*v)))
        })
        .collect();
    format!("on, {}", axes.join(", "))
}

async fn create(conn: &Connection, name: &str, positions: &[String]) -> Result<(), Fail> {
    let positions = parse_positions(positions)?;
    let m = ManagerProxy::new(conn).await?;
    let path = m.create_profile(name).await?;
    if !positions.is_empty() {
        let p = ProfileProxy::builder(conn)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let set = p
            .set_positions(positions.iter().map(|(k, v)| (k.as_str(), *v)).collect())
            .await;
        if let Err(e) = set {
            // All or nothing: a profile with positions other than asked for must not stay.
            let undo = p.delete().await;
            let mut f = Fail::dbus(e);
            if let Err(u) = undo {
                f.msg += &format!(
                    " (and the new profile {} could not be deleted again: {})",
                    path.as_str(),
                    Fail::dbus(u).msg
                );
            }
            return Err(f);
        }
    }
    println!(
        "{}",
        driverprofiled_api::profile_id(path.as_str()).unwrap_or(path.as_str())
    );
    Ok(())
}

/// Select; with `wait`, the outcome of the motion it started. The signals are subscribed
/// before the call: the daemon emits `MotionStarted` before its reply.
async fn select(conn: &Connection, which: &str, wait: bool, json: bool) -> Result<(), Fail> {
    let snap = Snapshot::read(conn).await?;
    let p = snap.find(which)?;
    let target = p.path.clone();
    let mut signals = if wait {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(BUS_NAME)
            .path(ROOT)
            .interface(interface::MANAGER)
            .build()?;
        Some(zbus::MessageStream::for_match_rule(rule, conn, None).await?)
    } else {
        None
    };
    // On a terminal, the recall's progress as the axes report where they are.
    let mut progress = match wait && !json && std::io::stdout().is_terminal() {
        true => Some(Progress::start(conn, &snap, p).await?),
        false => None,
    };
    let m = ManagerProxy::new(conn).await?;
    m.select_profile(&zbus::ObjectPath::try_from(target.as_str())?)
        .await?;
    if let Some(pr) = &progress {
        // Only once the recall was accepted: an error is printed on a line of its own.
        pr.draw();
    }
    let Some(signals) = signals.as_mut() else {
        return Ok(());
    };
    let mut ours = false;
    loop {
        let msg = match &mut progress {
            Some(pr) => tokio::select! {
                msg = signals.next() => msg,
                Some(Ok(change)) = pr.changes.next() => {
                    pr.update(&change);
                    continue;
                }
            },
            None => signals.next().await,
        };
        let Some(msg) = msg else { break };
        let msg = msg?;
        let h = msg.header();
        match h.member().map(|m| m.as_str()) {
            Some("MotionStarted") => {
                let (reason, profile): (String, zbus::OwnedObjectPath) =
                    msg.body().deserialize()?;
                ours = reason == Reason::Recall.as_str() && profile.as_str() == target;
            }
            Some("MotionFinished") if ours => {
                let (_, outcome): (String, String) = msg.body().deserialize()?;
                if let Some(pr) = &mut progress {
                    pr.finish(&outcome);
                }
                if outcome == Outcome::Completed.as_str() {
                    return Ok(());
                }
                return Err(Fail::new(
                    exit::TEMPFAIL,
                    format!("the recall of {} ended: {outcome}", p.name),
                ));
            }
            _ => {}
        }
    }
    Err(Fail::new(
        exit::UNAVAILABLE,
        "the bus connection ended before the motion did",
    ))
}

/// `select --wait` on a terminal: one line redrawn in place, the share of the recall's travel
/// done (each axis' distance from where it started to its target) and which axes move.
struct Progress {
    name: String,
    axes: Vec<AxisProgress>,
    changes: zbus::MessageStream,
}

/// One axis of the recall: where it started, its target, where it is, whether it runs.
struct AxisProgress {
    path: String,
    name: String,
    from: f64,
    to: f64,
    now: f64,
    moving: bool,
}

impl Progress {
    async fn start(conn: &Connection, snap: &Snapshot, p: &bus::Profile) -> Result<Progress, Fail> {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(BUS_NAME)
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .path_namespace(driverprofiled_api::path::ACTUATORS)
            .build()?;
        let changes = zbus::MessageStream::for_match_rule(rule, conn, None).await?;
        let axes = snap
            .actuators
            .iter()
            .filter_map(|a| {
                // Min/Max as the daemon shows them; a missing one (NaN) clamps nothing.
                let to = (*p.positions.get(&a.name)?).max(a.min()).min(a.max());
                let from = a.position()?;
                Some(AxisProgress {
                    path: a.path.clone(),
                    name: a.name.clone(),
                    from,
                    to,
                    now: from,
                    moving: false,
                })
            })
            .collect();
        Ok(Progress {
            name: p.name.clone(),
            axes,
            changes,
        })
    }

    fn update(&mut self, msg: &zbus::Message) {
        let h = msg.header();
        let Some(path) = h.path() else { return };
        type Changed = (String, HashMap<String, zbus::OwnedVariant>, Vec<String>);
        let Ok((_, changed, _)) = msg.body().deserialize::<Changed>() else {
            return;
        };
        let Some(a) = self.axes.iter_mut().find(|a| a.path == path.as_str()) else {
            return;
        };
        if let Some(v) = changed.get("Position").and_then(|v| f64::try_from(v).ok())
            && v.is_finite()
        {
            a.now = v;
        }
        if let Some(m) = changed.get("Moving").and_then(|v| bool::try_from(v).ok()) {
            a.moving = m;
        }
        self.draw();
    }

    /// Travel done over travel to do, across the axes that have any.
    fn done(&self) -> f64 {
        let (mut done, mut all) = (0.0, 0.0);
        for a in &self.axes {
            let span = (a.to - a.from).abs();
            all += span;
            done += (span - (a.to - a.now).abs()).clamp(0.0, span);
        }
        if all > 0.0 { done / all } else { 1.0 }
    }

    fn draw(&self) {
        let moving: Vec<&str> = (self.axes.iter())
            .filter(|a| a.moving)
            .map(|a| a.name.as_str())
            .collect();
        let moving = match moving.is_empty() {
            true => String::new(),
            false => format!("  moving: {}", moving.join(", ")),
        };
        let line = format!(
            "recall of {}  {}{moving}",
            self.name,
            bar::progress(self.done(), 30)
        );
        // One screen row, or the next redraw would not clear it all.
        let (cols, _) = bar::terminal_size();
        print!("\r\x1b[2K{}", bar::fit(&line, cols.saturating_sub(1)));
        flush();
    }

    fn finish(&mut self, outcome: &str) {
        if outcome == Outcome::Completed.as_str() {
            self.axes.iter_mut().for_each(|a| a.now = a.to);
        }
        println!(
            "\r\x1b[2Krecall of {}  {}  {outcome}",
            self.name,
            bar::progress(self.done(), 30)
        );
        flush();
    }
}

/// Wait until the name has an owner and every `Actuator.Position` is known: on
/// `NameOwnerChanged` and `PropertiesChanged`, never by polling.
async fn wait_ready(conn: &Connection, timeout: f64) -> Result<(), Fail> {
    if !(timeout.is_finite() && timeout >= 0.0) {
        return Err(Fail::new(
            exit::USAGE,
            "--timeout: a number of seconds >= 0",
        ));
    }
    let wait = async {
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        let mut owner = dbus
            .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
            .await?;
        // Every PropertiesChanged of the service's objects (positions among them).
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(BUS_NAME)
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .build()?;
        let mut changes = zbus::MessageStream::for_match_rule(rule, conn, None).await?;
        loop {
            let name = BUS_NAME.try_into()?;
            if dbus.name_has_owner(name).await? {
                match Snapshot::read(conn).await {
                    Ok(s) if s.ready() => return Ok::<(), Fail>(()),
                    Ok(_) => {}
                    // Gone again between the two calls: wait for its next owner.
                    Err(f) if f.code == exit::UNAVAILABLE => {}
                    Err(f) => return Err(f),
                }
                tokio::select! {
                    _ = owner.next() => {}
                    _ = changes.next() => {}
                }
            } else {
                owner.next().await;
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs_f64(timeout), wait).await {
        Ok(r) => r,
        Err(_) => Err(Fail::new(
            exit::UNAVAILABLE,
            format!("not ready after {timeout} s"),
        )),
    }
}

/// Flush stdout, ignoring a closed pipe.
pub fn flush() {
    let _ = std::io::stdout().flush();
}
