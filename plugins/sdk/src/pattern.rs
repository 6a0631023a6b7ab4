//! The remote's `immutable-patterns` / `mutable-patterns`, compiled once.
//!
//! Patterns use the syntax of the Rust `regex` crate and match anywhere in
//! the remote-relative path (`Regex::is_match` semantics); anchor them with
//! `^` and `$` to match whole paths.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use regex::Regex;

use crate::types::RemoteInfo;

/// How the remote's patterns classify a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathClass {
    /// A mutable pattern matches (mutable patterns win over immutable ones).
    Mutable,
    /// An immutable pattern matches and no mutable one does.
    Immutable,
    /// No pattern matches; the adapter picks its default.
    Unmatched,
}

/// A pattern that failed to compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as configured.
    pub pattern: String,
    /// The regex compiler's explanation.
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pattern {:?}: {}", self.pattern, self.message)
    }
}

impl std::error::Error for PatternError {}

/// A remote's compiled immutable and mutable pattern lists.
#[derive(Clone, Debug)]
pub struct Patterns {
    immutable: Vec<Regex>,
    mutable: Vec<Regex>,
}

/// How many distinct pattern lists an instance keeps compiled.
const CACHE_SIZE: usize = 8;

/// Cached compilations, keyed by the (immutable, mutable) pattern lists.
type Cache = Vec<(Vec<String>, Vec<String>, Rc<Patterns>)>;

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Vec::new()) };
}

impl Patterns {
    /// Compiles the two pattern lists.
    pub fn compile(immutable: &[String], mutable: &[String]) -> Result<Patterns, PatternError> {
        Ok(Patterns {
            immutable: compile_set(immutable)?,
            mutable: compile_set(mutable)?,
        })
    }

    /// The compiled patterns of `remote`, compiled on first use and then
    /// cached for the lifetime of the instance (keyed by the pattern lists,
    /// so several remotes can share one instance).
    pub fn for_remote(remote: &RemoteInfo) -> Result<Rc<Patterns>, PatternError> {
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some((_, _, p)) = cache
                .iter()
                .find(|(i, m, _)| *i == remote.immutable_patterns && *m == remote.mutable_patterns)
            {
                return Ok(Rc::clone(p));
            }
            let compiled = Rc::new(Patterns::compile(
                &remote.immutable_patterns,
                &remote.mutable_patterns,
            )?);
            if cache.len() >= CACHE_SIZE {
                cache.remove(0);
            }
            cache.push((
                remote.immutable_patterns.clone(),
                remote.mutable_patterns.clone(),
                Rc::clone(&compiled),
            ));
            Ok(compiled)
        })
    }

    /// Classifies `path`: mutable if any mutable pattern matches, else
    /// immutable if any immutable pattern matches, else unmatched.
    pub fn classify(&self, path: &str) -> PathClass {
        if self.is_mutable(path) {
            PathClass::Mutable
        } else if self.is_immutable(path) {
            PathClass::Immutable
        } else {
            PathClass::Unmatched
        }
    }

    /// Whether any mutable pattern matches `path`.
    pub fn is_mutable(&self, path: &str) -> bool {
        self.mutable.iter().any(|r| r.is_match(path))
    }

    /// Whether any immutable pattern matches `path`.
    pub fn is_immutable(&self, path: &str) -> bool {
        self.immutable.iter().any(|r| r.is_match(path))
    }
}

fn compile_set(patterns: &[String]) -> Result<Vec<Regex>, PatternError> {
    // One `Regex` per pattern rather than a `RegexSet`: lists are short, and
    // single regexes can use the faster one-pass and backtracking engines.
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|e| PatternError {
                pattern: p.clone(),
                message: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RemoteMode;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn remote(immutable: &[&str], mutable: &[&str]) -> RemoteInfo {
        RemoteInfo {
            name: "r".into(),
            package: "generic".into(),
            mode: RemoteMode::PullThrough,
            upstreams: vec!["https://example.org".into()],
            mutable_ttl_secs: 600,
            negative_ttl_secs: 60,
            check_mutable_updates: false,
            immutable_patterns: strings(immutable),
            mutable_patterns: strings(mutable),
            options: vec![],
            has_credentials: false,
        }
    }

    #[test]
    fn mutable_wins() {
        let p = Patterns::compile(
            &strings(&[r"\.xml$", r"\.rpm$"]),
            &strings(&[r"repomd\.xml$"]),
        )
        .unwrap();
        assert_eq!(p.classify("repodata/repomd.xml"), PathClass::Mutable);
        assert_eq!(p.classify("repodata/abc-primary.xml"), PathClass::Immutable);
        assert_eq!(p.classify("Packages/a.rpm"), PathClass::Immutable);
        assert_eq!(p.classify("README"), PathClass::Unmatched);
        assert!(p.is_mutable("x/repomd.xml"));
        assert!(!p.is_immutable("README"));
    }

    #[test]
    fn unanchored_unicode_and_case() {
        let p =
            Patterns::compile(&[], &strings(&[r"latest", r"(?i)^INDEX\.\w+$", r"v\d+/"])).unwrap();
        assert!(p.is_mutable("a/latest/b"));
        assert!(p.is_mutable("index.html"));
        assert!(p.is_mutable("v12/x"));
        assert!(!p.is_mutable("a/index.html"));
        // Full Unicode support, as in the gateway's own regex build.
        let p = Patterns::compile(&strings(&[r"^\p{Greek}+/\b\w+\b$"]), &[]).unwrap();
        assert!(p.is_immutable("αβ/ünï"));
        assert_eq!(
            Patterns::compile(&[], &[]).unwrap().classify("x"),
            PathClass::Unmatched
        );
    }

    #[test]
    fn bad_pattern_is_named() {
        let err = Patterns::compile(&strings(&["ok", "(unclosed"]), &[]).unwrap_err();
        assert_eq!(err.pattern, "(unclosed");
        assert!(
            err.to_string()
                .starts_with("invalid pattern \"(unclosed\": ")
        );
    }

    #[test]
    fn cached_per_pattern_list() {
        let a = remote(&["a"], &["b"]);
        let p1 = Patterns::for_remote(&a).unwrap();
        let p2 = Patterns::for_remote(&a.clone()).unwrap();
        assert!(Rc::ptr_eq(&p1, &p2));
        let p3 = Patterns::for_remote(&remote(&["a"], &["c"])).unwrap();
        assert!(!Rc::ptr_eq(&p1, &p3));
        assert!(p3.is_mutable("c"));
        for i in 0..(CACHE_SIZE + 2) {
            Patterns::for_remote(&remote(&[&format!("x{i}")], &[])).unwrap();
        }
        CACHE.with(|c| assert_eq!(c.borrow().len(), CACHE_SIZE));
        assert!(Patterns::for_remote(&remote(&["("], &[])).is_err());
    }
}
