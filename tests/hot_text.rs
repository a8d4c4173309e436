//! The daemon is linked with `link/hot-text.ld` (build.rs): the code it runs sits in
//! `.text.hot`, before the rest in `.text`, so that code it never runs is not mapped in around
//! it (README, "Daemon benchmark"). A build that lost the script would still work and only
//! cost memory; this catches it.
#![cfg(target_os = "linux")]

mod common;

use common::elf;

#[test]
fn the_daemon_is_laid_out_hot_code_first() {
    let exe = env!("CARGO_BIN_EXE_driverprofiled");
    let bytes = std::fs::read(exe).unwrap_or_else(|e| panic!("{exe}: {e}"));
    let sections = elf::sections(&bytes).unwrap_or_else(|| panic!("{exe}: not ELF64 LE"));
    let find = |name: &str| {
        sections
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{exe} has no {name} section: {sections:?}"))
    };
    let (hot, rest) = (find(".text.hot"), find(".text"));
    assert!(
        hot.addr + hot.size <= rest.addr,
        "hot code must come first: {hot:?} {rest:?}"
    );
    // The functions the daemon runs are a good part of its code (about half in a release
    // build): a script whose patterns matched nothing would leave .text.hot nearly empty.
    assert!(
        hot.size * 5 > hot.size + rest.size,
        "only {} of {} bytes of code are laid out hot: is link/hot-text.ld stale?",
        hot.size,
        hot.size + rest.size
    );
}
