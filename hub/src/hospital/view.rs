//! What the hospital view knows: every ward that has reported, its health, its open alarms,
//! and what it has received, built from uplink messages in the order they arrive.
//!
//! De-duplication: the uplink sends each class of message (alarms; everything else) in
//! sequence order on one connection, and sends again only from the oldest message its
//! broker had not acknowledged. So a message whose `seq` is not above the highest seen for
//! its stream and class is a redelivery: counted and dropped. (A gap in `seq` is a message
//! the ward's outbox dropped, counted there.)

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

/// The highest sequence number seen per stream and class.
pub type Highest = HashMap<(String, bool), u64>;

/// The hospital's wards.
#[derive(Debug, Default)]
pub struct View {
    pub wards: BTreeMap<(String, String), Ward>,
    pub highest: Highest,
    /// The last alarm transitions received, newest last (bounded).
    pub recent: std::collections::VecDeque<(String, String, Transition)>,
}

const RECENT: usize = 200;

impl View {
    /// Applies one message received at `now` (hospital time).
    pub fn apply(&mut self, e: &Envelope, now: Millis) -> Applied {
        let key = (e.stream.clone(), e.kind.is_alarm());
        let top = self.highest.entry(key).or_insert(0);
        if e.seq <= *top {
            return Applied::Duplicate;
        }
        *top = e.seq;
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
                beds.sort_by_key(|b| natural(b.0));
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

fn natural(s: &str) -> (String, u64, String) {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let head: String = s.chars().take_while(|c| !c.is_ascii_digit()).collect();
    (head, digits.parse().unwrap_or(0), s.to_owned())
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
