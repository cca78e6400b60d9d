//! The metrics listener: Prometheus text on `GET /metrics`, on its own address
//! (`[metrics] listen`, default `127.0.0.1:9464`).
//!
//! A listener of its own lets hospital IT expose the API to the ward network and metrics to
//! the monitoring network only (or neither beyond loopback), and keeps scrapes out of the API's
//! access path. Nothing here needs authentication: the text holds no patient data and no
//! device ids (labels are bounded, see [`crate::telemetry`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Weak};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::registry::model::DeviceState;
use crate::registry::ListFilter;
use crate::registry::SledRegistry;
use crate::telemetry::{DeviceCounts, Telemetry};

/// The content type of the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics listener's router: `GET /metrics`, and a pointer to it at `/`.
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/",
            get(|| async { "wardhub: Prometheus metrics are at /metrics\n" }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found; metrics are at /metrics\n",
            )
        })
        .with_state(telemetry)
}

async fn metrics(State(t): State<Arc<Telemetry>>) -> Response {
    // Rendering runs the scrape hooks (device counts read the registry under its lock) and
    // reads /proc: off the async threads.
    match tokio::task::spawn_blocking(move || t.render()).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render metrics\n").into_response()
        }
    }
}

/// Serves [`router`] on `listener` until `cancel` fires.
pub fn serve(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let served = axum::serve(listener, router(telemetry))
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics server failed");
        }
    })
}

/// Devices in service and online, by kind.
pub fn device_counts(registry: &SledRegistry) -> BTreeMap<String, DeviceCounts> {
    let mut counts: BTreeMap<String, DeviceCounts> = BTreeMap::new();
    let active = ListFilter {
        state: Some(DeviceState::Active),
        ..ListFilter::default()
    };
    for d in registry.list(&active) {
        let c = counts.entry(d.kind).or_default();
        c.registered += 1;
        c.online += u64::from(d.live.online);
    }
    counts
}

/// Keeps the gauges that are read rather than maintained current at every scrape: devices
/// registered and online (counted from the registry, held weakly so telemetry keeps nothing
/// alive) and the space left where the data lives.
pub fn collect_on_scrape(
    telemetry: &Telemetry,
    registry: &Arc<SledRegistry>,
    store: &Arc<crate::store::SledStore>,
    data_dir: &Path,
) {
    let registry: Weak<SledRegistry> = Arc::downgrade(registry);
    let store = Arc::downgrade(store);
    let data_dir = data_dir.to_owned();
    telemetry.on_scrape(move |t| {
        if let Some(r) = registry.upgrade() {
            t.set_device_counts(&device_counts(&r));
        }
        // On every scrape, so it is right from the first one (it read 0 until the first
        // retention run, 10 minutes after start).
        if let Some(s) = store.upgrade() {
            t.db_size_bytes
                .set(i64::try_from(s.size_on_disk()).unwrap_or(i64::MAX));
            t.store_open_chunk_bytes
                .set(i64::try_from(s.open_chunk_bytes()).unwrap_or(i64::MAX));
            t.store_corrupt_values
                .set(i64::try_from(s.corrupt_count()).unwrap_or(i64::MAX));
        }
        match rustix::fs::statvfs(&data_dir) {
            Ok(fs) => {
                let bytes = |blocks: u64| {
                    i64::try_from(blocks.saturating_mul(fs.f_frsize)).unwrap_or(i64::MAX)
                };
                t.data_dir_available_bytes.set(bytes(fs.f_bavail));
                t.data_dir_capacity_bytes.set(bytes(fs.f_blocks));
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the data directory's filesystem"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn served(t: Arc<Telemetry>) -> (std::net::SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        serve(listener, t, cancel.clone());
        (addr, cancel)
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text() {
        let t = Arc::new(Telemetry::new());
        t.observations_stored.inc_by(3);
        let (addr, cancel) = served(t).await;
        let resp = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("# TYPE wardhub_observations_stored_total counter"),
            "{text}"
        );
        assert!(
            text.contains("wardhub_observations_stored_total 3"),
            "{text}"
        );
        let resp = reqwest::get(format!("http://{addr}/api/v1/alarms"))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404);
        cancel.cancel();
    }
}
