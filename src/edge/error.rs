//! D-Bus errors: the core's typed errors under `org.driverprofiled1.Error.*`,
//! `org.freedesktop.DBus.Error.InvalidArgs` for malformed arguments, and
//! `org.freedesktop.DBus.Error.AccessDenied` for a caller without the role a call needs (the
//! edge's own check, [`crate::access`]), and `org.driverprofiled1.Error.NotSupported` for a call
//! the configuration rules out.

use zbus::message::{Header, Message};
use zbus::names::ErrorName;

use crate::access::Denied;
use crate::core;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// One of the core's typed errors.
    Core(core::Error),
    /// The caller may not make this call. The message names the method, never the input.
    AccessDenied(String),
    /// The daemon is configured not to take this call (UpdateSignals with `[vehicle] source =
    /// "kuksa"`).
    NotSupported(String),
}

impl From<core::Error> for Error {
    fn from(e: core::Error) -> Self {
        Error::Core(e)
    }
}

impl Error {
    pub fn invalid_args(msg: impl Into<String>) -> Self {
        Error::Core(core::Error::InvalidArgs(msg.into()))
    }

    pub fn name_str(&self) -> &'static str {
        use driverprofiled_api::ErrorName as N;
        let e = match self {
            Error::AccessDenied(_) => return N::AccessDenied.as_str(),
            Error::NotSupported(_) => return N::NotSupported.as_str(),
            Error::Core(e) => e,
        };
        match e {
            core::Error::InvalidArgs(_) => N::InvalidArgs,
            core::Error::NotFound(_) => N::NotFound,
            core::Error::AlreadyExists(_) => N::AlreadyExists,
            core::Error::OutOfRange(_) => N::OutOfRange,
            core::Error::Interlocked(_) => N::Interlocked,
            core::Error::LimitReached(_) => N::LimitReached,
            core::Error::KeyInUse(_) => N::KeyInUse,
            core::Error::DutyLimit(_) => N::DutyLimit,
            core::Error::Failed(_) => N::Failed,
            core::Error::NotReady(_) => N::NotReady,
            core::Error::Inhibited(_) => N::Inhibited,
            core::Error::NotSupported(_) => N::NotSupported,
        }
        .as_str()
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Error::Core(e) => e.message(),
            Error::AccessDenied(m) | Error::NotSupported(m) => m,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name_str(), self.message())
    }
}

impl std::error::Error for Error {}

impl zbus::DBusError for Error {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name()).build(&(self.message(),))
    }

    fn name(&self) -> ErrorName<'_> {
        ErrorName::from_static_str_unchecked(self.name_str())
    }

    fn description(&self) -> Option<&str> {
        Some(self.message())
    }
}

impl From<Denied> for Error {
    fn from(d: Denied) -> Self {
        Error::AccessDenied(d.0)
    }
}
