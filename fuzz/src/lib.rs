//! Shared code of the fuzz targets: the gateway's entry points (the
//! adapters' live in their crates, `artgate_<adapter>::fuzz`).

#[cfg(feature = "gateway")]
pub mod gateway;
