//! The JSON form of the plan's findings (plan JSON, saved plans, their
//! schema): [`NodeStatus`] and [`RotationRefused`] hold a [`Finding`], and
//! are written with the fields they always had. A blocked node and a
//! refused rotation say no step (theirs is [`Finding::PLAN`]); an
//! unreachable node's `hint` is written even when there is none (`null`).
//! Each type goes through its form here, borrowed on the way out.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{NodeStatus, RotationRefused};
use crate::model::finding::{Finding, Hint};

// The doc comments below are the schema's descriptions: keep them.

/// Why a node's changes could not be planned.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
#[schemars(rename = "NodeStatus")]
enum StatusForm<'a> {
    Planned,
    Unreachable {
        step: Cow<'a, str>,
        reason: Cow<'a, str>,
        hint: Option<Cow<'a, Hint>>,
    },
    Skipped {
        reason: Cow<'a, str>,
    },
    /// Read, but something on it stops trustmesh from changing it safely.
    Blocked {
        reason: Cow<'a, str>,
        hint: Option<Cow<'a, Hint>>,
    },
}

/// Why a node's key is not rotated in this run, although `--rotate-keys`
/// names it. A rotation removes the old key everywhere once the new one
/// is proven, so it is made only when the new key can be proven on every
/// node the key opens; anything less could lock the node out of the
/// others.
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "RotationRefused")]
struct RefusalForm<'a> {
    reason: Cow<'a, str>,
    /// The nodes the key opens that this run cannot prove a new key on
    /// (outside `--limit`, not read, blocked, or without a shell), each
    /// with why: `node2 (not in --limit)`.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    missing: Cow<'a, [String]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint: Option<Cow<'a, Hint>>,
}

/// A planner's finding read back: its step is [`Finding::PLAN`].
fn plan_finding(reason: Cow<'_, str>, hint: Option<Cow<'_, Hint>>) -> Finding {
    Finding::new(
        Finding::PLAN,
        reason.into_owned(),
        hint.map(Cow::into_owned),
    )
}

impl<'a> From<&'a NodeStatus> for StatusForm<'a> {
    fn from(s: &'a NodeStatus) -> StatusForm<'a> {
        let hint = |f: &'a Finding| f.hint.as_ref().map(Cow::Borrowed);
        match s {
            NodeStatus::Planned => StatusForm::Planned,
            NodeStatus::Unreachable(f) => StatusForm::Unreachable {
                step: Cow::Borrowed(&f.step),
                reason: Cow::Borrowed(&f.reason),
                hint: hint(f),
            },
            NodeStatus::Skipped { reason } => StatusForm::Skipped {
                reason: Cow::Borrowed(reason),
            },
            NodeStatus::Blocked(f) => StatusForm::Blocked {
                reason: Cow::Borrowed(&f.reason),
                hint: hint(f),
            },
        }
    }
}

impl From<StatusForm<'_>> for NodeStatus {
    fn from(s: StatusForm<'_>) -> NodeStatus {
        match s {
            StatusForm::Planned => NodeStatus::Planned,
            StatusForm::Unreachable { step, reason, hint } => NodeStatus::Unreachable(
                Finding::new(&step, reason.into_owned(), hint.map(Cow::into_owned)),
            ),
            StatusForm::Skipped { reason } => NodeStatus::Skipped {
                reason: reason.into_owned(),
            },
            StatusForm::Blocked { reason, hint } => NodeStatus::Blocked(plan_finding(reason, hint)),
        }
    }
}

impl Serialize for NodeStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StatusForm::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for NodeStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NodeStatus, D::Error> {
        StatusForm::deserialize(d).map(NodeStatus::from)
    }
}

impl Serialize for RotationRefused {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RefusalForm {
            reason: Cow::Borrowed(&self.finding.reason),
            missing: Cow::Borrowed(&self.missing),
            hint: self.finding.hint.as_ref().map(Cow::Borrowed),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RotationRefused {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RotationRefused, D::Error> {
        let r = RefusalForm::deserialize(d)?;
        Ok(RotationRefused {
            finding: plan_finding(r.reason, r.hint),
            missing: r.missing.into_owned(),
        })
    }
}

/// Each type's schema is its form's.
macro_rules! schema_of_form {
    ($t:ty, $form:ty) => {
        impl JsonSchema for $t {
            fn is_referenceable() -> bool {
                <$form>::is_referenceable()
            }

            fn schema_name() -> String {
                <$form>::schema_name()
            }

            fn json_schema(gen: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
                <$form>::json_schema(gen)
            }
        }
    };
}

schema_of_form!(NodeStatus, StatusForm<'static>);
schema_of_form!(RotationRefused, RefusalForm<'static>);
