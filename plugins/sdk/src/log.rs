//! Logging into the gateway's log (WIT `host.log`).
//!
//! Use the macros [`trace!`](crate::trace), [`debug!`](crate::debug),
//! [`info!`](crate::info), [`warn!`](crate::warn) and
//! [`error!`](crate::error); they take `format!` arguments. The host tags
//! each line with the adapter name and the request id.
//!
//! Outside a component (host-target unit tests) lines go to stderr instead,
//! or to `artgate_sdk::testing::capture_logs` while it runs.

use crate::types::Level;

/// Writes `message` at `level` into the gateway's log.
pub fn log(level: Level, message: &str) {
    #[cfg(target_family = "wasm")]
    crate::bindings::artgate::adapter::host::log(level, message);
    #[cfg(not(target_family = "wasm"))]
    if !crate::testing::capture(level, message) {
        eprintln!("[{level:?}] {message}");
    }
}

/// Logs at a given [`Level`](crate::types::Level) with `format!` arguments:
/// `log!(Level::Info, "fetched {key}")`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::log($level, &::std::format!($($arg)+))
    };
}

/// Logs at level `trace` with `format!` arguments.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::types::Level::Trace, $($arg)+) };
}

/// Logs at level `debug` with `format!` arguments.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::types::Level::Debug, $($arg)+) };
}

/// Logs at level `info` with `format!` arguments.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::types::Level::Info, $($arg)+) };
}

/// Logs at level `warn` with `format!` arguments.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::types::Level::Warn, $($arg)+) };
}

/// Logs at level `error` with `format!` arguments.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::types::Level::Error, $($arg)+) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn macros_expand_on_the_host() {
        let key = "a/b";
        crate::trace!("t {key}");
        crate::debug!("d {}", 1);
        crate::info!("i");
        crate::warn!("w {key:?}");
        crate::error!("e");
        crate::log!(crate::types::Level::Info, "l");
    }
}
