//! Vehicle signals from the KUKSA databroker (`[vehicle] source = "kuksa"`) on the real daemon
//! with the mock actuators and the in-process test broker: the interlock from SelectedGear and
//! Speed, the manual switches, easy exit and restore from the broker's signals, values not
//! reported, a broker lost and back, D-Bus UpdateSignals refused, and the start-up checks.
//! (The mapping of each value is unit-tested in `src/kuksa/signals.rs`.)
#![cfg(feature = "kuksa")]

use crate::common;

use std::collections::HashMap;

use common::kuksa::*;
use common::*;
use zbus::{OwnedObjectPath, Variant};

const INTERLOCKED: &str = ErrorName::Interlocked.as_str();
const NOT_SUPPORTED: &str = ErrorName::NotSupported.as_str();

/// A profile that moves the seat 130 → 180 mm (2 s at real speed) and the wheel.
async fn anna(s: &Setup) -> OwnedObjectPath {
    let m = s.manager().await;
    let path = m.create_profile("Anna").await.unwrap();
    let positions: HashMap<&str, f64> = [("seat_position", 180.0), ("wheel_tilt", 70.0)]
        .into_iter()
        .collect();
    s.profile(&path)
        .await
        .set_positions(positions)
        .await
        .unwrap();
    path
}

/// Parked (from the broker), a recall at real speed under way; the profile and the
/// MotionFinished stream.
async fn slow_recall(b: &TestBroker, s: &Setup) -> (OwnedObjectPath, MotionFinishedStream) {
    let path = anna(s).await;
    park(b, s).await;
    s.mock().await.set_speed_factor(1.0).await.unwrap();
    let fin = recall(s, &path).await;
    // Under way: the seat reports a position other than where it was.
    wait_prop(s, "seat_position", "Position", |p: &f64| *p != 130.0).await;
    (path, fin)
}

#[tokio::test]
async fn motion_is_interlocked_until_the_broker_reports_p_and_speed() {
    let (b, s, _d) = kuksa_setup(&[]).await;
    let v = s.vehicle().await;
    assert_eq!(v.source().await.unwrap(), "kuksa");
    let path = anna(&s).await;
    let m = s.manager().await;
    // The broker has no values yet: nothing reported, nothing moves.
    assert_eq!(v.gear().await.unwrap(), "");
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);

    b.gear(GEAR_P);
    wait_vehicle(&s, "Gear", "P".to_string()).await;
    assert!(v.speed_kmh().await.unwrap() < 0.0, "speed not reported yet");
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);

    b.speed(12.0);
    wait_vehicle(&s, "SpeedKmh", 12.0).await;
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);

    b.gear(GEAR_R);
    b.speed(0.0);
    wait_vehicle(&s, "SpeedKmh", 0.0).await;
    assert_eq!(v.gear().await.unwrap(), "R");
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);
    b.gear(GEAR_N);
    wait_vehicle(&s, "Gear", "N".to_string()).await;
    b.gear(3);
    wait_vehicle(&s, "Gear", "D".to_string()).await;

    park(&b, &s).await;
    let mut fin = recall(&s, &path).await;
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert_position(&s, "seat_position", 180.0).await;
}

#[tokio::test]
async fn leaving_p_mid_motion_halts_it() {
    let (b, s, _d) = kuksa_setup(&[]).await;
    let (_path, mut fin) = slow_recall(&b, &s).await;
    b.gear(GEAR_D);
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "interlocked".into())
    );
    assert_halted_between(&s, "seat_position", 130.0, 180.0, 25.0).await;
}

#[tokio::test]
async fn speeding_up_mid_motion_halts_it() {
    let (b, s, _d) = kuksa_setup(&[]).await;
    let (_path, mut fin) = slow_recall(&b, &s).await;
    b.speed(4.0);
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "interlocked".into())
    );
    assert_halted_between(&s, "seat_position", 130.0, 180.0, 25.0).await;
}

