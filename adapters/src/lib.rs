//! # wardhub-adapters
//!
//! The canonical observation model of wardhub and the protocol adapters that produce it.
//!
//! Layout:
//! - [`model`] (the `wardhub-model` crate): [`Observation`], metrics (IEEE 11073 MDC codes), units,
//!   statuses, reject reasons, time helpers;
//! - [`adapter`]: the [`Adapter`] trait and its context (sink, bus, events);
//! - [`emr`]: the EMR exports' pure builders (IHE PCD-01 ORU^R01, FHIR R4 Bundles);
//! - [`mqtt_json`]: devices publishing JSON to `wardhub/v1/devices/{id}/obs`;
//! - [`hl7`]: HL7 v2 ORU^R01 over MLLP (IHE PCD-01);
//! - [`acm`]: IHE PCD Alarm Communication Management (PCD-04 alarms out, PCD-05 statuses in);
//! - [`net`]: connection limits per face and source; [`tls`]: reloadable rustls server configs.
//!
//! Decoders are pure and synchronous; adapters are the async loops around them.
//!
//! ```
//! use wardhub_adapters::model::metric_by_name;
//! let spo2 = metric_by_name("MDC_PULS_OXIM_SAT_O2").unwrap();
//! assert_eq!((spo2.code, spo2.unit), (150456, "%"));
//! ```

pub mod acm;
pub mod adapter;
pub mod emr;
pub mod hl7;
pub mod mqtt_json;
pub mod net;
pub mod tls;

/// The canonical model lives in its own crate ([`wardhub_model`]); re-exported here so an
/// adapter names it `crate::model`.
pub use wardhub_model as model;
pub use wardhub_model::duration;

pub use adapter::{
    Adapter, AdapterContext, AdapterEvents, Bus, BusMessage, Ingest, IngestReport, Placement, Sink,
};
pub use model::{DeviceId, Metric, Observation, Reject, RejectReason, Status};
