//! Unit tests of parsing and validation.

use super::keys::edit_distance;
use super::validate::{GIB, MIB};
use super::*;
use std::io::Write;

fn no_env(_: &str) -> Option<OsString> {
    None
}

fn ok(text: &str) -> Config {
    match parse_with_env(text, Path::new(""), &no_env) {
        Ok(c) => c,
        Err(e) => panic!("config rejected: {e}\n---\n{text}"),
    }
}

/// The error message for `text`; panics when it is accepted.
fn err(text: &str) -> String {
    err_env(text, &no_env)
}

fn err_env(text: &str, env: &dyn Fn(&str) -> Option<OsString>) -> String {
    match parse_with_env(text, Path::new(""), env) {
        Ok(_) => panic!("config accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{p:?} not in error message:\n{msg}");
    }
}

fn remote(body: &str) -> String {
    format!(
        "[[remote]]\nname = \"alma\"\npackage = \"rpm\"\nupstream = \"https://repo.example.org/alma\"\n{body}\n"
    )
}

#[test]
fn empty_file_gives_documented_defaults() {
    let c = ok("");
    assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert!(c.server.tls.is_none());
    assert_eq!(c.server.max_connections, 4096);
    assert_eq!(c.server.max_header_bytes, 16 * 1024);
    assert_eq!(c.server.max_headers, 100);
    assert_eq!(c.server.max_uri_bytes, 8 * 1024);
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.server.body_read_timeout, Duration::from_secs(30));
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.server.max_inspect_bytes, 1024 * 1024);
    assert_eq!(c.storage.dir, PathBuf::from("./artgate-data"));
    assert_eq!(c.storage.max_size, 50 * GIB);
    assert_eq!(c.plugins.dir, PathBuf::from("./plugins"));
    assert_eq!(c.plugins.cache_dir, None);
    assert_eq!(
        c.plugin_cache_dir(),
        PathBuf::from("./artgate-data/plugin-cache")
    );
    assert_eq!(c.plugins.memory_limit, 64 * MIB);
    assert_eq!(c.plugins.call_timeout, Duration::from_millis(200));
    assert_eq!(c.plugins.reload_debounce, Duration::from_millis(200));
    assert_eq!(c.plugins.max_instances, 256);
    assert_eq!(c.plugins.http_timeout, Duration::from_secs(10));
    assert_eq!(c.plugins.http_max_body, 1024 * 1024);
    assert_eq!(c.plugins.max_file_size, 64 * 1024 * 1024);
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.upstream.first_byte_timeout, Duration::from_secs(30));
    assert_eq!(c.upstream.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.upstream.retries, 1);
    assert!(c.upstream.ca_file.is_none());
    assert_eq!(c.upstream.max_redirects, 5);
    assert!(c.remotes.is_empty());
}

#[test]
fn remote_defaults() {
    let c = ok(&remote(""));
    let r = &c.remotes[0];
    assert_eq!(r.mode, RemoteMode::PullThrough);
    assert_eq!(r.mutable_ttl, Duration::from_secs(600));
    assert_eq!(r.negative_ttl, Duration::from_secs(60));
    assert!(r.check_mutable_updates);
    assert_eq!(r.follow_redirects, RedirectPolicy::SameHost);
    assert!(r.credentials.is_none());
    assert!(r.allow.is_empty() && r.allows("anything"));
    assert!(r.options.is_empty());
    assert_eq!(r.max_size, None);
    assert_eq!(c.remote("alma").map(|r| r.package.as_str()), Some("rpm"));
    assert!(c.remote("nope").is_none());
}

#[test]
fn every_key_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::write(dir.path().join(f), "pem").unwrap();
    }
    std::fs::write(dir.path().join("token"), "tok-from-file\n").unwrap();
    let text = r#"
[server]
listen = "[::]:9090"
tls_cert = "cert.pem"
tls_key = "key.pem"
max_connections = 10
max_header_bytes = "32KiB"
max_headers = 50
max_uri_bytes = 4096
header_read_timeout = "5s"
idle_timeout = 120
shutdown_grace = "0s"
max_request_body_inspect = "2MiB"

[storage]
dir = "/srv/artgate"
max_size = "512MB"

[plugins]
dir = "plugins.d"
cache_dir = "/var/cache/artgate"
memory_limit = "128MiB"
call_timeout = "1s"
reload_debounce = "500ms"
max_instances = 32
http_timeout = "1m"
http_max_body = 65536
max_file_size = "20MiB"

[upstream]
connect_timeout = "3s"
first_byte_timeout = "1h30m"
idle_timeout = "90s"
retries = 0
ca_file = "ca.pem"
max_redirects = 2

[[remote]]
name = "alma"
package = "rpm"
upstream = ["https://a.example.org/alma/", "http://b.example.org:8081/x"]
allow = ["^9/", "^8/"]
immutable_patterns = ['\.rpm$']
mutable_patterns = ['repomd\.xml$']
mutable_ttl = "30m"
negative_ttl = 0
check_mutable_updates = false
follow_redirects = "any"
username = "me"
password = "hunter2"
max_size = "1GiB"

[remote.options]
arch = "x86_64"
depth = 3
ratio = 0.5
strict = true

[[remote]]
name = "ghcr"
package = "docker"
upstream = "https://ghcr.io"
token_file = "token"
follow_redirects = false

