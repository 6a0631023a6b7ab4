//! The walkthrough of `docs/plugins.md` ("from `plugin new` to serving"),
//! followed as written: its marked blocks are run, written, applied and
//! compared in order, so an edit that breaks the tutorial fails here. Then
//! the kit's other promises about the project it made.
//!
//! A marker is an HTML comment on the line before a fence (invisible in
//! the rendered page); every fence of the walkthrough section has one:
//!
//! | marker | what the test does with the block |
//! | --- | --- |
//! | `<!-- tutorial: run -->` | runs each line with `sh -c` in the tutorial's current directory (`cd DIR` changes it); a trailing `# comment` is a claim about the line's output (below) |
//! | `<!-- tutorial: file PATH -->` | writes the block to `PATH` |
//! | `<!-- tutorial: patch PATH -->` | applies the block, a diff (` ` context, `-` removed, `+` added lines; hunks apart by `@@` lines), to `PATH` as a literal search and replace |
//! | `<!-- tutorial: config -->` | starts the test gateway with the block's `[[remote]]` tables |
//! | `<!-- tutorial: output -->` | compares the block with what the `run` block before it printed, line by line in order, except sizes, hashes and timings |
//!
//! `PATH`s are relative to the directory the tutorial starts in (a
//! temporary one). Claims: `"key": "value", ...` says the output is JSON
//! with an object that has these members (the line is repeated until it
//! is, for up to 3 minutes: an adapter loads in the background);
//! `Header: a, then b` says the line, run once per value, prints that
//! header with each value in turn.
//!
//! Stand-ins: `artgate` is the built binary and `cargo` the one running
//! the tests (offline); `/etc/artgate/plugins` and `http://127.0.0.1:8080`
//! are the test gateway's plugin directory and URL;
//! `https://downloads.example.org` is an in-process upstream that serves a
//! body at every path the tutorial fetches.

use crate::support::bytes;
use crate::support::clients::{run, run_ok};
use crate::support::eventually;
use crate::support::gateway::Gateway;
use crate::support::kit::{artgate, repo, wait_active, walk, wasm_build_env};
use crate::support::upstream::Upstream;
use artgate::store::prelude::*;
use artgate::store::{EntryClass, SledMetaStore};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The document, relative to the repository.
const DOC: &str = "docs/plugins.md";
/// The heading of the walkthrough section.
const SECTION: &str = "## Walkthrough: from `plugin new` to serving";
/// What the tutorial calls the gateway's plugin directory.
const PLUGIN_DIR: &str = "/etc/artgate/plugins";
/// What the tutorial calls the gateway.
const GATEWAY: &str = "http://127.0.0.1:8080";
/// What the tutorial calls the upstream.
const UPSTREAM: &str = "https://downloads.example.org";

/// One marked block of the document.
#[derive(Debug)]
enum Block {
    /// Shell lines (comments and empty lines dropped).
    Run(Vec<String>),
    /// Text for a file.
    File { path: String, text: String },
    /// A diff for a file.
    Patch { path: String, diff: String },
    /// `[[remote]]` tables.
    Config(String),
    /// What the previous `Run` prints.
    Output(String),
}

/// Strip up to `indent` leading spaces (a fence's indentation inside a
/// list item) from `line`.
fn dedent(line: &str, indent: usize) -> &str {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    &line[spaces.min(indent)..]
}

/// The marked blocks of `doc` in order. Panics on a marker outside the
/// walkthrough, one that no fence follows or that names no known kind, and
/// on a fence of the walkthrough without a marker (the test would not
/// follow it).
fn blocks(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut in_section = false;
    let mut seen_section = false;
    let mut marker: Option<(usize, String)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if line.starts_with("## ") || line.starts_with("### ") {
            in_section = line == SECTION;
            seen_section |= in_section;
        }
        if let Some(m) = t
            .strip_prefix("<!-- tutorial:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            assert!(
                in_section,
                "{DOC}:{}: a tutorial marker outside {SECTION:?}",
                i + 1
            );
            assert!(
                marker.is_none(),
                "{DOC}:{}: two markers before one fence",
                i + 1
            );
            marker = Some((i + 1, m.trim().to_owned()));
        } else if t.starts_with("```") {
            let at = i + 1;
            let indent = line.len() - line.trim_start().len();
            let fence: String = t.chars().take_while(|&c| c == '`').collect();
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != fence {
                body.push(dedent(lines[i], indent));
                i += 1;
            }
            assert!(i < lines.len(), "{DOC}:{at}: the fence is not closed");
            let text = body.join("\n") + "\n";
            match marker.take() {
                Some((line, m)) => out.push(block(line, &m, text)),
                None => assert!(
                    !in_section,
                    "{DOC}:{at}: a block of the walkthrough without a `<!-- tutorial: ... -->` marker"
                ),
            }
        } else if let Some((line, _)) = &marker
            && !t.is_empty()
        {
            panic!("{DOC}:{line}: no fenced block follows the marker");
        }
        i += 1;
    }
    assert!(seen_section, "{DOC} has no section {SECTION:?}");
    out
}

