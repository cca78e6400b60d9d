//! What the hospital view knows: every ward that has reported, its health, its open alarms,
//! and what it has received, built from uplink messages in the order they arrive.
//!
//! De-duplication is exact: per stream, every sequence number up to a low-water mark has been
//! seen, and the few seen above it are kept; a message seen before is a redelivery, counted
//! and dropped.
//!
//! Repair: the uplink sends alarms first and each class in order, so once a non-alarm message
//! with `seq` n has arrived, every message of the stream below n has been sent. One still
//! missing [`GRACE_MS`] later was lost on the way (a broker can lose what it acknowledged):
//! the view asks the ward hub for it again on `…/resend` ([`View::repairs`]), every
//! [`ASK_EVERY_MS`], and gives it up after [`GIVE_UP_MS`] (counted: the ward dropped it, or no
//! longer keeps it). A stream is anchored at the first non-alarm message the view sees: what
//! the ward sent before that is not asked for.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::json;
use wardhub_adapters::model::Millis;

use crate::alarms::{AlarmState, Event, Transition};
use crate::uplink::envelope::{Envelope, Kind};

/// What a ward's latest health message said (as the ward sent it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WardHealth {
    pub reported_at: Millis,
    #[serde(default)]
    pub dashboard_url: Option<String>,
    #[serde(default)]
    pub uplink_connected: bool,
    #[serde(default)]
    pub outbox_messages: u64,
    #[serde(default)]
    pub outbox_oldest_age_seconds: f64,
    #[serde(default)]
    pub dropped_total: u64,
    #[serde(default)]
    pub components_down: Vec<String>,
}

/// One ward, as kept across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ward {
    pub site: String,
    pub ward: String,
    pub health: Option<WardHealth>,
    /// When a message of the ward last arrived (hospital time).
    pub last_seen: Option<Millis>,
    /// How old the newest message was when it arrived (uplink lag), seconds.
    pub lag_seconds: Option<f64>,
    /// Open alarms by id: the latest transition of each.
    pub alarms: BTreeMap<u64, Transition>,
    /// Messages received, by kind.
    pub received: BTreeMap<String, u64>,
    /// The beds the ward has sent anything about (so quiet beds show too).
    pub beds: std::collections::BTreeSet<String>,
}

/// What [`View::apply`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    New,
    Duplicate,
}

/// A missing message is asked for once it has been missing this long…
pub const GRACE_MS: Millis = 5_000;
/// …again this often…
pub const ASK_EVERY_MS: Millis = 10_000;
/// …and given up after this long.
pub const GIVE_UP_MS: Millis = 120_000;
/// The most sequence numbers of a stream tracked as missing at once.
const MAX_MISSING: u64 = 10_000;

/// What has been seen of one stream (one ward hub's data directory).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub site: String,
    pub ward: String,
    /// Every sequence number up to this has been seen (or given up).
    pub low: u64,
    /// Those seen above `low`.
    pub above: std::collections::BTreeSet<u64>,
    /// The highest non-alarm message seen: everything below it has been sent.
    pub max_data: u64,
    /// Whether `low` has been set from the first non-alarm message seen: what a ward sent
    /// before the view first heard of it is not missing (a new view would otherwise ask for a
    /// ward's whole history).
    #[serde(default)]
    pub anchored: bool,
    /// Missing sequence numbers: when noticed, when last asked for.
    #[serde(skip)]
    missing: BTreeMap<u64, (Millis, Option<Millis>)>,
}

impl Seen {
    fn is_new(&self, seq: u64) -> bool {
        seq > self.low && !self.above.contains(&seq)
    }

    fn record(&mut self, seq: u64, alarm: bool) {
        if !alarm && !self.anchored {
            self.anchored = true;
            self.low = self.low.max(seq - 1);
            let low = self.low;
            self.above.retain(|s| *s > low);
        }
        self.above.insert(seq);
        self.missing.remove(&seq);
        if !alarm {
            self.max_data = self.max_data.max(seq);
        }
        self.advance();
    }

    fn advance(&mut self) {
        while self.above.remove(&(self.low + 1)) {
            self.low += 1;
        }
    }
}

