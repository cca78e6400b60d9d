//! Answering one message: [`Shared::handle`] checks that the connection may send as the
//! message's MSH-3, decodes it, hands its observations to the pipeline, waits until they are
//! durable (or refused), and builds the ACK the module docs of [`crate::hl7::adapter`]
//! describe, with its ERR segments capped. Connections and their framing are the parent's job.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::{Shared, NAME};
use crate::adapter::Placement;
use crate::hl7::message::{build_ack, AckCode, AckError, AckSender, Header};
use crate::hl7::oru::{self, hl7_error_code, DecodedOru};
use crate::hl7::peers::Admitted;
use crate::model::{DeviceId, Reject, RejectReason};

/// At most this many ERR segments in one ACK; the last one says how many more there were.
const MAX_ERR_SEGMENTS: usize = 20;

impl Shared {
    fn sender(&self) -> (String, i64) {
        let now = self.ctx.clock.now_ms();
        let seq = self.ack_seq.fetch_add(1, Ordering::Relaxed);
        // At most 20 characters, the MSH-10 length of HL7 2.3.
        (format!("WH{:x}{:04x}", now, seq & 0xffff), now)
    }

    fn ack(&self, original: Option<&Header>, code: AckCode, errors: &[AckError]) -> String {
        let (control_id, now) = self.sender();
        build_ack(
            original,
            code,
            errors,
            &AckSender {
                application: &self.config.application,
                control_id: &control_id,
                now,
            },
        )
    }

    pub(super) fn too_large(&self, head: &[u8]) -> String {
        let reject = Reject::new(
            RejectReason::TooLarge,
            format!("message larger than {} bytes", self.config.max_frame_bytes),
        );
        self.ctx.events.rejected(NAME, None, &reject);
        let header = Header::read(head).ok();
        let error = AckError {
            segment: None,
            field: None,
            code: hl7_error_code(RejectReason::TooLarge),
            detail: reject.detail,
        };
        self.ack(header.as_ref(), AckCode::Reject, &[error])
    }

    /// Decodes, stores and answers one message.
    pub(super) async fn handle(
        &self,
        frame: &[u8],
        peer: SocketAddr,
        admitted: &Admitted,
    ) -> String {
        let events = &self.ctx.events;
        events.message_received(NAME, frame.len());
        if let Ok(header) = Header::read(frame) {
            let sender = header
                .sending_application
                .first()
                .map(String::as_str)
                .unwrap_or("");
            if !admitted.may_send_as(sender) {
                let reject = Reject::new(
                    RejectReason::Unsupported,
                    format!(
                        "this connection ({}) may not send as MSH-3 {sender:?}",
                        admitted.name()
                    ),
                );
                events.rejected(NAME, None, &reject);
                events.connection_refused(NAME, "sender_not_allowed");
                tracing::warn!(adapter = NAME, %peer, peer_name = %admitted.name(), "message refused: sending application not allowed for this peer");
                let error = AckError {
                    segment: Some(("MSH", 1)),
                    field: Some(3),
                    code: 207,
                    detail: reject.detail,
                };
                return self.ack(Some(&header), AckCode::Reject, &[error]);
            }
        }
        let now = self.ctx.clock.now_ms();
        let decoded = match oru::decode(frame, now, &self.opts) {
            Ok(d) => d,
            Err(e) => {
                events.rejected(NAME, None, &e.reject);
                tracing::debug!(
                    adapter = NAME,
                    %peer,
                    reason = %e.reject.reason,
                    ack = e.ack.as_str(),
                    "message refused"
                );
                return self.ack(e.header.as_deref(), e.ack, &[e.error]);
            }
        };
        let (header, code, errors) = self.store(decoded, peer, admitted).await;
        self.ack(Some(&header), code, &errors)
    }

