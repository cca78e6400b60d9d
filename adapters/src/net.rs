//! Connection limits for a listening face (MQTT, HTTP, MLLP): a total cap and a cap per source
//! address, so one client (or one host) cannot hold every slot, and each face has its own
//! share of the process's file descriptors.
//!
//! ```
//! use wardhub_adapters::net::{ConnectionLimiter, Limit};
//! let l = ConnectionLimiter::new(10, 2);
//! let ip = "10.0.0.7".parse().unwrap();
//! let a = l.try_acquire(ip).unwrap();
//! let _b = l.try_acquire(ip).unwrap();
//! assert_eq!(l.try_acquire(ip).unwrap_err(), Limit::PerSource);
//! drop(a);
//! assert!(l.try_acquire(ip).is_ok());
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Which limit refused a connection (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Total,
    PerSource,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Total => "total",
            Limit::PerSource => "per_source",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// Open connections of one face, in total and per source.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_source: usize,
    counts: Arc<Mutex<Counts>>,
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    source: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_source: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            max_total: max_total.max(1),
            max_per_source: max_per_source.max(1),
            counts: Arc::default(),
        }
    }

    pub fn max_total(&self) -> usize {
        self.max_total
    }

    pub fn max_per_source(&self) -> usize {
        self.max_per_source
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// Admits a connection from `source`, or says which limit it would break.
    pub fn try_acquire(&self, source: IpAddr) -> Result<ConnectionPermit, Limit> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.total >= self.max_total {
            return Err(Limit::Total);
        }
        let n = c.by_source.entry(source).or_insert(0);
        if *n >= self.max_per_source {
            return Err(Limit::PerSource);
        }
        *n += 1;
        c.total += 1;
        Ok(ConnectionPermit {
            source,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_cap_holds_across_sources() {
        let l = ConnectionLimiter::new(2, 2);
        let a = l.try_acquire("10.0.0.1".parse().unwrap()).unwrap();
        let _b = l.try_acquire("10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(
            l.try_acquire("10.0.0.3".parse().unwrap()).unwrap_err(),
            Limit::Total
        );
        drop(a);
        assert_eq!(l.open(), 1);
        assert!(l.try_acquire("10.0.0.3".parse().unwrap()).is_ok());
    }
}
