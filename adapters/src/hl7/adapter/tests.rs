use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::adapter::{AdapterEvents, Ingest, IngestReport, Sink};
use crate::hl7::message::Message;
use crate::model::{Clock, Millis, Reject, RejectReason, TimeLimits};

const NOW: Millis = 1_795_168_800_000; // 2026-11-20T10:00:00Z

macro_rules! fixture {
    ($name:literal) => {
        &include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/hl7/",
            $name
        ))[..]
    };
}

#[derive(Debug)]
struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> Millis {
        NOW
    }
}

use crate::adapter::NoBus;

#[derive(Default)]
struct Recorder {
    opened: Mutex<usize>,
    closed: Mutex<usize>,
    skipped: Mutex<usize>,
    rejected: Mutex<Vec<(Option<String>, RejectReason)>>,
    claims: Mutex<Vec<(String, String, String)>>,
}

impl AdapterEvents for Recorder {
    fn connection(&self, adapter: &'static str, open: bool) {
        assert_eq!(adapter, "hl7_mllp");
        *if open { &self.opened } else { &self.closed }
            .lock()
            .unwrap() += 1;
    }
    fn skipped_bytes(&self, _adapter: &'static str, bytes: usize) {
        *self.skipped.lock().unwrap() += bytes;
    }
    fn rejected(&self, _adapter: &'static str, device: Option<&str>, reject: &Reject) {
        self.rejected
            .lock()
            .unwrap()
            .push((device.map(str::to_owned), reject.reason));
    }
    fn bed_claimed(&self, _adapter: &'static str, device: &str, poc: &str, bed: &str) {
        self.claims
            .lock()
            .unwrap()
            .push((device.into(), poc.into(), bed.into()));
    }
}

/// How the fake pipeline answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Store,
    FailStorage,
}

struct Hub {
    addr: SocketAddr,
    events: Arc<Recorder>,
    stored: Arc<Mutex<Vec<Observation>>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), AdapterError>>,
}

use crate::model::Observation;

fn loopback_peer() -> Vec<crate::hl7::peers::Peer> {
    vec![crate::hl7::peers::Peer {
        name: "loopback".into(),
        allow_from: vec!["127.0.0.1".into()],
        certificate_cn: None,
        certificate_sha256: None,
        senders: vec![],
        gateway: false,
        auto_create_devices: false,
    }]
}

async fn start(config: Hl7Config, known: &[&str], mode: Mode) -> Hub {
    let (adapter, addr) = Hl7MllpAdapter::bind(Hl7Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        peers: if config.peers.is_empty() {
            loopback_peer()
        } else {
            config.peers.clone()
        },
        ..config
    })
    .await
    .unwrap();
    assert_eq!(adapter.local_addr().unwrap(), addr);
    let (sink, mut rx) = Sink::channel(8);
    let known: HashSet<String> = known.iter().map(|s| s.to_string()).collect();
    let stored = Arc::new(Mutex::new(Vec::new()));
    let store = stored.clone();
    // The pipeline: registered devices are stored, others refused; replies once "durable".
    tokio::spawn(async move {
        while let Some(Ingest {
            adapter,
            observations,
            reply,
            ..
        }) = rx.recv().await
        {
            assert_eq!(adapter, "hl7_mllp");
            let reply = reply.expect("HL7 needs durable submits");
            let mut report = IngestReport::default();
            if mode == Mode::FailStorage {
                report.failed = Some("disk full".into());
            } else {
                for (i, o) in observations.into_iter().enumerate() {
                    if known.contains(o.device_id.as_str()) {
                        report.stored += 1;
                        store.lock().unwrap().push(o);
                    } else {
                        report.rejected.push((
                            i,
                            Reject::new(RejectReason::UnknownDevice, "device is not registered"),
                        ));
                    }
                }
            }
            let _ = reply.send(report);
        }
    });
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
    let adapter: Box<dyn Adapter> = Box::new(adapter);
    assert_eq!(adapter.name(), "hl7_mllp");
    let task = tokio::spawn(adapter.run(ctx));
    Hub {
        addr,
        events,
        stored,
        cancel,
        task,
    }
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    mllp::encode(msg, &mut out);
    out.to_vec()
}

/// Reads one framed reply.
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
            .unwrap();
        if n == 0 {
            return None;
        }
    }
}

struct Ack {
    code: String,
    control_id: String,
    errors: Vec<(String, String, String)>,
}

fn ack(reply: &str) -> Ack {
    let m = Message::parse(reply.as_bytes()).unwrap();
    assert_eq!(m.msh().field(9).comp(1).text(), "ACK");
    let msa = m.segment("MSA").unwrap();
    Ack {
        code: msa.field(1).text().into_owned(),
        control_id: msa.field(2).text().into_owned(),
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

async fn stop(hub: Hub) -> Arc<Recorder> {
    hub.cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), hub.task)
        .await
        .expect("stops in time")
        .unwrap()
        .unwrap();
    hub.events
}

