//! The uplink's outbox: every message the hub will forward, durable in sled until the broker
//! acknowledges it.
//!
//! A message is put in the outbox where it is made (the pipeline for observations and device
//! status, under the alarm engine's lock for alarm transitions), in the same sled database as
//! the data, before the durability ticket that acknowledges the device: so what a device was
//! told "received" is queued for the uplink across kill -9 too. Keys are `a`/`d` (alarm or
//! other data) + the sequence number, big-endian: one scan per class gives its oldest first.
//! Readers take alarms before the rest (an alarm never waits behind a backlog of data).
//!
//! Bounds: past `outbox_max_bytes` the oldest *data* message makes room; alarms go only when
//! nothing else is left, and the alarm just queued never does. A message older than
//! `outbox_max_age` is dropped rather than sent. Both are counted
//! (`wardhub_uplink_dropped_total{reason}`), and the receiver sees the gap in `seq`.

use std::sync::{Arc, Mutex};

use wardhub_adapters::model::Millis;

use super::envelope::{Envelope, Kind, SCHEMA};
use super::metrics::{DropReason, UplinkMetrics};

/// The outbox's failures (sled's).
#[derive(Debug, thiserror::Error)]
#[error("uplink outbox: {0}")]
pub struct OutboxError(#[from] sled::Error);

const ALARM: u8 = b'a';
const DATA: u8 = b'd';
/// Messages the broker acknowledged, kept a while so a receiver that found a gap can ask for
/// them again (a broker may lose what it acknowledged: docs/UPLINK.md).
const SENT: u8 = b's';
const META_NEXT: &[u8] = b"m/next";
const META_STREAM: &[u8] = b"m/stream";

/// One queued message.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub kind: Kind,
    pub queued_at: Millis,
    pub topic: String,
    /// The envelope, JSON.
    pub payload: Vec<u8>,
}

impl Entry {
    fn key(&self) -> [u8; 9] {
        key(class(self.kind), self.seq)
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(11 + self.topic.len() + self.payload.len());
        v.extend_from_slice(&self.queued_at.to_be_bytes());
        v.push(self.kind.to_u8());
        v.extend_from_slice(&(self.topic.len() as u16).to_be_bytes());
        v.extend_from_slice(self.topic.as_bytes());
        v.extend_from_slice(&self.payload);
        v
    }

    fn decode(key: &[u8], v: &[u8]) -> Option<Entry> {
        let seq = u64::from_be_bytes(key.get(1..9)?.try_into().ok()?);
        let queued_at = i64::from_be_bytes(v.get(0..8)?.try_into().ok()?);
        let kind = Kind::from_u8(*v.get(8)?)?;
        let tlen = u16::from_be_bytes(v.get(9..11)?.try_into().ok()?) as usize;
        let topic = std::str::from_utf8(v.get(11..11 + tlen)?).ok()?.to_owned();
        Some(Entry {
            seq,
            kind,
            queued_at,
            topic,
            payload: v.get(11 + tlen..)?.to_vec(),
        })
    }

    fn size(&self) -> u64 {
        (9 + 11 + self.topic.len() + self.payload.len()) as u64
    }
}

fn class(kind: Kind) -> u8 {
    if kind.is_alarm() {
        ALARM
    } else {
        DATA
    }
}

fn key(class: u8, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = class;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

#[derive(Debug, Default)]
struct Counts {
    next_seq: u64,
    messages: [u64; 2],
    bytes: [u64; 2],
    sent_bytes: u64,
}

/// Where a reader is: the last alarm and the last other message it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub alarm: u64,
    pub data: u64,
}

impl Cursor {
    /// The cursor after `e`.
    pub fn past(&mut self, e: &Entry) {
        if e.kind.is_alarm() {
            self.alarm = e.seq;
        } else {
            self.data = e.seq;
        }
    }
}

/// The bounds of an outbox.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_bytes: u64,
    pub max_age_ms: i64,
    /// Sent messages kept for resend requests: at most this many bytes, this long.
    pub keep_sent_bytes: u64,
    pub keep_sent_ms: i64,
}

/// What a resend request found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Put back in the outbox, to be sent again.
    pub requeued: u64,
    /// Not kept any more (or never made): the receiver's gap stays.
    pub unavailable: u64,
}

/// The most sequence numbers one resend request may name.
pub const MAX_RESEND: u64 = 10_000;

