//! [`RegistryEvents`]: the adapters' telemetry, plus what the registry learns from it.
//!
//! Delegates every event to the hub's [`Telemetry`] and also counts each device's rejected
//! inputs (for `wardhub device problems`) and cross-checks bed claims (HL7 PV1-3) against the
//! binding: the binding always wins; a mismatch is logged (device and beds, never patient
//! data) and counted in `wardhub_bed_claim_mismatches_total`.

use std::sync::Arc;

use prometheus::IntCounterVec;
use wardhub_adapters::adapter::AdapterEvents;
use wardhub_adapters::model::Reject;

use super::SledRegistry;
use crate::telemetry::Telemetry;

/// [`AdapterEvents`] for the adapters' context.
pub struct RegistryEvents {
    telemetry: Arc<Telemetry>,
    registry: Arc<SledRegistry>,
    mismatches: IntCounterVec,
}

impl std::fmt::Debug for RegistryEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryEvents").finish_non_exhaustive()
    }
}

impl RegistryEvents {
    pub fn new(telemetry: Arc<Telemetry>, registry: Arc<SledRegistry>) -> RegistryEvents {
        let mismatches = IntCounterVec::new(
            prometheus::Opts::new(
                "wardhub_bed_claim_mismatches_total",
                "Messages whose claimed bed (HL7 PV1-3) differs from the device's binding, by adapter.",
            ),
            &["adapter"],
        )
        .expect("valid metric");
        // A second hub in one process (tests) registers in its own Telemetry; a failure here
        // only means the metric is not exported.
        if let Err(e) = telemetry.registry.register(Box::new(mismatches.clone())) {
            tracing::debug!(error = %e, "bed claim metric not registered");
        }
        RegistryEvents {
            telemetry,
            registry,
            mismatches,
        }
    }

    pub fn mismatches(&self, adapter: &str) -> u64 {
        self.mismatches.with_label_values(&[adapter]).get()
    }
}

/// Whether a claim agrees with the binding: an empty part of the claim agrees with anything;
/// a point of care may name the ward or be absent.
pub fn claim_matches(binding: Option<(&str, &str)>, point_of_care: &str, bed: &str) -> bool {
    if point_of_care.is_empty() && bed.is_empty() {
        return true;
    }
    let Some((ward, bound_bed)) = binding else {
        // A claim for an unbound device: nothing to agree with.
        return false;
    };
    (bed.is_empty() || bed.eq_ignore_ascii_case(bound_bed))
        && (point_of_care.is_empty() || point_of_care.eq_ignore_ascii_case(ward))
}

impl AdapterEvents for RegistryEvents {
    fn message_received(&self, adapter: &'static str, bytes: usize) {
        self.telemetry.message_received(adapter, bytes);
    }

    fn row_skipped(&self, adapter: &'static str, device: Option<&str>, reason: &'static str) {
        self.telemetry.row_skipped(adapter, device, reason);
    }

    fn rejected(&self, adapter: &'static str, device: Option<&str>, reject: &Reject) {
        if let Some(d) = device {
            self.registry.rejected(d);
        }
        self.telemetry.rejected(adapter, device, reject);
    }

    fn connection(&self, adapter: &'static str, open: bool) {
        self.telemetry.connection(adapter, open);
    }

    fn skipped_bytes(&self, adapter: &'static str, bytes: usize) {
        self.telemetry.skipped_bytes(adapter, bytes);
    }

    fn connection_refused(&self, adapter: &'static str, limit: &'static str) {
        self.telemetry.connection_refused(adapter, limit);
    }

    fn bed_claimed(&self, adapter: &'static str, device: &str, point_of_care: &str, bed: &str) {
        let binding = self.registry.binding(device);
        if claim_matches(
            binding.as_ref().map(|(w, b)| (w.as_str(), b.as_str())),
            point_of_care,
            bed,
        ) {
            return;
        }
        self.mismatches.with_label_values(&[adapter]).inc();
        // The claimed values come from the message and say where a patient lies: they stay
        // out of the log (only that they differ, and the binding, are logged).
        let bound = binding.map_or_else(|| "unbound".to_owned(), |(w, b)| format!("{w}/{b}"));
        tracing::warn!(
            adapter,
            device,
            bound = %bound,
            "bed claim differs from the registry binding; the binding is used"
        );
    }
}
