//! Dashboard sessions: a token is traded once for a random session id, sent back as an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` under TLS) that expires. Sessions are kept
//! in the store (`auth.sessions`, by the SHA-256 of the id: the id itself is only in the
//! browser), so a wall display stays logged in across a hub restart; each use checks that the
//! token it was made from is still configured, unexpired and unrevoked.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{sha256, Role, User};

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
    tree: Option<sled::Tree>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    role: Role,
    token_hash: String,
    expires_ms: i64,
}

impl Sessions {
    /// Sessions that last `ttl_ms`; at most `max` at once (the oldest to expire goes first).
    pub fn new(ttl_ms: i64, max: usize) -> Sessions {
        Sessions {
            ttl_ms,
            max: max.max(1),
            by_hash: Mutex::default(),
            tree: None,
        }
    }

    /// Sessions kept in `db` (those still live at `now_ms` are loaded; expired ones removed).
    pub fn open(db: &sled::Db, ttl_ms: i64, max: usize, now_ms: i64) -> sled::Result<Sessions> {
        let tree = db.open_tree("auth.sessions")?;
        let mut map = HashMap::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            let parsed = <[u8; 32]>::try_from(k.as_ref())
                .ok()
                .zip(serde_json::from_slice::<Stored>(&v).ok());
            match parsed {
                Some((key, st)) if st.expires_ms > now_ms => {
                    if let Some(token_hash) = super::parse_hex32(&st.token_hash) {
                        map.insert(
                            key,
                            Session {
                                user: User {
                                    name: st.name,
                                    role: st.role,
                                },
                                token_hash,
                                expires_ms: st.expires_ms,
                            },
                        );
                    }
                }
                _ => {
                    tree.remove(k)?;
                }
            }
        }
        Ok(Sessions {
            ttl_ms,
            max: max.max(1),
            by_hash: Mutex::new(map),
            tree: Some(tree),
        })
    }

    fn store(&self, key: &[u8; 32], s: &Session) {
        if let Some(t) = &self.tree {
            let st = Stored {
                name: s.user.name.clone(),
                role: s.user.role,
                token_hash: super::hex(&s.token_hash),
                expires_ms: s.expires_ms,
            };
            if let Err(e) = t.insert(key, serde_json::to_vec(&st).unwrap_or_default()) {
                tracing::warn!(error = %e, "a session could not be stored (it lasts until a restart)");
            }
        }
    }

    fn forget(&self, key: &[u8; 32]) {
        if let Some(t) = &self.tree {
            let _ = t.remove(key);
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
        let gone: Vec<[u8; 32]> = map
            .iter()
            .filter(|(_, s)| s.expires_ms <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            map.remove(&k);
            self.forget(&k);
        }
        if map.len() >= self.max {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires_ms)
                .map(|(k, _)| *k)
            {
                map.remove(&oldest);
                self.forget(&oldest);
            }
        }
        let key = sha256(id.as_bytes());
        let session = Session {
            user,
            token_hash,
            expires_ms,
        };
        self.store(&key, &session);
        map.insert(key, session);
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
                self.forget(&key);
                None
            }
            None => None,
        }
    }

    /// Logs a session out.
    pub fn remove(&self, id: &str) -> bool {
        let key = sha256(id.as_bytes());
        self.forget(&key);
        self.by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
            .is_some()
    }

    /// Ends every session made from these tokens; returns how many.
    pub fn end_for_tokens(&self, hashes: &[[u8; 32]]) -> usize {
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        let ended: Vec<[u8; 32]> = map
            .iter()
            .filter(|(_, s)| hashes.contains(&s.token_hash))
            .map(|(k, _)| *k)
            .collect();
        for k in &ended {
            map.remove(k);
            self.forget(k);
        }
        ended.len()
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
    fn sessions_survive_a_restart_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let db = sled::open(dir.path()).unwrap();
            let s = Sessions::open(&db, 1000, 10, 0).unwrap();
            let (a, _) = s.create(ana(), [1; 32], 0);
            let (b, _) = s.create(ana(), [1; 32], 500);
            let (c, _) = s.create(ana(), [1; 32], 0);
            assert!(s.remove(&c));
            db.flush().unwrap();
            (a, b)
        };
        let db = sled::open(dir.path()).unwrap();
        let s = Sessions::open(&db, 1000, 10, 999).unwrap();
        assert_eq!(s.get(&a, 999).unwrap().user.name, "ana");
        assert!(s.get(&b, 1499).is_some());
        let s = Sessions::open(&db, 1000, 10, 1200).unwrap();
        assert!(s.get(&a, 1200).is_none(), "expired while the hub was down");
        assert!(s.get(&b, 1200).is_some());
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
