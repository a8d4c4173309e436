//! Unit tests of the core on a fake clock: no runtime, no bus.

use super::*;
use crate::backend::mock::sim;
use crate::config::{self, Config};
use view::AxisView;

/// A core whose axes are at the simulator's starting positions.
fn core_with(cfg: Arc<Config>) -> Core {
    let known = sim::Sim::new(AxisId::all(&cfg.axes)).positions().collect();
    Core::new(cfg, Store::default(), &known, "sim".into(), "test".into())
}

fn core() -> Core {
    core_with(Arc::new(config::builtin().unwrap()))
}

/// The id of the built-in config's axis `name`.
fn ax(name: &str) -> AxisId {
    AxisId::of(&config::builtin().unwrap(), name).unwrap()
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

fn create(c: &mut Core, name: &str) -> ProfileId {
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
            Effect::Backend(BackendCommand::Move { axis, target }) => Some((
                config::builtin().unwrap().axes[axis.index()].name.clone(),
                *target,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn recall_is_interlocked_until_parked_and_still() {
    let mut c = core();
    let id = create(&mut c, "Anna");
    let r = c.request(Request::SelectProfile { id }, 0, &mut NoStorage);
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
            id,
            positions: vec![(ax("seat_position"), 200.0), (ax("wheel_tilt"), 80.0)],
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    park(&mut c);
    c.request(Request::SelectProfile { id }, 10, &mut NoStorage)
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
            axis: ax("seat_position"),
            position: 200.0,
        },
        50,
    );
    assert!(c.is_moving());
    c.feedback(
        Feedback::Position {
            axis: ax("wheel_tilt"),
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
            id,
            positions: vec![(ax("seat_position"), 10.0)],
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
        axis: ax("seat_position")
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
            axis: ax("seat_position"),
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
    assert!(
        v.fault
            .as_deref()
            .is_some_and(|f| f.starts_with("stalled at 130 mm")),
        "{v:?}"
    );
    assert!(c.take_effects().contains(&Effect::MotionFinished {
        reason: Reason::MoveTo,
        outcome: Outcome::Fault
    }));
    // Idle again: no timer at all.
    assert_eq!(c.next_deadline(), None);
    // A manual move tries again and clears the fault once the axis moves.
    c.request(
        Request::MoveTo {
            axis: ax("seat_position"),
            target: 20.0,
        },
        2000,
        &mut NoStorage,
    )
    .unwrap();
    c.feedback(
        Feedback::Position {
            axis: ax("seat_position"),
            position: 120.0,
        },
        2050,
    );
    assert_eq!(shown(&c, "seat_position").fault, None);
}

#[test]
fn positions_are_published_at_most_every_100ms_while_moving() {
    let mut c = core();
    park(&mut c);
    c.request(
        Request::MoveTo {
            axis: ax("seat_position"),
            target: 0.0,
        },
        0,
        &mut NoStorage,
    )
    .unwrap();
    c.feedback(
        Feedback::Position {
            axis: ax("seat_position"),
            position: 129.0,
        },
        10,
    );
    assert_eq!(shown(&c, "seat_position").position, Some(129.0));
    c.feedback(
        Feedback::Position {
            axis: ax("seat_position"),
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
        fn save(&mut self, _: &Store) -> Result<(), SaveError> {
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
fn a_frozen_store_is_never_written_and_its_profiles_still_recall() {
    let mut c = core();
    let id = create(&mut c, "Anna");
    c.freeze_store("read-only: a newer schema".into());
    let mut disk = Disk::default();
    let r = c.request(Request::CreateProfile { name: "Ben".into() }, 0, &mut disk);
    assert!(
        matches!(&r, Err(Error::Failed(why)) if why.contains("read-only: a newer schema")),
        "{r:?}"
    );
    assert_eq!(c.store().profiles.len(), 1);
    assert!(
        c.view()
            .storage_error
            .is_some_and(|e| e.contains("read-only")),
        "Manager.StorageError says why"
    );
    // Selecting still works: the active profile is kept in memory only.
    park(&mut c);
    let r = c.request(Request::SelectProfile { id }, 0, &mut disk);
    assert_eq!(r, Ok(Reply::Done));
    assert_eq!(c.store().active, Some(id));
    assert!(disk.store.is_none(), "nothing written");
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
        Sim(sim::Sim::new(AxisId::all(&cfg.axes)))
    }

    /// Carry out the core's commands; returns how many moves were commanded.
    fn apply(&mut self, effects: &[Effect]) -> usize {
        self.apply_moved(effects).len()
    }

    /// Carry out the core's commands; returns the axes commanded to move.
    fn apply_moved(&mut self, effects: &[Effect]) -> Vec<AxisId> {
        let mut moves = Vec::new();
        for e in effects {
            if let Effect::Backend(cmd) = e {
                if let BackendCommand::Move { axis, .. } = cmd {
                    moves.push(*axis);
                }
                // A stop at once after a step reports the position the core already has.
                self.0.command(cmd, 0.0);
            }
        }
        moves
    }

    fn running(&self) -> usize {
        self.0.running()
    }

    /// A motor group running more motors than its budget, if one does.
    fn over_budget(&self, cfg: &Config) -> Option<String> {
        let mut groups: Vec<Option<usize>> = cfg.axes.iter().map(|a| a.group).collect();
        groups.sort_unstable();
        groups.dedup();
        groups.into_iter().find_map(|g| {
            let n = AxisId::all(&cfg.axes)
                .filter(|(id, a)| a.group == g && self.0.is_commanded(*id))
                .count();
            (n > cfg.budget(g)).then(|| format!("{n} motors of group {g:?} run"))
        })
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
        for g in &mut cfg.groups {
            g.max_concurrent = 1 + (rng.next() % 2) as usize;
        }
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
            positions.push((AxisId::new(i), to));
        }
        if travels.is_empty() {
            continue;
        }
        c.request(Request::SetPositions { id, positions }, 0, &mut NoStorage)
            .unwrap();
        let mut sim = Sim::new(&cfg);
        let mut done_at: Vec<(Option<usize>, Option<Millis>)> = Vec::new();
        for t in &travels {
            let g = cfg.axes[t.axis].group;
            if !done_at.iter().any(|(x, _)| *x == g) {
                done_at.push((g, None));
            }
        }
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
            if let Some(over) = sim.over_budget(&cfg) {
                panic!("case {case}: budget exceeded: {over}");
            }
            if let Some(Effect::MotionFinished { outcome, .. }) = fx.last() {
                assert_eq!(*outcome, Outcome::Completed, "case {case}");
            }
            // Each motor group done: all its axes arrived and none commanded.
            for (g, done) in &mut done_at {
                let arrived = travels
                    .iter()
                    .filter(|t| cfg.axes[t.axis].group == *g)
                    .all(|t| {
                        let id = AxisId::new(t.axis);
                        !sim.0.is_commanded(id)
                            && sim
                                .0
                                .position(id)
                                .is_some_and(|p| (p - t.to).abs() <= cfg.axes[t.axis].tolerance)
                    });
                if arrived && done.is_none() {
                    *done = Some(now);
                }
            }
        }
        // Each group within 5 % of the least time its own budget allows, while the others run.
        for (g, done) in &done_at {
            let own: Vec<plan::Travel> = travels
                .iter()
                .filter(|t| cfg.axes[t.axis].group == *g)
                .copied()
                .collect();
            let Some(done) = done else {
                panic!("case {case}: group {g:?} never arrived");
            };
            let took = (done - start) as f64 / 1000.0;
            let bound = plan::lower_bound(&own, cfg.budget(*g));
            worst = worst.max(took / bound);
            assert!(
                took <= bound * 1.05,
                "case {case}: group {g:?}: {took:.3} s against a bound of {bound:.3} s ({} slots, {own:?})",
                cfg.budget(*g)
            );
        }
        for t in &travels {
            assert!(
                sim.0
                    .position(AxisId::new(t.axis))
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
            id,
            positions: vec![(ax("seat_position"), 250.0)],
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
    let mut slower_return = faster.clone();
    slower_return.reverse_tilt.return_delay_ms = 8000;
    assert_eq!(
        c.reconfigure(Arc::new(slower_return), 46),
        Ok(vec!["reverse_tilt"])
    );
    assert_eq!(
        c.reconfigure(Arc::new(faster.clone()), 47),
        Ok(vec!["reverse_tilt"])
    );

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
        Inhibit,
        /// Release the oldest inhibitor held, if any.
        Uninhibit,
        /// A profile's reverse position for every `[reverse_tilt]` axis (a fraction of its
        /// range), or none (the offset).
        ReverseTilt(usize, Option<f64>),
        ReverseTiltEnabled(usize, bool),
        AutoSave(usize, bool),
    }

    fn signal() -> impl Strategy<Value = Signal> {
        let booleans: [fn(bool) -> Signal; 7] = [
            Signal::SeatSwitch,
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
            2 => (0..12usize, 0.0..1.0f64).prop_map(|(a, f)| Op::MoveTo(a, f)),
            1 => Just(Op::Stop),
            3 => (0..3usize, 0.2..8.0f64, 0.2..8.0f64).prop_map(|(k, d, o)| Op::Ranges(k, d, o)),
            2 => (0..12usize, 0.0..1.0f64).prop_map(|(a, f)| Op::Manual(a, f)),
            1 => (0..12usize).prop_map(Op::Fault),
            5 => (1..3000u64).prop_map(Op::Advance),
            1 => Just(Op::Inhibit),
            1 => Just(Op::Uninhibit),
            1 => (0..2usize, prop::option::of(0.0..1.0f64)).prop_map(|(p, f)| Op::ReverseTilt(p, f)),
            1 => (0..2usize, any::<bool>()).prop_map(|(p, on)| Op::ReverseTiltEnabled(p, on)),
            1 => (0..2usize, any::<bool>()).prop_map(|(p, on)| Op::AutoSave(p, on)),
        ]
    }

    /// The safety invariants, checked after every event. Outside P at standstill only the
    /// mirrors of `[reverse_tilt]` may move, and only for reversing.
    fn check(c: &Core, sim: &Sim, moved: &[AxisId], cfg: &Config, what: &str) {
        if let Some(over) = sim.over_budget(cfg) {
            panic!("{what}: {over}");
        }
        let total = cfg.max_concurrent + cfg.groups.iter().map(|g| g.max_concurrent).sum::<usize>();
        assert!(c.running_motors() <= total, "{what}: engine over budget");
        let reversing = |a: AxisId| cfg.reverse_tilt.axes.contains(&a.index());
        let reverse_motion = matches!(
            c.motion_reason(),
            Some(Reason::ReverseTilt | Reason::ReverseReturn)
        );
        if reverse_motion {
            let commanded = AxisId::all(&cfg.axes)
                .map(|(a, _)| a)
                .filter(|a| sim.0.is_commanded(*a));
            for a in commanded {
                assert!(reversing(a), "{what}: {a} runs in a reverse tilt");
            }
        }
        if c.motion_reason() == Some(Reason::ReverseTilt) {
            let v = c.vehicle();
            let slow = v
                .speed_kmh
                .is_some_and(|s| s < cfg.reverse_tilt.max_speed_kmh);
            assert!(
                v.gear == Some(Gear::R) && slow,
                "{what}: a tilt runs out of R or too fast"
            );
        }
        if let Some(why) = c.interlock() {
            for &a in moved {
                assert!(reversing(a), "{what}: {a} was commanded although {why}");
            }
            if !reverse_motion {
                assert!(!c.is_moving(), "{what}: still moving although {why}");
            }
            for (a, _) in AxisId::all(&cfg.axes) {
                let runs = sim.0.is_commanded(a);
                assert!(
                    !runs || reversing(a),
                    "{what}: {a} still runs although {why}"
                );
            }
        }
        let moves = moved.len();
        if c.inhibited() {
            assert_eq!(moves, 0, "{what}: a move was commanded while inhibited");
            assert!(!c.is_moving(), "{what}: moving while inhibited");
            assert_eq!(sim.running(), 0, "{what}: a motor runs while inhibited");
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
        fn no_move_while_interlocked_or_inhibited_halt_at_once_budget_kept(
            budget in 1..4usize,
            door in 1..3usize,
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let mut cfg = config::builtin().unwrap();
            cfg.max_concurrent = budget;
            for g in &mut cfg.groups {
                g.max_concurrent = door;
            }
            cfg.duty_limit_ms = 20_000;
            let cfg = Arc::new(cfg);
            let mut c = core_with(cfg.clone());
            let st = &mut NoStorage;
            let ids = [create(&mut c, "A"), create(&mut c, "B")];
            for (n, &id) in ids.iter().enumerate() {
                let positions = AxisId::all(&cfg.axes)
                    .map(|(axis, a)| (axis, a.min + (a.max - a.min) * (0.2 + 0.6 * n as f64)))
                    .collect();
                c.request(Request::SetPositions { id, positions }, 0, st).unwrap();
                c.request(Request::BindKey { id, key: format!("k{n}") }, 0, st).unwrap();
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
                        let _ = c.request(Request::SelectProfile { id: ids[p] }, now, st);
                    }
                    Op::MoveTo(a, f) => {
                        let ac = &cfg.axes[a];
                        let target = ac.min + (ac.max - ac.min) * f;
                        let _ = c.request(Request::MoveTo { axis: AxisId::new(a), target }, now, st);
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
                        if let Some(fb) = sim.0.set_position(AxisId::new(a), p) {
                            c.feedback(fb, now);
                        }
                    }
                    Op::Fault(a) => {
                        c.feedback(Feedback::Fault { axis: AxisId::new(a), message: "over-current".into() }, now);
                    }
                    Op::Inhibit => {
                        let r = Request::Inhibit { who: "t".into(), why: "t".into(), uid: 0, pid: 0 };
                        let _ = c.request(r, now, st);
                    }
                    Op::Uninhibit => {
                        if let Some(id) = c.inhibitors().first().map(|i| i.id) {
                            let _ = c.request(Request::Uninhibit { id }, now, st);
                        }
                    }
                    Op::ReverseTilt(p, f) => {
                        let positions = (cfg.reverse_tilt.axes.iter())
                            .filter_map(|&a| {
                                let ac = &cfg.axes[a];
                                Some((AxisId::new(a), ac.min + (ac.max - ac.min) * f?))
                            })
                            .collect();
                        let r = Request::SetReverseTilt { id: ids[p], positions };
                        c.request(r, now, st).unwrap();
                    }
                    Op::ReverseTiltEnabled(p, enabled) => {
                        let r = Request::SetReverseTiltEnabled { id: ids[p], enabled };
                        c.request(r, now, st).unwrap();
                    }
                    Op::AutoSave(p, enabled) => {
                        c.request(Request::SetAutoSave { id: ids[p], enabled }, now, st).unwrap();
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
                            let moved = sim.apply_moved(&c.take_effects());
                            check(&c, &sim, &moved, &cfg, &what);
                        }
                        continue;
                    }
                }
                let moved = sim.apply_moved(&c.take_effects());
                check(&c, &sim, &moved, &cfg, &what);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios on the fake clock: a core, the shared simulator as its backend, and time that
// passes only when the test says so. What the real-bus tests need wall-clock seconds for
// (walks paced at 100 ms, motors at their speeds) runs here in microseconds, exactly the same
// way on a loaded machine as on an idle one.

/// A motion the core announced.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Started(Reason, Option<ProfileId>),
    Finished(Reason, Outcome),
}
use Ev::{Finished, Started};

/// The fake clock advances in steps this long; the simulator reports every step.
const STEP_MS: Millis = 10;
/// Key readings come this often in walks (as on the real bus).
const WALK_MS: Millis = 100;

/// Storage that keeps what the core saves, as the daemon's state dir would.
#[derive(Debug, Default)]
struct Disk {
    store: Option<Store>,
    easy_exit: Option<EasyExitState>,
    reverse_tilt: Option<ReverseTiltState>,
}

impl Storage for Disk {
    fn save(&mut self, store: &Store) -> Result<(), SaveError> {
        self.store = Some(store.clone());
        Ok(())
    }

    fn save_easy_exit(&mut self, state: &EasyExitState) -> Result<(), SaveError> {
        self.easy_exit = Some(state.clone());
        Ok(())
    }

    fn save_reverse_tilt(&mut self, state: &ReverseTiltState) -> Result<(), SaveError> {
        self.reverse_tilt = Some(state.clone());
        Ok(())
    }
}

struct Harness {
    cfg: Arc<Config>,
    core: Core,
    sim: Sim,
    disk: Disk,
    now: Millis,
    /// Motions announced since the last [`Harness::events`].
    events: Vec<Ev>,
    /// Axes commanded to move since the last [`Harness::moved`].
    moves: Vec<String>,
    /// Axes commanded to stop since the last [`Harness::stopped`].
    stops: Vec<String>,
    /// Every change of the selected key since the last [`Harness::selections`].
    selections: Vec<Option<String>>,
    selected: Option<String>,
}

impl Harness {
    /// The default config, every axis at its initial position, the clock at 0.
    fn new() -> Harness {
        Harness::with(config::builtin().unwrap())
    }

    fn with(cfg: Config) -> Harness {
        let cfg = Arc::new(cfg);
        Harness {
            core: core_with(cfg.clone()),
            sim: Sim::new(&cfg),
            cfg,
            disk: Disk::default(),
            now: 0,
            events: Vec::new(),
            moves: Vec::new(),
            stops: Vec::new(),
            selections: Vec::new(),
            selected: None,
        }
    }

    /// Stop the daemon and start it again on what was saved: a new core, the motors where
    /// they are, the easy-exit state taken up.
    fn restart(&mut self) {
        let known = self.sim.0.positions().collect();
        let store = self.disk.store.clone().unwrap_or_default();
        self.core = Core::new(self.cfg.clone(), store, &known, "sim".into(), "test".into());
        if let Some(state) = self.disk.easy_exit.clone() {
            self.core.resume_easy_exit(state);
        }
        if let Some(state) = self.disk.reverse_tilt.clone() {
            self.core.resume_reverse_tilt(state);
        }
        self.pump();
    }

    /// Carry out and record what the core did.
    fn pump(&mut self) {
        let fx = self.core.take_effects();
        self.sim.apply(&fx);
        for e in fx {
            match e {
                Effect::MotionStarted { reason, profile } => {
                    self.events.push(Started(reason, profile))
                }
                Effect::MotionFinished { reason, outcome } => {
                    self.events.push(Finished(reason, outcome))
                }
                Effect::Backend(BackendCommand::Move { axis, .. }) => {
                    self.moves.push(self.cfg.axes[axis.index()].name.clone())
                }
                Effect::Backend(BackendCommand::Stop { axis }) => {
                    self.stops.push(self.cfg.axes[axis.index()].name.clone())
                }
            }
        }
        let selected = self.core.nearest_key().map(str::to_string);
        if selected != self.selected {
            self.selected.clone_from(&selected);
            self.selections.push(selected);
        }
    }

    fn request(&mut self, r: Request) -> Result<Reply, Error> {
        let out = self.core.request(r, self.now, &mut self.disk);
        self.pump();
        out
    }

    fn signals(&mut self, s: &[Signal]) {
        assert_eq!(
            self.request(Request::UpdateSignals(s.to_vec())),
            Ok(Reply::Done)
        );
    }

    /// Gear P at standstill.
    fn park(&mut self) {
        self.signals(&[Signal::Gear(Gear::P), Signal::SpeedKmh(0.0)]);
    }

    /// A profile at the current positions but for `positions`, with `keys` bound.
    fn profile(&mut self, name: &str, positions: &[(&str, f64)], keys: &[&str]) -> ProfileId {
        let Ok(Reply::Created(id)) = self.request(Request::CreateProfile { name: name.into() })
        else {
            panic!("cannot create {name}");
        };
        let positions = positions.iter().map(|(a, p)| (self.id(a), *p)).collect();
        self.request(Request::SetPositions { id, positions })
            .unwrap();
        for k in keys {
            self.request(Request::BindKey {
                id,
                key: k.to_string(),
            })
            .unwrap();
        }
        id
    }

    /// A driver with one key: the seat at `seat`, the wheel tilted to a quarter of that.
    fn driver(&mut self, name: &str, key: &str, seat: f64) -> ProfileId {
        self.profile(
            name,
            &[("seat_position", seat), ("wheel_tilt", seat / 4.0)],
            &[key],
        )
    }

    fn select(&mut self, id: ProfileId) -> Result<Reply, Error> {
        self.request(Request::SelectProfile { id })
    }

    fn move_to(&mut self, axis: &str, target: f64) -> Result<Reply, Error> {
        self.request(Request::MoveTo {
            axis: self.id(axis),
            target,
        })
    }

    /// Let `ms` pass: the motors move, the core's deadlines fire when due.
    fn advance(&mut self, ms: Millis) {
        let end = self.now + ms;
        while self.now < end {
            let dt = STEP_MS.min(end - self.now);
            self.now += dt;
            self.sim.step(&mut self.core, self.now, dt);
            if self.core.next_deadline().is_some_and(|d| d <= self.now) {
                self.core.tick(self.now, &mut self.disk);
                let next = self.core.next_deadline();
                assert!(
                    next.is_none_or(|d| d > self.now),
                    "deadline {next:?} left in the past at {}",
                    self.now
                );
            }
            self.pump();
        }
    }

    /// Let time pass until `done` holds (at most ten simulated minutes).
    fn advance_until(&mut self, what: &str, done: impl Fn(&Harness) -> bool) {
        let limit = self.now + 600_000;
        while !done(self) {
            assert!(self.now < limit, "never {what}");
            self.advance(STEP_MS);
        }
    }

    /// Let the running motion finish.
    fn settle(&mut self) {
        self.advance_until("idle", |h| !h.core.is_moving());
    }

    /// The motions announced since the last call.
    fn events(&mut self) -> Vec<Ev> {
        std::mem::take(&mut self.events)
    }

    /// The axes commanded to move since the last call.
    fn moved(&mut self) -> Vec<String> {
        std::mem::take(&mut self.moves)
    }

    /// The axes commanded to stop since the last call.
    fn stopped(&mut self) -> Vec<String> {
        std::mem::take(&mut self.stops)
    }

    /// Every change of the selected key since the last call.
    fn selections(&mut self) -> Vec<Option<String>> {
        std::mem::take(&mut self.selections)
    }

    /// The id of the axis named `axis`.
    fn id(&self, axis: &str) -> AxisId {
        AxisId::of(&self.cfg, axis).unwrap()
    }

    /// Where the motor of `axis` is.
    fn at(&self, axis: &str) -> f64 {
        self.sim.0.position(self.id(axis)).unwrap()
    }

    /// What the core shows of `axis`.
    fn shown(&self, axis: &str) -> AxisView {
        shown(&self.core, axis)
    }

    /// The motor of `axis` is within the axis tolerance of `want`, and the core shows it
    /// where it is.
    #[track_caller]
    fn assert_at(&self, axis: &str, want: f64) {
        let tol = self.cfg.axes[self.core.axes.index(axis).unwrap()].tolerance;
        let p = self.at(axis);
        assert!(
            (p - want).abs() <= tol,
            "{axis} at {p}, not within {tol} of {want}"
        );
        assert_eq!(self.shown(axis).position, Some(p), "{axis} shown");
    }

    fn active(&self) -> Option<ProfileId> {
        self.core.store().active
    }

    fn easy_exit_active(&self) -> bool {
        self.core.view().easy_exit_active
    }
}

// Key ranging: people walking or standing around the car, every key reported every 100 ms.

/// A point in the car frame (metres: x to the passenger side, y forward).
type Point = (f64, f64);

/// Anchor positions, in the config's order.
const ANCHORS: [(&str, Point); 4] = [
    ("driver_door", (-0.9, 0.0)),
    ("passenger_door", (0.9, 0.0)),
    ("rear", (0.0, -2.5)),
    ("cabin", (0.0, 0.0)),
];

/// Readings of `key` standing at `p`.
fn readings(key: &str, p: Point) -> Vec<(String, String, f64)> {
    ANCHORS
        .iter()
        .map(|(a, (x, y))| {
            let d = ((p.0 - x).powi(2) + (p.1 - y).powi(2)).sqrt();
            (key.to_string(), a.to_string(), d)
        })
        .collect()
}

/// The default config with the short key timings the scenarios use: stale after 1 s,
/// dwell 0.3 s; without geometry (the distance-only selection of a config from before
/// `[keys.geometry]`, which must keep working as it did).
fn key_config() -> Config {
    let mut cfg = config::builtin().unwrap();
    cfg.keys.geometry = None;
    cfg.keys.expire_ms = 1000;
    cfg.keys.dwell_ms = 300;
    cfg
}

impl Harness {
    fn report(&mut self, r: Vec<(String, String, f64)>) -> Result<Reply, Error> {
        self.request(Request::ReportRanges(r))
    }

    /// Walk each (key, from, to) in `n` steps: every 100 ms, every key is reported where it
    /// has got to; the last report is at the end point, now.
    fn walk(&mut self, people: &[(&str, Point, Point)], n: usize) {
        for i in 0..=n {
            self.advance(WALK_MS);
            let f = if n == 0 { 1.0 } else { i as f64 / n as f64 };
            let mut r = Vec::new();
            for (key, (x0, y0), (x1, y1)) in people {
                r.extend(readings(key, (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f)));
            }
            self.report(r).unwrap();
        }
    }

    /// People standing still for `n` steps.
    fn stand(&mut self, people: &[(&str, Point)], n: usize) {
        let still: Vec<_> = people.iter().map(|(k, p)| (*k, *p, *p)).collect();
        self.walk(&still, n);
    }

    /// People standing still while the motion runs.
    fn stand_until_idle(&mut self, people: &[(&str, Point)]) {
        let limit = self.now + 600_000;
        while self.core.is_moving() {
            assert!(self.now < limit, "never idle");
            self.stand(people, 0);
        }
    }

    fn nearest(&self) -> Option<&str> {
        self.core.nearest_key()
    }
}

fn some(key: &str) -> Option<String> {
    Some(key.to_string())
}

#[test]
fn a_driver_walking_up_is_recalled_before_the_door_opens() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna-phone", 200.0);
    h.park();
    // From 8 m ahead-left to the driver's door handle.
    h.walk(&[("anna-phone", (-4.0, 7.0), (-1.3, 0.0))], 25);
    assert_eq!(h.selections(), [some("anna-phone")]);
    assert_eq!(
        h.events(),
        [Started(Reason::KeyApproach, Some(anna))],
        "the recall starts while she walks"
    );
    h.stand_until_idle(&[("anna-phone", (-1.3, 0.0))]);
    assert_eq!(
        h.events(),
        [Finished(Reason::KeyApproach, Outcome::Completed)]
    );
    // The door was never opened: all of this happened before.
    assert!(!h.core.vehicle().driver_door_open);
    assert_eq!(h.nearest(), Some("anna-phone"));
    assert_eq!(h.active(), Some(anna));
    h.assert_at("seat_position", 200.0);
    assert_eq!(h.at("wheel_tilt"), 50.0, "already where her profile has it");
    assert_eq!(h.moved(), ["seat_position"]);
}

#[test]
fn a_key_that_walks_away_before_the_door_opens_stops_its_recall() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna-phone", 200.0);
    h.park();
    h.walk(&[("anna-phone", (-4.0, 7.0), (-1.3, 0.0))], 25);
    assert_eq!(h.events(), [Started(Reason::KeyApproach, Some(anna))]);
    let start = h.at("seat_position");
    // She turns and walks off before opening the door (or it was a passenger's phone): the
    // seat goes no farther toward her profile.
    h.walk(&[("anna-phone", (-1.3, 0.0), (-9.0, 9.0))], 15);
    assert_eq!(h.selections(), [some("anna-phone"), None]);
    assert_eq!(
        h.events(),
        [Finished(Reason::KeyApproach, Outcome::Stopped)]
    );
    assert!(!h.core.is_moving());
    let stopped = h.at("seat_position");
    assert!(stopped != start && stopped < 200.0, "{start} -> {stopped}");
}

#[test]
fn driver_at_driver_door_beats_passenger_at_passenger_door() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna", 200.0);
    h.driver("Ben", "ben", 60.0);
    h.park();
    h.walk(
        &[
            ("anna", (-5.0, 6.0), (-1.3, 0.0)),
            ("ben", (5.0, 6.0), (1.3, 0.0)),
        ],
        25,
    );
    h.stand_until_idle(&[("anna", (-1.3, 0.0)), ("ben", (1.3, 0.0))]);
    assert_eq!(h.selections(), [some("anna")], "Ben was never selected");
    assert_eq!(
        h.events(),
        [
            Started(Reason::KeyApproach, Some(anna)),
            Finished(Reason::KeyApproach, Outcome::Completed)
        ],
        "Ben's key never caused a motion"
    );
    assert_eq!(h.active(), Some(anna));
}

#[test]
fn the_nearer_of_two_keys_wins_without_flip_flop() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna", 200.0);
    h.driver("Ben", "ben", 60.0);
    h.park();
    // Both walk to the driver's door, Anna 2 m ahead of Ben.
    h.walk(
        &[
            ("anna", (-1.3, 6.0), (-1.3, 1.0)),
            ("ben", (-1.3, 8.0), (-1.3, 3.0)),
        ],
        20,
    );
    assert_eq!(h.selections(), [some("anna")]);
    assert_eq!(h.events(), [Started(Reason::KeyApproach, Some(anna))]);
    // Ben steps up beside her, 0.3 m nearer: within the hysteresis, nothing changes.
    h.stand(&[("anna", (-1.3, 1.0)), ("ben", (-1.2, 0.7))], 15);
    h.stand_until_idle(&[("anna", (-1.3, 1.0)), ("ben", (-1.2, 0.7))]);
    assert_eq!(h.selections(), [], "the selection flipped");
    assert_eq!(
        h.events(),
        [Finished(Reason::KeyApproach, Outcome::Completed)],
        "a second motion started"
    );
    assert_eq!(h.nearest(), Some("anna"));
    assert_eq!(h.active(), Some(anna));
}

#[test]
fn a_one_off_outlier_does_not_switch() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna", 200.0);
    h.driver("Ben", "ben", 60.0);
    h.park();
    h.stand(&[("anna", (-1.6, 1.0))], 8);
    assert_eq!(h.selections(), [some("anna")]);
    assert_eq!(h.events(), [Started(Reason::KeyApproach, Some(anna))]);
    // Ben is 8 m away; one reflection puts him at 0.3 m from the driver's door, and then
    // that anchor drops out for 0.5 s (longer than the dwell), so a filter that trusted the
    // latest reading would switch to Ben.
    for i in 0..15 {
        h.advance(WALK_MS);
        let mut r = readings("anna", (-1.6, 1.0));
        let mut b = readings("ben", (4.0, 8.0));
        match i {
            5 => b[0].2 = 0.3,
            6..=10 => {
                b.remove(0);
            }
            _ => {}
        }
        r.extend(b);
        h.report(r).unwrap();
    }
    assert_eq!(h.selections(), []);
    assert_eq!(h.nearest(), Some("anna"));
    let events = h.events();
    assert!(
        !events.iter().any(|e| matches!(e, Started(..))),
        "a second motion: {events:?}"
    );
}

#[test]
fn a_silent_key_expires_exactly_after_expire_s() {
    let mut h = Harness::with(key_config());
    h.driver("Anna", "anna", 200.0);
    h.stand(&[("anna", (-1.6, 1.0))], 6);
    assert_eq!(h.selections(), [some("anna")]);
    // No more readings: a dropout shorter than expire_s (1 s) changes nothing...
    h.advance(990);
    assert_eq!(h.nearest(), Some("anna"));
    assert_eq!(
        h.core.next_deadline(),
        Some(h.now + 10),
        "the expiry is timed"
    );
    // ... and then the key is gone, with no reading or request to notice it.
    h.advance(10);
    assert_eq!(h.selections(), [None]);
    assert_eq!(h.core.next_deadline(), None, "nothing left to wait for");
}

#[test]
fn selection_locks_when_the_door_opens() {
    let mut h = Harness::with(key_config());
    h.driver("Anna", "anna", 200.0);
    h.driver("Ben", "ben", 60.0);
    h.stand(&[("anna", (-2.5, 1.0))], 6);
    assert_eq!(h.selections(), [some("anna")]);
    h.signals(&[Signal::DriverDoorOpen(true)]);
    // Ben walks right up to the handle: far nearer than Anna, but the selection is locked.
    h.walk(
        &[
            ("anna", (-2.5, 1.0), (-2.5, 1.0)),
            ("ben", (-3.0, 4.0), (-1.1, 0.0)),
        ],
        15,
    );
    assert_eq!(h.selections(), []);
    assert_eq!(h.nearest(), Some("anna"));
}

#[test]
fn a_late_key_and_a_seated_driver_change_nothing() {
    let mut h = Harness::with(key_config());
    h.driver("Anna", "anna", 200.0);
    h.driver("Ben", "ben", 60.0);
    h.park();
    // Anna is in the car already (seat occupied, door closed) before any key was seen.
    h.signals(&[Signal::DriverSeatOccupied(true)]);
    h.walk(&[("ben", (-3.0, 5.0), (-1.2, 0.0))], 15);
    h.stand(&[("ben", (-1.2, 0.0))], 6);
    assert_eq!(h.selections(), []);
    assert_eq!(h.events(), [], "a motion started");
    assert_eq!(h.active(), None);
}

#[test]
fn locked_doors_hold_the_key_recall_until_unlocked() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna", 200.0);
    h.park();
    h.signals(&[Signal::DoorsLocked(true)]);
    h.stand(&[("anna", (-1.5, 0.5))], 8);
    assert_eq!(h.selections(), [some("anna")]);
    // Selected, but the doors are locked: nothing moves.
    h.stand(&[("anna", (-1.5, 0.5))], 4);
    assert_eq!(h.events(), [], "moved while locked");
    assert_eq!(h.active(), None);
    // Unlocking while the same key is selected lets the recall happen then.
    h.signals(&[Signal::DoorsLocked(false)]);
    assert_eq!(h.events(), [Started(Reason::KeyApproach, Some(anna))]);
}

#[test]
fn pre_adjust_off_waits_for_the_door() {
    let mut cfg = key_config();
    cfg.keys.pre_adjust = false;
    let mut h = Harness::with(cfg);
    let anna = h.driver("Anna", "anna", 200.0);
    h.park();
    h.stand(&[("anna", (-1.5, 0.5))], 8);
    assert_eq!(h.selections(), [some("anna")]);
    assert_eq!(h.events(), [], "moved before the door opened");
    h.signals(&[Signal::DriverDoorOpen(true)]);
    assert_eq!(h.events(), [Started(Reason::KeyApproach, Some(anna))]);
}

#[test]
fn an_active_profile_already_in_place_does_not_move() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna", 200.0);
    h.park();
    h.select(anna).unwrap();
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::Recall, Some(anna)),
            Finished(Reason::Recall, Outcome::Completed)
        ]
    );
    h.moved();
    h.stand(&[("anna", (-1.5, 0.5))], 8);
    assert_eq!(h.selections(), [some("anna")]);
    h.stand(&[("anna", (-1.5, 0.5))], 3);
    assert_eq!(h.events(), [], "moved for nothing");
    assert_eq!(h.moved(), Vec::<String>::new());
}

