//! What a run did: the [`Report`] of counts, acknowledgement accounting, latency
//! percentiles and the ground truth, as the text `ward-sim run` prints and as truth JSON
//! lines with the hub times each event was sent at.

use std::fmt;
use std::time::Duration;

use crate::encode::TimeBase;
use crate::transport::register::Registered;
use crate::ward::TruthEvent;

/// Latency percentiles of one protocol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub devices: usize,
    pub sent: u64,
    pub acknowledged: u64,
    pub refused: u64,
    pub errors: u64,
    pub dropped: u64,
    pub points: u64,
    /// Messages taken by a transport; each was acknowledged or is counted in `unacknowledged`.
    pub queued: u64,
    /// Messages taken by a transport and never acknowledged (lost with a dropped connection,
    /// or still waiting when the run ended).
    pub unacknowledged: u64,
    /// Numeric observations in acknowledged messages: what the hub must have stored.
    pub points_acked: u64,
    /// Numeric observations in messages never acknowledged: the hub may or may not have them.
    pub points_unacked: u64,
    pub simulated: Duration,
    pub wall: Duration,
    pub registered: Option<Registered>,
    /// Publish → PUBACK.
    pub mqtt_latency: Option<Latency>,
    /// Send → ACK.
    pub hl7_latency: Option<Latency>,
    /// What really happened (simulated times; see [`Report::truth_json_lines`]).
    pub truth: Vec<TruthEvent>,
    /// Hub time (epoch ms) of simulated time 0, and the speed: a simulated time `t` was sent
    /// at `epoch_ms + t / speed`.
    pub epoch_ms: i64,
    pub speed: f64,
}

impl Report {
    /// A report of nothing sent, holding a ground truth (for `ward-sim dump --truth`).
    pub fn truth_only(truth: Vec<TruthEvent>, epoch_ms: i64) -> Report {
        Report {
            devices: 0,
            sent: 0,
            acknowledged: 0,
            refused: 0,
            errors: 0,
            dropped: 0,
            points: 0,
            queued: 0,
            unacknowledged: 0,
            points_acked: 0,
            points_unacked: 0,
            simulated: Duration::ZERO,
            wall: Duration::ZERO,
            registered: None,
            mqtt_latency: None,
            hl7_latency: None,
            truth,
            epoch_ms,
            speed: 1.0,
        }
    }

    /// The ground truth as JSON lines, each event with its simulated times and the hub times
    /// they were sent at (`start`, `end`, epoch ms).
    pub fn truth_json_lines(&self) -> String {
        let time = TimeBase {
            epoch_ms: self.epoch_ms,
            speed: self.speed,
        };
        let mut out = String::new();
        for e in &self.truth {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            v["start"] = time.wall(e.start_ms).into();
            v["end"] = time.wall(e.end_ms).into();
            out.push_str(&v.to_string());
            out.push('\n');
        }
        out
    }
}

pub(super) fn latency(h: &crate::transport::Histogram) -> Option<Latency> {
    Some(Latency {
        count: h.count(),
        p50: h.quantile(0.5)?,
        p90: h.quantile(0.9)?,
        p99: h.quantile(0.99)?,
        max: h.quantile(1.0)?,
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.wall.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "ward-sim: {} devices, {} simulated in {:.1} s ({:.1}x)",
            self.devices,
            humantime::format_duration(Duration::from_secs(self.simulated.as_secs())),
            secs,
            self.simulated.as_secs_f64() / secs
        )?;
        match self.registered {
            Some(Registered::All(n)) => writeln!(
                f,
                "  registered    {n:>10}  devices (PUT /api/v1/devices/{{id}})"
            )?,
            Some(Registered::NoRegistry) => writeln!(
                f,
                "  registered    no registry API on the hub (static bindings assumed)"
            )?,
            None => writeln!(f, "  registered    skipped")?,
        }
        writeln!(
            f,
            "  sent          {:>10}  ({:.0}/s)",
            self.sent,
            self.sent as f64 / secs
        )?;
        writeln!(f, "  acknowledged  {:>10}", self.acknowledged)?;
        writeln!(
            f,
            "  never acked   {:>10}  (of {} queued; {} points acknowledged, {} not)",
            self.unacknowledged, self.queued, self.points_acked, self.points_unacked
        )?;
        writeln!(f, "  refused       {:>10}", self.refused)?;
        writeln!(f, "  errors        {:>10}", self.errors)?;
        writeln!(f, "  dropped       {:>10}", self.dropped)?;
        writeln!(
            f,
            "  points        {:>10}  ({:.0}/s)",
            self.points,
            self.points as f64 / secs
        )?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for (name, l) in [
            ("MQTT publish→PUBACK", self.mqtt_latency),
            ("HL7 send→ACK", self.hl7_latency),
        ] {
            if let Some(l) = l {
                writeln!(
                    f,
                    "  {name}: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
                    ms(l.p50),
                    ms(l.p90),
                    ms(l.p99),
                    ms(l.max),
                    l.count
                )?;
            }
        }
        let count = |class: &str| self.truth.iter().filter(|e| e.class == class).count();
        writeln!(
            f,
            "  truth         {:>10}  clinical events, {} artefacts, {} device faults, {} device events",
            count("clinical"),
            count("artefact"),
            count("device_fault"),
            count("device_event")
        )?;
        Ok(())
    }
}
