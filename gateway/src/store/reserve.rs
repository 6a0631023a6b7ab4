//! The free-space reserve (`storage.min_free`): new content is refused
//! while the storage file system has less than the reserve free, so that
//! the index always has room for deletes, flushes and updates (sled needs
//! disk space to delete, and a disk filled to the last block by blobs
//! could refuse the very delete that would free it).
//!
//! A spool checks the reserve when it is created and again after every
//! [`CHECK_EVERY`] bytes written to it, so concurrent writers can dip into
//! the reserve by at most that much each.

use super::vfs::Vfs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes a spool may write between two checks of the free space.
pub const CHECK_EVERY: u64 = 1024 * 1024;

/// A free-space floor on the file system holding `dir`.
#[derive(Debug, Clone)]
pub struct Reserve {
    dir: Arc<Path>,
    min_free: u64,
}

impl Reserve {
    /// Keep `min_free` bytes free on the file system of `dir`; `None` when
    /// `min_free` is 0 (no reserve).
    pub fn new(dir: PathBuf, min_free: u64) -> Option<Reserve> {
        (min_free > 0).then(|| Reserve {
            dir: dir.into(),
            min_free,
        })
    }

    /// `Ok` when writing `need` more bytes leaves at least the reserve
    /// free; otherwise a [`io::ErrorKind::StorageFull`] error that says so
    /// (a 507 on the request path). File systems that cannot tell their
    /// free space pass.
    pub fn check<V: Vfs>(&self, vfs: &V, need: u64) -> io::Result<()> {
        let Some(free) = vfs.free_space(&self.dir)? else {
            return Ok(());
        };
        if free >= self.min_free.saturating_add(need) {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "{free} bytes are free on the storage file system, and storage.min_free keeps {} bytes for the index",
                self.min_free
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OsFs;

    #[test]
    fn refuses_below_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Reserve::new(dir.path().into(), 0).is_none());
        let free = OsFs.free_space(dir.path()).unwrap().expect("statvfs");
        let ok = Reserve::new(dir.path().into(), 1).unwrap();
        ok.check(&OsFs, 0).unwrap();
        let too_much = Reserve::new(dir.path().into(), free.saturating_mul(2)).unwrap();
        let e = too_much.check(&OsFs, 0).unwrap_err();
        assert!(crate::store::is_no_space(&e), "{e:?}");
        assert!(e.to_string().contains("storage.min_free"), "{e}");
        let e = crate::store::StoreError::io("write spool", "tmp/x", e);
        assert_eq!(e.status().as_u16(), 507);
    }
}
