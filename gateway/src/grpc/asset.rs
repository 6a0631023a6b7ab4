//! The Remote Asset API (`Fetch`, `Push`): a URI (with its qualifiers)
//! names a blob or a Directory root. BuildStream keeps its artifact and
//! source references here, and decides "the remote has it" from
//! `FetchBlob` alone, so an asset is answered only while its whole closure
//! is in the store: the `cas` adapter says what an asset requires (for a
//! BuildStream artifact, the fields of its `Artifact` message it cannot do
//! without), the core walks the Directory trees at push time and keeps
//! every key found as the asset entry's references, and a fetch checks
//! them all in one index pass.
//!
//! Entries: `asset/blob/{sha256 of the URI and qualifiers}` and
//! `asset/directory/{...}`, whose content is the `Digest` message of the
//! blob or root.
//!
//! Requests without URIs are refused with `INVALID_ARGUMENT` before the
//! token's scope is looked at: BuildStream probes every remote with such
//! empty calls and expects exactly that.

use super::Reapi;
use super::blobs::OCTET_STREAM;
use super::closure::{Refs, Walk};
use super::digest::BlobId;
use super::error::{GrpcError, ok_status};
use super::instance::Instance;
use super::proto::asset::{
    FetchBlobRequest, FetchBlobResponse, FetchDirectoryRequest, FetchDirectoryResponse,
    PushBlobRequest, PushBlobResponse, PushDirectoryRequest, PushDirectoryResponse, Qualifier,
    fetch_server::Fetch, push_server::Push,
};
use super::proto::reapi::Digest as DigestMsg;
use crate::auth::Need;
use crate::cache::Outcome;
use bytes::Bytes;
use prost::Message as _;
use sha2::Digest as _;
use tonic::{Request, Response, Status};

/// The content type of an asset kept from a pull-through upstream's answer
/// whose closure is not known yet.
const PENDING: &str = "application/x.artgate.asset-pending";

/// Largest asset entry read (a `Digest` message).
const MAX_RECORD_BYTES: u64 = 1024;

/// Largest asset blob shown to the adapter (an `Artifact` message is a
/// few KiB).
const MAX_INSPECTED_ASSET: u64 = 4 * 1024 * 1024;

/// What an asset names.
#[derive(Clone, Copy)]
enum Kind {
    /// A blob (`FetchBlob`, `PushBlob`).
    Blob,
    /// A Directory root (`FetchDirectory`, `PushDirectory`).
    Directory,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Directory => "directory",
        }
    }
}

/// The store key of the asset `uri` with `qualifiers` (order does not
/// matter): the sha256 of each field, length-prefixed, so that no two
/// different requests share a key.
fn asset_key(kind: Kind, uri: &str, qualifiers: &[Qualifier]) -> String {
    let mut q: Vec<(&str, &str)> = qualifiers
        .iter()
        .map(|q| (q.name.as_str(), q.value.as_str()))
        .collect();
    q.sort_unstable();
    let mut h = sha2::Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(uri.as_bytes());
    for (n, v) in q {
        field(n.as_bytes());
        field(v.as_bytes());
    }
    format!("asset/{}/{}", kind.as_str(), hex::encode(h.finalize()))
}

/// Most URIs one request may name (BuildStream sends one or two).
const MAX_URIS: usize = 100;

/// Refuse a request without URIs (see the module docs), with too many,
/// or with a qualifier named twice.
fn check_request(uris: &[String], qualifiers: &[Qualifier]) -> Result<(), GrpcError> {
    if uris.is_empty() {
        return Err(GrpcError::InvalidArgument(
            "the request names no URI".into(),
        ));
    }
    if uris.len() > MAX_URIS {
        return Err(GrpcError::InvalidArgument(format!(
            "the request names {} URIs; at most {MAX_URIS} per call",
            uris.len()
        )));
    }
    let mut names: Vec<&str> = qualifiers.iter().map(|q| q.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(GrpcError::InvalidArgument(format!(
            "the qualifier {:?} is given twice; qualifier names must be unique",
            w[0].chars().take(100).collect::<String>()
        )));
    }
    Ok(())
}

