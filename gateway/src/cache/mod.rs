//! The cache engine, run on an [`Engine`] (what it uses of the gateway):
//! freshness ([`freshness`]), remembered adapter
//! decisions ([`memo`]), the per-key fill lock and streaming tee
//! ([`fill`], [`reader`]), the upstream fetch a fill leader runs
//! ([`leader`]), `HEAD` misses answered from an upstream `HEAD`
//! ([`upstream_head`]), background prefetch of what an index references
//! ([`prefetch`]), byte ranges ([`range`]), the check that keeps failed
//! git answers out of the store ([`pktcheck`]), and answers an adapter
//! reads through the cache to derive its own from ([`shared`]).

pub mod checksum;
pub mod engine;
pub mod fill;
pub mod freshness;
pub mod head;
pub mod leader;
pub mod memo;
mod outcome;
pub mod pktcheck;
pub mod plan;
pub mod prefetch;
pub mod range;
pub mod reader;
pub mod shared;
#[cfg(test)]
pub(crate) mod testkit;
pub mod upstream_head;

pub use engine::Engine;
pub use fill::{Fill, FillState, Fills, Head, Joined};
pub use outcome::Outcome;
