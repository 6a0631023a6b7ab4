use super::*;
use crate::plan_with;
use artgate_sdk::testing::{Call, FakeHost};

const SHA: &str = "4a3d9216e57f7676411fae31ceea965b5771d62b9e17fce7c8dca429d1f32338";

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("own")
        .with_package("pypi")
        .hosted()
}

/// What `twine upload` of `filename` sends once the core took `content`
/// out: the other fields and the staged file.
fn upload(h: &FakeHost, name: &str, version: &str, filename: &str, digest: &str) {
    let fields = json!({
        ":action": ["file_upload"], "protocol_version": ["1"],
        "name": [name], "version": [version], "filetype": ["bdist_wheel"],
        "sha256_digest": [digest], "requires_python": [">=3.8"],
    });
    h.with_unpacked(Ok(UnpackedBody {
        rest: fields.to_string().into_bytes(),
        files: vec![StagedFile {
            origin: "content".into(),
            filename: filename.into(),
            size: 100,
            sha256: format!("sha256:{SHA}"),
            sha512: String::new(),
            sha1: String::new(),
        }],
    }));
}

/// One request (a new one for the host's once-per-request rules).
fn call(h: &FakeHost, method: &str, path: &str, accept: Option<&str>) -> Decision {
    h.next_request();
    let mut req = Request::test(method, path);
    if let Some(a) = accept {
        req = req.with_header("accept", a);
    }
    plan_with(h, &remote(), &req)
}

fn text(d: Decision) -> (u16, String) {
    let r = d.expect_respond();
    (r.status, String::from_utf8(r.body).unwrap())
}

/// An upload stores the file write-once under its project (taken out of
/// the request by the core); the index, the project page in both forms
/// and the file then serve it.
#[test]
fn upload_then_install() {
    let h = FakeHost::new();
    upload(&h, "Demo_App", "1.0", "demo_app-1.0-py3-none-any.whl", SHA);
    let (status, _) = text(call(&h, "POST", "", None));
    assert_eq!(status, 200);
    assert!(h.calls().contains(&Call::UnpackBody(
        BodyLayout::Multipart(vec!["content".into()]),
        FIELDS_LIMIT
    )));
    assert_eq!(
        h.hosted_committed(),
        [("files/demo-app/demo_app-1.0-py3-none-any.whl".to_owned(), 0)].into()
    );
    let (_, index) = text(call(&h, "GET", "simple/", None));
    assert!(
        index.contains("<a href=\"demo-app/\">demo-app</a>"),
        "{index}"
    );
    let (_, html) = text(call(&h, "GET", "simple/Demo.App/", None));
    assert!(
        html.contains(&format!(
            "href=\"../../files/demo-app/demo_app-1.0-py3-none-any.whl#sha256={SHA}\" data-requires-python=\"&gt;=3.8\""
        )),
        "{html}"
    );
    let (_, json) = text(call(
        &h,
        "GET",
        "simple/demo-app/",
        Some("application/vnd.pypi.simple.v1+json"),
    ));
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["files"][0]["hashes"]["sha256"], SHA);
    assert_eq!(doc["files"][0]["requires-python"], ">=3.8");
    match call(
        &h,
        "GET",
        "files/demo-app/demo_app-1.0-py3-none-any.whl",
        None,
    )
    .expect_hosted()
    {
        HostedOp::Read(r) => assert_eq!(r.key, "files/demo-app/demo_app-1.0-py3-none-any.whl"),
        other => panic!("{other:?}"),
    }
    call(&h, "GET", "files/demo-app/other-1.0.tar.gz", None)
        .expect_reject_with(404, "not a file of demo-app");
    call(&h, "GET", "simple/nothing/", None).expect_reject_with(404, "not in this index");
}

/// A file uploaded again is 409 (`File already exists`, which twine's
/// `--skip-existing` understands); a wrong digest, another project's file
/// name or a missing file is 400, and nothing is stored.
#[test]
fn bad_uploads_are_refused() {
    let h = FakeHost::new();
    upload(&h, "demo", "1.0", "demo-1.0.tar.gz", SHA);
    text(call(&h, "POST", "legacy/", None));
    upload(&h, "demo", "1.0", "demo-1.0.tar.gz", SHA);
    call(&h, "POST", "", None).expect_reject_with(409, "File already exists");
    let h = FakeHost::new();
    for (name, file, digest, text) in [
        (
            "demo",
            "demo-1.0.tar.gz",
            "00",
            "does not match its sha256_digest",
        ),
        (
            "demo",
            "other-1.0.tar.gz",
            SHA,
            "not a distribution file name of demo",
        ),
        (
            "demo",
            "../demo-1.0.tar.gz",
            SHA,
            "not a distribution file name",
        ),
        ("demo", "demo-1.0.exe", SHA, "not a distribution file name"),
    ] {
        upload(&h, name, "1.0", file, digest);
        call(&h, "POST", "", None).expect_reject_with(400, text);
    }
    h.with_unpacked(Ok(UnpackedBody {
        rest: json!({":action": ["file_upload"], "name": ["demo"], "version": ["1.0"]})
            .to_string()
            .into_bytes(),
        files: Vec::new(),
    }));
    call(&h, "POST", "", None).expect_reject_with(400, "no file");
    assert!(h.hosted_committed().is_empty());
    assert!(h.kv_keys().is_empty());
    call(&h, "PUT", "files/demo/demo-1.0.tar.gz", None).expect_reject_with(405, "hosted index");
}
