//! Device sessions: one per client id, across that id's connections.
//!
//! A session holds what must outlive a connection for exactly-once QoS 2 (the packet ids
//! whose PUBLISH was stored and PUBREC'd, waiting for their PUBREL) and a last will that waits
//! for its delay. A new connection with the same client id takes the session over: the old
//! connection is closed (MQTT 5: DISCONNECT 0x8E) without publishing its will (the device is
//! demonstrably back), and a will still waiting for its delay is dropped. Sessions exist only
//! for authenticated devices, so the table is bounded by the registry.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// QoS 2 packet ids stored and PUBREC'd, waiting for PUBREL.
pub type AwaitingRelease = Arc<Mutex<HashSet<u16>>>;

#[derive(Debug)]
struct Entry {
    /// The connection holding the session: its generation and the token that closes it.
    owner: Option<(u64, CancellationToken)>,
    awaiting: AwaitingRelease,
    /// Set while no connection holds it; `None` with no owner means it never expires.
    expires: Option<Instant>,
    /// A will waiting for its delay; cancelled when the client id connects again.
    pending_will: Option<CancellationToken>,
}

/// The session table.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<(u64, HashMap<String, Entry>)>,
    /// Generations closed because their credentials changed (asked once by the connection).
    revoked: Mutex<HashSet<u64>>,
}

/// A connection's hold on its session.
#[derive(Debug)]
pub struct Attached {
    pub generation: u64,
    pub session_present: bool,
    /// Cancelled when another connection takes the session over.
    pub taken_over: CancellationToken,
    pub awaiting: AwaitingRelease,
}

impl Sessions {
    /// Attaches a new connection of `client_id`, taking the session over from any connection
    /// that holds it. `clean_start` discards the old session's state.
    pub fn attach(&self, client_id: &str, clean_start: bool) -> Attached {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (next, map) = &mut *g;
        *next += 1;
        let generation = *next;
        // Sessions of gone connections that expired go now (a bounded table either way).
        map.retain(|_, e| e.owner.is_some() || e.expires.is_none_or(|t| t > now));
        let taken_over = CancellationToken::new();
        let (session_present, awaiting) = match map.get_mut(client_id) {
            Some(e) => {
                if let Some((_, old)) = e.owner.take() {
                    old.cancel();
                }
                if let Some(w) = e.pending_will.take() {
                    w.cancel();
                }
                if clean_start {
                    e.awaiting = AwaitingRelease::default();
                }
                e.owner = Some((generation, taken_over.clone()));
                e.expires = None;
                (!clean_start, e.awaiting.clone())
            }
            None => {
                let awaiting = AwaitingRelease::default();
                map.insert(
                    client_id.to_owned(),
                    Entry {
                        owner: Some((generation, taken_over.clone())),
                        awaiting: awaiting.clone(),
                        expires: None,
                        pending_will: None,
                    },
                );
                (false, awaiting)
            }
        };
        Attached {
            generation,
            session_present,
            taken_over,
            awaiting,
        }
    }

    /// Closes the connection holding `client_id`'s session, if any (its device was retired or
    /// its credentials rotated). Returns whether there was one.
    pub fn disconnect(&self, client_id: &str) -> bool {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some((generation, token)) = g.1.get(client_id).and_then(|e| e.owner.clone()) else {
            return false;
        };
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(generation);
        token.cancel();
        true
    }

    /// Whether connection `generation` was closed by [`Sessions::disconnect`] (forgets it).
    pub fn was_disconnected(&self, generation: u64) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&generation)
    }

    /// The connection `generation` of `client_id` ended; its session lives on for
    /// `expiry_secs` (0: it ends now; `u32::MAX`: it never expires). Returns `false` when
    /// another connection had already taken the session over.
    pub fn detach(&self, client_id: &str, generation: u64, expiry_secs: u32) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let map = &mut g.1;
        let Some(e) = map.get_mut(client_id) else {
            return false;
        };
        if e.owner.as_ref().map(|(g, _)| *g) != Some(generation) {
            return false;
        }
        e.owner = None;
        match expiry_secs {
            0 => {
                map.remove(client_id);
            }
            u32::MAX => e.expires = None,
            s => e.expires = Some(Instant::now() + Duration::from_secs(u64::from(s))),
        }
        true
    }

    /// A will of `client_id` now waits for its delay; the returned token is cancelled if the
    /// client id connects again first. `None` when the session is gone (the will then goes
    /// out at once).
    pub fn will_waits(&self, client_id: &str) -> Option<CancellationToken> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let e = g.1.get_mut(client_id)?;
        if e.owner.is_some() {
            return None;
        }
        let token = CancellationToken::new();
        e.pending_will = Some(token.clone());
        Some(token)
    }

    /// Sessions held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takeover_closes_the_old_connection_and_keeps_qos2_state() {
        let s = Sessions::default();
        let a = s.attach("d1", false);
        assert!(!a.session_present);
        a.awaiting.lock().unwrap().insert(7);
        let b = s.attach("d1", false);
        assert!(a.taken_over.is_cancelled(), "the old connection is closed");
        assert!(b.session_present);
        assert!(b.awaiting.lock().unwrap().contains(&7));
        // The old connection's detach does not end the new one's session.
        assert!(!s.detach("d1", a.generation, 0));
        assert_eq!(s.len(), 1);
        assert!(s.detach("d1", b.generation, u32::MAX));
        let c = s.attach("d1", false);
        assert!(c.session_present && c.awaiting.lock().unwrap().contains(&7));
        // A clean start discards it.
        let d = s.attach("d1", true);
        assert!(!d.session_present && d.awaiting.lock().unwrap().is_empty());
        assert!(s.detach("d1", d.generation, 0));
        assert!(s.is_empty());
    }

    #[test]
    fn a_reconnect_cancels_a_waiting_will() {
        let s = Sessions::default();
        let a = s.attach("d1", false);
        assert!(s.will_waits("d1").is_none(), "not while connected");
        s.detach("d1", a.generation, 60);
        let will = s.will_waits("d1").unwrap();
        assert!(!will.is_cancelled());
        let _b = s.attach("d1", false);
        assert!(will.is_cancelled());
        assert!(s.will_waits("nobody").is_none());
    }
}
