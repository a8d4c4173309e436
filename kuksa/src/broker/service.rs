//! The `kuksa.val.v2` service of the test broker (see the parent module for the semantics).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Response, Status, Streaming};

use super::{
    MAX_BUFFER_SIZE, ProviderTx, Shared, State, Sub, Update, check_value, entry_type_name,
};
use crate::proto::open_provider_stream_request::Action as In;
use crate::proto::open_provider_stream_response::Action as Out;
use crate::proto::val_server::Val;
use crate::proto::{
    ActuateRequest, ActuateResponse, BatchActuateRequest, BatchActuateResponse,
    BatchActuateStreamRequest, EntryType, Error, ErrorCode, Filter, GetServerInfoRequest,
    GetServerInfoResponse, GetValueRequest, GetValueResponse, GetValuesRequest, GetValuesResponse,
    ListMetadataRequest, ListMetadataResponse, OpenProviderStreamRequest,
    OpenProviderStreamResponse, ProvideActuationResponse, ProvideSignalResponse,
    PublishValueRequest, PublishValueResponse, PublishValuesResponse, SampleInterval, SignalId,
    SubscribeByIdRequest, SubscribeByIdResponse, SubscribeRequest, SubscribeResponse,
    UpdateFilterRequest, Value, signal_id,
};

pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
}

/// The interceptor checking the bearer token (none: everything passes).
pub(crate) fn auth(
    token: Option<String>,
) -> Result<impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone, String> {
    let expected: Option<MetadataValue<Ascii>> = match token {
        None => None,
        Some(t) => Some(
            format!("Bearer {}", t.trim())
                .parse()
                .map_err(|_| "the token is not a valid header value".to_string())?,
        ),
    };
    Ok(move |req: Request<()>| {
        let Some(expected) = &expected else {
            return Ok(req);
        };
        match req.metadata().get("authorization") {
            Some(v) if v == expected => Ok(req),
            Some(_) => Err(Status::unauthenticated("Invalid auth token")),
            None => Err(Status::unauthenticated("No auth token provided")),
        }
    })
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Removes a subscription when its response stream is dropped (the client went away).
struct SubGuard {
    shared: Arc<Shared>,
    key: u64,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        self.shared.lock().subs.remove(&self.key);
        self.shared.bump();
    }
}

/// An accepted actuation, ready to forward.
struct Forward {
    tx: ProviderTx,
    id: i32,
    path: String,
    value: Value,
}

impl Service {
    /// Register a subscription to `ids` and return its first response's entries plus the
    /// stream of later updates (removed again when the stream is dropped).
    fn subscribe_ids(
        &self,
        ids: Vec<i32>,
        buffer_size: u32,
    ) -> Result<(Update, impl Stream<Item = Update> + Send + 'static), Status> {
        if ids.is_empty() {
            return Err(Status::invalid_argument("No valid id or path specified"));
        }
        if buffer_size > MAX_BUFFER_SIZE {
            return Err(Status::invalid_argument(format!(
                "Subscription buffer_size max allowed value is {MAX_BUFFER_SIZE}"
            )));
        }
        let (tx, rx) = broadcast::channel(buffer_size as usize + 1);
        let (first, key, filters) = {
            let mut st = self.shared.lock();
            for id in &ids {
                st.permit(*id)?;
            }
            let set: HashSet<i32> = ids.iter().copied().collect();
            let mut first = Vec::with_capacity(set.len());
            for id in &ids {
                if let Some(e) = st.entry(*id)
                    && !first.iter().any(|(i, _, _)| i == id)
                {
                    first.push((*id, e.path.clone(), e.datapoint.clone()));
                }
            }
            let filters = filter_requests(&st, &set);
            let key = st.key();
            st.subs.insert(key, Sub { ids: set, tx });
            (Arc::new(first), key, filters)
        };
        self.shared.bump();
        for (tx, msg) in filters {
            let _ = tx.try_send(Ok(msg));
        }
        let guard = SubGuard {
            shared: self.shared.clone(),
            key,
        };
        let updates = BroadcastStream::new(rx).filter_map(move |r| {
            let _keep = &guard;
            // A slow subscriber loses the oldest responses (buffer_size + 1 are kept):
            // Err(Lagged) is skipped.
            r.ok()
        });
        Ok((first, updates))
    }