#[tokio::test]
async fn aa_only_after_storage() {
    let hub = start(Hl7Config::default(), &["0012345678ABCDEF"], Mode::Store).await;
    let a = send(hub.addr, fixture!("ihe_pcd01_spo2.hl7")).await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AA", "MSG00001"));
    assert!(a.errors.is_empty());
    let stored = hub.stored.lock().unwrap().clone();
    let got: Vec<_> = stored.iter().map(|o| (o.metric.name, o.value)).collect();
    assert_eq!(got, [("spo2", 97.0), ("pr", 72.0)]);
    assert!(stored.iter().all(|o| o.bed.is_none()));
    let events = stop(hub).await;
    assert_eq!(
        *events.claims.lock().unwrap(),
        [("0012345678ABCDEF".into(), "ICU".into(), "Bed-07".into())]
    );
    assert_eq!(*events.opened.lock().unwrap(), 1);
    assert_eq!(*events.closed.lock().unwrap(), 1);
}

#[tokio::test]
async fn unknown_device_gets_ae_with_err() {
    let hub = start(Hl7Config::default(), &["someone-else"], Mode::Store).await;
    let a = send(hub.addr, fixture!("ihe_pcd01_spo2.hl7")).await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AE", "MSG00001"));
    assert_eq!(a.errors.len(), 2);
    assert_eq!(a.errors[0].0, "OBX^4^18");
    assert_eq!(a.errors[0].1, "204");
    assert!(a.errors[0].2.starts_with("OBX 4: "), "{}", a.errors[0].2);
    assert_eq!(a.errors[1].0, "OBX^5^18");
    assert!(hub.stored.lock().unwrap().is_empty());
    // The pipeline counts what it refuses; the adapter only answers it (it counted each
    // refusal a second time before, from the pipeline's report).
    let events = stop(hub).await;
    assert!(events.rejected.lock().unwrap().is_empty());
}

#[tokio::test]
async fn refused_rows_get_ae_and_the_rest_is_stored() {
    let hub = start(Hl7Config::default(), &["mon-a17"], Mode::Store).await;
    let a = send(hub.addr, fixture!("multi_obx_headers.hl7")).await;
    assert_eq!(a.code, "AE");
    let errs: Vec<_> = a
        .errors
        .iter()
        .map(|e| (e.0.as_str(), e.1.as_str()))
        .collect();
    assert_eq!(errs, [("OBX^10^5", "102"), ("OBX^11^6", "103")]);
    assert_eq!(hub.stored.lock().unwrap().len(), 6);
    stop(hub).await;
}

#[tokio::test]
async fn storage_failure_is_never_aa() {
    let hub = start(
        Hl7Config::default(),
        &["0012345678ABCDEF"],
        Mode::FailStorage,
    )
    .await;
    let a = send(hub.addr, fixture!("ihe_pcd01_spo2.hl7")).await;
    assert_eq!(a.code, "AE");
    assert_eq!(a.errors[0].1, "207");
    assert!(!a.errors[0].2.contains("disk full"));
    stop(hub).await;
}

#[tokio::test]
async fn pipeline_gone_is_never_aa() {
    let (adapter, addr) = Hl7MllpAdapter::bind(Hl7Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        peers: loopback_peer(),
        ..Hl7Config::default()
    })
    .await
    .unwrap();
    let (sink, rx) = Sink::channel(1);
    drop(rx);
    let cancel = CancellationToken::new();
    let ctx = AdapterContext {
        sink,
        bus: Arc::new(NoBus),
        events: Arc::new(Recorder::default()),
        clock: Arc::new(FixedClock),
        limits: TimeLimits::default(),
        cancel: cancel.clone(),
    };
    let task = tokio::spawn(Box::new(adapter).run(ctx));
    let a = send(addr, fixture!("ihe_pcd01_spo2.hl7")).await;
    assert_eq!((a.code.as_str(), a.errors[0].1.as_str()), ("AE", "207"));
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn errors_and_unsupported_messages() {
    let hub = start(Hl7Config::default(), &["MON-1"], Mode::Store).await;
    let a = send(hub.addr, fixture!("malformed_missing_msh.hl7")).await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AE", ""));
    assert_eq!(a.errors[0].1, "100");
    let a = send(hub.addr, fixture!("malformed_bad_delimiters.hl7")).await;
    assert_eq!(a.code, "AE");
    let a = send(hub.addr, fixture!("binary_garbage.bin")).await;
    assert_eq!(a.code, "AE");
    let a = send(hub.addr, fixture!("unsupported_adt_a01.hl7")).await;
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AR", "ADT-0001"));
    assert_eq!(a.errors[0].1, "200");
    let a = send(hub.addr, fixture!("malformed_truncated.hl7")).await;
    assert_eq!(a.code, "AR");
    assert!(hub.stored.lock().unwrap().is_empty());
    let events = stop(hub).await;
    let reasons: Vec<_> = events
        .rejected
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(
        reasons,
        [
            RejectReason::Malformed,
            RejectReason::Malformed,
            RejectReason::Malformed,
            RejectReason::Unsupported,
            RejectReason::Unsupported,
        ]
    );
}

