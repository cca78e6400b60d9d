//! The FHIR export's sender: the outbox's oldest transaction Bundle, POSTed to the server's
//! base URL, one at a time (a transaction is all or nothing, and order is kept).
//!
//! - 2xx with a `transaction-response` Bundle whose every entry is 2xx: it leaves the outbox.
//! - 4xx (but 408 and 429): refused for good (the server says the content is wrong; the
//!   OperationOutcome is kept with it), set aside.
//! - 5xx, 408, 429, no connection, no answer within `timeout`, a body that is not the
//!   transaction-response: sent again after the back-off. A resend is harmless: every
//!   Observation is PUT under its own id, the Patient and Devices created only if none has
//!   their identifier.

use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::Clock;

use super::config::FhirExport;
use super::http_client::{BaseUrl, Client};
use crate::outbound::backoff::sleep_or_stop as backoff_sleep;
use crate::outbound::{Dest, OutboundMetrics, Outbox};
use crate::store::SledStore;

pub(super) fn client(c: &FhirExport) -> Result<Client, String> {
    let base = BaseUrl::parse(&c.base_url).map_err(|e| format!("emr.fhir.base_url: {e}"))?;
    let token = match &c.token_file {
        None => None,
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("emr.fhir.token_file {}: {e}", p.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned(),
        ),
    };
    Client::new(base, c.ca.as_deref(), token, c.timeout).map_err(|e| format!("emr.fhir: {e}"))
}

/// What a transaction's answer means.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Refused(String),
    Retry(&'static str, String),
}

fn judge(status: u16, body: &[u8]) -> Outcome {
    let text = || String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    match status {
        200..=299 => {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
                return Outcome::Retry("bad_answer", "the answer is not JSON".into());
            };
            if v["resourceType"] != "Bundle" || v["type"] != "transaction-response" {
                return Outcome::Retry(
                    "bad_answer",
                    "the answer is not a transaction-response Bundle".into(),
                );
            }
            let bad: Vec<String> = v["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["response"]["status"].as_str())
                .filter(|s| !s.starts_with('2'))
                .map(str::to_owned)
                .collect();
            if bad.is_empty() {
                Outcome::Accepted
            } else {
                Outcome::Refused(format!("entries answered {bad:?}: {}", text()))
            }
        }
        408 | 429 => Outcome::Retry("server_error", format!("HTTP {status}")),
        400..=499 => Outcome::Refused(format!("HTTP {status}: {}", text())),
        _ => Outcome::Retry("server_error", format!("HTTP {status}")),
    }
}

pub(super) async fn run(
    config: FhirExport,
    client: Client,
    outbox: Arc<Outbox>,
    store: Arc<SledStore>,
    metrics: OutboundMetrics,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) {
    let d = Dest::Fhir;
    let mut backoff = config.retry.min;
    let connected = metrics.connected.with_label_values(&[d.as_str()]);
    while !cancel.is_cancelled() {
        let Some((seq, entry)) = outbox.next(d, &cancel).await else {
            break;
        };
        metrics.sent.with_label_values(&[d.as_str()]).inc();
        let answer = tokio::select! {
            () = cancel.cancelled() => break,
            a = client.post("", "application/fhir+json", Bytes::from(entry.payload.clone())) => a,
        };
        let outcome = match answer {
            Ok(a) => {
                connected.set(1);
                judge(a.status, &a.body)
            }
            Err(e) => {
                connected.set(0);
                let reason = match e {
                    super::http_client::HttpError::Timeout(_) => "timeout",
                    _ => "connect",
                };
                Outcome::Retry(reason, e.to_string())
            }
        };
        match outcome {
            Outcome::Accepted => {
                backoff = config.retry.min;
                metrics.acknowledged.with_label_values(&[d.as_str()]).inc();
                if let Err(e) = outbox.acknowledged(d, seq) {
                    tracing::error!(error = %e, "EMR outbox: an acknowledged Bundle could not be removed");
                }
                let _ = store.wait_durable(store.barrier()).await;
            }
            Outcome::Refused(why) => {
                metrics.refused.with_label_values(&[d.as_str()]).inc();
                tracing::warn!(batch = %entry.batch_id, "EMR FHIR: the server refused a Bundle; set aside");
                let _ = outbox.refused(d, seq, &why, clock.now_ms());
            }
            Outcome::Retry(reason, why) => {
                metrics.retry(d, reason);
                tracing::warn!(reason, error = %why, "EMR FHIR: not accepted; will send again");
                if backoff_sleep(&cancel, &mut backoff, config.retry.max).await {
                    break;
                }
            }
        }
    }
    connected.set(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_status_and_every_entry() {
        let ok = br#"{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created"}},{"response":{"status":"200 OK"}}]}"#;
        assert_eq!(judge(200, ok), Outcome::Accepted);
        let partial = br#"{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"400 Bad Request"}}]}"#;
        assert!(matches!(judge(200, partial), Outcome::Refused(_)));
        assert!(matches!(judge(200, b"{}"), Outcome::Retry("bad_answer", _)));
        assert!(matches!(
            judge(400, b"{\"resourceType\":\"OperationOutcome\"}"),
            Outcome::Refused(_)
        ));
        assert!(matches!(judge(429, b""), Outcome::Retry(..)));
        assert!(matches!(judge(503, b""), Outcome::Retry(..)));
    }
}
