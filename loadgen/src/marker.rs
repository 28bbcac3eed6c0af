//! The 16-byte marker every generated packet carries after its codec header, and the clock it is
//! stamped with.
//!
//! Layout (big endian): magic `u32`, send time `u64` (nanoseconds since [`now_ns`]'s process-wide
//! epoch), the packet's index on its track `u32`. Publisher and viewers live in one process, so a
//! viewer subtracts the send time from its own [`now_ns`] to get the one-way latency through the
//! SFU on a single clock, and the index tells which publisher packet it is whatever the SFU did
//! to the RTP sequence numbers.

use std::sync::OnceLock;
use std::time::Instant;

/// `"CSCD"`: tells our packets from anything else that might arrive.
pub const MAGIC: u32 = 0x4353_4344;
/// Bytes the marker takes in a payload.
pub const MARKER_LEN: usize = 16;
/// The Opus TOC byte our audio payloads start with: config 31 (CELT fullband, 20 ms), stereo,
/// one frame.
pub const OPUS_TOC: u8 = 0xfc;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process-wide epoch (the first call). Monotonic.
pub fn now_ns() -> u64 {
    ns_at(Instant::now())
}

/// `at` in [`now_ns`] time (0 before the epoch): for a driver that already read the clock once
/// for a batch of datagrams.
pub fn ns_at(at: Instant) -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(*epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// What a generated packet says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// When the publisher built it, in [`now_ns`] time.
    pub sent_ns: u64,
    /// Its index on its track: 0, 1, 2... in the order the publisher sent them.
    pub index: u32,
}

impl Marker {
    pub fn to_bytes(self) -> [u8; MARKER_LEN] {
        let mut out = [0u8; MARKER_LEN];
        out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        out[4..12].copy_from_slice(&self.sent_ns.to_be_bytes());
        out[12..16].copy_from_slice(&self.index.to_be_bytes());
        out
    }

    /// Reads a marker at the start of `bytes`; `None` when too short or the magic is wrong.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let raw: &[u8; MARKER_LEN] = bytes.get(..MARKER_LEN)?.try_into().ok()?;
        let magic = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if magic != MAGIC {
            return None;
        }
        let mut sent = [0u8; 8];
        sent.copy_from_slice(&raw[4..12]);
        Some(Self {
            sent_ns: u64::from_be_bytes(sent),
            index: u32::from_be_bytes([raw[12], raw[13], raw[14], raw[15]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for m in [
            Marker {
                sent_ns: 0,
                index: 0,
            },
            Marker {
                sent_ns: 123_456_789_012,
                index: 77,
            },
            Marker {
                sent_ns: u64::MAX,
                index: u32::MAX,
            },
        ] {
            assert_eq!(Marker::decode(&m.to_bytes()), Some(m));
            // Trailing bytes (filler) do not matter.
            let mut longer = m.to_bytes().to_vec();
            longer.extend_from_slice(&[0xff; 40]);
            assert_eq!(Marker::decode(&longer), Some(m));
        }
    }

    #[test]
    fn wrong_magic_or_short_is_none() {
        let m = Marker {
            sent_ns: 5,
            index: 6,
        }
        .to_bytes();
        assert_eq!(Marker::decode(&m[..15]), None);
        let mut bad = m;
        bad[0] ^= 1;
        assert_eq!(Marker::decode(&bad), None);
    }
}