    /// Check an actuation and find its provider (nothing is sent yet).
    fn prepare(&self, st: &State, req: ActuateRequest) -> Result<Forward, Status> {
        let value = req
            .value
            .ok_or_else(|| Status::invalid_argument("No value provided"))?;
        let id = st.resolve(req.signal_id.as_ref())?;
        st.permit(id)?;
        let Some(e) = st.entry(id) else {
            return Err(Status::not_found(format!("Signal id {id} not found")));
        };
        if e.signal.entry_type != EntryType::Actuator {
            return Err(Status::invalid_argument(format!(
                "Tried to set a value for a non-actuator: {} (a {})",
                e.path,
                entry_type_name(e.signal.entry_type)
            )));
        }
        check_value(&e.signal, &value)
            .map_err(|m| Status::invalid_argument(format!("{}: {m}", e.path)))?;
        let tx = st
            .actuators
            .get(&id)
            .and_then(|p| st.providers.get(p))
            .filter(|tx| !tx.is_closed())
            .ok_or_else(|| {
                Status::unavailable(format!(
                    "Provider for vss_id {id} ({}) does not exist",
                    e.path
                ))
            })?;
        Ok(Forward {
            tx: tx.clone(),
            id,
            path: e.path.clone(),
            value,
        })
    }

    /// Send accepted actuations to their providers, one `BatchActuateStreamRequest` per
    /// actuator (as the real broker does), addressed by id.
    async fn forward(&self, fwds: Vec<Forward>) -> Result<(), Status> {
        for f in fwds {
            let msg = OpenProviderStreamResponse {
                action: Some(Out::BatchActuateStreamRequest(BatchActuateStreamRequest {
                    actuate_requests: vec![ActuateRequest {
                        signal_id: Some(SignalId {
                            signal: Some(signal_id::Signal::Id(f.id)),
                        }),
                        value: Some(f.value.clone()),
                    }],
                })),
            };
            if f.tx.send(Ok(msg)).await.is_err() {
                return Err(Status::data_loss(format!(
                    "the provider of {} went away while sending the actuation",
                    f.path
                )));
            }
            let _ = self.shared.actuations.send((f.path, f.value));
        }
        Ok(())
    }

    async fn actuate_one(&self, req: ActuateRequest) -> Result<(), Status> {
        let (fwd, hold) = {
            let st = self.shared.lock();
            let fwd = self.prepare(&st, req)?;
            let hold = st.held.get(&fwd.id).copied();
            (fwd, hold)
        };
        if let Some(hold) = hold {
            tokio::time::sleep(hold).await;
        }
        self.forward(vec![fwd]).await
    }
}

/// `UpdateFilterRequest`s for the signal providers of `ids` (what the real broker sends a
/// provider when its signals get a subscriber).
fn filter_requests(
    st: &State,
    ids: &HashSet<i32>,
) -> Vec<(ProviderTx, OpenProviderStreamResponse)> {
    let mut per: HashMap<u64, HashMap<i32, Filter>> = HashMap::new();
    for id in ids {
        if let Some((p, interval)) = st.provided.get(id) {
            per.entry(*p).or_default().insert(
                *id,
                Filter {
                    duration_ms: 0,
                    min_sample_interval: Some(SampleInterval {
                        interval_ms: *interval,
                    }),
                },
            );
        }
    }
    per.into_iter()
        .filter_map(|(p, filters_update)| {
            let tx = st.providers.get(&p)?.clone();
            Some((
                tx,
                OpenProviderStreamResponse {
                    action: Some(Out::UpdateFilterRequest(UpdateFilterRequest {
                        request_id: 1,
                        filters_update,
                    })),
                },
            ))
        })
        .collect()
}

