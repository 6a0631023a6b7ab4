//! `unpack-body`, `stage-body` and `hosted-commit`: uploads that carry a
//! file inside another body (npm publish: base64 in JSON; cargo publish: a
//! length-prefixed `.crate` after its metadata; twine upload: a multipart
//! field), or that are one file the adapter follows up on once it is
//! stored (a Maven deploy). The core takes the files out as the body streams, spooling and
//! hashing each one, and gives the adapter only the rest; the adapter
//! checks it and stores the files it accepts under keys of its choosing.
//! No file passes through wasm (invariant 1).
//!
//! The request body is read once: a JSON or length-prefixed body is first
//! spooled whole (bounded by the remote's quota, as uploads are), then read
//! from the spool on the blocking pool; a multipart body is read field by
//! field as it arrives. Whatever is not a file counts against the
//! adapter's limit as it is read, so a JSON member name or a text field is
//! never held whole beyond it. Staged files live until the adapter's
//! `plan` returns ([`RequestUpload::take_back`]); a file not committed by
//! then is deleted with its spool. The adapter's call keeps its lane slot
//! while the body arrives, as it does while `cache-send` waits for a fetch;
//! a stalled client is cut off by `body_read_timeout`.

use super::error::HostedError;
use super::upload;
use crate::cache::checksum::{Algorithm, Hasher};
use crate::plugins::{HostUpload, wit};
use crate::reqbody::ClientBody;
use crate::state::{AppState, RemoteRuntime};
use crate::store::{Spool, StoreError};
use futures_util::StreamExt;
use http::HeaderMap;
use http_body_util::BodyExt;
use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use struson::reader::{JsonReader, JsonStreamReader, ReaderError, ReaderSettings, ValueType};
use struson::writer::{JsonStreamWriter, JsonWriter};

/// Bytes the JSON reader may have read ahead of what it handed out (its
/// buffer) before the rest's limit applies.
const READ_AHEAD: u64 = 64 * 1024;

/// The body of one request, for the adapter's `plan` on a hosted remote.
pub struct RequestUpload {
    state: Arc<AppState>,
    remote: Arc<RemoteRuntime>,
    /// The adapter planning (its mistakes are 502s naming it).
    adapter: String,
    headers: HeaderMap,
    /// The client body while a `plan` call has it and `unpack-body` has not
    /// taken it.
    body: Mutex<Option<ClientBody>>,
    /// The files taken out; `None` once committed.
    staged: Mutex<Vec<Option<Spool>>>,
    /// Set once the body has been unpacked.
    unpacked: AtomicBool,
}

/// A file as it is spooled: the spool (sha256) and the other digests the
/// formats publish.
struct Staging {
    spool: Spool,
    sha512: Hasher,
    sha1: Hasher,
    origin: String,
    filename: String,
}

impl Staging {
    fn new(spool: Spool, origin: String, filename: String) -> Staging {
        Staging {
            spool,
            sha512: Hasher::new(Algorithm::Sha512),
            sha1: Hasher::new(Algorithm::Sha1),
            origin,
            filename,
        }
    }

    /// The spool and what the adapter learns about it.
    fn done(self) -> (Spool, wit::StagedFile) {
        let file = wit::StagedFile {
            origin: self.origin,
            filename: self.filename,
            size: self.spool.len(),
            sha256: self.spool.digest().to_string(),
            sha512: hex::encode(self.sha512.finish().value),
            sha1: hex::encode(self.sha1.finish().value),
        };
        (self.spool, file)
    }
}

impl Write for Staging {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.spool.write(buf)?;
        self.sha512.update(buf);
        self.sha1.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The rest of a body, refused beyond its limit.
struct Rest {
    buf: Vec<u8>,
    limit: usize,
}

impl Write for Rest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + buf.len() > self.limit {
            return Err(std::io::Error::other(RestTooLarge));
        }
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The marker error of a rest over its limit.
#[derive(Debug)]
struct RestTooLarge;

impl std::fmt::Display for RestTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body without its files is larger than the adapter's limit")
    }
}

impl std::error::Error for RestTooLarge {}

/// A rest over `limit` bytes, as the client gets it (413).
fn rest_too_large(limit: usize) -> HostedError {
    HostedError::TooLarge {
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
    }
}

