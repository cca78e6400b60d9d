//! FHIR R4 JSON from a [`ChartBatch`]: the transaction Bundle the hub POSTs to the hospital's
//! FHIR server ([`transaction`]), and the Observations and searchset Bundle of the hub's own
//! read endpoint ([`observations`], [`searchset`]).
//!
//! # The transaction
//!
//! - One Patient entry: `fullUrl` `urn:uuid:…` (a name-based UUID from the batch id), `POST
//!   Patient` with `ifNoneExist: identifier=<patient_system>|<id>` (a conditional create: an
//!   existing patient is used, never duplicated), the identifier, `name` (family, given),
//!   `gender` from HL7 table 0001 as HL7's v2-to-FHIR map has it
//!   (`table-hl70001-to-administrative-gender`, STU1: `F` female, `M` male, `U` unknown, `O`,
//!   `A` and `N` other) and `birthDate`.
//! - One Device entry per device, the same conditional create by `device_system|<device id>`.
//! - The Observations, each `PUT Observation/<value id>`: the id is stable across resends, so
//!   sending the same Bundle twice updates the same Observations instead of charting them
//!   twice. (An id that is not a FHIR id, `[A-Za-z0-9.-]{1,64}`, is replaced by a hash of
//!   it.) They refer to the Patient and Device entries by their `urn:uuid` `fullUrl`s, which
//!   the server resolves.
//!
//! # Observations
//!
//! Per the R4 vital-signs profiles (`http://hl7.org/fhir/StructureDefinition/vitalsigns` and
//! the specific one in `meta.profile`), category `vital-signs`, `code` with LOINC and the MDC
//! code (`urn:iso:std:iso:11073:10101`, the code number, the reference id as display):
//!
//! | metric | LOINC | profile |
//! |---|---|---|
//! | hr | 8867-4 Heart rate | heartrate |
//! | pr | 8867-4 Heart rate, 8889-8 Heart rate by Pulse oximetry | heartrate (which requires 8867-4) |
//! | spo2 | 2708-6 Oxygen saturation in Arterial blood, 59408-5 … by Pulse oximetry | oxygensat |
//! | rr | 9279-1 Respiratory rate | resprate |
//! | temp | 8310-5 Body temperature | bodytemp |
//! | nibp_sys/dia/mean | 85354-9 panel; components 8480-6, 8462-4, 8478-0 | bp |
//! | nibp_mean alone | 8478-0 Mean blood pressure | none (category vital-signs) |
//! | etco2 | 19891-1 Carbon dioxide [Partial pressure] in Exhaled gas --at end expiration | none, no category |
//!
//! The NIBP values of one device at one time (and method and period) are one blood-pressure
//! panel: no value of its own, a component per value (MDC 150021/150022/150023 beside the
//! LOINC code), and a missing systolic or diastolic as a component with data-absent reason
//! `unknown` (the profile requires both). Its id and first identifier are those of its first
//! value; every value's id is an identifier.
//!
//! - `status` is `final` for every Observation: FHIR's status is the workflow state, and the
//!   hub never sends a later version. A value the device marked questionable says so, as
//!   HL7's Personal Health Device IG maps the IEEE 11073 measurement status, in
//!   `interpretation` (`http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status`
//!   `questionable`); `preliminary` would announce a final version that never comes.
//! - No usable value: no `value[x]`, and `dataAbsentReason`
//!   (`http://terminology.hl7.org/CodeSystem/data-absent-reason`), again as the PHD IG maps
//!   the measurement status: invalid → `error`, not available → `not-performed`; a value
//!   missing for another reason → `unknown`; a non-finite one → `not-a-number`,
//!   `positive-infinity`, `negative-infinity`. A number the device flagged invalid or not
//!   available is never sent.
//! - `effectiveDateTime` (RFC 3339, milliseconds, `Z`) is `observed_at`; a median has
//!   `effectivePeriod` (its charting period) instead. A last valid value keeps
//!   `effectiveDateTime`: it is one measurement, made at `observed_at`. Both have a `note`
//!   ("median of 12 valid values from … until …", "last valid value of 12 values …").
//! - `valueQuantity`: the value, a display unit, `http://unitsofmeasure.org` and the metric's
//!   UCUM code.
//!
//! Output is deterministic: the same batch gives byte-identical JSON.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::model::charting::{ChartBatch, ChartMethod, ChartedValue};
use crate::model::{format_rfc3339, Metric, Patient, Status};

