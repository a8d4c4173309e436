//! `driverprofilectl monitor --keys` against the real daemon on a private bus: piped, one JSON
//! line per change of Vehicle.KeyEstimates / NearestKey; without geometry, exit 69.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use zbus::proxy::CacheProperties;

/// The shipped `[keys.geometry]` anchors.
const ANCHORS: [(&str, f64, f64); 4] = [
    ("driver_door", -0.95, 0.2),
    ("passenger_door", 0.95, 0.2),
    ("rear", 0.0, -2.2),
    ("cabin", 0.0, 0.3),
];

fn ranges(key: &str, x: f64, y: f64) -> Vec<(String, String, f64)> {
    ANCHORS
        .iter()
        .map(|(a, ax, ay)| {
            let d = ((x - ax).powi(2) + (y - ay).powi(2)).sqrt();
            (key.to_string(), a.to_string(), d)
        })
        .collect()
}

#[tokio::test]
async fn monitor_keys_json_shows_a_reported_key_where_it_is() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "seat_position=150"]).expect(0);
    env.ctl(&["bind", "anna", "key-anna"]).expect(0);
    let vehicle = VehicleProxy::builder(&env.conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let mut mon = env
        .ctl_cmd(&["monitor", "--keys", "--json"])
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
    // The first line is the state at start: no key yet.
    let first = tokio::time::timeout(TIMEOUT, rx.recv())
        .await
        .expect("a first line")
        .expect("monitor ended");
    let v: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(v["key_estimates"], serde_json::json!([]), "{first}");
    assert!(!first.contains('\x1b'));
    // A key standing 3 m left of the driver's door, reported as a UWB locator would (every
    // 100 ms, readings expire after 2 s), until monitor prints it there.
    let (x, y) = (-4.0, 0.5);
    let mut seen = Vec::new();
    let found = tokio::time::timeout(TIMEOUT, async {
        loop {
            vehicle
                .report_ranges(ranges("key-anna", x, y))
                .await
                .expect("ReportRanges");
            let Ok(line) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await else {
                continue;
            };
            let line = line.expect("monitor ended");
            assert!(!line.contains('\x1b'), "escape codes when piped: {line:?}");
            let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON per line");
            assert!(v["nearest_key"].is_string(), "{line}");
            seen.push(line.clone());
            let near = v["key_estimates"].as_array().unwrap().iter().find(|e| {
                e["key"] == "key-anna"
                    && e["p"].as_f64().is_some()
                    && (e["x"].as_f64().unwrap() - x).hypot(e["y"].as_f64().unwrap() - y) < 1.5
            });
            if near.is_some() {
                break v;
            }
        }
    })
    .await;
    let _ = mon.kill();
    let _ = mon.wait();
    let v = found.unwrap_or_else(|_| {
        panic!(
            "no line with key-anna within 1.5 m of ({x}, {y}); lines:\n{}",
            seen.join("\n")
        )
    });
    assert!(v["key_estimates"].is_array());
}

#[tokio::test]
async fn monitor_keys_without_geometry_is_69() {
    let geometry = "[keys.geometry]\ndriver_door = [-0.95, 0.2]\npassenger_door = [0.95, 0.2]\n\
                    rear = [0.0, -2.2]\ncabin = [0.0, 0.3]\ndriver_spot = [-1.45, 0.2]\n\
                    body_rear_left = [-0.9, -2.4]\nbody_front_right = [0.9, 2.4]\n";
    let env = Env::with_config(&test_config(&[(geometry, "")])).await;
    let out = env.ctl(&["monitor", "--keys"]).expect(69);
    assert!(out.stderr().contains("no key geometry"), "{}", out.stderr());
    assert_eq!(out.stdout(), "");
}
