//! Redundant audio (RED, RFC 2198): a packet carries, besides the current audio frame (the
//! primary block), copies of earlier ones, so a receiver that lost a packet plays its frame
//! from the next. Browsers send Opus in RED where the answer prefers `audio/red`.
//!
//! A room whose publisher sends RED keeps it: viewers that take RED are sent it as it came, and
//! viewers that do not are sent the primary block alone, a plain Opus packet
//! ([`primary_offset`]: a slice of the same buffer, nothing copied).

use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;

/// RED's MIME type.
pub const MIME_TYPE_RED: &str = "audio/red";

/// The payload type RED gets in the codecs we register: browsers' own choice, so a relay
/// link between two nodes keeps it.
pub const PAYLOAD_TYPE: u8 = 63;

/// Whether `codec` is RED.
pub fn is_red(codec: &RTCRtpCodec) -> bool {
    codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_RED)
}

/// The codec a viewer that does not take RED is sent in its place: Opus, whose packets the
/// primary blocks are.
pub fn primary_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: Vec::new(),
    }
}

/// Where the primary block of a RED `payload` starts (its data runs to the end): after the
/// block headers (4 bytes for each redundant block, whose F bit is set; 1 for the primary) and
/// the redundant blocks' data. `None` for a payload that is not well-formed RED.
pub fn primary_offset(payload: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut redundant = 0usize;
    loop {
        let &header = payload.get(at)?;
        if header & 0x80 == 0 {
            at += 1;
            break;
        }
        let block = payload.get(at..at + 4)?;
        redundant += usize::from(u16::from_be_bytes([block[2], block[3]]) & 0x03ff);
        at += 4;
    }
    let primary = at + redundant;
    (primary <= payload.len()).then_some(primary)
}

/// The payload types a RED format line (`a=fmtp:63 111/111`) names for its blocks, if they
/// are all one (the form browsers use).
pub fn block_payload_type(fmtp: &str) -> Option<u8> {
    let mut types = fmtp.trim().split('/').map(|t| t.trim().parse::<u8>());
    let first = types.next()?.ok()?;
    types.all(|t| t == Ok(first)).then_some(first)
}

/// Moves RED to the front of the audio sections' formats of an SDP offer, where the offer has
/// it over an Opus format it also offers: browsers send RED only when the answer prefers it,
/// and an answer lists the codecs in the offer's order.
pub fn prefer_red(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    let lines: Vec<&str> = sdp.split_inclusive('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with("m="))
            .unwrap_or(lines.len());
        if line.starts_with("m=audio ") {
            let section = &lines[i + 1..end];
            match red_in_section(section) {
                Some((red, _)) => out.push_str(&moved_first(line, &red)),
                None => out.push_str(line),
            }
            for l in section {
                out.push_str(l);
            }
        } else {
            for l in &lines[i..end] {
                out.push_str(l);
            }
        }
        i = end;
    }
    out
}

/// The payload type of the first audio section's RED format whose blocks are a format the
/// section offers as Opus, and that format's: what a subscriber's offer takes RED as.
pub fn offered(sdp: &str) -> Option<(String, u8)> {
    let lines: Vec<&str> = sdp.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("m=audio "))?;
    let end = (start + 1..lines.len())
        .find(|&j| lines[j].starts_with("m="))
        .unwrap_or(lines.len());
    red_in_section(&lines[start + 1..end])
}

/// The payload type of a section's RED format whose blocks are a format the section offers as
/// Opus, and the blocks' payload type.
fn red_in_section(section: &[&str]) -> Option<(String, u8)> {
    fn attr<'a>(
        section: &'a [&'a str],
        prefix: &'static str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        section
            .iter()
            .filter_map(move |l| l.trim_end().strip_prefix(prefix))
            .filter_map(|rest| rest.split_once(' '))
    }
    let opus: Vec<&str> = attr(section, "a=rtpmap:")
        .filter(|(_, codec)| codec.to_ascii_lowercase().starts_with("opus/"))
        .map(|(pt, _)| pt)
        .collect();
    attr(section, "a=rtpmap:")
        .filter(|(_, codec)| codec.to_ascii_lowercase().starts_with("red/"))
        .map(|(pt, _)| pt)
        .find_map(|pt| {
            attr(section, "a=fmtp:")
                .filter(|(p, _)| *p == pt)
                .find_map(|(_, fmtp)| block_payload_type(fmtp))
                .filter(|b| opus.contains(&b.to_string().as_str()))
                .map(|b| (pt.to_owned(), b))
        })
}

