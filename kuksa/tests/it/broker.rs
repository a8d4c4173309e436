//! The test broker over its gRPC API, with the generated client: each semantic the proto
//! documents (and the real broker implements) that driverprofiled and its providers rely on.

use std::future::Future;
use std::time::Duration;

use driverprofiled_kuksa::broker::{self, BrokerHandle, Listen};
use driverprofiled_kuksa::connect::{Address, Bearer, Client, connect};
use driverprofiled_kuksa::proto::open_provider_stream_request::Action as In;
use driverprofiled_kuksa::proto::open_provider_stream_response::Action as Out;
use driverprofiled_kuksa::proto::value::TypedValue;
use driverprofiled_kuksa::proto::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

const POSITION: &str = "Vehicle.Cabin.Seat.Row1.DriverSide.Position"; // uint16 actuator, mm, min 0
const HEIGHT: &str = "Vehicle.Cabin.Seat.Row1.DriverSide.Height"; // uint16 actuator
const TILT: &str = "Vehicle.Chassis.SteeringWheel.Tilt"; // uint8 actuator 0..100
const RECLINE: &str = "Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline"; // float actuator
const GEAR: &str = "Vehicle.Powertrain.Transmission.SelectedGear"; // int8 actuator
const SPEED: &str = "Vehicle.Speed"; // float sensor
const OCCUPANCY: &str = "Vehicle.Cabin.Seat.Row1.DriverSide.OccupancyStatus"; // string, allowed
const BRAKE: &str = "Vehicle.Chassis.Brake.PedalPosition"; // uint8 sensor 0..100

/// Bounds every wait: a broken broker fails the test instead of hanging it.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("timed out")
}

async fn start() -> BrokerHandle {
    start_with(None).await
}

async fn start_with(token: Option<&str>) -> BrokerHandle {
    broker::start(
        broker::test_vss(),
        Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        token.map(str::to_string),
    )
    .await
    .unwrap()
}

async fn client_with(b: &BrokerHandle, token: Option<&str>) -> Client {
    let addr: Address = b.address().parse().unwrap();
    within(connect(
        &addr,
        Bearer::new(token).unwrap(),
        Duration::from_secs(5),
    ))
    .await
    .unwrap()
}

async fn client(b: &BrokerHandle) -> Client {
    client_with(b, None).await
}

fn val(tv: TypedValue) -> Value {
    Value {
        typed_value: Some(tv),
    }
}

fn u32v(x: u32) -> Value {
    val(TypedValue::Uint32(x))
}

fn path(p: &str) -> Option<SignalId> {
    Some(SignalId {
        signal: Some(signal_id::Signal::Path(p.into())),
    })
}

fn id(i: i32) -> Option<SignalId> {
    Some(SignalId {
        signal: Some(signal_id::Signal::Id(i)),
    })
}

async fn actuate(c: &mut Client, p: &str, v: Value) -> Result<(), tonic::Status> {
    c.actuate(ActuateRequest {
        signal_id: path(p),
        value: Some(v),
    })
    .await
    .map(|_| ())
}

async fn subscribe(c: &mut Client, paths: &[&str]) -> Streaming<SubscribeResponse> {
    c.subscribe(SubscribeRequest {
        signal_paths: paths.iter().map(|p| p.to_string()).collect(),
        buffer_size: 100,
        filter: None,
    })
    .await
    .unwrap()
    .into_inner()
}

async fn next<T>(s: &mut Streaming<T>) -> T {
    within(s.message()).await.unwrap().expect("stream ended")
}

/// A provider's stream: what it sends and what the broker sends it.
struct Provider {
    tx: mpsc::Sender<OpenProviderStreamRequest>,
    rx: Streaming<OpenProviderStreamResponse>,
}

impl Provider {
    async fn open(c: &mut Client) -> Provider {
        let (tx, rx) = mpsc::channel(16);
        let rx = within(c.open_provider_stream(ReceiverStream::new(rx)))
            .await
            .unwrap()
            .into_inner();
        Provider { tx, rx }
    }

    async fn send(&self, a: In) {
        self.tx
            .send(OpenProviderStreamRequest { action: Some(a) })
            .await
            .unwrap();
    }

    async fn recv(&mut self) -> Out {
        next(&mut self.rx).await.action.expect("an empty response")
    }

