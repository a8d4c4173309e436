//! The vehicle signals from the KUKSA databroker (`[vehicle] source = "kuksa"`): [`check`] reads
//! their metadata at start, [`spawn`] subscribes and feeds them to the core as
//! [`Request::UpdateSignals`]. What is checked, how VSS values map and what a lost broker
//! means: `docs/kuksa.md` in the repository.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::{mpsc, oneshot};
use tonic::Streaming;
use tonic::codegen::tokio_stream::{Stream, StreamExt};

use driverprofiled_kuksa::connect::Client;
use driverprofiled_kuksa::proto::{
    DataType, Datapoint, Metadata, SubscribeRequest, SubscribeResponse,
};
use driverprofiled_kuksa::value::{self, type_name};

use crate::backend::StartError;
use crate::config::{KuksaConfig, VssSignals};
use crate::core::{Gear, Request, Signal};
use crate::engine::Call;
use crate::kuksa::{Backoff, BrokerError, LogOnce, connect, metadata, status_message, within};

/// What a `[kuksa.signals]` entry feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gear,
    Speed,
    DriverDoorOpen,
    DoorsLocked,
    DriverSeatOccupancy,
    RearOccupancy,
    DriverBelt,
    Brake,
    ManualSwitch,
}

impl Kind {
    /// Its key in `[kuksa.signals]`, for messages.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Gear => "gear",
            Kind::Speed => "speed",
            Kind::DriverDoorOpen => "driver_door_open",
            Kind::DoorsLocked => "doors_locked",
            Kind::DriverSeatOccupancy => "driver_seat_occupancy",
            Kind::RearOccupancy => "rear_occupancy",
            Kind::DriverBelt => "driver_belt",
            Kind::Brake => "brake",
            Kind::ManualSwitch => "manual_switches",
        }
    }

    /// Why a signal of this metadata cannot feed this kind; `None` when it can.
    fn mismatch(self, m: &Metadata) -> Option<String> {
        let ty = m.data_type();
        let numeric = value::is_numeric(ty);
        let (ok, want) = match self {
            Kind::Gear => (value::int_range(ty).is_some(), "an integer (VSS int8)"),
            Kind::Speed => (numeric, "a number (VSS float, km/h)"),
            Kind::DriverSeatOccupancy | Kind::RearOccupancy => (
                ty == DataType::String,
                "a string (OCCUPIED, EMPTY, UNKNOWN)",
            ),
            Kind::Brake => (
                numeric || ty == DataType::Boolean,
                "a number (percent) or a boolean",
            ),
            Kind::DriverDoorOpen | Kind::DoorsLocked | Kind::DriverBelt | Kind::ManualSwitch => {
                (ty == DataType::Boolean, "a boolean")
            }
        };
        if !ok {
            return Some(format!("is a {} at the broker, not {want}", type_name(ty)));
        }
        // The speed threshold is in km/h: a speed in m/s or mph would be misread.
        if self == Kind::Speed && !m.unit.is_empty() && m.unit != "km/h" {
            return Some(format!("is in {:?} at the broker, not km/h", m.unit));
        }
        None
    }
}

/// Every `[kuksa.signals]` path with what it feeds, in config order (a path named twice feeds
/// each).
pub fn watched(s: &VssSignals) -> Vec<(String, Kind)> {
    let mut v = vec![
        (s.gear.clone(), Kind::Gear),
        (s.speed.clone(), Kind::Speed),
        (s.driver_door_open.clone(), Kind::DriverDoorOpen),
        (s.doors_locked.clone(), Kind::DoorsLocked),
        (s.driver_seat_occupancy.clone(), Kind::DriverSeatOccupancy),
        (s.rear_occupancy.clone(), Kind::RearOccupancy),
        (s.driver_belt.clone(), Kind::DriverBelt),
        (s.brake.clone(), Kind::Brake),
    ];
    v.extend(
        s.manual_switches
            .iter()
            .map(|p| (p.clone(), Kind::ManualSwitch)),
    );
    v
}