pub const LOINC: &str = "http://loinc.org";
pub const MDC: &str = "urn:iso:std:iso:11073:10101";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub const DATA_ABSENT_REASON: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
/// The IEEE 11073 measurement states of the Point-of-Care Device IG.
pub const MEASUREMENT_STATUS: &str = "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status";
pub const VITAL_SIGNS_PROFILE: &str = "http://hl7.org/fhir/StructureDefinition/vitalsigns";
/// The identifier system of the transaction Bundles' identifier (the batch id, MSH-10 of
/// the same batch's ORU^R01).
pub const BATCH_SYSTEM: &str = "urn:wardhub:chart-batch";

/// The identifier systems of what the hub sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirOptions {
    /// Of the patients' ids (PID-3), e.g. the hospital's `urn:oid:…` for its record numbers.
    pub patient_system: String,
    /// Of the device ids.
    pub device_system: String,
    /// Of the Observations' ids.
    pub observation_system: String,
}

impl Default for FhirOptions {
    fn default() -> Self {
        FhirOptions {
            patient_system: "urn:wardhub:patient".into(),
            device_system: "urn:wardhub:device".into(),
            observation_system: "urn:wardhub:observation".into(),
        }
    }
}

/// A FHIR Reference as the builders write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `{"reference": "Patient/123"}` (or a `urn:uuid:` of the same Bundle).
    Literal(String),
    /// `{"identifier": {"system": …, "value": …}}`: a logical reference, to something the
    /// server does not serve (the hub's read endpoint has no Patient resources).
    Identifier { system: String, value: String },
}

impl Reference {
    /// A logical reference to the patient, by `patient_system` and the patient's id.
    pub fn patient(opts: &FhirOptions, patient: &Patient) -> Reference {
        Reference::Identifier {
            system: opts.patient_system.clone(),
            value: patient.id.clone(),
        }
    }

    /// A logical reference to a device, by `device_system` and its id.
    pub fn device(opts: &FhirOptions, device_id: &str) -> Reference {
        Reference::Identifier {
            system: opts.device_system.clone(),
            value: device_id.to_owned(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Reference::Literal(r) => json!({ "reference": r }),
            Reference::Identifier { system, value } => {
                json!({ "identifier": { "system": system, "value": value } })
            }
        }
    }
}

/// The transaction Bundle of a batch (see the module docs).
pub fn transaction(batch: &ChartBatch, opts: &FhirOptions) -> Value {
    let patient_url = patient_full_url(batch);
    let mut entries = vec![json!({
        "fullUrl": patient_url,
        "resource": patient(&batch.patient, &opts.patient_system),
        "request": {
            "method": "POST",
            "url": "Patient",
            "ifNoneExist": if_none_exist(&opts.patient_system, &batch.patient.id),
        },
    })];
    let mut devices: Vec<&str> = Vec::new();
    for v in &batch.values {
        if !devices.contains(&v.device_id.as_str()) {
            devices.push(&v.device_id);
        }
    }
    for d in devices {
        entries.push(json!({
            "fullUrl": device_full_url(batch, d),
            "resource": {
                "resourceType": "Device",
                "identifier": [{ "system": opts.device_system, "value": d }],
            },
            "request": {
                "method": "POST",
                "url": "Device",
                "ifNoneExist": if_none_exist(&opts.device_system, d),
            },
        }));
    }
    let subject = Reference::Literal(patient_url).to_json();
    let device = |d: &str| Reference::Literal(device_full_url(batch, d)).to_json();
    for (id, o) in build(batch, opts, &subject, &device) {
        entries.push(json!({
            "fullUrl": urn_uuid(&format!("observation\0{}\0{id}", batch.id)),
            "resource": o,
            "request": { "method": "PUT", "url": format!("Observation/{id}") },
        }));
    }
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "identifier": { "system": BATCH_SYSTEM, "value": batch.id },
        "timestamp": format_rfc3339(batch.created_at),
        "entry": entries,
    })
}