[[remote]]
name = "cas"
package = "cas"
hosted = true
"#;
    let c = parse_with_env(text, dir.path(), &no_env).unwrap();
    let s = &c.server;
    assert_eq!(s.listen, "[::]:9090".parse().unwrap());
    let tls = s.tls.as_ref().unwrap();
    assert_eq!(tls.cert, dir.path().join("cert.pem"));
    assert_eq!(tls.key, dir.path().join("key.pem"));
    assert_eq!(s.max_connections, 10);
    assert_eq!(s.max_header_bytes, 32 * 1024);
    assert_eq!(s.max_headers, 50);
    assert_eq!(s.max_uri_bytes, 4096);
    assert_eq!(s.header_read_timeout, Duration::from_secs(5));
    assert_eq!(s.idle_timeout, Duration::from_secs(120));
    assert_eq!(s.shutdown_grace, Duration::ZERO);
    assert_eq!(s.max_inspect_bytes, 2 * 1024 * 1024);
    assert_eq!(c.storage.dir, PathBuf::from("/srv/artgate"));
    assert_eq!(c.storage.max_size, 512_000_000);
    assert_eq!(c.plugins.dir, dir.path().join("plugins.d"));
    assert_eq!(
        c.plugins.cache_dir,
        Some(PathBuf::from("/var/cache/artgate"))
    );
    assert_eq!(c.plugin_cache_dir(), PathBuf::from("/var/cache/artgate"));
    assert_eq!(c.plugins.memory_limit, 128 * MIB);
    assert_eq!(c.plugins.call_timeout, Duration::from_secs(1));
    assert_eq!(c.plugins.reload_debounce, Duration::from_millis(500));
    assert_eq!(c.plugins.max_instances, 32);
    assert_eq!(c.plugins.http_timeout, Duration::from_secs(60));
    assert_eq!(c.plugins.http_max_body, 65536);
    assert_eq!(c.plugins.max_file_size, 20 * 1024 * 1024);
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(3));
    assert_eq!(c.upstream.first_byte_timeout, Duration::from_secs(5400));
    assert_eq!(c.upstream.idle_timeout, Duration::from_secs(90));
    assert_eq!(c.upstream.retries, 0);
    assert_eq!(c.upstream.ca_file, Some(dir.path().join("ca.pem")));
    assert_eq!(c.upstream.max_redirects, 2);

    let alma = &c.remotes[0];
    assert_eq!(alma.name, "alma");
    assert_eq!(alma.package, "rpm");
    assert_eq!(alma.mode, RemoteMode::PullThrough);
    let ups: Vec<String> = alma.upstreams.iter().map(upstream_display).collect();
    assert_eq!(
        ups,
        ["https://a.example.org/alma", "http://b.example.org:8081/x"]
    );
    assert!(alma.allows("9/BaseOS/repodata/repomd.xml") && !alma.allows("7/os"));
    assert_eq!(alma.immutable_patterns, [r"\.rpm$"]);
    assert_eq!(alma.mutable_patterns, [r"repomd\.xml$"]);
    assert_eq!(alma.mutable_ttl, Duration::from_secs(1800));
    assert_eq!(alma.negative_ttl, Duration::ZERO);
    assert!(!alma.check_mutable_updates);
    assert_eq!(alma.follow_redirects, RedirectPolicy::Any);
    match &alma.credentials {
        Some(Credentials::Basic { username, password }) => {
            assert_eq!(username, "me");
            assert_eq!(password.0, "hunter2");
        }
        other => panic!("{other:?}"),
    }
    let opts: Vec<(&str, &str)> = alma
        .options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        opts,
        [
            ("arch", "x86_64"),
            ("depth", "3"),
            ("ratio", "0.5"),
            ("strict", "true")
        ]
    );
    assert_eq!(alma.max_size, Some(GIB));

    let ghcr = &c.remotes[1];
    assert_eq!(ghcr.follow_redirects, RedirectPolicy::Never);
    match &ghcr.credentials {
        Some(Credentials::Bearer { token }) => assert_eq!(token.0, "tok-from-file"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.remotes[2].mode, RemoteMode::Hosted);
    assert!(c.remotes[2].upstreams.is_empty());
}

#[test]
fn unknown_keys_are_named_with_table_and_line() {
    let m = err("sever = 1\n");
    assert_contains(
        &m,
        &[
            "unknown key \"sever\"",
            "the top level",
            "line 1",
            "did you mean \"server\"",
        ],
    );
    let m = err("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n");
    assert_contains(&m, &["\"lisen\"", "[server]", "line 3", "\"listen\""]);
    let m = err("[storage]\nsize = 1\n");
    assert_contains(&m, &["\"size\"", "[storage]", "line 2"]);
    let m = err("[plugins]\nwatch = true\n");
    assert_contains(
        &m,
        &["\"watch\"", "[plugins]", "known keys: dir, cache_dir"],
    );
    let m = err("[upstream]\nretry = 3\n");
    assert_contains(&m, &["\"retry\"", "[upstream]", "did you mean \"retries\""]);
    let text = format!(
        "{}[[remote]]\nname = \"alma2\"\npackage = \"rpm\"\nupstrem = \"https://x\"\n",
        remote("")
    );
    let m = err(&text);
    assert_contains(
        &m,
        &[
            "unknown key \"upstrem\" in [[remote]] #2 (\"alma2\")",
            "line 9",
            "did you mean \"upstream\"",
        ],
    );
    // Dotted keys and inline tables are checked too.
    let m = err("server.bogus = 1\n");
    assert_contains(&m, &["\"bogus\"", "[server]"]);
    // The error variant carries the key.
    let e = parse_with_env("[storage]\nsize = 1\n", Path::new(""), &no_env).unwrap_err();
    assert_eq!(e.key(), Some("size"));
    // Options are free-form.
    ok(&remote("[remote.options]\nanything_goes = 1\n"));
}

#[test]
fn remote_as_single_table_is_explained() {
    let m = err("[remote]\nname = \"x\"\n");
    assert_contains(&m, &["remote", "[[remote]]"]);
}

#[test]
fn type_errors_name_the_line() {
    let m = err("[server]\n\nlisten = 5\n");
    assert_contains(&m, &["line 3", "listen"]);
    let m = err("[storage]\nmax_size = -1\n");
    assert_contains(&m, &["line 2", "max_size", "size"]);
    let m = err(&remote("check_mutable_updates = \"yes\""));
    assert_contains(&m, &["check_mutable_updates", "line"]);
    let m = err("[server\n");
    assert_contains(&m, &["line 1"]);
}

#[test]
fn bad_durations_are_rejected_naming_the_key() {
    let m = err(&remote("mutable_ttl = \"ten minutes\""));
    assert_contains(
        &m,
        &["remote \"alma\": mutable_ttl: invalid duration \"ten minutes\""],
    );
    let m = err("[server]\nheader_read_timeout = \"5 parsecs\"\n");
    assert_contains(
        &m,
        &["[server]: header_read_timeout: invalid duration \"5 parsecs\""],
    );
    let m = err("[plugins]\ncall_timeout = \"0s\"\n");
    assert_contains(&m, &["[plugins]: call_timeout: must be greater than zero"]);
    let m = err("[server]\nbody_read_timeout = 0\n");
    assert_contains(
        &m,
        &["[server]: body_read_timeout: must be greater than zero"],
    );
    let m = err("[upstream]\nconnect_timeout = 0\n");
    assert_contains(
        &m,
        &["[upstream]: connect_timeout: must be greater than zero"],
    );
    // Durations that may be zero.
    let c = ok(&remote("mutable_ttl = 0\nnegative_ttl = \"0s\""));
    assert_eq!(c.remotes[0].mutable_ttl, Duration::ZERO);
    assert_eq!(
        ok("[server]\nidle_timeout = \"1h 30m\"\n")
            .server
            .idle_timeout,
        Duration::from_secs(5400)
    );
}

