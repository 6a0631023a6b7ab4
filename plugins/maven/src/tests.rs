//! Unit tests of the adapter's decisions, with the SDK's fake host.

use crate::checksum;
use crate::layout::Algorithm;
use crate::metadata;
use crate::plan_with;
use artgate_sdk::prelude::*;
use artgate_sdk::testing::FakeHost;

const JAR: &str = "org/example/lib/1.0/lib-1.0.jar";
const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";

fn mirror() -> RemoteInfo {
    RemoteInfo::test()
        .with_package("maven")
        .with_upstreams(["https://repo.example/maven2"])
}

fn hosted() -> RemoteInfo {
    RemoteInfo::test().with_package("maven").hosted()
}

fn staged(sha1: &str) -> StagedFile {
    StagedFile {
        origin: String::new(),
        filename: String::new(),
        size: 3,
        sha256: format!("sha256:{}", "a".repeat(64)),
        sha512: "b".repeat(128),
        sha1: sha1.into(),
    }
}

#[test]
fn a_release_jar_is_immutable_and_verified_by_its_sha1() {
    let host = FakeHost::new();
    host.answer_cache_for(
        &format!("/{JAR}.sha1"),
        Ok(IncomingResponse::test(
            200,
            &[],
            format!("{SHA1}  lib-1.0.jar\n"),
        )),
    );
    let f = plan_with(&host, &mirror(), &Request::test("GET", JAR)).expect_forward();
    assert_eq!(f.plan.key, JAR);
    assert_eq!(f.plan.class, CacheClass::Immutable);
    assert_eq!(f.plan.expected_digest, Some(format!("sha1:{SHA1}")));
    assert_eq!(
        f.plan.content_type.as_deref(),
        Some("application/java-archive")
    );
    assert!(f.plan.cache_not_found);
    // The .sha1 was read under the plan its own request gets.
    let sent = host.cache_sent();
    assert_eq!(sent.len(), 1);
    let direct = plan_with(
        &host,
        &mirror(),
        &Request::test("GET", &format!("{JAR}.sha1")),
    )
    .expect_forward();
    assert_eq!(sent[0].1, direct.plan);
}

#[test]
fn a_jar_without_a_sha1_upstream_is_stored_unverified() {
    let host = FakeHost::new();
    host.answer_cache(Ok(IncomingResponse::test(404, &[], "")));
    let f = plan_with(&host, &mirror(), &Request::test("GET", JAR)).expect_forward();
    assert_eq!(f.plan.expected_digest, None);
    // Garbage in the .sha1 is not a checksum either.
    let host = FakeHost::new();
    host.answer_cache(Ok(IncomingResponse::test(200, &[], "<html>")));
    let f = plan_with(&host, &mirror(), &Request::test("GET", JAR)).expect_forward();
    assert_eq!(f.plan.expected_digest, None);
}

#[test]
fn classes_by_path() {
    let host = FakeHost::new();
    host.answer_cache(Ok(IncomingResponse::test(404, &[], "")));
    let class = |p: &str| {
        plan_with(&host, &mirror(), &Request::test("GET", p))
            .expect_forward()
            .plan
            .class
    };
    assert_eq!(
        class("g/a/1.0-SNAPSHOT/a-1.0-20261207.101500-3.jar"),
        CacheClass::Immutable
    );
    assert_eq!(
        class("g/a/1.0-SNAPSHOT/a-1.0-SNAPSHOT.jar"),
        CacheClass::Mutable
    );
    assert_eq!(class("g/a/maven-metadata.xml"), CacheClass::Mutable);
    assert_eq!(class(&format!("{JAR}.sha1")), CacheClass::Immutable);
    assert_eq!(class("archetype-catalog.xml"), CacheClass::Mutable);
    assert_eq!(class("org/example/"), CacheClass::Mutable);
    // Checksum and signature files are never verified themselves.
    let f = plan_with(
        &host,
        &mirror(),
        &Request::test("GET", &format!("{JAR}.asc")),
    )
    .expect_forward();
    assert_eq!(f.plan.expected_digest, None);
    // Patterns win.
    let r = mirror().with_mutable_patterns([r"\.jar$"]);
    let f = plan_with(&host, &r, &Request::test("GET", JAR)).expect_forward();
    assert_eq!(f.plan.class, CacheClass::Mutable);
    assert_eq!(f.plan.expected_digest, None);
}

