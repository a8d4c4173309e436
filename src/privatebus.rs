//! `--private-bus`: a `dbus-daemon` of our own, for developers without a car (and no system
//! bus policy to install). It listens in a fresh directory and ends with the daemon.

use std::io;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct PrivateBus {
    pub address: String,
    child: Child,
    dir: PathBuf,
}

/// The bus configuration: one user, everything allowed (it is a developer's private bus).
pub fn config_xml(listen_dir: &str) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={listen_dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#
    )
}

impl PrivateBus {
    pub async fn start() -> io::Result<PrivateBus> {
        let dir = std::env::temp_dir().join(format!("driverprofiled-bus-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("bus.conf");
        std::fs::write(&conf, config_xml(&dir.display().to_string()))?;
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .arg("--print-address=1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to end the bus when
        // this process dies, so the bus never outlives the daemon even after SIGKILL.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start dbus-daemon: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("dbus-daemon has no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        let address = line.trim().to_string();
        if address.is_empty() {
            return Err(io::Error::other("dbus-daemon printed no address"));
        }
        Ok(PrivateBus {
            address,
            child,
            dir,
        })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
