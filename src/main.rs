//! The `trustmesh` command line: argument parsing, output set-up and exit
//! codes. Each command lives in its own module under `cli/`.

mod cli;

fn main() {
    // ssh runs this binary as its askpass helper during `--ask-pass`.
    if cli::serve_askpass() {
        return;
    }
    // Before any thread or child: `$TRUSTMESH_PASSWORD` leaves the
    // environment, its value kept for `--ask-pass`.
    trustmesh::transport::password::take_password_env();
    cli::raise_open_file_limit();
    std::process::exit(cli::run());
}
