//! The hub's ordered shutdown, declared once, step by step, as the parts start
//! (like influxdb3's `influxdb3_shutdown`): each step is a name and what to wait for, run in
//! the order declared, each under its own time limit, so one part that hangs delays the
//! shutdown by at most one step's limit and is named in the log.

use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The steps of a shutdown, in order.
pub struct Shutdown {
    step_limit: Duration,
    steps: Vec<(&'static str, BoxFuture<'static, ()>)>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.steps.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Shutdown")
            .field("step_limit", &self.step_limit)
            .field("steps", &names)
            .finish()
    }
}

impl Shutdown {
    /// An empty shutdown whose steps may each take up to `step_limit`.
    pub fn new(step_limit: Duration) -> Shutdown {
        Shutdown {
            step_limit,
            steps: Vec::new(),
        }
    }

    /// Then: wait for `f`.
    pub fn then(&mut self, what: &'static str, f: impl Future<Output = ()> + Send + 'static) {
        self.steps.push((what, Box::pin(f)));
    }

    /// Then: cancel `cancel` and wait for the tasks it stops.
    pub fn stop(
        &mut self,
        what: &'static str,
        cancel: CancellationToken,
        tasks: impl IntoIterator<Item = JoinHandle<()>>,
    ) {
        let tasks: Vec<JoinHandle<()>> = tasks.into_iter().collect();
        self.then(what, async move {
            cancel.cancel();
            for t in tasks {
                let _ = t.await;
            }
        });
    }

    /// The steps' names, in order (for tests and the log).
    pub fn steps(&self) -> Vec<&'static str> {
        self.steps.iter().map(|(n, _)| *n).collect()
    }

    /// Runs every step in order; a step over its limit is logged and left behind.
    pub async fn run(self) {
        for (what, step) in self.steps {
            tracing::debug!(step = what, "shutdown");
            if tokio::time::timeout(self.step_limit, step).await.is_err() {
                tracing::warn!(
                    "shutdown: {what} did not finish within {:?}",
                    self.step_limit
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Steps run in the declared order, a hanging one is cut at its limit and the rest still
    /// run (tokio's paused clock: no real waiting).
    #[tokio::test(start_paused = true)]
    async fn steps_run_in_order_and_a_hanging_one_is_cut() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut s = Shutdown::new(Duration::from_secs(10));
        let cancel = CancellationToken::new();
        let task = {
            let (log, cancel) = (log.clone(), cancel.clone());
            tokio::spawn(async move {
                cancel.cancelled().await;
                log.lock().unwrap().push("task stopped");
            })
        };
        let l = log.clone();
        s.then("first", async move { l.lock().unwrap().push("first") });
        s.then("hangs", std::future::pending());
        s.stop("task", cancel, [task]);
        let l = log.clone();
        s.then("last", async move { l.lock().unwrap().push("last") });
        assert_eq!(s.steps(), ["first", "hangs", "task", "last"]);
        let started = tokio::time::Instant::now();
        s.run().await;
        assert_eq!(*log.lock().unwrap(), ["first", "task stopped", "last"]);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }
}
