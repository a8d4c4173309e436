//! The `kuksa` backend: axes driven through the Eclipse KUKSA databroker (kuksa.val.v2), each
//! axis being the VSS actuator its `vss` names, which a provider claims, moves and reports.
//! What it checks at start, how it moves and stops, and what it does when the broker is lost:
//! `docs/kuksa.md` in the repository.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Backend, BackendAxis, Driver, FeedbackSender, StartError, StartFuture, Started};
use crate::config::{AxisConfig, Config, KuksaConfig, Unit};
use crate::core::{AxisId, BackendCommand, Feedback, quote};
use crate::kuksa::proto::{
    self, ActuateRequest, DataType, EntryType, Metadata, SignalId, SubscribeRequest, Value,
    signal_id,
};
use crate::kuksa::{Backoff, status_message, value};
use driverprofiled_kuksa::connect::{Address, Client};
use driverprofiled_kuksa::value::type_name;

pub const DRIVER: Driver = Driver {
    name: "kuksa",
    start,
};

/// How long [`Kuksa::stop_all`] waits for its stop actuations to be taken by the broker.
pub const STOP_ALL_WAIT: Duration = Duration::from_millis(500);

/// The VSS unit of each of the daemon's units.
pub fn vss_unit(unit: Unit) -> &'static str {
    match unit {
        Unit::Mm => "mm",
        Unit::Deg => "degrees",
        Unit::Percent => "percent",
    }
}

/// Check the broker's metadata of the axes' signals against the config: every axis must be a
/// numeric actuator of the same unit whose range holds the axis' min..max. `Ok`: each axis'
/// data type, in the order of `axes`; `Err`: every problem found, each naming the axis and the
/// path.
pub fn check(
    axes: &[AxisConfig],
    meta: &BTreeMap<String, Metadata>,
) -> Result<Vec<DataType>, String> {
    let mut types = Vec::with_capacity(axes.len());
    let mut problems = Vec::new();
    for a in axes {
        let mut problem =
            |what: String| problems.push(format!("axis {} ({}): {what}", a.name, a.vss));
        let Some(m) = meta.get(&a.vss) else {
            problem("the broker has no such signal".into());
            continue;
        };
        let entry = EntryType::try_from(m.entry_type).unwrap_or(EntryType::Unspecified);
        if entry != EntryType::Actuator {
            problem(format!(
                "it is not an actuator (the broker says {})",
                entry_name(entry)
            ));
            continue;
        }
        let ty = DataType::try_from(m.data_type).unwrap_or(DataType::Unspecified);
        if !value::is_numeric(ty) {
            problem(format!(
                "it is not a number (its type is {})",
                type_name(ty)
            ));
            continue;
        }
        let unit = vss_unit(a.unit);
        if m.unit != unit {
            problem(format!(
                "its unit is {:?}, the axis' is {:?} (VSS {unit:?})",
                m.unit,
                a.unit.as_str()
            ));
            continue;
        }
        let (mut lo, mut hi) = type_range(ty);
        if let Some(min) = m.min.as_ref().and_then(value::to_f64) {
            lo = lo.max(min);
        }
        if let Some(max) = m.max.as_ref().and_then(value::to_f64) {
            hi = hi.min(max);
        }
        if a.min < lo || a.max > hi {
            problem(format!(
                "the axis' range {}..{} does not fit the signal's {lo}..{hi} ({})",
                a.min,
                a.max,
                type_name(ty)
            ));
            continue;
        }
        if value::int_range(ty).is_some() && a.tolerance < 0.5 {
            // Targets are rounded to whole units: a part-way target the planner picks
            // (44.8) is reached as 45, never within a finer tolerance: every such motion
            // would end as a stall.
            problem(format!(
                "it is an integer signal ({}), so the axis reaches targets to the nearest whole \
                 {}: give the axis tolerance = 0.5 or more (it has {})",
                type_name(ty),
                a.unit.as_str(),
                a.tolerance
            ));
            continue;
        }
        if value::int_range(ty).is_some() && (a.min.fract() != 0.0 || a.max.fract() != 0.0) {
            // A target at a limit would be rounded past it (99.6 is sent as 100).
            problem(format!(
                "it is an integer signal ({}): the axis' min and max must be whole {} (they \
                 are {} and {})",
                type_name(ty),
                a.unit.as_str(),
                a.min,
                a.max
            ));
            continue;
        }
        if value::int_range(ty).is_some() && a.speed * a.stall_ms as f64 / 1000.0 < 2.0 {
            // The stall watch needs to see the position change within stall_ms: a signal that
            // moves in whole units must change by a unit or more in that time, with margin.
            problem(format!(
                "it is an integer signal ({}): at {} {}/s the axis moves less than 2 whole {} \
                 within its stall_ms ({} ms), so every motion would look stalled: raise \
                 stall_ms (or the speed)",
                type_name(ty),
                a.speed,
                a.unit.as_str(),
                a.unit.as_str(),
                a.stall_ms
            ));
            continue;
        }
        types.push(ty);
    }
    if problems.is_empty() {
        Ok(types)
    } else {
        Err(problems.join("; "))
    }
}

