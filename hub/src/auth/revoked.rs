//! Tokens an admin revoked at run time, kept in the store so a restart does not bring them back.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use super::hex;

/// Who revoked a token, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub user: String,
    pub by: String,
    pub at: String,
}

/// The revoked token hashes: a sled tree (`auth.revoked`, key = SHA-256 of the token) with an
/// in-memory copy for the per-request check.
#[derive(Debug)]
pub struct Revocations {
    tree: Option<sled::Tree>,
    cache: RwLock<HashMap<[u8; 32], Revocation>>,
}

impl Revocations {
    /// Opens the tree and loads what it holds.
    pub fn open(db: &sled::Db) -> sled::Result<Revocations> {
        let tree = db.open_tree("auth.revoked")?;
        let mut cache = HashMap::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            let (Ok(hash), Ok(r)) = (
                <[u8; 32]>::try_from(k.as_ref()),
                serde_json::from_slice::<Revocation>(&v),
            ) else {
                tracing::warn!(key = %hex(&k), "unreadable token revocation skipped");
                continue;
            };
            cache.insert(hash, r);
        }
        Ok(Revocations {
            tree: Some(tree),
            cache: RwLock::new(cache),
        })
    }

    /// Revocations that last only as long as the process (tests).
    pub fn in_memory() -> Revocations {
        Revocations {
            tree: None,
            cache: RwLock::default(),
        }
    }

    pub fn is_revoked(&self, hash: &[u8; 32]) -> bool {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(hash)
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<Revocation> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    /// Revokes these token hashes of `user`; written to the store before it takes effect.
    pub fn revoke(
        &self,
        hashes: &[[u8; 32]],
        user: &str,
        by: &str,
        now_ms: i64,
    ) -> sled::Result<()> {
        let r = Revocation {
            user: user.to_owned(),
            by: by.to_owned(),
            at: wardhub_adapters::model::format_rfc3339(now_ms),
        };
        let value = serde_json::to_vec(&r).unwrap_or_default();
        if let Some(tree) = &self.tree {
            for h in hashes {
                tree.insert(h, value.as_slice())?;
            }
        }
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        for h in hashes {
            cache.insert(*h, r.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let r = Revocations::open(&db).unwrap();
            r.revoke(&[[7; 32]], "ana", "ada", 0).unwrap();
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let r = Revocations::open(&db).unwrap();
        assert!(r.is_revoked(&[7; 32]));
        assert!(!r.is_revoked(&[8; 32]));
        assert_eq!(r.get(&[7; 32]).unwrap().by, "ada");
    }
}
