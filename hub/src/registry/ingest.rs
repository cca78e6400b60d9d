//! What the ingest path asks of the registry: the [`Registry`] trait's lookups for the
//! pipeline, the MQTT edge and the adapters (resolve a device to its bed, authenticate it,
//! place a gateway's device on a bed, note that it was seen), and the liveness it reports
//! (status messages, rejected inputs). Every answer is a lookup in the in-memory index under
//! a read lock; only a gateway registering a new device writes.

use super::model::*;
use super::{AuthOutcome, AuthRefusal, Registry, Resolution, SledRegistry};
use crate::auth::{parse_hex32, sha256};
use crate::device_status::DeviceStatus;

impl SledRegistry {
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
