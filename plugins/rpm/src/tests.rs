//! Host-target tests of the rpm adapter's decisions.

use super::*;

const SHA256: &str = "5a36351b123ac54f25fa318609e06b677af2b9e18b85971d0772245dd53027f8";

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("alma")
        .with_package("rpm")
        .with_upstreams(["https://repo.example.org/almalinux"])
        .with_mutable_ttl(1800)
        .with_check_mutable_updates(true)
}

fn request(method: &str, path: &str, query: Option<&str>) -> Request {
    Request::test(method, path)
        .with_id("req-1")
        .with_query(query)
}

fn forward(d: Decision) -> Forward {
    d.expect_forward()
}

fn planned(path: &str) -> CachePlan {
    forward(plan(&remote(), &request("GET", path, None))).plan
}

#[test]
fn kinds() {
    let cases = [
        ("9/BaseOS/x86_64/os/repodata/repomd.xml", Kind::Repomd),
        ("repodata/repomd.xml", Kind::Repomd),
        ("a/repodata/repomd.xml.asc", Kind::RepomdCompanion),
        ("a/repodata/repomd.xml.key", Kind::RepomdCompanion),
        ("a/repodata/comps.xml", Kind::Repodata),
        ("a/repodata/primary.xml.gz", Kind::Repodata),
        ("a/repodata/nothex-primary.xml.gz", Kind::Repodata),
        ("a/repodata/1234-primary.xml.gz", Kind::Repodata),
        (
            &format!("a/repodata/{}-primary.xml.gz", &SHA256[..63]),
            Kind::Repodata,
        ),
        (&format!("a/repodata/{SHA256}-"), Kind::Repodata),
        ("a/Packages/b/bash-5.1-1.el9.x86_64.rpm", Kind::Package),
        ("a/Packages/bash-5.1-1.el9.src.rpm", Kind::Package),
        ("a/drpms/bash-5.0_5.1.x86_64.drpm", Kind::Package),
        ("a/SRPMS/bash.SRPM", Kind::Package),
        ("metalink", Kind::MirrorList),
        ("mirrorlist/9/baseos", Kind::MirrorList),
        ("fedora/metalink.xml", Kind::MirrorList),
        ("centos/mirrorlist.txt", Kind::MirrorList),
        ("", Kind::Directory),
        ("9/BaseOS/", Kind::Directory),
        ("RPM-GPG-KEY-AlmaLinux-9", Kind::Other),
        ("9/isos/x86_64/Alma-9-boot.iso", Kind::Other),
        ("a/repomd.xml", Kind::Other),
        ("repodata", Kind::Other),
    ];
    for (path, want) in cases {
        assert_eq!(kind(path), want, "{path}");
    }
}

#[test]
fn checksum_names() {
    let d = Digest::from_hex(SHA256).unwrap();
    assert_eq!(
        kind(&format!("a/repodata/{SHA256}-primary.xml.gz")),
        Kind::Checksummed {
            digest: Some(d.clone())
        }
    );
    // Upper-case hex is accepted and normalised.
    assert_eq!(
        kind(&format!(
            "a/repodata/{}-primary.xml.gz",
            SHA256.to_uppercase()
        )),
        Kind::Checksummed { digest: Some(d) }
    );
    // SHA-1, MD5, SHA-512 (…) names: immutable, not verified.
    for n in [32, 40, 56, 96, 128] {
        let hex = "ab".repeat(n / 2);
        assert_eq!(
            kind(&format!("a/repodata/{hex}-other.xml.gz")),
            Kind::Checksummed { digest: None },
            "{n}"
        );
    }
    // Only inside repodata/.
    assert_eq!(kind(&format!("a/{SHA256}-x.xml.gz")), Kind::Other);
}

