//! `driverprofiled-mock-seat`: an out-of-process seat for developers and tests, a VSS
//! *provider* at the KUKSA databroker (`kuksa.val.v2`) for the configured axes.
//!
//! It claims the axes' actuators on a provider stream (`OpenProviderStream`:
//! `ProvideActuationRequest`, then `ProvideSignalRequest` for the same ids, without which the
//! real databroker refuses the stream's `PublishValuesRequest`s), publishes where each axis is,
//! and moves an axis when the broker forwards an `Actuate` (a `BatchActuateStreamRequest`),
//! with the very simulator the in-process mock backend runs ([`Sim`]): same speeds, speed
//! factor and stalls. While an axis moves its value is published about every [`TICK`], and once
//! when it stops.
//!
//! **An Actuate of the value the axis currently reports is a stop**: the daemon stops an axis
//! by actuating its last reported position, and the seat then stops where it really is (a
//! little further than that report) instead of turning back to it. While it moves, a value it
//! reported within the last [`STOP_WINDOW`] counts as well: the stop may cross a newer report.
//!
//! Fault injection and a hand on the switch come from the command line and from stdin, one
//! command per line (see [`parse_control`]). A lost broker stops every axis (nobody could stop
//! them otherwise); the seat reconnects with backoff, claims the actuators again and publishes
//! where it is. It prints `ready` on stdout each time it has claimed the actuators and the
//! broker holds its positions.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::backend::mock::sim::Sim;
use crate::config::{AxisConfig, Config};
use crate::core::{AxisId, BackendCommand, Feedback};
use crate::kuksa::{self as dk, Backoff, proto, value};
use driverprofiled_kuksa::connect::{Address, Client};
use proto::open_provider_stream_request::Action as Req;
use proto::open_provider_stream_response::Action as Resp;
use proto::{DataType, EntryType, ErrorCode, SignalId, signal_id::Signal};

/// How often a moving axis publishes its value (~20 Hz).
pub const TICK: Duration = Duration::from_millis(50);

/// An Actuate of a value the moving axis published this recently is a stop, not a target
/// behind it: the daemon's stop (its last report) may cross a newer report on the way.
pub const STOP_WINDOW: Duration = Duration::from_millis(500);

/// How long to wait for the broker's answer to a claim, or to see the first positions.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

const AFTER_HELP: &str = "\
stdin, one command per line:
  stall AXIS on|off  stall (or release) an axis
  speed F            change the speed factor
  move AXIS POS      a hand move: engage the axis' seat switch signal (if the VSS has it),
                     move to POS at the axis' speed, release the switch
  quit               stop every axis and exit

stdout: `ready` each time the actuators are claimed and the positions published.
Exit codes: 0 quit, 64 usage, 78 bad config or a VSS that does not fit it";

/// The command line.
#[derive(Debug, Clone, PartialEq, clap::Parser)]
#[command(
    name = "driverprofiled-mock-seat",
    version,
    about = "A VSS provider at the KUKSA databroker for the configured axes: claims their \
             actuators, publishes their positions and moves them (at the axes' speeds) when \
             the broker forwards an Actuate. An Actuate of the position an axis reports stops it.",
    after_help = AFTER_HELP,
    // As before clap: a flag given twice takes the last value (repeatable ones add up).
    args_override_self = true
)]
pub struct Options {
    /// The daemon's configuration (default: the built-in one): its [[axis]] list, [kuksa]
    /// address and token_file, [kuksa.signals] manual_switches
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The broker: host:port, http://host:port or unix:/path ([kuksa] address)
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,
    /// A bearer token (JWT) for a broker with authorisation ([kuksa] token_file)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Move F times faster than the configured speeds (0 < F <= 10000)
    #[arg(long, value_name = "F", default_value = "1", value_parser = speed_factor)]
    pub speed_factor: f64,
    /// The axis accepts targets and never moves (repeatable)
    #[arg(long, value_name = "AXIS")]
    pub stall: Vec<String>,
    /// Start the axis at POS instead of its `initial` (repeatable)
    #[arg(long, value_name = "AXIS=POS", value_parser = axis_at)]
    pub at: Vec<(String, f64)>,
}

/// The command line, or clap's error: help and version are errors too (`use_stderr()` false,
/// exit 0), so the caller prints it and picks the exit code.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, clap::Error> {
    use clap::Parser;
    Options::try_parse_from(std::iter::once("driverprofiled-mock-seat".to_string()).chain(args))
}

fn axis_at(v: &str) -> Result<(String, f64), String> {
    let (axis, pos) = v
        .split_once('=')
        .ok_or_else(|| "expected AXIS=POS".to_string())?;
    Ok((axis.to_string(), number(pos)?))
}

fn number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("not a number: {s:?}")),
    }
}