/// The distinct paths of [`watched`], sorted.
fn paths(s: &VssSignals) -> Vec<String> {
    let mut p: Vec<String> = watched(s).into_iter().map(|(p, _)| p).collect();
    p.sort();
    p.dedup();
    p
}

/// Every problem of the broker's `found` metadata for the `[kuksa.signals]` paths: missing, or
/// of a type the daemon cannot read. Empty when all is well.
pub fn mismatches(s: &VssSignals, found: &BTreeMap<String, Metadata>) -> Vec<String> {
    watched(s)
        .into_iter()
        .filter_map(|(path, kind)| {
            let why = match found.get(&path) {
                None => "is not a signal the broker knows".to_string(),
                Some(m) => kind.mismatch(m)?,
            };
            Some(format!("[kuksa.signals] {}: {path} {why}", kind.key()))
        })
        .collect()
}

/// Why a connection cannot be used: the broker is not there (or refuses us), or its signals do
/// not match the config.
enum ConnectError {
    Unreachable(String),
    Mismatch(String),
}

/// Connect and check every signal's metadata.
async fn connect_checked(cfg: &KuksaConfig) -> Result<Client, ConnectError> {
    let unreachable = |e: BrokerError| ConnectError::Unreachable(e.to_string());
    let mut client = connect(cfg).await.map_err(unreachable)?;
    let paths = paths(&cfg.signals);
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let found = within(cfg, "ListMetadata", metadata(&mut client, &refs))
        .await
        .map_err(unreachable)?
        .map_err(|s| {
            ConnectError::Unreachable(format!(
                "the broker at {} did not list the signals' metadata: {}",
                cfg.address,
                status_message(&s)
            ))
        })?;
    let problems = mismatches(&cfg.signals, &found);
    if !problems.is_empty() {
        return Err(ConnectError::Mismatch(format!(
            "the vehicle signals at the KUKSA databroker at {} do not match the config: {}",
            cfg.address,
            problems.join("; ")
        )));
    }
    Ok(client)
}

/// A connection checked at start; `None` inside when the broker could not be reached (and is
/// not required): the feed keeps trying.
pub struct Checked(Option<Client>);

/// The start-up check of `[vehicle] source = "kuksa"`: connect, and check every signal's
/// metadata. A missing or mistyped signal is [`StartError::Config`]; an unreachable broker is
/// [`StartError::Failed`] when `[kuksa] required = true`, else logged (the daemon starts
/// interlocked and keeps trying).
pub async fn check(cfg: &KuksaConfig) -> Result<Checked, StartError> {
    match connect_checked(cfg).await {
        Ok(client) => Ok(Checked(Some(client))),
        Err(ConnectError::Mismatch(why)) => Err(StartError::Config(why)),
        Err(ConnectError::Unreachable(why)) if cfg.required => Err(StartError::Failed(format!(
            "the KUKSA databroker is required ([kuksa] required = true) and cannot be used: {why}"
        ))),
        Err(ConnectError::Unreachable(why)) => {
            tracing::warn!(
                "vehicle signals: {why}; starting interlocked (gear and speed not reported) \
                 and retrying"
            );
            Ok(Checked(None))
        }
    }
}

/// Feed the signals to the engine (`calls`, the channel D-Bus calls take) from now on, over the
/// connection `checked` made (or a new one), reconnecting for as long as the engine runs.
pub fn spawn(cfg: KuksaConfig, checked: Checked, calls: mpsc::Sender<Call>) {
    tokio::spawn(async move {
        Feed {
            decoder: Decoder::new(&cfg.signals),
            backoff: Backoff::new(&cfg),
            cfg,
            calls,
        }
        .run(checked.0)
        .await;
        tracing::debug!("vehicle signals: the engine is gone; the feed ends");
    });
}

/// The engine no longer takes requests: the daemon is shutting down.
struct Gone;

struct Feed {
    cfg: KuksaConfig,
    decoder: Decoder,
    backoff: Backoff,
    calls: mpsc::Sender<Call>,
}