#[tokio::test]
async fn oversized_messages_are_cut_and_answered_ar() {
    let config = Hl7Config {
        max_frame_bytes: 2048,
        ..Hl7Config::default()
    };
    let hub = start(config, &["MON-9"], Mode::Store).await;
    let mut s = TcpStream::connect(hub.addr).await.unwrap();
    let mut big = b"MSH|^~\\&|MON-9||||20261120095959||ORU^R01|BIG-1|P|2.6\r".to_vec();
    while big.len() < 10_000 {
        big.extend_from_slice(b"OBX|1|NM|147842^HR^MDC||70|/min\r");
    }
    s.write_all(&framed(&big)).await.unwrap();
    // The connection survives: the next message is answered normally.
    let small = b"MSH|^~\\&|MON-9||||20261120095959||ORU^R01|SMALL-1|P|2.6\rOBX|1|NM|147842^HR^MDC||70|/min\r";
    s.write_all(&framed(small)).await.unwrap();
    let mut buf = BytesMut::new();
    let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AR", "BIG-1"));
    assert_eq!(a.errors[0].1, "207");
    let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
    assert_eq!((a.code.as_str(), a.control_id.as_str()), ("AA", "SMALL-1"));
    assert_eq!(hub.stored.lock().unwrap().len(), 1);
    stop(hub).await;
}

