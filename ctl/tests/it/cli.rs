//! driverprofilectl against the real daemon on a private bus: output (text and --json), exit
//! codes per error class, select --wait, monitor, export/import, wait-ready, checks.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;
use futures_util::StreamExt;
use serde_json::json;
use zbus::Variant;

#[tokio::test]
async fn read_commands_text_and_json() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "--from-current"])
        .expect(0)
        .stdout()
        .trim()
        .eq("1")
        .then_some(())
        .expect("create prints the id");
    env.ctl(&["create", "Ben", "seat_position=100", "wheel_tilt=20"])
        .expect(0);
    env.ctl(&["bind", "anna", "key-1"]).expect(0);

    let s = env.ctl(&["status"]).expect(0).stdout();
    assert!(s.contains("backend mock"), "{s}");
    assert!(s.contains("interlock:      gear not reported yet"), "{s}");
    assert!(
        s.contains("signals from:   D-Bus (Vehicle.UpdateSignals)"),
        "{s}"
    );
    let j = env.ctl(&["--json", "status"]).expect(0).json();
    assert_eq!(j["version"], 1);
    assert_eq!(j["backend"], "mock");
    assert_eq!(j["state"], "idle");
    assert_eq!(j["active_profile"], serde_json::Value::Null);
    assert_eq!(j["interlock"], "gear not reported yet");
    assert_eq!(j["vehicle_source"], "dbus");
    assert_eq!(j["ready"], true);
    assert_eq!(j["inhibitors"], json!([]));

    let l = env.ctl(&["list"]).expect(0).stdout();
    assert!(
        l.contains("Anna") && l.contains("key-1") && l.contains("Ben"),
        "{l}"
    );
    let j = env.ctl(&["list", "--json"]).expect(0).json();
    assert_eq!(j["version"], 1);
    let names: Vec<&str> = j["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Anna", "Ben"]);
    assert_eq!(j["profiles"][1]["positions"]["seat_position"], 100.0);
    assert_eq!(j["profiles"][1]["positions"]["seat_height"], 30.0);

    let s = env.ctl(&["show", "BEN"]).expect(0).stdout();
    assert!(s.contains("profile 2: Ben"), "{s}");
    assert!(s.contains("seat_position") && s.contains("100 mm"), "{s}");
    let j = env.ctl(&["--json", "show", "1"]).expect(0).json();
    assert_eq!(j["version"], 1);
    assert_eq!(j["name"], "Anna");
    assert_eq!(j["keys"], json!(["key-1"]));
    assert_eq!(j["positions"]["seat_position"], 130.0);
}

