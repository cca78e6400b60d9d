//! The alarm engine in the running hub.
//!
//! Every engine call happens under one lock, and its transitions are appended to the audit
//! log (sled) before the lock is released, so the log's order is the engine's order. The
//! announcer task then makes them durable (`flush_async`) and only then announces them: on
//! MQTT (`wardhub/v1/wards/{ward}/alarms`, escalations also on
//! `wardhub/v1/wards/{ward}/escalations`, QoS 1) and to the in-process live stream (SSE).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use wardhub_adapters::adapter::Bus;
use wardhub_adapters::model::{Clock, DeviceId, Millis, Observation};

use super::store::AlarmStoreError;
use super::{
    AckReason, Alarm, AlarmEngine, AlarmError, AlarmId, AlarmState, AlarmStore, AlarmsConfig,
    DeviceEvent, DeviceStatus, Event, PauseTarget, Priority, RuleSet, Transition,
};
use crate::pipeline::StoredObserver;

mod announcer;

use crate::telemetry::Telemetry;
use announcer::{announcer, Pending};

/// Something that hears of every transition the engine commits, in engine order, right after
/// it is in the audit log (under the engine lock: keep it quick and never wait there).
pub trait CommittedObserver: Send + Sync {
    fn committed(&self, transitions: &[Transition]);
}

/// The alarm engine with its store and announcer.
pub struct AlarmService {
    /// Told of every committed transition (the uplink, the dissemination), set at start.
    committed_to: std::sync::RwLock<Vec<Arc<dyn CommittedObserver>>>,
    engine: Mutex<AlarmEngine>,
    store: AlarmStore,
    rules_tree: sled::Tree,
    clock: Arc<dyn Clock>,
    telemetry: Arc<Telemetry>,
    announce_tx: mpsc::UnboundedSender<Pending>,
    live: broadcast::Sender<Arc<Transition>>,
    ward: String,
}

impl std::fmt::Debug for AlarmService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlarmService")
            .field("ward", &self.ward)
            .finish_non_exhaustive()
    }
}

const RULES_KEY: &[u8] = b"current";

impl AlarmService {
    /// Restores the engine from the store (rules changed through the API win over the
    /// config's) and starts the announcer; returns the service and the announcer's task.
    pub fn start(
        db: &sled::Db,
        ward: &str,
        config: AlarmsConfig,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        telemetry: Arc<Telemetry>,
    ) -> Result<(Arc<AlarmService>, tokio::task::JoinHandle<()>), AlarmError> {
        let store = AlarmStore::open(db)?;
        let rules_tree = db.open_tree("alarm_rules").map_err(AlarmStoreError::from)?;
        let restored = store.load()?;
        let now = clock.now_ms();
        let mut engine =
            AlarmEngine::restore(ward, config, restored.alarms, restored.next_id, now)?;
        if let Some(saved) = rules_tree.get(RULES_KEY).map_err(AlarmStoreError::from)? {
            match serde_json::from_slice::<RuleSet>(&saved)
                .map_err(|e| AlarmError::InvalidConfig(e.to_string()))
                .and_then(|r| engine.set_rules(r))
            {
                Ok(()) => tracing::info!("alarm rules: using the rules last set through the API"),
                Err(e) => {
                    tracing::error!(error = %e, "alarm rules saved through the API are unusable; using the config's")
                }
            }
        }
        // Every condition's series exists from the first scrape (a cause that never happened
        // reads 0 instead of being absent).
        for p in [Priority::Low, Priority::Medium, Priority::High] {
            for c in super::Condition::ALL {
                telemetry
                    .condition_alarms_raised
                    .with_label_values(&[c.as_str(), p.as_str()]);
            }
        }
        let (announce_tx, announce_rx) = mpsc::unbounded_channel();
        let (live, _) = broadcast::channel(4096);
        let service = Arc::new(AlarmService {
            committed_to: std::sync::RwLock::new(Vec::new()),
            engine: Mutex::new(engine),
            store,
            rules_tree,
            clock,
            telemetry,
            announce_tx,
            live,
            ward: ward.to_owned(),
        });
        service.update_gauges();
        let task = tokio::spawn(announcer(service.clone(), db.clone(), bus, announce_rx));
        Ok((service, task))
    }

