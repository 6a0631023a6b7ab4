//! A hosted Python package index: `twine upload` (the legacy upload API)
//! and `pip install` from it.
//!
//! | request | answer |
//! | --- | --- |
//! | `POST` at the remote's root or `legacy/` (`twine upload --repository-url GATEWAY/api/v1/remote/R/`) | the multipart field `content` is taken out of the request by the core (`unpack-body`, never through the adapter), checked against the upload's `sha256_digest`, and stored write-once as `files/{project}/{filename}`; a file that exists is 409 (`File already exists`, which `twine --skip-existing` understands) |
//! | `GET simple/` | the project list |
//! | `GET simple/{project}/` | the project page, PEP 503 HTML or PEP 691 JSON by `Accept`, links relative to the page with `#sha256=` and `data-requires-python` |
//! | `GET files/{project}/{filename}` | the file, while the page lists it |
//!
//! **State.** The projects (normalized name → the name as first
//! uploaded) and each project's files (name → sha256 and
//! `requires-python`) are [`kvmap`]s in the key-value store, changed by
//! one upload at a time under a lock (`kvlock`; 503 to an upload that
//! finds it taken). A virtual
//! remote over a hosted and a pull-through pypi remote (hosted first) is
//! the usual group: private projects from the hosted one, the rest from
//! upstream; the pages' relative links keep files on the group's URL.

use crate::{HTML, JSON, normalize, wants_json};
use artgate_sdk::kvlock;
use artgate_sdk::kvmap;
use artgate_sdk::markup;
use artgate_sdk::prelude::*;
use serde_json::{Value, json};

/// Largest upload without its file (the metadata fields; the gateway's
/// `max_request_body_inspect` bounds it too).
const FIELDS_LIMIT: u32 = 1 << 20;

/// Plans a request on a hosted pypi remote.
pub fn plan(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    let segs: Vec<&str> = req.path.split('/').collect();
    let result = match (req.method.as_str(), segs.as_slice()) {
        ("POST", [""] | ["legacy"] | ["legacy", ""]) => upload(host, req),
        ("GET" | "HEAD", ["simple"] | ["simple", ""]) => Ok(index(host, req)),
        ("GET" | "HEAD", ["simple", project]) => Ok(Decision::respond(
            DirectResponse::new(301, Vec::new())
                .header("location", format!("{}/", http::encode_component(project))),
        )),
        ("GET" | "HEAD", ["simple", project, ""]) => page(host, req, project),
        ("GET" | "HEAD", ["files", project, filename]) => file(host, project, filename),
        (m, _) => Err(Rejection::new(
            if matches!(m, "GET" | "HEAD") {
                404
            } else {
                405
            },
            format!(
                "Remote '{}' is a hosted index: it serves simple/, simple/{{project}}/ and files/, and takes uploads (twine) at its root, not {m} /{}.",
                remote.name, req.path
            ),
        )),
    };
    result.unwrap_or_else(Decision::Reject)
}

fn files_key(project: &str) -> String {
    format!("files/{project}")
}

/// The first value of a multipart field.
fn field<'a>(fields: &'a Value, name: &str) -> Option<&'a str> {
    fields[name][0].as_str()
}

/// Whether `filename` is a distribution file name the index serves: one
/// path segment, a wheel, sdist or zip.
fn is_dist_name(filename: &str) -> bool {
    !filename.is_empty()
        && filename.len() <= 255
        && !filename.starts_with('.')
        && filename
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+!".contains(&b))
        && [".whl", ".tar.gz", ".zip"]
            .iter()
            .any(|e| filename.ends_with(e))
}

