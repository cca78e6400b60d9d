//! [`SledRegistry`]: the registry in the hub's sled database.
//!
//! Trees: `registry.devices` (id → JSON [`Device`]), `registry.history` (id, 0, sequence →
//! JSON [`Change`]), `registry.beds` (`ward/bed` → empty). Every device is also in an in-memory
//! index, so the ingest path's lookups never touch sled.
//!
//! Writes are rare (people at a CLI) and go one at a time through a mutex: an operation reads
//! the index, checks everything (slot free, device active, …), then commits the devices it
//! changed and their history in one sled transaction, flushes, and only then updates the
//! index. Two concurrent binds to one slot therefore cannot both win: the second sees the
//! first's binding. (The hub holds sled's lock on its data directory, so no other process
//! writes these trees.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use wardhub_adapters::model::{Clock, Millis};

use super::live::{Live, LiveView};
use super::model::StaticDevice;
use super::model::*;
use super::{AuthOutcome, AuthRefusal, Registry, Resolution};
use crate::auth::{hex, new_secret, parse_hex32, sha256};
use crate::device_status::DeviceStatus;

/// Counts alarms of a bed between two times (the alarm store's history), when wired.
pub type AlarmCounter = Arc<dyn Fn(&str, Millis, Millis) -> Option<u64> + Send + Sync>;

#[derive(Clone)]
struct Indexed {
    device: Arc<Device>,
    live: Arc<Live>,
}

#[derive(Default)]
struct Index {
    devices: HashMap<String, Indexed>,
    /// Slot key → the active device holding it.
    slots: HashMap<String, String>,
    beds: BTreeSet<(String, String)>,
}

/// The device registry over sled.
pub struct SledRegistry {
    db: sled::Db,
    devices: sled::Tree,
    history: sled::Tree,
    beds: sled::Tree,
    index: RwLock<Index>,
    write: Mutex<()>,
    default_ward: String,
    allow_unregistered: bool,
    clock: Arc<dyn Clock>,
    alarms: OnceLock<AlarmCounter>,
    /// Called with a device id once it is retired or its credentials rotated (the MQTT edge
    /// closes its live session).
    credential_hooks: Mutex<Vec<CredentialHook>>,
}

/// See [`SledRegistry::on_credentials_changed`].
pub type CredentialHook = Box<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for SledRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledRegistry")
            .field("default_ward", &self.default_ward)
            .finish_non_exhaustive()
    }
}

/// The result of a create or update.
#[derive(Debug, Clone, Serialize)]
pub struct Upserted {
    pub created: bool,
    /// A new secret (created without one, or rotated): shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub device: DeviceView,
}

/// A device as the API shows it (never the credential).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    fn new(d: &Device, live: LiveView) -> DeviceView {
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub device: String,
    pub ward: Option<String>,
    pub bed: Option<String>,
    /// `offline`, `never_seen`, `flapping`, `high_reject_rate`, `maintenance_overdue`,
    /// `battery_low`, `no_credential`, `firmware_mismatch`.
    pub problem: &'static str,
    pub detail: String,
}

/// Five connects within ten minutes is a flapping connection.
pub const FLAPPING_CONNECTS: usize = 5;
/// More than this share of a device's messages rejected (with at least 20 messages).
pub const HIGH_REJECT_SHARE: f64 = 0.1;
pub const BATTERY_LOW_PCT: f64 = 20.0;

/// The changes an operation made, before they are committed.
struct Working<'a> {
    index: &'a Index,
    devices: BTreeMap<String, Device>,
    slots: Vec<(String, Option<String>)>,
    slot_overlay: HashMap<String, Option<String>>,
    beds: BTreeSet<(String, String)>,
    history: Vec<(String, Change)>,
    now: Millis,
    who: String,
}

impl<'a> Working<'a> {
    fn new(index: &'a Index, now: Millis, who: &str) -> Self {
        Working {
            index,
            devices: BTreeMap::new(),
            slots: Vec::new(),
            slot_overlay: HashMap::new(),
            beds: BTreeSet::new(),
            history: Vec::new(),
            now,
            who: who.to_owned(),
        }
    }

    fn device(&self, id: &str) -> Option<Device> {
        self.devices
            .get(id)
            .cloned()
            .or_else(|| self.index.devices.get(id).map(|i| (*i.device).clone()))
    }

