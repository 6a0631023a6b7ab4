//! Host-target tests of the deb adapter: the Release parser on real
//! reprepro and apt-ftparchive output, path classification, the plan of
//! each kind of path, the Release lookup before an index file, and the
//! prefetch selection.

use super::*;
use crate::state::{Form, Want};
use artgate_sdk::testing::{Call, FakeHost};
use proptest::prelude::*;

/// reprepro 5.3.1: MD5Sum, SHA1, SHA256; no by-hash (see testdata/README.md).
const REPREPRO: &[u8] = include_bytes!("../testdata/reprepro-InRelease");
/// apt-ftparchive: all four lists and `Acquire-By-Hash: yes`, unsigned.
const FTPARCHIVE: &[u8] = include_bytes!("../testdata/apt-ftparchive-Release");
/// The same, clear-signed.
const FTPARCHIVE_SIGNED: &[u8] = include_bytes!("../testdata/apt-ftparchive-InRelease");

/// The SHA512 apt-ftparchive lists for `main/binary-all/Packages.xz`.
const ALL_XZ_SHA512: &str = "594cb61f1c7b927ef2352616401d9c53a5bfb3841eb75486cb1a4d669eaecbede6a450352c3e7ed92ab4655788213d4bc8500de069f483dd6000e34e01e810dc";
/// The SHA256 reprepro lists for `main/binary-amd64/Packages.gz`.
const AMD64_GZ_SHA256: &str = "6465fd4fa91fda09f486a9f8a827aaf48877bc8f487a777f4ee9c330c8bf0f9e";

const SUITE: &str = "debian/dists/stable";

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("debian")
        .with_package("deb")
        .with_upstreams(["https://deb.example.org"])
}

fn get(path: &str) -> Request {
    Request::test("GET", path)
}

fn plan_on(host: &FakeHost, path: &str) -> Forward {
    plan_with(host, &remote(), &get(path)).expect_forward()
}

/// A host that has seen `body` as the InRelease of [`SUITE`].
fn host_with(body: &[u8]) -> FakeHost {
    let host = FakeHost::new();
    let v = inspect_with(&host, &remote(), &get(&format!("{SUITE}/InRelease")), body);
    assert!(v.fail.is_none(), "{v:?}");
    host.next_request();
    host
}

fn kv_writes(host: &FakeHost) -> usize {
    host.calls()
        .iter()
        .filter(|c| matches!(c, Call::KvSet(..) | Call::KvCompareAndSet(..)))
        .count()
}

// ---- The Release parser --------------------------------------------------

#[test]
fn reprepro_output() {
    let r = release::parse(REPREPRO).unwrap();
    assert!(!r.acquire_by_hash);
    assert_eq!(r.files.len(), 12);
    assert_eq!(r.skipped, 0);
    let gz = &r.files["main/binary-amd64/Packages.gz"];
    assert_eq!(gz.size, 323);
    assert_eq!(gz.hashes[&Algo::Sha256], AMD64_GZ_SHA256);
    assert_eq!(
        gz.hashes[&Algo::Sha1],
        "3fca0a8319d6e85cb2e003f7dc473686d4edd93b"
    );
    assert_eq!(gz.hashes[&Algo::Md5], "d287a886e71024d36930bc59d0e8e847");
    assert!(!gz.hashes.contains_key(&Algo::Sha512));
    assert_eq!(gz.best(), Some((Algo::Sha256, AMD64_GZ_SHA256)));
    // A component's own Release and a listed file that does not exist
    // upstream (reprepro lists uncompressed Sources it does not write).
    assert_eq!(r.files["main/binary-amd64/Release"].size, 117);
    assert_eq!(r.files["contrib/source/Sources"].size, 0);
}

#[test]
fn apt_ftparchive_output_signed_and_unsigned() {
    let r = release::parse(FTPARCHIVE).unwrap();
    assert!(r.acquire_by_hash);
    assert_eq!(r.files.len(), 10);
    let xz = &r.files["main/binary-all/Packages.xz"];
    assert_eq!(xz.size, 488);
    assert_eq!(xz.hashes.len(), 4);
    assert_eq!(xz.best(), Some((Algo::Sha512, ALL_XZ_SHA512)));
    assert_eq!(release::parse(FTPARCHIVE_SIGNED).unwrap(), r);
}

#[test]
fn signed_text_is_dash_unescaped_and_read_up_to_the_signature() {
    let body = "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\n\
        Suite: x\r\n- -Odd: dash-escaped field\r\nSHA256:\r\n \
        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/a\r\n\
        -----BEGIN PGP SIGNATURE-----\r\n\r\nnot base64 at all\r\n-----END PGP SIGNATURE-----\r\n";
    // `-Odd` after unescaping starts with `-`: not a field name.
    assert_eq!(
        release::parse(body.as_bytes()),
        Err(release::ReleaseError::NotAField(5))
    );
    let body = body.replace("- -Odd: dash-escaped field\r\n", "- Odd: escaped\r\n");
    let r = release::parse(body.as_bytes()).unwrap();
    assert_eq!(r.files.len(), 1);
    assert!(r.files.contains_key("main/a"));
}

