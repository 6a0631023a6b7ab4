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
/// impl). With the flag `accepts_every_response`, the exported
/// `on-response` accepts without calling the adapter's own, so what the
/// flag declares to the gateway is true by construction.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_guest {
    ($ty:ident $(, $flag:ident)*) => {
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
                if $crate::__accepts_every_response!($($flag)*) {
                    return $crate::types::AfterHeaders::Accept;
                }
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

/// Whether the flags of [`export_adapter!`](crate::export_adapter) include
/// `accepts_every_response`.
#[doc(hidden)]
#[macro_export]
macro_rules! __accepts_every_response {
    () => {
        false
    };
    (accepts_every_response $($rest:ident)*) => {
        true
    };
    ($other:ident $($rest:ident)*) => {
        $crate::__accepts_every_response!($($rest)*)
    };
}

/// The custom section one flag of [`export_adapter!`](crate::export_adapter)
/// declares (the gateway reads them; they are not part of the WIT world).
#[doc(hidden)]
#[macro_export]
macro_rules! __declare {
    (stateless) => {
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "artgate:instances")]
        static __ARTGATE_INSTANCES: [u8; 9] = *b"stateless";
    };
    (accepts_every_response) => {
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "artgate:on-response")]
        static __ARTGATE_ON_RESPONSE: [u8; 6] = *b"accept";
    };
    ($other:ident) => {
        compile_error!(concat!(
            "unknown export_adapter! flag `",
            stringify!($other),
            "`: the flags are `stateless` and `accepts_every_response`"
        ));
    };
}

#[cfg(test)]
mod tests {
    use crate::Guest;
    use crate::prelude::*;

    /// An adapter whose own `on_response` fails every answer.
    macro_rules! failing_on_response {
        ($ty:ident) => {
            struct $ty;
            impl Adapter for $ty {
                fn describe() -> AdapterInfo {
                    AdapterInfo::new("t", "1", ["t"])
                }
                fn plan(_remote: RemoteInfo, _req: Request) -> Decision {
                    Decision::reject(404, "Nothing here.")
                }
                fn on_response(
                    _remote: RemoteInfo,
                    _req: Request,
                    _sent: UpstreamRequest,
                    _resp: UpstreamResponse,
                    _attempt: u32,
                ) -> AfterHeaders {
                    AfterHeaders::Fail(Rejection::new(502, "Refused."))
                }
            }
        };
    }
    failing_on_response!(Plain);
    failing_on_response!(Declared);
    crate::export_adapter!(Plain, stateless);
    crate::export_adapter!(Declared, accepts_every_response, stateless);

    fn on_response<T: Guest>() -> AfterHeaders {
        T::on_response(
            RemoteInfo::test(),
            Request::test("GET", "/a"),
            UpstreamRequest::get("/a"),
            UpstreamResponse::test(200, &[]),
            0,
        )
    }

    /// Without the flag the export calls the adapter's `on_response`; with
    /// `accepts_every_response` (in any position) it accepts without it,
    /// so the gateway skipping the call changes nothing.
    #[test]
    fn accepts_every_response_is_true_by_construction() {
        assert!(matches!(on_response::<Plain>(), AfterHeaders::Fail(_)));
        assert_eq!(on_response::<Declared>(), AfterHeaders::Accept);
    }
}