/// `ListMetadata`'s root: `""` (everything), a branch or signal path (itself and everything
/// under it), or a pattern where `*` matches within one path element and a `**` element any
/// number of elements.
fn matcher(root: &str) -> Result<impl Fn(&str) -> bool, Status> {
    let root = if root.is_empty() || root == "\"\"" {
        "**"
    } else {
        root
    };
    let parts: Vec<String> = root.split('.').map(str::to_string).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains(char::is_whitespace) || p.contains(':'))
    {
        return Err(Status::invalid_argument("Invalid Pattern Argument"));
    }
    let mut parts = parts;
    if !root.contains('*') {
        parts.push("**".into());
    }
    Ok(move |path: &str| {
        let elems: Vec<&str> = path.split('.').collect();
        let pats: Vec<&str> = parts.iter().map(String::as_str).collect();
        glob_elems(&pats, &elems)
            || (pats.last() == Some(&"**") && glob_elems(&pats[..pats.len() - 1], &elems))
    })
}

fn glob_elems(pats: &[&str], elems: &[&str]) -> bool {
    match pats.split_first() {
        None => elems.is_empty(),
        Some((&"**", rest)) => (0..=elems.len()).any(|k| glob_elems(rest, &elems[k..])),
        Some((p, rest)) => match elems.split_first() {
            Some((e, erest)) => glob_elem(p.as_bytes(), e.as_bytes()) && glob_elems(rest, erest),
            None => false,
        },
    }
}

fn glob_elem(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|k| glob_elem(rest, &s[k..])),
        Some((c, rest)) => s.first() == Some(c) && glob_elem(rest, &s[1..]),
    }
}

#[tonic::async_trait]
impl Val for Service {
    async fn get_value(
        &self,
        request: Request<GetValueRequest>,
    ) -> Result<Response<GetValueResponse>, Status> {
        let req = request.into_inner();
        let st = self.shared.lock();
        let id = st.resolve(req.signal_id.as_ref())?;
        st.permit(id)?;
        let dp = st.entry(id).map(|e| e.datapoint.clone());
        Ok(Response::new(GetValueResponse { data_point: dp }))
    }

    async fn get_values(
        &self,
        request: Request<GetValuesRequest>,
    ) -> Result<Response<GetValuesResponse>, Status> {
        let req = request.into_inner();
        if req.signal_ids.is_empty() {
            return Err(Status::invalid_argument("No signal ids provided"));
        }
        let st = self.shared.lock();
        let mut data_points = Vec::with_capacity(req.signal_ids.len());
        for sid in &req.signal_ids {
            let id = st.resolve(Some(sid))?;
            st.permit(id)?;
            if let Some(e) = st.entry(id) {
                data_points.push(e.datapoint.clone());
            }
        }
        Ok(Response::new(GetValuesResponse { data_points }))
    }

