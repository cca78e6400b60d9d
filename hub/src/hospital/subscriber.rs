//! The hospital view's cluster subscription: MQTT 3.1.1, a persistent session (the broker
//! keeps QoS 1 messages while the view is away), `wardhub/v1/sites/+/wards/+/#` at QoS 1, and
//! manual acknowledgements: a message is acknowledged only once it is applied, and, for
//! alarms and health, saved and flushed; the rest is saved once a second.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{Event, Incoming, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::Clock;

use super::metrics::HospitalMetrics;
use super::store::HospitalStore;
use super::view::{Applied, View};
use crate::uplink::client::Login;
use crate::uplink::config::ServerUrl;
use crate::uplink::envelope::{Envelope, Kind, Topics, SCHEMA};

/// The subscription's parts.
pub struct Subscriber {
    pub servers: Vec<ServerUrl>,
    pub login: Login,
    pub view: Arc<Mutex<View>>,
    pub store: Arc<HospitalStore>,
    pub metrics: HospitalMetrics,
    pub clock: Arc<dyn Clock>,
    pub keep: Duration,
}

impl Subscriber {
    fn options(&self, server: &ServerUrl) -> MqttOptions {
        let mut o = MqttOptions::new(&self.login.client_id, &server.host, server.port);
        o.set_keep_alive(self.login.keep_alive)
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_max_packet_size(self.login.max_packet_bytes, self.login.max_packet_bytes)
            .set_inflight(self.login.max_inflight);
        if server.tls {
            if let Some(tls) = &self.login.tls {
                o.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
            }
        }
        if let Some(u) = &self.login.username {
            o.set_credentials(u, self.login.password.clone().unwrap_or_default());
        }
        o
    }

    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let mut next = 0usize;
        let mut connected_before = false;
        let mut backoff = Duration::from_millis(200);
        let mut seq = 0u32;
        let mut pruned_at = tokio::time::Instant::now();
        loop {
            let server = &self.servers[next % self.servers.len()];
            let (client, mut events) = rumqttc::AsyncClient::new(self.options(server), 256);
            let mut net = rumqttc::NetworkOptions::new();
            net.set_connection_timeout(self.login.connect_timeout.as_secs().max(1));
            events.set_network_options(net);
            let _ = client.try_subscribe(Topics::ALL, QoS::AtLeastOnce);
            let mut dirty: Vec<(String, String)> = Vec::new();
            let mut save_tick = tokio::time::interval(Duration::from_secs(1));
            let lost = loop {
                tokio::select! {
                    ev = events.poll() => match ev {
                        Ok(Event::Incoming(Incoming::ConnAck(a))) => {
                            if a.code != rumqttc::ConnectReturnCode::Success {
                                break format!("CONNACK {:?}", a.code);
                            }
                            if connected_before {
                                self.metrics.reconnects.inc();
                            }
                            connected_before = true;
                            backoff = Duration::from_millis(200);
                            self.metrics.connected.set(1);
                            tracing::info!(server = %server, session_present = a.session_present, "hospital: connected to the cluster");
                        }
                        Ok(Event::Incoming(Incoming::Publish(p))) => {
                            // Resend requests (ours and others') share the wards' topics.
                            let topic = p.topic.as_str();
                            if !Topics::is_resend(topic) {
                                self.handle(&p.payload, &mut dirty, &mut seq).await;
                            }
                            if let Err(e) = client.try_ack(&p) {
                                break e.to_string();
                            }
                        }
                        Ok(_) => {}
                        Err(e) => break e.to_string(),
                    },
                    _ = save_tick.tick() => {
                        self.repair(&client);
                        self.save(&mut dirty, &[], &mut seq);
                        if pruned_at.elapsed() > Duration::from_secs(60) {
                            pruned_at = tokio::time::Instant::now();
                            let before = self.clock.now_ms() - i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX);
                            if let Err(e) = self.store.prune(before) {
                                tracing::error!(error = %e, "hospital: pruning old transitions failed");
                            }
                        }
                    }
                    () = cancel.cancelled() => {
                        self.save(&mut dirty, &[], &mut seq);
                        let _ = self.store.flush().await;
                        let _ = client.try_disconnect();
                        let _ = tokio::time::timeout(Duration::from_millis(500), async {
                            while events.poll().await.is_ok() {}
                        }).await;
                        self.metrics.connected.set(0);
                        return;
                    }
                }
            };
            self.metrics.connected.set(0);
            self.save(&mut dirty, &[], &mut seq);
            tracing::warn!(server = %server, error = %lost, "hospital: cluster connection lost; trying the next broker");
            next += 1;
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = cancel.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Asks the ward hubs again for what went missing on the way (view.rs: repair).
    fn repair(&self, client: &rumqttc::AsyncClient) {
        let (asks, repaired, lost) = {
            let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
            let asks = view.repairs(self.clock.now_ms());
            (asks, view.repaired, view.lost)
        };
        self.metrics.repaired.set(repaired as i64);
        self.metrics.lost.set(lost as i64);
        for r in asks {
            let topic = Topics::new(&r.site, &r.ward).resend();
            let body = serde_json::to_vec(&r).expect("serialisable");
            tracing::warn!(site = %r.site, ward = %r.ward, from = r.from, to = r.to, "hospital: messages missing on the way; asking the ward hub again");
            self.metrics.resend_requests.inc();
            if client
                .try_publish(topic, QoS::AtLeastOnce, false, body)
                .is_err()
            {
                return;
            }
        }
    }