/// The Observations of a batch, as [`transaction`] writes them, with `subject` and each
/// device's reference given: for the hub's own read endpoint.
pub fn observations(
    batch: &ChartBatch,
    opts: &FhirOptions,
    subject: Reference,
    device: impl Fn(&str) -> Reference,
) -> Vec<Value> {
    let device = |d: &str| device(d).to_json();
    build(batch, opts, &subject.to_json(), &device)
        .into_iter()
        .map(|(_, o)| o)
        .collect()
}

/// A searchset Bundle of `resources` (each with `resourceType` and `id`, as
/// [`observations`] makes them): `fullUrl` `<base>/<type>/<id>`, search mode `match`, a
/// `self` link, and `total` when known.
pub fn searchset(
    resources: Vec<Value>,
    base: &str,
    self_link: &str,
    total: Option<usize>,
) -> Value {
    let base = base.trim_end_matches('/');
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let mut e = Map::new();
            if let (Some(t), Some(id)) = (r["resourceType"].as_str(), r["id"].as_str()) {
                e.insert("fullUrl".into(), format!("{base}/{t}/{id}").into());
            }
            e.insert("resource".into(), r);
            e.insert("search".into(), json!({ "mode": "match" }));
            Value::Object(e)
        })
        .collect();
    let mut b = Map::new();
    b.insert("resourceType".into(), "Bundle".into());
    b.insert("type".into(), "searchset".into());
    if let Some(t) = total {
        b.insert("total".into(), t.into());
    }
    b.insert(
        "link".into(),
        json!([{ "relation": "self", "url": self_link }]),
    );
    b.insert("entry".into(), entries.into());
    Value::Object(b)
}

/// The `fullUrl` of the batch's Patient entry.
pub fn patient_full_url(batch: &ChartBatch) -> String {
    urn_uuid(&format!("patient\0{}", batch.id))
}

/// The `fullUrl` of a device's Device entry.
pub fn device_full_url(batch: &ChartBatch, device_id: &str) -> String {
    urn_uuid(&format!("device\0{}\0{device_id}", batch.id))
}

/// `urn:uuid:` and a name-based UUID of `name`: RFC 9562 version 8 from SHA-256 (its
/// appendix B.2 example), as the v5 form needs SHA-1.
fn urn_uuid(name: &str) -> String {
    let h = Sha256::digest(format!("wardhub\0{name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A FHIR resource id for `id`: itself when it is one, else a hash of it.
fn fhir_id(id: &str) -> String {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    if ok {
        return id.to_owned();
    }
    let h = Sha256::digest(id.as_bytes());
    let hex: String = h[..16].iter().map(|x| format!("{x:02x}")).collect();
    format!("wh-{hex}")
}

/// `identifier=<system>|<value>`, each part escaped for FHIR search (`\`, `|`, `,`, `$`)
/// and then for a URL query.
fn if_none_exist(system: &str, value: &str) -> String {
    format!(
        "identifier={}|{}",
        search_token(system),
        search_token(value)
    )
}

fn search_token(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut push = |b: u8| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'@')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    };
    for &b in s.as_bytes() {
        if matches!(b, b'\\' | b'|' | b',' | b'$') {
            push(b'\\');
        }
        push(b);
    }
    out
}

fn patient(p: &Patient, system: &str) -> Value {
    let mut r = Map::new();
    r.insert("resourceType".into(), "Patient".into());
    r.insert(
        "identifier".into(),
        json!([{ "system": system, "value": p.id }]),
    );
    let part = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (family, given) = (part(&p.family), part(&p.given));
    if family.is_some() || given.is_some() {
        let mut n = Map::new();
        if let Some(f) = family {
            n.insert("family".into(), f.into());
        }
        if let Some(g) = given {
            n.insert("given".into(), json!([g]));
        }
        r.insert("name".into(), json!([n]));
    }
    let gender = match p.sex.as_deref().map(|s| s.trim().to_ascii_uppercase()) {
        Some(s) if s == "F" => Some("female"),
        Some(s) if s == "M" => Some("male"),
        Some(s) if s == "U" => Some("unknown"),
        Some(s) if matches!(s.as_str(), "O" | "A" | "N") => Some("other"),
        _ => None,
    };
    if let Some(g) = gender {
        r.insert("gender".into(), g.into());
    }
    if let Some(d) = p.birth_date.as_deref().and_then(fhir_date) {
        r.insert("birthDate".into(), d.into());
    }
    Value::Object(r)
}

/// A FHIR `date` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`; `YYYYMMDD` is rewritten) or `None`.
fn fhir_date(s: &str) -> Option<String> {
    let s = s.trim();
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let s = if s.len() == 8 && digits(s) {
        format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..])
    } else {
        s.to_owned()
    };
    let parts: Vec<&str> = s.split('-').collect();
    let in_range = |t: &str, max: u32| {
        t.len() == 2 && digits(t) && t.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
    };
    let ok = match parts[..] {
        [y] => y.len() == 4 && digits(y),
        [y, m] => y.len() == 4 && digits(y) && in_range(m, 12),
        [y, m, d] => y.len() == 4 && digits(y) && in_range(m, 12) && in_range(d, 31),
        _ => false,
    };
    ok.then_some(s)
}

