//! The built-in `npm` adapter end to end. With Verdaccio on 127.0.0.1
//! (packages published by the real `npm`) and the real `npm` through the
//! gateway: an install of a scoped package and its unscoped dependency
//! (integrity checked by npm, the lockfile's `resolved` URLs at the
//! gateway), `npm view`, a version published upstream seen after the TTL,
//! a missing package as npm reports it, and an install from the cache with
//! Verdaccio stopped. With the in-process upstream: the scoped name's
//! encoded slash reaching the upstream as sent, a tarball asked for before
//! its packument, a tarball that fails its integrity never stored, and
//! tarball links per gateway name. Hosted: `npm publish`, `npm dist-tag`,
//! `npm deprecate` and `npm unpublish` through a group with the mirror.

use crate::support::clients::{run, run_ok};
use crate::support::gateway::{Gateway, by_source};
use crate::support::kit::check_builtin_cases;
use crate::support::npm::{Verdaccio, npm, project};
use crate::support::upstream::{Resource, Upstream};
use base64::Engine as _;
use sha2::Digest as _;
use std::time::Duration;

fn remote(upstream: &str, ttl: &str) -> String {
    format!(
        "[[remote]]\nname = \"npm\"\npackage = \"npm\"\nupstream = {upstream:?}\nmutable_ttl = \"{ttl}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_installs_through_the_builtin_and_without_the_upstream() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut verdaccio = Verdaccio::start(w).await;
    verdaccio.publish(w, "plain-dep", "1.0.0", &[]).await;
    verdaccio
        .publish(w, "@acme/left-pad", "1.0.0", &[("plain-dep", "^1.0.0")])
        .await;
    let gw = Gateway::start(&remote(&verdaccio.url, "1s")).await;
    let registry = gw.url("/api/v1/remote/npm/");

    // A fresh project installs through the gateway; npm checks each
    // tarball against the packument's integrity.
    let project = project(&w.join("app"), &format!("registry={registry}\n"));
    run_ok(npm(
        &project,
        &w.join("cache1"),
        &["install", "@acme/left-pad@1.0.0"],
    ))
    .await;
    for (m, text) in [
        ("@acme/left-pad", "@acme/left-pad@1.0.0"),
        ("plain-dep", "plain-dep@1.0.0"),
    ] {
        let js = std::fs::read_to_string(project.join("node_modules").join(m).join("index.js"))
            .unwrap_or_else(|e| panic!("{m} not installed: {e}"));
        assert!(js.contains(text), "{js}");
    }
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("package-lock.json")).unwrap()).unwrap();
    for m in ["node_modules/@acme/left-pad", "node_modules/plain-dep"] {
        let resolved = lock["packages"][m]["resolved"].as_str().unwrap_or_default();
        assert!(
            resolved.starts_with(&registry),
            "{m} resolved at {resolved}, not the gateway"
        );
        assert!(
            lock["packages"][m]["integrity"]
                .as_str()
                .unwrap()
                .starts_with("sha512-")
        );
    }

    // The full packument (npm view asks for it): every link at the gateway,
    // Verdaccio's URL nowhere; the tarball verified and stored.
    let view = run_ok(npm(
        &project,
        &w.join("cache1"),
        &["view", "@acme/left-pad", "dist.tarball"],
    ))
    .await;
    assert!(
        view.trim()
            .starts_with(&format!("{registry}@acme/left-pad/-/left-pad-1.0.0.tgz")),
        "{view}"
    );
    gw.fills_settled().await;
    let full = gw.get_remote("npm", "@acme%2fleft-pad", &[]).await;
    assert_eq!(full.status, 200);
    let text = String::from_utf8_lossy(full.body()).into_owned();
    assert!(!text.contains(&verdaccio.url), "{text}");
    let tgz = gw
        .get_remote("npm", "@acme/left-pad/-/left-pad-1.0.0.tgz", &[])
        .await;
    assert_eq!(tgz.status, 200);
    assert_eq!(tgz.source(), "cache", "verified and stored");

    // A version published upstream is seen once the TTL (1 s) has passed.
    verdaccio
        .publish(w, "@acme/left-pad", "1.1.0", &[("plain-dep", "^1.0.0")])
        .await;
    crate::support::eventually(
        "1.1.0 seen through the gateway",
        Duration::from_secs(20),
        || {
            let (project, cache) = (project.clone(), w.join("cache1"));
            async move {
                let out = run(npm(
                    &project,
                    &cache,
                    &["view", "@acme/left-pad", "version", "--prefer-online"],
                ))
                .await;
                (out.ok && out.output.trim() == "1.1.0").then_some(())
            }
        },
    )
    .await;

    // A package the registry does not have: npm reports the 404.
    let missing = run(npm(
        &project,
        &w.join("cache1"),
        &["install", "no-such-package"],
    ))
    .await;
    assert!(!missing.ok, "{}", missing.output);
    assert!(
        missing.output.contains("404") && missing.output.contains("no-such-package"),
        "{}",
        missing.output
    );

    // With Verdaccio gone, a fresh project and a fresh npm cache still
    // install from the gateway's store.
    verdaccio.stop();
    let offline =
        crate::support::npm::project(&w.join("offline"), &format!("registry={registry}\n"));
    run_ok(npm(
        &offline,
        &w.join("cache2"),
        &["install", "@acme/left-pad@1.0.0"],
    ))
    .await;
    assert!(offline.join("node_modules/plain-dep/index.js").is_file());
}

