//! What the engine knows it manages: a versioned JSON document (`version`, `serial`,
//! `lineage`) with each resource's AWS id, attributes and dependencies.
//!
//! *Guarantees*: a state file is replaced atomically (temp file, fsync, rename), mode 0600; the
//! state as it was before a command is kept as `<file>.backup`; only the holder of the lock
//! writes.

mod backend;
mod file;
mod lock;
mod s3;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use backend::{StateBackend, open};
pub use file::{LocalState, StateError};
pub use lock::{LockInfo, StateLock};
pub use s3::S3State;

/// A file kept beside the state file: `<state><suffix>` (`.lock`, `.backup`, `.journal`).
fn beside(state_path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = state_path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

use crate::addr::ResourceAddr;
use crate::value::Attrs;

/// The state format this build writes. Older formats are upgraded on read, one step per version.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub version: u32,
    /// Increases with every write; a saved plan refers to the serial it was made from.
    pub serial: u64,
    /// Identifies one state's history; two states with different lineages never merge.
    pub lineage: String,
    #[serde(default)]
    pub resources: BTreeMap<ResourceAddr, ResourceState>,
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputState>,
}

/// One managed resource as last applied (or refreshed).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ResourceState {
    /// AWS's identifier: a bucket name, a topic ARN, ...
    pub id: String,
    /// The attributes the spec manages plus those AWS computes.
    pub attributes: Attrs,
    /// Resources this one was created after; destroy walks them in reverse.
    #[serde(default)]
    pub dependencies: BTreeSet<ResourceAddr>,
    /// Attributes whose values came from sensitive variables: masked wherever shown.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive: BTreeSet<String>,
    /// `lifecycle: { prevent_destroy: true }` as last applied: a plan may not destroy it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prevent_destroy: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputState {
    pub value: Value,
    #[serde(default)]
    pub sensitive: bool,
}

impl State {
    /// A new, empty state with a fresh lineage.
    pub fn new() -> Self {
        Self {
            version: FORMAT_VERSION,
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }
    }

    /// Reads a state document of any format version this build knows.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let raw: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let version = raw.get("version").and_then(Value::as_u64).ok_or("no `version` field")?;
        match version {
            1 => serde_json::from_value(raw).map_err(|e| format!("not a version 1 state: {e}")),
            v if v > u64::from(FORMAT_VERSION) => Err(format!(
                "format version {v} was written by a newer cruddur-infra (this one reads up to {FORMAT_VERSION})"
            )),
            v => Err(format!("unknown state format version {v}")),
        }
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("state is plain JSON data");
        text.push('\n');
        text
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_json() {
        // What is written is read back equal, addresses as keys included.
        let mut s = State::new();
        s.resources.insert(
            ResourceAddr::new("s3_bucket", "a"),
            ResourceState {
                id: "a".into(),
                attributes: Attrs::new(),
                dependencies: BTreeSet::new(),
                ..Default::default()
            },
        );
        assert_eq!(State::from_json(&s.to_json()).expect("reads"), s);
    }

    #[test]
    fn newer_format_is_refused_with_a_reason() {
        // A state from a future version is not misread.
        let e = State::from_json(r#"{"version": 9, "serial": 1, "lineage": "x"}"#).expect_err("refused");
        assert!(e.contains("newer"), "{e}");
    }
}