/// The block of marker `m` (at line `line`) with content `text`.
fn block(line: usize, m: &str, text: String) -> Block {
    let (kind, arg) = m.split_once(' ').unwrap_or((m, ""));
    let arg = arg.trim().to_owned();
    let needs_path = |arg: String| {
        assert!(!arg.is_empty(), "{DOC}:{line}: `{kind}` needs a path");
        arg
    };
    match kind {
        "run" => Block::Run(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect(),
        ),
        "file" => Block::File {
            path: needs_path(arg),
            text,
        },
        "patch" => Block::Patch {
            path: needs_path(arg),
            diff: text,
        },
        "config" => Block::Config(text),
        "output" => Block::Output(text),
        other => panic!("{DOC}:{line}: unknown tutorial marker {other:?}"),
    }
}

/// `line` without its trailing `# comment`, and the comment.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    match line.find(" #") {
        Some(i) => (line[..i].trim_end(), Some(line[i + 2..].trim())),
        None => (line, None),
    }
}

/// What a command's comment says its output shows.
#[derive(Debug)]
enum Claim {
    /// An object with these members somewhere in the JSON output.
    Json(serde_json::Map<String, serde_json::Value>),
    /// This header, with one value per run.
    Header(String, Vec<String>),
}

/// The claim of `comment`; panics on one the test cannot check.
fn claim(comment: &str) -> Claim {
    if comment.starts_with('"') {
        let members = serde_json::from_str(&format!("{{{comment}}}"))
            .unwrap_or_else(|e| panic!("claim {comment:?} is not JSON members: {e}"));
        return Claim::Json(members);
    }
    if let Some((name, values)) = comment.split_once(": ")
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Claim::Header(
            name.to_owned(),
            values
                .split(", then ")
                .map(|v| v.trim().to_owned())
                .collect(),
        );
    }
    panic!(
        "the tutorial claims {comment:?} about a command; the test checks `\"key\": \"value\", ...` and `Header: a, then b`"
    );
}

/// Whether `v` or anything in it is an object holding every member of
/// `members`.
fn has_object(v: &serde_json::Value, members: &serde_json::Map<String, serde_json::Value>) -> bool {
    match v {
        serde_json::Value::Object(o) => {
            members.iter().all(|(k, want)| o.get(k) == Some(want))
                || o.values().any(|v| has_object(v, members))
        }
        serde_json::Value::Array(a) => a.iter().any(|v| has_object(v, members)),
        _ => false,
    }
}

/// The value of header `name` in `curl --dump-header` output (the last
/// one, after any redirects).
fn header<'a>(output: &'a str, name: &str) -> Option<&'a str> {
    output
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .next_back()
}

