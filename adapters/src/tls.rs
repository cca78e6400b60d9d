//! TLS for the hub's listeners (rustls): a server configuration loaded from PEM files, with
//! optional client certificates (mTLS) checked against a CA, and reloaded when the files
//! change, without a restart. Every handshake takes the configuration current at that moment;
//! open connections keep theirs.
//!
//! A client certificate identifies its holder by the subject's common name
//! ([`peer_identity`]) and by the SHA-256 of the certificate ([`PeerIdentity::sha256`]).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// The files of a TLS listener, as a configuration file names them (`cert`, `key`, and for
/// client certificates `client_ca` and `require_client_cert`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to (mTLS); none: no client
    /// certificates are asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse the handshake of a client without a certificate.
    #[serde(default)]
    pub require_client_cert: bool,
}

/// A TLS file problem (names the file).
#[derive(Debug, Clone, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(pub String);

fn read(p: &std::path::Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(p).map_err(|e| TlsError(format!("cannot read {}: {e}", p.display())))
}

fn certs(p: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(p)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{}: {e}", p.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{}: no PEM certificate", p.display())));
    }
    Ok(certs)
}

/// Builds a server configuration from the files.
pub fn server_config(f: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certs(&f.cert)?;
    let key_pem = read(&f.key)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TlsError(format!("{}: {e}", f.key.display())))?
        .ok_or_else(|| TlsError(format!("{}: no PEM private key", f.key.display())))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &f.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| TlsError(format!("{}: {e}", ca.display())))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots));
            let v = if f.require_client_cert {
                v
            } else {
                v.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| TlsError(format!("{}: {e}", ca.display())))?,
            )
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError(format!("certificate and key: {e}")))
}

/// A loaded configuration and the fingerprints of the files it came from.
type Loaded = (Arc<rustls::ServerConfig>, Vec<Option<[u8; 32]>>);

/// A server configuration that follows its files.
#[derive(Debug, Clone)]
pub struct ReloadingTls {
    files: TlsFiles,
    current: Arc<RwLock<Loaded>>,
}

/// What the files hold now (SHA-256 of each), to tell a change: contents, not modification
/// times, so a rename-over (cert-manager, certbot) and a same-second rewrite both count.
fn fingerprint(f: &TlsFiles) -> Vec<Option<[u8; 32]>> {
    [Some(&f.cert), Some(&f.key), f.client_ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| std::fs::read(p).ok().map(|b| sha256(&b)))
        .collect()
}

impl ReloadingTls {
    /// Loads the files (an error here stops start-up: a listener without its certificate
    /// must not come up).
    pub fn load(files: TlsFiles) -> Result<ReloadingTls, TlsError> {
        let config = Arc::new(server_config(&files)?);
        let m = fingerprint(&files);
        Ok(ReloadingTls {
            files,
            current: Arc::new(RwLock::new((config, m))),
        })
    }

    /// An acceptor with the configuration of now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let c = self.current.read().unwrap_or_else(|e| e.into_inner());
        tokio_rustls::TlsAcceptor::from(c.0.clone())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reloads when a file changed. `Ok(true)`: reloaded; an error keeps the old one.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = fingerprint(&self.files);
        if self.current.read().unwrap_or_else(|e| e.into_inner()).1 == now {
            return Ok(false);
        }
        let config = Arc::new(server_config(&self.files)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (config, now);
        Ok(true)
    }

    /// Checks the files every `interval` until `cancel` (logs what it does).
    pub fn spawn_reloader(
        &self,
        what: &'static str,
        interval: Duration,
        cancel: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let m = me.clone();
                match tokio::task::spawn_blocking(move || m.reload_if_changed()).await {
                    Ok(Ok(true)) => tracing::info!(listener = what, "TLS certificate reloaded"),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::error!(
                        listener = what,
                        error = %e,
                        "TLS files changed but do not load; keeping the previous certificate"
                    ),
                    Err(_) => {}
                }
            }
        })
    }
}

/// Who a client certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject's common name, when it has one.
    pub common_name: Option<String>,
    /// Lower-case hex SHA-256 of the certificate (DER).
    pub sha256: String,
}

/// The verified client certificate of a connection, if it presented one.
pub fn peer_identity(conn: &rustls::ServerConnection) -> Option<PeerIdentity> {
    let cert = conn.peer_certificates()?.first()?;
    Some(PeerIdentity {
        common_name: subject_common_name(cert.as_ref()),
        sha256: sha256_hex(cert.as_ref()),
    })
}

fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write;
    let digest = sha256(data);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// One DER element: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The subject CN of an X.509 certificate (DER): Certificate → TBSCertificate → subject.
fn subject_common_name(cert: &[u8]) -> Option<String> {
    const SEQ: u8 = 0x30;
    const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
    let (SEQ, cert, _) = der(cert)? else {
        return None;
    };
    let (SEQ, tbs, _) = der(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, r) = der(rest)?;
    rest = if tag == 0xa0 { r } else { rest };
    let mut fields = Vec::new();
    for _ in 0..5 {
        let (tag, content, r) = der(rest)?;
        fields.push((tag, content));
        rest = r;
    }
    let (SEQ, mut name) = fields[4] else {
        return None;
    };
    let mut cn = None;
    while !name.is_empty() {
        let (_set, rdn, r) = der(name)?;
        name = r;
        let (SEQ, atv, _) = der(rdn)? else { continue };
        let (0x06, oid, value) = der(atv)? else {
            continue;
        };
        if oid == CN_OID {
            let (_, v, _) = der(value)?;
            cn = std::str::from_utf8(v).ok().map(str::to_owned);
        }
    }
    cn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(
            sha256_hex(&long),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }

    fn self_signed(dir: &std::path::Path, name: &str) -> (TlsFiles, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        (
            TlsFiles {
                cert,
                key,
                client_ca: None,
                require_client_cert: false,
            },
            c.cert.pem(),
        )
    }

    async fn handshake(server: &ReloadingTls, trust_pem: &str) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut trust_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = server.acceptor();
        let srv = tokio::spawn(async move { acceptor.accept(b).await.is_ok() });
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let ok = connector.connect(name, a).await.is_ok();
        let _ = srv.await;
        ok
    }

    /// A renewed certificate is used without a restart; a broken file keeps the old one.
    #[tokio::test]
    async fn certificates_reload_when_their_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let (files, first) = self_signed(dir.path(), "live");
        let tls = ReloadingTls::load(files.clone()).unwrap();
        assert!(handshake(&tls, &first).await);
        assert!(!tls.reload_if_changed().unwrap(), "nothing changed yet");
        let (renewed, second) = self_signed(dir.path(), "renewed");
        std::fs::copy(&renewed.cert, &files.cert).unwrap();
        std::fs::copy(&renewed.key, &files.key).unwrap();
        assert!(
            !handshake(&tls, &second).await,
            "the old certificate until reloaded"
        );
        assert!(tls.reload_if_changed().unwrap());
        assert!(
            handshake(&tls, &second).await,
            "the renewed certificate is served"
        );
        assert!(!handshake(&tls, &first).await);
        std::fs::write(&files.key, "not a key").unwrap();
        assert!(tls.reload_if_changed().is_err());
        assert!(
            handshake(&tls, &second).await,
            "a broken file keeps the previous one"
        );
    }

    #[test]
    fn der_lengths_are_bounded() {
        assert!(der(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(der(&[0x30, 0x05, 1]).is_none());
        assert!(subject_common_name(&[0x30, 0x00]).is_none());
        assert!(subject_common_name(b"not a certificate").is_none());
    }
}
