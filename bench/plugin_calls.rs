//! Measures what an adapter costs the gateway: compile time (cold, and
//! from the compiled-code cache), load time (world check, pre-link,
//! `describe`), the linear memory an instance holds, and the time of one
//! `plan` call on a fresh instance (the default) and on a warm one
//! (`[plugins] warm_instances`). Prints a Markdown table; asserts nothing.
//!
//! ```sh
//! COMPONENTIZE_PY=target/artgate-py-venv/bin/componentize-py \
//!     plugins/python/pypi/build.sh /tmp/pypi.wasm
//! cargo run --example plugin_calls -- --python /tmp/pypi.wasm [--calls 2000]
//! ```
//!
//! The Rust side is the built-in `generic` adapter. Run it on a quiet
//! machine: the numbers in docs/plugins.md come from the dev profile, whose
//! dependencies (wasmtime, cranelift) are optimised (opt-level 2).

use artgate::plugins::{Adapter, CallContext, PluginEngine, Source, wit};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn remote(package: &str) -> wit::RemoteInfo {
    wit::RemoteInfo {
        name: "bench".into(),
        package: package.into(),
        mode: wit::RemoteMode::PullThrough,
        upstreams: vec!["https://upstream.example".into()],
        mutable_ttl_secs: 600,
        negative_ttl_secs: 60,
        check_mutable_updates: true,
        immutable_patterns: Vec::new(),
        mutable_patterns: Vec::new(),
        options: Vec::new(),
        has_credentials: false,
    }
}

fn request(path: &str) -> wit::Request {
    wit::Request {
        id: "bench".into(),
        kind: wit::RouteKind::RemoteApi,
        method: "GET".into(),
        path: path.into(),
        query: None,
        headers: vec![wit::Header {
            name: "user-agent".into(),
            value: "bench".into(),
        }],
        body: None,
        body_too_large: false,
    }
}

/// Mean time of one `plan` call over `n` calls (after 20 to warm up).
async fn per_call(a: &Adapter, remote: &wit::RemoteInfo, req: &wit::Request, n: u32) -> Duration {
    for _ in 0..20 {
        a.plan(CallContext::idle(), remote, req)
            .await
            .expect("plan");
    }
    let t = Instant::now();
    for _ in 0..n {
        a.plan(CallContext::idle(), remote, req)
            .await
            .expect("plan");
    }
    t.elapsed() / n.max(1)
}

struct Row {
    name: String,
    size: usize,
    compile: Duration,
    cached: Duration,
    load: Duration,
    memory: usize,
    fresh: Duration,
    warm: Duration,
}

async fn measure(name: &str, wasm: Vec<u8>, path: &str, calls: u32) -> anyhow::Result<Row> {
    let mut cfg = artgate::config::Config::default_config()?.plugins;
    cfg.memory_limit = 256 << 20;
    cfg.call_timeout = Duration::from_secs(5);
    let cache = std::env::temp_dir().join(format!("artgate-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);

    // Cold compile (writes the cache), then a compile served by the cache.
    let engine = PluginEngine::new(&cfg, Some(cache.clone()))?;
    let t = Instant::now();
    let component = engine.compile(&wasm)?;
    let compile = t.elapsed();
    let t = Instant::now();
    drop(engine.compile(&wasm)?);
    let cached = t.elapsed();

    // Load, then calls on a fresh instance each.
    let t = Instant::now();
    let fresh = Adapter::from_component(engine, &component, String::new(), Source::BuiltIn).await?;
    let load = t.elapsed();
    let remote = remote(&fresh.info.package_types[0]);
    let req = request(path);
    let fresh_call = per_call(&fresh, &remote, &req, calls).await;

    // The same component with a pool of warm instances.
    cfg.warm_instances.insert(fresh.info.name.clone(), u32::MAX);
    let warm_engine = PluginEngine::new(&cfg, Some(cache.clone()))?;
    let warm_component = warm_engine.compile(&wasm)?;
    let warm =
        Adapter::from_component(warm_engine, &warm_component, String::new(), Source::BuiltIn)
            .await?;
    let warm_call = per_call(&warm, &remote, &req, calls).await;
    // The linear memory an instance holds after serving calls (what counts
    // against `memory_limit`).
    let memory = warm.warm_memory() / warm.warm_idle().max(1);
    let _ = std::fs::remove_dir_all(&cache);
    Ok(Row {
        name: name.into(),
        size: wasm.len(),
        compile,
        cached,
        load,
        memory,
        fresh: fresh_call,
        warm: warm_call,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut python: Option<PathBuf> = None;
    let mut calls = 2000u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--python" => python = args.next().map(PathBuf::from),
            "--calls" => calls = args.next().and_then(|c| c.parse().ok()).unwrap_or(calls),
            other => anyhow::bail!("unknown argument {other}; use --python FILE [--calls N]"),
        }
    }
    let generic = std::fs::read(concat!(env!("ARTGATE_ADAPTERS_DIR"), "/generic.wasm"))?;
    let mut rows = vec![measure("generic (Rust)", generic, "pkgs/tool-1.0.tar.gz", calls).await?];
    if let Some(p) = python {
        let wasm = std::fs::read(&p)?;
        rows.push(measure("pypi (Python)", wasm, "simple/requests/", calls.min(500)).await?);
    }
    println!(
        "| adapter | component | compile | compile (cached) | load + describe | linear memory / instance | plan, fresh instance | plan, warm instance |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!(
            "| {} | {:.1} MiB | {:.2?} | {:.2?} | {:.2?} | {:.1} MiB | {:.2?} | {:.2?} |",
            r.name,
            r.size as f64 / (1 << 20) as f64,
            r.compile,
            r.cached,
            r.load,
            r.memory as f64 / (1 << 20) as f64,
            r.fresh,
            r.warm
        );
    }
    Ok(())
}
