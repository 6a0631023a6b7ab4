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
    key.len() + value.len() + 2 <= CHUNK && !has_tab_or_newline(key) && !has_tab_or_newline(value)
}

/// Whether `a` sorts before `b` (as `a < b`), comparing eight bytes at a
/// time: the keys of a map mostly share a long beginning.
fn before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let word = |s: &[u8], i: usize| {
        s.get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_be_bytes)
    };
    let mut i = 0;
    while let (Some(x), Some(y)) = (word(a, i), word(b, i)) {
        if x != y {
            return x < y;
        }
        i += 8;
    }
    a.get(i..) < b.get(i..)
}

/// Whether `s` holds a tab or a line break. Eight bytes at a time: in wasm
/// a byte loop pays a bounds check for every byte, and a map is stored
/// entry by entry.
fn has_tab_or_newline(s: &str) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // Non-zero when a byte of `x` is zero.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = s.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let x = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
        if zero(x ^ (ONES * u64::from(b'\t'))) | zero(x ^ (ONES * u64::from(b'\n'))) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b == b'\t' || b == b'\n')
}

/// Stores `entries` as the map `name`, replacing what it held. Entries
/// whose key or value holds a tab or a line break, or whose line would not
/// fit a chunk, are left out (a lookup then finds nothing for them); so is
/// the whole map when its index would not fit one value. Returns how many
/// entries were stored.
pub fn store(host: &dyn Host, name: &str, entries: &BTreeMap<String, String>) -> usize {
    store_sorted(
        host,
        name,
        entries.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

/// [`store`] for entries that come already in increasing key order (as a
/// `BTreeMap` yields them, or a sorted and deduplicated list), without
/// building a map of owned strings. An entry whose key is not after the
/// previous entry's is left out, as is one [`store`] leaves out. Returns
/// how many entries were stored.
pub fn store_sorted<'a>(
    host: &dyn Host,
    name: &str,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> usize {
    // Each chunk's text, and its first key.
    let mut chunks: Vec<(&str, String)> = Vec::new();
    let mut stored = 0;
    let mut last: Option<&str> = None;
    for (key, value) in entries {
        if !fits(key, value) || last.is_some_and(|l| !before(l, key)) {
            continue;
        }
        last = Some(key);
        let line = key.len() + value.len() + 2;
        if !matches!(chunks.last(), Some((_, c)) if c.len() + line <= CHUNK) {
            // A map of more than one chunk fills the next ones too.
            let capacity = if chunks.is_empty() { 0 } else { CHUNK };
            chunks.push((key, String::with_capacity(capacity)));
        }
        let Some((_, chunk)) = chunks.last_mut() else {
            continue;
        };
        chunk.push_str(key);
        chunk.push('\t');
        chunk.push_str(value);
        chunk.push('\n');
        stored += 1;
    }
    let mut index = String::new();
    for (first, _) in &chunks {
        index.push_str(first);
        index.push('\n');
    }
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

    /// Entries given in order are stored as a map's are; one out of
    /// order or repeated is left out.
    #[test]
    fn sorted_entries_are_stored_as_a_map() {
        let map: BTreeMap<String, String> = (0..3000)
            .map(|i| (format!("k{i:05}"), format!("v{i}")))
            .collect();
        let (a, b) = (FakeHost::new(), FakeHost::new());
        assert_eq!(store(&a, "m", &map), 3000);
        let pairs = map.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        assert_eq!(store_sorted(&b, "m", pairs), 3000);
        assert_eq!(a.calls(), b.calls());
        let c = FakeHost::new();
        let odd = [("b", "1"), ("a", "2"), ("b", "3"), ("c", "4")];
        assert_eq!(store_sorted(&c, "m", odd), 2);
        assert_eq!(lookup(&c, "m", "b").as_deref(), Some("1"));
        assert_eq!(lookup(&c, "m", "a"), None);
        assert_eq!(lookup(&c, "m", "c").as_deref(), Some("4"));
        for (a, b) in [
            ("", "a"),
            ("a", "b"),
            ("abcdefgh1", "abcdefgh2"),
            ("abcdefgh", "abcdefgh0"),
            ("abcdefghij", "b"),
        ] {
            assert!(before(a, b), "{a} < {b}");
            assert!(!before(b, a), "{b} > {a}");
            assert!(!before(a, a));
        }
        for (s, has) in [
            ("", false),
            ("abcdefgh", false),
            ("abcdefgh\t", true),
            ("abcdefg\nh", true),
            ("ab\tc", true),
            ("\u{e9}\u{909}\u{a0a}", false),
        ] {
            assert_eq!(has_tab_or_newline(s), has, "{s:?}");
        }
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
