//! Why a hub could not start: one variant per thing that can fail, each naming the part.

use std::net::SocketAddr;

use wardhub_adapters::adapter::{AdapterError, BusError};
use wardhub_adapters::tls::TlsError;

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen for {what} on {addr}: {source} (is another wardhub or service using it?)"
    )]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A TLS certificate or key (`what` is the configuration section) cannot be used.
    #[error("{what}: {source}")]
    Tls {
        what: &'static str,
        #[source]
        source: TlsError,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error("message bus: {0}")]
    Bus(#[from] BusError),
    #[error("registry: {0}")]
    Registry(#[from] crate::registry::RegistryError),
    #[error("users: {0}")]
    Users(#[from] crate::auth::UsersError),
    #[error("alarms: {0}")]
    Alarms(#[from] crate::alarms::AlarmError),
    #[error(transparent)]
    Uplink(#[from] crate::uplink::UplinkError),
    #[error(transparent)]
    Patients(#[from] crate::patients::PatientError),
    #[error(transparent)]
    Emr(#[from] crate::emr::EmrError),
    #[error(transparent)]
    Dissemination(#[from] crate::dissemination::DisseminationError),
    /// The sessions, revocations or access audit in the hub's database.
    #[error("auth store: {0}")]
    AuthStore(#[source] sled::Error),
    #[error("adapter {name}: {source}")]
    Adapter {
        name: &'static str,
        #[source]
        source: AdapterError,
    },
    /// A start-up step run on a blocking thread panicked.
    #[error("start-up step {what} panicked: {source}")]
    Panicked {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Runs a blocking start-up step (opening sled trees, starting rumqttd) off the runtime.
pub(super) async fn blocking<T, E>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, StartError>
where
    T: Send + 'static,
    E: Send + 'static,
    StartError: From<E>,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(StartError::from),
        Err(source) => Err(StartError::Panicked { what, source }),
    }
}
