//! Health of the hub's internal parts: a part that fails is visible, and the hub does not run
//! on half broken.
//!
//! Each part has a check (a closure) run every second: the internal MQTT listeners answer a
//! CONNECT, the edge and the pipeline tasks run and make progress, the store's flusher makes
//! writes durable, the alarm announcer and ticker run, the hub's publisher is connected to
//! the broker. The result is exported as `wardhub_component_up{component}` and answered by
//! `GET /healthz` (503 naming the failed parts). A part that stays down for
//! `hub.exit_after_component_down` makes [`Health::failed`] resolve: `wardhub serve` then
//! stops and exits with status 70, and systemd (`Restart=on-failure`) starts it again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntGaugeVec;
use tokio_util::sync::CancellationToken;

/// One part's check: `Err` says why it is down.
pub type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    up: bool,
    reason: Option<String>,
    down_since: Option<Instant>,
}

/// The health of every registered part.
pub struct Health {
    checks: Mutex<Vec<(&'static str, Check)>>,
    states: Mutex<BTreeMap<&'static str, State>>,
    gauge: IntGaugeVec,
    exit_after: Duration,
    failed: CancellationToken,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("exit_after", &self.exit_after)
            .finish_non_exhaustive()
    }
}

/// What `GET /healthz` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Every part: name, up, why it is down.
    pub components: Vec<(&'static str, bool, Option<String>)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.components.iter().all(|c| c.1)
    }
}

impl Health {
    /// `gauge` is `wardhub_component_up{component}`; a part down for `exit_after` fails the
    /// hub.
    pub fn new(gauge: IntGaugeVec, exit_after: Duration) -> Arc<Health> {
        Arc::new(Health {
            checks: Mutex::new(Vec::new()),
            states: Mutex::new(BTreeMap::new()),
            gauge,
            exit_after,
            failed: CancellationToken::new(),
        })
    }

    /// Adds a part (up until its first check says otherwise).
    pub fn register(&self, name: &'static str, check: Check) {
        self.gauge.with_label_values(&[name]).set(1);
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name,
                State {
                    up: true,
                    reason: None,
                    down_since: None,
                },
            );
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, check));
    }

    /// Runs every check once, at `now`.
    pub fn check_all(&self, now: Instant) {
        let results: Vec<(&'static str, Result<(), String>)> = {
            let checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
            checks.iter().map(|(n, c)| (*n, c())).collect()
        };
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        for (name, r) in results {
            let s = states.entry(name).or_insert(State {
                up: true,
                reason: None,
                down_since: None,
            });
            match r {
                Ok(()) => {
                    if !s.up {
                        tracing::warn!(component = name, "internal part is up again");
                    }
                    *s = State {
                        up: true,
                        reason: None,
                        down_since: None,
                    };
                }
                Err(why) => {
                    if s.up {
                        tracing::error!(component = name, reason = %why, "internal part is down");
                    }
                    let since = *s.down_since.get_or_insert(now);
                    s.up = false;
                    s.reason = Some(why);
                    if now.duration_since(since) >= self.exit_after && !self.failed.is_cancelled() {
                        tracing::error!(
                            component = name,
                            "internal part down for {:?}: the hub stops so that it can be restarted",
                            self.exit_after
                        );
                        self.failed.cancel();
                    }
                }
            }
            self.gauge.with_label_values(&[name]).set(i64::from(s.up));
        }
    }

    pub fn report(&self) -> Report {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        Report {
            components: states
                .iter()
                .map(|(n, s)| (*n, s.up, s.reason.clone()))
                .collect(),
        }
    }

    /// Resolves once a part has been down for `exit_after`.
    pub async fn failed(&self) {
        self.failed.cancelled().await;
    }

    pub fn has_failed(&self) -> bool {
        self.failed.is_cancelled()
    }

    /// Checks every second until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => return,
            }
            let this = self.clone();
            // Checks may block briefly (the broker probe): keep them off the async workers.
            let _ = tokio::task::spawn_blocking(move || this.check_all(Instant::now())).await;
        }
    }
}

/// A check that a task is still running.
pub fn task_alive(what: &'static str, handle: &tokio::task::JoinHandle<()>) -> Check {
    let finished = handle.abort_handle();
    Box::new(move || {
        if finished.is_finished() {
            Err(format!("the {what} task has stopped"))
        } else {
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn gauge() -> IntGaugeVec {
        IntGaugeVec::new(prometheus::Opts::new("up", "h"), &["component"]).unwrap()
    }

    /// A check that fails with `why` while `down` is set.
    fn switch(down: &Arc<AtomicBool>, why: &'static str) -> Check {
        let down = down.clone();
        Box::new(move || {
            if down.load(Ordering::Relaxed) {
                Err(why.into())
            } else {
                Ok(())
            }
        })
    }

    #[test]
    fn a_part_down_is_reported_and_fails_the_hub_after_the_grace() {
        let g = gauge();
        let h = Health::new(g.clone(), Duration::from_secs(10));
        let broken = Arc::new(AtomicBool::new(false));
        h.register("ingest", Box::new(|| Ok(())));
        h.register("store_flusher", switch(&broken, "no flush for 31 s"));
        let t0 = Instant::now();
        h.check_all(t0);
        assert!(h.report().ok());
        broken.store(true, Ordering::Relaxed);
        h.check_all(t0 + Duration::from_secs(1));
        let r = h.report();
        assert!(!r.ok());
        assert!(r
            .components
            .contains(&("store_flusher", false, Some("no flush for 31 s".into()))));
        assert_eq!(g.with_label_values(&["store_flusher"]).get(), 0);
        assert_eq!(g.with_label_values(&["ingest"]).get(), 1);
        h.check_all(t0 + Duration::from_secs(10));
        assert!(!h.has_failed(), "within the grace");
        h.check_all(t0 + Duration::from_secs(11));
        assert!(h.has_failed());
        // Recovery is reported, but a failed hub stays failed (it is being restarted).
        broken.store(false, Ordering::Relaxed);
        h.check_all(t0 + Duration::from_secs(12));
        assert!(h.report().ok());
        assert_eq!(g.with_label_values(&["store_flusher"]).get(), 1);
    }

    #[test]
    fn a_part_that_recovers_within_the_grace_does_not_fail_the_hub() {
        let h = Health::new(gauge(), Duration::from_secs(5));
        let flip = Arc::new(AtomicBool::new(true));
        h.register("x", switch(&flip, "down"));
        let t0 = Instant::now();
        h.check_all(t0);
        h.check_all(t0 + Duration::from_secs(4));
        flip.store(false, Ordering::Relaxed);
        h.check_all(t0 + Duration::from_secs(5));
        flip.store(true, Ordering::Relaxed);
        h.check_all(t0 + Duration::from_secs(6));
        h.check_all(t0 + Duration::from_secs(10));
        assert!(!h.has_failed(), "the clock restarts when it comes back");
    }

    #[tokio::test]
    async fn a_stopped_task_is_down() {
        let t = tokio::spawn(async {});
        let check = task_alive("pipeline", &t);
        let _ = (&mut { t }).await;
        assert_eq!(check(), Err("the pipeline task has stopped".into()));
    }
}
