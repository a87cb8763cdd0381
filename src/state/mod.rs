//! What the engine knows it manages: a versioned JSON document (`version`, `serial`,
//! `lineage`) with each resource's AWS id, attributes and dependencies.
//!
//! *Guarantees*: a state file is replaced atomically (temp file, fsync, rename), mode 0600; the
//! state as it was before a command is kept as `<file>.backup`, and in the store's history
//! ([`history`]) with the last 20 before it; only the holder of the lock writes.

mod backend;
pub mod encryption;
mod file;
pub mod history;
mod lock;
mod s3;
mod waiting;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use backend::{Acquired, StateBackend, Takeover, TookOver, while_locked};
pub use encryption::Codec;
pub use file::LocalState;
pub use lock::{LockInfo, StateLock};
pub use s3::{S3State, list_keys};
pub use waiting::Waiting;

/// A file kept beside the state file: `<state><suffix>` (`.lock`, `.backup`, `.journal`).
fn beside(state_path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = state_path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

use crate::addr::ResourceAddr;
use crate::value::Attrs;

/// The state format this build writes. Older formats are upgraded on read, one step per
/// version ([`State::from_json`]).
pub const FORMAT_VERSION: u32 = 2;

#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// Who saved this document: the command, the caller, when. Read back from a stored state;
    /// written only by the store as it saves ([`State::to_json_written`], which stamps who
    /// writes now); absent in states saved before history was kept.
    #[serde(default, skip_serializing)]
    pub written: Option<history::Written>,
    /// The lookups and outputs of the spec last applied, as declared (resources carry their
    /// own declarations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<crate::spec::recorded::Declared>,
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
    /// Whether AWS is known to hold it, finished.
    #[serde(default, skip_serializing_if = "ResourceStatus::is_ready")]
    pub status: ResourceStatus,
    /// Kept in AWS (only forgotten) when destroyed or replaced: adopted, or the spec said so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain_on_destroy: bool,
    /// Earlier objects of this resource, replaced by a new one made first and still to be
    /// deleted (once nothing refers to them any more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deposed: Vec<Deposed>,
    /// Attributes the spec leaves unset, as AWS reported them when this entry was last read
    /// around an apply: `drift` reports one changed away from this snapshot (`None`: never
    /// recorded, nothing to compare with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unset: Option<Attrs>,
    /// How the spec declared it when it was last applied (references kept: see
    /// [`crate::spec::recorded`]): what `undo` plans back to. `None`: saved before declarations
    /// were recorded, or entered without a spec (`import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration: Option<serde_json::Value>,
}

/// An object a replacement made first left behind, to be deleted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Deposed {
    pub id: String,
    pub attributes: Attrs,
}

/// How far the engine got with a resource.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    /// Created (or adopted), its settings applied and its readiness confirmed.
    #[default]
    Ready,
    /// Created, but its settings or its readiness (a Lambda `Active`, a distribution
    /// `Deployed`) were not confirmed: the next plan finishes it.
    Creating,
    /// A creating call was about to be sent, or was sent and its answer never recorded: the
    /// resource may exist without the engine knowing its id. `attributes` hold what was to be
    /// created; the next plan looks for it.
    Pending(Intent),
}

impl ResourceStatus {
    pub fn is_ready(&self) -> bool {
        *self == ResourceStatus::Ready
    }
}

/// What the engine wrote down before a creating call, so that what the call made can be found
/// and adopted if the answer is lost (a crash, a dropped connection).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Intent {
    /// This create's idempotency token (CloudFront's CallerReference).
    pub token: String,
    /// When the intent was recorded, in seconds since the Unix epoch: a resource created
    /// before it was not made by this create.
    pub since: u64,
}

impl ResourceState {
    /// The entry recorded just before the creating call of `addr`.
    pub fn intent(attributes: Attrs, intent: Intent) -> Self {
        Self { id: String::new(), attributes, status: ResourceStatus::Pending(intent), ..Default::default() }
    }

