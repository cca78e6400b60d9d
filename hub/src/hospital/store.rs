//! The hospital view's own sled store: each ward (health, open alarms, counts), what has been
//! seen of each stream (de-duplication and repair survive a restart), and the
//! alarm transitions of the last `keep` hours. A restarted view shows what it showed.

use std::path::Path;

use wardhub_adapters::model::Millis;

use super::view::{View, Ward};
use crate::alarms::Transition;

/// The store's failures (sled's, or a record it cannot read).
#[derive(Debug, thiserror::Error)]
pub enum HospitalStoreError {
    #[error("hospital store: {0}")]
    Sled(#[from] sled::Error),
    #[error("hospital store: a record is unreadable: {0}")]
    Json(#[from] serde_json::Error),
}

/// The store.
pub struct HospitalStore {
    db: sled::Db,
    wards: sled::Tree,
    seen: sled::Tree,
    recent: sled::Tree,
}

impl std::fmt::Debug for HospitalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HospitalStore").finish_non_exhaustive()
    }
}

fn ward_key(site: &str, ward: &str) -> Vec<u8> {
    format!("{site}/{ward}").into_bytes()
}

impl HospitalStore {
    pub fn open(dir: &Path) -> Result<HospitalStore, HospitalStoreError> {
        let db = sled::open(dir)?;
        Ok(HospitalStore {
            wards: db.open_tree("wards")?,
            seen: db.open_tree("seen")?,
            recent: db.open_tree("recent")?,
            db,
        })
    }

    /// The view as the last run left it.
    pub fn load(&self) -> Result<View, HospitalStoreError> {
        let mut view = View::default();
        for kv in self.wards.iter() {
            let (_, v) = kv?;
            let w: Ward = serde_json::from_slice(&v)?;
            view.wards.insert((w.site.clone(), w.ward.clone()), w);
        }
        for kv in self.seen.iter() {
            let (k, v) = kv?;
            let seen: super::view::Seen = serde_json::from_slice(&v)?;
            view.seen
                .insert(String::from_utf8_lossy(&k).into_owned(), seen);
        }
        for kv in self.recent.iter().rev().take(200) {
            let (_, v) = kv?;
            let r: (String, String, Transition) = serde_json::from_slice(&v)?;
            view.recent.push_front(r);
        }
        Ok(view)
    }

    /// Saves the wards `touched` and what has been seen of each stream, in one batch, and the alarm
    /// transitions just received.
    pub fn save(
        &self,
        view: &View,
        touched: &[(String, String)],
        transitions: &[(String, String, Transition)],
        now: Millis,
        seq: &mut u32,
    ) -> Result<(), HospitalStoreError> {
        let mut wards = sled::Batch::default();
        for k in touched {
            if let Some(w) = view.wards.get(k) {
                wards.insert(ward_key(&w.site, &w.ward), serde_json::to_vec(w)?);
            }
        }
        let mut seen = sled::Batch::default();
        for (stream, s) in &view.seen {
            seen.insert(stream.as_bytes(), serde_json::to_vec(s)?);
        }
        let mut recent = sled::Batch::default();
        for t in transitions {
            let mut k = now.to_be_bytes().to_vec();
            k.extend_from_slice(&seq.to_be_bytes());
            *seq = seq.wrapping_add(1);
            recent.insert(k, serde_json::to_vec(t)?);
        }
        use sled::Transactional;
        (&self.wards, &self.seen, &self.recent)
            .transaction(|(w, h, r)| {
                w.apply_batch(&wards)?;
                h.apply_batch(&seen)?;
                r.apply_batch(&recent)?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => HospitalStoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    HospitalStoreError::Sled(sled::Error::Unsupported("aborted".into()))
                }
            })?;
        Ok(())
    }

    /// Makes what was saved durable.
    pub async fn flush(&self) -> Result<(), HospitalStoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Forgets the alarm transitions received before `before`.
    pub fn prune(&self, before: Millis) -> Result<u64, HospitalStoreError> {
        let mut n = 0;
        for kv in self.recent.range(..before.to_be_bytes().to_vec()) {
            let (k, _) = kv?;
            self.recent.remove(k)?;
            n += 1;
        }
        Ok(n)
    }
}
