//! Saved plans (`plan --out FILE`, `apply FILE`): the plan with what it was made from, so
//! apply can refuse a plan that no longer matches the state or the spec.

use std::collections::BTreeSet;
use std::path::Path;

use aws_lc_rs::digest::{Context, SHA256, digest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Action, Plan, ResourceChange, evaluate};
use crate::addr::ResourceAddr;
use crate::provider::Registry;
use crate::spec::Spec;
use crate::state::State;
use crate::value::{contains_unknown, unknown};

/// The saved-plan format this build writes and reads (2: a change's `reason` is data, not a `note`).
pub const SAVED_PLAN_VERSION: u32 = 2;

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
    /// The build profile the plan's Lambda code was built with (`release` when absent): apply
    /// builds with the same one, whatever its own `--build-profile` says, so the code it
    /// checks and deploys is the code the plan showed.
    #[serde(default)]
    pub build_profile: Option<String>,
    /// The stage the plan was made for (`--stage`); none for the main stack. `apply FILE` works
    /// on that stage, and refuses another one named on its command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `undo --out`: the plan is of the spec state serial N recorded, not of the spec file;
    /// `apply FILE` makes that spec again from the kept state to check the plan against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_of: Option<u64>,
    /// SHA-256 of everything above, as written ([`content_digest`]): a plan edited after it
    /// was saved is refused on read.
    #[serde(default)]
    pub plan_digest: String,
}

/// Why a saved plan cannot be applied.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SavedPlanError {
    /// The file is missing or not a saved plan.
    #[error("cannot read saved plan {path}: {reason}")]
    #[diagnostic(code(cruddur::plan::saved::unreadable))]
    Unreadable { path: String, reason: String },
    /// The file was changed after `plan --out` wrote it, or says something apply must not do.
    #[error("the saved plan {path} was edited or is inconsistent: {reason}")]
    #[diagnostic(
        code(cruddur::plan::saved::edited),
        help(
            "a saved plan is carried out exactly as `plan --out` wrote it; make a new one: `cruddur-infra plan --out {path}`"
        )
    )]
    Edited { path: String, reason: String },
    /// Something the plan was made from has changed since.
    #[error("the saved plan {path} is stale: {reason}")]
    #[diagnostic(
        code(cruddur::plan::saved::stale),
        help("run `cruddur-infra plan --out {path}` again, review it, then apply it")
    )]
    Stale { path: String, reason: String },
}

impl SavedPlan {
    /// The plan as written, with its digest.
    pub fn encode(&mut self) -> Vec<u8> {
        self.plan_digest = String::new();
        let value = serde_json::to_value(&*self).expect("a plan is plain data");
        self.plan_digest = content_digest(&value);
        let mut text = serde_json::to_string_pretty(self).expect("a plan is plain data");
        text.push('\n');
        text.into_bytes()
    }

