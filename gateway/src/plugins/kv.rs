//! The adapters' key-value store as one call sees it.
//!
//! **Scoped per adapter and remote.** Every remote gets its own namespace
//! (`{adapter}/{remote}`), whatever keys the adapter picks: what one
//! remote's upstream made an adapter remember can never change what the
//! adapter decides for another remote.
//!
//! **Facts from a fetch wait for its verification.** During a fill (the
//! leader's `on-response` and `inspect-body` calls) writes are held back
//! here and reach the store only when the fetched body has passed the
//! length and digest checks and is committed ([`AdapterKv::apply`]). A
//! fill that fails — verification, truncation, the adapter's own `fail`,
//! an upstream error, a `304` or a `404` — drops them with the fill. Reads
//! see the pending writes, so a call reads what it wrote.

use crate::store::{MetaStore, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Most bytes (keys and values) one fill may hold back; later writes of
/// new keys are refused until the fill ends.
pub const MAX_PENDING_BYTES: usize = 1024 * 1024;

/// Why a key-value operation did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The backing store failed.
    #[error("the key-value store failed: {0}")]
    Store(#[from] StoreError),
    /// The fill holds back too much already.
    #[error(
        "more than {MAX_PENDING_BYTES} bytes of key-value writes are waiting for this fetch's verification"
    )]
    TooMuchPending,
}

/// A write waiting for its fill's verification.
enum Pending {
    /// `kv-set` with its TTL in seconds.
    Set(Vec<u8>, u64),
    /// `kv-delete`.
    Delete,
}

impl Pending {
    fn size(&self) -> usize {
        match self {
            Pending::Set(v, _) => v.len(),
            Pending::Delete => 0,
        }
    }
}

/// Writes held back during a fill, newest per key.
#[derive(Default)]
struct Held {
    writes: BTreeMap<String, Pending>,
    bytes: usize,
}

/// One adapter's key-value namespace for one remote, writing through or
/// (during a fill) holding writes back.
pub struct AdapterKv {
    store: Arc<dyn MetaStore>,
    namespace: String,
    held: Option<Mutex<Held>>,
}

impl AdapterKv {
    /// The namespace of `adapter` on `remote`, writing through.
    pub fn new(store: Arc<dyn MetaStore>, adapter: &str, remote: &str) -> AdapterKv {
        AdapterKv {
            store,
            namespace: namespace(adapter, remote),
            held: None,
        }
    }

    /// The same namespace, holding writes back until [`AdapterKv::apply`].
    pub fn deferred(&self) -> AdapterKv {
        AdapterKv {
            store: self.store.clone(),
            namespace: self.namespace.clone(),
            held: Some(Mutex::new(Held::default())),
        }
    }

    /// The store's name of this namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `kv-get`: a held-back write first, then the store.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(held) = &self.held {
            match lock(held).writes.get(key) {
                Some(Pending::Set(v, _)) => return Ok(Some(v.clone())),
                Some(Pending::Delete) => return Ok(None),
                None => {}
            }
        }
        Ok(self.store.kv_get(&self.namespace, key)?)
    }

    /// `kv-set`.
    pub fn set(&self, key: &str, value: &[u8], ttl_secs: u64) -> Result<(), KvError> {
        match &self.held {
            None => Ok(self.store.kv_set(&self.namespace, key, value, ttl_secs)?),
            Some(held) => hold(held, key, Pending::Set(value.to_vec(), ttl_secs)),
        }
    }

    /// `kv-delete`.
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        match &self.held {
            None => Ok(self.store.kv_delete(&self.namespace, key)?),
            Some(held) => hold(held, key, Pending::Delete),
        }
    }

    /// `kv-compare-and-set`: `false` while writes are held back (a fill's
    /// writes wait for verification, so none can be atomic with a read).
    pub fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl_secs: u64,
    ) -> Result<bool, KvError> {
        if self.held.is_some() {
            return Ok(false);
        }
        Ok(self
            .store
            .kv_compare_and_set(&self.namespace, key, expected, value, ttl_secs)?)
    }

    /// Write what was held back (the fill's body is verified and stored).
    /// A namespace that writes through has nothing to do.
    pub fn apply(&self) -> Result<(), KvError> {
        let Some(held) = &self.held else {
            return Ok(());
        };
        let writes = std::mem::take(&mut *lock(held)).writes;
        for (key, w) in writes {
            match w {
                Pending::Set(v, ttl) => self.store.kv_set(&self.namespace, &key, &v, ttl)?,
                Pending::Delete => self.store.kv_delete(&self.namespace, &key)?,
            }
        }
        Ok(())
    }

    /// Writes held back right now.
    pub fn pending(&self) -> usize {
        self.held.as_ref().map_or(0, |h| lock(h).writes.len())
    }
}

