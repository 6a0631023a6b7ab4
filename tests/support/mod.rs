//! Shared test harness: a fault-switchable upstream, the gateway in
//! process and as a child process, HTTP helpers, and the servers the
//! adapters' tests run against (see the table in `tests/e2e.rs`).

pub mod bazel;
pub mod browser;
pub mod bst;
pub mod buildgrid;
pub mod child;
pub mod clients;
pub mod deb_tools;
pub mod gateway;
pub mod git_http;
pub mod grpc;
pub mod http;
pub mod kit;
pub mod maven_tools;
pub mod mirror;
pub mod nginx;
pub mod npm;
pub mod pypi;
pub mod registry;
pub mod rpm_tools;
pub mod seaweed;
pub mod serve;
pub mod upstream;

use sha2::Digest as _;

/// One KiB.
pub const KIB: usize = 1 << 10;
/// One MiB.
pub const MIB: usize = 1 << 20;

/// `wasm` (a component or module) with a custom section `name` holding
/// `data` appended: still valid, with a sha256 of its own.
pub fn with_custom_section(wasm: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let size = 1 + name.len() + data.len();
    assert!(size < 128 && name.len() < 128, "one-byte LEB128 sizes only");
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    out.push(size as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Lowercase hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift) of length `n`.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Send raw bytes to `addr` and return everything the server answers
/// until it closes the connection (or 5 s pass).
pub async fn raw_request(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Sum of the samples of metric `name` in the Prometheus text `text` whose
/// labels contain every one of `labels` (e.g. `remote="el"`); `None` when
/// there is no such sample.
pub fn metric_opt(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|x| rest.contains(x)))
                .then(|| value.parse::<f64>().unwrap())
        })
        .reduce(|a, b| a + b)
}

/// [`metric_opt`], 0 when there is no such sample.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    metric_opt(text, name, labels).unwrap_or(0.0)
}

/// Poll `f` every 20 ms until it gives `Some`; panic naming `what` after
/// `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: std::time::Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A free port on 127.0.0.1 (bound and released: nothing listens on it
/// until a child binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Make `cmd`'s process die with the test process (SIGKILL when its
/// parent exits), so a server a test started never outlives the test.
pub fn dies_with_test(cmd: &mut std::process::Command) -> &mut std::process::Command {
    // SAFETY: prctl(2) is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Stop a server the test started: SIGTERM (to its process group when
/// `group`, for servers that start children of their own), then SIGKILL
/// when it has not exited after `grace`. Nothing when it has exited.
pub fn stop_child(child: &mut std::process::Child, grace: std::time::Duration, group: bool) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = child.id() as libc::pid_t;
    let signal = |sig| {
        // SAFETY: kill(2)/killpg(2) on our own unreaped child (its pid
        // cannot be reused before it is waited for).
        unsafe {
            if group {
                libc::killpg(pid, sig);
            } else {
                libc::kill(pid, sig);
            }
        }
    };
    signal(libc::SIGTERM);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal(libc::SIGKILL);
    let _ = child.wait();
}

/// Poll `cond` every 50 ms until it holds; panic with `what` after
/// `timeout`.
pub async fn wait_until(what: &str, timeout: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Names of the files in `dir` (none when it does not exist).
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Names of the spool files of the store in `data` (in `data/tmp`).
pub fn spool_files(data: &std::path::Path) -> Vec<String> {
    files_in(&data.join("tmp"))
        .into_iter()
        .filter(|n| n.starts_with("spool-"))
        .collect()
}
