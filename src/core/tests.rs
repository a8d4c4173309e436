//! Unit tests of the core on a fake clock: no runtime, no bus.

use super::*;
use crate::backend::mock::sim;
use crate::config::{self, Config};
use view::AxisView;

/// A core whose axes are at the simulator's starting positions.
fn core_with(cfg: Arc<Config>) -> Core {
    let known = sim::Sim::new(&cfg.axes)
        .positions()
        .map(|(a, p)| (a.to_string(), p))
        .collect();
    Core::new(cfg, Store::default(), &known, "sim".into(), "test".into())
}

fn core() -> Core {
    core_with(Arc::new(config::builtin().unwrap()))
}

/// What the bus shows of `axis`.
fn shown(c: &Core, axis: &str) -> AxisView {
    let i = c.axes.index(axis).unwrap();
    c.view().axes[i].clone()
}

fn park(c: &mut Core) {
    let r = c.request(
        Request::UpdateSignals(vec![Signal::Gear(Gear::P), Signal::SpeedKmh(0.0)]),
        0,
        &mut NoStorage,
    );
    assert_eq!(r, Ok(Reply::Done));
}

fn create(c: &mut Core, name: &str) -> String {
    match c.request(
        Request::CreateProfile { name: name.into() },
        0,
        &mut NoStorage,
    ) {
        Ok(Reply::Created(id)) => id,
        other => panic!("{other:?}"),
    }
}

fn moves(effects: &[Effect]) -> Vec<(String, f64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Backend(BackendCommand::Move { axis, target }) => Some((axis.clone(), *target)),
            _ => None,
        })
        .collect()
}

#[test]
fn recall_is_interlocked_until_parked_and_still() {
    let mut c = core();
    let id = create(&mut c, "Anna");
    let r = c.request(Request::SelectProfile { id: id.clone() }, 0, &mut NoStorage);
    assert!(matches!(r, Err(Error::Interlocked(_))), "{r:?}");
    assert!(c.take_effects().is_empty());
    assert_eq!(c.store().active, None);
    park(&mut c);
    let r = c.request(
        Request::UpdateSignals(vec![Signal::SpeedKmh(3.0)]),
        0,
        &mut NoStorage,
    );
    assert_eq!(r, Ok(Reply::Done));
    let r = c.request(Request::SelectProfile { id }, 0, &mut NoStorage);
    assert!(matches!(r, Err(Error::Interlocked(_))), "{r:?}");
}

