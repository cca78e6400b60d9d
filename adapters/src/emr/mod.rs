//! The EMR exports' pure builders: what the hub sends to chart device values to the patient
//! record. No I/O; the hub's outbox and senders are around them.
//!
//! Layout:
//! - [`pcd01`]: an IHE PCD-01 ORU^R01 (HL7 v2.6) from a [`ChartBatch`], for the hospital's
//!   interface engine over MLLP;
//! - [`fhir`]: a FHIR R4 transaction Bundle (Patient, Device, vital-signs Observations) from
//!   the same batch, and the Observations and searchset Bundle of the hub's own read endpoint.
//!
//! Both are deterministic: the same batch gives byte-identical output, so a batch resent after
//! a lost acknowledgement is recognised (MSH-10, the Observations' ids) instead of being
//! charted twice.
//!
//! ```
//! use wardhub_adapters::emr::{pcd01, fhir};
//! use wardhub_adapters::model::charting::{ChartBatch, ChartMethod, ChartedValue};
//! use wardhub_adapters::model::{metric_by_name, Location, Patient, Status};
//!
//! let batch = ChartBatch {
//!     id: "b42".into(),
//!     patient: Patient { id: "MRN1".into(), ..Default::default() },
//!     location: Location::default(),
//!     values: vec![ChartedValue {
//!         id: "b42.0".into(),
//!         device_id: "mon-7".into(),
//!         metric: metric_by_name("spo2").unwrap(),
//!         value: Some(97.0),
//!         status: Status::Valid,
//!         observed_at: 1_795_168_800_000,
//!         period: None,
//!         channel: None,
//!         method: ChartMethod::Every,
//!         count: 1,
//!     }],
//!     created_at: 1_795_168_801_000,
//! };
//! let oru = pcd01::build_oru(&batch, &pcd01::Pcd01Options::default());
//! assert!(oru.contains("OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.0.1|97|%^%^UCUM|"));
//! let bundle = fhir::transaction(&batch, &fhir::FhirOptions::default());
//! assert_eq!(bundle["entry"][2]["request"]["url"], "Observation/b42.0");
//! ```
//!
//! [`ChartBatch`]: crate::model::charting::ChartBatch

pub mod fhir;
pub mod pcd01;
#[cfg(test)]
mod testing;

use crate::model::charting::{ChartMethod, ChartedValue};
use crate::model::format_rfc3339;

/// How a periodic value was chosen, in words for a clinician (an NTE in HL7, a `note` in
/// FHIR); `None` for [`ChartMethod::Every`].
pub(crate) fn method_note(v: &ChartedValue) -> Option<String> {
    let period = v.period.map(|(start, end)| {
        format!(
            " from {} until {}",
            format_rfc3339(start),
            format_rfc3339(end)
        )
    });
    let period = period.as_deref().unwrap_or("");
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    match v.method {
        ChartMethod::Every => None,
        ChartMethod::Median => Some(format!(
            "median of {} valid value{}{period}",
            v.count,
            plural(v.count)
        )),
        ChartMethod::Last => Some(format!(
            "last valid value of {} value{}{period}",
            v.count,
            plural(v.count)
        )),
    }
}
