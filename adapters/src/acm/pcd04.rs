//! IHE PCD-04 Report Alert (`ORU^R40^ORU_R40`, HL7 2.6, Alert Reporter → Alert Manager): one
//! indication of one alarm per message, built by [`build_report_alarm`].
//!
//! # Layout of the message
//!
//! ```text
//! MSH|^~\&|WARDHUB|fac|AM|hosp|<now>||ORU^R40^ORU_R40|<control id>|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO
//! PID|||<id>^^^<authority>^MR||<family>^<given>^^^^^L||<YYYYMMDD>|<sex>   (no patient: PID-31 Y)
//! PV1||I|<ward>^^<bed>
//! OBR|1||<indication id>^WARDHUB|196616^MDC_EVT_ALARM^MDC|||<now>||…||^<alarm id>&WARDHUB   (OBR-29 not in a first indication)
//! PRT|<alarm id>^WARDHUB|AD||AR^Alert Recipient^HL70912|<recipient>                        (only with a recipient)
//! OBX|1|ST|196670^MDC_EVT_LO^MDC|1.0.0.0.1|SpO2 low 82 < 90|||L|||F|||<occurred at>||||<device>^WARDHUB
//! OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.0.0.2|82|%^%^UCUM|>90||||F|||<occurred at>
//! OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.0.0.0.3|start||||||F
//! OBX|4|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.0.0.0.4|active||||||F
//! OBX|5|ST|68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC|1.0.0.0.5|enabled||||||F
//! OBX|6|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.0.0.0.6|PH||||||F
//! OBX|7|ST|68485^MDC_ATTR_ALERT_TYPE^MDC|1.0.0.0.7|SP||||||F
//! ```
//!
//! Segments end with `\r`, there is no MLLP framing, and every text from data (ids, names,
//! the alarm text, the options) is escaped, so no `|^~\&` from data reaches the message bare.
//! The layout is TF-2's (Rev. 9.0: 3.4.4.1.2 and appendix B) and that of its examples E.3.1
//! and E.3.2, kept in `samples/` with other public PCD-04 messages (`samples/SOURCES.md`).
//! The choices, field by field:
//!
//! - `MSH-9` `ORU^R40^ORU_R40`; `MSH-15`/`MSH-16` `AL`/`NE` (TF-2 B.1 for PCD-04). `MSH-21`
//!   carries the OID TF-2 B.1 assigns to PCD-04, `1.3.6.1.4.1.19376.1.6.1.4.1` (the
//!   receiver is to recognise the profile by the OID alone). Published messages disagree:
//!   TF-2's own examples write `…1.6.4.4.1`, Dräger's `…1.6.4.4` (in MSH-20), GE's and the
//!   TF's end example `…1.6.1.4.1`; the table wins.
//! - `PID` as in PCD-01 (`MR` identifier type, legal name `L`). An alarm of a bed with no
//!   known patient (ACM use case A1, location-based) still has a PID, because the message
//!   structure nests PV1 in the patient group: an empty one whose `PID-31` Identity Unknown
//!   Indicator is `Y`, the way TF-2 B.5.1 names for "a PID segment is provided, the identity
//!   is unknown".
//! - `PV1-3` is `ward^^bed` (point of care, room unknown, bed), `PV1-2` `I` (required).
//! - `OBR-3` identifies the indication, `OBR-29` the alarm (TF-2 B.7, B.7.1): the first
//!   indication of an alarm ([`AcmPhase::is_first`]: start, start only, time point) has
//!   `OBR-3` = `<alarm id>^WARDHUB` and no `OBR-29`; every later one has `OBR-3` =
//!   `<alarm id>-<control id>^WARDHUB` (unique per message) and `OBR-29` =
//!   `^<alarm id>&WARDHUB` (the first indication's `OBR-3`, as the filler part of the EIP,
//!   as in E.3.1 and E.3.2). An Alert Manager echoes one of them in PCD-05, and
//!   [`super::pcd05`] reads the alarm id back from either. The TF prefers an EUI-64 in EI-3;
//!   the hub has none and names itself by `MSH-3`, as its PCD-01 does.
//! - `OBR-7` is the time the message is built (TF-2 B.7.1); the time of the indication is
//!   `OBX-14` of the event row.
//! - `PRT`, after the OBR and before the OBX rows (TF-2 B.7.1.1, B.10.3): one recipient the
//!   alarm is meant for, besides those the AM finds itself; `PRT-2` `AD`, `PRT-4` `AR` (Alert
//!   Recipient, the TF's addition to table 0912), the person in `PRT-5` (`XCN-1`, the
//!   identifier, as the roster names them). HL7 2.6 has no PRT; the TF borrows it from 2.7.
//! - The OBX rows are TF-2 B.8.5's facets, each a row of its own with `OBX-4`
//!   `1.0.0.0.<facet>` (the flat form of E.3.2, Dräger's and GE's messages: the hub does not
//!   know the device's containment tree), all with `OBX-11` `F` (B.8.6: an indication is
//!   final):
//!   1. event identification: a physiological alarm whose value is below (above) its limit
//!      is `196670^MDC_EVT_LO^MDC` (`196648^MDC_EVT_HI^MDC`), with `OBX-8` `L` (`H`); any
//!      other alarm is `196616^MDC_EVT_ALARM^MDC`. `OBX-5` (ST) is the alarm text,
//!      `OBX-14` the time of this indication ([`AcmAlarm::occurred_at`]), `OBX-18` the
//!      device (`device^WARDHUB`, inherited by the later rows);
//!   2. source identification: the metric in alarm with its value (NM, UCUM unit as in the
//!      hub's PCD-01, `OBX-7` the limit as an HL7 reference range, `>90` for a low limit of
//!      90, `<120` for a high one); with no value, `68480^MDC_ATTR_ALERT_SOURCE^MDC` naming
//!      the metric (CWE, as E.3.2 names its source); with no metric, the device (ST, as GE
//!      does);
//!   3. `68481^MDC_ATTR_EVENT_PHASE^MDC`: [`AcmPhase`];
//!   4. `68482^MDC_ATTR_ALARM_STATE^MDC`: [`AcmState`];
//!   5. `68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC`: `enabled`, or `alert-acknowledged`
//!      once a caregiver has acknowledged the alarm at the hub (TF-2 table B.8.5-3, CP 126);
//!      the hub silences nothing at the device, so audio and visual indications stay
//!      enabled;
//!   6. `68484^MDC_ATTR_ALARM_PRIORITY^MDC`: `PH`, `PM`, `PL`;
//!   7. `68485^MDC_ATTR_ALERT_TYPE^MDC`: `SP` physiological, `ST` technical, `SA` advisory
//!      (a patient call: not an alarm condition of a device).
//!
//!   Priority and type are rows, not repetitions of `OBX-8`: the TF deprecates the `OBX-8`
//!   form and has the AM ignore it when both are present.
//!
//! [`AcmAlarm::raised_at`] (when the alarm began) has no field of its own in PCD-04: the AM
//! has it as `OBX-14` of the first indication, which later ones point to with `OBR-29`.

