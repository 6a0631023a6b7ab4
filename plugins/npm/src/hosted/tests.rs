use super::*;
use crate::plan_with;
use artgate_sdk::testing::{Call, FakeHost};
use base64::Engine as _;

const GW: &str = "http://gw.example:8080";
const SHA512: [u8; 64] = [5; 64];
const SHA1: [u8; 20] = [6; 20];

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("own")
        .with_package("npm")
        .hosted()
}

fn host() -> FakeHost {
    let h = FakeHost::new();
    h.with_gateway_url(GW);
    h
}

/// What npm publish sends for `name`@`version` once the core took the
/// tarball out: the JSON (with `data` emptied) and the staged file.
fn upload(h: &FakeHost, name: &str, version: &str, integrity_of: [u8; 64]) {
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(integrity_of)
    );
    upload_dist(
        h,
        name,
        version,
        version,
        json!({"integrity": integrity, "shasum": hex(&SHA1), "tarball": "http://ignored/x.tgz"}),
    );
}

/// [`upload`] with the manifest's `version` and `dist` as given.
fn upload_dist(h: &FakeHost, name: &str, version: &str, in_manifest: &str, dist: Value) {
    // As npm names it: with the scope.
    let file = format!(
        "{}-{version}.tgz",
        name.trim_start_matches('@').replace('/', "-")
    );
    let rest = json!({
        "_id": name,
        "name": name,
        "dist-tags": {"latest": version},
        "versions": {version: {
            "name": name, "version": in_manifest, "readme": "long text",
            "dist": dist,
        }},
        "_attachments": {file.clone(): {"content_type": "application/octet-stream", "data": "", "length": 42}},
    });
    h.with_unpacked(Ok(UnpackedBody {
        rest: rest.to_string().into_bytes(),
        files: vec![StagedFile {
            origin: format!("/_attachments/{file}/data"),
            filename: String::new(),
            size: 42,
            sha256: format!("sha256:{}", "0".repeat(64)),
            sha512: hex(&SHA512),
            sha1: hex(&SHA1),
        }],
    }));
}

/// One request (a new one for the host's once-per-request rules).
fn call(h: &FakeHost, method: &str, path: &str, body: Option<&[u8]>) -> Decision {
    h.next_request();
    plan_with(
        h,
        &remote(),
        &Request::test(method, path).with_body(body.map(<[u8]>::to_vec)),
    )
}

fn json_of(d: Decision) -> Value {
    let r = d.expect_respond();
    serde_json::from_slice(&r.body).unwrap()
}

/// A publish stores the tarball write-once under its conventional path
/// (taken out of the body by the core), the manifest without its readme,
/// and the version in the index; the packument then lists it with its
/// tarball at the gateway.
#[test]
fn publish_then_read() {
    let h = host();
    upload(&h, "@acme/left-pad", "1.0.0", SHA512);
    let r = call(&h, "PUT", "@acme/left-pad", None).expect_respond();
    assert_eq!(r.status, 201);
    assert!(h.calls().contains(&Call::UnpackBody(
        BodyLayout::JsonBase64(vec!["/_attachments/*.tgz/data".into()]),
        REST_LIMIT
    )));
    assert_eq!(
        h.hosted_committed(),
        [("@acme/left-pad/-/left-pad-1.0.0.tgz".to_owned(), 0)].into()
    );
    let doc = json_of(call(&h, "GET", "@acme/left-pad", None));
    let v = &doc["versions"]["1.0.0"];
    assert_eq!(
        v["dist"]["tarball"],
        format!("{GW}/api/v1/remote/own/@acme/left-pad/-/left-pad-1.0.0.tgz")
    );
    assert!(v.get("readme").is_none());
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert!(doc["time"]["1.0.0"].as_str().unwrap().ends_with('Z'));
    match call(&h, "GET", "@acme/left-pad/-/left-pad-1.0.0.tgz", None).expect_hosted() {
        HostedOp::Read(r) => assert_eq!(r.key, "@acme/left-pad/-/left-pad-1.0.0.tgz"),
        other => panic!("{other:?}"),
    }
    call(&h, "GET", "@acme/left-pad/-/left-pad-2.0.0.tgz", None)
        .expect_reject_with(404, "not a published tarball");
    call(&h, "GET", "nothing", None).expect_reject_with(404, "not in this registry");
}

