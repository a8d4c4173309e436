//! `inhibit --why REASON -- COMMAND…`: hold the descriptor of `Manager.Inhibit` while the
//! command runs, as `systemd-inhibit` does. The descriptor is close-on-exec: the command does
//! not inherit it, so the inhibitor ends with this process (also if it is killed) and a
//! daemon the command starts cannot keep it alive.

use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::sync::atomic::{AtomicI32, Ordering};

use zbus::proxy::CacheProperties;

use driverprofiled_api::proxy::ManagerProxy;

use crate::bus::{self, Fail, exit};

/// The child's pid, for the SIGTERM/SIGHUP handler to pass the signal on.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

async fn take(bus: &str, who: &str, why: &str) -> Result<zbus::OwnedFd, Fail> {
    let conn = bus::connect(bus).await?;
    let m = ManagerProxy::builder(&conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let fd = m.inhibit(who, why).await?;
    // The inhibitor lives with the descriptor, not the connection: the connection closes here
    // (nothing would read it while the command runs).
    Ok(fd)
}

pub fn run(bus: &str, who: &str, why: &str, command: &[String]) -> u8 {
    let fail = |f: Fail| {
        eprintln!("driverprofilectl: {}", f.msg);
        f.code
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(Fail::new(exit::SOFTWARE, format!("runtime: {e}"))),
    };
    let fd = match rt.block_on(take(bus, who, why)) {
        Ok(fd) => fd,
        Err(f) => return fail(f),
    };
    drop(rt);
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    let cloexec = unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFD);
        flags >= 0 && libc::fcntl(raw, libc::F_SETFD, flags | libc::FD_CLOEXEC) == 0
    };
    if !cloexec {
        return fail(Fail::new(
            exit::SOFTWARE,
            format!(
                "cannot make the inhibitor's descriptor close-on-exec: {}",
                std::io::Error::last_os_error()
            ),
        ));
    }
    let (prog, args) = match command.split_first() {
        Some(x) => x,
        None => return fail(Fail::new(exit::USAGE, "no command given")),
    };
    // Ctrl-C and Ctrl-\ reach the command from the terminal; this process waits on.
    // SAFETY: plain signal dispositions, set before any thread of ours runs.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            eprintln!(
                "driverprofilectl: cannot run {}: {e}",
                driverprofiled::core::quote(prog)
            );
            return code;
        }
    };
    CHILD.store(child.id() as i32, Ordering::Relaxed);
    // SAFETY: the handler only calls kill.
    unsafe {
        let h = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, h);
        libc::signal(libc::SIGHUP, h);
    }
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("driverprofilectl: waiting for the command: {e}");
                break std::process::ExitStatus::from_raw(70 << 8);
            }
        }
    };
    drop(fd);
    match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(sig)) => 128u8.saturating_add(sig as u8),
        _ => exit::SOFTWARE,
    }
}