#[test]
fn unbound_keys_are_ignored_and_not_tracked() {
    let mut h = Harness::with(key_config());
    h.driver("Anna", "anna", 200.0);
    h.park();
    h.walk(&[("stranger", (-3.0, 5.0), (-1.2, 0.0))], 10);
    h.stand(&[("stranger", (-1.2, 0.0))], 6);
    assert_eq!(h.selections(), []);
    assert_eq!(h.events(), []);
    assert_eq!(h.core.keys.tracked().len(), 0, "random key ids cost memory");
}

#[test]
fn bad_readings_reject_the_whole_batch() {
    let mut h = Harness::with(key_config());
    h.driver("Anna", "anna", 200.0);
    let good = || readings("anna", (-1.5, 0.5));
    let with = |extra: (String, String, f64)| {
        let mut r = good();
        r.push(extra);
        r
    };
    let k = |key: &str, anchor: &str, d: f64| (key.to_string(), anchor.to_string(), d);
    let bad = vec![
        with(k("anna", "trunk", 1.0)),
        with(k("", "cabin", 1.0)),
        with(k(&"x".repeat(65), "cabin", 1.0)),
        with(k("an\nna", "cabin", 1.0)),
        with(k("anna", "cabin", f64::NAN)),
        with(k("anna", "cabin", f64::INFINITY)),
        with(k("anna", "cabin", -0.1)),
        with(k("anna", "cabin", 100.5)),
        (0..257).map(|i| k("anna", ANCHORS[i % 4].0, 1.0)).collect(),
    ];
    for b in bad {
        h.advance(WALK_MS);
        let r = h.report(b.clone());
        assert!(matches!(r, Err(Error::InvalidArgs(_))), "{r:?} for {b:?}");
    }
    // Every rejected batch carried good readings of Anna at the door, 100 ms apart: had they
    // been kept, she would have been selected during those 0.9 s (dwell 0.3 s and fresh
    // readings). Nothing of them was kept, and one more good reading alone cannot select her.
    assert_eq!(h.core.keys.tracked().len(), 0);
    h.report(good()).unwrap();
    h.advance(600);
    assert_eq!(h.selections(), []);
    // 256 readings is fine.
    let ok: Vec<_> = (0..256)
        .map(|i| k("anna", ANCHORS[i % 4].0, 1.0 + i as f64 / 100.0))
        .collect();
    assert_eq!(h.report(ok), Ok(Reply::Done));
}

