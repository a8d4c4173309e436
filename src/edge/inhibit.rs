//! The descriptors behind `Manager.Inhibit`, as logind's inhibitors work: a pipe per
//! inhibitor; the caller gets the write end (the daemon keeps no copy of it once the reply is
//! sent), the daemon watches the read end. When every copy of the write end is closed — the
//! holder closed it, exited, or was killed, SIGKILL included — the read end reads end of file
//! and the engine is told to end the inhibitor. Whatever the holder writes into the pipe is
//! read and thrown away: only the end of file ends an inhibitor.

use std::io;
use std::os::fd::OwnedFd;

use tokio::net::unix::pipe::Receiver;

use super::ifaces::Shared;
use crate::core::Request;

/// A new pipe: the end to watch (non-blocking, in the runtime's reactor) and the write end
/// for the caller (blocking, as any pipe a program gets). Both close on exec.
pub fn pipe() -> io::Result<(Receiver, OwnedFd)> {
    // pipe2(O_CLOEXEC): the daemon starts no programs, but no descriptor of a client's may
    // leak into one should it ever do.
    let (read, write) = io::pipe()?;
    let read = Receiver::from_owned_fd(OwnedFd::from(read))?;
    Ok((read, OwnedFd::from(write)))
}

/// Wait until every copy of the write end of `read` is closed, then end inhibitor `id`.
pub async fn watch(read: Receiver, id: u64, shared: Shared) {
    let mut buf = [0u8; 512];
    loop {
        if let Err(e) = read.readable().await {
            // Cannot happen with a pipe in the reactor; an inhibitor that can no longer be
            // watched would otherwise keep the seat still until a restart.
            tracing::error!("inhibitor {id}: cannot watch its descriptor ({e}): ending it");
            break;
        }
        match read.try_read(&mut buf) {
            Ok(0) => break,
            // The holder wrote something: not a release.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::error!("inhibitor {id}: cannot read its descriptor ({e}): ending it");
                break;
            }
        }
    }
    drop(read);
    if let Err(e) = shared.call(Request::Uninhibit { id }).await {
        // Only when the daemon is shutting down.
        tracing::debug!("inhibitor {id}: not released: {e}");
    }
}
