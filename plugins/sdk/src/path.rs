//! Helpers for remote-relative request paths.
//!
//! Paths as the host passes them in `request.path`: `/`-separated, without a
//! leading slash, e.g. `v3.20/main/x86_64/APKINDEX.tar.gz`. A path that is
//! empty or ends with `/` names a directory.

/// Iterates over the non-empty `/`-separated segments of `path`.
///
/// ```
/// let segs: Vec<_> = artgate_sdk::path::segments("a//b/c/").collect();
/// assert_eq!(segs, ["a", "b", "c"]);
/// ```
pub fn segments(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Whether `path` names a directory: it is empty (after any leading `/`) or
/// ends with `/`.
pub fn is_dir(path: &str) -> bool {
    path.trim_start_matches('/').is_empty() || path.ends_with('/')
}

/// The last segment of `path` when it names a file; `None` for directories.
///
/// ```
/// use artgate_sdk::path::file_name;
/// assert_eq!(file_name("pool/main/a.deb"), Some("a.deb"));
/// assert_eq!(file_name("pool/main/"), None);
/// ```
pub fn file_name(path: &str) -> Option<&str> {
    if is_dir(path) {
        return None;
    }
    path.rsplit('/').next().filter(|s| !s.is_empty())
}

/// The extension of the file `path` names, without the dot and as written
/// (compare case-insensitively). `None` for directories, names without a dot,
/// names ending in a dot and dot files such as `.bashrc`.
///
/// Only the last extension counts: `a.tar.gz` has extension `gz`.
pub fn extension(path: &str) -> Option<&str> {
    let name = file_name(path)?;
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        None
    } else {
        Some(ext)
    }
}

/// Whether the segments of `path` start with the segments of `prefix`
/// (whole segments compared literally: `a/bc` does not start with `a/b`).
pub fn starts_with_segments(path: &str, prefix: &str) -> bool {
    let mut path = segments(path);
    segments(prefix).all(|p| path.next() == Some(p))
}

/// Matches the segments of `path` against a segment pattern and returns the
/// captured parts, or `None` when it does not match.
///
/// The pattern is `/`-separated like the path. Each pattern segment is
/// compared with a whole path segment; there are no wildcards inside a
/// segment (no globbing), only two whole-segment placeholders:
///
/// - `*` matches exactly one segment and captures it;
/// - `**` matches one or more segments and captures them as one `&str`
///   (a slice of `path`, inner `/` included). At most one `**` per pattern.
///
/// Every other pattern segment must equal the path segment exactly.
/// Captures are returned in pattern order.
///
/// ```
/// use artgate_sdk::path::match_segments;
/// assert_eq!(
///     match_segments("library/alpine/manifests/3.20", "**/manifests/*"),
///     Some(vec!["library/alpine", "3.20"])
/// );
/// assert_eq!(match_segments("library/alpine/tags/list", "**/manifests/*"), None);
/// ```
pub fn match_segments<'a>(path: &'a str, pattern: &str) -> Option<Vec<&'a str>> {
    let spans = segment_spans(path);
    let pat: Vec<&str> = segments(pattern).collect();
    let mut caps = Vec::new();
    match pat.iter().position(|p| *p == "**") {
        None => {
            if pat.len() != spans.len() {
                return None;
            }
            for (p, &(s, e)) in pat.iter().zip(&spans) {
                match_one(p, &path[s..e], &mut caps)?;
            }
        }
        Some(star) => {
            let (before, after) = (&pat[..star], &pat[star + 1..]);
            if after.contains(&"**") || spans.len() < before.len() + after.len() + 1 {
                return None;
            }
            for (p, &(s, e)) in before.iter().zip(&spans) {
                match_one(p, &path[s..e], &mut caps)?;
            }
            let rest_start = spans.len() - after.len();
            let (s, _) = spans[before.len()];
            let (_, e) = spans[rest_start - 1];
            caps.push(&path[s..e]);
            for (p, &(s, e)) in after.iter().zip(&spans[rest_start..]) {
                match_one(p, &path[s..e], &mut caps)?;
            }
        }
    }
    Some(caps)
}

fn match_one<'a>(pattern: &str, seg: &'a str, caps: &mut Vec<&'a str>) -> Option<()> {
    if pattern == "*" {
        caps.push(seg);
        Some(())
    } else if pattern == seg {
        Some(())
    } else {
        None
    }
}

/// Byte ranges of the non-empty segments of `path`.
fn segment_spans(path: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, b) in path.bytes().enumerate() {
        if b == b'/' {
            if i > start {
                spans.push((start, i));
            }
            start = i + 1;
        }
    }
    if path.len() > start {
        spans.push((start, path.len()));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_skip_empty() {
        assert_eq!(segments("").count(), 0);
        assert_eq!(segments("/").count(), 0);
        assert_eq!(segments("/a/b").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(segments("a//b/").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn dirs_and_file_names() {
        assert!(is_dir(""));
        assert!(is_dir("/"));
        assert!(is_dir("a/b/"));
        assert!(!is_dir("a/b"));
        assert_eq!(file_name("a/b.rpm"), Some("b.rpm"));
        assert_eq!(file_name("b.rpm"), Some("b.rpm"));
        assert_eq!(file_name("a/"), None);
        assert_eq!(file_name(""), None);
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("x/a.tar.gz"), Some("gz"));
        assert_eq!(extension("x/A.RPM"), Some("RPM"));
        assert_eq!(extension("x/.bashrc"), None);
        assert_eq!(extension("x/README"), None);
        assert_eq!(extension("x/trailing."), None);
        assert_eq!(extension("x.d/"), None);
        assert_eq!(extension("x.d/file"), None);
    }

    #[test]
    fn prefix_by_segments() {
        assert!(starts_with_segments("a/b/c", "a/b"));
        assert!(starts_with_segments("a/b", "/a/b/"));
        assert!(starts_with_segments("a/b", ""));
        assert!(!starts_with_segments("a/bc", "a/b"));
        assert!(!starts_with_segments("a", "a/b"));
    }

    #[test]
    fn literal_and_single_placeholders() {
        assert_eq!(match_segments("a/b/c", "a/b/c"), Some(vec![]));
        assert_eq!(match_segments("a/b/c", "a/*/c"), Some(vec!["b"]));
        assert_eq!(match_segments("a/b/c", "a/*"), None);
        assert_eq!(match_segments("a/b", "a/*/c"), None);
        assert_eq!(match_segments("a/b*/c", "a/b/c"), None);
        assert_eq!(match_segments("", ""), Some(vec![]));
    }

    #[test]
    fn rest_placeholder() {
        assert_eq!(
            match_segments("v2/a/b/c/blobs/sha256:00", "v2/**/blobs/*"),
            Some(vec!["a/b/c", "sha256:00"])
        );
        assert_eq!(match_segments("x/y", "**"), Some(vec!["x/y"]));
        assert_eq!(match_segments("x", "x/**"), None, "** needs one segment");
        assert_eq!(match_segments("a/b", "**/**"), None, "only one **");
        assert_eq!(match_segments("a/b/c", "**/c"), Some(vec!["a/b"]));
        assert_eq!(match_segments("a/b/c", "**/d"), None);
    }
}