/// A speed factor, as the in-process mock takes it: 0 < F <= 10000.
fn speed_factor(s: &str) -> Result<f64, String> {
    let f = number(s)?;
    if f <= 0.0 || f > 10000.0 {
        return Err(format!("a speed factor is > 0 and <= 10000, not {s}"));
    }
    Ok(f)
}

/// A command on stdin.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    Stall { axis: String, stalled: bool },
    Speed(f64),
    Move { axis: String, position: f64 },
    Quit,
}

/// One line of stdin: `stall AXIS on|off`, `speed F`, `move AXIS POS`, `quit`; `None` for a
/// blank line or a `#` comment.
pub fn parse_control(line: &str) -> Result<Option<Control>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    Ok(Some(match words.as_slice() {
        [] => return Ok(None),
        [w, ..] if w.starts_with('#') => return Ok(None),
        ["stall", axis, on] => Control::Stall {
            axis: axis.to_string(),
            stalled: match *on {
                "on" => true,
                "off" => false,
                _ => return Err(format!("stall AXIS on|off, not {on:?}")),
            },
        },
        ["speed", f] => Control::Speed(speed_factor(f)?),
        ["move", axis, pos] => Control::Move {
            axis: axis.to_string(),
            position: number(pos)?,
        },
        ["quit"] => Control::Quit,
        _ => {
            return Err(format!(
                "unknown command {:?} (stall AXIS on|off, speed F, move AXIS POS, quit)",
                line.trim()
            ));
        }
    }))
}

/// The seat switch an occupant holds to move the axis at `vss` toward larger values
/// (`increase`) or smaller ones, as VSS 6.0 names them next to the axis (`…Position` →
/// `…IsBackwardSwitchEngaged` when moving back, `…Backrest.Recline` →
/// `…Backrest.IsReclineBackwardSwitchEngaged`, …). `None` for an axis VSS has no switch for
/// (the steering wheel).
pub fn switch_for(vss: &str, increase: bool) -> Option<String> {
    let (base, leaf) = vss.rsplit_once('.')?;
    if !base.contains(".Seat.") {
        return None;
    }
    let name = match (leaf, increase) {
        // Larger = further back.
        ("Position", true) => "IsBackwardSwitchEngaged",
        ("Position", false) => "IsForwardSwitchEngaged",
        ("Height", true) => "IsUpSwitchEngaged",
        ("Height", false) => "IsDownSwitchEngaged",
        // Cushion tilt: positive = tilted backwards.
        ("Tilt", true) => "IsTiltBackwardSwitchEngaged",
        ("Tilt", false) => "IsTiltForwardSwitchEngaged",
        // Backrest recline: positive = backwards.
        ("Recline", true) => "IsReclineBackwardSwitchEngaged",
        ("Recline", false) => "IsReclineForwardSwitchEngaged",
        // Headrest angle: positive = forward.
        ("Angle", true) => "IsForwardSwitchEngaged",
        ("Angle", false) => "IsBackwardSwitchEngaged",
        _ => return None,
    };
    Some(format!("{base}.{name}"))
}

/// Why the seat ended.
#[derive(Debug)]
pub enum Fatal {
    /// The config, the command line or the broker's VSS does not fit (exit 78).
    Config(String),
    /// Anything else (exit 1).
    Failed(String),
}

/// Check the command line against the config: `--stall` and `--at` name configured axes,
/// `--at` within the axis' range. The axes as the simulator starts them.
pub fn axes_at(cfg: &Config, opts: &Options) -> Result<Vec<AxisConfig>, String> {
    let mut axes = cfg.axes.clone();
    for name in &opts.stall {
        if !axes.iter().any(|a| &a.name == name) {
            return Err(format!("--stall {name}: no such axis"));
        }
    }
    for (name, pos) in &opts.at {
        let a = axes
            .iter_mut()
            .find(|a| &a.name == name)
            .ok_or_else(|| format!("--at {name}: no such axis"))?;
        if *pos < a.min || *pos > a.max {
            return Err(format!(
                "--at {name}={pos}: outside the axis' range {}..{}",
                a.min, a.max
            ));
        }
        a.initial = *pos;
    }
    Ok(axes)
}

/// One axis as the broker knows it.
#[derive(Debug, Clone)]
struct AxisSignal {
    id: i32,
    ty: DataType,
}

