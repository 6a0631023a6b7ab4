//! The one name for how a request was answered, owned by the cache: the
//! request metrics' `outcome` label and `X-Artifact-Source` both derive
//! from it.

/// How a request was served: the `outcome` label of the request metrics
/// and, for answers that carry bytes or a stored answer, the
/// `X-Artifact-Source` header ([`Outcome::source`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Fresh entry served from the store.
    Hit,
    /// Fetched from upstream (and stored, or waiting on such a fetch).
    Miss,
    /// Stale entry served because the upstream failed.
    Stale,
    /// Expired entry confirmed by the upstream (304 / same digest).
    Revalidated,
    /// Not cacheable; streamed through.
    Bypass,
    /// Answered by an adapter or admin handler without the cache.
    Direct,
    /// Hosted read, write, delete or list.
    Hosted,
    /// An error response.
    Error,
}

impl Outcome {
    /// Every outcome, in the order of their indices ([`Outcome::index`]).
    pub const ALL: [Outcome; 8] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Stale,
        Outcome::Revalidated,
        Outcome::Bypass,
        Outcome::Direct,
        Outcome::Hosted,
        Outcome::Error,
    ];

    /// The position in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Stale => "stale",
            Outcome::Revalidated => "revalidated",
            Outcome::Bypass => "bypass",
            Outcome::Direct => "direct",
            Outcome::Hosted => "hosted",
            Outcome::Error => "error",
        }
    }

    /// The `X-Artifact-Source` value: `cache` for what the store answered
    /// (a hit, a revalidated entry, a hosted read), `remote` for what the
    /// upstream answered now (a miss, a bypass), `stale` for a stored copy
    /// standing in for a failed upstream; none for answers that are neither.
    pub fn source(self) -> Option<&'static str> {
        match self {
            Outcome::Hit | Outcome::Revalidated | Outcome::Hosted => Some("cache"),
            Outcome::Miss | Outcome::Bypass => Some("remote"),
            Outcome::Stale => Some("stale"),
            Outcome::Direct | Outcome::Error => None,
        }
    }
}