use std::borrow::Cow;

use super::{components, fields, join, push_segment, SERVICE};
use crate::hl7::message::{escape, format_hl7_time, hl7_date, number};
use crate::model::{Metric, Millis, Patient};

/// `MSH-9`.
pub const MESSAGE_TYPE: &str = "ORU^R40^ORU_R40";
/// `MSH-21`: the IHE PCD-04 message profile, by the OID TF-2 B.1 assigns it.
pub const PROFILE: &str = "IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO";
/// The event code of a value below its alarm limit.
pub const EVT_LO: &str = "196670^MDC_EVT_LO^MDC";
/// The event code of a value above its alarm limit.
pub const EVT_HI: &str = "196648^MDC_EVT_HI^MDC";
/// The event code of any other alarm (the text says which).
pub const EVT_ALARM: &str = SERVICE;
/// `OBX-3` of the source identification row when it names no value.
pub const ALERT_SOURCE: &str = "68480^MDC_ATTR_ALERT_SOURCE^MDC";
/// `OBX-3` of the event phase row.
pub const EVENT_PHASE: &str = "68481^MDC_ATTR_EVENT_PHASE^MDC";
/// `OBX-3` of the alarm state row.
pub const ALARM_STATE: &str = "68482^MDC_ATTR_ALARM_STATE^MDC";
/// `OBX-3` of the inactivation state row.
pub const INACTIVATION_STATE: &str = "68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC";
/// `OBX-3` of the priority row.
pub const ALARM_PRIORITY: &str = "68484^MDC_ATTR_ALARM_PRIORITY^MDC";
/// `OBX-3` of the alert type row.
pub const ALERT_TYPE: &str = "68485^MDC_ATTR_ALERT_TYPE^MDC";
/// `PRT-4` of a recipient.
pub const RECIPIENT_PARTICIPATION: &str = "AR^Alert Recipient^HL70912";