#[test]
fn a_seated_driver_is_never_overridden() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna", 200.0);
    h.driver("Ben", "ben", 60.0);
    h.park();
    h.walk(&[("anna", (-3.0, 5.0), (-1.3, 0.0))], 12);
    h.stand_until_idle(&[("anna", (-1.3, 0.0))]);
    assert_eq!(
        h.events(),
        [
            Started(Reason::KeyApproach, Some(anna)),
            Finished(Reason::KeyApproach, Outcome::Completed)
        ]
    );
    // Anna gets in: door opens, she sits, the door closes. Her key is now in the cabin.
    for s in [
        Signal::DriverDoorOpen(true),
        Signal::DriverSeatOccupied(true),
        Signal::DriverDoorOpen(false),
    ] {
        h.signals(&[s]);
    }
    h.selections();
    // Ben walks right up to the driver's door while Anna's key reads from the cabin.
    h.walk(
        &[
            ("anna", (-0.2, 0.0), (-0.2, 0.0)),
            ("ben", (-4.0, 5.0), (-1.1, 0.0)),
        ],
        15,
    );
    h.stand(&[("anna", (-0.2, 0.0)), ("ben", (-1.1, 0.0))], 5);
    assert_eq!(
        h.selections(),
        [],
        "the selection changed under a seated driver"
    );
    assert_eq!(h.events(), [], "a motion started");
    assert_eq!(h.active(), Some(anna));
    h.assert_at("seat_position", 200.0);
}