    /// The error that ended the stream.
    async fn error(&mut self) -> tonic::Status {
        match within(self.rx.message()).await {
            Err(s) => s,
            Ok(Some(m)) => panic!("expected the stream to end with an error, got {m:?}"),
            Ok(None) => panic!("the stream ended without an error"),
        }
    }

    async fn claim(&mut self, paths: &[&str]) {
        self.send(In::ProvideActuationRequest(ProvideActuationRequest {
            actuator_identifiers: paths
                .iter()
                .map(|p| SignalId {
                    signal: Some(signal_id::Signal::Path(p.to_string())),
                })
                .collect(),
        }))
        .await;
        match self.recv().await {
            Out::ProvideActuationResponse(_) => {}
            other => panic!("expected ProvideActuationResponse, got {other:?}"),
        }
    }

    async fn provide(&mut self, ids: &[i32]) {
        self.send(In::ProvideSignalRequest(ProvideSignalRequest {
            signals_sample_intervals: ids
                .iter()
                .map(|i| (*i, SampleInterval { interval_ms: 50 }))
                .collect(),
        }))
        .await;
        match self.recv().await {
            Out::ProvideSignalResponse(_) => {}
            other => panic!("expected ProvideSignalResponse, got {other:?}"),
        }
    }

    async fn publish(&self, values: &[(i32, Value)]) {
        self.send(In::PublishValuesRequest(PublishValuesRequest {
            request_id: 7,
            data_points: values
                .iter()
                .map(|(i, v)| {
                    (
                        *i,
                        Datapoint {
                            timestamp: None,
                            value: Some(v.clone()),
                        },
                    )
                })
                .collect(),
        }))
        .await;
    }
}

async fn metadata(c: &mut Client, root: &str) -> Result<Vec<Metadata>, tonic::Status> {
    c.list_metadata(ListMetadataRequest {
        root: root.into(),
        filter: String::new(),
    })
    .await
    .map(|r| r.into_inner().metadata)
}

async fn id_of(c: &mut Client, p: &str) -> i32 {
    let m = metadata(c, p).await.unwrap();
    assert_eq!(m.len(), 1, "{p}: {m:?}");
    m[0].id
}

#[tokio::test]
async fn server_info() {
    let b = start().await;
    let mut c = client(&b).await;
    let info = c
        .get_server_info(GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "driverprofiled-test-broker");
    assert!(!info.version.is_empty());
}

