//! Many devices in one commit: [`SledRegistry::seed`] applies the config's `[[devices]]` at
//! start-up, and [`SledRegistry::import`] applies the rows of a CSV import (all or nothing
//! unless partial) and reports every bad row by line. Both repeat the single-device upsert of
//! [`super::commands`] inside one write.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::commands::Mode;
use super::db::Working;
use super::model::*;
use super::SledRegistry;

impl SledRegistry {
    /// Applies the config's `[[devices]]` in one commit: creates missing ones (kind
    /// `unspecified` unless given) and applies their binding and credential hash. An entry that
    /// cannot be applied (a slot held by another device, a retired device) is logged.
    pub fn seed(&self, devices: &[StaticDevice]) {
        if devices.is_empty() {
            return;
        }
        let r = self.write_op("config", |w| {
            for d in devices {
                let mut input = DeviceInput {
                    kind: d.kind.clone(),
                    ward: d.ward.clone(),
                    bed: Some(d.bed.clone()),
                    ..DeviceInput::default()
                };
                if w.device(&d.id).is_none() && input.kind.is_none() {
                    input.kind = Some(UNSPECIFIED_KIND.into());
                }
                // A failed entry changes nothing (upsert checks before it writes).
                if let Err(e) =
                    self.upsert_in(w, &d.id, &input, d.secret_sha256.clone(), Mode::CreateOrUpdate)
                {
                    tracing::error!(device = %d.id, error = %e, "config [[devices]] entry not applied");
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            tracing::error!(error = %e, "config [[devices]] not applied");
        }
        let open = devices
            .iter()
            .filter(|d| {
                self.read()
                    .devices
                    .get(&d.id)
                    .is_some_and(|i| i.device.secret_sha256.is_none())
            })
            .count();
        if open > 0 {
            tracing::warn!(
                devices = open,
                "config [[devices]] without secret_sha256 connect by client id alone: anyone \
                 who knows such an id can publish as that device. Give each a credential \
                 (wardhub device credentials rotate ID, or secret_sha256 in the config)."
            );
        }
    }

    /// Validates rows (line, input) and applies them in one commit: all or nothing unless
    /// `partial`. `unreadable` are rows that did not even parse (they count as bad rows).
    /// Returns what was applied and every error by line.
    pub fn import(
        &self,
        who: &str,
        rows: &[(usize, DeviceInput)],
        unreadable: Vec<ImportError>,
        partial: bool,
    ) -> Result<ImportReport> {
        let _serial = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now_ms();
        let (report, changes) = {
            let index = self.read();
            let mut w = Working::new(&index, now, who);
            let mut report = ImportReport {
                errors: unreadable,
                ..ImportReport::default()
            };
            let mut seen = HashMap::new();
            for (line, input) in rows {
                let id = input.id.clone().unwrap_or_default();
                if let Some(first) = seen.insert(id.clone(), *line) {
                    report.errors.push(ImportError {
                        line: *line,
                        error: format!("device {id} is also on line {first}"),
                    });
                    continue;
                }
                // One row's failure changes nothing: upsert checks everything before it writes.
                match self.upsert_in(&mut w, &id, input, None, Mode::CreateOrUpdate) {
                    Ok(u) => {
                        if u.created {
                            report.created += 1;
                        } else {
                            report.updated += 1;
                        }
                        if let Some(s) = u.secret {
                            report.secrets.push(ImportSecret { id, secret: s });
                        }
                    }
                    Err(e) => report.errors.push(ImportError {
                        line: *line,
                        error: e.to_string(),
                    }),
                }
            }
            report.errors.sort_by_key(|e| e.line);
            (report, w.into_changes())
        };
        if report.errors.is_empty() || partial {
            self.commit(changes)?;
            Ok(ImportReport {
                applied: true,
                ..report
            })
        } else {
            Ok(ImportReport {
                applied: false,
                created: 0,
                updated: 0,
                secrets: Vec::new(),
                ..report
            })
        }
    }
}

/// The outcome of an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Whether anything was written.
    pub applied: bool,
    pub created: usize,
    pub updated: usize,
    pub errors: Vec<ImportError>,
    /// Secrets made for new devices without one in the file: shown once.
    pub secrets: Vec<ImportSecret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportError {
    pub line: usize,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSecret {
    pub id: String,
    pub secret: String,
}
