//! `cas` remotes whose upstream is another REAPI server, with BuildGrid
//! 0.9.1 (`support/buildgrid.rs`) as that real upstream.

use crate::support::buildgrid::BuildGrid;
use crate::support::grpc::digest;
use crate::support::{KIB, MIB, bytes};
use artgate::grpc::proto::asset::FetchBlobRequest;
use artgate::grpc::proto::reapi::{
    ActionResult, BatchReadBlobsRequest, FindMissingBlobsRequest, GetCapabilitiesRequest,
    OutputFile,
};
use tonic::Code;

/// The harness itself: BuildGrid answers for its instance, stores what
/// `BatchUpdateBlobs` and a chunked ByteStream `Write` send and serves it
/// back (whole, ranged, batched), keeps action results, says NOT_FOUND for
/// what it lacks and UNIMPLEMENTED for the Remote Asset API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildgrid_harness_serves_cas() {
    let bg = BuildGrid::start("main").await;
    assert_eq!(bg.url(), format!("grpc://127.0.0.1:{}", bg.addr().port()));
    assert_eq!(bg.instance(), "main");
    let g = bg.grpc();

    let caps = g
        .capabilities()
        .get_capabilities(g.req(GetCapabilitiesRequest {
            instance_name: "main".into(),
        }))
        .await
        .unwrap_or_else(|e| panic!("GetCapabilities: {e:?}\n{}", bg.log()))
        .into_inner();
    let cache = caps.cache_capabilities.expect("cache capabilities");
    assert_eq!(cache.digest_functions, vec![1], "SHA256 only");
    assert!(
        cache
            .action_cache_update_capabilities
            .is_some_and(|c| c.update_enabled),
        "action cache updates allowed"
    );
    assert!(
        !caps.execution_capabilities.is_some_and(|e| e.exec_enabled),
        "no execution"
    );

    // A small blob by BatchUpdateBlobs, a big one by a chunked Write.
    let small = bytes(10 * KIB, 1);
    let big = bytes(3 * MIB + 17, 2);
    let absent = bytes(100, 3);
    assert_eq!(g.upload(&small).await, 0, "{}", bg.log());
    let committed = g
        .write(&big, 64 * KIB)
        .await
        .unwrap_or_else(|e| panic!("Write: {e:?}\n{}", bg.log()));
    assert_eq!(committed, big.len() as i64);

    let missing = g
        .cas()
        .find_missing_blobs(g.req(FindMissingBlobsRequest {
            instance_name: "main".into(),
            blob_digests: vec![digest(&small), digest(&absent), digest(&big)],
            digest_function: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .missing_blob_digests;
    assert_eq!(missing, vec![digest(&absent)]);

    assert!(g.read(&digest(&small), 0, 0).await.unwrap() == small);
    assert!(g.read(&digest(&big), 0, 0).await.unwrap() == big);
    let part = g.read(&digest(&big), MIB as i64, 1000).await.unwrap();
    assert!(part == big[MIB..MIB + 1000], "a ranged read");
    let e = g.read(&digest(&absent), 0, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    let batch = g
        .cas()
        .batch_read_blobs(g.req(BatchReadBlobsRequest {
            instance_name: "main".into(),
            digests: vec![digest(&small), digest(&absent)],
            acceptable_compressors: vec![],
            digest_function: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .responses;
    assert_eq!(batch.len(), 2);
    let code = |i: usize| batch[i].status.as_ref().map(|s| s.code);
    assert_eq!(code(0), Some(Code::Ok as i32));
    assert!(batch[0].data == small);
    assert_eq!(code(1), Some(Code::NotFound as i32));

    // An action result round trip.
    let action = digest(b"an action");
    let result = ActionResult {
        output_files: vec![OutputFile {
            path: "out/small".into(),
            digest: Some(digest(&small)),
            is_executable: false,
            ..Default::default()
        }],
        exit_code: 0,
        ..Default::default()
    };
    let get = || {
        let g = g.clone();
        let action = action.clone();
        async move { g.get_result(&action).await }
    };
    assert_eq!(get().await.unwrap_err().code(), Code::NotFound);
    g.put_result(&action, &result)
        .await
        .unwrap_or_else(|e| panic!("UpdateActionResult: {e:?}\n{}", bg.log()));
    let got = get().await.unwrap().into_inner();
    assert_eq!(got.output_files, result.output_files);
    assert_eq!(got.exit_code, 0);

    // Its log names every call it served.
    let calls = bg.requests();
    let count = |m: &str| calls.iter().filter(|c| *c == m).count();
    for (method, n) in [
        ("BatchUpdateBlobs", 1),
        ("Write", 1),
        ("FindMissingBlobs", 1),
        ("Read", 4),
        ("BatchReadBlobs", 1),
        ("UpdateActionResult", 1),
        ("GetActionResult", 2),
    ] {
        assert_eq!(count(method), n, "{method} calls in {calls:?}");
    }
    assert!(count("GetCapabilities") >= 2, "{calls:?}");

    // No Remote Asset API.
    let e = g
        .fetch()
        .fetch_blob(g.req(FetchBlobRequest {
            instance_name: "main".into(),
            uris: vec!["https://example.invalid/x".into()],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
}

/// A pull-through `cas` remote over BuildGrid: concurrent reads of a blob
/// BuildGrid holds make one ByteStream `Read` there and give every client
/// the bytes; action results come through; `FetchBlob` is "not found"
/// (BuildGrid has no Remote Asset API), not an error; with BuildGrid
/// stopped, what was read is still served and the rest is UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_through_remote_over_buildgrid_fetches_each_blob_once() {
    let mut bg = BuildGrid::start("main").await;
    let up = bg.grpc();
    let gw = crate::support::gateway::Gateway::start(&format!(
        "[[remote]]\nname = \"grid\"\npackage = \"cas\"\nupstream = \"{}/main\"\n",
        bg.url()
    ))
    .await;
    let g = crate::support::grpc::Grpc::new(gw.addr, "grid");
    let big = bytes(6 * MIB + 3, 41);
    let small = bytes(10 * KIB, 42);
    up.write(&big, MIB).await.unwrap();
    assert_eq!(up.upload(&small).await, 0);
    let action = digest(b"grid action");
    let result = ActionResult {
        output_files: vec![OutputFile {
            path: "small".into(),
            digest: Some(digest(&small)),
            ..Default::default()
        }],
        ..Default::default()
    };
    up.put_result(&action, &result).await.unwrap();

    let reads_before = count(&bg.requests(), "Read");
    let d = digest(&big);
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (g, d) = (g.clone(), d.clone());
            tokio::spawn(async move { g.read(&d, 0, 0).await })
        })
        .collect();
    for c in clients {
        assert!(c.await.unwrap().unwrap() == big, "a client got other bytes");
    }
    assert_eq!(
        count(&bg.requests(), "Read") - reads_before,
        1,
        "BuildGrid calls: {:?}",
        bg.requests()
    );
    let got = g.get_result(&action).await.unwrap().into_inner();
    assert_eq!(got, result);
    let read = g
        .cas()
        .batch_read_blobs(g.req(BatchReadBlobsRequest {
            instance_name: "grid".into(),
            digests: vec![digest(&small)],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.responses[0].data.as_ref(), &small[..]);
    let fetched = g
        .fetch()
        .fetch_blob(g.req(FetchBlobRequest {
            instance_name: "grid".into(),
            uris: vec!["urn:example:x".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.status.unwrap().code, Code::NotFound as i32);

    bg.stop();
    assert!(g.read(&d, 0, 0).await.unwrap() == big);
    let again = g.get_result(&action).await.unwrap().into_inner();
    assert_eq!(again, result, "kept with its output");
    let e = g.read(&digest(b"never read"), 0, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
}

/// How many of `calls` are `method` (BuildGrid logs bare method names).
fn count(calls: &[String], method: &str) -> usize {
    calls.iter().filter(|c| *c == method).count()
}
