//! A map of text keys to text values in the key-value store, larger than
//! one value may be (64 KiB): the checksums of every file a package index
//! lists, say.
//!
//! The map `name` is kept as sorted chunks of `key\tvalue\n` lines under
//! `{name}/{i}`, and an index of each chunk's first key under `name`. A
//! lookup reads the index and one chunk: two key-value reads, however
//! large the map. Storing writes each chunk and then the index: one
//! operation per ~60 kB, well inside the host's per-call budget, where a
//! value per entry would run out of it at a thousand entries.
//!
//! ```
//! use artgate_sdk::kvmap;
//! use artgate_sdk::testing::FakeHost;
//! use std::collections::BTreeMap;
//!
//! let host = FakeHost::new();
//! let map = BTreeMap::from([("a-1.0.tgz".to_owned(), "sha1:00ff".to_owned())]);
//! kvmap::store(&host, "sums/a", &map);
//! assert_eq!(kvmap::lookup(&host, "sums/a", "a-1.0.tgz").as_deref(), Some("sha1:00ff"));
//! assert_eq!(kvmap::lookup(&host, "sums/a", "a-2.0.tgz"), None);
//! ```

use crate::Host;
use std::collections::BTreeMap;

/// Bytes of one chunk (the host's value limit is 64 KiB).
const CHUNK: usize = 60_000;

/// Whether an entry of `key` and `value` can be stored: no tab or line
/// break in either, and its line within one chunk (about 60 kB). Check it
/// before doing anything an entry [`store`] leaves out would undo.
pub fn fits(key: &str, value: &str) -> bool {
    !key.contains(['\t', '\n'])
        && !value.contains(['\t', '\n'])
        && key.len() + value.len() + 2 <= CHUNK
}

/// Stores `entries` as the map `name`, replacing what it held. Entries
/// whose key or value holds a tab or a line break, or whose line would not
/// fit a chunk, are left out (a lookup then finds nothing for them); so is
/// the whole map when its index would not fit one value. Returns how many
/// entries were stored.
pub fn store(host: &dyn Host, name: &str, entries: &BTreeMap<String, String>) -> usize {
    let mut chunks: Vec<(String, String)> = Vec::new();
    let mut stored = 0;
    for (key, value) in entries {
        if !fits(key, value) {
            continue;
        }
        let line = format!("{key}\t{value}\n");
        match chunks.last_mut() {
            Some((_, chunk)) if chunk.len() + line.len() <= CHUNK => chunk.push_str(&line),
            _ => chunks.push((key.clone(), line)),
        }
        stored += 1;
    }
    let index: String = chunks
        .iter()
        .map(|(first, _)| format!("{first}\n"))
        .collect();
    if index.len() > CHUNK {
        return 0;
    }
    for (i, (_, chunk)) in chunks.iter().enumerate() {
        host.kv_set(&format!("{name}/{i}"), chunk.as_bytes(), 0);
    }
    host.kv_set(name, index.as_bytes(), 0);
    stored
}

/// The value of `key` in the map `name`.
pub fn lookup(host: &dyn Host, name: &str, key: &str) -> Option<String> {
    let index = String::from_utf8(host.kv_get(name)?).ok()?;
    let firsts: Vec<&str> = index.lines().collect();
    // The last chunk whose first key is not after `key`.
    let i = firsts
        .partition_point(|first| *first <= key)
        .checked_sub(1)?;
    let chunk = String::from_utf8(host.kv_get(&format!("{name}/{i}"))?).ok()?;
    chunk.lines().find_map(|line| {
        let (k, v) = line.split_once('\t')?;
        (k == key).then(|| v.to_owned())
    })
}

/// Every entry of the map `name`, in key order (empty when there is
/// none): one read for the index and one per chunk.
pub fn entries(host: &dyn Host, name: &str) -> Vec<(String, String)> {
    let Some(index) = host.kv_get(name).and_then(|i| String::from_utf8(i).ok()) else {
        return Vec::new();
    };
    (0..index.lines().count())
        .filter_map(|i| host.kv_get(&format!("{name}/{i}")))
        .filter_map(|chunk| String::from_utf8(chunk).ok())
        .flat_map(|chunk| {
            chunk
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Call, FakeHost};

    /// Thousands of entries take a few writes and two reads per lookup,
    /// each entry found, none invented.
    #[test]
    fn large_maps_take_few_operations() {
        let host = FakeHost::new();
        let map: BTreeMap<String, String> = (0..5000)
            .map(|i| {
                (
                    format!("pkg-{i}.0.0.tgz"),
                    format!("sha512:{}", "ab".repeat(64)),
                )
            })
            .collect();
        assert_eq!(store(&host, "m", &map), 5000);
        let writes = host.calls().len();
        assert!(writes < 30, "{writes} operations");
        for i in [0, 1, 777, 4999] {
            let key = format!("pkg-{i}.0.0.tgz");
            assert_eq!(lookup(&host, "m", &key), map.get(&key).cloned(), "{key}");
        }
        assert_eq!(lookup(&host, "m", "pkg-5000.0.0.tgz"), None);

        assert_eq!(lookup(&host, "m", "a-before-all"), None);
        assert_eq!(lookup(&host, "other", "pkg-1.0.0.tgz"), None);
        let reads = host.calls().len() - writes;
        // Two reads for each of the five keys in the map's range, one for
        // a key before its first and one for a map that does not exist.
        assert_eq!(reads, 2 * 5 + 1 + 1);
        let all = entries(&host, "m");
        assert_eq!(all.len(), 5000);
        assert!(
            all.iter().map(|(k, v)| (k, v)).eq(map.iter()),
            "in key order"
        );
        assert!(entries(&host, "other").is_empty());
    }

    /// Entries that would break the line format are left out.
    #[test]
    fn odd_entries_are_left_out() {
        let host = FakeHost::new();
        let map = BTreeMap::from([
            ("a\tb".to_owned(), "x".to_owned()),
            ("c".to_owned(), "y\nz".to_owned()),
            ("d".to_owned(), "ok".to_owned()),
        ]);
        assert_eq!(store(&host, "m", &map), 1);
        assert_eq!(lookup(&host, "m", "d").as_deref(), Some("ok"));
        assert_eq!(lookup(&host, "m", "c"), None);
        assert!(
            host.calls()
                .iter()
                .all(|c| !matches!(c, Call::KvSet(key, ..) if key.contains('\t')))
        );
    }
}
