//! Bazel 4.2.3 (Debian's `bazel-bootstrap`, `support/bazel.rs`) against
//! hosted `cas` remotes as its remote cache: over gRPC (the REAPI on the
//! main port, `--remote_instance_name` naming the remote) and over Bazel's
//! HTTP cache layout (`/api/v1/remote/NAME/{ac,cas}/`). A build fills the
//! cache; a build in a fresh output base must take every action from it
//! and leave byte-identical outputs. Tokens: a read-only one needs
//! `--remote_upload_local_results=false` and uploads nothing, a writer's
//! builds upload.

use crate::support::bazel::{ACTIONS, Bazel, BazelRun, DATA, OutputFile, assert_expected_outputs};
use crate::support::gateway::Gateway;
use crate::support::sha256_hex;
use std::collections::BTreeMap;

/// The gRPC status code OK, as Bazel's gRPC log records it.
const OK: i32 = 0;
/// NOT_FOUND (a cache miss on `GetActionResult`).
const NOT_FOUND: i32 = 5;
/// UNAUTHENTICATED (no token where one is needed).
const UNAUTHENTICATED: i32 = 16;

const READ_TOKEN: &str = "bazel-read-token-0123456789abcdef";
const WRITE_TOKEN: &str = "bazel-write-token-0123456789abcdef";

/// A hosted `cas` remote `name`; `extra` keys appended.
fn cas_remote(name: &str, extra: &str) -> String {
    format!("[[remote]]\nname = {name:?}\npackage = \"cas\"\nhosted = true\n{extra}\n")
}

/// A `[[token]]` table for `token` with `extra` keys (scopes).
fn token_table(name: &str, token: &str, extra: &str) -> String {
    format!(
        "[[token]]\nname = {name:?}\ntoken_sha256 = \"{}\"\n{extra}\n",
        sha256_hex(token.as_bytes())
    )
}

/// The flags for the gateway's gRPC front, instance `remote`.
fn grpc_flags(gw: &Gateway, remote: &str) -> Vec<String> {
    vec![
        format!("--remote_cache=grpc://{}", gw.addr),
        format!("--remote_instance_name={remote}"),
    ]
}

/// The flags for the gateway's HTTP cache layout on `remote`.
fn http_flags(gw: &Gateway, remote: &str) -> Vec<String> {
    vec![format!(
        "--remote_cache={}",
        gw.url(&format!("/api/v1/remote/{remote}/"))
    )]
}

/// `--remote_header` with `token` as a bearer token.
fn bearer(token: &str) -> String {
    format!("--remote_header=Authorization=Bearer {token}")
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Panic unless `second`'s outputs equal `first`'s byte for byte and mode
/// for mode (Bazel 4 leaves every output 0555: read-only, and executable
/// whether or not the action made it so).
#[track_caller]
fn assert_same_outputs(
    first: &BTreeMap<String, OutputFile>,
    second: &BTreeMap<String, OutputFile>,
) {
    for (path, f) in first {
        let s = second
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing after the cached build"));
        assert!(
            s.data == f.data,
            "{path} differs after the cached build: {} bytes (sha256 {}) instead of {} (sha256 {})",
            s.data.len(),
            sha256_hex(&s.data),
            f.data.len(),
            sha256_hex(&f.data)
        );
        assert_eq!(s.mode, f.mode, "mode of {path} after the cached build");
    }
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>(),
        "the files in bazel-bin after the cached build"
    );
}

/// Panic unless the `builds` remote holds the 400 KiB output under its
/// sha256 (`GET cas/{sha256}` on the HTTP front, with `headers`).
async fn assert_data_stored(gw: &Gateway, headers: &[(&str, &str)]) {
    let data = &Bazel::expected_outputs()[DATA];
    let r = gw
        .get_remote("builds", &format!("cas/{}", sha256_hex(data)), headers)
        .await;
    assert_eq!(r.status, 200, "the data output is not in the builds remote");
    assert!(
        r.body() == &data[..],
        "the builds remote holds other bytes for the data output"
    );
}

/// The first build (empty cache) of a `*_second_build_is_all_hits` test:
/// both actions executed here, no warning, outputs as expected.
async fn first_build(bazel: &Bazel, flags: &[&str]) -> (BazelRun, BTreeMap<String, OutputFile>) {
    let run = bazel.build(flags).await;
    run.assert_no_warnings("the first build");
    run.assert_all_executed("the first build (empty cache)");
    let outputs = bazel.outputs();
    assert_expected_outputs("the first build", &outputs);
    assert_eq!(
        bazel.run_script().await,
        Bazel::expected_script_output(),
        "what the script printed after the first build"
    );
    (run, outputs)
}

