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

    let width = |s: &Value| s["frameWidth"].as_u64().unwrap_or(0);
    println!(
        "default viewer: {}x{}, layer=low viewer: {}x{}",
        width(&top_stats),
        top_stats["frameHeight"],
        width(&low_stats),
        low_stats["frameHeight"]
    );
    assert!(
        width(&low_stats) > 0 && width(&top_stats) >= 2 * width(&low_stats),
        "the default viewer plays the top layer, the low one a quarter-size picture: {} vs {}",
        width(&top_stats),
        width(&low_stats)
    );
    assert_eq!(
        width(&early_stats),
        width(&top_stats),
        "layer=h is the top layer"
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