#[test]
fn lenient_where_apt_is() {
    // A byte-order mark, CRLF, field names in any case, unknown fields
    // with continuations, an unknown hash list, a second paragraph.
    let body = format!(
        "\u{feff}\r\nsuite: s\r\nDescription: a\r\n long text\r\nsha256:\r\n {} 10 main/x.gz\r\n\tFFFF 2 not-a-list-of-ours\r\n",
        "A".repeat(64)
    );
    let err = release::parse(body.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        release::ReleaseError::BadEntry {
            field: "SHA256",
            line: 7
        },
        "a short digest in a known list is an error"
    );
    let body = format!(
        "\u{feff}\r\nsuite: s\r\nDescription: a\r\n long text\r\nsha256:\r\n {} 10 main/x.gz\r\nSHA3-256:\r\n FFFF 2 whatever\r\n\r\nSHA256:\r\n {} 1 second/paragraph\r\n",
        "A".repeat(64),
        "b".repeat(64)
    );
    let r = release::parse(body.as_bytes()).unwrap();
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files["main/x.gz"].hashes[&Algo::Sha256], "a".repeat(64));
    assert!(!r.acquire_by_hash);
    assert!(
        release::parse(b"Acquire-By-Hash: YES\n")
            .unwrap()
            .acquire_by_hash
    );
}

#[test]
fn unsafe_paths_are_skipped() {
    let e = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let body = format!(
        "Suite: s\nSHA256:\n {e} 0 ../../etc/passwd\n {e} 0 /abs\n {e} 0 a//b\n {e} 0 a/./b\n {e} 0 a%2f..\n {e} 0 a/.../b\n {e} 0 a/..;x/b\n {e} 0 ;x\n {e} 0 ok/file\n"
    );
    let r = release::parse(body.as_bytes()).unwrap();
    assert_eq!(r.files.keys().collect::<Vec<_>>(), ["ok/file"]);
    assert_eq!(r.skipped, 8);
}

