//! The daemon as a car gets it: `cargo build --release`, run from a test or a benchmark.

use std::process::{Command, Stdio};

/// The daemon as `cargo build --release` builds it, with the default features (`as built`,
/// the KUKSA client linked in) or without (`mock-only`: no gRPC, in a target directory of its
/// own so that the two builds do not replace each other). Not the binary cargo builds for the
/// tests (dev profile: linked without link/hot-text.ld) or for a benchmark (bench profile:
/// other symbol hashes, which the list's exact names do not match); README, "Daemon
/// benchmark".
pub fn daemon(mock_only: bool) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root).args([
        "build",
        "--release",
        "--message-format=json",
        "-p",
        "driverprofiled",
        "--bin",
        "driverprofiled",
    ]);
    if mock_only {
        // Its own target directory, beside the one cargo uses, wherever that is.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        cmd.arg("--no-default-features")
            .arg("--target-dir")
            .arg(target.join("mock-only"));
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cargo build --release: {e}"));
    assert!(out.status.success(), "cargo build --release failed");
    // The path cargo reports, so that a target directory set anywhere (environment, config)
    // is followed and a stale binary is never measured.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "driverprofiled")
        .find_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
        .unwrap_or_else(|| panic!("cargo build --release reported no driverprofiled executable"))
}
