//! `apiary`: the operator CLI.

fn main() -> std::process::ExitCode {
    apiary_backend::cli::commands::main()
}