/// A build in a fresh output base that must take every action from the
/// cache and leave the same files as `first`, the script runnable.
async fn cached_build(
    bazel: &mut Bazel,
    flags: &[&str],
    first: &BTreeMap<String, OutputFile>,
    what: &str,
) -> BazelRun {
    bazel.fresh_output_base();
    let run = bazel.build(flags).await;
    run.assert_no_warnings(what);
    run.assert_all_remote_hits(what);
    let outputs = bazel.outputs();
    assert_expected_outputs(what, &outputs);
    assert_same_outputs(first, &outputs);
    assert_eq!(
        bazel.run_script().await,
        Bazel::expected_script_output(),
        "what the script printed after {what}"
    );
    run
}

/// gRPC: the first build uploads (FindMissingBlobs, ByteStream Write,
/// UpdateActionResult for each action, all OK); a build in a fresh output
/// base gets both actions from the cache (GetActionResult OK, ByteStream
/// Read, no upload), the outputs byte-identical, the script executable and
/// runnable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bazel_grpc_remote_cache_second_build_is_all_hits() {
    let gw = Gateway::start(&cas_remote("builds", "")).await;
    let mut bazel = Bazel::new();
    let flags = grpc_flags(&gw, "builds");
    let flags = strs(&flags);

    let (run, first) = first_build(&bazel, &flags).await;
    run.assert_grpc_clean("the first build");
    let n = ACTIONS as usize;
    assert_eq!(
        run.grpc_count("Capabilities/GetCapabilities", OK),
        1,
        "GetCapabilities calls:\n{}",
        run.grpc_summary()
    );
    assert_eq!(
        run.grpc_count("ActionCache/GetActionResult", NOT_FOUND),
        n,
        "cache misses:\n{}",
        run.grpc_summary()
    );
    assert_eq!(
        run.grpc_count("ActionCache/UpdateActionResult", OK),
        n,
        "action results uploaded:\n{}",
        run.grpc_summary()
    );
    assert!(
        run.grpc_count("ByteStream/Write", OK) >= n,
        "no blobs written:\n{}",
        run.grpc_summary()
    );
    assert_data_stored(&gw, &[]).await;

    let run = cached_build(
        &mut bazel,
        &flags,
        &first,
        "the build in a fresh output base",
    )
    .await;
    run.assert_grpc_clean("the cached build");
    assert_eq!(
        run.grpc_count("ActionCache/GetActionResult", OK),
        n,
        "cache hits:\n{}",
        run.grpc_summary()
    );
    assert!(
        run.grpc_count("ByteStream/Read", OK) >= 1,
        "no blob read:\n{}",
        run.grpc_summary()
    );
    let uploads = run
        .grpc_calls()
        .into_iter()
        .filter(|c| c.is("ByteStream/Write") || c.is("UpdateActionResult"))
        .count();
    assert_eq!(
        uploads,
        0,
        "the cached build uploaded:\n{}",
        run.grpc_summary()
    );
}

/// Bazel's HTTP cache (`GET`/`PUT` of `ac/` and `cas/` below the remote's
/// URL): the second build in a fresh output base is all hits with the same
/// files; and the results are the ones the gRPC front serves (a third
/// build, over gRPC, hits too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bazel_http_remote_cache_second_build_is_all_hits() {
    let gw = Gateway::start(&cas_remote("builds", "")).await;
    let mut bazel = Bazel::new();
    let flags = http_flags(&gw, "builds");
    let flags = strs(&flags);

    let (_, first) = first_build(&bazel, &flags).await;
    assert_data_stored(&gw, &[]).await;

    cached_build(
        &mut bazel,
        &flags,
        &first,
        "the HTTP build in a fresh output base",
    )
    .await;

    let grpc = grpc_flags(&gw, "builds");
    let run = cached_build(
        &mut bazel,
        &strs(&grpc),
        &first,
        "a gRPC build after the HTTP uploads",
    )
    .await;
    run.assert_grpc_clean("the gRPC build after the HTTP uploads");
}

