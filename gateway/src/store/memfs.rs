//! Simulated power loss: an in-memory [`Vfs`] that keeps, next to what
//! processes see, what the disk would still hold after the power went out,
//! and a test that runs the file blob store on it through random sequences
//! of spools, commits, removes, process crashes and power losses.
//!
//! The durability model is POSIX's, read strictly: a file's content becomes
//! durable when the file is fsynced ([`VfsFile::sync_all`]); a directory
//! entry (a create, rename or remove in that directory) when the directory
//! is fsynced ([`Vfs::sync_dir`]), and only while the directory's own entry
//! is durable in its parent. A power loss drops everything else; a process
//! crash drops nothing. The file system can be told to die after `n` more
//! operations (the operation that would be the `n + 1`-th fails, as does
//! every later one until the restart) and to fail fsyncs, renames and
//! writes at random with `EIO` without dying.

use super::vfs::{FileKind, Stat, Vfs, VfsFile};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a name points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

/// A file's bytes as processes see them and as the disk holds them.
#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug)]
struct State {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    /// The namespace processes see.
    live: BTreeMap<PathBuf, Node>,
    /// The namespace the disk holds (entries of directories as of their
    /// last fsync).
    durable: BTreeMap<PathBuf, Node>,
    /// Operations left before the machine dies (`None`: no crash armed).
    ops_left: Option<u64>,
    /// Dead: every operation fails until a restart.
    down: bool,
    /// Chance in 1000 that an fsync, rename or write fails with `EIO`.
    fault_permille: u64,
    rng: u64,
    /// Operations done (for the figures).
    ops: u64,
}

/// The in-memory file system; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct MemFs(Arc<Mutex<State>>);

/// An open file of a [`MemFs`].
#[derive(Debug)]
pub(crate) struct MemFile {
    fs: MemFs,
    ino: u64,
}