/// What FHIR knows of a metric.
struct Terms {
    loinc: &'static [(&'static str, &'static str)],
    /// The specific vital-signs profile, when there is one.
    profile: Option<&'static str>,
    vital_sign: bool,
}

fn terms(metric: Metric) -> Terms {
    let (loinc, profile, vital_sign): (&'static [(&str, &str)], Option<&str>, bool) =
        match metric.name {
            "hr" => (&[("8867-4", "Heart rate")], Some("heartrate"), true),
            "pr" => (
                &[
                    ("8867-4", "Heart rate"),
                    ("8889-8", "Heart rate by Pulse oximetry"),
                ],
                Some("heartrate"),
                true,
            ),
            "spo2" => (
                &[
                    ("2708-6", "Oxygen saturation in Arterial blood"),
                    (
                        "59408-5",
                        "Oxygen saturation in Arterial blood by Pulse oximetry",
                    ),
                ],
                Some("oxygensat"),
                true,
            ),
            "rr" => (&[("9279-1", "Respiratory rate")], Some("resprate"), true),
            "temp" => (&[("8310-5", "Body temperature")], Some("bodytemp"), true),
            "nibp_sys" => (&[("8480-6", "Systolic blood pressure")], None, true),
            "nibp_dia" => (&[("8462-4", "Diastolic blood pressure")], None, true),
            "nibp_mean" => (&[("8478-0", "Mean blood pressure")], None, true),
            "etco2" => (
                &[(
                    "19891-1",
                    "Carbon dioxide [Partial pressure] in Exhaled gas --at end expiration",
                )],
                None,
                false,
            ),
            _ => (&[], None, false),
        };
    Terms {
        loinc,
        profile,
        vital_sign,
    }
}

/// The display text of a metric's UCUM unit.
fn unit_display(metric: Metric) -> &'static str {
    match (metric.name, metric.unit) {
        ("hr" | "pr", _) => "beats/minute",
        ("rr", _) => "breaths/minute",
        (_, "Cel") => "°C",
        (_, "mm[Hg]") => "mmHg",
        (_, u) => u,
    }
}

fn code(loinc: &[(&str, &str)], mdc: u32, refid: &str) -> Value {
    let mut coding: Vec<Value> = loinc
        .iter()
        .map(|(c, d)| json!({ "system": LOINC, "code": c, "display": d }))
        .collect();
    coding.push(json!({ "system": MDC, "code": mdc.to_string(), "display": refid }));
    let text = loinc.first().map_or(refid, |(_, d)| d);
    json!({ "coding": coding, "text": text })
}

fn metric_code(m: Metric) -> Value {
    code(terms(m).loinc, m.code, m.refid)
}

/// A value and its position in the batch.
type Indexed<'a> = (usize, &'a ChartedValue);

