//! One source's condition tracking: per tier the start of its condition and the clear delay,
//! per device the tracks of every metric and technical cause, and [`step`], which advances a
//! track and hands each side's view to the [`Book`] that owns the alarm.

use wardhub_model::{DeviceId, Millis, METRICS};

use super::book::{Book, Ctx, Ended, GroupKey, View};
use super::compiled::{CompiledRule, Tier, EXTRA_LOW, HIGH, LOW, SLOTS};
use super::event::EventKind;
use super::record::{Cause, Condition, MetricRef, Side, Transition};
use super::rules::metric_index;

/// One source's tracker: per tier the start of its condition, and the groups (conditions) it
/// is a member of, per side (see [`Book`]).
#[derive(Debug, Clone, Default)]
pub(super) struct Track {
    pub(super) since: [Option<Millis>; SLOTS],
    /// Per tier, since when a matured condition has been seen ended (see `clear_ms`).
    pub(super) clearing: [Option<Millis>; SLOTS],
    pub(super) group: [Option<u64>; 2],
    /// Latest usable value.
    pub(super) last: Option<f64>,
    /// Most extreme value of the current episode.
    pub(super) worst: Option<f64>,
}

impl Track {
    pub(super) fn idle(&self) -> bool {
        self.since.iter().all(Option::is_none)
    }
}

#[derive(Debug, Clone)]
pub(super) struct DeviceState {
    pub(super) id: DeviceId,
    pub(super) bed: Option<String>,
    pub(super) watched: bool,
    pub(super) last_seen: Millis,
    pub(super) limits: Vec<Track>,
    pub(super) sensor: Vec<Track>,
    pub(super) offline: Track,
    pub(super) battery: Track,
    pub(super) skew: Track,
    /// By [`EventKind::index`].
    pub(super) events: [Track; EventKind::ALL.len()],
}

impl DeviceState {
    pub(super) fn new(id: DeviceId, bed: Option<&str>, now: Millis) -> Self {
        Self {
            id,
            bed: bed.map(str::to_owned),
            watched: false,
            last_seen: now,
            limits: vec![Track::default(); METRICS.len()],
            sensor: vec![Track::default(); METRICS.len()],
            offline: Track::default(),
            battery: Track::default(),
            skew: Track::default(),
            events: Default::default(),
        }
    }

    pub(super) fn tracks_mut(&mut self) -> impl Iterator<Item = &mut Track> {
        self.limits
            .iter_mut()
            .chain(self.sensor.iter_mut())
            .chain([&mut self.offline, &mut self.battery, &mut self.skew])
            .chain(self.events.iter_mut())
    }

    pub(super) fn track_mut(&mut self, cause: Cause, metric: Option<MetricRef>) -> &mut Track {
        let i = metric.map_or(0, |m| metric_index(m.0));
        match cause {
            Cause::Limit => &mut self.limits[i],
            Cause::SensorOff => &mut self.sensor[i],
            Cause::Offline => &mut self.offline,
            Cause::BatteryLow => &mut self.battery,
            Cause::ClockSkew => &mut self.skew,
            Cause::NurseCall | Cause::BedExit | Cause::PumpOcclusion | Cause::EndOfInfusion => {
                let k = EventKind::of_cause(cause).unwrap_or(EventKind::NurseCall);
                &mut self.events[k.index()]
            }
        }
    }
}

/// How a condition is evaluated: its tiers and whether it latches.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec<'a> {
    pub(super) tiers: &'a [Option<Tier>; SLOTS],
    pub(super) latching: bool,
    /// How long the evidence that a matured condition ended must hold before it ends.
    pub(super) clear_ms: i64,
}

/// The tiers of a metric without a rule: none.
const NO_TIERS: [Option<Tier>; SLOTS] = [None; SLOTS];

impl<'a> Spec<'a> {
    /// A technical condition's: it never latches and ends at once.
    pub(super) fn technical(tiers: &'a [Option<Tier>; SLOTS]) -> Self {
        Self {
            tiers,
            latching: false,
            clear_ms: 0,
        }
    }

    /// A limit rule's; without a rule (the metric's alarm is off) no tier.
    pub(super) fn rule(rule: Option<&'a CompiledRule>) -> Self {
        match rule {
            Some(r) => Self {
                tiers: &r.tiers,
                latching: r.latching,
                clear_ms: r.clear_ms,
            },
            None => Self::technical(&NO_TIERS),
        }
    }
}

/// The tier slots of each side of a source: a limit's low side and high side are two
/// conditions (bradycardia, tachycardia); every other cause has one.
pub(super) const LIMIT_SIDES: [(Option<Side>, [usize; 2]); 2] = [
    (Some(Side::Below), [LOW, EXTRA_LOW]),
    (Some(Side::Above), [HIGH, HIGH + 1]),
];
pub(super) const ONE_SIDE: [(Option<Side>, [usize; 2]); 1] = [(None, [LOW, EXTRA_LOW])];

