//! The live alarm stream (SSE) the dashboard listens to.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::http::AppState;

/// Server-sent events: first a `snapshot` of the open alarms, then every `transition`. A
/// client too slow to keep up gets a `resync` event and the stream ends: it reconnects and
/// starts again from a snapshot, rather than slowing the hub down.
pub(super) async fn stream(
    State(s): State<AppState>,
    credential: Option<axum::Extension<crate::http::access::Credential>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = s.alarms.subscribe();
    let snapshot = json!({ "alarms": s.alarms.open_alarms() });
    let first = SseEvent::default()
        .event("snapshot")
        .data(snapshot.to_string());
    let telemetry = s.telemetry.clone();
    telemetry.live_clients.inc();
    let guard = Arc::new(LiveGuard(telemetry));
    let cancel = s.shutdown.clone();
    struct St {
        rx: tokio::sync::broadcast::Receiver<Arc<crate::alarms::Transition>>,
        first: Option<SseEvent>,
        done: bool,
        cancel: tokio_util::sync::CancellationToken,
        _guard: Arc<LiveGuard>,
        /// Checked every few seconds: a revoked token or an ended session ends the stream.
        credential: Option<crate::http::access::Credential>,
        state: AppState,
        checked: tokio::time::Instant,
    }
    let st = St {
        rx,
        first: Some(first),
        done: false,
        cancel,
        _guard: guard,
        credential: credential.map(|c| c.0),
        state: s.clone(),
        checked: tokio::time::Instant::now(),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if let Some(f) = st.first.take() {
            return Some((Ok(f), st));
        }
        if st.done {
            return None;
        }
        let next = loop {
            let recheck = st.checked + CREDENTIAL_RECHECK;
            tokio::select! {
                r = st.rx.recv() => break r,
                _ = st.cancel.cancelled() => return None,
                _ = tokio::time::sleep_until(recheck) => {
                    st.checked = tokio::time::Instant::now();
                    if st.credential.as_ref().is_some_and(|c| !c.still_valid(&st.state)) {
                        return None;
                    }
                }
            }
        };
        let ev = match next {
            Ok(t) => SseEvent::default()
                .event("transition")
                .data(serde_json::to_string(&*t).unwrap_or_default()),
            Err(RecvError::Lagged(n)) => {
                st.done = true;
                SseEvent::default()
                    .event("resync")
                    .data(json!({ "missed": n }).to_string())
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ev), st))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

/// How often an open live stream checks that its login is still good.
const CREDENTIAL_RECHECK: Duration = Duration::from_secs(5);

struct LiveGuard(Arc<crate::telemetry::Telemetry>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live_clients.dec();
    }
}
