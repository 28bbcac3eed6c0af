//! End to end, in real browsers: Chromium publishes to an origin by WHIP, Chromium viewers
//! watch on edges by WHEP, every node a separate process, the media crossing real relay links.

use cascade_tests::{Browser, Chromedriver, NodeProc, poll, wait_playing};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(45);

async fn publish(
    driver: &Chromedriver,
    origin: &NodeProc,
    room: &str,
    codec: &str,
) -> anyhow::Result<Browser> {
    let publisher = driver.browser().await?;
    publisher
        .open(&origin.url(&format!(
            "/publish.html?room={room}&codec={codec}&autostart=1"
        )))
        .await?;
    publisher.wait_connected(DEADLINE).await?;
    Ok(publisher)
}

async fn watch(driver: &Chromedriver, edge: &NodeProc, room: &str) -> anyhow::Result<Browser> {
    let viewer = driver.browser().await?;
    viewer
        .open(&edge.url(&format!("/watch.html?room={room}&autostart=1")))
        .await?;
    Ok(viewer)
}

/// How many downstream subscribers (viewers and relay links) a node counts for a room.
async fn subscribers(node: &NodeProc, room: &str) -> anyhow::Result<Option<u64>> {
    Ok(node
        .room(room)
        .await?
        .and_then(|r| r["subscribers"].as_u64()))
}

