//! Alarms that reach a person (docs/DISSEMINATION.md): the shift's roster (who looks after
//! which bed, their buddy, the charge nurse), escalation chains per priority and kind
//! ([`chain`]), delivery on per-person MQTT topics (`wardhub/v1/staff/{user}/alarms`), and
//! every step in an audit log of its own, written before the message goes out.
//!
//! ```text
//!  alarm engine ── committed transitions (raised / acknowledged / cleared) ──┐
//!  timer (1 s): steps falling due, reminders ───────────────────────────────┤
//!  a nurse: POST /api/v1/alarms/{id}/accept | reject ───────────────────────┤
//!                                                                           ▼
//!                      Dispatcher (pure) ─▶ audit (sled `dissemination.audit`)
//!                                         ─▶ MQTT wardhub/v1/staff/{user}/alarms (QoS 1)
//! ```
//!
//! Layout: [`config`], [`chain`] (the pure chains and roster), [`acm`] (IHE PCD ACM to the
//! hospital's Alarm Manager), [`metrics`].

pub mod acm;
pub mod chain;
pub mod config;
pub mod metrics;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wardhub_adapters::adapter::Bus;
use wardhub_adapters::model::{format_rfc3339, Clock, Millis};

use chain::Dispatcher;
pub use chain::{Action, Assignment, Roster, Target};
pub use config::DisseminationConfig;
use metrics::DisseminationMetrics;

use crate::alarms::{Alarm, AlarmId, AlarmState, Event, Transition};

#[derive(Debug, thiserror::Error)]
pub enum DisseminationError {
    #[error("dissemination: {0}")]
    Config(String),
    #[error("dissemination: {0}")]
    Db(#[from] sled::Error),
    #[error("dissemination: a stored roster does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// One line of the dissemination audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub at: String,
    /// The alarm (`A000042`); `A000000` for a roster change.
    pub alarm: AlarmId,
    /// `notified`, `reminded`, `accepted`, `rejected`, `stopped`, `reached_nobody`,
    /// `roster_changed`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For `notified` and `accepted`: how long after the alarm was raised (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<i64>,
}

/// The dissemination service.
pub struct Disseminator {
    ward: String,
    users: Vec<String>,
    roster: RwLock<Roster>,
    dispatcher: Mutex<Dispatcher>,
    /// The open alarms it disseminates (the payload of a reminder), and whether anyone has
    /// been told yet.
    alarms: Mutex<BTreeMap<AlarmId, (Alarm, bool)>>,
    tree: sled::Tree,
    audit: sled::Tree,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    metrics: DisseminationMetrics,
    seq: std::sync::atomic::AtomicU64,
    /// What each person has been sent and not yet seen end: user → alarm → the last
    /// notification (the phone page's "my alarms").
    mine: Mutex<BTreeMap<String, BTreeMap<AlarmId, serde_json::Value>>>,
    /// Every notification and every end, for the phone pages' live streams.
    live: tokio::sync::broadcast::Sender<Arc<Live>>,
    /// Who accepted which open alarm, and when (the ward dashboard shows it).
    accepted: Mutex<BTreeMap<AlarmId, (String, Millis)>>,
    /// Alarms this hub has disseminated (a status for another is refused).
    known: Mutex<std::collections::BTreeSet<AlarmId>>,
    /// IHE PCD ACM, when configured.
    acm: Option<acm::Acm>,
    acm_settings: Option<crate::outbound::mllp_sender::MllpSettings>,
    acm_metrics: Option<crate::outbound::OutboundMetrics>,
    /// The patient in an alarm's bed, for the Alarm Manager. Weak: the alarm service holds
    /// this, and the patient context (through the registry) holds the alarm service — a
    /// strong reference made a cycle that kept the database open after a shutdown ("could
    /// not acquire lock" on the restart of the phone page's test).
    patients: Option<std::sync::Weak<crate::patients::PatientContext>>,
}

/// What the ward dashboard shows of an alarm's dissemination.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    pub alarm: AlarmId,
    /// Still being sent (nobody accepted yet).
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    /// Whom it was sent to and is still theirs.
    pub with: Vec<String>,
}

/// What a person's live stream hears.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Live {
    /// Sent to `user` (a first notification or a reminder).
    Notified {
        user: String,
        body: serde_json::Value,
    },
    /// No longer `user`'s: accepted (by anyone), acknowledged, cleared, or passed on.
    Gone {
        user: String,
        alarm: AlarmId,
        why: String,
    },
}

