//! Simulcast layers chosen per viewer from its bandwidth estimate, in real browsers: a Chromium
//! publisher sends three layers (RFC 8853 RIDs `l`, `m`, `h`: 320x180 up to 200 kbit/s, 640x360
//! up to 700 kbit/s, 1280x720 up to 2.5 Mbit/s) by WHIP to an origin; two Chromium viewers watch
//! on one edge, one of them in the network lab (`cascade_tests::netlab`) behind a 400 kbit/s
//! token bucket with 1 % random loss. The edge numbers every packet for the viewers' TWCC
//! feedback and keeps an estimate per viewer (`media::bwe`); the constrained viewer is moved to
//! the layer its link carries, the other keeps the top one; a viewer whose link recovers climbs
//! back, and one whose link degrades mid-watch is moved down. A publisher without simulcast: a
//! viewer whose link cannot carry its one layer keeps its audio while its video pauses, and the
//! video resumes when the link recovers. And the same per-viewer layers at the bottom of a
//! two-level relay tree.

use anyhow::Result;
use cascade_tests::netlab::ClientNet;
use cascade_tests::{Browser, Chromedriver, NodeProc, poll, wait_playing, watch_in_lab};
use serde_json::Value;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

fn count(stats: &Value, key: &str) -> u64 {
    stats[key].as_u64().unwrap_or(0)
}