/// Advances one source's tracker, then hands its view of each side to the book, which owns
/// the alarm of the condition. `edges[i]`: `Some(true)` the tier's condition is present,
/// `Some(false)` it is over, `None` no evidence either way.
#[allow(clippy::too_many_arguments)]
pub(super) fn step(
    book: &mut Book,
    track: &mut Track,
    spec: Spec<'_>,
    edges: [Option<bool>; SLOTS],
    value: Option<f64>,
    ctx: Ctx<'_>,
    now: Millis,
    out: &mut Vec<Transition>,
) {
    // A condition whose delay ran out since the last tick, ending now: it outlasted its delay,
    // so it is an alarm (raised when it matured), not a suppression.
    let side_of = |i: usize| usize::from(ctx.cause == Cause::Limit && i >= HIGH);
    let matured_at = (0..SLOTS)
        .filter(|&i| edges[i] == Some(false))
        .filter(|&i| track.group[side_of(i)].is_none_or(|g| !book.has_alarm(g)))
        .filter_map(|i| Some(track.since[i]? + spec.tiers[i]?.delay_ms))
        .filter(|&at| at <= now)
        .min();
    if let Some(at) = matured_at {
        step(book, track, spec, HOLD, None, ctx, at, out);
    }
    if track.idle() && !edges.contains(&Some(true)) {
        if value.is_some() {
            track.last = value;
        }
        return;
    }
    let before = track.since;
    let tick = value.is_none() && edges == HOLD;
    for (i, edge) in edges.iter().enumerate() {
        let matured = |t: Tier| track.since[i].is_some_and(|s| now.saturating_sub(s) >= t.delay_ms);
        match (spec.tiers[i], edge) {
            (None, _) => {
                track.since[i] = None;
                track.clearing[i] = None;
            }
            // A matured condition ends once the evidence held for `clear_ms`: an alarm does
            // not flicker off and on with a value hovering at its clear margin.
            (Some(t), Some(false)) if spec.clear_ms > 0 && matured(t) => {
                let c = *track.clearing[i].get_or_insert(now);
                if now.saturating_sub(c) >= spec.clear_ms {
                    track.since[i] = None;
                    track.clearing[i] = None;
                }
            }
            (Some(_), Some(false)) => {
                track.since[i] = None;
                track.clearing[i] = None;
            }
            (Some(_), Some(true)) => {
                track.since[i].get_or_insert(now);
                track.clearing[i] = None;
            }
            (Some(_), None) if tick => {
                if track.clearing[i].is_some_and(|c| now.saturating_sub(c) >= spec.clear_ms) {
                    track.since[i] = None;
                    track.clearing[i] = None;
                }
            }
            // Back inside the clear margin: the condition has not ended after all.
            (Some(_), None) => track.clearing[i] = None,
        }
    }
    let was_pending = before.iter().any(Option::is_some);
    if let Some(v) = value {
        track.last = Some(v);
        if track.since.iter().any(Option::is_some) {
            let below = track.since[LOW].is_some() || track.since[EXTRA_LOW].is_some();
            track.worst = Some(match (was_pending, track.worst) {
                (true, Some(w)) if below => w.min(v),
                (true, Some(w)) => w.max(v),
                _ => v,
            });
        }
    }
    let sides: &[(Option<Side>, [usize; 2])] = if ctx.cause == Cause::Limit {
        &LIMIT_SIDES
    } else {
        &ONE_SIDE
    };
    for (n, (side, slots)) in sides.iter().enumerate() {
        let present = slots.iter().any(|&i| track.since[i].is_some());
        let was = slots.iter().any(|&i| before[i].is_some());
        if !present && track.group[n].is_none() {
            continue;
        }
        // The most severe matured tier of this side.
        let mut best: Option<Tier> = None;
        for &i in slots {
            if let (Some(t), Some(s)) = (spec.tiers[i], track.since[i]) {
                if now.saturating_sub(s) >= t.delay_ms
                    && best.is_none_or(|b| t.priority > b.priority)
                {
                    best = Some(t);
                }
            }
        }
        let ended = (was && !present).then(|| Ended {
            start: slots.iter().filter_map(|&i| before[i]).min().unwrap_or(now),
            tier: slots
                .iter()
                .filter(|&&i| before[i].is_some())
                .filter_map(|&i| spec.tiers[i])
                .max_by_key(|t| t.priority),
            worst: track.worst.or(track.last),
        });
        let view = View {
            present,
            since: slots.iter().filter_map(|&i| track.since[i]).min(),
            best,
            value: track.last,
            latching: spec.latching,
            ended,
        };
        let g = match track.group[n] {
            Some(g) => g,
            None => book.group(GroupKey::new(
                ctx.bed,
                Condition::of(ctx.cause, ctx.metric, *side),
                ctx.device,
            )),
        };
        let member = book.settle(g, &ctx, view, now, out);
        track.group[n] = member.then_some(g);
    }
}

pub(super) fn edges_of(
    tiers: &[Option<Tier>; SLOTS],
    v: f64,
    hysteresis: f64,
) -> [Option<bool>; SLOTS] {
    let mut e = [None; SLOTS];
    for (i, t) in tiers.iter().enumerate() {
        e[i] = match t {
            Some(t) => t.edge(v, hysteresis),
            None => Some(false),
        };
    }
    e
}

pub(super) fn flag(present: bool) -> [Option<bool>; SLOTS] {
    [Some(present), Some(false), Some(false), Some(false)]
}

pub(super) const HOLD: [Option<bool>; SLOTS] = [None; SLOTS];
