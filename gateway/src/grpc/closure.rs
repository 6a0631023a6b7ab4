//! What a REAPI message references, asked of the `cas` adapter, and the
//! walks over Directory trees built on it. Which digests a message names is
//! format knowledge, so it lives in the adapter; the core reads the
//! messages from the store, walks, and checks presence.
//!
//! The adapter is asked through `inspect-body` (see its WIT docs) with a
//! request whose path says what the body is: `reapi/directory/{hash}` (a
//! `Directory`), `reapi/asset/{hash}` (the blob of a `PushBlob`, with the
//! push's URIs and references as `x-reapi-*` headers),
//! `reapi/asset-directory/{hash}` (a `PushDirectory`) and `ac/{hash}` (an
//! `ActionResult`, as for HTTP uploads). Its `references` are keys:
//! `cas/{hash}`, a blob that must exist, and `tree/{hash}`, a Directory
//! whose whole closure must exist.

use super::digest::BlobId;
use super::error::GrpcError;
use super::instance::Instance;
use crate::plugins::{Adapter, CallContext, wit};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// Largest Directory message read during a walk.
const MAX_DIRECTORY_BYTES: u64 = 4 * 1024 * 1024;

/// Most directories one walk visits (a bound on the work one call makes).
pub const MAX_WALK_DIRECTORIES: usize = 200_000;

/// What a message references: blobs that must exist, and Directory roots
/// whose closure must exist (hashes, lower-case hex).
#[derive(Debug, Default)]
pub struct Refs {
    /// `cas/{hash}` keys.
    pub blobs: Vec<String>,
    /// Hashes of Directory messages.
    pub trees: Vec<String>,
}

impl Refs {
    /// Every reference as a store key (a tree's root Directory is a blob
    /// like any other; its closure is not followed).
    pub fn into_keys(self) -> Vec<String> {
        let mut keys = self.blobs;
        keys.extend(self.trees.into_iter().map(|h| format!("cas/{h}")));
        keys
    }
}

/// The adapter and context a walk asks.
pub struct Walk<'a> {
    inst: &'a Instance,
    adapter: Arc<Adapter>,
    ctx: CallContext,
}

