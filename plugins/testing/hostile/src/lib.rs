//! `hostile`: an adapter that misbehaves on purpose, for the gateway's
//! fault-isolation tests (invariant 6: a plugin fault stays in its remote).
//!
//! It serves package type `hostile`. `plan` does what the remote option
//! `mode` says:
//!
//! | mode | behaviour | the host should |
//! | --- | --- | --- |
//! | `loop` | spins forever | stop it at the epoch deadline |
//! | `grow` | allocates and touches 1 MiB blocks without bound | stop it at the memory cap (or it traps when allocation fails) |
//! | `trap` | executes `unreachable` | report the trap |
//! | `recurse` | recurses without bound (small frames) | stop it at the wasm stack limit (`call stack exhausted`) |
//! | `huge` | answers directly with a 64 MiB body | refuse the oversized response (wasmtime's host-call copy limit already fails the call) |
//! | `bad-status` | answers directly with status 999 | refuse the invalid output |
//! | `bad-header` | answers with a header name and value that are not valid HTTP | refuse the invalid output |
//! | `log-flood` | calls `log` with 8 KiB lines without end | drop lines past the per-call limit, stop it at the epoch deadline |
//! | `kv-flood` | calls `kv-set` without end | trap it past the per-call operation limit |
//! | `http-flood` | calls `http-send` (to the remote's first upstream) without end | trap it past the per-call send limit |
//! | `ok` | answers 200 `hostile ok` | serve it |
//! | `count` | counts its calls in a global and answers 200 `call N` (state kept in an instance despite the `stateless` declaration) | show which calls shared an instance |
//! | `alloc` | allocates and touches the remote option `mib` MiB, then answers 200 `allocated N MiB` | serve it when that fits the adapter's memory cap, stop it at the cap otherwise |
//! | `sized` | forwards `GET /{path}`, naming the body size in the remote option `size` (`x-artifact-size`), which may be a lie | send the size before the body; refuse a body of another size |
//! | `gateway-url` | answers 200 with what the host's `gateway-url` says | give the URL the client reached it by |
//! | `retry` | forwards `GET /{path}`; `on-response` asks for the same request again, every time | give up after `MAX_ADAPTER_RETRIES` retries with 502 |
//!
//! The adapter declares itself `stateless`, so the gateway reuses its
//! instances; `count` and `alloc` show what the host does about an adapter
//! that does not keep that promise.
//!
//! Any other mode (or none) is rejected with 400. `on-response` accepts
//! (but in mode `retry`) and `inspect-body` keeps the body.

use std::hint::black_box;

use artgate_sdk::prelude::*;

/// The hostile adapter.
pub struct Hostile;

impl Adapter for Hostile {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("hostile", env!("CARGO_PKG_VERSION"), ["hostile"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        let mode = remote.option("mode").unwrap_or("");
        match mode {
            "loop" => spin(),
            "grow" => grow(),
            "trap" => trap(),
            "recurse" => {
                let depth = recurse(black_box(0));
                Decision::reject(
                    500,
                    format!("recursion ended at depth {depth}, unexpectedly"),
                )
            }
            "huge" => Decision::respond(
                DirectResponse::new(200, vec![b'x'; HUGE_BODY])
                    .header("content-type", "application/octet-stream"),
            ),
            "bad-status" => Decision::respond(DirectResponse::new(999, "bad status")),
            "bad-header" => Decision::respond(
                DirectResponse::new(200, "bad header").header("bad header\r\n", "x\r\ny: z"),
            ),
            "log-flood" => log_flood(),
            "kv-flood" => kv_flood(),
            "http-flood" => http_flood(&remote),
            "sized" => forward_get(
                format!("/{}", http::encode_path(&req.path)),
                CachePlan::immutable(req.path.as_str())
                    .header("x-artifact-size", remote.option("size").unwrap_or("")),
            ),
            "retry" => forward_get(
                format!("/{}", http::encode_path(&req.path)),
                CachePlan::immutable(req.path.as_str()),
            ),
            "gateway-url" => Decision::respond(
                DirectResponse::new(200, artgate_sdk::host::gateway_url())
                    .header("content-type", "text/plain"),
            ),
            "count" => {
                let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                Decision::respond(
                    DirectResponse::new(200, format!("call {n}"))
                        .header("content-type", "text/plain; charset=utf-8"),
                )
            }
            "ok" => Decision::respond(
                DirectResponse::new(200, "hostile ok")
                    .header("content-type", "text/plain; charset=utf-8"),
            ),
            "alloc" => {
                let mib: usize = remote
                    .option("mib")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(1);
                let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(mib);
                for _ in 0..mib {
                    let mut block = vec![0u8; 1 << 20];
                    for i in (0..block.len()).step_by(4096) {
                        block[i] = black_box(1);
                    }
                    blocks.push(black_box(block));
                }
                Decision::respond(
                    DirectResponse::new(200, format!("allocated {} MiB", black_box(&blocks).len()))
                        .header("content-type", "text/plain; charset=utf-8"),
                )
            }
            other => Decision::reject(
                400,
                format!(
                    "Remote option mode is {other:?}; use loop, grow, trap, recurse, huge, bad-status, bad-header, log-flood, kv-flood, http-flood, sized, retry, alloc, count, gateway-url or ok."
                ),
            ),
        }
    }

    fn on_response(
        remote: RemoteInfo,
        req: Request,
        sent: UpstreamRequest,
        resp: UpstreamResponse,
        attempt: u32,
    ) -> AfterHeaders {
        let _ = (req, resp, attempt);
        match remote.option("mode") {
            Some("retry") => AfterHeaders::Retry(sent),
            _ => AfterHeaders::Accept,
        }
    }
}

artgate_sdk::export_adapter!(Hostile, stateless);

/// Calls of mode `count` on this instance.
static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Size of the body of mode `huge`: 64 MiB.
const HUGE_BODY: usize = 64 << 20;

/// Spins forever. The volatile read of a black-boxed counter keeps the loop
/// from being optimised away or proven side-effect free.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter).wrapping_add(1);
        black_box(&counter);
    }
}