// Easy exit, restore and the engine's rules for every motion.

impl Harness {
    /// Park, recall `profile` (if any), then drive off with the driver seated and belted:
    /// the next P at standstill is a real transition into Park.
    fn drive_with(&mut self, profile: Option<ProfileId>, brake: bool) {
        self.park();
        if let Some(p) = profile {
            self.select(p).unwrap();
            self.settle();
            assert_eq!(
                self.events(),
                [
                    Started(Reason::Recall, Some(p)),
                    Finished(Reason::Recall, Outcome::Completed)
                ]
            );
        }
        self.signals(&[
            Signal::Gear(Gear::D),
            Signal::DriverSeatOccupied(true),
            Signal::DriverBeltBuckled(true),
            Signal::BrakePressed(brake),
        ]);
        self.moved();
        self.stopped();
    }

    fn shift_to_park(&mut self) {
        self.signals(&[Signal::Gear(Gear::P)]);
    }

    /// Shift into P and let the easy exit that starts complete.
    fn retract(&mut self, profile: Option<ProfileId>) {
        self.shift_to_park();
        self.settle();
        assert_eq!(
            self.events(),
            [
                Started(Reason::EasyExit, profile),
                Finished(Reason::EasyExit, Outcome::Completed)
            ]
        );
        assert!(self.easy_exit_active());
    }

    /// Nothing started, and easy exit is not active.
    #[track_caller]
    fn assert_no_motion(&mut self) {
        assert_eq!(self.events(), [], "a motion started");
        assert!(!self.core.is_moving());
        assert!(!self.easy_exit_active());
    }
}

/// Anna: seat 150, wheel tilt 37.5.
fn with_anna(cfg: Config) -> (Harness, ProfileId) {
    let mut h = Harness::with(cfg);
    let anna = h.driver("Anna", "anna", 150.0);
    (h, anna)
}

#[test]
fn park_retracts_seat_back_and_wheel_up_and_in() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    assert!(!h.easy_exit_active());
    h.assert_at("seat_position", 150.0);
    let seat = h.at("seat_position");
    h.shift_to_park();
    assert_eq!(h.events(), [Started(Reason::EasyExit, Some(anna))]);
    assert!(h.easy_exit_active(), "active from the start of the retract");
    h.settle();
    assert_eq!(h.events(), [Finished(Reason::EasyExit, Outcome::Completed)]);
    assert!(h.easy_exit_active());
    // 50 mm back from where the recall left it (within its tolerance of 150).
    h.assert_at("seat_position", seat + 50.0);
    h.assert_at("wheel_tilt", 100.0);
    h.assert_at("wheel_extension", 0.0);
    // Axes without a retract rule are not even commanded.
    let mut moved = h.moved();
    moved.sort();
    moved.dedup();
    assert_eq!(moved, ["seat_position", "wheel_extension", "wheel_tilt"]);
    assert_eq!(h.at("seat_height"), 30.0);
    assert_eq!(h.at("backrest_recline"), 22.0);
}

#[test]
fn park_and_unbuckle_waits_for_the_belt() {
    let mut cfg = config::builtin().unwrap();
    cfg.easy_exit.trigger = config::EasyExitTrigger::ParkAndUnbuckle;
    let (mut h, anna) = with_anna(cfg);
    h.drive_with(Some(anna), false);
    h.shift_to_park();
    h.assert_no_motion();
    h.signals(&[Signal::DriverBeltBuckled(false)]);
    assert_eq!(h.events(), [Started(Reason::EasyExit, Some(anna))]);
    h.settle();
    assert_eq!(h.events(), [Finished(Reason::EasyExit, Outcome::Completed)]);
    assert!(h.easy_exit_active());
}

#[test]
fn the_first_report_after_a_restart_moves_nothing() {
    let mut h = Harness::new();
    // The daemon starts in a parked car with the driver in: P is not a transition it saw.
    h.signals(&[
        Signal::Gear(Gear::P),
        Signal::SpeedKmh(0.0),
        Signal::DriverSeatOccupied(true),
    ]);
    h.assert_no_motion();
    // A transition it sees does count.
    h.signals(&[Signal::Gear(Gear::D)]);
    h.shift_to_park();
    assert_eq!(h.events(), [Started(Reason::EasyExit, None)]);
}

#[test]
fn easy_exit_can_be_disabled_per_profile_and_without_a_profile() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.request(Request::SetEasyExit {
        id: anna,
        enabled: false,
    })
    .unwrap();
    h.drive_with(Some(anna), false);
    h.shift_to_park();
    h.assert_no_motion();

    // No active profile: the config decides.
    let mut cfg = config::builtin().unwrap();
    cfg.easy_exit.enabled = false;
    let mut h = Harness::with(cfg);
    h.drive_with(None, false);
    h.shift_to_park();
    h.assert_no_motion();

    let mut h = Harness::new();
    h.drive_with(None, false);
    h.retract(None);
    h.assert_at("seat_position", 180.0);
}

#[test]
fn rear_guard_limits_the_seat_going_back() {
    for (back, seat) in [(0.0, 150.0), (20.0, 170.0)] {
        let mut cfg = config::builtin().unwrap();
        cfg.easy_exit.rear_occupied_back_mm = back;
        let (mut h, anna) = with_anna(cfg);
        h.drive_with(Some(anna), false);
        h.signals(&[Signal::RearOccupied(true)]);
        let from = h.at("seat_position");
        h.retract(Some(anna));
        // `seat` from 150: from where the recall left it, in fact.
        h.assert_at("seat_position", from + seat - 150.0);
        h.assert_at("wheel_tilt", 100.0);
    }
}

#[test]
fn restore_on_a_fresh_brake_press_with_the_driver_seated() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    // The driver holds the brake while shifting into P: that press must not undo the retract.
    h.drive_with(Some(anna), true);
    h.retract(Some(anna));
    h.signals(&[Signal::BrakePressed(true)]);
    assert_eq!(h.events(), []);
    assert!(h.easy_exit_active());
    // Released, then pressed again but nobody in the seat: nothing.
    h.signals(&[
        Signal::BrakePressed(false),
        Signal::DriverSeatOccupied(false),
    ]);
    h.signals(&[Signal::BrakePressed(true)]);
    assert_eq!(h.events(), []);
    // Released, then pressed again with the driver seated: restore.
    h.signals(&[
        Signal::BrakePressed(false),
        Signal::DriverSeatOccupied(true),
    ]);
    h.signals(&[Signal::BrakePressed(true)]);
    assert_eq!(h.events(), [Started(Reason::Restore, Some(anna))]);
    assert!(!h.easy_exit_active());
    h.settle();
    assert_eq!(h.events(), [Finished(Reason::Restore, Outcome::Completed)]);
    h.assert_at("seat_position", 150.0);
    h.assert_at("wheel_tilt", 37.5);
    h.assert_at("wheel_extension", 50.0);
}

#[test]
fn restore_on_the_belt_and_without_a_profile_goes_back_to_before_the_retract() {
    let mut cfg = config::builtin().unwrap();
    cfg.easy_exit.restore_on = config::RestoreOn::Belt;
    let mut h = Harness::with(cfg);
    h.park();
    h.move_to("seat_position", 90.0).unwrap();
    h.settle();
    h.events();
    h.drive_with(None, false);
    let before = h.at("seat_position");
    h.assert_at("seat_position", 90.0);
    h.retract(None);
    h.assert_at("seat_position", before + 50.0);
    // The brake does nothing; unbuckling and buckling up again restores.
    h.signals(&[Signal::BrakePressed(true)]);
    assert_eq!(h.events(), []);
    h.signals(&[Signal::DriverBeltBuckled(false)]);
    h.signals(&[Signal::DriverBeltBuckled(true)]);
    assert_eq!(h.events(), [Started(Reason::Restore, None)]);
    h.settle();
    // Back to where it was before the retract.
    h.assert_at("seat_position", before);
    h.assert_at("wheel_tilt", 50.0);
    h.assert_at("wheel_extension", 50.0);
}

#[test]
fn a_restart_while_retracted_still_restores() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    h.retract(Some(anna));
    // An OTA update restarts the daemon while the car is parked and retracted.
    h.restart();
    assert!(h.easy_exit_active(), "the retract was forgotten");
    assert_eq!(h.active(), Some(anna));
    // The gateway reports again (not a transition into P: nothing moves), then the driver
    // presses the brake.
    h.signals(&[
        Signal::Gear(Gear::P),
        Signal::SpeedKmh(0.0),
        Signal::DriverSeatOccupied(true),
        Signal::BrakePressed(false),
    ]);
    assert_eq!(h.events(), []);
    h.signals(&[Signal::BrakePressed(true)]);
    assert_eq!(h.events(), [Started(Reason::Restore, Some(anna))]);
    h.settle();
    assert_eq!(h.events(), [Finished(Reason::Restore, Outcome::Completed)]);
    assert!(!h.easy_exit_active());
    h.assert_at("seat_position", 150.0);
    assert!(
        h.disk.easy_exit.as_ref().is_some_and(|s| !s.active),
        "the end of easy exit is saved too"
    );
}

#[test]
fn a_key_approaching_a_retracted_car_gets_its_entry_pose() {
    let (mut h, anna) = with_anna(key_config());
    let ben = h.driver("Ben", "ben", 100.0);
    h.drive_with(Some(anna), false);
    h.retract(Some(anna));
    // Anna gets out and walks away.
    for s in [
        Signal::DriverDoorOpen(true),
        Signal::DriverSeatOccupied(false),
        Signal::DriverDoorOpen(false),
    ] {
        h.signals(&[s]);
    }
    // Ben walks up: his profile, but retracted, so that he can get in.
    h.walk(&[("ben", (-3.5, 5.0), (-1.3, 0.0))], 15);
    h.stand_until_idle(&[("ben", (-1.3, 0.0))]);
    assert_eq!(
        h.events(),
        [
            Started(Reason::KeyApproach, Some(ben)),
            Finished(Reason::KeyApproach, Outcome::Completed)
        ]
    );
    assert_eq!(h.active(), Some(ben));
    assert!(h.easy_exit_active());
    h.assert_at("seat_position", 150.0); // Ben's 100 mm + 50
    h.assert_at("wheel_tilt", 100.0);
    h.assert_at("wheel_extension", 0.0);
    // He gets in and presses the brake: the restore completes his profile.
    for s in [
        Signal::DriverDoorOpen(true),
        Signal::DriverSeatOccupied(true),
        Signal::DriverDoorOpen(false),
        Signal::BrakePressed(true),
    ] {
        h.signals(&[s]);
    }
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::Restore, Some(ben)),
            Finished(Reason::Restore, Outcome::Completed)
        ]
    );
    h.assert_at("seat_position", 100.0);
    h.assert_at("wheel_tilt", 25.0);
}

/// Everything that must halt a motion in progress.
#[derive(Debug, Clone, Copy)]
enum Halt {
    LeavePark,
    SpeedUp,
    DoorsLocked,
    Stop,
    ActuatorStop,
    ManualSwitch,
    HandMove,
}