/// How urgent an alarm is (`MDC_ATTR_ALARM_PRIORITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcmPriority {
    High,
    Medium,
    Low,
}

impl AcmPriority {
    /// `PH`, `PM`, `PL`.
    pub fn code(self) -> &'static str {
        match self {
            AcmPriority::High => "PH",
            AcmPriority::Medium => "PM",
            AcmPriority::Low => "PL",
        }
    }
}

/// What raised an alarm (`MDC_ATTR_ALERT_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcmKind {
    /// A patient's measurement (`SP`).
    Physiological,
    /// A device's condition: lead off, battery, no data (`ST`).
    Technical,
    /// A patient or staff call (`SA`, advisory).
    Call,
}

impl AcmKind {
    /// `SP`, `ST`, `SA`.
    pub fn code(self) -> &'static str {
        match self {
            AcmKind::Physiological => "SP",
            AcmKind::Technical => "ST",
            AcmKind::Call => "SA",
        }
    }
}

/// What this indication of the alarm says (`MDC_ATTR_EVENT_PHASE`, TF-2 table B.8.5-4 and
/// table B.8.5-3 with CP 126).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcmPhase {
    /// `start`: an alarm began; an end is to follow.
    Start,
    /// `start_only`: an alarm began; no continuation or end will follow.
    StartOnly,
    /// `tpoint`: an event of no duration.
    TimePoint,
    /// `continue`: still going on, nothing changed (a periodic reminder).
    Continue,
    /// `present`: active at this time (a refresh, e.g. after a restart).
    Present,
    /// `update`: something other than the state changed (the value, the recipient).
    Update,
    /// `escalate`: the priority went up.
    Escalate,
    /// `deescalate`: the priority went down.
    Deescalate,
    /// `inactivate`: its indications were inactivated (silenced).
    Inactivate,
    /// `acknowledged`: acknowledged at the source.
    Acknowledged,
    /// `reset`: a latched alarm was cleared.
    Reset,
    /// `stop`: paused; may start again under the same id.
    Stop,
    /// `end`: the alarm is over.
    End,
}

impl AcmPhase {
    pub const ALL: [AcmPhase; 13] = [
        AcmPhase::Start,
        AcmPhase::StartOnly,
        AcmPhase::TimePoint,
        AcmPhase::Continue,
        AcmPhase::Present,
        AcmPhase::Update,
        AcmPhase::Escalate,
        AcmPhase::Deescalate,
        AcmPhase::Inactivate,
        AcmPhase::Acknowledged,
        AcmPhase::Reset,
        AcmPhase::Stop,
        AcmPhase::End,
    ];

    /// The value in `OBX-5`.
    pub fn as_str(self) -> &'static str {
        match self {
            AcmPhase::Start => "start",
            AcmPhase::StartOnly => "start_only",
            AcmPhase::TimePoint => "tpoint",
            AcmPhase::Continue => "continue",
            AcmPhase::Present => "present",
            AcmPhase::Update => "update",
            AcmPhase::Escalate => "escalate",
            AcmPhase::Deescalate => "deescalate",
            AcmPhase::Inactivate => "inactivate",
            AcmPhase::Acknowledged => "acknowledged",
            AcmPhase::Reset => "reset",
            AcmPhase::Stop => "stop",
            AcmPhase::End => "end",
        }
    }

    /// Whether this is the first indication of an alarm: its `OBR-3` is then the alarm's
    /// id and it has no `OBR-29` (TF-2 B.7).
    pub fn is_first(self) -> bool {
        matches!(
            self,
            AcmPhase::Start | AcmPhase::StartOnly | AcmPhase::TimePoint
        )
    }
}

/// The state of the alarm condition (`MDC_ATTR_ALARM_STATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcmState {
    /// The condition exists.
    Active,
    /// The condition is over but held so that someone sees it.
    Latched,
    /// The condition is over.
    Inactive,
}

impl AcmState {
    /// The value in `OBX-5`.
    pub fn as_str(self) -> &'static str {
        match self {
            AcmState::Active => "active",
            AcmState::Latched => "latched",
            AcmState::Inactive => "inactive",
        }
    }
}

