//! The local blob store: one file per blob under `blobs/sha256/ab/abcdef…`.

use super::failpoint::fail_step;
use super::reserve::Reserve;
use super::spool::{is_spool_of, process_token};
use super::vfs::{FileKind, OsFs, Vfs, VfsFile};
use super::{BlobRead, BlobRef, BlobStore, Digest, GcReport, Spool, StoreError};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Buffer size for re-hashing blobs.
const VERIFY_BUF: usize = 256 * 1024;

/// Content-addressed blobs as files in a local directory.
///
/// Layout under the storage dir: `blobs/sha256/<first two hex>/<64 hex>` for
/// committed blobs (mode 0644, directories 0755) and `tmp/` for spools.
///
/// The empty blob ([`Digest::EMPTY`]) is implicit: it always exists, is
/// never written as a file, and is not listed.
///
/// `V` is the file system: [`OsFs`] (the [`BlobStore`] implementation), or
/// in tests one that simulates power loss.
#[derive(Debug, Clone)]
pub struct FsBlobStore<V: Vfs = OsFs> {
    vfs: V,
    /// `<dir>/blobs/sha256`.
    blob_dir: PathBuf,
    /// `<dir>/tmp`.
    tmp_dir: PathBuf,
    /// Shard directories whose entry in `blob_dir` this process made
    /// durable (indexed by the shard's first byte).
    durable_shards: Arc<[AtomicBool; 256]>,
    /// Ends the names of this store's spools ([`process_token`]; a test
    /// gives each simulated process its own).
    token: Arc<str>,
    /// The free space new spools must leave (`storage.min_free`).
    reserve: Option<Reserve>,
    /// This process's commits of each digest (renamed a spool to it, or
    /// found it already there): orphan reclaiming spares these blobs for
    /// a grace period, and garbage collection while their index insert is
    /// still coming. The lock also makes a commit's claim and a reclaim's
    /// or collection's check-then-delete of the same digest exclusive.
    commits: Arc<Mutex<HashMap<Digest, Claim>>>,
}

/// This process's claim of a digest ([`FsBlobStore::commits`]).
#[derive(Debug, Clone, Copy)]
struct Claim {
    /// The last commit, or the last [`BlobStore::settle`].
    at: Instant,
    /// Commits whose index insert has not been settled yet.
    pending: u32,
}

/// How long an unsettled commit protects its file from garbage
/// collection at most (a fill dropped between its commit and its insert
/// never settles).
const PENDING_AT_MOST: Duration = Duration::from_secs(600);

/// A committed blob opened for reading.
#[derive(Debug)]
struct FsBlobRead<F> {
    file: Option<F>,
    len: u64,
}

impl<F: VfsFile> BlobRead for FsBlobRead<F> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match &self.file {
            Some(f) => f.read_at(buf, offset),
            None => Ok(0),
        }
    }

    fn as_file(&self) -> Option<&File> {
        self.file.as_ref().and_then(VfsFile::as_std)
    }
}

/// What a walk of the blob tree found.
#[derive(Debug, Default)]
struct Walk {
    blobs: Vec<BlobRef>,
    /// Paths relative to the blob dir.
    strays: Vec<String>,
}

fn is_shard_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl FsBlobStore {
    /// Open (creating as needed) the blob store in the storage dir `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        FsBlobStore::open_in(OsFs, dir)
    }
}

