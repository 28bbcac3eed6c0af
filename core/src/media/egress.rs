//! A mux viewer's media after DTLS: SRTP, retransmissions and sender reports of our own.
//!
//! Why: through the viewer's sans-I/O core, each forwarded packet cost about 1.8 µs and five
//! allocations (`write_rtp`: a parameters lookup, a track id string, every pipeline and
//! interceptor stage a `VecDeque` move of a large message, a fresh buffer per datagram), about
//! half of a loaded edge's time (BENCHMARKS.md). Here a packet is marshalled into a reused
//! buffer and protected by an SRTP context of our own (`rtc::srtp`, the same crate the core
//! uses): no allocation, the packet encrypted in place in the outbox.
//!
//! The core still runs ICE, DTLS, and RTCP both ways (it decrypts what the viewer sends and
//! encrypts our sender reports). What it no longer sees is outgoing media, so the two things its
//! interceptors did with it are done here: answering NACKs from a ring of recent packets per
//! feed ([`History`]; the mux maps a NACKed number back to it through the leg's rewriter), and
//! sender reports ([`SenderStats`]).
//!
//! The keys: webrtc-rs 0.21 does not export its DTLS keying material. Its SRTP contexts derive
//! their session keys through the crypto provider the core is given (RFC 3711 §4.3: each
//! session key is AES of the master salt, XORed with a label, under the master key), so the
//! core is given a [`KeyTap`]: the default provider, which notes the master key and the first
//! PRF input (label 0: the master salt itself) of each context as it is derived. The core
//! builds its sending context first (`rtc`'s `DtlsHandler::update_srtp_contexts`), so the
//! first key noted is the one to send with. Keys never reach a log.

use bytes::BytesMut;
use rtc::crypto::{
    AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher, CryptoAlgorithm,
    CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac, PublicKey, RTCCrypto,
    RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher, StreamCipherAlgorithm,
};
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp::Packet;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The SRTP profiles a mux viewer may negotiate: the ones [`KeyTap`] can tell apart. An AES-CM
/// context is taken to be HMAC-SHA1-80, so HMAC-SHA1-32 (which differs only in the tag's
/// length, and which browsers no longer offer) is not offered.
pub const PROFILES: [rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile; 3] = [
    rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
    rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
    rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
];

/// Why a viewer's own media path could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("no SRTP keys were derived (DTLS not complete?)")]
    NoKeys,
    #[error("SRTP keys of an unsupported profile were derived")]
    UnknownProfile,
    #[error("SRTP: {0}")]
    Srtp(String),
}

/// An SRTP master key and salt, and their profile.
pub struct SrtpKeys {
    pub profile: ProtectionProfile,
    key: Vec<u8>,
    salt: Vec<u8>,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Drop for SrtpKeys {
    fn drop(&mut self) {
        self.key.fill(0);
        self.salt.fill(0);
    }
}

/// What the cipher built after a master key's first derivation was.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Built {
    Aead(AeadAlgorithm),
    Ctr(StreamCipherAlgorithm),
}

/// One master key seen deriving session keys.
struct Derivation {
    key: Vec<u8>,
    /// The first PRF input under this key: label 0, so the master salt (zero-padded).
    first_input: Vec<u8>,
    built: Option<Built>,
}

impl Drop for Derivation {
    fn drop(&mut self) {
        self.key.fill(0);
        self.first_input.fill(0);
    }
}

/// The default crypto provider, noting the SRTP master keys derived through it. One per core.
pub struct KeyTap {
    inner: Arc<dyn RTCCryptoProvider>,
    crypto: TapCrypto,
}

struct TapCrypto {
    inner: Arc<dyn RTCCryptoProvider>,
    seen: Mutex<Vec<Derivation>>,
}

impl KeyTap {
    /// Over the default provider.
    pub fn new() -> Result<Arc<Self>, CryptoError> {
        Ok(Self::over(rtc::crypto::default_provider()?))
    }

