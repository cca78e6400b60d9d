//! Escalation chains: who is told about an alarm, when, and until when. Pure: the roster,
//! the alarm's facts and the time come in; what to send comes out. The service records every
//! action in the audit log before it is delivered.
//!
//! A chain (per priority and kind, from `[dissemination]`) is a list of steps, each a target
//! (the bed's primary nurse, their buddy, the ward's charge nurse, the whole ward team) and
//! how long after the alarm it is reached. A step whose target is nobody (a bed without an
//! assigned nurse, no buddy) goes to the charge nurse instead; a step that reaches nobody at
//! all is skipped; an alarm whose whole chain reached nobody is reported as such. Everyone
//! told and not yet answered is reminded every `remind_every`. The chain stops when someone
//! accepts the alarm, when it is acknowledged at the station, or when it clears; a person who
//! rejects it sends it at once to the next step.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use wardhub_adapters::model::Millis;

use crate::alarms::{AlarmId, Kind, Priority};

/// Whom a step reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The nurse assigned to the bed.
    Primary,
    /// The primary nurse's buddy.
    Buddy,
    /// The ward's charge nurse.
    Charge,
    /// Everyone on the ward's shift.
    Ward,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Primary => "primary",
            Target::Buddy => "buddy",
            Target::Charge => "charge",
            Target::Ward => "ward",
        }
    }
}

/// One step of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub to: Target,
    /// After the alarm was raised.
    pub after: Millis,
}

/// A chain and what it applies to (`None`: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub priority: Option<Priority>,
    pub kind: Option<Kind>,
    pub steps: Vec<Step>,
    pub remind_every: Millis,
}

/// One bed's nurses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    #[serde(default)]
    pub primary: Option<String>,
    #[serde(default)]
    pub buddy: Option<String>,
}

/// Who is on shift for the ward now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// Bed → its primary nurse and buddy.
    #[serde(default)]
    pub beds: BTreeMap<String, Assignment>,
    #[serde(default)]
    pub charge: Option<String>,
    /// Everyone on the shift (the `ward` target).
    #[serde(default)]
    pub team: BTreeSet<String>,
}

impl Roster {
    /// The people a target names for `bed`; a primary or buddy missing goes to the charge
    /// nurse (a bed without an assigned nurse is the charge nurse's).
    pub fn resolve(&self, target: Target, bed: Option<&str>) -> Vec<String> {
        let slot = bed.and_then(|b| self.beds.get(b));
        let one = |p: Option<&String>| {
            p.or(self.charge.as_ref())
                .map(|p| vec![p.clone()])
                .unwrap_or_default()
        };
        match target {
            Target::Primary => one(slot.and_then(|s| s.primary.as_ref())),
            Target::Buddy => one(slot.and_then(|s| s.buddy.as_ref())),
            Target::Charge => self.charge.iter().cloned().collect(),
            Target::Ward => self.team.iter().cloned().collect(),
        }
    }
}

/// What the service does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Tell `user` about the alarm (first time at this step, or a reminder).
    Notify {
        alarm: AlarmId,
        user: String,
        step: usize,
        target: Target,
        reminder: bool,
    },
    /// The chain ended and nobody was ever told (no roster, nobody on shift).
    ReachedNobody { alarm: AlarmId },
    /// The chain stopped: accepted by someone, acknowledged at the station, or cleared.
    Stopped { alarm: AlarmId, why: &'static str },
}

#[derive(Debug, Clone)]
struct Dispatch {
    chain: usize,
    bed: Option<String>,
    raised_at: Millis,
    /// The next step not yet reached.
    next: usize,
    /// Told and not answered: user → (step, last told).
    told: BTreeMap<String, (usize, Millis)>,
    /// Whoever was ever told.
    ever: BTreeSet<String>,
    /// Moved forward by rejections: steps count from here.
    shift: Millis,
}

/// The open dispatches.
#[derive(Debug, Default)]
pub struct Dispatcher {
    chains: Vec<Chain>,
    open: BTreeMap<AlarmId, Dispatch>,
}

impl Dispatcher {
    pub fn new(chains: Vec<Chain>) -> Dispatcher {
        Dispatcher {
            chains,
            open: BTreeMap::new(),
        }
    }

