//! What trustmesh reasons about, before and after it touches a host: the
//! inventory as written and resolved, the trust graph built from it, the
//! live state a node reports, where a node's sshd listens, and what a check
//! found wrong.

pub mod finding;
pub mod graph;
pub mod inventory;
pub mod state;
pub mod target;