    /// Over `inner`.
    pub fn over(inner: Arc<dyn RTCCryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            inner: inner.clone(),
            crypto: TapCrypto {
                inner,
                seen: Mutex::new(Vec::new()),
            },
        })
    }

    /// The sending context's master key and salt: the first master key derived through this
    /// provider. Forgets every key noted.
    pub fn take_sending_keys(&self) -> Result<SrtpKeys, EgressError> {
        self.take_keys().map(|(sending, _)| sending)
    }

    /// The sending and the receiving contexts' master keys and salts: the first and the second
    /// master key derived through this provider (the core builds its local context, then its
    /// remote one). Forgets every key noted.
    pub fn take_both_keys(&self) -> Result<(SrtpKeys, SrtpKeys), EgressError> {
        let (sending, receiving) = self.take_keys()?;
        Ok((sending, receiving.ok_or(EgressError::NoKeys)?))
    }

    /// The sending context's master key and salt, and the receiving context's if it was
    /// derived too (the core builds its local context, then its remote one). Forgets every key
    /// noted.
    pub fn take_keys(&self) -> Result<(SrtpKeys, Option<SrtpKeys>), EgressError> {
        let mut seen = self
            .crypto
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Every noted key leaves the tap; each is zeroed as it drops.
        let mut noted = std::mem::take(&mut *seen).into_iter();
        drop(seen);
        let first = noted.next().ok_or(EgressError::NoKeys)?;
        let sending = SrtpKeys::of(&first)?;
        let receiving = noted.next().map(|d| SrtpKeys::of(&d)).transpose()?;
        Ok((sending, receiving))
    }
}

impl SrtpKeys {
    fn of(derivation: &Derivation) -> Result<Self, EgressError> {
        let profile = match (derivation.built, derivation.key.len()) {
            (Some(Built::Aead(AeadAlgorithm::Aes128Gcm)), 16) => ProtectionProfile::AeadAes128Gcm,
            (Some(Built::Aead(AeadAlgorithm::Aes256Gcm)), 32) => ProtectionProfile::AeadAes256Gcm,
            (Some(Built::Ctr(StreamCipherAlgorithm::Aes128Ctr)), 16) => {
                ProtectionProfile::Aes128CmHmacSha1_80
            }
            _ => return Err(EgressError::UnknownProfile),
        };
        let salt = derivation
            .first_input
            .get(..profile.salt_len())
            .ok_or(EgressError::UnknownProfile)?;
        Ok(Self {
            profile,
            key: derivation.key.clone(),
            salt: salt.to_vec(),
        })
    }

    /// An SRTP context of these keys; with `replay_window`, it refuses packets it has seen (or
    /// older than the window), as a receiving context does.
    pub fn context(&self, replay_window: Option<usize>) -> Result<Context, EgressError> {
        let provider =
            rtc::crypto::default_provider().map_err(|e| EgressError::Srtp(e.to_string()))?;
        Context::new(
            &self.key,
            &self.salt,
            self.profile,
            replay_window.map(rtc::srtp::option::srtp_replay_protection),
            replay_window.map(rtc::srtp::option::srtcp_replay_protection),
            provider.crypto(),
        )
        .map_err(|e| EgressError::Srtp(e.to_string()))
    }
}

impl RTCCryptoProvider for KeyTap {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn crypto(&self) -> &dyn RTCCrypto {
        &self.crypto
    }
    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl TapCrypto {
    fn note_built(&self, built: Built) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(last) = seen.last_mut()
            && last.built.is_none()
        {
            last.built = Some(built);
        }
    }
}

impl RTCCrypto for TapCrypto {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }
    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }
    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        // Only SRTP key derivation encrypts single blocks; a new key starts a new context.
        {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.last().is_none_or(|d| d.key != key) && seen.len() < 8 {
                seen.push(Derivation {
                    key: key.to_vec(),
                    first_input: block.to_vec(),
                    built: None,
                });
            }
        }
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }
    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(algorithm, key)
    }
    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        self.note_built(Built::Ctr(algorithm));
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }
    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        self.note_built(Built::Aead(algorithm));
        self.inner.crypto().new_aead(algorithm, key)
    }
    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }
    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn rtc::crypto::ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }
    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }
    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }
    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
}

/// Largest RTP packet we marshal (a datagram on any path we serve).
const MAX_PACKET: usize = 1500;

/// A transport-wide sequence number (TWCC) header extension to write into a packet: its
/// negotiated id (1 to 14, a one-byte header, RFC 8285) and the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccExt {
    pub id: u8,
    pub seq: u16,
}

/// The size of the extension block [`TwccExt`] adds: the RFC 8285 one-byte header (4 bytes),
/// the element (1 + 2 bytes) and a byte of padding.
const TWCC_BLOCK: usize = 8;

