//! End-to-end tests: real hubs on loopback port 0, real clients (rumqttc, Debian's
//! mosquitto_pub, HTTP).

mod alarms;
mod bad_input;
mod browser;
mod contract;
mod dissemination;
mod edge;
mod emr;
mod events;
mod health;
mod hl7;
mod ingest;
mod overload;
mod phone;
mod prometheus;
mod registry;
mod security;
mod simulator;
mod uplink;
