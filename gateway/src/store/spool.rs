//! Spools: temp files that bytes stream into before they are committed.

use super::failpoint::fail_step;
use super::reserve::{CHECK_EVERY, Reserve};
use super::vfs::{OsFs, Vfs, VfsFile};
use super::{BlobRef, Digest};
use sha2::{Digest as _, Sha256};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of every spool file name.
pub(crate) const SPOOL_PREFIX: &str = "spool-";

/// A temp file bytes stream into, hashed (sha256) and counted as written.
///
/// Created by [`BlobStore::create_spool`](super::BlobStore::create_spool)
/// under `storage.dir/tmp/` as `spool-<pid>-<counter>-<token>`, where
/// `<token>` is random per process (so names never collide across restarts,
/// also when the pid repeats, as in containers). Dropping a spool that was
/// not committed deletes its file.
///
/// Concurrent readers (clients waiting on the same fetch) get their own
/// handle from [`Spool::reader`]; they must only use positional reads
/// (`read_at`), which ignore the file offset that all handles share. Such a
/// handle stays valid after the spool is committed (the file is renamed, not
/// copied) or dropped (the inode lives until the last handle closes).
///
/// `V` is the file system ([`OsFs`] but in tests).
#[derive(Debug)]
pub struct Spool<V: Vfs = OsFs> {
    vfs: V,
    file: V::File,
    path: PathBuf,
    hasher: Sha256,
    len: u64,
    /// A write failed; the file content no longer matches the hash.
    failed: bool,
    /// The file has been renamed away (committed); do not delete on drop.
    disarmed: bool,
    /// The free-space floor writes must leave (`storage.min_free`).
    reserve: Option<Reserve>,
    /// Bytes written since the reserve was last checked.
    unchecked: u64,
}

/// A random token identifying this process's spools.
pub(crate) fn process_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        // RandomState is seeded from the OS's random source; mix in the time
        // so that two processes never share a token even if it were not.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        format!("{:016x}", h.finish())
    })
}

/// Whether a file name in the tmp dir belongs to a spool of this process.
#[cfg(test)]
pub(crate) fn is_own_spool(name: &str) -> bool {
    is_spool_of(name, process_token())
}

/// Whether a file name in the tmp dir belongs to a spool named with `token`.
pub(crate) fn is_spool_of(name: &str, token: &str) -> bool {
    name.starts_with(SPOOL_PREFIX) && name.ends_with(token)
}

impl Spool {
    /// Create a new, empty spool in `tmp_dir` (which must exist), opened for
    /// reading and writing, mode 0644.
    pub fn create(tmp_dir: &Path) -> io::Result<Spool> {
        Spool::create_in(OsFs, tmp_dir, process_token())
    }
}

impl<V: Vfs> Spool<V> {
    /// [`Spool::create`] on the file system `vfs`, the name ending in
    /// `token` (normally [`process_token`]). Failpoint `spool-create`.
    pub(crate) fn create_in(vfs: V, tmp_dir: &Path, token: &str) -> io::Result<Spool<V>> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        fail_step!("spool-create");
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = tmp_dir.join(format!("{SPOOL_PREFIX}{pid}-{n}-{token}"));
            match vfs.create_new(&path, 0o644) {
                Ok(file) => {
                    return Ok(Spool {
                        vfs,
                        file,
                        path,
                        hasher: Sha256::new(),
                        len: 0,
                        failed: false,
                        disarmed: false,
                        reserve: None,
                        unchecked: 0,
                    });
                }
                // A leftover of an earlier process with the same name: the
                // counter moves on, so the next name is new.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Append `buf`, updating the running digest and length. After a failed
    /// write the spool is unusable: every later write and the commit fail.
    /// (Failpoint `spool-write`.)
    /// With a reserve ([`Spool::with_reserve`]), a write that would take
    /// the free space below it fails with `StorageFull` (checked every
    /// [`CHECK_EVERY`] bytes); the spool stays usable.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        self.check()?;
        if let Some(r) = &self.reserve {
            let n = buf.len() as u64;
            if self.unchecked.saturating_add(n) >= CHECK_EVERY {
                r.check(&self.vfs, n)?;
                self.unchecked = 0;
            } else {
                self.unchecked += n;
            }
        }
        if let Err(e) = self.write_at_end(buf) {
            self.failed = true;
            return Err(e);
        }
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Keep `reserve` free on the file system: writes check it as they go.
    pub(crate) fn with_reserve(mut self, reserve: Option<Reserve>) -> Self {
        self.reserve = reserve;
        self
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_sha256(self.hasher.clone())
    }

    /// A new handle on the spool file for a concurrent reader. Use only
    /// positional reads (`FileExt::read_at`) on it: the file offset is shared
    /// with the writer and every other handle.
    pub fn reader(&self) -> io::Result<V::File> {
        self.file.try_clone()
    }

    /// Where the spool file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Make the written bytes durable (fsync) and return their digest and
    /// size. Writing after this is allowed but needs another `finish`.
    /// (Failpoint `spool-fsync`.)
    pub fn finish(&mut self) -> io::Result<BlobRef> {
        self.check()?;
        fail_step!("spool-fsync");
        self.file.sync_all()?;
        Ok(BlobRef {
            digest: self.digest(),
            size: self.len,
        })
    }

    /// The spool file (for the backend's commit).
    pub(crate) fn file(&self) -> &V::File {
        &self.file
    }

    /// The file was moved away by a commit: dropping must not delete
    /// anything at the old path.
    pub(crate) fn disarm(&mut self) {
        self.disarmed = true;
    }

    fn write_at_end(&self, buf: &[u8]) -> io::Result<()> {
        fail_step!("spool-write");
        self.file.write_all_at(buf, self.len)
    }

    fn check(&self) -> io::Result<()> {
        if self.failed {
            Err(io::Error::other(format!(
                "spool {} is unusable after a failed write",
                self.path.display()
            )))
        } else {
            Ok(())
        }
    }
}

impl<V: Vfs> Drop for Spool<V> {
    fn drop(&mut self) {
        if self.disarmed {
            return;
        }
        match self.vfs.remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot delete spool")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn write_hash_read_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::create(dir.path()).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.digest(), Digest::EMPTY);
        let name = s.path().file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with(&format!("spool-{}-", std::process::id())),
            "{name}"
        );
        assert!(is_own_spool(&name));
        assert!(!is_own_spool("spool-1-2-0000000000000000"));

        let reader = s.reader().unwrap();
        s.write(b"hello ").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(reader.read_at(&mut buf, 0).unwrap(), 6);
        assert_eq!(&buf[..6], b"hello ");
        s.write(b"world").unwrap();
        assert_eq!(s.len(), 11);
        assert_eq!(reader.read_at(&mut buf, 6).unwrap(), 5);
        assert_eq!(&buf[..5], b"world");
        let r = s.finish().unwrap();
        assert_eq!(r.digest, Digest::of(b"hello world"));
        assert_eq!(r.size, 11);
        assert_eq!(
            std::fs::metadata(s.path()).unwrap().mode() & 0o777 & !0o022,
            0o644 & !0o022
        );

        let path = s.path().to_path_buf();
        let s2 = Spool::create(dir.path()).unwrap();
        assert_ne!(s2.path(), path);
        drop(s);
        assert!(!path.exists());
        // The reader outlives the spool.
        assert_eq!(reader.read_at(&mut buf, 0).unwrap(), 11);
        drop(s2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