/// What the outbox holds now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Depth {
    pub messages: u64,
    pub bytes: u64,
    pub oldest_queued_at: Option<Millis>,
}

/// The outbox (see the module docs).
pub struct Outbox {
    tree: sled::Tree,
    stream: String,
    site: String,
    ward: String,
    bounds: Bounds,
    counts: Mutex<Counts>,
    metrics: Arc<UplinkMetrics>,
    rewinds: std::sync::atomic::AtomicU64,
    /// Woken when a message is queued.
    pub queued: tokio::sync::Notify,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

fn slot(c: u8) -> usize {
    usize::from(c == DATA)
}

impl Outbox {
    /// Opens (or creates) the outbox in `db`; counts what a previous run left in it.
    pub fn open(
        db: &sled::Db,
        site: &str,
        ward: &str,
        bounds: Bounds,
        metrics: Arc<UplinkMetrics>,
    ) -> Result<Outbox, OutboxError> {
        let tree = db.open_tree("uplink_outbox")?;
        let stream = match tree.get(META_STREAM)? {
            Some(s) => String::from_utf8_lossy(&s).into_owned(),
            None => {
                let mut b = [0u8; 8];
                getrandom::fill(&mut b).expect("the OS has randomness");
                let s = crate::auth::hex(&b);
                tree.insert(META_STREAM, s.as_bytes())?;
                s
            }
        };
        let mut counts = Counts {
            next_seq: 1,
            ..Counts::default()
        };
        if let Some(v) = tree.get(META_NEXT)? {
            if let Ok(b) = <[u8; 8]>::try_from(v.as_ref()) {
                counts.next_seq = u64::from_be_bytes(b).max(1);
            }
        }
        for c in [ALARM, DATA] {
            for kv in tree.scan_prefix([c]) {
                let (k, v) = kv?;
                let seq = u64::from_be_bytes(k[1..9].try_into().unwrap_or([0; 8]));
                counts.next_seq = counts.next_seq.max(seq + 1);
                counts.messages[slot(c)] += 1;
                counts.bytes[slot(c)] += (k.len() + v.len()) as u64;
            }
        }
        for kv in tree.scan_prefix([SENT]) {
            let (k, v) = kv?;
            let seq = u64::from_be_bytes(k[1..9].try_into().unwrap_or([0; 8]));
            counts.next_seq = counts.next_seq.max(seq + 1);
            counts.sent_bytes += (k.len() + v.len()) as u64;
        }
        let outbox = Outbox {
            tree,
            stream,
            site: site.to_owned(),
            ward: ward.to_owned(),
            bounds,
            counts: Mutex::new(counts),
            metrics,
            rewinds: std::sync::atomic::AtomicU64::new(0),
            queued: tokio::sync::Notify::new(),
        };
        outbox.update_gauges();
        Ok(outbox)
    }