#[tokio::test]
async fn browser_publishes_and_viewers_on_two_edges_decode() -> anyhow::Result<()> {
    for codec in ["VP8", "H264"] {
        let origin = NodeProc::origin("origin-1")?;
        let edge1 = NodeProc::edge("edge-1", &origin)?;
        let edge2 = NodeProc::edge("edge-2", &origin)?;
        let driver = Chromedriver::start().await?;
        let publisher = publish(&driver, &origin, "e2e", codec).await?;
        let v1 = watch(&driver, &edge1, "e2e").await?;
        let v2 = watch(&driver, &edge2, "e2e").await?;
        let s1 = wait_playing(&v1, 60, DEADLINE).await?;
        let s2 = wait_playing(&v2, 60, DEADLINE).await?;
        println!("{codec}: viewer on edge-1: {s1}\n{codec}: viewer on edge-2: {s2}");

        // The video really is the publisher's: the same picture shape on both edges (Chrome
        // scales its resolution down when the machine is busy, so sizes may differ in time).
        let shape = |s: &serde_json::Value| {
            let (w, h) = (s["frameWidth"].as_u64(), s["frameHeight"].as_u64());
            let (w, h) = (w.unwrap_or(0), h.unwrap_or(0));
            assert!(w > 0 && h > 0, "{s}");
            (w * 100 / h) as i64
        };
        assert!((shape(&s1) - shape(&s2)).abs() <= 2, "{s1} / {s2}");

        // One relay link per edge at the origin, each edge's own viewer downstream.
        assert_eq!(subscribers(&origin, "e2e").await?, Some(2));
        assert_eq!(subscribers(&edge1, "e2e").await?, Some(1));
        let room = origin.room("e2e").await?.expect("origin holds the room");
        let codecs: Vec<_> = room["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["codec"].as_str().unwrap_or("").to_ascii_lowercase())
            .collect();
        assert!(
            codecs.contains(&format!("video/{}", codec.to_ascii_lowercase())),
            "{codecs:?}"
        );
        // Chromium sends its Opus in RED (redundant audio) where the answer prefers it.
        assert!(
            codecs.contains(&"audio/red".to_owned()) || codecs.contains(&"audio/opus".to_owned()),
            "{codecs:?}"
        );

        // A second publisher to the live room is refused; bad requests change nothing for the
        // sessions already running.
        let client = reqwest::Client::new();
        let offer = publisher
            .eval("window.cascade.pc.localDescription.sdp")
            .await?;
        let second = client
            .post(origin.url("/whip/e2e"))
            .header("content-type", "application/sdp")
            .body(offer.as_str().unwrap().to_owned())
            .send()
            .await?;
        assert_eq!(second.status(), 409);
        for (node, path) in [(&origin, "/whip/e2e"), (&edge1, "/whep/e2e")] {
            let status = client
                .post(node.url(path))
                .header("content-type", "application/sdp")
                .body("v=0\r\nm=video\r\ngarbage")
                .send()
                .await?
                .status();
            assert_eq!(status, 400);
        }
        wait_playing(&v1, 30, DEADLINE).await?;
        wait_playing(&v2, 30, DEADLINE).await?;

        // The publisher leaves with WHIP DELETE: the room ends everywhere.
        let location = publisher.eval("window.cascade.location").await?;
        let status = reqwest::Client::new()
            .delete(location.as_str().unwrap())
            .send()
            .await?
            .status();
        assert_eq!(status, 200);
        for node in [&origin, &edge1, &edge2] {
            poll("the room to end", DEADLINE, || async {
                Ok(node.room("e2e").await?.is_none().then_some(()))
            })
            .await?;
        }
        for b in [publisher, v1, v2] {
            b.kill().await;
        }
    }
    Ok(())
}

#[tokio::test]
async fn relay_link_is_torn_down_when_an_edge_loses_its_last_viewer() -> anyhow::Result<()> {
    let origin = NodeProc::origin("origin-1")?;
    let edge1 = NodeProc::edge("edge-1", &origin)?;
    let edge2 = NodeProc::edge("edge-2", &origin)?;
    let driver = Chromedriver::start().await?;
    let _publisher = publish(&driver, &origin, "teardown", "VP8").await?;
    let a1 = watch(&driver, &edge1, "teardown").await?;
    let a2 = watch(&driver, &edge1, "teardown").await?;
    let b = watch(&driver, &edge2, "teardown").await?;
    for v in [&a1, &a2, &b] {
        wait_playing(v, 10, DEADLINE).await?;
    }
    // Two viewers on edge-1 share one upstream copy.
    assert_eq!(subscribers(&edge1, "teardown").await?, Some(2));
    assert_eq!(subscribers(&origin, "teardown").await?, Some(2));

    // Kill one viewer (no WHEP DELETE): edge-1 still carries the room.
    a1.kill().await;
    poll("edge-1 to notice the dead viewer", DEADLINE, || async {
        Ok((subscribers(&edge1, "teardown").await? == Some(1)).then_some(()))
    })
    .await?;
    assert_eq!(subscribers(&origin, "teardown").await?, Some(2));

    // Kill edge-1's last viewer: its relay link goes, edge-2's stays and keeps playing.
    let started = Instant::now();
    a2.kill().await;
    poll("edge-1's relay link to be torn down", DEADLINE, || async {
        let gone = edge1.room("teardown").await?.is_none()
            && subscribers(&origin, "teardown").await? == Some(1);
        Ok(gone.then_some(()))
    })
    .await?;
    println!(
        "relay link torn down {:?} after edge-1's last viewer was killed",
        started.elapsed()
    );
    wait_playing(&b, 30, DEADLINE).await?;
    Ok(())
}

#[tokio::test]
async fn viewer_joining_mid_stream_gets_a_picture_quickly() -> anyhow::Result<()> {
    let origin = NodeProc::origin("origin-1")?;
    let edge = NodeProc::edge("edge-1", &origin)?;
    let driver = Chromedriver::start().await?;
    let _publisher = publish(&driver, &origin, "late", "VP8").await?;
    // Someone is already watching, so the edge carries the room when the late viewer comes.
    let early = watch(&driver, &edge, "late").await?;
    wait_playing(&early, 10, DEADLINE).await?;
    // Ten seconds into the stream (counted from the publisher connecting), a viewer joins.
    poll("ten seconds of stream", Duration::from_secs(20), || async {
        let age = origin
            .room("late")
            .await?
            .and_then(|r| r["age_seconds"].as_u64())
            .unwrap_or(0);
        Ok((age >= 10).then_some(()))
    })
    .await?;
    let late = watch(&driver, &edge, "late").await?;
    wait_playing(&late, 1, DEADLINE).await?;
    let first_frame_ms = poll("the page's first-frame time", DEADLINE, || async {
        Ok(late.eval("window.cascade.firstFrameMs").await?.as_u64())
    })
    .await?;
    let join = late.eval("window.cascade.join").await?;
    // Reported, not asserted: speed is measured in benchmarks, not in tests.
    println!(
        "late joiner, ms after starting: ICE servers {}, candidates gathered {}, answer {}, \
         connected {}, first frame shown {first_frame_ms}",
        join["servers"], join["gathered"], join["answered"], join["connected"]
    );
    Ok(())
}

/// The README's first command: `cascade demo` serves a publish page and a watch page per edge,
/// and what is published on the first plays on the others.
#[tokio::test]
async fn demo_cluster_publish_and_watch_pages_work() -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    let mut demo = std::process::Command::new(cascade_tests::bin("cascade"))
        .args(["demo", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = demo.stdout.take().unwrap();
    let demo = Kill(demo);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut publish = None;
    let mut watch = Vec::new();
    while publish.is_none() || watch.len() < 2 {
        let line = rx.recv_timeout(Duration::from_secs(30))?;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_owned);
        if line.contains("Publish") {
            publish = url;
        } else if line.contains("Watch") {
            watch.extend(url);
        }
    }
    let driver = Chromedriver::start().await?;
    let publisher = driver.browser().await?;
    publisher
        .open(&format!("{}&autostart=1", publish.unwrap()))
        .await?;
    publisher.wait_connected(DEADLINE).await?;
    for url in &watch {
        let viewer = driver.browser().await?;
        viewer.open(&format!("{url}&autostart=1")).await?;
        let stats = wait_playing(&viewer, 30, DEADLINE).await?;
        assert!(stats["frameWidth"].as_u64().unwrap_or(0) > 0, "{stats}");
        // The page shows the stats a user asked for.
        for id in ["s-res", "s-fps", "s-vbr", "s-loss", "s-rtt"] {
            let text = viewer
                .eval(&format!("document.getElementById('{id}').textContent"))
                .await?;
            assert_ne!(text, "–", "{id} is not filled in");
        }
        viewer.kill().await;
    }
    drop(demo);
    Ok(())
}

/// A publisher whose connection dies (its browser gone without a WHIP `DELETE`) publishes again
/// to the same origin: the origin resumes the room, and a viewer on an edge keeps decoding on
/// the peer connection it has (no new WHEP session, no renegotiation).
#[tokio::test]
async fn a_publisher_that_comes_back_resumes_the_room_for_its_viewers() -> anyhow::Result<()> {
    let origin = NodeProc::origin("origin-1")?;
    let edge = NodeProc::edge("edge-1", &origin)?;
    let driver = Chromedriver::start().await?;
    let first = publish(&driver, &origin, "back", "VP8").await?;
    let viewer = watch(&driver, &edge, "back").await?;
    wait_playing(&viewer, 30, DEADLINE).await?;
    let session = viewer.eval("window.cascade.location").await?;

    first.kill().await;
    poll("the origin to wait for its publisher", DEADLINE, || async {
        Ok(origin
            .log()
            .iter()
            .any(|l| l.contains("waiting for it to come back"))
            .then_some(()))
    })
    .await?;
    let _second = publish(&driver, &origin, "back", "VP8").await?;
    assert!(
        origin
            .log()
            .iter()
            .any(|l| l.contains("publisher joined") && l.contains("resumed=true")),
        "the second publisher resumed the room"
    );
    let frames_before = viewer.stats().await?["framesDecoded"].as_u64().unwrap_or(0);
    let stats = wait_playing(&viewer, 30, DEADLINE).await?;
    assert!(
        stats["framesDecoded"].as_u64().unwrap_or(0) >= frames_before + 30,
        "{stats}"
    );
    assert_eq!(
        viewer.eval("window.cascade.location").await?,
        session,
        "the same WHEP session"
    );
    assert_eq!(subscribers(&edge, "back").await?, Some(1));
    println!("after the publisher came back: {stats}");
    Ok(())
}
