//! A real browser for the operator console's tests: Debian's headless
//! `chromium` driven through `chromedriver` over WebDriver ([`Browser`]),
//! with the page's console errors ([`Browser::console_errors`]) and PNG
//! screenshots ([`Browser::screenshot`]). Each [`Browser`] has its own
//! chromedriver port and profile, so tests may run one each in parallel;
//! every process it started is killed when it is dropped.

use super::free_port;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long chromedriver may take to answer `/status` with `ready`.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// How many ports chromedriver is started on before giving up (another
/// process may take a [`free_port`] before chromedriver binds it).
const PORT_ATTEMPTS: usize = 3;

/// The desktop viewport of [`Browser::start`], in CSS pixels.
const DESKTOP: (u32, u32) = (1280, 900);

/// A headless chromium driven through chromedriver; both stop when this is
/// dropped.
pub struct Browser {
    /// The WebDriver session.
    client: fantoccini::Client,
    /// chromedriver, leader of its own process group (chromium and its
    /// helpers are in the same group).
    driver: Child,
    /// chromedriver's base URL, e.g. `http://127.0.0.1:1234`.
    webdriver: String,
    /// The WebDriver session id.
    session: String,
    /// For the requests fantoccini has no command for (the browser log).
    http: reqwest::Client,
    /// The profile, `HOME` and chromedriver's log; removed on drop.
    dir: tempfile::TempDir,
}

/// The program `env_var` names, else the first of `defaults` (absolute
/// paths, or names looked up in `PATH`) that is an executable file. Panics
/// naming the program and the Debian `package` that provides it.
fn program(env_var: &str, defaults: &[&str], package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        assert!(
            is_executable(&p),
            "{env_var}={} is not an executable file; point it at one or unset it to use \
             the Debian package {package}.",
            p.display()
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    defaults
        .iter()
        .flat_map(|d| {
            if d.contains('/') {
                vec![PathBuf::from(d)]
            } else {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(d))
                    .collect()
            }
        })
        .find(|p| is_executable(p))
        .unwrap_or_else(|| {
            let looked: Vec<String> = defaults
                .iter()
                .map(|d| {
                    if d.contains('/') {
                        (*d).to_owned()
                    } else {
                        format!("{d} in PATH")
                    }
                })
                .collect();
            panic!(
                "{} is missing (looked for {}); install the Debian package {package} \
                 (apt-get install chromium chromium-driver) or set {env_var}.",
                defaults.last().copied().unwrap_or(package),
                looked.join(", ")
            )
        })
}

/// Whether `p` is a file with an execute bit.
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// chromedriver's log so far (for failure messages).
fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("(chromedriver's log {} unreadable: {e})", path.display()))
}