/// What the daemon takes for the signals the broker no longer reports (it is lost, or not
/// reached yet): gear and speed unknown (interlocked); the rear seat occupied and the doors
/// locked, their values that permit nothing.
fn not_reported() -> Vec<Signal> {
    vec![
        Signal::GearUnknown,
        Signal::SpeedUnknown,
        Signal::RearOccupied(true),
        Signal::DoorsLocked(true),
    ]
}

impl Feed {
    async fn run(mut self, mut client: Option<Client>) {
        // Until the broker reports them, the rear seat is occupied and the doors are locked
        // (the core's defaults, false, are the permissive values).
        if self.send(not_reported()).await.is_err() {
            return;
        }
        // The start-up check failed already: the first retry waits, as every later one.
        let mut retry = client.is_none();
        // A failure is logged once; the same again (every retry of a broker that stays away,
        // or that keeps failing right after it answered) goes to the debug log only.
        let mut log = LogOnce::default();
        loop {
            if retry {
                tokio::time::sleep(self.backoff.next_delay()).await;
            }
            retry = true;
            let c = match client.take() {
                Some(c) => c,
                None => match connect_checked(&self.cfg).await {
                    Ok(c) => c,
                    Err(ConnectError::Unreachable(why)) => {
                        if log.is_new(&why) {
                            tracing::warn!("vehicle signals: {why}; retrying");
                        } else {
                            tracing::debug!("vehicle signals: {why}; retrying");
                        }
                        continue;
                    }
                    Err(ConnectError::Mismatch(why)) => {
                        // The broker's VSS changed under us: never guess, stay interlocked.
                        if log.is_new(&why) {
                            tracing::error!(
                                "vehicle signals: {why}; staying interlocked, checking again"
                            );
                        } else {
                            tracing::debug!(
                                "vehicle signals: {why}; still interlocked, checking again"
                            );
                        }
                        continue;
                    }
                },
            };
            let why = match self.follow(c).await {
                Ok(why) => why,
                Err(Gone) => return,
            };
            // A session that stayed up: the delays start from 500 ms again, and its loss is
            // news. One that failed soon after it answered: the broker is not well, the
            // delays keep growing, and the same loss again is not logged again.
            if self.backoff.down() {
                log.clear();
            }
            // Whatever the broker said last is no longer known.
            if self.send(not_reported()).await.is_err() {
                return;
            }
            if log.is_new(&why) {
                tracing::warn!(
                    "vehicle signals: {why}; gear and speed are unknown (interlocked) until the \
                     broker is back; reconnecting"
                );
            } else {
                tracing::debug!("vehicle signals: {why} again; reconnecting");
            }
        }
    }

    /// Subscribe and feed every response until the subscription ends; why it ended.
    ///
    /// The stream is drained all the time, into the latest value of each path; what came in
    /// while the core was applying the last batch goes as one merged batch next. A response
    /// carries only the entries that changed, and the broker drops the oldest responses of a
    /// subscriber that falls behind: waiting for the core before reading on could lose a
    /// change for good (a gear, a switch released).
    async fn follow(&mut self, mut client: Client) -> Result<String, Gone> {
        let req = SubscribeRequest {
            signal_paths: paths(&self.cfg.signals),
            buffer_size: crate::kuksa::SUBSCRIBE_BUFFER,
            filter: None,
        };
        let address = self.cfg.address.clone();
        let mut stream: Streaming<SubscribeResponse> =
            match within(&self.cfg, "Subscribe", client.subscribe(req)).await {
                Ok(Ok(r)) => r.into_inner(),
                Ok(Err(s)) => {
                    return Ok(format!(
                        "the broker at {address} refused the subscription: {}",
                        status_message(&s)
                    ));
                }
                Err(why) => return Ok(why.to_string()),
            };
        // The broker sends every subscribed signal's current value at once.
        let first = match within(&self.cfg, "Subscribe with the values", stream.message()).await {
            Ok(Ok(Some(resp))) => resp,
            Ok(Ok(None)) => {
                return Ok(format!(
                    "the broker at {address} ended the subscription before any value"
                ));
            }
            Ok(Err(s)) => {
                return Ok(format!(
                    "the subscription at the broker at {address} failed: {}",
                    status_message(&s)
                ));
            }
            Err(why) => return Ok(why.to_string()),
        };
        self.backoff.up();
        tracing::info!(
            "vehicle signals: subscribed to {} VSS signals at the broker at {address}",
            self.decoder.by_path.len(),
        );
        self.drain(&mut stream, first.entries).await
    }

