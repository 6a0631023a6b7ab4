//! The cache engine: freshness ([`freshness`]), remembered adapter
//! decisions ([`memo`]), the per-key fill lock and streaming tee
//! ([`fill`], [`reader`]), the upstream fetch a fill leader runs
//! ([`leader`]), background prefetch of what an index references
//! ([`prefetch`]), and byte ranges ([`range`]).

pub mod fill;
pub mod freshness;
pub mod leader;
pub mod memo;
pub mod prefetch;
pub mod range;
pub mod reader;

pub use fill::{Fill, FillState, Fills, Head, Joined, Source};
