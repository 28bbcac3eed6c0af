//! Compiles `cascade/relay/v1/relay.proto` and `cascade/status/v1/status.proto` with a vendored `protoc`, so a fresh machine builds
//! without installing one.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().compile_with_config(
        config,
        &[
            "cascade/relay/v1/relay.proto",
            "cascade/status/v1/status.proto",
        ],
        &["."],
    )?;
    println!("cargo:rerun-if-changed=cascade");
    Ok(())
}
