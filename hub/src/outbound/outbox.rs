//! A durable outbox: one sled tree per integration (`emr.outbox`, `acm.outbox`) in the hub's
//! database, a queue per destination (EMR HL7, EMR FHIR, ACM) of built messages, oldest first.
//!
//! Keys: `q` + destination + seq (big-endian) for what waits to be sent; `r` + destination +
//! seq for what the receiver refused for good (kept for a person to look at, at most
//! [`MAX_REFUSED`] per destination); `m/…` for the meta values (next seq, this hub's stream
//! id, up to where periods were charted). A message is queued in the same sled batch as the
//! meta values that say it was made, so a restart neither loses nor repeats one; it leaves
//! the queue only once its receiver has acknowledged it (AA, a 2xx transaction-response).
//!
//! Bounded: past a destination's `outbox_max_bytes` its oldest message is dropped (counted
//! as `full`): a receiver down for days must not fill the ward's disk.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use wardhub_adapters::model::Millis;

use super::metrics::OutboundMetrics;

/// Refused messages kept per destination (older ones are deleted).
pub const MAX_REFUSED: usize = 10_000;

const META_SEQ: &[u8] = b"m/seq";
const META_STREAM: &[u8] = b"m/stream";
pub const META_CHARTED: &[u8] = b"m/charted_to";

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dest {
    /// The EMR's interface engine (IHE PCD-01 over MLLP).
    Hl7,
    /// The EMR's FHIR server.
    Fhir,
    /// The alarm manager (IHE PCD ACM, PCD-04 over MLLP).
    Acm,
}

impl Dest {
    pub const ALL: [Dest; 3] = [Dest::Hl7, Dest::Fhir, Dest::Acm];

    fn byte(self) -> u8 {
        match self {
            Dest::Hl7 => b'h',
            Dest::Fhir => b'f',
            Dest::Acm => b'a',
        }
    }

    /// The `destination` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Dest::Hl7 => "hl7",
            Dest::Fhir => "fhir",
            Dest::Acm => "acm",
        }
    }
}

/// One queued message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub queued_at: Millis,
    /// The batch it carries (the MSH-10, the Bundle identifier).
    pub batch_id: String,
    pub payload: String,
}

