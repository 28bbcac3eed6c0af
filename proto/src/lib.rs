//! Generated protobuf and tonic code for the relay between Cascade nodes and the cluster
//! status service.
//!
//! The schemas live in `cascade/relay/v1/relay.proto` and `cascade/status/v1/status.proto`;
//! `build.rs` compiles them with a vendored `protoc`. See those files for the meaning of each
//! message.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `cascade.relay.v1`: how an edge pulls a room from its upstream.
pub mod relay {
    pub mod v1 {
        tonic::include_proto!("cascade.relay.v1");
    }
}

/// `cascade.status.v1`: the cluster status API (the HTTP JSON API's data) over gRPC.
pub mod status {
    pub mod v1 {
        tonic::include_proto!("cascade.status.v1");
    }
}
