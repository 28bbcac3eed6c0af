//! Firefox on a broadcast, both ways, with real origin and edge processes: Firefox publishes by
//! WHIP and Chromium watches on an edge, and Chromium publishes while Firefox watches. Firefox's
//! ICE (its own candidate gathering, no `a=ice-lite` of its own), DTLS (ECDSA, its own cipher
//! order) and SDP (`a=extmap-allow-mixed`, its own MIDs, msid and RTCP feedback) differ from
//! Chromium's. Firefox does not connect to loopback candidates (nor gather its own), so the
//! nodes advertise this machine's own address.

use anyhow::Result;
use cascade_tests::{Browser, Chromedriver, NodeProc, firefox, machine_ip, wait_playing};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

async fn publish(browser: &Browser, origin: &NodeProc, room: &str) -> Result<()> {
    browser
        .open(&origin.url(&format!("/publish.html?room={room}&autostart=1")))
        .await?;
    browser.wait_connected(DEADLINE).await
}

/// Watches `room` on `edge` until `frames` more frames are decoded; the stats at the end.
async fn watch(browser: &Browser, edge: &NodeProc, room: &str) -> Result<serde_json::Value> {
    browser
        .open(&edge.url(&format!("/watch.html?room={room}&autostart=1")))
        .await?;
    let stats = wait_playing(browser, 60, DEADLINE).await?;
    assert!(
        stats["frameWidth"].as_u64().unwrap_or(0) > 0 && stats["frameHeight"].as_u64() > Some(0),
        "{stats}"
    );
    Ok(stats)
}

/// The codecs of a room's tracks at its origin, lower case (`video/vp8`, `audio/opus`).
async fn codecs(origin: &NodeProc, room: &str) -> Result<Vec<String>> {
    let room = origin.room(room).await?.expect("the origin holds the room");
    Ok(room["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["codec"].as_str().unwrap_or("").to_ascii_lowercase())
        .collect())
}

#[tokio::test]
async fn firefox_publishes_to_chromium_and_watches_chromium() -> Result<()> {
    let ip = machine_ip()?.to_string();
    let origin = NodeProc::start("cascade-origin", "origin-1", &["--advertise-ip", &ip])?;
    let edge = NodeProc::edge_with("edge-1", &origin, &["--advertise-ip", &ip])?;
    let chromium = Chromedriver::start().await?;

    // Firefox publishes (its fake camera and microphone), Chromium watches on the edge.
    let firefox_publisher = firefox().await?;
    publish(&firefox_publisher, &origin, "from-firefox").await?;
    let chromium_viewer = chromium.browser().await?;
    let stats = watch(&chromium_viewer, &edge, "from-firefox").await?;
    println!("Chromium watching Firefox: {stats}");
    let tracks = codecs(&origin, "from-firefox").await?;
    assert!(tracks.iter().any(|c| c.starts_with("video/")), "{tracks:?}");
    assert!(tracks.contains(&"audio/opus".to_owned()), "{tracks:?}");

    // Chromium publishes, Firefox watches on the edge.
    let chromium_publisher = chromium.browser().await?;
    publish(&chromium_publisher, &origin, "from-chromium").await?;
    let firefox_viewer = firefox().await?;
    let stats = watch(&firefox_viewer, &edge, "from-chromium").await?;
    println!("Firefox watching Chromium: {stats}");

    // And Firefox watches Firefox, on the origin itself.
    let firefox_on_origin = firefox().await?;
    let stats = watch(&firefox_on_origin, &origin, "from-firefox").await?;
    println!("Firefox watching Firefox on the origin: {stats}");
    Ok(())
}