/// The simulcast layer (RID) and bandwidth estimate the edge reports for each of its viewers.
async fn viewer_layers(edge: &NodeProc) -> Result<Vec<(Option<String>, Option<u64>)>> {
    let sessions: Value = reqwest::get(edge.url("/v1/sessions")).await?.json().await?;
    Ok(sessions["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|s| s["kind"] == "viewer")
        .map(|s| {
            (
                s["layer"].as_str().map(str::to_owned),
                s["estimate_kbps"].as_u64(),
            )
        })
        .collect())
}

async fn watch_here(driver: &Chromedriver, edge: &NodeProc, room: &str) -> Result<Browser> {
    let viewer = driver.browser().await?;
    viewer
        .open(&edge.url(&format!("/watch.html?room={room}&autostart=1")))
        .await?;
    Ok(viewer)
}

/// A client network of the lab, an origin, an edge the lab's clients reach, and a Chromium
/// publishing `room` in three simulcast layers by WHIP to the origin.
async fn simulcast_through_an_edge(
    room: &str,
) -> Result<(ClientNet, NodeProc, NodeProc, Chromedriver, Browser)> {
    publishing_through_an_edge(room, "&simulcast=1").await
}

/// The same, the publisher's page given `options` (`&simulcast=1`, or none: one layer).
async fn publishing_through_an_edge(
    room: &str,
    options: &str,
) -> Result<(ClientNet, NodeProc, NodeProc, Chromedriver, Browser)> {
    let net = ClientNet::create(room)?;
    let origin = NodeProc::origin("origin-1")?;
    let upstream = origin.grpc_url();
    let edge = NodeProc::for_lab("cascade-edge", "edge-1", &net, &["--upstream", &upstream])?;
    let (driver, publisher) = publish(&origin, room, options).await?;
    Ok((net, origin, edge, driver, publisher))
}

/// A Chromium publishing `room` by WHIP to `origin`, its page given `options`.
async fn publish(origin: &NodeProc, room: &str, options: &str) -> Result<(Chromedriver, Browser)> {
    let driver = Chromedriver::start().await?;
    let publisher = driver.browser().await?;
    publisher
        .open(&origin.url(&format!(
            "/publish.html?room={room}&codec=VP8{options}&autostart=1"
        )))
        .await?;
    publisher.wait_connected(DEADLINE).await?;
    Ok((driver, publisher))
}

#[tokio::test]
async fn each_viewer_gets_the_layer_its_link_carries() -> Result<()> {
    let (net, _origin, edge, driver, _publisher) = simulcast_through_an_edge("adapt").await?;

    net.rate_limit(400)?;
    net.random_loss(1)?;
    let lab_driver = Chromedriver::start_in(Some(&net)).await?;
    let constrained = watch_in_lab(&lab_driver, &net, &edge, "adapt").await?;
    let free = watch_here(&driver, &edge, "adapt").await?;
    wait_playing(&constrained, 30, DEADLINE).await?;
    wait_playing(&free, 30, DEADLINE).await?;

    // A 40 s watch; its second half is measured.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (c0, f0) = (constrained.stats().await?, free.stats().await?);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (c1, f1) = (constrained.stats().await?, free.stats().await?);
    let delta = |a: &Value, b: &Value, key: &str| count(b, key).saturating_sub(count(a, key));
    let frames = delta(&c0, &c1, "framesDecoded");
    let freezes_ms = delta(&c0, &c1, "freezesMs");
    let layers = viewer_layers(&edge).await?;
    println!(
        "constrained viewer, 20 s: {frames} frames, {} freezes ({freezes_ms} ms), {}x{}, \
         {:.0} kbit/s video; free viewer {}x{}, {} frames; edge's view of its viewers: \
         {layers:?}",
        delta(&c0, &c1, "freezeCount"),
        c1["frameWidth"],
        c1["frameHeight"],
        c1["videoKbps"].as_f64().unwrap_or(0.0),
        f1["frameWidth"],
        f1["frameHeight"],
        delta(&f0, &f1, "framesDecoded"),
    );
    // Issue 19's bound: >= 15 frames a second, <= 1 s of freezes, within its link.
    assert!(
        frames >= 15 * 20,
        "the constrained viewer plays at 15 fps or more: {frames} frames in 20 s"
    );
    assert!(
        freezes_ms <= 1_000,
        "the constrained viewer freezes for at most 1 s in 20 s: {freezes_ms} ms"
    );
    let kbps = c1["videoKbps"].as_f64().unwrap_or(0.0);
    assert!(
        kbps > 0.0 && kbps < 400.0,
        "the constrained viewer's video fits its link: {kbps:.0} kbit/s"
    );
    let width = |s: &Value| count(s, "frameWidth");
    assert!(
        width(&c1) > 0 && width(&c1) <= 320,
        "the constrained viewer is sent the low layer: {}",
        width(&c1)
    );
    assert_eq!(width(&f1), 1280, "the free viewer plays the top layer");
    // Its frame rate is the publisher's top layer's, which Chromium lowers when the machine's
    // two cores are busy encoding three layers and decoding two: not asserted beyond playing.
    let free_frames = delta(&f0, &f1, "framesDecoded");
    assert!(
        free_frames >= 5 * 20,
        "and keeps playing it: {free_frames} frames in 20 s"
    );
    assert!(
        layers
            .iter()
            .any(|(l, e)| l.as_deref() == Some("l") && e.is_some()),
        "the edge reports the constrained viewer on layer l, with its estimate: {layers:?}"
    );

    Ok(())
}

/// A viewer held on the low layer by a 400 kbit/s link: the link is lifted, and it climbs back
/// to the top layer within 10 s (a probe on its RTX stream for each layer up).
#[tokio::test]
async fn a_viewer_whose_link_recovers_climbs_back_to_the_top_layer_within_10_s() -> Result<()> {
    let (net, _origin, edge, _driver, _publisher) = simulcast_through_an_edge("climb").await?;
    net.rate_limit(400)?;
    let lab_driver = Chromedriver::start_in(Some(&net)).await?;
    let viewer = watch_in_lab(&lab_driver, &net, &edge, "climb").await?;
    wait_playing(&viewer, 30, DEADLINE).await?;
    let width = |s: &Value| count(s, "frameWidth");
    poll(
        "the constrained viewer on the low layer",
        DEADLINE,
        || async {
            let s = viewer.stats().await?;
            Ok((width(&s) > 0 && width(&s) <= 320).then_some(()))
        },
    )
    .await?;
    net.unlimited()?;
    let lifted = std::time::Instant::now();
    // The climb is done when the edge sends the viewer the top layer: its session's layer turns
    // to it at the layer's keyframe, the first packet of the top layer the viewer gets. The
    // page's stats trail that by up to a second (it samples `getStats` once a second), so the
    // picture is checked after, against the longer deadline.
    poll(
        "the edge to send the recovered viewer the top layer",
        Duration::from_secs(10),
        || async {
            let layers = viewer_layers(&edge).await?;
            Ok((layers.iter().any(|(l, _)| l.as_deref() == Some("h"))).then_some(()))
        },
    )
    .await?;
    let climbed = lifted.elapsed();
    poll(
        "the recovered viewer to show the top layer",
        DEADLINE,
        || async {
            let s = viewer.stats().await?;
            Ok((width(&s) == 1280).then_some(()))
        },
    )
    .await?;
    println!(
        "back on the top layer {climbed:?} after the link was lifted (the page showed 1280x720 \
         {:?} after)",
        lifted.elapsed()
    );
    Ok(())
}

/// Whether `sdp` negotiates Opus with in-band FEC (`useinbandfec=1` on Opus's payload type).
/// A viewer on the top layer over a free link that then drops to 400 kbit/s (a hotel's Wi-Fi
/// filling up): whatever its estimate climbed to on the free link, the edge moves it down to
/// the layer the new link carries within 3 s (its loss bounds the capacity its layer is chosen
/// and paces its repair by, `Bwe::capacity_at`), and plays on, on the low layer. Its freezes
/// over the 10 s from 2 s after the move are printed, not yet bounded (0.45 and 0.72 s in the
/// runs so far; before repair was paced by that bound, a storm of resent packets froze some
/// runs for seconds).
#[tokio::test]
async fn a_viewer_whose_link_degrades_drops_to_the_layer_it_carries() -> Result<()> {
    let (net, _origin, edge, _driver, _publisher) = simulcast_through_an_edge("degrade").await?;
    let lab_driver = Chromedriver::start_in(Some(&net)).await?;
    let viewer = watch_in_lab(&lab_driver, &net, &edge, "degrade").await?;
    wait_playing(&viewer, 30, DEADLINE).await?;
    let width = |s: &Value| count(s, "frameWidth");
    poll("the free viewer on the top layer", DEADLINE, || async {
        let s = viewer.stats().await?;
        Ok((width(&s) == 1280).then_some(()))
    })
    .await?;
    // Ten seconds of watching on the free link, where its estimate climbs past the top layer.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let free = viewer_layers(&edge).await?;
    net.rate_limit(400)?;
    let limited = std::time::Instant::now();
    let at_drop = viewer.stats().await?;
    // What the edge thinks of the viewer as the link drops (layer and estimate), for the log.
    let timeline = std::sync::Mutex::new(Vec::new());
    let moved = poll(
        "the edge to move the viewer down to the low layer",
        Duration::from_secs(3),
        || async {
            let layers = viewer_layers(&edge).await?;
            if let Some((l, e)) = layers.first() {
                timeline.lock().unwrap().push(format!(
                    "{:.1} s {} {} kbit/s",
                    limited.elapsed().as_secs_f64(),
                    l.as_deref().unwrap_or("-"),
                    e.unwrap_or(0)
                ));
            }
            Ok((layers.iter().any(|(l, _)| l.as_deref() == Some("l"))).then_some(()))
        },
    )
    .await;
    println!(
        "estimate on the free link: {free:?}; after the link dropped: {:?}",
        timeline.lock().unwrap()
    );
    moved?;
    let dropped = limited.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s0 = viewer.stats().await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s1 = viewer.stats().await?;
    let delta = |a: &Value, b: &Value, key: &str| count(b, key).saturating_sub(count(a, key));
    let (frames, freezes_ms) = (
        delta(&s0, &s1, "framesDecoded"),
        delta(&s0, &s1, "freezesMs"),
    );
    println!(
        "on the low layer {dropped:?} after the link dropped ({} ms of freezes until 2 s after \
         that); then 10 s: {frames} frames, {} freezes ({freezes_ms} ms), {}x{}, {:.0} kbit/s",
        delta(&at_drop, &s0, "freezesMs"),
        delta(&s0, &s1, "freezeCount"),
        s1["frameWidth"],
        s1["frameHeight"],
        s1["videoKbps"].as_f64().unwrap_or(0.0),
    );
    assert!(
        width(&s1) > 0 && width(&s1) <= 320,
        "the viewer plays the low layer: {}",
        width(&s1)
    );
    assert!(frames >= 50, "it plays on: {frames} frames in 10 s");
    Ok(())
}

fn opus_fec(sdp: &str) -> bool {
    let opus_pts: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter(|l| l.to_ascii_lowercase().contains(" opus/48000"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    sdp.lines().any(|l| {
        l.strip_prefix("a=fmtp:").is_some_and(|f| {
            f.split_once(' ').is_some_and(|(pt, params)| {
                opus_pts.contains(&pt) && params.split(';').any(|p| p.trim() == "useinbandfec=1")
            })
        })
    })
}

/// Whether the edge reports its viewer's video paused (one viewer on the edge).
async fn video_paused(edge: &NodeProc) -> Result<Option<bool>> {
    let sessions: Value = reqwest::get(edge.url("/v1/sessions")).await?.json().await?;
    Ok(sessions["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["kind"] == "viewer"))
        .map(|s| s["video_paused"].as_bool().unwrap_or(false)))
}

/// A publisher without simulcast (one 1280x720 VP8 layer) and a viewer behind a 300 kbit/s
/// link: there is no lower layer, so the edge pauses the viewer's video and keeps its audio
/// going; once the link is lifted a probe shows it, and the video resumes at a keyframe.
#[tokio::test]
async fn a_viewer_whose_link_cannot_carry_the_only_layer_keeps_audio_and_resumes_video()
-> Result<()> {
    let (net, _origin, edge, _driver, publisher) = publishing_through_an_edge("gate", "").await?;

    net.rate_limit(300)?;
    let lab_driver = Chromedriver::start_in(Some(&net)).await?;
    let viewer = watch_in_lab(&lab_driver, &net, &edge, "gate").await?;
    // Opus in-band FEC is negotiated at both ends, so what the publisher's encoder adds to its
    // packets (which the nodes forward as they are) is what the viewer's decoder recovers from.
    for (who, page) in [("publisher", &publisher), ("viewer", &viewer)] {
        let answer = poll("the answer", DEADLINE, || async {
            Ok(page
                .eval("cascade.pc && cascade.pc.remoteDescription && cascade.pc.remoteDescription.sdp")
                .await?
                .as_str()
                .map(str::to_owned))
        })
        .await?;
        assert!(
            opus_fec(&answer),
            "the {who}'s answer takes Opus with in-band FEC: {answer}"
        );
    }
    poll("the edge to pause the viewer's video", DEADLINE, || async {
        Ok((video_paused(&edge).await? == Some(true)).then_some(()))
    })
    .await?;
    // Paused, over 10 s: its audio plays on, the video sends next to nothing.
    let s0 = viewer.stats().await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s1 = viewer.stats().await?;
    let delta = |key: &str| count(&s1, key).saturating_sub(count(&s0, key));
    let (audio, audio_lost, frames) = (
        delta("audioPackets"),
        delta("audioLost"),
        delta("framesDecoded"),
    );
    let paused_all_along = video_paused(&edge).await? == Some(true);
    println!(
        "paused 10 s: {audio} audio packets ({audio_lost} lost), {frames} frames, {:.0} kbit/s \
         video, still paused: {paused_all_along}",
        s1["videoKbps"].as_f64().unwrap_or(0.0)
    );
    // Opus sends 50 packets a second; probes for the video's rate may cost a few.
    assert!(
        audio >= 400 && audio_lost * 20 <= audio,
        "the viewer's audio plays on: {audio} packets, {audio_lost} lost in 10 s"
    );
    assert!(
        s1["videoKbps"].as_f64().unwrap_or(0.0) < 100.0,
        "its video is paused, not pushed through a link that cannot carry it: {s1}"
    );

    net.unlimited()?;
    let lifted = std::time::Instant::now();
    let before = count(&viewer.stats().await?, "framesDecoded");
    poll("the viewer's video to resume", DEADLINE, || async {
        let frames = count(&viewer.stats().await?, "framesDecoded");
        Ok((video_paused(&edge).await? == Some(false) && frames >= before + 30).then_some(()))
    })
    .await?;
    println!(
        "video resumed {:?} after the link was lifted",
        lifted.elapsed()
    );
    Ok(())
}

/// A simulcast publisher through a two-level relay tree (origin, edge-1, edge-2 pulling from
/// edge-1): the middle edge carries every layer, and the two viewers at the bottom, one behind a
/// 400 kbit/s link, get a layer each from their own estimates.
#[tokio::test]
async fn viewers_at_the_bottom_of_a_relay_tree_get_a_layer_each() -> Result<()> {
    let net = ClientNet::create("tree")?;
    let origin = NodeProc::origin("origin-1")?;
    let middle = NodeProc::edge("edge-1", &origin)?;
    let upstream = middle.grpc_url();
    let edge = NodeProc::for_lab("cascade-edge", "edge-2", &net, &["--upstream", &upstream])?;
    let (driver, _publisher) = publish(&origin, "tree", "&simulcast=1").await?;

    net.rate_limit(400)?;
    let lab_driver = Chromedriver::start_in(Some(&net)).await?;
    let constrained = watch_in_lab(&lab_driver, &net, &edge, "tree").await?;
    let free = watch_here(&driver, &edge, "tree").await?;
    wait_playing(&constrained, 30, DEADLINE).await?;
    wait_playing(&free, 30, DEADLINE).await?;
    let width = |s: &Value| count(s, "frameWidth");
    let (c, f) = poll("each viewer on its own layer", DEADLINE, || async {
        let (c, f) = (constrained.stats().await?, free.stats().await?);
        Ok((width(&c) > 0 && width(&c) <= 320 && width(&f) == 1280).then_some((c, f)))
    })
    .await?;
    let layers = viewer_layers(&edge).await?;
    println!(
        "two relay levels: constrained viewer {}x{} at {:.0} kbit/s, free viewer {}x{}; \
         edge-2's viewers {layers:?}",
        c["frameWidth"],
        c["frameHeight"],
        c["videoKbps"].as_f64().unwrap_or(0.0),
        f["frameWidth"],
        f["frameHeight"],
    );
    assert!(
        layers.iter().any(|(l, _)| l.as_deref() == Some("l"))
            && layers.iter().any(|(l, _)| l.as_deref() == Some("h")),
        "the bottom edge sends one viewer layer l and the other layer h: {layers:?}"
    );
    // The middle edge relays every layer down (one link, all three), not just one.
    let relayed = middle
        .room("tree")
        .await?
        .and_then(|r| r["tracks"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["rid"].is_string() && t["packets_in"].as_u64().unwrap_or(0) > 0)
        .count();
    assert_eq!(relayed, 3, "the middle edge carries the three layers");
    Ok(())
}