/// Tokens on a remote without anonymous reads. Without a token Bazel stops
/// at GetCapabilities (UNAUTHENTICATED). A read-only token advertises
/// `update_enabled = false`, so Bazel refuses to start unless
/// `--remote_upload_local_results=false`; with it the build runs, looks
/// actions up (misses) and uploads nothing. The writer's build uploads;
/// after it, the reader's build in a fresh output base is all hits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bazel_grpc_with_a_read_only_token() {
    let config = format!(
        "{}{}{}",
        cas_remote("builds", "anonymous_read = false"),
        token_table("reader", READ_TOKEN, "scopes = { builds = [\"read\"] }"),
        token_table(
            "writer",
            WRITE_TOKEN,
            "scopes = { builds = [\"read\", \"write\"] }"
        ),
    );
    let gw = Gateway::start(&config).await;
    let mut bazel = Bazel::new();
    let base = grpc_flags(&gw, "builds");
    let with = |extra: &[&str]| -> Vec<String> {
        let extra = extra.iter().map(|s| (*s).to_owned());
        base.iter().cloned().chain(extra).collect()
    };
    let no_upload = "--remote_upload_local_results=false";
    let (read_header, write_header) = (bearer(READ_TOKEN), bearer(WRITE_TOKEN));

    // No token: the capabilities check fails, and with it the build.
    let run = bazel.try_build(&strs(&with(&[no_upload]))).await;
    run.assert_fails_saying("a build without a token", "UNAUTHENTICATED");
    assert_eq!(
        run.grpc_count("Capabilities/GetCapabilities", UNAUTHENTICATED),
        1,
        "GetCapabilities without a token:\n{}",
        run.grpc_summary()
    );

    // The reader, uploads on (Bazel's default): refused before any action.
    let reader = with(&[&read_header]);
    let run = bazel.try_build(&strs(&reader)).await;
    run.assert_fails_saying(
        "a read-only build with uploads on",
        "not authorized to write local results to the remote cache",
    );

    // The reader with uploads off: builds, only lookups.
    let reader = with(&[&read_header, no_upload]);
    bazel.fresh_output_base();
    let run = bazel.build(&strs(&reader)).await;
    run.assert_no_warnings("the read-only build");
    run.assert_grpc_clean("the read-only build");
    run.assert_all_executed("the read-only build (empty cache)");
    assert_expected_outputs("the read-only build", &bazel.outputs());
    let calls = run.grpc_calls();
    assert!(
        calls
            .iter()
            .all(|c| c.is("GetCapabilities") || c.is("GetActionResult")),
        "the read-only build made calls other than GetCapabilities and GetActionResult:\n{}",
        run.grpc_summary()
    );
    assert_eq!(
        run.grpc_count("ActionCache/GetActionResult", NOT_FOUND),
        ACTIONS as usize,
        "lookups of the read-only build:\n{}",
        run.grpc_summary()
    );
    let data = &Bazel::expected_outputs()[DATA];
    let auth = format!("Bearer {WRITE_TOKEN}");
    let r = gw
        .get_remote(
            "builds",
            &format!("cas/{}", sha256_hex(data)),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(r.status, 404, "the read-only build stored its data output");

    // The writer: nothing was uploaded before, so it executes and uploads.
    let writer = with(&[&write_header]);
    bazel.fresh_output_base();
    let (run, first) = first_build(&bazel, &strs(&writer)).await;
    run.assert_grpc_clean("the writer's build");
    assert_eq!(
        run.grpc_count("ActionCache/UpdateActionResult", OK),
        ACTIONS as usize,
        "action results the writer uploaded:\n{}",
        run.grpc_summary()
    );
    assert_data_stored(&gw, &[("authorization", &auth)]).await;

    // The reader now gets everything from the cache.
    let run = cached_build(
        &mut bazel,
        &strs(&reader),
        &first,
        "the read-only build after the writer's",
    )
    .await;
    run.assert_grpc_clean("the read-only build after the writer's");
}

/// The spawn summary lines Bazel 4 prints are read as they are meant.
#[test]
fn bazel_processes_line_parses() {
    use crate::support::bazel::Processes;
    let out = "INFO: Elapsed time: 1.9s, Critical Path: 0.14s\n\
               INFO: 3 processes: 2 remote cache hit, 1 internal.\n\
               INFO: Build completed successfully, 3 total actions\n";
    let p = Processes::parse(out).expect("a summary");
    assert_eq!((p.total, p.remote_cache_hits(), p.executed()), (3, 2, 0));
    let p = Processes::parse("INFO: 3 processes: 1 internal, 2 local.\n").expect("a summary");
    assert_eq!((p.remote_cache_hits(), p.executed()), (0, 2));
    let p = Processes::parse("INFO: 1 process: 1 internal.\n").expect("a summary");
    assert_eq!((p.total, p.executed()), (1, 0));
    assert_eq!(
        Processes::parse("INFO: Build completed successfully\n"),
        None
    );
}

/// A pull-through `cas` remote over BuildGrid: a build straight against
/// BuildGrid fills it; a build in a fresh output base through artgate gets
/// every action from BuildGrid through artgate; with BuildGrid stopped, a
/// third fresh build through artgate still gets every action (artgate kept
/// the results and blobs it read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bazel_through_a_pull_through_remote_over_buildgrid() {
    let mut bg = crate::support::buildgrid::BuildGrid::start("main").await;
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"grid\"\npackage = \"cas\"\nupstream = \"{}/main\"\n",
        bg.url()
    ))
    .await;
    let mut bazel = Bazel::new();
    let direct = [
        format!("--remote_cache={}", bg.url()),
        "--remote_instance_name=main".to_owned(),
    ];
    let (_, first) = first_build(&bazel, &strs(&direct)).await;
    let through = grpc_flags(&gw, "grid");
    let through = strs(&through);
    cached_build(&mut bazel, &through, &first, "the build through artgate").await;
    bg.stop();
    cached_build(
        &mut bazel,
        &through,
        &first,
        "the build through artgate with BuildGrid stopped",
    )
    .await;
}