    /// This data directory's stream id (the first half of every message id).
    pub fn stream(&self) -> &str {
        &self.stream
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one message; returns its sequence number. Makes room first if the outbox is
    /// over its byte bound (module docs).
    pub fn push(
        &self,
        kind: Kind,
        topic: String,
        queued_at: Millis,
        body: serde_json::Value,
    ) -> Result<u64, OutboxError> {
        let mut c = self.counts();
        let entry = self.entry(c.next_seq, kind, topic, queued_at, body);
        let seq = entry.seq;
        self.tree.insert(entry.key(), entry.encode())?;
        self.queued_in(&mut c, &[entry])?;
        Ok(seq)
    }

    /// Queues several messages and writes one meta value (`key`: an `m/` key), all in one
    /// atomic batch.
    pub fn push_all(
        &self,
        messages: Vec<(Kind, String, serde_json::Value)>,
        queued_at: Millis,
        meta: Option<(&[u8], i64)>,
    ) -> Result<(), OutboxError> {
        let mut c = self.counts();
        let mut batch = sled::Batch::default();
        let mut entries = Vec::with_capacity(messages.len());
        for (i, (kind, topic, body)) in messages.into_iter().enumerate() {
            let e = self.entry(c.next_seq + i as u64, kind, topic, queued_at, body);
            batch.insert(&e.key(), e.encode());
            entries.push(e);
        }
        if let Some((k, v)) = meta {
            batch.insert(k, &v.to_be_bytes());
        }
        self.tree.apply_batch(batch)?;
        self.queued_in(&mut c, &entries)
    }

    /// A meta value written by [`Outbox::push_all`].
    pub fn meta(&self, key: &[u8]) -> Result<Option<i64>, OutboxError> {
        Ok(self
            .tree
            .get(key)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(i64::from_be_bytes))
    }

    fn entry(
        &self,
        seq: u64,
        kind: Kind,
        topic: String,
        queued_at: Millis,
        body: serde_json::Value,
    ) -> Entry {
        let envelope = Envelope {
            schema: SCHEMA.to_owned(),
            id: format!("{}:{seq}", self.stream),
            stream: self.stream.clone(),
            seq,
            site: self.site.clone(),
            ward: self.ward.clone(),
            kind,
            queued_at,
            body,
        };
        Entry {
            seq,
            kind,
            queued_at,
            topic,
            payload: serde_json::to_vec(&envelope).expect("JSON values serialise"),
        }
    }

    /// Counts entries just written, then makes room: past the byte bound the oldest data
    /// message goes; an alarm only when no data is left, and never the newest.
    fn queued_in(&self, c: &mut Counts, entries: &[Entry]) -> Result<(), OutboxError> {
        let Some(newest) = entries.last().map(|e| e.seq) else {
            return Ok(());
        };
        for e in entries {
            let s = slot(class(e.kind));
            c.messages[s] += 1;
            c.bytes[s] += e.size();
            self.metrics
                .queued
                .with_label_values(&[e.kind.as_str()])
                .inc();
        }
        c.next_seq = newest + 1;
        let newest_alarm = entries
            .iter()
            .rev()
            .find(|e| e.kind.is_alarm())
            .map(|e| e.seq);
        let mut dropped = false;
        while c.bytes[0] + c.bytes[1] > self.bounds.max_bytes {
            let victim = match self.first(DATA)? {
                Some(e) => e,
                None => match self.first(ALARM)? {
                    Some(e) if Some(e.seq) != newest_alarm => e,
                    _ => break,
                },
            };
            self.remove(c, &victim)?;
            self.metrics
                .dropped
                .with_label_values(&[DropReason::Full.as_str()])
                .inc();
            dropped = true;
        }
        if dropped {
            // The sequence survives even if every message holding its top is gone.
            self.tree.insert(META_NEXT, &c.next_seq.to_be_bytes())?;
        }
        self.update_gauges_locked(c);
        self.queued.notify_one();
        Ok(())
    }

    fn first(&self, class: u8) -> Result<Option<Entry>, OutboxError> {
        Ok(match self.tree.scan_prefix([class]).next() {
            Some(kv) => {
                let (k, v) = kv?;
                Entry::decode(&k, &v)
            }
            None => None,
        })
    }

    fn remove(&self, c: &mut Counts, e: &Entry) -> Result<(), OutboxError> {
        if self.tree.remove(e.key())?.is_some() {
            let s = slot(class(e.kind));
            c.messages[s] = c.messages[s].saturating_sub(1);
            c.bytes[s] = c.bytes[s].saturating_sub(e.size());
        }
        Ok(())
    }

    /// Up to `max` messages, alarms first: the alarms after `cursor.alarm`, then (when no
    /// alarm is waiting) the other messages after `cursor.data`, each class oldest first.
    /// Messages older than the age bound (by `now`) are dropped on the way.
    pub fn read(&self, cursor: Cursor, max: usize, now: Millis) -> Result<Vec<Entry>, OutboxError> {
        let mut out = Vec::new();
        let mut expired = Vec::new();
        for (class, after) in [(ALARM, cursor.alarm), (DATA, cursor.data)] {
            if !out.is_empty() {
                break;
            }
            let start = after.saturating_add(1);
            for kv in self.tree.range(key(class, start)..key(class + 1, 0)) {
                if out.len() >= max {
                    break;
                }
                let (k, v) = kv?;
                let Some(e) = Entry::decode(&k, &v) else {
                    continue;
                };
                if now - e.queued_at > self.bounds.max_age_ms {
                    expired.push(e);
                } else {
                    out.push(e);
                }
            }
        }
        if !expired.is_empty() {
            let mut c = self.counts();
            for e in &expired {
                self.remove(&mut c, e)?;
            }
            self.metrics
                .dropped
                .with_label_values(&[DropReason::Expired.as_str()])
                .inc_by(expired.len() as u64);
            self.tree.insert(META_NEXT, &c.next_seq.to_be_bytes())?;
            drop(c);
            self.update_gauges();
        }
        Ok(out)
    }

    /// Drops every message older than the age bound, sent or not (run while the broker is
    /// away, so the outbox does not hold what it will never send).
    pub fn expire(&self, now: Millis) -> Result<u64, OutboxError> {
        let mut n = 0;
        let mut c = self.counts();
        for class in [ALARM, DATA] {
            while let Some(e) = self.first(class)? {
                if now - e.queued_at <= self.bounds.max_age_ms {
                    break;
                }
                self.remove(&mut c, &e)?;
                n += 1;
            }
        }
        if n > 0 {
            self.metrics
                .dropped
                .with_label_values(&[DropReason::Expired.as_str()])
                .inc_by(n);
            self.tree.insert(META_NEXT, &c.next_seq.to_be_bytes())?;
        }
        drop(c);
        self.update_gauges();
        Ok(n)
    }

    /// The broker has these (PUBACK): they leave the outbox for the sent messages kept for
    /// resend requests (bounded: the oldest go first).
    pub fn acknowledged(&self, entries: &[Entry]) -> Result<(), OutboxError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut c = self.counts();
        let mut batch = sled::Batch::default();
        for e in entries {
            let s = slot(class(e.kind));
            if self.tree.contains_key(e.key())? {
                c.messages[s] = c.messages[s].saturating_sub(1);
                c.bytes[s] = c.bytes[s].saturating_sub(e.size());
                batch.remove(&e.key());
                batch.insert(&key(SENT, e.seq), e.encode());
                c.sent_bytes += e.size();
            }
            self.metrics
                .forwarded
                .with_label_values(&[e.kind.as_str()])
                .inc();
        }
        batch.insert(META_NEXT, &c.next_seq.to_be_bytes());
        self.tree.apply_batch(batch)?;
        self.prune_sent(&mut c, entries.last().map_or(0, |e| e.queued_at))?;
        drop(c);
        self.update_gauges();
        Ok(())
    }

