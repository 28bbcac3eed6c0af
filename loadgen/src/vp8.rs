//! Synthetic VP8 over RTP (RFC 7741), shaped like a real encoder's output so an SFU's keyframe
//! logic sees what it would see from a browser: a payload descriptor on every packet (S bit and
//! partition 0 on a frame's first packet, a 15-bit PictureID), a VP8 frame header on a frame's
//! first packet (RFC 6386 §9.1: frame tag, and on a keyframe the start code `9d 01 2a` with the
//! dimensions), then the [`Marker`](crate::marker::Marker), then filler. Nothing here decodes.

use crate::marker::{MARKER_LEN, Marker};
use bytes::{BufMut, Bytes, BytesMut};

/// Payload descriptor length we write: X, I with a 15-bit PictureID.
pub const DESCRIPTOR_LEN: usize = 4;
/// Frame header of a keyframe: 3-byte frame tag, start code, width, height.
pub const KEYFRAME_HEADER_LEN: usize = 10;
/// Frame header of an interframe: the frame tag.
pub const INTERFRAME_HEADER_LEN: usize = 3;
/// The smallest maximum payload size [`packetize`] accepts.
pub const MIN_MAX_PAYLOAD: usize = 64;

/// One frame to packetise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub keyframe: bool,
    /// 15-bit picture id (wraps).
    pub picture_id: u16,
    /// Bytes of RTP payload the frame should take in total (descriptors, headers, markers and
    /// filler); raised to the minimum one packet needs.
    pub size: usize,
    pub width: u16,
    pub height: u16,
}

/// Splits `frame` into RTP payloads of at most `max_payload` bytes (at least
/// [`MIN_MAX_PAYLOAD`]), sizes spread evenly. Packet `i` carries the marker
/// `{sent_ns, first_index + i}`. The caller sets the RTP marker bit on the last one.
pub fn packetize(frame: &Frame, max_payload: usize, first_index: u32, sent_ns: u64) -> Vec<Bytes> {
    let max_payload = max_payload.max(MIN_MAX_PAYLOAD);
    let header_len = if frame.keyframe {
        KEYFRAME_HEADER_LEN
    } else {
        INTERFRAME_HEADER_LEN
    };
    let total = frame.size.max(DESCRIPTOR_LEN + header_len + MARKER_LEN);
    let count = total.div_ceil(max_payload);
    let (base, extra) = (total / count, total % count);
    let picture_id = frame.picture_id & 0x7fff;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let size = base + usize::from(i < extra);
        let mut buf = BytesMut::with_capacity(size);
        let first = i == 0;
        // X=1, S on the first packet, partition index 0; I=1; M=1 (15-bit PictureID).
        buf.put_u8(0x80 | if first { 0x10 } else { 0 });
        buf.put_u8(0x80);
        buf.put_u16(0x8000 | picture_id);
        if first {
            put_frame_header(&mut buf, frame, total);
        }
        let index = first_index.wrapping_add(i as u32);
        buf.put_slice(&Marker { sent_ns, index }.to_bytes());
        // `size` is at least what was written: the first packet's share of `total` is over half
        // of `max_payload` whenever there are two or more packets.
        buf.resize(size.max(buf.len()), 0);
        out.push(buf.freeze());
    }
    out
}

fn put_frame_header(buf: &mut BytesMut, frame: &Frame, frame_len: usize) {
    // Frame tag: bit 0 is 0 on a keyframe, version 0, show_frame 1, first partition size in the
    // top 19 bits (a plausible quarter of the frame).
    let first_partition = u32::try_from(frame_len / 4)
        .unwrap_or(u32::MAX)
        .min(0x7_ffff);
    let tag = u32::from(!frame.keyframe) | (1 << 4) | (first_partition << 5);
    buf.put_slice(&tag.to_le_bytes()[..3]);
    if frame.keyframe {
        buf.put_slice(&[0x9d, 0x01, 0x2a]);
        buf.put_u16_le(frame.width & 0x3fff);
        buf.put_u16_le(frame.height & 0x3fff);
    }
}

/// The fields of an RTP VP8 payload descriptor we care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// S: the packet starts a VP8 partition.
    pub start: bool,
    /// PID: the partition index.
    pub partition: u8,
    pub picture_id: Option<u16>,
    /// Bytes the descriptor takes.
    pub len: usize,
}

/// Parses the payload descriptor at the start of `payload` (RFC 7741 §4.2); `None` if it is cut
/// short or nothing follows it.
pub fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let mut at = 1;
    let mut picture_id = None;
    if first & 0x80 != 0 {
        let ext = *payload.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            let pid = *payload.get(at)?;
            if pid & 0x80 != 0 {
                let low = *payload.get(at + 1)?;
                picture_id = Some(u16::from_be_bytes([pid & 0x7f, low]));
                at += 2;
            } else {
                picture_id = Some(u16::from(pid));
                at += 1;
            }
        }
        if ext & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    if at >= payload.len() {
        return None;
    }
    Some(Descriptor {
        start: first & 0x10 != 0,
        partition: first & 0x07,
        picture_id,
        len: at,
    })
}

