//! What trustmesh reasons about, before and after it touches a host: the
//! inventory as written and resolved, the trust graph built from it, where
//! a node's files are (`layout`), which nodes a run covers (`scope`), the
//! live state a node reports, where a node's sshd listens, and what a check
//! found wrong.

pub mod finding;
pub mod graph;
pub mod inventory;
pub mod layout;
pub mod scope;
pub mod state;
pub mod target;
