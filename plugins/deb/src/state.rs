//! What the adapter remembers per release directory, in the key-value
//! store of the remote:
//!
//! - `rel/{dir}`: the files the last Release seen for `dir` lists, a
//!   [`kvmap`] from the path relative to `dir` to `{size} {ALGO}:{hex}`
//!   with the strongest digest the core verifies (SHA512, SHA256 or SHA1;
//!   files listed with MD5 only are left out). Written from `inspect-body`
//!   (held back until the Release is stored) and after a lookup in `plan`.
//! - `want/{dir}`: the files clients have asked for (relative paths, one
//!   a line, sorted; ` by-hash` after those asked for by their `by-hash/`
//!   name), so that a new Release expires the entries of those asked for
//!   by name whose digest changed and prefetches exactly those files, in
//!   the form they were asked for. Written from `plan` with
//!   compare-and-set.
//!
//! Keys are at most [`MAX_KEY`] bytes (the host refuses longer ones): a
//! release directory too long for that is never remembered.

use crate::release::{Algo, Listed, Release};
use artgate_sdk::Host;
use artgate_sdk::kvmap;
use std::collections::BTreeMap;

/// Longest key written (the host's limit is 512 bytes; `kvmap` appends
/// `/{chunk}`).
pub const MAX_KEY: usize = 480;

/// Most files remembered as wanted per release directory (the core
/// prefetches at most 256 paths per index).
pub const MAX_WANTED: usize = 256;

/// Longest value of a wanted set (well inside the host's 64 KiB).
const MAX_WANTED_BYTES: usize = 48 * 1024;

/// The name of the map of `dir`'s Release, if it fits a key.
fn map_name(dir: &str) -> Option<String> {
    let name = format!("rel/{dir}");
    (name.len() + 16 <= MAX_KEY).then_some(name)
}

/// The key of `dir`'s wanted set, if it fits.
fn want_key(dir: &str) -> Option<String> {
    let key = format!("want/{dir}");
    (key.len() <= MAX_KEY).then_some(key)
}

/// What the store says about one file of a release directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Known {
    /// No Release of the directory has been seen.
    Unknown,
    /// The Release seen does not list the file (or only with MD5).
    NotListed,
    /// The Release seen lists it.
    Listed(Entry),
}

/// A remembered file: its size and strongest verifiable digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Size in bytes.
    pub size: u64,
    /// The digest's algorithm.
    pub algo: Algo,
    /// The digest, lower-case hex.
    pub hex: String,
}

impl Entry {
    /// The entry of a listed file, `None` without a verifiable digest.
    pub fn of(listed: &Listed) -> Option<Entry> {
        let (algo, hex) = listed.best()?;
        Some(Entry {
            size: listed.size,
            algo,
            hex: hex.to_owned(),
        })
    }

    /// `{size} {ALGO}:{hex}`.
    pub fn to_text(&self) -> String {
        format!("{} {}:{}", self.size, self.algo.name(), self.hex)
    }

    /// Parses [`Entry::to_text`]; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Entry> {
        let (size, digest) = text.split_once(' ')?;
        let (algo, hex) = digest.split_once(':')?;
        let algo = Algo::from_name(algo)?;
        if algo.core_name().is_none() || !algo.is_digest(hex) {
            return None;
        }
        Some(Entry {
            size: size.parse().ok()?,
            algo,
            hex: hex.to_ascii_lowercase(),
        })
    }
}

/// Remembers what `release` lists as the map of `dir`; how many files
/// were stored (0 when `dir` is too long to be a key).
pub fn remember(host: &dyn Host, dir: &str, release: &Release) -> usize {
    let Some(name) = map_name(dir) else {
        return 0;
    };
    let map: BTreeMap<String, String> = release
        .files
        .iter()
        .filter_map(|(path, listed)| Some((path.clone(), Entry::of(listed)?.to_text())))
        .collect();
    kvmap::store(host, &name, &map)
}