    /// Forgets sent messages past the keep bounds (by bytes; by age against `now`).
    fn prune_sent(&self, c: &mut Counts, now: Millis) -> Result<(), OutboxError> {
        while let Some(kv) = self.tree.scan_prefix([SENT]).next() {
            let (k, v) = kv?;
            let Some(e) = Entry::decode(&k, &v) else {
                self.tree.remove(k)?;
                continue;
            };
            if c.sent_bytes <= self.bounds.keep_sent_bytes
                && now - e.queued_at <= self.bounds.keep_sent_ms
            {
                break;
            }
            self.tree.remove(k)?;
            c.sent_bytes = c.sent_bytes.saturating_sub(e.size());
        }
        Ok(())
    }

    /// A receiver asks again for `from..=to` (at most [`MAX_RESEND`]): the sent messages still
    /// kept go back into the outbox under their own ids; [`Outbox::rewinds`] tells readers to
    /// read from the start again.
    pub fn requeue(&self, from: u64, to: u64) -> Result<Requeued, OutboxError> {
        let mut r = Requeued::default();
        if from == 0 || to < from {
            return Ok(r);
        }
        let to = to.min(from.saturating_add(MAX_RESEND - 1));
        let mut c = self.counts();
        for seq in from..=to {
            let sk = key(SENT, seq);
            match self.tree.get(sk)? {
                Some(v) => {
                    let Some(e) = Entry::decode(&sk, &v) else {
                        r.unavailable += 1;
                        continue;
                    };
                    let mut batch = sled::Batch::default();
                    batch.remove(&sk);
                    batch.insert(&e.key(), v);
                    self.tree.apply_batch(batch)?;
                    let s = slot(class(e.kind));
                    c.sent_bytes = c.sent_bytes.saturating_sub(e.size());
                    c.messages[s] += 1;
                    c.bytes[s] += e.size();
                    r.requeued += 1;
                }
                None => {
                    let queued = self.tree.contains_key(key(ALARM, seq))?
                        || self.tree.contains_key(key(DATA, seq))?;
                    if !queued && seq < c.next_seq {
                        r.unavailable += 1;
                    }
                }
            }
        }
        drop(c);
        if r.requeued > 0 {
            self.rewinds
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.update_gauges();
            self.queued.notify_one();
        }
        Ok(r)
    }

