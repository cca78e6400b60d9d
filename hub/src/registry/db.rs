//! [`SledRegistry`] itself: the registry's sled trees, its in-memory index, and the one way
//! anything is written to them.
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
//! writes these trees.) The operations themselves are in [`super::commands`] and
//! [`super::bulk`]; what they read back, in [`super::views`] and [`super::ingest`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use wardhub_adapters::model::{Clock, Millis};

use super::live::Live;
use super::model::{Change, Device, RegistryError, Result};

/// Counts alarms of a bed between two times (the alarm store's history), when wired.
pub type AlarmCounter = Arc<dyn Fn(&str, Millis, Millis) -> Option<u64> + Send + Sync>;

#[derive(Clone)]
pub(super) struct Indexed {
    pub(super) device: Arc<Device>,
    pub(super) live: Arc<Live>,
}

#[derive(Default)]
pub(super) struct Index {
    pub(super) devices: HashMap<String, Indexed>,
    /// Slot key → the active device holding it.
    pub(super) slots: HashMap<String, String>,
    pub(super) beds: BTreeSet<(String, String)>,
}

/// The device registry over sled.
pub struct SledRegistry {
    db: sled::Db,
    devices: sled::Tree,
    pub(super) history: sled::Tree,
    beds: sled::Tree,
    index: RwLock<Index>,
    pub(super) write: Mutex<()>,
    pub(super) default_ward: String,
    pub(super) allow_unregistered: bool,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) alarms: OnceLock<AlarmCounter>,
    /// Called with a device id once it is retired or its credentials rotated (the MQTT edge
    /// closes its live session).
    pub(super) credential_hooks: Mutex<Vec<CredentialHook>>,
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

/// The changes an operation made, before they are committed.
pub(super) struct Working<'a> {
    pub(super) index: &'a Index,
    devices: BTreeMap<String, Device>,
    slots: Vec<(String, Option<String>)>,
    slot_overlay: HashMap<String, Option<String>>,
    pub(super) beds: BTreeSet<(String, String)>,
    history: Vec<(String, Change)>,
    pub(super) now: Millis,
    pub(super) who: String,
}

impl<'a> Working<'a> {
    pub(super) fn new(index: &'a Index, now: Millis, who: &str) -> Self {
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

    pub(super) fn device(&self, id: &str) -> Option<Device> {
        self.devices
            .get(id)
            .cloned()
            .or_else(|| self.index.devices.get(id).map(|i| (*i.device).clone()))
    }

    pub(super) fn slot_holder(&self, key: &str) -> Option<String> {
        match self.slot_overlay.get(key) {
            Some(v) => v.clone(),
            None => self.index.slots.get(key).cloned(),
        }
    }

    fn set_slot(&mut self, key: String, holder: Option<String>) {
        self.slot_overlay.insert(key.clone(), holder.clone());
        self.slots.push((key, holder));
    }

    pub(super) fn put(&mut self, old: Option<&Device>, mut new: Device) {
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

    pub(super) fn log(&mut self, id: &str, action: &str, detail: String) {
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

    pub(super) fn into_changes(self) -> Changes {
        Changes {
            devices: self.devices,
            slots: self.slots,
            beds: self.beds,
            history: self.history,
        }
    }
}

pub(super) struct Changes {
    devices: BTreeMap<String, Device>,
    slots: Vec<(String, Option<String>)>,
    beds: BTreeSet<(String, String)>,
    history: Vec<(String, Change)>,
}

fn history_key(id: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 9);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
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

    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` as one serialized write: it sees every earlier write, and what it changed is
    /// committed atomically (or not at all when it fails).
    pub(super) fn write_op<T>(
        &self,
        who: &str,
        op: impl FnOnce(&mut Working<'_>) -> Result<T>,
    ) -> Result<T> {
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

    pub(super) fn commit(&self, c: Changes) -> Result<()> {
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
}
