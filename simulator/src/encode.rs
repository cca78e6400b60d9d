//! Emissions on the wire: MQTT JSON documents and HL7 ORU^R01 messages.
//!
//! # MQTT topics and documents
//!
//! - `wardhub/v1/devices/{id}/obs`: the observation document of
//!   `adapters/src/mqtt_json.rs`, metrics by MDC reference id, times RFC 3339, `status` only
//!   when not `valid`:
//!   `{"observations":[{"metric":"MDC_ECG_HEART_RATE","value":72,"unit":"/min","time":"2026-11-20T10:00:00.000Z"}]}`
//! - `wardhub/v1/devices/{id}/status`: the hub's `DeviceStatus` contract
//!   (`online`, `battery_pct`, `charging`, `firmware`, `time`) plus device-specific fields the
//!   contract allows: `kind`; pumps `infusing`, `rate_ml_h`, `volume_remaining_ml`; smart beds
//!   `occupied`. The MQTT last will on this topic is `{"online":false}`.
//! - `wardhub/v1/devices/{id}/event`: the **device event contract**:
//!
//!   ```json
//!   {"event": "nurse_call", "active": true, "seq": 3, "time": "2026-11-20T10:00:00.000Z"}
//!   ```
//!
//!   | field | |
//!   |---|---|
//!   | `event` | `nurse_call` (call button pressed / answered), `bed_exit` (patient left / back in bed), `pump_occlusion` (occlusion detected / cleared), `end_of_infusion` (bag empty / new bag hung) |
//!   | `active` | `true` when the condition starts, `false` when it ends |
//!   | `seq` | per device, increasing from 1 (duplicates under QoS 1 and gaps can be spotted) |
//!   | `time` | device time, RFC 3339 |
//!
//!   Published at QoS 1, not retained. Pumps add `rate_ml_h` and `volume_remaining_ml` to
//!   their status messages; nothing patient-identifying is ever in an event.
//!
//! # HL7
//!
//! One ORU^R01 (HL7 2.6, IHE PCD-01) per observation emission: `MSH-3` is the device id,
//! `PV1-3` is `ward^^bed` (a claim the hub cross-checks, never trusts), an MDS header `OBX`
//! names the device in `OBX-18`, then one `NM` row per metric with its MDC code, UCUM unit,
//! `OBX-8` `invalid` / `NAV` for unusable values, and the time in `OBX-14`.

use std::fmt::Write as _;

use wardhub_adapters::hl7::message::format_hl7_time;
use wardhub_adapters::model::{format_rfc3339, Millis, Status};

use crate::ward::{DeviceEvent, DeviceInfo, Emission, Reading, StatusReport};

/// The topic prefix of a device.
pub fn topic(device: &str, channel: &str) -> String {
    format!("wardhub/v1/devices/{device}/{channel}")
}

/// The MQTT last will payload.
pub const LAST_WILL: &[u8] = br#"{"online":false}"#;

/// How simulated time maps to timestamps: the run started at `epoch_ms` (hub time), and
/// `speed` simulated seconds pass per wall second. Stamps are compressed by the speed, so a
/// run at 60× stamps its data at the wall time it is sent (and the hub's future-time and
/// clock-skew checks see a sane clock); the device's clock error is added on top.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeBase {
    pub epoch_ms: Millis,
    pub speed: f64,
}

impl TimeBase {
    /// The device time of an emission.
    pub fn stamp(&self, e: &Emission) -> Millis {
        self.wall(e.at) + e.clock_offset_ms
    }

    /// The wall time at which simulated time `at` is due.
    pub fn wall(&self, at: u64) -> Millis {
        self.epoch_ms + (at as f64 / self.speed).round() as i64
    }
}

