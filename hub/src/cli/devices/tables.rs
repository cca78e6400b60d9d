//! What people read: aligned plain-text tables and key-value lists of devices, beds, problems
//! and history, and the cells in them (a binding as `ward/bed`, "online", "3m ago", a battery,
//! a firmware that differs from the registered one).

use serde_json::Value;

pub(super) fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// A JSON value as a cell: strings bare, null as `-`.
pub(super) fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

pub(super) fn yes_no(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "online".into(),
        Some(false) => "offline".into(),
        None => "-".into(),
    }
}

pub(super) fn binding(v: &Value) -> String {
    match (v["ward"].as_str(), v["bed"].as_str()) {
        (Some(w), Some(b)) => format!("{w}/{b}"),
        _ => "-".into(),
    }
}

pub(super) fn describe(d: &Value) -> String {
    format!("{} ({}) at {}", s(&d["id"]), s(&d["kind"]), binding(d))
}

pub(super) fn battery(l: &Value) -> String {
    match l["battery_pct"].as_f64() {
        Some(b) if l["charging"].as_bool() == Some(true) => format!("{b:.0}% charging"),
        Some(b) => format!("{b:.0}%"),
        None => "-".into(),
    }
}

pub(super) fn firmware(registered: &Value, reported: &Value) -> String {
    match (registered.as_str(), reported.as_str()) {
        (Some(a), Some(b)) if a != b => format!("{b} (registered {a})"),
        (_, Some(b)) => b.to_owned(),
        (Some(a), None) => a.to_owned(),
        (None, None) => "-".into(),
    }
}

pub(super) fn ago(t: &Value) -> String {
    let Some(t) = t.as_i64() else {
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

pub(super) fn show(v: &Value) {
    let l = &v["live"];
    kv(vec![
        vec!["device".into(), s(&v["id"])],
        vec!["kind".into(), s(&v["kind"])],
        vec!["state".into(), s(&v["state"])],
        vec!["bed".into(), binding(v)],
        vec!["manufacturer".into(), s(&v["manufacturer"])],
        vec!["model".into(), s(&v["model"])],
        vec!["serial".into(), s(&v["serial"])],
        vec![
            "firmware".into(),
            firmware(&v["firmware"], &l["firmware_reported"]),
        ],
        vec!["protocol".into(), s(&v["protocol"])],
        vec![
            "credential".into(),
            if v["has_credential"] == true {
                "set".into()
            } else {
                "NONE (connects by id)".into()
            },
        ],
        vec!["maintenance due".into(), s(&v["maintenance_due"])],
        vec!["notes".into(), s(&v["notes"])],
        vec!["online".into(), yes_no(&l["online"])],
        vec!["last seen".into(), ago(&l["last_seen"])],
        vec!["battery".into(), battery(l)],
    ]);
}

pub(super) fn device_table(devices: &Value) {
    let rows = arr(devices)
        .iter()
        .map(|d| {
            vec![
                s(&d["id"]),
                s(&d["kind"]),
                binding(d),
                s(&d["state"]),
                yes_no(&d["live"]["online"]),
                ago(&d["live"]["last_seen"]),
                s(&d["model"]),
                s(&d["firmware"]),
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

pub(super) fn bed_table(beds: &Value) {
    let kinds = crate::registry::model::KINDS;
    let mut headers = vec!["BED"];
    headers.extend(kinds.iter().copied());
    headers.push("ONLINE");
    let rows = arr(beds)
        .iter()
        .map(|b| {
            let mut row = vec![format!("{}/{}", s(&b["ward"]), s(&b["bed"]))];
            for k in kinds {
                row.push(s(&b["slots"][k]));
            }
            row.push(format!("{}/{}", b["online"], arr(&b["devices"]).len()));
            row
        })
        .collect();
    table(&headers, rows);
}

pub(super) fn kv(rows: Vec<Vec<String>>) {
    let w = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    for r in rows {
        println!("{:<w$}  {}", r[0], r[1]);
    }
}

/// Prints an aligned plain-text table.
pub(super) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
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