/// The values a numeric type can hold.
fn type_range(ty: DataType) -> (f64, f64) {
    match value::int_range(ty) {
        Some(r) => r,
        None if ty == DataType::Float => (-f64::from(f32::MAX), f64::from(f32::MAX)),
        None => (f64::NEG_INFINITY, f64::INFINITY),
    }
}

fn entry_name(e: EntryType) -> &'static str {
    match e {
        EntryType::Actuator => "actuator",
        EntryType::Sensor => "a sensor",
        EntryType::Attribute => "an attribute",
        EntryType::Unspecified => "no entry type",
    }
}

/// A command for the broker, by axis index.
#[derive(Debug)]
enum Job {
    /// `seq`: this move's number (see [`Shared::moves`]).
    Move { axis: usize, target: f64, seq: u64 },
    /// `seq`: the number of moves commanded before this stop (see [`Shared::moves`]).
    Stop { axis: usize, seq: u64 },
}

impl Job {
    fn axis(&self) -> usize {
        let (Job::Move { axis, .. } | Job::Stop { axis, .. }) = self;
        *axis
    }
}

/// What the broker's task and [`Kuksa::stop_all`] share. Locked briefly, never across an
/// `.await`.
#[derive(Debug, Default)]
struct Shared {
    /// The last position the broker reported per axis; `None`: not known, or stale since the
    /// broker was lost.
    positions: Vec<Option<f64>>,
    /// Each signal's data type, once the metadata was checked.
    types: Vec<Option<DataType>>,
    /// Moves commanded per axis, ever: each move's sequence number.
    moves: Vec<u64>,
    /// The number of the last move handed to the broker (sent, or being sent), per axis.
    sent: Vec<u64>,
    /// Moves numbered up to this are never sent: a stop (or [`Kuksa::stop_all`]) came after
    /// them.
    cancelled: Vec<u64>,
    /// `sent` as it was at the last stop the broker took, per axis: an axis with
    /// `sent > stopped` may be running.
    stopped: Vec<u64>,
    /// Axes owed a stop that could not be sent (the broker was lost while they were
    /// commanded, the stop was refused, or their position was not known): told to stop
    /// where they are at their next position report.
    halt_pending: Vec<bool>,
    /// [`Kuksa::stop_all`] was called: no move is ever sent again.
    halted: bool,
}

impl Shared {
    fn new(n: usize) -> Shared {
        Shared {
            positions: vec![None; n],
            types: vec![None; n],
            moves: vec![0; n],
            sent: vec![0; n],
            cancelled: vec![0; n],
            stopped: vec![0; n],
            halt_pending: vec![false; n],
            halted: false,
        }
    }

    fn commanded(&self, i: usize) -> bool {
        self.sent[i] > self.stopped[i]
    }

    /// Axis `i`'s stop: an actuation to where the broker last reported it. `None` while its
    /// position or its signal's type is not known; `Err` when the position does not fit the
    /// type.
    fn stop_msg(&self, i: usize) -> Option<Result<StopMsg, String>> {
        let (at, ty) = (self.positions[i]?, self.types[i]?);
        Some(value::from_f64(at, ty).map(|value| StopMsg {
            axis: i,
            seq: self.moves[i],
            at,
            value,
        }))
    }
}

/// A stop to send outside the session (see [`send_stops`]).
#[derive(Debug)]
struct StopMsg {
    axis: usize,
    /// As in [`Job::Stop`].
    seq: u64,
    at: f64,
    value: Value,
}

/// A value the broker sent, for a message: at most [`crate::core::QUOTE_MAX`] characters.
fn shown(v: &Value) -> String {
    match &v.typed_value {
        Some(t) => quote(&format!("{t:?}")),
        None => "no value".into(),
    }
}

/// The backend's fixed context.
struct Ctx {
    cfg: KuksaConfig,
    axes: Arc<[AxisConfig]>,
    /// The axes' ids, in the order of `axes`.
    ids: Vec<AxisId>,
    /// Axis indices (into `axes`) by id and by VSS path.
    by_id: BTreeMap<AxisId, usize>,
    by_path: BTreeMap<String, Vec<usize>>,
    shared: Arc<Mutex<Shared>>,
    fb: FeedbackSender,
}

impl Ctx {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    fn fault(&self, axis: usize, message: String) {
        let _ = self.fb.send(Feedback::Fault {
            axis: self.ids[axis],
            message,
        });
    }

    fn fault_all(&self, message: &str) {
        for i in 0..self.axes.len() {
            self.fault(i, message.to_string());
        }
    }