/// The digest of the first of `uris` whose asset is stored with its whole
/// closure, with that URI; `None` when there is none.
async fn fetch(
    inst: &Instance,
    kind: Kind,
    uris: &[String],
    qualifiers: &[Qualifier],
) -> Result<Option<(String, DigestMsg)>, GrpcError> {
    // Each member on its own: an asset is complete in one member.
    if !inst.members.is_empty() {
        for m in &inst.members {
            if let Some(found) = Box::pin(fetch(m, kind, uris, qualifiers)).await? {
                return Ok(Some(found));
            }
        }
        return Ok(None);
    }
    for uri in uris {
        let key = asset_key(kind, uri, qualifiers);
        let (entry, bytes) = match inst.read_entry(&key, MAX_RECORD_BYTES).await {
            Ok(Some(found)) => found,
            Ok(None) | Err(GrpcError::FailedPrecondition(_)) => continue,
            Err(e) => return Err(e),
        };
        let Ok(digest) = DigestMsg::decode(bytes.as_ref()) else {
            tracing::warn!(remote = %inst.name(), key, "an asset entry does not hold a digest");
            continue;
        };
        let mut references = entry.references.clone();
        if entry.content_type.as_deref() == Some(PENDING) {
            // Kept from the upstream's answer: complete here once its
            // trees are (a pull reads them through); until then not.
            let root = BlobId::parse(Some(&digest), "asset digest")?;
            match closure_of(inst, kind, std::slice::from_ref(uri), &root, &[], &[]).await {
                Ok(keys) => {
                    inst.keep(&key, bytes.clone(), keys.clone(), OCTET_STREAM)
                        .await;
                    references = keys;
                }
                Err(GrpcError::FailedPrecondition(_) | GrpcError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        let gone = inst.missing_keys(references).await?;
        if let Some(first) = gone.first() {
            tracing::info!(remote = %inst.name(), uri, missing = %first, "asset is incomplete; answered as not found");
            continue;
        }
        return Ok(Some((uri.clone(), digest)));
    }
    Ok(None)
}

/// The answer of a pull-through remote's upstream (of the first member's,
/// on a virtual remote) to a `FetchBlob` the store could not answer. It is
/// kept as a pending asset: answered from the store (also with the
/// upstream gone) once its whole closure has been read through.
async fn upstream_fetch(
    inst: &Instance,
    f: &FetchBlobRequest,
) -> Result<Option<FetchBlobResponse>, GrpcError> {
    if let Some(up) = &inst.upstream {
        let answer = up.fetch_blob(f.clone()).await?;
        if let Some(a) = &answer
            && let Some(d) = &a.blob_digest
        {
            let key = asset_key(Kind::Blob, &a.uri, &f.qualifiers);
            inst.keep(&key, Bytes::from(d.encode_to_vec()), Vec::new(), PENDING)
                .await;
        }
        return Ok(answer);
    }
    for m in &inst.members {
        if let Some(answer) = Box::pin(upstream_fetch(m, f)).await? {
            return Ok(Some(answer));
        }
    }
    Ok(None)
}

/// The `NOT_FOUND` a fetch answers in its status.
fn not_found(kind: Kind) -> super::proto::google::rpc::Status {
    GrpcError::NotFound(format!(
        "no {} is cached completely for these URIs",
        kind.as_str()
    ))
    .rpc_status()
}

/// Store the asset: `root` (a blob or Directory the store must hold), the
/// closure the adapter and the walk give, and one entry per URI.
async fn push(
    inst: &Instance,
    kind: Kind,
    uris: &[String],
    qualifiers: &[Qualifier],
    root: BlobId,
    pushed_blobs: &[DigestMsg],
    pushed_dirs: &[DigestMsg],
) -> Result<(), GrpcError> {
    if !inst.missing(vec![root.clone()]).await?.is_empty() {
        return Err(GrpcError::FailedPrecondition(format!(
            "{} {root} is not in the cache; upload it before pushing an asset that names it",
            kind.as_str()
        )));
    }
    let references = closure_of(inst, kind, uris, &root, pushed_blobs, pushed_dirs).await?;
    let record = Bytes::from(root.to_proto().encode_to_vec());
    for uri in uris {
        inst.put_entry(
            &asset_key(kind, uri, qualifiers),
            record.clone(),
            references.clone(),
        )
        .await?;
    }
    tracing::info!(remote = %inst.name(), uris = uris.len(), references = references.len(), kind = kind.as_str(), "asset pushed");
    Ok(())
}

/// Every key the asset `root` named by `uris` needs: what the adapter
/// says it requires (given the push's references), with the trees walked.
/// `FAILED_PRECONDITION` when a directory is not stored.
async fn closure_of(
    inst: &Instance,
    kind: Kind,
    uris: &[String],
    root: &BlobId,
    pushed_blobs: &[DigestMsg],
    pushed_dirs: &[DigestMsg],
) -> Result<Vec<String>, GrpcError> {
    let mut headers: Vec<(String, String)> = uris
        .iter()
        .map(|u| ("x-reapi-uri".to_owned(), u.clone()))
        .collect();
    for (name, list) in [
        ("x-reapi-blob", pushed_blobs),
        ("x-reapi-directory", pushed_dirs),
    ] {
        for d in list {
            let id = BlobId::parse(Some(d), "referenced digest")?;
            headers.push((name.to_owned(), id.to_string()));
        }
    }
    let walk = Walk::new(inst).await?;
    let (path, body) = match kind {
        Kind::Blob if root.size <= MAX_INSPECTED_ASSET => (
            format!("reapi/asset/{}", root.hash()),
            inst.read(root).await?,
        ),
        Kind::Blob => {
            headers.push(("x-reapi-body".into(), "omitted".into()));
            (format!("reapi/asset/{}", root.hash()), Bytes::new())
        }
        Kind::Directory => (
            format!("reapi/asset-directory/{}", root.hash()),
            Bytes::new(),
        ),
    };
    let mut refs: Refs = walk.inspect(path, headers, &body).await?;
    match kind {
        Kind::Blob => refs.blobs.push(root.key()),
        Kind::Directory => refs.trees.push(root.hash()),
    }
    let mut references = walk.closure(refs).await?;
    references.retain(|k| *k != format!("cas/{}", crate::store::Digest::EMPTY.hex()));
    Ok(references)
}

#[tonic::async_trait]
impl Fetch for Reapi {
    /// The blob of the first URI whose asset is complete in the store, else
    /// (pull-through) the upstream's answer; `NOT_FOUND` in the response's
    /// status otherwise.
    async fn fetch_blob(
        &self,
        req: Request<FetchBlobRequest>,
    ) -> Result<Response<FetchBlobResponse>, Status> {
        let rec = super::record(&req);
        let r = async {
            let f = req.get_ref();
            check_request(&f.uris, &f.qualifiers)?;
            let inst = Instance::open(&self.state, &req, &f.instance_name, Need::Read)?;
            let found = fetch(&inst, Kind::Blob, &f.uris, &f.qualifiers).await?;
            if found.is_none()
                && let Some(answer) = upstream_fetch(&inst, f).await?
            {
                return Ok(answer);
            }
            Ok(match found {
                Some((uri, digest)) => FetchBlobResponse {
                    status: Some(ok_status()),
                    uri,
                    qualifiers: f.qualifiers.clone(),
                    expires_at: None,
                    blob_digest: Some(digest),
                    digest_function: 0,
                },
                None => FetchBlobResponse {
                    status: Some(not_found(Kind::Blob)),
                    ..FetchBlobResponse::default()
                },
            })
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }

    /// As [`Fetch::fetch_blob`], for Directory roots.
    async fn fetch_directory(
        &self,
        req: Request<FetchDirectoryRequest>,
    ) -> Result<Response<FetchDirectoryResponse>, Status> {
        let rec = super::record(&req);
        let r = async {
            let f = req.get_ref();
            check_request(&f.uris, &f.qualifiers)?;
            let inst = Instance::open(&self.state, &req, &f.instance_name, Need::Read)?;
            Ok(
                match fetch(&inst, Kind::Directory, &f.uris, &f.qualifiers).await? {
                    Some((uri, digest)) => FetchDirectoryResponse {
                        status: Some(ok_status()),
                        uri,
                        qualifiers: f.qualifiers.clone(),
                        expires_at: None,
                        root_directory_digest: Some(digest),
                        digest_function: 0,
                    },
                    None => FetchDirectoryResponse {
                        status: Some(not_found(Kind::Directory)),
                        ..FetchDirectoryResponse::default()
                    },
                },
            )
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }
}

#[tonic::async_trait]
impl Push for Reapi {
    /// Record the blob under every URI, once its closure is known.
    async fn push_blob(
        &self,
        req: Request<PushBlobRequest>,
    ) -> Result<Response<PushBlobResponse>, Status> {
        let rec = super::record(&req);
        let r = async {
            let p = req.get_ref();
            check_request(&p.uris, &p.qualifiers)?;
            let root = BlobId::parse(p.blob_digest.as_ref(), "blob digest")?;
            let inst = Instance::open(&self.state, &req, &p.instance_name, Need::Write)?;
            push(
                &inst,
                Kind::Blob,
                &p.uris,
                &p.qualifiers,
                root,
                &p.references_blobs,
                &p.references_directories,
            )
            .await?;
            Ok(PushBlobResponse {})
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }

    /// Record the Directory root under every URI, once its tree is walked.
    async fn push_directory(
        &self,
        req: Request<PushDirectoryRequest>,
    ) -> Result<Response<PushDirectoryResponse>, Status> {
        let rec = super::record(&req);
        let r = async {
            let p = req.get_ref();
            check_request(&p.uris, &p.qualifiers)?;
            let root = BlobId::parse(p.root_directory_digest.as_ref(), "root directory digest")?;
            let inst = Instance::open(&self.state, &req, &p.instance_name, Need::Write)?;
            push(
                &inst,
                Kind::Directory,
                &p.uris,
                &p.qualifiers,
                root,
                &p.references_blobs,
                &p.references_directories,
            )
            .await?;
            Ok(PushDirectoryResponse {})
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }
}
