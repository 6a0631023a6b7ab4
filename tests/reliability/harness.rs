//! What the reliability tests share: the `artgate` binary as a child
//! process (started, `kill -9`ed, terminated), `artgate fsck`, a seeded
//! RNG, and a body reader that tells a clean end from an aborted one.

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::VecDeque;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;

/// Lowercase hex sha256 of `b`.
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// splitmix64: small, seeded, good enough to pick sizes and moments.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// Log-uniform size in `lo..=hi` bytes: many small objects, some large.
    pub fn size(&mut self, lo: usize, hi: usize) -> usize {
        let (a, b) = ((lo.max(1) as f64).ln(), (hi as f64).ln());
        let f = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((a + (b - a) * f).exp() as usize).clamp(lo, hi)
    }
}

/// The seed of a randomised test: `$ARTGATE_SEED` if set, else the clock.
/// Printed, so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("ARTGATE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed} (replay with ARTGATE_SEED={seed})");
    seed
}

/// A response body read as far as it goes.
pub struct Received {
    /// Bytes received.
    pub len: u64,
    /// Their sha256.
    pub sha256: String,
    /// The error that stopped the body (`None`: a clean end).
    pub error: Option<String>,
}

/// Read `resp`'s body to its end or its first error, hashing.
pub async fn drain(resp: reqwest::Response) -> Received {
    drain_progress(resp, Arc::default()).await
}

/// [`drain`], with the count of bytes so far in `progress`.
pub async fn drain_progress(mut resp: reqwest::Response, progress: Arc<AtomicU64>) -> Received {
    let mut h = Sha256::new();
    let mut len = 0u64;
    let error = loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                h.update(&c);
                len += c.len() as u64;
                progress.store(len, SeqCst);
            }
            Ok(None) => break None,
            Err(e) => break Some(format!("{e:?}")),
        }
    };
    Received {
        len,
        sha256: hex::encode(h.finalize()),
        error,
    }
}

/// A reqwest client without proxies or pooled-connection surprises.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("reqwest client")
}

/// The `artgate` binary: `$ARTGATE_BIN` when set (a long run can use a
/// copy that a concurrent build cannot replace under it), else the one
/// cargo built for this test.
pub fn artgate_bin() -> PathBuf {
    std::env::var_os("ARTGATE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_artgate")))
}

/// How many log lines of a child are kept for failure messages.
const LOG_LINES: usize = 400;

/// The `artgate` binary serving `config` as a child process; killed when
/// dropped.
pub struct Proc {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Proc {
    /// Start `artgate --config FILE` (JSON logs, warnings and the startup
    /// lines) and wait until it logs `artgate listening`. Panics with the
    /// log when it exits or does not get there within 30 s: the store must
    /// open every time.
    pub async fn start(config: &Path) -> Proc {
        Proc::start_env(config, &[]).await
    }

    /// [`Proc::start`] with extra environment variables (e.g.
    /// `FAILPOINTS`). The child never writes a core file (an injected
    /// `abort` would leave one).
    pub async fn start_env(config: &Path, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(artgate_bin());
        cmd.arg("--config")
            .arg(config)
            .args(["--log-format", "json"])
            .env(
                "ARTGATE_LOG",
                "warn,artgate=info,artgate::server=warn,artgate::plugins=warn",
            )
            .envs(env.iter().copied());
        // SAFETY: setrlimit(2) is async-signal-safe; nothing else runs
        // between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::setrlimit(libc::RLIMIT_CORE, &none) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn artgate");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        let log2 = log.clone();
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"] == "artgate listening"
                    && let Some(a) = v["fields"]["addr"].as_str().and_then(|a| a.parse().ok())
                {
                    let _ = tx.send(a);
                }
                let mut l = log2.lock().unwrap();
                if l.len() == LOG_LINES {
                    l.pop_front();
                }
                l.push_back(line);
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("wait task");
        let mut p = Proc {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            log,
        };
        match addr {
            Ok(a) => {
                p.addr = a;
                p
            }
            Err(_) => {
                let status = p.child.try_wait().ok().flatten();
                p.kill9();
                panic!(
                    "artgate did not start (the store must open every time); exit: {status:?}; log:\n{}",
                    p.log_tail()
                );
            }
        }
    }

