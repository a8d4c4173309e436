//! Actuator backends, in a registry. Each backend lives in a module of its own and is started
//! through its [`Driver`]: it probes what it drives, reports the positions it knows at start
//! (the others follow as feedback; until then the core treats them as not known), and takes
//! commands without blocking, reporting positions, manual moves and faults through the
//! [`FeedbackSender`] it was started with. A backend may serve objects of its own on the bus
//! through [`Backend::serve`]. The mock is just another backend.

#[cfg(feature = "kuksa")]
pub mod kuksa;
pub mod mock;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::{AxisConfig, Config};
use crate::core::{AxisId, BackendCommand, Feedback};

pub type FeedbackSender = mpsc::UnboundedSender<Feedback>;

pub trait Backend: Send + Sync {
    /// The name used for it in the config (`backend = "..."`).
    fn name(&self) -> &'static str;
    /// Command an axis. Must return at once; the outcome arrives as feedback.
    fn command(&self, cmd: &BackendCommand);
    /// Halt every axis this backend drives, now: the emergency stop of every fatal path (bus
    /// lost, a terminating signal, a failed engine, a panic). Synchronous and self-contained:
    /// it must not await, must not wait for a lock the caller may hold (a panic hook calls
    /// it on the thread that panicked), must not rely on the engine or the runtime running
    /// again afterwards, and may be called more than once. A real backend writes its stop
    /// frames directly; the mock stops its simulated axes.
    fn stop_all(&self);
    /// The simulation's controls, for the edge to serve (`org.driverprofiled1.Mock`): the
    /// mock backend's only.
    fn mock(&self) -> Option<mock::Mock> {
        None
    }
}

/// What a started backend hands the daemon.
pub struct Started {
    pub backend: Arc<dyn Backend>,
    /// The positions it knows at start.
    pub positions: BTreeMap<AxisId, f64>,
}

/// Why a backend (and so the daemon) cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The config does not match what the backend finds (an axis the actuators do not have,
    /// of another type, unit or range): fixing the config (or the vehicle's) is the remedy, and
    /// a restart alone would fail the same way. The daemon exits with 78 (EX_CONFIG).
    Config(String),
    /// It failed (a required broker that cannot be reached, ...): the daemon exits with 1 and
    /// systemd may restart it.
    Failed(String),
}

impl StartError {
    pub fn message(&self) -> &str {
        let (StartError::Config(m) | StartError::Failed(m)) = self;
        m
    }

    /// The same kind of error, its message prefixed with `what: `.
    fn context(self, what: &str) -> StartError {
        match self {
            StartError::Config(m) => StartError::Config(format!("{what}: {m}")),
            StartError::Failed(m) => StartError::Failed(format!("{what}: {m}")),
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for StartError {}

/// What [`Driver::start`] returns: a backend may have to talk to what it drives first.
pub type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<Started, StartError>> + 'a>>;

/// An axis a backend drives: its id (what commands and feedback carry) and its config.
pub type BackendAxis = (AxisId, AxisConfig);

/// An entry of the registry.
pub struct Driver {
    pub name: &'static str,
    /// Probe and start the backend for `axes` (on the current tokio runtime), with its own
    /// section of `cfg` (`[backend.NAME]`). An error says why it cannot drive them; the daemon
    /// does not start then.
    pub start: for<'a> fn(&'a Config, &'a [BackendAxis], FeedbackSender) -> StartFuture<'a>,
}

/// Every backend this build knows.
pub const REGISTRY: &[Driver] = &[
    mock::DRIVER,
    #[cfg(feature = "kuksa")]
    kuksa::DRIVER,
];

pub fn driver(name: &str) -> Option<&'static Driver> {
    REGISTRY.iter().find(|d| d.name == name)
}

/// The names of the backends this build knows (config files name them).
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|d| d.name)
}

/// Routes each axis' commands to the backend that drives it.
#[derive(Clone, Default)]
pub struct Router {
    by_axis: BTreeMap<AxisId, Arc<dyn Backend>>,
    backends: Vec<Arc<dyn Backend>>,
}

impl Router {
    /// Start the backend each axis names (or `only` for every axis), grouping the axes of one
    /// backend. Returns the router and the positions known at start.
    pub async fn start(
        cfg: &Config,
        only: Option<&str>,
        feedback: &FeedbackSender,
    ) -> Result<(Router, BTreeMap<AxisId, f64>), StartError> {
        let mut groups: BTreeMap<&str, Vec<BackendAxis>> = BTreeMap::new();
        for (id, a) in AxisId::all(&cfg.axes) {
            groups
                .entry(only.unwrap_or(&a.backend))
                .or_default()
                .push((id, a.clone()));
        }
        let mut router = Router::default();
        let mut known = BTreeMap::new();
        for (name, axes) in groups {
            let d = driver(name).ok_or_else(|| {
                StartError::Config(format!(
                    "no backend {name:?} in this build (known: {})",
                    REGISTRY
                        .iter()
                        .map(|d| d.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let started = (d.start)(cfg, &axes, feedback.clone())
                .await
                .map_err(|e| e.context(&format!("backend {name}")))?;
            for (id, _) in &axes {
                router.by_axis.insert(*id, started.backend.clone());
            }
            known.extend(started.positions);
            router.backends.push(started.backend);
        }
        Ok((router, known))
    }

    pub fn command(&self, cmd: &BackendCommand) {
        match self.by_axis.get(&cmd.axis()) {
            Some(b) => b.command(cmd),
            None => tracing::error!("no backend drives {}; command dropped", cmd.axis()),
        }
    }

    /// Halt every axis of every backend at once (see [`Backend::stop_all`]); `why` goes to the
    /// log.
    pub fn stop_all(&self, why: &str) {
        tracing::warn!("stopping every axis: {why}");
        for b in &self.backends {
            b.stop_all();
        }
    }

    /// The mock's controls, if the mock backend drives any axis.
    pub fn mock(&self) -> Option<mock::Mock> {
        self.backends.iter().find_map(|b| b.mock())
    }

    /// The backend names in use, sorted and joined with "+" (for `Manager.Backend`).
    pub fn describe(&self) -> String {
        let mut names: Vec<&str> = self.backends.iter().map(|b| b.name()).collect();
        names.sort_unstable();
        names.dedup();
        names.join("+")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config knows every backend by name, whether or not this build has it.
    #[test]
    fn the_registry_is_the_configs_list_of_backends() {
        let built: Vec<&str> = names().collect();
        assert!(
            built.iter().all(|n| crate::config::BACKENDS.contains(n)),
            "{built:?}"
        );
        if cfg!(feature = "kuksa") {
            assert_eq!(built, crate::config::BACKENDS);
        }
    }
}