    /// Feed `first` and then every response of `stream` until it ends; why it ended. The
    /// stream is drained all the time, into the latest value of each path; what comes in while
    /// the core applies a batch goes as one merged batch next.
    async fn drain<S>(
        &mut self,
        stream: &mut S,
        first: HashMap<String, Datapoint>,
    ) -> Result<String, Gone>
    where
        S: Stream<Item = Result<SubscribeResponse, tonic::Status>> + Unpin,
    {
        let address = self.cfg.address.clone();
        let mut pending = first;
        let mut applying: Option<Applying> = None;
        let ended = loop {
            if applying.is_none() && !pending.is_empty() {
                let batch = self.decoder.decode(&std::mem::take(&mut pending));
                if !batch.is_empty() {
                    applying = Some(Box::pin(apply(self.calls.clone(), batch)));
                }
            }
            tokio::select! {
                done = async {
                    match applying.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                }, if applying.is_some() => {
                    applying = None;
                    done?;
                }
                // Cancel-safe: a message not complete yet stays in the stream.
                m = stream.next() => match m {
                    Some(Ok(resp)) => pending.extend(resp.entries),
                    None => break format!("the broker at {address} ended the subscription"),
                    Some(Err(s)) => {
                        break format!(
                            "the subscription at the broker at {address} failed: {}",
                            status_message(&s)
                        );
                    }
                },
            }
        };
        // What the broker said before it went is applied, in order, before the loss.
        if let Some(f) = applying {
            f.await?;
        }
        if !pending.is_empty() {
            let batch = self.decoder.decode(&pending);
            if !batch.is_empty() {
                apply(self.calls.clone(), batch).await?;
            }
        }
        Ok(ended)
    }

    async fn send(&self, signals: Vec<Signal>) -> Result<(), Gone> {
        apply(self.calls.clone(), signals).await
    }
}

/// A batch on its way through the core.
type Applying = std::pin::Pin<Box<dyn Future<Output = Result<(), Gone>> + Send>>;

/// Apply a batch at the core, as a D-Bus `UpdateSignals` would be; done when the core has
/// applied it (the next batch waits for that, so that batches never overtake each other).
async fn apply(calls: mpsc::Sender<Call>, signals: Vec<Signal>) -> Result<(), Gone> {
    tracing::debug!(?signals, "vehicle signals from the broker");
    let (reply, rx) = oneshot::channel();
    let call = Call {
        request: Request::UpdateSignals(signals),
        reply,
    };
    calls.send(call).await.map_err(|_| Gone)?;
    match rx.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            // The decoder only makes values the core takes; log, never stop the feed.
            tracing::error!("vehicle signals refused by the core: {}", e.message());
            Ok(())
        }
        Err(_) => Err(Gone),
    }
}

/// Turns the broker's entries into core signals, keeping what it must remember (the switches).
pub struct Decoder {
    by_path: BTreeMap<String, Vec<Kind>>,
    brake_threshold: f64,
    /// Every manual switch's last state (no value = not engaged).
    switches: BTreeMap<String, bool>,
}

impl Decoder {
    pub fn new(s: &VssSignals) -> Decoder {
        let mut by_path: BTreeMap<String, Vec<Kind>> = BTreeMap::new();
        for (path, kind) in watched(s) {
            by_path.entry(path).or_default().push(kind);
        }
        Decoder {
            by_path,
            brake_threshold: s.brake_threshold,
            switches: s
                .manual_switches
                .iter()
                .map(|p| (p.clone(), false))
                .collect(),
        }
    }