/// What the view asks of a ward hub: send `from..=to` of `stream` again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resend {
    #[serde(skip)]
    pub site: String,
    #[serde(skip)]
    pub ward: String,
    pub stream: String,
    pub from: u64,
    pub to: u64,
}

/// The hospital's wards.
#[derive(Debug, Default)]
pub struct View {
    pub wards: BTreeMap<(String, String), Ward>,
    /// Per stream.
    pub seen: HashMap<String, Seen>,
    /// Messages that arrived after the view asked for them again.
    pub repaired: u64,
    /// Messages given up (never arrived).
    pub lost: u64,
    /// The last alarm transitions received, newest last (bounded).
    pub recent: std::collections::VecDeque<(String, String, Transition)>,
}

const RECENT: usize = 200;

impl View {
    /// Applies one message received at `now` (hospital time).
    pub fn apply(&mut self, e: &Envelope, now: Millis) -> Applied {
        let seen = self.seen.entry(e.stream.clone()).or_insert_with(|| Seen {
            site: e.site.clone(),
            ward: e.ward.clone(),
            ..Seen::default()
        });
        if !seen.is_new(e.seq) {
            return Applied::Duplicate;
        }
        if seen.missing.get(&e.seq).is_some_and(|m| m.1.is_some()) {
            self.repaired += 1;
        }
        seen.record(e.seq, e.kind.is_alarm());
        let w = self
            .wards
            .entry((e.site.clone(), e.ward.clone()))
            .or_insert_with(|| Ward {
                site: e.site.clone(),
                ward: e.ward.clone(),
                ..Ward::default()
            });
        w.last_seen = Some(now);
        w.lag_seconds = Some((now - e.queued_at).max(0) as f64 / 1000.0);
        *w.received.entry(e.kind.as_str().to_owned()).or_insert(0) += 1;
        if let Some(bed) = e.body.get("bed").and_then(|b| b.as_str()) {
            if !w.beds.contains(bed) {
                w.beds.insert(bed.to_owned());
            }
        }
        match e.kind {
            Kind::Health => {
                if let Ok(h) = serde_json::from_value::<WardHealth>(e.body.clone()) {
                    w.health = Some(h);
                }
            }
            Kind::Alarm => {
                if let Ok(t) = serde_json::from_value::<Transition>(e.body.clone()) {
                    if let Some(bed) = &t.alarm.bed {
                        if !w.beds.contains(bed) {
                            w.beds.insert(bed.clone());
                        }
                    }
                    if t.event == Event::Cleared || !t.alarm.state.is_open() {
                        w.alarms.remove(&t.alarm.id.0);
                    } else {
                        w.alarms.insert(t.alarm.id.0, t.clone());
                    }
                    self.recent.push_back((e.site.clone(), e.ward.clone(), t));
                    while self.recent.len() > RECENT {
                        self.recent.pop_front();
                    }
                }
            }
            Kind::Observations | Kind::Rollups | Kind::DeviceStatus => {}
        }
        Applied::New
    }

    /// The resend requests due at `now` (module docs); gives up what has been missing too long.
    pub fn repairs(&mut self, now: Millis) -> Vec<Resend> {
        let mut out = Vec::new();
        for (stream, s) in &mut self.seen {
            if !s.anchored {
                continue;
            }
            let top = s.max_data.min(s.low.saturating_add(MAX_MISSING));
            for seq in s.low + 1..top {
                if !s.above.contains(&seq) {
                    s.missing.entry(seq).or_insert((now, None));
                }
            }
            let mut ask: Vec<u64> = Vec::new();
            let mut give_up = Vec::new();
            for (seq, (since, asked)) in s.missing.iter_mut() {
                if now - *since >= GIVE_UP_MS {
                    give_up.push(*seq);
                } else if now - *since >= GRACE_MS && asked.is_none_or(|a| now - a >= ASK_EVERY_MS)
                {
                    *asked = Some(now);
                    ask.push(*seq);
                }
            }
            for seq in give_up {
                s.missing.remove(&seq);
                s.above.insert(seq);
                self.lost += 1;
            }
            s.advance();
            // Runs of consecutive numbers, one request each.
            let mut runs: Vec<(u64, u64)> = Vec::new();
            for seq in ask {
                match runs.last_mut() {
                    Some(r) if r.1 + 1 == seq => r.1 = seq,
                    _ => runs.push((seq, seq)),
                }
            }
            out.extend(runs.into_iter().map(|(from, to)| Resend {
                site: s.site.clone(),
                ward: s.ward.clone(),
                stream: stream.clone(),
                from,
                to,
            }));
        }
        out
    }