#[test]
fn metadata_is_inspected_and_its_checksums_computed() {
    let host = FakeHost::new();
    let f = plan_with(
        &host,
        &mirror(),
        &Request::test("GET", "g/a/maven-metadata.xml"),
    )
    .expect_forward();
    assert!(f.plan.inspect_limit.is_some());
    let doc = "<metadata><groupId>g</groupId></metadata>";
    host.answer_cache(Ok(IncomingResponse::test(200, &[], doc)));
    let r = plan_with(
        &host,
        &mirror(),
        &Request::test("GET", "g/a/maven-metadata.xml.sha256"),
    )
    .expect_respond();
    assert_eq!(
        r.body,
        checksum::of(Algorithm::Sha256, doc.as_bytes()).into_bytes()
    );
    // The checksum read the metadata under the metadata's own key.
    assert_eq!(host.cache_sent()[0].1.key, "g/a/maven-metadata.xml");
    // An error page is refused and expired.
    host.answer_cache(Ok(IncomingResponse::test(200, &[], "<html/>")));
    plan_with(
        &host,
        &mirror(),
        &Request::test("GET", "g/a/maven-metadata.xml.sha1"),
    )
    .expect_reject_with(502, "not a Maven metadata document");
    assert_eq!(host.expired(), ["g/a/maven-metadata.xml"]);
    host.answer_cache(Ok(IncomingResponse::test(404, &[], "")));
    plan_with(
        &host,
        &mirror(),
        &Request::test("GET", "g/a/maven-metadata.xml.md5"),
    )
    .expect_reject_with(404, "no /g/a/maven-metadata.xml");
}

#[test]
fn upstream_error_pages_do_not_replace_metadata() {
    let req = Request::test("GET", "g/a/maven-metadata.xml");
    let v = crate::mirror::inspect(&req, b"<html>Service unavailable</html>");
    assert_eq!(v.fail.map(|f| f.status), Some(502));
    let v = crate::mirror::inspect(&req, b"<metadata/>");
    assert!(v.fail.is_none());
    // Other paths are not looked at.
    let v = crate::mirror::inspect(&Request::test("GET", JAR), b"<html>");
    assert!(v.fail.is_none());
}

#[test]
fn a_mirror_refuses_writes() {
    plan_with(&FakeHost::new(), &mirror(), &Request::test("PUT", JAR))
        .expect_reject_with(400, "pull-through");
}

/// Deploys `path` on `host` with the staged file's sha1 `sha1`.
fn deploy(host: &FakeHost, path: &str, sha1: &str) -> Decision {
    host.next_request();
    host.with_staged(staged(sha1));
    plan_with(host, &hosted(), &Request::test("PUT", path))
}

#[test]
fn a_deploy_stores_the_file_and_lists_the_version() {
    let host = FakeHost::new();
    let r = deploy(&host, JAR, SHA1).expect_respond();
    assert_eq!(r.status, 201);
    assert!(host.hosted_committed().contains_key(JAR));
    let doc = host
        .kv_value("meta/org/example/lib")
        .expect("metadata written");
    let m = metadata::parse(&doc).unwrap();
    assert_eq!(
        (m.group_id.as_str(), m.artifact_id.as_str()),
        ("org.example", "lib")
    );
    assert_eq!(m.versions, ["1.0"]);
    assert_eq!(m.release, "1.0");
    // The pom of the same version adds nothing; a new version is appended.
    deploy(&host, "org/example/lib/1.0/lib-1.0.pom", SHA1).expect_respond();
    deploy(&host, "org/example/lib/1.1/lib-1.1.jar", SHA1).expect_respond();
    let m = metadata::parse(&host.kv_value("meta/org/example/lib").unwrap()).unwrap();
    assert_eq!(m.versions, ["1.0", "1.1"]);
    assert_eq!(m.latest, "1.1");
    // Served, with checksums of the very bytes.
    host.next_request();
    let r = plan_with(
        &host,
        &hosted(),
        &Request::test("GET", "org/example/lib/maven-metadata.xml"),
    )
    .expect_respond();
    let sha1 = plan_with(
        &host,
        &hosted(),
        &Request::test("GET", "org/example/lib/maven-metadata.xml.sha1"),
    )
    .expect_respond();
    assert_eq!(
        sha1.body,
        checksum::of(Algorithm::Sha1, &r.body).into_bytes()
    );
}