    /// Changes each time messages were put back (a reader then reads from the start again).
    pub fn rewinds(&self) -> u64 {
        self.rewinds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops one message the broker refused for good (counted).
    pub fn refused(&self, e: &Entry) -> Result<(), OutboxError> {
        let mut c = self.counts();
        self.remove(&mut c, e)?;
        self.metrics
            .dropped
            .with_label_values(&[DropReason::Refused.as_str()])
            .inc();
        self.tree.insert(META_NEXT, &c.next_seq.to_be_bytes())?;
        drop(c);
        self.update_gauges();
        Ok(())
    }

    pub fn depth(&self) -> Depth {
        let (messages, bytes) = {
            let c = self.counts();
            (c.messages[0] + c.messages[1], c.bytes[0] + c.bytes[1])
        };
        let head = |class| self.first(class).ok().flatten().map(|e| e.queued_at);
        let oldest = match (head(ALARM), head(DATA)) {
            (Some(a), Some(d)) => Some(a.min(d)),
            (a, d) => a.or(d),
        };
        Depth {
            messages,
            bytes,
            oldest_queued_at: oldest,
        }
    }

    /// Sets the depth gauges (the age gauge is the forwarder's, which knows the time).
    fn update_gauges(&self) {
        let c = self.counts();
        self.update_gauges_locked(&c);
    }

    fn update_gauges_locked(&self, c: &Counts) {
        self.metrics
            .outbox_messages
            .set((c.messages[0] + c.messages[1]) as i64);
        self.metrics
            .outbox_bytes
            .set((c.bytes[0] + c.bytes[1]) as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(db: &sled::Db, max_bytes: u64) -> Outbox {
        let m = Arc::new(UplinkMetrics::register(&prometheus::Registry::new()));
        let bounds = Bounds {
            max_bytes,
            max_age_ms: 60_000,
            keep_sent_bytes: 4096,
            keep_sent_ms: 60_000,
        };
        Outbox::open(db, "s", "w", bounds, m).unwrap()
    }

    fn temp_db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, db)
    }

    fn push(o: &Outbox, kind: Kind, at: Millis) -> u64 {
        o.push(
            kind,
            format!("t/{}", kind.as_str()),
            at,
            serde_json::json!({"x": "y".repeat(100)}),
        )
        .unwrap()
    }

    fn all(o: &Outbox, now: Millis) -> Vec<Entry> {
        let mut cursor = Cursor::default();
        let mut out = Vec::new();
        loop {
            let batch = o.read(cursor, 2, now).unwrap();
            if batch.is_empty() {
                return out;
            }
            for e in batch {
                cursor.past(&e);
                out.push(e);
            }
        }
    }

    #[test]
    fn alarms_come_out_first_and_each_class_in_the_order_it_was_queued() {
        let (_d, db) = temp_db();
        let o = open(&db, 1 << 20);
        let kinds = [
            Kind::Observations,
            Kind::Alarm,
            Kind::DeviceStatus,
            Kind::Alarm,
            Kind::Observations,
        ];
        for k in kinds {
            push(&o, k, 1000);
        }
        let got = all(&o, 1000);
        // A backlog does not hold back the alarms queued behind it.
        assert_eq!(
            got.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 4, 1, 3, 5]
        );
        let env: Envelope = serde_json::from_slice(&got[0].payload).unwrap();
        assert_eq!(env.id, format!("{}:2", o.stream()));
        assert_eq!(
            (env.schema.as_str(), env.seq, env.kind),
            (SCHEMA, 2, Kind::Alarm)
        );
        // After a cursor, only what follows it.
        let c = Cursor { alarm: 4, data: 3 };
        assert_eq!(
            o.read(c, 100, 1000)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [5]
        );
    }

    #[test]
    fn acknowledged_messages_leave_and_the_sequence_survives_a_reopen_of_an_empty_outbox() {
        let (_d, db) = temp_db();
        let stream;
        {
            let o = open(&db, 1 << 20);
            stream = o.stream().to_owned();
            for _ in 0..3 {
                push(&o, Kind::Observations, 1000);
            }
            let got = all(&o, 1000);
            o.acknowledged(&got).unwrap();
            assert_eq!(o.depth().messages, 0);
        }
        let o = open(&db, 1 << 20);
        assert_eq!(o.stream(), stream, "the stream id is the data directory's");
        assert_eq!(
            push(&o, Kind::Alarm, 1000),
            4,
            "no sequence number is used twice"
        );
    }

