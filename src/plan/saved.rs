//! Saved plans (`plan --out FILE`, `apply FILE`): the plan with what it was made from, so
//! apply can refuse a plan that no longer matches the state or the spec.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Plan;
use crate::addr::ResourceAddr;
use crate::spec::Spec;

/// The saved-plan format this build writes and reads.
pub const SAVED_PLAN_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    /// The spec file the plan was made from.
    pub spec: String,
    /// SHA-256 of the spec's text and its variables' values.
    pub spec_digest: String,
    /// Where the state is (file or s3://).
    pub state: String,
    /// The state's lineage and serial when the plan was made.
    pub lineage: String,
    pub serial: u64,
    pub targets: Vec<ResourceAddr>,
    pub plan: Plan,
}

/// Why a saved plan cannot be applied.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SavedPlanError {
    /// The file is missing or not a saved plan.
    #[error("cannot read saved plan {path}: {reason}")]
    #[diagnostic(code(cruddur::plan::saved::unreadable))]
    Unreadable { path: String, reason: String },
    /// Something the plan was made from has changed since.
    #[error("the saved plan {path} is stale: {reason}")]
    #[diagnostic(
        code(cruddur::plan::saved::stale),
        help("run `cruddur-infra plan --out {path}` again, review it, then apply it")
    )]
    Stale { path: String, reason: String },
}

impl SavedPlan {
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("a plan is plain data");
        text.push('\n');
        std::fs::write(path, text)
    }

    pub fn read(path: &Path) -> Result<Self, SavedPlanError> {
        let unreadable = |reason: String| SavedPlanError::Unreadable { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| unreadable(format!("not JSON: {e}")))?;
        match raw.get("format_version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(SAVED_PLAN_VERSION) => {}
            Some(v) => return Err(unreadable(format!("format version {v}, this build reads {SAVED_PLAN_VERSION}"))),
            None => return Err(unreadable("no format_version: not a saved plan".into())),
        }
        serde_json::from_value(raw).map_err(|e| unreadable(e.to_string()))
    }

    /// Refuses the plan unless the state and the spec are what it was made from.
    pub fn check_fresh(&self, path: &Path, spec: &Spec, state: &crate::state::State) -> Result<(), SavedPlanError> {
        let stale = |reason: String| SavedPlanError::Stale { path: path.display().to_string(), reason };
        // With no state yet there is no history to protect: any empty state will do.
        let both_empty = self.serial == 0 && state.serial == 0 && state.resources.is_empty();
        if state.lineage != self.lineage && !both_empty {
            return Err(stale(format!(
                "the state's lineage is {}, the plan was made for {}",
                state.lineage, self.lineage
            )));
        }
        if state.serial != self.serial {
            return Err(stale(format!(
                "the state moved from serial {} to {} since the plan was made",
                self.serial, state.serial
            )));
        }
        if spec_digest(spec) != self.spec_digest {
            return Err(stale(format!("{} or its variables changed since the plan was made", self.spec)));
        }
        Ok(())
    }
}

/// A digest of everything in the spec that decides the plan: its text and variables.
pub fn spec_digest(spec: &Spec) -> String {
    let mut hash = Sha256::new();
    hash.update(spec.source.text().as_bytes());
    for v in &spec.variables {
        hash.update([0]);
        hash.update(v.name.as_bytes());
        hash.update([0]);
        hash.update(v.value.to_string().as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
