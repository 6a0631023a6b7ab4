//! End-to-end tests: the gateway on port 0 in front of real servers on
//! 127.0.0.1. One test binary, so wasmtime is linked once.

mod support;

mod alpine;
mod core_cache;
mod core_faults;
mod core_ops;
mod docker;
mod git;
mod headers;
mod hosted;
mod plugin_kit;
mod plugin_kit_pypi;
mod plugin_kit_wit;
mod reliability;
mod rpm;
mod security;
mod security_adapters;
mod security_conn;
mod security_hosted;
mod security_plugins;
