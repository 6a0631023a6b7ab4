//! The last misses and errors of each remote, in memory, for the
//! operator console's remote page. Fresh hits are not recorded (they are
//! most requests and say nothing an operator looks for).

use crate::cache::Outcome;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Requests kept per remote.
pub const PER_REMOTE: usize = 50;

/// One request worth showing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    /// When it was answered, unix milliseconds.
    pub at_ms: u64,
    /// Method.
    pub method: String,
    /// The URL path, as the client sent it.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// How it was answered (`miss`, `stale`, `bypass`, `error`).
    pub outcome: &'static str,
    /// Time to the response head, milliseconds.
    pub ms: f64,
}

/// [`Event`]s by remote, the last [`PER_REMOTE`] of each.
#[derive(Default)]
pub struct Recent {
    by_remote: Mutex<HashMap<String, VecDeque<Event>>>,
}

impl Recent {
    /// Whether a request with `outcome` and `status` is recorded: misses,
    /// stale answers, pass-throughs and every error status but 401 (anyone
    /// can send those, and a flood of them would push out what an operator
    /// looks for; the request log has them).
    pub fn wanted(outcome: Outcome, status: u16) -> bool {
        status != 401
            && (matches!(
                outcome,
                Outcome::Miss | Outcome::Stale | Outcome::Bypass | Outcome::Error
            ) || status >= 400)
    }

    /// Record `event` for `remote` (a configured remote's name).
    pub fn record(&self, remote: &str, event: Event) {
        let mut map = self.by_remote.lock().unwrap_or_else(|p| p.into_inner());
        let q = match map.get_mut(remote) {
            Some(q) => q,
            None => map.entry(remote.to_owned()).or_default(),
        };
        if q.len() == PER_REMOTE {
            q.pop_front();
        }
        q.push_back(event);
    }

    /// `remote`'s events, newest first.
    pub fn of(&self, remote: &str) -> Vec<Event> {
        let map = self.by_remote.lock().unwrap_or_else(|p| p.into_inner());
        map.get(remote)
            .map(|q| q.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(path: &str) -> Event {
        Event {
            at_ms: 1,
            method: "GET".into(),
            path: path.into(),
            status: 200,
            outcome: "miss",
            ms: 1.0,
        }
    }

    #[test]
    fn keeps_the_last_events_per_remote_newest_first() {
        let r = Recent::default();
        for i in 0..PER_REMOTE + 3 {
            r.record("a", ev(&format!("p{i}")));
        }
        r.record("b", ev("only"));
        let a = r.of("a");
        assert_eq!(a.len(), PER_REMOTE);
        assert_eq!(a[0].path, format!("p{}", PER_REMOTE + 2));
        assert_eq!(a.last().unwrap().path, "p3");
        assert_eq!(r.of("b").len(), 1);
        assert!(r.of("c").is_empty());
        assert!(Recent::wanted(Outcome::Miss, 200));
        assert!(Recent::wanted(Outcome::Hit, 404));
        assert!(!Recent::wanted(Outcome::Hit, 200));
        assert!(!Recent::wanted(Outcome::Error, 401));
    }
}
