//! The FHIR export's HTTP/1.1 client: one request per connection attempt, over plain TCP or
//! TLS (rustls, trusting the configured CA only, as the uplink does), with hyper's own
//! client connection. A FHIR server is one host; this needs no pool.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpStream;

/// A parsed `http://` or `https://` base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Without a trailing slash; empty for the root.
    pub path: String,
}

impl BaseUrl {
    pub fn parse(s: &str) -> Result<BaseUrl, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{s:?}: not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{s:?}: {p:?} is not a port"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        Ok(BaseUrl {
            tls,
            host: host.to_owned(),
            port,
            path: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// What a request ended with.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Why a request got no answer (the export retries these).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    base: BaseUrl,
    tls: Option<tokio_rustls::TlsConnector>,
    token: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(
        base: BaseUrl,
        ca: Option<&std::path::Path>,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Client, String> {
        let tls = if base.tls {
            let ca = ca.ok_or("an https:// FHIR server needs `ca` (the CA that signed it)")?;
            let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificate", ca.display()));
            }
            let config = tokio_rustls::rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Client {
            base,
            tls,
            token,
            timeout,
        })
    }

    /// POSTs `body` to the base URL (a FHIR transaction) or to `base + path`.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Answer, HttpError> {
        self.request("POST", path, Some((content_type, body))).await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Answer, HttpError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.request_inner(method, path, body))
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    async fn request_inner(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Answer, HttpError> {
        let tcp = TcpStream::connect((self.base.host.as_str(), self.base.port))
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let uri = format!("{}{}", self.base.path, path);
        let uri = if uri.is_empty() { "/".to_owned() } else { uri };
        let host = if (self.base.tls && self.base.port == 443)
            || (!self.base.tls && self.base.port == 80)
        {
            self.base.host.clone()
        } else {
            format!("{}:{}", self.base.host, self.base.port)
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, host)
            .header(hyper::header::ACCEPT, "application/fhir+json")
            .header(
                hyper::header::USER_AGENT,
                concat!("wardhub/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some((ct, b)) => {
                req = req.header(hyper::header::CONTENT_TYPE, ct);
                b
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| HttpError::Http(e.to_string()))?;
        match &self.tls {
            None => send(hyper_util::rt::TokioIo::new(tcp), req).await,
            Some(tls) => {
                let name =
                    tokio_rustls::rustls::pki_types::ServerName::try_from(self.base.host.clone())
                        .map_err(|e| HttpError::Tls(e.to_string()))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| HttpError::Tls(e.to_string()))?;
                send(hyper_util::rt::TokioIo::new(stream), req).await
            }
        }
    }
}

async fn send<I>(io: I, req: hyper::Request<Full<Bytes>>) -> Result<Answer, HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| HttpError::Http(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| HttpError::Http(e.to_string()));
    let out = match resp {
        Ok(resp) => {
            let status = resp.status().as_u16();
            resp.into_body()
                .collect()
                .await
                .map(|b| Answer {
                    status,
                    body: b.to_bytes(),
                })
                .map_err(|e| HttpError::Http(e.to_string()))
        }
        Err(e) => Err(e),
    };
    driver.abort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let b = BaseUrl::parse("https://fhir.example:8443/r4/").unwrap();
        assert_eq!(
            (b.tls, b.host.as_str(), b.port, b.path.as_str()),
            (true, "fhir.example", 8443, "/r4")
        );
        let b = BaseUrl::parse("http://127.0.0.1:9/fhir").unwrap();
        assert_eq!((b.port, b.path.as_str()), (9, "/fhir"));
        assert_eq!(BaseUrl::parse("http://h").unwrap().port, 80);
        assert!(BaseUrl::parse("ftp://h").is_err());
        assert!(BaseUrl::parse("http://:80").is_err());
    }
}
