//! The built-in `deb` adapter (under construction).

use artgate_sdk::prelude::*;

/// The deb adapter.
pub struct Deb;

impl Adapter for Deb {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("deb", env!("CARGO_PKG_VERSION"), ["deb"])
    }

    fn plan(_remote: RemoteInfo, _req: Request) -> Decision {
        Decision::Reject(Rejection::new(501, "the deb adapter is not built yet"))
    }
}

artgate_sdk::export_adapter!(Deb, stateless, accepts_every_response);