#[test]
fn bad_sizes_are_rejected_naming_the_key() {
    let m = err("[storage]\nmax_size = \"lots\"\n");
    assert_contains(&m, &["[storage]: max_size: invalid size \"lots\""]);
    let m = err("[storage]\nmax_size = \"GiB\"\n");
    assert_contains(&m, &["[storage]: max_size: invalid size"]);
    let m = err("[storage]\nmax_size = 0\n");
    assert_contains(&m, &["[storage]: max_size: must be greater than zero"]);
    let m = err("[plugins]\nmemory_limit = \"5GiB\"\n");
    assert_contains(&m, &["[plugins]: memory_limit:", "4GiB"]);
    let m = err("[server]\nmax_request_body_inspect = \"5GiB\"\n");
    assert_contains(&m, &["[server]: max_request_body_inspect: ", "too large"]);
    let m = err(&remote("max_size = \"12 parsecs\""));
    assert_contains(&m, &["remote \"alma\": max_size: invalid size"]);
    assert_eq!(
        ok("[storage]\nmax_size = \"1.5 KiB\"\n").storage.max_size,
        1536
    );
    assert_eq!(ok("[storage]\nmax_size = \"2k\"\n").storage.max_size, 2000);
}

#[test]
fn limits_must_be_positive() {
    for key in [
        "max_connections",
        "max_headers",
        "max_header_bytes",
        "max_uri_bytes",
    ] {
        let m = err(&format!("[server]\n{key} = 0\n"));
        assert_contains(
            &m,
            &[&format!("[server]: {key}: must be greater than zero")],
        );
    }
    let m = err("[plugins]\nmax_instances = 0\n");
    assert_contains(&m, &["[plugins]: max_instances: must be greater than zero"]);
    let m = err("[plugins]\nhttp_max_body = 0\n");
    assert_contains(&m, &["[plugins]: http_max_body:"]);
    let m = err("[plugins]\nmax_file_size = 0\n");
    assert_contains(&m, &["[plugins]: max_file_size: must be greater than zero"]);
}

#[test]
fn max_concurrent_calls_defaults_to_16_and_stays_within_max_instances() {
    assert_eq!(ok("").plugins.max_concurrent_calls, 16);
    assert_eq!(ok("").plugins.queue_timeout, Duration::from_secs(2));
    assert_eq!(
        ok("[plugins]\nqueue_timeout = \"0s\"\n")
            .plugins
            .queue_timeout,
        Duration::ZERO
    );
    assert_eq!(
        ok("[plugins]\nmax_instances = 4\n")
            .plugins
            .max_concurrent_calls,
        4
    );
    let c = ok("[plugins]\nmax_concurrent_calls = 3\n");
    assert_eq!(c.plugins.max_concurrent_calls, 3);
    let m = err("[plugins]\nmax_concurrent_calls = 0\n");
    assert_contains(
        &m,
        &["[plugins]: max_concurrent_calls: must be greater than zero"],
    );
    let m = err("[plugins]\nmax_instances = 8\nmax_concurrent_calls = 9\n");
    assert_contains(
        &m,
        &[
            "[plugins]: max_concurrent_calls:",
            "more than max_instances (8)",
        ],
    );
}

#[test]
fn warm_instances_name_adapters_and_count_calls() {
    let c = ok("[plugins]\nwarm_instances = { pypi = 64, my-format = 2 }\n");
    assert_eq!(c.plugins.warm_instances.get("pypi"), Some(&64));
    assert_eq!(c.plugins.warm_instances.get("my-format"), Some(&2));
    assert!(ok("").plugins.warm_instances.is_empty());
    let m = err("[plugins]\nwarm_instances = { pypi = 0 }\n");
    assert_contains(&m, &["[plugins]: warm_instances:", "pypi = 0"]);
    let m = err("[plugins]\nwarm_instances = { \"Py Pi\" = 3 }\n");
    assert_contains(&m, &["[plugins]: warm_instances:", "not an adapter name"]);
}

#[test]
fn adapter_tables_set_limits_for_one_adapter_and_default_to_plugins() {
    let c = ok(
        "[plugins]\ncall_timeout = \"300ms\"\nmax_concurrent_calls = 8\n\
                [plugins.adapter.pypi]\ncall_timeout = \"2s\"\nmemory_limit = \"256MiB\"\n\
                [plugins.adapter.git]\nmax_concurrent_calls = 2\nqueue_timeout = \"0s\"\nlane_threads = 2\n",
    );
    let p = &c.plugins;
    let pypi = p.limits("pypi");
    assert_eq!(pypi.call_timeout, Duration::from_secs(2));
    assert_eq!(pypi.memory_limit, 256 * MIB);
    assert_eq!(pypi.max_concurrent_calls, 8, "unset: the [plugins] value");
    let git = p.limits("git");
    assert_eq!(
        (git.max_concurrent_calls, git.queue_timeout),
        (2, Duration::ZERO)
    );
    assert_eq!((git.lane_threads, pypi.lane_threads), (2, 1));
    assert_eq!(git.call_timeout, Duration::from_millis(300));
    assert_eq!(git.memory_limit, 64 * MIB);
    assert_eq!(p.limits("docker"), p.default_limits());
    assert_eq!(p.max_memory_limit(), 256 * MIB);
    assert_eq!(ok("").plugins.max_memory_limit(), 64 * MIB);
    let shown = c.redacted_json();
    assert_eq!(shown["plugins"]["adapter"]["pypi"]["call_timeout"], "2s");

    let m = err("[plugins.adapter.pypi]\ncall_timout = \"1s\"\n");
    assert_contains(
        &m,
        &["call_timout", "[plugins.adapter.pypi]", "call_timeout"],
    );
    let m = err("[plugins.adapter.pypi]\nmemory_limit = \"5GiB\"\n");
    assert_contains(&m, &["[plugins.adapter.pypi]: memory_limit:", "4GiB"]);
    let m = err("[plugins]\nmax_instances = 4\n[plugins.adapter.pypi]\nmax_concurrent_calls = 5\n");
    assert_contains(
        &m,
        &[
            "[plugins.adapter.pypi]: max_concurrent_calls:",
            "max_instances (4)",
        ],
    );
    let m = err("[plugins.adapter.\"Py Pi\"]\ncall_timeout = \"1s\"\n");
    assert_contains(&m, &["not an adapter name"]);
    let m = err("[plugins.adapter.pypi]\nlane_threads = 17\n");
    assert_contains(
        &m,
        &[
            "[plugins.adapter.pypi]: lane_threads:",
            "more than the threads one adapter's lane may have (16)",
        ],
    );
    let m = err("[plugins]\nlane_threads = 0\n");
    assert_contains(&m, &["[plugins]: lane_threads:"]);
    let m = err("[plugins.adapter.pypi]\ncall_timeout = \"0s\"\n");
    assert_contains(&m, &["[plugins.adapter.pypi]: call_timeout:"]);
}

