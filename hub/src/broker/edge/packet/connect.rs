//! CONNECT: reading it (protocol, flags, MQTT 5 properties, the will, the login) and
//! rewriting its login for the relay to the internal listener.

use bytes::Bytes;

use super::frame::{fixed_header, packet, take_bytes, take_str};
use super::kind;
use super::properties::{props, take_props, Prop};
use crate::broker::edge::CloseReason;

/// A last will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 Will Delay Interval, seconds.
    pub delay_secs: u32,
}

/// A CONNECT, as far as the hub uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// 3 (3.1), 4 (3.1.1) or 5.
    pub level: u8,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    pub will: Option<Will>,
    /// Clean session (3.1.1) / clean start (5).
    pub clean_start: bool,
    /// Seconds; 0 turns the keep-alive off.
    pub keep_alive: u16,
    /// MQTT 5 Session Expiry Interval (seconds; 0 ends the session with the connection,
    /// `u32::MAX` never). For 3.1.1: 0 with a clean session, else never.
    pub session_expiry: u32,
    /// The largest packet the client accepts (MQTT 5), if it says.
    pub max_packet_size: Option<u32>,
}

impl Connect {
    /// The will's topic, when there is a will.
    pub fn will_topic(&self) -> Option<&str> {
        self.will.as_ref().map(|w| w.topic.as_str())
    }
}

/// Parses a whole CONNECT packet (fixed header included).
pub fn parse_connect(packet: &[u8]) -> Result<Connect, CloseReason> {
    if packet.first().map(|b| b >> 4) != Some(kind::CONNECT) {
        return Err(CloseReason::NotConnect);
    }
    let (h, _) = fixed_header(packet)?.ok_or(CloseReason::Malformed)?;
    let mut b = &packet[h..];
    let bad = CloseReason::Malformed;
    let name = take_bytes(&mut b).ok_or(bad)?;
    if name != b"MQTT" && name != b"MQIsdp" {
        return Err(CloseReason::Protocol);
    }
    let level = *b.first().ok_or(bad)?;
    if !matches!(level, 3..=5) {
        return Err(CloseReason::Protocol);
    }
    let flags = *b.get(1).ok_or(bad)?;
    if flags & 0x01 != 0 {
        return Err(bad); // reserved bit
    }
    let keep_alive = u16::from_be_bytes([*b.get(2).ok_or(bad)?, *b.get(3).ok_or(bad)?]);
    b = &b[4..];
    let clean_start = flags & 0x02 != 0;
    let mut session_expiry = if clean_start { 0 } else { u32::MAX };
    let mut max_packet_size = None;
    if level == 5 {
        session_expiry = 0;
        let block = take_props(&mut b).ok_or(bad)?;
        props(block, |id, v| match (id, v) {
            (0x11, Prop::U32(s)) => session_expiry = s,
            (0x27, Prop::U32(s)) => max_packet_size = Some(s),
            _ => {}
        })
        .ok_or(bad)?;
    }
    let client_id = take_str(&mut b).ok_or(bad)?.to_owned();
    let mut will = None;
    if flags & 0x04 != 0 {
        let mut delay_secs = 0;
        if level == 5 {
            let block = take_props(&mut b).ok_or(bad)?;
            props(block, |id, v| {
                if let (0x18, Prop::U32(d)) = (id, v) {
                    delay_secs = d;
                }
            })
            .ok_or(bad)?;
        }
        let topic = take_str(&mut b).ok_or(bad)?.to_owned();
        let payload = Bytes::copy_from_slice(take_bytes(&mut b).ok_or(bad)?);
        let qos = (flags >> 3) & 0x03;
        if qos == 3 {
            return Err(bad);
        }
        will = Some(Will {
            topic,
            payload,
            qos,
            retain: flags & 0x20 != 0,
            delay_secs,
        });
    } else if flags & 0x38 != 0 {
        return Err(bad); // will QoS or retain without a will
    }
    let username = if flags & 0x80 != 0 {
        Some(take_str(&mut b).ok_or(bad)?.to_owned())
    } else {
        None
    };
    let password = if flags & 0x40 != 0 {
        Some(take_bytes(&mut b).ok_or(bad)?.to_vec())
    } else {
        None
    };
    Ok(Connect {
        level,
        client_id,
        username,
        password,
        will,
        clean_start,
        keep_alive,
        session_expiry,
        max_packet_size,
    })
}

