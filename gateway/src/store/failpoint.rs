//! Failpoints at the steps of the commit protocol (the `fail` crate),
//! compiled in only with the `failpoints` cargo feature; without it
//! [`fail_step!`] expands to nothing and release binaries carry none.
//!
//! The binary configures them from the `FAILPOINTS` environment variable
//! (`name=actions;…`, see `fail::cfg`). Every step understands the action
//! `return(ARG)` with `ARG` one of:
//!
//! - `abort`: crash the process right there (`std::process::abort`);
//! - `eio`: the step fails with `EIO` (the default without an argument);
//! - `enospc`: the step fails with `ENOSPC`.
//!
//! Counts and chains pick the hit: `3*off->return(abort)` lets three hits
//! pass and crashes at the fourth; `1*return(eio)` fails the first hit only.
//!
//! The steps, in commit order ([`STEPS`]):
//!
//! | name | where |
//! | --- | --- |
//! | `spool-create` | before a spool file is created |
//! | `spool-write` | before each write into a spool |
//! | `spool-fsync` | before a spool is fsynced (commit) |
//! | `commit-verify` | before the spool's digest is compared with the expected one |
//! | `commit-rename` | before the spool is renamed to its blob path |
//! | `commit-fsync-dir` | after the rename, before the shard directory is fsynced |
//! | `index-put` | before the index transaction of `put_entry` |
//! | `index-flush` | before the index is flushed to disk |
//! | `blob-remove` | before a blob file is deleted (gc and eviction, after their index flush; fsck) |
//! | `orphan-remove` | before an orphan blob file is deleted (the background reclaim after a start) |

/// The failpoint names, in the order a commit reaches them
/// (`blob-remove` and `orphan-remove` last: they belong to garbage
/// collection, eviction and orphan reclaiming).
pub const STEPS: [&str; 10] = [
    "spool-create",
    "spool-write",
    "spool-fsync",
    "commit-verify",
    "commit-rename",
    "commit-fsync-dir",
    "index-put",
    "index-flush",
    "blob-remove",
    "orphan-remove",
];

/// Evaluate the failpoint `name`: `Some(error)` when it is configured to
/// fail this hit; aborts the process when it is configured to crash.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &str) -> Option<std::io::Error> {
    fail::fail_point!(name, |arg: Option<String>| Some(injected(
        name,
        arg.as_deref()
    )));
    None
}

/// What a `return(ARG)` action does at `name`.
#[cfg(feature = "failpoints")]
fn injected(name: &str, arg: Option<&str>) -> std::io::Error {
    let errno = match arg {
        Some("abort") => {
            eprintln!("failpoint {name}: aborting the process");
            std::process::abort()
        }
        Some("enospc") => libc::ENOSPC,
        _ => libc::EIO,
    };
    tracing::warn!(failpoint = name, errno, "failpoint: injected error");
    std::io::Error::from_raw_os_error(errno)
}

/// At a commit step: when the failpoint `$name` fires, return
/// `Err($map(io_error))` from the enclosing function (or abort the process).
/// Nothing without the `failpoints` feature.
macro_rules! fail_step {
    ($name:literal) => {
        $crate::store::failpoint::fail_step!($name, |e: std::io::Error| e)
    };
    ($name:literal, $map:expr) => {
        #[cfg(feature = "failpoints")]
        {
            if let Some(e) = $crate::store::failpoint::hit($name) {
                return Err(($map)(e));
            }
        }
    };
}
pub(crate) use fail_step;

#[cfg(test)]
mod tests {
    use super::STEPS;

    #[test]
    fn step_names_are_unique_and_documented() {
        let doc = include_str!("failpoint.rs");
        for (i, s) in STEPS.iter().enumerate() {
            assert!(!STEPS[..i].contains(s), "{s} twice");
            assert!(doc.contains(&format!("| `{s}` |")), "{s} not in the table");
        }
    }
}
