//! The packets of a device the edge answers at once, without the pipeline: PUBREL (the
//! second half of QoS 2), SUBSCRIBE and UNSUBSCRIBE (within the device's own topics), and
//! DISCONNECT. Each handler returns the answer for the writer, or why to close.

use super::End;
use crate::broker::edge::acl::Acl;
use crate::broker::edge::packet::{self, kind, reason};
use crate::broker::edge::session::AwaitingRelease;
use crate::broker::edge::CloseReason;

/// What a handler decided: the answer to send, or the close reason and its MQTT 5 code.
pub(super) type Handled = Result<Vec<u8>, (CloseReason, u8)>;

/// PUBREL: the stored QoS 2 id is released; PUBCOMP (0x92 when the id was not waiting).
pub(super) fn pubrel(p: &[u8], level: u8, awaiting: &AwaitingRelease) -> Handled {
    match packet::parse_ack(p) {
        Ok(pkid) if p[0] & 0x0F == 0x02 => {
            let known = awaiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pkid);
            let code = if known {
                0
            } else {
                reason::PACKET_ID_NOT_FOUND
            };
            let a = packet::ack(kind::PUBCOMP, level, pkid, code);
            Ok(a[..packet::ack_len(&a)].to_vec())
        }
        _ => Err((CloseReason::Malformed, reason::MALFORMED)),
    }
}

/// SUBSCRIBE: each well-formed filter within the device's topics is granted (QoS 0) and
/// added to `subscriptions`; SUBACK.
pub(super) fn subscribe(
    p: &[u8],
    level: u8,
    acl: &Acl,
    subscriptions: &mut Vec<String>,
) -> Handled {
    match packet::parse_subscribe(p, level) {
        Ok((pkid, filters)) => {
            let mut codes = Vec::with_capacity(filters.len());
            let mut refused = false;
            for (f, _qos) in filters {
                if !valid_filter(&f) {
                    codes.push(0x8F);
                    refused = true;
                } else if acl.may_subscribe(&f) {
                    // Granted at QoS 0: only the device itself publishes under
                    // its own topics, and it hears them back once stored.
                    codes.push(0);
                    if !subscriptions.contains(&f) {
                        subscriptions.push(f);
                    }
                } else {
                    codes.push(reason::NOT_AUTHORIZED);
                    refused = true;
                }
            }
            if refused && level < 5 {
                // 3.1.1 has no "not authorized" SUBACK code: close, as before.
                Err((CloseReason::Acl, reason::NOT_AUTHORIZED))
            } else {
                Ok(packet::suback(level, pkid, &codes))
            }
        }
        Err(r) => Err((r, reason::MALFORMED)),
    }
}

/// UNSUBSCRIBE: the filters leave `subscriptions`; UNSUBACK.
pub(super) fn unsubscribe(p: &[u8], level: u8, subscriptions: &mut Vec<String>) -> Handled {
    match packet::parse_unsubscribe(p, level) {
        Ok((pkid, filters)) => {
            subscriptions.retain(|s| !filters.contains(s));
            Ok(packet::unsuback(level, pkid, filters.len()))
        }
        Err(r) => Err((r, reason::MALFORMED)),
    }
}

/// DISCONNECT: how the connection ended, and the session's expiry as the client changed it.
pub(super) fn disconnect(p: &[u8], level: u8, session_expiry: &mut u32) -> End {
    match packet::parse_disconnect(p, level) {
        Ok((code, expiry)) => {
            // A session that ended with the connection cannot be revived
            // by the DISCONNECT (MQTT 5 3.14.2.2.2).
            if let Some(e) = expiry.filter(|_| *session_expiry != 0) {
                *session_expiry = e;
            }
            End::Disconnect {
                will: code == reason::DISCONNECT_WITH_WILL,
            }
        }
        Err(r) => End::Closed(r),
    }
}

/// Whether an MQTT filter is well formed (`#` last and alone in its level, `+` alone).
fn valid_filter(f: &str) -> bool {
    if f.is_empty() {
        return false;
    }
    let levels: Vec<&str> = f.split('/').collect();
    levels
        .iter()
        .enumerate()
        .all(|(i, l)| (*l == "#" && i == levels.len() - 1) || *l == "+" || !l.contains(['#', '+']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for f in ["a/#", "a/+/b", "#", "a/b"] {
            assert!(valid_filter(f), "{f}");
        }
        for f in ["", "a/#/b", "a/b#", "a+/b"] {
            assert!(!valid_filter(f), "{f}");
        }
    }
}
