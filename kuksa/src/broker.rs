//! An in-repo `kuksa.val.v2` test broker: the subset of the Eclipse KUKSA databroker that
//! driverprofiled and its providers use, with the semantics documented in
//! `proto/kuksa/val/v2/val.proto` and implemented by the real broker. Tests run it in-process
//! ([`start`], then publish with [`BrokerHandle::set`] and watch [`BrokerHandle::actuations`]);
//! developers run it as `driverprofiled-test-broker` (a car on a laptop).
//!
//! What it does like the real broker:
//! - signals from a VSS JSON tree ([`Vss`], the real broker's `--vss` format); ids assigned
//!   at start (in path order, from 1), stable for the run and not across runs;
//! - `GetValue`/`GetValues` (the stored value; a signal without one gives a `Datapoint` whose
//!   `value` is `None`), `ListMetadata` (a branch lists every signal under it, a signal itself,
//!   `*`/`**` wildcards, `""` everything; `NOT_FOUND` when nothing matches);
//! - `Subscribe`/`SubscribeById`: `NOT_FOUND` if any signal is unknown, `INVALID_ARGUMENT` if
//!   none is given or `buffer_size` > 1000; the first response carries every subscribed entry
//!   (value `None` where there is none yet), then one response per publish with the entries it
//!   changed. A subscriber that falls behind keeps only the newest `buffer_size + 1` responses
//!   (the default 0 keeps only the latest) — older ones are DROPPED, as in the real broker, so
//!   a client that must not lose a change asks for a buffer;
//! - `Actuate`/`BatchActuate`/`ActuateStream`: `NOT_FOUND`, `INVALID_ARGUMENT` (not an
//!   actuator, wrong type — int8/16/32 travel as int32, uint8/16/32 as uint32 —, not in
//!   `allowed`, outside min/max), `UNAVAILABLE` when no provider claims the actuator, else a
//!   `BatchActuateStreamRequest` addressed BY ID goes to the claiming provider's stream and the
//!   call returns Ok. An actuation does not change the actuator's value: only its provider
//!   publishing does. A batch is checked whole before anything is forwarded;
//! - `PublishValue`: the same checks, then stored and notified;
//! - `OpenProviderStream`: `ProvideActuationRequest` (by path or id) claims actuators
//!   (`ALREADY_EXISTS` if any is claimed already, even by the same stream; `NOT_FOUND`);
//!   `ProvideSignalRequest` registers the ids the stream publishes (same errors); a
//!   `PublishValuesRequest` before that ends the stream with `ABORTED`, one with an id not
//!   registered by this stream with `ALREADY_EXISTS`, and invalid values are answered by a
//!   `PublishValuesResponse` (nothing on success); `BatchActuateStreamResponse`s are accepted.
//!   The broker sends the stream an `UpdateFilterRequest` for provided signals that have
//!   subscribers, as the real one does. Errors end the stream ("strict case").
//!
//! Where it differs (simpler, or more deterministic for tests):
//! - a provider's claims are released the moment its stream ends (the real broker notices a
//!   gone provider only in its housekeeping, within a second, and until then answers a new
//!   claim with `ALREADY_EXISTS` — a provider that reconnects must retry that);
//! - the first `Subscribe` response always carries every entry (the real broker can replace it
//!   by a later change for a slow subscriber with buffer 0);
//! - `GetValue` never asks a provider (`GetProviderValueRequest`); sample intervals and
//!   `Filter`s are accepted and ignored; an empty `GetValues` is `INVALID_ARGUMENT`, as the
//!   proto says (the real broker answers it with an empty list);
//! - authorisation: with a token, every call must carry `authorization: Bearer <token>`
//!   exactly, else `UNAUTHENTICATED`; the real broker verifies a JWT's signature and scopes
//!   (read/actuate/provide per path). [`BrokerHandle::deny`] makes a path answer
//!   `PERMISSION_DENIED` to test that case;
//! - [`BrokerHandle::stop`] ends every connection at once, like a broker that died.

mod conn;
mod service;
mod vss;

pub use vss::{TEST_VSS_JSON, Vss, test_vss};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::Status;

use crate::proto::value::TypedValue;
use crate::proto::{
    DataType, Datapoint, EntryType, Metadata, OpenProviderStreamResponse, SignalId, Value,
    signal_id,
};
use crate::value::type_name;
use conn::{Conn, Io};
use vss::{Signal, element_type};

