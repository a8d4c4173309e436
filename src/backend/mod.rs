//! Actuator backends. Each backend lives in a file of its own behind [`Backend`]; the mock is
//! just another backend. A backend takes commands without blocking and reports positions,
//! manual moves and faults through the [`FeedbackSender`] it was started with.

pub mod mock;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::core::{BackendCommand, Feedback};

pub type FeedbackSender = mpsc::UnboundedSender<Feedback>;

pub trait Backend: Send + Sync {
    /// The name used for it in the config (`backend = "..."`).
    fn name(&self) -> &'static str;
    /// Command an axis. Must return at once; the outcome arrives as feedback.
    fn command(&self, cmd: &BackendCommand);
}

/// Routes each axis' commands to the backend that drives it.
#[derive(Clone, Default)]
pub struct Router {
    by_axis: HashMap<String, Arc<dyn Backend>>,
}

impl Router {
    pub fn add(&mut self, axis: &str, backend: Arc<dyn Backend>) {
        self.by_axis.insert(axis.to_string(), backend);
    }

    pub fn command(&self, cmd: &BackendCommand) {
        let (BackendCommand::Move { axis, .. } | BackendCommand::Stop { axis }) = cmd;
        match self.by_axis.get(axis) {
            Some(b) => b.command(cmd),
            None => tracing::error!("no backend drives axis {axis:?}; command dropped"),
        }
    }

    /// The backend names in use, sorted and joined with "+" (for `Manager.Backend`).
    pub fn describe(&self) -> String {
        let mut names: Vec<&str> = self.by_axis.values().map(|b| b.name()).collect();
        names.sort_unstable();
        names.dedup();
        names.join("+")
    }
}
