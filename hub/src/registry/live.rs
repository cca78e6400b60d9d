//! What the hub knows about a device only while it runs: connections, last seen, message
//! rate, rejects, the last status message. Updated on the hot paths with atomics; the rest
//! sits behind a mutex that only connects, status messages and readers take.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use wardhub_adapters::model::Millis;

use crate::device_status::DeviceStatus;

/// A device that never held an MQTT connection (HL7 senders connect per message or keep an
/// MLLP connection the hub does not track per device) counts as online when it sent data this
/// recently. A device that connects over MQTT is online exactly while it has a connection:
/// its last will and the connection's end say when it went, not a timer.
pub const ONLINE_WINDOW_MS: Millis = 60_000;
/// The message rate is measured over windows of this length.
const RATE_WINDOW_MS: Millis = 60_000;
/// Connect times kept per device (for flapping).
const CONNECTS_KEPT: usize = 32;

/// The live state of one device.
#[derive(Debug, Default)]
pub struct Live {
    connections: AtomicU32,
    /// Has held an MQTT connection since the hub started.
    mqtt: std::sync::atomic::AtomicBool,
    last_seen: AtomicI64,
    messages: AtomicU64,
    rejects: AtomicU64,
    window_start: AtomicI64,
    window_messages: AtomicU64,
    /// f64 bits: messages per second of the last full window.
    last_rate: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    connects: VecDeque<Millis>,
    last_connect: Option<Millis>,
    last_disconnect: Option<Millis>,
    status: Option<DeviceStatus>,
    status_at: Option<Millis>,
}

/// A snapshot of [`Live`] for the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveView {
    pub online: bool,
    pub connections: u32,
    /// Epoch ms; `None` when never seen since the hub started.
    pub last_seen: Option<Millis>,
    /// Messages per minute, recent.
    pub message_rate_per_min: f64,
    pub messages: u64,
    pub rejects: u64,
    pub connects_last_10m: usize,
    pub last_connect: Option<Millis>,
    pub last_disconnect: Option<Millis>,
    pub battery_pct: Option<f64>,
    pub charging: Option<bool>,
    /// As the device last reported it.
    pub firmware_reported: Option<String>,
    pub status_at: Option<Millis>,
}

impl Live {
    /// One message (an MQTT publish, a pipeline batch) at `now`.
    pub fn message(&self, now: Millis) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.touch(now);
    }

    /// Data seen without counting a message.
    pub fn touch(&self, now: Millis) {
        self.last_seen.fetch_max(now, Ordering::Relaxed);
        let start = self.window_start.load(Ordering::Relaxed);
        if now - start >= RATE_WINDOW_MS
            && self
                .window_start
                .compare_exchange(start, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let total = self.messages.load(Ordering::Relaxed);
            let before = self.window_messages.swap(total, Ordering::Relaxed);
            if start > 0 {
                let rate = (total - before.min(total)) as f64 * 1000.0 / (now - start) as f64;
                self.last_rate.store(rate.to_bits(), Ordering::Relaxed);
            }
        }
    }

    pub fn reject(&self) {
        self.rejects.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connected(&self, now: Millis) {
        self.mqtt.store(true, Ordering::Relaxed);
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.touch(now);
        let mut i = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        i.last_connect = Some(now);
        if i.connects.len() == CONNECTS_KEPT {
            i.connects.pop_front();
        }
        i.connects.push_back(now);
    }

    pub fn disconnected(&self, now: Millis) {
        // Never below zero, whatever the order of events.
        let _ = self
            .connections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1));
        let mut i = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        i.last_disconnect = Some(now);
    }

    pub fn status(&self, status: &DeviceStatus, now: Millis) {
        self.touch(now);
        let mut i = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let prev = i.status.take().unwrap_or_default();
        // A status message may carry only some fields: keep what earlier ones said.
        i.status = Some(DeviceStatus {
            online: status.online.or(prev.online),
            battery_pct: status.battery_pct.or(prev.battery_pct),
            charging: status.charging.or(prev.charging),
            firmware: status.firmware.clone().or(prev.firmware),
            time: status.time.or(prev.time),
        });
        i.status_at = Some(now);
    }

    pub fn view(&self, now: Millis) -> LiveView {
        let connections = self.connections.load(Ordering::Relaxed);
        let last_seen = Some(self.last_seen.load(Ordering::Relaxed)).filter(|t| *t > 0);
        let messages = self.messages.load(Ordering::Relaxed);
        let start = self.window_start.load(Ordering::Relaxed);
        let rate = if start > 0 && now - start >= RATE_WINDOW_MS {
            // No message for a while: the average since the window began decays to zero.
            let since = messages - self.window_messages.load(Ordering::Relaxed).min(messages);
            since as f64 * 1000.0 / (now - start) as f64
        } else {
            f64::from_bits(self.last_rate.load(Ordering::Relaxed))
        };
        let i = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let status = i.status.clone().unwrap_or_default();
        LiveView {
            online: connections > 0
                || (!self.mqtt.load(Ordering::Relaxed)
                    && last_seen.is_some_and(|t| now - t <= ONLINE_WINDOW_MS)),
            connections,
            last_seen,
            message_rate_per_min: (rate * 60.0 * 10.0).round() / 10.0,
            messages,
            rejects: self.rejects.load(Ordering::Relaxed),
            connects_last_10m: i.connects.iter().filter(|t| now - **t <= 600_000).count(),
            last_connect: i.last_connect,
            last_disconnect: i.last_disconnect,
            battery_pct: status.battery_pct,
            charging: status.charging,
            firmware_reported: status.firmware,
            status_at: i.status_at,
        }
    }
}

impl Live {
    /// Open MQTT connections of the device.
    pub fn view_connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }
}