#[test]
fn a_release_cannot_be_redeployed_but_a_snapshot_can() {
    let host = FakeHost::new();
    host.hosted_insert(JAR);
    deploy(&host, JAR, SHA1).expect_reject_with(409, "cannot be redeployed");
    let legacy = "g/a/1.0-SNAPSHOT/a-1.0-SNAPSHOT.jar";
    host.hosted_insert(legacy);
    assert_eq!(deploy(&host, legacy, SHA1).expect_respond().status, 201);
    let committed = host.calls();
    assert!(committed.iter().any(|c| matches!(
        c,
        artgate_sdk::testing::Call::HostedCommit(0, k, _, false) if k == legacy
    )));
}

#[test]
fn snapshot_deploys_keep_the_snapshot_metadata() {
    let host = FakeHost::new();
    for file in [
        "a-1.0-20261207.101500-1.jar",
        "a-1.0-20261207.101500-1.pom",
        "a-1.0-20261207.111500-2.jar",
    ] {
        deploy(&host, &format!("g/a/1.0-SNAPSHOT/{file}"), SHA1).expect_respond();
    }
    let m = metadata::parse(&host.kv_value("meta/g/a/1.0-SNAPSHOT").unwrap()).unwrap();
    assert_eq!(m.version, "1.0-SNAPSHOT");
    assert_eq!(m.snapshot, Some(("20261207.111500".into(), 2)));
    let jar = m
        .snapshot_versions
        .iter()
        .find(|s| s.extension == "jar")
        .unwrap();
    assert_eq!(jar.value, "1.0-20261207.111500-2");
    let pom = m
        .snapshot_versions
        .iter()
        .find(|s| s.extension == "pom")
        .unwrap();
    assert_eq!(pom.value, "1.0-20261207.101500-1");
    let artifact = metadata::parse(&host.kv_value("meta/g/a").unwrap()).unwrap();
    assert_eq!(artifact.versions, ["1.0-SNAPSHOT"]);
    assert_eq!(artifact.release, "", "a snapshot is no release");
}

#[test]
fn uploaded_checksums_are_checked_against_the_stored_file() {
    let host = FakeHost::new();
    deploy(&host, JAR, SHA1).expect_respond();
    let put = |path: &str, body: &str| {
        host.next_request();
        let req = Request::test("PUT", path);
        let limit = plan_with(&host, &hosted(), &req).expect_read_body();
        assert!(limit >= 1024);
        plan_with(
            &host,
            &hosted(),
            &req.with_body(Some(body.as_bytes().to_vec())),
        )
    };
    assert_eq!(
        put(&format!("{JAR}.sha1"), SHA1).expect_respond().status,
        201
    );
    put(&format!("{JAR}.sha1"), &"f".repeat(40)).expect_reject_with(400, "but the stored");
    put(&format!("{JAR}.sha1"), "nonsense").expect_reject_with(400, "not a sha1 checksum file");
    put("g/a/1.0/a-1.0.jar.sha1", SHA1).expect_reject_with(409, "upload it first");
    // The recorded digests answer reads.
    host.next_request();
    let r = plan_with(
        &host,
        &hosted(),
        &Request::test("GET", &format!("{JAR}.sha512")),
    )
    .expect_respond();
    assert_eq!(r.body, "b".repeat(128).into_bytes());
    // md5 is not computed by the core: stored as uploaded, read as stored.
    host.next_request();
    let w = plan_with(
        &host,
        &hosted(),
        &Request::test("PUT", &format!("{JAR}.md5")),
    )
    .expect_hosted();
    assert!(matches!(w, HostedOp::Write(w) if w.refuse_overwrite));
    let r = plan_with(
        &host,
        &hosted(),
        &Request::test("GET", &format!("{JAR}.md5")),
    )
    .expect_hosted();
    assert!(matches!(r, HostedOp::Read(r) if r.key == format!("{JAR}.md5")));
}