/// A viewer's SRTP sending context.
pub struct Protector {
    context: Context,
    /// A header whose marshalled size is that of a packet carrying a [`TwccExt`] (and no
    /// CSRC): SRTP reads the header's size, SSRC and sequence number from it, and a packet's
    /// own header has no extensions (the room stripped them). Built once, so writing the
    /// extension allocates nothing.
    twcc_header: rtc::rtp::header::Header,
}

impl Protector {
    pub fn new(keys: &SrtpKeys) -> Result<Self, EgressError> {
        Ok(Self {
            context: keys.context(None)?,
            twcc_header: rtc::rtp::header::Header {
                version: 2,
                extension: true,
                extension_profile: 0xBEDE,
                extensions: vec![rtc::rtp::header::Extension {
                    id: 1,
                    payload: bytes::Bytes::from_static(&[0, 0]),
                }],
                ..Default::default()
            },
        })
    }

    /// As [`Self::protect_into`], with a transport-wide sequence number extension (`twcc`)
    /// written between the header and the payload, for the receiver's congestion control
    /// feedback. A packet that already has extensions or CSRCs goes without it.
    pub fn protect_twcc_into(
        &mut self,
        packet: &Packet,
        pad: u8,
        twcc: Option<TwccExt>,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(twcc) = twcc.filter(|t| {
            (1..=14).contains(&t.id) && !packet.header.extension && packet.header.csrc.is_empty()
        }) else {
            return self.protect_into(packet, pad, out);
        };
        let pad = if packet.header.padding {
            0
        } else {
            usize::from(pad)
        };
        let size = packet.marshal_size() + TWCC_BLOCK;
        if size + pad > MAX_PACKET {
            return false;
        }
        let start = out.len();
        out.resize(start + size + pad, 0);
        // Marshalled a block further on; its 12-byte header then moves back to make room.
        let Ok(n) = packet.marshal_to(&mut out[start + TWCC_BLOCK..]) else {
            out.truncate(start);
            return false;
        };
        const FIXED: usize = 12;
        out.copy_within(start + TWCC_BLOCK..start + TWCC_BLOCK + FIXED, start);
        let [hi, lo] = twcc.seq.to_be_bytes();
        out[start + FIXED..start + FIXED + TWCC_BLOCK].copy_from_slice(&[
            0xBE,
            0xDE,
            0,
            1,
            (twcc.id << 4) | 1,
            hi,
            lo,
            0,
        ]);
        out[start] |= 0x10;
        let n = n + TWCC_BLOCK;
        if pad > 0 {
            out[start + n + pad - 1] = pad as u8;
            out[start] |= 0x20;
        }
        out.truncate(start + n + pad);
        self.twcc_header.ssrc = packet.header.ssrc;
        self.twcc_header.sequence_number = packet.header.sequence_number;
        if self
            .context
            .encrypt_rtp_in_place(out, start, &self.twcc_header)
            .is_err()
        {
            out.truncate(start);
            return false;
        }
        true
    }

    /// The SRTP datagram of `packet`; `None` if it does not fit a datagram or SRTP refused it
    /// (its key is exhausted after 2^48 packets). Allocates the datagram: the mux uses
    /// [`Self::protect_into`].
    pub fn protect(&mut self, packet: &Packet) -> Option<BytesMut> {
        let mut out = Vec::new();
        self.protect_into(packet, 0, &mut out)
            .then(|| BytesMut::from(&out[..]))
    }

    /// Appends the SRTP datagram of `packet` to `out`, marshalled and encrypted in place (no
    /// allocation once `out` has room); `pad` bytes longer: RTP padding (RFC 3550 §5.1: the P
    /// bit, zeros, the count in the last byte; receivers strip it) when `pad` > 0 and the
    /// packet has none already. The mux evens out a frame's packets with it (a packetizer
    /// splits a frame into packets whose sizes differ by a byte), so the frame leaves as one
    /// UDP GSO send. Returns false, and leaves `out` as it was, if the packet does not fit a
    /// datagram or SRTP refused it.
    pub fn protect_into(&mut self, packet: &Packet, pad: u8, out: &mut Vec<u8>) -> bool {
        let pad = if packet.header.padding {
            0
        } else {
            usize::from(pad)
        };
        let size = packet.marshal_size();
        if size + pad > MAX_PACKET {
            return false;
        }
        let start = out.len();
        out.resize(start + size + pad, 0);
        let Ok(n) = packet.marshal_to(&mut out[start..]) else {
            out.truncate(start);
            return false;
        };
        if pad > 0 {
            // The padding's zeros are the resize's.
            out[start + n + pad - 1] = pad as u8;
            out[start] |= 0x20;
        }
        out.truncate(start + n + pad);
        if self
            .context
            .encrypt_rtp_in_place(out, start, &packet.header)
            .is_err()
        {
            out.truncate(start);
            return false;
        }
        true
    }
}