#[test]
fn recall_moves_axes_and_completes_on_arrival() {
    let mut c = core();
    let id = create(&mut c, "Anna");
    c.request(
        Request::SetPositions {
            id: id.clone(),
            positions: vec![("seat_position".into(), 200.0), ("wheel_tilt".into(), 80.0)],
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    park(&mut c);
    c.request(
        Request::SelectProfile { id: id.clone() },
        10,
        &mut NoStorage,
    )
    .unwrap();
    let fx = c.take_effects();
    let mut m = moves(&fx);
    m.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        m,
        vec![("seat_position".into(), 200.0), ("wheel_tilt".into(), 80.0)]
    );
    assert!(matches!(
        fx[0],
        Effect::MotionStarted {
            reason: Reason::Recall,
            ..
        }
    ));
    assert!(c.is_moving());
    c.feedback(
        Feedback::Position {
            axis: "seat_position".into(),
            position: 200.0,
        },
        50,
    );
    assert!(c.is_moving());
    c.feedback(
        Feedback::Position {
            axis: "wheel_tilt".into(),
            position: 80.0,
        },
        60,
    );
    assert!(!c.is_moving());
    assert_eq!(
        c.take_effects().last(),
        Some(&Effect::MotionFinished {
            reason: Reason::Recall,
            outcome: Outcome::Completed
        })
    );
    assert_eq!(shown(&c, "seat_position").position, Some(200.0));
}

#[test]
fn leaving_park_halts_every_axis_in_the_same_step() {
    let mut c = core();
    let id = create(&mut c, "Anna");
    c.request(
        Request::SetPositions {
            id: id.clone(),
            positions: vec![("seat_position".into(), 10.0)],
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    park(&mut c);
    c.request(Request::SelectProfile { id }, 0, &mut NoStorage)
        .unwrap();
    c.take_effects();
    c.request(
        Request::UpdateSignals(vec![Signal::Gear(Gear::D)]),
        20,
        &mut NoStorage,
    )
    .unwrap();
    let fx = c.take_effects();
    assert!(fx.contains(&Effect::Backend(BackendCommand::Stop {
        axis: "seat_position".into()
    })));
    assert!(fx.contains(&Effect::MotionFinished {
        reason: Reason::Recall,
        outcome: Outcome::Interlocked
    }));
    assert!(!c.is_moving());
}

#[test]
fn stall_is_detected_on_the_fake_clock_and_cleared_by_movement() {
    let mut c = core();
    park(&mut c);
    c.request(
        Request::MoveTo {
            axis: "seat_position".into(),
            target: 20.0,
        },
        1000,
        &mut NoStorage,
    )
    .unwrap();
    c.take_effects();
    // The axis never moves: the stall deadline is 200 ms after the command.
    assert_eq!(c.next_deadline(), Some(1200));
    c.tick(1199, &mut NoStorage);
    assert!(c.is_moving());
    c.tick(1200, &mut NoStorage);
    assert!(!c.is_moving());
    let v = shown(&c, "seat_position");
    assert!(v.fault.starts_with("stalled at 130 mm"), "{v:?}");
    assert!(c.take_effects().contains(&Effect::MotionFinished {
        reason: Reason::Manual,
        outcome: Outcome::Fault
    }));
    // Idle again: no timer at all.
    assert_eq!(c.next_deadline(), None);
    // A manual move tries again and clears the fault once the axis moves.
    c.request(
        Request::MoveTo {
            axis: "seat_position".into(),
            target: 20.0,
        },
        2000,
        &mut NoStorage,
    )
    .unwrap();
    c.feedback(
        Feedback::Position {
            axis: "seat_position".into(),
            position: 120.0,
        },
        2050,
    );
    assert_eq!(shown(&c, "seat_position").fault, "");
}

#[test]
fn positions_are_published_at_most_every_100ms_while_moving() {
    let mut c = core();
    park(&mut c);
    c.request(
        Request::MoveTo {
            axis: "seat_position".into(),
            target: 0.0,
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    c.feedback(
        Feedback::Position {
            axis: "seat_position".into(),
            position: 129.0,
        },
        10,
    );
    assert_eq!(shown(&c, "seat_position").position, Some(129.0));
    c.feedback(
        Feedback::Position {
            axis: "seat_position".into(),
            position: 128.0,
        },
        50,
    );
    assert_eq!(shown(&c, "seat_position").position, Some(129.0));
    assert_eq!(c.next_deadline(), Some(110));
    c.tick(110, &mut NoStorage);
    assert_eq!(shown(&c, "seat_position").position, Some(128.0));
}

#[test]
fn failed_save_changes_nothing() {
    struct Broken;
    impl Storage for Broken {
        fn save(&mut self, _: &Store) -> Result<(), String> {
            Err("disk full".into())
        }
    }
    let mut c = core();
    let r = c.request(
        Request::CreateProfile {
            name: "Anna".into(),
        },
        0,
        &mut Broken,
    );
    assert!(matches!(r, Err(Error::Failed(_))), "{r:?}");
    assert!(c.store().profiles.is_empty());
    assert_eq!(c.store().next_id, 1);
}

#[test]
fn bad_signal_batch_applies_nothing() {
    let mut c = core();
    let r = c.request(
        Request::UpdateSignals(vec![Signal::Gear(Gear::P), Signal::SpeedKmh(f64::NAN)]),
        0,
        &mut NoStorage,
    );
    assert!(matches!(r, Err(Error::InvalidArgs(_))));
    assert_eq!(c.vehicle().gear, None);
}

// ---------------------------------------------------------------------------------------
// The motion engine against a simulated backend, on a fake clock.

/// The shared actuator simulator as the core's backend, on the fake clock.
struct Sim(sim::Sim);

impl Sim {
    fn new(cfg: &Config) -> Sim {
        Sim(sim::Sim::new(&cfg.axes))
    }

    /// Carry out the core's commands; returns how many moves were commanded.
    fn apply(&mut self, effects: &[Effect]) -> usize {
        let mut moves = 0;
        for e in effects {
            if let Effect::Backend(cmd) = e {
                moves += usize::from(matches!(cmd, BackendCommand::Move { .. }));
                // A stop at once after a step reports the position the core already has.
                self.0.command(cmd, 0.0);
            }
        }
        moves
    }

    fn running(&self) -> usize {
        self.0.running()
    }

    /// Advance `dt` ms to `now`, reporting every axis that moved or arrived.
    fn step(&mut self, core: &mut Core, now: Millis, dt: Millis) {
        for fb in self.0.step(dt as f64 / 1000.0) {
            core.feedback(fb, now);
        }
    }
}

/// xorshift64*, seeded: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn completion_time_is_within_5_percent_of_the_lower_bound() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let base = config::builtin().unwrap();
    let mut worst: f64 = 0.0;
    for case in 0..150 {
        let mut cfg = base.clone();
        cfg.max_concurrent = 1 + (rng.next() % 4) as usize;
        cfg.motion_timeout_ms = 600_000;
        cfg.duty_limit_ms = cfg.duty_window_ms;
        let cfg = Arc::new(cfg);
        let mut c = core_with(cfg.clone());
        park(&mut c);
        let id = create(&mut c, "P");
        // A random subset of axes, each travelling at least a tenth of its range.
        let mut travels = Vec::new();
        let mut positions = Vec::new();
        for (i, a) in cfg.axes.iter().enumerate() {
            if rng.unit() < 0.3 {
                continue;
            }
            let span = a.max - a.min;
            let mut to = a.min + rng.unit() * span;
            if (to - a.initial).abs() < span / 10.0 {
                to = if a.initial - a.min > span / 2.0 {
                    a.min
                } else {
                    a.max
                };
            }
            travels.push(plan::Travel {
                axis: i,
                from: a.initial,
                to,
                speed: a.speed,
            });
            positions.push((a.name.clone(), to));
        }
        if travels.is_empty() {
            continue;
        }
        c.request(
            Request::SetPositions {
                id: id.clone(),
                positions,
            },
            0,
            &mut NoStorage,
        )
        .unwrap();
        let mut sim = Sim::new(&cfg);
        let start: Millis = 1000;
        c.request(Request::SelectProfile { id }, start, &mut NoStorage)
            .unwrap();
        sim.apply(&c.take_effects());
        let mut now = start;
        while c.is_moving() {
            now += 1;
            assert!(now < start + 600_000, "case {case}: never finished");
            sim.step(&mut c, now, 1);
            if c.next_deadline().is_some_and(|d| d <= now) {
                c.tick(now, &mut NoStorage);
            }
            let fx = c.take_effects();
            sim.apply(&fx);
            assert!(
                sim.running() <= cfg.max_concurrent,
                "case {case}: budget exceeded"
            );
            if let Some(Effect::MotionFinished { outcome, .. }) = fx.last() {
                assert_eq!(*outcome, Outcome::Completed, "case {case}");
            }
        }
        let took = (now - start) as f64 / 1000.0;
        let bound = plan::lower_bound(&travels, cfg.max_concurrent);
        worst = worst.max(took / bound);
        assert!(
            took <= bound * 1.05,
            "case {case}: {took:.3} s against a bound of {bound:.3} s ({} slots, {travels:?})",
            cfg.max_concurrent
        );
        for t in &travels {
            assert!(
                sim.0
                    .position(&cfg.axes[t.axis].name)
                    .is_some_and(|p| (p - t.to).abs() <= cfg.axes[t.axis].tolerance),
                "case {case}"
            );
        }
    }
    assert!(worst > 0.0);
}

/// A config read again applies to what comes next, keeps the running motion, refuses a change
/// of the daemon's shape whole, and halts a motion its new limits no longer allow.
#[test]
fn reconfigure_applies_limits_keeps_motion_and_refuses_new_axes() {
    let base = config::builtin().unwrap();
    let mut c = core_with(Arc::new(base.clone()));
    let id = create(&mut c, "Anna");
    c.request(
        Request::SetPositions {
            id: id.clone(),
            positions: vec![("seat_position".into(), 250.0)],
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    park(&mut c);
    c.request(Request::SelectProfile { id }, 10, &mut NoStorage)
        .unwrap();
    c.take_effects();

    // A higher speed threshold: the motion goes on, and 3 km/h no longer breaks it.
    let mut faster = base.clone();
    faster.speed_threshold_kmh = 5.0;
    assert_eq!(
        c.reconfigure(Arc::new(faster.clone()), 20),
        Ok(vec!["motion"])
    );
    assert!(c.is_moving());
    assert!(c.take_effects().is_empty(), "a reload commands nothing");
    c.request(
        Request::UpdateSignals(vec![Signal::SpeedKmh(3.0)]),
        30,
        &mut NoStorage,
    )
    .unwrap();
    assert!(c.is_moving());

    // Axes, a backend's section and the anchors need a restart: refused, nothing changes.
    let mut axes = faster.clone();
    axes.axes[0].max += 1.0;
    let mut mock = faster.clone();
    mock.mock.speed_factor = 2.0;
    let mut anchors = faster.clone();
    anchors.keys.anchors.push("trunk".into());
    for (bad, what) in [
        (axes, "[[axis]]"),
        (mock, "[backend.mock]"),
        (anchors, "anchors"),
    ] {
        let e = c.reconfigure(Arc::new(bad), 40).unwrap_err();
        assert!(e.contains(what) && e.contains("restart"), "{e}");
    }
    assert_eq!(*c.cfg, faster);
    assert!(c.is_moving());
    assert_eq!(c.reconfigure(Arc::new(faster.clone()), 45), Ok(vec![]));

    // Back to 0.5 km/h while the car reports 3: the motion halts, interlocked.
    assert_eq!(c.reconfigure(Arc::new(base), 50), Ok(vec!["motion"]));
    assert!(!c.is_moving());
    assert_eq!(
        c.take_effects().last(),
        Some(&Effect::MotionFinished {
            reason: Reason::Recall,
            outcome: Outcome::Interlocked
        })
    );
}

mod property {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Signals(Vec<Signal>),
        Select(usize),
        MoveTo(usize, f64),
        Stop,
        Ranges(usize, f64, f64),
        Manual(usize, f64),
        Fault(usize),
        Advance(u64),
    }

    fn signal() -> impl Strategy<Value = Signal> {
        let booleans: [fn(bool) -> Signal; 7] = [
            Signal::ManualControl,
            Signal::DoorsLocked,
            Signal::DriverDoorOpen,
            Signal::DriverSeatOccupied,
            Signal::DriverBeltBuckled,
            Signal::BrakePressed,
            Signal::RearOccupied,
        ];
        prop_oneof![
            prop::sample::select(vec![Gear::P, Gear::R, Gear::N, Gear::D]).prop_map(Signal::Gear),
            prop_oneof![Just(0.0), Just(0.3), Just(0.6), 0.0..20.0f64].prop_map(Signal::SpeedKmh),
            (prop::sample::select(booleans.to_vec()), any::<bool>()).prop_map(|(f, b)| f(b)),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop::collection::vec(signal(), 1..4).prop_map(Op::Signals),
            2 => (0..2usize).prop_map(Op::Select),
            2 => (0..8usize, 0.0..1.0f64).prop_map(|(a, f)| Op::MoveTo(a, f)),
            1 => Just(Op::Stop),
            3 => (0..3usize, 0.2..8.0f64, 0.2..8.0f64).prop_map(|(k, d, o)| Op::Ranges(k, d, o)),
            1 => (0..8usize, 0.0..1.0f64).prop_map(|(a, f)| Op::Manual(a, f)),
            1 => (0..8usize).prop_map(Op::Fault),
            5 => (1..3000u64).prop_map(Op::Advance),
        ]
    }

    /// The safety invariants, checked after every event.
    fn check(c: &Core, sim: &Sim, moves: usize, budget: usize, what: &str) {
        assert!(
            sim.running() <= budget,
            "{what}: {} motors run",
            sim.running()
        );
        assert!(c.running_motors() <= budget, "{what}: engine over budget");
        if let Some(why) = c.interlock() {
            assert_eq!(moves, 0, "{what}: a move was commanded although {why}");
            assert!(!c.is_moving(), "{what}: still moving although {why}");
            assert_eq!(
                sim.running(),
                0,
                "{what}: a motor still runs although {why}"
            );
        }
        if let Some(r) = c.motion_reason()
            && r.automatic()
        {
            assert!(
                !c.vehicle().doors_locked,
                "{what}: automatic motion with doors locked"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        #[test]
        fn no_move_while_interlocked_halt_at_once_budget_kept(
            budget in 1..4usize,
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let mut cfg = config::builtin().unwrap();
            cfg.max_concurrent = budget;
            cfg.duty_limit_ms = 20_000;
            let cfg = Arc::new(cfg);
            let mut c = core_with(cfg.clone());
            let st = &mut NoStorage;
            let ids = [create(&mut c, "A"), create(&mut c, "B")];
            for (n, id) in ids.iter().enumerate() {
                let positions = cfg.axes.iter()
                    .map(|a| (a.name.clone(), a.min + (a.max - a.min) * (0.2 + 0.6 * n as f64)))
                    .collect();
                c.request(Request::SetPositions { id: id.clone(), positions }, 0, st).unwrap();
                c.request(Request::BindKey { id: id.clone(), key: format!("k{n}") }, 0, st).unwrap();
            }
            c.take_effects();
            let mut sim = Sim::new(&cfg);
            let mut now: Millis = 0;
            for (k, op) in ops.into_iter().enumerate() {
                let what = format!("op {k} {op:?}");
                match op {
                    Op::Signals(list) => {
                        let _ = c.request(Request::UpdateSignals(list), now, st);
                    }
                    Op::Select(p) => {
                        let _ = c.request(Request::SelectProfile { id: ids[p].clone() }, now, st);
                    }
                    Op::MoveTo(a, f) => {
                        let ac = &cfg.axes[a];
                        let target = ac.min + (ac.max - ac.min) * f;
                        let _ = c.request(Request::MoveTo { axis: ac.name.clone(), target }, now, st);
                    }
                    Op::Stop => {
                        let _ = c.request(Request::Stop, now, st);
                    }
                    Op::Ranges(key, d, other) => {
                        let key = format!("k{key}");
                        let r = ["driver_door", "passenger_door", "rear", "cabin"]
                            .iter()
                            .enumerate()
                            .map(|(i, a)| (key.clone(), a.to_string(), if i == 0 { d } else { other }))
                            .collect();
                        let _ = c.request(Request::ReportRanges(r), now, st);
                    }
                    Op::Manual(a, f) => {
                        let ac = &cfg.axes[a];
                        let p = ac.min + (ac.max - ac.min) * f;
                        if let Some(fb) = sim.0.set_position(&ac.name, p) {
                            c.feedback(fb, now);
                        }
                    }
                    Op::Fault(a) => {
                        c.feedback(Feedback::Fault { axis: cfg.axes[a].name.clone(), message: "over-current".into() }, now);
                    }
                    Op::Advance(ms) => {
                        let end = now + ms;
                        while now < end {
                            now += 10;
                            sim.step(&mut c, now, 10);
                            if c.next_deadline().is_some_and(|d| d <= now) {
                                c.tick(now, st);
                                // A deadline left in the past would make the daemon spin.
                                let next = c.next_deadline();
                                assert!(next.is_none_or(|d| d > now), "{what}: deadline {next:?} not after {now}");
                            }
                            let moves = sim.apply(&c.take_effects());
                            check(&c, &sim, moves, budget, &what);
                        }
                        continue;
                    }
                }
                let moves = sim.apply(&c.take_effects());
                check(&c, &sim, moves, budget, &what);
            }
        }
    }
}