struct Seat {
    cfg: Config,
    axes: Vec<AxisConfig>,
    sim: Sim,
    /// When the simulation last advanced.
    last: Instant,
    /// Per axis (index as in `axes`): its signal at the current broker, once known.
    signals: Vec<Option<AxisSignal>>,
    /// Per axis: the value last published at the current broker.
    published: Vec<Option<proto::Value>>,
    /// Per axis: the values published during the current motion in the last [`STOP_WINDOW`].
    recent: Vec<Vec<(Instant, proto::Value)>>,
    /// The boolean switch signals the broker has (of `[kuksa.signals] manual_switches`).
    switches: BTreeSet<String>,
    /// Axes in a hand move, and the switch held for it (if any).
    hands: BTreeMap<usize, Option<String>>,
    /// Switches published engaged and not released yet (also across a lost broker).
    engaged: BTreeSet<String>,
    request_id: u32,
}

/// How a session with the broker ended.
enum End {
    Quit,
    /// Lost or unreachable; `claimed` if it got as far as claiming the actuators.
    Lost {
        why: String,
        claimed: bool,
    },
}

/// Run the seat until `quit` (or a fatal mismatch).
pub async fn run(cfg: Config, opts: Options) -> Result<(), Fatal> {
    let mut cfg = cfg;
    if let Some(a) = &opts.address {
        cfg.kuksa.address = a.clone();
    }
    if let Some(t) = &opts.token_file {
        cfg.kuksa.token_file = Some(t.clone());
    }
    // Refuse a bad address now rather than retrying it forever.
    cfg.kuksa
        .address
        .parse::<Address>()
        .map_err(|e| Fatal::Config(format!("[kuksa] address: {e}")))?;
    let axes = axes_at(&cfg, &opts).map_err(Fatal::Config)?;
    let mut sim = Sim::new(AxisId::all(&axes));
    sim.set_speed_factor(opts.speed_factor);
    for a in &opts.stall {
        if let Some(i) = axes.iter().position(|x| x.name == *a) {
            sim.set_stall(AxisId::new(i), true);
        }
    }
    let n = axes.len();
    let mut seat = Seat {
        cfg,
        axes,
        sim,
        last: Instant::now(),
        signals: vec![None; n],
        published: vec![None; n],
        recent: vec![Vec::new(); n],
        switches: BTreeSet::new(),
        hands: BTreeMap::new(),
        engaged: BTreeSet::new(),
        request_id: 0,
    };
    let mut ctl = stdin_commands();
    let mut backoff = Backoff::new(&seat.cfg.kuksa);
    loop {
        match seat.session(&mut ctl).await? {
            End::Quit => return Ok(()),
            End::Lost { why, claimed } => {
                if claimed {
                    backoff.reset();
                    tracing::warn!("broker lost: {why}");
                } else {
                    tracing::warn!("no broker: {why}");
                }
                seat.lost();
            }
        }
        let delay = backoff.next_delay();
        tracing::info!(
            "reconnecting to the broker at {} in {} ms",
            seat.cfg.kuksa.address,
            delay.as_millis()
        );
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                c = ctl.recv() => match c {
                    Some(Control::Quit) => return Ok(()),
                    Some(c) => seat.offline_control(c),
                    None => {
                        tokio::time::sleep_until(until).await;
                        break;
                    }
                },
            }
        }
    }
}

/// Commands from stdin, read on a thread of their own (stdin blocks). At end of input the
/// channel closes and the seat goes on without commands.
fn stdin_commands() -> mpsc::UnboundedReceiver<Control> {
    let (tx, rx) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { return };
                match parse_control(&line) {
                    Ok(Some(c)) => {
                        if tx.send(c).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!("stdin: {e}"),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot read commands from stdin: {e}");
    }
    rx
}

/// Print `ready` on stdout (tests and scripts wait for it).
fn say_ready() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}

impl Seat {
    fn index(&self, axis: &str) -> Option<usize> {
        self.axes.iter().position(|a| a.name == axis)
    }

    /// The broker is gone: stop every axis (nobody could stop them otherwise) and forget what
    /// it held.
    fn lost(&mut self) {
        let since = self.last.elapsed().as_secs_f64();
        for fb in self.sim.stop_all(since) {
            if let Feedback::Position { axis, position } = fb {
                let name = &self.axes[axis.index()].name;
                tracing::warn!(axis = %name, position, "axis stopped: the broker is gone");
            }
        }
        self.last = Instant::now();
        self.hands.clear();
        self.published.iter_mut().for_each(|p| *p = None);
        self.recent.iter_mut().for_each(Vec::clear);
        self.signals.iter_mut().for_each(|s| *s = None);
    }

    /// A command while no broker is connected: no hand moves (the switch could not be
    /// published).
    fn offline_control(&mut self, c: Control) {
        match c {
            Control::Stall { axis, stalled } => self.stall(&axis, stalled),
            Control::Speed(f) => self.sim.set_speed_factor(f),
            Control::Move { axis, .. } => {
                tracing::warn!("move {axis}: refused, no broker connected")
            }
            Control::Quit => {}
        }
    }

