//! The [`Adapter`] trait, what `plan` may return ([`IntoDecision`]), and the
//! bridge to the generated `Guest` trait that
//! [`export_adapter!`](crate::export_adapter) writes.

use crate::types::{
    AdapterInfo, AfterHeaders, BodyVerdict, Decision, Rejection, RemoteInfo, Request,
    UpstreamRequest, UpstreamResponse,
};

/// What `plan` returns when it refuses with `?`: a [`Decision`], or the
/// [`Rejection`] an early return carries (answered as
/// [`Decision::Reject`]).
///
/// ```
/// use artgate_sdk::prelude::*;
///
/// struct Mine;
///
/// impl Adapter<PlanResult> for Mine {
///     fn describe() -> AdapterInfo {
///         AdapterInfo::new("mine", "1.0.0", ["mine"])
///     }
///     fn plan(remote: RemoteInfo, req: Request) -> PlanResult {
///         let ttl = remote.option_secs("ttl")?.unwrap_or(60);
///         if !req.is_read() {
///             return Err(Rejection::new(405, "Only GET and HEAD are supported."));
///         }
///         Ok(forward_get(req.upstream_target(), CachePlan::mutable(req.path_and_query()).ttl(ttl)))
///     }
/// }
///
/// artgate_sdk::export_adapter!(Mine);
/// ```
pub type PlanResult = Result<Decision, Rejection>;

/// What an adapter's `plan` may return: a [`Decision`], or a
/// [`PlanResult`] (`Result<Decision, Rejection>`, so `plan` can use `?`).
pub trait IntoDecision {
    /// The decision the host receives.
    fn into_decision(self) -> Decision;
}

impl IntoDecision for Decision {
    fn into_decision(self) -> Decision {
        self
    }
}

impl IntoDecision for Result<Decision, Rejection> {
    fn into_decision(self) -> Decision {
        self.unwrap_or_else(Decision::Reject)
    }
}

impl From<Rejection> for Decision {
    /// [`Decision::Reject`].
    fn from(r: Rejection) -> Decision {
        Decision::Reject(r)
    }
}

/// An artgate adapter: the functions of the WIT `handler` interface, with
/// defaults for the optional hooks.
///
/// `P` is what [`plan`](Self::plan) returns: [`Decision`] (the default, so
/// `impl Adapter for Mine` with `fn plan(..) -> Decision`), or
/// [`PlanResult`] to refuse with `?` (`impl Adapter<PlanResult> for Mine`).
///
/// Export an implementation with [`export_adapter!`](crate::export_adapter).
/// Functions take no `self`: the host may call a fresh instance for every
/// request, so per-instance state can only be a cache (see
/// [`Patterns::for_remote`](crate::pattern::Patterns::for_remote)). To unit
/// test logic that calls the host (`http-send`, the key-value store,
/// `cache-send`), write it against [`Host`](crate::Host) and pass
/// [`WasmHost`](crate::WasmHost) from these functions; tests pass a
/// `artgate_sdk::testing::FakeHost`.
pub trait Adapter<P: IntoDecision = Decision> {
    /// Describes the adapter (name, version, package types). Called once when
    /// the component is loaded.
    fn describe() -> AdapterInfo;

    /// Decides what to do with a request that is not a fresh cache hit.
    fn plan(remote: RemoteInfo, req: Request) -> P;

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

/// Implements the generated `Guest` trait for an [`Adapter`] type; used by
/// [`export_adapter!`](crate::export_adapter) (one impl per adapter type,
/// so `plan`'s return type is inferred from the adapter's one `Adapter`
/// impl).
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_guest {
    ($ty:ident) => {
        impl $crate::Guest for $ty {
            fn describe() -> $crate::types::AdapterInfo {
                <$ty as $crate::Adapter<_>>::describe()
            }

            fn plan(
                remote: $crate::types::RemoteInfo,
                req: $crate::types::Request,
            ) -> $crate::types::Decision {
                $crate::IntoDecision::into_decision(<$ty as $crate::Adapter<_>>::plan(remote, req))
            }

            fn on_response(
                remote: $crate::types::RemoteInfo,
                req: $crate::types::Request,
                sent: $crate::types::UpstreamRequest,
                resp: $crate::types::UpstreamResponse,
                attempt: u32,
            ) -> $crate::types::AfterHeaders {
                <$ty as $crate::Adapter<_>>::on_response(remote, req, sent, resp, attempt)
            }

            fn inspect_body(
                remote: $crate::types::RemoteInfo,
                req: $crate::types::Request,
                resp: $crate::types::UpstreamResponse,
                body: ::std::vec::Vec<u8>,
            ) -> $crate::types::BodyVerdict {
                <$ty as $crate::Adapter<_>>::inspect_body(remote, req, resp, body)
            }
        }
    };
}
