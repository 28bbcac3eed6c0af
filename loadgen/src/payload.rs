//! Where the [`Marker`] sits in each payload format the load generator sends, and reading it
//! back out of a received RTP payload: the one place that knows both the marker and the codecs'
//! payload layouts ([`crate::vp8`]).

use crate::marker::Marker;
use crate::vp8;

/// The payload formats the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    Vp8,
    Opus,
}

/// Finds and reads the marker in an RTP payload of `format`: after the VP8 payload descriptor
/// and, on a frame's first packet, the VP8 frame header; after the Opus TOC byte. Never panics,
/// whatever the bytes.
pub fn find(format: PayloadFormat, payload: &[u8]) -> Option<Marker> {
    let at = match format {
        PayloadFormat::Vp8 => vp8::marker_offset(payload)?,
        PayloadFormat::Opus => 1,
    };
    Marker::decode(payload.get(at..)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marker::OPUS_TOC;

    #[test]
    fn finds_opus_marker_after_toc() {
        let m = Marker {
            sent_ns: 42,
            index: 9,
        };
        let mut payload = vec![OPUS_TOC];
        payload.extend_from_slice(&m.to_bytes());
        payload.resize(120, 0);
        assert_eq!(find(PayloadFormat::Opus, &payload), Some(m));
    }

    /// A small deterministic generator, so the garbage test needs no extra crate and is the same
    /// on every run.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..300usize {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
                let _ = Marker::decode(&bytes);
                let _ = find(PayloadFormat::Vp8, &bytes);
                let _ = find(PayloadFormat::Opus, &bytes);
            }
        }
        // Descriptors that claim extensions past the end, and every single-byte payload.
        for b in 0..=255u8 {
            for tail in [
                &[][..],
                &[0x80][..],
                &[0xff, 0xff][..],
                &[0x80, 0x80, 0x80][..],
            ] {
                let mut bytes = vec![b];
                bytes.extend_from_slice(tail);
                let _ = find(PayloadFormat::Vp8, &bytes);
                let _ = find(PayloadFormat::Opus, &bytes);
            }
        }
        // A marker whose magic is right but which is cut short.
        let cut = &Marker {
            sent_ns: 1,
            index: 2,
        }
        .to_bytes()[..10];
        let mut opus = vec![OPUS_TOC];
        opus.extend_from_slice(cut);
        assert_eq!(find(PayloadFormat::Opus, &opus), None);
    }
}
