//! Cache plans: an adapter's `cache-plan` with the remote's defaults
//! applied ([`resolve`]) and the changes `on-response` / `inspect-body` may
//! make to it ([`apply_update`]).

use crate::plugins::wit;
use crate::state::RemoteRuntime;
use crate::store::{Digest, EntryClass, Validators};
use std::time::Duration;

/// A cache plan with the remote's defaults applied.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Cache key within the remote.
    pub key: String,
    /// Freshness class (`no-store` never reaches a fill).
    pub class: EntryClass,
    /// TTL of a mutable entry.
    pub ttl: Duration,
    /// How an expired entry is checked.
    pub validator: Validators,
    /// Content type override.
    pub content_type: Option<String>,
    /// Digest the body must have.
    pub expected: Option<Digest>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Buffer and inspect bodies up to this size.
    pub inspect_limit: Option<u32>,
    /// Cache upstream 404s for the negative TTL.
    pub cache_not_found: bool,
}

pub fn apply_update(plan: &mut Plan, u: &wit::PlanUpdate) -> Result<(), String> {
    if let Some(c) = u.class {
        plan.class =
            match c {
                wit::CacheClass::Immutable => EntryClass::Immutable,
                wit::CacheClass::Mutable => EntryClass::Mutable,
                wit::CacheClass::NoStore => return Err(
                    "the adapter turned a shared fetch into no-store after the response arrived"
                        .into(),
                ),
            };
    }
    if let Some(t) = u.ttl_secs {
        plan.ttl = Duration::from_secs(t);
    }
    if let Some(ct) = &u.content_type {
        plan.content_type = Some(ct.clone());
    }
    if let Some(d) = &u.expected_digest {
        plan.expected = Some(
            d.parse()
                .map_err(|e| format!("the adapter gave an invalid expected digest {d:?}: {e}"))?,
        );
    }
    for h in &u.add_headers {
        plan.headers.push((h.name.clone(), h.value.clone()));
    }
    Ok(())
}

/// The longest cache key (or reference) an adapter may return: longer
/// than any request target the gateway accepts (`server.max_uri_bytes` is
/// at most 60 KiB), since adapters commonly use the path as the key.
pub const MAX_KEY_BYTES: usize = 64 * 1024;

/// Apply the remote's defaults to an adapter's plan and check it.
pub fn resolve(remote: &RemoteRuntime, p: &wit::CachePlan) -> Result<Plan, String> {
    if p.key.is_empty() || p.key.len() > MAX_KEY_BYTES || p.key.contains('\0') {
        return Err("the adapter returned an empty, oversized or NUL-containing cache key".into());
    }
    let class = match p.class {
        wit::CacheClass::Immutable => EntryClass::Immutable,
        wit::CacheClass::Mutable | wit::CacheClass::NoStore => EntryClass::Mutable,
    };
    let validator = match &p.validator {
        Some(wit::Validator::Conditional) => Validators::Conditional,
        Some(wit::Validator::HeadCompare(h)) => Validators::HeadCompare(h.to_ascii_lowercase()),
        Some(wit::Validator::Refetch) => Validators::Refetch,
        None if remote.cfg.check_mutable_updates => Validators::Conditional,
        None => Validators::Refetch,
    };
    let expected = match &p.expected_digest {
        Some(d) => Some(
            d.parse()
                .map_err(|e| format!("the adapter gave an invalid expected digest {d:?}: {e}"))?,
        ),
        None => None,
    };
    Ok(Plan {
        key: p.key.clone(),
        class,
        ttl: p
            .ttl_secs
            .map(Duration::from_secs)
            .unwrap_or(remote.cfg.mutable_ttl),
        validator,
        content_type: p.content_type.clone(),
        expected,
        headers: p
            .response_headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
            .collect(),
        inspect_limit: p.inspect_limit,
        cache_not_found: p.cache_not_found,
    })
}
