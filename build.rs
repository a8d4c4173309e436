//! Links the daemon's release binaries with `link/hot-text.ld`: the functions the daemon runs
//! (listed by `scripts/hot-text`) laid out together before the rest of the code, so that code
//! it never runs (the KUKSA client with the mock, error paths, unused library code) is not
//! mapped in around the code it does run. Memory only: the list changes where functions sit,
//! not what is linked. See README, "Daemon benchmark".
//!
//! GNU ld and lld read the script; gold and mold cannot (a link error naming the file):
//! `DRIVERPROFILED_HOT_TEXT=0` links without it, as `scripts/hot-text` does to profile a build
//! (valgrind reads symbols only inside `.text`).

use std::env;
use std::path::Path;

fn main() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-env-changed=DRIVERPROFILED_HOT_TEXT");
    if env::var("DRIVERPROFILED_HOT_TEXT").as_deref() == Ok("0") {
        return;
    }
    // Release builds only (and the profiles that inherit from release): a debug build's tens
    // of thousands of functions against the list cost lld ~10 s a link, and nobody measures
    // a debug build's memory.
    if env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    // Targets whose linkers take an ELF script that only adds an output section.
    let elf = matches!(
        env::var("CARGO_CFG_TARGET_OS").as_deref(),
        Ok("linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly")
    );
    if !elf {
        return;
    }
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if rustflags.contains("fuse-ld=gold") || rustflags.contains("fuse-ld=mold") {
        println!(
            "cargo:warning=linking without link/hot-text.ld: gold and mold cannot read it \
             (more resident memory; README, \"Daemon benchmark\")"
        );
        return;
    }
    if !script.exists() {
        println!(
            "cargo:warning=linking without link/hot-text.ld: {} is missing (scripts/hot-text \
             makes it)",
            script.display()
        );
        return;
    }
    let path = script.display().to_string();
    // -Wl splits at commas.
    if path.contains(',') {
        println!("cargo:warning=linking without link/hot-text.ld: its path has a comma ({path})");
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{path}");
}