impl Halt {
    const ALL: [Halt; 7] = [
        Halt::LeavePark,
        Halt::SpeedUp,
        Halt::DoorsLocked,
        Halt::Stop,
        Halt::ActuatorStop,
        Halt::ManualSwitch,
        Halt::HandMove,
    ];

    /// The outcome it ends a motion for `reason` with; `None`: it does not halt it.
    fn outcome(self, reason: Reason) -> Option<Outcome> {
        Some(match self {
            Halt::DoorsLocked if !reason.automatic() => return None,
            Halt::LeavePark | Halt::SpeedUp | Halt::DoorsLocked => Outcome::Interlocked,
            Halt::Stop | Halt::ActuatorStop => Outcome::Stopped,
            Halt::ManualSwitch | Halt::HandMove => Outcome::Overridden,
        })
    }

    /// Do it (the seat and the wheel tilt are under way).
    fn apply(self, h: &mut Harness) {
        match self {
            Halt::LeavePark => h.signals(&[Signal::Gear(Gear::D)]),
            Halt::SpeedUp => h.signals(&[Signal::SpeedKmh(4.0)]),
            Halt::DoorsLocked => h.signals(&[Signal::DoorsLocked(true)]),
            Halt::Stop => {
                h.request(Request::Stop).unwrap();
            }
            Halt::ActuatorStop => {
                h.request(Request::StopAxis {
                    axis: ax("seat_position"),
                })
                .unwrap();
            }
            Halt::ManualSwitch => h.signals(&[Signal::SeatSwitch(true)]),
            Halt::HandMove => {
                let fb = h.sim.0.set_position(ax("wheel_tilt"), 10.0).unwrap();
                h.core.feedback(fb, h.now);
                h.pump();
            }
        }
    }
}

#[test]
fn every_cause_halts_a_recall_and_an_easy_exit_alike() {
    for cause in Halt::ALL {
        for reason in [Reason::Recall, Reason::EasyExit] {
            let what = format!("{cause:?} during {reason:?}");
            let (mut h, anna) = with_anna(config::builtin().unwrap());
            // Seat 130 -> 150 for the recall, 150 -> 200 for the retract.
            let (from, to) = if reason == Reason::Recall {
                h.park();
                h.select(anna).unwrap();
                (130.0, 150.0)
            } else {
                h.drive_with(Some(anna), false);
                h.shift_to_park();
                (150.0, 200.0)
            };
            assert_eq!(h.events(), [Started(reason, Some(anna))], "{what}");
            h.advance_until("under way", |h| h.at("seat_position") > from + 1.0);
            h.stopped();
            cause.apply(&mut h);
            let Some(outcome) = cause.outcome(reason) else {
                // Locked doors hold automatic motion only: a requested recall goes on.
                assert_eq!(h.events(), [], "{what}");
                h.settle();
                assert_eq!(h.events(), [Finished(reason, Outcome::Completed)], "{what}");
                continue;
            };
            // Halted in the same step: every running motor told to stop, nothing runs.
            assert_eq!(h.events(), [Finished(reason, outcome)], "{what}");
            assert!(h.stopped().contains(&"seat_position".to_string()), "{what}");
            assert_eq!(h.sim.running(), 0, "{what}");
            assert!(!h.core.is_moving(), "{what}");
            let p = h.at("seat_position");
            assert!(p > from && p < to, "{what}: seat at {p}");
            h.advance(1000);
            assert_eq!(h.at("seat_position"), p, "{what}: the seat kept moving");
            assert!(!h.shown("seat_position").moving, "{what}");
            assert_eq!(h.events(), [], "{what}: something started");
            if let Halt::HandMove = cause {
                assert_eq!(h.at("wheel_tilt"), 10.0, "{what}: the occupant's hand wins");
            }
        }
    }
}

#[test]
fn locked_doors_hold_automatic_motion_but_not_a_requested_recall() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    let ben = h.driver("Ben", "ben", 100.0);
    h.drive_with(Some(anna), false);
    h.signals(&[Signal::DoorsLocked(true)]);
    h.shift_to_park();
    h.assert_no_motion();
    assert_eq!(h.moved(), Vec::<String>::new());
    // A recall the occupant asks for from the UI is not automatic.
    h.select(ben).unwrap();
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::Recall, Some(ben)),
            Finished(Reason::Recall, Outcome::Completed)
        ]
    );
}

#[test]
fn a_retract_held_back_by_locked_doors_runs_when_they_unlock() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    // Locked while driving; the gateway reports P before the car unlocks itself.
    h.drive_with(Some(anna), false);
    h.signals(&[Signal::DoorsLocked(true)]);
    h.shift_to_park();
    h.assert_no_motion();
    h.signals(&[Signal::DoorsLocked(false)]);
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::EasyExit, Some(anna)),
            Finished(Reason::EasyExit, Outcome::Completed)
        ]
    );
    assert!(h.easy_exit_active());

    // But not once the driver has left: nobody is there to be helped out.
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    h.signals(&[Signal::DoorsLocked(true)]);
    h.shift_to_park();
    h.signals(&[Signal::DriverSeatOccupied(false)]);
    h.signals(&[Signal::DoorsLocked(false)]);
    h.assert_no_motion();

    // Nor out of P.
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    h.signals(&[Signal::DoorsLocked(true)]);
    h.shift_to_park();
    h.signals(&[Signal::Gear(Gear::D)]);
    h.signals(&[Signal::DoorsLocked(false)]);
    h.assert_no_motion();
}

#[test]
fn stall_faults_the_axis_which_automatic_motions_skip_until_a_manual_move() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    h.retract(Some(anna));
    // The seat motor stalls during the restore.
    h.sim.0.set_stall(ax("seat_position"), true);
    h.signals(&[Signal::BrakePressed(true)]);
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::Restore, Some(anna)),
            Finished(Reason::Restore, Outcome::Fault)
        ]
    );
    let seat = h.shown("seat_position");
    assert_eq!(
        seat.fault,
        Some(format!(
            "stalled at {} mm (no movement for 200 ms)",
            fmt_num(h.at("seat_position"))
        ))
    );
    assert!(!seat.moving);
    let stalled_at = h.at("seat_position");
    assert_eq!(h.sim.running(), 0, "the stalled motor was told to stop");

    // The motor is fine again, but the core keeps the fault: the next easy exit skips it.
    h.sim.0.set_stall(ax("seat_position"), false);
    h.signals(&[Signal::Gear(Gear::D), Signal::BrakePressed(false)]);
    h.moved();
    h.retract(Some(anna));
    assert!(
        !h.moved().contains(&"seat_position".to_string()),
        "a faulted axis moved automatically"
    );
    assert_eq!(h.at("seat_position"), stalled_at);
    assert!(h.shown("seat_position").fault.is_some());

    // A manual move tries it again and clears the fault once it moves.
    h.move_to("seat_position", 120.0).unwrap();
    h.advance(100);
    assert_eq!(h.shown("seat_position").fault, None);
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::MoveTo, None),
            Finished(Reason::MoveTo, Outcome::Completed)
        ]
    );
    h.assert_at("seat_position", 120.0);
}

#[test]
fn a_backend_fault_halts_the_motion_and_faults_the_axis() {
    let mut h = Harness::new();
    h.park();
    h.move_to("seat_position", 0.0).unwrap();
    h.advance(200);
    h.core.feedback(
        Feedback::Fault {
            axis: ax("seat_position"),
            message: "over-current".into(),
        },
        h.now,
    );
    h.pump();
    assert_eq!(
        h.events(),
        [
            Started(Reason::MoveTo, None),
            Finished(Reason::MoveTo, Outcome::Fault)
        ]
    );
    assert_eq!(
        h.shown("seat_position").fault.as_deref(),
        Some("over-current")
    );
    assert_eq!(h.sim.running(), 0);
}

#[test]
fn a_motion_past_its_timeout_is_halted_with_a_fault() {
    let mut cfg = config::builtin().unwrap();
    cfg.motion_timeout_ms = 500;
    let mut h = Harness::with(cfg);
    h.park();
    // 130 mm at 25 mm/s: 5.2 s, far past the 0.5 s timeout.
    h.move_to("seat_position", 0.0).unwrap();
    h.advance(490);
    assert!(h.core.is_moving());
    h.advance(10);
    assert_eq!(
        h.events(),
        [
            Started(Reason::MoveTo, None),
            Finished(Reason::MoveTo, Outcome::Fault)
        ]
    );
    assert_eq!(h.sim.running(), 0);
    h.assert_at("seat_position", 130.0 - 25.0 * 0.5);
    assert!(!h.shown("seat_position").moving);
}

#[test]
fn an_axis_over_its_duty_limit_is_stopped_and_refused_until_rested() {
    let mut cfg = config::builtin().unwrap();
    cfg.duty_limit_ms = 600;
    let window = cfg.duty_window_ms;
    let mut h = Harness::with(cfg);
    h.park();
    let anna = h.profile("Anna", &[("seat_position", 110.0)], &[]);
    h.move_to("seat_position", 0.0).unwrap();
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::MoveTo, None),
            Finished(Reason::MoveTo, Outcome::Fault)
        ]
    );
    let seat = h.shown("seat_position");
    assert!(
        seat.fault
            .as_deref()
            .is_some_and(|f| f.starts_with("duty limit")),
        "{seat:?}"
    );
    h.assert_at("seat_position", 130.0 - 25.0 * 0.6);
    // Refused, nothing moves, nothing changes.
    let r = h.move_to("seat_position", 10.0);
    assert!(matches!(r, Err(Error::DutyLimit(_))), "{r:?}");
    let r = h.select(anna);
    assert!(matches!(r, Err(Error::DutyLimit(_))), "{r:?}");
    assert_eq!(
        h.active(),
        None,
        "a refused recall changed the active profile"
    );
    assert_eq!(h.events(), []);
    // Other axes have their own budget (0.4 s of it here).
    h.move_to("wheel_tilt", 54.0).unwrap();
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::MoveTo, None),
            Finished(Reason::MoveTo, Outcome::Completed)
        ]
    );
    // Once the run has slid out of the window, the seat may move again.
    h.advance(window);
    h.select(anna).unwrap();
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::Recall, Some(anna)),
            Finished(Reason::Recall, Outcome::Completed)
        ]
    );
    h.assert_at("seat_position", 110.0);
}

#[test]
fn a_reload_that_changes_access_is_refused_whole() {
    let mut c = core();
    let mut cfg = (*c.cfg).clone();
    cfg.access.ui.push(crate::config::Group::Gid(4242));
    cfg.max_profiles = 3;
    let r = c.reconfigure(Arc::new(cfg), 0);
    assert!(r.as_ref().is_err_and(|e| e.contains("[access]")), "{r:?}");
    assert_eq!(c.cfg.max_profiles, 10, "nothing applied");
}

#[test]
fn a_reload_that_changes_the_key_geometry_is_refused_and_tunables_apply() {
    let mut c = core();
    let mut cfg = (*c.cfg).clone();
    let Some(g) = cfg.keys.geometry.as_mut() else {
        panic!("the shipped config has [keys.geometry]")
    };
    g.driver_spot[0] -= 0.2;
    let r = c.reconfigure(Arc::new(cfg.clone()), 0);
    assert!(
        r.as_ref().is_err_and(|e| e.contains("[keys.geometry]")),
        "{r:?}"
    );
    // Without geometry: RSSI could no longer be taken, so also a restart.
    cfg.keys.geometry = None;
    assert!(c.reconfigure(Arc::new(cfg), 0).is_err());
    assert!(c.cfg.keys.geometry.is_some(), "nothing applied");
    // What is tuned (not the car's shape) applies.
    let mut tuned = (*c.cfg).clone();
    tuned.keys.locator.select_probability =
        (tuned.keys.locator.select_probability + 0.05).min(0.99);
    assert_eq!(c.reconfigure(Arc::new(tuned), 0), Ok(vec!["keys"]));
}

#[test]
fn rssi_without_geometry_is_not_supported() {
    let mut cfg = config::builtin().unwrap();
    cfg.keys.geometry = None;
    let mut c = core_with(Arc::new(cfg));
    let anchor = c.cfg.keys.anchors[0].clone();
    let r = c.request(
        Request::ReportRssi(vec![("fob".into(), anchor, -60.0)]),
        0,
        &mut NoStorage,
    );
    assert!(matches!(r, Err(Error::NotSupported(_))), "{r:?}");
}

fn item(name: &str, positions: &[(&str, f64)], keys: &[&str]) -> store::ImportItem {
    store::ImportItem::with(
        name.into(),
        true,
        positions.iter().map(|(a, p)| (a.to_string(), *p)).collect(),
        keys.iter().map(|k| k.to_string()).collect(),
    )
}

