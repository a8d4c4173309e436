//! Inhibitors: programs that keep every actuator still for a while (an OTA update script, a
//! diagnosis session), as logind's inhibitors keep a machine from sleeping. This part owns the
//! list; the edge hands out a descriptor for each and reports when its last copy is closed.
//!
//! While any inhibitor is held:
//! - a requested motion (`SelectProfile`, `Actuator.MoveTo`) fails with [`Error::Inhibited`],
//!   and so does any other request the daemon refuses while inhibited (see
//!   [`super::Core::not_inhibited`]);
//! - automatic motions (key approach, easy exit's retract and restore) do not start. Their
//!   triggers are dropped, not kept for later: nothing moves when the inhibitor ends. The
//!   easy-exit state stays as it was (a car left retracted is restored by a later trigger,
//!   a fresh one: a press of the brake that was already held does not count);
//! - a motion in progress halts at once, with outcome [`super::Outcome::Inhibited`].
//!
//! `Stop` and everything that does not move an actuator keep working.

use super::{Error, quote};

/// Most inhibitors held at once.
pub const MAX_INHIBITORS: usize = 64;
/// Most characters of `who`.
pub const MAX_WHO: usize = 64;
/// Most characters of `why`.
pub const MAX_WHY: usize = 256;

/// One inhibitor: who took it and why, and the caller's credentials as the bus reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inhibitor {
    /// Unique for the daemon's lifetime; the edge releases the inhibitor by it.
    pub id: u64,
    pub who: String,
    pub why: String,
    pub uid: u32,
    /// 0 when the bus did not report it.
    pub pid: u32,
}

/// The inhibitors held, oldest first.
#[derive(Debug, Default)]
pub(super) struct Inhibitors {
    held: Vec<Inhibitor>,
    next_id: u64,
}

/// Why `what` (`who` or `why`) is unacceptable, if it is: 1 to `max` characters, no control
/// characters.
fn check_text(what: &str, text: &str, max: usize) -> Result<(), Error> {
    let n = text.chars().count();
    if n == 0 || n > max {
        return Err(Error::InvalidArgs(format!(
            "{what} has 1 to {max} characters, not {n}"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::InvalidArgs(format!(
            "{what} may not contain control characters: {}",
            quote(text)
        )));
    }
    Ok(())
}

impl Inhibitors {
    /// Take an inhibitor; its id. InvalidArgs for a bad `who` or `why`, LimitReached when
    /// [`MAX_INHIBITORS`] are held already. Nothing changes on an error.
    pub fn take(&mut self, who: String, why: String, uid: u32, pid: u32) -> Result<u64, Error> {
        check_text("who", &who, MAX_WHO)?;
        check_text("why", &why, MAX_WHY)?;
        if self.held.len() >= MAX_INHIBITORS {
            return Err(Error::LimitReached(format!(
                "{MAX_INHIBITORS} inhibitors are held already"
            )));
        }
        self.next_id += 1;
        let id = self.next_id;
        self.held.push(Inhibitor {
            id,
            who,
            why,
            uid,
            pid,
        });
        Ok(id)
    }

    /// End inhibitor `id`; the inhibitor, or `None` if it was not held.
    pub fn release(&mut self, id: u64) -> Option<Inhibitor> {
        let i = self.held.iter().position(|h| h.id == id)?;
        Some(self.held.remove(i))
    }

    pub fn is_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Oldest first.
    pub fn list(&self) -> &[Inhibitor] {
        &self.held
    }

    /// Inhibited, for `action` ("cannot recall now"), naming the oldest inhibitor; Ok when
    /// none is held.
    pub fn refuse(&self, action: &str) -> Result<(), Error> {
        let Some(first) = self.held.first() else {
            return Ok(());
        };
        let more = match self.held.len() - 1 {
            0 => String::new(),
            1 => " and 1 more".into(),
            n => format!(" and {n} more"),
        };
        Err(Error::Inhibited(format!(
            "{action}: motion is inhibited by {} ({}){more}",
            quote(&first.who),
            quote(&first.why)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(i: &mut Inhibitors, who: &str, why: &str) -> Result<u64, Error> {
        i.take(who.into(), why.into(), 1000, 42)
    }

    #[test]
    fn who_and_why_are_checked_and_a_bad_one_changes_nothing() {
        let mut i = Inhibitors::default();
        let long_who = "w".repeat(MAX_WHO + 1);
        let long_why = "y".repeat(MAX_WHY + 1);
        for (who, why) in [
            ("", "update"),
            (long_who.as_str(), "update"),
            ("ota", ""),
            ("ota", long_why.as_str()),
            ("o\nta", "update"),
            ("ota", "up\u{7}date"),
        ] {
            let r = take(&mut i, who, why);
            assert!(
                matches!(r, Err(Error::InvalidArgs(_))),
                "{who:?} {why:?}: {r:?}"
            );
            // The message quotes at most 64 characters of the input.
            assert!(r.unwrap_err().message().len() < 120);
        }
        assert!(!i.is_held());
        // The limits themselves are fine, counted in characters.
        let who = "ö".repeat(MAX_WHO);
        let why = "ü".repeat(MAX_WHY);
        assert!(take(&mut i, &who, &why).is_ok());
        assert_eq!(i.list()[0].who, who);
    }

    #[test]
    fn at_most_64_and_released_by_id_oldest_first() {
        let mut i = Inhibitors::default();
        let ids: Vec<u64> = (0..MAX_INHIBITORS)
            .map(|n| take(&mut i, &format!("p{n}"), "test").unwrap())
            .collect();
        let r = take(&mut i, "one more", "test");
        assert!(matches!(r, Err(Error::LimitReached(_))), "{r:?}");
        assert_eq!(i.list().len(), MAX_INHIBITORS);
        let second = i.release(ids[1]).unwrap();
        assert_eq!(
            (second.who.as_str(), second.uid, second.pid),
            ("p1", 1000, 42)
        );
        assert_eq!(i.release(ids[1]), None, "released once only");
        // Room again; ids are not reused; the list stays oldest first.
        let id = take(&mut i, "late", "test").unwrap();
        assert!(!ids.contains(&id));
        let whos: Vec<&str> = i.list().iter().map(|h| h.who.as_str()).collect();
        assert_eq!(whos[..3], ["p0", "p2", "p3"]);
        assert_eq!(whos.last(), Some(&"late"));
    }

    #[test]
    fn the_refusal_names_the_oldest_inhibitor() {
        let mut i = Inhibitors::default();
        assert_eq!(i.refuse("cannot recall now"), Ok(()));
        let a = take(&mut i, "ota-update", "installing 2.1").unwrap();
        let e = i.refuse("cannot recall now").unwrap_err();
        assert_eq!(
            e,
            Error::Inhibited(
                "cannot recall now: motion is inhibited by \"ota-update\" (\"installing 2.1\")"
                    .into()
            )
        );
        take(&mut i, "diag", "reading faults").unwrap();
        take(&mut i, "diag", "reading faults").unwrap();
        let e = i.refuse("cannot move now").unwrap_err();
        assert!(
            e.message().ends_with("(\"installing 2.1\") and 2 more"),
            "{e}"
        );
        i.release(a);
        let e = i.refuse("x").unwrap_err();
        assert!(e.message().contains("\"diag\""), "{e}");
    }
}