    fn slot_holder(&self, key: &str) -> Option<String> {
        match self.slot_overlay.get(key) {
            Some(v) => v.clone(),
            None => self.index.slots.get(key).cloned(),
        }
    }

    fn set_slot(&mut self, key: String, holder: Option<String>) {
        self.slot_overlay.insert(key.clone(), holder.clone());
        self.slots.push((key, holder));
    }

    fn put(&mut self, old: Option<&Device>, mut new: Device) {
        if let Some(s) = old.and_then(Device::slot) {
            self.set_slot(s, None);
        }
        if let Some(s) = new.slot() {
            self.set_slot(s, Some(new.id.clone()));
        }
        if let (Some(w), Some(b)) = (&new.ward, &new.bed) {
            let key = (w.clone(), b.clone());
            if !self.index.beds.contains(&key) {
                self.beds.insert(key);
            }
        }
        new.updated_at = self.now;
        self.devices.insert(new.id.clone(), new);
    }

    fn log(&mut self, id: &str, action: &str, detail: String) {
        self.history.push((
            id.to_owned(),
            Change {
                at: self.now,
                who: self.who.clone(),
                action: action.to_owned(),
                detail,
            },
        ));
    }

    fn into_changes(self) -> Changes {
        Changes {
            devices: self.devices,
            slots: self.slots,
            beds: self.beds,
            history: self.history,
        }
    }
}

struct Changes {
    devices: BTreeMap<String, Device>,
    slots: Vec<(String, Option<String>)>,
    beds: BTreeSet<(String, String)>,
    history: Vec<(String, Change)>,
}

fn opt(v: &Option<String>) -> Option<Option<String>> {
    // Present and empty clears a field.
    v.as_ref()
        .map(|s| Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
}

fn history_key(id: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 9);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn binding_text(d: &Device) -> String {
    match (&d.ward, &d.bed) {
        (Some(w), Some(b)) => format!("{w}/{b}"),
        _ => "no bed".into(),
    }
}

/// What an upsert may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    CreateOrUpdate,
    CreateOnly,
    UpdateOnly,
}

