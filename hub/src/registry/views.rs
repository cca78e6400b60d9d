//! What the biomed and the API read back: [`DeviceView`] (a device with its liveness, never
//! the credential), device lists by [`ListFilter`], a device's history, beds with their slots
//! ([`BedView`]), and the [`Problem`]s worth a look. All of it comes from the in-memory index
//! (the history from its sled tree); nothing here writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wardhub_adapters::model::Millis;

use super::db::Indexed;
use super::live::LiveView;
use super::model::*;
use super::SledRegistry;

/// A device as the API shows it (never the credential).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: String,
    pub kind: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    pub protocol: Option<String>,
    pub ward: Option<String>,
    pub bed: Option<String>,
    pub state: DeviceState,
    pub maintenance_due: Option<String>,
    pub notes: Option<String>,
    pub has_credential: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub live: LiveView,
}

impl DeviceView {
    pub(super) fn new(d: &Device, live: LiveView) -> DeviceView {
        DeviceView {
            id: d.id.clone(),
            kind: d.kind.clone(),
            manufacturer: d.manufacturer.clone(),
            model: d.model.clone(),
            serial: d.serial.clone(),
            firmware: d.firmware.clone(),
            protocol: d.protocol.clone(),
            ward: d.ward.clone(),
            bed: d.bed.clone(),
            state: d.state,
            maintenance_due: d.maintenance_due.clone(),
            notes: d.notes.clone(),
            has_credential: d.secret_sha256.is_some(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            live,
        }
    }
}

/// Filters of a device list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub ward: Option<String>,
    pub bed: Option<String>,
    pub kind: Option<String>,
    pub state: Option<DeviceState>,
    pub online: Option<bool>,
}

/// A bed with its slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BedView {
    pub ward: String,
    pub bed: String,
    /// Every standard kind (null when empty) and any other kind bound here.
    pub slots: BTreeMap<String, Option<String>>,
    /// Every device bound to the bed (slotted or not).
    pub devices: Vec<String>,
    pub online: usize,
    /// Alarms of the bed in the last 24 h (null when the alarm history is not wired).
    pub alarms_24h: Option<u64>,
}

/// Something a biomedical engineer should look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub device: String,
    pub ward: Option<String>,
    pub bed: Option<String>,
    /// `offline`, `never_seen`, `flapping`, `high_reject_rate`, `maintenance_overdue`,
    /// `battery_low`, `no_credential`, `firmware_mismatch`.
    pub problem: String,
    pub detail: String,
}

/// Five connects within ten minutes is a flapping connection.
pub const FLAPPING_CONNECTS: usize = 5;
/// More than this share of a device's messages rejected (with at least 20 messages).
pub const HIGH_REJECT_SHARE: f64 = 0.1;
pub const BATTERY_LOW_PCT: f64 = 20.0;

impl SledRegistry {
    pub(super) fn view(&self, id: &str) -> Option<DeviceView> {
        let now = self.clock.now_ms();
        let index = self.read();
        index
            .devices
            .get(id)
            .map(|i| DeviceView::new(&i.device, i.live.view(now)))
    }

    pub fn get(&self, id: &str) -> Option<DeviceView> {
        self.view(id)
    }

