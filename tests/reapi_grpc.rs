//! The REAPI gRPC front, call by call, with the gateway's own generated
//! clients (`support/grpc.rs`): capabilities and access, the CAS and
//! ByteStream sharing the store with the HTTP layout, bad bytes refused
//! with nothing stored, quotas, action-result and asset completeness,
//! `GetTree` paging. Real clients (BuildStream, Bazel) are in `reapi.rs`
//! and `reapi_bazel.rs`.

use crate::support::gateway::Gateway;
use crate::support::grpc::{Grpc, digest};
use crate::support::http::client;
use crate::support::{bytes, metric, sha256_hex, spool_files};
use artgate::grpc::proto::asset::{
    FetchBlobRequest, FetchDirectoryRequest, PushBlobRequest, PushDirectoryRequest, Qualifier,
};
use artgate::grpc::proto::bytestream::WriteRequest;
use artgate::grpc::proto::reapi::{
    ActionResult, BatchReadBlobsRequest, BatchUpdateBlobsRequest, Directory, DirectoryNode,
    ExecuteRequest, FileNode, FindMissingBlobsRequest, GetCapabilitiesRequest, GetTreeRequest,
    OutputFile, batch_update_blobs_request,
};
use futures_util::StreamExt as _;
use prost::Message as _;
use tonic::Code;

const READER: &str = "reapi-reader-0123456789abcdef";
const WRITER: &str = "reapi-writer-0123456789abcdef";

/// A hosted cas remote `builds` (plus `extra` keys).
fn remote(extra: &str) -> String {
    format!("[[remote]]\nname = \"builds\"\npackage = \"cas\"\nhosted = true\n{extra}\n")
}

fn token(name: &str, secret: &str, scopes: &str) -> String {
    format!(
        "[[token]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nscopes = {{ builds = [{scopes}] }}\n",
        sha256_hex(secret.as_bytes())
    )
}

fn url(gw: &Gateway, key: &str) -> String {
    gw.url(&format!("/api/v1/remote/builds/{key}"))
}

fn missing_req(g: &Grpc, blobs: &[&[u8]]) -> FindMissingBlobsRequest {
    FindMissingBlobsRequest {
        instance_name: g.instance.clone(),
        blob_digests: blobs.iter().map(|b| digest(b)).collect(),
        digest_function: 0,
    }
}

