//! End-to-end tests: real hubs on loopback port 0, real clients (rumqttc, Debian's
//! mosquitto_pub, HTTP).

mod bad_input;
mod browser;
mod events;
mod ingest;
mod prometheus;
mod registry;
mod simulator;