/// `line` with what varies from run to run (sizes, hashes and timings of
/// `plugin check`) replaced by `…`.
fn loosely(line: &str) -> String {
    let masks = [
        (r"\(\d+ bytes, sha256 [0-9a-f]+\)", "(… bytes, sha256 …)"),
        (r"^compile: .*$", "compile: …"),
        (r" \[[0-9.]+ ?(ns|µs|us|ms|s)\]$", " […]"),
    ];
    let mut out = line.trim().to_owned();
    for (re, with) in masks {
        out = regex::Regex::new(re)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// Apply `diff` to `text`: each hunk's context and `-` lines, found
/// exactly once, become its context and `+` lines.
fn apply(text: &str, diff: &str, what: &str) -> String {
    let mut hunks = vec![(Vec::new(), Vec::new())];
    for line in diff.lines() {
        if line.starts_with("@@") {
            hunks.push((Vec::new(), Vec::new()));
            continue;
        }
        let (before, after) = hunks.last_mut().unwrap();
        let (mark, rest) = line.split_at(line.len().min(1));
        match mark {
            " " | "" => {
                before.push(rest);
                after.push(rest);
            }
            "-" => before.push(rest),
            "+" => after.push(rest),
            _ => panic!("{what}: a diff line starts with neither ' ', '-' nor '+': {line:?}"),
        }
    }
    let mut text = text.to_owned();
    for (before, after) in hunks.into_iter().filter(|(b, _)| !b.is_empty()) {
        let (before, after) = (before.join("\n") + "\n", after.join("\n") + "\n");
        let found = text.matches(&before).count();
        assert_eq!(
            found, 1,
            "{what}: the lines the diff changes are in the file {found} times, not once:\n{before}\nfile:\n{text}"
        );
        text = text.replacen(&before, &after, 1);
    }
    text
}

/// The tutorial in progress.
struct Tutorial {
    /// Where it starts; marker paths are relative to it.
    root: tempfile::TempDir,
    /// The shell's current directory.
    cwd: PathBuf,
    /// `artgate` and `cargo` for the shell.
    bin: PathBuf,
    /// What `https://downloads.example.org` is.
    up: Upstream,
    /// Started by the config block.
    gw: Option<Gateway>,
    /// `(name, package)` of each configured remote.
    remotes: Vec<(String, String)>,
    /// `(remote, path)` of every file a command fetches from the gateway,
    /// with the body the upstream serves there.
    fetched: Vec<(String, String, Vec<u8>)>,
    /// Files the tutorial wrote: path and text.
    written: Vec<(String, String)>,
    /// What the last `run` block printed.
    printed: String,
}

impl Tutorial {
    /// A new temporary directory with the stand-ins, and the upstream.
    async fn start() -> Tutorial {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join(".bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_artgate"), bin.join("artgate")).unwrap();
        if let Some(cargo) = std::env::var_os("CARGO") {
            std::os::unix::fs::symlink(cargo, bin.join("cargo")).unwrap();
        }
        Tutorial {
            cwd: root.path().to_path_buf(),
            root,
            bin,
            up: Upstream::start().await,
            gw: None,
            remotes: Vec::new(),
            fetched: Vec::new(),
            written: Vec::new(),
            printed: String::new(),
        }
    }

    /// Serve a body at every file a `run` line fetches through the
    /// gateway, before anything runs.
    fn serve_fetched(&mut self, blocks: &[Block]) {
        let prefix = format!("{GATEWAY}/api/v1/remote/");
        for line in blocks.iter().flat_map(|b| match b {
            Block::Run(lines) => lines.as_slice(),
            _ => &[],
        }) {
            for word in split_comment(line).0.split_whitespace() {
                if let Some(rest) = word.strip_prefix(&prefix) {
                    let (remote, path) = rest.split_once('/').expect("remote/path");
                    let body = bytes(50_000, 7 + self.fetched.len() as u64);
                    self.up.put_body(&format!("/{path}"), body.clone());
                    self.fetched
                        .push((remote.to_owned(), path.to_owned(), body));
                }
            }
        }
    }

    /// `text` with the tutorial's stand-ins replaced.
    fn substitute(&self, text: &str) -> String {
        let mut out = text.replace(UPSTREAM, &self.up.url());
        for (name, real) in [
            (
                PLUGIN_DIR,
                self.gw
                    .as_ref()
                    .map(|g| g.plugin_dir().display().to_string()),
            ),
            (GATEWAY, self.gw.as_ref().map(|g| g.url(""))),
        ] {
            if out.contains(name) {
                let real = real.unwrap_or_else(|| {
                    panic!("the tutorial uses {name} before it configures a remote: {text}")
                });
                out = out.replace(name, &real);
            }
        }
        out
    }

    /// `sh -c line` in the current directory, with the stand-ins on `PATH`.
    fn sh(&self, line: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(line).current_dir(&self.cwd);
        wasm_build_env(&mut c);
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", self.bin.display()))
            .env("ARTGATE_LOG", "warn")
            .env_remove("ARTGATE_CONFIG")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        c
    }

    /// Run `command` (the tutorial's `line` with the stand-ins replaced)
    /// and return what it printed; panics, naming the line, unless it
    /// succeeds.
    async fn run_ok(&self, line: &str, command: &str) -> String {
        let r = run(self.sh(command)).await;
        assert!(
            r.ok,
            "the tutorial's `{line}` failed (run as `{command}` in {}):\n{}",
            self.cwd.display(),
            r.output
        );
        r.output
    }

    /// Run one line of a `run` block and check its claim.
    async fn run_line(&mut self, line: &str) {
        let (command, comment) = split_comment(line);
        let command = self.substitute(command);
        if let Some(dir) = command.strip_prefix("cd ") {
            self.cwd = self.cwd.join(dir.trim());
            assert!(
                self.cwd.is_dir(),
                "`{line}`: no directory {}",
                self.cwd.display()
            );
            return;
        }
        match comment.map(claim) {
            None => {
                let out = self.run_ok(line, &command).await;
                self.printed.push_str(&out);
            }
            Some(Claim::Json(members)) => {
                let out = eventually(
                    &format!("`{line}` to print {members:?}"),
                    Duration::from_secs(180),
                    || {
                        let cmd = self.sh(&command);
                        let members = &members;
                        async move {
                            let r = run(cmd).await;
                            let v = serde_json::from_str::<serde_json::Value>(&r.output).ok()?;
                            (r.ok && has_object(&v, members)).then_some(r.output)
                        }
                    },
                )
                .await;
                self.printed.push_str(&out);
            }
            Some(Claim::Header(name, values)) => {
                for want in values {
                    // A body is released before its commit: let the fill
                    // of the previous run finish storing it.
                    if let Some(gw) = &self.gw {
                        gw.fills_settled().await;
                    }
                    let out = self.run_ok(line, &command).await;
                    assert_eq!(
                        header(&out, &name),
                        Some(want.as_str()),
                        "`{line}` printed:\n{out}"
                    );
                    self.printed.push_str(&out);
                }
            }
        }
    }

    /// Follow one block.
    async fn step(&mut self, block: &Block) {
        match block {
            Block::Run(lines) => {
                self.printed.clear();
                for line in lines {
                    self.run_line(line).await;
                }
            }
            Block::File { path, text } => {
                let file = self.root.path().join(path);
                let parent = file.parent().unwrap();
                assert!(
                    parent.is_dir(),
                    "the tutorial writes {path}, but there is no {}",
                    parent.display()
                );
                std::fs::write(&file, text).unwrap();
                self.written.push((path.clone(), text.clone()));
            }
            Block::Patch { path, diff } => {
                let file = self.root.path().join(path);
                let text = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("the tutorial changes {path}: {e}"));
                std::fs::write(&file, apply(&text, diff, path)).unwrap();
            }
            Block::Config(toml_text) => {
                assert!(self.gw.is_none(), "the tutorial configures twice");
                let text = self.substitute(toml_text);
                let parsed: toml::Table = toml::from_str(&text).expect("the config block is TOML");
                for r in parsed["remote"].as_array().expect("[[remote]] tables") {
                    self.remotes.push((
                        r["name"].as_str().unwrap().to_owned(),
                        r["package"].as_str().unwrap().to_owned(),
                    ));
                }
                let gw = Gateway::start(&text).await;
                // The adapter is not there before the tutorial deploys it.
                for (_, package) in &self.remotes {
                    let list = gw.plugin_list().await;
                    assert!(
                        !list.iter().any(|p| p["package_types"]
                            .as_array()
                            .is_some_and(|t| t.iter().any(|t| t == package.as_str()))),
                        "{package} is served before the tutorial deploys it: {list:?}"
                    );
                }
                self.gw = Some(gw);
            }
            Block::Output(expected) => {
                let printed: Vec<String> = self.printed.lines().map(loosely).collect();
                let mut at = 0;
                for want in expected.lines().map(loosely).filter(|l| !l.is_empty()) {
                    match printed[at..].iter().position(|l| *l == want) {
                        Some(i) => at += i + 1,
                        None => panic!(
                            "the tutorial shows the line\n  {want}\nwhich the commands did not print (in that order); they printed:\n{}",
                            self.printed
                        ),
                    }
                }
            }
        }
    }
}

