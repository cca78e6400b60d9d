//! Load-test helpers: the exact publishers of [`ward_sim::exact`] and a look into a stopped
//! hub's store, so a test can check that every acknowledged observation is stored, per device
//! and per time stamp.

use std::collections::HashSet;
use std::path::Path;

pub use ward_sim::exact::{exact_publisher, Exact, Plan};

/// Every stored time stamp of `device` (one metric, raw), read from a stopped hub's data
/// directory.
pub fn stored_times(data_dir: &Path, device: &str) -> HashSet<i64> {
    use wardhub::store::{Retention, SledStore, TimeRange};
    let store = SledStore::open(data_dir, 64 << 20, Retention::default()).expect("store opens");
    let page = store
        .device_observations(
            device,
            None,
            TimeRange {
                from: 0,
                to: i64::MAX,
            },
            100_000_000,
        )
        .expect("query");
    page.items.iter().map(|o| o.observed_at).collect()
}

/// The acknowledged observations of `e` that are not stored.
pub fn missing(e: &Exact, stored: &HashSet<i64>) -> Vec<i64> {
    let mut m: Vec<i64> = e.acked_times().difference(stored).copied().collect();
    m.sort();
    m
}
