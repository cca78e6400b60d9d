//! `wardhub hospital`: one page for every ward hub that uplinks to the hospital's cluster.
//!
//! It subscribes to `wardhub/v1/sites/+/wards/+/#` ([`subscriber`]), applies each uplink
//! message once ([`view`]: de-duplicated by stream and sequence number), keeps what it needs
//! to show the same page after a restart in its own sled store ([`store`]), and serves the
//! page and its API ([`web`]). It is read-only: alarms are acknowledged on the ward's own
//! dashboard, which each ward card links to.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let config = wardhub::hospital::config::HospitalConfig::load(None)?;
//! let view = wardhub::hospital::Hospital::start(config, vec![]).await?;
//! println!("hospital view on http://{}", view.addr);
//! view.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod metrics;
pub mod store;
pub mod subscriber;
pub mod view;
pub mod web;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::{Clock, SystemClock};
use wardhub_adapters::net::ConnectionLimiter;

use crate::auth::Role;
use config::HospitalConfig;

/// Why the view could not start.
#[derive(Debug, thiserror::Error)]
pub enum HospitalError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::HospitalStoreError),
    #[error(transparent)]
    Users(#[from] crate::auth::UsersError),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// A running hospital view.
#[derive(Debug)]
pub struct Hospital {
    pub addr: SocketAddr,
    pub metrics: metrics::HospitalMetrics,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Hospital {
    /// Binds the page, restores the view from its store and subscribes to the cluster; also
    /// accepts these `(name, role, plain token)` users (tests, demos).
    pub async fn start(
        config: HospitalConfig,
        extra_users: Vec<(String, Role, String)>,
    ) -> Result<Hospital, HospitalError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let listener = tokio::net::TcpListener::bind(config.hospital.listen)
            .await
            .map_err(|source| HospitalError::Bind {
                addr: config.hospital.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| HospitalError::Bind {
                addr: config.hospital.listen,
                source,
            })?;
        let dir = config.hospital.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || store::HospitalStore::open(&dir))
            .await
            .map_err(|e| HospitalError::Cluster(e.to_string()))??;
        let store = Arc::new(store);
        let view = Arc::new(Mutex::new(store.load()?));
        let metrics = metrics::HospitalMetrics::new();
        metrics
            .wards
            .set(view.lock().unwrap_or_else(|e| e.into_inner()).wards.len() as i64);
        let mut users = crate::auth::Users::from_config(&config.users)?;
        for (name, role, token) in &extra_users {
            users.add(name, *role, token);
        }
        let login = crate::uplink::client::Login::of(&config.cluster, config.client_id(), 64)
            .map_err(HospitalError::Cluster)?;
        let cancel = CancellationToken::new();
        let sub = subscriber::Subscriber {
            servers: config.cluster.servers.clone(),
            login,
            view: view.clone(),
            store,
            metrics: metrics.clone(),
            clock: clock.clone(),
            keep: config.hospital.keep,
        };
        let mut tasks = vec![tokio::spawn(sub.run(cancel.clone()))];
        let state = Arc::new(web::WebState {
            view,
            users,
            revoked: crate::auth::Revocations::in_memory(),
            limiter: crate::auth::FailureLimiter::new(20, Duration::from_secs(60)),
            metrics: metrics.clone(),
            clock,
            stale_after: config.hospital.stale_after,
        });
        let opts = crate::http::serve::ServeOptions {
            limiter: ConnectionLimiter::new(
                config.hospital.max_connections,
                config.hospital.max_connections_per_source,
            ),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            tls: None,
        };
        tasks.push(tokio::spawn(crate::http::serve::run(
            listener,
            web::router(state),
            opts,
            Arc::new(crate::telemetry::Telemetry::new()),
            cancel.clone(),
        )));
        Ok(Hospital {
            addr,
            metrics,
            cancel,
            tasks,
        })
    }

    /// Stops: the subscription saves and flushes what it has, the page stops.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}