#[tokio::test]
async fn a_seat_switch_overrides_and_interlocks_until_released() {
    let (b, s, _d) = kuksa_setup(&[]).await;
    let (path, mut fin) = slow_recall(&b, &s).await;
    b.switch(2, true);
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "overridden".into())
    );
    assert_halted_between(&s, "seat_position", 130.0, 180.0, 25.0).await;
    let v = s.vehicle().await;
    assert!(v.manual_control().await.unwrap());

    // Another switch engaged, the first released: still in use.
    b.switch(5, true);
    b.switch(2, false);
    b.driver_door_open(true);
    wait_vehicle(&s, "DriverDoorOpen", true).await;
    assert!(v.manual_control().await.unwrap());
    assert_ne!(v.interlock().await.unwrap(), "");
    let m = s.manager().await;
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);
    b.switch(5, false);
    wait_vehicle(&s, "ManualControl", false).await;
    assert_eq!(v.interlock().await.unwrap(), "");
    m.select_profile(&path).await.unwrap();
    b.switch(0, true);
    wait_vehicle(&s, "ManualControl", true).await;
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);
}

#[tokio::test]
async fn shifting_into_p_retracts_and_the_brake_pedal_restores() {
    let (b, s, _d) = kuksa_setup(&[]).await;
    let path = anna(&s).await;
    park(&b, &s).await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    let mut fin = recall(&s, &path).await;
    assert_eq!(started(&mut st).await.0, "recall");
    assert_eq!(finished(&mut fin).await.1, "completed");

    // Seated, belted, foot off the brake, nobody behind, doors unlocked, driving.
    b.driver_seat("OCCUPIED");
    b.belt(true);
    b.brake(0);
    b.rear_seat("EMPTY");
    b.doors_locked(false);
    drive(&b, &s).await;
    assert!(s.vehicle().await.driver_seat_occupied().await.unwrap());

    b.gear(GEAR_P);
    assert_eq!(
        started(&mut st).await,
        ("easy-exit".into(), path.to_string())
    );
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert!(m.easy_exit_active().await.unwrap());
    assert_position(&s, "seat_position", 230.0).await;

    // A light touch (not above brake_threshold = 5 %) is not a press; a real one restores.
    b.brake(5);
    b.brake(40);
    assert_eq!(started(&mut st).await, ("restore".into(), path.to_string()));
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert!(!m.easy_exit_active().await.unwrap());
    assert_position(&s, "seat_position", 180.0).await;
}

#[tokio::test]
async fn unknown_and_missing_values_are_not_reported() {
    let (b, s, _d) = kuksa_setup(&[]).await;
    let v = s.vehicle().await;
    // No value at all: the daemon's defaults, except for the two whose false permits
    // something: someone may sit behind, the doors may be locked.
    park(&b, &s).await;
    assert!(!v.driver_seat_occupied().await.unwrap());
    assert!(!v.driver_door_open().await.unwrap());
    assert!(v.rear_occupied().await.unwrap());
    assert!(v.doors_locked().await.unwrap());

    b.driver_seat("UNKNOWN");
    b.rear_seat("EMPTY");
    // Values are applied in the order published: once the next one shows, the ones before it
    // were taken.
    b.driver_door_open(true);
    wait_vehicle(&s, "DriverDoorOpen", true).await;
    assert!(!v.driver_seat_occupied().await.unwrap());
    assert!(!v.rear_occupied().await.unwrap());

    b.driver_seat("OCCUPIED");
    b.doors_locked(false);
    wait_vehicle(&s, "DoorsLocked", false).await;
    assert!(v.driver_seat_occupied().await.unwrap());
    // UNKNOWN and no value report nothing: the last reported value stays; but an unknown
    // rear seat is occupied, and an unknown lock locked.
    b.driver_seat("UNKNOWN");
    b.rear_seat("UNKNOWN");
    b.set(&vss_signals().doors_locked, None);
    b.driver_door_open(false);
    wait_vehicle(&s, "DriverDoorOpen", false).await;
    assert!(v.driver_seat_occupied().await.unwrap());
    assert!(v.rear_occupied().await.unwrap());
    assert!(v.doors_locked().await.unwrap());
    b.rear_seat("EMPTY");
    wait_vehicle(&s, "RearOccupied", false).await;
    b.set(&vss_signals().rear_occupancy, None);
    wait_vehicle(&s, "RearOccupied", true).await;

    // Gear or speed without a value: not reported, interlocked.
    b.set(&vss_signals().speed, None);
    wait_vehicle(&s, "SpeedKmh", -1.0).await;
    assert_ne!(v.interlock().await.unwrap(), "");
    b.speed(0.0);
    b.set(&vss_signals().gear, None);
    wait_vehicle(&s, "Gear", String::new()).await;
    assert_ne!(v.interlock().await.unwrap(), "");
}