/// What the remembered Release of `dir` says about `rel`.
pub fn lookup(host: &dyn Host, dir: &str, rel: &str) -> Known {
    let Some(name) = map_name(dir) else {
        return Known::Unknown;
    };
    if host.kv_get(&name).is_none() {
        return Known::Unknown;
    }
    match kvmap::lookup(host, &name, rel).and_then(|t| Entry::from_text(&t)) {
        Some(e) => Known::Listed(e),
        None => Known::NotListed,
    }
}

/// The file in directory `rel_dir` (relative to the release directory
/// `dir`) whose remembered digest is `algo`:`hex`: what a `by-hash/` name
/// stands for. `None` when the Release of `dir` is unknown or lists no
/// such file there.
pub fn by_digest(
    host: &dyn Host,
    dir: &str,
    rel_dir: &str,
    algo: Algo,
    hex: &str,
) -> Option<String> {
    let name = map_name(dir)?;
    kvmap::entries(host, &name)
        .into_iter()
        .find(|(path, text)| {
            crate::layout::parent(path) == rel_dir
                && Entry::from_text(text).is_some_and(|e| e.algo == algo && e.hex == hex)
        })
        .map(|(path, _)| path)
}

/// How a client asked for a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Form {
    /// By its name (`main/binary-amd64/Packages.xz`).
    Name,
    /// By its `by-hash/` name.
    ByHash,
}

/// A file clients asked for, and how.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Want {
    /// Its path relative to the release directory.
    pub rel: String,
    /// How it was asked for.
    pub form: Form,
}

impl Want {
    /// `{rel}` or `{rel} by-hash` (listed paths have no spaces).
    fn to_line(&self) -> String {
        match self.form {
            Form::Name => self.rel.clone(),
            Form::ByHash => format!("{} by-hash", self.rel),
        }
    }

    fn from_line(line: &str) -> Option<Want> {
        let (rel, form) = match line.split_once(' ') {
            None => (line, Form::Name),
            Some((rel, "by-hash")) => (rel, Form::ByHash),
            Some(_) => return None,
        };
        (!rel.is_empty()).then(|| Want {
            rel: rel.to_owned(),
            form,
        })
    }
}

/// The files clients asked for in `dir`, in line order.
pub fn wanted(host: &dyn Host, dir: &str) -> Vec<Want> {
    let Some(key) = want_key(dir) else {
        return Vec::new();
    };
    parse_wanted(host.kv_get(&key).as_deref())
}

fn parse_wanted(value: Option<&[u8]>) -> Vec<Want> {
    value
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|s| s.lines().filter_map(Want::from_line).collect())
        .unwrap_or_default()
}

/// Adds `rel`, asked for in `form`, to the files clients asked for in
/// `dir` (compare-and-set, a few attempts). Whether it is in the set now.
pub fn want(host: &dyn Host, dir: &str, rel: &str, form: Form) -> bool {
    let Some(key) = want_key(dir) else {
        return false;
    };
    if rel.is_empty() || rel.contains(['\n', ' ']) {
        return false;
    }
    let new = Want {
        rel: rel.to_owned(),
        form,
    };
    for _ in 0..3 {
        let current = host.kv_get(&key);
        let mut set = parse_wanted(current.as_deref());
        if set.contains(&new) {
            return true;
        }
        if set.len() >= MAX_WANTED {
            return false;
        }
        set.push(new.clone());
        set.sort();
        let value = set.iter().map(Want::to_line).collect::<Vec<_>>().join("\n");
        if value.len() > MAX_WANTED_BYTES {
            return false;
        }
        if host.kv_compare_and_set(&key, current.as_deref(), value.as_bytes(), 0) {
            return true;
        }
    }
    false
}

/// Every file the remembered Release of `dir` lists with a verifiable
/// digest (empty when none is remembered).
pub fn entries(host: &dyn Host, dir: &str) -> BTreeMap<String, Entry> {
    let Some(name) = map_name(dir) else {
        return BTreeMap::new();
    };
    kvmap::entries(host, &name)
        .into_iter()
        .filter_map(|(path, text)| Some((path, Entry::from_text(&text)?)))
        .collect()
}
