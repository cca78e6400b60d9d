//! `wardhub bench alarm-quality`: how good the alarms are, measured against what really
//! happened (issue 15).
//!
//! For each scenario, a ward-sim [`Ward`] is stepped second by second in simulated time (no
//! network, no wall clock: the hub's delays mean what they say, whatever the speed of a live
//! run). Every emission goes the hub's own way into the alarm engine: observation documents
//! through the MQTT JSON decoder and the pipeline's clock correction, status and event
//! documents through their contracts, disconnects as the last will; the engine ticks every
//! second. The ward's ground truth ([`Ward::truth`]) then classifies the alarms:
//!
//! - a **true event** is a clinical event (desaturation, tachycardia, bradycardia, hypotension,
//!   fever, apnoea, deterioration) of severity ≥ 0.8 during which the bed's usable data crossed
//!   a limit of its condition (one still ramping up when the run ends is counted as unseen);
//!   it is *alarmed* when an alarm of its
//!   condition (any physiological one for a deterioration) was open at its start or raised
//!   before its end plus the vitals' recovery time; detection latency is from the moment the
//!   bed's data first crossed a limit of that condition during the event (an event's own slow
//!   onset is not the alarm system's delay), 0 when an alarm was already open;
//! - an event with **more than one alarm** is one during which a condition was raised twice;
//! - **self-clearing** alarms cleared within 10 s of being raised, unacknowledged;
//! - the **naive baseline** is an instantaneous threshold per device and metric on the same
//!   usable values with the preset's base limits (no delay, no hysteresis, no grouping): what
//!   a monitor without alarm management would say. Its crossings are also what "the data
//!   crossed a limit" means above, whichever rules are measured.

use std::collections::HashMap;

use clap::Args;
use ward_sim::ward::Reading;
use ward_sim::{DeviceInfo, EventKind, Payload, Scenario, TruthEvent, Ward};
use wardhub_adapters::model::{DeviceId, Millis, Observation, TimeLimits};
use wardhub_adapters::mqtt_json::decode_observations;

use crate::alarms::lives::{lives, Life};
use crate::alarms::{
    AlarmEngine, AlarmsConfig, Cause, Condition, DeviceEvent, DeviceStatus, Kind, Priority, Side,
    Transition,
};
use crate::pipeline::clock::ClockCorrection;

#[derive(Debug, Clone, Args)]
pub struct AlarmQualityArgs {
    /// Scenarios (built-in names or files); default: the four shipped ones.
    #[arg(long)]
    pub scenario: Vec<String>,
    /// Simulated time per scenario.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// An `[alarms]` section (TOML) to measure instead of the shipped presets.
    #[arg(long)]
    pub rules: Option<std::path::PathBuf>,
    /// List every alarm raised (stderr).
    #[arg(long)]
    pub list: bool,
}

/// The hub time of simulated time 0 (2026-11-20T10:00:00Z).
pub(crate) const EPOCH: Millis = 1_795_168_800_000;
/// The shipped scenarios.
pub const SCENARIOS: [&str; 4] = [
    "deteriorating-patient",
    "demo",
    "quiet-night",
    "device-chaos",
];

/// What one scenario's alarms were worth.
#[derive(Debug, Clone, Default)]
pub struct Quality {
    pub scenario: String,
    pub beds: usize,
    pub hours: f64,
    pub true_events: usize,
    /// Clinical events whose data had not crossed a limit by the end of the run.
    pub unseen: usize,
    pub alarmed: usize,
    /// The true events no alarm caught (`bed kind @ start`).
    pub missed: Vec<String>,
    /// Detection latency from the data's first crossing of a limit, seconds.
    pub latency_p50_s: f64,
    pub latency_max_s: f64,
    /// The most severe priority each alarmed event reached, per priority (low, medium, high).
    pub event_priority: [usize; 3],
    /// True events during which one condition was raised more than once.
    pub multi_alarm_events: Vec<String>,
    pub physiological: usize,
    pub physiological_by_priority: [usize; 3],
    /// Physiological alarms raised outside every clinical event of their bed.
    pub unexplained: usize,
    pub self_clearing: usize,
    pub technical: usize,
    pub calls: usize,
    pub naive_physiological: usize,
    pub naive_self_clearing: usize,
    /// Records that could not be decoded (garbage the scenario sends on purpose).
    pub rejected: usize,
    /// Raised and self-clearing alarms per condition.
    pub by_condition: std::collections::BTreeMap<String, (usize, usize)>,
    /// Every raised alarm: bed, condition, priority, when, how long.
    pub alarms: Vec<String>,
}