#[tokio::test]
async fn changes_and_their_exit_codes() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "--from-current"]).expect(0);
    // A profile whose positions are refused is not left behind.
    let e = env
        .ctl(&["create", "Carl", "seat_position=1000"])
        .expect(65)
        .stderr();
    assert!(
        e.starts_with("driverprofilectl: org.driverprofiled1.Error.OutOfRange: "),
        "{e}"
    );
    assert_eq!(env.profile_names().await, ["Anna"]);
    // AlreadyExists (ignoring case).
    let e = env.ctl(&["create", "ANNA", "--from-current"]).expect(65);
    assert!(e.stderr().contains("Error.AlreadyExists"), "{}", e.stderr());

    // set: all or nothing.
    let e = env
        .ctl(&["set", "anna", "seat_position=100", "seat_height=500"])
        .expect(65);
    assert!(e.stderr().contains("Error.OutOfRange"), "{}", e.stderr());
    let j = env.ctl(&["--json", "show", "anna"]).expect(0).json();
    assert_eq!(j["positions"]["seat_position"], 130.0);
    env.ctl(&["set", "anna", "seat_position=100", "seat_height=50"])
        .expect(0);
    let j = env.ctl(&["--json", "show", "anna"]).expect(0).json();
    assert_eq!(j["positions"]["seat_position"], 100.0);
    assert_eq!(j["positions"]["seat_height"], 50.0);
    // AutoSave: off by default, on and off again; shown in text and JSON.
    assert_eq!(j["auto_save"], false);
    env.ctl(&["set", "anna", "--auto-save", "on"]).expect(0);
    let j = env.ctl(&["--json", "show", "anna"]).expect(0).json();
    assert_eq!(j["auto_save"], true);
    assert_eq!(
        j["positions"]["seat_position"], 100.0,
        "positions untouched"
    );
    let s = env.ctl(&["show", "anna"]).expect(0).stdout();
    assert!(s.contains("auto-save: on"), "{s}");
    let e = env.ctl(&["set", "anna", "--auto-save", "maybe"]).expect(64);
    assert!(e.stderr().contains("neither on nor off"), "{}", e.stderr());
    env.ctl(&["set", "anna"]).expect(64);
    env.ctl(&["set", "anna", "seat_height=40", "--auto-save", "off"])
        .expect(0);
    let j = env.ctl(&["--json", "show", "anna"]).expect(0).json();
    assert_eq!(
        (
            j["auto_save"].clone(),
            j["positions"]["seat_height"].clone()
        ),
        (false.into(), 40.0.into())
    );
    // Reverse tilt: on with the configured offset by default; a position per mirror, kept
    // when another changes; default again; off. Shown in show, status and JSON.
    assert_eq!(j["reverse_tilt_enabled"], true);
    assert_eq!(j["reverse_tilt"], serde_json::json!({}));
    let s = env.ctl(&["show", "anna"]).expect(0).stdout();
    assert!(
        s.contains("reverse tilt: on (the configured offset)"),
        "{s}"
    );
    env.ctl(&["set", "anna", "--reverse-tilt", "mirror_passenger_tilt=-40"])
        .expect(0);
    let s = env.ctl(&["show", "anna"]).expect(0).stdout();
    assert!(
        s.contains("reverse tilt: on, mirror_passenger_tilt -40 percent"),
        "{s}"
    );
    let e = env
        .ctl(&["set", "anna", "--reverse-tilt", "seat_position=10"])
        .expect(65);
    assert!(
        e.stderr().contains("does not tilt in reverse"),
        "{}",
        e.stderr()
    );
    let e = env
        .ctl(&["set", "anna", "--reverse-tilt", "down"])
        .expect(64);
    assert!(e.stderr().contains("AXIS=default"), "{}", e.stderr());
    env.ctl(&["set", "anna", "--reverse-tilt", "off"]).expect(0);
    let j = env.ctl(&["--json", "show", "anna"]).expect(0).json();
    assert_eq!(j["reverse_tilt_enabled"], false);
    assert_eq!(j["reverse_tilt"]["mirror_passenger_tilt"], -40.0);
    env.ctl(&[
        "set",
        "anna",
        "--reverse-tilt",
        "on",
        "--reverse-tilt",
        "mirror_passenger_tilt=default",
    ])
    .expect(0);
    let j = env.ctl(&["--json", "show", "anna"]).expect(0).json();
    assert_eq!(
        (j["reverse_tilt_enabled"].clone(), j["reverse_tilt"].clone()),
        (true.into(), serde_json::json!({}))
    );
    // save stores where the actuators are.
    env.ctl(&["save", "anna"]).expect(0);
    let j = env.ctl(&["--json", "show", "anna"]).expect(0).json();
    assert_eq!(j["positions"]["seat_position"], 130.0);

    env.ctl(&["bind", "anna", "k1"]).expect(0);
    env.ctl(&["create", "Ben", "--from-current"]).expect(0);
    let e = env.ctl(&["bind", "ben", "k1"]).expect(65);
    assert!(e.stderr().contains("Error.KeyInUse"), "{}", e.stderr());
    env.ctl(&["unbind", "anna", "k1"]).expect(0);
    env.ctl(&["bind", "ben", "k1"]).expect(0);
    env.ctl(&["rename", "ben", "Benjamin"]).expect(0);
    assert_eq!(env.profile_names().await, ["Anna", "Benjamin"]);
    env.ctl(&["delete", "benjamin"]).expect(0);
    assert_eq!(env.profile_names().await, ["Anna"]);

    // NotFound: 65, the error name on stderr.
    let e = env.ctl(&["show", "nobody"]).expect(65).stderr();
    assert_eq!(
        e.trim(),
        "driverprofilectl: org.driverprofiled1.Error.NotFound: no profile with id or name \"nobody\""
    );
    env.ctl(&["delete", "7"]).expect(65);
    // Interlocked: 75 (no gear reported yet).
    let e = env.ctl(&["select", "anna"]).expect(75).stderr();
    assert!(e.contains("org.driverprofiled1.Error.Interlocked"), "{e}");
    // Usage: 64, for clap's own errors too.
    env.ctl(&["bogus"]).expect(64);
    env.ctl(&["show"]).expect(64);
    env.ctl(&["create", "X"]).expect(64);
    env.ctl(&["set", "anna", "seat_position"]).expect(64);
    env.ctl(&["--bus", "nonsense", "status"]).expect(64);
    env.ctl(&["stop"]).expect(0);
    // --help on every command, exit 0, exit codes listed.
    let h = env.ctl(&["--help"]).expect(0).stdout();
    assert!(h.contains("Exit codes:") && h.contains("75"), "{h}");
    for c in [
        "status",
        "select",
        "import",
        "inhibit",
        "wait-ready",
        "check-config",
    ] {
        env.ctl(&[c, "--help"]).expect(0);
    }
}