/// Allocates 1 MiB blocks and writes every 4 KiB page of each until
/// allocation fails (which aborts, a trap) or the host stops it.
fn grow() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        for i in (0..block.len()).step_by(4096) {
            block[i] = black_box(1);
        }
        blocks.push(black_box(block));
        black_box(&blocks);
    }
}

/// Logs 8 KiB lines until the host stops the call.
fn log_flood() -> ! {
    let line = "x".repeat(8 << 10);
    loop {
        artgate_sdk::log::log(Level::Error, black_box(&line));
    }
}

/// Writes key-value entries until the host refuses (a trap).
fn kv_flood() -> ! {
    let value = vec![7u8; 1024];
    let mut i = 0u64;
    loop {
        artgate_sdk::host::kv_set(&format!("flood-{i}"), black_box(&value), 60);
        i = i.wrapping_add(1);
    }
}

/// Sends requests to the remote's first upstream until the host refuses
/// (a trap).
fn http_flood(remote: &RemoteInfo) -> ! {
    let url = format!(
        "{}/flood",
        remote
            .upstreams
            .first()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:9")
    );
    loop {
        let _ = black_box(artgate_sdk::host::http_send(&OutgoingRequest {
            method: "GET".into(),
            url: url.clone(),
            headers: Vec::new(),
            body: Vec::new(),
            use_credentials: false,
        }));
    }
}

/// Traps with `unreachable`.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    panic!("hostile adapter: trap requested");
}

/// Recurses without bound. Frames are small (the shadow stack in linear
/// memory grows by a few bytes a call), so the engine's wasm call-stack limit
/// is what stops it; `black_box` on each result keeps the recursion from
/// becoming a loop.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    black_box(recurse(black_box(depth + 1))).wrapping_add(depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(mode: Option<&str>) -> RemoteInfo {
        RemoteInfo {
            name: "evil".into(),
            package: "hostile".into(),
            mode: RemoteMode::PullThrough,
            upstreams: vec![],
            mutable_ttl_secs: 0,
            negative_ttl_secs: 0,
            check_mutable_updates: false,
            immutable_patterns: vec![],
            mutable_patterns: vec![],
            options: mode
                .map(|m| vec![("mode".to_string(), m.to_string())])
                .unwrap_or_default(),
            has_credentials: false,
        }
    }

    fn request() -> Request {
        Request {
            id: "1".into(),
            kind: RouteKind::RemoteApi,
            method: "GET".into(),
            path: "x".into(),
            query: None,
            headers: vec![],
            body: None,
            body_too_large: false,
        }
    }

    fn respond(mode: &str) -> DirectResponse {
        match Hostile::plan(remote(Some(mode)), request()) {
            Decision::Respond(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn describe() {
        let info = Hostile::describe();
        assert_eq!(info.name, "hostile");
        assert_eq!(info.package_types, ["hostile"]);
    }

    #[test]
    fn harmless_modes() {
        let ok = respond("ok");
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"hostile ok"[..]));
        assert_eq!(respond("huge").body.len(), 64 << 20);
        assert_eq!(respond("bad-status").status, 999);
        assert!(respond("bad-header").headers[0].name.contains(' '));
        for mode in [None, Some("nope")] {
            match Hostile::plan(remote(mode), request()) {
                Decision::Reject(r) => assert_eq!(r.status, 400),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn retry_mode_asks_for_the_same_request_again() {
        let sent = UpstreamRequest::get("/x");
        let resp = UpstreamResponse {
            status: 200,
            headers: vec![],
        };
        let again = Hostile::on_response(
            remote(Some("retry")),
            request(),
            sent.clone(),
            resp.clone(),
            7,
        );
        assert_eq!(again.expect_retry(), sent);
        Hostile::on_response(remote(Some("ok")), request(), sent, resp, 0).expect_accept();
    }

    #[test]
    #[should_panic(expected = "trap requested")]
    fn trap_panics_on_the_host() {
        Hostile::plan(remote(Some("trap")), request());
    }
}