impl Harness {
    fn import(
        &mut self,
        items: Vec<store::ImportItem>,
        mode: store::ImportMode,
        dry_run: bool,
    ) -> Result<Reply, Error> {
        self.request(Request::ImportProfiles {
            profiles: items,
            mode,
            dry_run,
        })
    }
}

#[test]
fn an_imported_profile_that_omits_an_axis_leaves_it_where_it_is_on_recall() {
    let mut h = Harness::new();
    h.park();
    let tilt = h.at("wheel_tilt");
    let r = h.import(
        vec![item("Anna", &[("seat_position", 200.0)], &[])],
        store::ImportMode::Replace,
        false,
    );
    let Ok(Reply::Imported(ids)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(ids, vec![ProfileId::new(1)]);
    assert_eq!(
        h.disk.store.as_ref().unwrap().profiles[0].positions.len(),
        1,
        "the store keeps only the axis given"
    );
    h.select(ids[0]).unwrap();
    assert_eq!(h.moved(), vec!["seat_position".to_string()]);
    h.settle();
    assert_eq!(
        h.events(),
        vec![
            Started(Reason::Recall, Some(ProfileId::new(1))),
            Finished(Reason::Recall, Outcome::Completed)
        ]
    );
    assert!((h.at("seat_position") - 200.0).abs() < 1.0);
    assert_eq!(
        h.at("wheel_tilt"),
        tilt,
        "an axis the profile omits is not moved"
    );
}

#[test]
fn an_import_carries_auto_save_and_reverse_tilt_and_a_merge_without_them_keeps_them() {
    let mut h = Harness::new();
    let with = store::ImportItem {
        auto_save: Some(true),
        reverse_tilt: Some(vec![(MIRROR.into(), -40.0)]),
        reverse_tilt_enabled: Some(false),
        ..item("Anna", &[("seat_position", 200.0)], &[])
    };
    // Only axes that tilt in reverse here; nothing is imported otherwise.
    let bad = store::ImportItem {
        reverse_tilt: Some(vec![("mirror_driver_tilt".into(), -40.0)]),
        ..item("Ben", &[], &[])
    };
    let r = h.import(vec![with.clone(), bad], store::ImportMode::Replace, false);
    assert!(
        matches!(&r, Err(Error::InvalidArgs(m)) if m.contains("does not tilt in reverse")),
        "{r:?}"
    );
    assert!(h.core.store().profiles.is_empty());
    h.import(vec![with], store::ImportMode::Replace, false)
        .unwrap();
    let anna = h.core.store().profiles[0].clone();
    assert!(anna.auto_save && !anna.reverse_tilt_enabled);
    assert_eq!(anna.reverse_tilt.get(MIRROR), Some(&-40.0));
    // A merge that leaves them out (ImportProfiles) keeps them; one that gives them sets them.
    let plain = item("anna", &[("seat_position", 150.0)], &[]);
    h.import(vec![plain], store::ImportMode::Merge, false)
        .unwrap();
    let kept = h.core.store().profiles[0].clone();
    assert_eq!(kept.positions["seat_position"], 150.0);
    assert!(kept.auto_save && !kept.reverse_tilt_enabled);
    assert_eq!(kept.reverse_tilt, anna.reverse_tilt);
    let off = store::ImportItem {
        auto_save: Some(false),
        reverse_tilt: Some(vec![]),
        ..item("Anna", &[], &[])
    };
    h.import(vec![off], store::ImportMode::Merge, false)
        .unwrap();
    let p = &h.core.store().profiles[0];
    assert!(!p.auto_save && p.reverse_tilt.is_empty() && !p.reverse_tilt_enabled);
}

#[test]
fn a_merge_keeps_every_field_an_item_leaves_out_and_checks_the_keys_it_keeps() {
    let mut h = Harness::new();
    let anna = store::ImportItem {
        easy_exit: Some(false),
        ..item("Anna", &[("seat_position", 200.0)], &["fob-1"])
    };
    h.import(
        vec![anna, item("Ben", &[], &["fob-2"])],
        store::ImportMode::Replace,
        false,
    )
    .unwrap();
    let before = h.core.store().profiles[0].clone();
    let only_auto_save = store::ImportItem {
        auto_save: Some(true),
        ..store::ImportItem::named("anna".into())
    };
    // Anna keeps fob-1, so nobody else may take it in the same import.
    let thief = item("Cleo", &[], &["fob-1"]);
    let r = h.import(
        vec![only_auto_save.clone(), thief],
        store::ImportMode::Merge,
        false,
    );
    assert!(
        matches!(&r, Err(Error::KeyInUse(m)) if m.contains("fob-1")),
        "{r:?}"
    );
    assert_eq!(h.core.store().profiles[0], before, "nothing changed");
    h.import(vec![only_auto_save], store::ImportMode::Merge, false)
        .unwrap();
    let after = &h.core.store().profiles[0];
    assert_eq!(after.name, "anna");
    assert!(after.auto_save);
    assert_eq!(
        (&after.positions, &after.keys, after.easy_exit),
        (&before.positions, &before.keys, before.easy_exit),
        "what the item left out is kept"
    );
    // A new profile that leaves fields out gets the defaults.
    let bare = store::ImportItem::named("Dora".into());
    h.import(vec![bare], store::ImportMode::Merge, false)
        .unwrap();
    let dora = h
        .core
        .store()
        .profiles
        .iter()
        .find(|p| p.name == "Dora")
        .cloned();
    let dora = dora.unwrap();
    assert_eq!(dora, store::Profile::new(dora.id, "Dora".into()));
}

#[test]
fn import_replace_deletes_everything_and_never_reuses_ids() {
    let mut h = Harness::new();
    h.park();
    let a = h.driver("Anna", "fob-a", 100.0);
    let b = h.driver("Ben", "fob-b", 150.0);
    h.select(a).unwrap();
    h.settle();
    let r = h.import(
        vec![
            item("anna", &[("seat_position", 10.0)], &["fob-b"]),
            item("Cleo", &[], &[]),
        ],
        store::ImportMode::Replace,
        false,
    );
    assert_eq!(
        r,
        Ok(Reply::Imported(vec![ProfileId::new(3), ProfileId::new(4)]))
    );
    let s = h.core.store();
    assert!(s.get(a).is_none() && s.get(b).is_none());
    assert_eq!(s.active, None, "the active profile was deleted");
    assert_eq!(s.next_id, 5);
    assert_eq!(s.get(ProfileId::new(3)).unwrap().name, "anna");
    assert_eq!(
        s.get(ProfileId::new(3)).unwrap().keys,
        vec!["fob-b".to_string()]
    );
    assert_eq!(h.disk.store.as_ref(), Some(s));
}

#[test]
fn import_merge_updates_by_name_ignoring_case_and_keeps_the_rest() {
    let mut h = Harness::new();
    h.park();
    let a = h.driver("Anna", "fob-a", 100.0);
    let b = h.driver("Ben", "fob-b", 150.0);
    h.select(a).unwrap();
    let mut anna = item("ANNA", &[("seat_position", 20.0)], &["fob-c"]);
    anna.easy_exit = Some(false);
    let r = h.import(
        vec![item("Dora", &[], &[]), anna],
        store::ImportMode::Merge,
        false,
    );
    assert_eq!(r, Ok(Reply::Imported(vec![ProfileId::new(3), a])));
    let s = h.core.store();
    let p = s.get(a).unwrap();
    assert_eq!(p.name, "ANNA");
    assert!(!p.easy_exit);
    assert_eq!(p.keys, vec!["fob-c".to_string()]);
    assert_eq!(
        p.positions,
        BTreeMap::from([("seat_position".to_string(), 20.0)])
    );
    assert_eq!(s.get(b).unwrap().name, "Ben", "kept");
    assert_eq!(s.active, Some(a), "still active");
    assert_eq!(s.profiles.len(), 3);
}

#[test]
fn a_failed_or_dry_import_changes_nothing() {
    let mut h = Harness::new();
    h.park();
    let a = h.driver("Anna", "fob-a", 100.0);
    let before = h.core.store().clone();
    let saved = h.disk.store.clone();
    let check = |h: &Harness| {
        assert_eq!(h.core.store(), &before);
        assert_eq!(h.disk.store, saved);
    };
    // A dry run that would succeed.
    let ok = vec![item("Ben", &[("seat_position", 10.0)], &["fob-b"])];
    let r = h.import(ok.clone(), store::ImportMode::Replace, true);
    assert_eq!(r, Ok(Reply::Imported(vec![])));
    check(&h);
    // Every kind of problem at once: listed, with the most fundamental one's error.
    let r = h.import(
        vec![
            item(
                "Ben",
                &[("seat_position", 400.0), ("wheel_tilt", -1.0)],
                &[],
            ),
            item("", &[("nope", 1.0)], &["", "k", "k"]),
            item("ben", &[("seat_height", f64::NAN)], &["fob-a"]),
        ],
        store::ImportMode::Merge,
        false,
    );
    let Err(Error::InvalidArgs(m)) = &r else {
        panic!("{r:?}")
    };
    for part in [
        "#1 \"Ben\": seat_position: 400 is outside",
        "#1 \"Ben\": wheel_tilt: -1 is outside",
        "#2 \"\": a profile name has 1 to 64 characters, not 0",
        "#2 \"\": key \"\": a key id has 1 to 64 bytes",
        "#2 \"\": key \"k\" is listed twice",
        "#2 \"\": unknown axis \"nope\"",
        "#3 \"ben\": the name is given twice (also #1, ignoring case)",
        "#3 \"ben\": seat_height: NaN is not a number",
        "#3 \"ben\": key \"fob-a\" is bound to profile \"Anna\", which is kept",
        "9 problems: ",
        "nothing was imported",
    ] {
        assert!(m.contains(part), "{part:?} not in {m}");
    }
    check(&h);
    // Only positions out of range: OutOfRange, listing each.
    let r = h.import(
        vec![
            item("A", &[("seat_position", 400.0)], &[]),
            item("B", &[("wheel_tilt", 101.0)], &[]),
        ],
        store::ImportMode::Replace,
        false,
    );
    let Err(Error::OutOfRange(m)) = &r else {
        panic!("{r:?}")
    };
    assert!(
        m.starts_with("2 problems: #1 \"A\": seat_position: 400"),
        "{m}"
    );
    assert!(m.contains("#2 \"B\": wheel_tilt: 101"), "{m}");
    check(&h);
    // A key given to two imported profiles; a key bound to a profile that is kept.
    let r = h.import(
        vec![item("B", &[], &["x"]), item("C", &[], &["x"])],
        store::ImportMode::Replace,
        false,
    );
    assert!(
        matches!(&r, Err(Error::KeyInUse(m)) if m.contains("also given to #1")),
        "{r:?}"
    );
    let r = h.import(
        vec![item("B", &[], &["fob-a"])],
        store::ImportMode::Merge,
        false,
    );
    assert!(matches!(&r, Err(Error::KeyInUse(_))), "{r:?}");
    // ... but not to one that is replaced, or updated in place.
    let r = h.import(
        vec![item("B", &[], &["fob-a"])],
        store::ImportMode::Replace,
        true,
    );
    assert_eq!(r, Ok(Reply::Imported(vec![])));
    let r = h.import(
        vec![item("anna", &[], &["fob-a"])],
        store::ImportMode::Merge,
        true,
    );
    assert_eq!(r, Ok(Reply::Imported(vec![])));
    // Limits.
    let many: Vec<_> = (0..1000)
        .map(|i| item(&format!("p{i}"), &[], &[]))
        .collect();
    let r = h.import(many, store::ImportMode::Replace, false);
    assert!(
        matches!(&r, Err(Error::LimitReached(m)) if m.contains("1000 profiles; at most 10")),
        "{r:?}"
    );
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let r = h.import(vec![item("K", &[], &keys)], store::ImportMode::Merge, false);
    assert!(
        matches!(&r, Err(Error::LimitReached(m)) if m.contains("21 keys; at most 19")),
        "{r:?}"
    );
    // At most 20 problems are listed.
    let bad: Vec<_> = (0..30).map(|_| item("", &[], &[])).collect();
    let Err(Error::InvalidArgs(m)) = h.import(bad, store::ImportMode::Replace, false) else {
        panic!()
    };
    // (30 bad names, and 30 profiles are more than 10.)
    assert!(m.starts_with("31 problems: "), "{m}");
    assert!(m.contains("#20 \"\"") && !m.contains("#21 \"\""), "{m}");
    assert!(m.ends_with("; and 11 more; nothing was imported"), "{m}");
    check(&h);
    assert_eq!(h.core.store().get(a).unwrap().name, "Anna");
}

#[test]
fn a_failed_write_imports_nothing() {
    struct Full;
    impl Storage for Full {
        fn save(&mut self, _: &Store) -> Result<(), SaveError> {
            Err("disk full".into())
        }
    }
    let mut c = core();
    let a = create(&mut c, "Anna");
    let before = c.store().clone();
    let r = c.request(
        Request::ImportProfiles {
            profiles: vec![item("Ben", &[], &[])],
            mode: store::ImportMode::Replace,
            dry_run: false,
        },
        0,
        &mut Full,
    );
    assert!(
        matches!(&r, Err(Error::Failed(m)) if m.contains("disk full")),
        "{r:?}"
    );
    assert_eq!(c.store(), &before);
    assert!(c.store().get(a).is_some());
    assert!(c.view().storage_error.is_some());
}

// Inhibitors: nothing moves while one is held, and nothing is replayed when it ends.

impl Harness {
    /// Take an inhibitor (uid 1000, pid 4242); its id.
    fn inhibit(&mut self, who: &str) -> u64 {
        let r = self.request(Request::Inhibit {
            who: who.into(),
            why: "a test".into(),
            uid: 1000,
            pid: 4242,
        });
        let Ok(Reply::Inhibitor(id)) = r else {
            panic!("inhibit: {r:?}");
        };
        id
    }

    fn uninhibit(&mut self, id: u64) {
        assert_eq!(self.request(Request::Uninhibit { id }), Ok(Reply::Done));
    }
}

#[track_caller]
fn assert_inhibited<T: std::fmt::Debug>(r: Result<T, Error>) {
    assert!(matches!(r, Err(Error::Inhibited(_))), "{r:?}");
}

#[test]
fn an_inhibitor_halts_the_motion_at_once_and_refuses_requested_motion() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.park();
    h.select(anna).unwrap();
    assert_eq!(h.events(), [Started(Reason::Recall, Some(anna))]);
    h.advance_until("under way", |h| h.at("seat_position") > 131.0);
    h.stopped();
    let ota = h.inhibit("ota");
    // Halted in the same step, every running motor told to stop.
    assert_eq!(h.events(), [Finished(Reason::Recall, Outcome::Inhibited)]);
    assert!(h.stopped().contains(&"seat_position".to_string()));
    assert_eq!(h.sim.running(), 0);
    assert!(!h.core.is_moving());
    h.moved();
    let p = h.at("seat_position");
    h.advance(1000);
    assert_eq!(h.at("seat_position"), p, "the seat kept moving");
    assert!(h.core.inhibited());
    let shown = &h.core.view().inhibitors;
    assert_eq!(shown.len(), 1);
    let i = &shown[0];
    assert_eq!(
        (i.who.as_str(), i.why.as_str(), i.uid, i.pid),
        ("ota", "a test", 1000, 4242)
    );

    // Requested motion fails, changing nothing; Stop and edits still work.
    assert_inhibited(h.select(anna));
    assert_inhibited(h.move_to("seat_position", 100.0));
    assert_inhibited(h.core.not_inhibited("cannot import now"));
    assert_eq!(h.request(Request::Stop), Ok(Reply::Done));
    h.request(Request::SetPositions {
        id: anna,
        positions: vec![(ax("seat_position"), 160.0)],
    })
    .unwrap();
    // A second inhibitor; the first released: still inhibited.
    let diag = h.inhibit("diag");
    h.uninhibit(ota);
    assert_inhibited(h.select(anna));
    let whos: Vec<String> = h.core.inhibitors().iter().map(|i| i.who.clone()).collect();
    assert_eq!(whos, ["diag"]);
    h.uninhibit(diag);
    assert!(!h.core.inhibited());
    assert_eq!(h.core.view().inhibitors, []);
    // Nothing was replayed, and nothing moved.
    h.advance(1000);
    assert_eq!(h.events(), []);
    assert_eq!(h.moved(), Vec::<String>::new());
    assert_eq!(h.at("seat_position"), p);
    // Motion works again.
    h.select(anna).unwrap();
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::Recall, Some(anna)),
            Finished(Reason::Recall, Outcome::Completed)
        ]
    );
    h.assert_at("seat_position", 160.0);
}

