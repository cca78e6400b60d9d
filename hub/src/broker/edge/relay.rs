//! A service account's connection (pagers, EMR bridges: subscribers), relayed to the
//! embedded broker.
//!
//! The CONNECT is forwarded with the hub's internal login instead of the account's (the
//! internal listeners accept nothing else, so nothing on the host can bypass the edge), then
//! client → broker traffic is framed packet by packet and checked against the account's
//! filters (it may subscribe within them and never publish); broker → client is a plain copy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::acl::Acl;
use super::packet::{self, fixed_header};
use super::{CloseReason, EdgeConfig};

/// The internal client ids of relayed clean sessions, one per connection.
static NEXT_INTERNAL_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One relayed connection per client id at a time, towards rumqttd.
///
/// rumqttd 0.20 misbehaves when one client id connects again while its previous connection is
/// still being torn down (upstream issue #1062: a panic that killed the listener, patched in
/// `hub/vendor/`; and, seen in 1 of 50 starts here, a CONNECT that never gets its CONNACK when
/// the same id moves between the 3.1.1 and 5 listeners). So the trigger never reaches it: a
/// new connection of an id closes the previous one (a takeover, as MQTT says), waits until it
/// is gone, and gives the router a moment to process the disconnect before connecting.
#[derive(Debug, Default)]
pub struct RelayGate {
    ids: Mutex<HashMap<String, Held>>,
}

#[derive(Debug)]
struct Held {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Closes the connection that holds the lock.
    current: CancellationToken,
    /// When the last connection of the id ended (`None` while one is open).
    left_at: Option<Instant>,
}

/// How long the router gets to process the previous connection's disconnect.
const SETTLE: Duration = Duration::from_millis(100);

impl RelayGate {
    /// Waits for the previous connection of `id` to be gone, and for the router to have had
    /// [`SETTLE`] since; returns the guard to hold for as long as this connection lives and
    /// the token that closes it.
    async fn enter(&self, id: &str) -> (tokio::sync::OwnedMutexGuard<()>, CancellationToken) {
        let mine = CancellationToken::new();
        let lock = {
            let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            // Ids whose last connection ended long enough ago are forgotten.
            ids.retain(|_, h| {
                Arc::strong_count(&h.lock) > 1 || h.left_at.is_none_or(|t| t.elapsed() < SETTLE)
            });
            let h = ids.entry(id.to_owned()).or_insert_with(|| Held {
                lock: Arc::new(tokio::sync::Mutex::new(())),
                current: CancellationToken::new(),
                left_at: None,
            });
            h.current.cancel();
            h.current = mine.clone();
            h.lock.clone()
        };
        let guard = lock.lock_owned().await;
        let left_at = self
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
            .and_then(|h| h.left_at.take());
        if let Some(t) = left_at {
            tokio::time::sleep(SETTLE.saturating_sub(t.elapsed())).await;
        }
        (guard, mine)
    }

    /// The connection of `id` that held `guard` is gone (its upstream socket closed).
    fn leave(&self, id: &str, guard: tokio::sync::OwnedMutexGuard<()>) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = ids.get_mut(id) {
            h.left_at = Some(Instant::now());
        }
        drop(guard);
    }
}

