//! Simulcast in real browsers: a Chromium publisher sends three layers (RFC 8853 RIDs) by WHIP;
//! the origin takes each as a track of its own, the relay link carries all three to the edge,
//! and each Chromium viewer on the edge is sent the layer it asked for (the top one by default).

use anyhow::Result;
use cascade_tests::{Browser, Chromedriver, NodeProc, poll, wait_playing};
use serde_json::Value;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(45);

/// The room's simulcast layers on `node` that have brought at least `packets` packets.
async fn layers(node: &NodeProc, room: &str, packets: u64) -> Result<Vec<Value>> {
    Ok(node
        .room(room)
        .await?
        .and_then(|r| r["tracks"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["rid"].is_string() && t["packets_in"].as_u64().unwrap_or(0) >= packets)
        .collect())
}

fn width(stats: &Value) -> u64 {
    stats["frameWidth"].as_u64().unwrap_or(0)
}

/// Asserts that the viewer of `top` plays the top layer and that of `low` a picture at most
/// half as wide.
fn top_over_low(top: &Value, low: &Value, what: &str) {
    println!(
        "{what}: {}x{}, layer=low viewer: {}x{}",
        width(top),
        top["frameHeight"],
        width(low),
        low["frameHeight"]
    );
    assert!(
        width(low) > 0 && width(top) >= 2 * width(low),
        "{what} plays the top layer, the low one a quarter-size picture: {} vs {}",
        width(top),
        width(low)
    );
}

async fn watch(
    driver: &Chromedriver,
    edge: &NodeProc,
    room: &str,
    layer: Option<&str>,
) -> Result<Browser> {
    let viewer = driver.browser().await?;
    let layer = layer.map(|l| format!("&layer={l}")).unwrap_or_default();
    viewer
        .open(&edge.url(&format!("/watch.html?room={room}&autostart=1{layer}")))
        .await?;
    Ok(viewer)
}

#[tokio::test]
async fn each_viewer_gets_the_simulcast_layer_it_asked_for_through_an_edge() -> Result<()> {
    let origin = NodeProc::origin("origin-1")?;
    let edge = NodeProc::edge("edge-1", &origin)?;
    let driver = Chromedriver::start().await?;
    let publisher = driver.browser().await?;
    publisher
        .open(&origin.url("/publish.html?room=layers&codec=VP8&simulcast=1&autostart=1"))
        .await?;
    publisher.wait_connected(DEADLINE).await?;
    // A viewer at once, asking for a layer by its RID: the edge pulls the room while the
    // publisher's layers are still opening, and the link waits for all the declared ones.
    let early = watch(&driver, &edge, "layers", Some("h")).await?;

    // The origin receives every layer, each a track with its RID.
    let on_origin = poll(
        "three layers bringing media to the origin",
        DEADLINE,
        || async {
            let l = layers(&origin, "layers", 100).await?;
            Ok((l.len() == 3).then_some(l))
        },
    )
    .await?;
    let mut rids: Vec<&str> = on_origin.iter().filter_map(|t| t["rid"].as_str()).collect();
    rids.sort_unstable();
    assert_eq!(rids, ["h", "l", "m"]);

    let top = watch(&driver, &edge, "layers", None).await?;
    let low = watch(&driver, &edge, "layers", Some("low")).await?;
    let top_stats = wait_playing(&top, 30, DEADLINE).await?;
    let low_stats = wait_playing(&low, 30, DEADLINE).await?;
    let early_stats = wait_playing(&early, 30, DEADLINE).await?;

    // One relay link brought all three layers to the edge.
    let on_edge = layers(&edge, "layers", 1).await?;
    assert_eq!(on_edge.len(), 3, "the edge holds every layer: {on_edge:?}");

    top_over_low(&top_stats, &low_stats, "default viewer");
    assert_eq!(
        width(&early_stats),
        width(&top_stats),
        "layer=h is the top layer"
    );
    Ok(())
}

/// The room's layer `rid` on `node`: whether it is paused upstream, and its packets so far.
async fn layer_state(node: &NodeProc, room: &str, rid: &str) -> Result<Option<(bool, u64)>> {
    Ok(node
        .room(room)
        .await?
        .and_then(|r| r["tracks"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .find(|t| t["rid"] == rid)
        .map(|t| {
            (
                t["paused_upstream"].as_bool().unwrap_or(false),
                t["packets_in"].as_u64().unwrap_or(0),
            )
        }))
}

/// Waits until layer `rid` of the room on `node` is paused upstream (`paused`) or flowing.
async fn wait_layer(node: &NodeProc, room: &str, rid: &str, paused: bool) -> Result<u64> {
    let what = format!("layer {rid} paused upstream: {paused}");
    poll(&what, DEADLINE, || async {
        Ok(layer_state(node, room, rid)
            .await?
            .and_then(|(p, packets)| (p == paused).then_some(packets)))
    })
    .await
}

/// A relay tree whose bottom edge's only viewer takes the low layer: that edge asks its
/// upstream (another edge) for the low layer alone, and the middle edge, whose only subscriber
/// is that link, asks the origin for no more; the top layer stops crossing either link. A
/// viewer who then asks for the top layer at the bottom edge plays it: the layer resumes at
/// both links, from a keyframe.
#[tokio::test]
async fn an_edge_asks_its_upstream_only_for_the_layers_its_viewers_take() -> Result<()> {
    let origin = NodeProc::origin("origin-demand")?;
    let middle = NodeProc::edge("edge-middle", &origin)?;
    let bottom = NodeProc::edge("edge-bottom", &middle)?;
    let driver = Chromedriver::start().await?;
    let publisher = driver.browser().await?;
    publisher
        .open(&origin.url("/publish.html?room=demand&codec=VP8&simulcast=1&autostart=1"))
        .await?;
    publisher.wait_connected(DEADLINE).await?;
    poll("three layers at the origin", DEADLINE, || async {
        Ok((layers(&origin, "demand", 100).await?.len() == 3).then_some(()))
    })
    .await?;

    let low = watch(&driver, &bottom, "demand", Some("low")).await?;
    let low_stats = wait_playing(&low, 30, DEADLINE).await?;
    // Both links pause the two upper layers once nothing below takes them.
    for node in [&bottom, &middle] {
        for rid in ["h", "m"] {
            wait_layer(node, "demand", rid, true).await?;
        }
        let (paused, _) = layer_state(node, "demand", "l").await?.unwrap_or_default();
        assert!(!paused, "the low layer flows");
    }
    // Nothing of the top layer reaches the middle edge from the origin any more (what was in
    // flight when it asked has arrived by the time the bottom edge asked too).
    let (_, before) = layer_state(&middle, "demand", "h")
        .await?
        .unwrap_or_default();
    let (_, low_before) = layer_state(&middle, "demand", "l")
        .await?
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, after) = layer_state(&middle, "demand", "h")
        .await?
        .unwrap_or_default();
    let (_, low_after) = layer_state(&middle, "demand", "l")
        .await?
        .unwrap_or_default();
    assert_eq!(
        before, after,
        "the top layer no longer crosses the origin's link"
    );
    assert!(low_after > low_before, "the low layer still does");
    // The low viewer plays on meanwhile.
    let still = wait_playing(&low, 30, DEADLINE).await?;
    assert!(still["framesDecoded"].as_u64() > low_stats["framesDecoded"].as_u64());

    // A viewer who wants the top layer: it flows again through both links, and plays.
    let top = watch(&driver, &bottom, "demand", None).await?;
    let top_stats = wait_playing(&top, 30, DEADLINE).await?;
    for node in [&bottom, &middle] {
        wait_layer(node, "demand", "h", false).await?;
    }
    top_over_low(&top_stats, &low_stats, "top viewer after the resume");
    // The middle layer stays paused: nobody takes it.
    let (paused, _) = layer_state(&middle, "demand", "m")
        .await?
        .unwrap_or_default();
    assert!(
        paused,
        "the middle layer is still paused at the middle edge"
    );
    Ok(())
}

/// A `layer` that is not a layer name is refused with 400 before any negotiation.
#[tokio::test]
async fn a_malformed_layer_parameter_is_refused() -> Result<()> {
    let origin = NodeProc::origin("origin-bad-layer")?;
    let response = reqwest::Client::new()
        .post(origin.url("/whep/any?layer=h%20m"))
        .header("content-type", "application/sdp")
        .body(include_str!("../../core/testdata/chrome-whep-offer.sdp"))
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: Value = response.json().await?;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("layer")),
        "{body}"
    );
    Ok(())
}
