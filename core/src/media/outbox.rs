//! The UDP mux's datagrams waiting to be sent: their bytes back to back in one buffer, reused
//! flush after flush. Once the buffer has grown to a flush's size, queueing a datagram
//! allocates nothing: a forwarded packet is marshalled and encrypted in place at the buffer's
//! end ([`crate::media::egress::Protector::protect_into`]), and the datagrams of one GSO message are
//! one contiguous span the kernel reads where it lies.

use std::net::SocketAddr;
use std::ops::Range;

/// One queued datagram: where it goes, and its bytes in the buffer.
#[derive(Debug, Clone, Copy)]
struct Queued {
    to: SocketAddr,
    end: usize,
}

/// Datagrams in the order they were queued.
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    /// Each datagram ends where the next begins.
    datagrams: Vec<Queued>,
}

impl Outbox {
    pub fn with_capacity(datagrams: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            datagrams: Vec::with_capacity(datagrams),
        }
    }

    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Forgets every datagram, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.datagrams.clear();
    }

    /// Queues a copy of `datagram`.
    pub fn push(&mut self, to: SocketAddr, datagram: &[u8]) {
        self.bytes.extend_from_slice(datagram);
        self.datagrams.push(Queued {
            to,
            end: self.bytes.len(),
        });
    }

    /// Queues the datagram `write` appends to the buffer, if it says it wrote one; otherwise
    /// whatever it appended is dropped. Returns `write`'s answer.
    pub fn push_with(&mut self, to: SocketAddr, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let start = self.bytes.len();
        if write(&mut self.bytes) {
            self.datagrams.push(Queued {
                to,
                end: self.bytes.len(),
            });
            true
        } else {
            self.bytes.truncate(start);
            false
        }
    }

    /// Where datagram `i` goes.
    pub fn to(&self, i: usize) -> SocketAddr {
        self.datagrams[i].to
    }

    /// Datagram `i`'s size.
    pub fn size(&self, i: usize) -> usize {
        self.range(i).len()
    }

    /// The bytes of datagrams `datagrams`, back to back.
    pub fn span(&self, datagrams: Range<usize>) -> &[u8] {
        if datagrams.is_empty() {
            return &[];
        }
        let start = self.range(datagrams.start).start;
        let end = self.datagrams[datagrams.end - 1].end;
        &self.bytes[start..end]
    }

    fn range(&self, i: usize) -> Range<usize> {
        let start = i.checked_sub(1).map_or(0, |p| self.datagrams[p].end);
        start..self.datagrams[i].end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_lie_back_to_back_and_a_refused_write_leaves_nothing() {
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let mut out = Outbox::with_capacity(4, 64);
        out.push(a, b"one");
        assert!(!out.push_with(b, |buf| {
            buf.extend_from_slice(b"half-written");
            false
        }));
        assert!(out.push_with(a, |buf| {
            buf.extend_from_slice(b"three");
            true
        }));
        out.push(b, b"");
        assert_eq!(out.len(), 3);
        assert_eq!((out.to(0), out.to(1), out.to(2)), (a, a, b));
        assert_eq!((out.size(0), out.size(1), out.size(2)), (3, 5, 0));
        assert_eq!(out.span(0..2), b"onethree");
        assert_eq!(out.span(1..1), b"");
        out.clear();
        assert!(out.is_empty());
        out.push(b, b"x");
        assert_eq!(out.span(0..1), b"x");
    }
}