/// The easy-exit retract with the rear seat UNKNOWN and the lock without a value: held back
/// until the lock reports unlocked, then the rear guard keeps the seat where it is (the
/// shipped `rear_occupied_back_mm = 0`): an unknown rear seat is an occupied one.
#[tokio::test]
async fn an_unknown_rear_seat_guards_the_retract_and_an_unknown_lock_holds_it() {
    let (b, s, _d) = kuksa_setup(&[]).await;
    let path = anna(&s).await;
    park(&b, &s).await;
    let m = s.manager().await;
    let mut st = m.receive_motion_started().await.unwrap();
    // A recall asked for is not automatic: the unknown lock does not hold it.
    let mut fin = recall(&s, &path).await;
    assert_eq!(started(&mut st).await.0, "recall");
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert_position(&s, "seat_position", 180.0).await;

    b.driver_seat("OCCUPIED");
    b.rear_seat("UNKNOWN");
    drive(&b, &s).await;
    let v = s.vehicle().await;
    assert!(v.rear_occupied().await.unwrap());
    assert!(v.doors_locked().await.unwrap());
    b.gear(GEAR_P);
    wait_log(&s, "easy exit: held back (the doors are locked").await;
    assert!(!m.easy_exit_active().await.unwrap());
    assert_eq!(m.state().await.unwrap(), "idle");

    b.doors_locked(false);
    assert_eq!(
        started(&mut st).await,
        ("easy-exit".into(), path.to_string())
    );
    assert_eq!(finished(&mut fin).await.1, "completed");
    assert!(m.easy_exit_active().await.unwrap());
    // "+50" would be 230: the guard kept the seat off whoever may sit behind.
    assert_position(&s, "seat_position", 180.0).await;
}

#[tokio::test]
async fn a_lost_broker_interlocks_and_halts_then_reconnects() {
    let (mut b, s, _d) = kuksa_setup(&[]).await;
    b.rear_seat("EMPTY");
    b.doors_locked(false);
    wait_vehicle(&s, "DoorsLocked", false).await;
    wait_vehicle(&s, "RearOccupied", false).await;
    let (path, mut fin) = slow_recall(&b, &s).await;
    b.stop().await;
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "interlocked".into())
    );
    wait_vehicle(&s, "Gear", String::new()).await;
    let v = s.vehicle().await;
    // Nothing the broker said stays: someone may be behind, the doors may be locked.
    assert!(v.rear_occupied().await.unwrap());
    assert!(v.doors_locked().await.unwrap());
    assert!(v.speed_kmh().await.unwrap() < 0.0);
    assert_ne!(v.interlock().await.unwrap(), "");
    assert_halted_between(&s, "seat_position", 130.0, 180.0, 25.0).await;
    let m = s.manager().await;
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);

    // Back (with no values yet, as a restarted broker is), then P again from its provider:
    // the daemon reconnects and takes it; nothing moved by itself meanwhile.
    let seat = s.actuator("seat_position").await.position().await.unwrap();
    b.restart().await;
    park(&b, &s).await;
    assert_eq!(m.state().await.unwrap(), "idle");
    assert_eq!(
        s.actuator("seat_position").await.position().await.unwrap(),
        seat
    );
    s.mock().await.set_speed_factor(100.0).await.unwrap();
    m.select_profile(&path).await.unwrap();
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
    assert!(
        s.daemon.stderr().contains("reconnecting"),
        "the loss is logged"
    );
}

