//! The plugin authoring kit: `artgate plugin check`'s messages for the
//! usual mistakes; warm instances keep a fault in its request. (`plugin
//! new` → `cargo build` → `plugin check` → served without a restart is
//! `plugin_kit_tutorial.rs`, which follows the walkthrough of
//! `docs/plugins.md`.)

use crate::support::clients::run;
use crate::support::gateway::{Gateway, adapters_dir, install_adapter};
use crate::support::http::send;
use crate::support::kit::{artgate, wait_active};
use std::path::Path;
use std::sync::Arc;

/// `plugin check` explains the usual mistakes and reports failing cases
/// with a diff, a trap with its wasm backtrace, and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_explains_mistakes_and_diffs_failing_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let check = |file: &Path| artgate(&["plugin", "check", file.to_str().unwrap()]);

    // A core module (wasm32-wasip1 / wasm32-unknown-unknown output).
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let r = run(check(&core)).await;
    assert!(!r.ok, "{}", r.output);
    assert!(
        r.output.contains("core wasm module, not a component"),
        "{}",
        r.output
    );
    assert!(r.output.contains("wasm32-wasip2"), "{}", r.output);

    // Components for another version and another package (the export
    // names patched in a real adapter, same lengths).
    let generic = std::fs::read(adapters_dir().join("generic.wasm")).unwrap();
    let patched = |from: &[u8], to: &[u8], name: &str| {
        assert_eq!(from.len(), to.len());
        let mut out = Vec::with_capacity(generic.len());
        let mut i = 0;
        while i < generic.len() {
            if generic[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(generic[i]);
                i += 1;
            }
        }
        let p = dir.join(name);
        std::fs::write(&p, out).unwrap();
        p
    };
    let v2 = patched(
        b"artgate:adapter/handler@0.1.0",
        b"artgate:adapter/handler@0.2.0",
        "v2.wasm",
    );
    let r = run(check(&v2)).await;
    assert!(!r.ok);
    assert!(
        r.output.contains(
            "built for artgate:adapter@0.2.0, but this gateway provides artgate:adapter@0.1.0"
        ),
        "{}",
        r.output
    );
    let other = patched(
        b"artgate:adapter/handler@0.1.0",
        b"acmecorp:widget/handler@0.1.0",
        "other.wasm",
    );
    let r = run(check(&other)).await;
    assert!(!r.ok);
    assert!(
        r.output.contains("does not export artgate:adapter/handler@0.1.0 (it exports acmecorp:widget/handler@0.1.0)"),
        "{}",
        r.output
    );

    // Golden cases against the hostile test adapter.
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).unwrap();
    let case = |name: &str, mode: &str, tail: &str| {
        std::fs::write(
            cases.join(name),
            format!("[remote]\noptions = {{ mode = {mode:?} }}\n[request]\npath = \"x\"\n{tail}"),
        )
        .unwrap();
    };
    case(
        "01-ok.toml",
        "ok",
        "[expect.respond]\nstatus = 200\nbody = \"hostile ok\"\n",
    );
    case("02-wrong.toml", "ok", "[expect.respond]\nstatus = 201\n");
    case("03-trap.toml", "trap", "[expect.respond]\nstatus = 200\n");
    case(
        "04-bad-status.toml",
        "bad-status",
        "[expect.respond]\nstatus = 200\n",
    );
    std::fs::write(
        cases.join("05-trap-expected.json"),
        r#"{"remote": {"options": {"mode": "trap"}}, "request": {"path": "x"}, "expect-error": "unreachable"}"#,
    )
    .unwrap();
    let hostile = adapters_dir().join("hostile.wasm");
    let r = run(artgate(&[
        "plugin",
        "check",
        hostile.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]))
    .await;
    let o = &r.output;
    assert!(!r.ok, "{o}");
    assert!(o.contains("PASS 01-ok.toml"), "{o}");
    assert!(o.contains("FAIL 02-wrong.toml"), "{o}");
    assert!(o.contains("respond.status: expected 201, got 200"), "{o}");
    assert!(o.contains("FAIL 03-trap.toml"), "{o}");
    assert!(o.contains("wasm backtrace"), "{o}");
    assert!(o.contains("unreachable"), "{o}");
    assert!(!o.contains("Stack backtrace"), "host stack leaked: {o}");
    assert!(o.contains("FAIL 04-bad-status.toml"), "{o}");
    assert!(o.contains("status 999 is not an HTTP status"), "{o}");
    assert!(o.contains("PASS 05-trap-expected.json"), "{o}");
    assert!(o.contains("2 passed, 3 failed"), "{o}");
}

/// `[plugins] warm_instances`: a reused instance serves calls; a trap, a
/// timeout or a memory-cap hit on it gives only that request a 502, and
/// the next request is served by a fresh instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_instances_keep_faults_in_their_request() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    install_adapter(dir.path(), "hostile.wasm");
    let mut remotes = String::new();
    for mode in ["ok", "trap", "loop", "grow"] {
        remotes.push_str(&format!(
            "[[remote]]\nname = {mode:?}\npackage = \"hostile\"\nupstream = \"http://127.0.0.1:9\"\n[remote.options]\nmode = {mode:?}\n\n"
        ));
    }
    let gw = Gateway::start_with_plugins_extra(
        dir,
        "warm_instances = { hostile = 5 }\ncall_timeout = \"100ms\"\nmemory_limit = \"32MiB\"",
        &remotes,
    )
    .await;
    let status = wait_active(&gw, "hostile").await;
    assert_eq!(status["warm_instances"], 5, "{status}");
    let cfg = send("GET", &gw.url("/config"), &[]).await.json();
    assert_eq!(cfg["plugins"]["warm_instances"]["hostile"], 5, "{cfg}");
    let client = reqwest::Client::new();
    let get = |remote: &str| {
        let url = gw.url(&format!("/api/v1/remote/{remote}/x"));
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.expect("request");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    for round in 0..3 {
        for _ in 0..7 {
            assert_eq!(
                get("ok").await,
                (200, "hostile ok".to_owned()),
                "round {round}"
            );
        }
        for fault in ["trap", "loop", "grow"] {
            let (status, body) = get(fault).await;
            assert_eq!(status, 502, "{fault}: {body}");
            assert_eq!(
                get("ok").await,
                (200, "hostile ok".to_owned()),
                "after {fault}"
            );
        }
    }
    // Concurrent calls: more than one instance at a time.
    let all = futures_util::future::join_all((0..20).map(|_| get("ok"))).await;
    assert!(
        all.iter().all(|(s, b)| *s == 200 && b == "hostile ok"),
        "{all:?}"
    );
}
