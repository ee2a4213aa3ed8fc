//! Why an operation stopped.

use crate::apply::ApplyReport;
use crate::gather::GatherError;
use crate::plan::saved::Difference;
use crate::plan::Plan;

use super::operator::NoPassword;
use super::request::OptionsError;

/// An operation that could not go to its end. Nothing changed, except
/// after [`OpsError::NotReadBack`] (changes made, state not read back).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The inventory could not be read or is not valid.
    #[error(transparent)]
    Inventory(#[from] crate::model::inventory::InventoryError),
    /// Another apply holds the inventory's lock, or it cannot be taken.
    #[error(transparent)]
    Lock(#[from] crate::apply::lock::LockError),
    /// A saved plan could not be read, written or is refused.
    #[error(transparent)]
    PlanFile(#[from] crate::plan::saved::PlanFileError),
    /// Options that do not fit the inventory.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The run could not start or read (the manager's own state...).
    #[error(transparent)]
    Gather(#[from] GatherError),
    /// `--ask-pass` without a password.
    #[error(transparent)]
    Password(#[from] NoPassword),
    /// A saved plan is an approval of exactly its changes: a fresh plan
    /// that differs refuses it, and nothing changes.
    #[error("the saved plan is refused, nothing was changed: a fresh plan differs from it")]
    SavedPlanDiffers {
        /// The fresh plan.
        fresh: Box<Plan>,
        differences: Vec<Difference>,
    },
    /// The operator did not consent: nothing was changed.
    #[error("Apply cancelled.")]
    Cancelled,
    /// Changes were made, then the state could not be read back.
    #[error("the state could not be read back after apply: {source}")]
    NotReadBack {
        /// The plan applied.
        plan: Box<Plan>,
        /// What each action did.
        report: Box<ApplyReport>,
        source: GatherError,
    },
}
