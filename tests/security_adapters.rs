//! Hostile upstreams against adapter isolation (issue 14, items 4, 15 and
//! 11): one docker remote's upstream poisoning another remote through the
//! adapter's key-value store, or teaching it facts with a body that fails
//! verification; an upstream naming a token realm elsewhere to collect
//! the remote's credentials; a refused redirect's signed URL echoed to
//! clients and logs.

use crate::support::gateway::Gateway;
use crate::support::http::get_exact;
use crate::support::registry::{OCI_MANIFEST, sha256};
use crate::support::serve::Server;
use crate::support::upstream::{Resource, Upstream};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// Docker manifest list media type.
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A `[[remote]]` of package docker.
fn docker_remote(name: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[remote]]\nname = \"{name}\"\npackage = \"docker\"\nupstream = \"{upstream}\"\n{extra}\n"
    )
}

/// A small OCI image manifest (the blobs it names need not exist).
fn manifest(seed: &str) -> Vec<u8> {
    let d = sha256(seed.as_bytes());
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d, "size": seed.len()},
        "layers": [],
    })
    .to_string()
    .into_bytes()
}

/// A manifest resource as a registry serves it.
fn manifest_resource(body: &[u8], content_type: &str, digest: &str) -> Resource {
    Resource {
        body: Bytes::from(body.to_vec()),
        content_type: Some(content_type.into()),
        headers: vec![("docker-content-digest".into(), digest.into())],
        ..Default::default()
    }
}

/// Item 4: a hostile upstream of remote `evil` serves a manifest that
/// verifies, labelled with a media type it is not. Before the fix the
/// docker adapter's `digest → media type` fact was shared by every docker
/// remote, so remote `good` then refused the same digest (which its own
/// upstream serves correctly) with 404 `MANIFEST_UNKNOWN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_remotes_upstream_cannot_poison_another_remote() {
    let body = manifest("poison-across-remotes");
    let d = sha256(&body);
    let good = Upstream::start().await;
    good.put(
        &format!("/v2/library/app/manifests/{d}"),
        manifest_resource(&body, OCI_MANIFEST, &d),
    );
    let evil = Upstream::start().await;
    evil.put(
        "/v2/library/app/manifests/v1",
        manifest_resource(&body, DOCKER_LIST, &d),
    );
    let gw = Gateway::start(&format!(
        "{}{}",
        docker_remote("evil", &evil.url(), ""),
        docker_remote("good", &good.url(), "")
    ))
    .await;

    let g = get_exact(
        &gw.url("/v2/evil/library/app/manifests/v1"),
        &[("accept", DOCKER_LIST)],
    )
    .await;
    assert_eq!(g.status, 200, "the hostile fetch itself verifies");

    let g = get_exact(
        &gw.url(&format!("/v2/good/library/app/manifests/{d}")),
        &[("accept", OCI_MANIFEST)],
    )
    .await;
    assert_eq!(
        g.status,
        200,
        "remote good answered from another remote's fact: {}",
        String::from_utf8_lossy(g.body())
    );
    assert_eq!(g.h("content-type"), OCI_MANIFEST);
    assert_eq!(g.body(), body);
    assert_eq!(good.seen(&format!("/v2/library/app/manifests/{d}")).gets, 1);
}

/// Item 4: a tag whose body fails verification (it does not hash to the
/// `docker-content-digest` the upstream sent) must teach the adapter
/// nothing. Before the fix the media type it claimed was remembered in
/// `on-response`, before the body was checked, and the same remote then
/// refused the real manifest of that digest with 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_fails_verification_teaches_the_adapter_nothing() {
    let body = manifest("unverified-fact");
    let d = sha256(&body);
    let up = Upstream::start().await;
    up.put(
        "/v2/library/app/manifests/v1",
        manifest_resource(b"{\"not\":\"the manifest\"}", DOCKER_LIST, &d),
    );
    up.put(
        &format!("/v2/library/app/manifests/{d}"),
        manifest_resource(&body, OCI_MANIFEST, &d),
    );
    let gw = Gateway::start(&docker_remote("r", &up.url(), "")).await;

    let g = get_exact(
        &gw.url("/v2/r/library/app/manifests/v1"),
        &[("accept", DOCKER_LIST)],
    )
    .await;
    assert_eq!(g.status, 502, "{}", String::from_utf8_lossy(g.body()));

    let g = get_exact(
        &gw.url(&format!("/v2/r/library/app/manifests/{d}")),
        &[("accept", OCI_MANIFEST)],
    )
    .await;
    assert_eq!(
        g.status,
        200,
        "a fact from an unverified body was kept: {}",
        String::from_utf8_lossy(g.body())
    );
    assert_eq!(g.h("content-type"), OCI_MANIFEST);
    assert_eq!(g.body(), body);
}

type Body = BoxBody<Bytes, Infallible>;

/// What a [`Recorder`] answers: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Every request a [`Recorder`] saw: path and query, `Authorization`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A small HTTP server on 127.0.0.1 that records every request's path and
/// `Authorization` and answers through a handler.
struct Recorder {
    seen: Seen,
    server: Server,
}