    /// A command that cannot be sent: a move faults the axis (a motion waiting for it halts).
    /// A stop is owed: if something of ours may run on the axis, it is told to stop at its
    /// next position report (an axis that was running when the broker was lost faulted and
    /// is owed one already).
    fn refuse(&self, job: &Job, why: &str) {
        let i = job.axis();
        match job {
            Job::Move { .. } => {
                tracing::warn!(axis = %self.axes[i].name, "kuksa: move not sent: {why}");
                self.fault(i, format!("not sent to the KUKSA databroker: {why}"));
            }
            Job::Stop { .. } => {
                let owed = {
                    let mut s = self.lock();
                    let owed = s.commanded(i) || s.halt_pending[i];
                    s.halt_pending[i] = owed;
                    owed
                };
                if owed {
                    tracing::warn!(
                        axis = %self.axes[i].name,
                        "kuksa: stop not sent ({why}); sent at its next position report"
                    );
                } else {
                    tracing::info!(
                        axis = %self.axes[i].name,
                        "kuksa: stop not sent ({why}); nothing of ours runs there"
                    );
                }
            }
        }
    }

    fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.connect_timeout_ms)
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why no session runs.
#[derive(Debug)]
enum Problem {
    /// The broker cannot be reached or refused a call.
    Down(String),
    /// Its signals do not match the config.
    Mismatch(String),
}

fn start<'a>(cfg: &'a Config, axes: &'a [BackendAxis], fb: FeedbackSender) -> StartFuture<'a> {
    Box::pin(start_async(cfg, axes, fb))
}

async fn start_async(
    cfg: &Config,
    axes: &[BackendAxis],
    fb: FeedbackSender,
) -> Result<Started, StartError> {
    let kcfg = cfg.kuksa.clone();
    kcfg.address
        .parse::<Address>()
        .map_err(|e| StartError::Config(format!("[kuksa] address: {e}")))?;
    let mut by_path: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, a)) in axes.iter().enumerate() {
        by_path.entry(a.vss.clone()).or_default().push(i);
    }
    let ctx = Arc::new(Ctx {
        shared: Arc::new(Mutex::new(Shared::new(axes.len()))),
        axes: axes.iter().map(|(_, a)| a.clone()).collect(),
        ids: axes.iter().map(|(id, _)| *id).collect(),
        by_id: axes
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect(),
        by_path,
        cfg: kcfg,
        fb,
    });
    let first = match probe(&ctx).await {
        Ok(client) => Some(client),
        Err(Problem::Mismatch(m)) => return Err(StartError::Config(m)),
        Err(Problem::Down(e)) if ctx.cfg.required => {
            return Err(StartError::Failed(format!(
                "the KUKSA databroker is required ([kuksa] required = true) and cannot be \
                 used: {e}"
            )));
        }
        Err(Problem::Down(e)) => {
            tracing::warn!(
                "kuksa: {e}; starting with the positions of {} not known, and retrying",
                names(&ctx.axes)
            );
            None
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(supervise(ctx.clone(), rx, first));
    Ok(Started {
        backend: Arc::new(Kuksa { tx, ctx }),
        // They come from the subscription, as feedback.
        positions: BTreeMap::new(),
    })
}

fn names(axes: &[AxisConfig]) -> String {
    axes.iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Connect and check the metadata; on success the data types are in [`Shared::types`].
async fn probe(ctx: &Ctx) -> Result<Client, Problem> {
    let mut client = crate::kuksa::connect(&ctx.cfg)
        .await
        .map_err(|e| Problem::Down(e.to_string()))?;
    let paths: Vec<&str> = ctx.by_path.keys().map(String::as_str).collect();
    let meta = match tokio::time::timeout(
        ctx.call_timeout(),
        crate::kuksa::metadata(&mut client, &paths),
    )
    .await
    {
        Ok(Ok(meta)) => meta,
        Ok(Err(s)) => {
            return Err(Problem::Down(format!(
                "the broker at {} refused ListMetadata: {}",
                ctx.cfg.address,
                status_message(&s)
            )));
        }
        Err(_) => {
            return Err(Problem::Down(format!(
                "the broker at {} did not answer ListMetadata in time",
                ctx.cfg.address
            )));
        }
    };
    let types = check(&ctx.axes, &meta).map_err(Problem::Mismatch)?;
    ctx.lock().types = types.into_iter().map(Some).collect();
    Ok(client)
}

/// Run `fut` while no session runs, refusing every command meanwhile (with `why`). `None`:
/// the backend was dropped.
async fn refusing<F: Future>(
    fut: F,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    ctx: &Ctx,
    why: &str,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            job = rx.recv() => match job {
                Some(job) => ctx.refuse(&job, why),
                None => return None,
            },
        }
    }
}