fn number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// An observation document.
pub fn observations_json(readings: &[Reading], time: Millis) -> Vec<u8> {
    let t = format_rfc3339(time);
    let mut s = String::with_capacity(40 + readings.len() * 96);
    s.push_str(r#"{"observations":["#);
    for (i, r) in readings.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, r#"{{"metric":"{}","value":"#, r.metric.refid);
        number(&mut s, r.value);
        let _ = write!(s, r#","unit":"{}","time":"{t}""#, r.metric.unit);
        if r.status != Status::Valid {
            let _ = write!(s, r#","status":"{}""#, r.status.as_str());
        }
        s.push('}');
    }
    s.push_str("]}");
    s.into_bytes()
}

/// A status document.
pub fn status_json(device: &DeviceInfo, st: &StatusReport, time: Millis) -> Vec<u8> {
    let mut v = serde_json::json!({
        "online": st.online,
        "battery_pct": st.battery_pct,
        "charging": st.charging,
        "firmware": st.firmware,
        "time": format_rfc3339(time),
        "kind": device.kind.as_str(),
    });
    if let Some(p) = &st.pump {
        v["infusing"] = p.infusing.into();
        v["rate_ml_h"] = p.rate_ml_h.into();
        v["volume_remaining_ml"] = p.volume_remaining_ml.into();
    }
    if let Some(o) = st.occupied {
        v["occupied"] = o.into();
    }
    v.to_string().into_bytes()
}

/// An event document.
pub fn event_json(ev: &DeviceEvent, time: Millis) -> Vec<u8> {
    serde_json::json!({
        "event": ev.kind.as_str(),
        "active": ev.active,
        "seq": ev.seq,
        "time": format_rfc3339(time),
    })
    .to_string()
    .into_bytes()
}

/// An ORU^R01 message (segments end with `\r`, no MLLP framing).
pub fn oru(device: &DeviceInfo, readings: &[Reading], time: Millis, control_id: &str) -> Vec<u8> {
    let ts = format_hl7_time(time);
    let id = &device.id;
    let mut s = String::with_capacity(600 + readings.len() * 120);
    let _ = write!(
        s,
        "MSH|^~\\&|{id}|WARDSIM|WARDHUB|{ward}|{ts}||ORU^R01^ORU_R01|{control_id}|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO\r\
         PID|||SIM-{bed}^^^WARDSIM^MR||Simulated^Patient\r\
         PV1||I|{ward}^^{bed}\r\
         OBR|1|{control_id}^{id}|{control_id}^{id}|182777000^monitoring of patient^SCT|||{ts}\r\
         OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||{id}\r",
        ward = device.ward,
        bed = device.bed,
    );
    for (i, r) in readings.iter().enumerate() {
        let _ = write!(
            s,
            "OBX|{n}|NM|{code}^{refid}^MDC|1.1.1.{code}|",
            n = i + 2,
            code = r.metric.code,
            refid = r.metric.refid
        );
        number(&mut s, r.value);
        let flag = match r.status {
            Status::Valid => "",
            Status::Questionable => "questionable",
            Status::Invalid => "invalid",
            Status::NotAvailable => "NAV",
        };
        let _ = write!(
            s,
            "|{unit}^{unit}^UCUM||{flag}|||R|||{ts}\r",
            unit = r.metric.unit
        );
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use wardhub_adapters::hl7::oru::{decode, OruOptions};
    use wardhub_adapters::model::{metric_by_name, MDC_NOT_AVAILABLE};
    use wardhub_adapters::mqtt_json::decode_observations;

    use super::*;
    use crate::ward::{DeviceKind, Protocol};

    fn dev() -> DeviceInfo {
        DeviceInfo {
            id: "b07-mon".into(),
            kind: DeviceKind::PatientMonitor,
            bed: "bed-07".into(),
            bed_index: 6,
            ward: "ward-1".into(),
            protocol: Protocol::Hl7Mllp,
            serial: "SIM00007MON".into(),
        }
    }

    fn readings() -> Vec<Reading> {
        let m = |n| metric_by_name(n).unwrap();
        vec![
            Reading {
                metric: m("hr"),
                value: 72.0,
                status: Status::Valid,
            },
            Reading {
                metric: m("temp"),
                value: 37.2,
                status: Status::Valid,
            },
            Reading {
                metric: m("spo2"),
                value: MDC_NOT_AVAILABLE,
                status: Status::NotAvailable,
            },
            Reading {
                metric: m("pr"),
                value: 180.0,
                status: Status::Invalid,
            },
        ]
    }

    const NOW: Millis = 1_795_168_800_000;

    #[test]
    fn json_documents_decode_with_the_hubs_codec() {
        let doc = observations_json(&readings(), NOW);
        let id = wardhub_adapters::model::DeviceId::new("b07-mon").unwrap();
        let d = decode_observations(&id, &doc, NOW, &Default::default(), 100);
        assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        let got: Vec<_> = d
            .observations
            .iter()
            .map(|o| (o.metric.name, o.value, o.status, o.observed_at))
            .collect();
        assert_eq!(got[0], ("hr", 72.0, Status::Valid, NOW));
        assert_eq!(got[1].1, 37.2);
        assert_eq!(got[2].2, Status::NotAvailable);
        assert_eq!(got[3].2, Status::Invalid);
    }

    #[test]
    fn oru_decodes_with_the_hubs_codec() {
        let msg = oru(&dev(), &readings(), NOW, "b07-mon-1");
        let d = decode(&msg, NOW, &OruOptions::default()).unwrap();
        assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        assert_eq!(d.observations.len(), 4);
        let o = &d.observations[0];
        assert_eq!(
            (o.device_id.as_str(), o.metric.name, o.value, o.observed_at),
            ("b07-mon", "hr", 72.0, NOW)
        );
        assert_eq!(d.observations[1].value, 37.2);
        assert_eq!(d.observations[2].status, Status::NotAvailable);
        assert_eq!(d.observations[3].status, Status::Invalid);
    }

    #[test]
    fn status_and_event_documents() {
        let st = StatusReport {
            online: true,
            battery_pct: 80.5,
            charging: false,
            firmware: "1.0",
            pump: None,
            occupied: Some(true),
        };
        let v: serde_json::Value = serde_json::from_slice(&status_json(&dev(), &st, NOW)).unwrap();
        assert_eq!(v["battery_pct"], 80.5);
        assert_eq!(v["time"], "2026-11-20T10:00:00.000Z");
        assert_eq!(v["occupied"], true);
        let ev = DeviceEvent {
            kind: crate::ward::DeviceEventKind::NurseCall,
            active: true,
            seq: 1,
        };
        let v: serde_json::Value = serde_json::from_slice(&event_json(&ev, NOW)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event":"nurse_call","active":true,"seq":1,"time":"2026-11-20T10:00:00.000Z"})
        );
    }
}
