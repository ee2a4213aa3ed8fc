//! The `trustmesh` command line: argument parsing, output set-up and exit
//! codes. Each command lives in its own module under `cli/`.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
