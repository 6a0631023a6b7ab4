//! Reliability: the gateway attacked the way production attacks it —
//! `kill -9` under load, a full disk, a hostile upstream — with the figures
//! RELIABILITY.md records.

mod crash;
mod disk;
mod failpoints;
mod harness;
mod hostile_plugins;
mod hot_reload;
mod store_hygiene;
mod upstream_faults;
