//! The host's capabilities as a trait ([`Host`]), so adapter logic that
//! calls them can be unit tested on the host target with a fake
//! (`artgate_sdk::testing::FakeHost`), and the real implementation
//! ([`WasmHost`]) that calls the component imports.

use crate::types::{
    BodyLayout, CachePlan, IncomingResponse, Level, OutgoingRequest, Rejection, StagedFile,
    UnpackedBody,
};

/// The capabilities the host grants an adapter (WIT interface
/// `artgate:adapter/host`), one method per import.
///
/// Write logic that needs them against `&impl Host` (or `&dyn Host`); the
/// [`Adapter`](crate::Adapter) functions pass [`WasmHost`]:
///
/// ```
/// use artgate_sdk::prelude::*;
///
/// /// Plans with a remembered fact from the key-value store.
/// fn plan_with(host: &impl Host, remote: &RemoteInfo, req: &Request) -> Decision {
///     let seen = host.kv_get(&format!("seen/{}", req.path)).is_some();
///     host.log(Level::Debug, &format!("{} seen before: {seen}", req.path));
///     forward_get(req.upstream_target(), CachePlan::immutable(req.path_and_query()))
/// }
///
/// struct Mine;
///
/// impl Adapter for Mine {
///     fn describe() -> AdapterInfo {
///         AdapterInfo::new("mine", "1.0.0", ["mine"])
///     }
///     fn plan(remote: RemoteInfo, req: Request) -> Decision {
///         plan_with(&WasmHost, &remote, &req)
///     }
/// }
/// # artgate_sdk::export_adapter!(Mine);
/// ```
pub trait Host {
    /// `log`: a line in the gateway's log, tagged with the adapter and the
    /// request id. (The logging macros, [`info!`](crate::info) and the
    /// others, always write through the component import.)
    fn log(&self, level: Level, message: &str);

    /// `http-send`: a small request to one of the remote's hosts (or an
    /// auth realm it named); the body is bounded by the host.
    fn http_send(&self, req: &OutgoingRequest) -> Result<IncomingResponse, String>;

    /// `kv-get`: the value of `key` in the adapter's store for this
    /// remote, if set and unexpired.
    fn kv_get(&self, key: &str) -> Option<Vec<u8>>;

    /// `kv-set` with a TTL in seconds (0: never expires).
    fn kv_set(&self, key: &str, value: &[u8], ttl_secs: u64);

    /// `kv-delete`.
    fn kv_delete(&self, key: &str);

    /// `kv-compare-and-set`: writes `value` only if the current value is
    /// `expected` (`None`: absent), atomically; whether it was written.
    /// Required: a read and a write would not be atomic, and [`kvlock`]
    /// relies on it.
    ///
    /// [`kvlock`]: crate::kvlock
    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl_secs: u64,
    ) -> bool;

    /// `cache-send`: a request answered through the cache by `plan`, with a
    /// body of at most `limit` bytes.
    fn cache_send(
        &self,
        req: &OutgoingRequest,
        plan: &CachePlan,
        limit: u32,
    ) -> Result<IncomingResponse, String>;

    /// `cache-expire`: marks the entry `key` of this remote expired.
    fn cache_expire(&self, key: &str);

    /// `gateway-url`: the base URL clients reach the gateway by, without a
    /// trailing `/` (empty where a call has no request). Answers built from
    /// it without the gateway's `public_url` depend on the client's `Host`:
    /// answer them directly rather than storing them for everyone. The
    /// default (for other implementations of this trait) is empty.
    fn gateway_url(&self) -> String {
        String::new()
    }

    /// `unpack-body`: the current request's body with the files `layout`
    /// names taken out by the host (they never pass through the adapter),
    /// the rest at most `rest_limit` bytes. Only in `plan` on a hosted
    /// remote, once per request. The default (for other implementations
    /// of this trait) refuses.
    fn unpack_body(&self, layout: &BodyLayout, rest_limit: u32) -> Result<UnpackedBody, Rejection> {
        let _ = (layout, rest_limit);
        Err(Rejection::new(500, "unpack-body is not available here."))
    }

    /// `hosted-commit`: stores staged file `file` as the hosted entry
    /// `key`; with `refuse_overwrite`, an existing key is a 409. The
    /// default refuses.
    fn hosted_commit(
        &self,
        file: u32,
        key: &str,
        content_type: Option<&str>,
        refuse_overwrite: bool,
    ) -> Result<(), Rejection> {
        let _ = (file, key, content_type, refuse_overwrite);
        Err(Rejection::new(500, "hosted-commit is not available here."))
    }

    /// `stage-body`: the current request's whole body spooled and hashed
    /// by the host as staged file 0 (it never passes through the adapter),
    /// for `hosted_commit`. Only in `plan` on a hosted remote, once per
    /// request (it and `unpack_body` each consume the body). The default
    /// refuses.
    fn stage_body(&self) -> Result<StagedFile, Rejection> {
        Err(Rejection::new(500, "stage-body is not available here."))
    }
}

/// The real host: each method calls the component import of the same name.
///
/// Only usable inside a component: outside one (host-target tests) the
/// imports panic, except [`log`](Host::log), which writes to stderr as the
/// logging macros do. Tests use `artgate_sdk::testing::FakeHost`.
#[derive(Clone, Copy, Debug, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    fn log(&self, level: Level, message: &str) {
        crate::log::log(level, message);
    }

    fn http_send(&self, req: &OutgoingRequest) -> Result<IncomingResponse, String> {
        crate::host::http_send(req)
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        crate::host::kv_get(key)
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl_secs: u64) {
        crate::host::kv_set(key, value, ttl_secs);
    }

    fn kv_delete(&self, key: &str) {
        crate::host::kv_delete(key);
    }

    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl_secs: u64,
    ) -> bool {
        crate::host::kv_compare_and_set(key, expected, value, ttl_secs)
    }

    fn cache_send(
        &self,
        req: &OutgoingRequest,
        plan: &CachePlan,
        limit: u32,
    ) -> Result<IncomingResponse, String> {
        crate::host::cache_send(req, plan, limit)
    }

    fn cache_expire(&self, key: &str) {
        crate::host::cache_expire(key);
    }

    fn gateway_url(&self) -> String {
        crate::host::gateway_url()
    }

    fn unpack_body(&self, layout: &BodyLayout, rest_limit: u32) -> Result<UnpackedBody, Rejection> {
        crate::host::unpack_body(layout, rest_limit)
    }

    fn hosted_commit(
        &self,
        file: u32,
        key: &str,
        content_type: Option<&str>,
        refuse_overwrite: bool,
    ) -> Result<(), Rejection> {
        crate::host::hosted_commit(file, key, content_type, refuse_overwrite)
    }

    fn stage_body(&self) -> Result<StagedFile, Rejection> {
        crate::host::stage_body()
    }
}