#[test]
fn bad_listen_address() {
    let m = err("[server]\nlisten = \"localhost:8080\"\n");
    assert_contains(
        &m,
        &["[server]: listen: invalid address \"localhost:8080\""],
    );
}

#[test]
fn bad_regexes_name_the_pattern() {
    let m = err(&remote("allow = [\"^ok/\", \"(unclosed\"]"));
    assert_contains(
        &m,
        &["remote \"alma\": allow[1]: invalid regex \"(unclosed\""],
    );
    let m = err(&remote("mutable_patterns = [\"[z-a]\"]"));
    assert_contains(
        &m,
        &["remote \"alma\": mutable_patterns[0]: invalid regex \"[z-a]\""],
    );
    let m = err(&remote("immutable_patterns = [\"*x\"]"));
    assert_contains(
        &m,
        &["remote \"alma\": immutable_patterns[0]: invalid regex"],
    );
}

fn with_upstream(u: &str) -> String {
    format!("[[remote]]\nname = \"r\"\npackage = \"generic\"\nupstream = {u}\n")
}

#[test]
fn bad_upstream_urls_are_rejected() {
    for (u, expect) in [
        ("\"ftp://x.example.org/\"", "http:// or https://"),
        ("\"repo.example.org/x\"", "http:// or https://"),
        ("\"https://x.example.org/a?b=1\"", "query"),
        ("\"https://x.example.org/a#frag\"", "fragment"),
        ("\"https://x.example.org:99999/\"", "port"),
        ("\"https:///path\"", "remote \"r\": upstream: invalid URL"),
        ("\"https://x y/\"", "invalid URL"),
        ("[]", "empty"),
        (
            "[\"https://ok.example.org\", \"gopher://x\"]",
            "upstream[1]",
        ),
    ] {
        let m = err(&with_upstream(u));
        assert_contains(&m, &["remote \"r\": upstream", expect]);
    }
    for u in [
        "https://user:s3cr3t@x.example.org/",
        "ftp://u:s3cr3t@x y/#f",
        "https://u:s3cr3t@x?a",
    ] {
        let m = err(&with_upstream(&format!("{u:?}")));
        assert_contains(
            &m,
            &["remote \"r\": upstream: must not contain credentials"],
        );
        assert!(!m.contains("s3cr3t"), "{m}");
    }
    // An @ in the path is fine (npm scopes).
    ok(&with_upstream("\"https://registry.example.org/@scope\""));
}

#[test]
fn upstream_urls_are_cleaned() {
    let c = ok(&with_upstream("\"HTTPS://Repo.Example.org/debian///\""));
    let u = &c.remotes[0].upstreams[0];
    assert_eq!(u.scheme_str(), Some("https"));
    assert_eq!(upstream_display(u), "https://Repo.Example.org/debian");
    let c = ok(&with_upstream("\"http://[::1]:8080/\""));
    assert_eq!(
        upstream_display(&c.remotes[0].upstreams[0]),
        "http://[::1]:8080"
    );
}

#[test]
fn remote_names() {
    for good in ["a", "0", "files", "a.b_c-d", &"x".repeat(64)] {
        assert!(is_valid_remote_name(good), "{good}");
        ok(&format!(
            "[[remote]]\nname = \"{good}\"\npackage = \"local\"\n"
        ));
    }
    for bad in [
        "",
        "Alma",
        "-x",
        ".x",
        "_x",
        "a b",
        "a/b",
        "é",
        &"x".repeat(65),
    ] {
        assert!(!is_valid_remote_name(bad), "{bad}");
        let m = err(&format!(
            "[[remote]]\nname = \"{bad}\"\npackage = \"local\"\n"
        ));
        assert_contains(&m, &["[[remote]] #1: name: invalid remote name"]);
    }
    let m = err("[[remote]]\npackage = \"local\"\n");
    assert_contains(&m, &["[[remote]] #1: name: missing"]);
}

#[test]
fn packages() {
    let m = err("[[remote]]\nname = \"x\"\n");
    assert_contains(&m, &["remote \"x\": package: missing"]);
    for bad in ["", "Docker", "a.b", "a b"] {
        let m = err(&format!(
            "[[remote]]\nname = \"x\"\npackage = \"{bad}\"\nhosted = true\n"
        ));
        assert_contains(&m, &["remote \"x\": package: invalid package type"]);
    }
}

#[test]
fn duplicate_remote_names() {
    let text = "[[remote]]\nname = \"x\"\npackage = \"local\"\n[[remote]]\nname = \"y\"\npackage = \"local\"\n[[remote]]\nname = \"x\"\npackage = \"local\"\n";
    let m = err(text);
    assert_contains(&m, &["remote \"x\": name: duplicate", "#1 and #3"]);
}

#[test]
fn modes() {
    let local = ok("[[remote]]\nname = \"b\"\npackage = \"local\"\n");
    assert_eq!(local.remotes[0].mode, RemoteMode::Hosted);
    let local = ok("[[remote]]\nname = \"b\"\npackage = \"local\"\nhosted = true\n");
    assert_eq!(local.remotes[0].mode, RemoteMode::Hosted);
    let m = err("[[remote]]\nname = \"b\"\npackage = \"local\"\nupstream = \"https://x\"\n");
    assert_contains(&m, &["remote \"b\": upstream:", "hosted"]);
    let m = err("[[remote]]\nname = \"b\"\npackage = \"local\"\nhosted = false\n");
    assert_contains(&m, &["remote \"b\": hosted:"]);
    let m = err(
        "[[remote]]\nname = \"c\"\npackage = \"cas\"\nhosted = true\nupstream = \"https://x\"\n",
    );
    assert_contains(&m, &["remote \"c\": upstream:"]);
    let m = err("[[remote]]\nname = \"g\"\npackage = \"generic\"\n");
    assert_contains(&m, &["remote \"g\": upstream: missing"]);
    let m = err("[[remote]]\nname = \"g\"\npackage = \"generic\"\nhosted = false\n");
    assert_contains(&m, &["remote \"g\": upstream: missing"]);
    let pt = ok(
        "[[remote]]\nname = \"g\"\npackage = \"generic\"\nhosted = false\nupstream = \"https://x\"\n",
    );
    assert_eq!(pt.remotes[0].mode, RemoteMode::PullThrough);
    let m =
        err("[[remote]]\nname = \"b\"\npackage = \"local\"\nusername = \"u\"\npassword = \"p\"\n");
    assert_contains(
        &m,
        &["remote \"b\": username: credentials are for an upstream"],
    );
}