#[test]
fn inhibited_easy_exit_does_not_retract_nor_later() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    let id = h.inhibit("ota");
    h.shift_to_park();
    h.assert_no_motion();
    h.uninhibit(id);
    h.signals(&[Signal::SpeedKmh(0.0)]);
    h.advance(1000);
    h.assert_no_motion();
    assert_eq!(h.moved(), Vec::<String>::new());

    // A retract held back by locked doors is dropped too when an inhibitor comes.
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    h.signals(&[Signal::DoorsLocked(true)]);
    h.shift_to_park();
    h.assert_no_motion();
    let id = h.inhibit("ota");
    h.signals(&[Signal::DoorsLocked(false)]);
    h.assert_no_motion();
    h.uninhibit(id);
    h.signals(&[Signal::SpeedKmh(0.0)]);
    h.assert_no_motion();
    // The next real P transition retracts as ever.
    h.signals(&[Signal::Gear(Gear::D)]);
    h.retract(Some(anna));
}

#[test]
fn inhibited_restore_keeps_the_car_retracted_until_a_fresh_trigger() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    h.retract(Some(anna));
    let id = h.inhibit("ota");
    // A fresh press of the brake with the driver seated: no restore.
    h.signals(&[Signal::BrakePressed(true)]);
    assert_eq!(h.events(), []);
    assert!(h.easy_exit_active(), "still retracted");
    h.uninhibit(id);
    // The press held on is not a new one: nothing when other signals come.
    h.signals(&[Signal::SpeedKmh(0.0)]);
    assert_eq!(h.events(), []);
    assert!(h.easy_exit_active());
    // Released and pressed again: the restore.
    h.signals(&[Signal::BrakePressed(false)]);
    h.signals(&[Signal::BrakePressed(true)]);
    assert_eq!(h.events(), [Started(Reason::Restore, Some(anna))]);
    h.settle();
    assert_eq!(h.events(), [Finished(Reason::Restore, Outcome::Completed)]);
    h.assert_at("seat_position", 150.0);
    assert!(!h.easy_exit_active());
}

#[test]
fn inhibited_key_approach_does_not_recall_nor_later() {
    let mut h = Harness::with(key_config());
    let anna = h.driver("Anna", "anna-phone", 200.0);
    h.park();
    let id = h.inhibit("ota");
    h.walk(&[("anna-phone", (-4.0, 7.0), (-1.3, 0.0))], 25);
    assert_eq!(h.selections(), [some("anna-phone")]);
    assert_eq!(h.events(), []);
    h.uninhibit(id);
    h.stand(&[("anna-phone", (-1.3, 0.0))], 5);
    h.signals(&[Signal::DriverDoorOpen(true)]);
    assert_eq!(h.events(), [], "recalled after the inhibitor ended");
    assert_eq!(h.active(), None);
    assert_eq!(h.moved(), Vec::<String>::new());
    // Another approach later is recalled as ever.
    h.signals(&[Signal::DriverDoorOpen(false)]);
    h.advance(2000);
    assert_eq!(h.selections(), [None]);
    h.walk(&[("anna-phone", (-4.0, 7.0), (-1.3, 0.0))], 25);
    assert_eq!(h.events(), [Started(Reason::KeyApproach, Some(anna))]);
}

#[test]
fn an_inhibitor_halts_an_easy_exit_and_a_key_approach_alike() {
    let (mut h, anna) = with_anna(config::builtin().unwrap());
    h.drive_with(Some(anna), false);
    h.shift_to_park();
    assert_eq!(h.events(), [Started(Reason::EasyExit, Some(anna))]);
    h.advance_until("under way", |h| h.at("seat_position") > 151.0);
    let id = h.inhibit("ota");
    assert_eq!(h.events(), [Finished(Reason::EasyExit, Outcome::Inhibited)]);
    assert_eq!(h.sim.running(), 0);
    // The retract had begun: easy exit stays active, so that a restore brings the seat back.
    assert!(h.easy_exit_active());
    h.uninhibit(id);
    h.signals(&[Signal::BrakePressed(true)]);
    assert!(matches!(
        h.events().as_slice(),
        [Started(Reason::Restore, _)]
    ));

    let mut h = Harness::with(key_config());
    let ben = h.driver("Ben", "ben", 100.0);
    h.park();
    h.walk(&[("ben", (-4.0, 7.0), (-1.3, 0.0))], 25);
    assert_eq!(h.events(), [Started(Reason::KeyApproach, Some(ben))]);
    h.inhibit("ota");
    assert_eq!(
        h.events(),
        [Finished(Reason::KeyApproach, Outcome::Inhibited)]
    );
    // A bad request adds no inhibitor.
    let r = h.request(Request::Inhibit {
        who: String::new(),
        why: "x".into(),
        uid: 0,
        pid: 0,
    });
    assert!(matches!(r, Err(Error::InvalidArgs(_))), "{r:?}");
    assert_eq!(h.core.inhibitors().len(), 1);
}

/// The escaped text between the quotes of `quote`'s result.
fn quoted_text(q: &str) -> &str {
    let inner = &q[1..];
    &inner[..inner.rfind('"').expect("a closing quote")]
}

#[test]
fn quote_escapes_control_characters_and_bounds_the_escaped_text() {
    assert_eq!(quote("seat"), "\"seat\"");
    assert_eq!(quote("a\nb\0\u{1b}"), "\"a\\nb\\u{0}\\u{1b}\"");
    // Each NUL shows as 5 characters: 64 of them must not show as 320.
    let q = quote(&"\0".repeat(64));
    assert!(quoted_text(&q).chars().count() <= QUOTE_MAX, "{q}");
    assert!(q.ends_with("… (64 bytes)"), "{q}");
    assert!(!q.chars().any(char::is_control), "{q}");
}

#[test]
fn quote_escapes_bidi_characters() {
    let q = quote("abc\u{202e}fed\u{2066}");
    assert_eq!(q, "\"abc\\u{202e}fed\\u{2066}\"");
    let q = quote(&"\u{202e}".repeat(1000));
    assert!(quoted_text(&q).chars().count() <= QUOTE_MAX, "{q}");
    assert!(!q.contains('\u{202e}'), "{q}");
}

#[test]
fn quote_bounds_long_strings() {
    let s = "x".repeat(1 << 20);
    let q = quote(&s);
    assert_eq!(quoted_text(&q), "x".repeat(QUOTE_MAX));
    assert!(q.ends_with("… (1048576 bytes)"), "{q}");
    // Exactly QUOTE_MAX characters are shown whole.
    let s = "é".repeat(QUOTE_MAX);
    assert_eq!(quote(&s), format!("\"{s}\""));
}

#[test]
fn quote_num_is_short_for_huge_and_tiny_doubles() {
    assert_eq!(quote_num(1e308), "1e308");
    assert_eq!(
        quote_num(-1.7976931348623157e308),
        "-1.7976931348623157e308"
    );
    assert_eq!(quote_num(5e-324), "5e-324");
    assert_eq!(quote_num(12.5), "12.5");
    assert_eq!(quote_num(f64::NAN), "NaN");
    for v in [f64::MAX, f64::MIN_POSITIVE, 1.0 / 3.0, 123456789012345678.0] {
        assert!(quote_num(v).len() <= 24, "{v}: {}", quote_num(v));
    }
}

#[test]
fn position_errors_show_huge_doubles_short() {
    let cfg = config::builtin().unwrap();
    let ac = &cfg.axes[0];
    let e = check_position(ac, 1e308).unwrap_err();
    assert!(e.message().contains("1e308"), "{e}");
    assert!(e.message().len() < 120, "{e}");
    let e = check_position(ac, -1e300).unwrap_err();
    assert!(e.message().len() < 120, "{e}");
}

// Reverse tilt-down: the mirror of [reverse_tilt] (mirror_passenger_tilt, at 0) tilts by
// -25 in R and returns 5 s after R is left.

const MIRROR: &str = "mirror_passenger_tilt";

impl Harness {
    /// Parked with the driver seated, then into R at standstill.
    fn shift_into_reverse(&mut self) {
        self.park();
        self.signals(&[
            Signal::DriverSeatOccupied(true),
            Signal::DriverBeltBuckled(true),
        ]);
        self.events();
        self.moved();
        self.signals(&[Signal::Gear(Gear::R)]);
    }
}