    pub fn list(&self, f: &ListFilter) -> Vec<DeviceView> {
        let now = self.clock.now_ms();
        let index = self.read();
        let mut out: Vec<DeviceView> = index
            .devices
            .values()
            .filter(|i| {
                let d = &i.device;
                f.ward.as_ref().is_none_or(|w| d.ward.as_ref() == Some(w))
                    && f.bed.as_ref().is_none_or(|b| d.bed.as_ref() == Some(b))
                    && f.kind.as_ref().is_none_or(|k| &d.kind == k)
                    && f.state.is_none_or(|s| d.state == s)
            })
            .map(|i| DeviceView::new(&i.device, i.live.view(now)))
            .filter(|v| f.online.is_none_or(|o| v.live.online == o))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    pub fn history(&self, id: &str) -> Result<Vec<Change>> {
        if !self.read().devices.contains_key(id) {
            return Err(RegistryError::NotFound(id.to_owned()));
        }
        let mut prefix = id.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.history.scan_prefix(prefix) {
            let (_, v) = kv?;
            if let Ok(c) = serde_json::from_slice(&v) {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn alarms_24h(&self, bed: &str, now: Millis) -> Option<u64> {
        self.alarms
            .get()
            .and_then(|f| f(bed, now - 24 * 3600 * 1000, now))
    }

    /// The `(ward, bed)` pairs of the registry's beds with this id (compared without case),
    /// from the index: cheap enough for every request and every gateway batch.
    pub fn beds_named(&self, bed: &str) -> Vec<(String, String)> {
        self.read()
            .beds
            .iter()
            .filter(|(_, b)| b.eq_ignore_ascii_case(bed))
            .cloned()
            .collect()
    }

    /// Beds with their slots (of one ward, or all).
    pub fn beds(&self, ward: Option<&str>) -> Vec<BedView> {
        let now = self.clock.now_ms();
        let index = self.read();
        let mut beds: BTreeMap<(String, String), BedView> = BTreeMap::new();
        for (w, b) in &index.beds {
            if ward.is_some_and(|x| x != w) {
                continue;
            }
            let slots = KINDS.iter().map(|k| ((*k).to_owned(), None)).collect();
            beds.insert(
                (w.clone(), b.clone()),
                BedView {
                    ward: w.clone(),
                    bed: b.clone(),
                    slots,
                    devices: Vec::new(),
                    online: 0,
                    alarms_24h: None,
                },
            );
        }
        let mut ids: Vec<&Indexed> = index.devices.values().collect();
        ids.sort_by(|a, b| a.device.id.cmp(&b.device.id));
        for i in ids {
            let d = &i.device;
            let (Some(w), Some(b)) = (&d.ward, &d.bed) else {
                continue;
            };
            let Some(view) = beds.get_mut(&(w.clone(), b.clone())) else {
                continue;
            };
            view.devices.push(d.id.clone());
            if d.slot().is_some() {
                view.slots.insert(d.kind.clone(), Some(d.id.clone()));
            }
            if i.live.view(now).online {
                view.online += 1;
            }
        }
        drop(index);
        let mut out: Vec<BedView> = beds.into_values().collect();
        for b in &mut out {
            b.alarms_24h = self.alarms_24h(&b.bed, now);
        }
        out
    }

    pub fn bed(&self, ward: Option<&str>, bed: &str) -> Option<BedView> {
        let ward = ward.unwrap_or(&self.default_ward);
        self.beds(Some(ward)).into_iter().find(|b| b.bed == bed)
    }

    /// Alarms of the device's bed in the last 24 h.
    pub fn device_alarms_24h(&self, id: &str) -> Option<u64> {
        let bed = self.read().devices.get(id)?.device.bed.clone()?;
        self.alarms_24h(&bed, self.clock.now_ms())
    }

    /// What needs attention, by device.
    pub fn problems(&self, ward: Option<&str>) -> Vec<Problem> {
        let now = self.clock.now_ms();
        let today = date_of(now);
        let mut out = Vec::new();
        let filter = ListFilter {
            ward: ward.map(str::to_owned),
            state: Some(DeviceState::Active),
            ..ListFilter::default()
        };
        for v in self.list(&filter) {
            let mut add = |problem: &'static str, detail: String| {
                out.push(Problem {
                    device: v.id.clone(),
                    ward: v.ward.clone(),
                    bed: v.bed.clone(),
                    problem: problem.to_owned(),
                    detail,
                })
            };
            let l = &v.live;
            if !l.online {
                match l.last_seen {
                    Some(t) => add(
                        "offline",
                        format!("last seen {}", wardhub_adapters::model::format_rfc3339(t)),
                    ),
                    None => add(
                        "never_seen",
                        "no connection or data since the hub started".into(),
                    ),
                }
            }
            if l.connects_last_10m >= FLAPPING_CONNECTS {
                add(
                    "flapping",
                    format!("{} connects in the last 10 minutes", l.connects_last_10m),
                );
            }
            let total = l.messages + l.rejects;
            if total >= 20 && l.rejects as f64 > HIGH_REJECT_SHARE * total as f64 {
                add(
                    "high_reject_rate",
                    format!(
                        "{} of {} inputs rejected since the hub started",
                        l.rejects, total
                    ),
                );
            }
            if let Some(due) = &v.maintenance_due {
                if due.as_str() < today.as_str() {
                    add("maintenance_overdue", format!("due {due}"));
                }
            }
            if let Some(b) = l.battery_pct {
                if b < BATTERY_LOW_PCT && l.charging != Some(true) {
                    add("battery_low", format!("{b:.0} %"));
                }
            }
            if !v.has_credential {
                add(
                    "no_credential",
                    "connects by id alone (config [[devices]] without secret_sha256)".into(),
                );
            }
            if let (Some(reg), Some(rep)) = (&v.firmware, &l.firmware_reported) {
                if reg != rep {
                    add(
                        "firmware_mismatch",
                        format!("registered {reg}, reports {rep}"),
                    );
                }
            }
        }
        out
    }

    /// Every device, for export.
    pub fn all(&self) -> Vec<Device> {
        let index = self.read();
        let mut out: Vec<Device> = index
            .devices
            .values()
            .map(|i| (*i.device).clone())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}