#[tokio::test]
async fn no_daemon_is_69() {
    let env = Env::bus_only().await;
    let e = env.ctl(&["status"]).expect(69).stderr();
    assert!(
        e.contains("org.freedesktop.DBus.Error.ServiceUnknown"),
        "{e}"
    );
    env.ctl(&["wait-ready", "--timeout", "0.3"]).expect(69);
    // No bus at all.
    let o = std::process::Command::new(CTL)
        .args(["--bus", "unix:path=/nonexistent/bus", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(69));
}

#[tokio::test]
async fn wait_ready_waits_for_the_daemon() {
    let mut env = Env::bus_only().await;
    let mut waiter = env
        .ctl_cmd(&["wait-ready", "--timeout", "15"])
        .spawn()
        .unwrap();
    // The waiter may or may not have subscribed yet: it must succeed either way.
    env.start_daemon(&test_config(&[])).await;
    let status = tokio::task::spawn_blocking(move || waiter.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    env.ctl(&["wait-ready", "--timeout", "5"]).expect(0);
}

#[tokio::test]
async fn wait_ready_waits_for_positions() {
    let cfg = test_config(&[("positions_after_ms = 0", "positions_after_ms = 1500")]);
    let env = Env::with_config(&cfg).await;
    let before = env
        .actuator("seat_position")
        .await
        .position()
        .await
        .unwrap();
    let j = env.ctl(&["--json", "status"]).expect(0).json();
    if before.is_nan() {
        assert_eq!(j["ready"], false);
    }
    env.ctl(&["wait-ready", "--timeout", "15"]).expect(0);
    let after = env
        .actuator("seat_position")
        .await
        .position()
        .await
        .unwrap();
    assert!(!after.is_nan());
}

/// Start `select --wait` on a slow recall and return it once the motion is under way.
async fn slow_select(env: &Env) -> std::process::Child {
    env.ctl(&["create", "Anna", "seat_position=220"]).expect(0);
    env.park().await;
    env.speed_factor(1.0).await;
    let m = env.manager().await;
    let mut started = m.receive_motion_started().await.unwrap();
    let child = env.ctl_cmd(&["select", "anna", "--wait"]).spawn().unwrap();
    tokio::time::timeout(TIMEOUT, started.next())
        .await
        .expect("MotionStarted")
        .expect("stream");
    child
}

async fn exit_of(child: std::process::Child) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = child;
        let status = child.wait().unwrap();
        (status.code().unwrap_or(-1), String::new())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn select_wait_completed() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "seat_position=150"]).expect(0);
    env.park().await;
    env.speed_factor(50.0).await;
    env.ctl(&["select", "anna", "--wait"]).expect(0);
    let p = env
        .actuator("seat_position")
        .await
        .position()
        .await
        .unwrap();
    assert!((p - 150.0).abs() <= 0.26, "seat at {p}");
    // status tells the active profile's settings.
    let s = env.ctl(&["status"]).expect(0).stdout();
    assert!(
        s.contains("reverse tilt:   on (the configured offset)"),
        "{s}"
    );
    env.ctl(&["set", "anna", "--reverse-tilt", "off", "--auto-save", "on"])
        .expect(0);
    let j = env.ctl(&["--json", "status"]).expect(0).json();
    let a = &j["active_profile"];
    assert_eq!(
        (a["reverse_tilt_enabled"].clone(), a["auto_save"].clone()),
        (false.into(), true.into())
    );
    let s = env.ctl(&["status"]).expect(0).stdout();
    assert!(s.contains("reverse tilt:   off"), "{s}");
    assert!(s.contains("auto-save:      on"), "{s}");
}

