//! Replays the committed fuzz corpora of the gateway's parsers
//! (`fuzz/corpus/gateway_*`) on stable, through the same entry points the
//! cargo-fuzz targets call (`fuzz/src/gateway.rs`, included here).

#[path = "../../fuzz/src/gateway.rs"]
mod entries;

use std::path::PathBuf;

/// Feeds every file of `fuzz/corpus/<target>/` to `entry`; fails when the
/// corpus is missing or has fewer than `min` files.
fn replay(target: &str, min: usize, entry: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "corpus {} has {} files, expected at least {min}",
        dir.display(),
        files.len()
    );
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if let Err(p) = std::panic::catch_unwind(|| entry(&data)) {
            eprintln!("corpus file {} fails", f.display());
            std::panic::resume_unwind(p);
        }
    }
}

#[test]
fn gateway_path() {
    replay("gateway_path", 10, entries::path);
}

#[test]
fn gateway_digest() {
    replay("gateway_digest", 8, entries::digest);
}

#[test]
fn gateway_range() {
    replay("gateway_range", 10, entries::range);
}

#[test]
fn gateway_pktcheck() {
    replay("gateway_pktcheck", 10, entries::pktcheck);
}

#[test]
#[should_panic(expected = "corpus")]
fn a_missing_corpus_fails() {
    replay("no-such-target", 1, entries::digest);
}