#[tokio::test]
async fn update_signals_is_refused_and_changes_nothing() {
    let (b, s, _d) = kuksa_setup(&[]).await;
    park(&b, &s).await;
    let r = s
        .signals(&[
            ("gear", Variant::from("D")),
            ("manual_control", Variant::from(true)),
        ])
        .await;
    assert_eq!(err_name(r), NOT_SUPPORTED);
    let v = s.vehicle().await;
    assert_eq!(v.gear().await.unwrap(), "P");
    assert!(!v.manual_control().await.unwrap());
    assert_eq!(v.interlock().await.unwrap(), "");
    // Not even a malformed call gets further than that.
    let r = s.signals(&[("bogus", Variant::from(1u8))]).await;
    assert_eq!(err_name(r), NOT_SUPPORTED);
}

#[tokio::test]
async fn the_source_is_dbus_by_default() {
    let (s, _d) = setup(&test_config(&[])).await;
    assert_eq!(s.vehicle().await.source().await.unwrap(), "dbus");
    s.park().await;
}

#[tokio::test]
async fn a_signal_the_broker_lacks_or_mistypes_exits_78() {
    let b = TestBroker::start().await;
    let bus = Bus::start();
    let sig = vss_signals();
    for (from, to, needle) in [
        (
            format!("gear = \"{}\"", sig.gear),
            "gear = \"Vehicle.Powertrain.Transmission.NoSuchGear\"".to_string(),
            "[kuksa.signals] gear: Vehicle.Powertrain.Transmission.NoSuchGear is not a signal \
             the broker knows",
        ),
        (
            format!("speed = \"{}\"", sig.speed),
            format!("speed = \"{}\"", sig.driver_door_open),
            "[kuksa.signals] speed: Vehicle.Cabin.Door.Row1.DriverSide.IsOpen is a boolean at \
             the broker, not a number",
        ),
        (
            format!("driver_belt = \"{}\"", sig.driver_belt),
            format!("driver_belt = \"{}\"", sig.brake),
            "[kuksa.signals] driver_belt: Vehicle.Chassis.Brake.PedalPosition is a uint8 at the \
             broker, not a boolean",
        ),
        (
            format!("\"{}\",", sig.manual_switches[0]),
            format!("\"{}\",", sig.driver_seat_occupancy),
            "[kuksa.signals] manual_switches: Vehicle.Cabin.Seat.Row1.DriverSide.OccupancyStatus \
             is a string",
        ),
    ] {
        let cfg = kuksa_config(&b.address(), &[(&from, &to)]);
        let (status, err) = run_until_exit(&bus, &cfg).await;
        assert_eq!(status.code(), Some(78), "{to}: {err}");
        assert!(err.contains(needle), "{to}: {err}");
    }
}