    /// `GET /api/v1/hospital` (the page's one source).
    pub fn snapshot(&self, now: Millis, stale_after_ms: Millis) -> serde_json::Value {
        let mut totals = [0u64; 3];
        let mut all = Vec::new();
        let wards: Vec<serde_json::Value> = self
            .wards
            .values()
            .map(|w| {
                let mut by_priority = [0u64; 3];
                let mut beds: BTreeMap<&str, (u64, Option<&Transition>)> =
                    w.beds.iter().map(|b| (b.as_str(), (0, None))).collect();
                for t in w.alarms.values() {
                    let a = &t.alarm;
                    by_priority[a.priority.index()] += 1;
                    all.push(alarm_json(w, t, now));
                    if let Some(bed) = &a.bed {
                        let e = beds.entry(bed.as_str()).or_insert((0, None));
                        e.0 += 1;
                        if e.1.is_none_or(|b| worse(t, b)) {
                            e.1 = Some(t);
                        }
                    }
                }
                for (t, n) in totals.iter_mut().zip(by_priority) {
                    *t += n;
                }
                let mut beds: Vec<(&str, (u64, Option<&Transition>))> = beds.into_iter().collect();
                beds.sort_by_key(|b| crate::http::ward_api::natural_key(b.0));
                let stale = w
                    .health
                    .as_ref()
                    .is_none_or(|_| w.last_seen.is_none_or(|s| now - s > stale_after_ms));
                json!({
                    "site": w.site,
                    "ward": w.ward,
                    "dashboard_url": w.health.as_ref().and_then(|h| h.dashboard_url.clone()),
                    "health": w.health,
                    "stale": stale,
                    "lag_seconds": w.lag_seconds,
                    "last_seen": w.last_seen,
                    "received": w.received,
                    "beds": beds.iter().map(|(bed, (n, worst))| json!({
                        "bed": bed,
                        "open_alarms": n,
                        "worst": worst.map(|t| json!({
                            "priority": t.alarm.priority,
                            "cause": describe(t),
                            "state": state(t, now),
                            "since": t.alarm.raised_at,
                        })),
                    })).collect::<Vec<_>>(),
                    "alarms_by_priority": {"high": by_priority[2], "medium": by_priority[1], "low": by_priority[0]},
                })
            })
            .collect();
        all.sort_by(|a, b| {
            let p = |v: &serde_json::Value| match v["priority"].as_str() {
                Some("high") => 0,
                Some("medium") => 1,
                _ => 2,
            };
            p(a).cmp(&p(b))
                .then(a["since"].as_i64().cmp(&b["since"].as_i64()))
        });
        json!({
            "now": now,
            "wards": wards,
            "alarms": all,
            "totals": {"high": totals[2], "medium": totals[1], "low": totals[0]},
        })
    }
}

/// Whether `a` is worse than `b`: higher priority, then unacknowledged, then older.
fn worse(a: &Transition, b: &Transition) -> bool {
    let key = |t: &Transition| {
        (
            t.alarm.priority,
            t.alarm.state == AlarmState::Active,
            std::cmp::Reverse(t.alarm.raised_at),
        )
    };
    key(a) > key(b)
}

/// A short text for the alarm: "SpO2 low", "nurse call", "sensor off".
pub fn describe(t: &Transition) -> String {
    let a = &t.alarm;
    match (&a.metric, a.side) {
        (Some(m), Some(side)) => format!(
            "{} {}",
            m.0.name,
            match side {
                crate::alarms::Side::Below => "low",
                crate::alarms::Side::Above => "high",
            }
        ),
        _ => match a.condition {
            Some(c) => c.as_str().replace('_', " "),
            None => a.cause.as_str().replace('_', " "),
        },
    }
}

