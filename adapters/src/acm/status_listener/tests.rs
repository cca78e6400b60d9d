use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::acm::pcd05::{build_status, DeliveryStatus};
use crate::adapter::{AdapterEvents, NoBus, Sink};
use crate::hl7::message::Message;
use crate::hl7::mllp::{self, Framer, Item};
use crate::model::{Clock, Millis, TimeLimits};

const NOW: Millis = 1_795_168_800_000; // 2026-11-20T10:00:00Z

#[derive(Debug)]
struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> Millis {
        NOW
    }
}

#[derive(Default)]
struct Recorder {
    opened: Mutex<usize>,
    closed: Mutex<usize>,
    received: Mutex<usize>,
    rejected: Mutex<Vec<RejectReason>>,
    refused: Mutex<Vec<&'static str>>,
}

impl AdapterEvents for Recorder {
    fn message_received(&self, adapter: &'static str, _bytes: usize) {
        assert_eq!(adapter, ACM_NAME);
        *self.received.lock().unwrap() += 1;
    }
    fn connection(&self, adapter: &'static str, open: bool) {
        assert_eq!(adapter, ACM_NAME);
        *if open { &self.opened } else { &self.closed }
            .lock()
            .unwrap() += 1;
    }
    fn rejected(&self, _adapter: &'static str, device: Option<&str>, reject: &Reject) {
        assert_eq!(device, None);
        self.rejected.lock().unwrap().push(reject.reason);
    }
    fn connection_refused(&self, _adapter: &'static str, limit: &'static str) {
        self.refused.lock().unwrap().push(limit);
    }
}

/// The hub's side: records what it gets, refuses when told to, and waits for a permit of
/// `gate` (when there is one) before it answers.
#[derive(Default)]
struct FakeHandler {
    recorded: Mutex<Vec<AlarmStatus>>,
    refuse: Option<StatusRefusal>,
    gate: Option<Semaphore>,
    entered: Notify,
    in_flight: AtomicBool,
}

impl FakeHandler {
    fn gated() -> FakeHandler {
        FakeHandler {
            gate: Some(Semaphore::new(0)),
            ..FakeHandler::default()
        }
    }

    fn refusing(r: StatusRefusal) -> FakeHandler {
        FakeHandler {
            refuse: Some(r),
            ..FakeHandler::default()
        }
    }

    fn controls(&self) -> Vec<String> {
        let recorded = self.recorded.lock().unwrap();
        recorded.iter().map(|s| s.control_id.clone()).collect()
    }
}

impl StatusHandler for FakeHandler {
    fn status(&self, s: AlarmStatus) -> BoxFuture<'_, Result<(), StatusRefusal>> {
        Box::pin(async move {
            assert!(
                !self.in_flight.swap(true, Ordering::SeqCst),
                "two statuses of a connection recorded at once"
            );
            self.entered.notify_one();
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            // Give a racing second message every chance to overtake this one.
            tokio::task::yield_now().await;
            let result = match &self.refuse {
                Some(r) => Err(r.clone()),
                None => {
                    self.recorded.lock().unwrap().push(s);
                    Ok(())
                }
            };
            self.in_flight.store(false, Ordering::SeqCst);
            result
        })
    }
}

struct Running {
    addr: SocketAddr,
    events: Arc<Recorder>,
    handler: Arc<FakeHandler>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), AdapterError>>,
}

async fn start(config: StatusListenerConfig, handler: FakeHandler) -> Running {
    let handler = Arc::new(handler);
    let (listener, addr) = StatusListener::bind(
        StatusListenerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        },
        handler.clone(),
    )
    .await
    .unwrap();
    assert_eq!(listener.local_addr().unwrap(), addr);
    let (sink, _rx) = Sink::channel(1);
    let events = Arc::new(Recorder::default());
    let cancel = CancellationToken::new();
    let ctx = AdapterContext {
        sink,
        bus: Arc::new(NoBus),
        events: events.clone(),
        clock: Arc::new(FixedClock),
        limits: TimeLimits::default(),
        cancel: cancel.clone(),
    };
    let listener: Box<dyn Adapter> = Box::new(listener);
    assert_eq!(listener.name(), "hl7_acm");
    let task = tokio::spawn(listener.run(ctx));
    Running {
        addr,
        events,
        handler,
        cancel,
        task,
    }
}

