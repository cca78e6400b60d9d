//! The command line of `wardhub device …` and `wardhub bed …` (clap): how to reach the hub,
//! the subcommands and their options, and the JSON body a device's fields make.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// How to reach the hub, and how to print.
#[derive(Debug, Clone, Args)]
pub struct HubArgs {
    /// The hub's HTTP address.
    #[arg(
        long,
        global = true,
        env = "WARDHUB_HUB",
        default_value = "http://127.0.0.1:8080"
    )]
    pub hub: String,
    /// A file holding the bearer token (else the WARDHUB_TOKEN environment variable).
    #[arg(long, global = true, env = "WARDHUB_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Print JSON (the API's answer) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeviceArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(subcommand)]
    pub command: DeviceCommand,
}

#[derive(Debug, Args)]
pub struct BedArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(subcommand)]
    pub command: BedCommand,
}

/// The fields of a device.
#[derive(Debug, Clone, Default, Args)]
pub struct DeviceFields {
    /// patient_monitor, infusion_pump, ventilator, smart_bed, nurse_call, wearable (or another).
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub manufacturer: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub serial: Option<String>,
    #[arg(long)]
    pub firmware: Option<String>,
    /// The adapter it talks through (mqtt_json, hl7_mllp).
    #[arg(long)]
    pub protocol: Option<String>,
    /// The ward (default: the hub's ward).
    #[arg(long)]
    pub ward: Option<String>,
    /// Bind to this bed.
    #[arg(long)]
    pub bed: Option<String>,
    /// The device's secret (16+ characters); without it the hub makes one and prints it once.
    #[arg(long, env = "WARDHUB_DEVICE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Maintenance due date, YYYY-MM-DD.
    #[arg(long)]
    pub maintenance_due: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    /// Take the bed's slot from the device holding it (which is unbound).
    #[arg(long)]
    pub replace: bool,
}

impl DeviceFields {
    pub(super) fn body(&self, id: Option<&str>) -> Value {
        let mut v = json!({
            "kind": self.kind, "manufacturer": self.manufacturer, "model": self.model,
            "serial": self.serial, "firmware": self.firmware, "protocol": self.protocol,
            "ward": self.ward, "bed": self.bed, "secret": self.secret,
            "maintenance_due": self.maintenance_due, "notes": self.notes,
            "replace": self.replace,
        });
        if let (Some(id), Some(o)) = (id, v.as_object_mut()) {
            o.insert("id".into(), json!(id));
        }
        if let Some(o) = v.as_object_mut() {
            o.retain(|_, x| !x.is_null());
        }
        v
    }
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a device (prints its new secret once unless --secret is given).
    Add {
        id: String,
        #[command(flatten)]
        fields: DeviceFields,
    },
    /// Change fields of a registered device (only those given).
    Update {
        id: String,
        #[command(flatten)]
        fields: DeviceFields,
    },
    /// List devices.
    List {
        #[arg(long)]
        ward: Option<String>,
        #[arg(long)]
        bed: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        /// active, retired or all.
        #[arg(long)]
        state: Option<String>,
        /// Only online devices.
        #[arg(long, conflicts_with = "offline")]
        online: bool,
        /// Only offline devices.
        #[arg(long)]
        offline: bool,
    },
    /// Everything about one device.
    Show { id: String },
    /// Bind a device to a bed (its kind's slot).
    Bind {
        id: String,
        bed: String,
        #[arg(long)]
        ward: Option<String>,
        /// Take the slot from the device holding it.
        #[arg(long)]
        replace: bool,
    },
    /// Unbind a device from its bed.
    Unbind { id: String },
    /// Retire a device: it is refused from now on and its slot is freed.
    Retire { id: String },
    /// Device credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Online, last seen, message rate, battery, firmware, alarms (one device, a bed, a ward).
    Status {
        id: Option<String>,
        #[arg(long)]
        ward: Option<String>,
        #[arg(long)]
        bed: Option<String>,
    },
    /// Devices that need attention: offline, flapping, rejects, maintenance, battery.
    Problems {
        #[arg(long)]
        ward: Option<String>,
    },
    /// Who changed what, when.
    History { id: String },
    /// Import devices from CSV (header: id,kind,manufacturer,model,serial,firmware,protocol,
    /// ward,bed,maintenance_due,notes,secret). Nothing is imported unless every row is good.
    Import {
        file: PathBuf,
        /// Import the good rows even when some are bad.
        #[arg(long)]
        partial: bool,
    },
    /// Export every device as CSV (no secrets).
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Issue a new secret (printed once; the old one stops working).
    Rotate { id: String },
}

#[derive(Debug, Subcommand)]
pub enum BedCommand {
    /// Beds with their six slots.
    List {
        #[arg(long)]
        ward: Option<String>,
    },
    /// One bed: slots and the status of its devices.
    Show {
        bed: String,
        #[arg(long)]
        ward: Option<String>,
    },
    /// Record a bed (beds also appear when a device is bound to them).
    Add {
        bed: String,
        #[arg(long)]
        ward: Option<String>,
    },
}
