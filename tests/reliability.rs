//! Reliability: the gateway attacked the way production attacks it —
//! `kill -9` (under load and at chosen moments), a full disk, a hostile
//! upstream, hot reloads, hostile adapters — with the figures RELIABILITY.md
//! records. Every test of these kinds lives here, and only here.

mod cluster_crash;
mod crash;
mod disk;
mod failpoints;
mod harness;
mod hostile_plugins;
mod hot_reload;
mod store_hygiene;
mod upstream_faults;