#[tokio::test]
async fn split_writes_and_garbage_between_frames() {
    let hub = start(Hl7Config::default(), &["MON-9"], Mode::Store).await;
    let mut s = TcpStream::connect(hub.addr).await.unwrap();
    let mut stream = Vec::new();
    for i in 0..5 {
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(&framed(
            format!(
                "MSH|^~\\&|MON-9||||20261120095959||ORU^R01|C{i}|P|2.6\rOBX|1|NM|147842^HR^MDC||{}|/min\r",
                60 + i
            )
            .as_bytes(),
        ));
    }
    // Dribble it out in odd-sized pieces.
    for chunk in stream.chunks(7) {
        s.write_all(chunk).await.unwrap();
        s.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut buf = BytesMut::new();
    for i in 0..5 {
        let a = ack(&read_reply(&mut s, &mut buf).await.unwrap());
        assert_eq!((a.code.as_str(), a.control_id), ("AA", format!("C{i}")));
    }
    let values: Vec<_> = hub.stored.lock().unwrap().iter().map(|o| o.value).collect();
    assert_eq!(values, [60.0, 61.0, 62.0, 63.0, 64.0]);
    drop(s);
    let events = stop(hub).await;
    assert_eq!(*events.skipped.lock().unwrap(), 10);
}

#[tokio::test]
async fn many_connections_at_once() {
    let config = Hl7Config {
        max_connections_per_source: 64,
        ..Hl7Config::default()
    };
    let hub = start(config, &["MON-9"], Mode::Store).await;
    let mut clients = Vec::new();
    for i in 0..50 {
        let addr = hub.addr;
        clients.push(tokio::spawn(async move {
            let msg = format!(
                "MSH|^~\\&|MON-9||||20261120095959||ORU^R01|K{i}|P|2.6\rOBX|1|NM|147842^HR^MDC||70|/min\r"
            );
            let a = send(addr, msg.as_bytes()).await;
            assert_eq!((a.code.as_str(), a.control_id), ("AA", format!("K{i}")));
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(hub.stored.lock().unwrap().len(), 50);
    stop(hub).await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = Hl7Config {
        idle_timeout: Duration::from_millis(200),
        ..Hl7Config::default()
    };
    let hub = start(config, &[], Mode::Store).await;
    let mut s = TcpStream::connect(hub.addr).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(read_reply(&mut s, &mut buf).await.is_none());
    stop(hub).await;
}

/// Regression (issue 13, HL7 lockout): a half-open frame held its slot for the whole idle
/// timeout, and one byte per interval renewed the hold. A frame must now be whole within
/// `frame_timeout` of its start byte, however it trickles.
#[tokio::test]
async fn a_trickled_half_frame_is_closed_by_the_frame_timeout() {
    let config = Hl7Config {
        idle_timeout: Duration::from_secs(60),
        frame_timeout: Duration::from_millis(400),
        ..Hl7Config::default()
    };
    let hub = start(config, &[], Mode::Store).await;
    let mut s = TcpStream::connect(hub.addr).await.unwrap();
    s.write_all(b"\x0bMSH|^~\\&|").await.unwrap();
    let began = std::time::Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if s.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "the trickling connection was never closed");
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "closed only after {:?}",
        began.elapsed()
    );
    stop(hub).await;
}

/// A second connection from the same source over `max_connections_per_source` is closed at
/// once; the first keeps working.
#[tokio::test]
async fn connections_per_source_are_limited() {
    let config = Hl7Config {
        max_connections_per_source: 1,
        ..Hl7Config::default()
    };
    let hub = start(config, &["MON-9"], Mode::Store).await;
    let mut first = TcpStream::connect(hub.addr).await.unwrap();
    let mut second = TcpStream::connect(hub.addr).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(
        read_reply(&mut second, &mut buf).await.is_none(),
        "the second connection must be closed"
    );
    let msg =
        b"MSH|^~\\&|MON-9||||20261120095959||ORU^R01|P1|P|2.6\rOBX|1|NM|147842^HR^MDC||70|/min\r";
    let mut out = BytesMut::new();
    mllp::encode(msg, &mut out);
    first.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    let a = ack(&read_reply(&mut first, &mut buf).await.unwrap());
    assert_eq!(a.code, "AA");
    stop(hub).await;
}

/// Unknown peers are refused at connect: nothing is read, nothing answered.
#[tokio::test]
async fn a_source_no_peer_allows_is_refused_at_connect() {
    let config = Hl7Config {
        peers: vec![crate::hl7::peers::Peer {
            name: "elsewhere".into(),
            allow_from: vec!["10.0.0.0/8".into()],
            certificate_cn: None,
            certificate_sha256: None,
            senders: vec![],
            gateway: false,
            auto_create_devices: false,
        }],
        ..Hl7Config::default()
    };
    let hub = start(config, &["MON-9"], Mode::Store).await;
    let mut s = TcpStream::connect(hub.addr).await.unwrap();
    let _ = s.write_all(b"\x0bMSH|^~\\&|MON-9\x1c\r").await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed (or reset) unanswered: {read:?}"
    );
    assert!(hub.stored.lock().unwrap().is_empty());
    let events = stop(hub).await;
    assert_eq!(*events.opened.lock().unwrap(), 0, "never admitted");
}

/// A peer bound to senders may not send as another application.
#[tokio::test]
async fn a_peer_may_send_only_as_its_senders() {
    let config = Hl7Config {
        peers: vec![crate::hl7::peers::Peer {
            name: "gw".into(),
            allow_from: vec!["127.0.0.1".into()],
            certificate_cn: None,
            certificate_sha256: None,
            senders: vec!["GATEWAY".into()],
            gateway: false,
            auto_create_devices: false,
        }],
        ..Hl7Config::default()
    };
    let hub = start(config, &["MON-9"], Mode::Store).await;
    let msg =
        b"MSH|^~\\&|MON-9||||20261120095959||ORU^R01|P1|P|2.6\rOBX|1|NM|147842^HR^MDC||70|/min\r";
    let a = send(hub.addr, msg).await;
    assert_eq!(a.code, "AR");
    assert!(a.errors[0].2.contains("may not send as"), "{:?}", a.errors);
    assert!(hub.stored.lock().unwrap().is_empty());
    stop(hub).await;
}

#[tokio::test]
async fn cancel_closes_connections_and_stops() {
    let hub = start(Hl7Config::default(), &["MON-9"], Mode::Store).await;
    let mut s = TcpStream::connect(hub.addr).await.unwrap();
    let a = {
        s.write_all(&framed(b"MSH|^~\\&|MON-9||||20261120095959||ORU^R01|Z1|P|2.6\rOBX|1|NM|147842^HR^MDC||70|/min\r"))
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        ack(&read_reply(&mut s, &mut buf).await.unwrap())
    };
    assert_eq!(a.code, "AA");
    let addr = hub.addr;
    let events = stop(hub).await;
    // The open connection was closed by the hub, and the port no longer accepts.
    let mut buf = BytesMut::new();
    assert!(read_reply(&mut s, &mut buf).await.is_none());
    assert!(TcpStream::connect(addr).await.is_err());
    assert_eq!(*events.closed.lock().unwrap(), 1);
}

#[tokio::test]
async fn bind_errors_are_reported() {
    let (first, addr) = Hl7MllpAdapter::bind(Hl7Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Hl7Config::default()
    })
    .await
    .unwrap();
    let err = Hl7MllpAdapter::bind(Hl7Config {
        listen: addr,
        ..Hl7Config::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            AdapterError::Bind {
                adapter: "hl7_mllp",
                ..
            }
        ),
        "{err}"
    );
    drop(first);
    let err = Hl7MllpAdapter::bind(Hl7Config {
        max_connections: 0,
        ..Hl7Config::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, AdapterError::Other { .. }), "{err}");
}
