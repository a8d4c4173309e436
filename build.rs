//! Links the daemon's binaries with `link/hot-text.ld`: the functions the daemon runs
//! (listed by `scripts/hot-text`) laid out together before the rest of the code, so that code
//! it never runs (the KUKSA client with the mock, error paths, unused library code) is not
//! mapped in around the code it does run. Memory only: the list changes where functions sit,
//! not what is linked. See README, "Daemon benchmark".

use std::env;
use std::path::Path;

fn main() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    // scripts/hot-text profiles a build without the layout (valgrind reads symbols only
    // inside .text): DRIVERPROFILED_HOT_TEXT=0.
    println!("cargo:rerun-if-env-changed=DRIVERPROFILED_HOT_TEXT");
    let wanted = env::var("DRIVERPROFILED_HOT_TEXT").as_deref() != Ok("0");
    // ELF linkers (GNU ld, gold, lld) take a script that only adds an output section
    // (INSERT BEFORE .text); elsewhere the default layout stays.
    let elf = matches!(
        env::var("CARGO_CFG_TARGET_OS").as_deref(),
        Ok("linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly")
    );
    if wanted && elf && script.exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
