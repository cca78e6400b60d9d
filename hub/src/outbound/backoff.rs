//! The outbound senders' retry back-off: doubling from `retry.min` to `retry.max`, with up to 20 %
//! jitter so that hubs restarted together do not retry in step.

use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::duration::humane;

/// How a destination retries (`retry = { min = "1s", max = "60s" }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    #[serde(with = "humane")]
    pub min: Duration,
    #[serde(with = "humane")]
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// Sleeps the back-off (doubling it, up to `max`, with jitter); `true` when stopped.
pub async fn sleep_or_stop(
    cancel: &CancellationToken,
    backoff: &mut Duration,
    max: Duration,
) -> bool {
    let mut b = [0u8; 1];
    let _ = getrandom::fill(&mut b);
    let jitter = backoff.mul_f64(f64::from(b[0]) / 255.0 * 0.2);
    let wait = *backoff + jitter;
    *backoff = (*backoff * 2).min(max);
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(wait) => false,
    }
}
