//! The HTTP client of the hub's command-line tools: the bearer token (from `WARDHUB_TOKEN` or
//! a token file), timeouts, and the status-code checks that turn the hub's answer into an exit
//! code and a message (404 not found, 409 conflict, 401/403 refused, 400/422 invalid, anything
//! else an error; no answer at all, unreachable). Also the query strings of the requests.

use std::time::Duration;

use serde_json::Value;

use super::{
    CliResult, Failure, HubArgs, EXIT_AUTH, EXIT_CONFLICT, EXIT_ERROR, EXIT_INVALID,
    EXIT_NOT_FOUND, EXIT_UNREACHABLE,
};

/// The HTTP client of the hub's command-line tools.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    pub json: bool,
}

impl Client {
    pub(crate) fn new(a: &HubArgs) -> CliResult<Client> {
        Self::with_timeout(a, Duration::from_secs(30))
    }

    /// A client whose requests may take up to `timeout` (a replay of days of data).
    pub(crate) fn with_timeout(a: &HubArgs, timeout: Duration) -> CliResult<Client> {
        let token = match &a.token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        Failure(
                            EXIT_AUTH,
                            format!("cannot read token file {}: {e}", p.display()),
                            None,
                        )
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("WARDHUB_TOKEN")
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Failure(EXIT_ERROR, e.to_string(), None))?;
        Ok(Client {
            http,
            base: a.hub.trim_end_matches('/').to_owned(),
            token,
            json: a.json,
        })
    }

    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
    ) -> CliResult<(u16, Value, String)> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        // Every request, reads of the registry too, needs a login (docs/SECURITY.md).
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        } else {
            return Err(Failure(
                EXIT_AUTH,
                "this needs a token: set WARDHUB_TOKEN or --token-file (wardhub user token NAME biomed makes one)".into(),
                None,
            ));
        }
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Text(t)) => req.header("content-type", "text/csv").body(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            Failure(
                EXIT_UNREACHABLE,
                format!("cannot reach the hub at {}: {}", self.base, root_cause(&e)),
                None,
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| {
            Failure(
                EXIT_UNREACHABLE,
                format!("the hub's answer was cut: {e}"),
                None,
            )
        })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok((status, value, text));
        }
        let message = value["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                )
            });
        let code = match status {
            404 => EXIT_NOT_FOUND,
            409 => EXIT_CONFLICT,
            401 | 403 => EXIT_AUTH,
            400 | 422 => EXIT_INVALID,
            _ => EXIT_ERROR,
        };
        Err(Failure(code, message, Some(value)))
    }

    pub(crate) async fn get(&self, path: &str) -> CliResult<Value> {
        Ok(self.send(reqwest::Method::GET, path, None).await?.1)
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> CliResult<Value> {
        Ok(self
            .send(reqwest::Method::PUT, path, Some(Body::Json(body)))
            .await?
            .1)
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> CliResult<Value> {
        Ok(self
            .send(reqwest::Method::POST, path, Some(Body::Json(body)))
            .await?
            .1)
    }
}

pub(super) enum Body {
    Json(Value),
    Text(String),
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if std::ptr::eq(cause as *const _ as *const u8, e as *const _ as *const u8) {
        e.to_string()
    } else {
        format!("{e}: {cause}")
    }
}

/// Query string of the given pairs (values are ids: no escaping beyond a check).
pub(super) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

pub(super) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