    /// The core signals of one subscription response (entries not subscribed to are ignored).
    pub fn decode(&mut self, entries: &HashMap<String, Datapoint>) -> Vec<Signal> {
        let mut out = Vec::new();
        let mut switch_changed = false;
        // Sorted, so that a batch is always built the same way.
        let sorted: BTreeMap<&String, &Datapoint> = entries.iter().collect();
        for (path, dp) in sorted {
            let Some(kinds) = self.by_path.get(path) else {
                tracing::debug!("vehicle signals: an entry {path} not subscribed to, ignored");
                continue;
            };
            let v = dp.value.as_ref();
            for &kind in kinds {
                if kind == Kind::ManualSwitch {
                    let engaged = v.and_then(value::to_bool).unwrap_or(false);
                    self.switches.insert(path.clone(), engaged);
                    switch_changed = true;
                } else if let Some(s) = decode_one(kind, v, self.brake_threshold) {
                    out.push(s);
                }
            }
        }
        if switch_changed {
            out.push(Signal::SeatSwitch(self.switches.values().any(|&b| b)));
        }
        out
    }
}

/// One entry as a core signal; `None` when it reports nothing the core can take.
fn decode_one(
    kind: Kind,
    v: Option<&driverprofiled_kuksa::proto::Value>,
    threshold: f64,
) -> Option<Signal> {
    let boolean = || v.and_then(value::to_bool);
    let occupied = || match v.and_then(value::to_str) {
        Some("OCCUPIED") => Some(true),
        Some("EMPTY") => Some(false),
        _ => None,
    };
    match kind {
        Kind::Gear => Some(match v.and_then(value::to_f64).and_then(gear) {
            Some(g) => Signal::Gear(g),
            None => Signal::GearUnknown,
        }),
        Kind::Speed => Some(match v.and_then(value::to_f64) {
            Some(s) if s.is_finite() => Signal::SpeedKmh(s.abs()),
            _ => Signal::SpeedUnknown,
        }),
        Kind::DriverDoorOpen => boolean().map(Signal::DriverDoorOpen),
        // Unknown is locked: no automatic motion until the lock reports unlocked.
        Kind::DoorsLocked => Some(Signal::DoorsLocked(boolean().unwrap_or(true))),
        Kind::DriverBelt => boolean().map(Signal::DriverBeltBuckled),
        Kind::DriverSeatOccupancy => occupied().map(Signal::DriverSeatOccupied),
        // Unknown is occupied: the rear guard applies unless the seat reports EMPTY.
        Kind::RearOccupancy => Some(Signal::RearOccupied(occupied().unwrap_or(true))),
        Kind::Brake => {
            let pressed = match v {
                Some(v) => value::to_bool(v).or_else(|| value::to_f64(v).map(|x| x > threshold)),
                None => None,
            };
            pressed.map(Signal::BrakePressed)
        }
        // Decoded together, in Decoder::decode.
        Kind::ManualSwitch => None,
    }
}

