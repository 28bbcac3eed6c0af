//! Media: the forwarding decisions and the structures packets travel through, free of
//! sockets and of WebRTC sessions.
//!
//! - [`forward`]: pure per-packet decisions (rewriting, keyframes, rate limits, the keyframe
//!   cache).
//! - [`room`]: one source per track, fan-out to subscribers' queues.
//! - [`layers`]: simulcast layers as room tracks, and which one a subscriber is sent.
//! - [`egress`]: a mux viewer's own SRTP, NACK history, sender reports, the key tap.
//! - [`outbox`]: datagrams back to back in one reused buffer.
//! - `synthetic` (feature `test-support`): a remote track fed from a channel.
//!
//! [`MediaKind`] and [`RoomId`] are the vocabulary every layer above uses. Imports only
//! [`crate::obs`] and [`crate::error`].

pub mod bwe;
pub mod egress;
pub mod forward;
pub mod keyframe_limit;
pub mod layers;
pub mod outbox;
pub mod red;
pub mod room;
#[cfg(any(test, feature = "test-support"))]
pub mod synthetic;

use crate::error::{Error, Result};

/// The kind of one media section or track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        }
    }
}

/// A room's name, checked: 1 to 128 characters of letters, digits, `-`, `_` or `.` (it
/// appears in URLs, Redis keys and logs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(String);

impl RoomId {
    /// Checks `room` and wraps it.
    pub fn parse(room: &str) -> Result<Self> {
        Self::validate(room)?;
        Ok(Self(room.to_owned()))
    }

    /// Checks `room` without keeping it.
    pub fn validate(room: &str) -> Result<()> {
        if room.is_empty()
            || room.len() > 128
            || !room
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::BadRequest(
                "room names are 1 to 128 characters of letters, digits, '-', '_' or '.'".into(),
            ));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RoomId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_checked() {
        assert!(RoomId::parse("show-1_a.b").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(129)] {
            assert!(RoomId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(RoomId::parse("r").unwrap().as_str(), "r");
    }
}