    async fn store(
        &self,
        mut d: DecodedOru,
        peer: SocketAddr,
        admitted: &Admitted,
    ) -> (Header, AckCode, Vec<AckError>) {
        let events = &self.ctx.events;
        let mut errors = Errors::default();
        // Gateway mode: the message's bed is its PV1-3 bed (checked by the hub against the
        // registry), so a message without one cannot be placed.
        let sender = d
            .header
            .sending_application
            .first()
            .cloned()
            .unwrap_or_default();
        let gateway = admitted.gateway_for(&sender);
        let placement = match (&gateway, &d.bed_claim) {
            (None, _) => None,
            (Some((name, auto)), Some(c)) if !c.bed.trim().is_empty() => Some(Placement {
                gateway: name.clone(),
                point_of_care: c.point_of_care.trim().to_owned(),
                bed: c.bed.trim().to_owned(),
                auto_create: *auto,
            }),
            (Some(_), _) => {
                if !d.observations.is_empty() {
                    let reject = Reject::new(
                        RejectReason::Schema,
                        "gateway mode: PV1-3 must name the bed (point of care^room^bed)",
                    );
                    events.rejected(NAME, None, &reject);
                    errors.push(AckError {
                        segment: Some(("PV1", 1)),
                        field: Some(3),
                        code: 101,
                        detail: reject.detail,
                    });
                    d.observations.clear();
                }
                None
            }
        };
        if gateway.is_some() {
            // The gateway's PV1-3 is the placement itself, not a claim to cross-check.
            d.bed_claim = None;
        }
        for s in &d.skipped {
            events.row_skipped(
                NAME,
                s.device.as_ref().map(DeviceId::as_str),
                s.reason.as_str(),
            );
        }
        for r in &d.rejects {
            events.rejected(NAME, r.device.as_ref().map(DeviceId::as_str), &r.reject);
            errors.push(AckError {
                segment: Some(("OBX", r.obx)),
                field: Some(r.field),
                code: hl7_error_code(r.reject.reason),
                detail: r.reject.detail.clone(),
            });
        }
        if let Some(claim) = &d.bed_claim {
            let mut seen: Vec<&DeviceId> = Vec::new();
            for o in &d.observations {
                if !seen.contains(&&o.device_id) {
                    seen.push(&o.device_id);
                    events.bed_claimed(
                        NAME,
                        o.device_id.as_str(),
                        &claim.point_of_care,
                        &claim.bed,
                    );
                }
            }
        }
        let n = d.observations.len();
        if n > 0 {
            match self
                .ctx
                .sink
                .submit_durable_placed(NAME, d.observations, placement)
                .await
            {
                Err(_) => errors.push(internal(
                    "wardhub is not storing data now; nothing of this message was stored",
                )),
                Ok(report) if report.failed.is_some() => {
                    // The storage error text is for the hub's log, not for the sender.
                    tracing::warn!(adapter = NAME, %peer, "the pipeline could not store a message");
                    errors.push(internal(
                        "storage failed; nothing of this message was stored",
                    ));
                }
                Ok(report) => {
                    // The pipeline counted these refusals (an unknown or retired device):
                    // counting them here too counted each twice.
                    for (i, reject) in &report.rejected {
                        let obx = d.obx_of.get(*i).copied().unwrap_or(0);
                        let field = match reject.reason {
                            RejectReason::UnknownDevice | RejectReason::BadDeviceId => Some(18),
                            _ => None,
                        };
                        errors.push(AckError {
                            segment: Some(("OBX", obx)),
                            field,
                            code: hl7_error_code(reject.reason),
                            detail: format!("OBX {obx}: {}", reject.detail),
                        });
                    }
                    if report.stored + report.rejected.len() < n {
                        errors.push(internal("not every observation was stored"));
                    }
                }
            }
        }
        let code = if errors.is_empty() {
            AckCode::Accept
        } else {
            AckCode::Error
        };
        tracing::debug!(
            adapter = NAME,
            %peer,
            control_id = %d.header.control_id,
            observations = n,
            refused = errors.count,
            ack = code.as_str(),
            "message answered"
        );
        (d.header, code, errors.finish())
    }
}

fn internal(detail: &str) -> AckError {
    AckError {
        segment: None,
        field: None,
        code: hl7_error_code(RejectReason::Internal),
        detail: detail.to_owned(),
    }
}

/// ERR segments, capped.
#[derive(Default)]
struct Errors {
    list: Vec<AckError>,
    count: usize,
}

impl Errors {
    fn push(&mut self, e: AckError) {
        self.count += 1;
        if self.list.len() < MAX_ERR_SEGMENTS {
            self.list.push(e);
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn finish(mut self) -> Vec<AckError> {
        if self.count > self.list.len() {
            let more = self.count - self.list.len();
            let code = self.list.last().map_or(207, |e| e.code);
            self.list.push(AckError {
                segment: None,
                field: None,
                code,
                detail: format!("and {more} more errors"),
            });
        }
        self.list
    }
}