/// Where the broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address; port 0 picks a free port ([`BrokerHandle::address`] tells which).
    Tcp(SocketAddr),
    /// A Unix socket path (a stale socket file nobody listens on is replaced).
    Unix(PathBuf),
}

impl FromStr for Listen {
    type Err = String;

    /// What a client's [`Address`](crate::connect::Address) takes: `unix:/path` (or
    /// `unix:///path`), or `host:port` / `http://host:port` (the host resolved now; the first
    /// address is used).
    fn from_str(s: &str) -> Result<Listen, String> {
        use std::net::ToSocketAddrs;
        match s.parse::<crate::connect::Address>()? {
            crate::connect::Address::Unix(p) => Ok(Listen::Unix(p)),
            crate::connect::Address::Tcp(uri) => {
                let hp = uri.trim_start_matches("http://").trim_end_matches('/');
                let mut addrs = hp
                    .to_socket_addrs()
                    .map_err(|e| format!("not a host:port address ({e}): {s:?}"))?;
                addrs
                    .next()
                    .map(Listen::Tcp)
                    .ok_or_else(|| format!("{s:?} resolves to no address"))
            }
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "http://{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The most responses a subscriber may ask to have buffered (the real broker's limit).
pub const MAX_BUFFER_SIZE: u32 = 1000;
/// The longest path accepted in a request (the real broker's limit).
pub const MAX_REQUEST_PATH_LENGTH: usize = 1000;

/// A running test broker. [`stop`](BrokerHandle::stop) it to simulate a broker that dies;
/// dropping it does the same without waiting.
pub struct BrokerHandle {
    shared: Arc<Shared>,
    address: String,
    unix_path: Option<PathBuf>,
    server: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// Start a broker serving `vss` on `listen`. With `token`, every call must carry
/// `authorization: Bearer <token>` (else `UNAUTHENTICATED`). Must be called within a tokio
/// runtime; the broker runs on it.
pub async fn start(
    vss: Vss,
    listen: Listen,
    token: Option<String>,
) -> Result<BrokerHandle, String> {
    let shared = Arc::new(Shared::new(vss));
    let (stop_tx, stop_rx) = watch::channel(false);
    let svc = service::Service {
        shared: shared.clone(),
    };
    let auth = service::auth(token)?;
    let router = tonic::transport::Server::builder().add_service(
        crate::proto::val_server::ValServer::with_interceptor(svc, auth),
    );

    let (address, unix_path, server) = match &listen {
        Listen::Tcp(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = l
                .local_addr()
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let incoming = TcpListenerStream::new(l).map(move |r| {
                r.map(|s| {
                    // gRPC's small frames must not wait for Nagle + delayed ACKs.
                    let _ = s.set_nodelay(true);
                    Conn::new(Io::Tcp(s), stop_rx.clone())
                })
            });
            let task = tokio::spawn(async move {
                let _ = router.serve_with_incoming(incoming).await;
            });
            (format!("http://{local}"), None, task)
        }
        Listen::Unix(path) => {
            if path.exists() {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(format!(
                        "cannot listen on {}: a server is listening there",
                        path.display()
                    ));
                }
                std::fs::remove_file(path).map_err(|e| {
                    format!("cannot replace the stale socket {}: {e}", path.display())
                })?;
            }
            let l = tokio::net::UnixListener::bind(path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
            let incoming = UnixListenerStream::new(l)
                .map(move |r| r.map(|s| Conn::new(Io::Unix(s), stop_rx.clone())));
            let task = tokio::spawn(async move {
                let _ = router.serve_with_incoming(incoming).await;
            });
            (format!("unix:{}", path.display()), Some(path.clone()), task)
        }
    };
    Ok(BrokerHandle {
        shared,
        address,
        unix_path,
        server: Some(server),
        stop: stop_tx,
    })
}

impl BrokerHandle {
    /// Where clients connect: `http://127.0.0.1:PORT` or `unix:/path` (both parse as a
    /// [`crate::connect::Address`]).
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Publish `value` for `path` as its provider would (any signal type: sensors, and the
    /// current value of actuators); `None` = no value. Checked like a `PublishValue`: the
    /// path must exist, and the value must have the signal's type (int8/16/32 as int32,
    /// uint8/16/32 as uint32), be allowed, and lie within min/max. Notifies subscribers.
    pub fn set(&self, path: &str, value: Option<Value>) -> Result<(), String> {
        self.set_many(&[(path, value)])
    }

    /// Publish several values at once (one response to each subscriber, as a provider's
    /// `PublishValuesRequest` does). Nothing is published if any of them is refused.
    pub fn set_many(&self, values: &[(&str, Option<Value>)]) -> Result<(), String> {
        let mut st = self.shared.lock();
        let mut updates = Vec::with_capacity(values.len());
        for (path, value) in values {
            let id = st
                .id(path)
                .ok_or_else(|| format!("{path}: no such signal in the VSS"))?;
            if let Some(v) = value {
                check_value(&st.entries[index(id)].signal, v)
                    .map_err(|e| format!("{path}: {e}"))?;
            }
            updates.push((id, value.clone()));
        }
        st.publish(updates);
        Ok(())
    }

    /// [`set`](BrokerHandle::set) with the value written as text, parsed as the signal's type
    /// (`true`/`false`, a number, or the string itself); `""` or `none` for no value (except
    /// for a string signal, where `""` is the empty string).
    pub fn set_str(&self, path: &str, text: &str) -> Result<(), String> {
        let ty = {
            let st = self.shared.lock();
            let id = st
                .id(path)
                .ok_or_else(|| format!("{path}: no such signal in the VSS"))?;
            st.entries[index(id)].signal.data_type
        };
        let value = if text == "none" || (text.is_empty() && ty != DataType::String) {
            None
        } else {
            Some(parse_value(text, ty).map_err(|e| format!("{path}: {e}"))?)
        };
        self.set(path, value)
    }

    /// The current value of `path` (`None`: no value yet, or no such signal).
    pub fn get(&self, path: &str) -> Option<Value> {
        let st = self.shared.lock();
        let id = st.id(path)?;
        st.entries[index(id)].datapoint.value.clone()
    }

    /// The id the broker gave `path` in this run.
    pub fn id(&self, path: &str) -> Option<i32> {
        self.shared.lock().id(path)
    }

    /// Every accepted actuation from now on, as (path, value), in order (an `Actuate`, each
    /// entry of a `BatchActuate`, each message of an `ActuateStream`). A receiver that falls
    /// more than 1024 behind loses the oldest.
    pub fn actuations(&self) -> broadcast::Receiver<(String, Value)> {
        self.shared.actuations.subscribe()
    }

    /// Whether a provider's open stream claims the actuator `path`.
    pub fn claimed(&self, path: &str) -> bool {
        let st = self.shared.lock();
        st.id(path).is_some_and(|id| st.actuators.contains_key(&id))
    }

    /// Wait until `path` is claimed (`true`) or not claimed (`false`) by a provider.
    pub async fn wait_claimed(&self, path: &str, claimed: bool) {
        self.wait_until(|st| {
            st.id(path).is_some_and(|id| st.actuators.contains_key(&id)) == claimed
        })
        .await
    }

    /// How many open subscriptions include `path`.
    pub fn subscribers(&self, path: &str) -> usize {
        let st = self.shared.lock();
        st.id(path).map_or(0, |id| st.subscribers(id))
    }

    /// Wait until at least `n` open subscriptions include `path` (e.g. a client reconnected).
    pub async fn wait_subscribers(&self, path: &str, n: usize) {
        self.wait_until(|st| st.id(path).is_some_and(|id| st.subscribers(id) >= n))
            .await
    }

    /// Wait until no open subscription includes `path` (e.g. a client went away).
    pub async fn wait_unsubscribed(&self, path: &str) {
        self.wait_until(|st| st.id(path).is_none_or(|id| st.subscribers(id) == 0))
            .await
    }

    /// Make every call that reads, subscribes, actuates, publishes or provides `path` fail
    /// with `PERMISSION_DENIED` (`true`), or allow it again (`false`) — what a token without
    /// the scope for it gets from the real broker.
    pub fn deny(&self, path: &str, denied: bool) -> Result<(), String> {
        let mut st = self.shared.lock();
        let id = st
            .id(path)
            .ok_or_else(|| format!("{path}: no such signal in the VSS"))?;
        if denied {
            st.denied.insert(id);
        } else {
            st.denied.remove(&id);
        }
        Ok(())
    }

    /// Hold every `Actuate` of `path` (unary or streamed) for `hold` before forwarding it to
    /// its provider and answering (`None`: at once again) — a broker, or a link to it, slow to
    /// take one actuator's requests. Other signals' actuations are not held.
    pub fn hold_actuations(&self, path: &str, hold: Option<Duration>) -> Result<(), String> {
        let mut st = self.shared.lock();
        let id = st
            .id(path)
            .ok_or_else(|| format!("{path}: no such signal in the VSS"))?;
        match hold {
            Some(d) => st.held.insert(id, d),
            None => st.held.remove(&id),
        };
        Ok(())
    }

    async fn wait_until(&self, mut f: impl FnMut(&State) -> bool) {
        let mut rx = self.shared.changed.subscribe();
        loop {
            if f(&self.shared.lock()) {
                return;
            }
            // The sender lives in `shared`, which we hold: this never fails.
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stop: close the listener and end every connection — each open call and stream ends
    /// with an error on the client's side, as when a broker dies — and forget all claims and
    /// subscriptions. The address can be listened on again once this returns.
    pub async fn stop(mut self) {
        self.shutdown();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(server) = &self.server {
            server.abort();
        }
        self.shared.lock().reset();
        self.shared.changed.send_replace(());
        if let Some(p) = self.unix_path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for BrokerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The broker's state, shared by the handle and the service.
pub(crate) struct Shared {
    state: Mutex<State>,
    actuations: broadcast::Sender<(String, Value)>,
    /// Bumped when claims or subscriptions change (for the handle's waits).
    changed: watch::Sender<()>,
}

impl Shared {
    fn new(vss: Vss) -> Shared {
        let now = timestamp();
        let mut entries = Vec::with_capacity(vss.signals.len());
        let mut by_path = HashMap::with_capacity(vss.signals.len());
        for (i, (path, signal)) in vss.signals.into_iter().enumerate() {
            let id = i32::try_from(i + 1).unwrap_or(i32::MAX);
            by_path.insert(path.clone(), id);
            entries.push(Entry {
                id,
                path,
                signal,
                datapoint: Datapoint {
                    timestamp: Some(now),
                    value: None,
                },
            });
        }
        Shared {
            state: Mutex::new(State {
                entries,
                by_path,
                subs: HashMap::new(),
                next_key: 0,
                actuators: HashMap::new(),
                provided: HashMap::new(),
                providers: HashMap::new(),
                denied: HashSet::new(),
                held: HashMap::new(),
            }),
            actuations: broadcast::channel(1024).0,
            changed: watch::channel(()).0,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; if something did, the state is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn bump(&self) {
        self.changed.send_replace(());
    }
}

pub(crate) type ProviderTx = mpsc::Sender<Result<OpenProviderStreamResponse, Status>>;

/// One publish as subscribers receive it: (id, path, datapoint) of each changed entry.
pub(crate) type Update = Arc<Vec<(i32, String, Datapoint)>>;

pub(crate) struct State {
    /// By id: entry `id` is at `id - 1`.
    pub(crate) entries: Vec<Entry>,
    by_path: HashMap<String, i32>,
    pub(crate) subs: HashMap<u64, Sub>,
    /// Keys for subscriptions and provider streams.
    pub(crate) next_key: u64,
    /// Actuator id → the provider stream claiming it.
    pub(crate) actuators: HashMap<i32, u64>,
    /// Signal id → (the provider stream that registered it, its sample interval in ms).
    pub(crate) provided: HashMap<i32, (u64, u32)>,
    pub(crate) providers: HashMap<u64, ProviderTx>,
    pub(crate) denied: HashSet<i32>,
    /// Actuator id → how long its actuations are held (`hold_actuations`).
    pub(crate) held: HashMap<i32, Duration>,
}

pub(crate) struct Entry {
    pub(crate) id: i32,
    pub(crate) path: String,
    pub(crate) signal: Signal,
    /// `value: None` = no value.
    pub(crate) datapoint: Datapoint,
}

pub(crate) struct Sub {
    pub(crate) ids: HashSet<i32>,
    pub(crate) tx: broadcast::Sender<Update>,
}

pub(crate) fn index(id: i32) -> usize {
    usize::try_from(id - 1).unwrap_or(usize::MAX)
}

impl State {
    pub(crate) fn id(&self, path: &str) -> Option<i32> {
        self.by_path.get(path).copied()
    }

    pub(crate) fn entry(&self, id: i32) -> Option<&Entry> {
        if id < 1 {
            return None;
        }
        self.entries.get(index(id))
    }

    pub(crate) fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    fn subscribers(&self, id: i32) -> usize {
        self.subs
            .values()
            .filter(|s| s.ids.contains(&id) && s.tx.receiver_count() > 0)
            .count()
    }

    /// Store already checked values and notify the subscribers of each changed entry (one
    /// response per subscriber). An `on_change` signal given its current value again changes
    /// nothing.
    pub(crate) fn publish(&mut self, updates: Vec<(i32, Option<Value>)>) {
        let ts = timestamp();
        let mut changed = Vec::with_capacity(updates.len());
        for (id, value) in updates {
            // A Value without a typed value is "no value", as the real broker reads it.
            let value = value.filter(|v| v.typed_value.is_some());
            let Some(e) = self.entries.get_mut(index(id)) else {
                continue;
            };
            if e.signal.on_change && e.datapoint.value == value {
                continue;
            }
            e.datapoint = Datapoint {
                timestamp: Some(ts),
                value,
            };
            changed.push((id, e.path.clone(), e.datapoint.clone()));
        }
        if changed.is_empty() {
            return;
        }
        let mut gone = Vec::new();
        for (key, sub) in &self.subs {
            let mine: Vec<_> = changed
                .iter()
                .filter(|(id, _, _)| sub.ids.contains(id))
                .cloned()
                .collect();
            if !mine.is_empty() && sub.tx.send(Arc::new(mine)).is_err() {
                gone.push(*key);
            }
        }
        for key in gone {
            self.subs.remove(&key);
        }
    }

    /// Forget every claim, registration and subscription (the broker stopped).
    fn reset(&mut self) {
        self.subs.clear();
        self.actuators.clear();
        self.provided.clear();
        self.providers.clear();
    }

    /// Resolve a request's signal id (by path or id) to an existing signal's id.
    pub(crate) fn resolve(&self, sid: Option<&SignalId>) -> Result<i32, Status> {
        match sid.and_then(|s| s.signal.as_ref()) {
            None => Err(Status::invalid_argument("No SignalId provided")),
            Some(signal_id::Signal::Path(p)) => self.resolve_path(p),
            Some(signal_id::Signal::Id(id)) => match self.entry(*id) {
                Some(_) => Ok(*id),
                None => Err(Status::not_found(format!("Signal id {id} not found"))),
            },
        }
    }

    pub(crate) fn resolve_path(&self, path: &str) -> Result<i32, Status> {
        if path.len() > MAX_REQUEST_PATH_LENGTH {
            return Err(Status::invalid_argument("The provided path is too long"));
        }
        self.id(path)
            .ok_or_else(|| Status::not_found(format!("Path not found: {path}")))
    }

    /// `PERMISSION_DENIED` for a path made inaccessible with [`BrokerHandle::deny`].
    pub(crate) fn permit(&self, id: i32) -> Result<(), Status> {
        if self.denied.contains(&id) {
            let path = self.entry(id).map_or("?", |e| e.path.as_str());
            return Err(Status::permission_denied(format!(
                "Permission denied for vss_path {path}"
            )));
        }
        Ok(())
    }

    pub(crate) fn metadata(&self, e: &Entry) -> Metadata {
        let s = &e.signal;
        Metadata {
            path: e.path.clone(),
            id: e.id,
            data_type: s.data_type as i32,
            entry_type: s.entry_type as i32,
            description: s.description.clone(),
            comment: s.comment.clone(),
            deprecation: s.deprecation.clone(),
            unit: s.unit.clone(),
            allowed_values: s.allowed.clone(),
            min: s.min.clone(),
            max: s.max.clone(),
            min_sample_interval: None,
        }
    }
}

pub(crate) fn timestamp() -> prost_types::Timestamp {
    prost_types::Timestamp::from(SystemTime::now())
}

/// A number of any integer or floating type, compared exactly between integers.
#[derive(Clone, Copy)]
enum Num {
    I(i128),
    F(f64),
}

impl Num {
    fn of(tv: &TypedValue) -> Option<Num> {
        Some(match tv {
            TypedValue::Int32(x) => Num::I((*x).into()),
            TypedValue::Int64(x) => Num::I((*x).into()),
            TypedValue::Uint32(x) => Num::I((*x).into()),
            TypedValue::Uint64(x) => Num::I((*x).into()),
            TypedValue::Float(x) => Num::F((*x).into()),
            TypedValue::Double(x) => Num::F(*x),
            _ => return None,
        })
    }

    fn lt(self, other: Num) -> bool {
        match (self, other) {
            (Num::I(a), Num::I(b)) => a < b,
            (a, b) => a.f() < b.f(),
        }
    }

    fn f(self) -> f64 {
        match self {
            Num::I(x) => x as f64,
            Num::F(x) => x,
        }
    }
}

/// Whether a scalar of `elem` (a scalar VSS type) may be sent as `tv`.
fn scalar_type_ok(elem: DataType, tv: &TypedValue) -> Result<(), String> {
    let range = |x: i128, lo: i128, hi: i128| {
        if x < lo || x > hi {
            Err(format!("{x} is out of the range of a {}", type_name(elem)))
        } else {
            Ok(())
        }
    };
    match (elem, tv) {
        (DataType::String, TypedValue::String(_))
        | (DataType::Boolean, TypedValue::Bool(_))
        | (DataType::Int32, TypedValue::Int32(_))
        | (DataType::Int64, TypedValue::Int64(_))
        | (DataType::Uint32, TypedValue::Uint32(_))
        | (DataType::Uint64, TypedValue::Uint64(_))
        | (DataType::Float, TypedValue::Float(_))
        | (DataType::Double, TypedValue::Double(_)) => Ok(()),
        (DataType::Int8, TypedValue::Int32(x)) => {
            range((*x).into(), i8::MIN.into(), i8::MAX.into())
        }
        (DataType::Int16, TypedValue::Int32(x)) => {
            range((*x).into(), i16::MIN.into(), i16::MAX.into())
        }
        (DataType::Uint8, TypedValue::Uint32(x)) => range((*x).into(), 0, u8::MAX.into()),
        (DataType::Uint16, TypedValue::Uint32(x)) => range((*x).into(), 0, u16::MAX.into()),
        _ => Err(format!(
            "wrong type: a {} signal takes {}, not {}",
            type_name(elem),
            wire_type(elem),
            value_type(tv)
        )),
    }
}

fn wire_type(elem: DataType) -> &'static str {
    match elem {
        DataType::String => "a string",
        DataType::Boolean => "a bool",
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "an int32",
        DataType::Int64 => "an int64",
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => "a uint32",
        DataType::Uint64 => "a uint64",
        DataType::Float => "a float",
        DataType::Double => "a double",
        _ => "no value",
    }
}

fn value_type(tv: &TypedValue) -> &'static str {
    match tv {
        TypedValue::String(_) => "a string",
        TypedValue::Bool(_) => "a bool",
        TypedValue::Int32(_) => "an int32",
        TypedValue::Int64(_) => "an int64",
        TypedValue::Uint32(_) => "a uint32",
        TypedValue::Uint64(_) => "a uint64",
        TypedValue::Float(_) => "a float",
        TypedValue::Double(_) => "a double",
        _ => "an array",
    }
}

/// The scalars of a value (an array's elements, or the value itself).
fn scalars(tv: &TypedValue) -> Vec<TypedValue> {
    match tv {
        TypedValue::StringArray(a) => a.values.iter().cloned().map(TypedValue::String).collect(),
        TypedValue::BoolArray(a) => a.values.iter().copied().map(TypedValue::Bool).collect(),
        TypedValue::Int32Array(a) => a.values.iter().copied().map(TypedValue::Int32).collect(),
        TypedValue::Int64Array(a) => a.values.iter().copied().map(TypedValue::Int64).collect(),
        TypedValue::Uint32Array(a) => a.values.iter().copied().map(TypedValue::Uint32).collect(),
        TypedValue::Uint64Array(a) => a.values.iter().copied().map(TypedValue::Uint64).collect(),
        TypedValue::FloatArray(a) => a.values.iter().copied().map(TypedValue::Float).collect(),
        TypedValue::DoubleArray(a) => a.values.iter().copied().map(TypedValue::Double).collect(),
        other => vec![other.clone()],
    }
}

fn is_array(tv: &TypedValue) -> bool {
    matches!(
        tv,
        TypedValue::StringArray(_)
            | TypedValue::BoolArray(_)
            | TypedValue::Int32Array(_)
            | TypedValue::Int64Array(_)
            | TypedValue::Uint32Array(_)
            | TypedValue::Uint64Array(_)
            | TypedValue::FloatArray(_)
            | TypedValue::DoubleArray(_)
    )
}

/// Check a value against a signal as the broker does for a publish or an actuation: its type
/// (the wire type of the VSS type, range-checked for the small integers), `allowed`, min/max.
/// A value without a typed value ("not available") is always accepted. The error is the
/// message of an `INVALID_ARGUMENT`.
pub(crate) fn check_value(sig: &Signal, v: &Value) -> Result<(), String> {
    let Some(tv) = &v.typed_value else {
        return Ok(());
    };
    let elem = element_type(sig.data_type);
    let want_array = elem != sig.data_type;
    if want_array != is_array(tv) {
        return Err(format!(
            "wrong type: a {} signal does not take {}",
            type_name(sig.data_type),
            value_type(tv)
        ));
    }
    let items = scalars(tv);
    for item in &items {
        scalar_type_ok(elem, item)?;
    }
    if let Some(allowed) = sig.allowed.as_ref().and_then(|a| a.typed_value.as_ref()) {
        let allowed = scalars(allowed);
        for item in &items {
            if !allowed.contains(item) {
                return Err(format!(
                    "{} is not an allowed value ({})",
                    show(item),
                    allowed.iter().map(show).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    let bound = |b: &Option<Value>| {
        b.as_ref()
            .and_then(|b| b.typed_value.as_ref())
            .and_then(Num::of)
    };
    let (min, max) = (bound(&sig.min), bound(&sig.max));
    for item in &items {
        let Some(x) = Num::of(item) else { continue };
        if min.is_some_and(|m| x.lt(m)) || max.is_some_and(|m| m.lt(x)) {
            return Err(format!(
                "{} is out of bounds [min: {}, max: {}]",
                show(item),
                sig.min
                    .as_ref()
                    .and_then(|b| b.typed_value.as_ref())
                    .map_or("None".into(), show),
                sig.max
                    .as_ref()
                    .and_then(|b| b.typed_value.as_ref())
                    .map_or("None".into(), show),
            ));
        }
    }
    Ok(())
}

fn show(tv: &TypedValue) -> String {
    match tv {
        TypedValue::String(s) => format!("{s:?}"),
        TypedValue::Bool(b) => b.to_string(),
        TypedValue::Int32(x) => x.to_string(),
        TypedValue::Int64(x) => x.to_string(),
        TypedValue::Uint32(x) => x.to_string(),
        TypedValue::Uint64(x) => x.to_string(),
        TypedValue::Float(x) => x.to_string(),
        TypedValue::Double(x) => x.to_string(),
        other => format!("{:?}", scalars(other)),
    }
}

/// A value of (scalar) type `ty` written as text: `true`/`false`, a number (integers must be
/// whole and in range), or the string itself.
pub fn parse_value(text: &str, ty: DataType) -> Result<Value, String> {
    let t = text.trim();
    let int = || -> Result<i128, String> {
        t.parse::<i128>()
            .map_err(|_| format!("{text:?} is not an integer"))
    };
    let fit = |x: i128, lo: i128, hi: i128| {
        if x < lo || x > hi {
            Err(format!("{x} is out of the range of a {}", type_name(ty)))
        } else {
            Ok(x)
        }
    };
    let tv = match ty {
        DataType::String => TypedValue::String(text.to_string()),
        DataType::Boolean => match t {
            "true" => TypedValue::Bool(true),
            "false" => TypedValue::Bool(false),
            _ => return Err(format!("{text:?} is not true or false")),
        },
        DataType::Int8 => TypedValue::Int32(fit(int()?, i8::MIN.into(), i8::MAX.into())? as i32),
        DataType::Int16 => TypedValue::Int32(fit(int()?, i16::MIN.into(), i16::MAX.into())? as i32),
        DataType::Int32 => TypedValue::Int32(fit(int()?, i32::MIN.into(), i32::MAX.into())? as i32),
        DataType::Int64 => TypedValue::Int64(fit(int()?, i64::MIN.into(), i64::MAX.into())? as i64),
        DataType::Uint8 => TypedValue::Uint32(fit(int()?, 0, u8::MAX.into())? as u32),
        DataType::Uint16 => TypedValue::Uint32(fit(int()?, 0, u16::MAX.into())? as u32),
        DataType::Uint32 => TypedValue::Uint32(fit(int()?, 0, u32::MAX.into())? as u32),
        DataType::Uint64 => TypedValue::Uint64(fit(int()?, 0, u64::MAX.into())? as u64),
        DataType::Float | DataType::Double => {
            let x: f64 = t.parse().map_err(|_| format!("{text:?} is not a number"))?;
            if ty == DataType::Float {
                TypedValue::Float(x as f32)
            } else {
                TypedValue::Double(x)
            }
        }
        other => {
            return Err(format!(
                "a {} cannot be written as text here",
                type_name(other)
            ));
        }
    };
    Ok(Value {
        typed_value: Some(tv),
    })
}

/// The entry type's VSS name.
pub(crate) fn entry_type_name(t: EntryType) -> &'static str {
    match t {
        EntryType::Sensor => "sensor",
        EntryType::Actuator => "actuator",
        EntryType::Attribute => "attribute",
        EntryType::Unspecified => "unspecified",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(tv: TypedValue) -> Value {
        Value {
            typed_value: Some(tv),
        }
    }

    #[test]
    fn values_are_checked_like_the_real_broker() {
        let vss = test_vss();
        let s = |p: &str| vss.signals[p].clone();
        let pos = s("Vehicle.Cabin.Seat.Row1.DriverSide.Position"); // uint16, min 0
        assert!(check_value(&pos, &v(TypedValue::Uint32(300))).is_ok());
        assert!(check_value(&pos, &v(TypedValue::Uint32(70000))).is_err());
        assert!(check_value(&pos, &v(TypedValue::Int32(300))).is_err());
        assert!(check_value(&pos, &v(TypedValue::Float(300.0))).is_err());
        let tilt = s("Vehicle.Chassis.SteeringWheel.Tilt"); // uint8 0..100
        assert!(check_value(&tilt, &v(TypedValue::Uint32(100))).is_ok());
        assert!(check_value(&tilt, &v(TypedValue::Uint32(101))).is_err());
        let gear = s("Vehicle.Powertrain.Transmission.SelectedGear"); // int8
        assert!(check_value(&gear, &v(TypedValue::Int32(126))).is_ok());
        assert!(check_value(&gear, &v(TypedValue::Int32(-1))).is_ok());
        assert!(check_value(&gear, &v(TypedValue::Int32(128))).is_err());
        let occ = s("Vehicle.Cabin.Seat.Row1.DriverSide.OccupancyStatus");
        assert!(check_value(&occ, &v(TypedValue::String("OCCUPIED".into()))).is_ok());
        let e = check_value(&occ, &v(TypedValue::String("SITTING".into()))).unwrap_err();
        assert!(e.contains("not an allowed value"), "{e}");
        // "Not available" is always accepted.
        assert!(check_value(&occ, &Value { typed_value: None }).is_ok());
    }

    #[test]
    fn text_values() {
        assert_eq!(
            parse_value("126", DataType::Int8).unwrap(),
            v(TypedValue::Int32(126))
        );
        assert!(parse_value("200", DataType::Int8).is_err());
        assert_eq!(
            parse_value("true", DataType::Boolean).unwrap(),
            v(TypedValue::Bool(true))
        );
        assert_eq!(
            parse_value("12.5", DataType::Float).unwrap(),
            v(TypedValue::Float(12.5))
        );
        assert_eq!(type_name(DataType::Uint8), "uint8");
        assert_eq!(type_name(DataType::StringArray), "string[]");
        assert_eq!(
            "unix:/tmp/x.sock".parse::<Listen>(),
            Ok(Listen::Unix("/tmp/x.sock".into()))
        );
        assert_eq!(
            "127.0.0.1:0".parse::<Listen>(),
            Ok(Listen::Tcp("127.0.0.1:0".parse().unwrap()))
        );
    }
}
