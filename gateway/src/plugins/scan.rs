//! Reading the plugin directory without trusting it: which entries are
//! adapter files, why every other entry is ignored, and reading one file
//! with its size checked first.
//!
//! Everything here blocks (directory listing, `stat`, reads), so the
//! registry calls it on the blocking pool, never on a request thread.
//!
//! - Entries whose name starts with `.` are skipped without a word: they
//!   are the documented staging names (`.dl.wasm.tmp`, renamed into place)
//!   and Kubernetes' volume machinery (`..data`, `..2024_…`).
//! - Symlinks are followed (Kubernetes ConfigMap and volume mounts are
//!   made of them); what counts is the file they point to.
//! - Only regular files named `*.wasm` are read. Directories, FIFOs,
//!   sockets, devices, dangling symlinks and files with another name are
//!   listed as ignored with the reason. The type is decided by `stat`
//!   first, and the file is opened non-blocking and checked again on the
//!   open descriptor, so a FIFO is never waited on even if one replaces a
//!   file between the two steps.
//! - A file larger than `[plugins] max_file_size` is refused from its size
//!   alone, before anything is read.

use serde::Serialize;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Identity and version of the file an entry resolves to: a change of any
/// part means the file must be read again. The inode catches a symlink
/// whose target was swapped (Kubernetes' atomic `..data` rename) even when
/// the new file has the same size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// An entry of the plugin directory that is not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// The entry's path.
    pub path: String,
    /// One sentence: why it is not loaded.
    pub reason: String,
}

/// What a listing of the plugin directory found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Adapter files (regular files, or symlinks to them, named `*.wasm`),
    /// in path order, with the stamp of the file they resolve to.
    pub files: Vec<(PathBuf, Stamp)>,
    /// Everything else that is not hidden, in path order.
    pub ignored: Vec<Ignored>,
}

/// Why an adapter file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Larger than `[plugins] max_file_size`; nothing was read.
    #[error(
        "the file is {size} bytes, more than [plugins] max_file_size ({max} bytes); it was not read"
    )]
    TooLarge {
        /// Size of the file (or what was read of it when it grew).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The entry stopped being a regular file between listing and opening.
    #[error("the entry is {0}, not a regular file; it was not read")]
    NotRegular(&'static str),
    /// Opening or reading failed.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

/// The bytes of an adapter file and the stamp of what was read.
pub struct FileBytes {
    /// The whole file.
    pub bytes: Vec<u8>,
    /// Stamp of the open file.
    pub stamp: Stamp,
    /// sha256 of `bytes` (hex).
    pub sha256: String,
}

/// List `dir` (not recursively). A missing or unreadable directory lists
/// as empty: built-ins only.
pub fn list(dir: &Path) -> Listing {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Listing::default();
    };
    let mut listing = Listing::default();
    for entry in rd.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        match classify(&path, &name) {
            Ok(stamp) => listing.files.push((path, stamp)),
            Err(reason) => listing.ignored.push(Ignored {
                path: path.display().to_string(),
                reason,
            }),
        }
    }
    listing.files.sort_by(|a, b| a.0.cmp(&b.0));
    listing.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    listing
}

/// The stamp of an adapter file, or why the entry is not one. Only
/// `lstat`/`stat`: nothing is opened.
fn classify(path: &Path, name: &str) -> Result<Stamp, String> {
    let own = std::fs::symlink_metadata(path).map_err(|e| format!("cannot stat it: {e}"))?;
    let (meta, via_link) = if own.file_type().is_symlink() {
        match std::fs::metadata(path) {
            Ok(m) => (m, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let target = std::fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Err(format!(
                    "a dangling symlink: its target {target:?} does not exist"
                ));
            }
            Err(e) => return Err(format!("cannot follow the symlink: {e}")),
        }
    } else {
        (own, false)
    };
    if !meta.is_file() {
        let kind = kind_of(&meta);
        return Err(if via_link {
            format!("a symlink to {kind}, not to a regular file")
        } else if meta.is_dir() {
            format!("{kind}; subdirectories are not searched")
        } else {
            format!("{kind}, not a regular file; it is never opened")
        });
    }
    if !name.ends_with(".wasm") {
        return Err("not named *.wasm".into());
    }
    Ok(Stamp::of(&meta))
}