/// One indication of one alarm, as the hub reports it to the Alert Manager.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmAlarm {
    /// The hub's id of the alarm: the same in all its indications.
    pub id: u64,
    /// `PV1-3.1`, point of care.
    pub ward: String,
    /// `PV1-3.3`.
    pub bed: Option<String>,
    /// `PID`; none for an alarm of a bed without a known patient.
    pub patient: Option<Patient>,
    /// `OBX-18` of the event row.
    pub device_id: String,
    pub priority: AcmPriority,
    pub kind: AcmKind,
    /// The metric in alarm, if any.
    pub metric: Option<Metric>,
    /// Its current value.
    pub value: Option<f64>,
    /// The alarm limit it crossed.
    pub limit: Option<f64>,
    /// For people (the event row's `OBX-5`), e.g. `SpO2 low 82 < 90`.
    pub text: String,
    pub phase: AcmPhase,
    pub state: AcmState,
    /// A caregiver acknowledged it at the hub.
    pub acknowledged: bool,
    /// The time of this phase (`OBX-14` of the event row).
    pub occurred_at: Millis,
    /// When the alarm began (not written: see the module docs).
    pub raised_at: Millis,
    /// The person it is meant for (`PRT-5`), besides those the AM finds itself.
    pub recipient: Option<String>,
}

/// What the hub puts in the header of its PCD-04 messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcd04Options {
    /// MSH-3, and the namespace of `OBR-3`, `OBR-29`, `PRT-1` and `OBX-18`.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// MSH-5.
    pub receiving_application: String,
    /// MSH-6.
    pub receiving_facility: String,
    /// PID-3.4 when the patient's identifier names no assigning authority.
    pub patient_authority_default: Option<String>,
}

impl Default for Pcd04Options {
    fn default() -> Self {
        Pcd04Options {
            sending_application: "WARDHUB".into(),
            sending_facility: String::new(),
            receiving_application: String::new(),
            receiving_facility: String::new(),
            patient_authority_default: None,
        }
    }
}

/// Builds the PCD-04 of one indication of `alarm` (segments ended by `\r`, without MLLP
/// framing). `control_id` (`MSH-10`) must be unique per message; `now` is `MSH-7` and
/// `OBR-7`.
pub fn build_report_alarm(
    alarm: &AcmAlarm,
    control_id: &str,
    now: Millis,
    opts: &Pcd04Options,
) -> String {
    let mut out = String::with_capacity(1024);
    let app = opts.sending_application.as_str();
    let now_s = format_hl7_time(now);

    // MSH-1 is the field separator itself, so the fields are written from MSH-2 on.
    let mut msh = fields(20);
    msh[0] = "^~\\&".into();
    msh[1] = escape(app);
    msh[2] = escape(&opts.sending_facility);
    msh[3] = escape(&opts.receiving_application);
    msh[4] = escape(&opts.receiving_facility);
    msh[5] = now_s.as_str().into();
    msh[7] = MESSAGE_TYPE.into();
    msh[8] = escape(control_id);
    msh[9] = "P".into();
    msh[10] = "2.6".into();
    msh[13] = "AL".into();
    msh[14] = "NE".into();
    msh[16] = "UNICODE UTF-8".into();
    msh[19] = PROFILE.into();
    push_segment(&mut out, "MSH", &msh);

    push_pid(&mut out, alarm.patient.as_ref(), opts);
    push_segment(
        &mut out,
        "PV1",
        &[
            "".into(),
            "I".into(),
            components(&[&alarm.ward, "", alarm.bed.as_deref().unwrap_or("")]).into(),
        ],
    );

    let id = alarm.id.to_string();
    let mut obr = fields(29);
    obr[0] = "1".into();
    if alarm.phase.is_first() {
        obr[2] = components(&[&id, app]).into();
    } else {
        obr[2] = components(&[&format!("{id}-{control_id}"), app]).into();
        obr[28] = format!("^{}", join(&[&id, app], '&')).into();
    }
    obr[3] = SERVICE.into();
    obr[6] = now_s.as_str().into();
    push_segment(&mut out, "OBR", &obr);

    if let Some(r) = alarm.recipient.as_deref().filter(|r| !r.trim().is_empty()) {
        push_segment(
            &mut out,
            "PRT",
            &[
                components(&[&id, app]).into(),
                "AD".into(),
                "".into(),
                RECIPIENT_PARTICIPATION.into(),
                escape(r.trim()),
            ],
        );
    }

    let occurred = format_hl7_time(alarm.occurred_at);
    let direction = direction(alarm);
    let mut event = obx_row(1, "ST", event_code(alarm, direction), escape(&alarm.text));
    if let Some(d) = direction {
        event[7] = d.flag().into();
    }
    event[13] = occurred.as_str().into();
    event[17] = components(&[&alarm.device_id, app]).into();
    push_segment(&mut out, "OBX", &event);

    let source = match (alarm.metric, alarm.value.filter(|v| v.is_finite())) {
        (Some(m), Some(v)) => {
            let unit = escape(m.unit);
            let mut row = obx_row(2, "NM", metric_code(m).into(), number(v).into());
            row[5] = format!("{unit}^{unit}^UCUM").into();
            if let (Some(d), Some(limit)) = (direction, alarm.limit) {
                row[6] = d.range(limit).into();
            }
            row[13] = occurred.as_str().into();
            row
        }
        (Some(m), None) => obx_row(2, "CWE", ALERT_SOURCE.into(), metric_code(m).into()),
        (None, _) => obx_row(2, "ST", ALERT_SOURCE.into(), escape(&alarm.device_id)),
    };
    push_segment(&mut out, "OBX", &source);

    let inactivation = if alarm.acknowledged {
        "alert-acknowledged"
    } else {
        "enabled"
    };
    let facets = [
        (EVENT_PHASE, alarm.phase.as_str()),
        (ALARM_STATE, alarm.state.as_str()),
        (INACTIVATION_STATE, inactivation),
        (ALARM_PRIORITY, alarm.priority.code()),
        (ALERT_TYPE, alarm.kind.code()),
    ];
    for (facet, (code, value)) in (3..).zip(facets) {
        push_segment(
            &mut out,
            "OBX",
            &obx_row(facet, "ST", code.into(), value.into()),
        );
    }
    out
}

