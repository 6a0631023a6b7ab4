//! BuildGrid 0.9.1 (`bgd`, from PyPI) as a real REAPI server for the
//! tests of `cas` remotes whose upstream speaks gRPC: a cache-only server
//! (CAS, ByteStream, ActionCache and Capabilities on one instance; no
//! execution, no auth, no database) on 127.0.0.1, with its storage, config
//! and log in a temporary directory.
//!
//! BuildGrid serves no Remote Asset API: `Fetch` and `Push` calls to it are
//! UNIMPLEMENTED. Its advertised `max_batch_total_size_bytes` is just
//! under 4 MiB (4,193,280).

use super::grpc::Grpc;
use artgate::grpc::proto::reapi::GetCapabilitiesRequest;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The BuildGrid release the tests are written against (`./test.sh`
/// installs it).
pub const BUILDGRID_VERSION: &str = "0.9.1";

/// How long `bgd` may take to answer `GetCapabilities` after it starts
/// (it imports a lot of Python first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `bgd` gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a start is tried on a new port when the one picked was
/// taken before `bgd` could bind it.
const PORT_TRIES: usize = 3;

/// The `bgd` executable: `$ARTGATE_BUILDGRID` (set by `./test.sh`), else
/// `target/artgate-buildgrid-venv/bin/bgd` of the checkout. Panics when it
/// is missing: the tests that need it must fail, not skip.
pub fn bgd() -> PathBuf {
    let bgd = std::env::var_os("ARTGATE_BUILDGRID")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::kit::repo().join("target/artgate-buildgrid-venv/bin/bgd"));
    assert!(
        bgd.is_file(),
        "BuildGrid not found: {} does not exist; run ./test.sh (it installs buildgrid=={BUILDGRID_VERSION} into target/artgate-buildgrid-venv with a Python >= 3.13) or set ARTGATE_BUILDGRID to a bgd executable",
        bgd.display()
    );
    bgd
}

/// The server config: a disk CAS in `cas`, an in-memory action cache over
/// it, and the CAS, ByteStream and ActionCache services (Capabilities
/// comes with them) on `instance`, listening on `addr` without TLS. The
/// port is not shared (gRPC would set `SO_REUSEPORT`, so a second server
/// on a taken port would start and split the connections), and 32 threads
/// serve up to 64 calls at once (the default is 5 per core for both: 10
/// here, and the eleventh concurrent stream would get RESOURCE_EXHAUSTED).
fn config(addr: SocketAddr, cas: &Path, instance: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("quote a YAML string");
    format!(
        "server:
  - !channel
    address: {addr}
    insecure-mode: true
grpc-server-options:
  grpc.so_reuseport: 0
thread-pool-size: 32
maximum-concurrent-rpcs: 64
storages:
  - !disk-storage &cas
    path: {cas}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: true
instances:
  - name: {instance}
    services:
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
      - !action-cache
        cache: *ac
",
        addr = q(&addr.to_string()),
        cas = q(&cas.to_string_lossy()),
        instance = q(instance),
    )
}

/// A BuildGrid server serving one instance on 127.0.0.1; stopped (SIGTERM,
/// then SIGKILL after 10 s) when dropped. Layout of its directory:
/// `bgd.yml` (the config), `cas/` (the blobs), `bgd.log` (stdout and
/// stderr).
pub struct BuildGrid {
    child: Child,
    addr: SocketAddr,
    instance: String,
    dir: tempfile::TempDir,
}

impl BuildGrid {
    /// Start `bgd server start` serving `instance` on a free port and wait
    /// until it answers `GetCapabilities` for it. Panics with its log when
    /// it exits or does not answer within 60 s.
    pub async fn start(instance: &str) -> BuildGrid {
        let bgd = bgd();
        for attempt in 1..=PORT_TRIES {
            match BuildGrid::try_start(&bgd, instance).await {
                Ok(bg) => return bg,
                Err(log) if attempt < PORT_TRIES && port_taken(&log) => {}
                Err(log) => panic!("BuildGrid did not start:\n{log}"),
            }
        }
        unreachable!("the last try returns or panics")
    }

    /// One start in a new directory on a new free port: the server, or its
    /// log when `bgd` exited first.
    async fn try_start(bgd: &Path, instance: &str) -> Result<BuildGrid, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("cas")).expect("create the BuildGrid CAS dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], super::free_port()));
        let cfg = dir.path().join("bgd.yml");
        std::fs::write(&cfg, config(addr, &dir.path().join("cas"), instance))
            .expect("write bgd.yml");
        let log = std::fs::File::create(dir.path().join("bgd.log")).expect("create bgd.log");
        let mut cmd = Command::new(bgd);
        // `-vv`: INFO, one `Received request.` line per call.
        cmd.args(["server", "start", "-vv"])
            .arg(&cfg)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            // Its own process group, so Drop stops whatever it forks.
            .process_group(0);
        super::clients::without_proxies(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bgd.display()));
        // From here on Drop stops it, also when this panics.
        let mut bg = BuildGrid {
            child,
            addr,
            instance: instance.to_owned(),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = bg.child.try_wait().expect("wait for bgd") {
                return Err(format!("bgd exited ({status}) on {addr}:\n{}", bg.log()));
            }
            if bg.answers().await {
                return Ok(bg);
            }
            assert!(
                Instant::now() < deadline,
                "BuildGrid did not answer GetCapabilities on {addr} within {START_TIMEOUT:?}:\n{}",
                bg.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether `GetCapabilities` for the instance succeeds within 2 s.
    async fn answers(&self) -> bool {
        let g = self.grpc();
        let mut client = g.capabilities();
        let call = client.get_capabilities(g.req(GetCapabilitiesRequest {
            instance_name: self.instance.clone(),
        }));
        matches!(
            tokio::time::timeout(Duration::from_secs(2), call).await,
            Ok(Ok(_))
        )
    }

    /// Where it listens (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL for a `cas` remote's `upstream`: `grpc://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// The instance it serves.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Clients of its services for its instance.
    pub fn grpc(&self) -> Grpc {
        Grpc::new(self.addr, &self.instance)
    }

    /// The directory its config, storage and log are in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Everything it logged so far (stdout and stderr), for failure
    /// messages.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.path().join("bgd.log")).unwrap_or_default())
            .into_owned()
    }

    /// The method of every call it received so far, in order (e.g.
    /// `GetCapabilities`, `FindMissingBlobs`, `Read`, `GetActionResult`),
    /// from the `Received request.` lines of its log; the harness's own
    /// start-up probes are `GetCapabilities` calls too.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("Received request."))
            .filter_map(|l| {
                let rest = &l[l.find(" method=\"")? + " method=\"".len()..];
                Some(rest[..rest.find('"')?].to_owned())
            })
            .collect()
    }

    /// Stop it: SIGTERM to its process group, then SIGKILL when it has not
    /// exited after 10 s. Also done on drop.
    pub fn stop(&mut self) {
        super::stop_child(&mut self.child, STOP_TIMEOUT, true);
    }
}

impl Drop for BuildGrid {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `log` says the port could not be bound (another process took
/// it between [`super::free_port`] and `bgd`'s bind).
fn port_taken(log: &str) -> bool {
    log.contains("Failed to bind to address") || log.contains("Unable to configure socket")
}
