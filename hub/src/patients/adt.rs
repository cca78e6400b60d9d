//! The hospital's ADT feed into the patient context: [`AdtHandler`] for the MLLP listener of
//! `wardhub_adapters::hl7::adt_listener`. Its AA is sent once the event is durable.

use wardhub_adapters::adapter::BoxFuture;
use wardhub_adapters::hl7::adt::{AdtEvent, AdtKind};
use wardhub_adapters::hl7::adt_listener::{AdtHandler, AdtRefusal};
use wardhub_adapters::hl7::message::AckCode;

use super::{Kind, PatientContext, PatientError, Source};

impl AdtHandler for PatientContext {
    fn apply(&self, event: AdtEvent) -> BoxFuture<'_, Result<(), AdtRefusal>> {
        Box::pin(async move {
            let trigger = event.trigger.clone();
            let kind = match event.kind {
                AdtKind::Admit => Kind::Admit,
                // A04 registers a patient; with a bed of ours it is an arrival.
                AdtKind::Register if event.location.is_some() => Kind::Admit,
                AdtKind::Register | AdtKind::Update => Kind::Update,
                AdtKind::Transfer => Kind::Transfer,
                AdtKind::Discharge => Kind::Discharge,
                AdtKind::CancelAdmit => Kind::CancelAdmit,
                AdtKind::CancelTransfer => Kind::CancelTransfer,
                AdtKind::CancelDischarge => Kind::CancelDischarge,
            };
            let bed = event.location.as_ref().and_then(|l| self.resolve(l));
            // A move out of one of this hub's beds (PV1-6), or a discharge from one, concerns
            // this hub even when the new place is elsewhere.
            let from_here = event
                .prior_location
                .as_ref()
                .and_then(|l| self.resolve(l))
                .is_some();
            let here = bed.is_some();
            // An update or a discharge keeps no bed of its own: only the patient matters.
            let bed = match kind {
                Kind::Admit | Kind::Transfer => bed,
                _ => None,
            };
            let recorded = self
                .record(
                    kind,
                    event.patient,
                    bed,
                    from_here || here,
                    Some(event.occurred_at),
                    Source::Adt {
                        application: event.sending_application,
                        control_id: event.control_id,
                        trigger: trigger.clone(),
                    },
                )
                .await;
            match recorded {
                Ok(_) => Ok(()),
                Err(PatientError::Invalid(detail)) => {
                    self.metrics.event(&trigger, "refused");
                    Err(AdtRefusal {
                        code: AckCode::Error,
                        hl7_code: 101,
                        segment: Some(("PID", 1)),
                        field: Some(3),
                        detail,
                    })
                }
                Err(e) => {
                    self.metrics.event(&trigger, "refused");
                    tracing::error!(error = %e, "an ADT event could not be stored");
                    Err(AdtRefusal {
                        code: AckCode::Error,
                        hl7_code: 207,
                        segment: None,
                        field: None,
                        detail: "the event could not be stored; send it again".into(),
                    })
                }
            }
        })
    }
}
