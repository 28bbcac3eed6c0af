//! The one STUN field the node reads itself: the local ICE username fragment of a binding
//! request, which names the session a datagram from a new address (UDP mux) or a new
//! connection (ICE over TCP) belongs to.

/// The local ufrag of a STUN message's USERNAME (`local:remote`), if it has one. Anything that
/// is not a well-formed STUN message yields `None`.
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    if datagram.len() < 20 || !is_stun(datagram) || datagram[4..8] != MAGIC {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(20..20 + length)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// Whether a datagram is STUN (RFC 7983: first byte 0..=3).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| *b < 4)
}

/// A STUN binding request with USERNAME `username` and a PRIORITY, as browsers send one.
#[cfg(test)]
pub(crate) fn binding_request(username: &str) -> Vec<u8> {
    let mut attr = Vec::new();
    attr.extend_from_slice(&0x0006u16.to_be_bytes());
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    // A PRIORITY attribute after it, as browsers send.
    attr.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&attr);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_local_ufrag_of_a_binding_request() {
        assert_eq!(
            stun_local_ufrag(&binding_request("abcd1234:xyz")),
            Some("abcd1234")
        );
        assert_eq!(stun_local_ufrag(&binding_request("odd")), Some("odd"));
    }

    #[test]
    fn garbage_is_not_stun() {
        assert_eq!(stun_local_ufrag(&[]), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        let mut m = binding_request("abcd:efgh");
        m[3] = 0xff; // length beyond the datagram
        assert_eq!(stun_local_ufrag(&m), None);
        let mut m = binding_request("abcd:efgh");
        m[22..24].copy_from_slice(&[0xff, 0xff]); // attribute length beyond the body
        assert_eq!(stun_local_ufrag(&m), None);
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = stun_local_ufrag(&junk);
        }
    }
}