/// Open the index of a gateway that just stopped (sled lets go of its
/// lock a moment after the gateway's task ends).
async fn open_index(data: &Path) -> SledMetaStore {
    eventually(
        "the stopped gateway's index",
        Duration::from_secs(10),
        || async { SledMetaStore::open(&data.join("index")).ok() },
    )
    .await
}

/// `docs/plugins.md`'s walkthrough, followed as written: `plugin new`
/// makes a project that builds for wasm32-wasip2 with the tutorial's
/// change, passes its golden cases and the one the tutorial adds with the
/// output shown, and once renamed into the plugin directory of a running
/// gateway serves the tutorial's download (`remote`, then `cache`); the
/// gateway stores the added case's file as the case says (class and TTL).
/// Then the kit's other promises about that project: it stands alone (its
/// own SDK and WIT copy, a `Cargo.lock`, nothing that names this
/// checkout), `plugin new` refuses to overwrite it, and `plugin sdk` puts
/// back an SDK an author changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_walkthrough_works_as_written() {
    let doc = std::fs::read_to_string(repo().join(DOC)).unwrap();
    let blocks = blocks(&doc);
    for kind in ["run", "file", "patch", "config", "output"] {
        assert!(
            blocks
                .iter()
                .any(|b| format!("{b:?}").to_lowercase().starts_with(kind)),
            "the walkthrough has no `{kind}` block"
        );
    }
    let mut t = Tutorial::start().await;
    t.serve_fetched(&blocks);
    assert!(
        !t.fetched.is_empty(),
        "the tutorial fetches nothing through the gateway"
    );
    for block in &blocks {
        t.step(block).await;
    }

    // What the tutorial fetched is in the store now, fetched from the
    // upstream once; curl saved what the upstream has.
    let gw = t.gw.take().expect("the tutorial configures a remote");
    let (remote, package) = t.remotes.first().cloned().expect("a remote");
    let status = wait_active(&gw, &package).await;
    assert_eq!(status["package_types"], serde_json::json!([package]));
    // The template declares the adapter stateless: instances are reused.
    assert_eq!(status["stateless"], true);
    assert_eq!(status["warm_instances"], 10_000);
    for (remote, path, body) in &t.fetched {
        let r = reqwest::get(gw.url(&format!("/api/v1/remote/{remote}/{path}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["x-artifact-source"], "cache", "{path}");
        assert_eq!(&r.bytes().await.unwrap().to_vec(), body, "{path}");
        assert_eq!(t.up.seen(&format!("/{path}")).gets, 1, "{path}");
        let saved = t.cwd.join(path.rsplit('/').next().unwrap());
        if saved.exists() {
            assert_eq!(&std::fs::read(&saved).unwrap(), body, "{}", saved.display());
        }
    }

    // Each golden case the tutorial adds holds in the gateway too: its file
    // is stored with the class and TTL the case expects.
    let mut stored = Vec::new();
    for (path, text) in &t.written {
        let Ok(case) = toml::from_str::<toml::Table>(text) else {
            continue;
        };
        let Some(plan) = case
            .get("expect")
            .and_then(|e| e.get("forward"))
            .and_then(|f| f.get("plan"))
        else {
            continue;
        };
        assert!(
            !case.contains_key("remote"),
            "{path}: a case with its own [remote] settings"
        );
        let req_path = case["request"]["path"].as_str().expect("request.path");
        let key = plan.get("key").and_then(|k| k.as_str()).unwrap_or(req_path);
        let class = plan["class"].as_str().expect("plan.class").to_owned();
        let ttl = plan.get("ttl-secs").and_then(|t| t.as_integer());
        let body = bytes(1000, 99);
        t.up.put_body(&format!("/{req_path}"), body.clone());
        let r = reqwest::get(gw.url(&format!("/api/v1/remote/{remote}/{req_path}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{req_path}");
        assert_eq!(r.bytes().await.unwrap().to_vec(), body);
        stored.push((path.clone(), key.to_owned(), class, ttl));
    }
    assert!(
        !stored.is_empty(),
        "the tutorial adds no golden case with a plan"
    );
    gw.fills_settled().await;
    let dir = gw.stop().await;
    let index = open_index(&dir.path().join("data")).await;
    for (case, key, class, ttl) in stored {
        let entry = index
            .get_entry(&remote, &key)
            .unwrap()
            .unwrap_or_else(|| panic!("{case}: {key} is not stored in remote {remote}"));
        let want = match class.as_str() {
            "mutable" => EntryClass::Mutable,
            "immutable" => EntryClass::Immutable,
            other => panic!("{case}: class {other}"),
        };
        assert_eq!(entry.class, want, "{case}: {key}");
        if let Some(ttl) = ttl {
            assert_eq!(entry.ttl_ms, Some(ttl as u64 * 1000), "{case}: {key}");
        }
    }
    drop(index);

    // The project stands alone.
    let proj = t.cwd.clone();
    let name = proj.file_name().unwrap().to_str().unwrap().to_owned();
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "README.md",
        "cases/01-file.toml",
        "artgate-sdk/Cargo.toml",
        "artgate-sdk/wit/adapter.wit",
    ] {
        assert!(proj.join(f).is_file(), "{f} missing");
    }
    let manifest = std::fs::read_to_string(proj.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("crate-type = [\"cdylib\"]"), "{manifest}");
    assert!(
        manifest.contains("artgate-sdk = { path = \"artgate-sdk\" }"),
        "{manifest}"
    );
    let here = repo().canonicalize().unwrap();
    for entry in walk(&proj, &["target"]) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(here.to_str().unwrap()),
            "{} names the artgate checkout",
            entry.display()
        );
    }
    // A second `new` into the same directory refuses to overwrite it.
    let again = run(artgate(&[
        "plugin",
        "new",
        &name,
        "--dir",
        proj.to_str().unwrap(),
    ]))
    .await;
    assert!(
        !again.ok && again.output.contains("not empty"),
        "{}",
        again.output
    );
    // `plugin sdk` puts back a copy an author changed.
    let sdk_lib = proj.join("artgate-sdk/src/lib.rs");
    let original = std::fs::read_to_string(&sdk_lib).unwrap();
    std::fs::write(&sdk_lib, "compile_error!(\"edited\");").unwrap();
    let out = run_ok(artgate(&["plugin", "sdk", "--dir", proj.to_str().unwrap()])).await;
    assert!(out.contains("artgate-sdk/src/lib.rs"), "{out}");
    assert_eq!(std::fs::read_to_string(&sdk_lib).unwrap(), original);
}

/// The diff of a `patch` block applies as search and replace, hunk by
/// hunk, and refuses lines that are not in the file exactly once.
#[test]
fn a_tutorial_patch_applies_as_search_and_replace() {
    let text = "a\nb\nc\nb\n";
    assert_eq!(apply(text, " a\n-b\n+B\n c\n", "t"), "a\nB\nc\nb\n");
    assert_eq!(apply(text, " a\n@@\n c\n+C\n", "t"), "a\nb\nc\nC\nb\n");
    let twice = std::panic::catch_unwind(|| apply(text, "-b\n+B\n", "t"));
    assert!(twice.is_err());
    let missing = std::panic::catch_unwind(|| apply(text, "-x\n+X\n", "t"));
    assert!(missing.is_err());
}

/// Markers are read from HTML comments before fences; an unmarked fence
/// of the walkthrough, a marker without a fence and an unknown marker
/// are refused.
#[test]
fn tutorial_markers_are_read_and_checked() {
    let doc = format!(
        "# x\n```sh\nfree\n```\n{SECTION}\n\n1. Step:\n\n   <!-- tutorial: run -->\n   ```sh\n   cd dl   # x\n   # a comment\n   ls\n   ```\n\n   <!-- tutorial: file dl/a.toml -->\n   ```toml\n   a = 1\n     b = 2\n   ```\n## Next\n```\nfree\n```\n"
    );
    let b = blocks(&doc);
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(
        matches!(&b[0], Block::Run(l) if l == &["cd dl   # x", "ls"]),
        "{b:?}"
    );
    assert!(
        matches!(&b[1], Block::File { path, text } if path == "dl/a.toml" && text == "a = 1\n  b = 2\n"),
        "{b:?}"
    );
    for bad in [
        format!("{SECTION}\n```sh\nls\n```\n"),
        format!("{SECTION}\n<!-- tutorial: run -->\ntext\n```sh\nls\n```\n"),
        format!("{SECTION}\n<!-- tutorial: jump -->\n```sh\nls\n```\n"),
        "<!-- tutorial: run -->\n```sh\nls\n```\n".to_owned(),
    ] {
        assert!(std::panic::catch_unwind(|| blocks(&bad)).is_err(), "{bad}");
    }
    assert_eq!(
        loosely("PASS 01-file.toml (a versioned file) [351.6µs]"),
        "PASS 01-file.toml (a versioned file) […]"
    );
    assert_eq!(
        loosely("component: x.wasm (693349 bytes, sha256 c60c8e1b98827a2b)"),
        "component: x.wasm (… bytes, sha256 …)"
    );
    assert_eq!(loosely("4 passed, 0 failed"), "4 passed, 0 failed");
    assert!(
        matches!(claim("X-A: remote, then cache"), Claim::Header(n, v) if n == "X-A" && v == ["remote", "cache"])
    );
    assert!(matches!(claim("\"name\": \"dl\""), Claim::Json(m) if m["name"] == "dl"));
    assert!(std::panic::catch_unwind(|| claim("fetched once")).is_err());
}