impl Live {
    pub fn user(&self) -> &str {
        match self {
            Live::Notified { user, .. } | Live::Gone { user, .. } => user,
        }
    }
}

impl std::fmt::Debug for Disseminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disseminator")
            .field("ward", &self.ward)
            .finish_non_exhaustive()
    }
}

/// The per-person topic.
pub fn staff_topic(user: &str) -> String {
    format!("wardhub/v1/staff/{user}/alarms")
}

impl Disseminator {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        config: &DisseminationConfig,
        ward: &str,
        users: Vec<String>,
        db: &sled::Db,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        registry: &prometheus::Registry,
        patients: Option<Arc<crate::patients::PatientContext>>,
    ) -> Result<Arc<Disseminator>, DisseminationError> {
        let chains = config.chains().map_err(DisseminationError::Config)?;
        let (acm, acm_settings, acm_metrics) = match &config.acm {
            None => (None, None, None),
            Some(c) => {
                if c.connect.trim().is_empty() {
                    return Err(DisseminationError::Config(
                        "dissemination.acm.connect: the Alarm Manager's host:port".into(),
                    ));
                }
                let m = crate::outbound::OutboundMetrics::register(
                    registry,
                    "wardhub_acm",
                    "alarm manager",
                    &[crate::outbound::Dest::Acm],
                );
                let outbox = crate::outbound::Outbox::open(
                    db,
                    "acm.outbox",
                    [(crate::outbound::Dest::Acm, c.outbox_max_bytes)].into(),
                    m.clone(),
                )
                .map_err(|e| DisseminationError::Config(e.to_string()))?;
                let opts = wardhub_adapters::acm::pcd04::Pcd04Options {
                    sending_application: c.sending_application.clone(),
                    sending_facility: c.sending_facility.clone(),
                    receiving_application: c.receiving_application.clone(),
                    receiving_facility: c.receiving_facility.clone(),
                    patient_authority_default: c.patient_authority.clone(),
                };
                let settings = crate::outbound::mllp_sender::MllpSettings {
                    connect: c.connect.clone(),
                    ack_timeout: c.ack_timeout,
                    error_attempts: c.error_attempts,
                    retry_min: c.retry.min,
                    retry_max: c.retry.max,
                };
                (
                    Some(acm::Acm {
                        outbox: Arc::new(outbox),
                        opts,
                    }),
                    Some(settings),
                    Some(m),
                )
            }
        };
        let tree = db.open_tree("dissemination.roster")?;
        let audit = db.open_tree("dissemination.audit")?;
        let roster = match tree.get(b"current")? {
            Some(v) => serde_json::from_slice(&v)?,
            None => Roster::default(),
        };
        let mut accepted = BTreeMap::new();
        for kv in tree.scan_prefix(b"accepted/") {
            let (k, v) = kv?;
            let id = String::from_utf8_lossy(&k["accepted/".len()..]).parse::<AlarmId>();
            if let (Ok(id), Ok((user, at))) = (id, serde_json::from_slice::<(String, Millis)>(&v)) {
                accepted.insert(id, (user, at));
            }
        }
        Ok(Arc::new(Disseminator {
            ward: ward.to_owned(),
            users,
            roster: RwLock::new(roster),
            dispatcher: Mutex::new(Dispatcher::new(chains)),
            alarms: Mutex::new(BTreeMap::new()),
            tree,
            audit,
            bus,
            clock,
            metrics: DisseminationMetrics::register(registry),
            seq: std::sync::atomic::AtomicU64::new(0),
            mine: Mutex::new(BTreeMap::new()),
            live: tokio::sync::broadcast::channel(1024).0,
            accepted: Mutex::new(accepted),
            known: Mutex::new(Default::default()),
            acm,
            acm_settings,
            acm_metrics,
            patients: patients.as_ref().map(Arc::downgrade),
        }))
    }

    pub fn roster(&self) -> Roster {
        self.roster
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the roster (a new shift), recorded with who did it and what it says.
    pub fn set_roster(&self, roster: Roster, by: &str) -> Result<(), DisseminationError> {
        let mut current = self.roster.write().unwrap_or_else(|e| e.into_inner());
        self.store_roster(&mut current, roster, by)
    }

    /// Checks and stores `roster` over `current` (its lock held: read-modify-write of one
    /// bed cannot lose another's).
    fn store_roster(
        &self,
        current: &mut Roster,
        mut roster: Roster,
        by: &str,
    ) -> Result<(), DisseminationError> {
        // A bed with nobody is a bed without an entry.
        roster
            .beds
            .retain(|_, a| a.primary.is_some() || a.buddy.is_some());
        for name in roster
            .beds
            .values()
            .flat_map(|a| [&a.primary, &a.buddy])
            .flatten()
            .chain(roster.charge.iter())
            .chain(roster.team.iter())
        {
            if !self.users.iter().any(|u| u == name) {
                return Err(DisseminationError::Invalid(format!(
                    "{name:?} is not a user of this hub who may take alarms (nurse, biomed, admin)"
                )));
            }
        }
        self.tree.insert(b"current", serde_json::to_vec(&roster)?)?;
        let summary = serde_json::to_string(&roster).unwrap_or_default();
        *current = roster;
        self.record(Step {
            at: format_rfc3339(self.clock.now_ms()),
            alarm: AlarmId(0),
            event: "roster_changed".into(),
            user: Some(by.to_owned()),
            target: None,
            step: None,
            note: Some(summary.chars().take(4096).collect()),
            after_ms: None,
        });
        Ok(())
    }

    /// Assigns one bed (its primary nurse and buddy), recorded with who did it.
    pub fn assign(
        &self,
        bed: &str,
        primary: Option<String>,
        buddy: Option<String>,
        by: &str,
    ) -> Result<Roster, DisseminationError> {
        let mut current = self.roster.write().unwrap_or_else(|e| e.into_inner());
        let mut r = current.clone();
        r.beds
            .insert(bed.to_owned(), chain::Assignment { primary, buddy });
        self.store_roster(&mut current, r, by)?;
        Ok(current.clone())
    }

    fn record(&self, step: Step) {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut key = self.clock.now_ms().to_be_bytes().to_vec();
        key.extend_from_slice(&n.to_be_bytes());
        match serde_json::to_vec(&step) {
            Ok(v) => {
                if let Err(e) = self.audit.insert(key, v) {
                    tracing::error!(error = %e, "dissemination audit could not be written");
                }
            }
            Err(e) => tracing::error!(error = %e, "dissemination audit entry"),
        }
    }

    /// Closing the loop over `[from, to)`: per alarm sent to someone, how long to the first
    /// person told and to someone accepting; alarms that reached nobody.
    pub fn kpis(&self, from: Millis, to: Millis) -> serde_json::Value {
        let mut first: BTreeMap<AlarmId, i64> = BTreeMap::new();
        let mut accepted: BTreeMap<AlarmId, i64> = BTreeMap::new();
        let mut nobody = 0u64;
        let (lo, hi) = (from.max(0).to_be_bytes(), to.max(0).to_be_bytes());
        for (_, v) in self.audit.range(lo..hi).filter_map(|kv| kv.ok()) {
            let Ok(s) = serde_json::from_slice::<Step>(&v) else {
                continue;
            };
            match (s.event.as_str(), s.after_ms) {
                ("notified", Some(ms)) => {
                    first.entry(s.alarm).or_insert(ms);
                }
                ("accepted", Some(ms)) => {
                    accepted.entry(s.alarm).or_insert(ms);
                }
                ("reached_nobody", _) => nobody += 1,
                _ => {}
            }
        }
        let pct = |v: &BTreeMap<AlarmId, i64>, p: f64| -> Option<f64> {
            let mut x: Vec<i64> = v.values().copied().collect();
            if x.is_empty() {
                return None;
            }
            x.sort_unstable();
            let i = ((x.len() as f64 - 1.0) * p).round() as usize;
            Some(x[i] as f64 / 1000.0)
        };
        json!({
            "alarms_sent": first.len(),
            "accepted": accepted.len(),
            "reached_nobody": nobody,
            "first_delivery_s": { "p50": pct(&first, 0.5), "p90": pct(&first, 0.9) },
            "accepted_s": { "p50": pct(&accepted, 0.5), "p90": pct(&accepted, 0.9) },
        })
    }

    /// The audit of one alarm (or of all, `None`), oldest first, at most `limit`.
    pub fn history(&self, alarm: Option<AlarmId>, limit: usize) -> Vec<Step> {
        self.audit
            .iter()
            .filter_map(|kv| kv.ok())
            .filter_map(|(_, v)| serde_json::from_slice::<Step>(&v).ok())
            .filter(|s| alarm.is_none_or(|a| s.alarm == a))
            .take(limit)
            .collect()
    }

    /// Carries the dispatcher's actions out: audit first, then delivery.
    fn act(&self, actions: Vec<Action>) {
        let now = self.clock.now_ms();
        for a in actions {
            match a {
                Action::Notify {
                    alarm,
                    user,
                    step,
                    target,
                    reminder,
                } => {
                    let raised = self
                        .alarms
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&alarm)
                        .map(|(a, _)| a.raised_at);
                    self.record(Step {
                        at: format_rfc3339(now),
                        alarm,
                        event: if reminder { "reminded" } else { "notified" }.into(),
                        user: Some(user.clone()),
                        target: Some(target.as_str().into()),
                        step: Some(step),
                        note: None,
                        after_ms: raised.map(|r| now - r),
                    });
                    let body = {
                        let mut alarms = self.alarms.lock().unwrap_or_else(|e| e.into_inner());
                        let Some((a, told)) = alarms.get_mut(&alarm) else {
                            continue;
                        };
                        let phase = if !*told {
                            wardhub_adapters::acm::pcd04::AcmPhase::Start
                        } else if reminder {
                            wardhub_adapters::acm::pcd04::AcmPhase::Update
                        } else {
                            wardhub_adapters::acm::pcd04::AcmPhase::Escalate
                        };
                        if !*told {
                            *told = true;
                            self.metrics.first_delivery(a, now);
                        }
                        if let Some(acm) = &self.acm {
                            let patient = self.patient_of(a);
                            acm.queue(&acm::acm_alarm(a, phase, Some(&user), patient, now), now);
                        }
                        json!({
                            "alarm": a,
                            "user": user,
                            "step": step,
                            "target": target.as_str(),
                            "reminder": reminder,
                            "at": format_rfc3339(now),
                        })
                    };
                    self.metrics.notified(target, reminder);
                    self.mine
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(user.clone())
                        .or_default()
                        .insert(alarm, body.clone());
                    let _ = self.live.send(Arc::new(Live::Notified {
                        user: user.clone(),
                        body: body.clone(),
                    }));
                    if let Err(e) = self
                        .bus
                        .publish(staff_topic(&user), Bytes::from(body.to_string()))
                    {
                        self.metrics.undelivered.inc();
                        tracing::warn!(error = %e, alarm = %alarm, "alarm could not be published to its person");
                    }
                }
                Action::ReachedNobody { alarm } => {
                    self.metrics.reached_nobody.inc();
                    tracing::warn!(
                        alarm = %alarm,
                        "an alarm's escalation chain reached nobody (no one on the roster)"
                    );
                    self.record(Step {
                        at: format_rfc3339(now),
                        alarm,
                        event: "reached_nobody".into(),
                        user: None,
                        target: None,
                        step: None,
                        note: None,
                        after_ms: None,
                    });
                }
                Action::Stopped { alarm, why } => {
                    if let Some(acm) = &self.acm {
                        let alarms = self.alarms.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some((a, _)) = alarms.get(&alarm) {
                            let phase = if why == "cleared" {
                                wardhub_adapters::acm::pcd04::AcmPhase::End
                            } else {
                                wardhub_adapters::acm::pcd04::AcmPhase::Acknowledged
                            };
                            let patient = self.patient_of(a);
                            acm.queue(&acm::acm_alarm(a, phase, None, patient, now), now);
                        }
                    }
                    self.record(Step {
                        at: format_rfc3339(now),
                        alarm,
                        event: "stopped".into(),
                        user: None,
                        target: None,
                        step: None,
                        note: Some(why.into()),
                        after_ms: None,
                    });
                    self.alarms
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&alarm);
                    let mut mine = self.mine.lock().unwrap_or_else(|e| e.into_inner());
                    for (user, alarms) in mine.iter_mut() {
                        if alarms.remove(&alarm).is_some() {
                            let _ = self.live.send(Arc::new(Live::Gone {
                                user: user.clone(),
                                alarm,
                                why: why.into(),
                            }));
                        }
                    }
                    mine.retain(|_, a| !a.is_empty());
                }
            }
        }
    }

    /// The patient in the alarm's bed when it was raised (for the Alarm Manager's PID).
    fn patient_of(&self, a: &Alarm) -> Option<wardhub_adapters::model::Patient> {
        let bed = a.bed.as_deref()?;
        self.patients
            .as_ref()?
            .upgrade()?
            .at(bed, a.raised_at)
            .map(|(_, p)| p)
    }

    fn publish_acm_age(&self) {
        if let (Some(acm), Some(m)) = (&self.acm, &self.acm_metrics) {
            let now = self.clock.now_ms();
            let age = acm
                .outbox
                .oldest_queued_at(crate::outbound::Dest::Acm)
                .map_or(0, |t| ((now - t) / 1000).max(0));
            m.age(crate::outbound::Dest::Acm, age);
        }
    }

    /// Whether this hub disseminated the alarm (since it started).
    fn knows(&self, alarm: AlarmId) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&alarm)
    }

    /// Records what an Alarm Manager said of an alarm (delivered, read, …).
    fn note(&self, alarm: AlarmId, user: &str, event: &str) {
        self.record(Step {
            at: format_rfc3339(self.clock.now_ms()),
            alarm,
            event: event.to_owned(),
            user: Some(user.to_owned()),
            target: None,
            step: None,
            note: Some("alarm manager".into()),
            after_ms: None,
        });
    }

    /// After a restart: the alarms still open and unanswered go round their chains again
    /// (steps already due are reached at once: nobody has taken them); accepted ones keep
    /// who accepted them. Called once at start with the alarm service's open alarms.
    pub fn resume(&self, open: Vec<Alarm>) {
        let now = self.clock.now_ms();
        let roster = self.roster();
        let accepted: Vec<AlarmId> = self
            .accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        let mut actions = Vec::new();
        let mut resumed = Vec::new();
        {
            let mut d = self.dispatcher.lock().unwrap_or_else(|e| e.into_inner());
            let mut alarms = self.alarms.lock().unwrap_or_else(|e| e.into_inner());
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            for a in open {
                known.insert(a.id);
                if a.state != AlarmState::Active || accepted.contains(&a.id) {
                    continue;
                }
                resumed.push(a.id);
                alarms.insert(a.id, (a.clone(), true));
                actions.extend(d.raised(
                    a.id,
                    a.priority,
                    a.kind,
                    a.bed.as_deref(),
                    a.raised_at,
                    now,
                    &roster,
                ));
            }
        }
        for alarm in resumed {
            self.record(Step {
                at: format_rfc3339(now),
                alarm,
                event: "resumed".into(),
                user: None,
                target: None,
                step: None,
                note: Some("the hub restarted with the alarm open and unanswered".into()),
                after_ms: None,
            });
        }
        self.act(actions);
    }

    /// The timer: steps that fell due, reminders.
    pub fn tick(&self) {
        let now = self.clock.now_ms();
        let roster = self.roster();
        let actions = self
            .dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tick(now, &roster);
        self.act(actions);
    }

    /// `user` takes the alarm: the chain stops.
    pub fn accept(&self, alarm: AlarmId, user: &str) -> Result<(), DisseminationError> {
        let now = self.clock.now_ms();
        let actions = {
            let mut d = self.dispatcher.lock().unwrap_or_else(|e| e.into_inner());
            if !d.is_open(alarm) {
                return Err(DisseminationError::Invalid(
                    "this alarm is not being sent to anyone (accepted, acknowledged or over)"
                        .into(),
                ));
            }
            d.accepted(alarm)
        };
        let raised = self
            .alarms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&alarm)
            .map(|(a, _)| {
                self.metrics.accepted(a, now);
                a.raised_at
            });
        self.accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(alarm, (user.to_owned(), now));
        // Kept across a restart: an accepted alarm is not sent round again.
        let _ = self.tree.insert(
            format!("accepted/{alarm}"),
            serde_json::to_vec(&(user, now)).unwrap_or_default(),
        );
        self.record(Step {
            at: format_rfc3339(now),
            alarm,
            event: "accepted".into(),
            user: Some(user.to_owned()),
            target: None,
            step: None,
            note: None,
            after_ms: raised.map(|r| now - r),
        });
        self.act(actions);
        Ok(())
    }

    /// `user` cannot take it: the next step is reached at once.
    pub fn reject(&self, alarm: AlarmId, user: &str) -> Result<(), DisseminationError> {
        let now = self.clock.now_ms();
        let roster = self.roster();
        let actions = {
            let mut d = self.dispatcher.lock().unwrap_or_else(|e| e.into_inner());
            if !d.is_open(alarm) {
                return Err(DisseminationError::Invalid(
                    "this alarm is not being sent to anyone (accepted, acknowledged or over)"
                        .into(),
                ));
            }
            d.rejected(alarm, user, now, &roster)
        };
        self.metrics.rejected.inc();
        if let Some(a) = self
            .mine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(user)
        {
            if a.remove(&alarm).is_some() {
                let _ = self.live.send(Arc::new(Live::Gone {
                    user: user.to_owned(),
                    alarm,
                    why: "passed_on".into(),
                }));
            }
        }
        self.record(Step {
            at: format_rfc3339(now),
            alarm,
            event: "rejected".into(),
            user: Some(user.to_owned()),
            target: None,
            step: None,
            note: None,
            after_ms: None,
        });
        self.act(actions);
        Ok(())
    }

    /// What `user` has been sent and is still theirs, oldest alarm first.
    pub fn mine(&self, user: &str) -> Vec<serde_json::Value> {
        self.mine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The dissemination of every open alarm it handled: running, accepted by whom, with whom.
    pub fn status(&self, open: &[AlarmId]) -> Vec<Status> {
        let d = self.dispatcher.lock().unwrap_or_else(|e| e.into_inner());
        let accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        let mine = self.mine.lock().unwrap_or_else(|e| e.into_inner());
        open.iter()
            .filter_map(|id| {
                let running = d.is_open(*id);
                let acc = accepted.get(id);
                let with: Vec<String> = mine
                    .iter()
                    .filter(|(_, a)| a.contains_key(id))
                    .map(|(u, _)| u.clone())
                    .collect();
                (running || acc.is_some() || !with.is_empty()).then(|| Status {
                    alarm: *id,
                    running,
                    accepted_by: acc.map(|(u, _)| u.clone()),
                    accepted_at: acc.map(|(_, t)| format_rfc3339(*t)),
                    with,
                })
            })
            .collect()
    }

    /// Every notification and end from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Live>> {
        self.live.subscribe()
    }

    /// Whether the alarm's chain is running.
    pub fn is_running(&self, alarm: AlarmId) -> bool {
        self.dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_open(alarm)
    }

    /// Starts the ACM sender, when configured (it stops before the final flush).
    pub fn spawn_acm(
        self: &Arc<Self>,
        store: Arc<crate::store::SledStore>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let (acm, settings, metrics) = (
            self.acm.as_ref()?,
            self.acm_settings.clone()?,
            self.acm_metrics.clone()?,
        );
        Some(tokio::spawn(crate::outbound::mllp_sender::run(
            crate::outbound::Dest::Acm,
            settings,
            acm.outbox.clone(),
            store,
            metrics,
            self.clock.clone(),
            cancel,
        )))
    }

    /// Starts the timer.
    pub fn spawn(
        self: &Arc<Self>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = every.tick() => {
                        let this = this.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            this.tick();
                            this.publish_acm_age();
                        })
                        .await;
                    }
                }
            }
        })
    }
}

