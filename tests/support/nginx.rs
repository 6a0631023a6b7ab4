//! nginx running the deployment guide's configuration
//! (`docs/cluster/nginx.conf`) in front of cluster nodes on 127.0.0.1:
//! the lines the guide marks `# test:` get the nodes' addresses, a free
//! port and paths in a temporary directory; every other line is the
//! guide's. Stopped when dropped.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx.
pub struct Nginx {
    dir: tempfile::TempDir,
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Nginx {
    /// Start nginx on the guide's config with `nodes` (three) as the
    /// upstream servers.
    pub async fn start_guide(nodes: &[SocketAddr; 3]) -> Nginx {
        let guide = super::kit::repo().join("docs/cluster/nginx.conf");
        let text = std::fs::read_to_string(&guide).expect("docs/cluster/nginx.conf");
        let dir = tempfile::tempdir().expect("tempdir");
        // nginx's workers run as nobody: they must reach the directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = super::free_port();
        let d = dir.path().display();
        let mut replaced = Vec::new();
        let conf: Vec<String> = text
            .lines()
            .map(|line| {
                let Some((_, mark)) = line.split_once("# test: ") else {
                    return line.to_owned();
                };
                let indent = &line[..line.len() - line.trim_start().len()];
                replaced.push(mark.trim().to_owned());
                let new = match mark.trim() {
                    "pid" => format!("pid {d}/nginx.pid;"),
                    "error_log" => format!("error_log {d}/error.log warn;"),
                    "access_log" => format!("access_log {d}/access.log;"),
                    "temp path" => format!("client_body_temp_path {d}/body;"),
                    "listen" => format!("listen 127.0.0.1:{port};"),
                    node => {
                        let i = ["node a", "node b", "node c"]
                            .iter()
                            .position(|n| *n == node)
                            .unwrap_or_else(|| panic!("unknown test mark {node:?} in the guide"));
                        let rest = line.trim_start().trim_start_matches("server ");
                        let (_, options) = rest.split_once(' ').expect("server ADDR OPTIONS");
                        let options = options.split('#').next().unwrap_or("").trim();
                        format!("server {} {options}", nodes[i])
                    }
                };
                format!("{indent}{new}")
            })
            .collect();
        assert_eq!(
            replaced.len(),
            8,
            "the guide's config must mark pid, error_log, access_log, temp path, listen and three nodes: {replaced:?}"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf.join("\n")).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        super::dies_with_test(&mut cmd);
        let mut child = cmd.spawn().expect("nginx (./test.sh installs nginx-light)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if let Some(status) = child.try_wait().ok().flatten() {
                panic!(
                    "nginx exited ({status}): {}",
                    std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Nginx { dir, child, addr }
    }

    /// URL of `path` through nginx.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Its error log.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: a fast shutdown, in which the master stops its workers
        // too (a SIGKILLed master would leave them serving the port).
        super::stop_child(&mut self.child, Duration::from_secs(3), false);
    }
}
