//! The hub's alarms: the pure engine ([`wardhub_alarm_engine`], re-exported here whole) run
//! by [`AlarmService`] on the pipeline's stored observations, device messages and a one-second
//! tick, and [`AlarmStore`], the sled audit log and open-alarm set that survive a restart.
//!
//! The loop: for each accepted observation `engine.on_observation(&obs, now)`; once a second
//! `engine.tick(now)`; commands `acknowledge` / `pause_audio`; then, for a non-empty result,
//! `store.append(&transitions)`, `db.flush_async().await`, and only then publish the
//! transitions with [`Transition::announce`]. At start-up:
//! `AlarmEngine::restore(ward, cfg, restored.alarms, restored.next_id, now)` from
//! [`AlarmStore::load`].

pub mod service;
pub mod store;

pub use service::AlarmService;
pub use store::{AlarmStore, AlarmStoreError, Restored};
pub use wardhub_alarm_engine::*;
pub use wardhub_alarm_engine::{
    book, changes, compiled, config, engine, error, event, kpi, lives, record, replay, rules,
};

#[cfg(test)]
mod tests;