/// Keep a session with the broker, reconnecting with backoff, until the backend is dropped.
async fn supervise(ctx: Arc<Ctx>, mut rx: mpsc::UnboundedReceiver<Job>, mut first: Option<Client>) {
    let mut backoff = Backoff::new(&ctx.cfg);
    let mut down = format!("not connected to the broker at {} yet", ctx.cfg.address);
    // The last problem logged, so that a retry failing the same way is not logged again.
    let mut logged: Option<String> = None;
    loop {
        let client = match first.take() {
            Some(client) => client,
            None => {
                let Some(probed) = refusing(probe(&ctx), &mut rx, &ctx, &down).await else {
                    return;
                };
                match probed {
                    Ok(client) => client,
                    Err(problem) => {
                        let msg = match &problem {
                            Problem::Down(m) => m.clone(),
                            Problem::Mismatch(m) => {
                                format!("the broker's signals do not match the config: {m}")
                            }
                        };
                        if logged.as_deref() != Some(msg.as_str()) {
                            match problem {
                                Problem::Down(_) => tracing::warn!("kuksa: {msg}; retrying"),
                                Problem::Mismatch(_) => {
                                    tracing::error!("kuksa: {msg}; nothing will move");
                                    ctx.fault_all(&format!("KUKSA databroker: {msg}"));
                                }
                            }
                        }
                        logged = Some(msg.clone());
                        down = msg;
                        let delay = backoff.next_delay();
                        let slept = refusing(tokio::time::sleep(delay), &mut rx, &ctx, &down).await;
                        if slept.is_none() {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        logged = None;
        let mut served = false;
        let Some(why) = session(&ctx, client, &mut rx, &mut backoff, &mut served).await else {
            return;
        };
        // The delays start again from 500 ms only after a session that stayed up: a broker
        // that fails right after answering is not retried every 500 ms forever.
        backoff.down();
        let halt_pending = lost(&ctx, &why);
        down = format!("the broker at {} was lost ({why})", ctx.cfg.address);
        if halt_pending && served {
            // An axis of ours may be running with nobody watching: try again at once (the
            // backoff applies from the next attempt on; a session that fails before it
            // reports anything is not retried at once again, so this never spins).
            continue;
        }
        let delay = backoff.next_delay();
        if refusing(tokio::time::sleep(delay), &mut rx, &ctx, &down)
            .await
            .is_none()
        {
            return;
        }
    }
}

/// The broker is gone: every axis that was commanded is told to stop where it was last
/// reported, right away, over a fresh connection (the subscription may be all that broke);
/// then every position is forgotten ([`Feedback::PositionUnknown`]: a motion halts with
/// outcome `fault`) and the commanded axes are owed a stop at their next report. Returns
/// whether any stop is owed.
fn lost(ctx: &Arc<Ctx>, why: &str) -> bool {
    tracing::error!(
        "kuksa: lost the broker at {} ({why}); every axis is halted, reconnecting",
        ctx.cfg.address
    );
    let (stops, owed) = {
        let mut s = ctx.lock();
        let mut stops = Vec::new();
        for i in 0..ctx.axes.len() {
            let commanded = s.commanded(i);
            if commanded && let Some(msg) = s.stop_msg(i) {
                match msg {
                    Ok(msg) => stops.push(msg),
                    Err(e) => tracing::error!(axis = %ctx.axes[i].name, "kuksa: stop: {e}"),
                }
            }
            s.positions[i] = None;
            s.halt_pending[i] |= commanded;
        }
        (stops, s.halt_pending.iter().any(|h| *h))
    };
    for &axis in &ctx.ids {
        let _ = ctx.fb.send(Feedback::PositionUnknown {
            axis,
            why: format!(
                "lost the KUKSA databroker ({why}); the position is not known until it is back"
            ),
        });
    }
    if !stops.is_empty() {
        tokio::spawn(stop_at_once(ctx.clone(), stops));
    }
    owed
}

/// The stops of [`lost`], bounded by the call timeout. A stop the broker took counts as
/// the axis' stop (`stop_all` need not send it again); the stop owed at the next report is
/// sent all the same (where the axis then is: it may have coasted).
async fn stop_at_once(ctx: Arc<Ctx>, stops: Vec<StopMsg>) {
    for m in &stops {
        tracing::warn!(
            axis = %ctx.axes[m.axis].name,
            position = m.at,
            "kuksa: the link was lost while it was commanded: stop sent at once"
        );
    }
    let wait = ctx.call_timeout();
    let sent = tokio::time::timeout(wait, send_stops(&ctx.cfg, &ctx.axes, &stops, wait)).await;
    let sent = match sent {
        Ok(Ok(sent)) => sent,
        Ok(Err(e)) => {
            tracing::error!("kuksa: the stops sent at once did not arrive: {e}");
            return;
        }
        Err(_) => {
            tracing::error!(
                "kuksa: the stops sent at once did not arrive within {} ms",
                wait.as_millis()
            );
            return;
        }
    };
    let mut s = ctx.lock();
    for (m, r) in stops.iter().zip(sent) {
        let name = &ctx.axes[m.axis].name;
        match r {
            Ok(()) => {
                tracing::warn!(axis = %name, "kuksa: the broker took the stop sent at once");
                s.stopped[m.axis] = s.stopped[m.axis].max(m.seq);
            }
            Err(e) => tracing::error!(axis = %name, "kuksa: the stop sent at once: {e}"),
        }
    }
}

/// Subscribe and serve commands until the broker is lost (`Some(why)`) or the backend is
/// dropped (`None`). `served`: set once the broker reported positions.
async fn session(
    ctx: &Arc<Ctx>,
    mut client: Client,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    backoff: &mut Backoff,
    served: &mut bool,
) -> Option<String> {
    let req = SubscribeRequest {
        signal_paths: ctx.by_path.keys().cloned().collect(),
        buffer_size: crate::kuksa::SUBSCRIBE_BUFFER,
        filter: None,
    };
    let subscribed = refusing(
        tokio::time::timeout(ctx.call_timeout(), client.subscribe(req)),
        rx,
        ctx,
        "subscribing to the axes' positions",
    )
    .await?;
    let mut stream = match subscribed {
        Ok(Ok(resp)) => resp.into_inner(),
        Ok(Err(s)) => return Some(format!("Subscribe refused: {}", status_message(&s))),
        Err(_) => return Some("Subscribe not answered in time".into()),
    };
    tracing::info!(
        "kuksa: connected to the broker at {}, following {}",
        ctx.cfg.address,
        names(&ctx.axes)
    );
    // Commands go to a task per axis, each in order (a stop never overtakes the move it
    // stops), so that neither the positions nor another axis' stop wait for an actuation the
    // broker is slow to take. The tasks end with the session: what they had not sent yet is
    // dropped, never sent later.
    let mut tasks = tokio::task::JoinSet::new();
    let queues: Vec<mpsc::UnboundedSender<Job>> = (0..ctx.axes.len())
        .map(|i| {
            let (tx, queue) = mpsc::unbounded_channel();
            tasks.spawn(actuate_in_order(ctx.clone(), client.clone(), i, queue));
            tx
        })
        .collect();
    let mut first = true;
    let ended = loop {
        tokio::select! {
            msg = stream.message() => match msg {
                Ok(Some(resp)) => {
                    if first {
                        first = false;
                        *served = true;
                        backoff.up();
                    }
                    positions(ctx, resp.entries, &queues);
                }
                Ok(None) => break Some("the broker ended the subscription".to_string()),
                Err(s) => break Some(status_message(&s)),
            },
            job = rx.recv() => match job {
                Some(job) => dispatch(ctx, &queues, job),
                None => break None,
            },
        }
    };
    tasks.abort_all();
    ended
}

/// Hand `job` to its axis' task.
fn dispatch(ctx: &Ctx, queues: &[mpsc::UnboundedSender<Job>], job: Job) {
    if let Err(mpsc::error::SendError(job)) = queues[job.axis()].send(job) {
        ctx.refuse(&job, "the command task ended");
    }
}

/// A subscription response: each axis' new value. An axis owed a stop (it was running when
/// the broker was lost, or its stop could not be sent) is told to stop where it now is.
fn positions(
    ctx: &Ctx,
    entries: std::collections::HashMap<String, proto::Datapoint>,
    queues: &[mpsc::UnboundedSender<Job>],
) {
    for (path, dp) in entries {
        let Some(axes) = ctx.by_path.get(&path) else {
            continue;
        };
        // No value (yet): the position stays unknown.
        let Some(v) = dp.value.filter(|v| v.typed_value.is_some()) else {
            continue;
        };
        for &i in axes {
            let name = &ctx.axes[i].name;
            let Some(p) = value::to_f64(&v).filter(|p| p.is_finite()) else {
                let v = shown(&v);
                tracing::warn!(axis = %name, "kuksa: {path} reported {v}, not a position");
                ctx.fault(
                    i,
                    format!("the broker reported {v} for {path}, not a number"),
                );
                continue;
            };
            let halt = {
                let mut s = ctx.lock();
                s.positions[i] = Some(p);
                std::mem::take(&mut s.halt_pending[i]).then_some(s.moves[i])
            };
            let _ = ctx.fb.send(Feedback::Position {
                axis: ctx.ids[i],
                position: p,
            });
            if let Some(seq) = halt {
                tracing::warn!(axis = %name, "kuksa: it is owed a stop: told to stop at {p}");
                dispatch(ctx, queues, Job::Stop { axis: i, seq });
            }
        }
    }
}

/// What to do with a job, decided under the lock right before sending.
enum Next {
    Send(f64, DataType, &'static str),
    /// A move superseded by a later stop: never sent.
    Skip,
    Refuse(&'static str),
}

/// Send axis `i`'s commands to the broker one after the other (a stop never overtakes the
/// move it stops).
async fn actuate_in_order(
    ctx: Arc<Ctx>,
    client: Client,
    i: usize,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    let a = &ctx.axes[i];
    while let Some(job) = queue.recv().await {
        let next = {
            let mut s = ctx.lock();
            match (&job, s.types[i], s.positions[i]) {
                (Job::Move { .. }, _, _) if s.halted => {
                    Next::Refuse("every axis was stopped (stop all)")
                }
                (Job::Move { seq, .. }, _, _) if *seq <= s.cancelled[i] => Next::Skip,
                (_, None, _) => Next::Refuse("the signal's type is not known"),
                (Job::Move { .. }, _, None) => Next::Refuse("its position is not known"),
                (Job::Move { target, seq, .. }, Some(ty), Some(_)) => {
                    s.sent[i] = *seq;
                    Next::Send(*target, ty, "move")
                }
                (Job::Stop { .. }, Some(ty), Some(p)) => Next::Send(p, ty, "stop"),
                (Job::Stop { .. }, Some(_), None) => {
                    Next::Refuse("its position is not known, so it cannot be told to stop there")
                }
            }
        };
        let (target, ty, what) = match next {
            Next::Send(target, ty, what) => (target, ty, what),
            Next::Skip => {
                tracing::debug!(axis = %a.name, "kuksa: move dropped: a stop came after it");
                continue;
            }
            Next::Refuse(why) => {
                ctx.refuse(&job, why);
                continue;
            }
        };
        let value = match value::from_f64(target, ty) {
            Ok(v) => v,
            Err(e) => {
                ctx.fault(i, format!("cannot {what} {} to {target}: {e}", a.vss));
                continue;
            }
        };
        tracing::debug!(axis = %a.name, "kuksa: {what}: Actuate {} = {target}", a.vss);
        match actuate(&client, &a.vss, value, ctx.call_timeout()).await {
            Ok(()) => {
                if let Job::Stop { seq, .. } = job {
                    let mut s = ctx.lock();
                    s.stopped[i] = s.stopped[i].max(seq);
                }
            }
            Err(e) => {
                tracing::warn!(axis = %a.name, "kuksa: {what} refused: {e}");
                if let Job::Stop { .. } = job {
                    // Sent again at the next position report: resending a stop is no blind
                    // retry of a motion.
                    ctx.lock().halt_pending[i] = true;
                }
                ctx.fault(i, format!("Actuate {} ({what}): {e}", a.vss));
            }
        }
    }
}

async fn actuate(client: &Client, path: &str, value: Value, wait: Duration) -> Result<(), String> {
    let req = ActuateRequest {
        signal_id: Some(SignalId {
            signal: Some(signal_id::Signal::Path(path.to_string())),
        }),
        value: Some(value),
    };
    let mut client = client.clone();
    match tokio::time::timeout(wait, client.actuate(req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(s)) => Err(status_message(&s)),
        Err(_) => Err(format!(
            "the broker did not answer within {} ms",
            wait.as_millis()
        )),
    }
}

/// The started backend.
pub struct Kuksa {
    tx: mpsc::UnboundedSender<Job>,
    ctx: Arc<Ctx>,
}

impl Backend for Kuksa {
    fn name(&self) -> &'static str {
        DRIVER.name
    }

    fn command(&self, cmd: &BackendCommand) {
        let Some(&axis) = self.ctx.by_id.get(&cmd.axis()) else {
            tracing::error!("kuksa: no {}; command dropped", cmd.axis());
            return;
        };
        let job = {
            let mut s = self.ctx.lock();
            match cmd {
                BackendCommand::Move { target, .. } => {
                    s.moves[axis] += 1;
                    // A new command supersedes the stop owed since the broker was lost.
                    s.halt_pending[axis] = false;
                    Job::Move {
                        axis,
                        target: *target,
                        seq: s.moves[axis],
                    }
                }
                BackendCommand::Stop { .. } => {
                    // The axis' moves not sent yet never will be.
                    s.cancelled[axis] = s.moves[axis];
                    Job::Stop {
                        axis,
                        seq: s.moves[axis],
                    }
                }
            }
        };
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job) {
            self.ctx.refuse(&job, "the kuksa backend has ended");
        }
    }

    /// Best effort, bounded: for every axis commanded since its last stop whose position is
    /// known, `Actuate` that position (a stop), over a fresh connection made by a short-lived
    /// thread with a runtime of its own (the daemon's runtime may never run again: this is
    /// called from a panic hook, on a signal, when the bus is lost), waiting at most
    /// [`STOP_ALL_WAIT`] for the broker to take them. From then on no move is sent any more
    /// (one queued or commanded later is refused), so nothing overtakes these stops. It cannot
    /// do more: with the broker down, or slow, the stops do not arrive, so the provider (the
    /// seat's ECU) must stop on its own when its commander goes silent (its own timeout, or
    /// the broker's connection loss); and a move already on its way to the broker when this
    /// is called may arrive after the stop.
    fn stop_all(&self) {
        // `try_lock`: a panic hook may run while this very thread holds the lock.
        let stops: Vec<StopMsg> = {
            let mut s = match self.ctx.shared.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    tracing::error!("kuksa: stop all: the backend's state is locked; nothing sent");
                    return;
                }
            };
            s.halted = true;
            let mut stops = Vec::new();
            for (i, a) in self.ctx.axes.iter().enumerate() {
                s.cancelled[i] = s.moves[i];
                if !s.commanded(i) {
                    continue;
                }
                let Some(msg) = s.stop_msg(i) else {
                    tracing::error!(
                        axis = %a.name,
                        "kuksa: stop all: its position is not known; it cannot be told to stop"
                    );
                    s.halt_pending[i] = true;
                    continue;
                };
                match msg {
                    Ok(msg) => stops.push(msg),
                    Err(e) => tracing::error!(axis = %a.name, "kuksa: stop all: {e}"),
                }
                s.stopped[i] = s.sent[i];
            }
            stops
        };
        if stops.is_empty() {
            tracing::info!("kuksa: stop all: no axis was commanded");
            return;
        }
        for m in &stops {
            tracing::warn!(
                axis = %self.ctx.axes[m.axis].name,
                position = m.at,
                "kuksa: stop all: telling it to stop"
            );
        }
        let cfg = self.ctx.cfg.clone();
        let axes = self.ctx.axes.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("kuksa-stop-all".into())
            .spawn(move || {
                let sent = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(send_stops(&cfg, &axes, &stops, STOP_ALL_WAIT)),
                    Err(e) => Err(format!("no runtime: {e}")),
                };
                let sent = sent.and_then(|each| {
                    let failed: Vec<String> = each.into_iter().filter_map(Result::err).collect();
                    if failed.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("stops refused: {}", failed.join("; ")))
                    }
                });
                let _ = done_tx.send(sent);
            });
        if let Err(e) = spawned {
            tracing::error!("kuksa: stop all: no thread to send the stops: {e}");
            return;
        }
        match done_rx.recv_timeout(STOP_ALL_WAIT) {
            Ok(Ok(())) => tracing::warn!("kuksa: stop all: the broker took every stop"),
            Ok(Err(e)) => tracing::error!("kuksa: stop all: {e}"),
            Err(_) => tracing::error!(
                "kuksa: stop all: the broker did not take the stops within {} ms; the \
                 provider must stop on its own",
                STOP_ALL_WAIT.as_millis()
            ),
        }
    }
}

