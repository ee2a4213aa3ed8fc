//! trustmesh: declarative SSH trust for clusters.
//!
//! The library holds the whole pipeline: the inventory and its trust graph
//! (`model`), the file formats (`formats`), reading the live state of the
//! nodes over SSH (`gather`), the pure planner (`plan`), applying a plan
//! with compare-and-swap (`apply`), trying every edge (`verify`), and the
//! renderers (`output`). The workflows that run them in order (`plan`,
//! `apply`, `verify`) are operations in [`ops`]: they print nothing and
//! ask nothing themselves, an [`ops::Operator`] consents, gives passwords
//! and watches. The binary in `src/main.rs` is a thin command line on top
//! of it: flags in, one operation, its report rendered.

pub mod apply;
pub mod formats;
pub mod gather;
pub mod history;
pub mod import;
pub mod model;
pub mod node;
pub mod ops;
pub mod output;
pub mod plan;
pub mod transport;
pub mod verify;

pub use model::graph::{Edge, EdgeKind, TrustGraph};
pub use model::inventory::{Inventory, InventoryError};
