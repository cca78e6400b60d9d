//! The retention task: every `every`, the store deletes what is past raw and rollup
//! retention, and the size gauges are updated.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::Clock;

use crate::store::SledStore;
use crate::telemetry::Telemetry;

pub(super) fn spawn_retention(
    store: Arc<SledStore>,
    telemetry: Arc<Telemetry>,
    clock: Arc<dyn Clock>,
    every: Duration,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let store = store.clone();
            let now = clock.now_ms();
            let size = store.size_on_disk();
            telemetry
                .db_size_bytes
                .set(i64::try_from(size).unwrap_or(i64::MAX));
            match tokio::task::spawn_blocking(move || store.enforce_retention(now)).await {
                Ok(Ok(r)) => {
                    telemetry
                        .retention_deleted
                        .with_label_values(&["raw"])
                        .inc_by(r.raw_deleted);
                    telemetry
                        .retention_deleted
                        .with_label_values(&["rollup"])
                        .inc_by(r.rollups_deleted);
                    if r.raw_deleted + r.rollups_deleted > 0 {
                        tracing::info!(
                            raw = r.raw_deleted,
                            rollups = r.rollups_deleted,
                            "retention"
                        );
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
                Err(e) => tracing::error!(error = %e, "retention task failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = cancel.cancelled() => return,
            }
        }
    });
}
