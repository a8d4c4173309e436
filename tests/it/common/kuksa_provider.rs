//! A small in-test VSS provider for the `kuksa` backend's tests: it claims the axes'
//! actuators at a broker (OpenProviderStream + ProvideActuationRequest), records every
//! actuation it receives, and moves the axes with the daemon's own actuator simulator
//! (`backend::mock::sim`, at the axis' speed times a factor), publishing the positions
//! (PublishValue) as it goes. An actuation of where the axis is stops it. It can be told to
//! stall (accept actuations and never move) and to publish a position (as if the axis were
//! moved by hand, or to report where it is at start). Unlike the mock seat it answers to the
//! test directly (actuations recorded, a stall of every axis at once) and gives an axis no
//! value until the test publishes one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driverprofiled::backend::mock::sim::Sim;
use driverprofiled::config::AxisConfig;
use driverprofiled::core::{AxisId, BackendCommand, Feedback};
use driverprofiled_kuksa::connect::{self, Address, Bearer, Client};
use driverprofiled_kuksa::proto::{
    self, BatchActuateStreamResponse, DataType, Datapoint, ListMetadataRequest,
    OpenProviderStreamRequest, ProvideActuationRequest, PublishValueRequest, SignalId,
    open_provider_stream_request as req, open_provider_stream_response as resp, signal_id,
};
use driverprofiled_kuksa::value;
use tokio::sync::mpsc;

use super::TIMEOUT;

/// How often a moving axis publishes its position.
pub const TICK: Duration = Duration::from_millis(20);

#[derive(Debug)]
enum Ctl {
    Publish(String, f64),
    Stall(bool),
    /// Answered once every command before it was carried out.
    Sync(tokio::sync::oneshot::Sender<()>),
}

/// The last value published per path (readable after the provider ended).
type Published = Arc<Mutex<BTreeMap<String, f64>>>;

/// One received actuation: the VSS path and the value, as a number.
pub type Actuation = (String, f64);

pub struct Provider {
    ctl: mpsc::UnboundedSender<Ctl>,
    published: Published,
    actuations: mpsc::UnboundedReceiver<Actuation>,
    task: tokio::task::JoinHandle<()>,
}

struct Axis {
    id: AxisId,
    path: String,
    ty: DataType,
    /// Where it is, once published (an actuation of an axis without a value does nothing).
    at: Option<f64>,
}

impl Provider {
    /// Claim the actuators of `axes` at the broker at `address` (returns once the broker took
    /// the claim). Each axis in `initial` is published at that position right away; the
    /// others have no value until [`Provider::publish`].
    pub async fn start(
        address: &str,
        axes: &[AxisConfig],
        speed_factor: f64,
        initial: &BTreeMap<String, f64>,
    ) -> Provider {
        let address: Address = address.parse().unwrap();
        let mut client = connect::connect(&address, Bearer::default(), Duration::from_secs(5))
            .await
            .unwrap();
        let mut by_path = BTreeMap::new();
        let mut ids = HashMap::new();
        for (id, a) in AxisId::all(axes) {
            let m = client
                .list_metadata(ListMetadataRequest {
                    root: a.vss.clone(),
                    filter: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .metadata
                .into_iter()
                .find(|m| m.path == a.vss)
                .unwrap_or_else(|| panic!("the broker has no {}", a.vss));
            ids.insert(m.id, a.vss.clone());
            by_path.insert(
                a.vss.clone(),
                Axis {
                    id,
                    path: a.vss.clone(),
                    ty: DataType::try_from(m.data_type).unwrap(),
                    at: None,
                },
            );
        }
        let (out_tx, out_rx) = mpsc::unbounded_channel::<OpenProviderStreamRequest>();
        let outgoing = futures_util::stream::unfold(out_rx, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        });
        out_tx
            .send(OpenProviderStreamRequest {
                action: Some(req::Action::ProvideActuationRequest(
                    ProvideActuationRequest {
                        actuator_identifiers: by_path
                            .keys()
                            .map(|p| SignalId {
                                signal: Some(signal_id::Signal::Path(p.clone())),
                            })
                            .collect(),
                    },
                )),
            })
            .unwrap();
        let mut incoming = client
            .open_provider_stream(outgoing)
            .await
            .unwrap()
            .into_inner();
        // The claim is taken.
        loop {
            let m = tokio::time::timeout(TIMEOUT, incoming.message())
                .await
                .expect("no ProvideActuationResponse")
                .unwrap()
                .expect("provider stream ended");
            if let Some(resp::Action::ProvideActuationResponse(_)) = m.action {
                break;
            }
        }
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let (act_tx, actuations) = mpsc::unbounded_channel();
        let published = Published::default();
        let mut sim = Sim::new(AxisId::all(axes));
        sim.set_speed_factor(speed_factor);
        let mut run = Run {
            sim,
            published: published.clone(),
            client,
            axes: by_path,
            ids,
            stalled: false,
            out: out_tx,
            actuations: act_tx,
        };
        for (path, p) in initial {
            run.publish(path, *p).await;
        }
        let task = tokio::spawn(run.run(incoming, ctl_rx));
        Provider {
            ctl,
            published,
            actuations,
            task,
        }
    }

    /// Publish `position` for the signal `path` (where the axis is now; it stops there).
    pub fn publish(&self, path: &str, position: f64) {
        self.ctl
            .send(Ctl::Publish(path.into(), position))
            .expect("provider gone");
    }

    /// A stalled provider accepts actuations and never moves.
    pub fn set_stall(&self, stalled: bool) {
        self.ctl.send(Ctl::Stall(stalled)).expect("provider gone");
    }

    /// Stall (or move again) and return once the provider took it: from then on it publishes
    /// nothing while stalled.
    pub async fn stall(&self, stalled: bool) {
        self.set_stall(stalled);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.ctl.send(Ctl::Sync(tx)).expect("provider gone");
        tokio::time::timeout(TIMEOUT, rx)
            .await
            .expect("the provider did not answer")
            .expect("provider gone");
    }

    /// Where the provider has `path` (the last value it published), also after it ended.
    pub fn position(&self, path: &str) -> Option<f64> {
        self.published.lock().unwrap().get(path).copied()
    }

    /// The next actuation received (panics after [`TIMEOUT`]).
    pub async fn next_actuation(&mut self) -> Actuation {
        tokio::time::timeout(TIMEOUT, self.actuations.recv())
            .await
            .expect("timed out waiting for an actuation")
            .expect("provider gone")
    }

    /// The actuations received so far and not yet taken.
    pub fn taken_actuations(&mut self) -> Vec<Actuation> {
        let mut v = Vec::new();
        while let Ok(a) = self.actuations.try_recv() {
            v.push(a);
        }
        v
    }
}

/// Dropping it ends the provider stream: the broker releases the claims.
impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Run {
    sim: Sim,
    published: Published,
    client: Client,
    axes: BTreeMap<String, Axis>,
    ids: HashMap<i32, String>,
    stalled: bool,
    /// Kept to keep the provider stream open.
    out: mpsc::UnboundedSender<OpenProviderStreamRequest>,
    actuations: mpsc::UnboundedSender<Actuation>,
}

impl Run {
    /// Publish `x` as where `path` is now, moved there from outside the simulator (it stops).
    async fn publish(&mut self, path: &str, x: f64) {
        if let Some(a) = self.axes.get(path) {
            self.sim.set_position(a.id, x);
        }
        self.publish_at(path, x).await;
    }