    /// The intent, if the resource's creation is still unresolved.
    pub fn pending(&self) -> Option<&Intent> {
        match &self.status {
            ResourceStatus::Pending(intent) => Some(intent),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputState {
    pub value: Value,
    #[serde(default)]
    pub sensitive: bool,
    /// The name `output --format dotenv` gives it, from the spec's `env:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
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
            written: None,
            declared: None,
        }
    }

    /// Reads a state document of any format version this build knows, upgrading it one
    /// version at a time to the current format.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let mut raw: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let mut version = raw.get("version").and_then(Value::as_u64).ok_or("no `version` field")?;
        if version > u64::from(FORMAT_VERSION) {
            return Err(format!(
                "format version {version} was written by a newer cruddur-infra (this one reads up to {FORMAT_VERSION})"
            ));
        }
        while version < u64::from(FORMAT_VERSION) {
            raw = match version {
                1 => upgrade_v1_to_v2(raw),
                v => return Err(format!("unknown state format version {v}")),
            };
            version += 1;
        }
        // Each resource on its own first, so a broken entry is named by its address.
        if let Some(resources) = raw.get("resources").and_then(Value::as_object) {
            for (addr, entry) in resources {
                if let Err(e) = serde_json::from_value::<ResourceState>(entry.clone()) {
                    return Err(format!("resource `{addr}`: {e}"));
                }
            }
        }
        serde_json::from_value(raw).map_err(|e| format!("not a version {FORMAT_VERSION} state: {e}"))
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("state is plain JSON data");
        text.push('\n');
        text
    }

    /// The document as a store saves it: stamped with who writes it now (whatever stamp the
    /// state it was loaded from carried), without copying the state.
    pub fn to_json_written(&self, written: &history::Written) -> String {
        // Every field of the state as `to_json` writes it (so none can be forgotten here), and
        // the stamp.
        #[derive(Serialize)]
        struct Stamped<'a> {
            #[serde(flatten)]
            state: &'a State,
            written: &'a history::Written,
        }
        let stamped = Stamped { state: self, written };
        let mut text = serde_json::to_string_pretty(&stamped).expect("state is plain JSON data");
        text.push('\n');
        text
    }
}

/// Version 2 added each resource's `status` (absent means ready, which every version 1 entry
/// is), so the upgrade only renumbers the document; a version 1 reader refuses version 2,
/// whose pending entries it would misread as resources.
fn upgrade_v1_to_v2(mut raw: Value) -> Value {
    raw["version"] = Value::from(2);
    raw
}

/// Two states are equal when they record the same: who wrote each (`written`) is not compared.
impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.serial == other.serial
            && self.lineage == other.lineage
            && self.resources == other.resources
            && self.outputs == other.outputs
            && self.declared == other.declared
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the state could not be read, written or locked.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("state {path}: {source}")]
    #[diagnostic(code(cruddur::state::io))]
    Io { path: String, source: std::io::Error },
    /// The file is not a state this build can read.
    #[error("state {path} is unreadable: {reason}")]
    #[diagnostic(code(cruddur::state::corrupt), help("{hint}"))]
    Corrupt { path: String, reason: String, hint: String },
    /// Another command holds the lock.
    #[error("state {path} is locked by another command: {holder}")]
    #[diagnostic(code(cruddur::state::locked), help("{hint}"))]
    Locked {
        path: String,
        holder: String,
        /// The holder's lock id, when the lock could be read.
        lock_id: Option<String>,
        hint: String,
    },
    /// force-unlock could not remove the lock.
    #[error("cannot unlock state {path}: {reason}")]
    #[diagnostic(code(cruddur::state::unlock))]
    Unlock { path: String, reason: String },
    /// The remote state changed since this command read it (a writer that ignored the lock).
    #[error("state {path} was changed by someone else since it was read")]
    #[diagnostic(code(cruddur::state::conflict), help("nothing was overwritten; run the command again"))]
    Conflict { path: String },
    /// The remote store refused or failed a request.
    #[error("state {path}: {operation} failed: {code}: {message}")]
    #[diagnostic(code(cruddur::state::remote))]
    Remote { path: String, operation: &'static str, code: String, message: String },
    /// The stored form and the command's encryption setting disagree, or KMS refused.
    #[error("state {path} cannot be read or written: {reason}")]
    #[diagnostic(code(cruddur::state::encryption), help("{hint}"))]
    Encryption { path: String, reason: String, hint: String },
    /// A command that reports on a state found none where it was pointed.
    #[error("there is no state at {path}")]
    #[diagnostic(
        code(cruddur::state::missing),
        help(
            "this command reads the state an apply wrote: check --state (or CRUDDUR_STATE) and the working directory; \
             only `plan` and `apply` start from no state"
        )
    )]
    Missing { path: String },
    /// The lock this command held was taken over or removed while it worked.
    #[error("state {path}: this command lost its lock while it worked: {reason}")]
    #[diagnostic(
        code(cruddur::state::lock_lost),
        help(
            "it stopped before its next write; what it did is recorded in the state or its journal, or found by the \
             next run through its intents: run the command again once the lock is free"
        )
    )]
    LockLost { path: String, reason: String },
}

