//! The command side: what people and the rules API ask of the engine (rules changes,
//! acknowledgement, audio pause), each checked before it changes anything.

use std::time::Duration;

use wardhub_model::Millis;

use super::AlarmEngine;
use crate::book::transition;
use crate::compiled::{millis, CompiledRules};
use crate::error::{AlarmError, Result};
use crate::record::{AckReason, Alarm, AlarmId, AlarmState, Event, PauseTarget, Transition};
use crate::rules::RuleSet;

impl AlarmEngine {
    /// Replaces the rules. Open alarms stay; the next evaluation applies the new limits (a
    /// removed rule ends its alarms' conditions).
    pub fn set_rules(&mut self, rules: RuleSet) -> Result<()> {
        self.rules = CompiledRules::of(&rules)?;
        self.cfg.preset = rules.preset;
        self.cfg.rules = rules.rules.clone();
        self.cfg.beds = rules.beds.clone();
        self.rule_set = rules;
        Ok(())
    }

    /// Acknowledges an open alarm. A latched alarm whose condition already ended clears too.
    pub fn acknowledge(
        &mut self,
        id: AlarmId,
        user: &str,
        reason: Option<AckReason>,
        note: Option<&str>,
        now: Millis,
    ) -> Result<Vec<Transition>> {
        check_user(user)?;
        if note.is_some_and(|n| n.chars().count() > 500) {
            return Err(AlarmError::NoteTooLong);
        }
        let alarm = self.active(id, "acknowledge")?;
        alarm.state = AlarmState::Acknowledged;
        alarm.acknowledged_by = Some(user.to_owned());
        alarm.acknowledged_at = Some(now);
        alarm.ack_reason = reason;
        alarm.ack_note = note.map(str::to_owned);
        alarm.audio_paused_until = None;
        alarm.escalated_priority = None;
        alarm.updated_at = now;
        let mut out = vec![transition(
            Event::Acknowledged,
            alarm,
            now,
            Some(user),
            None,
        )];
        if !alarm.condition_present {
            self.book.clear(
                id,
                now,
                Some(user),
                Some("acknowledged after its condition ended".to_owned()),
                &mut out,
            );
        }
        Ok(out)
    }

    /// Pauses the audio of one active alarm, or of every active alarm of a bed, for
    /// `duration` (default: the configured audio pause).
    pub fn pause_audio(
        &mut self,
        target: PauseTarget<'_>,
        user: &str,
        duration: Option<Duration>,
        now: Millis,
    ) -> Result<Vec<Transition>> {
        check_user(user)?;
        let d = duration.unwrap_or(self.cfg.audio_pause);
        if d.is_zero() || d > self.cfg.audio_pause_max {
            return Err(AlarmError::PauseTooLong {
                requested_s: d.as_secs(),
                max_s: self.cfg.audio_pause_max.as_secs(),
            });
        }
        let until = now.saturating_add(millis(d));
        let mut out = Vec::new();
        let mut pause = |a: &mut Alarm| {
            a.audio_paused_until = Some(until);
            a.updated_at = now;
            out.push(transition(Event::AudioPaused, a, now, Some(user), None));
        };
        match target {
            PauseTarget::Alarm(id) => {
                pause(self.active(id, "pause audio")?);
            }
            PauseTarget::Bed(bed) => {
                for a in self.book.open.values_mut() {
                    if a.state == AlarmState::Active && a.bed.as_deref() == Some(bed) {
                        pause(a);
                    }
                }
            }
        }
        Ok(out)
    }
}

impl AlarmEngine {
    /// The open alarm `id`, which `action` needs to be active.
    fn active(&mut self, id: AlarmId, action: &'static str) -> Result<&mut Alarm> {
        let alarm = self
            .book
            .open
            .get_mut(&id)
            .ok_or(AlarmError::UnknownAlarm(id))?;
        if alarm.state != AlarmState::Active {
            return Err(AlarmError::InvalidState {
                id,
                state: alarm.state.as_str(),
                action,
            });
        }
        Ok(alarm)
    }
}

fn check_user(user: &str) -> Result<()> {
    let n = user.chars().count();
    if n == 0 || n > 64 || user.trim() != user || user.chars().any(char::is_control) {
        return Err(AlarmError::InvalidUser);
    }
    Ok(())
}
