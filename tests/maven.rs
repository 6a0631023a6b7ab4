//! The `maven` adapter end to end: a Maven repository written by the test
//! (artifacts, checksum files, metadata) served by the in-process upstream,
//! and the real `mvn` (Debian's, with `checksumPolicy=fail` and central
//! mirrored to Debian's packaged repository) through the gateway: a
//! transitive dependency, a version range, a timestamped snapshot, the
//! same build from the cache with the upstream down, `mvn -U` seeing a new
//! version, a bad `.sha1` upstream, a missing artifact; then `mvn deploy`
//! to a hosted remote and a build through the group over both.
//!
//! Maven sends `Cache-Control: no-cache` with every request; the tests
//! check that it never turns a stored artifact into an upstream request.

use crate::support::clients::{run, run_ok};
use crate::support::gateway::Gateway;
use crate::support::kit::check_builtin_cases;
use crate::support::maven_tools::{Fixture, local_sha256, mvn, project, require_mvn, settings};
use crate::support::mirror::Mirror;
use crate::support::sha256_hex;
use std::path::Path;

/// The pull-through remote `maven` in front of `mirror`.
fn remote(mirror: &Mirror) -> String {
    format!(
        "[[remote]]\nname = \"maven\"\npackage = \"maven\"\nupstream = \"{}\"\nmutable_ttl = \"10m\"\nnegative_ttl = \"10m\"\nno_cache_revalidates_404 = false\n",
        mirror.url()
    )
}

