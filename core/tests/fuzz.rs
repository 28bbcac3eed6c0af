//! Fuzzing of every parser of outside bytes, in the normal test suite: each target runs its
//! regressions and seeds, then mutated inputs for `FUZZ_MS` milliseconds (default 2,000) or up
//! to its input cap, whichever comes first. A long run: `FUZZ_MS=600000 cargo test --release
//! -p cascade-core --test fuzz -- --test-threads=2` (ten minutes a target; SECURITY.md).
//!
//! The entry points (`fuzz/harness.rs`) take the public API the node uses on its inputs: the
//! offer scanner and negotiation, the UDP mux's demultiplexing of STUN, DTLS, SRTP and SRTCP,
//! RTP parsing and rewriting, RTCP feedback, JWT checking, the command line and YAML.

mod fuzz {
    pub mod harness;
    pub mod mutate;
    pub mod seeds;
}

use fuzz::mutate::{Target, fuzz};
use fuzz::{harness, seeds};

fn target(name: &str, seeds: Vec<Vec<u8>>, dictionary: Vec<Vec<u8>>, max_len: usize) -> Target<'_> {
    Target {
        name,
        seeds,
        dictionary,
        max_len,
        max_inputs: u64::MAX,
    }
}

#[test]
fn sdp_offers_never_panic() {
    fuzz(
        target("sdp", seeds::sdp(), seeds::sdp_dictionary(), 16 * 1024),
        harness::sdp,
    );
}

#[test]
fn mux_datagrams_never_panic() {
    fuzz(
        target("mux", seeds::mux(), seeds::mux_dictionary(), 8 * 1024),
        harness::mux,
    );
}

#[test]
fn rtp_packets_never_panic() {
    fuzz(
        target("rtp", seeds::rtp(), seeds::rtp_dictionary(), 4 * 1024),
        harness::rtp,
    );
}

#[test]
fn rtcp_packets_never_panic() {
    fuzz(
        target("rtcp", seeds::rtcp(), seeds::rtcp_dictionary(), 4 * 1024),
        harness::rtcp,
    );
}

#[test]
fn tokens_never_panic() {
    fuzz(
        target("jwt", seeds::jwt(), seeds::jwt_dictionary(), 4 * 1024),
        harness::jwt,
    );
}

#[test]
fn command_lines_never_panic() {
    fuzz(
        target(
            "config",
            seeds::config(),
            seeds::config_dictionary(),
            4 * 1024,
        ),
        harness::config,
    );
}

#[test]
fn yaml_never_panics() {
    fuzz(
        target("yaml", seeds::yaml(), seeds::yaml_dictionary(), 8 * 1024),
        harness::yaml,
    );
}
