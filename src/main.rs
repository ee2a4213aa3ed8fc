//! The `trustmesh` command line: argument parsing, output set-up and exit
//! codes. Each command lives in its own module under `cli/`.

mod cli;

fn main() {
    // ssh runs this binary as its askpass helper during `--ask-pass`.
    if trustmesh::transport::password::serve_askpass() {
        return;
    }
    std::process::exit(cli::run());
}
