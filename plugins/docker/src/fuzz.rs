//! Fuzz entry points for the docker adapter's parsers (see
//! `artgate_sdk::fuzz`): the cargo-fuzz targets in `fuzz/` call these, and
//! the tests below replay the committed corpora through them on stable.

use crate::route::{self, Reference, Target};
use crate::{accept, auth, inspect_manifest, on_response_with, plan_with, rewrite_link};
use artgate_sdk::fuzz::{check_decision, gateway_clean, header_ok, text};
use artgate_sdk::prelude::*;
use artgate_sdk::testing::FakeHost;

/// A host whose key-value store starts empty and whose `http-send` answers
/// `200` with `body` (the auth service's token response).
fn fuzz_host(body: &[u8]) -> FakeHost {
    let host = FakeHost::new();
    host.answer_http(Ok(IncomingResponse::test(
        200,
        &[("content-type", "application/json")],
        body,
    )));
    host
}

/// A header value as the gateway passes it on: no control characters but
/// tab (hyper refuses the others).
fn header_value(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect()
}

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("hub")
        .with_package("docker")
        .with_upstreams(["https://registry.example"])
        .with_check_mutable_updates(true)
}

fn request(path: &str, headers: Vec<Header>) -> Request {
    let mut r = Request::test("GET", path)
        .with_id("fuzz")
        .with_kind(RouteKind::Registry);
    r.headers = headers;
    r
}

/// `docker_auth`: the first line is a `WWW-Authenticate` value, the rest
/// the auth service's token response. Challenges are parsed into
/// lower-case schemes and names; a token URL is the realm plus encoded
/// query parameters only; a token is printable ASCII; the whole 401 →
/// token → retry dance ends in a retry whose `Authorization` can be sent,
/// or in a refusal.
pub fn auth(data: &[u8]) {
    let s = text(data);
    let (line, body) = s.split_once('\n').unwrap_or((&s, ""));
    let value = header_value(line);
    for c in auth::parse_challenges(&value) {
        assert!(!c.scheme.is_empty());
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        for (name, _) in &c.params {
            assert!(!name.is_empty());
            assert_eq!(name, &name.to_ascii_lowercase());
        }
    }
    if let Some(c) = auth::bearer_challenge([value.as_str()]) {
        let realm = c.param("realm").unwrap_or_default().to_owned();
        assert!(!realm.is_empty());
        if let Some(url) = auth::token_url(&c, "repository:library/x:pull") {
            let query = url.strip_prefix(realm.as_str()).expect("the realm first");
            assert!(
                query
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"?&=%-._~".contains(&b)),
                "{query:?}"
            );
            let origin = auth::origin(&url);
            assert!(url.starts_with(origin));
        }
    }
    if let Some(t) = auth::parse_token(body.as_bytes()) {
        assert!(!t.token.is_empty() && t.token.bytes().all(|b| b.is_ascii_graphic()));
        let ttl = auth::cache_ttl(t.expires_in);
        assert!(ttl >= 1 && ttl <= t.expires_in.max(1));
    }
    let host = fuzz_host(body.as_bytes());
    let req = request("library/alpine/manifests/latest", vec![]);
    let sent = UpstreamRequest {
        method: "GET".into(),
        target: "/v2/library/alpine/manifests/latest".into(),
        headers: vec![],
        forward_body: false,
        use_credentials: true,
    };
    let resp = UpstreamResponse {
        status: 401,
        headers: vec![Header::new("www-authenticate", value.clone())],
    };
    for attempt in 0..3 {
        match on_response_with(&host, &remote(), &req, &sent, &resp, attempt) {
            AfterHeaders::Retry(up) => {
                assert!(up.headers.iter().all(header_ok), "{:?}", up.headers);
                let auths: Vec<_> = up
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("authorization"))
                    .collect();
                assert_eq!(auths.len(), 1);
                assert!(auths[0].value.starts_with("Bearer "));
                assert!(!up.use_credentials);
            }
            AfterHeaders::Fail(r) => assert!((400..600).contains(&r.status)),
            other => panic!("a 401 gives a retry or a refusal, not {other:?}"),
        }
    }
}

/// `docker_accept`: every line is an `Accept` value. The canonical set is
/// sorted, unique, lower-case media types (idempotent); each of its types
/// is accepted; the cache key part is bounded; planning a manifest with
/// these headers gives a decision that can be sent.
pub fn accept(data: &[u8]) {
    let s = text(data);
    let values: Vec<String> = s.lines().map(header_value).collect();
    let canon = accept::canonical(values.iter().map(String::as_str));
    let mut sorted = canon.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, canon);
    for t in &canon {
        assert!(t.contains('/') && !t.contains([',', ';']));
        assert_eq!(t, &t.to_ascii_lowercase());
        assert_eq!(t.trim(), t);
        assert!(accept::accepts(&canon, t), "{t:?} in {canon:?}");
    }
    let joined = canon.join(",");
    assert_eq!(accept::canonical([joined.as_str()]), canon, "idempotent");
    assert!(accept::key_part(&canon).len() <= 1024);
    let headers: Vec<Header> = values
        .iter()
        .map(|v| Header::new("accept", v.clone()))
        .collect();
    let host = fuzz_host(&[]);
    for path in [
        "library/alpine/manifests/3.20",
        "library/alpine/manifests/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ] {
        let d = plan_with(&host, &remote(), &request(path, headers.clone()));
        check_decision(&d, true);
    }
}