#[test]
fn client_metadata_is_acknowledged_and_plugin_prefixes_kept() {
    let host = FakeHost::new();
    let req = Request::test("PUT", "org/example/maven-metadata.xml");
    plan_with(&host, &hosted(), &req).expect_read_body();
    let doc = "<metadata><plugins><plugin><name>Hello</name><prefix>hello</prefix><artifactId>hello-maven-plugin</artifactId></plugin></plugins></metadata>";
    let r = plan_with(&host, &hosted(), &req.clone().with_body(Some(doc.into()))).expect_respond();
    assert_eq!(r.status, 201);
    let m = metadata::parse(&host.kv_value("meta/org/example").unwrap()).unwrap();
    assert_eq!(m.plugins[0].prefix, "hello");
    // Versioning from a client is the gateway's to write: ignored.
    let req = Request::test("PUT", "g/a/maven-metadata.xml").with_body(Some(
        b"<metadata><versioning><versions><version>9</version></versions></versioning></metadata>"
            .to_vec(),
    ));
    assert_eq!(
        plan_with(&host, &hosted(), &req).expect_respond().status,
        201
    );
    assert_eq!(host.kv_value("meta/g/a"), None);
    let req = Request::test("PUT", "g/a/maven-metadata.xml").with_body(Some(b"<html/>".to_vec()));
    plan_with(&host, &hosted(), &req).expect_reject_with(400, "not a Maven metadata document");
    plan_with(
        &host,
        &hosted(),
        &Request::test("GET", "g/b/maven-metadata.xml"),
    )
    .expect_reject_with(404, "Nothing was deployed");
}

#[test]
fn hosted_refusals() {
    let host = FakeHost::new();
    plan_with(&host, &hosted(), &Request::test("PUT", "g/a/1.0/other.jar"))
        .expect_reject_with(400, "not a file of a version");
    plan_with(&host, &hosted(), &Request::test("POST", JAR)).expect_reject_with(405, "not POST");
    plan_with(&host, &hosted(), &Request::test("GET", "g/"))
        .expect_reject_with(404, "directory listings");
    // A metadata document at its size limit refuses the deploy before storing.
    host.kv_insert("meta/g/a", vec![b' '; 64 * 1024 - 10]);
    deploy(&host, "g/a/2.0/a-2.0.jar", SHA1).expect_reject_with(507, "more versions");
    assert!(host.hosted_committed().is_empty());
}

#[test]
fn a_delete_forgets_the_digests() {
    let host = FakeHost::new();
    deploy(&host, JAR, SHA1).expect_respond();
    assert!(host.kv_value(&format!("sum/{JAR}")).is_some());
    host.next_request();
    let d = plan_with(&host, &hosted(), &Request::test("DELETE", JAR)).expect_hosted();
    assert!(matches!(d, HostedOp::Delete(k) if k == JAR));
    assert!(host.kv_value(&format!("sum/{JAR}")).is_none());
}

#[test]
fn a_sha1_that_cannot_be_read_now_refuses_rather_than_storing_unverified() {
    let host = FakeHost::new();
    host.answer_cache(Err("connection refused".into()));
    plan_with(&host, &mirror(), &Request::test("GET", JAR))
        .expect_reject_with(502, "could not be read");
    host.answer_cache(Ok(IncomingResponse::test(503, &[], "busy")));
    plan_with(&host, &mirror(), &Request::test("GET", JAR)).expect_reject_with(502, "answered 503");
}

#[test]
fn a_retried_deploy_of_the_same_bytes_is_finished_not_refused() {
    let host = FakeHost::new();
    deploy(&host, JAR, SHA1).expect_respond();
    // The metadata update was lost (say the first answer never reached
    // the client); the retry with the same content lists the version.
    host.kv_delete("meta/org/example/lib");
    let r = deploy(&host, JAR, SHA1).expect_respond();
    assert_eq!(r.status, 201);
    let m = metadata::parse(&host.kv_value("meta/org/example/lib").unwrap()).unwrap();
    assert_eq!(m.versions, ["1.0"]);
    // Other bytes under the same name stay refused.
    host.next_request();
    let mut other = staged(SHA1);
    other.sha256 = format!("sha256:{}", "c".repeat(64));
    host.with_staged(other);
    plan_with(&host, &hosted(), &Request::test("PUT", JAR))
        .expect_reject_with(409, "cannot be redeployed");
}

#[test]
fn damaged_metadata_is_not_started_over() {
    let host = FakeHost::new();
    host.kv_insert("meta/org/example/lib", b"<metadata>".to_vec());
    deploy(&host, JAR, SHA1).expect_reject_with(500, "damaged");
    assert_eq!(
        host.kv_value("meta/org/example/lib").as_deref(),
        Some(&b"<metadata>"[..])
    );
}
