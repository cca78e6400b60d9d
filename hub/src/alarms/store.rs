//! Durable alarm state: the audit log of every transition and the set of open alarms.
//!
//! Two sled trees:
//! - `alarms_audit`: key = hub time (8 bytes, big-endian, sign bit flipped so negative times
//!   sort first) + sequence number (8 bytes, big-endian); value = the [`Transition`] as JSON.
//!   Range scans by time are key-range scans.
//! - `alarms_state`: `a` + alarm id (8 bytes, big-endian) → the open [`Alarm`] as JSON, plus
//!   the counters `meta/next_id` and `meta/next_seq`.
//!
//! [`AlarmStore::append`] writes the audit records and the state changes of a batch of
//! transitions in one sled transaction: after a crash either all of them are there or none.
//! The caller flushes (`Db::flush_async`) before announcing.

use std::collections::BTreeMap;
use std::sync::Mutex;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use wardhub_adapters::model::Millis;

use wardhub_alarm_engine::{Alarm, AlarmError, Transition};

/// A failure of the alarm store; callers that speak the engine's language get it as
/// [`AlarmError::Store`].
#[derive(Debug, thiserror::Error)]
pub enum AlarmStoreError {
    #[error("alarm store: {0}")]
    Sled(#[from] sled::Error),
    #[error("alarm store record: {0}")]
    Record(#[from] serde_json::Error),
    #[error("alarm store: corrupt key or value in {0}")]
    Corrupt(&'static str),
}

impl From<AlarmStoreError> for AlarmError {
    fn from(e: AlarmStoreError) -> Self {
        AlarmError::Store(Box::new(e))
    }
}

type Result<T, E = AlarmStoreError> = std::result::Result<T, E>;

const NEXT_ID: &[u8] = b"meta/next_id";
const NEXT_SEQ: &[u8] = b"meta/next_seq";

/// What a restarted hub needs to rebuild its engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// Open (active or acknowledged) alarms, by id.
    pub alarms: Vec<Alarm>,
    /// The first alarm id never used.
    pub next_id: u64,
}

/// The alarm store over the hub's sled database.
#[derive(Debug)]
pub struct AlarmStore {
    state: sled::Tree,
    audit: sled::Tree,
    /// Serializes appends and holds the next audit sequence number.
    next_seq: Mutex<u64>,
}

fn alarm_key(id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'a';
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn audit_key(at: Millis, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&((at as u64) ^ (1 << 63)).to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Where a page of the audit history goes on: the record that did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    pub at: Millis,
    pub seq: u64,
}

impl HistoryCursor {
    fn of_key(k: &[u8]) -> Option<Self> {
        let at = u64::from_be_bytes(k.get(..8)?.try_into().ok()?) ^ (1 << 63);
        let seq = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
        Some(Self {
            at: at as Millis,
            seq,
        })
    }

    /// Parses the API form `"<at>-<seq>"`.
    pub fn parse(s: &str) -> Option<Self> {
        let (at, seq) = s.split_once('-')?;
        Some(Self {
            at: at.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for HistoryCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.at, self.seq)
    }
}

/// A page of the audit history.
#[derive(Debug, Default)]
pub struct HistoryPage {
    pub transitions: Vec<Transition>,
    /// Set when more records match: pass it as the next page's cursor.
    pub next: Option<HistoryCursor>,
}

fn read_u64(v: Option<sled::IVec>) -> Result<u64> {
    match v {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| AlarmStoreError::Corrupt("alarms_state")),
    }
}

impl AlarmStore {
    /// Opens (creating if needed) the trees `alarms_state` and `alarms_audit`.
    pub fn open(db: &sled::Db) -> Result<Self> {
        let state = db.open_tree("alarms_state")?;
        let audit = db.open_tree("alarms_audit")?;
        let next_seq = read_u64(state.get(NEXT_SEQ)?)?;
        Ok(Self {
            state,
            audit,
            next_seq: Mutex::new(next_seq),
        })
    }

    /// Appends transitions (in order) to the audit log and applies them to the open-alarm set,
    /// atomically. Cleared and suppressed alarms leave the open set.
    pub fn append(&self, transitions: &[Transition]) -> Result<()> {
        if transitions.is_empty() {
            return Ok(());
        }
        // A poisoned lock only means another append panicked; the counter is still valid.
        let mut seq_guard = self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
        let seq0 = *seq_guard;
        let mut audit = Vec::with_capacity(transitions.len());
        let mut state: BTreeMap<u64, Option<Vec<u8>>> = BTreeMap::new();
        let mut max_id = 0;
        for (i, t) in transitions.iter().enumerate() {
            audit.push((audit_key(t.at, seq0 + i as u64), serde_json::to_vec(t)?));
            let id = t.alarm.id.0;
            max_id = max_id.max(id);
            let v = if t.alarm.state.is_open() {
                Some(serde_json::to_vec(&t.alarm)?)
            } else {
                None
            };
            state.insert(id, v);
        }
        let next_seq = seq0 + transitions.len() as u64;
        (&self.state, &self.audit)
            .transaction(|(s, a)| {
                for (k, v) in &audit {
                    a.insert(&k[..], v.as_slice())?;
                }
                for (id, v) in &state {
                    match v {
                        Some(v) => s.insert(&alarm_key(*id)[..], v.as_slice())?,
                        None => s.remove(&alarm_key(*id)[..])?,
                    };
                }
                let stored = read_u64(s.get(NEXT_ID)?)
                    .map_err(|_| ConflictableTransactionError::Abort(()))?;
                s.insert(NEXT_ID, &stored.max(max_id + 1).to_be_bytes()[..])?;
                s.insert(NEXT_SEQ, &next_seq.to_be_bytes()[..])?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => AlarmStoreError::Sled(e),
                TransactionError::Abort(()) => AlarmStoreError::Corrupt("alarms_state"),
            })?;
        *seq_guard = next_seq;
        Ok(())
    }

    /// The open alarms, by id.
    pub fn load_active(&self) -> Result<Vec<Alarm>> {
        self.state
            .scan_prefix(b"a")
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    /// Open alarms and the id counter, for [`AlarmEngine::restore`](super::AlarmEngine::restore).
    pub fn load(&self) -> Result<Restored> {
        let alarms = self.load_active()?;
        let stored = read_u64(self.state.get(NEXT_ID)?)?;
        let next_id = alarms
            .iter()
            .map(|a| a.id.0 + 1)
            .fold(stored.max(1), u64::max);
        Ok(Restored { alarms, next_id })
    }

    /// Audit records with `from <= at < to`, oldest first, at most `limit`, optionally of one
    /// bed only (the first page of [`AlarmStore::history_page`]).
    pub fn history(
        &self,
        from: Millis,
        to: Millis,
        bed: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Transition>> {
        Ok(self.history_page(from, to, bed, limit, None)?.transitions)
    }

    /// Every audit record with `from <= at < to`, oldest first (page after page).
    pub fn history_all(&self, from: Millis, to: Millis) -> Result<Vec<Transition>> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.history_page(from, to, None, 10_000, cursor)?;
            all.extend(page.transitions);
            match page.next {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// One page of audit records with `from <= at < to`, oldest first, at most `limit`,
    /// optionally of one bed only, starting at `cursor` (the `next` of the previous page)
    /// when given. `next` is set when more records match: nothing is cut off silently.
    pub fn history_page(
        &self,
        from: Millis,
        to: Millis,
        bed: Option<&str>,
        limit: usize,
        cursor: Option<HistoryCursor>,
    ) -> Result<HistoryPage> {
        let mut page = HistoryPage::default();
        if from >= to || limit == 0 {
            return Ok(page);
        }
        let start = match cursor {
            Some(c) if c.at >= from => audit_key(c.at, c.seq),
            _ => audit_key(from, 0),
        };
        for kv in self.audit.range(start..audit_key(to, 0)) {
            let (k, v) = kv?;
            let t: Transition = serde_json::from_slice(&v)?;
            if bed.is_none() || t.alarm.bed.as_deref() == bed {
                if page.transitions.len() == limit {
                    page.next = HistoryCursor::of_key(&k);
                    break;
                }
                page.transitions.push(t);
            }
        }
        Ok(page)
    }

    /// Every audit record of one alarm, oldest first (a scan of the time range given).
    pub fn alarm_history(
        &self,
        id: super::AlarmId,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Transition>> {
        let mut out = Vec::new();
        for v in self
            .audit
            .range(audit_key(from, 0)..audit_key(to, 0))
            .values()
        {
            let t: Transition = serde_json::from_slice(&v?)?;
            if t.alarm.id == id {
                out.push(t);
            }
        }
        Ok(out)
    }
}
