//! The per-blob lock that makes concurrent misses of one blob on a
//! pull-through remote fetch it from the upstream once: the first caller
//! fetches and commits while the others wait, then find it stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Per-key locks: the first caller of [`Flights::lock`] for a key holds
/// it while it fetches; the others wait, then find the key stored.
#[derive(Default)]
pub struct Flights {
    held: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Flights {
    /// The lock of `key`, held until the guard drops.
    pub async fn lock(&self, key: &str) -> FlightGuard<'_> {
        let m = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            held.entry(key.to_owned()).or_default().clone()
        };
        let guard = m.clone().lock_owned().await;
        FlightGuard {
            flights: self,
            key: key.to_owned(),
            lock: m,
            _guard: guard,
        }
    }
}

/// A held key of [`Flights`]; the map forgets the key when the last
/// holder or waiter is done.
pub struct FlightGuard<'a> {
    flights: &'a Flights,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.flights.held.lock().unwrap_or_else(|p| p.into_inner());
        // The map's clone, this guard's and the owned guard's: nobody else
        // waits.
        if Arc::strong_count(&self.lock) <= 3 {
            held.remove(&self.key);
        }
    }
}
