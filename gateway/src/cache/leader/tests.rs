//! The fill leader driven through an [`Engine`](crate::cache::Engine): a
//! real store in a temp dir, a real upstream on 127.0.0.1, no HTTP front
//! and no adapter but where a test names one (see `cache/testkit.rs`).

use crate::cache::Outcome;
use crate::cache::fill::FillState;
use crate::cache::freshness;
use crate::cache::leader::MAX_ADAPTER_RETRIES;
use crate::cache::testkit::{
    GatedBlobs, Reply, TestUpstream, blob_count, config, done, engine, engine_with_blobs,
    hostile_adapter, job, lead, plan, run, settled, start,
};
use crate::store::{Digest, Entry, EntryClass, EntryId, Validators};
use http::{Method, StatusCode};
use std::time::Duration;

/// Mark the stored entry for `key` of remote `r` expired.
async fn expire(e: &crate::cache::Engine, key: &str) {
    let id = EntryId::new("r", key);
    let changed = e
        .store
        .update(&id, |entry: &mut Entry| entry.expires_at_ms = Some(1))
        .await
        .unwrap();
    assert!(changed.is_some(), "{key} is stored");
}

async fn stored(e: &crate::cache::Engine, key: &str) -> Option<Entry> {
    let entry = e.store.entry(&EntryId::new("r", key)).await.unwrap();
    entry.map(|a| (*a).clone())
}

/// A miss is fetched once, verified, stored under its digest, and the next
/// fill of the key is served from the store without the upstream.
#[tokio::test]
async fn a_miss_is_stored_once_and_then_served_from_the_store() {
    let up = TestUpstream::start(Reply::ok(b"hello artifact")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = plan("a.bin", EntryClass::Immutable, Validators::Refetch);

    let (head, body) = done(&run(job(&e, &cfg, p.clone())).await);
    assert_eq!(body, b"hello artifact");
    assert_eq!(head.outcome, Outcome::Miss);
    let entry = stored(&e, "a.bin").await.expect("the entry is stored");
    assert_eq!(entry.blob, Digest::of(b"hello artifact"));
    assert_eq!(entry.upstream_target.as_deref(), Some("/a.bin"));

    let (head, body) = done(&run(job(&e, &cfg, p)).await);
    assert_eq!(body, b"hello artifact");
    assert_eq!(head.outcome, Outcome::Revalidated);
    assert_eq!(up.count(Method::GET), 1, "the second fill used the store");
}

/// Freshness at the edges of an entry's life, with the clock given.
#[test]
fn freshness_follows_the_given_clock() {
    use freshness::NoCache;
    let all = NoCache {
        mutable: true,
        not_found: true,
    };
    let negative = Entry::negative(Digest::EMPTY, 1_000, 500, "/x".into());
    assert!(freshness::serves_fresh(&negative, 1_499, NoCache::NONE));
    assert!(
        !freshness::serves_fresh(&negative, 1_500, NoCache::NONE),
        "expired"
    );
    assert!(
        !freshness::serves_fresh(&negative, 1_000, all),
        "a client's no-cache revalidates a negative entry"
    );
    let mutable_only = NoCache {
        mutable: true,
        not_found: false,
    };
    assert!(
        freshness::serves_fresh(&negative, 1_000, mutable_only),
        "unless the remote keeps 404s for no-cache clients too"
    );
    let immutable = Entry::fetched(EntryClass::Immutable, Validators::Refetch, "/y".into());
    assert!(
        freshness::serves_fresh(&immutable, u64::MAX - 1, all),
        "immutable content never needs revalidation"
    );
}

/// What a request asks, by its headers and the remote's setting.
#[test]
fn no_cache_by_header_and_remote() {
    use freshness::NoCache;
    let cfg = |yes: bool| {
        let text = format!(
            "[[remote]]\nname = \"r\"\npackage = \"generic\"\nupstream = \"http://127.0.0.1:1\"\nno_cache_revalidates_404 = {yes}\n"
        );
        crate::config::parse(&text, std::path::Path::new("/"))
            .unwrap()
            .remotes
            .remove(0)
    };
    let mut h = http::HeaderMap::new();
    assert_eq!(NoCache::of(&h, &cfg(true)), NoCache::NONE);
    h.insert("pragma", "no-cache".parse().unwrap());
    let asked = NoCache::of(&h, &cfg(true));
    assert!(asked.mutable && asked.not_found);
    let asked = NoCache::of(&h, &cfg(false));
    assert!(asked.mutable && !asked.not_found);
}

/// An expired entry with an `ETag` is revalidated with `If-None-Match`; a
/// 304 keeps the stored bytes and moves the expiry forward.
#[tokio::test]
async fn an_expired_entry_is_revalidated_conditionally() {
    let up = TestUpstream::start(Reply::ok(b"v1 bytes").header("etag", "\"v1\"")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = plan("index", EntryClass::Mutable, Validators::Conditional);
    done(&run(job(&e, &cfg, p.clone())).await);
    expire(&e, "index").await;
    up.answer(|_, h| match h.get("if-none-match") {
        Some(v) if v == "\"v1\"" => Reply::status(StatusCode::NOT_MODIFIED, b""),
        _ => Reply::ok(b"unconditional answer"),
    });

    let (head, body) = done(&run(job(&e, &cfg, p)).await);
    assert_eq!(body, b"v1 bytes", "the stored copy, confirmed");
    assert_eq!(head.outcome, Outcome::Revalidated);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].1.get("if-none-match").unwrap(), "\"v1\"");
    let entry = stored(&e, "index").await.unwrap();
    assert!(
        entry.is_fresh(crate::store::now_ms()),
        "the expiry moved on"
    );
}