/// Start chromedriver on a free loopback port with its output in a file in
/// `dir` and `HOME`/XDG directories inside `dir` (chromium writes its
/// crash database and caches there, not in the real home), and wait until
/// its `/status` says ready. Returns the child and its base URL; panics
/// with its log when it never gets ready.
async fn start_driver(driver: &Path, dir: &Path, http: &reqwest::Client) -> (Child, String) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("create the browser's HOME");
    for attempt in 1..=PORT_ATTEMPTS {
        let port = free_port();
        let log_path = dir.join(format!("chromedriver-{attempt}.log"));
        let log = std::fs::File::create(&log_path).expect("create chromedriver's log");
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("chromedriver's log"))
            .stderr(log)
            // Its own process group, so Drop can kill chromium with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for chromedriver") {
                if attempt < PORT_ATTEMPTS {
                    break; // perhaps the port was taken: try another one
                }
                panic!(
                    "chromedriver exited with {status} before it was ready:\n{}",
                    read_log(&log_path)
                );
            }
            let ready = match http.get(format!("{url}/status")).send().await {
                Ok(r) => r
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .is_some_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return (child, url);
            }
            if start.elapsed() > READY_WITHIN {
                kill_group(&mut child);
                panic!(
                    "chromedriver was not ready within {READY_WITHIN:?}:\n{}",
                    read_log(&log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// SIGKILL the process group `child` leads (chromedriver, chromium and its
/// helpers) and reap `child`.
fn kill_group(child: &mut Child) {
    // SAFETY: killpg(2) on the group our own unreaped child leads (its pid
    // cannot be reused before the wait below).
    unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait();
}

impl Browser {
    /// Start chromedriver on a free loopback port and open a session:
    /// headless chromium (`--headless=new`, `--no-sandbox` since tests run
    /// as root, `--disable-dev-shm-usage`, `--disable-gpu`, a throw-away
    /// `--user-data-dir` under a tempdir) with a desktop viewport of
    /// 1280×900 CSS pixels and browser logging on. The browser is
    /// `$ARTGATE_CHROMIUM` when set, else Debian's
    /// `/usr/lib/chromium/chromium` (or `chromium` in `PATH`); chromedriver
    /// is `$ARTGATE_CHROMEDRIVER` or `chromedriver` in `PATH`. Panics,
    /// naming the package to install, when a program is missing; never
    /// skips.
    pub async fn start() -> Browser {
        Browser::launch(DESKTOP.0, DESKTOP.1, false).await
    }

    /// [`Browser::start`] with a desktop viewport of exactly `width` ×
    /// `height` CSS pixels (also below chromium's smallest window, 500
    /// pixels wide: the size is emulated), which is also the size of
    /// [`Browser::screenshot`]'s images.
    pub async fn start_sized(width: u32, height: u32) -> Browser {
        Browser::launch(width, height, false).await
    }

    /// [`Browser::start`] as a phone or tablet with a screen of `width` ×
    /// `height` CSS pixels, e.g. 390×844: the page's `<meta
    /// name="viewport">` is honoured (a page without one is laid out 980
    /// pixels wide and zoomed out, as on a real phone), touch events are on
    /// and scrollbars overlay the page.
    pub async fn start_phone(width: u32, height: u32) -> Browser {
        Browser::launch(width, height, true).await
    }

    /// Start chromedriver and open a session with a viewport of `width` ×
    /// `height`, emulating a handheld device when `mobile`.
    async fn launch(width: u32, height: u32, mobile: bool) -> Browser {
        let chromium = program(
            "ARTGATE_CHROMIUM",
            &["/usr/lib/chromium/chromium", "chromium"],
            "chromium",
        );
        let driver = program("ARTGATE_CHROMEDRIVER", &["chromedriver"], "chromium-driver");
        let dir = tempfile::Builder::new()
            .prefix("artgate-browser-")
            .tempdir()
            .expect("create the browser's tempdir");
        let http = super::http::client();
        let (mut child, webdriver) = start_driver(&driver, dir.path(), &http).await;
        let profile = dir.path().join("profile");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                    "--force-device-scale-factor=1",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-extensions",
                    "--no-proxy-server",
                    "--lang=en-US",
                ],
                // The viewport is exactly the size asked for (the window
                // is larger by its frame, and at least 500 pixels wide).
                "mobileEmulation": {
                    "deviceMetrics": {
                        "width": width,
                        "height": height,
                        "pixelRatio": 1.0,
                        "mobile": mobile,
                        "touch": mobile,
                    },
                },
            },
            "goog:loggingPrefs": { "browser": "ALL" },
            "timeouts": { "pageLoad": 30_000, "script": 30_000 },
        });
        let Value::Object(caps): Value = caps else {
            unreachable!("a JSON object literal")
        };
        let session = fantoccini::ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await;
        let client = match session {
            Ok(c) => c,
            Err(e) => {
                kill_group(&mut child);
                panic!(
                    "chromedriver could not start {} ({e}); its log:\n{}",
                    chromium.display(),
                    logs(dir.path())
                );
            }
        };
        let session = match client.session_id().await {
            Ok(Some(id)) => id,
            other => {
                kill_group(&mut child);
                panic!("the new WebDriver session has no id: {other:?}");
            }
        };
        Browser {
            client,
            driver: child,
            webdriver,
            session,
            http,
            dir,
        }
    }

    /// The fantoccini client, for everything else (goto, find, click, form
    /// fill...).
    pub fn client(&self) -> &fantoccini::Client {
        &self.client
    }

    /// Browser console messages of level SEVERE since the last call (or
    /// the start), each as `"{source}: {message}"`: uncaught exceptions
    /// (`javascript`), failed resource loads such as a 404 (`network`),
    /// CSP violations (`security`) and `console.error` (`console-api`).
    /// Messages of a page come in as it runs: those of a `goto` are all in
    /// once it returns (it waits for the `load` event), later ones (a
    /// `fetch`, the favicon, an event stream) may need polling.
    ///
    /// Read through chromedriver's legacy log endpoint, `POST
    /// /session/{id}/se/log` with `{"type":"browser"}` (chromedriver 156
    /// has no `GET /session/{id}/log`; fantoccini has no command for it).
    pub async fn console_errors(&self) -> Vec<String> {
        let url = format!("{}/session/{}/se/log", self.webdriver, self.session);
        let answer = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"type":"browser"}"#)
            .send()
            .await
            .unwrap_or_else(|e| panic!("chromedriver's browser log {url} is unreachable: {e}"));
        let status = answer.status();
        let body = answer
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("chromedriver's browser log broke off: {e}"));
        let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "chromedriver's browser log ({status}) is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        let entries = v["value"].as_array().unwrap_or_else(|| {
            panic!("chromedriver's browser log ({status}) holds no list of entries: {v}")
        });
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| {
                format!(
                    "{}: {}",
                    e["source"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Save a PNG screenshot of the current page's viewport as
    /// `target/console-screenshots/{name}.png` in the workspace (created
    /// when missing; an earlier file of that name is replaced). Returns
    /// the path. `name` is a plain file name without extension.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        assert!(
            !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']),
            "screenshot name {name:?} is not a plain file name"
        );
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the gateway crate is inside the workspace");
        let dir = workspace.join("target").join("console-screenshots");
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("the screenshot {name:?} failed: {e}"));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Close the session (chromium quits) and stop chromedriver. Panics
    /// when the session cannot be closed (the browser crashed, say);
    /// dropping a [`Browser`] instead kills both without asking.
    pub async fn close(self) {
        if let Err(e) = self.client.clone().close().await {
            panic!(
                "closing the WebDriver session failed ({e}); chromedriver's log:\n{}",
                logs(self.dir.path())
            );
        }
        // Drop kills chromedriver (and anything chromium left behind).
    }
}

/// Every chromedriver log in `dir`, the last attempt's last.
fn logs(dir: &Path) -> String {
    (1..=PORT_ATTEMPTS)
        .map(|a| dir.join(format!("chromedriver-{a}.log")))
        .filter(|p| p.exists())
        .map(|p| read_log(&p))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for Browser {
    /// Kill chromedriver, chromium and its helpers, so a failing test
    /// leaves no process behind.
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}
