//! Device status and event messages, as the pipeline applies them: status goes to the
//! registry (battery, firmware) and the alarm engine (battery, online, clock); events (nurse
//! call, bed exit, pump occlusion, end of infusion) go to the alarm engine. Both run after the
//! observations of the same batch and before its durability ticket, so a device told
//! "received" finds the alarm that its message raised in the audit log.

use std::sync::Arc;

use wardhub_adapters::adapter::{DeviceMessage, DeviceMessageKind};

use crate::alarms::{AlarmService, DeviceEvent, DeviceStatus};
use crate::pipeline::DeviceMessages;
use crate::registry::Registry;

/// [`DeviceMessages`] over the registry and the alarm service.
pub struct ToRegistryAndAlarms {
    pub registry: Arc<dyn Registry>,
    pub alarms: Arc<AlarmService>,
    /// Status messages also go up to the hospital when the uplink is on.
    pub uplink: Option<Arc<crate::uplink::Uplink>>,
}

impl std::fmt::Debug for ToRegistryAndAlarms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToRegistryAndAlarms")
            .finish_non_exhaustive()
    }
}

impl DeviceMessages for ToRegistryAndAlarms {
    fn apply(&self, m: &DeviceMessage, bed: Option<&str>) -> Result<(), String> {
        match m.kind {
            DeviceMessageKind::Status => {
                let status = DeviceStatus::from_json(&m.payload).map_err(|e| e.to_string())?;
                self.registry.status_reported(m.device.as_str(), &status);
                self.alarms.device_status(&m.device, bed, &status);
                if let Some(u) = &self.uplink {
                    u.device_status(m.device.as_str(), bed, &status);
                }
            }
            DeviceMessageKind::Event => {
                let event = DeviceEvent::from_json(&m.payload).map_err(|e| e.to_string())?;
                self.alarms.device_event(&m.device, bed, &event);
            }
        }
        Ok(())
    }
}
