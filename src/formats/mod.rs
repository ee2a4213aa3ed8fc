//! The files trustmesh reads and writes on a node, each parsed losslessly
//! (every byte it did not write comes back as it was): `authorized_keys`
//! and its key options, `known_hosts`, `~/.ssh/config` and `/etc/hosts`
//! with their marked blocks, the line model under all of them, and the
//! `type base64` pair a public key is named by.

pub mod authorized_keys;
pub mod block;
pub mod certificate;
pub mod hosts_file;
pub mod key_options;
pub mod known_hosts;
pub mod lines;
pub mod public_key;
pub mod ssh_config;