#[tokio::test]
async fn an_unreachable_broker_exits_1_when_required() {
    let bus = Bus::start();
    let addr = free_addr();
    let cfg = kuksa_config(
        &format!("http://{addr}"),
        &[("required = false", "required = true")],
    );
    let (status, err) = run_until_exit(&bus, &cfg).await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("required") && err.contains(&addr.to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_broker_not_required_starts_interlocked_and_connects_later() {
    let addr = free_addr();
    let (s, _d) = setup(&kuksa_config(&format!("http://{addr}"), &[])).await;
    let v = s.vehicle().await;
    assert_eq!(v.gear().await.unwrap(), "");
    assert_ne!(v.interlock().await.unwrap(), "");
    let path = anna(&s).await;
    let m = s.manager().await;
    assert_eq!(err_name(m.select_profile(&path).await), INTERLOCKED);

    let b = TestBroker::start_at(addr).await;
    park(&b, &s).await;
    let mut fin = recall(&s, &path).await;
    assert_eq!(
        finished(&mut fin).await,
        ("recall".into(), "completed".into())
    );
}

#[tokio::test]
async fn a_broker_back_with_another_vss_keeps_the_daemon_interlocked() {
    let (mut b, s, _d) = kuksa_setup(&[]).await;
    park(&b, &s).await;
    // The broker comes back without the gear signal: the daemon must not guess a gear.
    b.restart_with(vss_without("SelectedGear")).await;
    wait_vehicle(&s, "Gear", String::new()).await;
    wait_log(&s, "SelectedGear is not a signal the broker knows").await;
    // A speed published now would reach a daemon subscribed despite the mismatch. Two more
    // checks of the metadata after it (retries go to the debug log) leave such a daemon all
    // the time to show it; this one must still show none and hold no subscription.
    let again = "still interlocked, checking again";
    let checks = log_count(&s, again);
    b.speed(0.0);
    wait_log_count(&s, again, checks + 2).await;
    let v = s.vehicle().await;
    assert!(
        v.speed_kmh().await.unwrap() < 0.0,
        "subscribed to a mismatch"
    );
    assert_eq!(b.handle().subscribers(&vss_signals().speed), 0);
    assert_ne!(v.interlock().await.unwrap(), "");
    // Fixed: it connects again by itself.
    b.restart().await;
    park(&b, &s).await;
}

#[tokio::test]
async fn a_broker_with_a_token_takes_the_token_file() {
    let b = TestBroker::start_with_token("sesame").await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "sesame\n").unwrap();
    let with_token = format!("token_file = \"{}\"", token.display());

    // Without it the broker refuses the daemon: required, it does not start.
    let bus = Bus::start();
    let cfg = kuksa_config(&b.address(), &[("required = false", "required = true")]);
    let (status, err) = run_until_exit(&bus, &cfg).await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("Unauthenticated"), "{err}");

    // With it, the subscription (a stream) carries it too.
    let cfg = kuksa_config(
        &b.address(),
        &[
            ("required = false", "required = true"),
            ("token_file = \"\"", &with_token),
        ],
    );
    let (s, _d) = setup(&cfg).await;
    park(&b, &s).await;
}