#[tokio::test]
async fn list_metadata_by_branch_or_signal_with_stable_ids() {
    let b = start().await;
    let mut c = client(&b).await;

    let all = metadata(&mut c, "Vehicle").await.unwrap();
    assert_eq!(all.len(), broker::test_vss().len());
    let everything = metadata(&mut c, "").await.unwrap();
    assert_eq!(everything, all);

    let seat = metadata(&mut c, "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest")
        .await
        .unwrap();
    let paths: Vec<_> = seat.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.Angle",
            "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.Height",
            "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.IsBackwardSwitchEngaged",
            "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.IsDownSwitchEngaged",
            "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.IsForwardSwitchEngaged",
            "Vehicle.Cabin.Seat.Row1.DriverSide.Headrest.IsUpSwitchEngaged",
        ]
    );

    let pos = metadata(&mut c, POSITION).await.unwrap();
    assert_eq!(pos.len(), 1);
    let pos = &pos[0];
    assert_eq!(pos.path, POSITION);
    assert_eq!(pos.data_type(), DataType::Uint16);
    assert_eq!(pos.entry_type(), EntryType::Actuator);
    assert_eq!(pos.unit, "mm");
    assert_eq!(pos.min, Some(u32v(0)));
    assert_eq!(pos.max, None);
    assert!(!pos.description.is_empty());
    assert_eq!(Some(pos.id), b.id(POSITION));

    let tilt = &metadata(&mut c, TILT).await.unwrap()[0];
    assert_eq!(tilt.data_type(), DataType::Uint8);
    assert_eq!(tilt.unit, "percent");
    assert_eq!(
        (tilt.min.clone(), tilt.max.clone()),
        (Some(u32v(0)), Some(u32v(100)))
    );
    let gear = &metadata(&mut c, GEAR).await.unwrap()[0];
    assert_eq!(gear.data_type(), DataType::Int8);
    let occ = &metadata(&mut c, OCCUPANCY).await.unwrap()[0];
    assert_eq!(occ.entry_type(), EntryType::Sensor);
    assert_eq!(
        occ.allowed_values,
        Some(val(TypedValue::StringArray(StringArray {
            values: vec!["UNKNOWN".into(), "OCCUPIED".into(), "EMPTY".into()]
        })))
    );
    let recline = &metadata(&mut c, RECLINE).await.unwrap()[0];
    assert_eq!(
        (recline.data_type(), recline.unit.as_str()),
        (DataType::Float, "degrees")
    );

    // Ids are stable within a run; wildcards work.
    assert_eq!(metadata(&mut c, "Vehicle").await.unwrap(), all);
    let switches = metadata(&mut c, "Vehicle.Cabin.Seat.**.Is*SwitchEngaged")
        .await
        .unwrap();
    assert_eq!(switches.len(), 12);

    for missing in ["Vehicle.Nope", "Vehicle.Spee", "Nope"] {
        let e = metadata(&mut c, missing).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{missing}: {e:?}");
    }
    let e = metadata(&mut c, "Vehicle..Speed").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn get_value_and_values() {
    let b = start().await;
    let mut c = client(&b).await;

    // Known but never set: a datapoint without a value.
    let dp = c
        .get_value(GetValueRequest {
            signal_id: path(SPEED),
        })
        .await
        .unwrap()
        .into_inner()
        .data_point
        .unwrap();
    assert_eq!(dp.value, None);

    b.set(SPEED, Some(val(TypedValue::Float(12.5)))).unwrap();
    b.set(GEAR, Some(val(TypedValue::Int32(126)))).unwrap();
    let speed_id = id_of(&mut c, SPEED).await;
    let dp = c
        .get_value(GetValueRequest {
            signal_id: id(speed_id),
        })
        .await
        .unwrap()
        .into_inner()
        .data_point
        .unwrap();
    assert_eq!(dp.value, Some(val(TypedValue::Float(12.5))));
    assert!(dp.timestamp.is_some());

    let dps = c
        .get_values(GetValuesRequest {
            signal_ids: vec![
                path(GEAR).unwrap(),
                path(BRAKE).unwrap(),
                path(SPEED).unwrap(),
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .data_points;
    let values: Vec<_> = dps.into_iter().map(|d| d.value).collect();
    assert_eq!(
        values,
        [
            Some(val(TypedValue::Int32(126))),
            None,
            Some(val(TypedValue::Float(12.5)))
        ]
    );

    let e = c
        .get_value(GetValueRequest {
            signal_id: path("Vehicle.Nope"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .get_value(GetValueRequest {
            signal_id: id(99999),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .get_value(GetValueRequest { signal_id: None })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .get_values(GetValuesRequest {
            signal_ids: vec![path(SPEED).unwrap(), path("Vehicle.Nope").unwrap()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .get_values(GetValuesRequest { signal_ids: vec![] })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(b.get(SPEED), Some(val(TypedValue::Float(12.5))));
    assert_eq!(b.get(BRAKE), None);
}

#[tokio::test]
async fn subscribe_first_response_carries_everything_then_changes() {
    let b = start().await;
    let mut c = client(&b).await;
    b.set(GEAR, Some(val(TypedValue::Int32(126)))).unwrap();

    let mut s = subscribe(&mut c, &[GEAR, SPEED, BRAKE]).await;
    let first = next(&mut s).await.entries;
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(first[GEAR].value, Some(val(TypedValue::Int32(126))));
    assert_eq!(first[SPEED].value, None);
    assert_eq!(first[BRAKE].value, None);
    assert_eq!(b.subscribers(SPEED), 1);

    // One response per publish, with the entries it changed.
    b.set(SPEED, Some(val(TypedValue::Float(0.0)))).unwrap();
    let r = next(&mut s).await.entries;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[SPEED].value, Some(val(TypedValue::Float(0.0))));

    b.set_many(&[
        (GEAR, Some(val(TypedValue::Int32(127)))),
        (BRAKE, Some(u32v(40))),
        // Not subscribed: not in the response.
        (TILT, Some(u32v(40))),
    ])
    .unwrap();
    let r = next(&mut s).await.entries;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[GEAR].value, Some(val(TypedValue::Int32(127))));
    assert_eq!(r[BRAKE].value, Some(u32v(40)));

    // A sensor (continuous) notifies even an unchanged value; None is a value too.
    b.set(SPEED, Some(val(TypedValue::Float(0.0)))).unwrap();
    assert_eq!(
        next(&mut s).await.entries[SPEED].value,
        Some(val(TypedValue::Float(0.0)))
    );
    b.set(SPEED, None).unwrap();
    let r = next(&mut s).await.entries;
    assert!(r.contains_key(SPEED) && r[SPEED].value.is_none(), "{r:?}");

    // With a buffer, a burst arrives whole and in order.
    for x in 1..=20 {
        b.set(BRAKE, Some(u32v(x))).unwrap();
    }
    for x in 1..=20 {
        assert_eq!(next(&mut s).await.entries[BRAKE].value, Some(u32v(x)));
    }

    // The subscription goes away with the stream.
    drop(s);
    within(b.wait_unsubscribed(SPEED)).await;
    assert_eq!(b.subscribers(GEAR), 0);
}

#[tokio::test]
async fn subscribe_errors() {
    let b = start().await;
    let mut c = client(&b).await;
    let sub = |paths: Vec<String>, buffer_size: u32| SubscribeRequest {
        signal_paths: paths,
        buffer_size,
        filter: None,
    };
    let e = c.subscribe(sub(vec![], 0)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .subscribe(sub(vec![SPEED.into(), "Vehicle.Nope".into()], 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // A branch is not a signal.
    let e = c
        .subscribe(sub(vec!["Vehicle.Cabin".into()], 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .subscribe(sub(vec![SPEED.into()], 1001))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(c.subscribe(sub(vec![SPEED.into()], 1000)).await.is_ok());

    // By id.
    let speed = id_of(&mut c, SPEED).await;
    let mut s = c
        .subscribe_by_id(SubscribeByIdRequest {
            signal_ids: vec![speed],
            buffer_size: 0,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut s).await.entries;
    assert!(first.contains_key(&speed));
    b.set(SPEED, Some(val(TypedValue::Float(3.0)))).unwrap();
    assert_eq!(
        next(&mut s).await.entries[&speed].value,
        Some(val(TypedValue::Float(3.0)))
    );
    let e = c
        .subscribe_by_id(SubscribeByIdRequest {
            signal_ids: vec![99999],
            buffer_size: 0,
            filter: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn set_checks_type_allowed_and_range() {
    let b = start().await;
    assert!(b.set("Vehicle.Nope", Some(u32v(1))).is_err());
    // uint16 travels as uint32; not as int32 or float.
    assert!(b.set(POSITION, Some(u32v(300))).is_ok());
    assert!(b.set(POSITION, Some(val(TypedValue::Int32(300)))).is_err());
    assert!(
        b.set(POSITION, Some(val(TypedValue::Float(300.0))))
            .is_err()
    );
    assert!(b.set(POSITION, Some(u32v(70000))).is_err());
    assert!(b.set(TILT, Some(u32v(101))).is_err());
    assert!(b.set(GEAR, Some(val(TypedValue::Int32(-1)))).is_ok());
    assert!(b.set(GEAR, Some(val(TypedValue::Int32(200)))).is_err());
    assert!(
        b.set(OCCUPANCY, Some(val(TypedValue::String("OCCUPIED".into()))))
            .is_ok()
    );
    assert!(
        b.set(OCCUPANCY, Some(val(TypedValue::String("FULL".into()))))
            .is_err()
    );
    assert!(b.set(SPEED, Some(val(TypedValue::Double(1.0)))).is_err());
    // A refused batch publishes nothing.
    assert!(
        b.set_many(&[
            (SPEED, Some(val(TypedValue::Float(9.0)))),
            (TILT, Some(u32v(101)))
        ])
        .is_err()
    );
    assert_eq!(b.get(SPEED), None);
    assert_eq!(b.get(POSITION), Some(u32v(300)));
    b.set_str(GEAR, "126").unwrap();
    assert_eq!(b.get(GEAR), Some(val(TypedValue::Int32(126))));
    b.set_str(GEAR, "none").unwrap();
    assert_eq!(b.get(GEAR), None);
}

#[tokio::test]
async fn actuate_refusals() {
    let b = start().await;
    let mut c = client(&b).await;
    let code = |r: Result<(), tonic::Status>| r.unwrap_err().code();

    assert_eq!(
        code(actuate(&mut c, "Vehicle.Nope", u32v(1)).await),
        Code::NotFound
    );
    // A sensor is not an actuator.
    assert_eq!(
        code(actuate(&mut c, SPEED, val(TypedValue::Float(1.0))).await),
        Code::InvalidArgument
    );
    // Wrong type, out of min/max, out of the type's range.
    assert_eq!(
        code(actuate(&mut c, POSITION, val(TypedValue::Float(100.0))).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(actuate(&mut c, TILT, u32v(101)).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(actuate(&mut c, POSITION, u32v(65536)).await),
        Code::InvalidArgument
    );
    // Valid, but nobody provides it.
    let e = actuate(&mut c, POSITION, u32v(100)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let e = c
        .actuate(ActuateRequest {
            signal_id: path(POSITION),
            value: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn actuation_goes_to_the_claiming_provider_by_id() {
    let b = start().await;
    let mut c = client(&b).await;
    let mut actuations = b.actuations();
    let pos_id = id_of(&mut c, POSITION).await;
    let tilt_id = id_of(&mut c, TILT).await;

    let mut pc = client(&b).await;
    let mut p = Provider::open(&mut pc).await;
    assert!(!b.claimed(POSITION));
    p.claim(&[POSITION, TILT]).await;
    assert!(b.claimed(POSITION) && b.claimed(TILT) && !b.claimed(HEIGHT));

    actuate(&mut c, POSITION, u32v(200)).await.unwrap();
    match p.recv().await {
        Out::BatchActuateStreamRequest(r) => {
            assert_eq!(
                r.actuate_requests,
                [ActuateRequest {
                    signal_id: id(pos_id),
                    value: Some(u32v(200)),
                }]
            );
        }
        other => panic!("expected a BatchActuateStreamRequest, got {other:?}"),
    }
    assert_eq!(
        within(actuations.recv()).await.unwrap(),
        (POSITION.to_string(), u32v(200))
    );
    // Actuating does not change the value: only the provider publishing does.
    assert_eq!(b.get(POSITION), None);
    // The provider acknowledges; the broker accepts that silently.
    p.send(In::BatchActuateStreamResponse(BatchActuateStreamResponse {
        signal_id: id(pos_id),
        error: Some(Error {
            code: ErrorCode::Ok as i32,
            message: String::new(),
        }),
    }))
    .await;

    // By id works too.
    c.actuate(ActuateRequest {
        signal_id: id(tilt_id),
        value: Some(u32v(10)),
    })
    .await
    .unwrap();
    match p.recv().await {
        Out::BatchActuateStreamRequest(r) => {
            assert_eq!(r.actuate_requests[0].signal_id, id(tilt_id));
            assert_eq!(r.actuate_requests[0].value, Some(u32v(10)));
        }
        other => panic!("expected a BatchActuateStreamRequest, got {other:?}"),
    }
    assert_eq!(
        within(actuations.recv()).await.unwrap(),
        (TILT.to_string(), u32v(10))
    );

    // BatchActuate: all or nothing — HEIGHT has no provider, so POSITION is not forwarded.
    let e = c
        .batch_actuate(BatchActuateRequest {
            actuate_requests: vec![
                ActuateRequest {
                    signal_id: path(POSITION),
                    value: Some(u32v(1)),
                },
                ActuateRequest {
                    signal_id: path(HEIGHT),
                    value: Some(u32v(1)),
                },
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(actuations.try_recv().is_err());
    c.batch_actuate(BatchActuateRequest {
        actuate_requests: vec![
            ActuateRequest {
                signal_id: path(POSITION),
                value: Some(u32v(2)),
            },
            ActuateRequest {
                signal_id: path(TILT),
                value: Some(u32v(3)),
            },
        ],
    })
    .await
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        match p.recv().await {
            Out::BatchActuateStreamRequest(r) => got.extend(r.actuate_requests),
            other => panic!("expected a BatchActuateStreamRequest, got {other:?}"),
        }
    }
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .any(|r| r.signal_id == id(pos_id) && r.value == Some(u32v(2)))
    );
    assert!(
        got.iter()
            .any(|r| r.signal_id == id(tilt_id) && r.value == Some(u32v(3)))
    );

    // Another stream cannot claim what is claimed: ALREADY_EXISTS ends its stream.
    let mut p2 = Provider::open(&mut pc).await;
    p2.send(In::ProvideActuationRequest(ProvideActuationRequest {
        actuator_identifiers: vec![path(HEIGHT).unwrap(), path(POSITION).unwrap()],
    }))
    .await;
    assert_eq!(p2.error().await.code(), Code::AlreadyExists);
    assert!(!b.claimed(HEIGHT));
    // Nor can a claim name an unknown signal.
    let mut p3 = Provider::open(&mut pc).await;
    p3.send(In::ProvideActuationRequest(ProvideActuationRequest {
        actuator_identifiers: vec![path("Vehicle.Nope").unwrap()],
    }))
    .await;
    assert_eq!(p3.error().await.code(), Code::NotFound);

    // The provider goes away: its claims are released, actuations are UNAVAILABLE again.
    drop(p);
    within(b.wait_claimed(POSITION, false)).await;
    assert!(!b.claimed(TILT));
    let e = actuate(&mut c, POSITION, u32v(100)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    // And another provider may claim them.
    let mut p4 = Provider::open(&mut pc).await;
    p4.claim(&[POSITION]).await;
    actuate(&mut c, POSITION, u32v(5)).await.unwrap();
    assert!(matches!(p4.recv().await, Out::BatchActuateStreamRequest(_)));
}

#[tokio::test]
async fn actuate_stream_forwards_each_request() {
    let b = start().await;
    let mut c = client(&b).await;
    let mut p = Provider::open(&mut c).await;
    p.claim(&[TILT]).await;
    let mut actuations = b.actuations();
    let reqs = (1..=3).map(|x| ActuateRequest {
        signal_id: path(TILT),
        value: Some(u32v(x)),
    });
    c.actuate_stream(tokio_stream::iter(reqs.collect::<Vec<_>>()))
        .await
        .unwrap();
    for x in 1..=3 {
        assert_eq!(within(actuations.recv()).await.unwrap().1, u32v(x));
        assert!(matches!(p.recv().await, Out::BatchActuateStreamRequest(_)));
    }
}

#[tokio::test]
async fn provider_publishes_after_registering_its_signals() {
    let b = start().await;
    let mut c = client(&b).await;
    let pos = id_of(&mut c, POSITION).await;
    let tilt = id_of(&mut c, TILT).await;
    let speed = id_of(&mut c, SPEED).await;

    // Publishing before ProvideSignalRequest: ABORTED ends the stream.
    let mut p0 = Provider::open(&mut c).await;
    p0.publish(&[(pos, u32v(1))]).await;
    assert_eq!(p0.error().await.code(), Code::Aborted);

    let mut s = subscribe(&mut c, &[POSITION, TILT]).await;
    next(&mut s).await;

    let mut p = Provider::open(&mut c).await;
    p.claim(&[POSITION, TILT]).await;
    p.provide(&[pos, tilt]).await;
    // The subscribed signals get a filter update, as from the real broker.
    match p.recv().await {
        Out::UpdateFilterRequest(f) => {
            assert!(f.filters_update.contains_key(&pos) && f.filters_update.contains_key(&tilt));
        }
        other => panic!("expected an UpdateFilterRequest, got {other:?}"),
    }
    p.publish(&[(pos, u32v(130)), (tilt, u32v(50))]).await;
    let r = next(&mut s).await.entries;
    assert_eq!(r.len(), 2);
    assert_eq!(r[POSITION].value, Some(u32v(130)));
    assert_eq!(r[TILT].value, Some(u32v(50)));
    assert_eq!(b.get(POSITION), Some(u32v(130)));

    // An invalid value: a PublishValuesResponse names it; the valid ones are stored.
    p.publish(&[(pos, u32v(131)), (tilt, u32v(101))]).await;
    match p.recv().await {
        Out::PublishValuesResponse(r) => {
            assert_eq!(r.request_id, 7);
            assert_eq!(r.status.len(), 1);
            assert_eq!(r.status[&tilt].code(), ErrorCode::InvalidArgument);
        }
        other => panic!("expected a PublishValuesResponse, got {other:?}"),
    }
    assert_eq!(next(&mut s).await.entries[POSITION].value, Some(u32v(131)));
    assert_eq!(b.get(TILT), Some(u32v(50)));

    // Another stream cannot register the same signals.
    let mut p2 = Provider::open(&mut c).await;
    p2.send(In::ProvideSignalRequest(ProvideSignalRequest {
        signals_sample_intervals: [(pos, SampleInterval { interval_ms: 0 })].into(),
    }))
    .await;
    assert_eq!(p2.error().await.code(), Code::AlreadyExists);

    // Publishing a signal this stream did not register ends it with ALREADY_EXISTS.
    p.publish(&[(speed, val(TypedValue::Float(1.0)))]).await;
    assert_eq!(p.error().await.code(), Code::AlreadyExists);
    within(b.wait_claimed(POSITION, false)).await;

    // Its registrations are gone with it: another provider may register them.
    let mut p3 = Provider::open(&mut c).await;
    p3.provide(&[pos]).await;
}

#[tokio::test]
async fn publish_value_checks_and_notifies() {
    let b = start().await;
    let mut c = client(&b).await;
    let mut s = subscribe(&mut c, &[BRAKE]).await;
    next(&mut s).await;
    let publish = |p: &str, v: Value| PublishValueRequest {
        signal_id: path(p),
        data_point: Some(Datapoint {
            timestamp: None,
            value: Some(v),
        }),
    };
    c.publish_value(publish(BRAKE, u32v(30))).await.unwrap();
    assert_eq!(next(&mut s).await.entries[BRAKE].value, Some(u32v(30)));
    assert_eq!(b.get(BRAKE), Some(u32v(30)));
    let e = c
        .publish_value(publish(BRAKE, u32v(101)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .publish_value(publish(BRAKE, val(TypedValue::Bool(true))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .publish_value(publish("Vehicle.Nope", u32v(1)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(b.get(BRAKE), Some(u32v(30)));
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    let b = start_with(Some("s3cret")).await;
    for token in [None, Some("wrong")] {
        let mut c = client_with(&b, token).await;
        let e = metadata(&mut c, "Vehicle").await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{token:?}");
        let e = c
            .subscribe(SubscribeRequest {
                signal_paths: vec![SPEED.into()],
                buffer_size: 0,
                filter: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let mut c = client_with(&b, Some("s3cret")).await;
    assert!(metadata(&mut c, "Vehicle").await.is_ok());
    let mut s = subscribe(&mut c, &[SPEED]).await;
    next(&mut s).await;
}

#[tokio::test]
async fn denied_paths_answer_permission_denied() {
    let b = start().await;
    let mut c = client(&b).await;
    let mut p = Provider::open(&mut c).await;
    p.claim(&[POSITION]).await;
    b.deny(POSITION, true).unwrap();
    let e = actuate(&mut c, POSITION, u32v(1)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = c
        .subscribe(SubscribeRequest {
            signal_paths: vec![POSITION.into()],
            buffer_size: 0,
            filter: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    b.deny(POSITION, false).unwrap();
    actuate(&mut c, POSITION, u32v(1)).await.unwrap();
}

#[tokio::test]
async fn stop_ends_every_stream_and_the_port_can_be_bound_again() {
    let b = start().await;
    let address = b.address();
    let mut c = client(&b).await;
    let mut s = subscribe(&mut c, &[SPEED]).await;
    next(&mut s).await;
    let mut pc = client(&b).await;
    let mut p = Provider::open(&mut pc).await;
    p.claim(&[POSITION]).await;

    within(b.stop()).await;

    // Both streams end with an error (the client sees the loss), and calls fail.
    assert!(within(s.message()).await.is_err());
    assert!(within(p.rx.message()).await.is_err());
    assert!(metadata(&mut c, "Vehicle").await.is_err());

    // A broker on the same port again; a new connection works, with nothing claimed.
    let listen: Listen = address.parse().unwrap();
    let b = broker::start(broker::test_vss(), listen, None)
        .await
        .unwrap();
    assert_eq!(b.address(), address);
    let mut c = client(&b).await;
    assert!(metadata(&mut c, "Vehicle").await.is_ok());
    assert!(!b.claimed(POSITION));
    let e = actuate(&mut c, POSITION, u32v(1)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
}

#[tokio::test]
async fn unix_socket() {
    let dir = std::env::temp_dir().join(format!("dp-test-broker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("databroker.sock");
    let b = broker::start(broker::test_vss(), Listen::Unix(sock.clone()), None)
        .await
        .unwrap();
    assert_eq!(b.address(), format!("unix:{}", sock.display()));
    let mut c = client(&b).await;
    let mut s = subscribe(&mut c, &[SPEED]).await;
    next(&mut s).await;
    b.set(SPEED, Some(val(TypedValue::Float(2.0)))).unwrap();
    assert_eq!(
        next(&mut s).await.entries[SPEED].value,
        Some(val(TypedValue::Float(2.0)))
    );
    // A second broker cannot take a socket that is in use.
    assert!(
        broker::start(broker::test_vss(), Listen::Unix(sock.clone()), None)
            .await
            .is_err()
    );

    within(b.stop()).await;
    assert!(within(s.message()).await.is_err());
    assert!(!sock.exists());
    // Again on the same path.
    let b = broker::start(broker::test_vss(), Listen::Unix(sock.clone()), None)
        .await
        .unwrap();
    let mut c = client(&b).await;
    assert!(metadata(&mut c, SPEED).await.is_ok());
    b.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn loads_the_full_vss_6_0_release() {
    // From the real broker's source, when it is at hand (the file is not in this repository).
    let Ok(out) = std::process::Command::new("git")
        .args([
            "-C",
            "/work/.mirror/eclipse-kuksa+kuksa-databroker/repo",
            "show",
            "HEAD:data/vss-core/vss_release_6.0.json",
        ])
        .output()
    else {
        eprintln!("skipped: git not available");
        return;
    };
    if !out.status.success() {
        eprintln!("skipped: the KUKSA databroker mirror is not here");
        return;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let vss = broker::Vss::from_json(&text).unwrap();
    assert!(vss.len() > 1000, "{}", vss.len());
    // The test VSS is an exact extract of it.
    let test = broker::test_vss();
    let full = broker::start(vss, Listen::Tcp("127.0.0.1:0".parse().unwrap()), None)
        .await
        .unwrap();
    let small = start().await;
    let mut cf = client(&full).await;
    let mut cs = client(&small).await;
    for p in test.paths() {
        let mut a = metadata(&mut cf, p).await.unwrap();
        let mut b = metadata(&mut cs, p).await.unwrap();
        assert_eq!((a.len(), b.len()), (1, 1), "{p}");
        a[0].id = 0;
        b[0].id = 0;
        assert_eq!(a, b, "{p}");
    }
}

#[tokio::test]
async fn a_slow_subscriber_without_a_buffer_keeps_only_the_latest_response() {
    // As in the real broker: buffer_size 0 keeps one response; older ones are dropped, and a
    // response carries only what changed — a client that must not miss a change asks for a
    // buffer (see the subscribe test, with 100).
    let b = start().await;
    let mut c = client(&b).await;
    let mut s = c
        .subscribe(SubscribeRequest {
            signal_paths: vec![GEAR.into(), SPEED.into()],
            buffer_size: 0,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    next(&mut s).await;
    // No await in between: the broker cannot send the first before the second replaces it.
    b.set(GEAR, Some(val(TypedValue::Int32(126)))).unwrap();
    b.set(SPEED, Some(val(TypedValue::Float(0.0)))).unwrap();
    let r = next(&mut s).await.entries;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r.contains_key(SPEED));
    // The stored values are complete all the same.
    assert_eq!(b.get(GEAR), Some(val(TypedValue::Int32(126))));
}

#[tokio::test]
async fn a_provider_that_closed_its_side_keeps_its_claims_while_it_reads() {
    let b = start().await;
    let mut c = client(&b).await;
    let claim = OpenProviderStreamRequest {
        action: Some(In::ProvideActuationRequest(ProvideActuationRequest {
            actuator_identifiers: vec![path(TILT).unwrap()],
        })),
    };
    // A request stream of just the claim: it ends right after.
    let mut rx = within(c.open_provider_stream(tokio_stream::iter(vec![claim])))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        next(&mut rx).await.action,
        Some(Out::ProvideActuationResponse(_))
    ));
    actuate(&mut c, TILT, u32v(9)).await.unwrap();
    assert!(matches!(
        next(&mut rx).await.action,
        Some(Out::BatchActuateStreamRequest(_))
    ));
    drop(rx);
    within(b.wait_claimed(TILT, false)).await;
}
