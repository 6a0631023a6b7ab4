use super::*;
use crate::plan_with;
use artgate_sdk::testing::{Call, FakeHost};

const GW: &str = "http://gw.example:8080";

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("own")
        .with_package("cargo")
        .hosted()
}

/// What `cargo publish` of `name` `vers` sends once the core took the
/// `.crate` out: the metadata part (with its length) and the staged file.
fn upload(h: &FakeHost, name: &str, vers: &str) {
    let meta = json!({
        "name": name, "vers": vers,
        "deps": [
            {"name": "serde", "version_req": "^1", "features": ["derive"], "optional": false,
             "default_features": true, "target": null, "kind": "normal", "registry": "https://github.com/rust-lang/crates.io-index"},
            {"name": "other-crate", "version_req": "^0.2", "features": [], "optional": true,
             "default_features": false, "target": "cfg(unix)", "kind": "normal", "registry": null,
             "explicit_name_in_toml": "renamed"},
        ],
        "features": {"default": ["std"], "std": [], "extra": ["dep:renamed"]},
        "links": null, "rust_version": "1.70",
    })
    .to_string();
    let mut rest = (meta.len() as u32).to_le_bytes().to_vec();
    rest.extend_from_slice(meta.as_bytes());
    h.with_unpacked(Ok(UnpackedBody {
        rest,
        files: vec![StagedFile {
            origin: "1".into(),
            filename: String::new(),
            size: 1000,
            sha256: format!("sha256:{}", "ab".repeat(32)),
            sha512: String::new(),
            sha1: String::new(),
        }],
    }));
}

/// One request (a new one for the host's once-per-request rules).
fn call(h: &FakeHost, method: &str, path: &str) -> Decision {
    h.next_request();
    plan_with(h, &remote(), &Request::test(method, path))
}

fn body(d: Decision) -> (u16, String) {
    let r = d.expect_respond();
    (r.status, String::from_utf8(r.body).unwrap())
}

/// `config.json` names the gateway for downloads and the API.
#[test]
fn config_names_the_gateway() {
    let h = FakeHost::new();
    h.with_gateway_url(GW);
    let (status, text) = body(call(&h, "GET", "config.json"));
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["api"], format!("{GW}/api/v1/remote/own"));
    assert_eq!(
        doc["dl"],
        format!("{GW}/api/v1/remote/own/-/dl/{{crate}}/{{version}}")
    );
}

/// A publish stores the `.crate` write-once and an index line the way
/// cargo reads it: renamed dependencies, features split by syntax, the
/// sha256 as `cksum`; the index file and the download then serve it.
#[test]
fn publish_then_fetch() {
    let h = FakeHost::new();
    upload(&h, "My_Crate", "0.1.0");
    let (status, text) = body(call(&h, "PUT", "api/v1/crates/new"));
    assert_eq!(status, 200, "{text}");
    assert!(h.calls().contains(&Call::UnpackBody(
        BodyLayout::LengthPrefixed(vec![1]),
        META_LIMIT
    )));
    assert_eq!(
        h.hosted_committed(),
        [("-/dl/my_crate/0.1.0".to_owned(), 0)].into()
    );
    let (status, text) = body(call(&h, "GET", "my/_c/my_crate"));
    assert_eq!(status, 200);
    let line: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["name"], "My_Crate");
    assert_eq!(line["cksum"], "ab".repeat(32));
    assert_eq!(line["deps"][0]["req"], "^1");
    assert_eq!(line["deps"][1]["name"], "renamed");
    assert_eq!(line["deps"][1]["package"], "other-crate");
    assert_eq!(line["features"], json!({"default": ["std"], "std": []}));
    assert_eq!(line["features2"], json!({"extra": ["dep:renamed"]}));
    assert_eq!(line["v"], 2);
    assert_eq!(line["yanked"], false);
    match call(&h, "GET", "-/dl/My_Crate/0.1.0").expect_hosted() {
        HostedOp::Read(r) => assert_eq!(r.key, "-/dl/my_crate/0.1.0"),
        other => panic!("{other:?}"),
    }
    let (status, _) = body(call(&h, "GET", "-/dl/My_Crate/9.9.9"));
    assert_eq!(status, 404);
    let (status, _) = body(call(&h, "GET", "ot/he/other"));
    assert_eq!(status, 404);
}

/// Publishing a version again is a 409, and a name that differs only in
/// case a 400; both in the form cargo prints.
#[test]
fn republish_and_renames_are_refused() {
    let h = FakeHost::new();
    upload(&h, "tool", "1.0.0");
    body(call(&h, "PUT", "api/v1/crates/new"));
    upload(&h, "tool", "1.0.0");
    let (status, text) = body(call(&h, "PUT", "api/v1/crates/new"));
    assert_eq!(status, 409);
    assert!(text.contains("already uploaded"), "{text}");
    upload(&h, "Tool", "1.0.1");
    let (status, text) = body(call(&h, "PUT", "api/v1/crates/new"));
    assert_eq!(status, 400);
    assert!(text.contains("'tool'"), "{text}");
    upload(&h, "tool", "1.0.1");
    let (status, _) = body(call(&h, "PUT", "api/v1/crates/new"));
    assert_eq!(status, 200);
    let (_, index) = body(call(&h, "GET", "to/ol/tool"));
    assert_eq!(index.lines().count(), 2);
}

/// Yank and unyank flip the index line's flag; the `.crate` stays.
#[test]
fn yank_and_unyank() {
    let h = FakeHost::new();
    upload(&h, "tool", "1.0.0");
    body(call(&h, "PUT", "api/v1/crates/new"));
    let (status, _) = body(call(&h, "DELETE", "api/v1/crates/tool/1.0.0/yank"));
    assert_eq!(status, 200);
    let (_, index) = body(call(&h, "GET", "to/ol/tool"));
    assert!(index.contains("\"yanked\":true"), "{index}");
    body(call(&h, "PUT", "api/v1/crates/tool/1.0.0/unyank"));
    let (_, index) = body(call(&h, "GET", "to/ol/tool"));
    assert!(index.contains("\"yanked\":false"), "{index}");
    let (status, _) = body(call(&h, "DELETE", "api/v1/crates/tool/2.0.0/yank"));
    assert_eq!(status, 404);
    let (status, text) = body(call(&h, "GET", "api/v1/crates?q=tool"));
    assert_eq!(status, 501, "{text}");
}

/// Changes to one crate run one at a time: while another request holds
/// its lock a publish or a yank is 503; the lock is released after each.
#[test]
fn changes_to_a_crate_take_its_lock() {
    let h = FakeHost::new();
    h.kv_insert("lock/tool", "another-request");
    upload(&h, "tool", "1.0.0");
    let (status, text) = body(call(&h, "PUT", "api/v1/crates/new"));
    assert_eq!(status, 503, "{text}");
    assert!(h.hosted_committed().is_empty());
    h.kv_delete("lock/tool");
    upload(&h, "tool", "1.0.0");
    assert_eq!(body(call(&h, "PUT", "api/v1/crates/new")).0, 200);
    assert_eq!(h.kv_value("lock/tool"), None, "released");
    h.kv_insert("lock/tool", "another-request");
    assert_eq!(
        body(call(&h, "DELETE", "api/v1/crates/tool/1.0.0/yank")).0,
        503
    );
}
