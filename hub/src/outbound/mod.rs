//! The hub's outbound integrations' shared machinery: a durable, bounded outbox per
//! integration in the hub's sled database ([`outbox`]), its metrics ([`metrics`]), and the
//! MLLP sender that drains one destination of it, one message in flight, leaving the
//! outbox only on an AA ([`mllp_sender`]); the retry back-off ([`backoff`]). Used by the EMR
//! exports (`crate::emr`: IHE PCD-01, FHIR) and the alarm dissemination's IHE PCD ACM
//! (`crate::dissemination`).

pub mod backoff;
pub mod metrics;
pub mod mllp_sender;
pub mod outbox;

pub use metrics::OutboundMetrics;
pub use outbox::{Dest, Entry, Outbox, OutboxError};