impl<V: Vfs> FsBlobStore<V> {
    /// [`FsBlobStore::open`] on the file system `vfs`.
    ///
    /// The entries of `blobs/`, `blobs/sha256/` and `tmp/` are made durable
    /// every time (also when they exist: an earlier process may have
    /// crashed between creating and syncing them), and so is `dir`'s own
    /// entry (an error only when this call created `dir`).
    pub fn open_in(vfs: V, dir: &Path) -> io::Result<Self> {
        let blob_dir = dir.join("blobs").join("sha256");
        let tmp_dir = dir.join("tmp");
        let created = vfs.stat(dir).is_err();
        vfs.create_dir_all(&blob_dir)?;
        vfs.create_dir_all(&tmp_dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
            && let Err(e) = vfs.sync_dir(parent)
        {
            // A directory this process created must be durable; one that
            // existed may sit under a parent it cannot open.
            if created {
                return Err(e);
            }
            tracing::warn!(dir = %parent.display(), error = %e, "cannot fsync the storage dir's parent");
        }
        for d in [dir, &dir.join("blobs")] {
            vfs.sync_dir(d)?;
        }
        Ok(FsBlobStore {
            vfs,
            blob_dir,
            tmp_dir,
            durable_shards: Arc::new(std::array::from_fn(|_| AtomicBool::new(false))),
            token: process_token().into(),
            reserve: None,
            commits: Arc::default(),
        })
    }

    /// Refuse new content (spools) while the file system holding the store
    /// has less than `min_free` bytes free (0: no reserve); see
    /// [`Reserve`].
    pub fn with_min_free(mut self, dir: &Path, min_free: u64) -> Self {
        self.reserve = Reserve::new(dir.to_path_buf(), min_free);
        self
    }

    fn commits(&self) -> MutexGuard<'_, HashMap<Digest, Claim>> {
        // A map of times: a panic elsewhere cannot leave it inconsistent.
        self.commits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The path a blob is (or would be) stored at.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blob_dir.join(&hex[..2]).join(hex)
    }

