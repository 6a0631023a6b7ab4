//! Host-target tests of the cas adapter's decisions.

use super::*;

fn remote(mode: RemoteMode) -> RemoteInfo {
    RemoteInfo::test()
        .with_name("cache")
        .with_package("cas")
        .with_mode(mode)
        .with_upstreams::<&str>([])
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    Request::test(method, path)
        .with_id("req-1")
        .with_headers(headers)
}

fn plan(method: &str, path: &str) -> Decision {
    Cas::plan(remote(RemoteMode::Hosted), request(method, path, &[]))
}

fn status(d: &Decision) -> u16 {
    match d {
        Decision::Reject(r) => r.status,
        Decision::Respond(r) => r.status,
        other => panic!("expected a reject or respond, got {other:?}"),
    }
}

#[test]
fn reads_and_writes_map_to_hosted_keys() {
    let h = "A".repeat(64);
    let lower = "a".repeat(64);
    match plan("GET", &format!("cas/{h}")) {
        Decision::Hosted(HostedOp::Read(r)) => {
            assert_eq!(r.key, format!("cas/{lower}"));
            assert_eq!(r.content_type.as_deref(), Some("application/octet-stream"));
        }
        other => panic!("{other:?}"),
    }
    match plan("PUT", &format!("cas/{h}")) {
        Decision::Hosted(HostedOp::Write(w)) => {
            assert_eq!(w.key, format!("cas/{lower}"));
            assert_eq!(w.expected_digest, Some(format!("sha256:{lower}")));
            assert_eq!(w.inspect_limit, None);
        }
        other => panic!("{other:?}"),
    }
    match plan("PUT", &format!("ac/{lower}")) {
        Decision::Hosted(HostedOp::Write(w)) => {
            assert_eq!(w.key, format!("ac/{lower}"));
            assert_eq!(w.expected_digest, None);
            assert_eq!(w.inspect_limit, Some(AC_INSPECT_LIMIT));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        plan("DELETE", &format!("ac/{lower}")),
        Decision::Hosted(HostedOp::Delete(format!("ac/{lower}")))
    );
}

#[test]
fn ccache_uploads_are_not_inspected() {
    let d = Cas::plan(
        remote(RemoteMode::Hosted),
        request(
            "PUT",
            &format!("ac/{}", "b".repeat(64)),
            &[("User-Agent", "ccache/4.7.5")],
        ),
    );
    match d {
        Decision::Hosted(HostedOp::Write(w)) => assert_eq!(w.inspect_limit, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_empty_blob_always_exists() {
    for m in ["GET", "HEAD"] {
        match plan(m, &format!("cas/{EMPTY_SHA256}")) {
            Decision::Respond(r) => {
                assert_eq!(r.status, 200);
                assert!(r.body.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn bad_paths_methods_and_modes() {
    assert_eq!(status(&plan("GET", "")), 404);
    assert_eq!(status(&plan("GET", "cas/")), 404);
    assert_eq!(status(&plan("GET", "other/x")), 404);
    assert_eq!(
        status(&plan("GET", &format!("cas/{}/x", "a".repeat(64)))),
        404
    );
    assert_eq!(status(&plan("GET", "cas/abc")), 400);
    assert_eq!(status(&plan("PUT", &format!("ac/{}", "g".repeat(64)))), 400);
    assert_eq!(
        status(&plan("POST", &format!("ac/{}", "a".repeat(64)))),
        405
    );
    let d = Cas::plan(
        remote(RemoteMode::PullThrough),
        request("GET", &format!("cas/{}", "a".repeat(64)), &[]),
    );
    assert_eq!(status(&d), 400);
}

#[test]
fn references_skip_the_empty_blob_and_opaque_entries() {
    // ActionResult { stdout_digest = Digest { hash = e3b0… }, stderr_digest = Digest { hash = aa… } }
    let mut ar = Vec::new();
    for (field, hash) in [(6u8, EMPTY_SHA256.to_owned()), (8u8, "a".repeat(64))] {
        let mut d = vec![0x0a, 64];
        d.extend_from_slice(hash.as_bytes());
        ar.push(field << 3 | 2);
        ar.push(d.len() as u8);
        ar.extend(d);
    }
    assert_eq!(
        references("ac/x", &ar),
        vec![format!("cas/{}", "a".repeat(64))]
    );
    assert!(references("ac/x", &[0xcc, 0xac, 1, 0, 1]).is_empty());
    assert!(references("ac/x", b"\xff\xff garbage").is_empty());
}
