//! A lock in the key-value store, for changes that several requests may
//! make at once and that span several keys (a hosted registry's index and
//! manifests): taken with `kv-compare-and-set` over an absent value,
//! expiring on its own (an adapter that traps does not release it), and
//! released when the guard is dropped.
//!
//! ```
//! use artgate_sdk::kvlock;
//! use artgate_sdk::testing::FakeHost;
//!
//! let host = FakeHost::new();
//! let first = kvlock::try_lock(&host, "lock/pkg", "req-1", 30).expect("free");
//! assert!(kvlock::try_lock(&host, "lock/pkg", "req-2", 30).is_none(), "held");
//! drop(first);
//! assert!(kvlock::try_lock(&host, "lock/pkg", "req-2", 30).is_some(), "released");
//! ```

use crate::Host;
use crate::types::Rejection;

/// A held lock; released on drop.
pub struct Held<'a> {
    host: &'a dyn Host,
    key: String,
    token: Vec<u8>,
}

/// Takes the lock `key` for `ttl_secs` (it expires on its own after that)
/// in the name of `token` (the request id, say), or `None` when another
/// holder has it.
pub fn try_lock<'a>(host: &'a dyn Host, key: &str, token: &str, ttl_secs: u64) -> Option<Held<'a>> {
    let token = token.as_bytes().to_vec();
    host.kv_compare_and_set(key, None, &token, ttl_secs.max(1))
        .then(|| Held {
            host,
            key: key.to_owned(),
            token,
        })
}

/// [`try_lock`] for `ttl_secs`, or the 503 a client should retry after:
/// `what` (`"Package left-pad"`) "is being changed by another request".
pub fn lock_or_busy<'a>(
    host: &'a dyn Host,
    key: &str,
    token: &str,
    ttl_secs: u64,
    what: &str,
) -> Result<Held<'a>, Rejection> {
    try_lock(host, key, token, ttl_secs).ok_or_else(|| {
        Rejection::new(
            503,
            format!("{what} is being changed by another request; try again."),
        )
    })
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Released only while it is still this holder's (it may have
        // expired and been taken by another).
        if self.host.kv_get(&self.key).as_deref() == Some(self.token.as_slice()) {
            self.host.kv_delete(&self.key);
        }
    }
}
