//! A service account's connection (pagers, EMR bridges: subscribers), relayed to the
//! embedded broker.
//!
//! The CONNECT is forwarded with the hub's internal login instead of the account's (the
//! internal listeners accept nothing else, so nothing on the host can bypass the edge), then
//! client → broker traffic is framed packet by packet and checked against the account's
//! filters (it may subscribe within them and never publish); broker → client is a plain copy.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::acl::Acl;
use super::packet::{self, fixed_header};
use super::{CloseReason, EdgeConfig};

/// Relays the connection whose CONNECT is `connect` (whole packet); `buf` holds what the
/// client sent after it.
pub(super) async fn serve<S>(
    client: S,
    connect: &[u8],
    level: u8,
    buf: BytesMut,
    acl: Acl,
    config: &EdgeConfig,
    cancel: &CancellationToken,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let connect = match &config.internal_login {
        Some((user, pass)) => packet::rewrite_connect(connect, user, pass)?,
        None => connect.to_vec(),
    };
    let internal = if level == 5 {
        config.internal_v5
    } else {
        config.internal_v4
    };
    let mut upstream = TcpStream::connect(internal)
        .await
        .map_err(|_| CloseReason::Upstream)?;
    let _ = upstream.set_nodelay(true);
    upstream
        .write_all(&connect)
        .await
        .map_err(|_| CloseReason::Upstream)?;
    let (client_rd, mut client_wr) = tokio::io::split(client);
    let (mut broker_rd, broker_wr) = upstream.into_split();
    let up = relay_up(client_rd, broker_wr, buf, config.max_packet_bytes, &acl);
    let down = tokio::io::copy(&mut broker_rd, &mut client_wr);
    tokio::select! {
        r = up => r,
        _ = down => Ok(()),
        _ = cancel.cancelled() => Ok(()),
    }
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