/// What unpacking produced: the rest and the staged files.
type Unpacked = (Vec<u8>, Vec<Staging>);

/// The remote's quota as an unpack sees it: what the remote holds when it
/// starts, the uploads in progress, and the bytes this body brings.
struct Quota<'a> {
    remote: &'a RemoteRuntime,
    limit: Option<u64>,
    used: u64,
}

impl Quota<'_> {
    async fn of(upload: &RequestUpload) -> Result<Quota<'_>, HostedError> {
        let limit = upload.remote.cfg.max_size;
        let used = match limit {
            Some(_) => upload::remote_size(&upload.state, &upload.remote.cfg.name).await?,
            None => 0,
        };
        Ok(Quota {
            remote: &upload.remote,
            limit,
            used,
        })
    }

    /// Refuses when `len` more bytes would not fit beside the stored ones
    /// and the uploads in progress (507), as a streamed upload is checked;
    /// the commit decides again, atomically.
    fn check(&self, len: u64) -> Result<(), HostedError> {
        match self.limit {
            Some(limit) if !self.remote.uploads.fits(len, self.used, limit) => {
                Err(HostedError::Quota {
                    remote: self.remote.cfg.name.clone(),
                    limit,
                })
            }
            _ => Ok(()),
        }
    }
}

impl RequestUpload {
    /// The upload of a request with head `headers` to `remote`, planned by
    /// `adapter`; its body is lent with [`RequestUpload::lend`].
    pub fn new(
        state: &Arc<AppState>,
        remote: &Arc<RemoteRuntime>,
        adapter: &str,
        headers: &HeaderMap,
    ) -> Arc<RequestUpload> {
        Arc::new(RequestUpload {
            state: state.clone(),
            remote: remote.clone(),
            adapter: adapter.to_owned(),
            headers: headers.clone(),
            body: Mutex::new(None),
            staged: Mutex::new(Vec::new()),
            unpacked: AtomicBool::new(false),
        })
    }

    /// Hands the client body over for a `plan` call.
    pub fn lend(&self, body: ClientBody) {
        if let Ok(mut b) = self.body.lock() {
            *b = Some(body);
        }
    }

    /// After a `plan` call: the client body when the adapter did not unpack
    /// it; files it staged and did not commit are deleted.
    pub fn take_back(&self) -> Option<ClientBody> {
        if let Ok(mut staged) = self.staged.lock() {
            staged.clear();
        }
        self.body.lock().ok()?.take()
    }

    /// Whether the adapter unpacked the body.
    pub fn was_unpacked(&self) -> bool {
        self.unpacked.load(Ordering::Relaxed)
    }

    /// The adapter's mistake, as a 502 naming it.
    fn misuse(&self, message: String) -> HostedError {
        HostedError::Adapter {
            adapter: self.adapter.clone(),
            message,
            status: http::StatusCode::BAD_GATEWAY,
        }
    }

    /// The client body, once (the second call is the adapter's mistake),
    /// with the remote's quota, which a declared length must fit.
    async fn take_body(&self) -> Result<(ClientBody, Quota<'_>), HostedError> {
        let body = self
            .body
            .lock()
            .ok()
            .and_then(|mut b| b.take())
            .ok_or_else(|| self.misuse("it read the request body twice".into()))?;
        self.unpacked.store(true, Ordering::Relaxed);
        let quota = Quota::of(self).await?;
        if let Some(len) = crate::cache::head::content_length(&self.headers) {
            quota.check(len)?;
        }
        Ok((body, quota))
    }

    /// `stage-body`: the whole body spooled and hashed as staged file 0.
    async fn stage_body(&self) -> Result<wit::StagedFile, HostedError> {
        let (body, quota) = self.take_body().await?;
        let spool = self.state.engine.store.create_spool().await?;
        let mut staging = Staging::new(spool, String::new(), String::new());
        let path = staging.spool.path().to_owned();
        copy_body(body, &quota, |b| staging.write_all(b), &path).await?;
        let (spool, file) = staging.done();
        self.staged
            .lock()
            .map_err(|_| self.misuse("its staged files became unusable".into()))?
            .push(Some(spool));
        Ok(file)
    }

