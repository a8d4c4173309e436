//! The daemon's release build is linked with `link/hot-text.ld` (build.rs): the code it runs
//! sits in `.text.hot`, before the rest in `.text`, so that code it never runs is not mapped
//! in around it (README, "Daemon benchmark"). A build that lost the script would still work
//! and only cost memory; this catches it. It builds the daemon with `cargo build --release`
//! (a no-op when that is up to date). With `DRIVERPROFILED_HOT_TEXT=0` (linked without it on
//! purpose) there is nothing to check: the test says so and passes.
#![cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    target_endian = "little"
))]

mod common;

use common::elf;

#[test]
fn the_daemon_is_laid_out_hot_code_first() {
    if std::env::var("DRIVERPROFILED_HOT_TEXT").as_deref() == Ok("0") {
        eprintln!("DRIVERPROFILED_HOT_TEXT=0: linked without the layout, nothing to check");
        return;
    }
    // The release build: debug builds are linked without the list (build.rs).
    let path = common::release::daemon(false);
    let exe = path.display();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{exe}: {e}"));
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
    // The functions the daemon runs, with the other instances of their generics, are a good
    // part of its code (~70 %): a script whose patterns matched nothing would leave .text.hot
    // nearly empty.
    assert!(
        hot.size * 5 > hot.size + rest.size,
        "only {} of {} bytes of code are laid out hot: is link/hot-text.ld stale?",
        hot.size,
        hot.size + rest.size
    );
}