/// One message the receiver refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    pub refused_at: Millis,
    /// What the receiver said (an ACK's MSA/ERR, an OperationOutcome), cut to 2 KiB.
    pub why: String,
    pub entry: Entry,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("EMR outbox: {0}")]
    Db(#[from] sled::Error),
    #[error("EMR outbox: an entry does not decode: {0}")]
    Decode(#[from] serde_json::Error),
}

#[derive(Debug, Default, Clone, Copy)]
struct Depth {
    messages: u64,
    bytes: u64,
}

/// The outbox.
pub struct Outbox {
    tree: sled::Tree,
    stream: String,
    next_seq: AtomicU64,
    /// Queue depth per destination (kept in memory, recounted at open).
    depth: Mutex<BTreeMap<Dest, Depth>>,
    max_bytes: BTreeMap<Dest, u64>,
    metrics: OutboundMetrics,
    notify: BTreeMap<Dest, tokio::sync::Notify>,
    /// Serialises queueing (seq order = key order) with the bound's drops.
    write: Mutex<()>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

fn key(kind: u8, dest: Dest, seq: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = kind;
    k[1] = dest.byte();
    k[2..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn seq_of(k: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&k[2..10]);
    u64::from_be_bytes(b)
}

impl Outbox {
    /// Opens the outbox in sled tree `tree`; `max_bytes` bounds each destination used.
    pub fn open(
        db: &sled::Db,
        tree: &str,
        max_bytes: BTreeMap<Dest, u64>,
        metrics: OutboundMetrics,
    ) -> Result<Outbox, OutboxError> {
        let tree = db.open_tree(tree)?;
        let stream = match tree.get(META_STREAM)? {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => {
                let mut b = [0u8; 4];
                // A clock-based fallback is as good: the id only tells hubs apart.
                if getrandom::fill(&mut b).is_err() {
                    b = (std::process::id() ^ 0x5eed_u32).to_be_bytes();
                }
                let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
                tree.insert(META_STREAM, s.as_bytes())?;
                s
            }
        };
        let mut next = tree
            .get(META_SEQ)?
            .map(|v| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v[..8.min(v.len())]);
                u64::from_be_bytes(b)
            })
            .unwrap_or(1);
        let mut depth = BTreeMap::new();
        for d in Dest::ALL {
            let mut dp = Depth::default();
            for kv in tree.scan_prefix([b'q', d.byte()]) {
                let (k, v) = kv?;
                dp.messages += 1;
                dp.bytes += v.len() as u64;
                next = next.max(seq_of(&k) + 1);
            }
            depth.insert(d, dp);
        }
        let out = Outbox {
            tree,
            stream,
            next_seq: AtomicU64::new(next),
            depth: Mutex::new(depth),
            max_bytes,
            metrics,
            notify: Dest::ALL
                .into_iter()
                .map(|d| (d, tokio::sync::Notify::new()))
                .collect(),
            write: Mutex::new(()),
        };
        out.publish_depth();
        Ok(out)
    }

    /// This hub's id in batch ids (8 hex characters, made once per data directory).
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// A new batch number.
    pub fn reserve(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// A new batch number and the id a message carries for it: this hub's stream and the
    /// number in base 36 (short: MSH-10 holds 20 characters), unique per data directory.
    pub fn next_id(&self) -> (u64, String) {
        let seq = self.reserve();
        (seq, format!("{}{}", self.stream, base36(seq)))
    }

    pub fn meta(&self, key: &[u8]) -> Result<Option<i64>, OutboxError> {
        Ok(self.tree.get(key)?.map(|v| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[..8.min(v.len())]);
            i64::from_be_bytes(b)
        }))
    }

    /// Queues `messages` (each under the batch number it was built with) and sets `meta`, in
    /// one sled batch.
    pub fn queue(
        &self,
        messages: Vec<(Dest, u64, Entry)>,
        meta: Option<(&[u8], i64)>,
    ) -> Result<(), OutboxError> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = sled::Batch::default();
        let mut added: BTreeMap<Dest, Depth> = BTreeMap::new();
        let mut top = 0;
        for (dest, seq, entry) in &messages {
            let bytes = serde_json::to_vec(entry)?;
            let a = added.entry(*dest).or_default();
            a.messages += 1;
            a.bytes += bytes.len() as u64;
            top = top.max(*seq);
            batch.insert(&key(b'q', *dest, *seq)[..], bytes);
        }
        if top > 0 {
            batch.insert(META_SEQ, &(top + 1).to_be_bytes()[..]);
        }
        if let Some((k, v)) = meta {
            batch.insert(k, &v.to_be_bytes()[..]);
        }
        self.tree.apply_batch(batch)?;
        {
            let mut depth = self.depth.lock().unwrap_or_else(|e| e.into_inner());
            for (d, a) in &added {
                let dp = depth.entry(*d).or_default();
                dp.messages += a.messages;
                dp.bytes += a.bytes;
                self.metrics.queued(*d, a.messages);
            }
        }
        for d in added.keys() {
            self.make_room(*d)?;
            self.notify[d].notify_one();
        }
        self.publish_depth();
        Ok(())
    }

    /// Drops the oldest messages of `dest` while it is over its bound.
    fn make_room(&self, dest: Dest) -> Result<(), OutboxError> {
        let max = self.max_bytes.get(&dest).copied().unwrap_or(u64::MAX);
        loop {
            let over = {
                let depth = self.depth.lock().unwrap_or_else(|e| e.into_inner());
                depth
                    .get(&dest)
                    .is_some_and(|d| d.bytes > max && d.messages > 1)
            };
            if !over {
                return Ok(());
            }
            let Some((k, v)) = self
                .tree
                .scan_prefix([b'q', dest.byte()])
                .next()
                .transpose()?
            else {
                return Ok(());
            };
            self.tree.remove(&k)?;
            self.forget(dest, v.len() as u64);
            self.metrics.dropped(dest, "full");
        }
    }

    fn forget(&self, dest: Dest, bytes: u64) {
        let mut depth = self.depth.lock().unwrap_or_else(|e| e.into_inner());
        let d = depth.entry(dest).or_default();
        d.messages = d.messages.saturating_sub(1);
        d.bytes = d.bytes.saturating_sub(bytes);
    }

    /// The oldest message waiting for `dest`.
    pub fn oldest(&self, dest: Dest) -> Result<Option<(u64, Entry)>, OutboxError> {
        match self.tree.scan_prefix([b'q', dest.byte()]).next() {
            None => Ok(None),
            Some(kv) => {
                let (k, v) = kv?;
                Ok(Some((seq_of(&k), serde_json::from_slice(&v)?)))
            }
        }
    }

    /// The oldest message for `dest`, waiting until there is one; `None` once `cancel` fires.
    pub async fn next(
        &self,
        dest: Dest,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<(u64, Entry)> {
        loop {
            match self.oldest(dest) {
                Ok(Some(head)) => return Some(head),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "outbox unreadable"),
            }
            // A queue() in between notifies: the wake-up is not lost (Notify keeps a permit).
            tokio::select! {
                () = cancel.cancelled() => return None,
                _ = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    self.notify[&dest].notified(),
                ) => {}
            }
        }
    }

    /// The receiver acknowledged it: it leaves the queue.
    pub fn acknowledged(&self, dest: Dest, seq: u64) -> Result<(), OutboxError> {
        if let Some(v) = self.tree.remove(key(b'q', dest, seq))? {
            self.forget(dest, v.len() as u64);
        }
        self.publish_depth();
        Ok(())
    }

    /// The receiver refused it for good: set aside, kept for a person to look at.
    pub fn refused(&self, dest: Dest, seq: u64, why: &str, now: Millis) -> Result<(), OutboxError> {
        let Some(v) = self.tree.get(key(b'q', dest, seq))? else {
            return Ok(());
        };
        let entry: Entry = serde_json::from_slice(&v)?;
        let why: String = why.chars().take(2048).collect();
        let r = Refused {
            refused_at: now,
            why,
            entry,
        };
        let mut batch = sled::Batch::default();
        batch.remove(&key(b'q', dest, seq)[..]);
        batch.insert(&key(b'r', dest, seq)[..], serde_json::to_vec(&r)?);
        self.tree.apply_batch(batch)?;
        self.forget(dest, v.len() as u64);
        // Keep the newest MAX_REFUSED.
        let kept = self.tree.scan_prefix([b'r', dest.byte()]).count();
        if kept > MAX_REFUSED {
            for kv in self
                .tree
                .scan_prefix([b'r', dest.byte()])
                .take(kept - MAX_REFUSED)
            {
                let (k, _) = kv?;
                self.tree.remove(k)?;
            }
        }
        self.publish_depth();
        Ok(())
    }

    /// The refused messages of `dest`, newest first.
    pub fn refused_list(&self, dest: Dest, limit: usize) -> Result<Vec<Refused>, OutboxError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix([b'r', dest.byte()]).rev().take(limit) {
            let (_, v) = kv?;
            out.push(serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    /// Messages waiting for `dest`.
    pub fn depth(&self, dest: Dest) -> u64 {
        self.depth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&dest)
            .map_or(0, |d| d.messages)
    }

    fn publish_depth(&self) {
        let depth = self.depth.lock().unwrap_or_else(|e| e.into_inner());
        for d in self.max_bytes.keys() {
            let dp = depth.get(d).copied().unwrap_or_default();
            self.metrics.depth(*d, dp.messages, dp.bytes);
        }
    }

    /// When the oldest waiting message of `dest` was queued.
    pub fn oldest_queued_at(&self, dest: Dest) -> Option<Millis> {
        self.oldest(dest).ok().flatten().map(|(_, e)| e.queued_at)
    }
}