#[test]
fn what_is_not_a_release_file() {
    use release::ReleaseError as E;
    let e = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let cases: Vec<(String, E)> = vec![
        (String::new(), E::Empty),
        ("\n \n\r\n".into(), E::Empty),
        (
            "<!DOCTYPE html>\n<html><body>Maintenance</body></html>\n".into(),
            E::NotAField(1),
        ),
        ("<a href=\"http://x\">moved</a>\n".into(), E::NotAField(1)),
        (
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: s\n".into(),
            E::UnterminatedSignature,
        ),
        (
            "-----BEGIN PGP SIGNATURE-----\n\niQ\n-----END PGP SIGNATURE-----\n".into(),
            E::OtherArmor,
        ),
        (" leading: continuation\n".into(), E::ContinuationFirst(1)),
        // A Packages file is deb822 too, but no Release.
        (
            "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\n".into(),
            E::NoReleaseFields,
        ),
        (
            format!("Package: hello\nMD5sum: d41d8cd98f00b204e9800998ecf8427e\nSHA256: {e}\n"),
            E::NoReleaseFields,
        ),
        (
            format!("Suite: s\nSHA256:\n {e} 12\n"),
            E::BadEntry {
                field: "SHA256",
                line: 3,
            },
        ),
        (
            format!("Suite: s\nSHA256:\n {e} twelve main/x\n"),
            E::BadEntry {
                field: "SHA256",
                line: 3,
            },
        ),
        (
            format!("Suite: s\nSHA512:\n {e} 1 main/x\n"),
            E::BadEntry {
                field: "SHA512",
                line: 3,
            },
        ),
        (
            format!("Suite: s\nMD5Sum:\n {e} 1 main/x extra\n"),
            E::BadEntry {
                field: "MD5Sum",
                line: 3,
            },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            release::parse(body.as_bytes()),
            Err(want.clone()),
            "{body:?}"
        );
        let message = want.to_string();
        assert!(
            !message.is_empty() && !message.ends_with('.'),
            "{message:?} is a clause the adapter ends"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_parser_never_panics_on_bytes(b in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = release::parse(&b);
    }

    #[test]
    fn the_parser_never_panics_on_release_like_text(
        parts in prop::collection::vec(
            "(Suite: s\n|SHA256:\n|SHA512:\n|MD5Sum:\n|Acquire-By-Hash: yes\n| [0-9a-f]{64} [0-9]{1,3} [a-z/.]{1,12}\n| [0-9a-f]{1,130} [0-9]{0,22} [a-z/.]{0,5}\n|\n|\r\n|-----BEGIN PGP SIGNED MESSAGE-----\n|-----BEGIN PGP SIGNATURE-----\n|- |\u{feff}|:|\t)",
            0..30,
        )
    ) {
        let text = parts.concat();
        if let Ok(r) = release::parse(text.as_bytes()) {
            for (path, listed) in &r.files {
                prop_assert!(release::is_plain_relative(path));
                for (algo, hex) in &listed.hashes {
                    prop_assert!(algo.is_digest(hex));
                    prop_assert_eq!(hex.to_ascii_lowercase(), hex.clone());
                }
            }
        }
    }
}

// ---- Paths ----------------------------------------------------------------

#[test]
fn kinds() {
    use layout::ReleaseFile as F;
    let release = |dir: &str, file| Kind::Release {
        dir: dir.into(),
        file,
    };
    let cases = [
        (
            "dists/bookworm/InRelease",
            release("dists/bookworm", F::InRelease),
        ),
        (
            "debian/dists/bookworm/Release",
            release("debian/dists/bookworm", F::Release),
        ),
        (
            "debian/dists/bookworm/Release.gpg",
            release("debian/dists/bookworm", F::ReleaseGpg),
        ),
        (
            "debian-security/dists/stretch/updates/InRelease",
            release("debian-security/dists/stretch/updates", F::InRelease),
        ),
        ("InRelease", release("", F::InRelease)),
        ("repo/Release", release("repo", F::Release)),
        ("dists/bookworm/main/binary-amd64/Release", Kind::Index),
        ("dists/bookworm/main/source/Release", Kind::Index),
        ("dists/bookworm/main/binary-amd64/Packages.xz", Kind::Index),
        ("dists/bookworm/main/i18n/Translation-en.bz2", Kind::Index),
        ("dists/bookworm/main/Contents-amd64.gz", Kind::Index),
        (
            "dists/bookworm/main/installer-amd64/current/images/SHA256SUMS",
            Kind::Index,
        ),
        (
            "dists/bookworm/main/binary-amd64/by-hash/SHA256/abc",
            Kind::ByHash {
                dir: "dists/bookworm/main/binary-amd64".into(),
                algo: Algo::Sha256,
                hex: "abc".into(),
            },
        ),
        (
            "by-hash/MD5Sum/00",
            Kind::ByHash {
                dir: String::new(),
                algo: Algo::Md5,
                hex: "00".into(),
            },
        ),
        ("dists/s/main/by-hash/SHA3/00", Kind::ByHashUnknown),
        ("pool/main/h/hello/hello_2.10-3_amd64.deb", Kind::Package),
        ("debian/pool/main/h/hello/hello_2.10-3.dsc", Kind::Package),
        ("pool/main/h/hello/hello_2.10.orig.tar.gz", Kind::Package),
        ("pool/main/h/hello/Release", Kind::Package),
        ("hello_1.0_all.deb", Kind::Package),
        ("flat/hello_1.0.debian.tar.xz", Kind::Package),
        ("flat/hello_1.0-1.diff.gz", Kind::Package),
        ("flat/Packages.gz", Kind::Index),
        ("Sources.xz", Kind::Index),
        ("flat/Translation-en", Kind::Index),
        ("", Kind::Directory),
        ("dists/bookworm/", Kind::Directory),
        ("README", Kind::Other),
        ("ls-lR.gz", Kind::Other),
        ("project/trace/master", Kind::Other),
        ("dists/README", Kind::Other),
        ("dists", Kind::Other),
        ("Translation-", Kind::Other),
    ];
    for (path, want) in cases {
        assert_eq!(layout::kind(path), want, "{path}");
    }
}

#[test]
fn release_candidates() {
    let c = |dir: &str, rel: &str| Candidate {
        dir: dir.into(),
        rel: rel.into(),
    };
    assert_eq!(
        layout::candidates("debian/dists/bookworm/main/binary-amd64/Packages.xz"),
        [
            c("debian/dists/bookworm", "main/binary-amd64/Packages.xz"),
            c("debian/dists/bookworm/main", "binary-amd64/Packages.xz"),
        ]
    );
    assert_eq!(
        layout::candidates("dists/bookworm/Contents-amd64.gz"),
        [c("dists/bookworm", "Contents-amd64.gz")]
    );
    assert_eq!(
        layout::candidates("repo/Packages.gz"),
        [c("repo", "Packages.gz")]
    );
    assert_eq!(layout::candidates("Packages"), [c("", "Packages")]);
}

#[test]
fn content_types() {
    let cases = [
        (
            "pool/main/h/hello_1_amd64.deb",
            "application/vnd.debian.binary-package",
        ),
        (
            "pool/main/d/d-i_1_amd64.udeb",
            "application/vnd.debian.binary-package",
        ),
        ("pool/main/h/hello_1.dsc", "text/plain; charset=utf-8"),
        ("pool/main/h/hello_1.orig.tar.xz", "application/x-xz"),
        ("pool/main/h/hello_1.diff.gz", "application/gzip"),
        ("dists/s/InRelease", "text/plain; charset=utf-8"),
        ("dists/s/Release", "text/plain; charset=utf-8"),
        ("dists/s/Release.gpg", "application/pgp-signature"),
        (
            "dists/s/main/binary-amd64/Packages",
            "text/plain; charset=utf-8",
        ),
        ("dists/s/main/binary-amd64/Packages.xz", "application/x-xz"),
        ("dists/s/main/binary-amd64/Packages.gz", "application/gzip"),
        (
            "dists/s/main/i18n/Translation-en.bz2",
            "application/x-bzip2",
        ),
        (
            "dists/s/main/i18n/Translation-de",
            "text/plain; charset=utf-8",
        ),
        ("dists/s/main/source/Sources.lzma", "application/x-lzma"),
        ("dists/s/main/source/Sources.zst", "application/zstd"),
        (
            "dists/s/main/binary-amd64/by-hash/SHA256/ab",
            "application/octet-stream",
        ),
        ("debian-archive-keyring.gpg", "application/pgp-keys"),
        ("ls-lR", "application/octet-stream"),
    ];
    for (path, want) in cases {
        assert_eq!(layout::content_type(path), want, "{path}");
    }
}

// ---- Plans ---------------------------------------------------------------

#[test]
fn release_files_are_mutable_and_inspected() {
    let host = FakeHost::new();
    let f = plan_on(&host, "debian/dists/bookworm/InRelease");
    assert_eq!(f.upstream.target, "/debian/dists/bookworm/InRelease");
    assert!(f.upstream.use_credentials);
    let p = f.plan;
    assert_eq!(p.key, "debian/dists/bookworm/InRelease");
    assert_eq!(p.class, CacheClass::Mutable);
    assert_eq!(p.ttl_secs, None, "the remote's TTL");
    assert_eq!(p.validator, None, "the remote's validator");
    assert_eq!(p.inspect_limit, Some(INSPECT_LIMIT));
    assert!(p.cache_not_found);
    assert_eq!(p.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(p.expected_digest, None);
    let p = plan_on(&host, "debian/dists/bookworm/Release").plan;
    assert_eq!(p.inspect_limit, Some(INSPECT_LIMIT));
    let p = plan_on(&host, "debian/dists/bookworm/Release.gpg").plan;
    assert_eq!((p.class, p.inspect_limit), (CacheClass::Mutable, None));
    assert!(host.calls().is_empty(), "{:?}", host.calls());
}

#[test]
fn packages_and_other_files() {
    let host = FakeHost::new();
    let p = plan_on(&host, "pool/main/h/hello/hello_2.10-3_amd64.deb").plan;
    assert_eq!(p.key, "pool/main/h/hello/hello_2.10-3_amd64.deb");
    assert_eq!(p.class, CacheClass::Immutable);
    assert_eq!(p.expected_digest, None);
    assert!(p.cache_not_found);
    let p = plan_on(&host, "README").plan;
    assert_eq!(p.class, CacheClass::Mutable);
    let p = plan_on(&host, "dists/").plan;
    assert_eq!((p.class, p.content_type), (CacheClass::Mutable, None));
    let p = plan_on(&host, "").plan;
    assert_eq!(p.key, "/");
    // Patterns: a package can be made mutable, anything else immutable;
    // Release files cannot be frozen.
    let r = remote()
        .with_mutable_patterns(["snapshot"])
        .with_immutable_patterns(["^keys/", "InRelease$"]);
    let plan = |path: &str| plan_with(&host, &r, &get(path)).expect_forward().plan;
    assert_eq!(plan("pool/snapshot/a_1_all.deb").class, CacheClass::Mutable);
    assert_eq!(plan("keys/archive.gpg").class, CacheClass::Immutable);
    assert_eq!(plan("dists/s/InRelease").class, CacheClass::Mutable);
    // A pattern that does not compile is the operator's error.
    let broken = remote().with_mutable_patterns(["("]);
    plan_with(&host, &broken, &get("pool/a_1_all.deb")).expect_reject_with(500, "pattern");
    assert!(host.calls().is_empty());
}

#[test]
fn queries_stay_in_keys_of_path_keyed_entries() {
    let host = FakeHost::new();
    let f = plan_with(
        &host,
        &remote(),
        &get("dists/s/InRelease").with_query(Some("x=1")),
    )
    .expect_forward();
    assert_eq!(f.plan.key, "dists/s/InRelease?x=1");
    assert_eq!(f.upstream.target, "/dists/s/InRelease?x=1");
}

#[test]
fn writes_and_hosted_remotes_are_refused() {
    let host = FakeHost::new();
    for method in ["PUT", "POST", "DELETE", "PATCH"] {
        let r = plan_with(&host, &remote(), &Request::test(method, "pool/a_1_all.deb"))
            .expect_reject_with(405, method);
        assert!(r.message.contains("/cache/flush?remote=debian"));
    }
    let hosted = remote().hosted();
    plan_with(&host, &hosted, &get("dists/s/InRelease")).expect_reject_with(400, "only mirrors");
    plan_with(&host, &hosted, &Request::test("PUT", "a.deb")).expect_reject_with(400, "hosted");
    assert!(host.calls().is_empty());
}

#[test]
fn the_prefetch_option() {
    let host = FakeHost::new();
    for (value, want) in [
        ("none", PrefetchMode::Off),
        ("Off", PrefetchMode::Off),
        ("false", PrefetchMode::Off),
        ("requested", PrefetchMode::Requested),
        (" TRUE ", PrefetchMode::Requested),
    ] {
        assert_eq!(
            PrefetchMode::of(&remote().with_option("prefetch", value)),
            Ok(want),
            "{value}"
        );
    }
    assert_eq!(PrefetchMode::of(&remote()), Ok(PrefetchMode::Requested));
    let bad = remote().with_option("prefetch", "all");
    let r = plan_with(&host, &bad, &get("dists/s/InRelease")).expect_reject_with(500, "prefetch");
    assert_eq!(
        r.message,
        "Remote 'debian' has an invalid option prefetch \"all\"; give \"requested\" or \"none\"."
    );
}

#[test]
fn by_hash_names_are_verified_by_their_name() {
    let host = FakeHost::new();
    let sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    let path = format!("dists/s/main/binary-amd64/by-hash/SHA256/{sha256}");
    let f = plan_on(&host, &path);
    assert_eq!(f.upstream.target, format!("/{path}"));
    assert_eq!(f.plan.key, path);
    assert_eq!(f.plan.class, CacheClass::Immutable);
    assert_eq!(
        f.plan.expected_digest,
        Some(format!("sha256:{}", sha256.to_ascii_lowercase()))
    );
    assert!(Digest::is_valid(f.plan.expected_digest.as_deref().unwrap()));
    assert_eq!(
        f.plan.content_type.as_deref(),
        Some(media::OCTET_STREAM),
        "no Release known to name it"
    );
    let p = plan_on(
        &host,
        &format!("dists/s/main/by-hash/SHA512/{ALL_XZ_SHA512}"),
    )
    .plan;
    assert_eq!(p.expected_digest, Some(format!("sha512:{ALL_XZ_SHA512}")));
    let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    let p = plan_on(&host, &format!("dists/s/main/by-hash/SHA1/{sha1}")).plan;
    assert_eq!(p.expected_digest, Some(format!("sha1:{sha1}")));
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let p = plan_on(&host, &format!("dists/s/main/by-hash/MD5Sum/{md5}")).plan;
    assert_eq!((p.class, p.expected_digest), (CacheClass::Immutable, None));
    // Wrong lengths and unknown algorithms are no by-hash names.
    plan_with(&host, &remote(), &get("dists/s/main/by-hash/SHA256/abc"))
        .expect_reject_with(404, "64 hex digits");
    plan_with(
        &host,
        &remote(),
        &get(&format!("dists/s/by-hash/SHA256/{}", "g".repeat(64))),
    )
    .expect_reject_with(404, "not a by-hash name");
    plan_with(&host, &remote(), &get("dists/s/by-hash/SHA3/00")).expect_reject_with(404, "SHA512");
}

#[test]
fn a_listed_index_file_is_keyed_by_its_digest() {
    let host = host_with(FTPARCHIVE_SIGNED);
    let path = format!("{SUITE}/main/binary-all/Packages.xz");
    let f = plan_on(&host, &path);
    // Fetched by the name asked for, verified against the Release, under
    // a key naming the digest; mutable, so the core asks again once it
    // expires (a new Release expires it at once).
    assert_eq!(f.upstream.target, format!("/{path}"));
    assert_eq!(f.plan.key, format!("/{path}@sha512:{ALL_XZ_SHA512}"));
    assert_eq!(f.plan.class, CacheClass::Mutable);
    assert_eq!((f.plan.ttl_secs, f.plan.validator.clone()), (None, None));
    assert_eq!(
        f.plan.expected_digest,
        Some(format!("sha512:{ALL_XZ_SHA512}"))
    );
    assert_eq!(f.plan.content_type.as_deref(), Some("application/x-xz"));
    assert!(f.plan.cache_not_found);
    assert!(
        host.cache_sent().is_empty(),
        "no lookup: the Release is known"
    );
    // apt's by-hash request for it: immutable under its own name, and
    // known as the same file.
    let by_hash = format!("{SUITE}/main/binary-all/by-hash/SHA512/{ALL_XZ_SHA512}");
    let b = plan_on(&host, &by_hash);
    assert_eq!(
        (b.plan.key.as_str(), b.plan.class),
        (by_hash.as_str(), CacheClass::Immutable)
    );
    assert_eq!(b.plan.expected_digest, f.plan.expected_digest);
    assert_eq!(b.plan.content_type.as_deref(), Some("application/x-xz"));
    // Both were remembered, each in its form, once.
    plan_on(&host, &path);
    let rel = "main/binary-all/Packages.xz".to_owned();
    assert_eq!(
        state::wanted(&host, SUITE),
        [
            Want {
                rel: rel.clone(),
                form: Form::Name
            },
            Want {
                rel,
                form: Form::ByHash
            }
        ]
    );

    // reprepro lists SHA256 at most.
    let host = host_with(REPREPRO);
    let path = format!("{SUITE}/main/binary-amd64/Packages.gz");
    let p = plan_on(&host, &path).plan;
    assert_eq!(p.key, format!("/{path}@sha256:{AMD64_GZ_SHA256}"));
    assert_eq!(p.expected_digest, Some(format!("sha256:{AMD64_GZ_SHA256}")));
    assert!(Digest::is_valid(p.expected_digest.as_deref().unwrap()));
}
#[test]
fn an_unlisted_index_file_is_mutable_and_unverified() {
    let host = host_with(REPREPRO);
    for path in [
        format!("{SUITE}/main/binary-i386/Packages.xz"),
        format!("{SUITE}/main/installer-amd64/current/images/SHA256SUMS"),
    ] {
        let f = plan_on(&host, &path);
        assert_eq!(f.plan.key, path);
        assert_eq!(f.plan.class, CacheClass::Mutable);
        assert_eq!(f.plan.expected_digest, None);
    }
    assert!(host.cache_sent().is_empty(), "the Release is known");
    assert!(state::wanted(&host, SUITE).is_empty());
    // Listed with MD5 only: nothing the core can verify.
    let e = "d41d8cd98f00b204e9800998ecf8427e";
    let host = host_with(format!("Suite: s\nMD5Sum:\n {e} 0 main/old/Packages\n").as_bytes());
    let p = plan_on(&host, &format!("{SUITE}/main/old/Packages")).plan;
    assert_eq!((p.class, p.expected_digest), (CacheClass::Mutable, None));
}

#[test]
fn before_any_release_the_index_looks_the_release_up() {
    let host = FakeHost::new();
    host.answer_cache_for(
        &format!("/{SUITE}/InRelease"),
        Ok(IncomingResponse::test(
            200,
            &[("x-artifact-source", "remote")],
            FTPARCHIVE_SIGNED,
        )),
    );
    let path = format!("{SUITE}/main/binary-all/Packages.xz");
    let f = plan_on(&host, &path);
    assert_eq!(f.plan.key, format!("/{path}@sha512:{ALL_XZ_SHA512}"));
    // One read, of the InRelease, under the key and plan a client's
    // request for it uses (but not inspected: cache-send cannot).
    let sent = host.cache_sent();
    assert_eq!(sent.len(), 1);
    let (req, plan, limit) = &sent[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.url, format!("/{SUITE}/InRelease"));
    assert!(req.use_credentials);
    assert_eq!(limit, &INSPECT_LIMIT);
    let client = plan_on(&FakeHost::new(), &format!("{SUITE}/InRelease")).plan;
    assert_eq!(
        plan,
        &CachePlan {
            inspect_limit: None,
            ..client
        }
    );
    // What it read is remembered: the next index file needs no lookup.
    host.next_request();
    let p = plan_on(&host, &format!("{SUITE}/main/binary-all/Packages.gz")).plan;
    assert!(p.key.ends_with("Packages.gz@sha512:d3832ef2da2c8a3be7d4fe139f1e9190d4e9bb23923a4e17e3c51cd4d8e043a85b39ce6577bc00e5f36952ce12b75479be27c7dfb3a3056c69e32f1d34b7e288"), "{}", p.key);
    assert!(host.cache_sent().is_empty());
}

#[test]
fn the_lookup_falls_back_to_release_and_to_the_longer_suite() {
    // `stretch/updates`: `dists/stretch/InRelease` is missing, its
    // `Release` too; `dists/stretch/updates/InRelease` lists the file.
    let host = FakeHost::new();
    host.answer_cache(Ok(IncomingResponse::test(404, &[], "")));
    let suite = "debian-security/dists/stretch/updates";
    let e = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    host.answer_cache_for(
        &format!("/{suite}/Release"),
        Ok(IncomingResponse::test(
            200,
            &[],
            format!("Suite: s\nSHA256:\n {e} 0 main/binary-amd64/Packages\n"),
        )),
    );
    let p = plan_on(&host, &format!("{suite}/main/binary-amd64/Packages")).plan;
    assert_eq!(
        p.key,
        format!("/{suite}/main/binary-amd64/Packages@sha256:{e}")
    );
    let urls: Vec<String> = host.cache_sent().into_iter().map(|(r, ..)| r.url).collect();
    assert_eq!(
        urls,
        [
            "/debian-security/dists/stretch/InRelease",
            "/debian-security/dists/stretch/Release",
            "/debian-security/dists/stretch/updates/InRelease",
            "/debian-security/dists/stretch/updates/Release",
        ]
    );
}

#[test]
fn without_a_readable_release_the_index_is_passed_through() {
    let path = format!("{SUITE}/main/binary-amd64/Packages.xz");
    // The upstream is down and nothing is stored.
    let host = FakeHost::new();
    host.answer_cache(Err("upstream unreachable".into()));
    let ((f, _), logs) =
        artgate_sdk::testing::capture_logs(|| (plan_on(&host, &path), host.calls()));
    assert_eq!(
        (f.plan.class, f.plan.key.as_str()),
        (CacheClass::Mutable, path.as_str())
    );
    assert_eq!(f.plan.expected_digest, None);
    assert!(
        logs.iter().any(|(_, l)| l.contains("served unverified")
            && l.contains("could not be read (upstream unreachable)")),
        "{logs:?}"
    );
    assert!(host.kv_keys().is_empty());
    // An error page where the InRelease should be: not remembered, and
    // expired so that the next request fetches it again.
    let host = FakeHost::new();
    host.answer_cache(Ok(IncomingResponse::test(200, &[], "<html>oops</html>")));
    let f = plan_on(&host, &path);
    assert_eq!(f.plan.class, CacheClass::Mutable);
    assert_eq!(host.expired(), [format!("{SUITE}/InRelease")]);
    assert!(host.kv_keys().is_empty());
    // A 500 with nothing stored.
    let host = FakeHost::new();
    host.answer_cache(Ok(IncomingResponse::test(500, &[], "")));
    assert_eq!(plan_on(&host, &path).plan.class, CacheClass::Mutable);
    assert_eq!(
        host.cache_sent().len(),
        1,
        "the first failure ends the lookup"
    );
}

#[test]
fn a_by_hash_request_is_remembered_under_the_file_it_stands_for() {
    let host = host_with(FTPARCHIVE_SIGNED);
    // The same digest in another directory is another file.
    let empty = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
    let p = plan_on(
        &host,
        &format!("{SUITE}/main/binary-amd64/by-hash/SHA512/{empty}"),
    )
    .plan;
    assert_eq!(p.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let p = plan_on(&host, &format!("{SUITE}/main/by-hash/SHA512/{empty}")).plan;
    assert_eq!(p.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let by_hash = |rel: &str| Want {
        rel: rel.into(),
        form: Form::ByHash,
    };
    assert_eq!(
        state::wanted(&host, SUITE),
        [
            by_hash("main/Contents-amd64"),
            by_hash("main/binary-amd64/Packages")
        ]
    );
    // A digest of another algorithm than the one remembered is not
    // matched (the file stays unnamed, still verified).
    let sha256 = "4ce6ad11d019c98fc5041c443f456969f0a375e794f174b81a777ad2f071375e";
    let p = plan_on(
        &host,
        &format!("{SUITE}/main/binary-all/by-hash/SHA256/{sha256}"),
    )
    .plan;
    assert_eq!(p.content_type.as_deref(), Some(media::OCTET_STREAM));
    assert_eq!(p.expected_digest, Some(format!("sha256:{sha256}")));
    assert_eq!(state::wanted(&host, SUITE).len(), 2);
}
#[test]
fn prefetch_none_prefetches_nothing() {
    let host = host_with(FTPARCHIVE_SIGNED);
    let off = remote().with_option("prefetch", "none");
    let path = format!("{SUITE}/main/binary-all/Packages.xz");
    let f = plan_with(&host, &off, &get(&path)).expect_forward();
    assert!(f.plan.expected_digest.is_some());
    // Still remembered: a new Release must expire its entry.
    assert_eq!(state::wanted(&host, SUITE).len(), 1);
    let v = inspect_with(&host, &off, &get(&format!("{SUITE}/InRelease")), FTPARCHIVE);
    assert!(v.prefetch.is_empty());
}
// ---- Inspection ----------------------------------------------------------

#[test]
fn a_body_that_is_not_a_release_is_refused() {
    let host = FakeHost::new();
    for path in ["dists/s/InRelease", "dists/s/Release"] {
        let v = inspect_with(&host, &remote(), &get(path), b"<html>Maintenance</html>");
        let r = v.expect_fail();
        assert_eq!(r.status, 502);
        assert_eq!(
            r.message,
            format!("The upstream's /{path} is not a Release file: line 1 is not a field.")
        );
    }
    assert!(host.calls().is_empty(), "nothing remembered");
    // Other paths are not inspected.
    let v = inspect_with(&host, &remote(), &get("dists/s/Release.gpg"), b"<html>");
    assert!(v.fail.is_none() && v.prefetch.is_empty());
    let v = inspect_with(&host, &remote(), &get("pool/a.deb"), b"<html>");
    assert_eq!(v, BodyVerdict::default());
}

#[test]
fn a_release_is_remembered_and_prefetches_what_clients_asked_for() {
    let host = FakeHost::new();
    let inrelease = get(&format!("{SUITE}/InRelease"));
    // Nothing asked for yet: nothing to prefetch.
    let v = inspect_with(&host, &remote(), &inrelease, FTPARCHIVE_SIGNED);
    assert_eq!(v, BodyVerdict::default());
    assert!(host.expired().is_empty());
    let listed = state::lookup(&host, SUITE, "main/binary-all/Packages.xz");
    assert_eq!(
        listed,
        Known::Listed(Entry {
            size: 488,
            algo: Algo::Sha512,
            hex: ALL_XZ_SHA512.into()
        })
    );
    assert_eq!(
        state::lookup(&host, SUITE, "main/binary-all/Packages.bz2"),
        Known::NotListed
    );
    assert_eq!(state::lookup(&host, "other", "x"), Known::Unknown);
    // Clients ask for a file by name, another by its by-hash name, and a
    // third the archive does not list.
    let contents_gz = "6e13ea9a30052c380d9ce4b64156c9691c3f48564e67fbf3a9fca29d13d1aeb0b00da89088b0fec6da450dbe625273c99f767b69d4115b4cb893b9c27a92376f";
    plan_on(&host, &format!("{SUITE}/main/binary-all/Packages.xz"));
    plan_on(&host, &format!("{SUITE}/main/by-hash/SHA512/{contents_gz}"));
    assert!(state::want(
        &host,
        SUITE,
        "main/binary-i386/Packages.xz",
        Form::Name
    ));
    // Each in the form it was asked for.
    let v = inspect_with(&host, &remote(), &inrelease, FTPARCHIVE_SIGNED);
    let mut got = v.prefetch.clone();
    got.sort();
    assert_eq!(
        got,
        [
            format!("{SUITE}/main/binary-all/Packages.xz"),
            format!("{SUITE}/main/by-hash/SHA512/{contents_gz}"),
        ]
    );
    assert!(host.expired().is_empty(), "nothing changed");
    // Each prefetch plans to the entry a client's request fills.
    for p in &v.prefetch {
        let f = plan_on(&host, p);
        assert!(
            f.plan.key == *p || f.plan.key.starts_with(&format!("/{p}@")),
            "{p}"
        );
        assert!(f.plan.expected_digest.is_some());
    }
    // By-hash names only while the archive has them.
    let no_by_hash = String::from_utf8_lossy(FTPARCHIVE).replace("Acquire-By-Hash: yes\n", "");
    let v = inspect_with(&host, &remote(), &inrelease, no_by_hash.as_bytes());
    let mut got = v.prefetch;
    got.sort();
    assert_eq!(
        got,
        [
            format!("{SUITE}/main/Contents-all.gz"),
            format!("{SUITE}/main/binary-all/Packages.xz")
        ]
    );
}

#[test]
fn a_new_release_expires_the_entries_of_files_it_changes() {
    let host = host_with(FTPARCHIVE_SIGNED);
    let xz = format!("{SUITE}/main/binary-all/Packages.xz");
    let gz = format!("{SUITE}/main/binary-all/Packages.gz");
    let old_key = plan_on(&host, &xz).plan.key;
    plan_on(&host, &gz);
    // The same Release again: nothing expired.
    let inrelease = get(&format!("{SUITE}/InRelease"));
    inspect_with(&host, &remote(), &inrelease, FTPARCHIVE);
    assert!(host.expired().is_empty());
    // A Release in which Packages.xz changed (and Packages.gz did not).
    let new_sha512 = "ab".repeat(64);
    let changed = String::from_utf8_lossy(FTPARCHIVE).replace(ALL_XZ_SHA512, &new_sha512);
    host.next_request();
    inspect_with(&host, &remote(), &inrelease, changed.as_bytes());
    assert_eq!(host.expired(), std::slice::from_ref(&old_key));
    // The name now plans to the new digest.
    let f = plan_on(&host, &xz);
    assert_eq!(f.plan.key, format!("/{xz}@sha512:{new_sha512}"));
    assert_ne!(f.plan.key, old_key);
    // A Release that drops it expires it too.
    let dropped: String = changed
        .lines()
        .filter(|l| !l.ends_with(" main/binary-all/Packages.xz"))
        .map(|l| format!("{l}\n"))
        .collect();
    host.next_request();
    inspect_with(&host, &remote(), &inrelease, dropped.as_bytes());
    assert_eq!(host.expired(), [f.plan.key]);
    assert_eq!(plan_on(&host, &xz).plan.key, xz, "unlisted: by its name");
}
#[test]
fn a_new_release_expires_and_prefetches_its_signature() {
    let host = FakeHost::new();
    let v = inspect_with(&host, &remote(), &get("dists/s/Release"), FTPARCHIVE);
    assert_eq!(v.prefetch, ["dists/s/Release.gpg"]);
    assert_eq!(host.expired(), ["dists/s/Release.gpg"]);
    let off = remote().with_option("prefetch", "none");
    let v = inspect_with(&host, &off, &get("dists/s/Release"), FTPARCHIVE);
    assert!(v.prefetch.is_empty());
}

#[test]
fn a_bad_prefetch_option_does_not_refuse_a_release() {
    let host = FakeHost::new();
    let bad = remote().with_option("prefetch", "everything");
    let (v, logs) = artgate_sdk::testing::capture_logs(|| {
        inspect_with(&host, &bad, &get("dists/s/InRelease"), REPREPRO)
    });
    assert!(v.fail.is_none());
    assert!(
        logs.iter()
            .any(|(_, l)| l.contains("invalid option prefetch")),
        "{logs:?}"
    );
}

// ---- What is remembered --------------------------------------------------

#[test]
fn entries_round_trip_and_refuse_garbage() {
    let e = Entry {
        size: 12,
        algo: Algo::Sha256,
        hex: "ab".repeat(32),
    };
    assert_eq!(e.to_text(), format!("12 SHA256:{}", "ab".repeat(32)));
    assert_eq!(Entry::from_text(&e.to_text()), Some(e));
    for bad in [
        "",
        "12",
        "x SHA256:00",
        "12 SHA256:00",
        &format!("12 MD5Sum:{}", "a".repeat(32)),
        &format!("12 SHA3:{}", "a".repeat(64)),
    ] {
        assert_eq!(Entry::from_text(bad), None, "{bad}");
    }
}

#[test]
fn a_directory_too_long_for_a_key_is_never_remembered() {
    let host = FakeHost::new();
    let dir = format!("dists/{}", "s".repeat(500));
    let r = release::parse(REPREPRO).unwrap();
    assert_eq!(state::remember(&host, &dir, &r), 0);
    assert_eq!(
        state::lookup(&host, &dir, "main/binary-amd64/Packages"),
        Known::Unknown
    );
    assert!(!state::want(&host, &dir, "x", Form::Name));
    assert!(state::wanted(&host, &dir).is_empty());
    assert!(host.kv_keys().is_empty());
    // Every key written for a real suite fits the host's limit.
    let host = host_with(REPREPRO);
    assert!(host.kv_keys().iter().all(|k| k.len() <= 512));
}

#[test]
fn the_wanted_list_is_bounded_and_kept_once() {
    let host = FakeHost::new();
    for i in 0..state::MAX_WANTED + 10 {
        state::want(
            &host,
            "d",
            &format!("main/binary-{i:04}/Packages.xz"),
            Form::Name,
        );
    }
    assert_eq!(state::wanted(&host, "d").len(), state::MAX_WANTED);
    let before = kv_writes(&host);
    assert!(state::want(
        &host,
        "d",
        "main/binary-0000/Packages.xz",
        Form::Name
    ));
    assert_eq!(kv_writes(&host), before, "already there: nothing written");
    assert!(
        !state::want(&host, "d", "main/binary-0000/Packages.xz", Form::ByHash),
        "full"
    );
    for bad in ["line\nbreak", "a space", ""] {
        assert!(!state::want(&host, "e", bad, Form::Name), "{bad:?}");
    }
    assert!(state::wanted(&host, "e").is_empty());
    // Both forms of one file are two entries.
    assert!(state::want(&host, "e", "x", Form::ByHash));
    assert!(state::want(&host, "e", "x", Form::Name));
    assert_eq!(state::wanted(&host, "e").len(), 2);
}
