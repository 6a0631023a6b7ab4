//! The per-blob lock that makes concurrent misses of one blob on a
//! pull-through remote fetch it from the upstream once: the first caller
//! fetches and commits while the others wait, then find it stored, or
//! take the first caller's failure instead of trying again one after
//! another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How the fetch of the holder before ended: `None` unless it failed.
type Outcome = Option<(tonic::Code, String)>;

/// One key's lock, with how its last holder's fetch ended.
type Flight = tokio::sync::Mutex<Outcome>;

/// Per-key locks: the first caller of [`Flights::lock`] for a key holds
/// it while it fetches; the others wait, then find the key stored.
#[derive(Default)]
pub struct Flights {
    held: Mutex<HashMap<String, Arc<Flight>>>,
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
            guard,
        }
    }
}

impl FlightGuard<'_> {
    /// Why the fetch an earlier holder made failed, if it did (while it
    /// held the key, the caller waited for it).
    pub fn failed_before(&self) -> Option<(tonic::Code, &str)> {
        self.guard.as_ref().map(|(c, w)| (*c, w.as_str()))
    }

    /// Record that this holder's fetch failed, for the callers waiting.
    pub fn fail(&mut self, code: tonic::Code, why: String) {
        *self.guard = Some((code, why));
    }
}

/// A held key of [`Flights`]; the map forgets the key when the last
/// holder or waiter is done.
pub struct FlightGuard<'a> {
    flights: &'a Flights,
    key: String,
    lock: Arc<Flight>,
    guard: tokio::sync::OwnedMutexGuard<Outcome>,
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
