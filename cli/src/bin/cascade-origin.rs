//! `cascade-origin`: the same as `cascade origin`.

fn main() -> std::process::ExitCode {
    cascade_cli::main(Some(cascade_cli::NodeRole::Origin))
}
