//! Why a plan chose an action, when its attribute changes alone do not say: decided by the
//! engine (an interrupted apply, an adoption, a retained resource) or by the kind (an
//! [`Annotation`]). Data, with a stable code for `plan --json` and a sentence for people.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::addr::ResourceAddr;
use crate::provider::Annotation;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Adopted (`import_id`) or `lifecycle.retain_on_destroy`: forgotten, never deleted.
    Retained,
    /// An interrupted apply meant to create it and nothing was made: it is forgotten.
    NeverCreated,
    /// Deleted outside the engine and gone from the spec: it is forgotten.
    DeletedOutsideAndUndeclared,
    /// Deleted outside the engine: it is created again.
    DeletedOutside,
    /// Created by an interrupted apply, found, and taken into the state.
    AdoptedAfterInterruption,
    /// `import_id`: the resource there is taken into the state.
    Adopting { kind: String, id: String },
    /// An earlier apply created it but did not finish: settings and readiness are completed.
    Unfinished,
    /// A replacement of an adopted or retained resource: the old one is kept in AWS.
    ReplacementKeepsOld,
    /// `--replace ADDR`: replaced because the command asked, not because of a change.
    Requested,
    /// Drift of attributes the spec leaves unset, changed since the last apply recorded them.
    UnsetChanged { names: Vec<String> },
    /// What the resource's kind says about the change.
    Kind { addr: ResourceAddr, annotation: Annotation },
}

impl Reason {
    /// Its stable name in `plan --json` (`action_reason`).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Retained => "retained",
            Reason::NeverCreated => "never_created",
            Reason::DeletedOutsideAndUndeclared => "deleted_outside_and_undeclared",
            Reason::DeletedOutside => "deleted_outside",
            Reason::AdoptedAfterInterruption => "adopted_after_interruption",
            Reason::Adopting { .. } => "adopting",
            Reason::Unfinished => "unfinished",
            Reason::ReplacementKeepsOld => "replacement_keeps_old",
            Reason::Requested => "replace_requested",
            Reason::UnsetChanged { .. } => "unset_changed",
            Reason::Kind { annotation, .. } => annotation.code(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Retained => f.write_str(
                "adopted (import_id) or lifecycle.retain_on_destroy: set lifecycle.retain_on_destroy: false to delete \
                 it instead",
            ),
            Reason::NeverCreated => {
                f.write_str("an interrupted apply meant to create it and nothing was made: it will be forgotten")
            }
            Reason::DeletedOutsideAndUndeclared => {
                f.write_str("deleted outside cruddur-infra and is no longer in the spec: it will be forgotten")
            }
            Reason::DeletedOutside => f.write_str("it was deleted outside cruddur-infra"),
            Reason::AdoptedAfterInterruption => f.write_str("will be adopted: created by an interrupted apply"),
            Reason::Adopting { kind, id } => write!(f, "adopting the existing {kind} `{id}`"),
            Reason::Unfinished => {
                f.write_str("an earlier apply created it but did not finish: its settings and readiness are completed")
            }
            Reason::ReplacementKeepsOld => {
                f.write_str("the one there now is kept in AWS and forgotten (adopted, or lifecycle.retain_on_destroy)")
            }
            Reason::Requested => f.write_str("--replace asks for it"),
            Reason::UnsetChanged { names } => {
                write!(f, "not set in the spec, changed since the last apply recorded it: {}", names.join(", "))
            }
            Reason::Kind { addr, annotation } => f.write_str(&annotation.text(addr)),
        }
    }
}
