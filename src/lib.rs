//! trustmesh: declarative SSH trust for clusters.
//!
//! The library holds everything that can be reasoned about without touching
//! a host: the inventory (parsing, validation, diagnostics), the trust graph
//! and its renderers. The binary in `src/main.rs` is a thin command line on
//! top of it.

pub mod apply;
pub mod authorized_keys;
pub mod block;
pub mod finding;
pub mod gather;
pub mod graph;
pub mod history;
pub mod hosts_file;
pub mod import;
pub mod inventory;
pub mod key_options;
pub mod known_hosts;
pub mod lines;
pub mod lock;
pub mod plan;
pub mod planfile;
pub mod probe;
pub mod render;
pub mod scripts;
pub mod ssh_config;
pub mod state;
pub mod target;
pub mod transport;
pub mod verify;
pub mod windows;

pub use graph::{Edge, EdgeKind, TrustGraph};
pub use inventory::{Inventory, InventoryError};
