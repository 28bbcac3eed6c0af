pub(crate) mod generic;
pub(crate) mod h264;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;

use generic::GenericFmtp;
use h264::H264Fmtp;

/// Fmtp interface for implementing custom
/// Fmtp parsers based on mime_type
pub(crate) trait Fmtp: fmt::Debug {
    /// mime_type returns the mime_type associated with
    /// the fmtp
    fn mime_type(&self) -> &str;

    /// match_fmtp compares two fmtp descriptions for
    /// compatibility based on the mime_type    
    fn match_fmtp(&self, f: &dyn Fmtp) -> bool;

    /// parameter returns a value for the associated key
    /// if contained in the parsed fmtp string
    fn parameter(&self, key: &str) -> Option<&String>;

    fn equal(&self, other: &dyn Fmtp) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl PartialEq for dyn Fmtp {
    fn eq(&self, other: &Self) -> bool {
        self.equal(other)
    }
}

/// Whether the fmtp of a codec of MIME type `a` may match that of a codec of MIME type `b`
/// (Cascade patch): `false` only where `parse(a, ..).match_fmtp(&*parse(b, ..))` is `false`
/// whatever the fmtp lines. An H.264 fmtp matches only an H.264 one, another only one of the
/// same MIME type, compared as `parse` and `GenericFmtp::match_fmtp` compare them. Allocates
/// nothing for ASCII MIME types.
pub(crate) fn may_match(a: &str, b: &str) -> bool {
    const H264: &str = "video/h264";
    if a.is_ascii() && b.is_ascii() {
        let (a_h264, b_h264) = (a.eq_ignore_ascii_case(H264), b.eq_ignore_ascii_case(H264));
        return a_h264 == b_h264 && (a_h264 || a.eq_ignore_ascii_case(b));
    }
    let is_h264 = |m: &str| m.to_uppercase() == H264.to_uppercase();
    let (a_h264, b_h264) = (is_h264(a), is_h264(b));
    a_h264 == b_h264 && (a_h264 || a.to_lowercase() == b.to_lowercase())
}

/// parse parses an fmtp string based on the MimeType
pub(crate) fn parse(mime_type: &str, line: &str) -> Box<dyn Fmtp> {
    let mut parameters = HashMap::new();
    for p in line.split(';').collect::<Vec<&str>>() {
        let pp: Vec<&str> = p.trim().splitn(2, '=').collect();
        let key = pp[0].to_lowercase();
        let value = if pp.len() > 1 {
            pp[1].to_owned()
        } else {
            String::new()
        };
        parameters.insert(key, value);
    }

    if mime_type.to_uppercase() == "video/h264".to_uppercase() {
        Box::new(H264Fmtp { parameters })
    } else {
        Box::new(GenericFmtp {
            mime_type: mime_type.to_owned(),
            parameters,
        })
    }
}