/// One Observation to write: a value, or the blood-pressure panel of a device at a time.
enum Item<'a> {
    Single(&'a ChartedValue),
    /// Systolic, diastolic, mean.
    Bp([Option<Indexed<'a>>; 3]),
}

/// The panel slot of an NIBP metric.
fn bp_slot(m: Metric) -> Option<usize> {
    match m.name {
        "nibp_sys" => Some(0),
        "nibp_dia" => Some(1),
        "nibp_mean" => Some(2),
        _ => None,
    }
}

fn same_panel(a: &ChartedValue, b: &ChartedValue) -> bool {
    a.device_id == b.device_id
        && a.observed_at == b.observed_at
        && a.method == b.method
        && a.period == b.period
}

fn items(values: &[ChartedValue]) -> Vec<Item<'_>> {
    let mut out: Vec<Item<'_>> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let Some(slot) = bp_slot(v.metric) else {
            out.push(Item::Single(v));
            continue;
        };
        let open = out.iter_mut().find_map(|it| match it {
            Item::Bp(p)
                if p[slot].is_none() && p.iter().flatten().all(|(_, m)| same_panel(m, v)) =>
            {
                Some(p)
            }
            _ => None,
        });
        match open {
            Some(p) => p[slot] = Some((i, v)),
            None => {
                let mut p = [None; 3];
                p[slot] = Some((i, v));
                out.push(Item::Bp(p));
            }
        }
    }
    // A mean without systolic and diastolic is not a panel.
    for it in &mut out {
        let lone_mean = match it {
            Item::Bp([None, None, Some((_, mean))]) => Some(*mean),
            _ => None,
        };
        if let Some(mean) = lone_mean {
            *it = Item::Single(mean);
        }
    }
    out
}

/// The Observations of a batch, each with its resource id.
fn build(
    batch: &ChartBatch,
    opts: &FhirOptions,
    subject: &Value,
    device: &dyn Fn(&str) -> Value,
) -> Vec<(String, Value)> {
    items(&batch.values)
        .into_iter()
        .map(|it| match it {
            Item::Single(v) => single(v, opts, subject, device),
            Item::Bp(p) => panel(p, opts, subject, device),
        })
        .collect()
}

fn single(
    v: &ChartedValue,
    opts: &FhirOptions,
    subject: &Value,
    device: &dyn Fn(&str) -> Value,
) -> (String, Value) {
    let t = terms(v.metric);
    let id = fhir_id(&v.id);
    let mut o = header(
        &id,
        &[v],
        t.profile,
        t.vital_sign,
        metric_code(v.metric),
        opts,
    );
    finish(&mut o, v, subject, device);
    result(&mut o, v);
    (id, Value::Object(o))
}

