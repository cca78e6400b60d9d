//! Talking to the hub: MQTT JSON ([`mqtt`]), HL7 over MLLP ([`hl7`]), and device registration
//! over the HTTP API ([`register`]). Each simulated device is one task owning one
//! connection, fed by a bounded channel of [`Command`]s; counters and latency histograms are
//! shared ([`Stats`]).

pub mod hl7;
pub mod mqtt;
pub mod register;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a device task is told to do.
#[derive(Debug)]
pub enum Command {
    /// Send a message; `channel` is the MQTT topic's last level (`obs`, `status`, `event`).
    Send {
        channel: &'static str,
        payload: Vec<u8>,
        /// Numeric observations in it (0 for status, events and garbage).
        points: u32,
    },
    /// Drop the connection without a clean close.
    Drop,
    /// Connect again.
    Reconnect,
}

/// A latency histogram with ~2 % resolution from 1 µs to ~20 min, lock-free.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
}

const GROWTH: f64 = 1.02;
const BUCKETS: usize = 1100;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().max(1) as f64;
        let i = ((us.ln() / GROWTH.ln()) as usize).min(BUCKETS - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The value below which a share `q` (0..1) of the samples lie (upper bucket bound).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(Duration::from_micros(GROWTH.powi(i as i32 + 1) as u64));
            }
        }
        None
    }
}

/// Counters of a run, shared by every device task.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages written to the network (MQTT PUBLISH, HL7 frames).
    pub sent: AtomicU64,
    /// Messages the hub acknowledged (MQTT PUBACK, HL7 `MSA|AA`).
    pub acked: AtomicU64,
    /// Messages the hub refused (HL7 `AE`/`AR`) and MQTT connections it refused (CONNACK
    /// with an error code: bad credentials, unknown device). MQTT 3.1.1 has no per-message
    /// refusal: the hub drops a refused document after its PUBACK and counts it itself.
    pub refused: AtomicU64,
    /// Connection and protocol errors (resets, timeouts, ACK timeouts).
    pub errors: AtomicU64,
    /// Messages never sent: the device was offline or its queue was full (the hub or the
    /// network could not keep up with the requested speed).
    pub dropped: AtomicU64,
    /// Numeric observations in the messages handed to the transports.
    pub points: AtomicU64,
    /// Messages a transport took to send (queued in the MQTT client, or written as HL7):
    /// each is either acknowledged once or counted as never acknowledged.
    pub queued: AtomicU64,
    /// Numeric observations in the messages queued / acknowledged.
    pub points_queued: AtomicU64,
    pub points_acked: AtomicU64,
    pub mqtt_latency: Histogram,
    pub hl7_latency: Histogram,
}

impl Stats {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The MQTT password of a simulated device: derived from a key and the device id, so a run
/// with `--no-register` against a hub registered by an earlier run still authenticates.
/// This is a simulator's convenience, not a way to make real credentials.
pub fn secret_for(key: &str, device_id: &str) -> String {
    // FNV-1a, twice with different offsets, for 128 bits of hex.
    let fnv = |offset: u64| {
        let mut h = offset;
        for b in key.bytes().chain([0u8]).chain(device_id.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).unwrap().as_secs_f64() * 1000.0;
        let p99 = h.quantile(0.99).unwrap().as_secs_f64() * 1000.0;
        assert!((49.0..=52.0).contains(&p50), "{p50}");
        assert!((98.0..=102.0).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn secrets_are_stable_and_distinct() {
        let a = secret_for("k", "b01-mon");
        assert_eq!(a, secret_for("k", "b01-mon"));
        assert_ne!(a, secret_for("k", "b02-mon"));
        assert_ne!(a, secret_for("j", "b01-mon"));
        assert_eq!(a.len(), 32);
    }
}