/// What kind of entry `m` describes, for messages ("a directory").
fn kind_of(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "a special file"
    }
}

/// Read the adapter file at `path` (following symlinks) if it is a regular
/// file of at most `max` bytes. It is opened non-blocking (so a FIFO that
/// replaced it since the listing cannot block), its type and size are
/// checked on the open descriptor before anything is read, and at most
/// `max + 1` bytes are ever read (a file growing meanwhile is refused).
pub fn read(path: &Path, max: u64) -> Result<FileBytes, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    let bytes = read_at_most(file, meta.len(), max)?;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    Ok(FileBytes {
        bytes,
        stamp: Stamp::of(&meta),
        sha256,
    })
}

/// Read `file` whole, expecting about `len` bytes, refusing more than
/// `max`.
fn read_at_most(file: File, len: u64, max: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    let got = bytes.len() as u64;
    if got > max {
        return Err(ReadError::TooLarge { size: got, max });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_sparse_file_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.wasm");
        File::create(&p).unwrap().set_len(1 << 30).unwrap();
        match read(&p, 64 << 20) {
            Err(ReadError::TooLarge { size, max }) => {
                assert_eq!((size, max), (1 << 30, 64 << 20));
            }
            Err(e) => panic!("expected TooLarge, got {e}"),
            Ok(_) => panic!("expected TooLarge, got the bytes"),
        }
        let small = dir.path().join("small.wasm");
        std::fs::write(&small, b"0123456789").unwrap();
        assert!(matches!(read(&small, 9), Err(ReadError::TooLarge { .. })));
        assert_eq!(read(&small, 10).unwrap().bytes, b"0123456789");
    }

    #[test]
    fn a_fifo_is_listed_as_ignored_and_never_blocks_a_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.wasm");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let listing = list(dir.path());
        assert!(listing.files.is_empty());
        assert_eq!(listing.ignored.len(), 1);
        assert!(listing.ignored[0].reason.contains("FIFO"), "{:?}", listing);
        // Opened non-blocking: no writer, yet no wait.
        assert!(matches!(
            read(&fifo, 1 << 20),
            Err(ReadError::NotRegular(_))
        ));
    }

    #[test]
    fn symlinks_are_followed_and_hidden_entries_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..2024_a")).unwrap();
        std::fs::write(d.join("..2024_a/a.wasm"), b"one").unwrap();
        std::os::unix::fs::symlink("..2024_a", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/a.wasm", d.join("a.wasm")).unwrap();
        std::os::unix::fs::symlink("..data/gone.wasm", d.join("gone.wasm")).unwrap();
        std::fs::create_dir(d.join("dir.wasm")).unwrap();
        std::fs::write(d.join("README"), b"").unwrap();
        std::fs::write(d.join(".staging.wasm"), b"").unwrap();
        let listing = list(d);
        let files: Vec<_> = listing.files.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(files, vec![d.join("a.wasm")]);
        let reasons: Vec<_> = listing
            .ignored
            .iter()
            .map(|i| (i.path.rsplit('/').next().unwrap().to_owned(), &i.reason))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert_eq!(reasons[0].0, "README");
        assert_eq!(reasons[1].0, "dir.wasm");
        assert!(reasons[1].1.contains("directory"), "{reasons:?}");
        assert_eq!(reasons[2].0, "gone.wasm");
        assert!(reasons[2].1.contains("dangling"), "{reasons:?}");
        assert_eq!(read(&d.join("a.wasm"), 100).unwrap().bytes, b"one");
    }
}