    fn stall(&mut self, axis: &str, stalled: bool) {
        let Some(i) = self.index(axis) else {
            tracing::warn!("stall {axis}: no such axis");
            return;
        };
        tracing::info!(axis, stalled, "stall");
        self.sim.set_stall(AxisId::new(i), stalled);
    }

    /// Read the signals' metadata: the axes must be numeric actuators (else [`Fatal::Config`]);
    /// a switch that is missing or not a boolean is left out.
    async fn learn(&mut self, client: &mut Client) -> Result<(), LinkError> {
        let axis_paths: Vec<&str> = self.axes.iter().map(|a| a.vss.as_str()).collect();
        let meta = dk::metadata(client, &axis_paths)
            .await
            .map_err(|s| LinkError::Lost(format!("ListMetadata: {}", dk::status_message(&s))))?;
        for (i, a) in self.axes.iter().enumerate() {
            let m = meta.get(&a.vss).ok_or_else(|| {
                LinkError::Fatal(Fatal::Config(format!(
                    "axis {}: the broker has no signal {}",
                    a.name, a.vss
                )))
            })?;
            let ty = DataType::try_from(m.data_type).unwrap_or(DataType::Unspecified);
            if m.entry_type != EntryType::Actuator as i32 {
                return Err(LinkError::Fatal(Fatal::Config(format!(
                    "axis {}: {} is not an actuator",
                    a.name, a.vss
                ))));
            }
            if !value::is_numeric(ty) {
                return Err(LinkError::Fatal(Fatal::Config(format!(
                    "axis {}: {} is a {}, not a number",
                    a.name,
                    a.vss,
                    ty.as_str_name()
                ))));
            }
            self.signals[i] = Some(AxisSignal { id: m.id, ty });
        }
        let wanted: BTreeSet<String> = self
            .axes
            .iter()
            .flat_map(|a| [switch_for(&a.vss, true), switch_for(&a.vss, false)])
            .flatten()
            .filter(|s| self.cfg.kuksa.signals.manual_switches.contains(s))
            .collect();
        let paths: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let meta = dk::metadata(client, &paths)
            .await
            .map_err(|s| LinkError::Lost(format!("ListMetadata: {}", dk::status_message(&s))))?;
        self.switches.clear();
        for p in wanted {
            match meta.get(&p) {
                Some(m) if m.data_type == DataType::Boolean as i32 => {
                    self.switches.insert(p);
                }
                Some(_) => tracing::warn!("{p} is not a boolean: hand moves will not engage it"),
                None => tracing::warn!("the broker has no {p}: hand moves will not engage it"),
            }
        }
        Ok(())
    }

    /// One connection to the broker, from connecting to losing it (or `quit`).
    async fn session(&mut self, ctl: &mut mpsc::UnboundedReceiver<Control>) -> Result<End, Fatal> {
        match self.serve(ctl).await {
            Ok(()) => Ok(End::Quit),
            Err(LinkError::Fatal(f)) => Err(f),
            Err(LinkError::Lost(why)) => Ok(End::Lost {
                why,
                claimed: false,
            }),
            Err(LinkError::LostClaimed(why)) => Ok(End::Lost { why, claimed: true }),
        }
    }

    async fn serve(&mut self, ctl: &mut mpsc::UnboundedReceiver<Control>) -> Result<(), LinkError> {
        let mut client = dk::connect(&self.cfg.kuksa)
            .await
            .map_err(|e| LinkError::Lost(e.to_string()))?;
        tracing::info!("connected to the broker at {}", self.cfg.kuksa.address);
        self.learn(&mut client).await?;

        let (tx, mut rx) = mpsc::unbounded_channel::<proto::OpenProviderStreamRequest>();
        let outbound = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let link = Link { tx };
        let paths: Vec<SignalId> = self
            .axes
            .iter()
            .map(|a| SignalId {
                signal: Some(Signal::Path(a.vss.clone())),
            })
            .collect();
        link.send(Req::ProvideActuationRequest(
            proto::ProvideActuationRequest {
                actuator_identifiers: paths,
            },
        ))?;
        let mut inbound = client
            .open_provider_stream(outbound)
            .await
            .map_err(|s| {
                LinkError::Lost(format!("OpenProviderStream: {}", dk::status_message(&s)))
            })?
            .into_inner();
        self.expect(&mut inbound, "ProvideActuationResponse", |r| {
            matches!(r, Resp::ProvideActuationResponse(_))
        })
        .await?;
        // Registering the ids as provided signals too: the real databroker refuses a
        // PublishValuesRequest on a stream that has not (ABORTED).
        let intervals = self
            .signals
            .iter()
            .flatten()
            .map(|s| {
                (
                    s.id,
                    proto::SampleInterval {
                        interval_ms: TICK.as_millis() as u32,
                    },
                )
            })
            .collect();
        link.send(Req::ProvideSignalRequest(proto::ProvideSignalRequest {
            signals_sample_intervals: intervals,
        }))?;
        self.expect(&mut inbound, "ProvideSignalResponse", |r| {
            matches!(r, Resp::ProvideSignalResponse(_))
        })
        .await?;
        tracing::info!("claimed {} actuators", self.axes.len());

        // Where every axis is; and a switch left engaged by a lost broker is released.
        let all: Vec<usize> = (0..self.axes.len()).collect();
        self.publish(&link, &all, true)?;
        let stale: Vec<String> = std::mem::take(&mut self.engaged).into_iter().collect();
        for s in stale {
            self.set_switch(&mut client, &s, false).await?;
        }
        self.confirm(&mut client).await;
        say_ready();
        self.serve_claimed(&mut client, &link, &mut inbound, ctl)
            .await
            .map_err(|e| match e {
                LinkError::Lost(why) => LinkError::LostClaimed(why),
                e => e,
            })
    }