    /// Guards "a broker that lost what it acknowledged leaves a gap for good": sent messages
    /// are kept (bounded) and a resend request puts them back under their own ids.
    #[test]
    fn sent_messages_can_be_asked_for_again_within_the_keep_bounds() {
        let (_d, db) = temp_db();
        let o = open(&db, 1 << 20);
        for k in [Kind::Observations, Kind::Alarm, Kind::Observations] {
            push(&o, k, 1000);
        }
        let sent = all(&o, 1000);
        o.acknowledged(&sent).unwrap();
        assert_eq!(o.depth().messages, 0);
        let before = o.rewinds();
        let r = o.requeue(2, 3).unwrap();
        assert_eq!(
            r,
            Requeued {
                requeued: 2,
                unavailable: 0
            }
        );
        assert!(o.rewinds() > before);
        let again = all(&o, 1000);
        assert_eq!(again.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        let first = sent.iter().find(|e| e.seq == 2).unwrap();
        assert_eq!(
            again[0].payload, first.payload,
            "the same message, the same id"
        );
        // Never made, or pushed out of the keep bounds: unavailable.
        assert_eq!(
            o.requeue(9, 9).unwrap().unavailable,
            0,
            "seq 9 was never made"
        );
        for _ in 0..40 {
            push(&o, Kind::Observations, 1000);
        }
        let more = all(&o, 1000);
        o.acknowledged(&more).unwrap();
        assert_eq!(
            o.requeue(4, 4).unwrap().unavailable,
            1,
            "4 KiB keep only the newest"
        );
        assert_eq!(
            o.requeue(more.last().unwrap().seq, more.last().unwrap().seq)
                .unwrap()
                .requeued,
            1
        );
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_data_and_keeps_alarms() {
        let (_d, db) = temp_db();
        let o = open(&db, 2_000);
        let first_alarm = push(&o, Kind::Alarm, 1000);
        for _ in 0..30 {
            push(&o, Kind::Observations, 1000);
        }
        let d = o.depth();
        assert!(d.bytes <= 2_000, "{d:?}");
        let left = all(&o, 1000);
        assert_eq!(left[0].seq, first_alarm, "the alarm is kept over data");
        let data: Vec<u64> = left[1..].iter().map(|e| e.seq).collect();
        assert_eq!(*data.last().unwrap(), 31, "the newest data stays");
        assert!(
            data.windows(2).all(|w| w[1] == w[0] + 1),
            "oldest went first: {data:?}"
        );
        assert!(o.metrics.dropped.with_label_values(&["full"]).get() > 0);
        // Only alarms: the oldest alarms go, never the one just queued.
        let (_d2, db2) = temp_db();
        let o = open(&db2, 2_000);
        let mut last = 0;
        for _ in 0..40 {
            last = push(&o, Kind::Alarm, 1000);
        }
        let left = all(&o, 1000);
        assert_eq!(left.last().unwrap().seq, last);
        assert!(left.len() < 40);
    }

    #[test]
    fn messages_past_the_age_bound_are_dropped_not_sent() {
        let (_d, db) = temp_db();
        let o = open(&db, 1 << 20);
        push(&o, Kind::Observations, 0);
        push(&o, Kind::Alarm, 50_000);
        push(&o, Kind::Observations, 70_000);
        let left = all(&o, 70_001);
        assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(o.metrics.dropped.with_label_values(&["expired"]).get(), 1);
        assert_eq!(o.expire(200_000).unwrap(), 2);
        assert_eq!(o.depth().messages, 0);
    }

    #[test]
    fn what_a_previous_run_left_is_counted_on_open() {
        let (_d, db) = temp_db();
        {
            let o = open(&db, 1 << 20);
            push(&o, Kind::Observations, 1000);
            push(&o, Kind::Alarm, 1001);
        }
        let o = open(&db, 1 << 20);
        let d = o.depth();
        assert_eq!((d.messages, d.oldest_queued_at), (2, Some(1000)));
        assert!(d.bytes > 0);
        assert_eq!(o.metrics.outbox_messages.get(), 2);
    }
}
