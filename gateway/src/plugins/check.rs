//! `artgate plugin check FILE.wasm [--cases DIR]`: load a component the way
//! the gateway does (the same [`PluginEngine`] settings and limits, the
//! same world check, `describe`), then run golden cases ([`super::case`])
//! against it and print one PASS/FAIL line per case with a diff.
//!
//! The cases of one run share a key-value store (a temporary index that is
//! deleted afterwards) and run in file-name order, so a case may rely on
//! what an earlier one stored (e.g. an index inspection remembering digests
//! that a later file plan uses). `http-send` is not available: it answers
//! every call with an error.

use super::adapter::{Adapter, ComponentFacts, Source};
use super::case::{self, Call, Case};
use super::engine::PluginEngine;
use super::host::CallContext;
use super::{PluginError, render, wit, world};
use crate::config::PluginsConfig;
use crate::store::{Digest, MetaStore, SledMetaStore};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckArgs {
    /// The component.
    pub wasm: PathBuf,
    /// Directory of golden cases (`*.toml`, `*.json`).
    pub cases: Option<PathBuf>,
    /// Compiled-code cache directory (none: compile every time).
    pub cache_dir: Option<PathBuf>,
}

/// Run the check, writing the report to `out`. `Ok(true)` when the
/// component loads and every case passes.
pub async fn run(
    cfg: &PluginsConfig,
    args: &CheckArgs,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let wasm = std::fs::read(&args.wasm)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.wasm.display()))?;
    let facts = ComponentFacts::of(&wasm);
    writeln!(
        out,
        "component: {} ({} bytes, sha256 {})",
        args.wasm.display(),
        wasm.len(),
        &facts.sha256[..16]
    )?;
    let engine = PluginEngine::new(cfg, args.cache_dir.clone())?;

    let started = Instant::now();
    let eng = engine.clone();
    let compiled = tokio::task::spawn_blocking(move || eng.compile(&wasm)).await?;
    let component = match compiled {
        Ok(c) => c,
        Err(e) => {
            writeln!(out, "FAIL load: {e}")?;
            return Ok(false);
        }
    };
    writeln!(
        out,
        "compile: {:.2?}{}",
        started.elapsed(),
        if args.cache_dir.is_some() {
            " (compiled-code cache on)"
        } else {
            ""
        }
    )?;

    match world::check(engine.engine(), &component) {
        Ok(summary) => {
            let (wasi, own): (Vec<&String>, Vec<&String>) =
                summary.imports.iter().partition(|i| i.starts_with("wasi:"));
            let mut imports: Vec<String> = own.into_iter().cloned().collect();
            if !wasi.is_empty() {
                imports.push(format!("{} WASI interfaces (linked deny-all)", wasi.len()));
            }
            writeln!(
                out,
                "world: {}/{}@{} exported; imports: {}",
                world::WIT_PACKAGE,
                world::HANDLER,
                summary.handler_version.as_deref().unwrap_or("?"),
                if imports.is_empty() {
                    "none".to_owned()
                } else {
                    imports.join(", ")
                }
            )?;
        }
        Err(e) => {
            writeln!(out, "FAIL world: {e}")?;
            return Ok(false);
        }
    }

    let adapter = match Adapter::from_component(
        engine.clone(),
        &component,
        facts,
        Source::Dir(args.wasm.clone()),
    )
    .await
    {
        Ok(a) => Arc::new(a),
        Err(e) => {
            writeln!(out, "FAIL describe: {e}")?;
            return Ok(false);
        }
    };
    writeln!(out, "describe: {}", render::adapter_info(&adapter.info))?;
    if adapter.declared.accepts_every_response {
        writeln!(
            out,
            "on-response: declared to accept every upstream answer, so the gateway does not call it"
        )?;
    }
    let l = adapter.limits();
    writeln!(
        out,
        "limits: memory {} bytes, {:?} per call, {} calls at once (waiting up to {:?}) on {} lane thread(s){}",
        l.memory_limit,
        l.call_timeout,
        l.max_concurrent_calls,
        l.queue_timeout,
        l.lane_threads,
        match (adapter.warm_calls(), adapter.declared.stateless) {
            (Some(n), true) => format!(
                ", declared stateless: an instance is reused for up to {n} calls while its memory does not grow"
            ),
            (Some(n), false) => format!(", warm instances reused for up to {n} calls"),
            (None, true) =>
                ", declared stateless, but a fresh instance per call (warm_instances = 1)".into(),
            (None, false) => ", a fresh instance per call".into(),
        }
    )?;

    let Some(dir) = &args.cases else {
        return Ok(true);
    };
    let files = case::case_files(dir).map_err(|e| anyhow::anyhow!("cases: {e}"))?;
    if files.is_empty() {
        writeln!(
            out,
            "FAIL cases: no *.toml or *.json files in {}",
            dir.display()
        )?;
        return Ok(false);
    }
    let kv_dir = TempDir::new()?;
    let kv: Arc<dyn MetaStore> = Arc::new(
        SledMetaStore::open(&kv_dir.0.join("index"))
            .map_err(|e| anyhow::anyhow!("temporary key-value store: {e}"))?,
    );
    let package = adapter
        .info
        .package_types
        .first()
        .cloned()
        .unwrap_or_default();
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let shown = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let case = match case::load(file, &package) {
            Ok(c) => c,
            Err(e) => {
                failed += 1;
                writeln!(out, "FAIL {shown}: bad case file: {e}")?;
                continue;
            }
        };
        let ctx = CallContext {
            adapter: Arc::from(adapter.name()),
            request_id: Arc::from(format!("check-{}", case.name)),
            kv: Some(Arc::new(super::kv::AdapterKv::new(
                kv.clone(),
                adapter.name(),
                &case.remote.name,
            ))),
            http: None,
            gateway_url: Some(Arc::from(case.gateway_url.as_str())),

            upload: None,
        };
        let started = Instant::now();
        let result = call(&adapter, ctx, &case).await;
        let took = started.elapsed();
        let label = match &case.description {
            Some(d) => format!("{shown} ({d})"),
            None => shown.clone(),
        };
        let problems = judge(&case, &result);
        if problems.is_empty() {
            passed += 1;
            writeln!(out, "PASS {label} [{took:.1?}]")?;
        } else {
            failed += 1;
            writeln!(out, "FAIL {label} [{took:.1?}]")?;
            for p in &problems {
                for (i, line) in p.lines().enumerate() {
                    writeln!(out, "  {}{line}", if i == 0 { "" } else { "  " })?;
                }
            }
            if let Ok(actual) = &result {
                writeln!(out, "  got: {actual}")?;
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(failed == 0)
}

/// Call the function a case names; the output as JSON.
async fn call(adapter: &Adapter, ctx: CallContext, case: &Case) -> Result<Value, PluginError> {
    match case.call {
        Call::Plan => {
            let d = adapter.plan(ctx, &case.remote, &case.request).await?;
            let problems = lint_decision(&d);
            if !problems.is_empty() {
                return Err(PluginError::BadOutput(problems.join("; ")));
            }
            Ok(render::decision(&d))
        }
        Call::OnResponse => {
            let sent = match &case.sent {
                Some(s) => s.clone(),
                None => match adapter
                    .plan(ctx.clone(), &case.remote, &case.request)
                    .await?
                {
                    wit::Decision::Forward(f) => f.upstream,
                    other => {
                        return Err(PluginError::BadOutput(format!(
                            "the case gives no `sent` and plan did not forward: {}",
                            render::decision(&other)
                        )));
                    }
                },
            };
            let a = adapter
                .on_response(
                    ctx,
                    &case.remote,
                    &case.request,
                    &sent,
                    &case.response,
                    case.attempt,
                )
                .await?;
            Ok(render::after_headers(&a))
        }
        Call::InspectBody => {
            let v = adapter
                .inspect_body(
                    ctx,
                    &case.remote,
                    &case.request,
                    &case.response,
                    &case.response_body,
                )
                .await?;
            Ok(render::body_verdict(&v))
        }
    }
}

/// What is wrong with a case's outcome (empty: PASS).
fn judge(case: &Case, result: &Result<Value, PluginError>) -> Vec<String> {
    match (result, &case.expect_error) {
        (Err(e), Some(want)) if e.to_string().contains(want.as_str()) => Vec::new(),
        (Err(e), Some(want)) => vec![format!("expected an error containing {want:?}, got: {e}")],
        (Err(e), None) => vec![format!("the call failed: {e}")],
        (Ok(_), Some(want)) => vec![format!(
            "expected an error containing {want:?}, but the call succeeded"
        )],
        (Ok(actual), None) => match &case.expect {
            Some(exp) => render::compare(exp, actual),
            None => Vec::new(),
        },
    }
}

/// The checks the gateway applies to a decision before acting on it; a
/// decision that fails one gives clients a 502.
pub fn lint_decision(d: &wit::Decision) -> Vec<String> {
    let mut out = Vec::new();
    match d {
        wit::Decision::Forward(f) => {
            let p = &f.plan;
            if p.key.is_empty()
                || p.key.len() > crate::cache::plan::MAX_KEY_BYTES
                || p.key.contains('\0')
            {
                out.push("the cache key is empty, longer than 64 KiB or contains NUL".into());
            }
            if let Some(dg) = &p.expected_digest
                && let Err(e) = crate::cache::plan::check_expected_digest(dg)
            {
                out.push(e);
            }
            let t = &f.upstream.target;
            if !(t.starts_with('/') || t.starts_with("http://") || t.starts_with("https://")) {
                out.push(format!(
                    "upstream target {t:?} is neither a path starting with / nor an http(s) URL"
                ));
            }
            lint_headers(&f.upstream.headers, "upstream", &mut out);
            lint_headers(&p.response_headers, "response", &mut out);
        }
        wit::Decision::Respond(r) => {
            if !(200..=599).contains(&r.status) {
                out.push(format!(
                    "status {} is not an HTTP status from 200 to 599",
                    r.status
                ));
            }
            lint_headers(&r.headers, "response", &mut out);
        }
        wit::Decision::Reject(r) => {
            if !(400..=599).contains(&r.status) {
                out.push(format!(
                    "rejection status {} is not 4xx or 5xx (the gateway answers 502)",
                    r.status
                ));
            }
        }
        wit::Decision::Hosted(wit::HostedOp::Write(w)) => {
            if let Some(dg) = &w.expected_digest
                && let Err(e) = dg.parse::<Digest>()
            {
                out.push(format!("invalid expected-digest {dg:?}: {e}"));
            }
        }
        wit::Decision::ReadBody(_) | wit::Decision::Hosted(_) => {}
    }
    out
}

fn lint_headers(hs: &[wit::Header], what: &str, out: &mut Vec<String>) {
    for h in hs {
        if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
            out.push(format!("{what} header name {:?} is not valid", h.name));
        } else if http::HeaderValue::from_str(&h.value).is_err() {
            out.push(format!(
                "the value of {what} header {} is not valid",
                h.name
            ));
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let p = std::env::temp_dir().join(format!(
            "artgate-plugin-check-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