/// The gear of a VSS `SelectedGear` value.
fn gear(n: f64) -> Option<Gear> {
    if n.fract() != 0.0 || !(-128.0..=127.0).contains(&n) {
        return None;
    }
    Some(match n as i32 {
        126 => Gear::P,
        127 => Gear::D,
        0 => Gear::N,
        n if n < 0 => Gear::R,
        1..=125 => Gear::D,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use driverprofiled_kuksa::proto::{EntryType, Value, value::TypedValue};

    fn cfg() -> VssSignals {
        crate::config::builtin().unwrap().kuksa.signals
    }

    fn dp(v: Option<TypedValue>) -> Datapoint {
        Datapoint {
            timestamp: None,
            value: v.map(|tv| Value {
                typed_value: Some(tv),
            }),
        }
    }

    fn decode(d: &mut Decoder, entries: &[(&str, Option<TypedValue>)]) -> Vec<Signal> {
        let map = entries
            .iter()
            .map(|(p, v)| (p.to_string(), dp(v.clone())))
            .collect();
        d.decode(&map)
    }

    #[test]
    fn gears() {
        let c = cfg();
        let mut d = Decoder::new(&c);
        let g = |d: &mut Decoder, n: i32| decode(d, &[(&c.gear, Some(TypedValue::Int32(n)))]);
        assert_eq!(g(&mut d, 126), [Signal::Gear(Gear::P)]);
        assert_eq!(g(&mut d, 127), [Signal::Gear(Gear::D)]);
        assert_eq!(g(&mut d, 0), [Signal::Gear(Gear::N)]);
        assert_eq!(g(&mut d, -1), [Signal::Gear(Gear::R)]);
        assert_eq!(g(&mut d, -2), [Signal::Gear(Gear::R)]);
        assert_eq!(g(&mut d, 1), [Signal::Gear(Gear::D)]);
        assert_eq!(g(&mut d, 125), [Signal::Gear(Gear::D)]);
        assert_eq!(g(&mut d, 128), [Signal::GearUnknown]);
        assert_eq!(decode(&mut d, &[(&c.gear, None)]), [Signal::GearUnknown]);
        assert_eq!(
            decode(&mut d, &[(&c.gear, Some(TypedValue::Float(126.5)))]),
            [Signal::GearUnknown]
        );
    }

    #[test]
    fn speed_brake_occupancy_and_unknowns() {
        let c = cfg();
        let mut d = Decoder::new(&c);
        assert_eq!(
            decode(&mut d, &[(&c.speed, Some(TypedValue::Float(-3.0)))]),
            [Signal::SpeedKmh(3.0)]
        );
        assert_eq!(decode(&mut d, &[(&c.speed, None)]), [Signal::SpeedUnknown]);
        assert_eq!(
            decode(&mut d, &[(&c.speed, Some(TypedValue::Float(f32::NAN)))]),
            [Signal::SpeedUnknown]
        );
        assert_eq!(
            decode(&mut d, &[(&c.brake, Some(TypedValue::Uint32(6)))]),
            [Signal::BrakePressed(true)]
        );
        assert_eq!(
            decode(&mut d, &[(&c.brake, Some(TypedValue::Uint32(5)))]),
            [Signal::BrakePressed(false)]
        );
        assert_eq!(
            decode(&mut d, &[(&c.brake, Some(TypedValue::Bool(true)))]),
            [Signal::BrakePressed(true)]
        );
        let occ = |s: &str| Some(TypedValue::String(s.into()));
        assert_eq!(
            decode(&mut d, &[(&c.driver_seat_occupancy, occ("OCCUPIED"))]),
            [Signal::DriverSeatOccupied(true)]
        );
        assert_eq!(
            decode(&mut d, &[(&c.rear_occupancy, occ("EMPTY"))]),
            [Signal::RearOccupied(false)]
        );
        // Not reported: nothing at all.
        assert!(decode(&mut d, &[(&c.driver_seat_occupancy, occ("UNKNOWN"))]).is_empty());
        assert!(decode(&mut d, &[(&c.driver_seat_occupancy, None)]).is_empty());
        assert!(decode(&mut d, &[(&c.driver_door_open, None)]).is_empty());
        assert!(decode(&mut d, &[(&c.brake, None)]).is_empty());
        assert!(decode(&mut d, &[("Vehicle.Other", Some(TypedValue::Bool(true)))]).is_empty());
    }

    #[test]
    fn an_unknown_rear_seat_is_occupied_and_unknown_locks_are_locked() {
        let c = cfg();
        let mut d = Decoder::new(&c);
        let occ = |s: &str| Some(TypedValue::String(s.into()));
        for v in [occ("UNKNOWN"), occ("something else"), None] {
            assert_eq!(
                decode(&mut d, &[(&c.rear_occupancy, v.clone())]),
                [Signal::RearOccupied(true)],
                "{v:?}"
            );
        }
        assert_eq!(
            decode(&mut d, &[(&c.rear_occupancy, occ("OCCUPIED"))]),
            [Signal::RearOccupied(true)]
        );
        assert_eq!(
            decode(&mut d, &[(&c.rear_occupancy, occ("EMPTY"))]),
            [Signal::RearOccupied(false)]
        );
        assert_eq!(
            decode(&mut d, &[(&c.doors_locked, None)]),
            [Signal::DoorsLocked(true)]
        );
        assert_eq!(
            decode(&mut d, &[(&c.doors_locked, Some(TypedValue::Bool(false)))]),
            [Signal::DoorsLocked(false)]
        );
        assert_eq!(
            decode(&mut d, &[(&c.doors_locked, Some(TypedValue::Bool(true)))]),
            [Signal::DoorsLocked(true)]
        );
        // A broker lost: nothing permissive stays.
        let lost = not_reported();
        let mut v = crate::core::Vehicle::default();
        v.apply(&[
            Signal::Gear(Gear::P),
            Signal::SpeedKmh(0.0),
            Signal::RearOccupied(false),
            Signal::DoorsLocked(false),
        ])
        .unwrap();
        v.apply(&lost).unwrap();
        assert_eq!((v.gear, v.speed_kmh), (None, None));
        assert!(v.rear_occupied && v.doors_locked, "{v:?}");
    }

    #[test]
    fn a_batch_is_decoded_whole_and_switches_combine() {
        let c = cfg();
        let mut d = Decoder::new(&c);
        let on = Some(TypedValue::Bool(true));
        let off = Some(TypedValue::Bool(false));
        let (s0, s1) = (&c.manual_switches[0], &c.manual_switches[1]);
        assert_eq!(
            decode(
                &mut d,
                &[
                    (&c.gear, Some(TypedValue::Int32(126))),
                    (&c.speed, Some(TypedValue::Float(0.0))),
                    (&c.driver_belt, on.clone()),
                    (s0, on.clone()),
                ]
            ),
            [
                Signal::DriverBeltBuckled(true),
                Signal::Gear(Gear::P),
                Signal::SpeedKmh(0.0),
                Signal::SeatSwitch(true),
            ]
        );
        assert_eq!(
            decode(&mut d, &[(s1, on.clone())]),
            [Signal::SeatSwitch(true)]
        );
        assert_eq!(
            decode(&mut d, &[(s0, off.clone())]),
            [Signal::SeatSwitch(true)]
        );
        assert_eq!(decode(&mut d, &[(s1, None)]), [Signal::SeatSwitch(false)]);
    }

    /// The core stalls on a batch: the feed still reads the broker's stream (else the broker
    /// would drop the oldest responses), and what came meanwhile goes as merged batches, the
    /// latest value of each path; nothing is lost.
    #[tokio::test]
    async fn the_stream_is_drained_while_the_core_applies_and_merged() {
        use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
        let kuksa = crate::config::builtin().unwrap().kuksa;
        let c = kuksa.signals.clone();
        let (calls, mut core) = mpsc::channel::<Call>(1);
        let mut feed = Feed {
            decoder: Decoder::new(&c),
            backoff: Backoff::new(&kuksa),
            cfg: kuksa,
            calls,
        };
        let (tx, rx) = mpsc::channel(1);
        let entries = |e: &[(&str, Option<TypedValue>)]| -> HashMap<String, Datapoint> {
            e.iter()
                .map(|(p, v)| (p.to_string(), dp(v.clone())))
                .collect()
        };
        let first = entries(&[(&c.gear, Some(TypedValue::Int32(126)))]);
        let task = tokio::spawn(async move {
            let mut stream = ReceiverStream::new(rx);
            feed.drain(&mut stream, first).await.is_ok()
        });
        let call = core.recv().await.unwrap();
        assert_eq!(
            call.request,
            Request::UpdateSignals(vec![Signal::Gear(Gear::P)])
        );
        // The core holds the first batch; the broker sends on (one response buffered here).
        let on = Some(TypedValue::Bool(true));
        let off = Some(TypedValue::Bool(false));
        let (s0, s1) = (&c.manual_switches[0], &c.manual_switches[1]);
        let changes: Vec<HashMap<String, Datapoint>> = vec![
            entries(&[(s0, on.clone())]),
            entries(&[(&c.speed, Some(TypedValue::Float(1.0)))]),
            entries(&[(&c.speed, Some(TypedValue::Float(2.0)))]),
            entries(&[(s0, off), (s1, on)]),
            entries(&[(&c.gear, Some(TypedValue::Int32(127)))]),
            entries(&[(&c.rear_occupancy, Some(TypedValue::String("EMPTY".into())))]),
        ];
        let n = changes.len();
        let send_all = async {
            for entries in changes {
                tx.send(Ok(SubscribeResponse { entries })).await.unwrap();
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), send_all)
            .await
            .expect("the feed stopped reading while the core applied a batch");
        drop(tx);
        call.reply.send(Ok(crate::core::Reply::Done)).unwrap();
        // The rest, merged: fewer batches than responses, and the end state is the broker's.
        let mut v = crate::core::Vehicle::default();
        let mut batches = 0;
        while let Some(call) = core.recv().await {
            let Request::UpdateSignals(signals) = &call.request else {
                panic!("{:?}", call.request);
            };
            assert!(!signals.contains(&Signal::SpeedKmh(1.0)), "{signals:?}");
            v.apply(signals).unwrap();
            batches += 1;
            call.reply.send(Ok(crate::core::Reply::Done)).unwrap();
        }
        assert!(task.await.unwrap(), "the feed ended on its own");
        assert!(batches < n, "{batches} batches for {n} responses");
        assert_eq!(v.gear, Some(Gear::D));
        assert_eq!(v.speed_kmh, Some(2.0));
        assert!(v.seat_switch, "switch 1 engaged");
        assert!(!v.rear_occupied);
    }

    fn meta(path: &str, ty: DataType, unit: &str) -> Metadata {
        Metadata {
            path: path.into(),
            data_type: ty as i32,
            entry_type: EntryType::Sensor as i32,
            unit: unit.into(),
            ..Default::default()
        }
    }

    #[test]
    fn mismatches_name_the_key_the_path_and_the_problem() {
        let c = cfg();
        let mut found: BTreeMap<String, Metadata> = watched(&c)
            .into_iter()
            .map(|(p, k)| {
                let ty = match k {
                    Kind::Gear => DataType::Int8,
                    Kind::Speed => DataType::Float,
                    Kind::Brake => DataType::Uint8,
                    Kind::DriverSeatOccupancy | Kind::RearOccupancy => DataType::String,
                    _ => DataType::Boolean,
                };
                let unit = if k == Kind::Speed { "km/h" } else { "" };
                (p.clone(), meta(&p, ty, unit))
            })
            .collect();
        assert!(mismatches(&c, &found).is_empty());
        found.insert(c.gear.clone(), meta(&c.gear, DataType::Int16, ""));
        found.insert(c.brake.clone(), meta(&c.brake, DataType::Boolean, ""));
        assert!(
            mismatches(&c, &found).is_empty(),
            "any integer gear, boolean brake"
        );
        found.insert(c.gear.clone(), meta(&c.gear, DataType::String, ""));
        found.insert(c.speed.clone(), meta(&c.speed, DataType::Float, "m/s"));
        found.remove(&c.manual_switches[3]);
        let m = mismatches(&c, &found);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(
            m[0],
            format!(
                "[kuksa.signals] gear: {} is a string at the broker, not an integer (VSS int8)",
                c.gear
            )
        );
        assert!(m[1].contains("speed") && m[1].contains("m/s"), "{m:?}");
        assert_eq!(
            m[2],
            format!(
                "[kuksa.signals] manual_switches: {} is not a signal the broker knows",
                c.manual_switches[3]
            )
        );
    }
}