/// A `HEAD`-compare validator asks with `HEAD` and, when the compared
/// header is unchanged, keeps the stored copy without a `GET`.
#[tokio::test]
async fn a_head_compare_validator_avoids_the_get_when_unchanged() {
    let up = TestUpstream::start(Reply::ok(b"tagged content").header("x-digest", "sha-a")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = plan(
        "tag",
        EntryClass::Mutable,
        Validators::HeadCompare("x-digest".into()),
    );
    done(&run(job(&e, &cfg, p.clone())).await);
    assert_eq!(
        stored(&e, "tag").await.unwrap().compare_value.as_deref(),
        Some("sha-a")
    );
    expire(&e, "tag").await;

    let (_, body) = done(&run(job(&e, &cfg, p.clone())).await);
    assert_eq!(body, b"tagged content");
    assert_eq!(up.count(Method::HEAD), 1);
    assert_eq!(up.count(Method::GET), 1, "no second GET");

    // Changed upstream: the HEAD differs, so the content is fetched again.
    expire(&e, "tag").await;
    up.answer(|_, _| Reply::ok(b"new content").header("x-digest", "sha-b"));
    let (_, body) = done(&run(job(&e, &cfg, p)).await);
    assert_eq!(body, b"new content");
    assert_eq!(up.count(Method::GET), 2);
}

/// When the upstream fails (5xx, refused connection, no answer in time),
/// an expired copy is served stale and marked so.
#[tokio::test]
async fn an_expired_copy_is_served_stale_when_the_upstream_fails() {
    let up = TestUpstream::start(Reply::ok(b"last good copy")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = plan("repo.xml", EntryClass::Mutable, Validators::Refetch);
    done(&run(job(&e, &cfg, p.clone())).await);

    let failures: [(&str, Reply); 2] = [
        (
            "5xx",
            Reply::status(StatusCode::SERVICE_UNAVAILABLE, b"down"),
        ),
        (
            "timeout",
            Reply {
                delay: Duration::from_secs(3),
                ..Reply::ok(b"too late")
            },
        ),
    ];
    for (what, reply) in failures {
        expire(&e, "repo.xml").await;
        up.answer(move |_, _| reply.clone());
        let (head, body) = done(&run(job(&e, &cfg, p.clone())).await);
        assert_eq!(body, b"last good copy", "{what}");
        assert_eq!(head.outcome, Outcome::Stale, "{what}");
        let entry = stored(&e, "repo.xml").await.unwrap();
        assert!(entry.stale_since_ms.is_some(), "{what}: marked stale");
    }

    expire(&e, "repo.xml").await;
    up.stop().await;
    let (head, body) = done(&run(job(&e, &cfg, p)).await);
    assert_eq!(body, b"last good copy", "connection refused");
    assert_eq!(head.outcome, Outcome::Stale, "connection refused");
}

/// Many fills of one key while the first is in progress share one upstream
/// fetch, and every one of them gets the whole body.
#[tokio::test]
async fn concurrent_fills_of_one_key_make_one_fetch() {
    let up = TestUpstream::start(Reply {
        delay: Duration::from_millis(200),
        ..Reply::ok(b"shared body")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = plan("big.iso", EntryClass::Immutable, Validators::Refetch);
    let (first, leader) = start(job(&e, &cfg, p.clone()));
    let mut fills: Vec<_> = (1..10).map(|_| lead(job(&e, &cfg, p.clone()))).collect();
    fills.push(first);
    for fill in &fills {
        let (_, body) = done(&settled(fill).await);
        assert_eq!(body, b"shared body");
    }
    assert_eq!(up.count(Method::GET), 1);
    leader.expect("the first fill leads").await.unwrap();
    assert!(e.fills.is_empty(), "the fill left the table");
}

/// A body cut short of its announced length aborts the fill and stores
/// nothing: no entry, no blob.
#[tokio::test]
async fn a_truncated_body_aborts_and_stores_nothing() {
    let up = TestUpstream::start(Reply {
        cut_after: Some(5),
        ..Reply::ok(b"0123456789abcdef")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = plan("cut.bin", EntryClass::Immutable, Validators::Refetch);
    match run(job(&e, &cfg, p)).await {
        FillState::Aborted(why) => assert!(why.message().contains("upstream"), "{}", why.message()),
        FillState::Failed(f) => panic!("failed instead of aborting: {}", f.message),
        FillState::Done { .. } => panic!("a truncated body was delivered as complete"),
        _ => panic!("the fill did not end"),
    }
    assert!(stored(&e, "cut.bin").await.is_none());
    assert_eq!(blob_count(&e), 0);
}

/// An upstream 404 is stored as a negative entry when the plan asks for it
/// (and answered from the store until it expires), and passed on without
/// a trace otherwise.
#[tokio::test]
async fn upstream_404s_are_cached_only_when_planned() {
    let up = TestUpstream::start(Reply::status(StatusCode::NOT_FOUND, b"no such file")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);

    let plain = plan("gone", EntryClass::Immutable, Validators::Refetch);
    match run(job(&e, &cfg, plain)).await {
        FillState::Failed(f) => assert_eq!(f.status, StatusCode::NOT_FOUND),
        _ => panic!("a 404 is a failure of the fill"),
    }
    assert!(stored(&e, "gone").await.is_none());

    let negative = crate::cache::plan::Plan {
        cache_not_found: true,
        ..plan("missing", EntryClass::Immutable, Validators::Refetch)
    };
    let (head, body) = done(&run(job(&e, &cfg, negative.clone())).await);
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert!(body.is_empty());
    let entry = stored(&e, "missing").await.expect("a negative entry");
    assert_eq!(entry.class, EntryClass::NotFound);
    assert!(entry.expires_at_ms.is_some(), "negative entries expire");
    let before = up.count(Method::GET);
    let (head, _) = done(&run(job(&e, &cfg, negative)).await);
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert_eq!(up.count(Method::GET), before, "answered from the store");
}

/// A reader that asks for a range while the body is still arriving reads
/// what is in the spool at once and waits for the rest. (The upstream
/// sends 15 bytes and pauses: all of them but the held-back last byte are
/// readable during the pause, not only once the next bytes come.)
#[tokio::test]
async fn a_range_is_read_from_a_growing_spool() {
    use http_body_util::BodyExt;
    let body: &'static [u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let up = TestUpstream::start(Reply {
        pause: Some((15, Duration::from_millis(500))),
        ..Reply::ok(body)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let fill = lead(job(
        &e,
        &cfg,
        plan("range.bin", EntryClass::Immutable, Validators::Refetch),
    ));
    let mut reader =
        crate::cache::reader::fill_body(fill.subscribe(), 10, Some(20), Box::new(|_| {}));
    let mut got = Vec::new();
    let first = reader.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(
        matches!(*fill.subscribe().borrow(), FillState::Streaming { .. }),
        "the first bytes came while the upstream was paused"
    );
    let readable = 15 - super::tee::HELD_BACK as usize;
    assert_eq!(&first[..], &body[10..readable], "what the spool held");
    got.extend_from_slice(&first);
    while let Some(frame) = reader.frame().await {
        got.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert_eq!(&got[..], &body[10..20]);
    done(&settled(&fill).await);
}

/// A 429 without a stored copy tells the client why, with the code OCI
/// clients know; with an expired copy, that copy is served stale.
#[tokio::test]
async fn a_rate_limited_fill_serves_the_stored_copy_or_says_why() {
    let up = TestUpstream::start(Reply::status(StatusCode::TOO_MANY_REQUESTS, b"slow down")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = plan("limited", EntryClass::Mutable, Validators::Refetch);
    match run(job(&e, &cfg, p.clone())).await {
        FillState::Failed(f) => {
            assert_eq!(f.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(f.code.as_deref(), Some("TOOMANYREQUESTS"));
        }
        _ => panic!("a 429 without a stored copy fails the fill"),
    }
    assert!(stored(&e, "limited").await.is_none());

    up.answer(|_, _| Reply::ok(b"copy before the limit"));
    done(&run(job(&e, &cfg, p.clone())).await);
    expire(&e, "limited").await;
    up.answer(|_, _| Reply::status(StatusCode::TOO_MANY_REQUESTS, b"slow down"));
    let (head, body) = done(&run(job(&e, &cfg, p)).await);
    assert_eq!(body, b"copy before the limit");
    assert_eq!(head.outcome, Outcome::Stale);
}

/// Answers that are neither a body nor a confirmation fail the fill with
/// 502 and store nothing: a 304 to a request that had no validators, and
/// a status this remote cannot cache.
#[tokio::test]
async fn answers_that_cannot_be_cached_fail_the_fill() {
    let up = TestUpstream::start(Reply::status(StatusCode::NOT_MODIFIED, b"")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = plan("odd", EntryClass::Mutable, Validators::Conditional);
    let cases = [
        (
            StatusCode::NOT_MODIFIED,
            "the upstream answered 304 Not Modified to an unconditional request",
        ),
        (
            StatusCode::FORBIDDEN,
            "the upstream answered 403 Forbidden, which this remote cannot cache",
        ),
    ];
    for (status, message) in cases {
        up.answer(move |_, _| Reply::status(status, b""));
        match run(job(&e, &cfg, p.clone())).await {
            FillState::Failed(f) => {
                assert_eq!(f.status, StatusCode::BAD_GATEWAY, "{status}");
                assert_eq!(f.message, message);
            }
            _ => panic!("{status} is a failure of the fill"),
        }
        assert!(stored(&e, "odd").await.is_none(), "{status}");
    }
}

/// An adapter that answers every upstream response with `retry` gets the
/// request sent again at most [`MAX_ADAPTER_RETRIES`] times; then the fill
/// fails with 502 and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_always_retries_is_stopped() {
    let up = TestUpstream::start(Reply::ok(b"never accepted")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(up.addr);
    cfg.remotes[0].package = "hostile".into();
    cfg.remotes[0].options = vec![("mode".into(), "retry".into())];
    let e = engine(dir.path(), &cfg);
    let mut j = job(
        &e,
        &cfg,
        plan("again.bin", EntryClass::Immutable, Validators::Refetch),
    );
    j.adapter = Some(hostile_adapter().await);
    match run(j).await {
        FillState::Failed(f) => {
            assert_eq!(f.status, StatusCode::BAD_GATEWAY);
            assert_eq!(
                f.message,
                format!(
                    "the adapter retried the upstream request more than {MAX_ADAPTER_RETRIES} times"
                )
            );
        }
        _ => panic!("endless retries are a failure of the fill"),
    }
    assert_eq!(
        up.count(Method::GET),
        1 + MAX_ADAPTER_RETRIES as usize,
        "the first request and three retries"
    );
    assert!(stored(&e, "again.bin").await.is_none());
    assert_eq!(blob_count(&e), 0);
}

/// A body the plan inspects is buffered, shown to the adapter and, kept
/// as it is, stored and published whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspected_body_the_adapter_keeps_is_stored() {
    let up = TestUpstream::start(Reply::ok(b"{\"index\": true}")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = crate::cache::plan::Plan {
        inspect_limit: Some(64),
        ..plan("index.json", EntryClass::Mutable, Validators::Refetch)
    };
    let mut j = job(&e, &cfg, p);
    j.adapter = Some(hostile_adapter().await);
    let (head, body) = done(&run(j).await);
    assert_eq!(body, b"{\"index\": true}");
    assert_eq!(head.outcome, Outcome::Miss);
    assert_eq!(head.size, Some(body.len() as u64));
    let entry = stored(&e, "index.json")
        .await
        .expect("the inspected body is stored");
    assert_eq!(entry.blob, Digest::of(b"{\"index\": true}"));
}

/// A body over the inspection limit, or one to inspect without an adapter
/// to inspect it, fails the fill before anything is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_cannot_be_inspected_fails_the_fill() {
    let up = TestUpstream::start(Reply::ok(b"0123456789abcdef")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    let p = crate::cache::plan::Plan {
        inspect_limit: Some(8),
        ..plan("big.json", EntryClass::Mutable, Validators::Refetch)
    };
    let adapter = hostile_adapter().await;
    let cases = [
        (
            Some(adapter),
            "the upstream body is larger than the adapter's inspection limit of 8 bytes",
        ),
        (None, "a body to inspect needs an adapter to inspect it"),
    ];
    for (adapter, message) in cases {
        let mut j = job(&e, &cfg, p.clone());
        j.adapter = adapter;
        match run(j).await {
            FillState::Failed(f) => {
                assert_eq!(f.status, StatusCode::BAD_GATEWAY);
                assert_eq!(f.message, message);
            }
            _ => panic!("{message}: a failure of the fill"),
        }
        assert!(stored(&e, "big.json").await.is_none(), "{message}");
        assert_eq!(blob_count(&e), 0, "{message}");
    }
}

/// Read a fill's body from the start as a client does: the bytes, and
/// the error it ended with (`None`: a clean end).
async fn read_all(fill: &crate::cache::Fill) -> (Vec<u8>, Option<String>) {
    use http_body_util::BodyExt;
    let mut body = crate::cache::reader::fill_body(fill.subscribe(), 0, None, Box::new(|_| {}));
    let mut got = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => got.extend_from_slice(&f.into_data().unwrap()),
            Err(e) => return (got, Some(e.to_string())),
        }
    }
    (got, None)
}

/// Names of the spool files left in the store's `tmp/`.
fn spools(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("spool-"))
        .collect()
}

/// `n` bytes of a pattern that no chunk boundary hides.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// An engine on a temporary directory whose commits wait at a gate, for
/// `up`; the directory, the configuration, the engine and the gate.
fn gated(
    up: &TestUpstream,
) -> (
    tempfile::TempDir,
    crate::config::Config,
    crate::cache::Engine,
    crate::cache::testkit::GateHandle,
) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let (blobs, gate) = GatedBlobs::open(dir.path());
    let e = engine_with_blobs(dir.path(), &cfg, blobs);
    (dir, cfg, e, gate)
}

/// A verified body is released whole before its commit: with the commit
/// held at the store, the leader's reader and a reader that joins then
/// both read to a clean end; the fill is still in flight, so a second
/// fill of the key joins it instead of fetching again (one upstream
/// `GET`) and nothing half committed is visible; once the commit ends the
/// entry is stored and the fill gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verified_body_is_released_before_the_commit() {
    let body = pattern(700 * 1024);
    let up = TestUpstream::start(Reply {
        body: body.clone().into(),
        ..Reply::ok(b"")
    })
    .await;
    let (dir, cfg, e, gate) = gated(&up);
    let p = crate::cache::plan::Plan {
        expected: Some(Digest::of(&body)),
        ..plan("tail.bin", EntryClass::Immutable, Validators::Refetch)
    };
    let (fill, leader) = start(job(&e, &cfg, p.clone()));
    let leader = leader.expect("the first fill leads");
    let reading = {
        let fill = fill.clone();
        tokio::spawn(async move { read_all(&fill).await })
    };
    gate.reached(1).await;

    // The commit is held: every reader gets the whole body.
    let (got, error) = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .expect("the body is released while the commit is held")
        .unwrap();
    assert_eq!(error, None, "the leader's client ends cleanly");
    assert!(got == body, "the leader's client got the whole body");
    let (head, whole) = done(&fill.subscribe().borrow().clone());
    assert_eq!(head.size, Some(body.len() as u64));
    assert!(whole == body);
    assert!(stored(&e, "tail.bin").await.is_none(), "not yet committed");
    assert!(
        e.fills.in_flight(&EntryId::new("r", "tail.bin")).is_some(),
        "the fill stays in flight during its commit"
    );
    let (joined, second_leader) = start(job(&e, &cfg, p.clone()));
    assert!(second_leader.is_none(), "a fill during the commit joins");
    let (got, error) = tokio::time::timeout(Duration::from_secs(10), read_all(&joined))
        .await
        .expect("a joining client reads while the commit is held");
    assert_eq!(error, None);
    assert!(got == body, "the joining client got the whole body");
    assert_eq!(up.count(Method::GET), 1, "one upstream fetch");

    // The commit ends: stored, and the fill leaves the map.
    gate.pass();
    leader.await.unwrap();
    assert!(e.fills.is_empty(), "the fill left the table");
    let entry = stored(&e, "tail.bin")
        .await
        .expect("stored after the commit");
    assert_eq!(entry.blob, Digest::of(&body));
    assert_eq!(entry.size, body.len() as u64);
    let (head, got) = done(&run(job(&e, &cfg, p)).await);
    assert_eq!(head.outcome, Outcome::Revalidated, "from the store");
    assert!(got == body);
    assert_eq!(up.count(Method::GET), 1);
    assert!(spools(dir.path()).is_empty(), "no spool left");
}

/// A commit that fails after the body was released: the clients keep the
/// verified bytes (also one that was still reading when it failed), the
/// fill stays done rather than aborting, nothing is stored (no entry, no
/// blob, no spool), and the next fill fetches again and stores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_keeps_the_delivered_body_and_stores_nothing() {
    use http_body_util::BodyExt;
    let body = pattern(700 * 1024);
    let up = TestUpstream::start(Reply {
        body: body.clone().into(),
        ..Reply::ok(b"")
    })
    .await;
    let (dir, cfg, e, gate) = gated(&up);
    let p = plan("fails.bin", EntryClass::Immutable, Validators::Refetch);
    let (fill, leader) = start(job(&e, &cfg, p.clone()));
    let leader = leader.expect("the first fill leads");
    gate.reached(1).await;

    // A client has read one chunk when the commit fails.
    let mut slow = crate::cache::reader::fill_body(fill.subscribe(), 0, None, Box::new(|_| {}));
    let first = tokio::time::timeout(Duration::from_secs(10), slow.frame())
        .await
        .expect("the body is released while the commit is held");
    let mut got = first.unwrap().unwrap().into_data().unwrap().to_vec();
    assert!(got.len() < body.len(), "the body takes more than one read");
    gate.fail();
    leader.await.unwrap();
    assert!(
        matches!(*fill.subscribe().borrow(), FillState::Done { .. }),
        "a failed commit does not abort the delivered body"
    );
    while let Some(frame) = slow.frame().await {
        got.extend_from_slice(&frame.expect("a clean read").into_data().unwrap());
    }
    assert!(got == body, "the reader got the whole verified body");
    assert!(e.fills.is_empty(), "the fill left the table");
    assert!(stored(&e, "fails.bin").await.is_none(), "nothing stored");
    assert_eq!(blob_count(&e), 0);
    assert!(spools(dir.path()).is_empty(), "the spool is deleted");

    // The next fill fetches again, and this time stores it.
    gate.pass();
    let (head, again) = done(&run(job(&e, &cfg, p)).await);
    assert_eq!(head.outcome, Outcome::Miss);
    assert!(again == body);
    assert_eq!(up.count(Method::GET), 2, "fetched again");
    assert!(stored(&e, "fails.bin").await.is_some());
}

/// A body that fails its digest is never released whole: a reader gets
/// at most all but its last byte and then an error (its connection is
/// cut), the fill aborts, and the commit is never started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_failing_its_digest_is_never_released_whole() {
    let body: &'static [u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let up = TestUpstream::start(Reply {
        pause: Some((16, Duration::from_millis(100))),
        ..Reply::ok(body)
    })
    .await;
    let (dir, cfg, e, gate) = gated(&up);
    let p = crate::cache::plan::Plan {
        expected: Some(Digest::of(b"other content")),
        ..plan("bad.bin", EntryClass::Immutable, Validators::Refetch)
    };
    let (fill, leader) = start(job(&e, &cfg, p));
    let (got, error) = read_all(&fill).await;
    let error = error.expect("the body is cut, never ended cleanly");
    assert!(error.contains("digest"), "{error}");
    assert!(got.len() < body.len(), "{} bytes released", got.len());
    leader.expect("the first fill leads").await.unwrap();
    assert!(matches!(*fill.subscribe().borrow(), FillState::Aborted(_)));
    assert_eq!(gate.count(), 0, "the commit never started");
    assert!(stored(&e, "bad.bin").await.is_none());
    assert_eq!(blob_count(&e), 0);
    assert!(spools(dir.path()).is_empty(), "the spool is deleted");
}

/// A plan may name a sha512 or a sha1 digest (what npm and Maven publish)
/// instead of the store's sha256: a body that has it is stored, one that
/// does not is never released whole and leaves nothing behind, as a
/// sha256 mismatch does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_digests_are_checked_as_the_body_streams() {
    use crate::cache::checksum::{Algorithm, Checksum};
    let body: &'static [u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let up = TestUpstream::start(Reply {
        pause: Some((16, Duration::from_millis(50))),
        ..Reply::ok(body)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(up.addr);
    let e = engine(dir.path(), &cfg);
    for algorithm in [Algorithm::Sha512, Algorithm::Sha1] {
        let good = format!("good-{}", algorithm.name());
        let p = crate::cache::plan::Plan {
            checksum: Some(Checksum::of(algorithm, body)),
            ..plan(&good, EntryClass::Immutable, Validators::Refetch)
        };
        let (_, got) = done(&run(job(&e, &cfg, p)).await);
        assert_eq!(got, body);
        assert!(stored(&e, &good).await.is_some(), "{good} stored");

        let bad = format!("bad-{}", algorithm.name());
        let p = crate::cache::plan::Plan {
            checksum: Some(Checksum::of(algorithm, b"other content")),
            ..plan(&bad, EntryClass::Immutable, Validators::Refetch)
        };
        let (fill, leader) = start(job(&e, &cfg, p));
        let (got, error) = read_all(&fill).await;
        let error = error.expect("the body is cut, never ended cleanly");
        assert!(error.contains(algorithm.name()), "{error}");
        assert!(got.len() < body.len(), "{} bytes released", got.len());
        leader.expect("the first fill leads").await.unwrap();
        assert!(matches!(*fill.subscribe().borrow(), FillState::Aborted(_)));
        assert!(stored(&e, &bad).await.is_none(), "{bad} not stored");
    }
    assert_eq!(blob_count(&e), 1, "one blob: the good body, stored once");
    assert!(spools(dir.path()).is_empty(), "no spool left");
}