/// Recent packets of one stream by sequence number, for answering NACKs: the last
/// [`History::SLOTS`] sequence numbers (about 4 s of the reference stream's video). The mux
/// keeps one per feed, as the packets came from the room track (one copy for all its viewers;
/// payloads shared, not copied). A joining viewer is sent the cached group of pictures, up to
/// 1024 packets behind the newest, and may NACK any of it: what the history no longer holds
/// is looked up in the feed's keyframe cache, which holds exactly those. The slots are taken at
/// the first packet: a stream that is never NACKed (audio) keeps none.
#[derive(Default)]
pub struct History {
    slots: Vec<Option<Packet>>,
}

impl History {
    /// A power of two, so slots stay put across the 16-bit wrap.
    pub const SLOTS: usize = 1024;

    pub fn push(&mut self, packet: Packet) {
        if self.slots.is_empty() {
            self.slots.resize(Self::SLOTS, None);
        }
        let slot = usize::from(packet.header.sequence_number) % Self::SLOTS;
        self.slots[slot] = Some(packet);
    }

    /// Forgets every packet.
    pub fn clear(&mut self) {
        self.slots.fill(None);
    }

    /// The packet sent with sequence number `seq`, if it is still held.
    pub fn get(&self, seq: u16) -> Option<&Packet> {
        self.slots
            .get(usize::from(seq) % Self::SLOTS)?
            .as_ref()
            .filter(|p| p.header.sequence_number == seq)
    }
}

/// How many NACKed packets a viewer may have resent: a token bucket of [`Self::BURST`] packets,
/// refilled at [`Self::RATE`] per second. One NACK can name every packet of the history, and
/// nothing stops a viewer from repeating it: without a budget, a viewer could make the node send
/// it (or, with a spoofed address, someone else) many times the stream. Genuine losses fit well
/// inside: 2 % of the reference stream is 7 packets a second.
///
/// Once the viewer's bandwidth estimate is known ([`Self::fit_estimate`]), resent bytes are
/// also held to [`Self::ESTIMATE_SHARE`] of it: a link that loses packets because it is full
/// is not sent more to make up for them.
#[derive(Debug, Clone, Copy)]
pub struct RetransmitBudget {
    tokens: f64,
    at: Instant,
    /// Bytes that may be resent now, refilled at `byte_rate` per second up to `byte_burst`
    /// (unbounded until an estimate is known).
    bytes: f64,
    byte_rate: f64,
    byte_burst: f64,
}

impl RetransmitBudget {
    /// Packets that may be resent at once (a burst of losses, e.g. in a keyframe).
    pub const BURST: f64 = 256.0;
    /// Packets per second the budget refills with: about the reference stream's own rate, so a
    /// viewer can at most double what it is sent.
    pub const RATE: f64 = 400.0;
    /// The share of the viewer's estimate resent bytes may take...
    pub const ESTIMATE_SHARE: f64 = 0.25;
    /// ...in bursts of up to this long's worth.
    pub const ESTIMATE_BURST: Duration = Duration::from_millis(500);

    pub fn new(now: Instant) -> Self {
        Self {
            tokens: Self::BURST,
            at: now,
            bytes: f64::INFINITY,
            byte_rate: f64::INFINITY,
            byte_burst: f64::INFINITY,
        }
    }

    /// Holds resent bytes to [`Self::ESTIMATE_SHARE`] of the viewer's estimate, `bps`.
    pub fn fit_estimate(&mut self, bps: f64) {
        self.byte_rate = bps.max(0.0) * Self::ESTIMATE_SHARE / 8.0;
        // At least one full packet fits, however low the estimate.
        self.byte_burst = (self.byte_rate * Self::ESTIMATE_BURST.as_secs_f64()).max(1500.0);
        self.bytes = self.bytes.min(self.byte_burst);
    }

