//! systemd integration: notifications through the `sd-notify` crate (`READY=1`, `STATUS=`,
//! `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1`), and whether stderr is the journal
//! (`JOURNAL_STREAM`). Everything here does nothing unless systemd asked for it, so a daemon
//! run by hand or by the tests behaves as before.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use sd_notify::NotifyState;

/// Sends state changes to the service manager, when there is one (`NOTIFY_SOCKET`).
#[derive(Debug, Clone)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
        }
    }

    /// Whether anyone listens (then the engine keeps `STATUS=` up to date).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Start-up is complete: the bus name is owned and every object is exported. Also sent at
    /// the end of a reload.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// A reload (SIGHUP) begins; [`Notifier::ready`] ends it.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// Pet the watchdog.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!("could not notify the service manager: {e}");
        }
    }
}

/// How often to pet the watchdog: half of `WATCHDOG_USEC`, when systemd asks it of this
/// process (`WATCHDOG_PID` unset or ours); `None` otherwise, and then nothing ever wakes up
/// for it.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| d / 2)
}

/// When stderr is the journal: a tracing layer that writes each event to the journal
/// natively, its fields as journal fields (`REASON=`, `PROFILE=`, `OUTCOME=`, `AXIS=`, ...:
/// `journalctl -u driverprofiled REASON=recall`). `None` otherwise, or when the journal
/// cannot be reached (then stderr stays plain text).
pub fn journal_layer() -> Option<tracing_journald::Layer> {
    if !stderr_is_journal() {
        return None;
    }
    match tracing_journald::layer() {
        Ok(layer) => Some(
            layer
                .with_field_prefix(None)
                .with_syslog_identifier("driverprofiled".into()),
        ),
        Err(e) => {
            eprintln!("driverprofiled: cannot write to the journal ({e}); logging as text");
            None
        }
    }
}

/// Whether stderr is connected to the journal: systemd then sets `JOURNAL_STREAM` to its
/// `device:inode` (a redirected stderr of a child no longer matches).
pub fn stderr_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some(var) = var.to_str() else {
        return false;
    };
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    match meta {
        Ok(m) => journal_stream_is(var, m.dev(), m.ino()),
        Err(_) => false,
    }
}

/// Whether `JOURNAL_STREAM` (`device:inode`, decimal) names this device and inode.
fn journal_stream_is(var: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = var.split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_names_device_and_inode() {
        assert!(journal_stream_is("8:12345", 8, 12345));
        assert!(!journal_stream_is("8:12345", 8, 12346));
        assert!(!journal_stream_is("9:12345", 8, 12345));
        assert!(!journal_stream_is("8", 8, 12345));
        assert!(!journal_stream_is("", 0, 0));
        assert!(!journal_stream_is("x:y", 0, 0));
    }
}
