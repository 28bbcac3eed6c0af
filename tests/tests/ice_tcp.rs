//! Clients on a network without UDP reach the nodes by ICE over TCP (RFC 6544): every answer
//! carries a passive TCP candidate on the node's ICE-TCP port beside its UDP one. Each
//! constrained client runs in a network namespace of its own (`cascade_tests::netlab`) that
//! drops every UDP datagram; the nodes run on the machine.

use anyhow::Result;
use cascade_tests::netlab::ClientNet;
use cascade_tests::{
    Chromedriver, NodeProc, assert_clean_broadcast, loadgen_broadcast, publish_vp8, wait_playing,
    watch_in_lab,
};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(45);

/// A viewer whose network drops all UDP plays from an edge over ICE-TCP: its video decodes and
/// its audio arrives, over a TCP host candidate pair.
#[tokio::test]
async fn a_viewer_without_udp_plays_over_ice_tcp() -> Result<()> {
    let net = ClientNet::create("icetcpv")?;
    let origin = NodeProc::origin("origin-1")?;
    let upstream = origin.grpc_url();
    let edge = NodeProc::for_lab("cascade-edge", "edge-1", &net, &["--upstream", &upstream])?;
    let driver = Chromedriver::start().await?;
    let _publisher = publish_vp8(&driver, &origin, "tcpview").await?;

    net.block_udp()?;
    let lab = Chromedriver::start_in(Some(&net)).await?;
    let viewer = watch_in_lab(&lab, &net, &edge, "tcpview").await?;
    let stats = wait_playing(&viewer, 60, DEADLINE).await?;
    assert_eq!(stats["candidateProtocol"], "tcp", "{stats}");
    assert_ne!(stats["candidateType"], "relay", "not relayed: {stats}");
    // Frames decoded and audio received, both by TCP; the edge counts the viewer so.
    println!("viewer over ICE-TCP: {stats}");
    let sessions = edge.status().await?["sessions"].clone();
    assert_eq!(
        (
            sessions["viewers"].as_u64(),
            sessions["tcp"].as_u64(),
            sessions["udp"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{sessions}"
    );
    let metrics = reqwest::get(edge.url("/metrics")).await?.text().await?;
    for series in [
        "cascade_sessions{transport=\"tcp\"} 1",
        "cascade_sessions{transport=\"udp\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} missing:\n{metrics}"
        );
    }
    Ok(())
}

/// A publisher whose network drops all UDP publishes to the origin over ICE-TCP (the node's
/// port splices it to the publisher's peer connection), and a viewer on an ordinary network
/// watches it through an edge.
#[tokio::test]
async fn a_publisher_without_udp_publishes_over_ice_tcp() -> Result<()> {
    let net = ClientNet::create("icetcpp")?;
    let host = net.host_ip.to_string();
    let origin = NodeProc::for_lab("cascade-origin", "origin-1", &net, &[])?;
    let edge = NodeProc::edge("edge-1", &origin)?;

    net.block_udp()?;
    let lab = Chromedriver::start_in(Some(&net)).await?;
    let page = format!("http://{host}:{}", origin.http.port());
    let publisher = lab.browser_trusting(&[&page]).await?;
    publisher
        .open(&format!(
            "{page}/publish.html?room=tcppub&codec=VP8&autostart=1"
        ))
        .await?;
    publisher.wait_connected(DEADLINE).await?;
    let protocol = publisher
        .eval(
            "window.cascade.pc.getStats().then((r) => { let p = null; r.forEach((s) => { \
             if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') \
             p = r.get(s.localCandidateId).protocol; }); return p; })",
        )
        .await?;
    assert_eq!(protocol, "tcp", "the publisher's media goes by TCP");

    let driver = Chromedriver::start().await?;
    let viewer = driver.browser().await?;
    viewer
        .open(&edge.url("/watch.html?room=tcppub&autostart=1"))
        .await?;
    let stats = wait_playing(&viewer, 60, DEADLINE).await?;
    println!("viewer of a publisher on ICE-TCP: {stats}");
    // The origin counts its publisher on TCP, and the relay link to the edge on UDP.
    let sessions = origin.status().await?["sessions"].clone();
    assert_eq!(
        (
            sessions["publishers"].as_u64(),
            sessions["tcp"].as_u64(),
            sessions["udp"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{sessions}"
    );
    Ok(())
}

/// Load-generator viewers that use only the answer's TCP candidate (webrtc-rs peer
/// connections, as `--viewer-transport tcp` makes them) receive every packet of the broadcast.
#[tokio::test]
async fn load_generator_viewers_on_ice_tcp_lose_nothing() -> Result<()> {
    let origin = NodeProc::origin("origin-1")?;
    let edge = NodeProc::edge("edge-1", &origin)?;
    let json = std::env::temp_dir().join(format!("cascade-icetcp-{}.json", std::process::id()));
    let out = loadgen_broadcast(&origin, &edge, "tcpload", 5, &json)
        .args(["--viewer-engine", "pc", "--viewer-transport", "tcp"])
        .output()?;
    let report = assert_clean_broadcast(&out, &json, 5)?;
    assert_eq!(
        report["config"]["viewer_transport"], "tcp",
        "{}",
        report["config"]
    );
    Ok(())
}

/// A viewer on ICE-TCP over a link slower than the stream (200 kbit/s for ~400 kbit/s) holds up
/// nobody: a viewer on an ordinary network keeps its frame rate without freezes, while the slow
/// one keeps its connection and its audio (its video pauses and resumes at keyframes).
#[tokio::test]
async fn a_viewer_on_a_slow_tcp_link_holds_up_nobody() -> Result<()> {
    let net = ClientNet::create("tcpslow")?;
    let host = net.host_ip.to_string();
    let origin = NodeProc::origin("origin-1")?;
    let upstream = origin.grpc_url();
    let edge = NodeProc::for_lab("cascade-edge", "edge-1", &net, &["--upstream", &upstream])?;
    let driver = Chromedriver::start().await?;
    let _publisher = publish_vp8(&driver, &origin, "tcpslow").await?;
    let fast = driver.browser().await?;
    fast.open(&format!(
        "http://{host}:{}/watch.html?room=tcpslow&autostart=1",
        edge.http.port()
    ))
    .await?;
    wait_playing(&fast, 30, DEADLINE).await?;

    net.block_udp()?;
    let lab = Chromedriver::start_in(Some(&net)).await?;
    let slow = watch_in_lab(&lab, &net, &edge, "tcpslow").await?;
    let stats = wait_playing(&slow, 30, DEADLINE).await?;
    assert_eq!(stats["candidateProtocol"], "tcp", "{stats}");

    net.rate_limit(200)?;
    let (fast_before, slow_before) = (fast.stats().await?, slow.stats().await?);
    // The measurement window: 15 s with the slow viewer's link full.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (fast_after, slow_after) = (fast.stats().await?, slow.stats().await?);
    let delta = |after: &serde_json::Value, before: &serde_json::Value, key: &str| {
        after[key]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[key].as_u64().unwrap_or(0))
    };
    let frames = delta(&fast_after, &fast_before, "framesDecoded");
    let freezes_ms = delta(&fast_after, &fast_before, "freezesMs");
    let slow_audio = delta(&slow_after, &slow_before, "audioPackets");
    let slow_frames = delta(&slow_after, &slow_before, "framesDecoded");
    println!(
        "15 s with a 200 kbit/s TCP viewer: fast viewer {frames} frames, {freezes_ms} ms frozen; \
         slow viewer {slow_frames} frames, {slow_audio} audio packets"
    );
    assert!(
        frames >= 12 * 15,
        "the fast viewer kept 12 fps: {frames} frames in 15 s"
    );
    // A viewer held up by the slow one would be frozen for most of the window. Three browsers
    // and two debug nodes on two cores freeze the fast one now and then by themselves: 0 ms
    // alone, 624 and 1,063 ms in two full-suite runs (with 287 and 281 frames of 300).
    assert!(
        freezes_ms <= 3_000,
        "the fast viewer froze {freezes_ms} ms of 15 s"
    );
    assert!(
        slow_audio >= 250,
        "the slow viewer's audio went on: {slow_audio} packets"
    );
    assert_eq!(slow.eval("window.cascade.state").await?, "connected");
    Ok(())
}