impl Quality {
    fn per_bed_day(&self, n: usize) -> f64 {
        n as f64 / self.beds.max(1) as f64 / (self.hours / 24.0).max(1e-9)
    }
    pub fn physiological_per_bed_day(&self) -> f64 {
        self.per_bed_day(self.physiological)
    }
    pub fn technical_per_bed_day(&self) -> f64 {
        self.per_bed_day(self.technical)
    }
    pub fn naive_per_bed_day(&self) -> f64 {
        self.per_bed_day(self.naive_physiological)
    }
    /// 1 − physiological alarms / naive alarms.
    pub fn reduction(&self) -> f64 {
        if self.naive_physiological == 0 {
            return 0.0;
        }
        1.0 - self.physiological as f64 / self.naive_physiological as f64
    }
    /// Share of raised alarms (all kinds) that cleared by themselves within 10 s.
    pub fn self_clearing_share(&self) -> f64 {
        let all = self.physiological + self.technical + self.calls;
        self.self_clearing as f64 / all.max(1) as f64
    }
    pub fn naive_self_clearing_share(&self) -> f64 {
        self.naive_self_clearing as f64 / self.naive_physiological.max(1) as f64
    }
    pub fn sensitivity(&self) -> f64 {
        self.alarmed as f64 / self.true_events.max(1) as f64
    }
}

/// The conditions that answer a clinical event (`None`: any physiological one).
fn expected(kind: EventKind) -> Option<&'static [Condition]> {
    Some(match kind {
        EventKind::Desaturation => &[Condition::Desaturation],
        EventKind::Tachycardia => &[Condition::Tachycardia],
        EventKind::Bradycardia => &[Condition::Bradycardia],
        EventKind::Hypotension => &[Condition::Hypotension],
        EventKind::Fever => &[Condition::Fever],
        EventKind::Apnoea => &[Condition::LowBreathing],
        _ => return None,
    })
}

/// How long after its end a clinical event's vitals may still be beyond a limit (its onset,
/// which is also its recovery; see ward-sim's physiology).
fn recovery_ms(e: &TruthEvent) -> Millis {
    let d = (e.end_ms - e.start_ms) as f64 / 1000.0;
    let s = match e.kind {
        EventKind::Apnoea => 1.0,
        EventKind::Fever => (d / 4.0).min(1800.0),
        EventKind::Hypotension => (d / 5.0).min(300.0),
        EventKind::Deterioration => 4.0 * 3600.0,
        _ => (d / 5.0).min(45.0),
    };
    (s * 1000.0) as Millis + 60_000
}

/// Runs one scenario through the engine and classifies its alarms.
pub fn quality(
    scenario: Scenario,
    seed: u64,
    duration_ms: u64,
    cfg: &AlarmsConfig,
) -> anyhow::Result<Quality> {
    let name = scenario.name.clone();
    let beds = scenario.beds;
    let mut ward = Ward::new(scenario, seed);
    let devices = ward.devices().to_vec();
    let ids: Vec<DeviceId> = devices
        .iter()
        .map(|d| DeviceId::new(&d.id))
        .collect::<Result<_, _>>()?;
    let mut engine = AlarmEngine::new(&name, cfg.clone())?;
    // The reference limits of the naive monitor and of "the data crossed a limit": the
    // preset's, whatever rules are being measured (so that switching an alarm off shows as a
    // miss, not as an event nobody could see).
    let reference = match cfg.preset {
        crate::alarms::Preset::None => crate::alarms::Preset::Adult,
        p => p,
    };
    let base: Vec<(u32, Option<f64>, Option<f64>)> = reference
        .rules()
        .iter()
        .map(|r| (r.metric.code, r.low, r.high))
        .collect();
    let mut clocks = ClockCorrection::default();
    let mut transitions: Vec<Transition> = Vec::new();
    let mut naive = Naive::default();
    let mut rejected = 0;
    for d in 0..devices.len() {
        transitions.extend(engine.on_device_seen(&ids[d], Some(&devices[d].bed), EPOCH));
    }
    while ward.now() < duration_ms {
        let second = ward.now();
        for e in ward.next_second() {
            let now = EPOCH + e.at as Millis;
            let device = &devices[e.device];
            let id = &ids[e.device];
            let bed = Some(device.bed.as_str());
            let stamped = now + e.clock_offset_ms;
            match &e.payload {
                Payload::Observations(readings) => {
                    let (observations, refused) =
                        sim_observations(&mut clocks, device, id, readings, now, stamped);
                    rejected += refused;
                    for o in observations {
                        naive.observe(&o, &base, now);
                        transitions.extend(engine.on_observation(&o, now));
                    }
                }
                Payload::Status(st) => {
                    let doc = ward_sim::encode::status_json(device, st, stamped);
                    match DeviceStatus::from_json(&doc) {
                        Ok(s) => transitions.extend(engine.on_device_status(id, bed, &s, now)),
                        Err(_) => rejected += 1,
                    }
                }
                Payload::Event(ev) => {
                    let doc = ward_sim::encode::event_json(ev, stamped);
                    match DeviceEvent::from_json(&doc) {
                        Ok(ev) => transitions.extend(engine.on_device_event(id, bed, &ev, now)),
                        Err(_) => rejected += 1,
                    }
                }
                Payload::Garbage(_) => rejected += 1,
                Payload::Disconnect => transitions.extend(engine.on_device_offline(id, bed, now)),
                Payload::Reconnect => transitions.extend(engine.on_device_seen(id, bed, now)),
            }
        }
        transitions.extend(engine.tick(EPOCH + second as Millis + 1000));
    }
    let end = EPOCH + ward.now() as Millis;
    let mut q = classify(&transitions, ward.truth(), &naive.crossings, end);
    q.scenario = name;
    q.beds = beds;
    q.hours = ward.now() as f64 / 3_600_000.0;
    q.naive_physiological = naive.alarms;
    q.naive_self_clearing = naive.self_clearing;
    q.rejected = rejected;
    Ok(q)
}

