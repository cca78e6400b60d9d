//! # wardhub
//!
//! The hub: embedded MQTT broker, ingest pipeline, sled store, alarm engine, HTTP API.

pub mod alarms;
