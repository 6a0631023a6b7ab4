//! The `artgate` binary as a child process, for tests that `kill -9` the
//! gateway, restart it on the same store, run `artgate fsck` on it, or read
//! what it logs: [`ChildGateway`], [`fsck`], and the config files they use.

use serde_json::Value;
use std::collections::VecDeque;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `artgate` binary: `$ARTGATE_BIN` when set (a long run can use a
/// copy that a concurrent build cannot replace under it), else the one
/// cargo built for this test.
pub fn artgate_bin() -> PathBuf {
    std::env::var_os("ARTGATE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_artgate")))
}

/// How many log lines of a long-running child are kept for failure
/// messages.
const LOG_LINES: usize = 400;

/// The filter of [`ChildGateway::start`]: warnings and the startup lines.
const QUIET: &str = "warn,artgate=info,artgate::server=warn,artgate::plugins=warn";

/// The log lines kept of a child (the newest `cap`, or all).
struct Log {
    lines: VecDeque<String>,
    cap: Option<usize>,
}

/// The `artgate` binary serving a config file as a child process; killed
/// (`kill -9`) when dropped.
pub struct ChildGateway {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

/// The address of an `artgate listening` line, JSON or text.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if let Ok(v) = serde_json::from_str::<Value>(line) {
        if v["fields"]["message"] == "artgate listening" {
            return v["fields"]["addr"].as_str()?.parse().ok();
        }
        return None;
    }
    if !line.contains("artgate listening") {
        return None;
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))?
        .parse()
        .ok()
}

impl ChildGateway {
    /// Start `artgate --config FILE` (JSON logs, warnings and the startup
    /// lines, the last 400 kept) and wait until it logs `artgate
    /// listening`. Panics with the log when it exits or does not get there
    /// within 30 s: the store must open every time.
    pub async fn start(config: &Path) -> ChildGateway {
        ChildGateway::start_env(config, &[]).await
    }

    /// [`ChildGateway::start`] with extra environment variables (e.g.
    /// `FAILPOINTS`).
    pub async fn start_env(config: &Path, env: &[(&str, &str)]) -> ChildGateway {
        let env: Vec<(&str, &str)> = [("ARTGATE_LOG", QUIET)]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        ChildGateway::spawn(config, &["--log-format", "json"], &env, Some(LOG_LINES)).await
    }

    /// Write `config.toml` in `dir` (the in-process gateway's test head for
    /// `dir`, then `tail`: `[[remote]]` and `[[token]]` tables) and start
    /// the binary on it with text logs filtered by `log_level`, every line
    /// kept (see [`ChildGateway::log_text`]).
    pub async fn start_in(dir: &Path, tail: &str, log_level: &str) -> ChildGateway {
        std::fs::create_dir_all(dir.join("plugins")).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!("{}\n{tail}", super::gateway::config_head(dir)),
        )
        .unwrap();
        ChildGateway::spawn(&config, &[], &[("ARTGATE_LOG", log_level)], None).await
    }

    /// Start the binary on `config` with `args` and `env`, keeping the last
    /// `keep` log lines (all with `None`). The child never writes a core
    /// file (an injected `abort` would leave one).
    async fn spawn(
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        keep: Option<usize>,
    ) -> ChildGateway {
        let mut cmd = Command::new(artgate_bin());
        cmd.arg("--config")
            .arg(config)
            .args(args)
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
        let log = Arc::new(Mutex::new(Log {
            lines: VecDeque::new(),
            cap: keep,
        }));
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        let log2 = log.clone();
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(a) = listening_addr(&line) {
                    let _ = tx.send(a);
                }
                let mut l = log2.lock().unwrap();
                if l.cap == Some(l.lines.len()) {
                    l.lines.pop_front();
                }
                l.lines.push_back(line);
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("wait task");
        let mut gw = ChildGateway {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            log,
        };
        match addr {
            Ok(a) => {
                gw.addr = a;
                gw
            }
            Err(_) => {
                let status = gw.child.try_wait().ok().flatten();
                gw.kill9();
                panic!(
                    "artgate did not start (the store must open every time); exit: {status:?}; log:\n{}",
                    gw.log_text()
                );
            }
        }
    }

    /// URL of `path` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The `/metrics` sample `name` (summed over its labels; 0 when it
    /// has none).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        super::metric(&text, name, &[])
    }

    /// Wait (at most 10 s) until no upstream fetch is in progress: a fill
    /// releases its verified body before it commits it, so a request sent
    /// the moment a client has the whole body may still join that fill
    /// (`X-Artifact-Source: remote`); after this it finds the entry.
    pub async fn fills_settled(&self) {
        let start = Instant::now();
        while self.metric("artgate_fills_inflight").await != 0.0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "an upstream fetch is still in progress after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The log lines kept so far: all of them for
    /// [`ChildGateway::start_in`], the last 400 otherwise.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap()
            .lines
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the child has exited, and how (reaped when it has).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// When the process exits, as seen by a thread the kernel wakes at the
    /// exit (a pidfd), not by polling [`ChildGateway::exited`]: on a busy
    /// machine a poll loop sharing the runtime with many clients can notice
    /// an exit long after the clients saw it. Empty until the exit (and
    /// forever when pidfds are unavailable).
    pub fn exit_time(&self) -> Arc<std::sync::OnceLock<Instant>> {
        let at = Arc::new(std::sync::OnceLock::new());
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
        if fd < 0 {
            return at;
        }
        let seen = at.clone();
        std::thread::spawn(move || {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; retried only when interrupted.
            while unsafe { libc::poll(&mut p, 1, -1) } < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
            }
            let _ = seen.set(Instant::now());
            // SAFETY: the fd was opened above and is closed once.
            unsafe { libc::close(fd) };
        });
        at
    }

    /// `kill -9` and reap the process.
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
                assert!(s.success(), "artgate exited with {s}:\n{}", self.log_text());
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

impl Drop for ChildGateway {
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
        super::gateway::shared_plugin_cache(),
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
