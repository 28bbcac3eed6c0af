//! Redundant audio (RED, RFC 2198) passed through, in real browsers: a Chromium publisher offers
//! `audio/red` over Opus by WHIP, the origin's answer prefers it, so the publisher sends RED; an
//! edge pulls the room over a relay link. A Chromium viewer that takes RED is sent it as it came
//! (each packet also carrying the frame before, so one lost packet costs no audio), and a viewer
//! whose offer leaves RED out is sent each packet's primary block alone, plain Opus it decodes.

use anyhow::Result;
use cascade_tests::netlab::ClientNet;
use cascade_tests::{
    Browser, Chromedriver, NodeProc, poll, publish_vp8, wait_playing, watch_in_lab,
};
use serde_json::Value;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// The page's received audio: its codec's MIME type, samples played and concealed, energy.
async fn audio_in(viewer: &Browser) -> Result<Value> {
    viewer
        .eval(
            "(async () => {
              const report = await window.cascade.pc.getStats();
              let a = null;
              report.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') a = s; });
              if (!a) return null;
              const codec = a.codecId ? report.get(a.codecId) : null;
              return {
                mime: codec ? codec.mimeType : null,
                packets: a.packetsReceived || 0,
                samples: a.totalSamplesReceived || 0,
                concealed: a.concealedSamples || 0,
                energy: a.totalAudioEnergy || 0,
              };
            })()",
        )
        .await
}

/// Waits until the viewer has played `samples` more audio samples than at the start, and
/// returns what it played and concealed meanwhile.
async fn play_audio(viewer: &Browser, samples: u64) -> Result<(Value, u64, u64)> {
    poll("audio to arrive", DEADLINE, || async {
        Ok(audio_in(viewer).await?.as_object().map(|_| ()))
    })
    .await?;
    let start = audio_in(viewer).await?;
    let n = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0) as u64;
    let end = poll("audio samples to be played", DEADLINE, || async {
        let now = audio_in(viewer).await?;
        Ok((n(&now, "samples") >= n(&start, "samples") + samples).then_some(now))
    })
    .await?;
    let played = n(&end, "samples") - n(&start, "samples");
    let concealed = n(&end, "concealed") - n(&start, "concealed");
    Ok((end, played, concealed))
}

/// Payload types and codecs of `sdp`'s audio section, in its order.
fn audio_codecs(sdp: &Value) -> Vec<String> {
    let sdp = sdp.as_str().unwrap_or_default();
    let Some(m) = sdp.lines().find(|l| l.starts_with("m=audio ")) else {
        return Vec::new();
    };
    m.split(' ')
        .skip(3)
        .map(|pt| {
            let prefix = format!("a=rtpmap:{pt} ");
            sdp.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or(pt)
                .to_ascii_lowercase()
        })
        .collect()
}

#[tokio::test]
async fn red_goes_through_to_viewers_that_take_it_and_opus_to_those_that_do_not() -> Result<()> {
    let net = ClientNet::create("red")?;
    let origin = NodeProc::origin("origin-1")?;
    let upstream = origin.grpc_url();
    let edge = NodeProc::for_lab("cascade-edge", "edge-1", &net, &["--upstream", &upstream])?;
    let driver = Chromedriver::start().await?;
    let publisher = publish_vp8(&driver, &origin, "red").await?;
    let answer = audio_codecs(
        &publisher
            .eval("window.cascade.pc.remoteDescription.sdp")
            .await?,
    );
    assert_eq!(
        answer.first().map(String::as_str),
        Some("red/48000/2"),
        "the WHIP answer prefers RED: {answer:?}"
    );
    let codec = poll("the origin's audio track", DEADLINE, || async {
        let room = origin.room("red").await?;
        Ok(room.and_then(|r| {
            r["tracks"]
                .as_array()?
                .iter()
                .find(|t| t["kind"] == "audio")
                .and_then(|t| t["codec"].as_str().map(str::to_owned))
        }))
    })
    .await?;
    assert_eq!(
        codec.to_ascii_lowercase(),
        "audio/red",
        "the publisher sends RED"
    );

    // Two viewers in the network lab: one takes RED (Chromium's default offer), the other's
    // offer leaves it out.
    let lab = Chromedriver::start_in(Some(&net)).await?;
    let red_viewer = watch_in_lab(&lab, &net, &edge, "red").await?;
    let opus_viewer = lab.browser().await?;
    opus_viewer
        .open(&format!(
            "http://{}:{}/watch.html?room=red",
            net.host_ip,
            edge.http.port()
        ))
        .await?;
    opus_viewer
        .eval(
            "(() => {
              const add = RTCPeerConnection.prototype.addTransceiver;
              RTCPeerConnection.prototype.addTransceiver = function (kind, init) {
                const t = add.call(this, kind, init);
                if (kind === 'audio') {
                  t.setCodecPreferences(RTCRtpReceiver.getCapabilities('audio').codecs
                    .filter((c) => c.mimeType.toLowerCase() !== 'audio/red'));
                }
                return t;
              };
              start();
              return true;
            })()",
        )
        .await?;
    wait_playing(&red_viewer, 30, DEADLINE).await?;
    wait_playing(&opus_viewer, 30, DEADLINE).await?;
    let red_answer = audio_codecs(
        &red_viewer
            .eval("window.cascade.pc.remoteDescription.sdp")
            .await?,
    );
    assert!(
        red_answer.iter().any(|c| c == "red/48000/2"),
        "{red_answer:?}"
    );
    let opus_offer = audio_codecs(
        &opus_viewer
            .eval("window.cascade.pc.localDescription.sdp")
            .await?,
    );
    assert!(
        !opus_offer.iter().any(|c| c.starts_with("red/")),
        "{opus_offer:?}"
    );

    // 10 % of the lab's packets lost: a viewer of plain Opus conceals about that much; RED
    // repairs a lost packet from the next, so its viewer conceals only runs of losses.
    net.random_loss(10)?;
    let mut concealed_share = Vec::new();
    for (name, viewer) in [("RED viewer", &red_viewer), ("Opus viewer", &opus_viewer)] {
        let (end, played, concealed) = play_audio(viewer, 10 * 48_000).await?;
        let share = concealed as f64 / played as f64;
        println!(
            "{name} at 10 % loss: {played} samples played, {concealed} concealed ({:.1} %); {end}",
            share * 100.0
        );
        assert_eq!(
            end["mime"].as_str().map(str::to_ascii_lowercase).as_deref(),
            Some("audio/opus"),
            "{name} decodes Opus"
        );
        concealed_share.push(share);
    }
    let (red, opus) = (concealed_share[0], concealed_share[1]);
    // Primary blocks cut from RED decode: what the Opus viewer conceals is the loss, not its
    // whole stream (RED's headers handed to the decoder as Opus would be).
    assert!(
        opus < 0.3,
        "the Opus viewer concealed {:.1} %",
        opus * 100.0
    );
    assert!(
        red < opus * 0.5,
        "RED repaired losses: {:.1} % concealed against {:.1} % without",
        red * 100.0,
        opus * 100.0
    );
    Ok(())
}