    /// Wait until the broker says `what` (a [`Resp`] `is` accepts); a broker that closes the
    /// stream instead (NOT_FOUND, ALREADY_EXISTS, …) or is silent loses the session.
    async fn expect(
        &mut self,
        inbound: &mut tonic::Streaming<proto::OpenProviderStreamResponse>,
        what: &str,
        is: impl Fn(&Resp) -> bool,
    ) -> Result<(), LinkError> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let msg = tokio::time::timeout_at(deadline, inbound.message())
                .await
                .map_err(|_| LinkError::Lost(format!("no {what} from the broker")))?;
            match msg {
                Ok(Some(m)) => match m.action {
                    Some(r) if is(&r) => return Ok(()),
                    other => tracing::debug!("before {what}: {other:?}"),
                },
                Ok(None) => {
                    return Err(LinkError::Lost(format!(
                        "the broker closed the provider stream before {what}"
                    )));
                }
                Err(s) => {
                    return Err(LinkError::Lost(format!(
                        "the broker refused the claim: {}",
                        dk::status_message(&s)
                    )));
                }
            }
        }
    }

    /// Wait (bounded) until the broker holds the published positions, so that `ready` means
    /// a subscriber sees them. Values on the provider stream are not acknowledged.
    async fn confirm(&self, client: &mut Client) {
        let want: BTreeMap<String, f64> = self
            .axes
            .iter()
            .zip(&self.published)
            .filter_map(|(a, p)| Some((a.vss.clone(), value::to_f64(p.as_ref()?)?)))
            .collect();
        let req = proto::SubscribeRequest {
            signal_paths: want.keys().cloned().collect(),
            buffer_size: 0,
            filter: None,
        };
        let seen = async {
            let mut stream = client
                .subscribe(req)
                .await
                .map_err(|s| dk::status_message(&s))?
                .into_inner();
            let mut have: BTreeMap<String, f64> = BTreeMap::new();
            while have != want {
                let Some(resp) = stream.message().await.map_err(|s| dk::status_message(&s))? else {
                    return Err("the subscription ended".to_string());
                };
                for (path, dp) in resp.entries {
                    match dp.value.as_ref().and_then(value::to_f64) {
                        Some(x) => have.insert(path, x),
                        None => have.remove(&path),
                    };
                }
            }
            Ok::<(), String>(())
        };
        match tokio::time::timeout(ANSWER_TIMEOUT, seen).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot check the published positions: {e}"),
            Err(_) => tracing::warn!("the broker does not show the published positions yet"),
        }
    }

    async fn serve_claimed(
        &mut self,
        client: &mut Client,
        link: &Link,
        inbound: &mut tonic::Streaming<proto::OpenProviderStreamResponse>,
        ctl: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), LinkError> {
        let mut ctl_open = true;
        loop {
            let moving = self.sim.is_moving();
            let tick = tokio::time::Instant::from_std(self.last + TICK);
            tokio::select! {
                m = inbound.message() => match m {
                    Ok(Some(m)) => self.on_broker(m, link)?,
                    Ok(None) => return Err(LinkError::Lost("the broker ended the provider stream".into())),
                    Err(s) => return Err(LinkError::Lost(dk::status_message(&s))),
                },
                _ = tokio::time::sleep_until(tick), if moving => {
                    self.step(link)?;
                    self.release_hands(client, link).await?;
                }
                c = ctl.recv(), if ctl_open => match c {
                    Some(Control::Quit) => {
                        self.quit(client, link).await;
                        return Ok(());
                    }
                    Some(c) => self.control(c, client, link).await?,
                    None => ctl_open = false,
                },
            }
        }
    }

    /// Let the time since the last step pass; publish the axes that moved.
    fn step(&mut self, link: &Link) -> Result<(), LinkError> {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        let moved: Vec<(usize, bool)> = self
            .sim
            .step(dt)
            .into_iter()
            .filter_map(|fb| match fb {
                Feedback::Position { axis, .. } => {
                    // Arrived: published even if its rounded value did not change.
                    Some((axis.index(), !self.sim.is_commanded(axis)))
                }
                _ => None,
            })
            .collect();
        let moving: Vec<usize> = moved.iter().filter(|m| !m.1).map(|m| m.0).collect();
        let arrived: Vec<usize> = moved.iter().filter(|m| m.1).map(|m| m.0).collect();
        for &i in &arrived {
            tracing::info!(axis = %self.axes[i].name, position = self.pos(i), "arrived");
        }
        self.publish(link, &moving, false)?;
        self.publish(link, &arrived, true)
    }

    fn pos(&self, i: usize) -> f64 {
        self.sim.position(AxisId::new(i)).unwrap_or(f64::NAN)
    }

    /// Publish where the axes `which` are on the provider stream: each converted to its
    /// signal's type; unless `always`, only those whose value changed.
    fn publish(&mut self, link: &Link, which: &[usize], always: bool) -> Result<(), LinkError> {
        let mut data_points = std::collections::HashMap::new();
        for &i in which {
            let Some(sig) = self.signals[i].clone() else {
                continue;
            };
            let v = match value::from_f64(self.pos(i), sig.ty) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(axis = %self.axes[i].name, "cannot publish: {e}");
                    continue;
                }
            };
            if !always && self.published[i].as_ref() == Some(&v) {
                continue;
            }
            self.published[i] = Some(v.clone());
            let now = Instant::now();
            self.recent[i].retain(|(t, _)| now.duration_since(*t) < STOP_WINDOW);
            self.recent[i].push((now, v.clone()));
            data_points.insert(
                sig.id,
                proto::Datapoint {
                    timestamp: None,
                    value: Some(v),
                },
            );
        }
        if data_points.is_empty() {
            return Ok(());
        }
        self.request_id = self.request_id.wrapping_add(1);
        link.send(Req::PublishValuesRequest(proto::PublishValuesRequest {
            request_id: self.request_id,
            data_points,
        }))
    }

    /// A message from the broker on the provider stream.
    fn on_broker(
        &mut self,
        m: proto::OpenProviderStreamResponse,
        link: &Link,
    ) -> Result<(), LinkError> {
        match m.action {
            Some(Resp::BatchActuateStreamRequest(b)) => {
                for req in b.actuate_requests {
                    let id = req.signal_id.clone();
                    let (code, message) = self.actuate(req, link)?;
                    if code != ErrorCode::Ok {
                        tracing::warn!("actuate refused: {message}");
                    }
                    link.send(Req::BatchActuateStreamResponse(
                        proto::BatchActuateStreamResponse {
                            signal_id: id,
                            error: Some(proto::Error {
                                code: code as i32,
                                message,
                            }),
                        },
                    ))?;
                }
                Ok(())
            }
            Some(Resp::GetProviderValueRequest(g)) => {
                let entries = g
                    .signal_ids
                    .iter()
                    .filter_map(|id| {
                        let i = self
                            .signals
                            .iter()
                            .position(|s| s.as_ref().is_some_and(|s| s.id == *id))?;
                        Some((
                            *id,
                            proto::Datapoint {
                                timestamp: None,
                                value: self.published[i].clone(),
                            },
                        ))
                    })
                    .collect();
                link.send(Req::GetProviderValueResponse(
                    proto::GetProviderValueResponse {
                        request_id: g.request_id,
                        entries,
                    },
                ))
            }
            Some(Resp::PublishValuesResponse(p)) => {
                for (id, e) in p.status {
                    tracing::warn!(
                        id,
                        code = e.code,
                        "the broker refused a value: {}",
                        e.message
                    );
                }
                Ok(())
            }
            // Filters: this seat publishes every change anyway (at most every TICK).
            other => {
                tracing::debug!("from the broker: {other:?}");
                Ok(())
            }
        }
    }

    /// An actuation the broker forwards: its answer (code and message).
    fn actuate(
        &mut self,
        req: proto::ActuateRequest,
        link: &Link,
    ) -> Result<(ErrorCode, String), LinkError> {
        let i = match req.signal_id.and_then(|s| s.signal) {
            Some(Signal::Id(id)) => self
                .signals
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.id == id)),
            Some(Signal::Path(p)) => self.axes.iter().position(|a| a.vss == p),
            None => None,
        };
        let Some(i) = i else {
            return Ok((ErrorCode::NotFound, "not an actuator of this seat".into()));
        };
        let name = self.axes[i].name.clone();
        let Some(target) = req.value.as_ref().and_then(value::to_f64) else {
            return Ok((
                ErrorCode::InvalidArgument,
                format!("{}: the value is not a number", self.axes[i].vss),
            ));
        };
        // The value it reports: a stop.
        // A stop: the value it reports; or, while it moves, one it reported a moment ago (the
        // daemon's stop may have crossed a newer report on the way).
        let is_stop = req.value.is_some()
            && (req.value == self.published[i]
                || (self.sim.is_commanded(AxisId::new(i))
                    && self.recent[i]
                        .iter()
                        .any(|(t, v)| t.elapsed() < STOP_WINDOW && req.value.as_ref() == Some(v))));
        if self.hands.contains_key(&i) {
            if is_stop {
                return Ok((ErrorCode::Ok, String::new()));
            }
            return Ok((
                ErrorCode::PermissionDenied,
                format!("{name}: the occupant is moving it by hand"),
            ));
        }
        let now = Instant::now();
        if !self.sim.is_moving() {
            self.last = now;
        }
        let since = now.duration_since(self.last).as_secs_f64();
        if is_stop {
            let was = self.sim.is_commanded(AxisId::new(i));
            self.sim.command(
                &BackendCommand::Stop {
                    axis: AxisId::new(i),
                },
                since,
            );
            if was {
                tracing::info!(axis = %name, position = self.pos(i), "stop");
            }
            self.publish(link, &[i], true)?;
        } else {
            tracing::info!(axis = %name, target, "move");
            self.recent[i].clear();
            let axis = AxisId::new(i);
            self.sim
                .command(&BackendCommand::Move { axis, target }, since);
        }
        Ok((ErrorCode::Ok, String::new()))
    }

    async fn control(
        &mut self,
        c: Control,
        client: &mut Client,
        link: &Link,
    ) -> Result<(), LinkError> {
        match c {
            Control::Stall { axis, stalled } => self.stall(&axis, stalled),
            Control::Speed(f) => {
                // The travel so far at the old speed.
                if self.sim.is_moving() {
                    self.step(link)?;
                }
                tracing::info!(factor = f, "speed factor");
                self.sim.set_speed_factor(f);
            }
            Control::Move { axis, position } => self.hand_move(&axis, position, client).await?,
            Control::Quit => {}
        }
        Ok(())
    }

    /// The occupant holds the axis' switch: engage it at the broker, then move.
    async fn hand_move(
        &mut self,
        axis: &str,
        position: f64,
        client: &mut Client,
    ) -> Result<(), LinkError> {
        let Some(i) = self.index(axis) else {
            tracing::warn!("move {axis}: no such axis");
            return Ok(());
        };
        let a = &self.axes[i];
        let target = position.clamp(a.min, a.max);
        let from = self.pos(i);
        let switch = switch_for(&a.vss, target > from).filter(|s| self.switches.contains(s));
        if switch.is_none() {
            tracing::warn!("move {axis}: no seat switch signal for it; moving without one");
        }
        // A switch held for another direction of the same axis is released first.
        if let Some(Some(old)) = self.hands.remove(&i)
            && Some(&old) != switch.as_ref()
        {
            self.set_switch(client, &old, false).await?;
        }
        if let Some(s) = &switch {
            self.set_switch(client, s, true).await?;
        }
        tracing::info!(axis, target, "hand move");
        let now = Instant::now();
        if !self.sim.is_moving() {
            self.last = now;
        }
        let since = now.duration_since(self.last).as_secs_f64();
        self.sim.command(
            &BackendCommand::Move {
                axis: AxisId::new(i),
                target,
            },
            since,
        );
        self.hands.insert(i, switch);
        Ok(())
    }

    /// Release the switches of the hand moves that arrived.
    async fn release_hands(&mut self, client: &mut Client, link: &Link) -> Result<(), LinkError> {
        let done: Vec<usize> = self
            .hands
            .keys()
            .copied()
            .filter(|&i| !self.sim.is_commanded(AxisId::new(i)))
            .collect();
        for i in done {
            self.publish(link, &[i], true)?;
            if let Some(Some(s)) = self.hands.remove(&i) {
                self.set_switch(client, &s, false).await?;
            }
        }
        Ok(())
    }

    /// Publish a switch (PublishValue: the switches are not this provider's actuators).
    async fn set_switch(
        &mut self,
        client: &mut Client,
        path: &str,
        engaged: bool,
    ) -> Result<(), LinkError> {
        let req = proto::PublishValueRequest {
            signal_id: Some(SignalId {
                signal: Some(Signal::Path(path.to_string())),
            }),
            data_point: Some(proto::Datapoint {
                timestamp: None,
                value: Some(proto::Value {
                    typed_value: Some(proto::value::TypedValue::Bool(engaged)),
                }),
            }),
        };
        if engaged {
            self.engaged.insert(path.to_string());
        }
        match client.publish_value(req).await {
            Ok(_) => {
                if !engaged {
                    self.engaged.remove(path);
                }
                tracing::info!(switch = path, engaged, "switch");
                Ok(())
            }
            Err(s) if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Cancelled) => {
                Err(LinkError::Lost(dk::status_message(&s)))
            }
            Err(s) => {
                tracing::error!(
                    switch = path,
                    "cannot publish the switch: {}",
                    dk::status_message(&s)
                );
                Ok(())
            }
        }
    }

    /// `quit`: stop every axis, say where, release the switches.
    async fn quit(&mut self, client: &mut Client, link: &Link) {
        let since = self.last.elapsed().as_secs_f64();
        let stopped: Vec<usize> = self
            .sim
            .stop_all(since)
            .into_iter()
            .filter_map(|fb| match fb {
                Feedback::Position { axis, .. } => Some(axis.index()),
                _ => None,
            })
            .collect();
        let _ = self.publish(link, &stopped, true);
        self.hands.clear();
        let held: Vec<String> = self.engaged.iter().cloned().collect();
        for s in held {
            let _ = self.set_switch(client, &s, false).await;
        }
        tracing::info!("quit");
    }
}