fn panel(
    p: [Option<Indexed<'_>>; 3],
    opts: &FhirOptions,
    subject: &Value,
    device: &dyn Fn(&str) -> Value,
) -> (String, Value) {
    let mut members: Vec<Indexed<'_>> = p.iter().flatten().copied().collect();
    members.sort_by_key(|(i, _)| *i);
    let members: Vec<&ChartedValue> = members.into_iter().map(|(_, v)| v).collect();
    // A panel holds at least one value: items() makes none empty.
    let first = members[0];
    let id = fhir_id(&first.id);
    let mut o = header(
        &id,
        &members,
        Some("bp"),
        true,
        code(
            &[("85354-9", "Blood pressure panel with all children optional")],
            150_020,
            "MDC_PRESS_BLD_NONINV",
        ),
        opts,
    );
    finish(&mut o, first, subject, device);
    let missing = |loinc: (&str, &str), mdc: u32, refid: &str| {
        json!({
            "code": code(&[loinc], mdc, refid),
            "dataAbsentReason": absent("unknown", "Unknown"),
        })
    };
    let mut components = Vec::new();
    for (slot, v) in p.iter().enumerate() {
        match (slot, v) {
            (_, Some((_, v))) => {
                let mut c = Map::new();
                c.insert("code".into(), metric_code(v.metric));
                result(&mut c, v);
                components.push(Value::Object(c));
            }
            (0, None) => components.push(missing(
                ("8480-6", "Systolic blood pressure"),
                150_021,
                "MDC_PRESS_BLD_NONINV_SYS",
            )),
            (1, None) => components.push(missing(
                ("8462-4", "Diastolic blood pressure"),
                150_022,
                "MDC_PRESS_BLD_NONINV_DIA",
            )),
            _ => {}
        }
    }
    o.insert("component".into(), components.into());
    (id, Value::Object(o))
}

/// The parts every Observation has, up to its code.
fn header(
    id: &str,
    values: &[&ChartedValue],
    profile: Option<&str>,
    vital_sign: bool,
    code: Value,
    opts: &FhirOptions,
) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("resourceType".into(), "Observation".into());
    o.insert("id".into(), id.into());
    if let Some(p) = profile {
        o.insert(
            "meta".into(),
            json!({ "profile": [
                VITAL_SIGNS_PROFILE,
                format!("http://hl7.org/fhir/StructureDefinition/{p}"),
            ] }),
        );
    }
    let identifiers: Vec<Value> = values
        .iter()
        .map(|v| json!({ "system": opts.observation_system, "value": v.id }))
        .collect();
    o.insert("identifier".into(), identifiers.into());
    o.insert("status".into(), "final".into());
    if vital_sign {
        o.insert(
            "category".into(),
            json!([{
                "coding": [{
                    "system": OBSERVATION_CATEGORY,
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }],
                "text": "Vital Signs",
            }]),
        );
    }
    o.insert("code".into(), code);
    o
}

/// Subject, time, device and note.
fn finish(
    o: &mut Map<String, Value>,
    v: &ChartedValue,
    subject: &Value,
    device: &dyn Fn(&str) -> Value,
) {
    o.insert("subject".into(), subject.clone());
    match (v.method, v.period) {
        (ChartMethod::Median, Some((start, end))) => {
            o.insert(
                "effectivePeriod".into(),
                json!({ "start": format_rfc3339(start), "end": format_rfc3339(end) }),
            );
        }
        _ => {
            o.insert(
                "effectiveDateTime".into(),
                format_rfc3339(v.observed_at).into(),
            );
        }
    }
    o.insert("device".into(), device(&v.device_id));
    if let Some(note) = super::method_note(v) {
        o.insert("note".into(), json!([{ "text": note }]));
    }
}

fn absent(code: &str, display: &str) -> Value {
    json!({
        "coding": [{ "system": DATA_ABSENT_REASON, "code": code, "display": display }],
        "text": display,
    })
}

/// `valueQuantity` (and `interpretation`), or `dataAbsentReason` (see the module docs).
fn result(o: &mut Map<String, Value>, v: &ChartedValue) {
    let reason = match (v.status, v.value) {
        (Status::Invalid, _) => Some(("error", "Error")),
        (Status::NotAvailable, _) => Some(("not-performed", "Not Performed")),
        (_, None) => Some(("unknown", "Unknown")),
        (_, Some(x)) if x.is_nan() => Some(("not-a-number", "Not a Number (NaN)")),
        (_, Some(x)) if x == f64::INFINITY => {
            Some(("positive-infinity", "Positive Infinity (PINF)"))
        }
        (_, Some(x)) if x == f64::NEG_INFINITY => {
            Some(("negative-infinity", "Negative Infinity (NINF)"))
        }
        _ => None,
    };
    if let Some((code, display)) = reason {
        o.insert("dataAbsentReason".into(), absent(code, display));
        return;
    }
    // Finite: checked above. -0 is 0 to a clinician.
    let x = v.value.unwrap_or_default() + 0.0;
    o.insert(
        "valueQuantity".into(),
        json!({
            "value": x,
            "unit": unit_display(v.metric),
            "system": UCUM,
            "code": v.metric.unit,
        }),
    );
    if v.status == Status::Questionable {
        o.insert(
            "interpretation".into(),
            json!([{
                "coding": [{ "system": MEASUREMENT_STATUS, "code": "questionable" }],
                "text": "questionable (device measurement status)",
            }]),
        );
    }
}

#[cfg(test)]
mod tests;
