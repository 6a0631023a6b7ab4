//! The file-system calls the file blob store ([`FsBlobStore`](super::FsBlobStore))
//! and its spools make, behind a trait: [`OsFs`] is `std::fs` (a zero-sized
//! type, every call monomorphised to the plain system call), and the tests
//! put an in-memory file system that forgets what was not fsynced under the
//! same code (`memfs.rs`, simulated power loss).

use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What a path names (symlinks are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symlink, socket, device, …
    Other,
}

/// A path's kind and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// What the path names.
    pub kind: FileKind,
    /// Size in bytes.
    pub len: u64,
}

/// The directory and name operations the blob store uses.
///
/// Durability is explicit, as in POSIX: a file's content is durable after
/// [`VfsFile::sync_all`], a directory entry (a create, rename or remove in
/// it) after [`Vfs::sync_dir`] of that directory.
pub trait Vfs: Clone + Debug + Send + Sync + 'static {
    /// An open file.
    type File: VfsFile;
    /// Create a new file (`O_CREAT | O_EXCL`) with `mode`, open for reading
    /// and writing; `AlreadyExists` when the name is taken.
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Self::File>;
    /// Open an existing file for reading (following symlinks).
    fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Create one directory, mode 0755; `AlreadyExists` when it exists.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Create a directory and its missing parents, mode 0755.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Rename `from` to `to`, replacing a file at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Delete a file (or symlink).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Delete a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Make the entries of directory `path` durable (fsync the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// The entries of directory `path`, with their kinds, in any order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(OsString, FileKind)>>;
    /// Kind and size of `path`, not following symlinks.
    fn stat(&self, path: &Path) -> io::Result<Stat>;
    /// Bytes an unprivileged writer may still use on the file system
    /// holding `path`; `None` when the file system cannot tell.
    fn free_space(&self, path: &Path) -> io::Result<Option<u64>> {
        let _ = path;
        Ok(None)
    }
}

/// An open file of a [`Vfs`]: positional reads and writes only.
pub trait VfsFile: Debug + Send + Sync + Sized + 'static {
    /// Write all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Read into `buf` from `offset`; 0 only at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Make the content durable (fsync).
    fn sync_all(&self) -> io::Result<()>;
    /// Kind and size of the open file.
    fn stat(&self) -> io::Result<Stat>;
    /// Set the permission bits.
    fn set_mode(&self, mode: u32) -> io::Result<()>;
    /// Another handle on the same open file.
    fn try_clone(&self) -> io::Result<Self>;
    /// The `std` file, when there is one (for `preadv2` on the request
    /// thread, see [`crate::store::read_chunk`]).
    fn as_std(&self) -> Option<&File> {
        None
    }
}

/// The real file system (`std::fs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFs;

fn kind(t: fs::FileType) -> FileKind {
    if t.is_file() {
        FileKind::File
    } else if t.is_dir() {
        FileKind::Dir
    } else {
        FileKind::Other
    }
}

impl Vfs for OsFs {
    type File = File;

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        DirBuilder::new().mode(0o755).create(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(0o755).create(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(OsString, FileKind)>> {
        fs::read_dir(path)?
            .map(|e| {
                let e = e?;
                Ok((e.file_name(), kind(e.file_type()?)))
            })
            .collect()
    }

    fn stat(&self, path: &Path) -> io::Result<Stat> {
        let m = fs::symlink_metadata(path)?;
        Ok(Stat {
            kind: kind(m.file_type()),
            len: m.len(),
        })
    }

    fn free_space(&self, path: &Path) -> io::Result<Option<u64>> {
        let s = rustix::fs::statvfs(path)?;
        Ok(Some(s.f_bavail.saturating_mul(s.f_frsize)))
    }
}

impl VfsFile for File {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }

    fn stat(&self) -> io::Result<Stat> {
        let m = self.metadata()?;
        Ok(Stat {
            kind: kind(m.file_type()),
            len: m.len(),
        })
    }

    fn set_mode(&self, mode: u32) -> io::Result<()> {
        self.set_permissions(Permissions::from_mode(mode))
    }

    fn try_clone(&self) -> io::Result<File> {
        File::try_clone(self)
    }

    fn as_std(&self) -> Option<&File> {
        Some(self)
    }
}