/// Publishing a version again is a 409, before the commit (the index) and
/// at it (the key is taken: a publish racing another one, or a version
/// unpublished before).
#[test]
fn publishing_an_existing_version_is_409() {
    let h = host();
    upload(&h, "left-pad", "1.0.0", SHA512);
    assert_eq!(
        call(&h, "PUT", "left-pad", None).expect_respond().status,
        201
    );
    call(&h, "PUT", "left-pad", None).expect_reject_with(409, "already published");
    let h = host();
    h.hosted_insert("left-pad/-/left-pad-1.0.0.tgz");
    upload(&h, "left-pad", "1.0.0", SHA512);
    call(&h, "PUT", "left-pad", None).expect_reject_with(409, "already published");
    assert!(h.kv_keys().is_empty(), "nothing recorded");
}

/// A publish whose tarball does not match its integrity, names another
/// package or attaches another file is a 400 and stores nothing.
#[test]
fn bad_publishes_are_400() {
    let h = host();
    upload(&h, "left-pad", "1.0.0", [9; 64]);
    call(&h, "PUT", "left-pad", None).expect_reject_with(400, "does not match its dist.integrity");
    upload(&h, "right-pad", "1.0.0", SHA512);
    call(&h, "PUT", "left-pad", None).expect_reject_with(400, "names package");
    upload(&h, "left-pad", "1.0.0", SHA512);
    call(&h, "PUT", "other", None).expect_reject_with(400, "names package");
    let two = json!({"name": "left-pad", "versions": {"1.0.0": {}},
        "_attachments": {"a.tgz": {"data": ""}, "b.tgz": {"data": ""}}});
    h.with_unpacked(Ok(UnpackedBody {
        rest: two.to_string().into_bytes(),
        files: Vec::new(),
    }));
    call(&h, "PUT", "left-pad", None).expect_reject_with(400, "one version and one tarball");
    // A shasum that disagrees though sha512 matches; an integrity the
    // registry cannot check; a manifest for another version.
    let sri = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(SHA512)
    );
    for (dist, version_in_manifest, text) in [
        (
            json!({"integrity": sri, "shasum": "00".repeat(20)}),
            "1.0.0",
            "does not match",
        ),
        (
            json!({"integrity": format!("{sri} sha384-AAAA")}),
            "1.0.0",
            "cannot check",
        ),
        (
            json!({"shasum": hex(&SHA1)}),
            "1.0.0",
            "must give dist.integrity as sha512",
        ),
        (
            json!({"integrity": sri}),
            "9.9.9",
            "another package or version",
        ),
    ] {
        upload_dist(&h, "left-pad", "1.0.0", version_in_manifest, dist);
        call(&h, "PUT", "left-pad", None).expect_reject_with(400, text);
    }
    h.with_unpacked(Err(Rejection::new(413, "too large")));
    call(&h, "PUT", "left-pad", None).expect_reject_with(413, "too large");
    assert!(h.hosted_committed().is_empty());
    assert!(h.kv_keys().is_empty());
}

/// dist-tags are listed, added (the body is the version as a JSON
/// string) and removed; latest stays.
#[test]
fn dist_tags() {
    let h = host();
    upload(&h, "left-pad", "1.0.0", SHA512);
    call(&h, "PUT", "left-pad", None).expect_respond();
    assert_eq!(
        call(&h, "PUT", "-/package/left-pad/dist-tags/beta", None).expect_read_body(),
        1024
    );
    let r = call(
        &h,
        "PUT",
        "-/package/left-pad/dist-tags/beta",
        Some(b"\"1.0.0\""),
    );
    assert_eq!(r.expect_respond().status, 201);
    assert_eq!(
        json_of(call(&h, "GET", "-/package/left-pad/dist-tags", None)),
        json!({"latest": "1.0.0", "beta": "1.0.0"})
    );
    call(
        &h,
        "PUT",
        "-/package/left-pad/dist-tags/x",
        Some(b"\"9.9.9\""),
    )
    .expect_reject_with(404, "no published version");
    call(&h, "DELETE", "-/package/left-pad/dist-tags/beta", None).expect_respond();
    call(&h, "DELETE", "-/package/left-pad/dist-tags/latest", None)
        .expect_reject_with(400, "cannot be removed");
    assert_eq!(
        json_of(call(&h, "GET", "-/package/left-pad/dist-tags", None)),
        json!({"latest": "1.0.0"})
    );
}