#[tokio::test]
async fn select_wait_interlocked_is_75() {
    let env = Env::new().await;
    let child = slow_select(&env).await;
    env.signals(&[("gear", Variant::from("R"))]).await;
    assert_eq!(exit_of(child).await.0, 75);
}

#[tokio::test]
async fn select_wait_stopped_is_75() {
    let env = Env::new().await;
    let child = slow_select(&env).await;
    env.ctl(&["stop"]).expect(0);
    assert_eq!(exit_of(child).await.0, 75);
}

#[tokio::test]
async fn monitor_json_lines_for_a_recall() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "seat_position=150"]).expect(0);
    env.park().await;
    env.speed_factor(50.0).await;
    let mut mon = env
        .ctl_cmd(&["--json", "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let out = mon.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Until monitor shows a change it is not known to have subscribed: toggle a signal until
    // its PropertiesChanged comes out.
    let mut brake = false;
    let first = loop {
        brake = !brake;
        env.signals(&[("brake_pressed", Variant::from(brake))])
            .await;
        match tokio::time::timeout(std::time::Duration::from_millis(200), rx.recv()).await {
            Ok(Some(l)) => break l,
            Ok(None) => panic!("monitor ended"),
            Err(_) => continue,
        }
    };
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["signal"], "PropertiesChanged");
    env.ctl(&["select", "anna"]).expect(0);
    let mut seen = Vec::new();
    let finished = loop {
        let l = tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .expect("monitor line")
            .expect("monitor ended");
        let v: serde_json::Value = serde_json::from_str(&l).expect("one JSON object per line");
        assert_eq!(v["version"], 1);
        if v["signal"] == "MotionFinished" {
            break v;
        }
        seen.push(v);
    };
    assert_eq!(finished["reason"], "recall");
    assert_eq!(finished["outcome"], "completed");
    assert!(seen.iter().any(|v| v["signal"] == "MotionStarted"
        && v["reason"] == "recall"
        && v["profile"] == "/org/driverprofiled1/profiles/1"));
    assert!(seen.iter().any(|v| v["signal"] == "PropertiesChanged"
        && v["path"] == "/org/driverprofiled1/actuators/seat_position"
        && v["changed"]["Moving"] == true));
    let _ = mon.kill();
    let _ = mon.wait();
}

#[tokio::test]
async fn export_format_and_narrower_car_refuses_import() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "seat_position=250"]).expect(0);
    env.ctl(&["bind", "anna", "key-1"]).expect(0);
    let text = env.ctl(&["export"]).expect(0).stdout();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(j["format"], "driverprofiled-profiles");
    assert_eq!(j["version"], 1);
    let p = &j["profiles"][0];
    assert_eq!(p["name"], "Anna");
    assert_eq!(p["keys"], json!(["key-1"]));
    assert_eq!(p["easy_exit"], true);
    assert!(p["positions"].as_array().unwrap().contains(&json!({
        "vss": "Vehicle.Cabin.Seat.Row1.DriverSide.Position", "unit": "mm", "value": 250.0
    })));
    let file = env.dir.path().join("export.json");
    env.ctl(&["export", file.to_str().unwrap()]).expect(0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // Another car: a shorter seat rail, and no headrest angle.
    let cfg = test_config(&[("max = 260", "max = 200")]);
    let start = cfg.find("name = \"headrest_angle\"").unwrap();
    let block_start = cfg[..start].rfind("[[axis]]").unwrap();
    let block_end = start + cfg[start..].find("[[axis]]").unwrap();
    let cfg = format!("{}{}", &cfg[..block_start], &cfg[block_end..]);
    let other = Env::with_config(&cfg).await;
    other.ctl(&["create", "Local", "--from-current"]).expect(0);
    let e = other
        .ctl(&["import", file.to_str().unwrap()])
        .expect(65)
        .stderr();
    assert!(
        e.contains("2 problems for this car; nothing imported"),
        "{e}"
    );
    assert!(
        e.contains("\"Vehicle.Cabin.Seat.Row1.DriverSide.Position\" = 250 mm is outside this car's range 0..200 (seat_position)"),
        "{e}"
    );
    assert!(
        e.contains(
            "\"Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.Angle\": this car has no axis with this VSS path"
        ),
        "{e}"
    );
    assert_eq!(other.profile_names().await, ["Local"]);
    // A unit that differs is reported too.
    let bad = text.replace("\"unit\": \"deg\"", "\"unit\": \"percent\"");
    let f2 = env.dir.path().join("units.json");
    std::fs::write(&f2, bad).unwrap();
    let e = env
        .ctl(&["import", f2.to_str().unwrap()])
        .expect(65)
        .stderr();
    assert!(
        e.contains("unit \"percent\" but this car's seat_tilt is in deg"),
        "{e}"
    );
    assert_eq!(env.profile_names().await, ["Anna"]);
}