/// Connect afresh and send every stop at once, each waiting at most `wait` for the broker.
/// `Err`: no connection; else each stop's outcome, in order (an error names the axis).
async fn send_stops(
    cfg: &KuksaConfig,
    axes: &[AxisConfig],
    stops: &[StopMsg],
    wait: Duration,
) -> Result<Vec<Result<(), String>>, String> {
    let client = crate::kuksa::connect(cfg)
        .await
        .map_err(|e| e.to_string())?;
    Ok(futures_util::future::join_all(stops.iter().map(|m| {
        let client = client.clone();
        let a = &axes[m.axis];
        async move {
            actuate(&client, &a.vss, m.value.clone(), wait)
                .await
                .map_err(|e| format!("{}: {e}", a.name))
        }
    }))
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn meta(path: &str, entry: EntryType, ty: DataType, unit: &str) -> Metadata {
        Metadata {
            path: path.into(),
            data_type: ty as i32,
            entry_type: entry as i32,
            unit: unit.into(),
            ..Default::default()
        }
    }

    fn num(x: f64, ty: DataType) -> Option<Value> {
        Some(value::from_f64(x, ty).unwrap())
    }

    /// The VSS 6.0 metadata of the default axes.
    fn vss6(axes: &[AxisConfig]) -> BTreeMap<String, Metadata> {
        axes.iter()
            .map(|a| {
                let (ty, max) = match a.name.as_str() {
                    "seat_position" | "seat_height" => (DataType::Uint16, None),
                    "headrest_height" => (DataType::Uint8, None),
                    "wheel_tilt" | "wheel_extension" => (DataType::Uint8, Some(100.0)),
                    n if n.starts_with("mirror_") => (DataType::Int8, Some(100.0)),
                    _ => (DataType::Float, None),
                };
                let mut m = meta(&a.vss, EntryType::Actuator, ty, vss_unit(a.unit));
                if ty == DataType::Int8 {
                    m.min = num(-100.0, ty);
                } else if ty != DataType::Float {
                    m.min = num(0.0, ty);
                }
                m.max = max.and_then(|x| num(x, ty));
                (a.vss.clone(), m)
            })
            .collect()
    }

    /// The default axes, with the tolerance integer signals need.
    fn axes() -> Vec<AxisConfig> {
        let mut axes = config::builtin().unwrap().axes;
        for a in &mut axes {
            a.tolerance = a.tolerance.max(0.5);
        }
        axes
    }

    #[test]
    fn the_default_axes_match_vss_6() {
        let axes = axes();
        let types = check(&axes, &vss6(&axes)).unwrap();
        assert_eq!(types[0], DataType::Uint16);
        assert_eq!(types.len(), axes.len());
    }

    #[test]
    fn each_mismatch_names_the_axis_the_path_and_the_problem() {
        let axes = axes();
        let seat = &axes[0].vss;
        type Change<'a> = Box<dyn Fn(&mut BTreeMap<String, Metadata>) + 'a>;
        let cases: Vec<(Change<'_>, &str)> = vec![
            (
                Box::new(|m| {
                    m.remove(seat);
                }),
                "the broker has no such signal",
            ),
            (
                Box::new(|m| m.get_mut(seat).unwrap().entry_type = EntryType::Sensor as i32),
                "not an actuator (the broker says a sensor)",
            ),
            (
                Box::new(|m| m.get_mut(seat).unwrap().data_type = DataType::String as i32),
                "not a number (its type is string)",
            ),
            (
                Box::new(|m| m.get_mut(seat).unwrap().unit = "cm".into()),
                "its unit is \"cm\", the axis' is \"mm\"",
            ),
            (
                Box::new(|m| m.get_mut(seat).unwrap().max = num(200.0, DataType::Uint16)),
                "the axis' range 0..260 does not fit the signal's 0..200",
            ),
            (
                Box::new(|m| m.get_mut(seat).unwrap().data_type = DataType::Int8 as i32),
                "does not fit the signal's 0..127 (int8)",
            ),
        ];
        for (change, expected) in cases {
            let mut m = vss6(&axes);
            change(&mut m);
            let e = check(&axes, &m).unwrap_err();
            assert!(
                e.starts_with(&format!("axis seat_position ({seat}): ")),
                "{e}"
            );
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
        }
        // An integer signal needs a tolerance of half a unit (as shipped); a finer one is refused.
        let mut shipped = config::builtin().unwrap().axes;
        assert!(
            check(&shipped, &vss6(&shipped)).is_ok(),
            "the shipped axes fit VSS 6.0"
        );
        shipped[0].tolerance = 0.26;
        let e = check(&shipped, &vss6(&shipped)).unwrap_err();
        assert!(
            e.contains(&format!(
                "axis seat_position ({seat}): it is an integer signal (uint16), so the axis \
                 reaches targets to the nearest whole mm: give the axis tolerance = 0.5 or more \
                 (it has 0.26)"
            )),
            "{e}"
        );
        assert!(!e.contains("seat_tilt"), "a float signal is fine: {e}");
        // Whole limits for an integer signal, and enough travel within stall_ms to be seen.
        let mut shipped = config::builtin().unwrap().axes;
        shipped[0].max = 259.5;
        let e = check(&shipped, &vss6(&shipped)).unwrap_err();
        assert!(e.contains("axis seat_position"), "{e}");
        assert!(e.contains("min and max must be whole mm"), "{e}");
        let mut shipped = config::builtin().unwrap().axes;
        shipped[1].stall_ms = 150; // seat_height: 10 mm/s -> 1.5 mm in 150 ms
        let e = check(&shipped, &vss6(&shipped)).unwrap_err();
        assert!(e.contains("axis seat_height"), "{e}");
        assert!(e.contains("every motion would look stalled"), "{e}");
        assert!(
            !e.contains("seat_position"),
            "25 mm/s x 200 ms is enough: {e}"
        );
        // Degrees are "degrees" in VSS.
        let mut m = vss6(&axes);
        m.get_mut(&axes[2].vss).unwrap().unit = "deg".into();
        let e = check(&axes, &m).unwrap_err();
        assert!(e.contains("axis seat_tilt"), "{e}");
        assert!(e.contains("the axis' is \"deg\" (VSS \"degrees\")"), "{e}");
    }

    #[test]
    fn the_brokers_words_are_quoted_and_cut() {
        let long = "x".repeat(500);
        let m = status_message(&tonic::Status::unavailable(format!("  {long}\n")));
        assert!(m.starts_with("Unavailable: \"xxx"), "{m}");
        assert!(m.len() < 100, "{m}");
        assert!(m.ends_with("… (500 bytes)"), "{m}");
        assert_eq!(status_message(&tonic::Status::not_found("")), "NotFound");
        let v = Value {
            typed_value: Some(proto::value::TypedValue::String(long)),
        };
        let m = shown(&v);
        assert!(m.len() < 100, "{m}");
        assert_eq!(shown(&Value { typed_value: None }), "no value");
    }
}
