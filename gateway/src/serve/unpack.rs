//! `unpack-body` and `hosted-commit`: uploads that carry a file inside
//! another body (npm publish: base64 in JSON; cargo publish: a
//! length-prefixed `.crate` after its metadata; twine upload: a multipart
//! field). The core takes the files out as the body streams, spooling and
//! hashing each one, and gives the adapter only the rest; the adapter
//! checks it and stores the files it accepts under keys of its choosing.
//! No file passes through wasm (invariant 1).
//!
//! The request body is read once: a JSON or length-prefixed body is first
//! spooled whole (bounded by the remote's quota), then read from the spool
//! on the blocking pool; a multipart body is read field by field as it
//! arrives. Staged files live until the adapter's `plan` returns
//! ([`RequestUpload::take_back`]); a file not committed by then is deleted
//! with its spool.

use super::error::HostedError;
use super::upload;
use crate::plugins::{HostUpload, wit};
use crate::reqbody::ClientBody;
use crate::state::{AppState, RemoteRuntime};
use crate::store::{Spool, StoreError};
use futures_util::StreamExt;
use http::HeaderMap;
use http_body_util::BodyExt;
use sha1::Digest as _;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use struson::reader::{JsonReader, JsonStreamReader, ValueType};
use struson::writer::{JsonStreamWriter, JsonWriter};

/// The body of one request, for the adapter's `plan` on a hosted remote.
pub struct RequestUpload {
    state: Arc<AppState>,
    remote: Arc<RemoteRuntime>,
    headers: HeaderMap,
    /// The client body until `unpack-body` takes it.
    body: tokio::sync::Mutex<Option<ClientBody>>,
    /// The files taken out; `None` once committed.
    staged: Mutex<Vec<Option<Spool>>>,
    /// Set once the body has been unpacked.
    unpacked: std::sync::atomic::AtomicBool,
}

/// A file as it is spooled: the spool (sha256) and the other digests the
/// formats publish.
struct Staging {
    spool: Spool,
    sha512: sha2::Sha512,
    sha1: sha1::Sha1,
    origin: String,
    filename: String,
}

impl Staging {
    fn new(spool: Spool, origin: String, filename: String) -> Staging {
        Staging {
            spool,
            sha512: sha2::Sha512::new(),
            sha1: sha1::Sha1::new(),
            origin,
            filename,
        }
    }

    /// The spool and what the adapter learns about it.
    fn done(self) -> (Spool, wit::StagedFile) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let file = wit::StagedFile {
            origin: self.origin,
            filename: self.filename,
            size: self.spool.len(),
            sha256: self.spool.digest().to_string(),
            sha512: hex(&self.sha512.finalize()),
            sha1: hex(&self.sha1.finalize()),
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

/// The marker error of [`Rest`] over its limit.
#[derive(Debug)]
struct RestTooLarge;

impl std::fmt::Display for RestTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body without its files is larger than the adapter's limit")
    }
}

impl std::error::Error for RestTooLarge {}

/// What unpacking produced: the rest and the staged files.
type Unpacked = (Vec<u8>, Vec<Staging>);

impl RequestUpload {
    /// The upload of a request with head `headers` to `remote`; its body
    /// is lent with [`RequestUpload::lend`].
    pub fn new(
        state: &Arc<AppState>,
        remote: &Arc<RemoteRuntime>,
        headers: &HeaderMap,
    ) -> Arc<RequestUpload> {
        Arc::new(RequestUpload {
            state: state.clone(),
            remote: remote.clone(),
            headers: headers.clone(),
            body: tokio::sync::Mutex::new(None),
            staged: Mutex::new(Vec::new()),
            unpacked: false.into(),
        })
    }

    /// Hands the client body over for a `plan` call.
    pub async fn lend(&self, body: ClientBody) {
        *self.body.lock().await = Some(body);
    }

    /// After a `plan` call: the client body when the adapter did not unpack
    /// it; files it staged and did not commit are deleted.
    pub async fn take_back(&self) -> Option<ClientBody> {
        if let Ok(mut staged) = self.staged.lock() {
            staged.clear();
        }
        self.body.lock().await.take()
    }