fn eio(why: &str) -> io::Error {
    io::Error::other(format!("EIO (simulated): {why}"))
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

impl State {
    fn rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Count an operation; fail when the machine is (or now goes) down.
    fn op(&mut self) -> io::Result<()> {
        if self.down {
            return Err(eio("the machine is down"));
        }
        if let Some(n) = self.ops_left.as_mut() {
            if *n == 0 {
                self.down = true;
                return Err(eio("the machine just went down"));
            }
            *n -= 1;
        }
        self.ops += 1;
        Ok(())
    }

    /// [`State::op`], and a random injected fault for operations that can
    /// fail on a real disk.
    fn faulty_op(&mut self, what: &str) -> io::Result<()> {
        self.op()?;
        if self.fault_permille > 0 && self.rand() % 1000 < self.fault_permille {
            return Err(eio(what));
        }
        Ok(())
    }

    fn dir_exists(&self, path: &Path) -> io::Result<()> {
        match self.live.get(path) {
            Some(Node::Dir) => Ok(()),
            Some(Node::File(_)) => Err(io::Error::other("not a directory")),
            None if path == Path::new("/") => Ok(()),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn file(&mut self, ino: u64) -> &mut Inode {
        self.inodes.entry(ino).or_default()
    }
}

impl MemFs {
    /// An empty file system (only `/`); `seed` drives injected faults.
    pub(crate) fn new(seed: u64) -> MemFs {
        MemFs(Arc::new(Mutex::new(State {
            inodes: HashMap::new(),
            next_ino: 1,
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            ops_left: None,
            down: false,
            fault_permille: 0,
            rng: seed,
            ops: 0,
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Die after `n` more operations.
    pub(crate) fn crash_after(&self, n: u64) {
        self.state().ops_left = Some(n);
    }

    /// Fail fsyncs, renames and writes with `EIO` with this chance in 1000.
    pub(crate) fn set_faults(&self, permille: u64) {
        self.state().fault_permille = permille;
    }

    /// Whether the machine is down (an armed crash happened).
    pub(crate) fn is_down(&self) -> bool {
        self.state().down
    }

    /// Kill the machine now.
    pub(crate) fn go_down(&self) {
        self.state().down = true;
    }

    /// Operations done so far.
    pub(crate) fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Restart after a process crash: everything stays as it was.
    pub(crate) fn restart(&self) {
        let mut s = self.state();
        s.down = false;
        s.ops_left = None;
    }

    /// Restart after a power loss: only what was durable is left.
    pub(crate) fn power_loss(&self) {
        let mut s = self.state();
        s.down = false;
        s.ops_left = None;
        // Parents sort before their children (fewer components first).
        let mut entries: Vec<(PathBuf, Node)> =
            s.durable.iter().map(|(p, n)| (p.clone(), *n)).collect();
        entries.sort_by_key(|(p, _)| p.components().count());
        let mut live = BTreeMap::new();
        for (p, n) in entries {
            let par = parent(&p);
            if par == Path::new("/") || live.get(par) == Some(&Node::Dir) {
                live.insert(p, n);
            }
        }
        s.live = live.clone();
        s.durable = live;
        for inode in s.inodes.values_mut() {
            inode.data = inode.synced.clone();
        }
    }
}

impl Vfs for MemFs {
    type File = MemFile;

    fn create_new(&self, path: &Path, _mode: u32) -> io::Result<MemFile> {
        let mut s = self.state();
        s.op()?;
        s.dir_exists(parent(path))?;
        if s.live.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let ino = s.next_ino;
        s.next_ino += 1;
        s.inodes.insert(ino, Inode::default());
        s.live.insert(path.to_path_buf(), Node::File(ino));
        Ok(MemFile {
            fs: self.clone(),
            ino,
        })
    }

    fn open(&self, path: &Path) -> io::Result<MemFile> {
        let mut s = self.state();
        s.op()?;
        match s.live.get(path) {
            Some(Node::File(ino)) => Ok(MemFile {
                fs: self.clone(),
                ino: *ino,
            }),
            Some(Node::Dir) => Err(io::Error::other("is a directory")),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.op()?;
        s.dir_exists(parent(path))?;
        if s.live.contains_key(path) || path == Path::new("/") {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        s.live.insert(path.to_path_buf(), Node::Dir);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut todo: Vec<&Path> = path.ancestors().collect();
        todo.reverse();
        for p in todo {
            if p == Path::new("/") {
                continue;
            }
            let exists = {
                let s = self.state();
                s.live.get(p).copied()
            };
            match exists {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => return Err(io::Error::other("not a directory")),
                None => self.create_dir(p)?,
            }
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.faulty_op("rename")?;
        let node = match s.live.get(from) {
            Some(Node::File(ino)) => Node::File(*ino),
            Some(Node::Dir) => return Err(io::Error::other("renaming directories: unsupported")),
            None => return Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        s.dir_exists(parent(to))?;
        if s.live.get(to) == Some(&Node::Dir) {
            return Err(io::Error::other("is a directory"));
        }
        s.live.remove(from);
        s.live.insert(to.to_path_buf(), node);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.op()?;
        match s.live.get(path) {
            Some(Node::File(_)) => {
                s.live.remove(path);
                Ok(())
            }
            Some(Node::Dir) => Err(io::Error::other("is a directory")),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.op()?;
        if !s.live.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        s.live.retain(|p, _| !p.starts_with(path));
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.faulty_op("fsync directory")?;
        s.dir_exists(path)?;
        let children: Vec<(PathBuf, Node)> = s
            .live
            .iter()
            .filter(|(p, _)| parent(p) == path)
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        s.durable.retain(|p, _| parent(p) != path);
        s.durable.extend(children);
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(OsString, FileKind)>> {
        let mut s = self.state();
        s.op()?;
        s.dir_exists(path)?;
        Ok(s.live
            .iter()
            .filter(|(p, _)| parent(p) == path)
            .filter_map(|(p, n)| {
                let kind = match n {
                    Node::File(_) => FileKind::File,
                    Node::Dir => FileKind::Dir,
                };
                Some((p.file_name()?.to_os_string(), kind))
            })
            .collect())
    }

    fn stat(&self, path: &Path) -> io::Result<Stat> {
        let mut s = self.state();
        s.op()?;
        match s.live.get(path).copied() {
            Some(Node::File(ino)) => Ok(Stat {
                kind: FileKind::File,
                len: s.file(ino).data.len() as u64,
            }),
            Some(Node::Dir) => Ok(Stat {
                kind: FileKind::Dir,
                len: 0,
            }),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

impl VfsFile for MemFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.fs.state();
        s.faulty_op("write")?;
        let data = &mut s.file(self.ino).data;
        let end = offset as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut s = self.fs.state();
        s.op()?;
        let data = &s.file(self.ino).data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn sync_all(&self) -> io::Result<()> {
        let mut s = self.fs.state();
        s.faulty_op("fsync")?;
        let f = s.file(self.ino);
        f.synced = f.data.clone();
        Ok(())
    }

    fn stat(&self) -> io::Result<Stat> {
        let mut s = self.fs.state();
        s.op()?;
        Ok(Stat {
            kind: FileKind::File,
            len: s.file(self.ino).data.len() as u64,
        })
    }

    fn set_mode(&self, _mode: u32) -> io::Result<()> {
        self.fs.state().op()
    }

    fn try_clone(&self) -> io::Result<MemFile> {
        self.fs.state().op()?;
        Ok(MemFile {
            fs: self.fs.clone(),
            ino: self.ino,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BlobStore, Digest, FsBlobStore, Spool, StoreError};
    use std::collections::HashMap;

    /// Cases (random sequences) per run; `ARTGATE_POWER_CASES` overrides.
    const CASES: u64 = 400;
    /// Steps per case.
    const STEPS: usize = 60;
    /// Chance in 1000 of an injected `EIO` per fsync, rename and write, in
    /// every third case.
    const FAULTS: u64 = 100;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// One of a few contents (so commits of the same content meet), of
    /// 1–300 bytes.
    fn content(rng: &mut Rng) -> Vec<u8> {
        let k = rng.below(6);
        let len = 1 + (k * 37 + 11) % 300;
        (0..len).map(|i| (i * 31 + k * 7) as u8).collect()
    }

    #[derive(Default)]
    struct Figures {
        commits_ok: u64,
        power_losses: u64,
        crashes: u64,
        armed_deaths: u64,
        injected_failures: u64,
        blobs_checked: u64,
        ops: u64,
    }

    /// A spool being written: the store's handle and the bytes meant.
    struct Open {
        spool: Spool<MemFs>,
        want: Vec<u8>,
        written: usize,
    }

    /// What the checks need after a restart.
    struct Ctx {
        case: u64,
        acked: HashMap<Digest, Vec<u8>>,
    }

    const DIR: &str = "/store";

    fn open(fs: &MemFs, generation: u64) -> Option<FsBlobStore<MemFs>> {
        FsBlobStore::open_in(fs.clone(), Path::new(DIR))
            .ok()
            .map(|s| s.with_token(&format!("{generation:016x}")))
    }

    /// After a restart: the store opens, leftover spools go, and every
    /// acknowledged commit is there with exactly its bytes; every visible
    /// blob matches its name; nothing stray.
    fn check(ctx: &Ctx, store: &FsBlobStore<MemFs>, fig: &mut Figures) -> Result<(), String> {
        let case = ctx.case;
        store
            .clean_spools()
            .map_err(|e| format!("case {case}: clean_spools: {e}"))?;
        let spools = store.spools().map_err(|e| e.to_string())?;
        if !spools.is_empty() {
            return Err(format!(
                "case {case}: spools left after cleaning: {spools:?}"
            ));
        }
        let strays = store.strays().map_err(|e| e.to_string())?;
        if !strays.is_empty() {
            return Err(format!("case {case}: strays: {strays:?}"));
        }
        for (d, want) in &ctx.acked {
            let Some(blob) = store.open(d).map_err(|e| e.to_string())? else {
                return Err(format!(
                    "case {case}: acknowledged blob {d} ({} bytes) is lost",
                    want.len()
                ));
            };
            let mut got = vec![0u8; blob.len() as usize];
            let n = blob.read_at(&mut got, 0).map_err(|e| e.to_string())?;
            if n != got.len() || got != *want {
                return Err(format!(
                    "case {case}: acknowledged blob {d} holds {} bytes, not its {} bytes",
                    n,
                    want.len()
                ));
            }
            fig.blobs_checked += 1;
        }
        for b in store.list().map_err(|e| e.to_string())? {
            if !store.verify(&b.digest).map_err(|e| e.to_string())? {
                return Err(format!(
                    "case {case}: visible blob {} ({} bytes) does not match its name",
                    b.digest, b.size
                ));
            }
            fig.blobs_checked += 1;
        }
        Ok(())
    }

    /// One random sequence; `Err` names the first violation.
    fn run_case(case: u64, fig: &mut Figures) -> Result<(), String> {
        let mut rng = Rng(case.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA076_1D64_78BD_642F);
        let fs = MemFs::new(rng.next());
        // A third of the cases also see fsyncs, renames and writes fail.
        if case % 3 == 2 {
            fs.set_faults(FAULTS);
        }
        let mut generation = 0u64;
        let mut ctx = Ctx {
            case,
            acked: HashMap::new(),
        };
        let mut store = open(&fs, generation);
        let mut spools: Vec<Open> = Vec::new();
        for step in 0..STEPS {
            // A dead machine (or a store that could not open): restart it,
            // with or without the power going out.
            if store.is_none() || fs.is_down() {
                spools.clear();
                drop(store.take());
                if rng.below(3) == 0 {
                    fs.restart();
                    fig.crashes += 1;
                } else {
                    fs.power_loss();
                    fig.power_losses += 1;
                }
                generation += 1;
                // Open and check with faults off: they are for the
                // workload, and a check must not fail on them.
                let faults = if case % 3 == 2 { FAULTS } else { 0 };
                fs.set_faults(0);
                store = open(&fs, generation);
                let Some(s) = &store else {
                    return Err(format!("case {case}: the store does not open"));
                };
                check(&ctx, s, fig)?;
                fs.set_faults(faults);
                continue;
            }
            let s = store.as_ref().expect("open");
            match rng.below(20) {
                // Arm a death within the next few operations.
                0 | 1 => {
                    fs.crash_after(rng.below(25));
                    fig.armed_deaths += 1;
                }
                // A process crash or a power loss right now.
                2 => fs.go_down(),
                3..=6 => {
                    if spools.len() < 4 {
                        if let Ok(spool) = s.create_spool() {
                            spools.push(Open {
                                spool,
                                want: content(&mut rng),
                                written: 0,
                            });
                        } else {
                            fig.injected_failures += 1;
                        }
                    }
                }
                7..=11 if !spools.is_empty() => {
                    let i = rng.below(spools.len() as u64) as usize;
                    let o = &mut spools[i];
                    if o.written < o.want.len() {
                        let n = (1 + rng.below(100) as usize).min(o.want.len() - o.written);
                        if o.spool.write(&o.want[o.written..o.written + n]).is_err() {
                            // The spool is unusable now.
                            spools.swap_remove(i);
                            fig.injected_failures += 1;
                        } else {
                            o.written += n;
                        }
                    }
                }
                12..=15 if !spools.is_empty() => {
                    let i = rng.below(spools.len() as u64) as usize;
                    let mut o = spools.swap_remove(i);
                    // Mostly whole contents, so that commits of the same
                    // content meet (the already-stored path).
                    if o.written < o.want.len() && rng.below(10) != 0 {
                        if o.spool.write(&o.want[o.written..]).is_err() {
                            fig.injected_failures += 1;
                            continue;
                        }
                        o.written = o.want.len();
                    }
                    let data = o.want[..o.written].to_vec();
                    let right = Digest::of(&data);
                    let (expected, wrong) = match rng.below(10) {
                        0 => (Some(Digest::of(b"not this")), true),
                        1 => (None, false),
                        _ => (Some(right), false),
                    };
                    match s.commit(o.spool, expected.as_ref()) {
                        Ok(r) if !wrong && r.digest == right && r.size == data.len() as u64 => {
                            fig.commits_ok += 1;
                            if !data.is_empty() {
                                ctx.acked.insert(right, data);
                            }
                        }
                        Ok(r) => {
                            return Err(format!(
                                "case {case} step {step}: commit returned {r:?} for {} bytes {right} (expected {expected:?})",
                                data.len()
                            ));
                        }
                        Err(StoreError::DigestMismatch { .. }) if wrong => {}
                        Err(StoreError::DigestMismatch { .. }) => {
                            return Err(format!("case {case} step {step}: a false mismatch"));
                        }
                        Err(_) => fig.injected_failures += 1,
                    }
                }
                16 if !spools.is_empty() => {
                    spools.swap_remove(rng.below(spools.len() as u64) as usize);
                }
                17 | 18 => {
                    // Remove a committed blob (as gc does after its index
                    // flush): it may come back after a power loss, whole.
                    let keys: Vec<Digest> = ctx.acked.keys().copied().collect();
                    if !keys.is_empty() {
                        let d = keys[rng.below(keys.len() as u64) as usize];
                        ctx.acked.remove(&d);
                        let _ = s.remove(&d);
                    }
                }
                _ => {
                    // A check of the running store (no restart).
                    let faults = if case % 3 == 2 { FAULTS } else { 0 };
                    fs.set_faults(0);
                    if !fs.is_down() {
                        let visible = s.list();
                        if let Ok(list) = visible {
                            for b in list {
                                if !s.verify(&b.digest).unwrap_or(true) {
                                    return Err(format!(
                                        "case {case} step {step}: blob {} does not match its name",
                                        b.digest
                                    ));
                                }
                            }
                        }
                    }
                    fs.set_faults(faults);
                }
            }
        }
        // The end: the power goes out once more.
        drop(spools);
        fs.go_down();
        drop(store);
        fs.power_loss();
        fig.power_losses += 1;
        fs.set_faults(0);
        let Some(s) = open(&fs, generation + 1) else {
            return Err(format!("case {case}: the store does not open"));
        };
        check(&ctx, &s, fig)?;
        fig.ops += fs.ops();
        Ok(())
    }

    /// Hundreds of random sequences of spools, commits and removes on a
    /// file system that loses power (or the process) at random points:
    /// every commit that returned `Ok` survives with exactly its bytes, no
    /// visible blob has the wrong content, leftover spools are cleaned and
    /// nothing stray appears.
    #[test]
    fn power_loss_keeps_every_acknowledged_commit_and_nothing_partial() {
        let cases = std::env::var("ARTGATE_POWER_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(CASES);
        let mut fig = Figures::default();
        let mut failures = Vec::new();
        for case in 0..cases {
            if let Err(e) = run_case(case, &mut fig) {
                failures.push(e);
            }
        }
        eprintln!(
            "power loss: {cases} cases, {} fs operations, {} acknowledged commits, {} power losses, \
             {} process crashes ({} armed mid-operation), {} injected failures seen, {} blob checks; \
             {} failing cases",
            fig.ops,
            fig.commits_ok,
            fig.power_losses,
            fig.crashes,
            fig.armed_deaths,
            fig.injected_failures,
            fig.blobs_checked,
            failures.len()
        );
        assert!(
            failures.is_empty(),
            "{} of {cases} cases failed; the first ones:\n{}",
            failures.len(),
            failures
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(fig.commits_ok > cases && fig.power_losses > cases);
    }

    /// A commit that finds its content already stored (renamed by a
    /// commit whose directory fsync failed, or a process that crashed
    /// before it) makes the entry durable before it returns `Ok`.
    #[test]
    fn a_commit_of_stored_content_makes_it_durable() {
        let data = b"renamed, never synced".to_vec();
        let d = Digest::of(&data);
        // Kill the machine one operation later each time, until it dies
        // right after the rename.
        for n in 0..64 {
            let fs = MemFs::new(n);
            let store = open(&fs, 0).expect("open");
            let mut spool = store.create_spool().expect("spool");
            spool.write(&data).expect("write");
            fs.crash_after(n);
            let r = store.commit(spool, Some(&d));
            assert!(r.is_err(), "no crash within {n} operations");
            let renamed = {
                fs.restart();
                store.contains(&d).expect("stat")
            };
            if !renamed {
                continue;
            }
            // The process restarts (nothing lost) and commits it again.
            drop(store);
            let store = open(&fs, 1).expect("reopen");
            let mut spool = store.create_spool().expect("spool");
            spool.write(&data).expect("write");
            store.commit(spool, Some(&d)).expect("commit");
            fs.go_down();
            drop(store);
            fs.power_loss();
            let store = open(&fs, 2).expect("open after power loss");
            assert!(
                store.contains(&d).expect("stat"),
                "a commit that returned Ok lost its blob in a power loss"
            );
            assert!(store.verify(&d).expect("verify"));
            return;
        }
        panic!("never died right after the rename");
    }

    #[test]
    fn the_model_forgets_what_was_not_synced() {
        let fs = MemFs::new(1);
        fs.create_dir_all(Path::new("/d/e")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        let f = fs.create_new(Path::new("/d/e/a"), 0o644).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.sync_all().unwrap();
        let g = fs.create_new(Path::new("/d/e/b"), 0o644).unwrap();
        g.write_all_at(b"world", 0).unwrap();
        fs.sync_dir(Path::new("/d/e")).unwrap();
        fs.rename(Path::new("/d/e/a"), Path::new("/d/c")).unwrap();
        fs.power_loss();
        // a's entry and content were durable; b's entry but not its bytes;
        // the rename was not.
        let names: Vec<_> = fs
            .read_dir(Path::new("/d/e"))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec![OsString::from("a"), OsString::from("b")]);
        assert_eq!(fs.stat(Path::new("/d/e/b")).unwrap().len, 0);
        let a = fs.open(Path::new("/d/e/a")).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(a.read_at(&mut buf, 0).unwrap(), 5);
        assert!(fs.stat(Path::new("/d/c")).is_err());
        // A process crash keeps everything; a dead machine does nothing.
        fs.rename(Path::new("/d/e/a"), Path::new("/d/c")).unwrap();
        fs.crash_after(0);
        assert!(fs.remove_file(Path::new("/d/c")).is_err());
        assert!(fs.is_down());
        fs.restart();
        assert!(fs.stat(Path::new("/d/c")).is_ok());
    }
}
