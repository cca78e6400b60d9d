//! Every listener the hub opens, bound before anything starts (a taken port stops start-up
//! with a clear error), and the TLS configurations that follow their files.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use wardhub_adapters::tls::ReloadingTls;

use super::StartError;
use crate::config::Config;

/// The addresses a running hub listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub mqtt: SocketAddr,
    /// The MQTT over TLS listener, when `[mqtt.tls]` is configured.
    pub mqtt_tls: Option<SocketAddr>,
    pub http: SocketAddr,
    /// The Prometheus metrics listener (`GET /metrics`).
    pub metrics: SocketAddr,
    /// The HL7 MLLP listener, when that adapter is on.
    pub hl7: Option<SocketAddr>,
    /// The ADT feed's MLLP listener, when `[patients.adt]` is configured.
    pub adt: Option<SocketAddr>,
    /// The Alarm Manager's PCD-05 status listener, when `[dissemination.acm.status]` is set.
    pub acm_status: Option<SocketAddr>,
}

/// The hub's own listeners (the adapters bind theirs).
pub(super) struct Listeners {
    pub http: TcpListener,
    pub metrics: TcpListener,
    pub mqtt: TcpListener,
    pub mqtt_tls: Option<(TcpListener, ReloadingTls)>,
    pub http_tls: Option<ReloadingTls>,
    /// Every TLS configuration, by what it serves, to reload when its files change.
    pub reloaders: Vec<(&'static str, ReloadingTls)>,
}

pub(super) async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

fn local(what: &'static str, l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr()
        .map_err(|source| StartError::Bind { what, addr, source })
}

pub(super) fn load_tls(
    what: &'static str,
    files: wardhub_adapters::tls::TlsFiles,
) -> Result<ReloadingTls, StartError> {
    ReloadingTls::load(files).map_err(|source| StartError::Tls { what, source })
}

impl Listeners {
    /// Binds HTTP, metrics and MQTT (and MQTT over TLS), and loads the TLS configurations.
    pub async fn bind(config: &Config) -> Result<Listeners, StartError> {
        let http = bind("HTTP", config.http.listen).await?;
        let metrics = bind("metrics", config.metrics.listen).await?;
        let mqtt = bind("MQTT", config.mqtt.listen).await?;
        let mut reloaders = Vec::new();
        let mqtt_tls = match &config.mqtt.tls {
            Some(t) => {
                let acceptor = load_tls("mqtt.tls", t.files())?;
                reloaders.push(("MQTT TLS", acceptor.clone()));
                Some((bind("MQTT TLS", t.listen).await?, acceptor))
            }
            None => None,
        };
        let http_tls = match &config.http.tls {
            Some(t) => {
                let r = load_tls("http.tls", t.clone())?;
                reloaders.push(("HTTPS", r.clone()));
                Some(r)
            }
            None => None,
        };
        Ok(Listeners {
            http,
            metrics,
            mqtt,
            mqtt_tls,
            http_tls,
            reloaders,
        })
    }

    /// Where the listeners ended up (port 0 becomes a real port).
    pub fn addresses(
        &self,
        config: &Config,
        hl7: Option<SocketAddr>,
    ) -> Result<Addresses, StartError> {
        Ok(Addresses {
            mqtt: local("MQTT", &self.mqtt, config.mqtt.listen)?,
            mqtt_tls: self
                .mqtt_tls
                .as_ref()
                .and_then(|(l, _)| l.local_addr().ok()),
            http: local("HTTP", &self.http, config.http.listen)?,
            metrics: local("metrics", &self.metrics, config.metrics.listen)?,
            hl7,
            adt: None,
            acm_status: None,
        })
    }
}