async fn stop(r: Running) -> Arc<Recorder> {
    r.cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), r.task)
        .await
        .expect("stops in time")
        .unwrap()
        .unwrap();
    r.events
}

/// A PCD-05 of alarm 42 with this status and control id, as an AM builds it.
fn message(status: DeliveryStatus, control_id: &str) -> String {
    let s = AlarmStatus {
        alarm_id: 42,
        status,
        recipient: Some("N-0815".into()),
        at: Some(NOW - 5_000),
        control_id: control_id.into(),
    };
    build_status(&s, "AM", "WARDHUB", NOW - 4_000)
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    mllp::encode(msg, &mut out);
    out.to_vec()
}

/// Reads one framed reply; `None` when the connection was closed.
async fn read_reply(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<String> {
    let mut framer = Framer::new(1 << 20);
    loop {
        if let Some(item) = framer.next(buf) {
            match item {
                Item::Frame(f) => return Some(String::from_utf8(f.to_vec()).unwrap()),
                other => panic!("unexpected {other:?}"),
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read_buf(buf))
            .await
            .expect("a reply in time")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
    }
}

#[derive(Debug)]
struct Ack {
    code: String,
    control_id: String,
    trigger: String,
    application: String,
    /// ERR-2, ERR-3.1, ERR-8.
    errors: Vec<(String, String, String)>,
}

fn ack(reply: &str) -> Ack {
    let m = Message::parse(reply.as_bytes()).unwrap();
    assert_eq!(m.msh().field(9).comp(1).text(), "ACK");
    let msa = m.segment("MSA").unwrap();
    Ack {
        code: msa.field(1).text().into_owned(),
        control_id: msa.field(2).text().into_owned(),
        trigger: m.msh().field(9).comp(2).text().into_owned(),
        application: m.msh().field(3).text().into_owned(),
        errors: m
            .segments()
            .iter()
            .filter(|s| s.name() == "ERR")
            .map(|s| {
                (
                    s.field(2).text().into_owned(),
                    s.field(3).comp(1).text().into_owned(),
                    s.field(8).text().into_owned(),
                )
            })
            .collect(),
    }
}

async fn send(addr: SocketAddr, msg: &[u8]) -> Ack {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&framed(msg)).await.unwrap();
    let mut buf = BytesMut::new();
    ack(&read_reply(&mut s, &mut buf).await.expect("an ACK"))
}

#[tokio::test]
async fn aa_once_the_handler_has_recorded_the_status() {
    let r = start(StatusListenerConfig::default(), FakeHandler::default()).await;
    let a = send(r.addr, message(DeliveryStatus::Delivered, "S-1").as_bytes()).await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AA", "S-1"));
    assert_eq!(
        (a.trigger.as_str(), a.application.as_str()),
        ("R41", "WARDHUB")
    );
    assert!(a.errors.is_empty());
    let recorded = r.handler.recorded.lock().unwrap().clone();
    assert_eq!(
        recorded,
        [AlarmStatus {
            alarm_id: 42,
            status: DeliveryStatus::Delivered,
            recipient: Some("N-0815".into()),
            at: Some(NOW - 5_000),
            control_id: "S-1".into(),
        }]
    );
    let events = stop(r).await;
    assert_eq!(*events.received.lock().unwrap(), 1);
    assert!(events.rejected.lock().unwrap().is_empty());
    assert_eq!(*events.opened.lock().unwrap(), 1);
    assert_eq!(*events.closed.lock().unwrap(), 1);
}

#[tokio::test]
async fn the_draeger_sample_is_accepted() {
    let r = start(StatusListenerConfig::default(), FakeHandler::default()).await;
    let a = send(
        r.addr,
        include_bytes!("../samples/draeger_pcd05_delivered.hl7"),
    )
    .await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AA", "79"));
    assert_eq!(r.handler.recorded.lock().unwrap()[0].alarm_id, 1);
    stop(r).await;
}

#[tokio::test]
async fn a_refusal_of_the_handler_is_answered_with_its_err() {
    let r = start(
        StatusListenerConfig::default(),
        FakeHandler::refusing(StatusRefusal::unknown_alarm()),
    )
    .await;
    let a = send(r.addr, message(DeliveryStatus::Read, "S-2").as_bytes()).await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AE", "S-2"));
    assert_eq!(
        a.errors,
        [(
            "OBR^1^29".to_owned(),
            "204".to_owned(),
            "no alarm of this id is known to the hub".to_owned()
        )]
    );
    let events = stop(r).await;
    assert_eq!(*events.rejected.lock().unwrap(), [RejectReason::Schema]);

    let r = start(
        StatusListenerConfig::default(),
        FakeHandler::refusing(StatusRefusal::internal("storage is failing")),
    )
    .await;
    let a = send(r.addr, message(DeliveryStatus::Accepted, "S-3").as_bytes()).await;
    assert_eq!(a.code, "AE");
    assert_eq!(
        (a.errors[0].0.as_str(), a.errors[0].1.as_str()),
        ("", "207")
    );
    let events = stop(r).await;
    assert_eq!(*events.rejected.lock().unwrap(), [RejectReason::Internal]);

    let reject = StatusRefusal {
        code: AckCode::Reject,
        hl7_code: 207,
        segment: None,
        field: None,
        detail: "statuses are switched off".into(),
    };
    let r = start(
        StatusListenerConfig::default(),
        FakeHandler::refusing(reject),
    )
    .await;
    let a = send(r.addr, message(DeliveryStatus::Rejected, "S-4").as_bytes()).await;
    assert_eq!(a.code, "AR");
    let events = stop(r).await;
    assert_eq!(
        *events.rejected.lock().unwrap(),
        [RejectReason::Unsupported]
    );
}

#[tokio::test]
async fn what_the_decoder_refuses_never_reaches_the_handler() {
    let r = start(StatusListenerConfig::default(), FakeHandler::default()).await;
    let pcd04 = "MSH|^~\\&|WARDHUB||AM||20261120100000||ORU^R40^ORU_R40|A-1|P|2.6\r";
    let a = send(r.addr, pcd04.as_bytes()).await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AR", "A-1"));
    assert_eq!(
        (a.errors[0].0.as_str(), a.errors[0].1.as_str()),
        ("MSH^1^9", "200")
    );
    let unknown = message(DeliveryStatus::Read, "S-5").replace("Read^Read", "^Seen");
    let a = send(r.addr, unknown.as_bytes()).await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AE", "S-5"));
    assert_eq!(
        (a.errors[0].0.as_str(), a.errors[0].1.as_str()),
        ("PRT^1^3", "103")
    );
    let a = send(r.addr, b"not HL7 at all").await;
    assert_eq!((a.code.as_str(), a.errors[0].1.as_str()), ("AE", "100"));
    assert!(r.handler.recorded.lock().unwrap().is_empty());
    let events = stop(r).await;
    assert_eq!(
        *events.rejected.lock().unwrap(),
        [
            RejectReason::Unsupported,
            RejectReason::Schema,
            RejectReason::Malformed
        ]
    );
    assert_eq!(*events.received.lock().unwrap(), 3);
}

#[tokio::test]
async fn the_messages_of_a_connection_are_recorded_and_answered_in_order() {
    let r = start(StatusListenerConfig::default(), FakeHandler::default()).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    let statuses = [
        DeliveryStatus::Received,
        DeliveryStatus::Delivered,
        DeliveryStatus::Read,
        DeliveryStatus::Accepted,
    ];
    let mut stream = Vec::new();
    let mut want = Vec::new();
    for i in 0..40 {
        let control = format!("SEQ-{i:02}");
        stream.extend(framed(
            message(statuses[i % statuses.len()], &control).as_bytes(),
        ));
        want.push(control);
    }
    // All at once, so that every message is in the buffer before the first is answered.
    s.write_all(&stream).await.unwrap();
    let mut buf = BytesMut::new();
    for control in &want {
        let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
        assert_eq!((a.code.as_str(), &a.control_id), ("AA", control));
    }
    assert_eq!(r.handler.controls(), want);
    stop(r).await;
}

#[tokio::test]
async fn no_ack_until_the_handler_answers() {
    let r = start(StatusListenerConfig::default(), FakeHandler::gated()).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(&framed(message(DeliveryStatus::Read, "S-1").as_bytes()))
        .await
        .unwrap();
    r.handler.entered.notified().await;
    let mut probe = [0u8; 16];
    let early = tokio::time::timeout(Duration::from_millis(300), s.read(&mut probe)).await;
    assert!(
        early.is_err(),
        "answered before the status was recorded: {early:?}"
    );
    assert!(r.handler.recorded.lock().unwrap().is_empty());
    r.handler.gate.as_ref().unwrap().add_permits(1);
    let mut buf = BytesMut::new();
    let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AA", "S-1"));
    assert_eq!(r.handler.controls(), ["S-1"]);
    stop(r).await;
}

#[tokio::test]
async fn bad_frames_do_not_close_the_connection() {
    let config = StatusListenerConfig {
        max_frame_bytes: 2048,
        ..StatusListenerConfig::default()
    };
    let r = start(config, FakeHandler::default()).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    let mut big = message(DeliveryStatus::Read, "BIG-1").into_bytes();
    while big.len() < 10_000 {
        big.extend_from_slice(b"NTE|1||padding padding padding padding\r");
    }
    let mut stream = b"\r\nnoise".to_vec();
    stream.extend(framed(b"\x00\x01 not a message"));
    stream.extend(framed(&big));
    stream.extend(framed(message(DeliveryStatus::Read, "S-1").as_bytes()));
    s.write_all(&stream).await.unwrap();
    let mut buf = BytesMut::new();
    let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
    assert_eq!((a.code.as_str(), a.errors[0].1.as_str()), ("AE", "100"));
    let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AR", "BIG-1"));
    let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AA", "S-1"));
    assert_eq!(r.handler.controls(), ["S-1"]);
    let events = stop(r).await;
    assert_eq!(
        *events.rejected.lock().unwrap(),
        [RejectReason::Malformed, RejectReason::TooLarge]
    );
}

#[tokio::test]
async fn sources_not_allowed_are_refused_at_accept() {
    for allow in [vec![], vec!["10.0.0.0/8".to_owned(), "::1".to_owned()]] {
        let config = StatusListenerConfig {
            allow,
            ..StatusListenerConfig::default()
        };
        let r = start(config, FakeHandler::default()).await;
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        let _ = s
            .write_all(&framed(message(DeliveryStatus::Read, "S-1").as_bytes()))
            .await;
        let mut buf = BytesMut::new();
        assert!(
            read_reply(&mut s, &mut buf).await.is_none(),
            "closed unanswered"
        );
        assert!(r.handler.recorded.lock().unwrap().is_empty());
        let events = stop(r).await;
        assert_eq!(*events.refused.lock().unwrap(), ["not_allowed"]);
        assert_eq!(*events.opened.lock().unwrap(), 0, "never admitted");
        assert_eq!(*events.received.lock().unwrap(), 0);
    }
}

#[tokio::test]
async fn connections_per_source_are_limited() {
    let config = StatusListenerConfig {
        max_connections_per_source: 1,
        ..StatusListenerConfig::default()
    };
    let r = start(config, FakeHandler::default()).await;
    let mut first = TcpStream::connect(r.addr).await.unwrap();
    let mut second = TcpStream::connect(r.addr).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(read_reply(&mut second, &mut buf).await.is_none());
    first
        .write_all(&framed(message(DeliveryStatus::Read, "S-1").as_bytes()))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(
        ack(&read_reply(&mut first, &mut buf).await.unwrap()).code,
        "AA"
    );
    let events = stop(r).await;
    assert_eq!(*events.refused.lock().unwrap(), ["per_source"]);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = StatusListenerConfig {
        idle_timeout: Duration::from_millis(200),
        ..StatusListenerConfig::default()
    };
    let r = start(config, FakeHandler::default()).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(read_reply(&mut s, &mut buf).await.is_none());
    stop(r).await;
}

/// Cancellation: the listener stops accepting at once; the message in hand is recorded and
/// answered; one read whole behind it is left unanswered (its sender sends it again); then
/// the connection closes and `run` returns.
#[tokio::test]
async fn cancellation_finishes_the_message_in_hand_then_closes() {
    let r = start(StatusListenerConfig::default(), FakeHandler::gated()).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    let mut two = framed(message(DeliveryStatus::Delivered, "S-1").as_bytes());
    two.extend(framed(message(DeliveryStatus::Read, "S-2").as_bytes()));
    s.write_all(&two).await.unwrap();
    r.handler.entered.notified().await;
    r.cancel.cancel();
    let refused = async {
        while TcpStream::connect(r.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .expect("stops accepting");
    assert!(!r.task.is_finished(), "waits for the message in hand");
    r.handler.gate.as_ref().unwrap().add_permits(2);
    let mut buf = BytesMut::new();
    let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AA", "S-1"));
    assert!(read_reply(&mut s, &mut buf).await.is_none(), "then closes");
    assert_eq!(r.handler.controls(), ["S-1"]);
    let events = stop(r).await;
    assert_eq!(*events.closed.lock().unwrap(), 1);
}

#[test]
fn config_defaults_and_humane_durations() {
    let c = StatusListenerConfig::default();
    assert_eq!(c.listen.to_string(), "127.0.0.1:2577");
    assert_eq!(c.allow, ["127.0.0.1", "::1"]);
    assert_eq!(c.max_frame_bytes, 1 << 20);
    assert_eq!(c.idle_timeout, Duration::from_secs(3600));
    assert_eq!(c.validate().unwrap().len(), 2);
    let c: StatusListenerConfig = toml::from_str(
        "listen = \"0.0.0.0:2577\"\nallow = [\"10.20.0.0/16\"]\nidle_timeout = \"30m\"\nframe_timeout = 5\n",
    )
    .unwrap();
    assert_eq!(c.idle_timeout, Duration::from_secs(1800));
    assert_eq!(c.frame_timeout, Duration::from_secs(5));
    assert_eq!(c.application, "WARDHUB");
    assert!(c.validate().unwrap()[0].contains("10.20.3.4".parse().unwrap()));
    let back: StatusListenerConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
    assert!(toml::from_str::<StatusListenerConfig>("default_utc_offset_minutes = 0").is_err());
}

#[test]
fn config_validation() {
    let bad = [
        StatusListenerConfig {
            allow: vec!["ward-7".into()],
            ..StatusListenerConfig::default()
        },
        StatusListenerConfig {
            max_frame_bytes: 10,
            ..StatusListenerConfig::default()
        },
        StatusListenerConfig {
            frame_timeout: Duration::ZERO,
            ..StatusListenerConfig::default()
        },
        StatusListenerConfig {
            max_connections: 0,
            ..StatusListenerConfig::default()
        },
        StatusListenerConfig {
            application: "A|B".into(),
            ..StatusListenerConfig::default()
        },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
    }
    assert!(StatusListenerConfig {
        allow: vec![],
        ..StatusListenerConfig::default()
    }
    .validate()
    .unwrap()
    .is_empty());
}

#[tokio::test]
async fn bind_errors_are_reported() {
    let handler: Arc<dyn StatusHandler> = Arc::new(FakeHandler::default());
    let local = StatusListenerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..StatusListenerConfig::default()
    };
    let (first, addr) = StatusListener::bind(local.clone(), handler.clone())
        .await
        .unwrap();
    let taken = StatusListenerConfig {
        listen: addr,
        ..StatusListenerConfig::default()
    };
    let err = StatusListener::bind(taken, handler.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AdapterError::Bind {
                adapter: "hl7_acm",
                ..
            }
        ),
        "{err}"
    );
    drop(first);
    let bad = StatusListenerConfig {
        allow: vec!["nowhere".into()],
        ..local
    };
    let err = StatusListener::bind(bad, handler).await.unwrap_err();
    assert!(matches!(err, AdapterError::Other { .. }), "{err}");
    assert!(err.to_string().contains("allow"), "{err}");
}
