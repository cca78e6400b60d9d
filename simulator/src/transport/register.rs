//! Registering the simulated devices through the hub's HTTP API.
//!
//! `PUT /api/v1/devices/{id}` with a bearer token creates or updates a device and binds it to
//! its bed (idempotent: 200 or 201). A 404 on that route means the hub has no registry API:
//! it is then assumed to be configured with static bindings and the run carries on.

use std::sync::Arc;

use crate::ward::DeviceInfo;

/// How registration went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Every device was created or updated.
    All(usize),
    /// The hub has no registry API (404): static bindings are assumed.
    NoRegistry,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the hub refused the token ({0}): pass an admin token with --token or WARDHUB_TOKEN")]
    Unauthorized(u16),
    #[error("registering {device}: the hub answered {status}: {body}")]
    Status {
        device: String,
        status: u16,
        body: String,
    },
    #[error("registering {device}: {source}")]
    Http {
        device: String,
        #[source]
        source: reqwest::Error,
    },
}

/// The request body of one device.
pub fn body(d: &DeviceInfo, secret: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": d.kind.as_str(),
        "manufacturer": "ward-sim",
        "model": d.kind.model(),
        "serial": d.serial,
        "firmware": d.kind.firmware(),
        "protocol": d.protocol.as_str(),
        "ward": d.ward,
        "bed": d.bed,
        "secret": secret,
    })
}

async fn put(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    d: &DeviceInfo,
    secret: &str,
) -> Result<Option<Registered>, RegisterError> {
    let mut req = client
        .put(format!("{base}/api/v1/devices/{}", d.id))
        .json(&body(d, secret));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|source| RegisterError::Http {
        device: d.id.clone(),
        source,
    })?;
    let status = resp.status().as_u16();
    match status {
        200..=299 => Ok(None),
        404 => Ok(Some(Registered::NoRegistry)),
        401 | 403 => Err(RegisterError::Unauthorized(status)),
        _ => Err(RegisterError::Status {
            device: d.id.clone(),
            status,
            body: resp
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect(),
        }),
    }
}

/// Registers every device (16 requests at a time); `secrets[i]` belongs to `devices[i]`.
pub async fn register_all(
    base: &str,
    token: Option<&str>,
    devices: &[DeviceInfo],
    secrets: &[String],
) -> Result<Registered, RegisterError> {
    let base = base.trim_end_matches('/').to_owned();
    let client = reqwest::Client::new();
    let Some(first) = devices.first() else {
        return Ok(Registered::All(0));
    };
    // One request first: a hub without the registry answers 404 once, not 12,000 times.
    if let Some(r) = put(&client, &base, token, first, &secrets[0]).await? {
        tracing::info!("the hub has no device registry API (404): assuming static bindings");
        return Ok(r);
    }
    let token = token.map(str::to_owned);
    let shared = Arc::new((client, base, token));
    let mut set = tokio::task::JoinSet::new();
    let mut next = 1;
    loop {
        while set.len() < 16 && next < devices.len() {
            let (d, s, shared) = (devices[next].clone(), secrets[next].clone(), shared.clone());
            set.spawn(async move {
                let (client, base, token) = &*shared;
                put(client, base, token.as_deref(), &d, &s).await
            });
            next += 1;
        }
        match set.join_next().await {
            None => break,
            Some(Ok(Ok(_))) => {}
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(e)) => {
                return Err(RegisterError::Status {
                    device: "?".into(),
                    status: 0,
                    body: e.to_string(),
                })
            }
        }
    }
    Ok(Registered::All(devices.len()))
}