#[tokio::test]
async fn hostile_import_files_change_nothing() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "--from-current"]).expect(0);
    let dir = env.dir.path();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge.json",
            vec![b' '; 2 * 1024 * 1024],
            "larger than 1048576 bytes",
        ),
        ("garbage.json", b"{\"format\": ".to_vec(), "malformed: EOF"),
        (
            "types.json",
            br#"{"format": "driverprofiled-profiles", "version": 1,
                "profiles": [{"name": 5, "easy_exit": true, "keys": [], "positions": []}]}"#
                .to_vec(),
            "malformed: invalid type: integer `5`, expected a string at line 2",
        ),
        (
            "version.json",
            br#"{"format": "driverprofiled-profiles", "version": 2, "profiles": []}"#.to_vec(),
            "format version 2; this driverprofilectl reads version 1",
        ),
        (
            "other.json",
            br#"{"profiles": []}"#.to_vec(),
            "not a driverprofilectl export",
        ),
        (
            "long.json",
            format!(
                r#"{{"format": "driverprofiled-profiles", "version": 1, "profiles": [], "{}": 1}}"#,
                "x".repeat(10_000)
            )
            .into_bytes(),
            "malformed: unknown field",
        ),
    ];
    for (name, bytes, expect) in cases {
        let f = dir.join(name);
        std::fs::write(&f, bytes).unwrap();
        let e = env
            .ctl(&["import", f.to_str().unwrap()])
            .expect(65)
            .stderr();
        assert!(e.contains(expect), "{name}: {e}");
        assert!(e.len() < 400, "{name}: the message quotes too much: {e}");
        assert_eq!(env.profile_names().await, ["Anna"], "{name}");
    }
    env.ctl(&["import", dir.join("absent.json").to_str().unwrap()])
        .expect(66);
}

#[tokio::test]
async fn completions_and_man_page() {
    let o = std::process::Command::new(CTL)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("driverprofilectl") && s.contains("wait-ready"),
        "{s}"
    );
    let o = std::process::Command::new(CTL).arg("man").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.starts_with(".ie") || s.contains(".TH driverprofilectl"),
        "{s}"
    );
    assert!(s.contains("Exit codes"), "{s}");
}