/// Relays the connection `info` whose CONNECT is `connect` (whole packet); `buf` holds what
/// the client sent after it.
///
/// A clean session has nothing to resume, so rumqttd sees it under an internal client id of
/// its own (`wardhub-svc-N`, unique per connection): the races of a client id that comes back
/// fast cannot happen at all. A persistent session keeps its client id (its subscriptions
/// live under it). Both go through the [`RelayGate`], keyed by the client's own id, so a new
/// connection takes the old one over.
pub(super) async fn serve<S>(
    client: S,
    info: &packet::Connect,
    connect: &[u8],
    buf: BytesMut,
    acl: Acl,
    config: &EdgeConfig,
    cancel: &CancellationToken,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let clean = info.session_expiry == 0;
    let level = info.level;
    // Keyed by the client's own id: a new connection still takes over the old one.
    let (guard, taken_over) = config.relays.enter(&info.client_id).await;
    let relayed = async {
        let internal = if level == 5 {
            config.internal_v5
        } else {
            config.internal_v4
        };
        // A takeover or a stop ends the wait for rumqttd's CONNACK too: a connection reset
        // while its CONNECT waited upstream (up to CONNECT_TRIES x CONNACK_WAIT) held the
        // client id's gate meanwhile, and the same id connecting again got no CONNACK in 10 s
        // ("no CONNACK for pager-1 v4", edge::connect_reset_cycles_do_not_take_a_listener_down).
        let (upstream, connack) = tokio::select! {
            r = connect_upstream(internal, connect, clean, config) => r?,
            _ = taken_over.cancelled() => return Err(CloseReason::TakenOver),
            _ = cancel.cancelled() => return Ok(()),
        };
        let (client_rd, mut client_wr) = tokio::io::split(client);
        client_wr
            .write_all(&connack)
            .await
            .map_err(|_| CloseReason::Upstream)?;
        let (mut broker_rd, broker_wr) = upstream.into_split();
        let up = relay_up(client_rd, broker_wr, buf, config.max_packet_bytes, &acl);
        let down = tokio::io::copy(&mut broker_rd, &mut client_wr);
        tokio::select! {
            r = up => r,
            _ = down => Ok(()),
            _ = cancel.cancelled() => Ok(()),
            _ = taken_over.cancelled() => Err(CloseReason::TakenOver),
        }
    };
    let r = relayed.await;
    // The upstream connection was dropped with the block: rumqttd can see it gone.
    config.relays.leave(&info.client_id, guard);
    r
}

/// How long rumqttd gets to answer a relayed CONNECT before the relay tries again.
const CONNACK_WAIT: Duration = Duration::from_secs(3);
/// Relayed CONNECTs per client connection before it is closed.
const CONNECT_TRIES: u32 = 3;

/// Connects to rumqttd's internal listener at `internal` and sends the client's CONNECT with
/// the hub's internal login; returns the connection and rumqttd's CONNACK (whole packet).
///
/// rumqttd 0.20 now and then leaves a CONNECT unanswered (seen right after a hub start,
/// `edge::fifty_hub_starts_never_leave_a_dead_listener`: "no CONNACK" for a service account
/// in about one CI run of three). A client would wait for its keep-alive and reconnect; the
/// relay instead gives rumqttd [`CONNACK_WAIT`], then tries again on a new connection (a
/// clean session under a new internal id), [`CONNECT_TRIES`] times in all.
async fn connect_upstream(
    internal: std::net::SocketAddr,
    connect: &[u8],
    clean: bool,
    config: &EdgeConfig,
) -> Result<(TcpStream, Vec<u8>), CloseReason> {
    for attempt in 1..=CONNECT_TRIES {
        let internal_id = clean.then(|| {
            let n = NEXT_INTERNAL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("wardhub-svc-{n}")
        });
        let connect = match &config.internal_login {
            Some((user, pass)) => {
                packet::rewrite_connect(connect, user, pass, internal_id.as_deref())?
            }
            None => connect.to_vec(),
        };
        let mut upstream = TcpStream::connect(internal)
            .await
            .map_err(|_| CloseReason::Upstream)?;
        let _ = upstream.set_nodelay(true);
        upstream
            .write_all(&connect)
            .await
            .map_err(|_| CloseReason::Upstream)?;
        match tokio::time::timeout(CONNACK_WAIT, read_packet(&mut upstream)).await {
            Ok(Some(connack)) => return Ok((upstream, connack)),
            Ok(None) => return Err(CloseReason::Upstream),
            Err(_) => {
                tracing::warn!(
                    attempt,
                    "the internal broker did not answer a relayed CONNECT within {CONNACK_WAIT:?}; trying again"
                );
            }
        }
    }
    Err(CloseReason::Upstream)
}