/// An OBX row of facet `facet` (also its set id): OBX-1 to OBX-5, and OBX-11 `F`; 18 fields.
fn obx_row<'a>(
    facet: usize,
    value_type: &'a str,
    code: Cow<'a, str>,
    value: Cow<'a, str>,
) -> Vec<Cow<'a, str>> {
    let mut row = fields(18);
    row[0] = facet.to_string().into();
    row[1] = value_type.into();
    row[2] = code;
    row[3] = format!("1.0.0.0.{facet}").into();
    row[4] = value;
    row[10] = "F".into();
    row
}

fn push_pid(out: &mut String, patient: Option<&Patient>, opts: &Pcd04Options) {
    let Some(p) = patient else {
        let mut pid = fields(31);
        pid[30] = "Y".into();
        push_segment(out, "PID", &pid);
        return;
    };
    let authority = p
        .authority
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .or(opts.patient_authority_default.as_deref())
        .unwrap_or("");
    let name = components(&[
        p.family.as_deref().unwrap_or(""),
        p.given.as_deref().unwrap_or(""),
    ]);
    let name = if name.is_empty() {
        name
    } else {
        format!("{name}^^^^^L")
    };
    push_segment(
        out,
        "PID",
        &[
            "".into(),
            "".into(),
            components(&[&p.id, "", "", authority, "MR"]).into(),
            "".into(),
            name.into(),
            "".into(),
            p.birth_date
                .as_deref()
                .and_then(hl7_date)
                .unwrap_or_default()
                .into(),
            escape(p.sex.as_deref().unwrap_or("").trim()),
        ],
    );
}

/// Which side of its limit a physiological value is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Low,
    High,
}

impl Direction {
    /// `OBX-8` (HL7 table 0078).
    fn flag(self) -> &'static str {
        match self {
            Direction::Low => "L",
            Direction::High => "H",
        }
    }

    /// `OBX-7`: the range the value should be in (HL7 2.6 7.4.2.7: `>lower` when there is
    /// no upper limit, `<upper` when there is no lower one).
    fn range(self, limit: f64) -> String {
        match self {
            Direction::Low => format!(">{}", number(limit)),
            Direction::High => format!("<{}", number(limit)),
        }
    }
}

fn direction(a: &AcmAlarm) -> Option<Direction> {
    if a.kind != AcmKind::Physiological {
        return None;
    }
    let (v, l) = (a.value?, a.limit?);
    if !(v.is_finite() && l.is_finite()) {
        return None;
    }
    if v < l {
        Some(Direction::Low)
    } else if v > l {
        Some(Direction::High)
    } else {
        None
    }
}

fn event_code(a: &AcmAlarm, d: Option<Direction>) -> Cow<'static, str> {
    match (a.metric, d) {
        (Some(_), Some(Direction::Low)) => EVT_LO.into(),
        (Some(_), Some(Direction::High)) => EVT_HI.into(),
        _ => EVT_ALARM.into(),
    }
}

/// `code^REFID^MDC`.
fn metric_code(m: Metric) -> String {
    format!("{}^{}^MDC", m.code, m.refid)
}

#[cfg(test)]
mod tests;
