//! The HTTP side's wiring: the auth stores, the API router and its server, the metrics
//! server, and the TLS reloaders (which stop with the HTTP server).

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::Clock;
use wardhub_adapters::tls::ReloadingTls;

use super::error::{blocking, StartError};
use crate::alarms::AlarmService;
use crate::config::Config;
use crate::fd_budget::Caps;
use crate::http::{self, AppState};
use crate::registry::SledRegistry;
use crate::store::SledStore;
use crate::telemetry::Telemetry;

/// What the web side is made of.
pub(super) struct WebParts<'a> {
    pub config: &'a Config,
    pub caps: &'a Caps,
    pub http: TcpListener,
    pub metrics: TcpListener,
    pub tls: Option<ReloadingTls>,
    pub reloaders: Vec<(&'static str, ReloadingTls)>,
    pub data_dir: &'a Path,
    pub health: &'a Arc<crate::health::Health>,
    pub store: &'a Arc<SledStore>,
    pub registry: Arc<SledRegistry>,
    pub telemetry: &'a Arc<Telemetry>,
    pub clock: Arc<dyn Clock>,
    pub users: crate::auth::Users,
    pub alarms: &'a Arc<AlarmService>,
    pub patients: &'a Arc<crate::patients::PatientContext>,
    pub emr: Option<&'a Arc<crate::emr::Emr>>,
    pub dissemination: Option<&'a Arc<crate::dissemination::Disseminator>>,
    pub cancel: CancellationToken,
}

/// Starts the metrics and API servers; returns their tasks, which end after `cancel`.
pub(super) async fn start(p: WebParts<'_>) -> Result<[JoinHandle<()>; 2], StartError> {
    let config = p.config;
    http::metrics::collect_on_scrape(p.telemetry, &p.registry, p.store, p.data_dir);
    let metrics_task = http::metrics::serve(p.metrics, p.telemetry.clone(), p.cancel.clone());
    let (revoked, audit, sessions) = {
        let db = p.store.db().clone();
        let ttl = i64::try_from(config.http.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let now = p.clock.now_ms();
        blocking("open the auth store", move || {
            Ok::<_, AuthStore>((
                crate::auth::Revocations::open(&db)?,
                crate::audit::AccessAudit::open(&db)?,
                crate::auth::Sessions::open(&db, ttl, 10_000, now)?,
            ))
        })
        .await?
    };
    let app = http::router(AppState {
        health: p.health.clone(),
        store: p.store.clone(),
        registry: p.registry,
        telemetry: p.telemetry.clone(),
        clock: p.clock,
        ward: config.hub.ward.clone(),
        users: Arc::new(p.users),
        revoked: Arc::new(revoked),
        sessions: Arc::new(sessions),
        login_limiter: Arc::new(crate::auth::FailureLimiter::new(
            config.http.login_failures,
            config.http.login_window,
        )),
        audit: Arc::new(audit),
        tls: p.tls.is_some(),
        alarms: p.alarms.clone(),
        patients: p.patients.clone(),
        emr: p.emr.cloned(),
        dissemination: p.dissemination.cloned(),
        shutdown: p.cancel.clone(),
    });
    for (what, r) in &p.reloaders {
        r.spawn_reloader(what, config.hub.tls_reload_interval, p.cancel.clone());
    }
    let http_task = tokio::spawn(http::serve::run(
        p.http,
        app,
        http::serve::ServeOptions {
            limiter: wardhub_adapters::net::ConnectionLimiter::new(
                p.caps.http,
                config.http.max_connections_per_source,
            ),
            header_timeout: config.http.header_timeout,
            request_timeout: config.http.request_timeout,
            tls: p.tls,
        },
        p.telemetry.clone(),
        p.cancel,
    ));
    Ok([http_task, metrics_task])
}

/// A sled error of the auth trees (its own type so that `?` makes it a
/// [`StartError::AuthStore`], not a store error).
struct AuthStore(sled::Error);

impl From<sled::Error> for AuthStore {
    fn from(e: sled::Error) -> Self {
        AuthStore(e)
    }
}

impl From<AuthStore> for StartError {
    fn from(e: AuthStore) -> Self {
        StartError::AuthStore(e.0)
    }
}