    async fn unpack_body(
        &self,
        layout: wit::BodyLayout,
        rest_limit: u32,
    ) -> Result<wit::UnpackedBody, HostedError> {
        let (body, quota) = self.take_body().await?;
        let limit = rest_limit.min(self.state.config.server.max_inspect_bytes) as usize;
        let (rest, files) = match layout {
            wit::BodyLayout::Multipart(fields) => {
                self.multipart(body, &fields, limit, &quota).await?
            }
            wit::BodyLayout::JsonBase64(paths) => {
                self.spooled(body, &quota, move |r, new| {
                    json_base64(r, &paths, limit, new)
                })
                .await?
            }
            wit::BodyLayout::LengthPrefixed(parts) => {
                self.spooled(body, &quota, move |r, new| {
                    length_prefixed(r, &parts, limit, new)
                })
                .await?
            }
        };
        let mut staged = self
            .staged
            .lock()
            .map_err(|_| self.misuse("its staged files became unusable".into()))?;
        let files = files
            .into_iter()
            .map(|s| {
                let (spool, file) = s.done();
                staged.push(Some(spool));
                file
            })
            .collect();
        Ok(wit::UnpackedBody { rest, files })
    }

    /// The body spooled whole, then taken apart by `unpack` on the blocking
    /// pool (which makes the staged files' spools).
    async fn spooled(
        &self,
        body: ClientBody,
        quota: &Quota<'_>,
        unpack: impl FnOnce(
            std::io::BufReader<std::fs::File>,
            &dyn Fn() -> Result<Spool, StoreError>,
        ) -> Result<Unpacked, HostedError>
        + Send
        + 'static,
    ) -> Result<Unpacked, HostedError> {
        let whole = self.spool(body, quota).await?;
        let store = self.state.engine.store.clone();
        tokio::task::spawn_blocking(move || {
            let reader = whole
                .reader()
                .map_err(|e| StoreError::io("read spool", whole.path().display(), e))?;
            unpack(std::io::BufReader::new(reader), &|| {
                store.create_spool_blocking()
            })
        })
        .await
        .map_err(|e| StoreError::io("unpack", "tmp/", std::io::Error::other(e)))?
    }

    /// The whole body in a spool, bounded by the remote's quota; the rest
    /// of a refused body is drained ([`upload::drain`]), so the client
    /// reads the error.
    async fn spool(&self, body: ClientBody, quota: &Quota<'_>) -> Result<Spool, HostedError> {
        let mut spool = self.state.engine.store.create_spool().await?;
        let path = spool.path().to_owned();
        copy_body(body, quota, |b| spool.write(b), &path).await?;
        Ok(spool)
    }

    /// A multipart body field by field: the fields named in `files`
    /// spooled, the others gathered as text, read chunk by chunk against
    /// `limit`.
    async fn multipart(
        &self,
        body: ClientBody,
        files: &[String],
        limit: usize,
        quota: &Quota<'_>,
    ) -> Result<Unpacked, HostedError> {
        let boundary = upload::multipart_boundary(&self.headers).ok_or_else(|| {
            HostedError::BadUpload("the request body is not multipart/form-data".into())
        })?;
        let stream = http_body_util::BodyStream::new(body.into_upstream()).filter_map(|f| async {
            match f {
                Ok(frame) => frame.into_data().ok().map(Ok::<_, crate::body::BoxError>),
                Err(e) => Some(Err(e)),
            }
        });
        let mut multipart = multer::Multipart::new(stream, boundary);
        let mut fields = serde_json::Map::new();
        let (mut text_len, mut staged_len) = (0usize, 0u64);
        let mut staged = Vec::new();
        let malformed = |e: multer::Error| {
            HostedError::BadUpload(format!("the multipart body is malformed: {e}"))
        };
        while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
            let name = field.name().unwrap_or_default().to_owned();
            if files.contains(&name) {
                let spool = self.state.engine.store.create_spool().await?;
                let filename = field.file_name().unwrap_or_default().to_owned();
                let mut s = Staging::new(spool, name, filename);
                while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                    staged_len += chunk.len() as u64;
                    quota.check(staged_len)?;
                    s.write_all(&chunk)
                        .map_err(|e| StoreError::io("write spool", s.spool.path().display(), e))?;
                }
                staged.push(s);
                continue;
            }
            text_len += name.len();
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                text_len += chunk.len();
                if text_len > limit {
                    return Err(rest_too_large(limit));
                }
                text.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(text).map_err(|_| {
                HostedError::BadUpload(format!("the multipart field {name:?} is not UTF-8 text"))
            })?;
            if let serde_json::Value::Array(values) = fields
                .entry(name)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            {
                values.push(text.into());
            }
        }
        let rest =
            serde_json::to_vec(&fields).map_err(|e| HostedError::BadUpload(e.to_string()))?;
        Ok((rest, staged))
    }

    async fn commit(
        &self,
        file: u32,
        key: String,
        content_type: Option<String>,
        refuse_overwrite: bool,
    ) -> Result<(), HostedError> {
        if key.is_empty() || key.len() > crate::cache::plan::MAX_KEY_BYTES || key.contains('\0') {
            return Err(self.misuse("it named an empty, oversized or NUL-containing key".into()));
        }
        let spool = self
            .staged
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(file as usize).and_then(Option::take))
            .ok_or_else(|| {
                self.misuse(format!(
                    "it committed staged file {file}, which does not exist or was committed already"
                ))
            })?;
        let new = upload::NewEntry {
            key: &key,
            content_type,
            references: Vec::new(),
            refuse_overwrite,
            replans: true,
        };
        upload::commit(&self.state, &self.remote, new, spool, None)
            .await
            .map(|_| ())
    }
}

