//! A device's last will, published when its connection ends without a clean DISCONNECT.

use std::time::Duration;

use wardhub_adapters::mqtt_json::PublishOutcome;

use super::Device;
use crate::broker::edge::packet::Will;

impl Device<'_> {
    /// Publishes the will through the same road as any publish of the device, after its
    /// delay (MQTT 5: the earlier of the Will Delay Interval and the session's end) unless the
    /// device connects again first.
    pub(super) fn publish_will(&self, will: Will, session_expiry: u32) {
        let delay = Duration::from_secs(u64::from(will.delay_secs.min(session_expiry)));
        let wait = if delay.is_zero() {
            None
        } else {
            self.config.sessions.will_waits(self.id.as_str())
        };
        let (ingest, id, forward) = (
            self.ingest.clone(),
            self.id.clone(),
            self.config.forward.clone(),
        );
        tokio::spawn(async move {
            if let Some(token) = wait {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = token.cancelled() => return,
                }
            }
            tracing::info!(device = %id, "last will published");
            let Ok(pending) = ingest.publish(&id, &will.topic, will.payload.clone()).await else {
                return;
            };
            if let PublishOutcome::Accepted { .. } = pending.outcome().await {
                if let Some(f) = forward {
                    f(&will.topic, will.payload, will.retain);
                }
            }
        });
    }
}
