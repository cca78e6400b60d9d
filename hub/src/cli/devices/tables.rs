//! What people read: aligned plain-text tables and key-value lists of devices, beds, problems
//! and history, and the cells in them (a binding as `ward/bed`, "online", "3m ago", a battery,
//! a firmware that differs from the registered one). Everything renders the registry's view
//! types (or the answers of [`super::answers`]); a missing value is `-`.

use wardhub_adapters::model::{format_rfc3339, Millis};

use super::answers::DeviceStatus;
use crate::registry::model::{Change, KINDS};
use crate::registry::{BedView, DeviceState, DeviceView, Problem};

pub(super) fn print_secret(id: &str, secret: Option<&str>) {
    if let Some(sec) = secret {
        println!("secret for {id} (shown once; configure it as the device's MQTT password):");
        println!("  {sec}");
    }
}

/// An optional text as a cell: `-` when absent.
fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

/// An optional count as a cell: `-` when absent.
fn count(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |n| n.to_string())
}

/// A float as the API's JSON writes it (`0.0`, `12.5`), `-` when it has none (not finite).
fn number(x: f64) -> String {
    serde_json::Number::from_f64(x).map_or_else(|| "-".into(), |n| n.to_string())
}

fn yes_no(online: bool) -> String {
    if online { "online" } else { "offline" }.into()
}

fn binding(ward: &Option<String>, bed: &Option<String>) -> String {
    match (ward, bed) {
        (Some(w), Some(b)) => format!("{w}/{b}"),
        _ => "-".into(),
    }
}

pub(super) fn describe(d: &DeviceView) -> String {
    format!("{} ({}) at {}", d.id, d.kind, binding(&d.ward, &d.bed))
}

fn battery(pct: Option<f64>, charging: Option<bool>) -> String {
    match pct {
        Some(b) if charging == Some(true) => format!("{b:.0}% charging"),
        Some(b) => format!("{b:.0}%"),
        None => "-".into(),
    }
}

fn firmware(registered: &Option<String>, reported: &Option<String>) -> String {
    match (registered, reported) {
        (Some(a), Some(b)) if a != b => format!("{b} (registered {a})"),
        (_, Some(b)) => b.clone(),
        (Some(a), None) => a.clone(),
        (None, None) => "-".into(),
    }
}

