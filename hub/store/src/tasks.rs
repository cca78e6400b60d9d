//! Durability and background work: the tickets a PUBACK or an HL7 ACK waits on, the flusher
//! (fsync the log, flush sled; group commit) and the folder (sealing spans every second).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wardhub_model::Millis;

use super::*;

impl SledStore {
    /// A ticket covering everything applied to the database before this call (the time
    /// series and the other components' trees alike): [`SledStore::wait_durable`] on it
    /// returns once a flush that started after it has finished.
    pub fn barrier(&self) -> u64 {
        self.written.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// How long writes have waited to become durable: `None` when everything written is
    /// durable, else the time since the last successful flush.
    pub fn durability_lag(&self) -> Option<Duration> {
        if self.written.load(Ordering::Acquire) <= *self.durable.borrow() {
            return None;
        }
        Some(
            self.flushed_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed(),
        )
    }

    /// Flushes everything written so far (syncs the append log, flushes sled); returns how
    /// long it took.
    pub async fn flush(&self) -> Result<Duration> {
        let target = self.written.load(Ordering::Acquire);
        let started = Instant::now();
        let file = self.wal().current();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(sled::Error::Io)?;
        self.db.flush_async().await?;
        *self.flushed_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.durable.send_if_modified(|d| {
            let changed = *d < target;
            *d = (*d).max(target);
            changed
        });
        Ok(started.elapsed())
    }

    /// Flushes every `interval` while there is something new, and at once when someone waits
    /// for durability (every waiter that arrives during a flush shares the next one), until
    /// `cancel`; then flushes a last time. `on_flush` sees each flush's duration (for metrics).
    pub async fn run_flusher(
        self: Arc<Self>,
        interval: Duration,
        cancel: CancellationToken,
        on_flush: impl Fn(Result<Duration>) + Send,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.flush_wanted.notified() => {}
                _ = cancel.cancelled() => break,
            }
            if self.written.load(Ordering::Acquire) > *self.durable.borrow() {
                on_flush(self.flush().await);
            }
        }
        on_flush(self.flush().await);
    }

    /// Folds every `interval` (see [`SledStore::fold`]) with the hub's clock, until `cancel`.
    pub async fn run_folder(
        self: Arc<Self>,
        interval: Duration,
        now: impl Fn() -> Millis + Send,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => return,
            }
            let store = self.clone();
            let at = now();
            match tokio::task::spawn_blocking(move || store.fold(at)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "sealing chunks failed; the samples stay in the append log")
                }
                Err(e) => tracing::error!(error = %e, "the fold task failed"),
            }
        }
    }
}
