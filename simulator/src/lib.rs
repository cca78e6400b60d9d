//! ward-sim: a simulated hospital ward for wardhub — the demo, the end-to-end tests, and the
//! load generator.
//!
//! # Layout
//!
//! - [`device`]: the six kinds of bedside device and their protocols;
//! - [`scenario`]: scenario TOML files (`simulator/scenarios/`);
//! - [`physiology`]: a patient's vitals (baselines, drift, noise, circadian rhythm, clinical
//!   events);
//! - [`ward`]: the pure, deterministic simulation: [`Ward::new`]`(scenario, seed)` and
//!   [`Ward::step`]`(sim_time) -> Vec<Emission>`; no clock reads, no I/O;
//! - [`encode`]: emissions as MQTT JSON documents (observations, status, events) and HL7
//!   ORU^R01 messages;
//! - [`transport`]: MQTT (rumqttc, QoS 1, last will), HL7 over MLLP (awaiting the ACK), and
//!   registration through the hub's HTTP API;
//! - [`exact`]: byte-level MQTT publishers that record every acknowledgement (overload
//!   tests and `ward-sim flood`);
//! - [`flood`]: `ward-sim flood`, overload with exact accounting against wardhub or any broker;
//! - [`run`](mod@run): the runner that paces a ward in (scaled) real time over the transports and
//!   reports what happened;
//! - [`cli`]: the `ward-sim` command line.
//!
//! # Example
//!
//! ```
//! use ward_sim::{Scenario, Ward};
//! let mut ward = Ward::new(Scenario::builtin("quiet-night"), 42);
//! let first_minute = ward.step(60_000);
//! assert!(!first_minute.is_empty());
//! assert_eq!(ward.devices()[0].id, "b01-mon");
//! ```

pub mod cli;
pub mod device;
pub mod encode;
pub mod exact;
pub mod flood;
pub mod physiology;
pub mod run;
pub mod scenario;
pub mod transport;
pub mod ward;

pub use run::{run, Report, RunConfig, Running, Targets};
pub use scenario::{EventKind, Scenario};
pub use ward::{DeviceInfo, DeviceKind, Emission, Payload, Protocol, TruthEvent, Ward};
