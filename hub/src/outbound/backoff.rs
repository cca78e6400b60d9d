//! The outbound senders' retry back-off: doubling from `retry.min` to `retry.max`, with up to 20 %
//! jitter so that hubs restarted together do not retry in step.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

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