    /// Whether the adapter unpacked the body.
    pub fn was_unpacked(&self) -> bool {
        self.unpacked.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn unpack_body(
        &self,
        layout: wit::BodyLayout,
        rest_limit: u32,
    ) -> Result<wit::UnpackedBody, HostedError> {
        let body = self.body.lock().await.take().ok_or_else(|| {
            HostedError::BadUpload("the adapter unpacked the request body twice".into())
        })?;
        self.unpacked
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let limit = rest_limit.min(self.state.config.server.max_inspect_bytes) as usize;
        let (rest, files) = match layout {
            wit::BodyLayout::Multipart(fields) => self.multipart(body, &fields, limit).await?,
            layout => {
                let whole = self.spool(body).await?;
                let runtime = tokio::runtime::Handle::current();
                let store = self.state.engine.store.clone();
                let new_spool = move || runtime.block_on(store.create_spool());
                tokio::task::spawn_blocking(move || {
                    let reader =
                        std::io::BufReader::new(whole.reader().map_err(|e| {
                            StoreError::io("read spool", whole.path().display(), e)
                        })?);
                    match layout {
                        wit::BodyLayout::JsonBase64(paths) => {
                            json_base64(reader, &paths, limit, &new_spool)
                        }
                        wit::BodyLayout::LengthPrefixed(parts) => {
                            length_prefixed(reader, &parts, limit, &new_spool)
                        }
                        wit::BodyLayout::Multipart(_) => Err(HostedError::BadUpload(
                            "a multipart body is unpacked as it streams".into(),
                        )),
                    }
                })
                .await
                .map_err(|e| HostedError::Interrupted(format!("unpacking stopped: {e}")))??
            }
        };
        let mut staged = self
            .staged
            .lock()
            .map_err(|_| HostedError::Interrupted("the staged files are unusable".into()))?;
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

    /// The whole body in a spool, bounded by the remote's quota.
    async fn spool(&self, body: ClientBody) -> Result<Spool, HostedError> {
        let mut body = body.into_upstream();
        let mut spool = self.state.engine.store.create_spool().await?;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| match crate::reqbody::BodyStalled::find(e.as_ref()) {
                Some(s) => HostedError::Stalled(s),
                None => HostedError::Interrupted(e.to_string()),
            })?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            spool
                .write(&chunk)
                .map_err(|e| StoreError::io("write spool", spool.path().display(), e))?;
            self.within_quota(spool.len())?;
        }
        Ok(spool)
    }

    /// Refuses a body larger than the remote's quota (the commit checks
    /// what the remote holds).
    fn within_quota(&self, len: u64) -> Result<(), HostedError> {
        match self.remote.cfg.max_size {
            Some(limit) if len > limit => Err(HostedError::Quota {
                remote: self.remote.cfg.name.clone(),
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// A multipart body field by field: the fields named in `files`
    /// spooled, the others gathered as text.
    async fn multipart(
        &self,
        body: ClientBody,
        files: &[String],
        limit: usize,
    ) -> Result<Unpacked, HostedError> {
        let boundary = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| multer::parse_boundary(ct).ok())
            .ok_or_else(|| {
                HostedError::BadUpload("the request body is not multipart/form-data".into())
            })?;
        let stream = http_body_util::BodyStream::new(body.into_upstream()).filter_map(|f| async {
            match f {
                Ok(frame) => frame.into_data().ok().map(Ok::<_, crate::body::BoxError>),
                Err(e) => Some(Err(e)),
            }
        });
        let mut multipart = multer::Multipart::new(stream, boundary);
        let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
        let mut text_len = 0usize;
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
                    s.write_all(&chunk)
                        .map_err(|e| StoreError::io("write spool", s.spool.path().display(), e))?;
                    self.within_quota(s.spool.len())?;
                }
                staged.push(s);
            } else {
                let text = field.text().await.map_err(malformed)?;
                text_len += name.len() + text.len();
                if text_len > limit {
                    return Err(HostedError::TooLarge {
                        limit: limit as u32,
                    });
                }
                if let serde_json::Value::Array(values) = fields
                    .entry(name)
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                {
                    values.push(text.into());
                }
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
            return Err(HostedError::BadUpload(
                "the adapter named an empty, oversized or NUL-containing key".into(),
            ));
        }
        let spool = self
            .staged
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(file as usize).and_then(Option::take))
            .ok_or_else(|| {
                HostedError::BadUpload(format!(
                    "the adapter committed staged file {file}, which does not exist or was committed already"
                ))
            })?;
        upload::commit(
            &self.state,
            &self.remote,
            &key,
            spool,
            None,
            (content_type, Vec::new()),
            refuse_overwrite,
        )
        .await
        .map(|_| ())
    }
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

/// Whether the member path `path` matches `pattern` (`.`-separated
/// member names, `*` for any one).
fn matches(pattern: &str, path: &[String]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == path.len() && parts.iter().zip(path).all(|(p, n)| *p == "*" || p == n)
}

/// A JSON body: the strings at `patterns` decoded from base64 into
/// staged files and written as `""` into the rest.
fn json_base64(
    reader: impl Read,
    patterns: &[String],
    limit: usize,
    new_spool: &dyn Fn() -> Result<Spool, StoreError>,
) -> Result<Unpacked, HostedError> {
    let mut r = JsonStreamReader::new(reader);
    let mut rest = Rest {
        buf: Vec::new(),
        limit,
    };
    let mut staged = Vec::new();
    {
        let mut w = JsonStreamWriter::new(&mut rest);
        let mut path = Vec::new();
        walk(&mut r, &mut w, &mut path, patterns, &mut staged, new_spool)?;
        w.finish_document().map_err(io_error)?;
    }
    r.consume_trailing_whitespace().map_err(json_error)?;
    Ok((rest.buf, staged))
}

/// Copies one value from `r` to `w`, taking out the files.
fn walk(
    r: &mut JsonStreamReader<impl Read>,
    w: &mut JsonStreamWriter<&mut Rest>,
    path: &mut Vec<String>,
    patterns: &[String],
    staged: &mut Vec<Staging>,
    new_spool: &dyn Fn() -> Result<Spool, StoreError>,
) -> Result<(), HostedError> {
    match r.peek().map_err(json_error)? {
        ValueType::Object => {
            r.begin_object().map_err(json_error)?;
            w.begin_object().map_err(io_error)?;
            while r.has_next().map_err(json_error)? {
                let name = r.next_name_owned().map_err(json_error)?;
                w.name(&name).map_err(io_error)?;
                path.push(name);
                walk(r, w, path, patterns, staged, new_spool)?;
                path.pop();
            }
            r.end_object().map_err(json_error)?;
            w.end_object().map_err(io_error)
        }
        ValueType::Array => {
            r.begin_array().map_err(json_error)?;
            w.begin_array().map_err(io_error)?;
            let mut i = 0usize;
            while r.has_next().map_err(json_error)? {
                path.push(i.to_string());
                walk(r, w, path, patterns, staged, new_spool)?;
                path.pop();
                i += 1;
            }
            r.end_array().map_err(json_error)?;
            w.end_array().map_err(io_error)
        }
        ValueType::String if patterns.iter().any(|p| matches(p, path)) => {
            let origin = path.join(".");
            let mut s = Staging::new(new_spool()?, origin.clone(), String::new());
            {
                let text = r.next_string_reader().map_err(json_error)?;
                let mut decoder = base64::read::DecoderReader::new(
                    text,
                    &base64::engine::general_purpose::STANDARD,
                );
                std::io::copy(&mut decoder, &mut s).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        HostedError::BadUpload(format!("the file at {origin} is not base64: {e}"))
                    } else {
                        StoreError::io("write spool", s.spool.path().display(), e).into()
                    }
                })?;
            }
            staged.push(s);
            w.string_value("").map_err(io_error)
        }
        _ => r.transfer_to(w).map_err(|e| match e {
            struson::reader::TransferError::ReaderError(e) => json_error(e),
            struson::reader::TransferError::WriterError(e) => io_error(e),
        }),
    }
}

