//! Network namespaces: running `ip` in one, and entering one from a
//! thread to reach what lives there.

use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::io::AsRawFd;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::sys::{run, ProcId};

/// How long a host's sshd may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// `ip ARGS` in namespace `ns` (None: ours).
pub(crate) fn ip_in(ns: Option<&str>, args: &[&str]) -> io::Result<Output> {
    match ns {
        Some(ns) => {
            let mut all = vec!["-n", ns];
            all.extend_from_slice(args);
            run("ip", &all)
        }
        None => run("ip", args),
    }
}

/// From network namespace `ns` (None: ours), wait until `addr` answers
/// with an SSH banner, while `process` lives. Runs on a thread of its own,
/// since entering a namespace changes the calling thread.
pub(crate) fn probe(ns: Option<&str>, addr: SocketAddr, process: ProcId) -> io::Result<()> {
    if let Some(ns) = ns {
        enter_netns(ns)?;
    }
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if !process.alive() {
            return Err(io::Error::other("sshd exited"));
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut banner = [0u8; 4];
            if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("sshd does not answer on {addr}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Move the calling thread (only) into the named network namespace.
pub(crate) fn enter_netns(ns: &str) -> io::Result<()> {
    let f = fs::File::open(format!("/run/netns/{ns}"))?;
    // SAFETY: setns on a namespace file we opened; affects this thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