/// A group over a hosted and a pull-through npm remote, with the real
/// npm: `npm publish` of a scoped package to the hosted remote (its
/// tarball taken out of the request by the core and checked against its
/// integrity), a second publish of the version refused with 409, an
/// install through the group of the private package and its public
/// dependency, `npm dist-tag`, `npm deprecate` and `npm unpublish` of one
/// version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_publishes_to_hosted_and_installs_through_the_group() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let verdaccio = Verdaccio::start(w).await;
    verdaccio.publish(w, "plain-dep", "1.0.0", &[]).await;
    let token = "npm-publisher-token-0123456789";
    let gw = Gateway::start(&format!(
        "{}[[remote]]\nname = \"own\"\npackage = \"npm\"\nhosted = true\n\
         [[remote]]\nname = \"group\"\npackage = \"virtual\"\nmembers = [\"own\", \"npm\"]\nwrite_to = \"own\"\n\
         [[token]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nscopes = {{ \"*\" = [\"read\", \"write\", \"delete\"] }}\n",
        remote(&verdaccio.url, "10m"),
        crate::support::sha256_hex(token.as_bytes()),
    ))
    .await;
    let registry = gw.url("/api/v1/remote/group/");
    let npmrc = format!(
        "registry={registry}\n{}:_authToken={token}\n",
        registry.trim_start_matches("http:")
    );

    // Publish a private package through the group (it writes to `own`).
    let pkg = w.join("private");
    std::fs::create_dir_all(&pkg).unwrap();
    let publish = |version: &str| {
        std::fs::write(
            pkg.join("package.json"),
            format!(
                r#"{{"name":"@acme/private","version":"{version}","main":"index.js","license":"MIT","dependencies":{{"plain-dep":"^1.0.0"}}}}"#
            ),
        )
        .unwrap();
        std::fs::write(
            pkg.join("index.js"),
            format!("module.exports = \"@acme/private@{version}\";\n"),
        )
        .unwrap();
        std::fs::write(pkg.join(".npmrc"), &npmrc).unwrap();
        npm(&pkg, &w.join("cache-pub"), &["publish"])
    };
    run_ok(publish("1.0.0")).await;
    // Publishing the version again is refused.
    let again = run(publish("1.0.0")).await;
    assert!(!again.ok, "{}", again.output);
    // npm 11 refuses after reading the packument ("You cannot publish
    // over the previously published versions"); npm 9 sends the publish
    // and reports the 409 ("Cannot publish ... over existing version").
    let said = again.output.to_lowercase();
    assert!(
        said.contains("cannot publish") || said.contains("409"),
        "{}",
        again.output
    );

    // The stored tarball is what npm packed: its sha512 is the integrity
    // the packument lists.
    let doc = gw.get_remote("group", "@acme%2fprivate", &[]).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.h("x-artifact-member"), "own");
    let doc = doc.json();
    let dist = &doc["versions"]["1.0.0"]["dist"];
    let tarball = dist["tarball"].as_str().unwrap();
    assert!(
        tarball.starts_with(&gw.url("/api/v1/remote/own/@acme/private/-/")),
        "{tarball}"
    );
    let bytes = reqwest::get(tarball).await.unwrap().bytes().await.unwrap();
    assert_eq!(dist["integrity"], integrity(&bytes));
    // The registry refuses it too (a client that does not check first).
    let body = serde_json::json!({
        "name": "@acme/private",
        "versions": {"1.0.0": {"name": "@acme/private", "version": "1.0.0",
            "dist": {"integrity": integrity(&bytes)}}},
        "_attachments": {"acme-private-1.0.0.tgz": {
            "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "length": bytes.len()}},
    });
    let r = reqwest::Client::new()
        .put(gw.url("/api/v1/remote/group/@acme%2fprivate"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());

    // A fresh project installs the private package and, from upstream,
    // its public dependency, through the one registry URL.
    let app = project(&w.join("app"), &npmrc);
    run_ok(npm(
        &app,
        &w.join("cache-app"),
        &["install", "@acme/private"],
    ))
    .await;
    let js = std::fs::read_to_string(app.join("node_modules/@acme/private/index.js")).unwrap();
    assert!(js.contains("@acme/private@1.0.0"), "{js}");
    assert!(app.join("node_modules/plain-dep/index.js").is_file());

    // dist-tags, then a second version published and unpublished.
    run_ok(npm(
        &app,
        &w.join("cache-app"),
        &["dist-tag", "add", "@acme/private@1.0.0", "stable"],
    ))
    .await;
    let tags = run_ok(npm(
        &app,
        &w.join("cache-app"),
        &["dist-tag", "ls", "@acme/private"],
    ))
    .await;
    assert!(tags.contains("stable: 1.0.0"), "{tags}");
    run_ok(npm(
        &pkg,
        &w.join("cache-pub"),
        &["deprecate", "@acme/private@1.0.0", "use 1.1"],
    ))
    .await;
    let why = run_ok(npm(
        &app,
        &w.join("cache-app"),
        &[
            "view",
            "@acme/private@1.0.0",
            "deprecated",
            "--prefer-online",
        ],
    ))
    .await;
    assert_eq!(why.trim(), "use 1.1");
    run_ok(publish("1.1.0")).await;
    let versions = || {
        npm(
            &app,
            &w.join("cache-app"),
            &[
                "view",
                "@acme/private",
                "versions",
                "--json",
                "--prefer-online",
            ],
        )
    };
    let listed = run_ok(versions()).await;
    assert!(listed.contains("1.1.0"), "{listed}");
    run_ok(npm(
        &pkg,
        &w.join("cache-pub"),
        &["unpublish", "@acme/private@1.1.0", "--force"],
    ))
    .await;
    let listed = run_ok(versions()).await;
    assert!(
        listed.contains("1.0.0") && !listed.contains("1.1.0"),
        "{listed}"
    );
    let gone = gw
        .get_remote("own", "@acme/private/-/private-1.1.0.tgz", &[])
        .await;
    assert_eq!(gone.status, 404);
}

/// Publishes the core or the adapter refuses say why, with the status
/// npm shows, and leave nothing behind: not JSON, an attachment that is
/// not base64, a tarball that fails its integrity, a body over the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_publishes_are_refused_and_leave_nothing() {
    let gw = Gateway::start(
        "[[remote]]\nname = \"own\"\npackage = \"npm\"\nhosted = true\nmax_size = \"4KiB\"\n",
    )
    .await;
    let data = gw.dir.path().join("data");
    let tgz = b"a tarball".to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let body = |integrity: String, data: String| {
        serde_json::json!({
            "name": "p",
            "versions": {"1.0.0": {"name": "p", "version": "1.0.0", "dist": {"integrity": integrity}}},
            "_attachments": {"p-1.0.0.tgz": {"data": data}},
        })
        .to_string()
    };
    let big = vec![7u8; 8 << 10];
    for (sent, status, text) in [
        ("{\"name\":".to_owned(), 400, "not valid JSON"),
        (
            body(integrity(&tgz), "!!notbase64".into()),
            400,
            "not base64",
        ),
        (
            body(integrity(b"other"), b64(&tgz)),
            400,
            "does not match its dist.integrity",
        ),
        (body(integrity(&big), b64(&big)), 507, "quota"),
    ] {
        let r = reqwest::Client::new()
            .put(gw.url("/api/v1/remote/own/p"))
            .header("content-type", "application/json")
            .body(sent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{text}");
        let said = r.text().await.unwrap();
        assert!(said.contains(text), "{said}");
        assert_eq!(crate::support::spool_files(&data), Vec::<String>::new());
    }
    let r = gw.get_remote("own", "p", &[]).await;
    assert_eq!(r.status, 404);
    // And a good one is stored.
    let r = reqwest::Client::new()
        .put(gw.url("/api/v1/remote/own/p"))
        .body(body(integrity(&tgz), b64(&tgz)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = gw.get_remote("own", "p/-/p-1.0.0.tgz", &[]).await;
    assert_eq!(got.body(), tgz);
}

/// sha512 SRI of `data`.
fn integrity(data: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(data))
    )
}

/// The in-process upstream with `@acme/left-pad`: 1.0.0 whose tarball
/// matches its integrity, 1.0.1 whose tarball does not.
async fn upstream_with_a_bad_tarball() -> Upstream {
    let up = Upstream::start().await;
    let good = b"good tarball bytes".to_vec();
    let bad = b"tampered tarball bytes".to_vec();
    let doc = serde_json::json!({
        "name": "@acme/left-pad",
        "versions": {
            "1.0.0": {"dist": {
                "integrity": integrity(&good),
                "tarball": format!("{}/@acme/left-pad/-/left-pad-1.0.0.tgz", up.url()),
            }},
            "1.0.1": {"dist": {
                "integrity": integrity(b"what was published"),
                "tarball": format!("{}/@acme/left-pad/-/left-pad-1.0.1.tgz", up.url()),
            }},
        },
    });
    // Only the encoded form is served: the gateway must send it as npm did.
    up.put(
        "/@acme%2fleft-pad",
        Resource {
            body: doc.to_string().into(),
            content_type: Some("application/json".into()),
            ..Resource::default()
        },
    );
    up.put_body("/@acme/left-pad/-/left-pad-1.0.0.tgz", good);
    up.put_body("/@acme/left-pad/-/left-pad-1.0.1.tgz", bad);
    up
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarballs_are_verified_and_links_name_the_gateway_as_reached() {
    let up = upstream_with_a_bad_tarball().await;
    let gw = Gateway::start(&remote(&up.url(), "10m")).await;

    // Before any packument: the adapter reads it through the cache.
    let good = gw
        .get_remote("npm", "@acme/left-pad/-/left-pad-1.0.0.tgz", &[])
        .await;
    assert_eq!(good.status, 200);
    assert_eq!(good.body(), b"good tarball bytes");
    gw.fills_settled().await;
    let again = gw
        .get_remote("npm", "@acme/left-pad/-/left-pad-1.0.0.tgz", &[])
        .await;
    assert_eq!(again.source(), "cache");

    // A tarball that fails its integrity is never stored.
    for _ in 0..2 {
        let bad =
            reqwest::get(gw.url("/api/v1/remote/npm/@acme/left-pad/-/left-pad-1.0.1.tgz")).await;
        if let Ok(r) = bad {
            let status = r.status();
            let body = r.bytes().await;
            assert!(
                status != 200 || body.is_err(),
                "a tampered tarball was served whole"
            );
        }
        gw.fills_settled().await;
    }
    assert_eq!(up.seen("/@acme/left-pad/-/left-pad-1.0.1.tgz").gets, 2);

    // Links name the gateway as each client reached it: two names, two
    // packuments, each remembered apart.
    let port = gw
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    for round in 0..2 {
        for host in ["127.0.0.1", "localhost"] {
            let got = gw
                .get_remote(
                    "npm",
                    "@acme%2fleft-pad",
                    &[("host", &format!("{host}:{port}"))],
                )
                .await;
            assert_eq!(got.status, 200, "round {round}");
            let doc = got.json();
            assert_eq!(
                doc["versions"]["1.0.0"]["dist"]["tarball"],
                format!(
                    "http://{host}:{port}/api/v1/remote/npm/@acme/left-pad/-/left-pad-1.0.0.tgz"
                ),
                "round {round}"
            );
            gw.fills_settled().await;
        }
    }
    assert_eq!(
        up.seen("/@acme%2fleft-pad").gets,
        3,
        "lookup, then one per name"
    );

    // The language registries and the package formats of the same wave
    // are built in.
    let plugins = gw.plugins_json().await;
    let list = plugins["plugins"].as_array().expect("a list");
    for name in ["npm", "cargo", "go", "pypi", "maven", "deb"] {
        let e = by_source(list, name, "built-in").unwrap_or_else(|| panic!("{name}: {plugins}"));
        assert_eq!(e["accepts_every_response"], true, "{name}");
    }
}

/// A herd on one uncached tarball, its packument never read: one
/// upstream fetch of the tarball, every client served the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_on_one_tarball_makes_one_fetch() {
    let up = upstream_with_a_bad_tarball().await;
    up.edit("/@acme/left-pad/-/left-pad-1.0.0.tgz", |r| {
        r.header_delay = Some(Duration::from_millis(300));
    });
    let gw = Gateway::start(&remote(&up.url(), "10m")).await;
    let url = gw.url("/api/v1/remote/npm/@acme/left-pad/-/left-pad-1.0.0.tgz");
    let herd: Vec<_> = (0..40)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let r = reqwest::get(url).await.unwrap();
                (r.status().as_u16(), r.bytes().await.unwrap())
            })
        })
        .collect();
    for h in herd {
        let (status, body) = h.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(&body[..], b"good tarball bytes");
    }
    assert_eq!(up.seen("/@acme/left-pad/-/left-pad-1.0.0.tgz").gets, 1);
    assert_eq!(up.seen("/@acme%2fleft-pad").gets, 1, "one packument read");
}

/// The golden cases in `plugins/npm/cases` against the embedded built-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_adapter_passes_its_golden_cases() {
    check_builtin_cases("npm", "plugins/npm/cases", 3).await;
}
