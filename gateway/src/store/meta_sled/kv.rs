//! The plugins' key-value records: `plugin \0 key` → 8-byte big-endian
//! expiry (unix ms, 0 = never) followed by the value; an expired value
//! reads as absent and is deleted lazily.

use super::{SledMetaStore, check_name, join_key, now_ms, show_key};
use crate::store::{PluginKv, StoreError};

/// The expiry of a TTL from now (unix ms, 0 = never).
fn expiry(ttl_secs: u64) -> u64 {
    if ttl_secs == 0 {
        0
    } else {
        now_ms().saturating_add(ttl_secs.saturating_mul(1000))
    }
}

/// A record: the expiry, then the value.
fn record(value: &[u8], expires_at_ms: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&expires_at_ms.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// The value of the record `raw` stored under `k`, `None` when it has
/// expired; a record too short for its expiry is corrupt.
fn live<'a>(k: &[u8], raw: &'a [u8]) -> Result<Option<&'a [u8]>, StoreError> {
    let Some((head, value)) = raw.split_first_chunk::<8>() else {
        return Err(StoreError::Corrupt {
            id: format!("kv {}", show_key(k)),
            reason: format!("value has {} bytes, less than the 8-byte expiry", raw.len()),
        });
    };
    let expires = u64::from_be_bytes(*head);
    Ok((expires == 0 || expires > now_ms()).then_some(value))
}

impl SledMetaStore {
    /// Write a kv value with an explicit expiry (unix ms, 0 = never).
    pub(super) fn kv_set_at(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        expires_at_ms: u64,
    ) -> Result<(), StoreError> {
        check_name(plugin)?;
        self.kv
            .insert(join_key(plugin, key), record(value, expires_at_ms))?;
        Ok(())
    }
}

impl PluginKv for SledMetaStore {
    /// A value, `None` when absent or expired (an expired one is deleted).
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_name(plugin)?;
        let k = join_key(plugin, key);
        let Some(v) = self.kv.get(&k)? else {
            return Ok(None);
        };
        let Some(value) = live(&k, &v)? else {
            // Lazily delete, unless it was rewritten meanwhile.
            let _ = self.kv.compare_and_swap(&k, Some(&v), None::<&[u8]>)?;
            return Ok(None);
        };
        Ok(Some(value.to_vec()))
    }

    /// Write a value that expires in `ttl_secs` (0: never).
    fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        self.kv_set_at(plugin, key, value, expiry(ttl_secs))
    }

    /// Delete a value.
    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        check_name(plugin)?;
        self.kv.remove(join_key(plugin, key))?;
        Ok(())
    }

    /// sled's compare-and-swap on the record read, retried when only the
    /// record changed under it (an expiry rewritten, the value not).
    fn kv_compare_and_set(
        &self,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl_secs: u64,
    ) -> Result<bool, StoreError> {
        check_name(plugin)?;
        let k = join_key(plugin, key);
        loop {
            let raw = self.kv.get(&k)?;
            let current = match raw.as_deref() {
                Some(r) => live(&k, r)?,
                None => None,
            };
            if current != expected {
                return Ok(false);
            }
            let new = record(value, expiry(ttl_secs));
            if self.kv.compare_and_swap(&k, raw, Some(new))?.is_ok() {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::open;
    use super::*;
    use crate::store::prelude::*;

    /// A compare-and-set writes only over the value it names (absent,
    /// expired or equal), so of two writers that read the same value one
    /// wins.
    #[test]
    fn kv_compare_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        assert!(s.kv_compare_and_set("p", "k", None, b"one", 0).unwrap());
        assert!(!s.kv_compare_and_set("p", "k", None, b"two", 0).unwrap());
        assert!(
            !s.kv_compare_and_set("p", "k", Some(b"zero"), b"two", 0)
                .unwrap()
        );
        assert!(
            s.kv_compare_and_set("p", "k", Some(b"one"), b"two", 0)
                .unwrap()
        );
        assert_eq!(s.kv_get("p", "k").unwrap().as_deref(), Some(&b"two"[..]));
        s.kv_set_at("p", "old", b"gone", 1).unwrap();
        assert!(
            s.kv_compare_and_set("p", "old", None, b"new", 0).unwrap(),
            "expired reads as absent"
        );
        assert!(
            !s.kv_compare_and_set("q", "k", Some(b"two"), b"x", 0)
                .unwrap(),
            "namespaced"
        );
    }

    #[test]
    fn kv_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        m.kv_set("docker", "token", b"abc", 0).unwrap();
        assert_eq!(m.kv_get("docker", "token").unwrap().unwrap(), b"abc");
        m.kv_set("docker", "t2", b"x", 3600).unwrap();
        assert_eq!(m.kv_get("docker", "t2").unwrap().unwrap(), b"x");
        assert!(m.kv_get("other", "token").unwrap().is_none());
        m.kv_set_at("docker", "old", b"y", now_ms() - 1).unwrap();
        assert!(m.kv_get("docker", "old").unwrap().is_none());
        assert!(
            m.kv.get(join_key("docker", "old")).unwrap().is_none(),
            "lazily deleted"
        );
        m.kv_delete("docker", "token").unwrap();
        assert!(m.kv_get("docker", "token").unwrap().is_none());
        m.kv.insert(join_key("docker", "bad"), &b"123"[..]).unwrap();
        assert!(matches!(
            m.kv_get("docker", "bad"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