/// Writes the client body with `write` (to the spool at `path`), bounded by
/// `quota`; the rest of a refused body is drained ([`upload::drain`]), so
/// the client reads the error.
async fn copy_body(
    body: ClientBody,
    quota: &Quota<'_>,
    mut write: impl FnMut(&[u8]) -> std::io::Result<()>,
    path: &std::path::Path,
) -> Result<(), HostedError> {
    let mut body = body.into_upstream();
    let mut len = 0u64;
    let result = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(upload::body_error)?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            len += chunk.len() as u64;
            quota.check(len)?;
            write(&chunk).map_err(|e| StoreError::io("write spool", path.display(), e))?;
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        upload::drain(&mut body).await;
    }
    result
}

/// A hosted error as the adapter gets it: its status and one sentence.
fn rejection(e: HostedError) -> wit::Rejection {
    let text = e.to_string();
    let mut chars = text.chars();
    let mut message: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !message.ends_with('.') {
        message.push('.');
    }
    wit::Rejection {
        status: e.status().as_u16(),
        message,
        code: None,
    }
}

impl HostUpload for RequestUpload {
    fn unpack(
        &self,
        layout: wit::BodyLayout,
        rest_limit: u32,
    ) -> crate::plugins::host::BoxFuture<'_, Result<wit::UnpackedBody, wit::Rejection>> {
        Box::pin(async move {
            self.unpack_body(layout, rest_limit)
                .await
                .map_err(rejection)
        })
    }

    fn stage(
        &self,
    ) -> crate::plugins::host::BoxFuture<'_, Result<wit::StagedFile, wit::Rejection>> {
        Box::pin(async move { self.stage_body().await.map_err(rejection) })
    }

    fn commit(
        &self,
        file: u32,
        key: String,
        content_type: Option<String>,
        refuse_overwrite: bool,
    ) -> crate::plugins::host::BoxFuture<'_, Result<(), wit::Rejection>> {
        Box::pin(async move {
            RequestUpload::commit(self, file, key, content_type, refuse_overwrite)
                .await
                .map_err(rejection)
        })
    }
}

/// A path pattern: a JSON Pointer (RFC 6901: `/`-separated member
/// names, `~1` for `/`, `~0` for `~`) whose segment `*` matches any member
/// name and `*suffix` any ending in `suffix`; its segments unescaped.
struct Pattern(Vec<String>);

impl Pattern {
    /// `None` for a pattern that is no pointer (it matches nothing).
    fn parse(pattern: &str) -> Option<Pattern> {
        let segments = pattern.strip_prefix('/')?.split('/');
        Some(Pattern(
            segments
                .map(|p| p.replace("~1", "/").replace("~0", "~"))
                .collect(),
        ))
    }

    /// Whether the member path `path` matches.
    fn matches(&self, path: &[String]) -> bool {
        self.0.len() == path.len()
            && self
                .0
                .iter()
                .zip(path)
                .all(|(p, name)| match p.strip_prefix('*') {
                    Some(suffix) => name.ends_with(suffix),
                    None => p == name,
                })
    }
}

