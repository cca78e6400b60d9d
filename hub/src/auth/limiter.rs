//! Failed logins, limited per source address: after `max_failures` failures within `window`,
//! the source is refused (429) until the window has passed since its first failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Failures per source within a window.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    /// At most this many sources are tracked (oldest forgotten first), so a spread of sources
    /// cannot grow the map without bound.
    max_sources: usize,
    by_source: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max_failures: max_failures.max(1),
            window,
            max_sources: 65_536,
            by_source: Mutex::default(),
        }
    }

    /// `Some(retry_after)` while `source` is locked out.
    pub fn blocked(&self, source: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let map = self.by_source.lock().unwrap_or_else(|e| e.into_inner());
        let (first, n) = map.get(&source)?;
        let until = *first + self.window;
        (*n >= self.max_failures && until > now).then(|| until - now)
    }

    /// Counts a failure of `source`; returns true when it is now locked out.
    pub fn failure(&self, source: IpAddr) -> bool {
        let now = Instant::now();
        let mut map = self.by_source.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_sources && !map.contains_key(&source) {
            let window = self.window;
            map.retain(|_, (first, _)| *first + window > now);
            if map.len() >= self.max_sources {
                if let Some(oldest) = map.iter().min_by_key(|(_, (f, _))| *f).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let e = map.entry(source).or_insert((now, 0));
        if e.0 + self.window <= now {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 >= self.max_failures
    }

    /// A successful login clears the source's failures.
    pub fn success(&self, source: IpAddr) {
        self.by_source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_source_is_locked_out_after_repeated_failures_and_let_in_after_the_window() {
        let l = FailureLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(!l.failure(a));
        assert!(!l.failure(a));
        assert!(l.blocked(a).is_none());
        assert!(l.failure(a));
        assert!(
            l.blocked(a).is_some(),
            "the third failure locks the source out"
        );
        assert!(l.blocked(b).is_none(), "other sources are not affected");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(l.blocked(a).is_none(), "the lockout ends with the window");
        assert!(!l.failure(a), "a new window starts counting afresh");
    }
}
