//! The access audit: who read which bed's data, when, from where. Hospitals must be able to
//! answer "who looked at this patient"; this is the hub's part of that answer.
//!
//! An append-only sled tree (`audit.access`), key = big-endian milliseconds + a sequence
//! number, value = one JSON [`AccessRecord`]. Entries are never rewritten or removed by the
//! API. A dashboard that polls the same bed every few seconds would write thousands of
//! identical lines, so a read of the same scope by the same user from the same source within
//! [`AccessAudit::coalesce`] is folded into the first one (the first read is always recorded).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub at: String,
    pub user: String,
    pub role: String,
    /// The route template (`/api/v1/beds/{bed}/latest`), never the raw URL.
    pub route: String,
    /// The bed whose data was read, when the route names one (directly or via a device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The patient whose data was read, when the request names one (a patient route, the
    /// FHIR search's `patient`). The audit is patient data itself: admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// `true` for ward-wide reads (every bed's data): the alarm list, the ward, the stream.
    pub ward_wide: bool,
    pub source: String,
}

/// A query of the audit.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub user: Option<String>,
    /// Reads of this bed, including ward-wide reads (which showed every bed).
    pub bed: Option<String>,
    pub limit: usize,
}

/// The audit log.
#[derive(Debug)]
pub struct AccessAudit {
    tree: sled::Tree,
    db: sled::Db,
    coalesce_ms: i64,
    recent: Mutex<HashMap<String, i64>>,
}

impl AccessAudit {
    /// The window within which identical reads are recorded once.
    pub const COALESCE_MS: i64 = 60_000;

    pub fn open(db: &sled::Db) -> sled::Result<AccessAudit> {
        Ok(AccessAudit {
            tree: db.open_tree("audit.access")?,
            db: db.clone(),
            coalesce_ms: Self::COALESCE_MS,
            recent: Mutex::default(),
        })
    }

    pub fn coalesce(&self) -> i64 {
        self.coalesce_ms
    }

    /// Records a read at `now_ms` (unless the same one was recorded within the window).
    pub fn record(&self, now_ms: i64, r: AccessRecord) -> sled::Result<()> {
        if self.admit(now_ms, &r) {
            self.append(now_ms, &r)?;
        }
        Ok(())
    }

    /// Whether `r` is due a line of its own (not the same read within the window); marks it.
    /// In memory only, so a caller can skip the store write (and its thread) for repeats.
    pub fn admit(&self, now_ms: i64, r: &AccessRecord) -> bool {
        let key = format!(
            "{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{}",
            r.user, r.route, r.bed, r.device, r.patient, r.source
        );
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent
            .get(&key)
            .is_some_and(|&t| now_ms - t < self.coalesce_ms && now_ms >= t)
        {
            return false;
        }
        if recent.len() > 10_000 {
            let cut = now_ms - self.coalesce_ms;
            recent.retain(|_, t| *t > cut);
        }
        recent.insert(key, now_ms);
        true
    }

    /// Appends `r` to the log (no coalescing).
    pub fn append(&self, now_ms: i64, r: &AccessRecord) -> sled::Result<()> {
        let seq = self.db.generate_id()?;
        let mut k = Vec::with_capacity(16);
        k.extend_from_slice(&(now_ms.max(0) as u64).to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        self.tree
            .insert(k, serde_json::to_vec(r).unwrap_or_default())?;
        Ok(())
    }

    /// Records in time order, newest last, filtered by `q`.
    pub fn query(&self, q: &AuditQuery) -> sled::Result<Vec<AccessRecord>> {
        let from = (q.from_ms.unwrap_or(0).max(0) as u64).to_be_bytes();
        let to = q
            .to_ms
            .map(|t| ((t.max(0) as u64).saturating_add(1)).to_be_bytes());
        let iter = match to {
            Some(to) => self.tree.range(from.to_vec()..to.to_vec()),
            None => self.tree.range(from.to_vec()..),
        };
        let mut out = Vec::new();
        for kv in iter.rev() {
            let (_, v) = kv?;
            let Ok(r) = serde_json::from_slice::<AccessRecord>(&v) else {
                continue;
            };
            if q.user.as_ref().is_some_and(|u| &r.user != u) {
                continue;
            }
            if let Some(bed) = &q.bed {
                if !(r.ward_wide || r.bed.as_ref() == Some(bed)) {
                    continue;
                }
            }
            out.push(r);
            if out.len() >= q.limit {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(user: &str, bed: Option<&str>, ward_wide: bool) -> AccessRecord {
        AccessRecord {
            at: String::new(),
            user: user.into(),
            role: "nurse".into(),
            route: "/api/v1/beds/{bed}/latest".into(),
            bed: bed.map(Into::into),
            device: None,
            patient: None,
            ward_wide,
            source: "10.0.0.1".into(),
        }
    }

    #[test]
    fn who_looked_at_this_bed() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let a = AccessAudit::open(&db).unwrap();
        a.record(1_000, read("ana", Some("bed-01"), false)).unwrap();
        a.record(2_000, read("ben", Some("bed-02"), false)).unwrap();
        a.record(3_000, read("cid", None, true)).unwrap();
        let q = |bed: &str| AuditQuery {
            bed: Some(bed.into()),
            limit: 100,
            ..AuditQuery::default()
        };
        let users: Vec<_> = a
            .query(&q("bed-01"))
            .unwrap()
            .into_iter()
            .map(|r| r.user)
            .collect();
        assert_eq!(
            users,
            ["ana", "cid"],
            "bed reads and ward-wide reads, in order"
        );
        let by_ben = a
            .query(&AuditQuery {
                user: Some("ben".into()),
                limit: 100,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(by_ben.len(), 1);
        let window = a
            .query(&AuditQuery {
                from_ms: Some(1_500),
                to_ms: Some(2_000),
                limit: 100,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(window.len(), 1, "from/to are inclusive milliseconds");
    }

    #[test]
    fn repeated_polls_are_recorded_once_per_window() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let a = AccessAudit::open(&db).unwrap();
        for t in [0, 2_000, 4_000, 59_999] {
            a.record(t, read("ana", Some("bed-01"), false)).unwrap();
        }
        a.record(60_000, read("ana", Some("bed-01"), false))
            .unwrap();
        a.record(60_001, read("ana", Some("bed-02"), false))
            .unwrap();
        let all = a
            .query(&AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(all.len(), 3, "one per window and scope: {all:?}");
    }
}