    /// Takes one packet of `size` bytes; false when the budget is spent.
    pub fn take(&mut self, now: Instant, size: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * Self::RATE).min(Self::BURST);
        self.bytes = (self.bytes + elapsed * self.byte_rate).min(self.byte_burst);
        self.at = self.at.max(now);
        let size = size as f64;
        if self.tokens >= 1.0 && self.bytes >= size {
            self.tokens -= 1.0;
            self.bytes -= size;
            true
        } else {
            false
        }
    }
}

/// What a sender report says of one leg: counts, and the last packet's timestamp and time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SenderStats {
    packets: u32,
    octets: u32,
    last: Option<(u32, Instant)>,
}

impl SenderStats {
    /// Counts a packet sent (first transmissions only, as RFC 3550 §6.4.1 asks).
    pub fn sent(&mut self, packet: &Packet, now: Instant) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(packet.payload.len() as u32);
        self.last = Some((packet.header.timestamp, now));
    }

    /// The sender report for `ssrc` at `now` (wall clock `wall`), `None` before the first
    /// packet. The RTP time is the last packet's, advanced by the time since at `clock_rate`.
    pub fn report(
        &self,
        ssrc: u32,
        clock_rate: u32,
        now: Instant,
        wall: SystemTime,
    ) -> Option<SenderReport> {
        let (ts, at) = self.last?;
        let elapsed = now.saturating_duration_since(at);
        let advance = (elapsed.as_secs_f64() * f64::from(clock_rate)) as u64;
        Some(SenderReport {
            ssrc,
            ntp_time: ntp(wall),
            rtp_time: ts.wrapping_add(advance as u32),
            packet_count: self.packets,
            octet_count: self.octets,
            reports: Vec::new(),
            profile_extensions: bytes::Bytes::new(),
        })
    }
}

