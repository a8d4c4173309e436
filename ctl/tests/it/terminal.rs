//! What a person sees on a terminal, as a person would see it: driverprofilectl runs in a
//! tmux pane (a real terminal) against the real daemon, and the test reads the pane and the
//! bytes written to it. `select --wait` draws the recall's progress; `monitor` draws each
//! axis as a bar between its limits with the target marked.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A tmux server of its own (its socket in a temporary directory), so that nothing of the
/// machine's tmux is touched; killed on drop.
struct Tmux {
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// A detached `cols`x30 session running `command` in a shell, once [`Tmux::go`] says so
    /// (so that the pane can be piped first). In CI, tmux must be there.
    fn start(command: &str, cols: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
            assert!(!ci, "tmux is needed for the terminal tests in CI");
            eprintln!("SKIPPED: no tmux");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let t = Tmux {
            socket: dir.path().join("tmux.sock"),
            _dir: dir,
        };
        let command = format!("tmux wait-for go; {command}");
        t.run(&[
            "new-session",
            "-d",
            "-x",
            &cols.to_string(),
            "-y",
            "30",
            &command,
        ]);
        Some(t)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the pane shows now.
    fn pane(&self) -> String {
        self.run(&["capture-pane", "-p"])
    }

    /// Let the pane's command run.
    fn go(&self) {
        self.run(&["wait-for", "-S", "go"]);
    }

    /// Block until the pane's command signals `channel` (`tmux wait-for -S`); a guard of a
    /// minute against a hung client.
    fn wait_for(&self, channel: &str) {
        let out = Command::new("timeout")
            .args(["60", "tmux", "-S"])
            .arg(&self.socket)
            .args(["wait-for", channel])
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "no {channel} within a minute:\n{}",
            self.pane()
        );
    }

    /// The pane once it shows `text`. There is no signal for "the pane was redrawn": this reads
    /// it until it does, bounded by [`TIMEOUT`].
    fn pane_showing(&self, text: &str) -> String {
        let end = Instant::now() + TIMEOUT;
        loop {
            let p = self.pane();
            if p.contains(text) {
                return p;
            }
            assert!(Instant::now() < end, "the pane never showed {text:?}:\n{p}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn ctl_line(env: &Env, args: &str) -> String {
    format!(
        "{} --bus {} {args}",
        shell_quote(CTL),
        shell_quote(&env.bus.address)
    )
}

#[tokio::test]
async fn select_wait_on_a_terminal_shows_the_recall_progress_and_its_outcome() {
    let env = Env::new().await;
    env.ctl(&[
        "create",
        "Anna",
        "seat_position=200",
        "mirror_driver_tilt=-60",
        "mirror_passenger_yaw=40",
    ])
    .expect(0);
    env.park().await;
    env.speed_factor(4.0).await;
    let log = env.dir.path().join("pane.log");
    let cmd = format!(
        "{}; echo EXIT=$?; tmux wait-for -S done; sleep 60",
        ctl_line(&env, "select anna --wait")
    );
    let Some(t) = Tmux::start(&cmd, 100) else {
        return;
    };
    t.run(&[
        "pipe-pane",
        "-o",
        &format!("cat >> {}", shell_quote(&log.display().to_string())),
    ]);
    t.go();
    t.wait_for("done");
    let pane = t.pane_showing("EXIT=");
    assert!(
        pane.contains("recall of Anna  [##############################] 100 %  completed"),
        "{pane}"
    );
    assert!(pane.contains("EXIT=0"), "{pane}");
    // On the way, the bar grew and named the moving axes.
    let bytes = std::fs::read(&log).unwrap_or_default();
    let written = String::from_utf8_lossy(&bytes);
    assert!(written.contains("moving: "), "{written}");
    assert!(
        written.contains("mirror_driver_tilt") && written.contains("seat_position"),
        "{written}"
    );
    let partial = written
        .split('\r')
        .filter_map(|l| l.split("] ").nth(1))
        .filter_map(|rest| rest.trim_start().split(' ').next()?.parse::<u32>().ok())
        .any(|pct| (1..100).contains(&pct));
    assert!(partial, "no partial progress drawn: {written}");
}

#[tokio::test]
async fn select_wait_piped_draws_no_progress() {
    let env = Env::new().await;
    env.ctl(&["create", "Anna", "seat_position=140"]).expect(0);
    env.park().await;
    env.speed_factor(50.0).await;
    let out = env.ctl(&["select", "anna", "--wait"]).expect(0);
    assert_eq!(out.stdout(), "", "no bar when piped");
}

#[tokio::test]
async fn monitor_draws_each_axis_between_its_limits_with_the_target() {
    let env = Env::new().await;
    env.ctl(&[
        "create",
        "Anna",
        "seat_position=260",
        "mirror_driver_tilt=-60",
    ])
    .expect(0);
    env.park().await;
    env.speed_factor(50.0).await;
    let cmd = format!("{}; sleep 60", ctl_line(&env, "monitor"));
    // 80 columns: every row fits, so the redraw in place never wraps.
    let Some(t) = Tmux::start(&cmd, 80) else {
        return;
    };
    t.go();
    let before = t.pane_showing("mirror_passenger_yaw");
    // At the start: the mirror centred (0 in -100..100: cell 10 of 0..19), its target there.
    let row = |pane: &str, axis: &str| {
        pane.lines()
            .find(|l| l.starts_with(&format!("{axis} ")))
            .unwrap_or_else(|| panic!("no row for {axis}:\n{pane}"))
            .to_string()
    };
    assert!(
        row(&before, "mirror_driver_tilt").contains(&format!(
            "[{}|{}]",
            "#".repeat(10),
            ".".repeat(9)
        )),
        "{before}"
    );
    env.ctl(&["select", "anna", "--wait"]).expect(0);
    let after = t.pane_showing("MotionFinished reason=recall outcome=completed");
    // -60: cell 4; the seat at its max: the target at the last cell, all filled before it.
    assert!(
        row(&after, "mirror_driver_tilt").contains(&format!(
            "[{}|{}]",
            "#".repeat(4),
            ".".repeat(15)
        )),
        "{after}"
    );
    assert!(
        row(&after, "seat_position").contains(&format!("[{}|]", "#".repeat(19))),
        "{after}"
    );
    assert!(after.contains("[# at | target]"), "{after}");
    assert!(after.lines().all(|l| l.chars().count() <= 80), "{after}");
}