/// A JSON reading error as the client gets it.
fn json_error(e: struson::reader::ReaderError) -> HostedError {
    HostedError::BadUpload(format!("the request body is not valid JSON: {e}"))
}

/// A write error of the rest: over its limit, or the spool failed.
fn io_error(e: std::io::Error) -> HostedError {
    if e.get_ref().is_some_and(|inner| inner.is::<RestTooLarge>()) {
        HostedError::BadUpload(RestTooLarge.to_string())
    } else {
        HostedError::Interrupted(e.to_string())
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
            Err(e) => return Err(HostedError::Interrupted(e.to_string())),
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
            rest.write_all(&len).map_err(io_error)?;
            std::io::copy(&mut part, &mut rest).map_err(io_error)?
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
    /// becomes a staged file; the rest is the same document with `""`.
    #[test]
    fn json_files_are_taken_out() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"\xff\xfe tarball bytes \x00";
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data)
            .replace('/', "\\/");
        let body = format!(
            r#"{{"name":"a","versions":{{"1.0.0":{{"x":[1,true,null,"s"]}}}},"_attachments":{{"a-1.0.0.tgz":{{"content_type":"application/octet-stream","data":"{b64}","length":{}}}}}}}"#,
            data.len()
        );
        let (rest, files) = json_base64(
            body.as_bytes(),
            &["_attachments.*.data".to_owned()],
            1 << 20,
            &spools(dir.path()),
        )
        .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&rest).unwrap();
        assert_eq!(doc["_attachments"]["a-1.0.0.tgz"]["data"], "");
        assert_eq!(
            doc["versions"]["1.0.0"]["x"],
            serde_json::json!([1, true, null, "s"])
        );
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].origin, "_attachments.a-1.0.0.tgz.data");
        assert_eq!(read_all(&files[0]), data);
        let (_, f) = files.into_iter().next().unwrap().done();
        assert_eq!(f.size, data.len() as u64);
        assert_eq!(f.sha1, format!("{:x}", sha1::Sha1::digest(data)));
    }

    /// Bad input is a 400 or 413 saying what was wrong.
    #[test]
    fn bad_json_bodies_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ["a".to_owned()];
        for (body, status, text) in [
            (r#"{"a":"!!!"}"#, 400, "not base64"),
            (r#"{"a":"QQ=="} x"#, 400, "not valid JSON"),
            (r#"{"a":"#, 400, "not valid JSON"),
            (
                r#"{"b":"0123456789012345678901234567890123456789"}"#,
                400,
                "larger than",
            ),
        ] {
            let e = json_base64(body.as_bytes(), &paths, 32, &spools(dir.path()))
                .err()
                .expect("refused");
            assert_eq!(e.status().as_u16(), status, "{body}: {e}");
            assert!(e.to_string().contains(text), "{body}: {e}");
        }
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
    }
}