    /// URL of `path` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The last log lines.
    pub fn log_tail(&self) -> String {
        self.log
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the child has exited, and how (reaped when it has).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (at most 15 s) for a clean exit.
    pub async fn terminate(&mut self) {
        self.terminate_within(Duration::from_secs(15)).await
    }

    /// SIGTERM and wait (at most `limit`) for a clean exit.
    pub async fn terminate_within(&mut self, limit: Duration) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM)");
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                assert!(s.success(), "artgate exited with {s}:\n{}", self.log_tail());
                return;
            }
            assert!(
                start.elapsed() < limit,
                "artgate did not exit on SIGTERM within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `artgate --config FILE fsck ARGS`: exit code and JSON report.
pub async fn fsck(config: &Path, args: &[&str]) -> (i32, Value) {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(artgate_bin())
            .arg("--config")
            .arg(&config)
            .arg("fsck")
            .args(&args)
            .env("ARTGATE_LOG", "warn")
            .output()
            .expect("run fsck")
    })
    .await
    .expect("fsck task");
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "fsck printed no JSON ({e}; the store must open every time): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// Report fields of `fsck` that count damage (as opposed to crash
/// leftovers: spools, orphan blobs, unreferenced blobs).
pub const DAMAGE: [&str; 8] = [
    "corrupt_records",
    "bad_references",
    "unrecorded_blobs",
    "bad_usage",
    "entries_missing_blob",
    "corrupt_blobs",
    "records_missing_file",
    "strays",
];

/// The damage fields of `report` that are not 0, as `name=value`.
pub fn damage(report: &Value) -> Vec<String> {
    DAMAGE
        .iter()
        .filter(|k| report[**k].as_u64() != Some(0))
        .map(|k| format!("{k}={}", report[*k]))
        .collect()
}

/// Names of the files in `dir` (none when it does not exist).
pub fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A config file at `dir/artgate.toml`: storage in `data_dir`, plugins in
/// `dir/plugins` (with the test process's shared compiled-code cache), the
/// `[upstream]` timeouts given, then `remotes`.
pub fn write_config(dir: &Path, data_dir: &Path, upstream: &str, remotes: &str) -> PathBuf {
    write_config_with_storage(dir, data_dir, "", upstream, remotes)
}

/// [`write_config`] with more `[storage]` keys (e.g. `max_size`).
pub fn write_config_with_storage(
    dir: &Path,
    data_dir: &Path,
    storage: &str,
    upstream: &str,
    remotes: &str,
) -> PathBuf {
    std::fs::create_dir_all(dir.join("plugins")).expect("plugins dir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\n[storage]\ndir = {:?}\n{storage}\n[plugins]\ndir = {:?}\ncache_dir = {:?}\n[upstream]\n{upstream}\n\n{remotes}",
        data_dir,
        dir.join("plugins"),
        crate::support::gateway::shared_plugin_cache(),
    );
    let path = dir.join("artgate.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// [`write_config`] for the crash and fault tests: a hosted remote
/// `hosted` and a pull-through remote `pull` in front of `upstream`, with
/// short upstream timeouts.
pub fn write_hosted_and_pull_config(dir: &Path, data_dir: &Path, upstream: &str) -> PathBuf {
    write_config(
        dir,
        data_dir,
        "first_byte_timeout = \"5s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"10s\"",
        &format!(
            "[[remote]]\nname = \"hosted\"\npackage = \"local\"\n\n[[remote]]\nname = \"pull\"\npackage = \"generic\"\nupstream = {upstream:?}\n"
        ),
    )
}