fn ago(t: Option<Millis>) -> String {
    let Some(t) = t else {
        return "never".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(t);
    let secs = (now - t).max(0) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// `wardhub device show`.
pub(super) fn show(v: &DeviceView) {
    let l = &v.live;
    kv(vec![
        vec!["device".into(), v.id.clone()],
        vec!["kind".into(), v.kind.clone()],
        vec!["state".into(), v.state.as_str().into()],
        vec!["bed".into(), binding(&v.ward, &v.bed)],
        vec!["manufacturer".into(), text(&v.manufacturer)],
        vec!["model".into(), text(&v.model)],
        vec!["serial".into(), text(&v.serial)],
        vec![
            "firmware".into(),
            firmware(&v.firmware, &l.firmware_reported),
        ],
        vec!["protocol".into(), text(&v.protocol)],
        vec![
            "credential".into(),
            if v.has_credential {
                "set".into()
            } else {
                "NONE (connects by id)".into()
            },
        ],
        vec!["maintenance due".into(), text(&v.maintenance_due)],
        vec!["notes".into(), text(&v.notes)],
        vec!["online".into(), yes_no(l.online)],
        vec!["last seen".into(), ago(l.last_seen)],
        vec!["battery".into(), battery(l.battery_pct, l.charging)],
    ]);
}

/// `wardhub device status ID`.
pub(super) fn device_status(v: &DeviceStatus) {
    let l = &v.live;
    kv(vec![
        vec!["device".into(), v.id.clone()],
        vec!["kind".into(), v.kind.clone()],
        vec!["bed".into(), binding(&v.ward, &v.bed)],
        vec!["state".into(), v.state.as_str().into()],
        vec!["online".into(), yes_no(v.online)],
        vec!["last seen".into(), ago(v.last_seen)],
        vec!["messages/min".into(), number(v.message_rate_per_min)],
        vec!["connects (10 min)".into(), l.connects_last_10m.to_string()],
        vec!["rejects".into(), l.rejects.to_string()],
        vec!["battery".into(), battery(v.battery_pct, v.charging)],
        vec![
            "firmware".into(),
            firmware(&v.firmware, &v.firmware_reported),
        ],
        vec!["alarms (24 h)".into(), count(v.alarms_24h)],
    ]);
}

/// `wardhub device status` of a ward or bed: its devices' liveness, then its beds.
pub(super) fn ward_status(devices: &[DeviceView], beds: &[BedView]) {
    let rows = devices
        .iter()
        .map(|d| {
            let l = &d.live;
            vec![
                d.id.clone(),
                d.kind.clone(),
                binding(&d.ward, &d.bed),
                if d.state == DeviceState::Retired {
                    "retired".into()
                } else {
                    yes_no(l.online)
                },
                ago(l.last_seen),
                number(l.message_rate_per_min),
                battery(l.battery_pct, l.charging),
                firmware(&d.firmware, &l.firmware_reported),
            ]
        })
        .collect();
    table(
        &[
            "DEVICE",
            "KIND",
            "BED",
            "ONLINE",
            "LAST SEEN",
            "MSG/MIN",
            "BATTERY",
            "FIRMWARE",
        ],
        rows,
    );
    println!();
    let rows: Vec<Vec<String>> = beds
        .iter()
        .map(|b| {
            vec![
                format!("{}/{}", b.ward, b.bed),
                format!("{}/{}", b.online, b.devices.len()),
                count(b.alarms_24h),
            ]
        })
        .collect();
    let (online, total) = beds
        .iter()
        .fold((0, 0), |(o, t), b| (o + b.online, t + b.devices.len()));
    table(&["BED", "ONLINE", "ALARMS 24H"], rows);
    println!(
        "total: {online}/{total} bound devices online in {} beds",
        beds.len()
    );
}

/// `wardhub device problems`.
pub(super) fn problems(problems: &[Problem]) {
    let rows: Vec<Vec<String>> = problems
        .iter()
        .map(|p| {
            vec![
                p.device.clone(),
                binding(&p.ward, &p.bed),
                p.problem.clone(),
                p.detail.clone(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no problems");
    } else {
        table(&["DEVICE", "BED", "PROBLEM", "DETAIL"], rows);
    }
}

/// `wardhub device history`.
pub(super) fn history(history: &[Change]) {
    let rows = history
        .iter()
        .map(|h| {
            vec![
                format_rfc3339(h.at),
                h.who.clone(),
                h.action.clone(),
                h.detail.clone(),
            ]
        })
        .collect();
    table(&["WHEN", "WHO", "WHAT", "DETAIL"], rows);
}

pub(super) fn device_table(devices: &[DeviceView]) {
    let rows = devices
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.kind.clone(),
                binding(&d.ward, &d.bed),
                d.state.as_str().into(),
                yes_no(d.live.online),
                ago(d.live.last_seen),
                text(&d.model),
                text(&d.firmware),
            ]
        })
        .collect();
    table(
        &[
            "DEVICE",
            "KIND",
            "BED",
            "STATE",
            "ONLINE",
            "LAST SEEN",
            "MODEL",
            "FIRMWARE",
        ],
        rows,
    );
}

pub(super) fn bed_table(beds: &[BedView]) {
    let mut headers = vec!["BED"];
    headers.extend(KINDS.iter().copied());
    headers.push("ONLINE");
    let rows = beds
        .iter()
        .map(|b| {
            let mut row = vec![format!("{}/{}", b.ward, b.bed)];
            for k in KINDS {
                row.push(text(b.slots.get(k).unwrap_or(&None)));
            }
            row.push(format!("{}/{}", b.online, b.devices.len()));
            row
        })
        .collect();
    table(&headers, rows);
}

fn kv(rows: Vec<Vec<String>>) {
    let w = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    for r in rows {
        println!("{:<w$}  {}", r[0], r[1]);
    }
}

/// Prints an aligned plain-text table.
fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        line(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cells read as they did when they were cut from the API's JSON text.
    #[test]
    fn cells_as_the_json_wrote_them() {
        assert_eq!(number(0.0), "0.0");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(3.0), "3.0");
        assert_eq!(number(f64::NAN), "-");
        assert_eq!(count(None), "-");
        assert_eq!(count(Some(4)), "4");
        assert_eq!(battery(Some(14.4), Some(false)), "14%");
        assert_eq!(battery(Some(80.0), Some(true)), "80% charging");
        assert_eq!(battery(None, Some(true)), "-");
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(firmware(&s("1.2"), &s("1.3")), "1.3 (registered 1.2)");
        assert_eq!(firmware(&s("1.2"), &None), "1.2");
        assert_eq!(firmware(&None, &None), "-");
        assert_eq!(binding(&s("ward-1"), &s("bed-01")), "ward-1/bed-01");
        assert_eq!(binding(&s("ward-1"), &None), "-");
        assert_eq!(ago(None), "never");
    }
}
