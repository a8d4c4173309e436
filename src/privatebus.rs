//! A private `dbus-daemon`: for `--private-bus` (developers without a car, and no system bus
//! policy to install), and the one launcher the integration tests and benchmarks use. It
//! listens in a fresh directory of its own, in a process group of its own, and ends with the
//! process that started it (also after a SIGKILL of that process).

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct PrivateBus {
    /// The address clients connect to (`unix:path=...`).
    pub address: String,
    child: Child,
    dir: PathBuf,
}

/// The bus configuration: one user, everything allowed (it is a developer's private bus).
pub fn config_xml(listen_dir: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        listen_dir.display()
    )
}

impl PrivateBus {
    /// Start a bus with the permissive [`config_xml`].
    pub fn start() -> io::Result<PrivateBus> {
        Self::start_with(config_xml)
    }

    /// Start a bus whose configuration `config` writes for a listening directory.
    pub fn start_with(config: impl FnOnce(&Path) -> String) -> io::Result<PrivateBus> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "driverprofiled-bus-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("bus.conf");
        std::fs::write(&conf, config(&dir))?;
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .arg("--print-address=1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // The bus is ours, not a service of systemd's: it must not report to the service
            // manager as if it were the daemon.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            // A process group of its own: Ctrl-C at a terminal signals the foreground group,
            // and the bus must outlive the daemon's shutdown (which stops the axes and ends it)
            // rather than die with it and make the daemon exit as if the bus had been lost.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to end the bus when
        // the thread that started it dies, so the bus never outlives us even after SIGKILL.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start dbus-daemon (apt-get install dbus-daemon): {e}"),
            )
        })?;
        let mut line = String::new();
        match child.stdout.take() {
            Some(out) => BufReader::new(out).read_line(&mut line)?,
            None => 0,
        };
        let address = line.trim().to_string();
        if address.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("dbus-daemon printed no address"));
        }
        Ok(PrivateBus {
            address,
            child,
            dir,
        })
    }

    /// The bus daemon's process id (tests kill it to simulate a lost bus).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