/// Base 36, lower case.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, n: usize) -> Entry {
        Entry {
            queued_at: 1,
            batch_id: id.into(),
            payload: "x".repeat(n),
        }
    }

    #[test]
    fn oldest_first_survives_reopen_and_acks_remove() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let m = OutboundMetrics::register(&prometheus::Registry::new(), "t", "test", &Dest::ALL);
        let both: BTreeMap<Dest, u64> = [(Dest::Hl7, u64::MAX), (Dest::Fhir, u64::MAX)].into();
        let o = Outbox::open(&db, "t.outbox", both.clone(), m.clone()).unwrap();
        let (a, b) = (o.reserve(), o.reserve());
        o.queue(
            vec![
                (Dest::Hl7, a, entry("a", 3)),
                (Dest::Fhir, a, entry("a", 3)),
                (Dest::Hl7, b, entry("b", 3)),
            ],
            Some((META_CHARTED, 42)),
        )
        .unwrap();
        let stream = o.stream().to_owned();
        drop(o);
        let o = Outbox::open(&db, "t.outbox", both, m).unwrap();
        assert_eq!(o.stream(), stream, "a hub keeps its stream id");
        assert!(o.reserve() > b, "numbers are never reused");
        assert_eq!(o.meta(META_CHARTED).unwrap(), Some(42));
        assert_eq!(o.depth(Dest::Hl7), 2);
        let (seq, e) = o.oldest(Dest::Hl7).unwrap().unwrap();
        assert_eq!((seq, e.batch_id.as_str()), (a, "a"));
        o.acknowledged(Dest::Hl7, seq).unwrap();
        assert_eq!(o.oldest(Dest::Hl7).unwrap().unwrap().1.batch_id, "b");
        o.refused(Dest::Hl7, b, "AR", 5).unwrap();
        assert!(o.oldest(Dest::Hl7).unwrap().is_none());
        assert_eq!(
            o.refused_list(Dest::Hl7, 10).unwrap()[0].entry.batch_id,
            "b"
        );
        assert_eq!(o.depth(Dest::Fhir), 1, "destinations are apart");
    }

    #[test]
    fn over_its_bound_the_oldest_is_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let r = prometheus::Registry::new();
        let m = OutboundMetrics::register(&r, "t", "test", &[Dest::Hl7]);
        let o = Outbox::open(&db, "t.outbox", [(Dest::Hl7, 300)].into(), m.clone()).unwrap();
        for i in 0..5 {
            let s = o.reserve();
            o.queue(vec![(Dest::Hl7, s, entry(&i.to_string(), 100))], None)
                .unwrap();
        }
        assert!(o.depth(Dest::Hl7) < 5);
        assert_eq!(
            o.oldest(Dest::Hl7).unwrap().unwrap().1.batch_id,
            (5 - o.depth(Dest::Hl7)).to_string()
        );
        assert_eq!(
            m.dropped.with_label_values(&["hl7", "full"]).get(),
            5 - o.depth(Dest::Hl7)
        );
    }
}
