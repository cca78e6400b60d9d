//! HL7 v2 over MLLP: ORU^R01 (IHE PCD-01) from devices and gateways, and the hospital's ADT
//! feed (admit, transfer, discharge) for patient context.
//!
//! Layout, one file per component:
//! - [`mllp`]: the pure MLLP framer (check → parse → advance);
//! - [`message`]: the HL7 v2 parser (delimiters, segments, fields, repetitions, components,
//!   escapes) and the ACK builder;
//! - [`oru`]: ORU^R01 → canonical observations, per-OBX rejects and skips, the PV1-3 bed claim;
//! - [`codes`]: which metric an OBX-3 names, by coding system (MDC, LOINC, configured tables);
//! - [`config`]: listen address and limits;
//! - [`adapter`]: [`Hl7MllpAdapter`], the TCP listener (its accept and connection loops
//!   serve the ADT listener too);
//! - [`adt`]: ADT A01/A02/A03/A04/A08/A11/A12/A13 → [`adt::AdtEvent`] (PID patient, PV1
//!   locations), pure;
//! - [`adt_listener`]: [`adt_listener::AdtListener`], the ADT feed's TCP listener, handing
//!   each event to the hub's [`adt_listener::AdtHandler`] and answering once it is durable.
//!
//! ```
//! use wardhub_adapters::hl7::oru::{decode, OruOptions};
//! let msg = b"MSH|^~\\&|MON-7||||20261120100000+0000||ORU^R01|42|P|2.6\r\
//!             OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|262688^MDC_DIM_PERCENT^MDC|||||F";
//! let now = 1_795_168_800_000; // 2026-11-20T10:00:00Z
//! let d = decode(msg, now, &OruOptions::default()).unwrap();
//! assert_eq!(d.observations[0].device_id.as_str(), "MON-7");
//! assert_eq!((d.observations[0].metric.name, d.observations[0].value), ("spo2", 97.0));
//! ```

pub mod adapter;
pub mod adt;
pub mod adt_listener;
pub mod codes;
pub mod config;
pub mod message;
pub mod mllp;
pub mod oru;
pub mod peers;

pub use adapter::{Hl7MllpAdapter, NAME};
pub use config::{Hl7Config, Hl7Settings};