/// The CONNECT `packet` with its user name and password replaced (everything else kept).
/// With `client_id`, the client id is replaced too.
pub fn rewrite_connect(
    connect: &[u8],
    user: &str,
    pass: &str,
    client_id: Option<&str>,
) -> Result<Vec<u8>, CloseReason> {
    let bad = CloseReason::Malformed;
    let (h, _) = fixed_header(connect)?.ok_or(bad)?;
    let mut b = &connect[h..];
    let mut body = Vec::with_capacity(connect.len() + user.len() + pass.len());
    let start = b;
    take_bytes(&mut b).ok_or(bad)?; // protocol name
    let level = *b.first().ok_or(bad)?;
    let flags = *b.get(1).ok_or(bad)?;
    let keep_alive = b.get(2..4).ok_or(bad)?;
    body.extend_from_slice(&start[..start.len() - b.len()]);
    body.push(level);
    // User name and password present; bit 0 is reserved and zero.
    body.push((flags & 0x3E) | 0xC0);
    body.extend_from_slice(keep_alive);
    b = &b[4..];
    let copied = b;
    if level == 5 {
        take_props(&mut b).ok_or(bad)?;
    }
    let id_at = copied.len() - b.len();
    take_bytes(&mut b).ok_or(bad)?; // client id
    let will_at = copied.len() - b.len();
    if flags & 0x04 != 0 {
        if level == 5 {
            take_props(&mut b).ok_or(bad)?;
        }
        take_bytes(&mut b).ok_or(bad)?;
        take_bytes(&mut b).ok_or(bad)?;
    }
    let end = copied.len() - b.len();
    body.extend_from_slice(&copied[..id_at]);
    match client_id {
        Some(id) => {
            let len = u16::try_from(id.len()).map_err(|_| bad)?;
            body.extend_from_slice(&len.to_be_bytes());
            body.extend_from_slice(id.as_bytes());
        }
        None => body.extend_from_slice(&copied[id_at..will_at]),
    }
    body.extend_from_slice(&copied[will_at..end]);
    for field in [user.as_bytes(), pass.as_bytes()] {
        let len = u16::try_from(field.len()).map_err(|_| bad)?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(field);
    }
    Ok(packet(0x10, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn connect_v4(client_id: &str, user: Option<(&str, &str)>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&[0, 4]);
        body.extend_from_slice(b"MQTT");
        body.push(4);
        body.push(if user.is_some() { 0xC2 } else { 0x02 });
        body.extend_from_slice(&[0, 60]);
        body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(client_id.as_bytes());
        if let Some((u, p)) = user {
            body.extend_from_slice(&(u.len() as u16).to_be_bytes());
            body.extend_from_slice(u.as_bytes());
            body.extend_from_slice(&(p.len() as u16).to_be_bytes());
            body.extend_from_slice(p.as_bytes());
        }
        packet(0x10, &body)
    }

    fn connect_v5_with_will() -> Vec<u8> {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0x04 | 0x08, 0, 0];
        body.extend_from_slice(&[5, 0x11, 0, 0, 0, 60]); // session expiry 60 s
        body.extend_from_slice(&[0, 3, b'd', b'-', b'1']);
        body.extend_from_slice(&[5, 0x18, 0, 0, 0, 2]); // will delay 2 s
        let topic = b"wardhub/v1/devices/d-1/status";
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic);
        body.extend_from_slice(&[0, 2, b'{', b'}']);
        packet(0x10, &body)
    }

    #[test]
    fn parses_connect() {
        let c = parse_connect(&connect_v4("mon-1", Some(("mon-1", "s3cret")))).unwrap();
        assert_eq!(c.level, 4);
        assert_eq!(c.client_id, "mon-1");
        assert_eq!(c.username.as_deref(), Some("mon-1"));
        assert_eq!(c.password.as_deref(), Some(&b"s3cret"[..]));
        assert!(c.clean_start);
        assert_eq!((c.keep_alive, c.session_expiry), (60, 0));
        let c = parse_connect(&connect_v5_with_will()).unwrap();
        assert_eq!((c.level, c.keep_alive, c.session_expiry), (5, 0, 60));
        let w = c.will.unwrap();
        assert_eq!(w.topic, "wardhub/v1/devices/d-1/status");
        assert_eq!((w.qos, w.retain, w.delay_secs), (1, false, 2));
        assert_eq!(&w.payload[..], b"{}");
    }

    #[test]
    fn refuses_non_connect_and_bad_versions() {
        assert_eq!(parse_connect(&[0x30, 0]), Err(CloseReason::NotConnect));
        let mut p = connect_v4("x", None);
        p[8] = 9; // protocol level
        assert_eq!(parse_connect(&p), Err(CloseReason::Protocol));
    }

    #[test]
    fn connect_rewrite_keeps_everything_but_the_login() {
        for user in [None, Some(("mon-1", "device-secret"))] {
            let original = connect_v4("mon-1", user);
            let rewritten = rewrite_connect(&original, "wardhub-edge", "internal", None).unwrap();
            let info = parse_connect(&rewritten).unwrap();
            assert_eq!(info.client_id, "mon-1");
            assert_eq!(info.level, 4);
            assert_eq!(info.username.as_deref(), Some("wardhub-edge"));
            assert_eq!(info.password.as_deref(), Some(&b"internal"[..]));
        }
        let rewritten = rewrite_connect(
            &connect_v5_with_will(),
            "wardhub-edge",
            "internal",
            Some("wardhub-svc-7"),
        )
        .unwrap();
        let info = parse_connect(&rewritten).unwrap();
        assert_eq!(info.client_id, "wardhub-svc-7");
        assert_eq!(info.session_expiry, 60, "properties kept");
        assert_eq!(info.will.unwrap().delay_secs, 2, "the will kept");
    }
}