    /// The first chain that applies to an alarm of this priority and kind.
    fn chain_for(&self, priority: Priority, kind: Kind) -> Option<usize> {
        self.chains.iter().position(|c| {
            c.priority.is_none_or(|p| p == priority) && c.kind.is_none_or(|k| k == kind)
        })
    }

    /// An alarm was raised: its chain starts (steps due at once are reached now).
    #[allow(clippy::too_many_arguments)]
    pub fn raised(
        &mut self,
        alarm: AlarmId,
        priority: Priority,
        kind: Kind,
        bed: Option<&str>,
        raised_at: Millis,
        now: Millis,
        roster: &Roster,
    ) -> Vec<Action> {
        let Some(chain) = self.chain_for(priority, kind) else {
            return Vec::new();
        };
        self.open.insert(
            alarm,
            Dispatch {
                chain,
                bed: bed.map(str::to_owned),
                raised_at,
                next: 0,
                told: BTreeMap::new(),
                ever: BTreeSet::new(),
                shift: 0,
            },
        );
        self.advance(alarm, now, roster)
    }

    /// Steps that fell due and reminders, for every open alarm.
    pub fn tick(&mut self, now: Millis, roster: &Roster) -> Vec<Action> {
        let ids: Vec<AlarmId> = self.open.keys().copied().collect();
        ids.into_iter()
            .flat_map(|id| self.advance(id, now, roster))
            .collect()
    }

    fn advance(&mut self, alarm: AlarmId, now: Millis, roster: &Roster) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(d) = self.open.get_mut(&alarm) else {
            return out;
        };
        let chain = &self.chains[d.chain];
        // Reminders first: of those told before now.
        for (user, (step, last)) in d.told.iter_mut() {
            if chain.remind_every > 0 && now - *last >= chain.remind_every {
                *last = now;
                out.push(Action::Notify {
                    alarm,
                    user: user.clone(),
                    step: *step,
                    target: chain.steps[*step].to,
                    reminder: true,
                });
            }
        }
        while d.next < chain.steps.len() && d.raised_at + chain.steps[d.next].after - d.shift <= now
        {
            let step = d.next;
            d.next += 1;
            let to = chain.steps[step].to;
            for user in roster.resolve(to, d.bed.as_deref()) {
                if d.told.contains_key(&user) {
                    continue; // told already (the charge nurse standing in for a primary)
                }
                d.told.insert(user.clone(), (step, now));
                d.ever.insert(user.clone());
                out.push(Action::Notify {
                    alarm,
                    user,
                    step,
                    target: to,
                    reminder: false,
                });
            }
        }
        if d.next == chain.steps.len() && d.ever.is_empty() {
            out.push(Action::ReachedNobody { alarm });
            self.open.remove(&alarm);
        }
        out
    }

    /// `user` accepted the alarm: the chain stops.
    pub fn accepted(&mut self, alarm: AlarmId) -> Vec<Action> {
        self.stop(alarm, "accepted")
    }

    /// Acknowledged at the station, or cleared: the chain stops.
    pub fn ended(&mut self, alarm: AlarmId, why: &'static str) -> Vec<Action> {
        self.stop(alarm, why)
    }

    fn stop(&mut self, alarm: AlarmId, why: &'static str) -> Vec<Action> {
        match self.open.remove(&alarm) {
            Some(_) => vec![Action::Stopped { alarm, why }],
            None => Vec::new(),
        }
    }

    /// `user` cannot take it: they are no longer reminded, and the next step is reached now.
    pub fn rejected(
        &mut self,
        alarm: AlarmId,
        user: &str,
        now: Millis,
        roster: &Roster,
    ) -> Vec<Action> {
        let Some(d) = self.open.get_mut(&alarm) else {
            return Vec::new();
        };
        d.told.remove(user);
        let chain = &self.chains[d.chain];
        if let Some(s) = chain.steps.get(d.next) {
            // The next step falls due now: later ones keep their spacing from it.
            d.shift = d.raised_at + s.after - now;
        }
        self.advance(alarm, now, roster)
    }

    /// Whether the alarm's chain is still running.
    pub fn is_open(&self, alarm: AlarmId) -> bool {
        self.open.contains_key(&alarm)
    }
}

#[cfg(test)]
mod tests;
