//! `[dissemination]`: who an alarm is sent to, and when (docs/DISSEMINATION.md).

use std::time::Duration;

use serde::Deserialize;
use wardhub_adapters::duration::humane;

use super::chain::{Chain, Step, Target};
use crate::alarms::{Kind, Priority};

/// One step: a target and how long after the alarm.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    pub to: Target,
    #[serde(with = "humane", default)]
    pub after: Duration,
}

/// One chain (`[[dissemination.chains]]`): the first that matches an alarm's priority and
/// kind is its chain; an alarm no chain matches stays on the station and the ward topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub kind: Option<Kind>,
    pub steps: Vec<StepConfig>,
    /// Everyone told and not answered is told again this often (`off`: never).
    #[serde(with = "wardhub_adapters::duration::opt_humane", default)]
    pub remind_every: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisseminationConfig {
    pub enabled: bool,
    pub chains: Vec<ChainConfig>,
    /// IHE PCD ACM to the hospital's Alarm Manager (off when absent).
    pub acm: Option<super::acm::AcmConfig>,
}

impl Default for DisseminationConfig {
    /// The chains: high primary → 30 s buddy → 60 s charge → 120 s ward; medium
    /// primary → 2 min buddy → 4 min charge; calls primary → 1 min buddy → 2 min charge;
    /// technical primary → 5 min charge. Low physiological alarms stay on the station.
    fn default() -> Self {
        let step = |to, s| StepConfig {
            to,
            after: Duration::from_secs(s),
        };
        let chain = |priority, kind, steps, remind| ChainConfig {
            priority,
            kind,
            steps,
            remind_every: Some(Duration::from_secs(remind)),
        };
        use Target::*;
        DisseminationConfig {
            enabled: false,
            acm: None,
            chains: vec![
                chain(
                    None,
                    Some(Kind::Call),
                    vec![step(Primary, 0), step(Buddy, 60), step(Charge, 120)],
                    60,
                ),
                chain(
                    None,
                    Some(Kind::Technical),
                    vec![step(Primary, 0), step(Charge, 300)],
                    300,
                ),
                chain(
                    Some(Priority::High),
                    None,
                    vec![
                        step(Primary, 0),
                        step(Buddy, 30),
                        step(Charge, 60),
                        step(Ward, 120),
                    ],
                    30,
                ),
                chain(
                    Some(Priority::Medium),
                    None,
                    vec![step(Primary, 0), step(Buddy, 120), step(Charge, 240)],
                    120,
                ),
            ],
        }
    }
}

impl DisseminationConfig {
    pub fn chains(&self) -> Result<Vec<Chain>, String> {
        self.chains
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if c.steps.is_empty() {
                    return Err(format!("dissemination.chains[{i}]: no steps"));
                }
                if c.steps.windows(2).any(|w| w[1].after < w[0].after) {
                    return Err(format!(
                        "dissemination.chains[{i}]: steps must come in time order"
                    ));
                }
                let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                Ok(Chain {
                    priority: c.priority,
                    kind: c.kind,
                    steps: c
                        .steps
                        .iter()
                        .map(|s| Step {
                            to: s.to,
                            after: ms(s.after),
                        })
                        .collect(),
                    remind_every: c.remind_every.map_or(0, ms),
                })
            })
            .collect()
    }
}
