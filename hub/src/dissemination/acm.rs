//! IHE PCD ACM (`[dissemination.acm]`): every notification of an escalation chain also goes
//! to the hospital's Alarm Manager as a PCD-04 Report Alarm (ORU^R40) naming its recipient,
//! through a durable outbox and the shared MLLP sender (`crate::outbound`); the end of a
//! chain is reported too. The Alarm Manager's PCD-05 Report Alarm Status (ORA^R41) come back
//! to a listener of their own: delivered and read are recorded, accepted stops the chain
//! (as a tap on the phone page does), rejected and undeliverable send it on to the next step.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wardhub_adapters::acm::pcd04::{
    build_report_alarm, AcmAlarm, AcmKind, AcmPhase, AcmPriority, AcmState, Pcd04Options,
};
use wardhub_adapters::acm::pcd05::{AlarmStatus, DeliveryStatus};
use wardhub_adapters::acm::status_listener::{StatusHandler, StatusListenerConfig, StatusRefusal};
use wardhub_adapters::adapter::BoxFuture;
use wardhub_adapters::duration::humane;
use wardhub_adapters::model::Millis;

use super::Disseminator;
use crate::alarms::{Alarm, AlarmId, AlarmState, Kind, Priority};
use crate::outbound::backoff::Retry;
use crate::outbound::{Dest, Entry, Outbox};

/// `[dissemination.acm]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmConfig {
    /// `host:port` of the Alarm Manager's MLLP listener (PCD-04).
    pub connect: String,
    pub sending_application: String,
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    /// PID-3.4 when the patient context gave none.
    pub patient_authority: Option<String>,
    #[serde(with = "humane")]
    pub ack_timeout: Duration,
    pub error_attempts: u32,
    pub retry: Retry,
    pub outbox_max_bytes: u64,
    /// The listener for the Alarm Manager's PCD-05 statuses (off when absent).
    pub status: Option<StatusListenerConfig>,
}

impl Default for AcmConfig {
    fn default() -> Self {
        AcmConfig {
            connect: String::new(),
            sending_application: "WARDHUB".into(),
            sending_facility: String::new(),
            receiving_application: String::new(),
            receiving_facility: String::new(),
            patient_authority: None,
            ack_timeout: Duration::from_secs(10),
            error_attempts: 3,
            retry: Retry::default(),
            outbox_max_bytes: 64 << 20,
            status: None,
        }
    }
}

/// The ACM side of a disseminator.
pub(super) struct Acm {
    pub outbox: Arc<Outbox>,
    pub opts: Pcd04Options,
}

impl std::fmt::Debug for Acm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acm").finish_non_exhaustive()
    }
}

/// What a PCD-04 says of an alarm at one moment.
pub(super) fn acm_alarm(
    a: &Alarm,
    phase: AcmPhase,
    recipient: Option<&str>,
    patient: Option<wardhub_adapters::model::Patient>,
    now: Millis,
) -> AcmAlarm {
    let metric = a.metric.as_ref().map(|m| m.0);
    let text = match (metric, a.value, a.limit) {
        (Some(m), Some(v), Some(l)) => format!("{} {v} (limit {l})", m.refid),
        (Some(m), Some(v), None) => format!("{} {v}", m.refid),
        (Some(m), None, _) => m.refid.to_owned(),
        _ => format!("{:?} {:?}", a.kind, a.cause).to_lowercase(),
    };
    AcmAlarm {
        id: a.id.0,
        ward: a.ward.clone(),
        bed: a.bed.clone(),
        patient,
        device_id: a.device_id.as_str().to_owned(),
        priority: match a.priority {
            Priority::High => AcmPriority::High,
            Priority::Medium => AcmPriority::Medium,
            Priority::Low => AcmPriority::Low,
        },
        kind: match a.kind {
            Kind::Physiological => AcmKind::Physiological,
            Kind::Technical => AcmKind::Technical,
            Kind::Call => AcmKind::Call,
        },
        metric,
        value: a.value,
        limit: a.limit,
        text,
        phase,
        state: match (a.state, a.condition_present) {
            (AlarmState::Cleared, _) => AcmState::Inactive,
            (_, true) => AcmState::Active,
            (_, false) => AcmState::Latched,
        },
        acknowledged: a.state == AlarmState::Acknowledged,
        occurred_at: now,
        raised_at: a.raised_at,
        recipient: recipient.map(str::to_owned),
    }
}

impl Acm {
    /// Queues one PCD-04 (built now: the outbox holds what goes on the wire).
    pub fn queue(&self, alarm: &AcmAlarm, now: Millis) {
        let (seq, control_id) = self.outbox.next_id();
        let payload = build_report_alarm(alarm, &control_id, now, &self.opts);
        let entry = Entry {
            queued_at: now,
            batch_id: control_id,
            payload,
        };
        if let Err(e) = self.outbox.queue(vec![(Dest::Acm, seq, entry)], None) {
            tracing::error!(error = %e, alarm = alarm.id, "ACM outbox: a PCD-04 could not be queued");
        }
    }
}

impl StatusHandler for Disseminator {
    fn status(&self, s: AlarmStatus) -> BoxFuture<'_, Result<(), StatusRefusal>> {
        Box::pin(async move {
            let alarm = AlarmId(s.alarm_id);
            if !self.knows(alarm) {
                return Err(StatusRefusal::unknown_alarm());
            }
            let who = s
                .recipient
                .clone()
                .unwrap_or_else(|| "alarm-manager".into());
            let result = match s.status {
                st if st.is_accepted() => self.accept(alarm, &who).map(|_| ()),
                DeliveryStatus::Rejected | DeliveryStatus::Undeliverable => {
                    self.reject(alarm, &who).map(|_| ())
                }
                other => {
                    self.note(alarm, &who, &other.as_str().to_ascii_lowercase());
                    Ok(())
                }
            };
            // A status for a chain that has ended (accepted meanwhile on the phone) is only
            // recorded: the Alarm Manager did nothing wrong.
            if result.is_err() {
                self.note(alarm, &who, &s.status.as_str().to_ascii_lowercase());
            }
            Ok(())
        })
    }
}
