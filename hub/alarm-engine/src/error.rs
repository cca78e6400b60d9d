//! The error type of the alarm engine.

use super::AlarmId;

/// Everything that can go wrong in rules, engine commands and, reported through the engine's
/// callers, the alarm store.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// A rule or rule set that cannot be used; `scope` is `ward` or `bed <id>`.
    #[error("alarm rule for {metric} ({scope}): {reason}")]
    InvalidRule {
        scope: String,
        metric: String,
        reason: String,
    },
    /// A configuration value outside what the engine accepts.
    #[error("alarm configuration: {0}")]
    InvalidConfig(String),
    /// No open alarm with this id (it never existed or is already cleared).
    #[error("no open alarm {0}")]
    UnknownAlarm(AlarmId),
    /// The command does not apply to the alarm in its current state.
    #[error("alarm {id} is {state}: cannot {action}")]
    InvalidState {
        id: AlarmId,
        state: &'static str,
        action: &'static str,
    },
    /// Acknowledge and audio pause must name the person (1-64 printable characters).
    #[error("a user name of 1-64 printable characters is required")]
    InvalidUser,
    /// An acknowledgement note longer than 500 characters.
    #[error("a note may have at most 500 characters")]
    NoteTooLong,
    /// An audio pause longer than the configured maximum.
    #[error("audio pause of {requested_s} s must be longer than 0 s and at most {max_s} s")]
    PauseTooLong { requested_s: u64, max_s: u64 },
    /// A device status message that does not follow the contract.
    #[error(transparent)]
    InvalidStatus(#[from] wardhub_model::device_status::InvalidStatus),
    /// A device event message that does not follow the contract.
    #[error("device event: {0}")]
    InvalidEvent(String),
    /// The store that keeps the engine's transitions failed (the hub's `AlarmStore`; the
    /// engine itself does no I/O and never returns this).
    #[error("alarm store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = AlarmError> = std::result::Result<T, E>;