#[test]
fn follow_redirects_values() {
    for (v, p) in [
        ("true", RedirectPolicy::Any),
        ("false", RedirectPolicy::Never),
        ("\"any\"", RedirectPolicy::Any),
        ("\"never\"", RedirectPolicy::Never),
        ("\"same-host\"", RedirectPolicy::SameHost),
    ] {
        assert_eq!(
            ok(&remote(&format!("follow_redirects = {v}"))).remotes[0].follow_redirects,
            p
        );
    }
    let m = err(&remote("follow_redirects = \"sometimes\""));
    assert_contains(
        &m,
        &["remote \"alma\": follow_redirects: invalid value \"sometimes\""],
    );
    let m = err(&remote("follow_redirects = 3"));
    assert_contains(&m, &["follow_redirects", "line"]);
}

#[test]
fn auth_realms_keep_origins_and_refuse_clear_text() {
    let c = ok(&remote(
        "auth_realms = [\"https://auth.example.org/token?service=x\", \"https://b.example:8443\"]",
    ));
    let shown: Vec<String> = c.remotes[0]
        .auth_realms
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(
        shown,
        ["https://auth.example.org/", "https://b.example:8443/"]
    );
    assert!(ok(&remote("")).remotes[0].auth_realms.is_empty());
    let m = err(&remote("auth_realms = [\"http://auth.example.org/token\"]"));
    assert_contains(
        &m,
        &["remote \"alma\": auth_realms[0]:", "plain http", "https"],
    );
    let m = err(&remote("auth_realms = [\"ftp://auth.example.org\"]"));
    assert_contains(&m, &["auth_realms[0]", "http:// or https://"]);
    let m = err(&remote("auth_realms = [\"https://u:p@auth.example.org\"]"));
    assert_contains(&m, &["auth_realms[0]", "credentials"]);
}

#[test]
fn options_must_be_scalars() {
    let m = err(&remote("options = { list = [1, 2] }"));
    assert_contains(
        &m,
        &["remote \"alma\": options.list: must be a string, number or boolean"],
    );
    let c = ok(&remote("options = { when = 1979-05-27T07:32:00Z }"));
    assert_eq!(
        c.remotes[0].options,
        [("when".to_owned(), "1979-05-27T07:32:00Z".to_owned())]
    );
}

#[test]
fn tls_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), "x").unwrap();
    std::fs::write(dir.path().join("k.pem"), "x").unwrap();
    let p = |t: &str| parse_with_env(t, dir.path(), &no_env).map_err(|e| e.to_string());
    let m = p("[server]\ntls_cert = \"c.pem\"\n").unwrap_err();
    assert_contains(&m, &["[server]: tls_key: missing"]);
    let m = p("[server]\ntls_key = \"k.pem\"\n").unwrap_err();
    assert_contains(&m, &["[server]: tls_cert: missing"]);
    let m = p("[server]\ntls_cert = \"c.pem\"\ntls_key = \"nope.pem\"\n").unwrap_err();
    assert_contains(&m, &["[server]: tls_key: cannot use", "nope.pem"]);
    let m = p("[server]\ntls_cert = \".\"\ntls_key = \"k.pem\"\n").unwrap_err();
    assert_contains(&m, &["[server]: tls_cert:", "not a regular file"]);
    let c = p("[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
    assert!(c.server.tls.is_some());
    let m = p("[upstream]\nca_file = \"missing.pem\"\n").unwrap_err();
    assert_contains(&m, &["[upstream]: ca_file: cannot use"]);
    let m = p("[storage]\ndir = \"\"\n").unwrap_err();
    assert_contains(&m, &["[storage]: dir: must not be empty"]);
}

#[test]
fn relative_paths_stay_relative_unless_anchored() {
    let c = ok("[storage]\ndir = \"data\"\n[plugins]\ndir = \"/abs/plugins\"\n");
    assert_eq!(c.storage.dir, PathBuf::from("data"));
    let c = parse_with_env(
        "[storage]\ndir = \"data\"\n[plugins]\ndir = \"/abs/plugins\"\n",
        Path::new("/base"),
        &no_env,
    )
    .unwrap();
    assert_eq!(c.storage.dir, PathBuf::from("/base/data"));
    assert_eq!(c.plugins.dir, PathBuf::from("/abs/plugins"));
}

fn creds(
    body: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<Credentials>, String> {
    parse_with_env(&remote(body), Path::new(""), env)
        .map(|c| c.remotes[0].credentials.clone())
        .map_err(|e| e.to_string())
}

#[test]
fn credentials_from_env() {
    let env = |k: &str| match k {
        "ALMA_PW" => Some(OsString::from("pw-from-env")),
        "ALMA_TOKEN" => Some(OsString::from("tok-from-env")),
        "EMPTY" => Some(OsString::new()),
        _ => None,
    };
    match creds("username = \"u\"\npassword_env = \"ALMA_PW\"", &env).unwrap() {
        Some(Credentials::Basic { username, password }) => {
            assert_eq!(username, "u");
            assert_eq!(password.0, "pw-from-env");
        }
        other => panic!("{other:?}"),
    }
    match creds("token_env = \"ALMA_TOKEN\"", &env).unwrap() {
        Some(Credentials::Bearer { token }) => assert_eq!(token.0, "tok-from-env"),
        other => panic!("{other:?}"),
    }
    let m = creds("username = \"u\"\npassword_env = \"NOPE\"", &env).unwrap_err();
    assert_contains(
        &m,
        &["remote \"alma\": password_env: environment variable \"NOPE\" is not set"],
    );
    let m = creds("token_env = \"EMPTY\"", &env).unwrap_err();
    assert_contains(&m, &["remote \"alma\": token_env:", "empty"]);
}

#[cfg(unix)]
#[test]
fn credentials_env_not_utf8() {
    use std::os::unix::ffi::OsStringExt;
    let env = |_: &str| Some(OsString::from_vec(vec![0xff, 0xfe]));
    let m = creds("token_env = \"BIN\"", &env).unwrap_err();
    assert_contains(
        &m,
        &["token_env: environment variable \"BIN\" is not valid UTF-8"],
    );
}

#[test]
fn credentials_from_file() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "pw-from-file").unwrap();
    let path = f.path().display().to_string();
    match creds(
        &format!("username = \"u\"\npassword_file = '{path}'"),
        &no_env,
    )
    .unwrap()
    {
        Some(Credentials::Basic { password, .. }) => assert_eq!(password.0, "pw-from-file"),
        other => panic!("{other:?}"),
    }
    let m = creds("token_file = \"/nonexistent/artgate/token\"", &no_env).unwrap_err();
    assert_contains(
        &m,
        &["remote \"alma\": token_file: cannot read \"/nonexistent/artgate/token\""],
    );
    let empty = tempfile::NamedTempFile::new().unwrap();
    let m = creds(
        &format!("token_file = '{}'", empty.path().display()),
        &no_env,
    )
    .unwrap_err();
    assert_contains(&m, &["remote \"alma\": token_file: the secret is empty"]);
    let mut big = tempfile::NamedTempFile::new().unwrap();
    big.write_all(&vec![b'a'; 70 * 1024]).unwrap();
    let m = creds(&format!("token_file = '{}'", big.path().display()), &no_env).unwrap_err();
    assert_contains(&m, &["token_file:", "larger than 64 KiB"]);
}