/// Whether `payload` is the first packet of a keyframe: S set, partition 0, and the frame tag's
/// P bit 0 (what [`cascade_core::media::forward::keyframe_start`] checks too).
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    parse_descriptor(payload).is_some_and(|d| {
        d.start && d.partition == 0 && payload.get(d.len).is_some_and(|tag| tag & 0x01 == 0)
    })
}

/// Where our marker sits in a VP8 payload: after the descriptor, and after the frame header on
/// a frame's first packet.
pub fn marker_offset(payload: &[u8]) -> Option<usize> {
    let d = parse_descriptor(payload)?;
    if d.start && d.partition == 0 {
        let tag = *payload.get(d.len)?;
        let header = if tag & 0x01 == 0 {
            KEYFRAME_HEADER_LEN
        } else {
            INTERFRAME_HEADER_LEN
        };
        Some(d.len + header)
    } else {
        Some(d.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marker::Marker;
    use cascade_core::media::forward::{Codec, keyframe_start};

    fn frame(keyframe: bool, size: usize) -> Frame {
        Frame {
            keyframe,
            picture_id: 0x1234,
            size,
            width: 1280,
            height: 720,
        }
    }

    #[test]
    fn keyframe_first_packet_has_the_vp8_keyframe_header() {
        let packets = packetize(&frame(true, 5000), 1200, 100, 7);
        assert_eq!(packets.len(), 5);
        let p = &packets[0];
        assert_eq!(p[0], 0x90, "X and S set, partition 0");
        assert_eq!(p[1], 0x80, "I set");
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 0x8000 | 0x1234);
        assert_eq!(p[4] & 0x01, 0, "P bit 0: keyframe");
        assert_eq!(&p[7..10], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([p[10], p[11]]), 1280);
        assert_eq!(u16::from_le_bytes([p[12], p[13]]), 720);
        assert!(is_keyframe_start(p));
        // The SFU's own detector agrees.
        assert!(keyframe_start(Codec::Vp8, p));
        for later in &packets[1..] {
            assert_eq!(later[0], 0x80, "S clear after the first packet");
            assert!(!is_keyframe_start(later));
            assert!(!keyframe_start(Codec::Vp8, later));
        }
    }

    #[test]
    fn interframes_are_not_keyframes() {
        let packets = packetize(&frame(false, 3000), 1200, 0, 0);
        assert_eq!(packets[0][0], 0x90);
        assert_eq!(packets[0][4] & 0x01, 1, "P bit 1: interframe");
        for p in &packets {
            assert!(!is_keyframe_start(p));
            assert!(!keyframe_start(Codec::Vp8, p));
        }
    }

    #[test]
    fn sizes_add_up_and_respect_the_limit() {
        for size in [0, 1, 30, 33, 1199, 1200, 1201, 2400, 2401, 10_417, 100_000] {
            for keyframe in [false, true] {
                let packets = packetize(&frame(keyframe, size), 1200, 0, 0);
                let min =
                    DESCRIPTOR_LEN + MARKER_LEN + if keyframe { KEYFRAME_HEADER_LEN } else { 3 };
                let total: usize = packets.iter().map(|p| p.len()).sum();
                assert_eq!(total, size.max(min), "size {size} keyframe {keyframe}");
                assert_eq!(packets.len(), size.max(min).div_ceil(1200));
                assert!(packets.iter().all(|p| p.len() <= 1200));
            }
        }
        // A tiny limit is raised to the minimum rather than producing empty packets.
        let packets = packetize(&frame(true, 500), 1, 0, 0);
        assert!(packets.iter().all(|p| p.len() <= MIN_MAX_PAYLOAD));
    }

    #[test]
    fn every_packet_carries_its_marker() {
        for keyframe in [false, true] {
            let packets = packetize(&frame(keyframe, 4000), 1200, 41, 999);
            for (i, p) in packets.iter().enumerate() {
                let m =
                    Marker::decode(&p[marker_offset(p).expect("descriptor")..]).expect("marker");
                assert_eq!(m.index, 41 + i as u32);
                assert_eq!(m.sent_ns, 999);
            }
        }
    }

    #[test]
    fn picture_id_is_15_bits() {
        let mut f = frame(false, 100);
        f.picture_id = 0xffff;
        let p = &packetize(&f, 1200, 0, 0)[0];
        assert_eq!(parse_descriptor(p).unwrap().picture_id, Some(0x7fff));
    }

    #[test]
    fn descriptor_variants() {
        // No extension: 1 byte.
        assert_eq!(
            parse_descriptor(&[0x10, 0x00]),
            Some(Descriptor {
                start: true,
                partition: 0,
                picture_id: None,
                len: 1
            })
        );
        // 7-bit PictureID, TL0PICIDX and TID: 5 bytes.
        let d = parse_descriptor(&[0x90, 0xe0, 0x05, 0x01, 0x02, 0x00]).unwrap();
        assert_eq!(d.picture_id, Some(5));
        assert_eq!(d.len, 5);
        // Cut short, or nothing after the descriptor.
        assert_eq!(parse_descriptor(&[0x90, 0x80, 0x81]), None);
        assert_eq!(parse_descriptor(&[0x10]), None);
        assert_eq!(parse_descriptor(&[]), None);
    }
}