    fn save(
        &self,
        dirty: &mut Vec<(String, String)>,
        transitions: &[(String, String, crate::alarms::Transition)],
        seq: &mut u32,
    ) {
        if dirty.is_empty() && transitions.is_empty() {
            return;
        }
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = self
            .store
            .save(&view, dirty, transitions, self.clock.now_ms(), seq)
        {
            tracing::error!(error = %e, "hospital: saving the view failed");
        }
        dirty.clear();
    }

    /// Applies one message; alarms and health are saved and flushed before it is acknowledged.
    async fn handle(&self, payload: &[u8], dirty: &mut Vec<(String, String)>, seq: &mut u32) {
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(e) => e,
            Err(e) => {
                self.metrics.invalid.inc();
                tracing::warn!(error = %e, bytes = payload.len(), "hospital: not an uplink envelope; skipped");
                return;
            }
        };
        if envelope.schema != SCHEMA {
            self.metrics.invalid.inc();
            tracing::warn!(schema = %envelope.schema, "hospital: unknown envelope schema; skipped");
            return;
        }
        let now = self.clock.now_ms();
        let (applied, wards) = {
            let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
            let applied = view.apply(&envelope, now);
            (applied, view.wards.len())
        };
        self.metrics.wards.set(wards as i64);
        match applied {
            Applied::Duplicate => self.metrics.duplicates.inc(),
            Applied::New => {
                self.metrics
                    .messages
                    .with_label_values(&[envelope.kind.as_str()])
                    .inc();
                let ward = (envelope.site.clone(), envelope.ward.clone());
                if !dirty.contains(&ward) {
                    dirty.push(ward.clone());
                }
                if matches!(envelope.kind, Kind::Alarm | Kind::Health) {
                    let mut transitions = Vec::new();
                    if envelope.kind == Kind::Alarm {
                        self.metrics
                            .alarm_delivery_seconds
                            .observe((now - envelope.queued_at).max(0) as f64 / 1000.0);
                        if let Ok(t) = serde_json::from_value(envelope.body.clone()) {
                            transitions.push((ward.0, ward.1, t));
                        }
                    }
                    self.save(dirty, &transitions, seq);
                    if let Err(e) = self.store.flush().await {
                        tracing::error!(error = %e, "hospital: flushing the view failed");
                    }
                }
            }
        }
    }
}
