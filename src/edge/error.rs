//! D-Bus errors: the core's typed errors under `org.driverprofiled1.Error.*`, and
//! `org.freedesktop.DBus.Error.InvalidArgs` for malformed arguments.

use zbus::message::{Header, Message};
use zbus::names::ErrorName;

use crate::core;

#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub core::Error);

impl From<core::Error> for Error {
    fn from(e: core::Error) -> Self {
        Error(e)
    }
}

impl Error {
    pub fn invalid_args(msg: impl Into<String>) -> Self {
        Error(core::Error::InvalidArgs(msg.into()))
    }

    pub fn name_str(&self) -> &'static str {
        use driverprofiled_api::ErrorName as N;
        match &self.0 {
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
        }
        .as_str()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name_str(), self.0)
    }
}

impl std::error::Error for Error {}

impl zbus::DBusError for Error {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name()).build(&(self.0.to_string(),))
    }

    fn name(&self) -> ErrorName<'_> {
        ErrorName::from_static_str_unchecked(self.name_str())
    }

    fn description(&self) -> Option<&str> {
        Some(self.0.message())
    }
}