/// The provider stream's sending side.
struct Link {
    tx: mpsc::UnboundedSender<proto::OpenProviderStreamRequest>,
}

impl Link {
    fn send(&self, action: Req) -> Result<(), LinkError> {
        self.tx
            .send(proto::OpenProviderStreamRequest {
                action: Some(action),
            })
            .map_err(|_| LinkError::Lost("the provider stream is closed".into()))
    }
}

enum LinkError {
    Fatal(Fatal),
    /// Before the actuators were claimed.
    Lost(String),
    /// After.
    LostClaimed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_follow_vss_6() {
        let s = "Vehicle.Cabin.Seat.Row1.DriverSide";
        assert_eq!(
            switch_for(&format!("{s}.Position"), true),
            Some(format!("{s}.IsBackwardSwitchEngaged"))
        );
        assert_eq!(
            switch_for(&format!("{s}.Backrest.Recline"), false),
            Some(format!("{s}.Backrest.IsReclineForwardSwitchEngaged"))
        );
        assert_eq!(
            switch_for(&format!("{s}.Headrest.Angle"), true),
            Some(format!("{s}.Headrest.IsForwardSwitchEngaged"))
        );
        assert_eq!(switch_for("Vehicle.Chassis.SteeringWheel.Tilt", true), None);
        // Every switch it names for the default axes is one the daemon watches.
        let cfg = crate::config::builtin().unwrap();
        for a in &cfg.axes {
            for up in [true, false] {
                if let Some(sw) = switch_for(&a.vss, up) {
                    assert!(cfg.kuksa.signals.manual_switches.contains(&sw), "{sw}");
                }
            }
        }
    }

