//! The last line of defence: a panic anywhere in the daemon stops every axis before the
//! process ends, and the process ends.
//!
//! The backends run on the same current-thread runtime as the engine, and a panic hook cannot
//! await: the hook reaches them synchronously through [`Router::stop_all`] (for the mock, its
//! simulated axes stop; a real backend writes its stop frames directly). A panic caught by
//! tokio in a spawned task (the mock's simulation, a zbus task) would otherwise leave the
//! daemon running without the part that panicked; so the hook ends the process, non-zero,
//! and systemd restarts it.

use std::sync::Once;

use crate::backend::Router;

/// The exit status after a panic (Rust's own for a panic that ends `main`).
pub const EXIT_PANIC: i32 = 101;

/// Install the hook (once per process; a later call changes nothing). `router` must drive
/// every axis the daemon commands.
pub fn stop_on_panic(router: Router) {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(move || {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // First the motors, then the words.
            router.stop_all("panic");
            report(info);
            tracing::error!("panic: every axis stopped; exiting with {EXIT_PANIC}");
            std::process::exit(EXIT_PANIC);
        }));
    });
}