#[test]
fn credential_combinations() {
    let m = creds("username = \"u\"", &no_env).unwrap_err();
    assert_contains(&m, &["remote \"alma\": username: needs a password"]);
    let m = creds("password = \"p\"", &no_env).unwrap_err();
    assert_contains(&m, &["remote \"alma\": password: needs a username"]);
    let m = creds(
        "username = \"u\"\npassword = \"p\"\npassword_env = \"X\"",
        &no_env,
    )
    .unwrap_err();
    assert_contains(&m, &["remote \"alma\": password_env: password is set too"]);
    let m = creds("token = \"t\"\ntoken_file = \"f\"", &no_env).unwrap_err();
    assert_contains(&m, &["remote \"alma\": token_file: token is set too"]);
    let m = creds("username = \"u\"\ntoken = \"t\"", &no_env).unwrap_err();
    assert_contains(&m, &["remote \"alma\": token: use either"]);
    let m = creds("username = \"a:b\"\npassword = \"p\"", &no_env).unwrap_err();
    assert_contains(&m, &["remote \"alma\": username: must be"]);
    let m = creds("token = \"a\\nb\"", &no_env).unwrap_err();
    assert_contains(&m, &["remote \"alma\": token: the token has characters"]);
    assert!(!m.contains("a\nb"));
    assert!(creds("", &no_env).unwrap().is_none());
}

#[test]
fn secrets_never_show() {
    let env = |k: &str| (k == "PW").then(|| OsString::from("env-secret-3"));
    let text = format!(
        "{}[[remote]]\nname = \"two\"\npackage = \"docker\"\nupstream = \"https://x\"\ntoken = \"literal-secret-2\"\n[remote.options]\napi_token = \"opt-secret-4\"\nregion = \"eu\"\n\n[[remote]]\nname = \"three\"\npackage = \"docker\"\nupstream = \"https://y\"\nusername = \"bob\"\npassword_env = \"PW\"\n",
        remote("username = \"alice\"\npassword = \"literal-secret-1\"")
    );
    let c = parse_with_env(&text, Path::new(""), &env).unwrap();
    let json = serde_json::to_string(&c.redacted_json()).unwrap();
    let debug = format!("{c:?}");
    for secret in [
        "literal-secret-1",
        "literal-secret-2",
        "env-secret-3",
        "opt-secret-4",
    ] {
        assert!(!json.contains(secret), "{secret} in {json}");
        if secret != "opt-secret-4" {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
    let raw = RawConfig::from_toml(&text).unwrap();
    assert!(!format!("{raw:?}").contains("literal-secret"));
    let v = c.redacted_json();
    assert_eq!(v["remote"][0]["credentials"]["username"], "alice");
    assert_eq!(v["remote"][0]["credentials"]["password"], "***");
    assert_eq!(v["remote"][1]["credentials"]["token"], "***");
    assert_eq!(v["remote"][1]["options"]["api_token"], "***");
    assert_eq!(v["remote"][1]["options"]["region"], "eu");
    assert_eq!(v["remote"][2]["credentials"]["username"], "bob");
}

#[test]
fn redacted_json_shape() {
    let c = ok(&remote("mutable_ttl = \"1h30m\"\nallow = [\"^9/\"]"));
    let v = c.redacted_json();
    assert_eq!(v["server"]["listen"], "127.0.0.1:8080");
    assert_eq!(v["server"]["header_read_timeout"], "10s");
    assert_eq!(v["server"]["body_read_timeout"], "30s");
    assert_eq!(v["storage"]["max_size"], 50 * GIB);
    assert_eq!(v["storage"]["min_free"], 256 * MIB);
    assert_eq!(v["plugins"]["call_timeout"], "200ms");
    assert_eq!(v["plugins"]["cache_dir"], "./artgate-data/plugin-cache");
    assert_eq!(v["upstream"]["ca_file"], serde_json::Value::Null);
    let r = &v["remote"][0];
    assert_eq!(r["name"], "alma");
    assert_eq!(r["mode"], "pull-through");
    assert_eq!(r["upstream"][0], "https://repo.example.org/alma");
    assert_eq!(r["allow"][0], "^9/");
    assert_eq!(r["mutable_ttl"], "1h 30m");
    assert_eq!(r["follow_redirects"], "same-host");
    assert_eq!(r["credentials"], serde_json::Value::Null);
    assert_eq!(r["max_size"], serde_json::Value::Null);
}

#[test]
fn default_config_validates() {
    let c = Config::default_config().unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.storage.dir, PathBuf::from("./artgate-data"));
    assert_eq!(c.plugins.dir, PathBuf::from("./plugins"));
    let names: Vec<&str> = c.remotes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "files",
            "dockerhub",
            "alma",
            "alpine",
            "golang",
            "crates",
            "pypi",
            "npm",
            "builds"
        ]
    );
    let files = c.remote("files").unwrap();
    assert_eq!(files.package, "generic");
    let re: Vec<Regex> = files
        .mutable_patterns
        .iter()
        .map(|p| Regex::new(p).unwrap())
        .collect();
    for m in [
        "dists/bookworm/InRelease",
        "dists/bookworm/main/binary-amd64/Packages.xz",
        "Release",
    ] {
        assert!(re.iter().any(|r| r.is_match(m)), "{m}");
    }
    assert!(
        !re.iter()
            .any(|r| r.is_match("pool/main/h/hello/hello_2.10-3_amd64.deb"))
    );
    let hub = c.remote("dockerhub").unwrap();
    assert!(hub.allows("library/alpine/manifests/3.20") && !hub.allows("someone/x/manifests/1"));
    assert_eq!(c.remote("builds").unwrap().mode, RemoteMode::Hosted);
    assert_eq!(c.remote("alma").unwrap().package, "rpm");
    assert_eq!(c.remote("alpine").unwrap().package, "alpine");
    assert_eq!(c.remote("golang").unwrap().package, "go");
    assert_eq!(c.remote("crates").unwrap().package, "cargo");
    assert_eq!(c.remote("pypi").unwrap().package, "pypi");
    assert_eq!(c.remote("npm").unwrap().package, "npm");
}