/// What to do about an unreadable state file or journal at `path`: only files that exist are
/// suggested.
pub fn corrupt_hint(path: &str) -> String {
    if path.ends_with(".journal") {
        return format!(
            "the journal holds changes not yet folded into the state; fix the line, or move {path} away to \
             drop them (then run `cruddur-infra plan`: what AWS has that the state does not know is adopted or named)"
        );
    }
    let backup = format!("{path}.backup");
    if std::path::Path::new(&backup).exists() {
        format!("restore it from {backup} (the state before the last command), or fix the named entry")
    } else {
        "fix the named entry; there is no backup beside it".into()
    }
}

/// The backend for a `--state` location: `s3://BUCKET/KEY`, or a file path; documents stored
/// as `codec` says; an S3 lock is a lease of `lease`.
pub fn open<'a>(
    location: &str,
    aws: &'a crate::provider::Aws,
    codec: Codec<'a>,
    lease: std::time::Duration,
    keep: usize,
) -> Box<dyn StateBackend + 'a> {
    let history = history::Keeping { keep, caller: Some(aws) };
    match location.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
        Some((bucket, key)) => Box::new(S3State::new(aws, bucket, key, codec).with_lease(lease).with_history(history)),
        None => Box::new(LocalState::with_codec(location, codec).with_history(history)),
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
    fn a_version_1_state_is_upgraded_with_every_resource_ready() {
        // A state written before statuses existed reads as the same resources, all ready.
        let v1 = r#"{"version": 1, "serial": 7, "lineage": "l",
            "resources": {"s3_bucket.a": {"id": "a", "attributes": {"name": "a"}, "dependencies": []}}}"#;
        let s = State::from_json(v1).expect("upgraded");
        assert_eq!((s.version, s.serial), (FORMAT_VERSION, 7));
        assert_eq!(s.resources[&ResourceAddr::new("s3_bucket", "a")].status, ResourceStatus::Ready);
    }

    #[test]
    fn a_pending_intent_round_trips_and_ready_is_not_written() {
        // Intents survive a save; a ready resource's status is left out of the file.
        let mut s = State::new();
        let intent = Intent { token: "t".into(), since: 5 };
        s.resources.insert(ResourceAddr::new("s3_bucket", "p"), ResourceState::intent(Attrs::new(), intent.clone()));
        s.resources.insert(ResourceAddr::new("s3_bucket", "r"), ResourceState { id: "r".into(), ..Default::default() });
        let json = s.to_json();
        assert_eq!(json.matches("\"status\"").count(), 1, "{json}");
        let back = State::from_json(&json).expect("reads");
        assert_eq!(back.resources[&ResourceAddr::new("s3_bucket", "p")].pending(), Some(&intent));
    }

    #[test]
    fn newer_format_is_refused_with_a_reason() {
        // A state from a future version is not misread.
        let e = State::from_json(r#"{"version": 9, "serial": 1, "lineage": "x"}"#).expect_err("refused");
        assert!(e.contains("newer"), "{e}");
    }
}