fn state(t: &Transition, now: Millis) -> &'static str {
    let a = &t.alarm;
    if a.state == AlarmState::Acknowledged {
        "acknowledged"
    } else if a.audio_paused_until.is_some_and(|u| u > now) {
        "audio-paused"
    } else if !a.condition_present {
        "latched"
    } else {
        "active"
    }
}

fn alarm_json(w: &Ward, t: &Transition, now: Millis) -> serde_json::Value {
    let a = &t.alarm;
    json!({
        "site": w.site,
        "ward": w.ward,
        "bed": a.bed,
        "id": a.id,
        "priority": a.priority,
        "state": state(t, now),
        "cause": describe(t),
        "device_id": a.device_id.as_str(),
        "value": a.value,
        "since": a.raised_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(seq: u64, kind: Kind) -> Envelope {
        Envelope {
            schema: crate::uplink::envelope::SCHEMA.into(),
            id: format!("abcd:{seq}"),
            stream: "abcd".into(),
            seq,
            site: "s".into(),
            ward: "w".into(),
            kind,
            queued_at: 0,
            body: json!({"reported_at": 0}),
        }
    }

    /// Guards "a message the broker lost stays lost without anyone noticing": a gap below the
    /// newest data message is asked for after the grace, again later, and given up (counted).
    #[test]
    fn gaps_are_asked_for_again_repaired_or_given_up_and_duplicates_dropped() {
        let mut v = View::default();
        // An alarm first (it went ahead of the data): nothing is anchored yet.
        assert_eq!(v.apply(&envelope(2, Kind::Alarm), 0), Applied::New);
        for seq in [1, 5, 7] {
            assert_eq!(v.apply(&envelope(seq, Kind::Health), 0), Applied::New);
        }
        assert_eq!(v.apply(&envelope(2, Kind::Health), 0), Applied::Duplicate);
        // An alarm above the newest data may simply not have been sent yet: 8 is not asked.
        assert_eq!(v.apply(&envelope(9, Kind::Alarm), 0), Applied::New);
        assert!(v.repairs(1_000).is_empty(), "within the grace");
        let asks = v.repairs(GRACE_MS + 1_000);
        let runs: Vec<(u64, u64)> = asks.iter().map(|r| (r.from, r.to)).collect();
        assert_eq!(runs, [(3, 4), (6, 6)]);
        assert_eq!((asks[0].site.as_str(), asks[0].ward.as_str()), ("s", "w"));
        assert!(
            v.repairs(GRACE_MS + 2_000).is_empty(),
            "not asked again at once"
        );
        // 3 and 4 arrive again (resent): repaired; 6 never does.
        assert_eq!(v.apply(&envelope(3, Kind::Observations), 0), Applied::New);
        assert_eq!(v.apply(&envelope(4, Kind::Observations), 0), Applied::New);
        assert_eq!(v.repaired, 2);
        assert_eq!(v.seen["abcd"].low, 5);
        let again = v.repairs(GRACE_MS + 1_000 + ASK_EVERY_MS);
        assert_eq!(
            again.iter().map(|r| (r.from, r.to)).collect::<Vec<_>>(),
            [(6, 6)]
        );
        v.repairs(GIVE_UP_MS + 1_000);
        assert_eq!(v.lost, 1);
        assert_eq!(v.seen["abcd"].low, 7, "given up: the stream goes on");
        assert_eq!(v.apply(&envelope(6, Kind::Health), 0), Applied::Duplicate);
    }

    /// Guards a new hospital view asking a ward for its whole history: the stream is anchored
    /// at the first data message it sees.
    #[test]
    fn a_new_view_does_not_ask_for_what_was_sent_before_it_listened() {
        let mut v = View::default();
        assert_eq!(
            v.apply(&envelope(50_000, Kind::Observations), 0),
            Applied::New
        );
        assert_eq!(
            v.apply(&envelope(50_002, Kind::Observations), 0),
            Applied::New
        );
        assert!(v.repairs(1).is_empty(), "noticed, within the grace");
        let asks = v.repairs(GRACE_MS + 1);
        assert_eq!(
            asks.iter().map(|r| (r.from, r.to)).collect::<Vec<_>>(),
            [(50_001, 50_001)]
        );
    }
}