/// `wall` as a 64-bit NTP timestamp (seconds since 1900 in the high half).
pub fn ntp(wall: SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs().wrapping_add(UNIX_TO_NTP);
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtc::rtp::header::Header;
    use std::time::Duration;

    fn packet(seq: u16, ts: u32, len: usize) -> Packet {
        Packet {
            header: Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 0x0102_0304,
                ..Default::default()
            },
            payload: Bytes::from(vec![0x42; len]),
        }
    }

    /// The keys a context was built with are the keys the tap reports, for every profile we
    /// offer; and our context's output is what a receiver with those keys decrypts.
    #[test]
    fn the_tap_recovers_the_sending_context_keys() {
        for profile in [
            ProtectionProfile::AeadAes128Gcm,
            ProtectionProfile::AeadAes256Gcm,
            ProtectionProfile::Aes128CmHmacSha1_80,
        ] {
            let tap = KeyTap::new().unwrap();
            let key: Vec<u8> = (0..profile.key_len() as u8).collect();
            let salt: Vec<u8> = (100..100 + profile.salt_len() as u8).collect();
            let other: Vec<u8> = vec![0xee; profile.key_len()];
            // As the core does: the sending context first, then the receiving one.
            let _local = Context::new(&key, &salt, profile, None, None, tap.crypto()).unwrap();
            let _remote = Context::new(&other, &salt, profile, None, None, tap.crypto()).unwrap();
            let keys = tap.take_sending_keys().unwrap();
            assert_eq!(format!("{:?}", keys.profile), format!("{profile:?}"));
            assert_eq!(keys.key, key);
            assert_eq!(keys.salt, salt);
            assert!(!format!("{keys:?}").contains("100"), "keys never printed");

            let mut ours = Protector::new(&keys).unwrap();
            let provider = rtc::crypto::default_provider().unwrap();
            let mut receiver =
                Context::new(&key, &salt, profile, None, None, provider.crypto()).unwrap();
            for seq in [65_530u16, 65_535, 0, 1] {
                let p = packet(seq, 90_000, 1100);
                let datagram = ours.protect(&p).unwrap();
                let plain = receiver.decrypt_rtp(&datagram).unwrap();
                let mut buf = &plain[..];
                let back =
                    <Packet as rtc::shared::marshal::Unmarshal>::unmarshal(&mut buf).unwrap();
                assert_eq!(back, p);
            }
            assert!(matches!(tap.take_sending_keys(), Err(EgressError::NoKeys)));
        }
    }

    /// The second key noted is the receiving context's: what the peer protects with it, a
    /// context of those keys (with replay protection) decrypts, once.
    #[test]
    fn the_tap_recovers_the_receiving_context_keys_too() {
        let profile = ProtectionProfile::AeadAes128Gcm;
        let tap = KeyTap::new().unwrap();
        let (mine, theirs) = (vec![0x11; 16], vec![0x22; 16]);
        let salt: Vec<u8> = (0..profile.salt_len() as u8).collect();
        let _local = Context::new(&mine, &salt, profile, None, None, tap.crypto()).unwrap();
        let _remote = Context::new(&theirs, &salt, profile, None, None, tap.crypto()).unwrap();
        let (sending, receiving) = tap.take_both_keys().unwrap();
        assert_eq!(
            (sending.key.as_slice(), receiving.key.as_slice()),
            (&mine[..], &theirs[..])
        );
        let provider = rtc::crypto::default_provider().unwrap();
        let mut peer =
            Context::new(&theirs, &salt, profile, None, None, provider.crypto()).unwrap();
        let mut ours = receiving.context(Some(64)).unwrap();
        let p = packet(7, 90_000, 500);
        let datagram = peer
            .encrypt_rtp(&rtc::shared::marshal::Marshal::marshal(&p).unwrap())
            .unwrap();
        let plain = ours.decrypt_rtp(&datagram).unwrap();
        assert_eq!(&plain[plain.len() - 500..], &p.payload[..]);
        assert!(ours.decrypt_rtp(&datagram).is_err(), "a replay is refused");
        // Only one context's keys: no receiving keys.
        let _only = Context::new(&mine, &salt, profile, None, None, tap.crypto()).unwrap();
        assert!(matches!(tap.take_both_keys(), Err(EgressError::NoKeys)));
    }

    /// Packets that do not authenticate leave nothing behind, however many SSRCs they name (our
    /// `rtc-srtp` patch: the crate kept a state, replay window and all, per SSRC it was shown);
    /// a genuine packet is still accepted after them.
    #[test]
    fn forged_packets_leave_no_state_behind() {
        let profile = ProtectionProfile::AeadAes128Gcm;
        let keys = SrtpKeys {
            profile,
            key: vec![5u8; 16],
            salt: vec![6u8; profile.salt_len()],
        };
        let mut receiving = keys.context(Some(1024)).unwrap();
        for i in 0..2000u32 {
            let ssrc = i.wrapping_mul(0x9e37_79b9).to_be_bytes();
            let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 1];
            rtp.extend_from_slice(&ssrc);
            rtp.extend_from_slice(&[0xab; 100]);
            assert!(receiving.decrypt_rtp(&rtp).is_err());
            let mut rtcp = vec![0x80, 200, 0, 6];
            rtcp.extend_from_slice(&ssrc);
            rtcp.extend_from_slice(&[0xcd; 20]);
            rtcp.extend_from_slice(&[0x80, 0, 0, 1]);
            rtcp.extend_from_slice(&[0xef; 16]);
            assert!(receiving.decrypt_rtcp(&rtcp).is_err());
        }
        assert_eq!(receiving.ssrc_states(), (0, 0));
        let mut sender = Protector::new(&keys).unwrap();
        let p = packet(9, 0, 300);
        receiving.decrypt_rtp(&sender.protect(&p).unwrap()).unwrap();
        assert_eq!(receiving.ssrc_states(), (1, 0));
    }

    /// Our sending context and a stock receiving one for the same keys (bytes `seed` and
    /// `seed + 1`).
    fn sender_and_receiver(profile: ProtectionProfile, seed: u8) -> (Protector, Context) {
        let (key, salt) = (vec![seed; 16], vec![seed + 1; profile.salt_len()]);
        let keys = SrtpKeys {
            profile,
            key: key.clone(),
            salt: salt.clone(),
        };
        let provider = rtc::crypto::default_provider().unwrap();
        let receiver = Context::new(&key, &salt, profile, None, None, provider.crypto()).unwrap();
        (Protector::new(&keys).unwrap(), receiver)
    }

    /// A padded packet is the size asked for, and a receiver gets the packet back unchanged
    /// (the padding stripped); a packet that already has padding is not padded again.
    #[test]
    fn padding_evens_out_sizes_and_is_stripped_by_the_receiver() {
        let (mut ours, mut receiver) = sender_and_receiver(ProtectionProfile::AeadAes128Gcm, 3);
        let (long, short) = (packet(1, 0, 1127), packet(2, 0, 1126));
        let a = ours.protect(&long).unwrap();
        let mut out = b"before".to_vec();
        assert!(ours.protect_into(&short, 1, &mut out));
        let b = out.split_off(6);
        assert_eq!(out, b"before");
        assert_eq!(a.len(), b.len());
        let plain = receiver.decrypt_rtp(&b).unwrap();
        let mut buf = &plain[..];
        let back = <Packet as rtc::shared::marshal::Unmarshal>::unmarshal(&mut buf).unwrap();
        assert_eq!(back.payload, short.payload);
        assert!(back.header.padding);
        let mut padded = packet(3, 0, 1000);
        padded.header.padding = true;
        let as_is = ours.protect(&padded).unwrap().len();
        let mut out = Vec::new();
        assert!(ours.protect_into(&padded, 7, &mut out));
        assert_eq!(out.len(), as_is);
        // What does not fit a datagram leaves `out` as it was.
        assert!(!ours.protect_into(&packet(4, 0, 4000), 0, &mut out));
        assert_eq!(out.len(), as_is);
    }

    /// The TWCC extension is written where a receiver reads it (after the fixed header, RFC
    /// 8285 one-byte form) under both ciphers, with padding too; the payload is unchanged.
    #[test]
    fn a_twcc_extension_reaches_the_receiver() {
        for profile in [
            ProtectionProfile::AeadAes128Gcm,
            ProtectionProfile::Aes128CmHmacSha1_80,
        ] {
            let (mut ours, mut receiver) = sender_and_receiver(profile, 7);
            for (seq, pad) in [(1u16, 0u8), (2, 5)] {
                let p = packet(seq, 3000, 700);
                let mut out = Vec::new();
                let twcc = TwccExt { id: 5, seq: 0xABCD };
                assert!(ours.protect_twcc_into(&p, pad, Some(twcc), &mut out));
                let plain = receiver.decrypt_rtp(&out).unwrap();
                let mut buf = &plain[..];
                let back =
                    <Packet as rtc::shared::marshal::Unmarshal>::unmarshal(&mut buf).unwrap();
                assert_eq!(back.payload, p.payload, "{profile:?}");
                assert_eq!(back.header.sequence_number, seq);
                assert_eq!(back.header.padding, pad > 0);
                assert_eq!(
                    back.header.get_extension(5).as_deref(),
                    Some(&[0xAB, 0xCD][..])
                );
            }
            // An id outside the one-byte range is not written.
            let mut out = Vec::new();
            let bad = TwccExt { id: 15, seq: 1 };
            assert!(ours.protect_twcc_into(&packet(3, 0, 10), 0, Some(bad), &mut out));
            let plain = receiver.decrypt_rtp(&out).unwrap();
            assert_eq!(plain[0] & 0x10, 0, "no extension");
        }
    }

    /// Over a real ICE and DTLS handshake (two cores in memory): the keys the tap noted are the
    /// sending ones, so what our context protects the viewer's core decrypts.
    #[test]
    fn a_viewer_core_decrypts_what_our_context_protects() {
        use rtc::peer_connection::message::RTCMessage;
        use rtc::sansio::Protocol;
        let mut pair =
            crate::rtc::pair::Pair::connected(crate::rtc::pc::CoreKind::OwnMedia).unwrap();
        let keys = pair.tap.take_sending_keys().unwrap();
        // The viewer (the default offer) and we agree on AES-GCM, webrtc-rs's first choice.
        assert!(matches!(keys.profile, ProtectionProfile::AeadAes128Gcm));
        let mut ours = Protector::new(&keys).unwrap();
        let mut got = Vec::new();
        for seq in 1..=5u16 {
            let mut p = packet(seq, u32::from(seq) * 3000, 900);
            p.header.ssrc = crate::rtc::pair::SSRC;
            p.header.payload_type = pair.payload_type;
            // A VP8 keyframe's payload descriptor, so the viewer's track opens on it.
            p.payload = Bytes::from([&[0x10u8, 0x00, 0x9d, 0x01, 0x2a][..], &[7; 900]].concat());
            let datagram = ours.protect(&p).unwrap();
            crate::rtc::pair::deliver(
                &mut pair.viewer,
                pair.sender_addr,
                pair.viewer_addr,
                datagram,
            );
            while let Some(m) = pair.viewer.poll_read() {
                if let RTCMessage::RtpPacket(_, packet) = m.message {
                    got.push((packet.header.sequence_number, packet.payload.len()));
                }
            }
        }
        assert_eq!(got, (1..=5).map(|s| (s, 905)).collect::<Vec<_>>());
    }

    #[test]
    fn no_derivation_no_keys() {
        let tap = KeyTap::new().unwrap();
        assert!(matches!(tap.take_sending_keys(), Err(EgressError::NoKeys)));
    }

    #[test]
    fn oversized_packets_are_refused_not_panicked_on() {
        let profile = ProtectionProfile::AeadAes128Gcm;
        let tap = KeyTap::new().unwrap();
        let _ = Context::new(&[1; 16], &[2; 12], profile, None, None, tap.crypto()).unwrap();
        let mut ours = Protector::new(&tap.take_sending_keys().unwrap()).unwrap();
        assert!(ours.protect(&packet(1, 0, 4000)).is_none());
        assert!(ours.protect(&packet(2, 0, 1200)).is_some());
    }

    #[test]
    fn history_answers_only_for_the_packets_it_holds() {
        let mut h = History::default();
        let n = History::SLOTS as u16 + 88;
        for seq in 0..n {
            h.push(packet(seq.wrapping_add(65_400), 0, 10));
        }
        // The last SLOTS sequence numbers are held, across the wrap.
        assert!(h.get(65_400u16.wrapping_add(n - 1)).is_some());
        assert!(h.get(65_535).is_some());
        assert!(h.get(3).is_some());
        // Older ones were overwritten; never-sent ones were never there.
        assert!(h.get(65_400).is_none());
        assert!(h.get(65_400u16.wrapping_add(n)).is_none());
        assert_eq!(h.get(7).unwrap().header.sequence_number, 7);
    }

    #[test]
    fn sender_report_extrapolates_the_rtp_clock() {
        let mut s = SenderStats::default();
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(s.report(9, 90_000, t0, wall).is_none());
        s.sent(&packet(1, 1000, 100), t0);
        s.sent(&packet(2, 4000, 50), t0);
        let r = s
            .report(9, 90_000, t0 + Duration::from_millis(500), wall)
            .unwrap();
        assert_eq!(r.ssrc, 9);
        assert_eq!(r.packet_count, 2);
        assert_eq!(r.octet_count, 150);
        assert_eq!(r.rtp_time, 4000 + 45_000);
        assert_eq!(r.ntp_time >> 32, 1_700_000_000 + 2_208_988_800);
    }

    #[test]
    fn the_retransmit_budget_allows_a_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut budget = RetransmitBudget::new(t0);
        let burst = (0..1000).take_while(|_| budget.take(t0, 1200)).count();
        assert_eq!(burst, RetransmitBudget::BURST as usize);
        assert!(!budget.take(t0, 1200), "spent");
        // A quarter of a second later: a quarter of the rate, not a new burst.
        let later = t0 + Duration::from_millis(250);
        let refilled = (0..1000).take_while(|_| budget.take(later, 1200)).count();
        assert_eq!(refilled, (RetransmitBudget::RATE / 4.0) as usize);
        // Long idle: full again, never more.
        let idle = t0 + Duration::from_secs(60);
        let full = (0..1000).take_while(|_| budget.take(idle, 1200)).count();
        assert_eq!(full, RetransmitBudget::BURST as usize);
        // Time going backwards (an earlier `now`) gives nothing.
        assert!(!budget.take(t0, 1200));
    }

    #[test]
    fn resent_bytes_fit_a_share_of_the_estimate() {
        let t0 = Instant::now();
        let mut budget = RetransmitBudget::new(t0);
        // 400 kbit/s: a quarter is 12,500 bytes a second, half a second of it at once.
        budget.fit_estimate(400_000.0);
        let burst = (0..1000).take_while(|_| budget.take(t0, 1250)).count();
        assert_eq!(burst, 5);
        let later = t0 + Duration::from_secs(1);
        let refilled = (0..1000).take_while(|_| budget.take(later, 1250)).count();
        assert_eq!(refilled, 5, "the burst again, not a second's worth");
        let later = later + Duration::from_millis(200);
        let refilled = (0..1000).take_while(|_| budget.take(later, 1250)).count();
        assert_eq!(refilled, 2);
        // A higher estimate: the packet budget binds again.
        budget.fit_estimate(1e9);
        let later = later + Duration::from_secs(60);
        let full = (0..1000).take_while(|_| budget.take(later, 1250)).count();
        assert_eq!(full, RetransmitBudget::BURST as usize);
        // However low the estimate, a packet fits now and then.
        budget.fit_estimate(0.0);
        assert!(budget.take(later + Duration::from_secs(60), 1250));
    }
}