/// Runs `mvn compile` of `proj` and panics with its output unless it
/// succeeds.
async fn compile(proj: &Path, settings: &Path, local: &Path, extra: &[&str]) {
    let mut args = vec!["compile"];
    args.extend_from_slice(extra);
    run_ok(mvn(proj, settings, local, &args)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mvn_resolves_through_the_mirror_and_without_the_upstream() {
    require_mvn();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let fx = Fixture::new(&w.join("repo"));
    let base = fx.add(("org.fixture", "base", "1.0"), None, &[], false);
    fx.add(
        ("org.fixture", "app-lib", "1.0"),
        None,
        &[("org.fixture", "base", "1.0")],
        false,
    );
    fx.add(("org.fixture", "ranged", "1.0"), None, &[], false);
    let ranged11 = fx.add(("org.fixture", "ranged", "1.1"), None, &[], false);
    fx.versions("org.fixture", "ranged", &["1.0", "1.1"]);
    let snap_gav = ("org.fixture", "snap", "1.0-SNAPSHOT");
    let snap = fx.add(snap_gav, Some("1.0-20261201.120000-1"), &[], false);
    fx.snapshot_metadata(snap_gav, "1.0-20261201.120000-1");
    let mirror = Mirror::start("/maven2").await;
    mirror.load(&fx.root, "");
    let gw = Gateway::start(&remote(&mirror)).await;
    let s = settings(
        &w.join("settings.xml"),
        &gw.url("/api/v1/remote/maven/"),
        None,
    );
    let proj = project(
        &w.join("app"),
        &[
            ("org.fixture", "app-lib", "1.0"),
            ("org.fixture", "ranged", "[1.0,2.0)"),
            ("org.fixture", "snap", "1.0-SNAPSHOT"),
        ],
    );

    // A transitive dependency, a range resolved by the metadata to 1.1, a
    // timestamped snapshot: the bytes of the fixture, checksums checked.
    let m2 = w.join("m2");
    compile(&proj, &s, &m2, &[]).await;
    let sha = |local: &Path, rel: &str| local_sha256(local, rel);
    assert_eq!(
        sha(&m2, "org/fixture/base/1.0/base-1.0.jar"),
        Some(sha256_hex(&base)),
        "the transitive dependency"
    );
    assert_eq!(
        sha(&m2, "org/fixture/ranged/1.1/ranged-1.1.jar"),
        Some(sha256_hex(&ranged11)),
        "the range resolves to the newest version"
    );
    assert_eq!(
        sha(&m2, "org/fixture/snap/1.0-SNAPSHOT/snap-1.0-SNAPSHOT.jar"),
        Some(sha256_hex(&snap)),
        "the snapshot's timestamped build"
    );
    gw.fills_settled().await;

    // A second build with an empty local repository: Maven asks for every
    // file again, with `no-cache`, and no stored file goes upstream.
    let jars = [
        "org/fixture/base/1.0/base-1.0.jar",
        "org/fixture/app-lib/1.0/app-lib-1.0.jar",
        "org/fixture/ranged/1.1/ranged-1.1.jar",
        "org/fixture/snap/1.0-SNAPSHOT/snap-1.0-20261201.120000-1.jar",
        "org/fixture/base/1.0/base-1.0.jar.sha1",
    ];
    let seen = |rel: &str| mirror.up.seen(&mirror.path(rel)).total;
    let before: Vec<u64> = jars.iter().map(|j| seen(j)).collect();
    assert!(
        before.iter().all(|n| *n == 1),
        "each fetched once: {before:?}"
    );
    compile(&proj, &s, &w.join("m2-again"), &[]).await;
    let after: Vec<u64> = jars.iter().map(|j| seen(j)).collect();
    assert_eq!(before, after, "stored files were fetched again");

    // The upstream down: the same build from what the gateway holds.
    mirror.up.set_down(true);
    let m2_down = w.join("m2-down");
    compile(&proj, &s, &m2_down, &[]).await;
    assert_eq!(
        sha(&m2_down, "org/fixture/base/1.0/base-1.0.jar"),
        Some(sha256_hex(&base))
    );
    mirror.up.set_down(false);

    // A new version upstream: `mvn -U` asks for the metadata again, the
    // gateway revalidates it (Maven's no-cache) and the range moves on.
    let ranged12 = fx.add(("org.fixture", "ranged", "1.2"), None, &[], false);
    fx.versions("org.fixture", "ranged", &["1.0", "1.1", "1.2"]);
    mirror.load(&fx.root, "");
    compile(&proj, &s, &m2, &["-U"]).await;
    assert_eq!(
        sha(&m2, "org/fixture/ranged/1.2/ranged-1.2.jar"),
        Some(sha256_hex(&ranged12)),
        "mvn -U sees the new version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mvn_is_refused_a_bad_sha1_and_told_of_a_missing_artifact() {
    require_mvn();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let fx = Fixture::new(&w.join("repo"));
    fx.add(("org.fixture", "badsum", "1.0"), None, &[], true);
    let mirror = Mirror::start("/maven2").await;
    mirror.load(&fx.root, "");
    let gw = Gateway::start(&remote(&mirror)).await;
    let s = settings(
        &w.join("settings.xml"),
        &gw.url("/api/v1/remote/maven/"),
        None,
    );

    // The jar does not match the upstream's .sha1: the gateway does not
    // keep it, and mvn does not build.
    let proj = project(&w.join("bad"), &[("org.fixture", "badsum", "1.0")]);
    let ran = run(mvn(&proj, &s, &w.join("m2"), &["compile"])).await;
    assert!(
        !ran.ok,
        "a jar with a bad .sha1 was accepted:\n{}",
        ran.output
    );
    gw.fills_settled().await;
    let jar = "org/fixture/badsum/1.0/badsum-1.0.jar";
    let fetched = mirror.up.seen(&mirror.path(jar)).gets;
    assert!(fetched >= 1);
    let again = reqwest::get(gw.url(&format!("/api/v1/remote/maven/{jar}"))).await;
    if let Ok(resp) = again {
        // A 502 when the mismatch is known before the headers go out (a
        // small file), else the transfer is cut off before its last byte.
        let status = resp.status();
        let body = resp.bytes().await;
        assert!(
            status == 502 || body.is_err(),
            "the mismatching jar was served: {status}"
        );
    }
    gw.fills_settled().await;
    assert_eq!(
        mirror.up.seen(&mirror.path(jar)).gets,
        fetched + 1,
        "nothing was stored: the next request goes upstream again"
    );

    // A missing artifact: mvn names it; the 404 is remembered, for Maven
    // too (which asks with no-cache: `no_cache_revalidates_404 = false`).
    let proj = project(&w.join("missing"), &[("org.fixture", "missing", "1.0")]);
    let ran = run(mvn(&proj, &s, &w.join("m2"), &["compile"])).await;
    assert!(!ran.ok);
    assert!(
        ran.output.contains("org.fixture:missing:jar:1.0")
            || ran.output.contains("org.fixture:missing:pom:1.0"),
        "mvn does not name the missing artifact:\n{}",
        ran.output
    );
    let pom = "org/fixture/missing/1.0/missing-1.0.pom";
    let asked = mirror.up.seen(&mirror.path(pom)).total;
    assert!(asked >= 1);
    let ran = run(mvn(&proj, &s, &w.join("m2-again"), &["compile"])).await;
    assert!(!ran.ok);
    assert_eq!(
        mirror.up.seen(&mirror.path(pom)).total,
        asked,
        "a second build asked the upstream again"
    );
    for _ in 0..2 {
        let got = gw.get_remote("maven", pom, &[]).await;
        assert_eq!(got.status, 404);
    }
    assert_eq!(
        mirror.up.seen(&mirror.path(pom)).total,
        asked,
        "the 404 is cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mvn_deploys_to_hosted_and_resolves_through_the_group() {
    require_mvn();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let fx = Fixture::new(&w.join("repo"));
    let base = fx.add(("org.fixture", "base", "1.0"), None, &[], false);
    let mirror = Mirror::start("/maven2").await;
    mirror.load(&fx.root, "");
    let token = "maven-deployer-token-0123456789";
    let gw = Gateway::start(&format!(
        "{}[[remote]]\nname = \"own\"\npackage = \"maven\"\nhosted = true\n\
         [[remote]]\nname = \"group\"\npackage = \"virtual\"\nmembers = [\"own\", \"maven\"]\nwrite_to = \"own\"\n\
         [[token]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nscopes = {{ \"*\" = [\"read\", \"write\"] }}\n",
        remote(&mirror),
        sha256_hex(token.as_bytes()),
    ))
    .await;
    let group = gw.url("/api/v1/remote/group/");
    let s = settings(&w.join("settings.xml"), &group, Some(token));
    let empty = w.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let deploy = |version: &str, body: &[u8]| {
        let file = w.join(format!("tool-{version}.jar"));
        std::fs::write(&file, body).unwrap();
        mvn(
            &empty,
            &s,
            &w.join("m2-deploy"),
            &[
                "org.apache.maven.plugins:maven-deploy-plugin:3.0.0:deploy-file",
                &format!("-Dfile={}", file.display()),
                "-DgroupId=org.own",
                "-DartifactId=tool",
                &format!("-Dversion={version}"),
                "-Dpackaging=jar",
                "-DrepositoryId=gateway",
                &format!("-Durl={group}"),
            ],
        )
    };

    // A release, then the same release again: 409.
    let release = b"the tool, release 1.0\n".repeat(50);
    run_ok(deploy("1.0", &release)).await;
    let ran = run(deploy("1.0", b"something else")).await;
    assert!(!ran.ok, "a release was redeployed:\n{}", ran.output);
    assert!(ran.output.contains("409"), "{}", ran.output);

    // A snapshot, twice: two timestamped builds, the metadata names the
    // second.
    run_ok(deploy("2.0-SNAPSHOT", b"snapshot build one\n")).await;
    let second = b"snapshot build two\n".repeat(10);
    run_ok(deploy("2.0-SNAPSHOT", &second)).await;
    let meta = gw
        .get_remote("own", "org/own/tool/2.0-SNAPSHOT/maven-metadata.xml", &[])
        .await;
    assert_eq!(meta.status, 200);
    let text = String::from_utf8_lossy(meta.body()).into_owned();
    assert!(text.contains("<buildNumber>2</buildNumber>"), "{text}");
    let meta = gw
        .get_remote("own", "org/own/tool/maven-metadata.xml", &[])
        .await;
    let text = String::from_utf8_lossy(meta.body()).into_owned();
    assert!(
        text.contains("<version>1.0</version>") && text.contains("<version>2.0-SNAPSHOT</version>"),
        "{text}"
    );
    assert!(text.contains("<release>1.0</release>"), "{text}");

    // Builds through the group: the hosted release and the mirrored
    // artifact, then the hosted snapshot (Maven keeps one version of an
    // artifact per build), byte for byte, checksums checked.
    let m2 = w.join("m2");
    let proj = project(
        &w.join("consumer"),
        &[("org.own", "tool", "1.0"), ("org.fixture", "base", "1.0")],
    );
    compile(&proj, &s, &m2, &[]).await;
    assert_eq!(
        local_sha256(&m2, "org/own/tool/1.0/tool-1.0.jar"),
        Some(sha256_hex(&release))
    );
    assert_eq!(
        local_sha256(&m2, "org/fixture/base/1.0/base-1.0.jar"),
        Some(sha256_hex(&base))
    );
    let proj = project(&w.join("consumer2"), &[("org.own", "tool", "2.0-SNAPSHOT")]);
    compile(&proj, &s, &m2, &[]).await;
    assert_eq!(
        local_sha256(&m2, "org/own/tool/2.0-SNAPSHOT/tool-2.0-SNAPSHOT.jar"),
        Some(sha256_hex(&second)),
        "the snapshot resolves to its latest build"
    );
}

#[tokio::test]
async fn the_builtin_passes_its_golden_cases() {
    check_builtin_cases("maven", "plugins/maven/cases", 5).await;
}
