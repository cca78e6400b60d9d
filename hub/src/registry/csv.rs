//! Device lists as CSV (RFC 4180: commas, `"` quoting with `""`, a header row).
//!
//! Columns (any order; only `id` is required, `kind` for new devices):
//! `id,kind,manufacturer,model,serial,firmware,protocol,ward,bed,maintenance_due,notes,secret`.
//! An empty cell leaves the field as it is. Export writes every column except `secret`, plus
//! `state` (ignored on import, so an export can be imported again).

use super::model::{Device, DeviceInput};

pub const COLUMNS: [&str; 12] = [
    "id",
    "kind",
    "manufacturer",
    "model",
    "serial",
    "firmware",
    "protocol",
    "ward",
    "bed",
    "maintenance_due",
    "notes",
    "secret",
];

/// A row that could not be read, by its line (1-based, the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub error: String,
}

/// Splits CSV text into records, each with the line it starts on.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, RowError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err(RowError {
                        line: start,
                        error: "a quoted field is not closed".into(),
                    });
                }
                fields.push(std::mem::take(&mut field));
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                '"' => {
                    return Err(RowError {
                        line: start,
                        error: "a quote inside an unquoted field".into(),
                    })
                }
                _ => field.push(c),
            }
        }
        // Blank lines are skipped.
        if !(fields.len() == 1 && fields[0].trim().is_empty()) {
            out.push((start, fields));
        }
    }
    Ok(out)
}

/// Reads a device CSV: the rows that parse (line, input) and the errors of those that do not.
/// A header error is the only error and no rows are returned.
pub fn parse(text: &str) -> (Vec<(usize, DeviceInput)>, Vec<RowError>) {
    let recs = match records(text) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut it = recs.into_iter();
    let Some((hline, header)) = it.next() else {
        return (
            Vec::new(),
            vec![RowError {
                line: 1,
                error: "empty file: the first line must name the columns".into(),
            }],
        );
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    for h in &header {
        // `state` (in exports) is read and ignored: retiring is not an import.
        if !COLUMNS.contains(&h.as_str()) && h != "state" {
            return (
                Vec::new(),
                vec![RowError {
                    line: hline,
                    error: format!("unknown column {h:?} (columns: {})", COLUMNS.join(",")),
                }],
            );
        }
    }
    if !header.iter().any(|h| h == "id") {
        return (
            Vec::new(),
            vec![RowError {
                line: hline,
                error: "the header must have an id column".into(),
            }],
        );
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (line, fields) in it {
        if fields.len() != header.len() {
            errors.push(RowError {
                line,
                error: format!("{} fields, the header has {}", fields.len(), header.len()),
            });
            continue;
        }
        let mut input = DeviceInput::default();
        for (h, v) in header.iter().zip(fields) {
            let v = v.trim().to_owned();
            if v.is_empty() {
                continue;
            }
            let slot = match h.as_str() {
                "state" => continue,
                "id" => &mut input.id,
                "kind" => &mut input.kind,
                "manufacturer" => &mut input.manufacturer,
                "model" => &mut input.model,
                "serial" => &mut input.serial,
                "firmware" => &mut input.firmware,
                "protocol" => &mut input.protocol,
                "ward" => &mut input.ward,
                "bed" => &mut input.bed,
                "maintenance_due" => &mut input.maintenance_due,
                "notes" => &mut input.notes,
                _ => &mut input.secret,
            };
            *slot = Some(v);
        }
        if input.id.is_none() {
            errors.push(RowError {
                line,
                error: "id is empty".into(),
            });
            continue;
        }
        match input.validate() {
            Ok(()) => rows.push((line, input)),
            Err(e) => errors.push(RowError {
                line,
                error: e.to_string(),
            }),
        }
    }
    (rows, errors)
}

fn cell(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// Every device as CSV (no secrets), with a `state` column last.
pub fn export(devices: &[Device]) -> String {
    let mut out = COLUMNS[..11].join(",");
    out.push_str(",state\n");
    for d in devices {
        let o = |v: &Option<String>| cell(v.as_deref().unwrap_or(""));
        let row = [
            cell(&d.id),
            cell(&d.kind),
            o(&d.manufacturer),
            o(&d.model),
            o(&d.serial),
            o(&d.firmware),
            o(&d.protocol),
            o(&d.ward),
            o(&d.bed),
            o(&d.maintenance_due),
            o(&d.notes),
            d.state.as_str().to_owned(),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