/// Exactly one whole packet from `rd`, nothing after it (`None` when it closes first or
/// sends garbage): with a persistent session rumqttd may send queued messages right after
/// the CONNACK, and those belong to the plain copy that follows.
async fn read_packet(rd: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(8);
    // The fixed header a byte at a time (at most five), then the rest at once.
    let (h, len) = loop {
        match fixed_header(&buf) {
            Ok(Some(hl)) => break hl,
            Ok(None) if buf.len() < 5 => {
                let mut byte = [0u8; 1];
                rd.read_exact(&mut byte).await.ok()?;
                buf.push(byte[0]);
            }
            _ => return None,
        }
    };
    buf.resize(h + len, 0);
    rd.read_exact(&mut buf[h..]).await.ok()?;
    Some(buf)
}

/// Client → broker: forwards whole packets only, never one over `max` and never one the ACL
/// refuses (the connection is closed at that packet; the ones before it are forwarded).
pub(super) async fn relay_up<R, W>(
    mut rd: R,
    mut wr: W,
    mut buf: BytesMut,
    max: usize,
    acl: &Acl,
) -> Result<(), CloseReason>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let mut ready = 0;
        let mut refused = false;
        while let Some((h, len)) = fixed_header(&buf[ready..])? {
            if len > max {
                return Err(CloseReason::TooLarge);
            }
            if buf.len() - ready < h + len {
                break;
            }
            if !acl.allows(&buf[ready..ready + h + len]) {
                refused = true;
                break;
            }
            ready += h + len;
        }
        if ready > 0 {
            if wr.write_all(&buf[..ready]).await.is_err() {
                return Ok(());
            }
            buf.advance(ready);
        }
        if refused {
            return Err(CloseReason::Acl);
        }
        buf.reserve(4096);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_connection_per_id_reaches_the_broker() {
        let gate = Arc::new(RelayGate::default());
        let (g1, t1) = gate.enter("pager").await;
        let second = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let (g, t) = gate.enter("pager").await;
                (g, t)
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(t1.is_cancelled(), "the new connection closes the old one");
        assert!(!second.is_finished(), "and waits until it is gone");
        let left = std::time::Instant::now();
        gate.leave("pager", g1);
        let (g2, t2) = second.await.unwrap();
        assert!(!t2.is_cancelled());
        assert!(
            left.elapsed() >= SETTLE,
            "the router gets time to see the disconnect"
        );
        gate.leave("pager", g2);
        // Guards a v4 connection that ended just before the v5 one of the same id came: the
        // new one still waits for the settle time (it did not, and rumqttd killed it).
        let left = std::time::Instant::now();
        let (g3, _) = gate.enter("pager").await;
        assert!(left.elapsed() >= SETTLE - Duration::from_millis(5));
        gate.leave("pager", g3);
        tokio::time::sleep(SETTLE).await;
        let (g4, _) = gate.enter("other").await;
        assert_eq!(gate.ids.lock().unwrap().len(), 1, "old ids are forgotten");
        gate.leave("other", g4);
    }

    #[tokio::test]
    async fn relay_forwards_whole_packets_and_cuts_oversized() {
        let (mut dev, dev_side) = tokio::io::duplex(1 << 16);
        let (broker_side, mut broker) = tokio::io::duplex(1 << 16);
        let acl = Acl::Service {
            filters: vec!["wardhub/v1/wards/#".into()],
            level: 4,
        };
        let task = tokio::spawn(async move {
            relay_up(dev_side, broker_side, BytesMut::new(), 100, &acl).await
        });
        // One PINGREQ split in two writes arrives whole.
        dev.write_all(&[0xC0]).await.unwrap();
        dev.write_all(&[0x00]).await.unwrap();
        let mut got = [0u8; 2];
        broker.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0xC0, 0]);
        // A header announcing 200 bytes closes the relay at once.
        dev.write_all(&[0x30, 0xC8, 0x01]).await.unwrap();
        assert_eq!(task.await.unwrap(), Err(CloseReason::TooLarge));
    }
}
