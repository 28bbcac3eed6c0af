//! Viewers on real networks, in the network lab (`cascade_tests::netlab`): a headless Chromium
//! viewer in a network namespace of its own, joined to the machine by a veth pair, its link
//! shaped with nftables; the publisher and the nodes on loopback.

use anyhow::Result;
use cascade_tests::netlab::ClientNet;
use cascade_tests::{Chromedriver, NodeProc, publish_vp8, wait_playing, watch_in_lab};
use serde_json::Value;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(45);

fn count(stats: &Value, key: &str) -> u64 {
    stats[key].as_u64().unwrap_or(0)
}

/// A viewer whose link drops 5 % of its UDP at random keeps playing: the edge answers its NACKs
/// from the feed's history, so over 30 s it sees a steady frame rate and little freezing.
#[tokio::test]
async fn a_viewer_losing_five_percent_of_its_packets_plays_without_freezing() -> Result<()> {
    let net = ClientNet::create("lossy")?;
    let origin = NodeProc::origin("origin-1")?;
    let upstream = origin.grpc_url();
    let edge = NodeProc::for_lab("cascade-edge", "edge-1", &net, &["--upstream", &upstream])?;
    let driver = Chromedriver::start().await?;
    let _publisher = publish_vp8(&driver, &origin, "lossy").await?;

    let lab_driver = Chromedriver::start_in(Some(&net)).await?;
    let viewer = watch_in_lab(&lab_driver, &net, &edge, "lossy").await?;
    wait_playing(&viewer, 30, DEADLINE).await?;

    net.random_loss(5)?;
    let before = viewer.stats().await?;
    // The measurement window: what the viewer sees over 30 s of a lossy link.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = viewer.stats().await?;
    let delta = |key: &str| count(&after, key).saturating_sub(count(&before, key));

    let frames = delta("framesDecoded");
    let freezes_ms = delta("freezesMs");
    let nacks = delta("nackCount");
    // A freeze with a keyframe asked for (PLI) waited for one; without, for a late repair.
    println!(
        "5 % loss, 30 s: {frames} frames decoded, {} freezes ({freezes_ms} ms), {nacks} NACKs \
         sent, {} packets retransmitted, {} PLIs, {} keyframes decoded, {} video packets lost",
        delta("freezeCount"),
        delta("retransmitted"),
        delta("pliCount"),
        delta("keyFramesDecoded"),
        delta("videoLost"),
    );
    assert!(
        nacks > 0,
        "the link lost packets and the viewer asked again"
    );
    // The edge read those NACKs (the mux decrypts its viewers' SRTCP itself) and answered them.
    let metrics = reqwest::get(edge.url("/metrics")).await?.text().await?;
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    };
    let (read, resent) = (
        metric("cascade_nacks_received_total"),
        metric("cascade_retransmitted_packets_total"),
    );
    println!("the edge counted {read} NACKs received and {resent} packets resent");
    assert!(
        read >= nacks,
        "{nacks} NACKs sent, {read} counted by the edge"
    );
    assert!(resent > 0, "the edge resent nothing");
    assert!(
        frames >= 15 * 30,
        "at least 15 frames a second: {frames} in 30 s"
    );
    // Issue 19's bound. Eight runs gave 0 to 229 ms, three of them beside a release build on
    // the same two cores: a freeze is a repair that came late, or a packet lost twice.
    assert!(
        freezes_ms <= 1_000,
        "at most 1 s of freezes in 30 s: {freezes_ms} ms"
    );
    Ok(())
}
