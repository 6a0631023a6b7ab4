//! What the console keeps in the running gateway ([`Console`], held by
//! `AppState`).

use super::{recent, session};

/// The console's state in the running gateway.
pub struct Console {
    /// Login sessions.
    pub sessions: session::Sessions,
    /// Recent misses and errors per remote.
    pub recent: recent::Recent,
    /// When the gateway started.
    pub started: std::time::Instant,
}

impl Default for Console {
    fn default() -> Self {
        Console {
            sessions: Default::default(),
            recent: Default::default(),
            started: std::time::Instant::now(),
        }
    }
}
