//! The `docker` adapter end to end: Debian's `docker-registry`
//! (distribution 2.8) as the upstream, `skopeo` as the client, images the
//! test builds itself (an OCI image with a 3 MiB layer, the same image as
//! Docker schema 2, and a two-platform OCI index).

use crate::support::gateway::Gateway;
use crate::support::http::{Got, get_exact, no_redirect_client, send_exact};
use crate::support::registry::{
    DOCKER_MANIFEST, Front, OCI_INDEX, OCI_MANIFEST, Registry, TestImages, pull_to_dir,
    push_test_images, sha256, skopeo_ok, test_images, verify_dir,
};
use crate::support::upstream::Upstream;
use serde_json::Value;
use std::time::Duration;

/// A `[[remote]]` of package docker.
fn remote(name: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[remote]]\nname = \"{name}\"\npackage = \"docker\"\nupstream = \"{upstream}\"\n{extra}\n"
    )
}

/// A registry with the test images pushed as `library/app`.
async fn registry_with_images(tmp: &std::path::Path) -> (Registry, TestImages) {
    let registry = Registry::start().await;
    let images = test_images(&tmp.join("layout"));
    push_test_images(&images, &registry.host(), "app", None).await;
    (registry, images)
}

/// The upstream's manifest `reference` of `library/app` for `accept`:
/// (body digest, content type, body).
async fn upstream_manifest(base: &str, reference: &str, accept: &str) -> (String, String, Vec<u8>) {
    let g = get_exact(
        &format!("{base}/v2/library/app/manifests/{reference}"),
        &[("accept", accept)],
    )
    .await;
    assert_eq!(g.status, 200, "upstream manifest {reference}");
    (
        sha256(g.body()),
        g.h("content-type").to_owned(),
        g.body().to_vec(),
    )
}

