//! Simulcast layers: a publisher's video track sent as several encodings (RFC 8853 `a=rid`),
//! each a room track of its own, and which of them a subscriber is sent.
//!
//! Each layer is a [`crate::media::room::RoomTrack`] with its own fan-out, keyframe cache and
//! keyframe requests (to that layer's SSRC), carrying a [`Layer`] that names its group (the
//! publisher's track it belongs to) and its RID. A relay link carries every layer, so an edge
//! holds them all; a viewer is sent one layer of each group, chosen at its join by
//! [`LayerChoice`]. Layers are ranked by the bytes each has brought so far: the top layer is
//! the one with the most, whatever its RID is called (publishers name them `h`/`m`/`l`,
//! `q`/`h`/`f`, `0`/`1`/`2`...).

/// A room track that is one simulcast layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The group: the layers of one publisher track share it (a number unique in the room, kept
    /// by relay links so every node of the tree groups alike).
    pub group: u32,
    /// The RTP stream id (`a=rid`) the publisher gave the layer.
    pub rid: String,
}

/// Which layer of each simulcast group a subscriber is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LayerChoice {
    /// Every layer, each as a track of its own: a relay link to another node.
    All,
    /// The layer with the most bytes: the best picture (a viewer's default).
    #[default]
    Top,
    /// The middle one by bytes (with two layers, the top one).
    Middle,
    /// The layer with the fewest bytes: thumbnails, small players, slow links.
    Bottom,
    /// The layer with this RID; the top one when the room has no such layer.
    Rid(String),
}

impl LayerChoice {
    /// Reads a WHEP `layer` query parameter: `high`, `mid`, `low`, or a RID (1 to 16 letters,
    /// digits, `-` or `_`, RFC 8851's `rid-id` characters).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "high" | "top" => Ok(Self::Top),
            "mid" | "middle" => Ok(Self::Middle),
            "low" | "bottom" => Ok(Self::Bottom),
            rid if !rid.is_empty()
                && rid.len() <= 16
                && rid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Ok(Self::Rid(rid.to_owned()))
            }
            _ => Err(format!(
                "layer must be high, mid, low or a RID of 1 to 16 letters, digits, '-' or '_', \
                 not {s:?}"
            )),
        }
    }

    /// Of a group's layers, given as `(rid, bytes so far)`, the index of the one to send; `None`
    /// only for an empty group. [`LayerChoice::All`] is not a choice of one: it answers the top.
    pub fn pick(&self, layers: &[(&str, u64)]) -> Option<usize> {
        if layers.is_empty() {
            return None;
        }
        // By bytes, most first; the earlier layer first on a tie, so the answer is stable.
        let mut ranked: Vec<usize> = (0..layers.len()).collect();
        ranked.sort_by(|&a, &b| layers[b].1.cmp(&layers[a].1).then(a.cmp(&b)));
        Some(match self {
            Self::All | Self::Top => ranked[0],
            Self::Middle => ranked[(ranked.len() - 1) / 2],
            Self::Bottom => ranked[ranked.len() - 1],
            Self::Rid(rid) => layers
                .iter()
                .position(|(r, _)| r == rid)
                .unwrap_or(ranked[0]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_ranked_by_bytes_whatever_their_names() {
        let layers = [("q", 100), ("h", 400), ("f", 1600)];
        assert_eq!(LayerChoice::Top.pick(&layers), Some(2));
        assert_eq!(LayerChoice::Middle.pick(&layers), Some(1));
        assert_eq!(LayerChoice::Bottom.pick(&layers), Some(0));
        assert_eq!(LayerChoice::Rid("h".into()).pick(&layers), Some(1));
        assert_eq!(LayerChoice::Rid("x".into()).pick(&layers), Some(2));
        // Two layers: the middle is the top one.
        assert_eq!(LayerChoice::Middle.pick(&[("a", 5), ("b", 9)]), Some(1));
        // Before any bytes, the first layer, the same each time.
        assert_eq!(LayerChoice::Top.pick(&[("a", 0), ("b", 0)]), Some(0));
        assert_eq!(LayerChoice::Top.pick(&[]), None);
    }

    #[test]
    fn the_query_parameter_is_checked() {
        assert_eq!(LayerChoice::parse("high"), Ok(LayerChoice::Top));
        assert_eq!(LayerChoice::parse("mid"), Ok(LayerChoice::Middle));
        assert_eq!(LayerChoice::parse("low"), Ok(LayerChoice::Bottom));
        assert_eq!(LayerChoice::parse("f"), Ok(LayerChoice::Rid("f".into())));
        for bad in ["", "a b", "x".repeat(17).as_str(), "é", "h;m"] {
            assert!(LayerChoice::parse(bad).is_err(), "{bad:?}");
        }
    }
}