/// `docker_manifest`: the input is a manifest body whose upstream sent no
/// manifest media type; its first line is also a tag-list `Link` value. A
/// media type taken from the body is a known manifest type; a rewritten
/// link points at the gateway's own tag list.
pub fn manifest(data: &[u8]) {
    for ct in ["", "application/octet-stream", "text/plain; charset=utf-8"] {
        let resp = UpstreamResponse {
            status: 200,
            headers: vec![Header::new("content-type", ct)],
        };
        let v = inspect_manifest(&resp, data);
        if let Some(m) = v.update.and_then(|u| u.content_type) {
            assert!(accept::is_manifest_type(&m), "{m:?}");
        }
    }
    let s = text(data);
    let line = header_value(s.lines().next().unwrap_or(""));
    if let Some(l) = rewrite_link(&line, "hub", "library/alpine") {
        assert!(l.starts_with("</v2/hub/library/alpine/tags/list"), "{l:?}");
        assert!(header_ok(&Header::new("link", l)));
    }
}

/// `docker_route`: the input is a registry path below the remote. What
/// parses has a valid name and reference; the plan for it, when the path
/// is one the gateway lets through, stays inside the upstream's `/v2/`.
pub fn route(data: &[u8]) {
    let s = text(data);
    let path = s.trim_end_matches('\n');
    if let Ok(t) = route::parse(path) {
        assert!(route::check_name(t.name()).is_ok());
        assert!(t.name().split('/').all(route::valid_component));
        if let Target::Manifest {
            reference: Reference::Tag(tag),
            ..
        } = &t
        {
            assert!(route::valid_tag(tag));
        }
    }
    let host = fuzz_host(&[]);
    let d = plan_with(&host, &remote(), &request(path, vec![]));
    check_decision(&d, gateway_clean(path));
    if let Decision::Forward(f) = &d {
        assert!(
            f.upstream.target.starts_with("/v2/"),
            "{:?}",
            f.upstream.target
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artgate_sdk::fuzz::replay;
    use proptest::prelude::*;

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    #[test]
    fn corpora_replay() {
        replay(DIR, "docker_auth", 5, auth);
        replay(DIR, "docker_accept", 5, accept);
        replay(DIR, "docker_manifest", 5, manifest);
        replay(DIR, "docker_route", 5, route);
    }

    /// Pieces of `WWW-Authenticate` values.
    fn challenge() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "Bearer ",
            "Basic ",
            "realm=",
            "\"https://auth.example/token\"",
            "service=",
            "\"registry\"",
            "scope=",
            "\"repository:a:pull push\"",
            ",",
            ", ",
            " ",
            "=",
            "==",
            "\"",
            "\\",
            "\\\"",
            "é",
            "abc",
            "error=\"insufficient_scope\"",
            "realm=http://x/t",
            "\t",
            "realm=\"ftp://x\"",
        ]);
        prop::collection::vec(atoms, 0..14).prop_map(|v| v.concat())
    }

    fn token_body() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-zA-Z0-9._ \n-]{0,20}"
                .prop_map(|t| format!("{{\"token\":{t:?},\"expires_in\":300}}")),
            "[a-z]{0,8}".prop_map(|t| format!("{{\"access_token\":\"{t}\"}}")),
            (0u64..100, "[ -~]{0,12}")
                .prop_map(|(e, t)| format!("{{\"token\":{t:?},\"expires_in\":{e}}}")),
            ".{0,40}",
        ]
    }

    fn accept_value() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "*/*",
            "application/*",
            ",",
            ";",
            "q=0",
            "q=0.5",
            "Q=0",
            " ",
            "é",
            "aé",
            "q=",
            "text/plain",
            "/",
            "\t",
            "q=nan",
            "q=-1",
        ]);
        prop::collection::vec(atoms, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn auth_never_panics(c in challenge(), body in token_body()) {
            auth(format!("{c}\n{body}").as_bytes());
        }

        #[test]
        fn auth_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            auth(&b);
        }

        #[test]
        fn accept_never_panics(v in prop::collection::vec(accept_value(), 0..4)) {
            accept(v.join("\n").as_bytes());
        }

        #[test]
        fn manifest_never_panics(media in prop_oneof![Just("application/vnd.oci.image.manifest.v1+json".to_owned()), ".{0,30}"], junk in ".{0,20}") {
            let body = format!("{{\"schemaVersion\":2,\"mediaType\":{media:?}{junk}");
            manifest(body.as_bytes());
            manifest(format!("<{junk}>; rel=\"next\"").as_bytes());
        }

        #[test]
        fn route_never_panics(p in "([a-z0-9]{1,3}|[._-]{1,2}|/|manifests|blobs|tags|list|sha256:[0-9a-f]{0,64}|é|%2e|\\.\\.|[A-Z])*") {
            route(p.as_bytes());
        }

        #[test]
        fn valid_names_and_tags_plan(name in "[a-z0-9]{1,5}((\\.|_|__|-+)[a-z0-9]{1,5}){0,3}(/[a-z0-9]{1,5}){0,3}", tag in "[A-Za-z0-9_][A-Za-z0-9._-]{0,20}") {
            let path = format!("{name}/manifests/{tag}");
            prop_assert!(route::parse(&path).is_ok(), "{}", path);
            route(path.as_bytes());
        }
    }
}