#[test]
fn classes_and_content_types() {
    let cases: &[(&str, CacheClass, Option<&str>)] = &[
        (
            "a/repodata/repomd.xml",
            CacheClass::Mutable,
            Some("application/xml"),
        ),
        (
            "a/repodata/repomd.xml.asc",
            CacheClass::Mutable,
            Some("application/pgp-signature"),
        ),
        (
            "a/repodata/repomd.xml.key",
            CacheClass::Mutable,
            Some("application/pgp-keys"),
        ),
        (
            &format!("a/repodata/{SHA256}-primary.xml.gz"),
            CacheClass::Immutable,
            Some("application/gzip"),
        ),
        (
            &format!("a/repodata/{SHA256}-primary.xml.zst"),
            CacheClass::Immutable,
            Some("application/zstd"),
        ),
        (
            &format!("a/repodata/{SHA256}-filelists.xml.xz"),
            CacheClass::Immutable,
            Some("application/x-xz"),
        ),
        (
            &format!("a/repodata/{SHA256}-other.sqlite.bz2"),
            CacheClass::Immutable,
            Some("application/x-bzip2"),
        ),
        (
            &format!("a/repodata/{SHA256}-comps.xml"),
            CacheClass::Immutable,
            Some("application/xml"),
        ),
        (
            &format!("a/repodata/{SHA256}-modules.yaml.gz"),
            CacheClass::Immutable,
            Some("application/gzip"),
        ),
        (
            &format!("a/repodata/{SHA256}-primary.xml.zck"),
            CacheClass::Immutable,
            Some("application/octet-stream"),
        ),
        (
            "a/repodata/comps.xml",
            CacheClass::Mutable,
            Some("application/xml"),
        ),
        (
            "a/Packages/bash-5.1.rpm",
            CacheClass::Immutable,
            Some("application/x-rpm"),
        ),
        (
            "a/bash.drpm",
            CacheClass::Immutable,
            Some("application/x-rpm"),
        ),
        (
            "a/bash.srpm",
            CacheClass::Immutable,
            Some("application/x-rpm"),
        ),
        ("metalink", CacheClass::Mutable, None),
        ("mirrorlist/9/baseos", CacheClass::Mutable, None),
        ("9/BaseOS/", CacheClass::Mutable, None),
        (
            "RPM-GPG-KEY-AlmaLinux-9",
            CacheClass::Immutable,
            Some("application/octet-stream"),
        ),
        (
            "9/isos/x86_64/boot.iso",
            CacheClass::Immutable,
            Some("application/x-iso9660-image"),
        ),
    ];
    for (path, class, ct) in cases {
        let p = planned(path);
        assert_eq!(p.class, *class, "{path}");
        assert_eq!(p.content_type.as_deref(), *ct, "{path}");
        assert_eq!(p.key, *path);
        assert_eq!(p.ttl_secs, None, "{path}: the remote's TTL");
        assert!(p.cache_not_found, "{path}");
        assert!(p.vary.is_empty(), "{path}");
    }
}

#[test]
fn expected_digest_only_for_sha256_names() {
    let p = planned(&format!("a/repodata/{SHA256}-primary.xml.gz"));
    assert_eq!(p.expected_digest, Some(format!("sha256:{SHA256}")));
    let sha1 = "ab".repeat(20);
    assert_eq!(
        planned(&format!("a/repodata/{sha1}-primary.xml.gz")).expected_digest,
        None
    );
    assert_eq!(planned("a/Packages/x.rpm").expected_digest, None);
    assert_eq!(planned("a/repodata/repomd.xml").expected_digest, None);
}

#[test]
fn only_repomd_is_inspected() {
    assert_eq!(
        planned("a/repodata/repomd.xml").inspect_limit,
        Some(REPOMD_INSPECT_LIMIT)
    );
    for p in [
        "a/repodata/repomd.xml.asc",
        "a/Packages/x.rpm",
        "a/repomd.xml",
    ] {
        assert_eq!(planned(p).inspect_limit, None, "{p}");
    }
}