/// `twine upload`: the metadata fields and the file `content`.
fn upload(host: &dyn Host, req: &Request) -> Result<Decision, Rejection> {
    let unpacked =
        host.unpack_body(&BodyLayout::Multipart(vec!["content".into()]), FIELDS_LIMIT)?;
    let bad = |why: String| Rejection::new(400, why);
    let fields: Value = serde_json::from_slice(&unpacked.rest)
        .map_err(|_| bad("The upload's fields could not be read.".into()))?;
    if field(&fields, ":action") != Some("file_upload") {
        return Err(bad("Only :action=file_upload is served.".into()));
    }
    let name = field(&fields, "name").unwrap_or_default();
    let version = field(&fields, "version").unwrap_or_default();
    let project = normalize(name);
    if project.is_empty() || project.len() > 200 || version.is_empty() {
        return Err(bad("The upload has no project name or version.".into()));
    }
    let [file] = unpacked.files.as_slice() else {
        return Err(bad(
            "The upload has no file in its \"content\" field.".into()
        ));
    };
    let filename = file.filename.as_str();
    if !is_dist_name(filename)
        || !normalize(filename).starts_with(&normalize(&format!("{name}-{version}")))
    {
        return Err(bad(format!(
            "{filename:?} is not a distribution file name of {name} {version}."
        )));
    }
    let sha256 = file.sha256.trim_start_matches("sha256:");
    match field(&fields, "sha256_digest") {
        Some(d) if !d.eq_ignore_ascii_case(sha256) => {
            return Err(bad(format!("{filename} does not match its sha256_digest.")));
        }
        _ => {}
    }
    // Uploads run one at a time: the project list and each project's files
    // are read, changed and written back. One that finds the lock taken
    // gets 503; a lock whose holder failed expires after 30 s.
    let _held = kvlock::lock_or_busy(host, "lock/uploads", &req.id, 30, "The index")?;
    let mut files: std::collections::BTreeMap<String, String> =
        kvmap::entries(host, &files_key(&project))
            .into_iter()
            .collect();
    let exists = || Rejection::new(409, format!("File already exists: {filename}."));
    if files.contains_key(filename) {
        return Err(exists());
    }
    let record = json!({
        "sha256": sha256,
        "requires-python": field(&fields, "requires_python").unwrap_or_default(),
    });
    files.insert(filename.to_owned(), record.to_string());
    host.hosted_commit(
        0,
        &format!("files/{project}/{filename}"),
        Some(crate::file_content_type(filename)),
        true,
    )
    .map_err(|r| if r.status == 409 { exists() } else { r })?;
    kvmap::store(host, &files_key(&project), &files);
    let mut projects: std::collections::BTreeMap<String, String> =
        kvmap::entries(host, "projects").into_iter().collect();
    if !projects.contains_key(&project) {
        projects.insert(project.clone(), name.to_owned());
        kvmap::store(host, "projects", &projects);
    }
    info!("uploaded {filename} to {project}");
    Ok(Decision::respond(
        DirectResponse::new(200, "OK\n").header("content-type", "text/plain; charset=utf-8"),
    ))
}

/// The project list.
fn index(host: &dyn Host, req: &Request) -> Decision {
    let projects = kvmap::entries(host, "projects");
    if wants_json(req) {
        let list: Vec<Value> = projects.iter().map(|(p, _)| json!({"name": p})).collect();
        let doc = json!({"meta": {"api-version": "1.1"}, "projects": list});
        return answer(doc.to_string(), JSON);
    }
    let mut out = String::from(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Simple index</title></head>\n<body>\n",
    );
    for (p, _) in &projects {
        let p = markup::escape(p);
        out.push_str(&format!("<a href=\"{p}/\">{p}</a><br>\n"));
    }
    out.push_str("</body>\n</html>\n");
    answer(out, HTML)
}

fn answer(body: String, content_type: &str) -> Decision {
    Decision::respond(
        DirectResponse::new(200, body)
            .header("content-type", content_type)
            .header("vary", "Accept")
            .header("cache-control", "no-cache"),
    )
}

/// A project page.
fn page(host: &dyn Host, req: &Request, project: &str) -> Result<Decision, Rejection> {
    let project = normalize(project);
    let files = kvmap::entries(host, &files_key(&project));
    if files.is_empty() {
        return Err(Rejection::new(
            404,
            format!("Project {project} is not in this index."),
        ));
    }
    let depth = req.path.matches('/').count();
    let prefix = format!("{}files/{project}/", "../".repeat(depth));
    let records: Vec<(String, Value)> = files
        .into_iter()
        .map(|(f, r)| (f, serde_json::from_str(&r).unwrap_or_default()))
        .collect();
    if wants_json(req) {
        let list: Vec<Value> = records
            .iter()
            .map(|(f, r)| {
                let mut e = json!({
                    "filename": f,
                    "url": format!("{prefix}{}", http::encode_component(f)),
                    "hashes": {"sha256": r["sha256"]},
                });
                if let Some(rp) = r["requires-python"].as_str().filter(|s| !s.is_empty()) {
                    e["requires-python"] = json!(rp);
                }
                e
            })
            .collect();
        let doc = json!({"meta": {"api-version": "1.1"}, "name": project, "files": list});
        return Ok(answer(doc.to_string(), JSON));
    }
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for {p}</title></head>\n<body>\n<h1>Links for {p}</h1>\n",
        p = markup::escape(&project)
    );
    for (f, r) in &records {
        let href = format!(
            "{prefix}{}#sha256={}",
            http::encode_component(f),
            r["sha256"].as_str().unwrap_or_default()
        );
        out.push_str(&format!("<a href=\"{}\"", markup::escape(&href)));
        if let Some(rp) = r["requires-python"].as_str().filter(|s| !s.is_empty()) {
            out.push_str(&format!(" data-requires-python=\"{}\"", markup::escape(rp)));
        }
        out.push_str(&format!(">{}</a><br>\n", markup::escape(f)));
    }
    out.push_str("</body>\n</html>\n");
    Ok(answer(out, HTML))
}

/// A file the project page lists.
fn file(host: &dyn Host, project: &str, filename: &str) -> Result<Decision, Rejection> {
    let project = normalize(project);
    if kvmap::lookup(host, &files_key(&project), filename).is_none() {
        return Err(Rejection::new(
            404,
            format!("{filename} is not a file of {project} in this index."),
        ));
    }
    Ok(Decision::hosted_read(
        HostedRead::new(format!("files/{project}/{filename}"))
            .content_type(crate::file_content_type(filename)),
    ))
}

#[cfg(test)]
mod tests;
