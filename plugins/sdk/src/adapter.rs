//! The [`Adapter`] trait and its bridge to the generated `Guest` trait.

use crate::Guest;
use crate::types::{
    AdapterInfo, AfterHeaders, BodyVerdict, Decision, RemoteInfo, Request, UpstreamRequest,
    UpstreamResponse,
};

/// An artgate adapter: the functions of the WIT `handler` interface, with
/// defaults for the optional hooks.
///
/// Export an implementation with [`export_adapter!`](crate::export_adapter).
/// Functions take no `self`: the host may call a fresh instance for every
/// request, so per-instance state can only be a cache (see
/// [`Patterns::for_remote`](crate::pattern::Patterns::for_remote)).
pub trait Adapter {
    /// Describes the adapter (name, version, package types). Called once when
    /// the component is loaded.
    fn describe() -> AdapterInfo;

    /// Decides what to do with a request that is not a fresh cache hit.
    fn plan(remote: RemoteInfo, req: Request) -> Decision;

    /// Called when upstream response headers arrive for a forwarded request;
    /// `attempt` counts from 0. The default accepts the plan as it is.
    fn on_response(
        remote: RemoteInfo,
        req: Request,
        sent: UpstreamRequest,
        resp: UpstreamResponse,
        attempt: u32,
    ) -> AfterHeaders {
        let _ = (remote, req, sent, resp, attempt);
        AfterHeaders::Accept
    }

    /// Called with a small body when the plan set `inspect-limit`. The default
    /// keeps the body and the plan unchanged.
    fn inspect_body(
        remote: RemoteInfo,
        req: Request,
        resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        let _ = (remote, req, resp, body);
        BodyVerdict::default()
    }
}

impl<T: Adapter> Guest for T {
    fn describe() -> AdapterInfo {
        <T as Adapter>::describe()
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        <T as Adapter>::plan(remote, req)
    }

    fn on_response(
        remote: RemoteInfo,
        req: Request,
        sent: UpstreamRequest,
        resp: UpstreamResponse,
        attempt: u32,
    ) -> AfterHeaders {
        <T as Adapter>::on_response(remote, req, sent, resp, attempt)
    }

    fn inspect_body(
        remote: RemoteInfo,
        req: Request,
        resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        <T as Adapter>::inspect_body(remote, req, resp, body)
    }
}