/// npm unpublish of one version sends the packument without it, then
/// deletes its tarball; of the whole package, a DELETE of its revision.
#[test]
fn unpublish() {
    let h = host();
    for v in ["1.0.0", "1.1.0"] {
        upload(&h, "left-pad", v, SHA512);
        call(&h, "PUT", "left-pad", None).expect_respond();
    }
    let mut doc = json_of(call(&h, "GET", "left-pad", None));
    doc["versions"].as_object_mut().unwrap().remove("1.1.0");
    doc["dist-tags"]["latest"] = json!("1.0.0");
    let rev = doc["_rev"].as_str().unwrap().to_owned();
    let body = doc.to_string();
    // A revision read before another change is refused.
    call(
        &h,
        "PUT",
        "left-pad/-rev/1-0000000000000000",
        Some(body.as_bytes()),
    )
    .expect_reject_with(409, "changed since revision");
    call(
        &h,
        "PUT",
        &format!("left-pad/-rev/{rev}"),
        Some(body.as_bytes()),
    )
    .expect_respond();
    let now = json_of(call(&h, "GET", "left-pad", None));
    assert!(now["versions"].get("1.1.0").is_none());
    assert_eq!(now["dist-tags"]["latest"], "1.0.0");
    call(&h, "GET", "left-pad/-/left-pad-1.1.0.tgz", None)
        .expect_reject_with(404, "not a published");
    match call(
        &h,
        "DELETE",
        "left-pad/-/left-pad-1.1.0.tgz/-rev/1-artgate",
        None,
    )
    .expect_hosted()
    {
        HostedOp::Delete(k) => assert_eq!(k, "left-pad/-/left-pad-1.1.0.tgz"),
        other => panic!("{other:?}"),
    }
    call(
        &h,
        "DELETE",
        "left-pad/-/left-pad-1.0.0.tgz/-rev/1-artgate",
        None,
    )
    .expect_reject_with(400, "unpublish it first");
    let rev = json_of(call(&h, "GET", "left-pad", None))["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    call(&h, "DELETE", &format!("left-pad/-rev/{rev}"), None).expect_respond();
    call(&h, "GET", "left-pad", None).expect_reject_with(404, "not in this registry");
    call(&h, "GET", "left-pad/-/left-pad-1.0.0.tgz", None)
        .expect_reject_with(404, "not a published");
}

/// Changes to one package run one at a time: while another request holds
/// its lock a publish is 503 and stores nothing; the lock is released
/// after each change, and other packages are not held up.
#[test]
fn changes_to_a_package_take_its_lock() {
    let h = host();
    h.kv_insert("lock/left-pad", "another-request");
    upload(&h, "left-pad", "1.0.0", SHA512);
    call(&h, "PUT", "left-pad", None).expect_reject_with(503, "being changed by another request");
    assert!(h.hosted_committed().is_empty());
    upload(&h, "right-pad", "1.0.0", SHA512);
    let mut other = call(&h, "PUT", "right-pad", None);
    if let Decision::Reject(r) = &other {
        panic!("{r:?}");
    }
    other = call(&h, "GET", "right-pad", None);
    assert!(matches!(other, Decision::Respond(_)));
    assert_eq!(h.kv_value("lock/right-pad"), None, "released");
    h.kv_delete("lock/left-pad");
    upload(&h, "left-pad", "1.0.0", SHA512);
    assert_eq!(
        call(&h, "PUT", "left-pad", None).expect_respond().status,
        201
    );
}
