//! The `artgate` binary as a child process: for tests that `kill -9` the
//! gateway or read everything it logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A gateway process; dropping it kills it.
pub struct ChildGateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The file its stderr (the log) goes to.
    pub log: PathBuf,
    child: Child,
}

/// A free port on 127.0.0.1 (bound and released; the child binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

impl ChildGateway {
    /// Write `config.toml` in `dir` (the test head for `dir`, then `tail`:
    /// `[[remote]]` and `[[token]]` tables) and start the binary on it with
    /// `ARTGATE_LOG=log_level`, stderr appended to `dir/artgate-<n>.log`.
    /// Returns once `/health` answers.
    pub async fn start(dir: &Path, tail: &str, log_level: &str) -> ChildGateway {
        std::fs::create_dir_all(dir.join("plugins")).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!("{}\n{tail}", super::gateway::config_head(dir)),
        )
        .unwrap();
        let n = std::fs::read_dir(dir)
            .map(|d| d.count())
            .unwrap_or_default();
        let log = dir.join(format!("artgate-{n}.log"));
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_artgate"))
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(addr.to_string())
            .env("ARTGATE_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the artgate binary");
        let mut gw = ChildGateway { addr, log, child };
        for _ in 0..600 {
            if let Ok(Some(status)) = gw.child.try_wait() {
                panic!("artgate exited with {status}:\n{}", gw.log_text());
            }
            if let Ok(r) = reqwest::get(gw.url("/health")).await
                && r.status() == 200
            {
                return gw;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("artgate did not become ready:\n{}", gw.log_text());
    }

    /// URL of `path` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9` and reap the process.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGateway {
    fn drop(&mut self) {
        self.kill9();
    }
}