    /// Tells `observer` of every transition committed from now on (at start).
    pub fn also_tell(&self, observer: Arc<dyn CommittedObserver>) {
        self.committed_to
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(observer);
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, AlarmEngine> {
        // A panic inside the engine leaves its state as it was before the call that panicked
        // began mutating; carrying on is better than stopping every alarm.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `transitions` to the audit log and queues them for announcement; must be
    /// called with the engine lock held (so log order is engine order).
    fn commit(
        &self,
        transitions: Vec<Transition>,
        received_at: Option<Millis>,
    ) -> Result<Vec<Transition>, AlarmError> {
        if transitions.is_empty() {
            return Ok(transitions);
        }
        self.store.append(&transitions)?;
        for t in &transitions {
            self.count(t);
        }
        for o in self
            .committed_to
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            o.committed(&transitions);
        }
        let _ = self.announce_tx.send(Pending {
            transitions: transitions.clone(),
            received_at,
            barrier: None,
        });
        Ok(transitions)
    }

    fn count(&self, t: &Transition) {
        let a = &t.alarm;
        match t.event {
            Event::Raised => {
                self.telemetry.alarm_raised(
                    a.priority.as_str(),
                    kind_str(a),
                    &a.ward,
                    a.bed.as_deref(),
                );
                if let Some(c) = a.condition {
                    self.telemetry
                        .condition_alarms_raised
                        .with_label_values(&[c.as_str(), a.priority.as_str()])
                        .inc();
                }
            }
            Event::Escalated => self.telemetry.alarm_escalations.inc(),
            Event::Acknowledged => {
                let reason = a.ack_reason.map_or("none", super::AckReason::as_str);
                self.telemetry
                    .alarm_acknowledgements
                    .with_label_values(&[a.priority.as_str(), reason])
                    .inc();
                if let Some(at) = a.acknowledged_at {
                    let secs = (at - a.raised_at).max(0) as f64 / 1000.0;
                    self.telemetry
                        .alarm_time_to_ack_seconds
                        .with_label_values(&[a.priority.as_str()])
                        .observe(secs);
                }
            }
            Event::Suppressed => self.telemetry.alarms_suppressed.inc(),
            _ => {}
        }
    }

    fn update_gauges(&self) {
        let engine = self.engine();
        let mut counts = [0i64; 3];
        for a in engine
            .open_alarms()
            .filter(|a| a.state == AlarmState::Active)
        {
            counts[a.priority.index()] += 1;
        }
        for (i, p) in ["low", "medium", "high"].iter().enumerate() {
            self.telemetry
                .alarms_active
                .with_label_values(&[p])
                .set(counts[i]);
        }
    }

    fn run(
        &self,
        received_at: Option<Millis>,
        f: impl FnOnce(&mut AlarmEngine, Millis) -> Result<Vec<Transition>, AlarmError>,
    ) -> Result<Vec<Transition>, AlarmError> {
        let now = self.clock.now_ms();
        let mut engine = self.engine();
        let transitions = f(&mut engine, now)?;
        drop_guard_after(self.commit(transitions, received_at), engine)
    }

    /// Evaluates time: delays maturing, escalations, pause expiry, devices gone silent, and
    /// time-limited bed changes ending.
    pub fn tick(&self) {
        if let Err(e) = self.run(None, |e, now| Ok(e.tick(now))) {
            tracing::error!(error = %e, "alarm tick failed");
        }
        if let Err(e) = self.expire_bed_changes() {
            tracing::error!(error = %e, "time-limited bed alarm changes could not be ended");
        }
        self.update_gauges();
    }

    /// Ends the bed changes whose time is up: the bed's overrides go, the ward's rules apply
    /// again (recorded in the rule history as done by `wardhub (time limit)`).
    pub fn expire_bed_changes(&self) -> Result<Vec<String>, AlarmError> {
        let now = self.clock.now_ms();
        let mut rules = self.rules();
        let expired: Vec<String> = rules
            .changes
            .iter()
            .filter(|(_, c)| c.until_ms.is_some_and(|u| u <= now))
            .map(|(b, _)| b.clone())
            .collect();
        if expired.is_empty() {
            return Ok(expired);
        }
        for b in &expired {
            rules.changes.remove(b);
            rules.beds.remove(b);
            tracing::info!(bed = %b, "a time-limited alarm change ended: the ward's rules apply again");
        }
        self.set_rules(rules, "wardhub (time limit)")?;
        Ok(expired)
    }

    /// The configured safe ranges and the longest alarm-off time a non-admin may set.
    pub fn limits_policy(&self) -> (Vec<super::changes::SafeRange>, std::time::Duration) {
        let e = self.engine();
        (e.config().safe_ranges.clone(), e.config().max_alarm_off)
    }

    /// A device status message from the bus.
    pub fn device_status(&self, device: &DeviceId, bed: Option<&str>, status: &DeviceStatus) {
        if let Err(e) = self.run(None, |e, now| {
            Ok(e.on_device_status(device, bed, status, now))
        }) {
            tracing::error!(error = %e, "alarm evaluation of a device status failed");
        }
    }

    /// A device event from the bus (nurse call, bed exit, pump occlusion, end of infusion).
    pub fn device_event(&self, device: &DeviceId, bed: Option<&str>, event: &DeviceEvent) {
        let r = self.run(
            None,
            |e, now| Ok(e.on_device_event(device, bed, event, now)),
        );
        if let Err(e) = r {
            tracing::error!(error = %e, "alarm evaluation of a device event failed");
        }
    }

    /// A device connected (`true`) or its connection ended (`false`).
    pub fn device_connection(&self, device: &DeviceId, bed: Option<&str>, online: bool) {
        let r = self.run(None, |e, now| {
            Ok(if online {
                e.on_device_seen(device, bed, now)
            } else {
                e.on_device_offline(device, bed, now)
            })
        });
        if let Err(e) = r {
            tracing::error!(error = %e, "alarm evaluation of a connection change failed");
        }
    }

    /// A device was unbound or retired: its open alarms end.
    pub fn forget_device(&self, device: &DeviceId) {
        if let Err(e) = self.run(None, |e, now| Ok(e.forget_device(device, now))) {
            tracing::error!(error = %e, "alarm evaluation of an unbind failed");
        }
    }

    pub fn acknowledge(
        &self,
        id: AlarmId,
        user: &str,
        reason: Option<AckReason>,
        note: Option<&str>,
    ) -> Result<Vec<Transition>, AlarmError> {
        let r = self.run(None, |e, now| e.acknowledge(id, user, reason, note, now));
        self.update_gauges();
        r
    }

    pub fn pause_audio(
        &self,
        target: PauseTarget<'_>,
        user: &str,
        duration: Option<Duration>,
    ) -> Result<Vec<Transition>, AlarmError> {
        self.run(None, |e, now| e.pause_audio(target, user, duration, now))
    }

    /// Open alarms (active or acknowledged-and-present), newest first.
    pub fn open_alarms(&self) -> Vec<Alarm> {
        let mut v: Vec<Alarm> = self.engine().open_alarms().cloned().collect();
        v.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(b.raised_at.cmp(&a.raised_at))
        });
        v
    }

    pub fn alarm(&self, id: AlarmId) -> Option<Alarm> {
        self.engine().alarm(id).cloned()
    }

    pub fn history(
        &self,
        from: Millis,
        to: Millis,
        bed: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Transition>, AlarmError> {
        Ok(self.store.history(from, to, bed, limit)?)
    }

    /// The alarm-burden KPIs of the alarms raised in `from..to` (their acknowledgements up to
    /// `now` included), for a ward of `beds` beds.
    pub fn kpis(
        &self,
        from: Millis,
        to: Millis,
        now: Millis,
        beds: usize,
    ) -> Result<super::kpi::Kpis, AlarmError> {
        let all = self.history_all(from, now.max(to).saturating_add(1))?;
        Ok(super::kpi::compute(&all, from, to, beds))
    }

    /// Every audit record with `from <= at < to`, oldest first.
    pub fn history_all(&self, from: Millis, to: Millis) -> Result<Vec<Transition>, AlarmError> {
        Ok(self.store.history_all(from, to)?)
    }

    /// The alarm configuration in force (its rules as they are now).
    pub fn config(&self) -> AlarmsConfig {
        self.engine().config().clone()
    }

    /// One page of the audit history (see [`AlarmStore::history_page`]).
    pub fn history_page(
        &self,
        from: Millis,
        to: Millis,
        bed: Option<&str>,
        limit: usize,
        cursor: Option<super::store::HistoryCursor>,
    ) -> Result<super::store::HistoryPage, AlarmError> {
        Ok(self.store.history_page(from, to, bed, limit, cursor)?)
    }

    pub fn rules(&self) -> RuleSet {
        self.engine().rules().clone()
    }

    /// Replaces the rules (validated first), keeps them across restarts, and records who.
    pub fn set_rules(&self, rules: RuleSet, user: &str) -> Result<(), AlarmError> {
        let mut engine = self.engine();
        engine.set_rules(rules.clone())?;
        let json = serde_json::to_vec(&rules).map_err(AlarmStoreError::from)?;
        self.rules_tree
            .insert(RULES_KEY, json.clone())
            .map_err(AlarmStoreError::from)?;
        let now = self.clock.now_ms();
        let mut key = now.to_be_bytes().to_vec();
        key.extend_from_slice(user.as_bytes());
        let audit = serde_json::json!({ "at": now, "by": user, "rules": rules });
        let audit = serde_json::to_vec(&audit).map_err(AlarmStoreError::from)?;
        self.rules_tree
            .insert([b"audit/".as_slice(), &key].concat(), audit)
            .map_err(AlarmStoreError::from)?;
        tracing::info!(user, "alarm rules changed");
        Ok(())
    }

    /// Live transitions (for SSE); a receiver that falls behind sees `Lagged` and must resync.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Transition>> {
        self.live.subscribe()
    }

    /// Waits until every transition committed so far has been announced.
    pub async fn announced(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.announce_tx.send(Pending {
            transitions: Vec::new(),
            received_at: None,
            barrier: Some(tx),
        });
        if sent.is_ok() {
            let _ = rx.await;
        }
    }

    pub fn ward(&self) -> &str {
        &self.ward
    }

    /// Ticks once a second until `cancel`.
    pub async fn run_ticker(self: Arc<Self>, cancel: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = cancel.cancelled() => return,
            }
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || this.tick()).await;
        }
    }
}

/// Keeps the guard alive until the commit is done, then releases it.
fn drop_guard_after<T, G>(r: T, guard: G) -> T {
    drop(guard);
    r
}

fn kind_str(a: &Alarm) -> &'static str {
    a.kind.as_str()
}

impl StoredObserver for AlarmService {
    fn on_stored(&self, observations: &[Observation]) {
        let received = observations.iter().map(|o| o.received_at).min();
        let r = self.run(received, |e, now| {
            let mut out = Vec::new();
            for o in observations {
                out.extend(e.on_observation(o, now));
            }
            Ok(out)
        });
        if let Err(e) = r {
            tracing::error!(error = %e, "alarm evaluation failed");
        }
    }
}

#[cfg(test)]
mod tests;