    /// Writes a plan's bytes (as [`SavedPlan::encode`] made them, maybe sealed) atomically,
    /// readable by its owner only (it holds resolved values, sensitive ones included).
    pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        crate::atomic_file::write(path, bytes, 0o600)
    }

    /// Writes the plan in plain text.
    pub fn write(&mut self, path: &Path) -> std::io::Result<()> {
        let bytes = self.encode();
        Self::write_file(path, &bytes)
    }

    pub fn read(path: &Path) -> Result<Self, SavedPlanError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SavedPlanError::Unreadable { path: path.display().to_string(), reason: e.to_string() })?;
        Self::decode(path, &text)
    }

    /// The plan `text` (read from `path`) holds, checked against its digest.
    pub fn decode(path: &Path, text: &str) -> Result<Self, SavedPlanError> {
        let unreadable = |reason: String| SavedPlanError::Unreadable { path: path.display().to_string(), reason };
        let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| unreadable(format!("not JSON: {e}")))?;
        match raw.get("format_version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(SAVED_PLAN_VERSION) => {}
            Some(v) => return Err(unreadable(format!("format version {v}, this build reads {SAVED_PLAN_VERSION}"))),
            None => return Err(unreadable("no format_version: not a saved plan".into())),
        }
        let edited = |reason: String| SavedPlanError::Edited { path: path.display().to_string(), reason };
        let written = raw.get("plan_digest").and_then(Value::as_str).unwrap_or_default().to_string();
        if written.is_empty() {
            return Err(edited("it carries no plan_digest".into()));
        }
        if content_digest(&raw) != written {
            return Err(edited("its content no longer matches the digest it was saved with".into()));
        }
        serde_json::from_value(raw).map_err(|e| unreadable(e.to_string()))
    }

    /// Checks, before any AWS call, that the plan says only what apply can carry out as shown:
    /// every kind registered, every address declared (or, for a delete, in the state) and
    /// listed once, the ids the actions need present and equal to the state's, the states the
    /// plan carries equal to the one on disk, and every value known at plan time still what
    /// apply would send. `state` is the state as loaded now (its serial already checked).
    pub async fn validate(
        &self,
        path: &Path,
        spec: &Spec,
        registry: &Registry,
        builds: &crate::build::Builds,
        state: &State,
    ) -> Result<(), SavedPlanError> {
        let edited = |reason: String| SavedPlanError::Edited { path: path.display().to_string(), reason };
        let plan = &self.plan;
        // A state not yet written gets a new lineage at every load: only its emptiness counts.
        let fresh = state.serial == 0 && state.resources.is_empty();
        if plan.prior.resources != state.resources || (!fresh && plan.prior.lineage != state.lineage) {
            return Err(edited("the state it was made from is not the state on disk".into()));
        }
        for (addr, refreshed) in &plan.refreshed.resources {
            // A refresh changes attributes, never ids; it may find the id of an open intent.
            match state.resources.get(addr) {
                Some(now) if now.pending().is_none() && now.id != refreshed.id => {
                    return Err(edited(format!(
                        "{addr}: the refreshed state gives it id `{}`, the state `{}`",
                        refreshed.id, now.id
                    )));
                }
                // Adopted by the spec's `import_id`: read by that id before the state knew it.
                None if spec
                    .resources
                    .iter()
                    .any(|r| &r.addr == addr && r.import_id.as_deref() == Some(&refreshed.id)) => {}
                None => return Err(edited(format!("{addr}: in the refreshed state but not in the state"))),
                _ => {}
            }
        }
        let mut seen = BTreeSet::new();
        for change in &plan.changes {
            let addr = &change.addr;
            if !seen.insert(addr) {
                return Err(edited(format!("{addr} is listed twice")));
            }
            let Some(kind) = registry.get(&addr.kind) else {
                return Err(edited(format!("{addr}: `{}` is not a resource kind", addr.kind)));
            };
            let declared = spec.resource(addr);
            let recorded = plan.refreshed.resources.get(addr).or_else(|| state.resources.get(addr));
            let needs_id = matches!(change.action, Action::Update | Action::Replace | Action::Delete | Action::Forget)
                || (change.action == Action::NoOp && change.imported);
            match (&change.id, needs_id) {
                (None, true) => return Err(edited(format!("{addr}: a {:?} needs the resource's id", change.action))),
                (Some(id), _) if change.action == Action::Create => {
                    return Err(edited(format!("{addr}: a create has no id, this one says `{id}`")));
                }
                (Some(id), true) if !change.imported => {
                    let known = recorded.map(|r| r.id.as_str());
                    if known != Some(id.as_str()) {
                        return Err(edited(format!(
                            "{addr}: the plan acts on id `{id}`, the state knows {}",
                            known.map_or("no such resource".to_string(), |k| format!("`{k}`"))
                        )));
                    }
                }
                _ => {}
            }
            match change.action {
                Action::Create | Action::Update | Action::Replace => {
                    let Some(res) = declared else {
                        return Err(edited(format!("{addr} is not declared in {}", self.spec)));
                    };
                    let Some(planned) = &change.desired else {
                        return Err(edited(format!("{addr}: a {:?} without the values to apply", change.action)));
                    };
                    let mut desired = evaluate(res, &|a, attr| planned_value(plan, registry, a, attr));
                    kind.normalize(&mut desired);
                    if let Some(artifact) = kind.artifact()
                        && let Err(e) = artifact.prepare(&builds.in_dir(&res.dir), &mut desired).await
                    {
                        return Err(edited(format!("{addr}: cannot prepare what apply would send: {e}")));
                    }
                    let names: BTreeSet<&String> = planned.keys().chain(desired.keys()).collect();
                    for name in names {
                        let (shown, sent) = (planned.get(name), desired.get(name));
                        let comparable =
                            shown.is_some_and(|v| !contains_unknown(v)) && sent.is_some_and(|v| !contains_unknown(v));
                        let one_side = shown.is_some() != sent.is_some();
                        if one_side || (comparable && shown != sent) {
                            return Err(edited(format!("{addr}: `{name}` is not what apply would send")));
                        }
                    }
                }
                Action::Delete | Action::Forget if recorded.is_none() => {
                    return Err(edited(format!("{addr}: the state has no such resource to remove")));
                }
                _ => {}
            }
        }
        Ok(())
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
    let mut hash = Context::new(&SHA256);
    hash.update(spec.source.text().as_bytes());
    for v in &spec.variables {
        hash.update(&[0]);
        hash.update(v.name.as_bytes());
        hash.update(&[0]);
        hash.update(v.value.to_string().as_bytes());
    }
    hash.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest a saved plan carries: SHA-256 of its JSON without the `plan_digest` field,
/// serialised compactly in the order written.
pub fn content_digest(saved: &Value) -> String {
    let mut without = saved.clone();
    if let Some(object) = without.as_object_mut() {
        object.remove("plan_digest");
    }
    let bytes = serde_json::to_vec(&without).unwrap_or_default();
    digest(&SHA256, &bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The value a reference sees at apply time, as the planner saw it: a settable attribute has
/// its planned value, a computed one is unknown while its resource is still to be created,
/// anything else is what the refresh read.
fn planned_value(plan: &Plan, registry: &Registry, addr: &ResourceAddr, attr: &str) -> Value {
    if let Some(answer) = plan.lookups.get(addr) {
        return answer.get(attr).cloned().unwrap_or(Value::Null);
    }
    let computed = registry.get(&addr.kind).and_then(|k| k.schema().attribute(attr)).is_none_or(|a| a.computed);
    let change: Option<&ResourceChange> = plan.change(addr);
    if let Some(c) = change {
        if !computed && let Some(v) = c.desired.as_ref().and_then(|d| d.get(attr)) {
            return v.clone();
        }
        if computed && matches!(c.action, Action::Create | Action::Replace) {
            return unknown();
        }
    }
    plan.value_of(&plan.refreshed, addr, attr)
}
