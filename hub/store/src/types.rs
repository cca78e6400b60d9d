//! The store's vocabulary: its error, time ranges, result pages, rollups, retention.

use std::time::Duration;

use wardhub_model::{DeviceId, Metric, Millis};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data directory {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("the store is shut down")]
    Closed,
    #[error("the data directory {path} is in format {found}; this wardhub reads format {wants}")]
    Format { path: String, found: u8, wants: u8 },
    #[error("migrating the data directory: {0}")]
    Migrate(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An inclusive time range in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Millis,
    pub to: Millis,
}

/// Results of a query, with `truncated` set when the limit cut them.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub truncated: bool,
}

/// One minute of one device's metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub device_id: DeviceId,
    pub metric: Metric,
    /// The channel it aggregates (each channel has rollups of its own).
    pub channel: Option<String>,
    pub minute: Millis,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
}

/// What a retention run deleted: observations (in whole chunks) and one-minute rollups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub raw_deleted: u64,
    pub rollups_deleted: u64,
    /// Series with nothing left (no chunk, no rollup, nothing open) that were forgotten.
    pub series_retired: u64,
}

/// Retention settings.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub raw: Duration,
    pub rollup: Duration,
}

impl Default for Retention {
    /// The defaults of `deploy/hub.toml`: 72 h of raw data, 30 days of rollups.
    fn default() -> Self {
        Retention {
            raw: Duration::from_secs(72 * 3600),
            rollup: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The default bound of the open chunks' memory (`store.open_chunk_bytes`).
pub const DEFAULT_OPEN_CHUNK_BYTES: usize = 64 << 20;