/// Hashes of the blobs of `blobs` the gateway says are missing.
async fn missing(g: &Grpc, blobs: &[&[u8]]) -> Vec<String> {
    g.cas()
        .find_missing_blobs(g.req(missing_req(g, blobs)))
        .await
        .expect("FindMissingBlobs")
        .into_inner()
        .missing_blob_digests
        .into_iter()
        .map(|d| d.hash)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_scopes_and_the_probes_buildstream_sends() {
    let gw = Gateway::start(&format!(
        "{}{}{}",
        remote("anonymous_read = false"),
        token("reader", READER, "\"read\""),
        token("writer", WRITER, "\"read\", \"write\"")
    ))
    .await;
    let g = Grpc::new(gw.addr, "builds");
    let caps = |g: Grpc| async move {
        g.capabilities()
            .get_capabilities(g.req(GetCapabilitiesRequest {
                instance_name: "builds".into(),
            }))
            .await
    };
    let e = caps(g.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("needs a token"), "{}", e.message());
    let e = caps(g.with_token("not-a-token")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    let read = caps(g.with_token(READER)).await.unwrap().into_inner();
    let cache = read.cache_capabilities.unwrap();
    assert_eq!(cache.digest_functions, vec![1], "SHA256 only");
    assert_eq!(cache.max_batch_total_size_bytes, 4 * 1024 * 1024);
    assert!(
        !cache
            .action_cache_update_capabilities
            .unwrap()
            .update_enabled
    );
    let (low, high) = (
        read.low_api_version.unwrap(),
        read.high_api_version.unwrap(),
    );
    assert_eq!((low.major, low.minor), (2, 0));
    assert!(high.major == 2 && high.minor >= 0, "{high:?}");
    assert!(!read.execution_capabilities.unwrap().exec_enabled);
    let write = caps(g.with_token(WRITER)).await.unwrap().into_inner();
    assert!(
        write
            .cache_capabilities
            .unwrap()
            .action_cache_update_capabilities
            .unwrap()
            .update_enabled
    );

    // A reader may look but not upload.
    let reader = g.with_token(READER);
    assert_eq!(missing(&reader, &[b"x"]).await.len(), 1);
    let e = reader
        .cas()
        .batch_update_blobs(reader.req(BatchUpdateBlobsRequest {
            instance_name: "builds".into(),
            requests: vec![batch_update_blobs_request::Request {
                digest: Some(digest(b"x")),
                data: bytes::Bytes::from_static(b"x"),
                compressor: 0,
            }],
            digest_function: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("write"), "{}", e.message());

    // BuildStream's start-up probes: empty FetchBlob / PushBlob must be
    // INVALID_ARGUMENT whatever the token (else it disables the remote).
    for g in [g.clone(), reader.clone()] {
        let e = g
            .fetch()
            .fetch_blob(g.req(FetchBlobRequest {
                instance_name: "builds".into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        let e = g
            .push()
            .push_blob(g.req(PushBlobRequest {
                instance_name: "builds".into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    // A real push with the reader's token is refused.
    let e = reader
        .push()
        .push_blob(reader.req(PushBlobRequest {
            instance_name: "builds".into(),
            uris: vec!["urn:example:a".into()],
            blob_digest: Some(digest(b"x")),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Other instances: unknown, or not a cas remote.
    let other = Grpc::new(gw.addr, "nope").with_token(WRITER);
    let e = other
        .cas()
        .find_missing_blobs(other.req(missing_req(&other, &[b"x"])))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("\"nope\""), "{}", e.message());

    // Execution is not offered.
    let e = g
        .with_token(WRITER)
        .execution()
        .execute(g.with_token(WRITER).req(ExecuteRequest {
            instance_name: "builds".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    assert!(e.message().contains("does not execute"), "{}", e.message());

    // Calls are counted per remote like HTTP requests.
    let m = gw.metrics().await;
    assert!(
        metric(
            &m,
            "artgate_requests_total",
            &["remote=\"builds\"", "method=\"POST\"", "outcome=\"error\""]
        ) >= 4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_shared_with_the_http_layout_and_stream_both_ways() {
    let gw = Gateway::start(&remote("")).await;
    let g = Grpc::new(gw.addr, "builds");
    let c = client();

    // gRPC in, HTTP out.
    assert_eq!(g.upload(b"alpha").await, 0);
    let r = c
        .get(url(&gw, &format!("cas/{}", sha256_hex(b"alpha"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"alpha");

    // HTTP in, gRPC out.
    let r = c
        .put(url(&gw, &format!("cas/{}", sha256_hex(b"beta"))))
        .body("beta")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        missing(&g, &[b"alpha", b"beta", b"gamma", b""]).await,
        vec![sha256_hex(b"gamma")],
        "the empty blob always exists"
    );
    let read = g
        .cas()
        .batch_read_blobs(g.req(BatchReadBlobsRequest {
            instance_name: "builds".into(),
            digests: vec![digest(b"beta"), digest(b"gamma")],
            acceptable_compressors: vec![],
            digest_function: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .responses;
    assert_eq!(read[0].status.as_ref().unwrap().code, 0);
    assert_eq!(&read[0].data[..], b"beta");
    assert_eq!(read[1].status.as_ref().unwrap().code, Code::NotFound as i32);

    // A 12 MiB blob in 2 MiB writes (as buildbox-casd sends them), read
    // whole, in part, and over HTTP.
    let big = bytes(12 * 1024 * 1024 + 17, 7);
    assert_eq!(
        g.write(&big, 2 * 1024 * 1024).await.unwrap(),
        big.len() as i64
    );
    let d = digest(&big);
    assert_eq!(sha256_hex(&g.read(&d, 0, 0).await.unwrap()), d.hash);
    assert_eq!(g.read(&d, 1000, 5000).await.unwrap(), &big[1000..6000]);
    assert_eq!(
        g.read(&d, big.len() as i64 - 3, 0).await.unwrap(),
        &big[big.len() - 3..]
    );
    let e = g.read(&d, big.len() as i64 + 1, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    let r = c
        .get(url(&gw, &format!("cas/{}", d.hash)))
        .send()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), d.hash);
    // Writing it again is answered at once with its size.
    assert_eq!(
        g.write(&big, 2 * 1024 * 1024).await.unwrap(),
        big.len() as i64
    );
    let e = g.read(&digest(b"gamma"), 0, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(g.read(&digest(b""), 0, 0).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_are_invalid_arguments_and_store_nothing() {
    let gw = Gateway::start(&remote("")).await;
    let g = Grpc::new(gw.addr, "builds");
    let good = bytes(100_000, 1);
    let d = digest(&good);
    // A batch blob whose bytes are not its digest's.
    let r = g
        .cas()
        .batch_update_blobs(g.req(BatchUpdateBlobsRequest {
            instance_name: "builds".into(),
            requests: vec![batch_update_blobs_request::Request {
                digest: Some(d.clone()),
                data: bytes::Bytes::from(bytes(100_000, 2)),
                compressor: 0,
            }],
            digest_function: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let status = r.responses[0].status.clone().unwrap();
    assert_eq!(status.code, Code::InvalidArgument as i32, "{status:?}");
    assert!(status.message.contains("digest"), "{}", status.message);

    let name = format!(
        "builds/uploads/00000000-0000-4000-8000-000000000002/blobs/{}/{}",
        d.hash, d.size_bytes
    );
    let w = |off: usize, data: &[u8], finish: bool, first: bool| WriteRequest {
        resource_name: if first { name.clone() } else { String::new() },
        write_offset: off as i64,
        finish_write: finish,
        data: bytes::Bytes::copy_from_slice(data),
    };
    let cases: Vec<(&str, Vec<WriteRequest>)> = vec![
        (
            "more bytes than the size",
            vec![w(0, &good, false, true), w(good.len(), b"x", true, false)],
        ),
        (
            "a gap",
            vec![
                w(0, &good[..10], false, true),
                w(20, &good[20..], true, false),
            ],
        ),
        ("no finish_write", vec![w(0, &good, false, true)]),
        (
            "fewer bytes than the size",
            vec![w(0, &good[..99_999], true, true)],
        ),
        ("other bytes", vec![w(0, &bytes(100_000, 3), true, true)]),
    ];
    for (what, reqs) in cases {
        let e = g.write_requests(reqs).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(
            e.message().contains("nothing was stored") || e.message().contains("digest"),
            "{what}: {}",
            e.message()
        );
    }
    let e = g
        .write_requests(vec![WriteRequest {
            resource_name: format!("builds/blobs/{}/{}", d.hash, d.size_bytes),
            write_offset: 0,
            finish_write: true,
            data: bytes::Bytes::from(good.clone()),
        }])
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::InvalidArgument,
        "a read name is not an upload name: {e:?}"
    );
    // A batch larger than advertised.
    let e = g
        .cas()
        .batch_update_blobs(
            g.req(BatchUpdateBlobsRequest {
                instance_name: "builds".into(),
                requests: (0..3u64)
                    .map(|i| {
                        let b = bytes(1_500_000, 10 + i);
                        batch_update_blobs_request::Request {
                            digest: Some(digest(&b)),
                            data: bytes::Bytes::from(b),
                            compressor: 0,
                        }
                    })
                    .collect(),
                digest_function: 0,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    assert_eq!(missing(&g, &[&good]).await.len(), 1, "nothing was stored");
    assert!(spool_files(&gw.dir.path().join("data")).is_empty());
    // And the right bytes still go in.
    assert_eq!(g.write(&good, 30_000).await.unwrap(), good.len() as i64);
    assert!(missing(&g, &[&good]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_is_resource_exhausted() {
    let gw = Gateway::start(&remote("max_size = \"1MiB\"")).await;
    let g = Grpc::new(gw.addr, "builds");
    let e = g
        .write(&bytes(2 * 1024 * 1024, 1), 1024 * 1024)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("quota"), "{}", e.message());
    assert_eq!(g.upload(&bytes(600_000, 2)).await, 0);
    assert_eq!(
        g.upload(&bytes(600_000, 3)).await,
        Code::ResourceExhausted as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_result_is_served_only_with_every_output() {
    let gw = Gateway::start(&remote("")).await;
    let g = Grpc::new(gw.addr, "builds");
    let (out, stdout) = (bytes(5000, 1), b"built\n".to_vec());
    let action = digest(b"the action");
    let result = ActionResult {
        output_files: vec![OutputFile {
            path: "bin/tool".into(),
            digest: Some(digest(&out)),
            is_executable: true,
            ..Default::default()
        }],
        stdout_digest: Some(digest(&stdout)),
        exit_code: 0,
        ..Default::default()
    };
    let get = |g: Grpc| {
        let action = action.clone();
        async move { g.get_result(&action).await }
    };
    assert_eq!(get(g.clone()).await.unwrap_err().code(), Code::NotFound);
    g.put_result(&action, &result).await.unwrap();
    let e = get(g.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "outputs missing: {e:?}");
    assert!(e.message().contains("missing"), "{}", e.message());
    assert_eq!(g.upload(&out).await, 0);
    assert_eq!(g.upload(&stdout).await, 0);
    assert_eq!(get(g.clone()).await.unwrap().into_inner(), result);
    // The HTTP layout serves the same entry, under the same rule.
    let c = client();
    let r = c
        .get(url(&gw, &format!("ac/{}", action.hash)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        ActionResult::decode(r.bytes().await.unwrap()).unwrap(),
        result
    );
    let r = c
        .delete(url(&gw, &format!("cas/{}", sha256_hex(&out))))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(get(g.clone()).await.unwrap_err().code(), Code::NotFound);

    // A ccache entry under ac/ (its own format, any size) is no action
    // result: not found, and never read into memory whole.
    let other = digest(b"a ccache key");
    let r = c
        .put(url(&gw, &format!("ac/{}", other.hash)))
        .header("user-agent", "ccache/4.7")
        .body(bytes(6 * 1024 * 1024, 9))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let e = g.get_result(&other).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
}

/// A tree: root { f1, sub/ { f2 } }.
struct Tree {
    f1: Vec<u8>,
    f2: Vec<u8>,
    sub: Vec<u8>,
    root: Vec<u8>,
}

fn tree() -> Tree {
    let (f1, f2) = (bytes(3000, 21), bytes(70_000, 22));
    let sub = Directory {
        files: vec![FileNode {
            name: "f2".into(),
            digest: Some(digest(&f2)),
            is_executable: true,
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec();
    let root = Directory {
        files: vec![FileNode {
            name: "f1".into(),
            digest: Some(digest(&f1)),
            ..Default::default()
        }],
        directories: vec![DirectoryNode {
            name: "sub".into(),
            digest: Some(digest(&sub)),
        }],
        ..Default::default()
    }
    .encode_to_vec();
    Tree { f1, f2, sub, root }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_answered_only_while_their_closure_is_stored() {
    let gw = Gateway::start(&remote("")).await;
    let g = Grpc::new(gw.addr, "builds");
    let t = tree();
    let uri = "urn:example:tree";
    let push_dir = |g: Grpc, root: Vec<u8>| async move {
        g.push()
            .push_directory(g.req(PushDirectoryRequest {
                instance_name: "builds".into(),
                uris: vec![uri.into()],
                root_directory_digest: Some(digest(&root)),
                ..Default::default()
            }))
            .await
    };
    let fetch_dir = |g: Grpc| async move {
        g.fetch()
            .fetch_directory(g.req(FetchDirectoryRequest {
                instance_name: "builds".into(),
                uris: vec![uri.into()],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    };
    // The root alone: its child directory is unknown, so the push fails.
    assert_eq!(g.upload(&t.root).await, 0);
    let e = push_dir(g.clone(), t.root.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(
        fetch_dir(g.clone()).await.status.unwrap().code,
        Code::NotFound as i32
    );
    // With every directory it is recorded, but answered only once the
    // files are there too.
    assert_eq!(g.upload(&t.sub).await, 0);
    push_dir(g.clone(), t.root.clone()).await.unwrap();
    assert_eq!(
        fetch_dir(g.clone()).await.status.unwrap().code,
        Code::NotFound as i32
    );
    assert_eq!(g.upload(&t.f1).await, 0);
    assert_eq!(g.write(&t.f2, 16 * 1024).await.unwrap(), t.f2.len() as i64);
    let found = fetch_dir(g.clone()).await;
    assert_eq!(found.status.unwrap().code, 0);
    assert_eq!(found.root_directory_digest, Some(digest(&t.root)));
    assert_eq!(found.uri, uri);

    // A blob asset with a generic URI needs what the push said it references.
    let push_blob = |g: Grpc, qualifiers: Vec<Qualifier>| {
        let root = t.root.clone();
        let f1 = t.f1.clone();
        async move {
            g.push()
                .push_blob(g.req(PushBlobRequest {
                    instance_name: "builds".into(),
                    uris: vec!["https://example.com/src.tar".into()],
                    qualifiers,
                    blob_digest: Some(digest(&f1)),
                    references_directories: vec![digest(&root)],
                    ..Default::default()
                }))
                .await
        }
    };
    let fetch_blob = |g: Grpc, qualifiers: Vec<Qualifier>| async move {
        g.fetch()
            .fetch_blob(g.req(FetchBlobRequest {
                instance_name: "builds".into(),
                uris: vec!["urn:unknown".into(), "https://example.com/src.tar".into()],
                qualifiers,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    };
    let q = vec![Qualifier {
        name: "checksum.sri".into(),
        value: "sha256-x".into(),
    }];
    push_blob(g.clone(), q.clone()).await.unwrap();
    let found = fetch_blob(g.clone(), q.clone()).await;
    assert_eq!(found.status.unwrap().code, 0);
    assert_eq!(found.uri, "https://example.com/src.tar");
    assert_eq!(found.blob_digest, Some(digest(&t.f1)));
    // A URI that spells out the qualifier is another asset.
    let spelled = g
        .fetch()
        .fetch_blob(g.req(FetchBlobRequest {
            instance_name: "builds".into(),
            uris: vec!["https://example.com/src.tar\nchecksum.sri=sha256-x".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spelled.status.unwrap().code, Code::NotFound as i32);
    let e = g
        .fetch()
        .fetch_blob(g.req(FetchBlobRequest {
            instance_name: "builds".into(),
            uris: vec!["https://example.com/src.tar".into()],
            qualifiers: vec![q[0].clone(), q[0].clone()],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "a qualifier twice: {e:?}");
    let other = fetch_blob(g.clone(), vec![]).await;
    assert_eq!(
        other.status.unwrap().code,
        Code::NotFound as i32,
        "qualifiers are part of the name"
    );

    // A file deep in the tree goes: both assets are no longer answered.
    let r = client()
        .delete(url(&gw, &format!("cas/{}", sha256_hex(&t.f2))))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        fetch_dir(g.clone()).await.status.unwrap().code,
        Code::NotFound as i32
    );
    assert_eq!(
        fetch_blob(g.clone(), q).await.status.unwrap().code,
        Code::NotFound as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_tree_streams_the_directories_in_pages() {
    let gw = Gateway::start(&remote("")).await;
    let g = Grpc::new(gw.addr, "builds");
    let t = tree();
    let tree_of = |g: Grpc, page_size: i32, page_token: &str| {
        let req = GetTreeRequest {
            instance_name: "builds".into(),
            root_digest: Some(digest(&t.root)),
            page_size,
            page_token: page_token.into(),
            digest_function: 0,
        };
        async move {
            let mut s = g.cas().get_tree(g.req(req)).await?.into_inner();
            let mut pages = Vec::new();
            while let Some(p) = s.message().await? {
                pages.push(p);
            }
            Ok::<_, tonic::Status>(pages)
        }
    };
    let e = tree_of(g.clone(), 0, "").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "the root is missing: {e:?}");
    // A missing directory below the root is left out (the spec: what is
    // present is returned).
    assert_eq!(g.upload(&t.root).await, 0);
    let part = tree_of(g.clone(), 0, "").await.unwrap();
    let dirs: Vec<Vec<u8>> = part
        .iter()
        .flat_map(|p| p.directories.iter().map(|d| d.encode_to_vec()))
        .collect();
    assert_eq!(dirs, vec![t.root.clone()]);
    assert_eq!(g.upload(&t.sub).await, 0);
    let pages = tree_of(g.clone(), 1, "").await.unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].next_page_token, "1");
    assert_eq!(pages[1].next_page_token, "");
    let dirs: Vec<Vec<u8>> = pages
        .iter()
        .flat_map(|p| p.directories.iter().map(|d| d.encode_to_vec()))
        .collect();
    assert_eq!(dirs, vec![t.root.clone(), t.sub.clone()]);
    let rest = tree_of(g.clone(), 0, "1").await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].directories[0].encode_to_vec(), t.sub);
    let e = tree_of(g.clone(), 0, "zz").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
}

/// The counter of `builds`' gRPC calls answered at `gw` (outcome `hosted`).
async fn hosted_calls(gw: &Gateway) -> f64 {
    gw.metric(
        "artgate_requests_total",
        &["remote=\"builds\"", "method=\"POST\"", "outcome=\"hosted\""],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_through_remote_reads_through_its_upstream_once_and_keeps_it() {
    let up = Gateway::start(&remote("")).await;
    let u = Grpc::new(up.addr, "builds");
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"mirror\"\npackage = \"cas\"\nupstream = \"grpc://{}/builds\"\n",
        up.addr
    ))
    .await;
    let g = Grpc::new(gw.addr, "mirror");
    let big = bytes(9 * 1024 * 1024 + 5, 31);
    let out = bytes(1000, 32);
    assert_eq!(
        u.write(&big, 2 * 1024 * 1024).await.unwrap(),
        big.len() as i64
    );
    assert_eq!(u.upload(&out).await, 0);
    let action = digest(b"upstream action");
    let result = ActionResult {
        output_files: vec![OutputFile {
            path: "out".into(),
            digest: Some(digest(&out)),
            ..Default::default()
        }],
        ..Default::default()
    };
    u.put_result(&action, &result).await.unwrap();
    u.push()
        .push_blob(u.req(PushBlobRequest {
            instance_name: "builds".into(),
            uris: vec!["urn:example:out".into()],
            blob_digest: Some(digest(&out)),
            ..Default::default()
        }))
        .await
        .unwrap();

    // Presence is the remote's own (uploads stay here, so a push uploads
    // what it needs here); reads come through.
    assert_eq!(missing(&g, &[&big, &out]).await.len(), 2);
    // Eight clients read the big blob at once: one upstream read.
    let before = hosted_calls(&up).await;
    let d = digest(&big);
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let (g, d) = (g.clone(), d.clone());
            tokio::spawn(async move { g.read(&d, 0, 0).await })
        })
        .collect();
    for r in reads {
        assert_eq!(sha256_hex(&r.await.unwrap().unwrap()), d.hash);
    }
    assert_eq!(
        hosted_calls(&up).await - before,
        1.0,
        "one upstream ByteStream Read"
    );
    let m = gw.metrics().await;
    assert!(
        metric(&m, "artgate_upstream_bytes_total", &["remote=\"mirror\""]) >= big.len() as f64,
        "the upstream bytes are counted"
    );
    assert!(
        metric(
            &m,
            "artgate_upstream_requests_total",
            &["remote=\"mirror\"", "status=\"200\""]
        ) >= 1.0
    );
    // The action result and the asset come from the upstream.
    let got = g.get_result(&action).await.unwrap().into_inner();
    assert_eq!(got, result);
    let found = g
        .fetch()
        .fetch_blob(g.req(FetchBlobRequest {
            instance_name: "mirror".into(),
            uris: vec!["urn:example:out".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.status.unwrap().code, 0);
    assert_eq!(found.blob_digest, Some(digest(&out)));
    assert_eq!(g.read(&digest(&out), 0, 0).await.unwrap(), out);
    // Uploads to the pull-through remote stay in it.
    assert_eq!(g.upload(b"local only").await, 0);
    assert_eq!(missing(&u, &[b"local only"]).await.len(), 1);

    // With the upstream gone, what was read is still served; the rest is
    // UNAVAILABLE, not NOT_FOUND.
    up.stop().await;
    assert_eq!(sha256_hex(&g.read(&d, 0, 0).await.unwrap()), d.hash);
    assert_eq!(
        g.read(&digest(b"local only"), 0, 0).await.unwrap(),
        b"local only"
    );
    assert!(missing(&g, &[&big, &out]).await.is_empty());
    let e = g.read(&digest(b"never fetched"), 0, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_remote_reads_its_members_in_order_and_writes_to_one() {
    let gw = Gateway::start(
        "[[remote]]\nname = \"a\"\npackage = \"cas\"\nhosted = true\n\
         [[remote]]\nname = \"b\"\npackage = \"cas\"\nhosted = true\n\
         [[remote]]\nname = \"all\"\npackage = \"virtual\"\nmembers = [\"a\", \"b\"]\nwrite_to = \"a\"\n\
         [[remote]]\nname = \"ro\"\npackage = \"virtual\"\nmembers = [\"b\"]\n",
    )
    .await;
    let (a, b, all) = (
        Grpc::new(gw.addr, "a"),
        Grpc::new(gw.addr, "b"),
        Grpc::new(gw.addr, "all"),
    );
    assert_eq!(b.upload(b"in b").await, 0);
    assert_eq!(all.upload(b"via all").await, 0);
    assert!(missing(&a, &[b"via all"]).await.is_empty(), "written to a");
    assert_eq!(missing(&b, &[b"via all"]).await.len(), 1);
    assert_eq!(
        missing(&all, &[b"in b", b"via all", b"nowhere"]).await,
        vec![sha256_hex(b"nowhere")]
    );
    assert_eq!(all.read(&digest(b"in b"), 0, 0).await.unwrap(), b"in b");
    // An asset pushed to b, with its closure there, is found through `all`.
    b.push()
        .push_blob(b.req(PushBlobRequest {
            instance_name: "b".into(),
            uris: vec!["urn:example:b".into()],
            blob_digest: Some(digest(b"in b")),
            ..Default::default()
        }))
        .await
        .unwrap();
    let found = all
        .fetch()
        .fetch_blob(all.req(FetchBlobRequest {
            instance_name: "all".into(),
            uris: vec!["urn:example:b".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.status.unwrap().code, 0);
    assert_eq!(found.blob_digest, Some(digest(b"in b")));
    let caps = |g: Grpc, name: &'static str| async move {
        g.capabilities()
            .get_capabilities(g.req(GetCapabilitiesRequest {
                instance_name: name.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .cache_capabilities
            .unwrap()
            .action_cache_update_capabilities
            .unwrap()
            .update_enabled
    };
    assert!(caps(all.clone(), "all").await);
    let ro = Grpc::new(gw.addr, "ro");
    assert!(!caps(ro.clone(), "ro").await);
    let e = ro
        .cas()
        .batch_update_blobs(ro.req(BatchUpdateBlobsRequest {
            instance_name: "ro".into(),
            requests: vec![],
            digest_function: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("read-only"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_write_ends_and_leaves_no_spool() {
    let gw = Gateway::start_with_server_extra("body_read_timeout = \"1s\"", &remote("")).await;
    let g = Grpc::new(gw.addr, "builds");
    let d = digest(&bytes(1_000_000, 5));
    let first = WriteRequest {
        resource_name: format!(
            "builds/uploads/00000000-0000-4000-8000-000000000009/blobs/{}/{}",
            d.hash, d.size_bytes
        ),
        write_offset: 0,
        finish_write: false,
        data: bytes::Bytes::from(bytes(300_000, 5)),
    };
    // One message, then nothing: the client neither sends nor closes.
    let stream = futures_util::stream::iter(vec![first]).chain(futures_util::stream::pending());
    let mut client = g.bytestream();
    let call = client.write(g.req(stream));
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), call)
        .await
        .expect("a stalled write is ended by the gateway");
    let e = r.unwrap_err();
    assert_ne!(e.code(), Code::Ok, "{e:?}");
    let data = gw.dir.path().join("data");
    crate::support::wait_until(
        "the stalled write's spool is deleted",
        std::time::Duration::from_secs(10),
        || spool_files(&data).is_empty(),
    )
    .await;
    assert_eq!(missing(&g, &[&bytes(1_000_000, 5)]).await.len(), 1);
}
