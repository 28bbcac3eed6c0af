//! The room's pure logic: holds, and how long [`Room::ready`] waits for tracks and layers,
//! with sources that send nothing (tokio's clock paused).

use super::*;
use crate::media::synthetic::SyntheticTrack;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

/// Binds a source of `kind` that sends nothing to `room`, as simulcast layer `rid` of group 0
/// if given. Returns what keeps the source open.
async fn bind(
    room: &Arc<Room>,
    kind: RtpCodecKind,
    ssrc: u32,
    rid: Option<&str>,
) -> mpsc::UnboundedSender<Packet> {
    let layer = rid.map(|rid| Layer {
        group: 0,
        rid: rid.into(),
    });
    let mime = match kind {
        RtpCodecKind::Audio => "audio/opus",
        _ => "video/VP8",
    };
    let codec = RTCRtpCodec {
        mime_type: mime.into(),
        ..Default::default()
    };
    let (open, packets) = mpsc::unbounded_channel();
    let source = SyntheticTrack::new(kind, codec, ssrc, packets, Default::default());
    let bound = room.add_track(Arc::new(source), layer).await;
    assert!(bound.is_some(), "track {ssrc} bound");
    open
}

/// `took` is `want`, to the timer's millisecond.
fn about(took: Duration, want: Duration) -> bool {
    took.abs_diff(want) <= Duration::from_millis(2)
}

/// How long `ready` took, and the tracks it gave, for a room whose upstream described audio
/// and three layers of one video group: the audio and layers `rids` came at once, `late`'s
/// layer after its delay.
async fn relayed_ready_after(
    rids: &[&'static str],
    late: Option<(Duration, &'static str)>,
) -> (Duration, usize) {
    let room = Room::new("r", true);
    room.expect_layers(3);
    room.expect_tracks(2);
    let mut open = vec![bind(&room, RtpCodecKind::Audio, 1, None).await];
    for (i, rid) in rids.iter().enumerate() {
        open.push(bind(&room, RtpCodecKind::Video, 10 + i as u32, Some(rid)).await);
    }
    if let Some((after, rid)) = late {
        let room = room.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _open = bind(&room, RtpCodecKind::Video, 20, Some(rid)).await;
            std::future::pending::<()>().await;
        });
    }
    let start = tokio::time::Instant::now();
    let tracks = room
        .ready(Duration::from_secs(10))
        .await
        .expect("room open");
    let took = start.elapsed();
    // A later subscriber does not wait again.
    let again = tokio::time::Instant::now();
    room.ready(Duration::from_secs(10))
        .await
        .expect("room open");
    assert_eq!(again.elapsed(), Duration::ZERO, "a later subscriber waited");
    (took, tracks.len())
}

/// A relayed room waits for the layers an upstream described for the room's first
/// `LAYER_WAIT` (a layer ramping up comes from its first keyframe), and not past it: a layer
/// paused upstream does not hold a joining viewer for the join's whole timeout.
#[tokio::test(start_paused = true)]
async fn a_relayed_room_waits_for_its_other_layers_early_on() {
    let (took, tracks) = relayed_ready_after(&["l", "m", "h"], None).await;
    assert_eq!((took, tracks), (Duration::ZERO, 4), "all came: no wait");

    let (took, tracks) = relayed_ready_after(&["l", "m"], None).await;
    assert_eq!(tracks, 3, "a layer that never comes is left out");
    assert!(
        about(took, LAYER_WAIT),
        "and waited for only so long: {took:?}"
    );

    let late = Some((Duration::from_millis(300), "h"));
    let (took, tracks) = relayed_ready_after(&["l", "m"], late).await;
    assert_eq!(tracks, 4, "a late layer is waited for");
    assert!(about(took, Duration::from_millis(300)), "{took:?}");
}

/// Until one layer of each group came, a relayed room is not ready; if that takes longer
/// than `LAYER_WAIT`, the other layers still get `RELAYED_LAYER_WAIT`.
#[tokio::test(start_paused = true)]
async fn a_relayed_room_is_not_ready_before_each_group_has_a_layer() {
    let first = LAYER_WAIT + Duration::from_secs(1);
    let (took, tracks) = relayed_ready_after(&[], Some((first, "m"))).await;
    assert_eq!(tracks, 2);
    assert!(about(took, first + RELAYED_LAYER_WAIT), "{took:?}");
}

/// A publisher's room waits for its declared layers for the room's first `LAYER_WAIT`.
#[tokio::test(start_paused = true)]
async fn a_publishers_room_waits_for_its_layers_early_on() {
    let room = Room::new("p", false);
    room.expect_layers(3);
    room.expect_tracks(2);
    let _open = [
        bind(&room, RtpCodecKind::Audio, 1, None).await,
        bind(&room, RtpCodecKind::Video, 10, Some("l")).await,
    ];
    let start = tokio::time::Instant::now();
    let tracks = room
        .ready(Duration::from_secs(10))
        .await
        .expect("room open");
    assert_eq!(tracks.len(), 2);
    assert!(about(start.elapsed(), LAYER_WAIT), "{:?}", start.elapsed());
}

/// A downstream node's hold keeps the room but is not a session, and ends once: at the
/// link it was for or at its deadline, whichever comes first.
#[test]
fn a_hold_is_not_a_session_and_ends_once() {
    let room = Room::new("r", true);
    room.reserve();
    room.mark_hold();
    assert_eq!((room.reservations(), room.sessions()), (1, 0));
    // The link's own reservation, then the link takes the hold over.
    room.reserve();
    assert_eq!(room.sessions(), 1);
    assert!(room.take_hold());
    assert_eq!(room.release(), 1);
    assert_eq!((room.reservations(), room.sessions()), (1, 1));
    // The hold's deadline finds nothing left to release.
    assert!(!room.take_hold());
    assert_eq!(room.sessions(), 1);
}
