//! IHE PCD Alarm Communication Management (ACM): the hub as the Alert Reporter (AR) of an
//! Alert Manager (AM), the nurse-call or messaging server that carries alarms to phones.
//!
//! - [PCD-04] Report Alert, `ORU^R40^ORU_R40`, AR → AM: one alarm indication (start, update,
//!   escalation, end, …) per message, built by [`pcd04::build_report_alarm`];
//! - [PCD-05] Report Alert Status, `ORA^R41^ORA_R41`, AM → AR: what became of it (delivered,
//!   read, accepted, rejected, …), decoded by [`pcd05::decode_status`];
//! - [`status_listener`]: [`status_listener::StatusListener`], the MLLP listener the AM sends
//!   PCD-05 to, handing each status to the hub's [`status_listener::StatusHandler`].
//!
//! The sending of PCD-04 (connection, retries) is the hub's: this module only builds the text.
//! The profile is IHE PCD TF-2 Rev. 9.0 (2019), sections 3.4 and 3.5 and appendix B; the
//! public messages the layout was compared with are in `samples/` (`samples/SOURCES.md`).
//!
//! ```
//! use wardhub_adapters::acm::pcd04::*;
//! use wardhub_adapters::model::metric_by_name;
//! let alarm = AcmAlarm {
//!     id: 42,
//!     ward: "ICU".into(),
//!     bed: Some("B-07".into()),
//!     patient: None,
//!     device_id: "MON-7".into(),
//!     priority: AcmPriority::High,
//!     kind: AcmKind::Physiological,
//!     metric: metric_by_name("spo2"),
//!     value: Some(82.0),
//!     limit: Some(90.0),
//!     text: "SpO2 low 82 < 90".into(),
//!     phase: AcmPhase::Start,
//!     state: AcmState::Active,
//!     acknowledged: false,
//!     occurred_at: 1_795_168_800_000,
//!     raised_at: 1_795_168_800_000,
//!     recipient: None,
//! };
//! let msg = build_report_alarm(&alarm, "A42-1", 1_795_168_800_500, &Pcd04Options::default());
//! assert!(msg.contains("OBX|1|ST|196670^MDC_EVT_LO^MDC|1.0.0.0.1|SpO2 low 82 < 90|"));
//! ```
//!
//! [PCD-04]: pcd04
//! [PCD-05]: pcd05

use std::borrow::Cow;

use crate::hl7::message::escape;

pub mod pcd04;
pub mod pcd05;
pub mod status_listener;

pub use status_listener::{StatusListener, ACM_NAME};

/// `OBR-4` of every ACM message (TF-2 B.7.1: "the identification of the packaged message
/// content"; the older `ALARM^ALARM` is deprecated there).
pub const SERVICE: &str = "196616^MDC_EVT_ALARM^MDC";

/// `n` empty fields.
fn fields<'a>(n: usize) -> Vec<Cow<'a, str>> {
    vec![Cow::Borrowed(""); n]
}

/// Writes `name|f1|f2|…\r`, without trailing empty fields. The fields are already encoded.
fn push_segment(out: &mut String, name: &str, fields: &[Cow<'_, str>]) {
    let n = fields
        .iter()
        .rposition(|f| !f.is_empty())
        .map_or(0, |i| i + 1);
    out.push_str(name);
    for f in &fields[..n] {
        out.push('|');
        out.push_str(f);
    }
    out.push('\r');
}

/// Text parts, each escaped, joined with `sep` (`^` for components, `&` for
/// subcomponents), without trailing empty parts.
fn join(parts: &[&str], sep: char) -> String {
    let n = parts
        .iter()
        .rposition(|p| !p.is_empty())
        .map_or(0, |i| i + 1);
    let mut out = String::new();
    for (i, p) in parts[..n].iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(&escape(p));
    }
    out
}

/// Components, each escaped.
fn components(parts: &[&str]) -> String {
    join(parts, '^')
}