/// The broker's Unix socket (`address = "unix:/path"`, the preferred way on a car: no network
/// for the daemon): the signals arrive as over TCP.
#[tokio::test]
async fn signals_arrive_over_the_brokers_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("databroker.sock");
    let handle = driverprofiled_kuksa::broker::start(
        driverprofiled_kuksa::broker::test_vss(),
        driverprofiled_kuksa::broker::Listen::Unix(sock.clone()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(handle.address(), format!("unix:{}", sock.display()));
    let (s, _d) = setup(&kuksa_config(&handle.address(), &[])).await;
    handle
        .set(&vss_signals().gear, Some(int32(GEAR_P)))
        .unwrap();
    handle.set(&vss_signals().speed, Some(float(0.0))).unwrap();
    wait_vehicle(&s, "Gear", "P".to_string()).await;
    wait_vehicle(&s, "Interlock", String::new()).await;
    handle.stop().await;
    // The socket gone: not reported any more, so interlocked again.
    wait_vehicle(&s, "Gear", String::new()).await;
}

/// A `kuksa.val.v2` server that keeps its connections (hyper answers HTTP/2 PINGs, so the
/// keepalive never ends them) but does not answer calls: ListMetadata never answers, or is
/// answered by the real test broker at `metadata_from`; the first Subscribe never answers,
/// later ones are accepted and never send a response. Or, `flap`, every Subscribe sends its
/// first response and ends at once (a broker that fails right after answering). It records
/// when each Subscribe came. Everything else is unimplemented.
mod stall {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use driverprofiled_kuksa::connect::{self, Address, Bearer, Client};
    use driverprofiled_kuksa::proto::val_server::{Val, ValServer};
    use driverprofiled_kuksa::proto::*;
    use tonic::codegen::tokio_stream::{self, wrappers::TcpListenerStream};
    use tonic::{Request, Response, Status, Streaming};

    pub struct Stall {
        metadata_from: Option<Client>,
        flap: bool,
        subscribes: Arc<Mutex<Vec<Instant>>>,
    }

    /// Serve it on a free port of 127.0.0.1; its `http://` address, and when each Subscribe
    /// came.
    pub async fn start(
        metadata_from: Option<&str>,
        flap: bool,
    ) -> (String, Arc<Mutex<Vec<Instant>>>) {
        let metadata_from = match metadata_from {
            Some(a) => {
                let addr: Address = a.parse().unwrap();
                let timeout = std::time::Duration::from_secs(5);
                Some(
                    connect::connect(&addr, Bearer::new(None).unwrap(), timeout)
                        .await
                        .unwrap(),
                )
            }
            None => None,
        };
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let subscribes = Arc::new(Mutex::new(Vec::new()));
        let svc = ValServer::new(Stall {
            metadata_from,
            flap,
            subscribes: subscribes.clone(),
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(TcpListenerStream::new(l)),
        );
        (format!("http://{addr}"), subscribes)
    }

    type Pending<T> = tokio_stream::Pending<Result<T, Status>>;
    type Boxed<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

    fn no<T>() -> Result<T, Status> {
        Err(Status::unimplemented("not in this test server"))
    }

    #[tonic::async_trait]
    impl Val for Stall {
        async fn get_value(
            &self,
            _: Request<GetValueRequest>,
        ) -> Result<Response<GetValueResponse>, Status> {
            no()
        }
        async fn get_values(
            &self,
            _: Request<GetValuesRequest>,
        ) -> Result<Response<GetValuesResponse>, Status> {
            no()
        }
        type SubscribeStream = Boxed<SubscribeResponse>;
        async fn subscribe(
            &self,
            _: Request<SubscribeRequest>,
        ) -> Result<Response<Self::SubscribeStream>, Status> {
            let n = {
                let mut v = self.subscribes.lock().unwrap();
                v.push(Instant::now());
                v.len()
            };
            if self.flap {
                let first = SubscribeResponse::default();
                return Ok(Response::new(Box::pin(tokio_stream::once(Ok(first)))));
            }
            if n == 1 {
                std::future::pending::<()>().await;
            }
            Ok(Response::new(Box::pin(tokio_stream::pending())))
        }
        type SubscribeByIdStream = Pending<SubscribeByIdResponse>;
        async fn subscribe_by_id(
            &self,
            _: Request<SubscribeByIdRequest>,
        ) -> Result<Response<Self::SubscribeByIdStream>, Status> {
            no()
        }
        async fn actuate(
            &self,
            _: Request<ActuateRequest>,
        ) -> Result<Response<ActuateResponse>, Status> {
            no()
        }
        async fn actuate_stream(
            &self,
            _: Request<Streaming<ActuateRequest>>,
        ) -> Result<Response<ActuateResponse>, Status> {
            no()
        }
        async fn batch_actuate(
            &self,
            _: Request<BatchActuateRequest>,
        ) -> Result<Response<BatchActuateResponse>, Status> {
            no()
        }
        async fn list_metadata(
            &self,
            r: Request<ListMetadataRequest>,
        ) -> Result<Response<ListMetadataResponse>, Status> {
            match &self.metadata_from {
                Some(c) => c.clone().list_metadata(r.into_inner()).await,
                None => std::future::pending().await,
            }
        }
        async fn publish_value(
            &self,
            _: Request<PublishValueRequest>,
        ) -> Result<Response<PublishValueResponse>, Status> {
            no()
        }
        type OpenProviderStreamStream = Pending<OpenProviderStreamResponse>;
        async fn open_provider_stream(
            &self,
            _: Request<Streaming<OpenProviderStreamRequest>>,
        ) -> Result<Response<Self::OpenProviderStreamStream>, Status> {
            no()
        }
        async fn get_server_info(
            &self,
            _: Request<GetServerInfoRequest>,
        ) -> Result<Response<GetServerInfoResponse>, Status> {
            no()
        }
    }
}

/// A broker that keeps the connection but answers no call: ListMetadata at start is bounded
/// by `connect_timeout_s`. Required, the daemon exits 1; else it serves D-Bus interlocked
/// (and a SIGTERM ends it as always).
#[tokio::test]
async fn a_broker_that_answers_no_call_is_unreachable() {
    let (address, _) = stall::start(None, false).await;
    let quick = ("connect_timeout_s = 2.0", "connect_timeout_s = 0.5");

    let bus = Bus::start();
    let cfg = kuksa_config(&address, &[quick, ("required = false", "required = true")]);
    let (status, err) = run_until_exit(&bus, &cfg).await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("required") && err.contains("did not answer ListMetadata within 500 ms"),
        "{err}"
    );

    let (mut s, _d) = setup(&kuksa_config(&address, &[quick])).await;
    let v = s.vehicle().await;
    assert_eq!(v.gear().await.unwrap(), "");
    assert_ne!(v.interlock().await.unwrap(), "");
    assert!(v.rear_occupied().await.unwrap());
    assert!(v.doors_locked().await.unwrap());
    let path = anna(&s).await;
    assert_eq!(
        err_name(s.manager().await.select_profile(&path).await),
        INTERLOCKED
    );
    assert!(s.daemon.terminate().success(), "{}", s.daemon.stderr());
}

/// A broker that lists the metadata but never answers the Subscribe, or accepts it and never
/// sends the current values: each is bounded, taken as a broker lost, and retried.
#[tokio::test]
async fn a_subscription_that_never_answers_is_retried() {
    let b = TestBroker::start().await;
    let (address, _) = stall::start(Some(&b.address()), false).await;
    let quick = ("connect_timeout_s = 2.0", "connect_timeout_s = 0.5");
    let (s, _d) = setup(&kuksa_config(&address, &[quick])).await;
    wait_log(&s, "did not answer Subscribe within 500 ms").await;
    wait_log(&s, "did not answer Subscribe with the values within 500 ms").await;
    let v = s.vehicle().await;
    assert_eq!(v.gear().await.unwrap(), "");
    assert_ne!(v.interlock().await.unwrap(), "");
}

/// A broker that ends every subscription right after its first response: the delays keep
/// growing (they start from 0.5 s again only after a subscription that stayed up), and the
/// same loss is logged as a warning once.
#[tokio::test]
async fn a_broker_failing_right_after_answering_is_not_hammered() {
    let b = TestBroker::start().await;
    let (address, subscribes) = stall::start(Some(&b.address()), true).await;
    let (s, _d) = setup(&kuksa_config(
        &address,
        &[("reconnect_max_s = 1.0", "reconnect_max_s = 4.0")],
    ))
    .await;
    let lost = "ended the subscription";
    // Sessions 1..4: delays 0.5, 1, 2 s between them (always 0.5 s if the first response
    // reset them).
    wait_log_count(&s, lost, 4).await;
    let at = subscribes.lock().unwrap().clone();
    assert!(at.len() >= 4, "{at:?}");
    let gap = at[3] - at[1];
    assert!(
        gap >= std::time::Duration::from_millis(2500),
        "sessions 2 to 4 within {gap:?}"
    );
    let warned = s
        .daemon
        .stderr()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(lost))
        .count();
    assert_eq!(warned, 1, "{}", s.daemon.stderr());
    assert_ne!(s.vehicle().await.interlock().await.unwrap(), "");
}