/// One simulated observation document (`readings`, stamped by the device at `stamped`) as
/// the hub stores it: through the MQTT JSON decoder and the pipeline's clock correction,
/// bound to the device's bed; with how many records were refused. The replay tests store a
/// ward this way too.
pub(crate) fn sim_observations(
    clocks: &mut ClockCorrection,
    device: &DeviceInfo,
    id: &DeviceId,
    readings: &[Reading],
    now: Millis,
    stamped: Millis,
) -> (Vec<Observation>, usize) {
    let limits = TimeLimits::default();
    let doc = ward_sim::encode::observations_json(readings, stamped);
    let mut decoded = decode_observations(id, &doc, now, &limits, 10_000);
    clocks.apply(&mut decoded.observations, limits.max_future_ms);
    for o in &mut decoded.observations {
        o.bed = Some(device.bed.clone());
    }
    (decoded.observations, decoded.rejects.len())
}

/// Classifies the engine's transitions against the ground truth (times in hub ms).
fn classify(
    transitions: &[Transition],
    truth: &[TruthEvent],
    crossings: &[(String, Condition, Millis)],
    end: Millis,
) -> Quality {
    let mut q = Quality::default();
    let mut all = lives(transitions);
    all.sort_by_key(|r| r.raised_at);
    let clinical: Vec<&TruthEvent> = truth.iter().filter(|e| e.class == "clinical").collect();
    let at = |ms: u64| EPOCH + ms as Millis;
    for r in &all {
        match r.kind {
            Kind::Physiological => {
                q.physiological += 1;
                q.physiological_by_priority[r.priority.index()] += 1;
                let explained = clinical.iter().any(|e| {
                    Some(&e.bed) == r.bed.as_ref()
                        && r.raised_at >= at(e.start_ms)
                        && r.raised_at <= at(e.end_ms) + recovery_ms(e)
                });
                if !explained {
                    q.unexplained += 1;
                }
            }
            Kind::Technical => q.technical += 1,
            Kind::Call => q.calls += 1,
        }
        let c = q
            .by_condition
            .entry(r.condition.map_or("?", |c| c.as_str()).to_owned())
            .or_default();
        c.0 += 1;
        q.alarms.push(format!(
            "{} {} {} at {} s, {}",
            r.bed.as_deref().unwrap_or("-"),
            r.condition.map_or("?", |c| c.as_str()),
            r.priority.as_str(),
            (r.raised_at - EPOCH) / 1000,
            r.cleared_at
                .map_or("open at the end".to_owned(), |c| format!(
                    "lasted {} s",
                    (c - r.raised_at) / 1000
                ))
        ));
        if r.self_cleared_within(10_000) {
            q.self_clearing += 1;
            c.1 += 1;
        }
    }
    let mut latencies = Vec::new();
    for e in clinical.iter().filter(|e| e.severity.unwrap_or(1.0) >= 0.8) {
        let (start, stop) = (at(e.start_ms), (at(e.end_ms) + recovery_ms(e)).min(end));
        let wanted = expected(e.kind);
        // An event whose data never crossed a limit of its condition (still ramping up when
        // the run ended) is not yet an event an alarm system could see.
        let seen = crossings.iter().any(|(b, c, t)| {
            *b == e.bed && *t >= start && *t <= stop && wanted.is_none_or(|w| w.contains(c))
        });
        if !seen {
            q.unseen += 1;
            continue;
        }
        q.true_events += 1;
        let fits = |r: &&Life| {
            r.kind == Kind::Physiological
                && r.bed.as_ref() == Some(&e.bed)
                && wanted.is_none_or(|w| r.condition.is_some_and(|c| w.contains(&c)))
        };
        let answering: Vec<&Life> = all
            .iter()
            .filter(fits)
            .filter(|r| {
                let open_at_start = r.raised_at < start && r.cleared_at.is_none_or(|c| c >= start);
                open_at_start || (r.raised_at >= start && r.raised_at <= stop)
            })
            .collect();
        let label = format!("{} {:?} @ {} s", e.bed, e.kind, e.start_ms / 1000);
        match answering.first() {
            None => q.missed.push(label),
            Some(first) => {
                q.alarmed += 1;
                // From when the bed's data first crossed a limit of the event's condition
                // (the event's own ramp is not the alarm system's delay).
                let crossed = crossings
                    .iter()
                    .filter(|(b, c, t)| {
                        *b == e.bed
                            && *t >= start
                            && *t <= stop
                            && wanted.is_none_or(|w| w.contains(c))
                    })
                    .map(|(_, _, t)| *t)
                    .min()
                    .unwrap_or(start);
                latencies.push((first.raised_at - crossed).max(0) as f64 / 1000.0);
                let top = answering
                    .iter()
                    .map(|r| r.priority)
                    .max()
                    .unwrap_or(Priority::Low);
                q.event_priority[top.index()] += 1;
                let mut per_condition: HashMap<Option<Condition>, usize> = HashMap::new();
                for r in answering.iter().filter(|r| r.raised_at >= start) {
                    *per_condition.entry(r.condition).or_default() += 1;
                }
                if per_condition.values().any(|&n| n > 1) {
                    q.multi_alarm_events.push(label);
                }
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    if !latencies.is_empty() {
        q.latency_p50_s = latencies[latencies.len() / 2];
        q.latency_max_s = latencies[latencies.len() - 1];
    }
    q
}

/// Prints a table (markdown) of every scenario.
pub fn run(a: AlarmQualityArgs) -> anyhow::Result<()> {
    let cfg: AlarmsConfig = match &a.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p)?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => AlarmsConfig::default(),
    };
    let names: Vec<String> = if a.scenario.is_empty() {
        SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        a.scenario.clone()
    };
    println!(
        "alarm quality: seed {}, {} simulated per scenario, preset {:?}{}",
        a.seed,
        humantime::format_duration(a.duration),
        cfg.preset,
        if a.rules.is_some() {
            " + rules file"
        } else {
            ""
        }
    );
    println!();
    println!("| scenario | true events alarmed (at high) | latency p50 / max | events with >1 alarm | physiological alarms /bed/day (raised: high, medium, low) | unexplained | naive /bed/day | fewer than naive | self-clearing <10 s (naive) | technical /bed/day |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for name in names {
        let s = Scenario::load(&name)?;
        let started = std::time::Instant::now();
        let q = quality(s, a.seed, a.duration.as_millis() as u64, &cfg)?;
        println!(
            "| {} | {}/{} ({}) | {:.0} s / {:.0} s | {} | {:.1} ({}, {}, {}) | {} | {:.1} | {:.0} % | {:.1} % ({:.1} %) | {:.1} |",
            q.scenario,
            q.alarmed,
            q.true_events,
            q.event_priority[2],
            q.latency_p50_s,
            q.latency_max_s,
            q.multi_alarm_events.len(),
            q.physiological_per_bed_day(),
            q.physiological_by_priority[2],
            q.physiological_by_priority[1],
            q.physiological_by_priority[0],
            q.unexplained,
            q.naive_per_bed_day(),
            q.reduction() * 100.0,
            q.self_clearing_share() * 100.0,
            q.naive_self_clearing_share() * 100.0,
            q.technical_per_bed_day(),
        );
        let breakdown: Vec<String> = q
            .by_condition
            .iter()
            .map(|(c, (n, quick))| format!("{c} {n} ({quick} <10 s)"))
            .collect();
        eprintln!("  {}: {}", q.scenario, breakdown.join(", "));
        if a.list {
            for line in &q.alarms {
                eprintln!("    {line}");
            }
        }
        for m in &q.missed {
            eprintln!("  {}: MISSED {m}", q.scenario);
        }
        for m in &q.multi_alarm_events {
            eprintln!("  {}: more than one alarm for {m}", q.scenario);
        }
        eprintln!(
            "  {}: {} raised ({} physiological, {} technical, {} calls), {} records refused, {:.1} s",
            q.scenario,
            q.physiological + q.technical + q.calls,
            q.physiological,
            q.technical,
            q.calls,
            q.rejected,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

mod naive;
#[cfg(test)]
mod tests;

use naive::Naive;