    #[test]
    fn command_lines() {
        let args = |s: &str| parse_args(s.split_whitespace().map(String::from));
        let Ok(o) =
            args("--address unix:/tmp/s --stall seat_tilt --at seat_position=100 --speed-factor=4")
        else {
            panic!()
        };
        assert_eq!(o.address.as_deref(), Some("unix:/tmp/s"));
        assert_eq!(o.stall, ["seat_tilt"]);
        assert_eq!(o.at, [("seat_position".to_string(), 100.0)]);
        assert_eq!(o.speed_factor, 4.0);
        assert!(args("--speed-factor 0").is_err());
        assert!(args("--at seat_position").is_err());
        assert!(args("--bogus").is_err());
        let cfg = crate::config::builtin().unwrap();
        assert!(axes_at(&cfg, &o).is_ok());
        assert_eq!(args("").map(|o| o.speed_factor).ok(), Some(1.0));
        let two = args("--stall seat_tilt --stall seat_height --at a=1 --at b=2");
        assert_eq!(two.as_ref().map(|o| o.stall.len()).ok(), Some(2));
        assert_eq!(two.map(|o| o.at.len()).ok(), Some(2));
        let Ok(o) = args("--at seat_position=1000") else {
            panic!()
        };
        assert!(axes_at(&cfg, &o).is_err());
        assert_eq!(parse_control("  "), Ok(None));
        assert_eq!(
            parse_control("stall seat_tilt on"),
            Ok(Some(Control::Stall {
                axis: "seat_tilt".into(),
                stalled: true
            }))
        );
        assert_eq!(
            parse_control("move seat_position 200"),
            Ok(Some(Control::Move {
                axis: "seat_position".into(),
                position: 200.0
            }))
        );
        assert_eq!(parse_control("quit"), Ok(Some(Control::Quit)));
        assert!(parse_control("stall seat_tilt maybe").is_err());
        assert!(parse_control("dance").is_err());
    }
}
