//! The built-in `maven` adapter (under construction).

use artgate_sdk::prelude::*;

/// The maven adapter.
pub struct Maven;

impl Adapter for Maven {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("maven", env!("CARGO_PKG_VERSION"), ["maven"])
    }

    fn plan(_remote: RemoteInfo, _req: Request) -> Decision {
        Decision::Reject(Rejection::new(501, "the maven adapter is not built yet"))
    }
}

artgate_sdk::export_adapter!(Maven, stateless, accepts_every_response);
