//! Dashboard sessions: a token is traded once for a random session id, sent back as an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` under TLS) that expires. Sessions live in
//! memory: a restart logs everyone out, which is safe.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{sha256, User};

/// The cookie's name.
pub const SESSION_COOKIE: &str = "wardhub_session";

/// One logged-in dashboard.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The token hash the session was made from (revoking the token ends the session).
    pub token_hash: [u8; 32],
    pub expires_ms: i64,
}

/// Sessions by the SHA-256 of their id (the id itself is only in the browser).
#[derive(Debug)]
pub struct Sessions {
    ttl_ms: i64,
    max: usize,
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Sessions that last `ttl_ms`; at most `max` at once (the oldest to expire goes first).
    pub fn new(ttl_ms: i64, max: usize) -> Sessions {
        Sessions {
            ttl_ms,
            max: max.max(1),
            by_hash: Mutex::default(),
        }
    }

    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// A new session for `user`; returns its id (for the cookie) and its expiry.
    pub fn create(&self, user: User, token_hash: [u8; 32], now_ms: i64) -> (String, i64) {
        let id = super::new_secret();
        let expires_ms = now_ms + self.ttl_ms;
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires_ms > now_ms);
        if map.len() >= self.max {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires_ms)
                .map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            sha256(id.as_bytes()),
            Session {
                user,
                token_hash,
                expires_ms,
            },
        );
        (id, expires_ms)
    }

    /// The live session of a cookie value.
    pub fn get(&self, id: &str, now_ms: i64) -> Option<Session> {
        let key = sha256(id.as_bytes());
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&key) {
            Some(s) if s.expires_ms > now_ms => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Logs a session out.
    pub fn remove(&self, id: &str) -> bool {
        self.by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sha256(id.as_bytes()))
            .is_some()
    }

    /// Ends every session made from these tokens; returns how many.
    pub fn end_for_tokens(&self, hashes: &[[u8; 32]]) -> usize {
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        let before = map.len();
        map.retain(|_, s| !hashes.contains(&s.token_hash));
        before - map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Role;
    use super::*;

    fn ana() -> User {
        User {
            name: "ana".into(),
            role: Role::Nurse,
        }
    }

    #[test]
    fn sessions_expire_and_log_out() {
        let s = Sessions::new(1000, 10);
        let (id, exp) = s.create(ana(), [1; 32], 5000);
        assert_eq!(exp, 6000);
        assert_eq!(s.get(&id, 5999).unwrap().user.name, "ana");
        assert!(
            s.get(&id, 6000).is_none(),
            "an expired session must not work"
        );
        let (id, _) = s.create(ana(), [1; 32], 7000);
        assert!(s.remove(&id));
        assert!(s.get(&id, 7001).is_none());
        assert!(s.get("made-up", 7001).is_none());
    }

    #[test]
    fn revoking_a_token_ends_its_sessions() {
        let s = Sessions::new(1000, 10);
        let (a, _) = s.create(ana(), [1; 32], 0);
        let (b, _) = s.create(ana(), [2; 32], 0);
        assert_eq!(s.end_for_tokens(&[[1; 32]]), 1);
        assert!(s.get(&a, 1).is_none());
        assert!(s.get(&b, 1).is_some());
    }

    #[test]
    fn the_session_count_is_bounded() {
        let s = Sessions::new(1000, 2);
        let (a, _) = s.create(ana(), [1; 32], 0);
        let (b, _) = s.create(ana(), [1; 32], 1);
        let (c, _) = s.create(ana(), [1; 32], 2);
        assert!(s.get(&a, 3).is_none(), "the oldest session goes first");
        assert!(s.get(&b, 3).is_some() && s.get(&c, 3).is_some());
    }
}
