//! trustmesh: declarative SSH trust for clusters.
//!
//! The library holds everything that can be reasoned about without touching
//! a host: the inventory (parsing, validation, diagnostics), the trust graph
//! and its renderers. The binary in `src/main.rs` is a thin command line on
//! top of it.

pub mod apply;
pub mod formats;
pub mod gather;
pub mod history;
pub mod import;
pub mod model;
pub mod node;
pub mod output;
pub mod plan;
pub mod transport;
pub mod verify;

pub use model::graph::{Edge, EdgeKind, TrustGraph};
pub use model::inventory::{Inventory, InventoryError};