#[test]
fn mutable_patterns_win_except_for_checksum_names() {
    let mut r = remote();
    r.mutable_patterns = vec![
        r"(^|/)LATEST$".into(),
        r"-latest\.noarch\.rpm$".into(),
        "primary".into(),
    ];
    r.immutable_patterns = vec![r"\.iso$".into(), r"repomd\.xml$".into()];
    let class = |path: &str| forward(plan(&r, &request("GET", path, None))).plan.class;
    assert_eq!(class("isos/LATEST"), CacheClass::Mutable);
    assert_eq!(class("isos/a.iso"), CacheClass::Immutable);
    assert_eq!(class("isos/README"), CacheClass::Immutable);
    assert_eq!(class("a/x-1.0.noarch.rpm"), CacheClass::Immutable);
    assert_eq!(class("a/x-latest.noarch.rpm"), CacheClass::Mutable);
    // The index stays mutable; a checksum-named file stays immutable.
    assert_eq!(class("a/repodata/repomd.xml"), CacheClass::Mutable);
    assert_eq!(
        class(&format!("a/repodata/{SHA256}-primary.xml.gz")),
        CacheClass::Immutable
    );
    r.mutable_patterns = vec!["(".into()];
    match plan(&r, &request("GET", "README", None)) {
        Decision::Reject(rej) => {
            assert_eq!(rej.status, 500);
            assert!(rej.message.ends_with("configuration."), "{}", rej.message);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn upstream_request() {
    let f = forward(plan(
        &remote(),
        &request("HEAD", "a b/repodata/repomd.xml", None),
    ));
    assert_eq!(f.upstream.method, "GET");
    assert_eq!(f.upstream.target, "/a%20b/repodata/repomd.xml");
    assert!(f.upstream.use_credentials);
    assert_eq!(f.plan.key, "a b/repodata/repomd.xml");
    let f = forward(plan(
        &remote(),
        &request("GET", "metalink", Some("repo=fedora-40&arch=x86_64")),
    ));
    assert_eq!(f.upstream.target, "/metalink?repo=fedora-40&arch=x86_64");
    assert_eq!(f.plan.key, "metalink?repo=fedora-40&arch=x86_64");
    let f = forward(plan(&remote(), &request("GET", "", Some("release=7"))));
    assert_eq!(f.upstream.target, "/?release=7");
}

#[test]
fn refusals() {
    for m in ["PUT", "POST", "DELETE", "PATCH"] {
        match plan(&remote(), &request(m, "a/x.rpm", None)) {
            Decision::Reject(r) => {
                assert_eq!(r.status, 400);
                assert!(r.message.contains(m) && r.message.ends_with('.'));
            }
            other => panic!("{m}: {other:?}"),
        }
    }
    let mut hosted = remote();
    hosted.mode = RemoteMode::Hosted;
    assert!(matches!(
        plan(&hosted, &request("GET", "a/x.rpm", None)),
        Decision::Reject(Rejection { status: 400, .. })
    ));
}

#[test]
fn describe() {
    let info = <Rpm as Adapter>::describe();
    assert_eq!(info.name, "rpm");
    assert_eq!(info.package_types, vec!["rpm".to_string()]);
}

const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo">
  <data type="primary"><location href="repodata/aa-primary.xml.gz"/></data>
  <data type="filelists"><location href="repodata/bb-filelists.xml.gz"/></data>
  <data type="primary_db"><location href="repodata/cc-primary.sqlite.bz2"/></data>
  <data type="group"><location href="repodata/comps.xml"/></data>
  <data type="dup"><location href="repodata/aa-primary.xml.gz"/></data>
  <data type="elsewhere"><location xml:base="https://cdn.example/x/" href="repodata/dd.xml"/></data>
  <data type="absolute"><location href="https://cdn.example/ee.xml"/></data>
  <data type="escape"><location href="../../../../../ff.xml"/></data>
  <data type="up"><location href="../shared/gg.xml"/></data>
</repomd>"#;

fn with_option(value: Option<&str>) -> RemoteInfo {
    match value {
        Some(v) => remote().with_option("prefetch", v),
        None => remote(),
    }
}

#[test]
fn prefetch_default_skips_sqlite_and_foreign_locations() {
    let got = prefetches(
        &with_option(None),
        "9/BaseOS/x86_64/os/repodata/repomd.xml",
        REPOMD.as_bytes(),
    );
    assert_eq!(
        got,
        [
            "9/BaseOS/x86_64/os/repodata/aa-primary.xml.gz",
            "9/BaseOS/x86_64/os/repodata/bb-filelists.xml.gz",
            "9/BaseOS/x86_64/os/repodata/comps.xml",
            "9/BaseOS/x86_64/shared/gg.xml",
        ]
    );
}

#[test]
fn prefetch_option() {
    let at_root =
        |v: Option<&str>| prefetches(&with_option(v), "repodata/repomd.xml", REPOMD.as_bytes());
    assert!(at_root(Some("none")).is_empty());
    assert!(at_root(Some("")).is_empty());
    assert_eq!(
        at_root(Some("primary, group")),
        ["repodata/aa-primary.xml.gz", "repodata/comps.xml"]
    );
    let all = at_root(Some("all"));
    assert!(all.contains(&"repodata/cc-primary.sqlite.bz2".to_string()));
    // At the remote's root `../shared` leaves the remote: dropped.
    assert!(!all.iter().any(|p| p.contains("gg.xml")), "{all:?}");
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(
        PrefetchTypes::parse(Some("DEFAULT")),
        PrefetchTypes::Default
    );
}

#[test]
fn prefetch_of_createrepo_output_through_the_adapter() {
    let xml = format!(
        r#"<repomd><data type="primary"><location href="repodata/{SHA256}-primary.xml.gz"/></data></repomd>"#
    );
    let resp = UpstreamResponse {
        status: 200,
        headers: vec![],
    };
    let v = <Rpm as Adapter>::inspect_body(
        remote(),
        request("GET", "el/repodata/repomd.xml", None),
        resp.clone(),
        xml.clone().into_bytes(),
    );
    assert_eq!(v.prefetch, [format!("el/repodata/{SHA256}-primary.xml.gz")]);
    assert!(v.replace.is_none() && v.update.is_none() && v.references.is_empty());
    // Each prefetch is itself a verified immutable fetch.
    assert_eq!(
        planned(&v.prefetch[0]).expected_digest,
        Some(format!("sha256:{SHA256}"))
    );
    // Other inspected bodies (none today) are left alone.
    let v = <Rpm as Adapter>::inspect_body(
        remote(),
        request("GET", "el/repodata/comps.xml", None),
        resp,
        xml.into_bytes(),
    );
    assert!(v.prefetch.is_empty());
}

#[test]
fn resolve_hrefs() {
    assert_eq!(
        resolve("", "repodata/a.xml").as_deref(),
        Some("repodata/a.xml")
    );
    assert_eq!(
        resolve("x/y/", "./repodata//a.xml").as_deref(),
        Some("x/y/repodata/a.xml")
    );
    assert_eq!(resolve("x/y/", "../a.xml").as_deref(), Some("x/a.xml"));
    for bad in [
        "",
        "/abs/a.xml",
        "http://h/a.xml",
        "a.xml?x=1",
        "a.xml#f",
        "a\\b.xml",
        "a\nb",
        "dir/",
        "..",
        "../../../a.xml",
    ] {
        assert_eq!(resolve("x/y/", bad), None, "{bad:?}");
    }
}