#[tokio::test]
async fn check_config_uses_the_daemons_parser() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, test_config(&[])).unwrap();
    let o = std::process::Command::new(CTL)
        .args(["check-config", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("valid, 12 axes"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[profiles]\nmax_profiles = \"ten\"\n").unwrap();
    let o = std::process::Command::new(CTL)
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(78));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains(&format!("{}:2:", bad.display())), "{e}");
    let o = std::process::Command::new(CTL)
        .args(["check-config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(66));
}

#[tokio::test]
async fn export_then_import_into_a_fresh_daemon() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "seat_position=250"]).expect(0);
    env.ctl(&["bind", "anna", "key-1"]).expect(0);
    env.ctl(&["create", "Ben", "wheel_tilt=10"]).expect(0);
    env.ctl(&[
        "set",
        "anna",
        "--auto-save",
        "on",
        "--reverse-tilt",
        "off",
        "--reverse-tilt",
        "mirror_passenger_tilt=-40",
    ])
    .expect(0);
    let file = env.dir.path().join("export.json");
    env.ctl(&["export", file.to_str().unwrap()]).expect(0);
    let f = file.to_str().unwrap();
    // The settings travel, in VSS terms; Ben's defaults are left out of the file.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let (a, b) = (&doc["profiles"][0], &doc["profiles"][1]);
    assert_eq!(
        (a["auto_save"].clone(), a["reverse_tilt_enabled"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        a["reverse_tilt"],
        json!([{"vss": "Vehicle.Body.Mirrors.PassengerSide.Tilt", "unit": "percent", "value": -40.0}])
    );
    let b = b.as_object().unwrap();
    assert!(
        !b.contains_key("auto_save") && !b.contains_key("reverse_tilt"),
        "{b:?}"
    );

    let other = Env::new().await;
    other.ctl(&["create", "ben", "--from-current"]).expect(0);
    let o = other.ctl(&["import", f, "--dry-run"]).expect(0).stdout();
    assert!(
        o.contains("2 profiles can be imported (merge); nothing changed"),
        "{o}"
    );
    assert_eq!(other.profile_names().await, ["ben"]);
    let o = other.ctl(&["import", f, "--merge"]).expect(0).stdout();
    assert!(o.contains("imported 2 profiles (merge)"), "{o}");
    // Merge: "ben" updated in place (same id), Anna created.
    assert_eq!(other.profile_names().await, ["Ben", "Anna"]);
    let j = other.ctl(&["--json", "show", "1"]).expect(0).json();
    assert_eq!(j["name"], "Ben");
    assert_eq!(j["positions"]["wheel_tilt"], 10.0);
    let j = other.ctl(&["--json", "show", "anna"]).expect(0).json();
    assert_eq!(j["keys"], json!(["key-1"]));
    assert_eq!(j["positions"]["seat_position"], 250.0);
    assert_eq!(j["auto_save"], true);
    assert_eq!(j["reverse_tilt_enabled"], false);
    assert_eq!(j["reverse_tilt"], json!({"mirror_passenger_tilt": -40.0}));
    // Replace: everything else goes; the export of the copy equals the original's.
    other.ctl(&["create", "Extra", "--from-current"]).expect(0);
    other.ctl(&["import", f, "--replace"]).expect(0);
    assert_eq!(other.profile_names().await, ["Anna", "Ben"]);
    assert_eq!(
        other.ctl(&["export"]).expect(0).stdout(),
        std::fs::read_to_string(&file).unwrap()
    );
}

#[tokio::test]
async fn import_refused_by_the_daemon_changes_nothing() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "--from-current"]).expect(0);
    let dir = env.dir.path();
    let profile = |name: &str| {
        json!({"name": name, "easy_exit": false, "keys": [], "positions": [
            {"vss": "Vehicle.Cabin.Seat.Row1.DriverSide.Position", "unit": "mm", "value": 10.0}]})
    };
    let doc = |profiles: Vec<serde_json::Value>| {
        json!({"format": "driverprofiled-profiles", "version": 1, "profiles": profiles}).to_string()
    };
    let dup = dir.join("dup.json");
    std::fs::write(&dup, doc(vec![profile("Ben"), profile("BEN")])).unwrap();
    let e = env
        .ctl(&["import", dup.to_str().unwrap(), "--replace"])
        .expect(65)
        .stderr();
    assert!(e.contains("org.freedesktop.DBus.Error.InvalidArgs"), "{e}");
    assert_eq!(env.profile_names().await, ["Anna"]);
    let many = dir.join("many.json");
    let profiles = (0..1000).map(|i| profile(&format!("P{i}"))).collect();
    std::fs::write(&many, doc(profiles)).unwrap();
    let e = env
        .ctl(&["import", many.to_str().unwrap(), "--replace"])
        .expect(65)
        .stderr();
    assert!(e.contains("org.driverprofiled1.Error.LimitReached"), "{e}");
    assert!(e.len() < 600, "{e}");
    assert_eq!(env.profile_names().await, ["Anna"]);
}

