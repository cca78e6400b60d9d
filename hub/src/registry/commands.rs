//! The registry's commands, one device at a time: register or update (`upsert`, `create`),
//! `bind`, `unbind`, `retire`, rotate credentials, record a bed. Each checks everything against
//! the index first and then writes through `SledRegistry::write_op`, so a command that fails
//! changes nothing; each leaves a line in the device's history. `upsert_in` is also the step
//! that the bulk operations in [`super::bulk`] repeat for every row.

use serde::{Deserialize, Serialize};

use super::db::{CredentialHook, Working};
use super::model::*;
use super::views::DeviceView;
use super::SledRegistry;
use crate::auth::{hex, new_secret, sha256};

/// The result of a create or update.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upserted {
    pub created: bool,
    /// A new secret (created without one, or rotated): shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub device: DeviceView,
}

fn opt(v: &Option<String>) -> Option<Option<String>> {
    // Present and empty clears a field.
    v.as_ref()
        .map(|s| Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
}

fn binding_text(d: &Device) -> String {
    match (&d.ward, &d.bed) {
        (Some(w), Some(b)) => format!("{w}/{b}"),
        _ => "no bed".into(),
    }
}

/// What an upsert may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    CreateOrUpdate,
    CreateOnly,
    UpdateOnly,
}

impl SledRegistry {
    pub(super) fn upsert_in(
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
        self.write_op(who, |w| {
            let key = (ward.clone(), bed.to_owned());
            if !w.index.beds.contains(&key) {
                w.beds.insert(key);
            }
            Ok(())
        })
    }
}