impl Recorder {
    async fn start(
        handler: impl Fn(&str, Option<&str>) -> Answer + Send + Sync + 'static,
    ) -> Recorder {
        let seen: Seen = Arc::default();
        let seen2 = seen.clone();
        let server = Server::start(move |req: Request<Incoming>, _| {
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let auth = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            seen2.lock().unwrap().push((path.clone(), auth.clone()));
            let (status, headers, body) = handler(&path, auth.as_deref());
            let mut r: Response<Body> = Response::new(Full::new(Bytes::from(body)).boxed());
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            for (k, v) in headers {
                r.headers_mut().insert(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            std::future::ready(r)
        })
        .await;
        Recorder { seen, server }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }
}

/// `Basic` of `user:password`.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A token service on its own origin: a token for the right credentials.
async fn token_service() -> Recorder {
    let want = basic("alice", "sekrit-pass");
    Recorder::start(move |path, auth| {
        if !path.starts_with("/token") {
            return (404, vec![], b"not found".to_vec());
        }
        if auth != Some(want.as_str()) {
            return (401, vec![], b"bad credentials".to_vec());
        }
        (
            200,
            vec![("content-type".into(), "application/json".into())],
            br#"{"token":"good-token","expires_in":300}"#.to_vec(),
        )
    })
    .await
}

/// A registry that wants a bearer token from `realm` (another origin).
async fn registry_naming(realm: &str, body: Vec<u8>) -> Recorder {
    let challenge = format!(
        "Bearer realm=\"{realm}/token\",service=\"reg\",scope=\"repository:library/app:pull\""
    );
    let d = sha256(&body);
    Recorder::start(move |path, auth| {
        if path != "/v2/library/app/manifests/v1" {
            return (404, vec![], b"not found".to_vec());
        }
        if auth != Some("Bearer good-token") {
            return (
                401,
                vec![("www-authenticate".into(), challenge.clone())],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#.to_vec(),
            );
        }
        (
            200,
            vec![
                ("content-type".into(), OCI_MANIFEST.into()),
                ("docker-content-digest".into(), d.clone()),
            ],
            body.clone(),
        )
    })
    .await
}

/// Item 15: an upstream names a token realm on another origin (another
/// port of 127.0.0.1, plain http). Before the fix the adapter's token
/// request went there with the remote's Basic credentials; now a realm off
/// the upstream's origin gets nothing unless the remote lists it in
/// `auth_realms`, and then the token dance works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_realms_elsewhere_get_credentials_only_when_configured() {
    let realm = token_service().await;
    let body = manifest("realm");
    let registry = registry_naming(&realm.url(), body.clone()).await;
    let creds = "username = \"alice\"\npassword = \"sekrit-pass\"";
    let gw = Gateway::start(&format!(
        "{}{}",
        docker_remote("victim", &registry.url(), creds),
        docker_remote(
            "trusting",
            &registry.url(),
            &format!("{creds}\nauth_realms = [\"{}\"]", realm.url())
        )
    ))
    .await;

    let g = get_exact(&gw.url("/v2/victim/library/app/manifests/v1"), &[]).await;
    assert_eq!(
        realm.seen(),
        vec![],
        "a realm the upstream chose on another origin got a request"
    );
    assert_eq!(g.status, 502, "{}", String::from_utf8_lossy(g.body()));
    let text = String::from_utf8_lossy(g.body());
    assert!(text.contains("auth_realms"), "{text}");
    assert!(!text.contains("sekrit"), "{text}");

    let g = get_exact(&gw.url("/v2/trusting/library/app/manifests/v1"), &[]).await;
    assert_eq!(g.status, 200, "{}", String::from_utf8_lossy(g.body()));
    assert_eq!(g.body(), body);
    let seen = realm.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].1.as_deref(),
        Some(basic("alice", "sekrit-pass").as_str())
    );
}

/// Item 11: a refused redirect, and a followed one whose target fails,
/// name the target in the 502 (and the log line, the same text) without
/// its userinfo or its query string, which for object stores is a
/// signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_targets_are_shown_without_query_or_userinfo() {
    let up = Upstream::start().await;
    // Port 1 on 127.0.0.1: nothing listens, the connection is refused.
    let signed = "http://bob:hunter2@127.0.0.1:1/bucket/obj?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=s3cr3tsig";
    up.put(
        "/obj",
        Resource {
            status: Some(302),
            headers: vec![("location".into(), signed.into())],
            ..Default::default()
        },
    );
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"strict\"\npackage = \"generic\"\nupstream = \"{0}\"\n\
         [[remote]]\nname = \"loose\"\npackage = \"generic\"\nupstream = \"{0}\"\nfollow_redirects = \"any\"\n",
        up.url()
    ))
    .await;
    for (remote, says) in [("strict", "follow_redirects"), ("loose", "127.0.0.1:1")] {
        let g = get_exact(&gw.url(&format!("/api/v1/remote/{remote}/obj")), &[]).await;
        assert_eq!(g.status, 502, "{remote}");
        let error = g.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(says), "{remote}: {error}");
        assert!(error.contains("/bucket/obj"), "{remote}: {error}");
        for secret in ["s3cr3tsig", "AKIAEXAMPLE", "hunter2", "bob:"] {
            assert!(!error.contains(secret), "{remote}: {secret} in {error}");
        }
    }
}