#[test]
fn load_reads_a_file() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(DEFAULT_CONFIG_TOML.as_bytes()).unwrap();
    assert_eq!(load(f.path()).unwrap().remotes.len(), 9);
    let e = load(Path::new("/nonexistent/artgate.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert_contains(&e.to_string(), &["cannot read the configuration file"]);
}

#[test]
fn edit_distance_works() {
    assert_eq!(edit_distance("upstrem", "upstream"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

const HOSTED: &str = "[[remote]]\nname = \"builds\"\npackage = \"local\"\n[[remote]]\nname = \"mirror\"\npackage = \"generic\"\nupstream = \"https://example.org\"\n";

fn token(body: &str) -> String {
    format!("{HOSTED}[[token]]\nname = \"ci\"\n{body}\n")
}

#[test]
fn tokens_from_every_source() {
    use sha2::Digest as _;
    let hex = hex::encode(sha2::Sha256::digest(b"t"));
    let c = ok(&token(&format!(
        "token_sha256 = \"{}\"\nadmin = true\nscopes = {{ builds = [\"read\", \"write\"], \"*\" = [\"read\"] }}",
        hex.to_uppercase()
    )));
    let t = &c.tokens[0];
    assert_eq!(t.name, "ci");
    assert!(t.admin);
    assert_eq!(t.source, "token_sha256");
    assert_eq!(t.sha256.as_slice(), sha2::Sha256::digest(b"t").as_slice());
    assert_eq!(
        crate::auth::scopes_on(t, "builds").names(),
        ["read", "write"]
    );
    assert_eq!(crate::auth::scopes_on(t, "mirror").names(), ["read"]);
    let env = |n: &str| (n == "CI_TOKEN").then(|| OsString::from("0123456789abcdefXYZ"));
    let c = parse_with_env(&token("token_env = \"CI_TOKEN\""), Path::new(""), &env).unwrap();
    assert_eq!(
        c.tokens[0].sha256.as_slice(),
        sha2::Sha256::digest(b"0123456789abcdefXYZ").as_slice()
    );
    assert!(!c.tokens[0].admin);
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "fedcba9876543210-file").unwrap();
    let c = ok(&token(&format!("token_file = {:?}", f.path())));
    assert_eq!(
        c.tokens[0].sha256.as_slice(),
        sha2::Sha256::digest(b"fedcba9876543210-file").as_slice()
    );
    // GET /config shows neither the token nor its hash.
    let json = c.redacted_json().to_string();
    assert!(json.contains("\"token\":\"***\""), "{json}");
    assert!(!json.contains("fedcba") && !json.contains(&hex::encode(c.tokens[0].sha256)));
}

#[test]
fn token_errors_name_the_key() {
    let h = "a".repeat(64);
    assert_contains(&err(&token("")), &["token \"ci\": token_sha256: missing"]);
    assert_contains(
        &err(&token(&format!(
            "token_sha256 = \"{h}\"\ntoken_env = \"X\""
        ))),
        &["token \"ci\": token_env:", "exactly one"],
    );
    assert_contains(
        &err(&token("token_sha256 = \"abc\"")),
        &["token_sha256: must be 64 hex"],
    );
    assert_contains(
        &err(&token(&format!(
            "token_sha256 = \"{h}\"\nscopes = {{ nope = [\"read\"] }}"
        ))),
        &["scopes.nope: unknown remote \"nope\""],
    );
    assert_contains(
        &err(&token(&format!(
            "token_sha256 = \"{h}\"\nscopes = {{ builds = [\"admin\"] }}"
        ))),
        &["scopes.builds: unknown scope \"admin\""],
    );
    let short = |n: &str| (n == "T").then(|| OsString::from("short"));
    assert_contains(
        &err_env(&token("token_env = \"T\""), &short),
        &["token_env: the token is shorter than 16"],
    );
    assert_contains(
        &err(&format!(
            "{}[[token]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\n",
            token(&format!("token_sha256 = \"{h}\"")),
            "b".repeat(64)
        )),
        &["duplicate token name"],
    );
    assert_contains(
        &err(&format!(
            "{}[[token]]\nname = \"other\"\ntoken_sha256 = \"{h}\"\n",
            token(&format!("token_sha256 = \"{h}\""))
        )),
        &["same token as token \"ci\""],
    );
    assert_contains(
        &err(&token(&format!("token_sha256 = \"{h}\"\nscope = {{}}"))),
        &[
            "unknown key \"scope\" in [[token]] #1 (\"ci\")",
            "did you mean \"scopes\"",
        ],
    );
    assert_contains(
        &err("[[remote]]\nname = \"b\"\npackage = \"local\"\nanonymous_read = false\n"),
        &["remote \"b\": anonymous_read:", "[[token]]"],
    );
}

#[test]
fn virtual_remotes() {
    let v =
        |body: &str| format!("{HOSTED}[[remote]]\nname = \"all\"\npackage = \"virtual\"\n{body}\n");
    let c = ok(&v(
        "members = [\"builds\", \"mirror\"]\nwrite_to = \"builds\"",
    ));
    let all = c.remote("all").unwrap();
    assert_eq!(all.mode, RemoteMode::Virtual);
    assert_eq!(all.members, ["builds", "mirror"]);
    assert_eq!(all.write_to.as_deref(), Some("builds"));
    assert_eq!(c.redacted_json()["remote"][2]["mode"], "virtual");
    ok(&v("members = [\"mirror\"]"));
    assert_contains(&err(&v("")), &["remote \"all\": members: missing"]);
    assert_contains(
        &err(&v("members = [\"nope\"]")),
        &["members[0]: unknown remote \"nope\""],
    );
    assert_contains(
        &err(&v("members = [\"builds\", \"builds\"]")),
        &["members[1]:", "twice"],
    );
    assert_contains(
        &err(&v("members = [\"builds\"]\nwrite_to = \"mirror\"")),
        &["write_to: \"mirror\" is not one of the members"],
    );
    assert_contains(
        &err(&v("members = [\"mirror\"]\nwrite_to = \"mirror\"")),
        &["write_to: \"mirror\" is a pull-through remote"],
    );
    assert_contains(
        &err(&v("members = [\"builds\"]\nupstream = \"https://x.org\"")),
        &["upstream: a virtual remote"],
    );
    assert_contains(
        &err(&v("members = [\"builds\"]\nhosted = true")),
        &["hosted:"],
    );
    assert_contains(
        &err(&format!(
            "{HOSTED}[[remote]]\nname = \"x\"\npackage = \"local\"\nmembers = [\"builds\"]\n"
        )),
        &["remote \"x\": members: only virtual remotes"],
    );
    let cycle = format!(
        "{HOSTED}[[remote]]\nname = \"a\"\npackage = \"virtual\"\nmembers = [\"builds\", \"b\"]\n[[remote]]\nname = \"b\"\npackage = \"virtual\"\nmembers = [\"a\"]\n"
    );
    assert_contains(&err(&cycle), &["members: cycle: a -> b -> a"]);
    let docker = "[[remote]]\nname = \"hub\"\npackage = \"docker\"\nupstream = \"https://r.example\"\n[[remote]]\nname = \"v\"\npackage = \"virtual\"\nmembers = [\"hub\"]\n";
    assert_contains(&err(docker), &["members[0]:", "docker registry"]);
}

/// `artgate check` warns about a virtual remote more open than a remote it
/// reaches (anonymous reads, a token's read scope, a token's write scope on
/// `write_to`), through member virtuals too; a consistent configuration
/// has no warning.
#[test]
fn virtual_remote_more_open_than_a_member_is_warned_about() {
    let h = "a".repeat(64);
    let config = |inner_extra: &str, all_extra: &str, scopes: &str| {
        format!(
            "[[remote]]\nname = \"private\"\npackage = \"local\"\nanonymous_read = false\n\
             [[remote]]\nname = \"inner\"\npackage = \"virtual\"\nmembers = [\"private\"]\n{inner_extra}\n\
             [[remote]]\nname = \"drop\"\npackage = \"local\"\n\
             [[remote]]\nname = \"all\"\npackage = \"virtual\"\nmembers = [\"inner\", \"drop\"]\nwrite_to = \"drop\"\n{all_extra}\n\
             [[token]]\nname = \"ci\"\ntoken_sha256 = \"{h}\"\nscopes = {scopes}\n"
        )
    };
    let w = ok(&config("", "", "{ all = [\"read\", \"write\"] }")).warnings();
    assert_eq!(w.len(), 4, "{w:#?}");
    assert_contains(
        &w[0],
        &[
            "remote \"inner\"",
            "member \"private\"",
            "anonymous_read = false",
        ],
    );
    assert_contains(&w[1], &["remote \"all\"", "member \"private\""]);
    assert_contains(
        &w[2],
        &["token \"ci\"", "read scope", "\"all\"", "\"private\""],
    );
    assert_contains(
        &w[3],
        &["token \"ci\"", "write scope", "write_to member \"drop\""],
    );
    let fine = ok(&config(
        "anonymous_read = false",
        "anonymous_read = false",
        "{ all = [\"read\", \"write\"], inner = [\"read\"], private = [\"read\"], drop = [\"write\"] }",
    ));
    assert_eq!(fine.warnings(), Vec::<String>::new());
    assert!(ok(HOSTED).warnings().is_empty());
}

#[test]
fn max_uri_bytes_stays_under_what_cache_keys_hold() {
    assert_eq!(
        ok("[server]\nmax_uri_bytes = \"60KiB\"\n")
            .server
            .max_uri_bytes,
        60 * 1024
    );
    let m = err("[server]\nmax_uri_bytes = \"61KiB\"\n");
    assert_contains(
        &m,
        &["[server]: max_uri_bytes: 62464 bytes is more than the 60 KiB allowed"],
    );
}

/// docs/config.md shows the built-in configuration as it is.
#[test]
fn the_config_reference_shows_the_builtin_configuration() {
    let doc = include_str!("../../../docs/config.md");
    let start = doc
        .find("This is the built-in configuration")
        .and_then(|i| {
            doc[i..]
                .find("```toml\n")
                .map(|j| i + j + "```toml\n".len())
        })
        .expect("the section");
    let end = start + doc[start..].find("```").expect("the block's end");
    assert_eq!(doc[start..end].trim_end(), DEFAULT_CONFIG_TOML.trim_end());
}

#[test]
fn shared_tier_is_off_by_default_and_checked_when_on() {
    assert!(ok("").shared.is_none());
    let env = |name: &str| (name == "S3_SECRET").then(|| OsString::from("s3cr3t"));
    let c = parse_with_env(
        "[shared]\nurl = \"s3://artgate-cache/prod/eu/\"\nendpoint = \"http://127.0.0.1:8333/\"\nallow_http = true\naccess_key_id = \"AK\"\nsecret_access_key_env = \"S3_SECRET\"\nnode = \"gw-1\"\n",
        Path::new(""),
        &env,
    )
    .unwrap();
    let s = c.shared.clone().expect("[shared]");
    assert_eq!(
        (s.bucket.as_str(), s.prefix.as_str()),
        ("artgate-cache", "prod/eu")
    );
    assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
    assert_eq!((s.region.as_str(), s.node.as_str()), ("us-east-1", "gw-1"));
    assert_eq!(s.secret_access_key.0, "s3cr3t");
    assert_eq!(s.timeout, Duration::from_secs(10));
    let json = c.redacted_json().to_string();
    assert!(
        !json.contains("s3cr3t") && json.contains("s3://artgate-cache/prod/eu"),
        "{json}"
    );

    let base = "access_key_id = \"AK\"\nsecret_access_key = \"x\"\n";
    for (table, parts) in [
        (base.to_owned(), &["[shared]: url: is required"][..]),
        (format!("url = \"https://b/x\"\n{base}"), &["url", "s3://"]),
        (
            format!("url = \"s3://B\"\n{base}"),
            &["url", "not a bucket name"],
        ),
        (
            format!("url = \"s3://bkt/a/../b\"\n{base}"),
            &["plain path segments"],
        ),
        (
            format!("url = \"s3://bkt\"\nendpoint = \"http://127.0.0.1:9\"\n{base}"),
            &["endpoint", "allow_http = true"],
        ),
        (
            format!("url = \"s3://bkt\"\nendpoint = \"ftp://x\"\n{base}"),
            &["endpoint", "http:// or https://"],
        ),
        (
            "url = \"s3://bkt\"\naccess_key_id = \"AK\"\n".to_owned(),
            &["secret_access_key_env: is required"],
        ),
        (
            format!("url = \"s3://bkt\"\n{base}secret_access_key_env = \"V\"\n"),
            &["secret_access_key is set too"],
        ),
        (
            "url = \"s3://bkt\"\nsecret_access_key = \"x\"\n".to_owned(),
            &["access_key_id: is required"],
        ),
        (
            format!("url = \"s3://bkt\"\n{base}node = \"a b\"\n"),
            &["node"],
        ),
        (
            format!("url = \"s3://bkt\"\n{base}advertise = \"http://10.0.0.1:8080/x\"\n"),
            &["advertise", "without a path"],
        ),
        (
            format!("url = \"s3://bkt\"\n{base}advertise = \"10.0.0.1:8080\"\n"),
            &["advertise", "http:// or https://"],
        ),
        (
            format!("url = \"s3://bkt\"\n{base}bukcet = 1\n"),
            &["unknown key \"bukcet\" in [shared]"],
        ),
    ] {
        assert_contains(&err(&format!("[shared]\n{table}")), parts);
    }
}