/// `path` as a JSON Pointer.
fn pointer(path: &[String]) -> String {
    path.iter()
        .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// A reader that refuses to read more than `limit` bytes (plus the JSON
/// reader's read-ahead) besides those handed out inside files.
struct Bounded<R> {
    inner: R,
    read: u64,
    in_files: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read.saturating_sub(self.in_files.get()) > self.limit + READ_AHEAD {
            return Err(std::io::Error::other(RestTooLarge));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Counts the bytes read through it into a shared cell.
struct Counted<'a, R> {
    inner: R,
    count: &'a Cell<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A JSON body: the strings at `patterns` decoded from base64 into
/// staged files and written as `""` into the rest.
fn json_base64(
    reader: impl Read,
    patterns: &[String],
    limit: usize,
    new_spool: &dyn Fn() -> Result<Spool, StoreError>,
) -> Result<Unpacked, HostedError> {
    let in_files = Rc::new(Cell::new(0));
    let bounded = Bounded {
        inner: reader,
        read: 0,
        in_files: in_files.clone(),
        limit: limit as u64,
    };
    let settings = ReaderSettings {
        track_path: false,
        ..ReaderSettings::default()
    };
    let mut r = JsonStreamReader::new_custom(bounded, settings);
    let mut rest = Rest {
        buf: Vec::new(),
        limit,
    };
    let mut staged = Vec::new();
    {
        let mut w = JsonStreamWriter::new(&mut rest);
        let patterns: Vec<Pattern> = patterns.iter().filter_map(|p| Pattern::parse(p)).collect();
        let mut walk = Walk {
            patterns: &patterns,
            staged: &mut staged,
            new_spool,
            in_files: &in_files,
            limit,
        };
        walk.value(&mut r, &mut w, &mut Vec::new())?;
        w.finish_document().map_err(|e| io_error(e, limit))?;
    }
    r.consume_trailing_whitespace()
        .map_err(|e| json_error(e, limit))?;
    Ok((rest.buf, staged))
}

/// What a walk over one JSON document needs besides the reader and the
/// writer.
struct Walk<'a> {
    patterns: &'a [Pattern],
    staged: &'a mut Vec<Staging>,
    new_spool: &'a dyn Fn() -> Result<Spool, StoreError>,
    in_files: &'a Cell<u64>,
    limit: usize,
}

impl Walk<'_> {
    /// Copies one value from `r` to `w`, taking out the files.
    fn value(
        &mut self,
        r: &mut JsonStreamReader<impl Read>,
        w: &mut JsonStreamWriter<&mut Rest>,
        path: &mut Vec<String>,
    ) -> Result<(), HostedError> {
        let limit = self.limit;
        let je = |e| json_error(e, limit);
        let ie = |e| io_error(e, limit);
        match r.peek().map_err(je)? {
            ValueType::Object => {
                r.begin_object().map_err(je)?;
                w.begin_object().map_err(ie)?;
                while r.has_next().map_err(je)? {
                    let name = r.next_name_owned().map_err(je)?;
                    w.name(&name).map_err(ie)?;
                    path.push(name);
                    self.value(r, w, path)?;
                    path.pop();
                }
                r.end_object().map_err(je)?;
                w.end_object().map_err(ie)
            }
            ValueType::Array => {
                r.begin_array().map_err(je)?;
                w.begin_array().map_err(ie)?;
                let mut i = 0usize;
                while r.has_next().map_err(je)? {
                    path.push(i.to_string());
                    self.value(r, w, path)?;
                    path.pop();
                    i += 1;
                }
                r.end_array().map_err(je)?;
                w.end_array().map_err(ie)
            }
            ValueType::String if self.patterns.iter().any(|p| p.matches(path)) => {
                let origin = pointer(path);
                let mut s = Staging::new((self.new_spool)()?, origin.clone(), String::new());
                {
                    let text = Counted {
                        inner: r.next_string_reader().map_err(je)?,
                        count: self.in_files,
                    };
                    let mut decoder = base64::read::DecoderReader::new(
                        text,
                        &base64::engine::general_purpose::STANDARD,
                    );
                    std::io::copy(&mut decoder, &mut s).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::InvalidData {
                            HostedError::BadUpload(format!(
                                "the file at {origin} is not base64: {e}"
                            ))
                        } else {
                            StoreError::io("write spool", s.spool.path().display(), e).into()
                        }
                    })?;
                }
                self.staged.push(s);
                w.string_value("").map_err(ie)
            }
            _ => r.transfer_to(w).map_err(|e| match e {
                struson::reader::TransferError::ReaderError(e) => je(e),
                struson::reader::TransferError::WriterError(e) => ie(e),
            }),
        }
    }
}