impl crate::alarms::service::CommittedObserver for Disseminator {
    fn committed(&self, transitions: &[Transition]) {
        let now = self.clock.now_ms();
        let roster = self.roster();
        let mut actions = Vec::new();
        {
            let mut d = self.dispatcher.lock().unwrap_or_else(|e| e.into_inner());
            let mut alarms = self.alarms.lock().unwrap_or_else(|e| e.into_inner());
            for t in transitions {
                let a = &t.alarm;
                if let Some(entry) = alarms.get_mut(&a.id) {
                    entry.0 = a.clone();
                }
                match t.event {
                    Event::Raised => {
                        alarms.insert(a.id, (a.clone(), false));
                        {
                            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                            // Bounded: the oldest ids go first (a status that old is late).
                            if known.len() >= 100_000 {
                                if let Some(first) = known.iter().next().copied() {
                                    known.remove(&first);
                                }
                            }
                            known.insert(a.id);
                        }
                        actions.extend(d.raised(
                            a.id,
                            a.priority,
                            a.kind,
                            a.bed.as_deref(),
                            a.raised_at,
                            now,
                            &roster,
                        ));
                    }
                    Event::Acknowledged => actions.extend(d.ended(a.id, "acknowledged")),
                    Event::Cleared => {
                        self.accepted
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&a.id);
                        let _ = self.tree.remove(format!("accepted/{}", a.id));
                        actions.extend(d.ended(a.id, "cleared"));
                    }
                    _ if a.state == AlarmState::Cleared => {
                        actions.extend(d.ended(a.id, "cleared"));
                    }
                    _ => {}
                }
            }
        }
        self.act(actions);
    }
}

#[cfg(test)]
mod tests;