    /// The directory spools are created in.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    fn walk(&self) -> io::Result<Walk> {
        let mut walk = Walk::default();
        for (shard_name, shard_kind) in self.vfs.read_dir(&self.blob_dir)? {
            let Some(shard_name) = shard_name.to_str().filter(|n| is_shard_name(n)) else {
                walk.strays.push(shard_name.to_string_lossy().into_owned());
                continue;
            };
            if shard_kind != FileKind::Dir {
                walk.strays.push(shard_name.to_string());
                continue;
            }
            let shard = self.blob_dir.join(shard_name);
            let entries = match self.vfs.read_dir(&shard) {
                Ok(e) => e,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(e),
            };
            for (name, kind) in entries {
                let rel = format!("{shard_name}/{}", name.to_string_lossy());
                let digest = name
                    .to_str()
                    .filter(|n| n.starts_with(shard_name))
                    .and_then(|n| Digest::from_hex(n).ok());
                let Some(digest) = digest else {
                    walk.strays.push(rel);
                    continue;
                };
                // The kind is not followed through symlinks: a symlink is a
                // stray.
                if kind != FileKind::File {
                    walk.strays.push(rel);
                    continue;
                }
                if digest == Digest::EMPTY {
                    continue;
                }
                let size = match self.vfs.stat(&shard.join(&name)) {
                    Ok(m) => m.len,
                    Err(e) if not_found(&e) => continue,
                    Err(e) => return Err(e),
                };
                walk.blobs.push(BlobRef { digest, size });
            }
        }
        walk.blobs.sort_by_key(|b| b.digest);
        walk.strays.sort();
        Ok(walk)
    }

    /// Create the shard directory `shard` (first byte `byte` of the
    /// digests in it) if needed, and make its entry durable once per
    /// process (an earlier process may have crashed, or its fsync failed,
    /// after creating it).
    fn ensure_shard(&self, shard: &Path, byte: u8) -> io::Result<()> {
        let durable = &self.durable_shards[usize::from(byte)];
        if durable.load(Ordering::Acquire) {
            return Ok(());
        }
        match self.vfs.create_dir(shard) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        self.vfs.sync_dir(&self.blob_dir)?;
        durable.store(true, Ordering::Release);
        Ok(())
    }

    /// Leftover spools (of other processes), as names in the tmp dir.
    fn foreign_spools(&self) -> io::Result<Vec<(String, PathBuf, bool)>> {
        let mut out = Vec::new();
        for (name, kind) in self.vfs.read_dir(&self.tmp_dir)? {
            let name = name.to_string_lossy().into_owned();
            if is_spool_of(&name, &self.token) {
                continue;
            }
            let path = self.tmp_dir.join(&name);
            out.push((name, path, kind == FileKind::Dir));
        }
        out.sort();
        Ok(out)
    }

    /// Name this store's spools with `token` instead of the process's
    /// (tests simulating several processes in one).
    #[cfg(test)]
    pub(crate) fn with_token(mut self, token: &str) -> Self {
        self.token = token.into();
        self
    }

    /// Delete an orphan's file (failpoint `orphan-remove`: a step of its
    /// own, so that `blob-remove` stays with gc and eviction).
    fn remove_orphan(&self, digest: &Digest) -> io::Result<bool> {
        fail_step!("orphan-remove");
        match self.vfs.remove_file(&self.blob_path(digest)) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl<V: Vfs> BlobStore<V> for FsBlobStore<V> {
    /// Refused with `StorageFull` below the reserve.
    fn create_spool(&self) -> io::Result<Spool<V>> {
        if let Some(r) = &self.reserve {
            r.check(&self.vfs, 0)?;
        }
        Ok(
            Spool::create_in(self.vfs.clone(), &self.tmp_dir, &self.token)?
                .with_reserve(self.reserve.clone()),
        )
    }

    /// Failpoints `spool-fsync`, `commit-verify`, `commit-rename`,
    /// `commit-fsync-dir`.
    fn commit(
        &self,
        mut spool: Spool<V>,
        expected: Option<&Digest>,
    ) -> Result<BlobRef, StoreError> {
        let spool_path = spool.path().display().to_string();
        let blob = spool
            .finish()
            .map_err(|e| StoreError::io("fsync spool", &spool_path, e))?;
        fail_step!("commit-verify", |e| StoreError::io(
            "verify spool",
            &spool_path,
            e
        ));
        if let Some(expected) = expected
            && *expected != blob.digest
        {
            // Dropping the spool deletes it.
            return Err(StoreError::DigestMismatch {
                expected: *expected,
                actual: blob.digest,
            });
        }
        if blob.digest == Digest::EMPTY {
            return Ok(blob);
        }
        let dest = self.blob_path(&blob.digest);
        let shard = dest.parent().unwrap_or(&self.blob_dir).to_path_buf();
        let shard_byte = blob.digest.as_bytes()[0];
        // Claimed before looking: a reclaim either deleted the file before
        // this (and the spool is renamed into place below) or spares it.
        {
            let mut commits = self.commits();
            let claim = commits.entry(blob.digest).or_insert(Claim {
                at: Instant::now(),
                pending: 0,
            });
            claim.at = Instant::now();
            claim.pending += 1;
        }
        match self.vfs.stat(&dest) {
            Ok(m) if m.kind == FileKind::File && m.len == blob.size => {
                // Same content is already stored; the spool is dropped. Its
                // directory entry may not be durable yet (the process that
                // renamed it may have crashed, or its fsync failed, before
                // syncing the shard), so sync it before saying it is.
                self.ensure_shard(&shard, shard_byte)
                    .map_err(|e| StoreError::io("create shard dir", shard.display(), e))?;
                self.vfs
                    .sync_dir(&shard)
                    .map_err(|e| StoreError::io("fsync shard dir", shard.display(), e))?;
                return Ok(blob);
            }
            Ok(m) => tracing::warn!(
                path = %dest.display(),
                size = m.len,
                expected_size = blob.size,
                "replacing a damaged blob file"
            ),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(StoreError::io("stat blob", dest.display(), e)),
        }
        self.ensure_shard(&shard, shard_byte)
            .map_err(|e| StoreError::io("create shard dir", shard.display(), e))?;
        spool
            .file()
            .set_mode(0o644)
            .map_err(|e| StoreError::io("chmod spool", &spool_path, e))?;
        if self.vfs.stat(&dest).is_ok_and(|m| m.kind == FileKind::Dir) {
            // A directory squats the blob's name; rename cannot replace it.
            self.vfs
                .remove_dir_all(&dest)
                .map_err(|e| StoreError::io("remove directory", dest.display(), e))?;
        }
        fail_step!("commit-rename", |e| StoreError::io(
            "rename spool to blob",
            dest.display(),
            e
        ));
        self.vfs
            .rename(spool.path(), &dest)
            .map_err(|e| StoreError::io("rename spool to blob", dest.display(), e))?;
        spool.disarm();
        fail_step!("commit-fsync-dir", |e| StoreError::io(
            "fsync shard dir",
            shard.display(),
            e
        ));
        self.vfs
            .sync_dir(&shard)
            .map_err(|e| StoreError::io("fsync shard dir", shard.display(), e))?;
        Ok(blob)
    }

    fn open(&self, digest: &Digest) -> io::Result<Option<Box<dyn BlobRead>>> {
        let path = self.blob_path(digest);
        match self.vfs.open(&path) {
            Ok(file) => {
                let meta = file.stat()?;
                if meta.kind != FileKind::File {
                    return Err(io::Error::other(format!(
                        "{} is not a regular file",
                        path.display()
                    )));
                }
                Ok(Some(Box::new(FsBlobRead {
                    len: meta.len,
                    file: Some(file),
                })))
            }
            Err(e) if not_found(&e) => {
                if *digest == Digest::EMPTY {
                    Ok(Some(Box::new(FsBlobRead::<V::File> { file: None, len: 0 })))
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(e),
        }
    }

    fn contains(&self, digest: &Digest) -> io::Result<bool> {
        if *digest == Digest::EMPTY {
            return Ok(true);
        }
        match self.vfs.stat(&self.blob_path(digest)) {
            Ok(m) => Ok(m.kind == FileKind::File),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Failpoint `blob-remove`.
    fn remove(&self, digest: &Digest) -> io::Result<bool> {
        fail_step!("blob-remove");
        match self.vfs.remove_file(&self.blob_path(digest)) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list(&self) -> io::Result<Vec<BlobRef>> {
        Ok(self.walk()?.blobs)
    }

    fn verify(&self, digest: &Digest) -> io::Result<bool> {
        let Some(blob) = self.open(digest)? else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {digest} does not exist"),
            ));
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; VERIFY_BUF];
        let mut offset = 0u64;
        loop {
            let n = match blob.read_at(&mut buf, offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            // n <= buf.len() by the read_at contract.
            hasher.update(&buf[..n.min(buf.len())]);
            offset += n as u64;
        }
        Ok(Digest::from_sha256(hasher) == *digest)
    }

    fn clean_spools(&self) -> io::Result<usize> {
        let mut n = 0;
        for (_, path, is_dir) in self.foreign_spools()? {
            let r = if is_dir {
                self.vfs.remove_dir_all(&path)
            } else {
                self.vfs.remove_file(&path)
            };
            match r {
                Ok(()) => n += 1,
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn spools(&self) -> io::Result<Vec<String>> {
        Ok(self
            .foreign_spools()?
            .into_iter()
            .map(|(name, _, _)| name)
            .collect())
    }

    fn remove_stray(&self, name: &str) -> io::Result<bool> {
        let rel = Path::new(name);
        if name.is_empty()
            || !rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a path inside the blob tree"),
            ));
        }
        let path = self.blob_dir.join(rel);
        let meta = match self.vfs.stat(&path) {
            Ok(m) => m,
            Err(e) if not_found(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        if meta.kind == FileKind::Dir {
            self.vfs.remove_dir_all(&path)?;
        } else {
            self.vfs.remove_file(&path)?;
        }
        Ok(true)
    }

    /// The walk runs unlocked; each
    /// candidate's check and deletion hold the commit lock.
    fn reclaim_orphans(
        &self,
        grace: Duration,
        indexed: &dyn Fn(&Digest) -> bool,
    ) -> io::Result<GcReport> {
        let mut report = GcReport::default();
        for blob in self.walk()?.blobs {
            let commits = self.commits();
            if commits
                .get(&blob.digest)
                .is_some_and(|c| c.at.elapsed() < grace)
                || indexed(&blob.digest)
            {
                continue;
            }
            if self.remove_orphan(&blob.digest)? {
                report.blobs += 1;
                report.bytes += blob.size;
            }
            drop(commits);
        }
        self.commits()
            .retain(|_, c| c.at.elapsed() < grace.max(PENDING_AT_MOST));
        Ok(report)
    }

    /// Anything in the blob tree that is not a blob: files with a name that
    /// is not 64 lowercase hex digits or that sit in the wrong shard,
    /// directories that are not shards, symlinks. Paths are relative to
    /// `blobs/sha256`.
    fn strays(&self) -> io::Result<Vec<String>> {
        Ok(self.walk()?.strays)
    }

    fn remove_unless_claimed(
        &self,
        digest: &Digest,
        since: Instant,
        indexed: &dyn Fn(&Digest) -> bool,
    ) -> io::Result<bool> {
        let commits = self.commits();
        let claimed = commits
            .get(digest)
            .is_some_and(|c| c.at >= since || (c.pending > 0 && c.at.elapsed() < PENDING_AT_MOST));
        if claimed || indexed(digest) {
            return Ok(false);
        }
        self.remove(digest)
    }

    fn settle(&self, digest: &Digest) {
        if let Some(c) = self.commits().get_mut(digest) {
            c.pending = c.pending.saturating_sub(1);
            c.at = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    fn spool_with(store: &FsBlobStore, data: &[u8]) -> Spool {
        let mut s = store.create_spool().unwrap();
        for chunk in data.chunks(7) {
            s.write(chunk).unwrap();
        }
        s
    }

    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn commit_open_read_at() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let data = b"the quick brown fox jumps over the lazy dog";
        let expected = Digest::of(data);
        let r = store
            .commit(spool_with(&store, data), Some(&expected))
            .unwrap();
        assert_eq!(
            r,
            BlobRef {
                digest: expected,
                size: data.len() as u64
            }
        );
        let path = dir
            .path()
            .join("blobs/sha256")
            .join(&expected.hex()[..2])
            .join(expected.hex());
        assert_eq!(store.blob_path(&expected), path);
        assert_eq!(fs::read(&path).unwrap(), data);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert_eq!(count(&dir.path().join("tmp")), 0);

        assert!(store.contains(&expected).unwrap());
        let blob = store.open(&expected).unwrap().unwrap();
        assert_eq!(blob.len(), data.len() as u64);
        assert!(blob.as_file().is_some());
        let mut buf = [0u8; 5];
        assert_eq!(blob.read_at(&mut buf, 4).unwrap(), 5);
        assert_eq!(&buf, b"quick");
        assert_eq!(blob.read_at(&mut buf, 1000).unwrap(), 0);
        assert!(store.verify(&expected).unwrap());
        assert_eq!(store.list().unwrap(), vec![r]);
        assert!(store.strays().unwrap().is_empty());

        let other = Digest::of(b"nope");
        assert!(store.open(&other).unwrap().is_none());
        assert!(!store.contains(&other).unwrap());
        assert!(store.verify(&other).is_err());

        assert!(store.remove(&expected).unwrap());
        assert!(!store.remove(&expected).unwrap());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn commit_without_expected_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let r = store.commit(spool_with(&store, b"abc"), None).unwrap();
        assert_eq!(r.digest, Digest::of(b"abc"));
        assert!(store.contains(&r.digest).unwrap());
    }

    #[test]
    fn wrong_digest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let wrong = Digest::of(b"something else");
        let err = store
            .commit(spool_with(&store, b"payload"), Some(&wrong))
            .unwrap_err();
        match &err {
            StoreError::DigestMismatch { expected, actual } => {
                assert_eq!(*expected, wrong);
                assert_eq!(*actual, Digest::of(b"payload"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.status().as_u16(), 502);
        assert_eq!(count(&dir.path().join("blobs/sha256")), 0);
        assert_eq!(count(&dir.path().join("tmp")), 0);
    }

    #[test]
    fn same_content_twice_keeps_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let a = store.commit(spool_with(&store, b"same"), None).unwrap();
        let ino = fs::metadata(store.blob_path(&a.digest)).unwrap().ino();
        let b = store.commit(spool_with(&store, b"same"), None).unwrap();
        assert_eq!(a, b);
        assert_eq!(fs::metadata(store.blob_path(&a.digest)).unwrap().ino(), ino);
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(count(&dir.path().join("tmp")), 0);
        // A truncated file under the name is replaced.
        fs::write(store.blob_path(&a.digest), b"sa").unwrap();
        store.commit(spool_with(&store, b"same"), None).unwrap();
        assert!(store.verify(&a.digest).unwrap());
    }

    #[test]
    fn concurrent_commits_of_the_same_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let data = vec![42u8; 100_000];
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let data = data.clone();
                std::thread::spawn(move || store.commit(spool_with(&store, &data), None).unwrap())
            })
            .collect();
        let refs: Vec<BlobRef> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(refs.iter().all(|r| *r == refs[0]));
        assert_eq!(store.list().unwrap(), vec![refs[0]]);
        assert!(store.verify(&refs[0].digest).unwrap());
        assert_eq!(count(&dir.path().join("tmp")), 0);
    }

    #[test]
    fn empty_blob_is_implicit() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let r = store
            .commit(store.create_spool().unwrap(), Some(&Digest::EMPTY))
            .unwrap();
        assert_eq!(
            r,
            BlobRef {
                digest: Digest::EMPTY,
                size: 0
            }
        );
        assert!(store.contains(&Digest::EMPTY).unwrap());
        let b = store.open(&Digest::EMPTY).unwrap().unwrap();
        assert!(b.is_empty());
        assert_eq!(b.read_at(&mut [0u8; 4], 0).unwrap(), 0);
        assert!(store.verify(&Digest::EMPTY).unwrap());
        assert!(store.list().unwrap().is_empty());
        assert_eq!(count(&dir.path().join("tmp")), 0);
    }

    #[test]
    fn strays_spools_and_cleaning() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let r = store.commit(spool_with(&store, b"x"), None).unwrap();
        let hex = r.digest.hex();
        let root = dir.path().join("blobs/sha256");
        fs::write(root.join("README"), b"hi").unwrap();
        fs::create_dir(root.join("zz")).unwrap();
        fs::write(root.join(&hex[..2]).join("notahash"), b"").unwrap();
        let other = Digest::of(b"y").hex();
        let wrong_shard = if &other[..2] == "00" { "01" } else { "00" };
        fs::create_dir_all(root.join(wrong_shard)).unwrap();
        fs::write(root.join(wrong_shard).join(&other), b"y").unwrap();
        fs::write(root.join(&hex[..2]).join(hex.to_uppercase()), b"x").unwrap();

        let strays = store.strays().unwrap();
        assert_eq!(strays.len(), 5, "{strays:?}");
        assert!(strays.contains(&"README".to_string()));
        assert!(strays.contains(&"zz".to_string()));
        assert_eq!(store.list().unwrap(), vec![r]);
        assert!(store.remove_stray("../tmp").is_err());
        assert!(store.remove_stray("/etc/passwd").is_err());
        for s in &strays {
            assert!(store.remove_stray(s).unwrap(), "{s}");
        }
        assert!(store.strays().unwrap().is_empty());
        assert_eq!(store.list().unwrap(), vec![r]);

        // Spools of this process are never cleaned; leftovers are.
        let live = spool_with(&store, b"live");
        fs::write(dir.path().join("tmp/spool-1-0-0123456789abcdef"), b"old").unwrap();
        fs::write(dir.path().join("tmp/other"), b"old").unwrap();
        assert_eq!(store.spools().unwrap().len(), 2);
        assert_eq!(store.clean_spools().unwrap(), 2);
        assert!(store.spools().unwrap().is_empty());
        assert!(live.path().exists());
        let committed = store.commit(live, None).unwrap();
        assert!(store.verify(&committed.digest).unwrap());
    }

    #[test]
    fn verify_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let data = vec![7u8; VERIFY_BUF * 2 + 3];
        let r = store.commit(spool_with(&store, &data), None).unwrap();
        assert!(store.verify(&r.digest).unwrap());
        let f = fs::OpenOptions::new()
            .write(true)
            .open(store.blob_path(&r.digest))
            .unwrap();
        f.write_all_at(b"8", VERIFY_BUF as u64 + 1).unwrap();
        assert!(!store.verify(&r.digest).unwrap());
    }

    /// Orphans (files no index knows) are deleted; indexed blobs and blobs
    /// this store committed within the grace period are kept, including an
    /// old orphan that a commit of the same content has just claimed.
    #[test]
    fn reclaim_spares_indexed_and_freshly_committed_blobs() {
        let dir = tempfile::tempdir().unwrap();
        // The orphans of an earlier process.
        let (a, b) = (b"orphan a".as_slice(), b"orphan bb".as_slice());
        let (old_a, old_b, kept) = {
            let earlier = FsBlobStore::open(dir.path()).unwrap();
            let old_a = earlier.commit(spool_with(&earlier, a), None).unwrap();
            let old_b = earlier.commit(spool_with(&earlier, b), None).unwrap();
            let kept = earlier
                .commit(spool_with(&earlier, b"indexed"), None)
                .unwrap();
            (old_a.digest, old_b.digest, kept.digest)
        };
        let store = FsBlobStore::open(dir.path()).unwrap();
        // This process: one fresh commit, and a commit of b's content,
        // whose index inserts are still to come.
        let fresh = store
            .commit(spool_with(&store, b"fresh"), None)
            .unwrap()
            .digest;
        assert_eq!(
            store.commit(spool_with(&store, b), None).unwrap().digest,
            old_b
        );
        let indexed = |d: &Digest| *d == kept;
        let hour = Duration::from_secs(3600);
        let r = store.reclaim_orphans(hour, &indexed).unwrap();
        assert_eq!(
            r,
            GcReport {
                blobs: 1,
                bytes: a.len() as u64
            }
        );
        assert!(!store.contains(&old_a).unwrap());
        for d in [old_b, kept, fresh] {
            assert!(store.contains(&d).unwrap(), "{d}");
        }
        // Past the grace period, unindexed commits are orphans too.
        let r = store.reclaim_orphans(Duration::ZERO, &indexed).unwrap();
        assert_eq!(r.blobs, 2);
        assert_eq!(store.list().unwrap().len(), 1);
        assert!(store.contains(&kept).unwrap());
        // A commit after the reclaim writes the file again.
        store.commit(spool_with(&store, a), None).unwrap();
        assert!(store.verify(&old_a).unwrap());
    }

    /// With a reserve larger than the free space, no spool is created and
    /// a running one fails its next check; both are "no space" errors.
    #[test]
    fn min_free_refuses_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let open = FsBlobStore::open(dir.path()).unwrap();
        let mut running = open.create_spool().unwrap();
        let free = OsFs.free_space(dir.path()).unwrap().unwrap();
        let full = FsBlobStore::open(dir.path())
            .unwrap()
            .with_min_free(dir.path(), free.saturating_mul(2));
        let e = full.create_spool().unwrap_err();
        assert!(crate::store::is_no_space(&e), "{e:?}");
        let mut s = open
            .create_spool()
            .unwrap()
            .with_reserve(Reserve::new(dir.path().into(), free.saturating_mul(2)));
        s.write(&[1u8; 1000]).unwrap();
        let e = s.write(&vec![2u8; 1 << 20]).unwrap_err();
        assert!(crate::store::is_no_space(&e), "{e:?}");
        // Refused before anything was written: the spool stays usable.
        running.write(b"still fine").unwrap();
        assert_eq!(s.len(), 1000);
        let zero = FsBlobStore::open(dir.path())
            .unwrap()
            .with_min_free(dir.path(), 0);
        zero.create_spool().unwrap();
    }
}
