//! Generated protobuf and tonic code for the relay between Cascade nodes.
//!
//! The schema lives in `cascade/relay/v1/relay.proto`; `build.rs` compiles it with a vendored
//! `protoc`. See that file for the meaning of each message.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `cascade.relay.v1`: how an edge pulls a room from its upstream.
pub mod relay {
    pub mod v1 {
        tonic::include_proto!("cascade.relay.v1");
    }
}