    /// Publish where the simulator has moved `path` to.
    async fn publish_at(&mut self, path: &str, x: f64) {
        let a = self
            .axes
            .get_mut(path)
            .unwrap_or_else(|| panic!("no axis {path}"));
        a.at = Some(x);
        self.published.lock().unwrap().insert(path.to_string(), x);
        let v = value::from_f64(x, a.ty).unwrap();
        self.client
            .publish_value(PublishValueRequest {
                signal_id: Some(SignalId {
                    signal: Some(signal_id::Signal::Path(a.path.clone())),
                }),
                data_point: Some(Datapoint {
                    timestamp: None,
                    value: Some(v),
                }),
            })
            .await
            .unwrap_or_else(|e| panic!("publish {path} = {x}: {e}"));
    }

    async fn run(
        mut self,
        mut incoming: tonic::Streaming<proto::OpenProviderStreamResponse>,
        mut ctl: mpsc::UnboundedReceiver<Ctl>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        let mut last = tokio::time::Instant::now();
        loop {
            let moving = self.sim.is_moving() && !self.stalled;
            tokio::select! {
                m = incoming.message() => match m {
                    Ok(Some(m)) => {
                        if let Some(resp::Action::BatchActuateStreamRequest(b)) = m.action {
                            for r in b.actuate_requests {
                                self.actuate(r);
                            }
                        }
                    }
                    _ => return,
                },
                c = ctl.recv() => match c {
                    Some(Ctl::Publish(path, x)) => self.publish(&path, x).await,
                    Some(Ctl::Stall(s)) => {
                        self.stalled = s;
                        let ids: Vec<AxisId> = self.axes.values().map(|a| a.id).collect();
                        for id in ids {
                            self.sim.set_stall(id, s);
                        }
                    }
                    Some(Ctl::Sync(done)) => {
                        let _ = done.send(());
                    }
                    None => return,
                },
                _ = tick.tick(), if moving => {
                    let now = tokio::time::Instant::now();
                    let dt = now.duration_since(last).as_secs_f64().min(0.1);
                    last = now;
                    for fb in self.sim.step(dt) {
                        let Feedback::Position { axis, position } = fb else { continue };
                        let Some(path) = self.axes.values().find(|a| a.id == axis).map(|a| a.path.clone()) else { continue };
                        self.publish_at(&path, position).await;
                    }
                }
            }
            if !moving {
                last = tokio::time::Instant::now();
            }
        }
    }

    fn actuate(&mut self, r: proto::ActuateRequest) {
        let path = match r.signal_id.and_then(|s| s.signal) {
            Some(signal_id::Signal::Path(p)) => p,
            Some(signal_id::Signal::Id(id)) => self.ids.get(&id).cloned().unwrap_or_default(),
            None => String::new(),
        };
        let x = r.value.as_ref().and_then(value::to_f64);
        let _ = self.out.send(OpenProviderStreamRequest {
            action: Some(req::Action::BatchActuateStreamResponse(
                BatchActuateStreamResponse {
                    signal_id: Some(SignalId {
                        signal: Some(signal_id::Signal::Path(path.clone())),
                    }),
                    error: None,
                },
            )),
        });
        let (Some(a), Some(x)) = (self.axes.get_mut(&path), x) else {
            return;
        };
        let _ = self.actuations.send((path, x));
        // Where it is (as the signal's type holds it): a stop.
        let here = a.at.is_some_and(|at| {
            value::from_f64(at, a.ty)
                .ok()
                .and_then(|v| value::to_f64(&v))
                == Some(x)
        });
        let id = a.id;
        let command = if here {
            BackendCommand::Stop { axis: id }
        } else if a.at.is_some() {
            BackendCommand::Move {
                axis: id,
                target: x,
            }
        } else {
            return;
        };
        // A stop's own report is not published: the stop's value is where the axis is.
        let _ = self.sim.command(&command, 0.0);
    }
}
