//! The packets a client sends after its CONNECT: PUBLISH, the publish acknowledgements,
//! SUBSCRIBE, UNSUBSCRIBE and DISCONNECT.

use bytes::Bytes;

use super::frame::{fixed_header, take_str, take_u16};
use super::properties::{props, take_props, Prop};
use crate::broker::edge::CloseReason;

/// A PUBLISH from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub qos: u8,
    pub dup: bool,
    pub retain: bool,
    pub topic: String,
    /// 0 at QoS 0.
    pub pkid: u16,
    /// MQTT 5 Topic Alias, when given.
    pub topic_alias: Option<u16>,
    pub payload: Bytes,
}

/// Parses a whole PUBLISH packet (fixed header included) of a connection at `level`.
pub fn parse_publish(packet: &Bytes, level: u8) -> Result<Publish, CloseReason> {
    let bad = CloseReason::Malformed;
    let first = *packet.first().ok_or(bad)?;
    let (h, _) = fixed_header(packet)?.ok_or(bad)?;
    let qos = (first >> 1) & 0x03;
    if qos == 3 {
        return Err(bad);
    }
    let mut b = &packet[h..];
    let topic = take_str(&mut b).ok_or(bad)?.to_owned();
    let pkid = if qos > 0 {
        let id = take_u16(&mut b).ok_or(bad)?;
        if id == 0 {
            return Err(bad);
        }
        id
    } else {
        0
    };
    let mut topic_alias = None;
    if level == 5 {
        let block = take_props(&mut b).ok_or(bad)?;
        props(block, |id, v| {
            if let (0x23, Prop::U16(a)) = (id, v) {
                topic_alias = Some(a);
            }
        })
        .ok_or(bad)?;
    }
    let start = packet.len() - b.len();
    Ok(Publish {
        qos,
        dup: first & 0x08 != 0,
        retain: first & 0x01 != 0,
        topic,
        pkid,
        topic_alias,
        payload: packet.slice(start..),
    })
}

/// The packet id of a PUBACK, PUBREC, PUBREL or PUBCOMP (whole packet).
pub fn parse_ack(packet: &[u8]) -> Result<u16, CloseReason> {
    let (h, _) = fixed_header(packet)?.ok_or(CloseReason::Malformed)?;
    let mut b = &packet[h..];
    take_u16(&mut b).ok_or(CloseReason::Malformed)
}

/// The packet id of a SUBSCRIBE or UNSUBSCRIBE and what follows its properties.
fn id_and_payload(packet: &[u8], level: u8) -> Result<(u16, &[u8]), CloseReason> {
    let bad = CloseReason::Malformed;
    let (h, _) = fixed_header(packet)?.ok_or(bad)?;
    let mut b = &packet[h..];
    let pkid = take_u16(&mut b).ok_or(bad)?;
    if level == 5 {
        take_props(&mut b).ok_or(bad)?;
    }
    Ok((pkid, b))
}

/// A SUBSCRIBE: packet id and (filter, requested QoS).
pub fn parse_subscribe(packet: &[u8], level: u8) -> Result<(u16, Vec<(String, u8)>), CloseReason> {
    let bad = CloseReason::Malformed;
    if packet.first() != Some(&0x82) {
        return Err(bad);
    }
    let (pkid, mut b) = id_and_payload(packet, level)?;
    let mut filters = Vec::new();
    while !b.is_empty() {
        let f = take_str(&mut b).ok_or(bad)?.to_owned();
        let options = *b.first().ok_or(bad)?;
        b = &b[1..];
        filters.push((f, options & 0x03));
    }
    if filters.is_empty() {
        return Err(bad);
    }
    Ok((pkid, filters))
}

/// An UNSUBSCRIBE: packet id and filters.
pub fn parse_unsubscribe(packet: &[u8], level: u8) -> Result<(u16, Vec<String>), CloseReason> {
    let (pkid, mut b) = id_and_payload(packet, level)?;
    let mut filters = Vec::new();
    while !b.is_empty() {
        filters.push(take_str(&mut b).ok_or(CloseReason::Malformed)?.to_owned());
    }
    Ok((pkid, filters))
}

/// A DISCONNECT: the MQTT 5 reason code (0 when absent) and a new Session Expiry Interval,
/// when given.
pub fn parse_disconnect(packet: &[u8], level: u8) -> Result<(u8, Option<u32>), CloseReason> {
    let (h, len) = fixed_header(packet)?.ok_or(CloseReason::Malformed)?;
    if level < 5 || len == 0 {
        return Ok((0, None));
    }
    let mut b = &packet[h..];
    let code = *b.first().ok_or(CloseReason::Malformed)?;
    b = &b[1..];
    let mut expiry = None;
    if !b.is_empty() {
        let block = take_props(&mut b).ok_or(CloseReason::Malformed)?;
        props(block, |id, v| {
            if let (0x11, Prop::U32(s)) = (id, v) {
                expiry = Some(s);
            }
        })
        .ok_or(CloseReason::Malformed)?;
    }
    Ok((code, expiry))
}

#[cfg(test)]
mod tests {
    use super::super::encode::publish_qos0;
    use super::*;

    #[test]
    fn publish_round_trip_and_properties() {
        let p = Bytes::from(publish_qos0(5, "a/b", b"{}", true));
        let got = parse_publish(&p, 5).unwrap();
        assert_eq!((got.qos, got.retain, got.pkid), (0, true, 0));
        assert_eq!((got.topic.as_str(), &got.payload[..]), ("a/b", &b"{}"[..]));
        // QoS 2, packet id 7, a topic alias property.
        let p = Bytes::from(vec![0x34, 10, 0, 1, b't', 0, 7, 3, 0x23, 0, 1, b'x']);
        let got = parse_publish(&p, 5).unwrap();
        assert_eq!((got.qos, got.pkid, got.topic_alias), (2, 7, Some(1)));
        assert_eq!(&got.payload[..], b"x");
        // Packet id 0 at QoS 1 is malformed.
        assert!(parse_publish(&Bytes::from_static(&[0x32, 5, 0, 1, b't', 0, 0]), 4).is_err());
    }

    /// Regression (issue 13): a PUBLISH whose topic held a NUL byte was accepted;
    /// MQTT-4.7.3-2 says it must be refused (the packet is malformed).
    #[test]
    fn a_topic_with_nul_is_malformed() {
        let p = Bytes::from(publish_qos0(4, "wardhub/v1/devices/a\0b/obs", b"{}", false));
        assert!(parse_publish(&p, 4).is_err());
        let ok = Bytes::from(publish_qos0(4, "wardhub/v1/devices/ab/obs", b"{}", false));
        assert!(parse_publish(&ok, 4).is_ok());
    }
}
