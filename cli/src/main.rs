//! `cascade`: see `cascade --help`.

fn main() -> std::process::ExitCode {
    cascade_cli::main(None)
}
