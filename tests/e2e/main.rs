//! End-to-end tests: real hubs on loopback port 0, real clients (rumqttc, Debian's
//! mosquitto_pub, HTTP).

mod alarms;
mod bad_input;
mod browser;
mod contract;
mod edge;
mod emr;
mod events;
mod health;
mod hl7;
mod ingest;
mod overload;
mod prometheus;
mod registry;
mod security;
mod simulator;
mod uplink;