impl SledRegistry {
    /// Opens (or creates) the registry trees in `db` and loads the index.
    pub fn open(
        db: &sled::Db,
        default_ward: &str,
        allow_unregistered: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<SledRegistry> {
        let devices = db.open_tree("registry.devices")?;
        let history = db.open_tree("registry.history")?;
        let beds = db.open_tree("registry.beds")?;
        let mut index = Index::default();
        for kv in devices.iter() {
            let (k, v) = kv?;
            let device: Device = match serde_json::from_slice(&v) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(key = %String::from_utf8_lossy(&k), error = %e, "registry: unreadable device entry skipped");
                    continue;
                }
            };
            if let Some(s) = device.slot() {
                if let Some(other) = index.slots.get(&s) {
                    tracing::error!(slot = %s, device = %device.id, holder = %other, "registry: slot held twice; keeping the first");
                } else {
                    index.slots.insert(s, device.id.clone());
                }
            }
            if let (Some(w), Some(b)) = (&device.ward, &device.bed) {
                index.beds.insert((w.clone(), b.clone()));
            }
            index.devices.insert(
                device.id.clone(),
                Indexed {
                    device: Arc::new(device),
                    live: Arc::new(Live::default()),
                },
            );
        }
        for kv in beds.iter() {
            let (k, _) = kv?;
            let k = String::from_utf8_lossy(&k).into_owned();
            if let Some((w, b)) = k.split_once('/') {
                index.beds.insert((w.to_owned(), b.to_owned()));
            }
        }
        Ok(SledRegistry {
            db: db.clone(),
            devices,
            history,
            beds,
            index: RwLock::new(index),
            write: Mutex::new(()),
            default_ward: default_ward.to_owned(),
            allow_unregistered,
            clock,
            alarms: OnceLock::new(),
            credential_hooks: Mutex::default(),
        })
    }

    pub fn default_ward(&self) -> &str {
        &self.default_ward
    }

    /// Wires "alarms in the last 24 h" (per bed) to the alarm history.
    pub fn set_alarm_counter(&self, counter: AlarmCounter) {
        let _ = self.alarms.set(counter);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` as one serialized write: it sees every earlier write, and what it changed is
    /// committed atomically (or not at all when it fails).
    fn write_op<T>(&self, who: &str, op: impl FnOnce(&mut Working<'_>) -> Result<T>) -> Result<T> {
        let _serial = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now_ms();
        let (out, changes) = {
            let index = self.read();
            let mut w = Working::new(&index, now, who);
            let out = op(&mut w)?;
            (out, w.into_changes())
        };
        self.commit(changes)?;
        Ok(out)
    }

    fn commit(&self, c: Changes) -> Result<()> {
        if c.devices.is_empty() && c.beds.is_empty() && c.history.is_empty() {
            return Ok(());
        }
        let mut history = Vec::with_capacity(c.history.len());
        for (id, change) in &c.history {
            let json =
                serde_json::to_vec(change).map_err(|e| RegistryError::Storage(e.to_string()))?;
            history.push((history_key(id, self.db.generate_id()?), json));
        }
        let mut devices = Vec::with_capacity(c.devices.len());
        for (id, d) in &c.devices {
            let json = serde_json::to_vec(d).map_err(|e| RegistryError::Storage(e.to_string()))?;
            devices.push((id.as_bytes().to_vec(), json));
        }
        let beds: Vec<Vec<u8>> = c
            .beds
            .iter()
            .map(|(w, b)| format!("{w}/{b}").into_bytes())
            .collect();
        (&self.devices, &self.history, &self.beds)
            .transaction(|(dt, ht, bt)| {
                for (k, v) in &devices {
                    dt.insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &history {
                    ht.insert(k.as_slice(), v.as_slice())?;
                }
                for k in &beds {
                    bt.insert(k.as_slice(), &[][..])?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e: TransactionError<()>| RegistryError::Storage(format!("{e:?}")))?;
        self.db.flush()?;
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        for (key, holder) in c.slots {
            match holder {
                Some(h) => index.slots.insert(key, h),
                None => index.slots.remove(&key),
            };
        }
        for (id, d) in c.devices {
            let d = Arc::new(d);
            match index.devices.get_mut(&id) {
                Some(i) => i.device = d,
                None => {
                    index.devices.insert(
                        id,
                        Indexed {
                            device: d,
                            live: Arc::new(Live::default()),
                        },
                    );
                }
            }
        }
        index.beds.extend(c.beds);
        Ok(())
    }

    fn upsert_in(
        &self,
        w: &mut Working<'_>,
        id: &str,
        input: &DeviceInput,
        secret_sha256: Option<String>,
        mode: Mode,
    ) -> Result<Upserted> {
        check_id("device id", id)?;
        input.validate()?;
        let old = w.device(id);
        match (&old, mode) {
            (Some(_), Mode::CreateOnly) => {
                return Err(RegistryError::Conflict(format!(
                    "device {id} already exists"
                )))
            }
            (None, Mode::UpdateOnly) => return Err(RegistryError::NotFound(id.to_owned())),
            (Some(d), _) if d.state == DeviceState::Retired => {
                return Err(RegistryError::Conflict(format!(
                    "device {id} is retired; register the replacement under a new id"
                )))
            }
            _ => {}
        }
        let created = old.is_none();
        let mut new = match &old {
            Some(d) => d.clone(),
            None => Device {
                id: id.to_owned(),
                kind: input.kind.clone().ok_or_else(|| {
                    RegistryError::Invalid(format!(
                        "kind is required for a new device ({})",
                        KINDS.join(", ")
                    ))
                })?,
                manufacturer: None,
                model: None,
                serial: None,
                firmware: None,
                protocol: None,
                ward: None,
                bed: None,
                secret_sha256: None,
                state: DeviceState::Active,
                maintenance_due: None,
                notes: None,
                created_at: w.now,
                updated_at: w.now,
            },
        };
        if let Some(k) = &input.kind {
            new.kind = k.clone();
        }
        for (field, v) in [
            (&mut new.manufacturer, &input.manufacturer),
            (&mut new.model, &input.model),
            (&mut new.serial, &input.serial),
            (&mut new.firmware, &input.firmware),
            (&mut new.protocol, &input.protocol),
            (&mut new.maintenance_due, &input.maintenance_due),
            (&mut new.notes, &input.notes),
        ] {
            if let Some(v) = opt(v) {
                *field = v;
            }
        }
        if let Some(bed) = &input.bed {
            new.ward = Some(
                input
                    .ward
                    .clone()
                    .unwrap_or_else(|| self.default_ward.clone()),
            );
            new.bed = Some(bed.clone());
        }
        let mut secret = None;
        if let Some(s) = &input.secret {
            new.secret_sha256 = Some(hex(&sha256(s.as_bytes())));
        } else if let Some(h) = secret_sha256 {
            new.secret_sha256 = Some(h);
        } else if created && mode != Mode::UpdateOnly && w.who != "config" {
            let s = new_secret();
            new.secret_sha256 = Some(hex(&sha256(s.as_bytes())));
            secret = Some(s);
        }
        // The slot, last: everything else is valid.
        if let Some(slot) = new.slot() {
            if let Some(holder) = w.slot_holder(&slot).filter(|h| h != id) {
                if !input.replace {
                    return Err(RegistryError::Conflict(format!(
                        "slot {slot} is held by {holder} (unbind it first, or replace)"
                    )));
                }
                if let Some(h) = w.device(&holder) {
                    let mut freed = h.clone();
                    freed.ward = None;
                    freed.bed = None;
                    w.put(Some(&h), freed);
                    w.log(&holder, "unbound", format!("replaced in {slot} by {id}"));
                }
            }
        }
        let view_live = w
            .index
            .devices
            .get(id)
            .map(|i| i.live.view(w.now))
            .unwrap_or_default();
        match &old {
            None => {
                w.log(
                    id,
                    "created",
                    format!("kind {}, {}", new.kind, binding_text(&new)),
                );
                w.put(None, new.clone());
            }
            Some(o) => {
                let mut same = new.clone();
                same.updated_at = o.updated_at;
                if &same != o {
                    let mut what = Vec::new();
                    if o.ward != new.ward || o.bed != new.bed {
                        w.log(
                            id,
                            "bound",
                            format!("{} -> {}", binding_text(o), binding_text(&new)),
                        );
                    }
                    if o.secret_sha256 != new.secret_sha256 {
                        what.push("credential".to_owned());
                    }
                    for (name, a, b) in [
                        ("kind", Some(&o.kind), Some(&new.kind)),
                        (
                            "manufacturer",
                            o.manufacturer.as_ref(),
                            new.manufacturer.as_ref(),
                        ),
                        ("model", o.model.as_ref(), new.model.as_ref()),
                        ("serial", o.serial.as_ref(), new.serial.as_ref()),
                        ("firmware", o.firmware.as_ref(), new.firmware.as_ref()),
                        ("protocol", o.protocol.as_ref(), new.protocol.as_ref()),
                        (
                            "maintenance_due",
                            o.maintenance_due.as_ref(),
                            new.maintenance_due.as_ref(),
                        ),
                        ("notes", o.notes.as_ref(), new.notes.as_ref()),
                    ] {
                        if a != b {
                            what.push(format!(
                                "{name}: {} -> {}",
                                a.map_or("-", String::as_str),
                                b.map_or("-", String::as_str)
                            ));
                        }
                    }
                    if !what.is_empty() {
                        w.log(id, "updated", what.join("; "));
                    }
                    w.put(Some(o), new.clone());
                }
            }
        }
        let device = w.device(id).unwrap_or(new);
        Ok(Upserted {
            created,
            secret,
            device: DeviceView::new(&device, view_live),
        })
    }

    /// `PUT /api/v1/devices/{id}`: creates or updates, and binds when a bed is given.
    pub fn upsert(&self, who: &str, id: &str, input: &DeviceInput) -> Result<Upserted> {
        self.write_op(who, |w| {
            self.upsert_in(w, id, input, None, Mode::CreateOrUpdate)
        })
    }

    /// Creates a device; a conflict if it exists.
    pub fn create(&self, who: &str, id: &str, input: &DeviceInput) -> Result<Upserted> {
        self.write_op(who, |w| {
            self.upsert_in(w, id, input, None, Mode::CreateOnly)
        })
    }

    pub fn bind(
        &self,
        who: &str,
        id: &str,
        ward: Option<String>,
        bed: &str,
        replace: bool,
    ) -> Result<DeviceView> {
        let input = DeviceInput {
            ward,
            bed: Some(bed.to_owned()),
            replace,
            ..DeviceInput::default()
        };
        self.write_op(who, |w| {
            self.upsert_in(w, id, &input, None, Mode::UpdateOnly)
        })
        .map(|u| u.device)
    }

    pub fn unbind(&self, who: &str, id: &str) -> Result<DeviceView> {
        self.write_op(who, |w| {
            let d = w
                .device(id)
                .ok_or_else(|| RegistryError::NotFound(id.to_owned()))?;
            if d.bed.is_some() {
                let mut n = d.clone();
                n.ward = None;
                n.bed = None;
                w.log(id, "unbound", format!("from {}", binding_text(&d)));
                w.put(Some(&d), n);
            }
            Ok(())
        })?;
        self.view(id)
            .ok_or_else(|| RegistryError::NotFound(id.to_owned()))
    }

    /// Calls `hook` with the id of every device retired or given new credentials from now on.
    pub fn on_credentials_changed(&self, hook: CredentialHook) {
        self.credential_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    fn credentials_changed(&self, id: &str) {
        for h in self
            .credential_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            h(id);
        }
    }

    pub fn retire(&self, who: &str, id: &str) -> Result<DeviceView> {
        let view = self.retire_inner(who, id)?;
        self.credentials_changed(id);
        Ok(view)
    }

    fn retire_inner(&self, who: &str, id: &str) -> Result<DeviceView> {
        self.write_op(who, |w| {
            let d = w
                .device(id)
                .ok_or_else(|| RegistryError::NotFound(id.to_owned()))?;
            if d.state == DeviceState::Active {
                let mut n = d.clone();
                n.state = DeviceState::Retired;
                n.ward = None;
                n.bed = None;
                w.log(id, "retired", format!("was bound to {}", binding_text(&d)));
                w.put(Some(&d), n);
            }
            Ok(())
        })?;
        self.view(id)
            .ok_or_else(|| RegistryError::NotFound(id.to_owned()))
    }

    /// A new secret for the device (returned once; only its hash is kept).
    pub fn rotate(&self, who: &str, id: &str) -> Result<String> {
        let secret = new_secret();
        let hash = hex(&sha256(secret.as_bytes()));
        self.write_op(who, |w| {
            let d = w
                .device(id)
                .ok_or_else(|| RegistryError::NotFound(id.to_owned()))?;
            if d.state == DeviceState::Retired {
                return Err(RegistryError::Conflict(format!("device {id} is retired")));
            }
            let mut n = d.clone();
            n.secret_sha256 = Some(hash.clone());
            w.log(id, "credentials_rotated", "new secret issued".into());
            w.put(Some(&d), n);
            Ok(())
        })?;
        self.credentials_changed(id);
        Ok(secret)
    }

    /// Records a bed (beds also appear when a device is bound to them).
    pub fn add_bed(&self, who: &str, ward: Option<String>, bed: &str) -> Result<()> {
        let ward = ward.unwrap_or_else(|| self.default_ward.clone());
        check_id("ward", &ward)?;
        check_id("bed", bed)?;
        let _ = who;
        self.write_op(who, |w| {
            let key = (ward.clone(), bed.to_owned());
            if !w.index.beds.contains(&key) {
                w.beds.insert(key);
            }
            Ok(())
        })
    }

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

    fn view(&self, id: &str) -> Option<DeviceView> {
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

    /// Beds with their slots (of one ward, or all).
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
                    problem,
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

    /// The binding of a device (for cross-checks).
    pub fn binding(&self, id: &str) -> Option<(String, String)> {
        let index = self.read();
        let d = &index.devices.get(id)?.device;
        Some((d.ward.clone()?, d.bed.clone()?))
    }

    /// A status message of the device (`wardhub/v1/devices/{id}/status`).
    pub fn status_reported(&self, id: &str, status: &DeviceStatus) {
        if let Some(i) = self.read().devices.get(id) {
            i.live.status(status, self.clock.now_ms());
        }
    }

    /// A rejected input of a device (counted for `problems`).
    pub fn rejected(&self, id: &str) {
        if let Some(i) = self.read().devices.get(id) {
            i.live.reject();
        }
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// Whether anything was written.
    pub applied: bool,
    pub created: usize,
    pub updated: usize,
    pub errors: Vec<ImportError>,
    /// Secrets made for new devices without one in the file: shown once.
    pub secrets: Vec<ImportSecret>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportError {
    pub line: usize,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportSecret {
    pub id: String,
    pub secret: String,
}

impl Registry for SledRegistry {
    fn resolve(&self, device: &str) -> Resolution {
        let index = self.read();
        match index.devices.get(device) {
            Some(i) if i.device.state == DeviceState::Active => {
                match (&i.device.ward, &i.device.bed) {
                    (Some(w), Some(b)) => Resolution::Bound {
                        ward: w.clone(),
                        bed: b.clone(),
                    },
                    _ => Resolution::Unbound,
                }
            }
            Some(_) => Resolution::Refused,
            None if self.allow_unregistered => Resolution::Unbound,
            None => Resolution::Refused,
        }
    }

    fn is_registered(&self, device: &str) -> bool {
        self.read().devices.contains_key(device)
    }

    fn place(
        &self,
        device: &str,
        p: &wardhub_adapters::adapter::Placement,
    ) -> std::result::Result<Resolution, String> {
        // The bed by its id; PV1-3.1 (the point of care, the hospital's unit code) only tells
        // apart beds of the same id in different wards.
        let same = self.beds_named(&p.bed);
        let (ward, bed) = match same.as_slice() {
            [] => {
                return Err(format!(
                    "gateway {}: bed {:?} of PV1-3 is not a bed of the registry",
                    p.gateway, p.bed
                ))
            }
            [one] => one.clone(),
            many => many
                .iter()
                .find(|(w, _)| w.eq_ignore_ascii_case(&p.point_of_care))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "gateway {}: bed {:?} is in several wards and PV1-3.1 ({:?}) names none",
                        p.gateway, p.bed, p.point_of_care
                    )
                })?,
        };
        let placed = Resolution::Bound {
            ward: ward.clone(),
            bed: bed.clone(),
        };
        match self.resolve(device) {
            Resolution::Refused if self.is_registered(device) => Err("device is retired".into()),
            Resolution::Refused if !p.auto_create => Err(format!(
                "device is not registered (gateway {} may not register devices)",
                p.gateway
            )),
            Resolution::Refused => {
                // Kind unknown: it holds no slot of the bed (a biomed can set it later).
                let input = DeviceInput {
                    kind: Some(crate::registry::model::UNSPECIFIED_KIND.into()),
                    protocol: Some("hl7_mllp".into()),
                    ward: Some(ward),
                    bed: Some(bed.clone()),
                    notes: Some(format!("registered by HL7 gateway {}", p.gateway)),
                    ..DeviceInput::default()
                };
                match self.create(&format!("gateway:{}", p.gateway), device, &input) {
                    Ok(_) => {
                        tracing::info!(
                            device,
                            gateway = %p.gateway,
                            bed = %bed,
                            "device registered by an HL7 gateway"
                        );
                        Ok(placed)
                    }
                    // Another batch registered it meanwhile.
                    Err(RegistryError::Conflict(_)) => Ok(placed),
                    Err(e) => Err(format!("the device could not be registered: {e}")),
                }
            }
            _ => Ok(placed),
        }
    }

    fn authenticate_certificate(&self, device: &str) -> AuthOutcome {
        let index = self.read();
        match index.devices.get(device) {
            None => AuthOutcome::Refused(AuthRefusal::Unknown),
            Some(i) if i.device.state == DeviceState::Retired => {
                AuthOutcome::Refused(AuthRefusal::Retired)
            }
            Some(i) => AuthOutcome::Device(i.live.clone()),
        }
    }

    fn authenticate(&self, device: &str, secret: Option<&[u8]>) -> AuthOutcome {
        let index = self.read();
        let Some(i) = index.devices.get(device) else {
            return if self.allow_unregistered {
                AuthOutcome::Unregistered
            } else {
                AuthOutcome::Refused(AuthRefusal::Unknown)
            };
        };
        if i.device.state == DeviceState::Retired {
            return AuthOutcome::Refused(AuthRefusal::Retired);
        }
        match i.device.secret_sha256.as_deref().and_then(parse_hex32) {
            // Seeded from the config without a credential: the id is enough (see SECURITY.md).
            None => AuthOutcome::Device(i.live.clone()),
            // Hashes are compared, not secrets: the timing says nothing about the secret.
            Some(h) => match secret {
                Some(s) if sha256(s) == h => AuthOutcome::Device(i.live.clone()),
                _ => AuthOutcome::Refused(AuthRefusal::BadCredentials),
            },
        }
    }

    fn status_reported(&self, device: &str, status: &DeviceStatus) {
        // The inherent method (inherent methods win over trait methods).
        SledRegistry::status_reported(self, device, status);
    }

    fn seen(&self, device: &str, now_ms: i64) {
        if let Some(i) = self.read().devices.get(device) {
            // MQTT devices are counted per publish by the edge; others per pipeline batch.
            if i.live.view_connections() == 0 {
                i.live.message(now_ms);
            } else {
                i.live.touch(now_ms);
            }
        }
    }
}
