//! `cascade`: see `cascade --help`.

/// mimalloc: a join's negotiation and webrtc-rs's peer connections allocate per message,
/// and spend a third less CPU there than with glibc's allocator (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cascade_cli::main(None)
}