    type SubscribeStream = BoxStream<SubscribeResponse>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let req = request.into_inner();
        let ids = {
            let st = self.shared.lock();
            req.signal_paths
                .iter()
                .map(|p| st.resolve_path(p))
                .collect::<Result<Vec<_>, _>>()?
        };
        let (first, updates) = self.subscribe_ids(ids, req.buffer_size)?;
        let by_path = |u: Update| {
            Ok(SubscribeResponse {
                entries: u
                    .iter()
                    .map(|(_, path, dp)| (path.clone(), dp.clone()))
                    .collect(),
            })
        };
        let stream = tokio_stream::once(by_path(first)).chain(updates.map(by_path));
        Ok(Response::new(Box::pin(stream)))
    }

    type SubscribeByIdStream = BoxStream<SubscribeByIdResponse>;

    async fn subscribe_by_id(
        &self,
        request: Request<SubscribeByIdRequest>,
    ) -> Result<Response<Self::SubscribeByIdStream>, Status> {
        let req = request.into_inner();
        {
            let st = self.shared.lock();
            for id in &req.signal_ids {
                if st.entry(*id).is_none() {
                    return Err(Status::not_found(format!("Signal id {id} not found")));
                }
            }
        }
        let (first, updates) = self.subscribe_ids(req.signal_ids, req.buffer_size)?;
        let by_id = |u: Update| {
            Ok(SubscribeByIdResponse {
                entries: u.iter().map(|(id, _, dp)| (*id, dp.clone())).collect(),
            })
        };
        let stream = tokio_stream::once(by_id(first)).chain(updates.map(by_id));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn actuate(
        &self,
        request: Request<ActuateRequest>,
    ) -> Result<Response<ActuateResponse>, Status> {
        self.actuate_one(request.into_inner()).await?;
        Ok(Response::new(ActuateResponse {}))
    }

    async fn actuate_stream(
        &self,
        request: Request<Streaming<ActuateRequest>>,
    ) -> Result<Response<ActuateResponse>, Status> {
        let mut stream = request.into_inner();
        // Until the client ends the stream (or the connection breaks).
        while let Ok(Some(req)) = stream.message().await {
            self.actuate_one(req).await?;
        }
        Ok(Response::new(ActuateResponse {}))
    }

    async fn batch_actuate(
        &self,
        request: Request<BatchActuateRequest>,
    ) -> Result<Response<BatchActuateResponse>, Status> {
        let reqs = request.into_inner().actuate_requests;
        // All checked (including a provider for each) before any is forwarded.
        let fwds = {
            let st = self.shared.lock();
            reqs.into_iter()
                .map(|r| self.prepare(&st, r))
                .collect::<Result<Vec<_>, _>>()?
        };
        self.forward(fwds).await?;
        Ok(Response::new(BatchActuateResponse {}))
    }

    async fn list_metadata(
        &self,
        request: Request<ListMetadataRequest>,
    ) -> Result<Response<ListMetadataResponse>, Status> {
        let req = request.into_inner();
        let m = matcher(&req.root)?;
        let st = self.shared.lock();
        let metadata: Vec<_> = st
            .entries
            .iter()
            .filter(|e| m(&e.path))
            .map(|e| st.metadata(e))
            .collect();
        if metadata.is_empty() {
            return Err(Status::not_found(format!(
                "Specified root branch does not exist: {}",
                req.root
            )));
        }
        Ok(Response::new(ListMetadataResponse { metadata }))
    }

    async fn publish_value(
        &self,
        request: Request<PublishValueRequest>,
    ) -> Result<Response<PublishValueResponse>, Status> {
        let req = request.into_inner();
        let dp = req
            .data_point
            .ok_or_else(|| Status::invalid_argument("No datapoint provided for publish_value"))?;
        let mut st = self.shared.lock();
        let id = st.resolve(req.signal_id.as_ref())?;
        st.permit(id)?;
        if let (Some(e), Some(v)) = (st.entry(id), &dp.value) {
            check_value(&e.signal, v)
                .map_err(|m| Status::invalid_argument(format!("{}: {m}", e.path)))?;
        }
        st.publish(vec![(id, dp.value)]);
        Ok(Response::new(PublishValueResponse {}))
    }

    type OpenProviderStreamStream = ReceiverStream<Result<OpenProviderStreamResponse, Status>>;

    async fn open_provider_stream(
        &self,
        request: Request<Streaming<OpenProviderStreamRequest>>,
    ) -> Result<Response<Self::OpenProviderStreamStream>, Status> {
        let incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let key = {
            let mut st = self.shared.lock();
            let key = st.key();
            st.providers.insert(key, tx.clone());
            key
        };
        tokio::spawn(provider(self.shared.clone(), key, incoming, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_server_info(
        &self,
        _request: Request<GetServerInfoRequest>,
    ) -> Result<Response<GetServerInfoResponse>, Status> {
        Ok(Response::new(GetServerInfoResponse {
            name: "driverprofiled-test-broker".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            commit_hash: String::new(),
        }))
    }
}

/// Serve one provider stream until it ends (either side) or an error closes it; then release
/// everything it claimed.
async fn provider(
    shared: Arc<Shared>,
    key: u64,
    mut incoming: Streaming<OpenProviderStreamRequest>,
    tx: ProviderTx,
) {
    loop {
        let msg = tokio::select! {
            m = incoming.message() => m,
            _ = tx.closed() => break,
        };
        let action = match msg {
            Ok(Some(m)) => m.action,
            // The provider closed its side but still reads: like the real broker, its claims
            // hold (actuations still reach it) until it drops the response stream too.
            Ok(None) => {
                tx.closed().await;
                break;
            }
            Err(_) => break,
        };
        match handle(&shared, key, action) {
            Ok(replies) => {
                for r in replies {
                    if tx.send(Ok(r)).await.is_err() {
                        break;
                    }
                }
            }
            Err(status) => {
                // The strict case: the error ends the stream (and with it, the claims).
                let _ = tx.send(Err(status)).await;
                break;
            }
        }
    }
    {
        let mut st = shared.lock();
        st.actuators.retain(|_, p| *p != key);
        st.provided.retain(|_, (p, _)| *p != key);
        st.providers.remove(&key);
    }
    shared.bump();
}

fn reply(action: Out) -> OpenProviderStreamResponse {
    OpenProviderStreamResponse {
        action: Some(action),
    }
}

/// One message from a provider: the replies to send, or the error that closes the stream.
fn handle(
    shared: &Shared,
    key: u64,
    action: Option<In>,
) -> Result<Vec<OpenProviderStreamResponse>, Status> {
    let not_registered = || {
        Status::aborted(
            "Provider has not claimed yet the signals, please call ProvideSignalRequest first",
        )
    };
    let mut st = shared.lock();
    let registered = st.provided.values().any(|(p, _)| *p == key);
    match action {
        Some(In::ProvideActuationRequest(req)) => {
            let mut ids = Vec::with_capacity(req.actuator_identifiers.len());
            for sid in &req.actuator_identifiers {
                let id = match &sid.signal {
                    Some(signal_id::Signal::Path(p)) => st.id(p).ok_or_else(|| {
                        Status::not_found(format!("Could not resolve id of vss_path: {p}"))
                    })?,
                    Some(signal_id::Signal::Id(id)) => {
                        st.entry(*id).map(|e| e.id).ok_or_else(|| {
                            Status::not_found(format!("Could not resolve vss_path of vss_id {id}"))
                        })?
                    }
                    None => continue,
                };
                st.permit(id)?;
                ids.push(id);
            }
            let taken: Vec<i32> = ids
                .iter()
                .copied()
                .filter(|id| st.actuators.contains_key(id))
                .collect();
            if !taken.is_empty() {
                return Err(Status::already_exists(format!(
                    "Providers for the following vss_ids already registered: {taken:?}"
                )));
            }
            for id in ids {
                st.actuators.insert(id, key);
            }
            drop(st);
            shared.bump();
            Ok(vec![reply(Out::ProvideActuationResponse(
                ProvideActuationResponse {},
            ))])
        }
        Some(In::ProvideSignalRequest(req)) => {
            for id in req.signals_sample_intervals.keys() {
                if st.entry(*id).is_none() {
                    return Err(Status::not_found(format!(
                        "Could not resolve vss_path of signal id {id}"
                    )));
                }
                st.permit(*id)?;
            }
            let mut taken: Vec<i32> = req
                .signals_sample_intervals
                .keys()
                .copied()
                .filter(|id| st.provided.contains_key(id))
                .collect();
            if !taken.is_empty() {
                taken.sort_unstable();
                return Err(Status::already_exists(format!(
                    "Providers for the following vss_ids already registered: {taken:?}"
                )));
            }
            let ids: HashSet<i32> = req.signals_sample_intervals.keys().copied().collect();
            for (id, si) in &req.signals_sample_intervals {
                st.provided.insert(*id, (key, si.interval_ms));
            }
            let subscribed: HashSet<i32> = ids
                .into_iter()
                .filter(|id| st.subs.values().any(|s| s.ids.contains(id)))
                .collect();
            let mut out = vec![reply(Out::ProvideSignalResponse(ProvideSignalResponse {}))];
            out.extend(
                filter_requests(&st, &subscribed)
                    .into_iter()
                    .map(|(_, msg)| msg),
            );
            Ok(out)
        }
        Some(In::PublishValuesRequest(req)) => {
            if !registered {
                return Err(not_registered());
            }
            if req
                .data_points
                .keys()
                .any(|id| st.provided.get(id).is_none_or(|(p, _)| *p != key))
            {
                return Err(Status::already_exists(
                    "Signals already registered by another provider",
                ));
            }
            let mut errors = HashMap::new();
            let mut updates = Vec::with_capacity(req.data_points.len());
            for (id, dp) in req.data_points {
                let checked = match (st.entry(id), &dp.value) {
                    (None, _) => Err(Error {
                        code: ErrorCode::NotFound as i32,
                        message: format!("Signal id {id} not found"),
                    }),
                    (Some(e), Some(v)) => check_value(&e.signal, v).map_err(|m| Error {
                        code: ErrorCode::InvalidArgument as i32,
                        message: format!("{}: {m}", e.path),
                    }),
                    (Some(_), None) => Ok(()),
                };
                match checked.and_then(|()| {
                    st.permit(id).map_err(|s| Error {
                        code: ErrorCode::PermissionDenied as i32,
                        message: s.message().to_string(),
                    })
                }) {
                    Ok(()) => updates.push((id, dp.value)),
                    Err(e) => {
                        errors.insert(id, e);
                    }
                }
            }
            st.publish(updates);
            if errors.is_empty() {
                Ok(vec![])
            } else {
                Ok(vec![reply(Out::PublishValuesResponse(
                    PublishValuesResponse {
                        request_id: req.request_id,
                        status: errors,
                    },
                ))])
            }
        }
        // The provider's answer to an actuation: the real broker only logs it.
        Some(In::BatchActuateStreamResponse(_)) => Ok(vec![]),
        Some(In::UpdateFilterResponse(_)) | Some(In::ProviderErrorIndication(_)) => {
            if registered {
                Ok(vec![])
            } else {
                Err(not_registered())
            }
        }
        Some(In::GetProviderValueResponse(_)) | None => Ok(vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_metadata_roots() {
        let m = |root: &str, path: &str| matcher(root).unwrap()(path);
        assert!(m("", "Vehicle.Speed"));
        assert!(m("Vehicle", "Vehicle.Speed"));
        assert!(m("Vehicle.Speed", "Vehicle.Speed"));
        assert!(!m("Vehicle.Spee", "Vehicle.Speed"));
        assert!(!m("Vehicle.Speed", "Vehicle.SpeedX"));
        assert!(m(
            "Vehicle.Cabin",
            "Vehicle.Cabin.Seat.Row1.DriverSide.Position"
        ));
        assert!(m("Vehicle.*", "Vehicle.Speed"));
        assert!(!m("Vehicle.*", "Vehicle.Cabin.Door"));
        assert!(m(
            "Vehicle.**.Position",
            "Vehicle.Cabin.Seat.Row1.DriverSide.Position"
        ));
        assert!(m(
            "**.Is*SwitchEngaged",
            "Vehicle.Cabin.Seat.Row1.DriverSide.IsUpSwitchEngaged"
        ));
        assert!(matcher("Vehicle..Speed").is_err());
        assert!(matcher("Vehicle. Speed").is_err());
    }
}