/// The blobs an OCI/Docker manifest in the layout references (config,
/// layers), with their bytes.
fn layout_blobs(images: &TestImages, manifest: &str) -> Vec<(String, Vec<u8>)> {
    let read = |d: &str| {
        std::fs::read(
            images
                .layout
                .dir
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let m: Value = serde_json::from_slice(&read(manifest)).unwrap();
    let mut out = vec![];
    let config = m["config"]["digest"].as_str().unwrap().to_owned();
    out.push((config.clone(), read(&config)));
    for l in m["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap().to_owned();
        out.push((d.clone(), read(&d)));
    }
    out
}

/// The digest of the ~3 MiB layer of `v1`.
fn big_layer(images: &TestImages) -> (String, Vec<u8>) {
    layout_blobs(images, &images.v1.digest)
        .into_iter()
        .max_by_key(|(_, b)| b.len())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pulls_images_through_the_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let (registry, images) = registry_with_images(tmp.path()).await;
    let gw = Gateway::start(&remote("hub", &registry.url(""), "")).await;
    let base = format!("docker://{}/hub/library/app", gw.addr);
    let up = registry.url("");

    // inspect: the raw manifest is the upstream's, byte for byte.
    let (v1_digest, _, v1_body) = upstream_manifest(&up, "v1", OCI_MANIFEST).await;
    assert_eq!(
        v1_digest, images.v1.digest,
        "skopeo pushed the OCI manifest as is"
    );
    let raw = skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("{base}:v1"),
    ])
    .await;
    assert_eq!(raw, v1_body);
    let info = skopeo_ok(&["inspect", "--tls-verify=false", &format!("{base}:v1")]).await;
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["Digest"], v1_digest.as_str());
    assert_eq!(info["Architecture"], "amd64");

    // copy by tag and by digest: every blob verified.
    let d = pull_to_dir(tmp.path(), "by-tag", &format!("{base}:v1"), &[], &[])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), v1_digest);
    for (digest, bytes) in layout_blobs(&images, &images.v1.digest) {
        let file = d.join(digest.trim_start_matches("sha256:"));
        assert_eq!(std::fs::read(file).unwrap(), bytes, "blob {digest}");
    }
    let d = pull_to_dir(
        tmp.path(),
        "by-digest",
        &format!("{base}@{v1_digest}"),
        &[],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(verify_dir(&d), v1_digest);

    // The Docker schema 2 copy.
    let (v2s2_digest, ct, _) = upstream_manifest(&up, "v2s2", DOCKER_MANIFEST).await;
    assert_eq!(ct, DOCKER_MANIFEST);
    let d = pull_to_dir(tmp.path(), "v2s2", &format!("{base}:v2s2"), &[], &[])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), v2s2_digest);

    // Multi-arch: one architecture, then all of them.
    let d = pull_to_dir(
        tmp.path(),
        "arm64",
        &format!("{base}:multi"),
        &["--override-arch", "arm64"],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(verify_dir(&d), images.multi_arm64.digest);
    let (multi_digest, ct, _) = upstream_manifest(&up, "multi", OCI_INDEX).await;
    assert_eq!(ct, OCI_INDEX);
    assert_eq!(multi_digest, images.multi.digest);
    let d = pull_to_dir(tmp.path(), "all", &format!("{base}:multi"), &[], &["--all"])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), multi_digest);
    let instances = std::fs::read_dir(&d)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".manifest.json")
        })
        .count();
    assert_eq!(instances, 2, "both platform manifests are copied");

    // A second pull is served from the cache.
    let d = pull_to_dir(tmp.path(), "again", &format!("{base}:v1"), &[], &[])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), v1_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_heads_ranges_negotiation_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (registry, images) = registry_with_images(tmp.path()).await;
    let gw = Gateway::start(&remote("hub", &registry.url(""), "")).await;
    let m = |r: &str| gw.url(&format!("/v2/hub/library/app/manifests/{r}"));

    // HEAD: the upstream's content type, digest and length, miss and hit.
    for (tag, accept) in [
        ("v1", OCI_MANIFEST),
        ("v2s2", DOCKER_MANIFEST),
        ("multi", OCI_INDEX),
    ] {
        let direct = send_exact(
            "HEAD",
            &registry.url(&format!("/v2/library/app/manifests/{tag}")),
            &[("accept", accept)],
        )
        .await;
        assert_eq!(direct.status, 200);
        for round in ["miss", "hit"] {
            let g = send_exact("HEAD", &m(tag), &[("accept", accept)]).await;
            assert_eq!(g.status, 200, "{tag} {round}");
            for h in ["content-type", "docker-content-digest", "content-length"] {
                assert_eq!(g.h(h), direct.h(h), "{h} of {tag} ({round})");
            }
            assert!(g.body().is_empty());
            // A body is released before its commit: wait for the commit.
            gw.fills_settled().await;
        }
        let g = get_exact(&m(tag), &[("accept", accept)]).await;
        assert_eq!(g.h("x-artifact-source"), "cache");
        assert_eq!(sha256(g.body()), direct.h("docker-content-digest"));
    }

    // Range on a blob (cold, then warm).
    let (big, bytes) = big_layer(&images);
    let blob_url = gw.url(&format!("/v2/hub/library/app/blobs/{big}"));
    for _ in 0..2 {
        let g = get_exact(&blob_url, &[("range", "bytes=1000-1999")]).await;
        assert_eq!(g.status, 206);
        assert_eq!(g.body(), &bytes[1000..2000]);
        assert_eq!(
            g.h("content-range"),
            format!("bytes 1000-1999/{}", bytes.len())
        );
    }
    let g = get_exact(&blob_url, &[]).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.h("docker-content-digest"), big);
    assert_eq!(g.h("content-type"), "application/octet-stream");
    assert_eq!(sha256(g.body()), big);

    // Content negotiation: the cached index is never served to a client
    // that accepts single manifests only, by tag or by digest.
    let g = get_exact(&m("multi"), &[("accept", OCI_INDEX)]).await;
    assert_eq!((g.status, g.h("content-type")), (200, OCI_INDEX));
    let g = get_exact(&m("multi"), &[("accept", OCI_MANIFEST)]).await;
    assert_eq!((g.status, g.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    let index = images.multi.digest.as_str();
    let g = get_exact(&m(index), &[("accept", OCI_INDEX)]).await;
    assert_eq!((g.status, g.h("content-type")), (200, OCI_INDEX));
    assert_eq!(g.h("docker-content-digest"), index);
    let g = get_exact(&m(index), &[("accept", OCI_MANIFEST)]).await;
    assert_eq!((g.status, g.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    // Accept order and duplicates do not matter; */* takes anything.
    let g = get_exact(
        &m("multi"),
        &[(
            "accept",
            &format!("{OCI_MANIFEST}, {OCI_INDEX}, {OCI_INDEX}"),
        )],
    )
    .await;
    assert_eq!((g.status, g.h("content-type")), (200, OCI_INDEX));

    // Tag lists: the query is forwarded and part of the key.
    // (distribution 2.8 ignores `n` and sends no `Link`; the adapter's unit
    // tests cover rewriting `Link` so later pages go through the gateway.)
    let tags = |g: &Got| {
        let v: Value = serde_json::from_slice(g.body()).unwrap();
        let mut t: Vec<String> = v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    };
    let list = gw.url("/v2/hub/library/app/tags/list?n=2");
    let g = get_exact(&list, &[]).await;
    assert_eq!((g.status, g.h("x-artifact-source")), (200, "remote"));
    assert_eq!(g.h("content-type"), "application/json");
    assert_eq!(tags(&g), ["multi", "v1", "v2s2"]);
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let g = get_exact(&list, &[]).await;
    assert_eq!(g.h("x-artifact-source"), "cache");
    let g = get_exact(&gw.url("/v2/hub/library/app/tags/list"), &[]).await;
    assert_eq!((g.status, g.h("x-artifact-source")), (200, "remote"));
    assert_eq!(tags(&g), ["multi", "v1", "v2s2"]);

    // Errors in the OCI format.
    let zero = format!("sha256:{}", "0".repeat(64));
    for (path, status, code) in [
        ("library/app/manifests/nope", 404, "MANIFEST_UNKNOWN"),
        (
            &format!("library/app/blobs/{zero}")[..],
            404,
            "BLOB_UNKNOWN",
        ),
        ("library/nope/tags/list", 404, "NAME_UNKNOWN"),
        ("Library/app/manifests/v1", 400, "NAME_INVALID"),
        (
            &format!("library/app/blobs/sha512:{}", "0".repeat(128))[..],
            400,
            "DIGEST_INVALID",
        ),
        ("library/app/manifests/sha256:abc", 400, "DIGEST_INVALID"),
        ("library/app/blobs/uploads/x", 400, "UNSUPPORTED"),
    ] {
        // Twice: the second 404 may come from the remembered one.
        for _ in 0..2 {
            let g = get_exact(&gw.url(&format!("/v2/hub/{path}")), &[]).await;
            assert_eq!((g.status, g.code().as_str()), (status, code), "{path}");
        }
    }
    let g = send_exact("PUT", &m("v9"), &[]).await;
    assert_eq!((g.status, g.code().as_str()), (400, "UNSUPPORTED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_again_with_the_upstream_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut registry, _images) = registry_with_images(tmp.path()).await;
    let gw = Gateway::start(&remote(
        "hub",
        &registry.url(""),
        "mutable_ttl = \"1s\"\noptions = { tags_ttl = \"1\" }",
    ))
    .await;
    let base = format!("docker://{}/hub/library/app", gw.addr);
    let (digest, _, _) = upstream_manifest(&registry.url(""), "v1", OCI_MANIFEST).await;
    let d = pull_to_dir(tmp.path(), "first", &format!("{base}:v1"), &[], &[])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), digest);
    let tag_url = gw.url("/v2/hub/library/app/manifests/v1");
    let g = get_exact(&tag_url, &[("accept", OCI_MANIFEST)]).await;
    assert_eq!((g.status, g.h("x-artifact-source")), (200, "remote"));
    let tags_url = gw.url("/v2/hub/library/app/tags/list");
    assert_eq!(get_exact(&tags_url, &[]).await.status, 200);

    registry.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let g = get_exact(&tag_url, &[("accept", OCI_MANIFEST)]).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.h("x-artifact-source"), "stale");
    assert_eq!(g.h("docker-content-digest"), digest);
    assert_eq!(sha256(g.body()), digest);
    let g = get_exact(&tags_url, &[]).await;
    assert_eq!((g.status, g.h("x-artifact-source")), (200, "stale"));
    // Only ever fetched by tag, yet served by digest from the stored copy,
    // with its media type.
    let g = get_exact(
        &gw.url(&format!("/v2/hub/library/app/manifests/{digest}")),
        &[("accept", OCI_MANIFEST)],
    )
    .await;
    assert_eq!((g.status, g.h("x-artifact-source")), (200, "cache"));
    assert_eq!(g.h("content-type"), OCI_MANIFEST);
    assert_eq!(g.h("docker-content-digest"), digest);
    assert_eq!(sha256(g.body()), digest);

    let d = pull_to_dir(tmp.path(), "by-tag", &format!("{base}:v1"), &[], &[])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), digest);
    let d = pull_to_dir(
        tmp.path(),
        "by-digest",
        &format!("{base}@{digest}"),
        &[],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(verify_dir(&d), digest);
    // Never fetched: nothing to serve, and the client is told why.
    let g = get_exact(&gw.url("/v2/hub/library/app/manifests/v2s2"), &[]).await;
    assert_eq!(g.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start_htpasswd("alice", "wonder land").await;
    let images = test_images(&tmp.path().join("layout"));
    push_test_images(&images, &registry.host(), "app", Some("alice:wonder land")).await;
    let gw = Gateway::start(&format!(
        "{}{}",
        remote(
            "private",
            &registry.url(""),
            "username = \"alice\"\npassword = \"wonder land\""
        ),
        remote("nocreds", &registry.url(""), "")
    ))
    .await;
    let d = pull_to_dir(
        tmp.path(),
        "ok",
        &format!("docker://{}/private/library/app:v1", gw.addr),
        &[],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(verify_dir(&d), images.v1.digest);
    let g = get_exact(&gw.url("/v2/nocreds/library/app/manifests/v1"), &[]).await;
    assert_eq!((g.status, g.code().as_str()), (403, "DENIED"));
    let err = pull_to_dir(
        tmp.path(),
        "denied",
        &format!("docker://{}/nocreds/library/app:v1", gw.addr),
        &[],
        &[],
    )
    .await
    .unwrap_err();
    assert!(err.contains("denied") || err.contains("DENIED"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let (registry, images) = registry_with_images(tmp.path()).await;
    let front = Front::start(&registry).await;
    front.require_token("bob", "builder");
    let gw = Gateway::start(&format!(
        "{}{}",
        remote(
            "tok",
            &front.url(),
            "username = \"bob\"\npassword = \"builder\""
        ),
        remote(
            "bad",
            &front.url(),
            "username = \"bob\"\npassword = \"wrong\""
        )
    ))
    .await;
    let base = format!("docker://{}/tok/library/app", gw.addr);
    let d = pull_to_dir(tmp.path(), "v1", &format!("{base}:v1"), &[], &[])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), images.v1.digest);
    let issued = front.token_requests();
    assert!(issued >= 1);
    // Every request the registry answered carried a token.
    assert!(!front.all_gets().is_empty());
    assert!(
        front
            .authorizations()
            .iter()
            .any(|a| a.starts_with("Bearer tok-"))
    );

    // The cached token is used up front: no new token requests (the
    // token is remembered before the body that taught it is released).
    let d = pull_to_dir(tmp.path(), "all", &format!("{base}:multi"), &[], &["--all"])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), images.multi.digest);
    assert_eq!(front.token_requests(), issued);

    // Wrong credentials: the token service refuses them.
    let g = get_exact(&gw.url("/v2/bad/library/app/manifests/v1"), &[]).await;
    assert_eq!((g.status, g.code().as_str()), (403, "DENIED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_not_sent_to_redirect_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let (registry, images) = registry_with_images(tmp.path()).await;
    let front = Front::start(&registry).await;
    front.require_token("bob", "builder");
    let cdn = Upstream::start().await;
    front.redirect_blobs(&cdn.url());
    let (big, bytes) = big_layer(&images);
    let path = format!("/v2/library/app/blobs/{big}");
    cdn.put_body(path.as_str(), bytes.clone());
    let gw = Gateway::start(&remote(
        "tok",
        &front.url(),
        "username = \"bob\"\npassword = \"builder\"\nfollow_redirects = \"any\"",
    ))
    .await;
    let g = get_exact(&gw.url(&format!("/v2/tok/library/app/blobs/{big}")), &[]).await;
    assert_eq!(g.status, 200);
    assert_eq!(sha256(g.body()), big);
    assert!(front.token_requests() >= 1);
    let seen = cdn.seen(&path);
    assert_eq!(seen.gets, 1);
    assert!(
        !seen.last_headers.contains_key("authorization"),
        "the CDN got {:?}",
        seen.last_headers.get("authorization")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_blob_fails_and_is_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let (registry, images) = registry_with_images(tmp.path()).await;
    let front = Front::start(&registry).await;
    let gw = Gateway::start(&remote("hub", &front.url(), "")).await;
    let (big, bytes) = big_layer(&images);
    let path = format!("/v2/library/app/blobs/{big}");
    front.tamper(&path, true);
    let base = format!("docker://{}/hub/library/app", gw.addr);

    let err = pull_to_dir(tmp.path(), "bad", &format!("{base}:v1"), &[], &[])
        .await
        .unwrap_err();
    assert!(!err.is_empty());
    // A direct read fails too (an aborted body, never a clean EOF of
    // wrong bytes).
    let blob_url = gw.url(&format!("/v2/hub/library/app/blobs/{big}"));
    match no_redirect_client().get(&blob_url).send().await {
        Ok(r) if r.status() == 200 => {
            let body = r.bytes().await;
            assert!(
                body.as_ref().map(|b| sha256(b) != big).unwrap_or(true),
                "tampered bytes must not arrive intact"
            );
            assert!(body.is_err(), "the transfer must be aborted");
        }
        Ok(r) => assert!(r.status().is_server_error(), "{}", r.status()),
        Err(_) => {}
    }
    let tampered_fetches = front.gets(&path);
    assert!(tampered_fetches >= 2, "each attempt went upstream");

    // Nothing was cached: the untampered pull fetches the blob again.
    front.tamper(&path, false);
    let d = pull_to_dir(tmp.path(), "good", &format!("{base}:v1"), &[], &[])
        .await
        .unwrap();
    assert_eq!(verify_dir(&d), images.v1.digest);
    assert_eq!(front.gets(&path), tampered_fetches + 1);
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let g = get_exact(&blob_url, &[]).await;
    assert_eq!(g.body(), bytes);
    assert_eq!(g.h("x-artifact-source"), "cache");
    assert_eq!(front.gets(&path), tampered_fetches + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_fetch_each_blob_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (registry, images) = registry_with_images(tmp.path()).await;
    let front = Front::start(&registry).await;
    let gw = Gateway::start(&remote("hub", &front.url(), "")).await;
    let reference = format!("docker://{}/hub/library/app:v1", gw.addr);
    let pulls: Vec<_> = (0..20)
        .map(|i| {
            let (dir, reference) = (tmp.path().to_owned(), reference.clone());
            tokio::spawn(async move {
                pull_to_dir(&dir, &format!("pull-{i}"), &reference, &[], &[]).await
            })
        })
        .collect();
    for p in pulls {
        let d = p.await.unwrap().unwrap();
        assert_eq!(verify_dir(&d), images.v1.digest);
    }
    for (digest, _) in layout_blobs(&images, &images.v1.digest) {
        assert_eq!(
            front.gets(&format!("/v2/library/app/blobs/{digest}")),
            1,
            "blob {digest}: {:?}",
            front.all_gets()
        );
    }
    assert_eq!(
        front.gets("/v2/library/app/manifests/v1"),
        1,
        "{:?}",
        front.all_gets()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_upstream_serves_stale() {
    use crate::support::upstream::Resource;
    // A fake registry (the in-process upstream) that can answer 429.
    let up = Upstream::start().await;
    let body = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}"}}"#);
    let digest = sha256(body.as_bytes());
    for tag in ["1", "2"] {
        up.put(
            &format!("/v2/library/x/manifests/{tag}"),
            Resource {
                body: body.clone().into(),
                content_type: Some(OCI_MANIFEST.into()),
                headers: vec![("docker-content-digest".into(), digest.clone())],
                ..Default::default()
            },
        );
    }
    let gw = Gateway::start(&remote("hub", &up.url(), "mutable_ttl = \"1s\"")).await;
    let url = |tag: &str| gw.url(&format!("/v2/hub/library/x/manifests/{tag}"));
    let g = get_exact(&url("1"), &[("accept", OCI_MANIFEST)]).await;
    assert_eq!(
        (g.status, g.h("docker-content-digest")),
        (200, digest.as_str())
    );
    for tag in ["1", "2"] {
        up.edit(&format!("/v2/library/x/manifests/{tag}"), |r| {
            r.status = Some(429)
        });
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let g = get_exact(&url("1"), &[("accept", OCI_MANIFEST)]).await;
    assert_eq!((g.status, g.h("x-artifact-source")), (200, "stale"));
    assert_eq!(g.body(), body.as_bytes());
    // Nothing cached: the client learns it is rate-limited.
    let g = get_exact(&url("2"), &[("accept", OCI_MANIFEST)]).await;
    assert_eq!((g.status, g.code().as_str()), (429, "TOOMANYREQUESTS"));
}

/// `HEAD` of an uncached 3 MiB layer against a registry that wants tokens:
/// answered from the registry's `HEAD` (after the token dance), with its
/// length and digest, without downloading the layer; the `GET` after it
/// is the one download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_of_an_uncached_blob_asks_the_registry_without_downloading() {
    let tmp = tempfile::tempdir().unwrap();
    let (registry, images) = registry_with_images(tmp.path()).await;
    let front = Front::start(&registry).await;
    front.require_token("bob", "builder");
    let gw = Gateway::start(&remote(
        "tok",
        &front.url(),
        "username = \"bob\"\npassword = \"builder\"",
    ))
    .await;
    let (big, bytes) = big_layer(&images);
    let path = format!("/v2/library/app/blobs/{big}");
    let url = gw.url(&format!("/v2/tok/library/app/blobs/{big}"));

    let head = send_exact("HEAD", &url, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body().is_empty());
    assert_eq!(head.h("content-length"), bytes.len().to_string());
    assert_eq!(head.h("x-artifact-size"), bytes.len().to_string());
    assert_eq!(head.h("docker-content-digest"), big);
    assert_eq!(head.h("x-artifact-source"), "remote");
    assert!(front.token_requests() >= 1, "no token dance for the HEAD");
    assert_eq!(front.gets(&path), 0, "the HEAD downloaded the layer");

    let g = get_exact(&url, &[]).await;
    assert_eq!((g.status, g.h("x-artifact-source")), (200, "remote"));
    assert_eq!(sha256(g.body()), big);
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let head = send_exact("HEAD", &url, &[]).await;
    assert_eq!((head.status, head.h("x-artifact-source")), (200, "cache"));
    assert_eq!(front.gets(&path), 1);

    let missing = format!("sha256:{}", "0".repeat(64));
    let g = send_exact(
        "HEAD",
        &gw.url(&format!("/v2/tok/library/app/blobs/{missing}")),
        &[],
    )
    .await;
    assert_eq!(g.status, 404);
}