/// `m=audio 9 UDP/TLS/RTP/SAVPF 111 63 ...` with `pt` moved to the front of the formats.
fn moved_first(m_line: &str, pt: &str) -> String {
    let (body, eol) = match m_line.strip_suffix("\r\n") {
        Some(b) => (b, "\r\n"),
        None => (
            m_line.trim_end_matches('\n'),
            if m_line.ends_with('\n') { "\n" } else { "" },
        ),
    };
    let fields: Vec<&str> = body.split(' ').collect();
    if fields.len() < 4 {
        return m_line.to_owned();
    }
    let mut formats: Vec<&str> = fields[3..].iter().copied().filter(|f| *f != pt).collect();
    formats.insert(0, pt);
    format!("{} {}{eol}", fields[..3].join(" "), formats.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One redundant block of 3 bytes (timestamp offset 960), then a primary of 2.
    #[test]
    fn the_primary_block_follows_the_headers_and_the_redundant_data() {
        let offset: u16 = 960;
        let ts_and_len = (u32::from(offset) << 10) | 3;
        let mut p = vec![0x80 | 111];
        p.extend_from_slice(&ts_and_len.to_be_bytes()[1..]);
        p.push(111);
        p.extend_from_slice(&[1, 2, 3, 9, 8]);
        assert_eq!(primary_offset(&p), Some(8));
        assert_eq!(&p[8..], &[9, 8]);
        // No redundancy: a one-byte header, then the primary.
        assert_eq!(primary_offset(&[111, 5, 6]), Some(1));
    }

    #[test]
    fn malformed_red_has_no_primary() {
        assert_eq!(primary_offset(&[]), None);
        // A redundant block's header cut short.
        assert_eq!(primary_offset(&[0x80 | 111, 0, 0]), None);
        // Lengths that run past the end.
        assert_eq!(primary_offset(&[0x80 | 111, 0, 0x03, 0xff, 111, 1]), None);
        // Only redundant headers, no primary header.
        assert_eq!(primary_offset(&[0x80 | 111, 0, 0, 0]), None);
    }

    #[test]
    fn block_payload_types_are_read_from_the_format_line() {
        assert_eq!(block_payload_type("111/111"), Some(111));
        assert_eq!(block_payload_type(" 111 / 111 "), Some(111));
        assert_eq!(block_payload_type("111/109"), None);
        assert_eq!(block_payload_type("x"), None);
    }

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n\
        a=rtpmap:9 G722/8000\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 63\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n";

    #[test]
    fn an_offer_with_red_over_opus_gets_red_first_in_its_audio_section_only() {
        let out = prefer_red(OFFER);
        assert!(
            out.contains("m=audio 9 UDP/TLS/RTP/SAVPF 63 111 9\r\n"),
            "{out}"
        );
        assert!(
            out.contains("m=video 9 UDP/TLS/RTP/SAVPF 96 63\r\n"),
            "{out}"
        );
        assert_eq!(out.len(), OFFER.len());
        // Without RED, or with RED over a format that is not Opus: unchanged.
        let plain = OFFER.replace("a=rtpmap:63 red/48000/2\r\n", "");
        assert_eq!(prefer_red(&plain), plain);
        let other = OFFER.replace("a=fmtp:63 111/111", "a=fmtp:63 9/9");
        assert_eq!(prefer_red(&other), other);
        assert_eq!(offered(OFFER), Some(("63".to_owned(), 111)));
        assert_eq!(offered(&plain), None);
        assert_eq!(offered(&other), None);
    }
}
