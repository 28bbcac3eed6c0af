//! `cascade-edge`: the same as `cascade edge`.

fn main() -> std::process::ExitCode {
    cascade_cli::main(Some(cascade_cli::NodeRole::Edge))
}
