//! The hub crate's one integration-test harness (like ripgrep's): the `wardhub` binary as a
//! user runs it (`cli`, `demo`, `devices_cli`) and the structure the code promises (`house`).
//! Helpers the modules share are in `common`.

mod cli;
mod common;
mod demo;
mod devices_cli;
mod house;