/// A JSON reading error as the client gets it: 413 when the rest ran over
/// its limit, else 400 saying where the JSON broke.
fn json_error(e: ReaderError, limit: usize) -> HostedError {
    match e {
        ReaderError::IoError { error, .. } => io_error(error, limit),
        e => HostedError::BadUpload(format!("the request body is not valid JSON: {e}")),
    }
}

/// An I/O error while unpacking: 413 for a rest over its limit.
fn io_error(e: std::io::Error, limit: usize) -> HostedError {
    if e.get_ref().is_some_and(|inner| inner.is::<RestTooLarge>()) {
        rest_too_large(limit)
    } else if e.kind() == std::io::ErrorKind::InvalidData {
        HostedError::BadUpload(format!("the request body is not valid JSON: {e}"))
    } else {
        HostedError::Store(StoreError::io("read spool", "tmp/", e))
    }
}

/// A body of parts, each a 32-bit little-endian length and its bytes: the
/// parts at `files` staged, the others (with their lengths) the rest.
fn length_prefixed(
    mut reader: impl Read,
    files: &[u32],
    limit: usize,
    new_spool: &dyn Fn() -> Result<Spool, StoreError>,
) -> Result<Unpacked, HostedError> {
    let mut rest = Rest {
        buf: Vec::new(),
        limit,
    };
    let mut staged = Vec::new();
    let short = |i: u32| HostedError::BadUpload(format!("the request body ends inside part {i}"));
    for i in 0u32.. {
        let mut len = [0u8; 4];
        match reader.read(&mut len[..1]) {
            Ok(0) => break,
            Ok(_) => reader.read_exact(&mut len[1..]).map_err(|_| short(i))?,
            Err(e) => return Err(StoreError::io("read spool", "tmp/", e).into()),
        }
        let n = u64::from(u32::from_le_bytes(len));
        let mut part = (&mut reader).take(n);
        let copied = if files.contains(&i) {
            let mut s = Staging::new(new_spool()?, i.to_string(), String::new());
            let copied = std::io::copy(&mut part, &mut s)
                .map_err(|e| StoreError::io("write spool", s.spool.path().display(), e))?;
            staged.push(s);
            copied
        } else {
            rest.write_all(&len).map_err(|e| io_error(e, limit))?;
            std::io::copy(&mut part, &mut rest).map_err(|e| io_error(e, limit))?
        };
        if copied != n {
            return Err(short(i));
        }
    }
    Ok((rest.buf, staged))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spools(dir: &std::path::Path) -> impl Fn() -> Result<Spool, StoreError> + '_ {
        move || Spool::create(dir).map_err(|e| StoreError::io("create spool", "tmp", e))
    }

    fn read_all(s: &Staging) -> Vec<u8> {
        let mut out = Vec::new();
        s.spool.reader().unwrap().read_to_end(&mut out).unwrap();
        out
    }

    /// npm publish's shape: the attachment's base64 (with an escaped `/`)
    /// becomes a staged file; another attachment that is no tarball (a
    /// provenance bundle) and everything else stay in the rest.
    #[test]
    fn json_files_are_taken_out() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"\xff\xfe tarball bytes \x00";
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data)
            .replace('/', "\\/");
        let body = format!(
            r#"{{"name":"a","versions":{{"1.0.0":{{"x":[1,true,null,"s"]}}}},"_attachments":{{"a-1.0.0.tgz":{{"data":"{b64}","length":{}}},"a-1.0.0.sigstore":{{"data":"{{\"json\":1}}"}}}}}}"#,
            data.len()
        );
        let (rest, files) = json_base64(
            body.as_bytes(),
            &["/_attachments/*.tgz/data".to_owned()],
            1 << 20,
            &spools(dir.path()),
        )
        .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&rest).unwrap();
        assert_eq!(doc["_attachments"]["a-1.0.0.tgz"]["data"], "");
        assert_eq!(
            doc["_attachments"]["a-1.0.0.sigstore"]["data"],
            "{\"json\":1}"
        );
        assert_eq!(
            doc["versions"]["1.0.0"]["x"],
            serde_json::json!([1, true, null, "s"])
        );
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].origin, "/_attachments/a-1.0.0.tgz/data");
        assert_eq!(read_all(&files[0]), data);
        let (_, f) = files.into_iter().next().unwrap().done();
        assert_eq!(f.size, data.len() as u64);
        use sha1::Digest as _;
        assert_eq!(f.sha1, hex::encode(sha1::Sha1::digest(data)));
    }

    /// Bad input is a 400 or 413 saying what was wrong; a huge member name
    /// outside any file is refused once it passes the limit, not held.
    #[test]
    fn bad_json_bodies_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ["/a".to_owned()];
        let huge_name = format!("{{\"{}\":1}}", "n".repeat(1 << 20));
        let cases = [
            (r#"{"a":"!!!"}"#.to_owned(), 400, "not base64"),
            (r#"{"a":"QQ=="} x"#.to_owned(), 400, "not valid JSON"),
            (r#"{"a":"#.to_owned(), 400, "not valid JSON"),
            (
                r#"{"b":"0123456789012345678901234567890123456789"}"#.to_owned(),
                413,
                "larger than",
            ),
            (huge_name, 413, "larger than"),
        ];
        for (body, status, text) in cases {
            let e = json_base64(body.as_bytes(), &paths, 32, &spools(dir.path()))
                .err()
                .expect("refused");
            assert_eq!(
                e.status().as_u16(),
                status,
                "{}: {e}",
                &body[..body.len().min(40)]
            );
            assert!(e.to_string().contains(text), "{e}");
        }
        // A large file is no reason to refuse: only the rest is limited.
        let big = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            vec![1u8; 300_000],
        );
        let body = format!(r#"{{"a":"{big}"}}"#);
        let (rest, files) = json_base64(body.as_bytes(), &paths, 32, &spools(dir.path())).unwrap();
        assert_eq!(rest, br#"{"a":""}"#);
        assert_eq!(files[0].spool.len(), 300_000);
    }

    /// Patterns are JSON Pointers with `*` and `*suffix` segments.
    #[test]
    fn pointer_patterns() {
        let p = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let matched = |pattern: &str, path: &[String]| {
            Pattern::parse(pattern).is_some_and(|pat| pat.matches(path))
        };
        assert!(matched(
            "/_attachments/*/data",
            &p(&["_attachments", "x.tgz", "data"])
        ));
        assert!(matched(
            "/_attachments/*.tgz/data",
            &p(&["_attachments", "x.tgz", "data"])
        ));
        assert!(!matched(
            "/_attachments/*.tgz/data",
            &p(&["_attachments", "x.sig", "data"])
        ));
        assert!(matched("/a~1b/c", &p(&["a/b", "c"])));
        assert!(!matched("a/c", &p(&["a", "c"])), "a pointer starts with /");
        assert_eq!(pointer(&p(&["a/b", "~c"])), "/a~1b/~0c");
    }

    /// cargo publish's shape: metadata, then the crate.
    #[test]
    fn length_prefixed_parts() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = Vec::new();
        for part in [&b"{\"name\":\"c\"}"[..], b"crate bytes"] {
            body.extend_from_slice(&(part.len() as u32).to_le_bytes());
            body.extend_from_slice(part);
        }
        let (rest, files) = length_prefixed(&body[..], &[1], 1024, &spools(dir.path())).unwrap();
        assert_eq!(&rest[4..], b"{\"name\":\"c\"}");
        assert_eq!(read_all(&files[0]), b"crate bytes");
        let cut = &body[..body.len() - 3];
        let e = length_prefixed(cut, &[1], 1024, &spools(dir.path()))
            .err()
            .expect("refused");
        assert!(e.to_string().contains("ends inside part 1"), "{e}");
        let e = length_prefixed(&body[..], &[1], 8, &spools(dir.path()))
            .err()
            .expect("refused");
        assert_eq!(e.status().as_u16(), 413);
    }
}
