//! Shards on one port: what one shard reads for another's viewer.
//!
//! The shards of a mux share its port (`SO_REUSEPORT`), so the kernel, not the mux, decides
//! which shard's socket a datagram reaches: the same one for every datagram of one sender
//! address, picked by a hash of the addresses. A viewer is placed on the least loaded shard
//! when it negotiates, before its address is known, so its ICE checks and DTLS handshake may
//! arrive at another shard. A shard offers what none of its viewers claims to the others, in a
//! batch per wake-up; each takes what one of its viewers claims (by ICE username, or by an
//! address the viewer's core sends to). So each viewer's handshake runs on the shard it was
//! placed on: a crowd's handshakes spread over the shards, and over the cores.
//!
//! Once connected, a viewer moves to the shard its media address's datagrams arrive at
//! (`members`), so its feedback is read where it arrives and nothing more is handed on. A
//! viewer whose address changes later (a NAT rebinding) is reached by hand-on again.

use super::*;

/// Datagrams a shard hands on per second at most, and at once: a crowd's joins are about ten
/// each (checks and a handshake), and a flood of datagrams from addresses no viewer has must
/// not be multiplied by the shards' count.
const HAND_ON_PER_SEC: f64 = 20_000.0;
const HAND_ON_BURST: f64 = 4_000.0;

/// A shard's part in sharing the port.
pub(in crate::rtc::mux) struct Sharing {
    index: usize,
    /// Every shard's mailbox, by index.
    pub(super) mailboxes: Arc<[mpsc::UnboundedSender<Command>]>,
    /// Datagrams of this wake-up for the other shards.
    batch: Vec<(SocketAddr, bytes::Bytes)>,
    tokens: f64,
    refilled: Instant,
    /// Viewers this shard handed over (`members`), and datagrams dropped over the budget.
    pub(super) moved: prometheus_client::metrics::counter::Counter,
    dropped: prometheus_client::metrics::counter::Counter,
}

/// Whether a datagram may be a viewer's: STUN, DTLS, or RTP and RTCP (RFC 7983's first byte).
fn plausible(data: &[u8]) -> bool {
    matches!(data.first(), Some(0..=3 | 20..=63 | 128..=191))
}

impl Sharing {
    /// Shard `index`'s, among the shards whose mailboxes are `mailboxes`.
    pub(in crate::rtc::mux) fn new(
        index: usize,
        mailboxes: Arc<[mpsc::UnboundedSender<Command>]>,
        counters: &crate::obs::metrics::MuxCounters,
    ) -> Self {
        Self {
            index,
            mailboxes,
            batch: Vec::new(),
            tokens: HAND_ON_BURST,
            refilled: Instant::now(),
            moved: counters.viewers_moved.clone(),
            dropped: counters.hand_on_dropped.clone(),
        }
    }

    pub(super) fn index(&self) -> usize {
        self.index
    }
}

impl Engine {
    /// The shard's index among those sharing the port (0 for a lone one).
    pub(super) fn index(&self) -> usize {
        self.sharing.as_ref().map_or(0, Sharing::index)
    }
}

impl Sharing {
    /// Keeps `data` from `from`, which none of this shard's viewers claims, for the others
    /// (within the budget).
    pub(super) fn keep(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        if !plausible(data) {
            return;
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * HAND_ON_PER_SEC).min(HAND_ON_BURST);
        if self.tokens < 1.0 {
            self.dropped.inc();
            tracing::trace!(%from, "hand-on budget spent: datagram dropped");
            return;
        }
        self.tokens -= 1.0;
        self.batch.push((from, bytes::Bytes::copy_from_slice(data)));
    }

    /// Offers what was kept to every other shard.
    pub(super) fn hand_on(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        for (i, mailbox) in self.mailboxes.iter().enumerate() {
            if i != self.index {
                // Clones share the datagrams' bytes.
                let _ = mailbox.send(Command::Datagrams(self.index, batch.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sharing() -> (Sharing, mpsc::UnboundedReceiver<Command>) {
        let (mine, _) = mpsc::unbounded_channel();
        let (other, inbox) = mpsc::unbounded_channel();
        let counters = crate::obs::metrics::MuxCounters::default();
        (Sharing::new(0, vec![mine, other].into(), &counters), inbox)
    }

    #[test]
    fn only_what_may_be_a_viewers_is_handed_on_and_in_one_batch() {
        let (mut sharing, mut inbox) = sharing();
        let from: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let now = Instant::now();
        // STUN, a DTLS record, SRTCP; and a QUIC long header, which no viewer sends.
        for data in [
            &[0u8, 1, 0, 0][..],
            &[22, 0xFE, 0xFD],
            &[0x81, 201],
            &[0xC0, 0],
        ] {
            sharing.keep(from, data, now);
        }
        sharing.hand_on();
        let Ok(Command::Datagrams(0, batch)) = inbox.try_recv() else {
            panic!("no batch handed on");
        };
        assert_eq!(batch.len(), 3);
        assert!(inbox.try_recv().is_err(), "one batch per wake-up");
        sharing.hand_on();
        assert!(inbox.try_recv().is_err(), "nothing kept, nothing sent");
    }

    #[test]
    fn a_flood_is_handed_on_within_the_budget() {
        let (mut sharing, mut inbox) = sharing();
        let from: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let now = Instant::now();
        for _ in 0..10_000 {
            sharing.keep(from, &[0x80, 96], now);
        }
        sharing.hand_on();
        let Ok(Command::Datagrams(_, batch)) = inbox.try_recv() else {
            panic!("no batch handed on");
        };
        assert_eq!(batch.len(), HAND_ON_BURST as usize);
        assert_eq!(sharing.dropped.get(), 10_000 - HAND_ON_BURST as u64);
        // A second later, a second's worth more (up to the burst).
        for _ in 0..10_000 {
            sharing.keep(from, &[0x80, 96], now + Duration::from_secs(1));
        }
        sharing.hand_on();
        let Ok(Command::Datagrams(_, batch)) = inbox.try_recv() else {
            panic!("no batch handed on");
        };
        assert_eq!(batch.len(), HAND_ON_BURST as usize);
    }
}