#[test]
fn reverse_tilts_the_mirror_only_and_returns_it_after_the_delay() {
    let mut h = Harness::new();
    h.shift_into_reverse();
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::ReverseTilt, None),
            Finished(Reason::ReverseTilt, Outcome::Completed)
        ]
    );
    assert_eq!(h.moved(), [MIRROR], "only the mirror moves outside P");
    assert!((h.at(MIRROR) + 25.0).abs() <= 0.5, "{}", h.at(MIRROR));
    let kept = h.disk.reverse_tilt.clone().unwrap();
    assert_eq!(
        kept.pre_tilt.get(MIRROR),
        Some(&0.0),
        "written before the tilt"
    );
    // Out of R: nothing for 5 s, then back to where it was.
    h.signals(&[Signal::Gear(Gear::D)]);
    h.advance(4900);
    assert_eq!(h.events(), [], "not before the delay");
    h.advance(200);
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::ReverseReturn, None),
            Finished(Reason::ReverseReturn, Outcome::Completed)
        ]
    );
    assert_eq!(h.moved(), [MIRROR]);
    assert!(h.at(MIRROR).abs() <= 0.5, "{}", h.at(MIRROR));
    assert!(h.disk.reverse_tilt.clone().unwrap().pre_tilt.is_empty());
    assert_eq!(h.core.next_deadline(), None, "idle again: no timer");
}

#[test]
fn reverse_and_back_within_the_delay_does_not_bounce_and_speed_returns_at_once() {
    let mut h = Harness::new();
    h.shift_into_reverse();
    h.settle();
    h.events();
    h.moved();
    // R -> D -> R within the delay: the mirror stays down, nothing moves.
    h.signals(&[Signal::Gear(Gear::D)]);
    h.advance(3000);
    h.signals(&[Signal::Gear(Gear::R)]);
    h.advance(10_000);
    assert_eq!(h.events(), []);
    assert_eq!(h.moved(), Vec::<String>::new());
    // Faster than 15 km/h in R: back at once.
    h.signals(&[Signal::SpeedKmh(16.0)]);
    assert_eq!(h.events(), [Started(Reason::ReverseReturn, None)]);
    h.settle();
    assert!(h.at(MIRROR).abs() <= 0.5, "{}", h.at(MIRROR));
    // Slower again in R: no second tilt (only going into R tilts).
    h.signals(&[Signal::SpeedKmh(3.0)]);
    h.advance(1000);
    assert_eq!(
        h.events(),
        [Finished(Reason::ReverseReturn, Outcome::Completed)]
    );
}

#[test]
fn a_restart_while_tilted_still_returns_the_mirror() {
    let mut h = Harness::new();
    h.shift_into_reverse();
    h.settle();
    h.events();
    h.restart();
    // The new daemon hears the car already out of R: the mirror returns at once.
    h.signals(&[Signal::Gear(Gear::D), Signal::SpeedKmh(0.0)]);
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::ReverseReturn, None),
            Finished(Reason::ReverseReturn, Outcome::Completed)
        ]
    );
    assert!(h.at(MIRROR).abs() <= 0.5, "{}", h.at(MIRROR));
}

#[test]
fn the_occupant_and_inhibitors_win_over_reverse_tilt() {
    // Stop halts the tilt; the mirror still returns when R is left.
    let mut h = Harness::new();
    h.shift_into_reverse();
    h.advance(200);
    h.request(Request::Stop).unwrap();
    h.signals(&[Signal::Gear(Gear::D)]);
    h.advance(6000);
    h.settle();
    let ev = h.events();
    assert_eq!(
        ev[1],
        Finished(Reason::ReverseTilt, Outcome::Stopped),
        "{ev:?}"
    );
    assert_eq!(ev[2], Started(Reason::ReverseReturn, None), "{ev:?}");
    assert!(h.at(MIRROR).abs() <= 0.5);
    // A hand on the mirror during the tilt: overridden, the hand wins.
    let mut h = Harness::new();
    h.shift_into_reverse();
    h.advance(200);
    let fb = h.sim.0.set_position(h.id(MIRROR), -60.0).unwrap();
    h.core.feedback(fb, h.now);
    h.pump();
    assert_eq!(
        h.events()[1],
        Finished(Reason::ReverseTilt, Outcome::Overridden)
    );
    assert_eq!(h.at(MIRROR), -60.0);
    // An inhibitor: no tilt at all.
    let mut h = Harness::new();
    h.request(Request::Inhibit {
        who: "ota".into(),
        why: "update".into(),
        uid: 0,
        pid: 0,
    })
    .unwrap();
    h.shift_into_reverse();
    h.advance(1000);
    assert_eq!(h.events(), []);
    assert_eq!(h.at(MIRROR), 0.0);
}

#[test]
fn a_mirror_tilted_when_an_inhibitor_is_taken_returns_once_it_ends() {
    let mut h = Harness::new();
    h.shift_into_reverse();
    h.settle();
    assert!(
        (h.at(MIRROR) + 25.0).abs() <= 0.5,
        "tilted: {}",
        h.at(MIRROR)
    );
    h.events();
    h.request(Request::Inhibit {
        who: "ota".into(),
        why: "update".into(),
        uid: 0,
        pid: 0,
    })
    .unwrap();
    h.signals(&[Signal::Gear(Gear::D)]);
    h.advance(12_000);
    assert_eq!(h.events(), [], "nothing moves while inhibited");
    let id = h.core.inhibitors()[0].id;
    h.request(Request::Uninhibit { id }).unwrap();
    h.advance(6000);
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::ReverseReturn, None),
            Finished(Reason::ReverseReturn, Outcome::Completed)
        ]
    );
    assert!(h.at(MIRROR).abs() <= 0.5, "returned: {}", h.at(MIRROR));
}

#[test]
fn auto_save_at_park_keeps_the_mirror_where_it_was_before_the_tilt() {
    let mut h = Harness::new();
    let anna = h.profile("Anna", &[(MIRROR, 10.0)], &[]);
    h.park();
    h.select(anna).unwrap();
    h.settle();
    h.request(Request::SetAutoSave {
        id: anna,
        enabled: true,
    })
    .unwrap();
    h.shift_into_reverse();
    h.settle();
    assert!(
        (h.at(MIRROR) + 15.0).abs() <= 0.5,
        "tilted from 10: {}",
        h.at(MIRROR)
    );
    // Straight from R into P: the drive ends; the profile keeps 10, not the tilt.
    h.request(Request::SetPositions {
        id: anna,
        positions: vec![(h.id(MIRROR), 12.0)],
    })
    .unwrap();
    h.signals(&[Signal::Gear(Gear::P)]);
    let p = h.core.store().get(anna).unwrap().positions[MIRROR];
    assert!((p - 10.0).abs() <= 0.5, "saved {p}");
}

#[test]
fn the_profile_says_where_the_mirror_tilts_and_whether_it_does() {
    let mut h = Harness::new();
    let anna = h.profile("Anna", &[], &[]);
    h.park();
    h.select(anna).unwrap();
    h.settle();
    // Only the axes of [reverse_tilt], within their range; a refusal changes nothing.
    let seat = h.id("seat_position");
    let e = (h.request(Request::SetReverseTilt {
        id: anna,
        positions: vec![(h.id(MIRROR), -40.0), (seat, 10.0)],
    }))
    .unwrap_err();
    assert!(matches!(e, Error::InvalidArgs(_)), "{e}");
    let e = (h.request(Request::SetReverseTilt {
        id: anna,
        positions: vec![(h.id(MIRROR), -140.0)],
    }))
    .unwrap_err();
    assert!(matches!(e, Error::OutOfRange(_)), "{e}");
    assert!(h.core.store().get(anna).unwrap().reverse_tilt.is_empty());
    h.request(Request::SetReverseTilt {
        id: anna,
        positions: vec![(h.id(MIRROR), -40.0)],
    })
    .unwrap();
    assert_eq!(h.disk.store.clone().unwrap().schema_needed(), 4);
    h.shift_into_reverse();
    h.settle();
    assert_eq!(
        h.events(),
        [
            Started(Reason::ReverseTilt, Some(anna)),
            Finished(Reason::ReverseTilt, Outcome::Completed)
        ]
    );
    assert!((h.at(MIRROR) + 40.0).abs() <= 0.5, "{}", h.at(MIRROR));
    h.signals(&[Signal::Gear(Gear::P)]);
    h.advance(6000);
    h.settle();
    assert!(h.at(MIRROR).abs() <= 0.5, "returned: {}", h.at(MIRROR));
    h.events();
    // Turned off for this profile: R moves nothing.
    h.request(Request::SetReverseTiltEnabled {
        id: anna,
        enabled: false,
    })
    .unwrap();
    let before = h.at(MIRROR);
    h.signals(&[Signal::Gear(Gear::R)]);
    h.advance(2000);
    assert_eq!(h.events(), []);
    assert_eq!(h.at(MIRROR), before);
}

#[test]
fn a_hand_adjustment_in_reverse_becomes_the_profiles_reverse_position() {
    let mut h = Harness::new();
    let anna = h.profile("Anna", &[(MIRROR, 10.0)], &[]);
    h.park();
    h.select(anna).unwrap();
    h.settle();
    let driven = h.at(MIRROR);
    h.shift_into_reverse();
    h.settle();
    assert!(
        (h.at(MIRROR) - driven + 25.0).abs() <= 0.5,
        "{}",
        h.at(MIRROR)
    );
    h.events();
    // The occupant sets the mirror lower by hand, in two goes.
    for at in [-30.0, -35.0] {
        let fb = h.sim.0.set_position(h.id(MIRROR), at).unwrap();
        h.core.feedback(fb, h.now);
        h.pump();
    }
    assert!(h.core.store().get(anna).unwrap().reverse_tilt.is_empty());
    // Leaving R stores where it was left, before the return, which still goes to 10.
    h.signals(&[Signal::Gear(Gear::D)]);
    let kept = h.disk.store.clone().unwrap();
    assert_eq!(
        kept.get(anna).unwrap().reverse_tilt.get(MIRROR),
        Some(&-35.0)
    );
    assert_eq!(
        kept.get(anna).unwrap().positions[MIRROR],
        10.0,
        "positions untouched"
    );
    h.advance(6000);
    h.settle();
    assert!((h.at(MIRROR) - driven).abs() <= 0.5, "{}", h.at(MIRROR));
    // A hand move out of R is not a reverse position.
    let fb = h.sim.0.set_position(h.id(MIRROR), 5.0).unwrap();
    h.core.feedback(fb, h.now);
    h.pump();
    h.signals(&[Signal::Gear(Gear::R)]);
    h.settle();
    assert!(
        (h.at(MIRROR) + 35.0).abs() <= 0.5,
        "the stored reverse position: {}",
        h.at(MIRROR)
    );
    h.signals(&[Signal::Gear(Gear::D)]);
    h.advance(6000);
    h.settle();
    assert!(
        (h.at(MIRROR) - 5.0).abs() <= 0.5,
        "back to where the hand left it: {}",
        h.at(MIRROR)
    );
    assert_eq!(
        h.core.store().get(anna).unwrap().reverse_tilt.get(MIRROR),
        Some(&-35.0),
        "unchanged without a hand in R"
    );
}

#[test]
fn a_reverse_position_a_client_sets_after_a_hand_adjustment_in_reverse_is_kept() {
    let mut h = Harness::new();
    let anna = h.profile("Anna", &[(MIRROR, 10.0)], &[]);
    h.park();
    h.select(anna).unwrap();
    h.settle();
    h.shift_into_reverse();
    h.settle();
    h.events();
    let fb = h.sim.0.set_position(h.id(MIRROR), -30.0).unwrap();
    h.core.feedback(fb, h.now);
    h.pump();
    // The UI sets the reverse position after the hand did: the newer wins.
    h.request(Request::SetReverseTilt {
        id: anna,
        positions: vec![(h.id(MIRROR), -45.0)],
    })
    .unwrap();
    h.signals(&[Signal::Gear(Gear::D)]);
    let tilt = |h: &Harness| {
        h.core
            .store()
            .get(anna)
            .unwrap()
            .reverse_tilt
            .get(MIRROR)
            .copied()
    };
    assert_eq!(tilt(&h), Some(-45.0));
    h.advance(6000);
    h.settle();
    // A hand adjustment after the client's set still counts.
    h.shift_into_reverse();
    h.settle();
    h.request(Request::SetReverseTilt {
        id: anna,
        positions: vec![(h.id(MIRROR), -45.0)],
    })
    .unwrap();
    let fb = h.sim.0.set_position(h.id(MIRROR), -20.0).unwrap();
    h.core.feedback(fb, h.now);
    h.pump();
    h.signals(&[Signal::Gear(Gear::D)]);
    assert_eq!(tilt(&h), Some(-20.0));
}