/// `{adapter}/{remote}`: adapter names are `[a-z0-9_-]`, so no two pairs
/// share a namespace.
pub fn namespace(adapter: &str, remote: &str) -> String {
    format!("{adapter}/{remote}")
}

fn lock(m: &Mutex<Held>) -> std::sync::MutexGuard<'_, Held> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn hold(held: &Mutex<Held>, key: &str, w: Pending) -> Result<(), KvError> {
    let mut h = lock(held);
    let old = h.writes.get(key).map_or(0, |o| key.len() + o.size());
    let new = key.len() + w.size();
    if h.bytes - old + new > MAX_PENDING_BYTES {
        return Err(KvError::TooMuchPending);
    }
    h.bytes = h.bytes - old + new;
    h.writes.insert(key.to_owned(), w);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledMetaStore;

    fn store() -> (tempfile::TempDir, Arc<dyn MetaStore>) {
        let dir = tempfile::tempdir().unwrap();
        let s = SledMetaStore::open(&dir.path().join("index")).unwrap();
        (dir, Arc::new(s))
    }

    #[test]
    fn remotes_never_share_a_namespace() {
        let (_d, s) = store();
        let a = AdapterKv::new(s.clone(), "docker", "a");
        let b = AdapterKv::new(s.clone(), "docker", "b");
        a.set("media/x", b"evil", 0).unwrap();
        assert_eq!(a.get("media/x").unwrap().as_deref(), Some(&b"evil"[..]));
        assert_eq!(b.get("media/x").unwrap(), None);
        assert_eq!(s.kv_get("docker", "media/x").unwrap(), None);
    }

    #[test]
    fn held_writes_wait_for_apply_and_vanish_without_it() {
        let (_d, s) = store();
        let now = AdapterKv::new(s.clone(), "docker", "a");
        now.set("keep", b"old", 0).unwrap();
        let fill = now.deferred();
        fill.set("k", b"v", 60).unwrap();
        fill.delete("keep").unwrap();
        assert_eq!(fill.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(fill.get("keep").unwrap(), None);
        assert_eq!(now.get("k").unwrap(), None, "visible before verification");
        assert_eq!(now.get("keep").unwrap().as_deref(), Some(&b"old"[..]));
        fill.apply().unwrap();
        assert_eq!(now.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(now.get("keep").unwrap(), None);
        assert_eq!(fill.pending(), 0);

        let failed = now.deferred();
        failed.set("poison", b"x", 0).unwrap();
        drop(failed);
        assert_eq!(now.get("poison").unwrap(), None);
    }

    #[test]
    fn held_writes_are_bounded() {
        let (_d, s) = store();
        let fill = AdapterKv::new(s, "docker", "a").deferred();
        let big = vec![0u8; 64 * 1024];
        let mut refused = 0;
        for i in 0..20 {
            if matches!(
                fill.set(&format!("k{i}"), &big, 0),
                Err(KvError::TooMuchPending)
            ) {
                refused += 1;
            }
        }
        assert!(refused > 0 && fill.pending() < 20);
        // Rewriting a held key replaces it, within the bound.
        fill.set("k0", b"small", 0).unwrap();
    }
}