#[tokio::test]
async fn check_state_and_check_config_against_a_store() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "seat_position=250"]).expect(0);
    let state = env.state();
    let s = state.to_str().unwrap();
    let o = env.ctl(&["check-state", s]).expect(0).stdout();
    assert!(o.contains("1 profile"), "{o}");
    let cfg = env.dir.path().join("narrow.toml");
    std::fs::write(&cfg, test_config(&[("max = 260", "max = 200")])).unwrap();
    let c = cfg.to_str().unwrap();
    let e = env.ctl(&["check-config", c, "--state", s]).expect(65);
    assert!(e.stdout().contains("valid, 12 axes"), "{}", e.stdout());
    assert!(e.stderr().contains("seat_position"), "{}", e.stderr());
    let same = env.dir.path().join("same.toml");
    std::fs::write(&same, test_config(&[])).unwrap();
    env.ctl(&["check-config", same.to_str().unwrap(), "--state", s])
        .expect(0);
}

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[tokio::test]
async fn inhibit_blocks_select_until_its_holder_dies() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "seat_position=150"]).expect(0);
    env.park().await;
    let m = ManagerProxy::new(&env.conn).await.unwrap();
    let mut changes = m.receive_inhibitors_changed().await;
    let mut holder = env
        .ctl_cmd(&["inhibit", "--why", "OTA update", "--", "sleep", "60"])
        .spawn()
        .unwrap();
    loop {
        let c = tokio::time::timeout(TIMEOUT, changes.next())
            .await
            .expect("Inhibitors changed")
            .unwrap();
        if !c.get().await.unwrap().is_empty() {
            break;
        }
    }
    let j = env.ctl(&["--json", "status"]).expect(0).json();
    assert_eq!(j["inhibitors"][0]["who"], "driverprofilectl");
    assert_eq!(j["inhibitors"][0]["why"], "OTA update");
    let e = env.ctl(&["select", "anna"]).expect(75).stderr();
    assert!(e.contains("org.driverprofiled1.Error.Inhibited"), "{e}");
    // SIGKILL: the descriptor closes with the process, and the inhibitor ends.
    let kids = children(holder.id());
    holder.kill().unwrap();
    holder.wait().unwrap();
    for k in kids {
        // SAFETY: our own grandchild (sleep), left running by its killed parent.
        unsafe {
            libc::kill(k, libc::SIGKILL);
        }
    }
    loop {
        let c = tokio::time::timeout(TIMEOUT, changes.next())
            .await
            .expect("Inhibitors changed")
            .unwrap();
        if c.get().await.unwrap().is_empty() {
            break;
        }
    }
    env.ctl(&["select", "anna"]).expect(0);
}

#[tokio::test]
async fn inhibit_returns_the_commands_exit_code_and_holds_meanwhile() {
    let env = Env::new().await;
    let inner = format!("{CTL} --bus '{}' --json status; exit 3", env.bus.address);
    let o = env
        .ctl(&[
            "inhibit", "--why", "flash", "--who", "ota", "--", "sh", "-c", &inner,
        ])
        .expect(3);
    let j: serde_json::Value = serde_json::from_str(o.stdout().trim()).unwrap();
    assert_eq!(j["inhibitors"][0]["who"], "ota");
    assert_eq!(j["inhibitors"][0]["why"], "flash");
    // Released once it returned.
    let j = env.ctl(&["--json", "status"]).expect(0).json();
    assert_eq!(j["inhibitors"], json!([]));
    env.ctl(&["inhibit", "--why", "x", "--", "/nonexistent/cmd"])
        .expect(127);
    env.ctl(&["inhibit", "--", "true"]).expect(64);
}

#[tokio::test]
async fn access_denied_is_77_and_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    if !root_or_skip("access_denied_is_77_and_changes_nothing") {
        return;
    }
    let env = Env::open_to_all_users().await;
    env.ctl(&["create", "Anna", "--from-current"]).expect(0);
    // The client, where nobody can run it (a checkout under /root is closed to others).
    let staging = tempfile::tempdir().unwrap();
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ctl = staging.path().join("driverprofilectl");
    std::fs::copy(CTL, &ctl).unwrap();
    // nobody, in no group: no role (root and the daemon's own uid hold every role).
    let as_nobody = |args: &[&str]| {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&ctl)
            .args(["--bus", &env.bus.address])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run driverprofilectl through setpriv");
        Out(out)
    };
    for args in [
        &["create", "Zed", "--from-current"][..],
        &["delete", "anna"],
        &["stop"],
    ] {
        let e = as_nobody(args).expect(77).stderr();
        assert!(
            e.starts_with("driverprofilectl: org.freedesktop.DBus.Error.AccessDenied: "),
            "{args:?}: {e}"
        );
    }
    assert_eq!(env.profile_names().await, ["Anna"]);
    // Reads need no role: the same client and bus work for it.
    let list = as_nobody(&["list"]).expect(0).stdout();
    assert!(list.contains("Anna"), "{list}");
}