impl<'a> Walk<'a> {
    /// A walk on `inst`'s remote with the active `cas` adapter.
    pub async fn new(inst: &'a Instance) -> Result<Walk<'a>, GrpcError> {
        let adapter = inst.adapter().await?;
        let ctx = inst
            .state
            .call_context(&inst.remote, &adapter, &inst.request_id, None);
        Ok(Walk { inst, adapter, ctx })
    }

    /// The references the adapter finds in `body`, described by `path` and
    /// `headers` (see the module docs).
    pub async fn inspect(
        &self,
        path: String,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Refs, GrpcError> {
        let headers: Vec<wit::Header> = headers
            .into_iter()
            .map(|(name, value)| wit::Header { name, value })
            .collect();
        let req = wit::Request {
            id: self.inst.request_id.to_string(),
            kind: wit::RouteKind::RemoteApi,
            method: "GET".into(),
            path: path.clone(),
            query: None,
            headers: headers.clone(),
            body: None,
            body_too_large: false,
        };
        let resp = wit::UpstreamResponse { status: 0, headers };
        let verdict = self
            .adapter
            .inspect_body(self.ctx.clone(), &self.inst.remote.info, &req, &resp, body)
            .await
            .map_err(|e| {
                tracing::error!(remote = %self.inst.name(), adapter = self.adapter.name(), error = %e, "adapter failed inspecting a REAPI message");
                GrpcError::Internal(format!("adapter {} failed: {e}", self.adapter.name()))
            })?;
        if let Some(fail) = verdict.fail {
            return Err(GrpcError::InvalidArgument(fail.message));
        }
        let mut refs = Refs::default();
        for r in verdict.references {
            if let Some(hash) = r.strip_prefix("tree/").filter(|h| is_hash(h)) {
                refs.trees.push(hash.to_owned());
            } else if r.strip_prefix("cas/").is_some_and(is_hash) {
                refs.blobs.push(r);
            } else {
                self.inst
                    .state
                    .engine
                    .metrics
                    .plugin_error(self.adapter.name(), "bad_output");
                return Err(GrpcError::Internal(format!(
                    "adapter {} returned the reference {:?}, which is neither cas/{{sha256}} nor tree/{{sha256}}",
                    self.adapter.name(),
                    r.chars().take(80).collect::<String>()
                )));
            }
        }
        Ok(refs)
    }

    /// A Directory message by hash, from the store (one larger than a
    /// Directory may be is `FAILED_PRECONDITION`).
    async fn directory(&self, hash: &str) -> Result<Option<bytes::Bytes>, GrpcError> {
        let found = self
            .inst
            .read_entry(&format!("cas/{hash}"), MAX_DIRECTORY_BYTES)
            .await?;
        Ok(found.map(|(_, b)| b))
    }

    /// The children of the Directory `hash` (its bytes in hand).
    async fn children(&self, hash: &str, bytes: &[u8]) -> Result<Refs, GrpcError> {
        self.inspect(format!("reapi/directory/{hash}"), Vec::new(), bytes)
            .await
    }

    /// Every key `refs` needs to exist: its blobs, and for each tree every
    /// Directory message and file blob under it (breadth first, each
    /// directory once). A directory the store lacks fails the walk with
    /// `FAILED_PRECONDITION` (its children cannot be known).
    pub async fn closure(&self, refs: Refs) -> Result<Vec<String>, GrpcError> {
        let mut keys: Vec<String> = Vec::new();
        let mut seen_keys: HashSet<String> = HashSet::new();
        let mut add = |k: String, keys: &mut Vec<String>| {
            if seen_keys.insert(k.clone()) {
                keys.push(k);
            }
        };
        for b in refs.blobs {
            add(b, &mut keys);
        }
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<String> = refs.trees.into_iter().collect();
        while let Some(hash) = queue.pop_front() {
            if !seen.insert(hash.clone()) {
                continue;
            }
            if seen.len() > MAX_WALK_DIRECTORIES {
                return Err(GrpcError::ResourceExhausted(format!(
                    "the tree has more than {MAX_WALK_DIRECTORIES} directories"
                )));
            }
            if is_empty_hash(&hash) {
                continue;
            }
            let Some(bytes) = self.directory(&hash).await? else {
                return Err(GrpcError::FailedPrecondition(format!(
                    "directory {hash} is not in the cache; upload the whole tree before pushing what references it"
                )));
            };
            add(format!("cas/{hash}"), &mut keys);
            let children = self.children(&hash, &bytes).await?;
            for b in children.blobs {
                add(b, &mut keys);
            }
            queue.extend(children.trees);
        }
        Ok(keys)
    }

    /// The Directory messages of the tree under `root`, breadth first, each
    /// once, after the first `skip`; a missing directory below the root is
    /// left out (with its subtree), a missing root is `NOT_FOUND`.
    pub async fn tree(&self, root: &BlobId, skip: usize) -> Result<Vec<bytes::Bytes>, GrpcError> {
        let mut out = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let root_hash = root.hash();
        let mut queue: VecDeque<String> = VecDeque::from([root_hash.clone()]);
        let mut index = 0usize;
        while let Some(hash) = queue.pop_front() {
            if !seen.insert(hash.clone()) {
                continue;
            }
            if seen.len() > MAX_WALK_DIRECTORIES {
                return Err(GrpcError::ResourceExhausted(format!(
                    "the tree has more than {MAX_WALK_DIRECTORIES} directories"
                )));
            }
            let bytes = if is_empty_hash(&hash) {
                bytes::Bytes::new()
            } else {
                match self.directory(&hash).await? {
                    Some(b) => b,
                    // The spec: what is present is returned; only a missing
                    // root is NOT_FOUND.
                    None if hash != root_hash => continue,
                    None => {
                        return Err(GrpcError::NotFound(format!(
                            "the root directory {hash} of the tree is not in the cache"
                        )));
                    }
                }
            };
            queue.extend(self.children(&hash, &bytes).await?.trees);
            if index >= skip {
                out.push(bytes);
            }
            index += 1;
        }
        Ok(out)
    }
}

/// Whether `s` is a sha256 in lower-case hex.
fn is_hash(s: &str) -> bool {
    crate::store::Digest::from_hex(s).is_ok()
}

/// Whether `hash` is the empty blob's (an empty Directory message).
fn is_empty_hash(hash: &str) -> bool {
    hash == crate::store::Digest::EMPTY.hex()
}
