//! Executes a plan: walks the changes in dependency order with bounded parallelism, records
//! each resource in the state as soon as AWS confirms it, and reports each failure once.
//!
//! *Guarantees*: every resource that changes is recorded in the store at once (the local store
//! appends it to a journal; the whole state is written once, at the end), so a crash loses at
//! most the call in flight; a failed resource skips only what depends on it; deletes run
//! after everything that depended on the deleted resource.

mod retry;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub use retry::RetryPolicy;

use crate::addr::ResourceAddr;
use crate::graph::{NodeOutcome, walk};
use crate::plan::{Action, Plan, ResourceChange, evaluate};
use crate::provider::{Aws, ProviderError, Registry, ResourceKind};
use crate::spec::Spec;
use crate::state::{OutputState, ResourceState, State, StateBackend, StateError};
use crate::value::{Attrs, contains_unknown};
use tokio::sync::Mutex;

/// Why one resource's change failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// AWS refused or failed the call.
    #[error("{addr}: {verb} failed: {error}")]
    Aws { addr: ResourceAddr, verb: &'static str, error: Box<ProviderError> },
    /// Recording the result failed; the resource exists in AWS but may be missing from the state.
    #[error("{addr}: the change was made but the state could not be saved: {error}")]
    State { addr: ResourceAddr, error: StateError },
    /// A value differs from what the plan showed, so the plan is not what would be done.
    #[error("{addr}: `{attr}` is no longer what the plan showed; run plan again")]
    PlanMismatch { addr: ResourceAddr, attr: String },
    /// A value the plan left unknown is still unknown when its turn comes (an engine bug).
    #[error("{addr}: attribute `{attr}` is still unknown at apply time")]
    Unresolved { addr: ResourceAddr, attr: String },
}

/// The result of an apply, one outcome per changed resource.
pub struct ApplyReport {
    pub outcomes: BTreeMap<ResourceAddr, NodeOutcome<ApplyError>>,
    pub state: State,
}

impl ApplyReport {
    pub fn failed(&self) -> bool {
        self.outcomes.values().any(|o| !matches!(o, NodeOutcome::Done))
    }
}

pub struct Applier<'a> {
    pub registry: &'a Registry,
    pub aws: &'a Aws,
    /// Where every change is recorded; the caller holds its lock.
    pub store: &'a dyn StateBackend,
    pub parallelism: usize,
    pub retry: RetryPolicy,
    /// Set by Ctrl-C: start nothing new, let running calls finish and be recorded.
    pub cancelled: &'a AtomicBool,
}

impl Applier<'_> {
    /// Applies `plan` to the refreshed state it was made from.
    pub async fn apply(&self, spec: &Spec, plan: &Plan) -> Result<ApplyReport, StateError> {
        let state = Mutex::new(plan.refreshed.clone());
        let deps = execution_order(plan);
        let outcomes = walk(
            deps,
            self.parallelism,
            || self.cancelled.load(Ordering::SeqCst),
            |addr: ResourceAddr| {
                let change = plan.change(&addr).expect("every walked node comes from the plan");
                let state = &state;
                async move { self.run(spec, plan, change, state).await }
            },
        )
        .await;
        let mut state = state.into_inner();
        let outputs = outputs(spec, plan, &state);
        // Every recorded change raised the serial: the store folds them into one save.
        let recorded = state.serial != plan.refreshed.serial;
        if recorded || state.outputs != outputs || state.resources != plan.prior.resources || state.serial == 0 {
            state.outputs = outputs;
            self.save(&mut state).await?;
        }
        Ok(ApplyReport { outcomes, state })
    }

    async fn run(
        &self,
        spec: &Spec,
        plan: &Plan,
        change: &ResourceChange,
        state: &Mutex<State>,
    ) -> Result<(), ApplyError> {
        let kind = self.registry.get(&change.addr.kind).expect("planned kinds are registered");
        let started = Instant::now();
        let addr = &change.addr;
        match change.action {
            Action::NoOp if change.imported => {
                let adopted = state.lock().await.resources.get(addr).cloned();
                self.record(state, addr, adopted).await?;
                println!("{addr}: Import complete [id={}]", change.id.as_deref().unwrap_or_default());
                return Ok(());
            }
            Action::NoOp => return Ok(()),
            Action::Create => println!("{addr}: Creating..."),
            Action::Update => println!("{addr}: Modifying... [id={}]", change.id.as_deref().unwrap_or_default()),
            Action::Replace | Action::Delete => {
                println!("{addr}: Destroying... [id={}]", change.id.as_deref().unwrap_or_default())
            }
        }
        if matches!(change.action, Action::Replace | Action::Delete) {
            self.delete(kind, change, state).await?;
            if change.action == Action::Replace {
                println!("{addr}: Destruction complete after {}; Creating...", elapsed(started));
            }
        }
        let id = match change.action {
            Action::Create | Action::Replace => Some(self.create(spec, plan, kind, change, state).await?),
            Action::Update => Some(self.update(spec, plan, kind, change, state).await?),
            _ => None,
        };
        let verb = match change.action {
            Action::Update => "Modifications",
            Action::Delete => "Destruction",
            _ => "Creation",
        };
        match id {
            Some(id) => println!("{addr}: {verb} complete after {} [id={id}]", elapsed(started)),
            None => println!("{addr}: {verb} complete after {}", elapsed(started)),
        }
        Ok(())
    }

    async fn desired(
        &self,
        spec: &Spec,
        plan: &Plan,
        kind: &dyn ResourceKind,
        change: &ResourceChange,
        state: &Mutex<State>,
    ) -> Result<Attrs, ApplyError> {
        let res = spec.resource(&change.addr).expect("created and updated resources are in the spec");
        let mut desired = {
            let snapshot = state.lock().await;
            evaluate(res, &|a, attr| plan.value_of(&snapshot, a, attr))
        };
        kind.normalize(&mut desired);
        let prepared = kind.prepare(&mut desired).await;
        prepared.map_err(|error| ApplyError::Aws {
            addr: change.addr.clone(),
            verb: "prepare",
            error: Box::new(error),
        })?;
        // Carry out exactly what was planned: a value known at plan time must not have moved
        // (an artifact rebuilt since a saved plan, say).
        let planned = change.desired.iter().flatten().filter(|(_, v)| !contains_unknown(v));
        if let Some((attr, _)) = planned.into_iter().find(|(k, v)| desired.get(*k) != Some(*v)) {
            return Err(ApplyError::PlanMismatch { addr: change.addr.clone(), attr: attr.clone() });
        }
        if let Some((attr, _)) = desired.iter().find(|(_, v)| contains_unknown(v)) {
            return Err(ApplyError::Unresolved { addr: change.addr.clone(), attr: attr.clone() });
        }
        Ok(desired)
    }

    async fn create(
        &self,
        spec: &Spec,
        plan: &Plan,
        kind: &dyn ResourceKind,
        change: &ResourceChange,
        state: &Mutex<State>,
    ) -> Result<String, ApplyError> {
        let desired = self.desired(spec, plan, kind, change, state).await?;
        let created =
            self.retry.run(|| kind.create(self.aws, &change.addr, &desired)).await.map_err(|error| {
                ApplyError::Aws { addr: change.addr.clone(), verb: "create", error: Box::new(error) }
            })?;
        let mut attributes = desired;
        attributes.extend(created.attrs);
        self.record(state, &change.addr, Some(recorded(change, created.id.clone(), attributes))).await?;
        Ok(created.id)
    }

    async fn update(
        &self,
        spec: &Spec,
        plan: &Plan,
        kind: &dyn ResourceKind,
        change: &ResourceChange,
        state: &Mutex<State>,
    ) -> Result<String, ApplyError> {
        let desired = self.desired(spec, plan, kind, change, state).await?;
        let id = change.id.clone().expect("an update has an id");
        // Values unknown at plan time are known now: compare again so only real changes are sent.
        let live = state.lock().await.resources.get(&change.addr).map(|r| r.attributes.clone()).unwrap_or_default();
        let changed: Vec<&str> = kind
            .schema()
            .compared()
            .filter(|a| {
                desired.get(a.name) != live.get(a.name) && (desired.contains_key(a.name) || live.contains_key(a.name))
            })
            .map(|a| a.name)
            .collect();
        let mut attributes = desired.clone();
        if !changed.is_empty() {
            let computed =
                self.retry.run(|| kind.update(self.aws, &id, &desired, &changed)).await.map_err(|error| {
                    ApplyError::Aws { addr: change.addr.clone(), verb: "update", error: Box::new(error) }
                })?;
            attributes.extend(computed);
        }
        for a in kind.schema().attributes.iter().filter(|a| a.computed) {
            if let (false, Some(v)) = (attributes.contains_key(a.name), live.get(a.name)) {
                attributes.insert(a.name.to_string(), v.clone());
            }
        }
        self.record(state, &change.addr, Some(recorded(change, id.clone(), attributes))).await?;
        Ok(id)
    }

    async fn delete(
        &self,
        kind: &dyn ResourceKind,
        change: &ResourceChange,
        state: &Mutex<State>,
    ) -> Result<(), ApplyError> {
        let prior = state.lock().await.resources.get(&change.addr).cloned();
        let Some(prior) = prior else { return Ok(()) };
        match self.retry.run(|| kind.delete(self.aws, &prior.id, &prior.attributes)).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(error) => {
                return Err(ApplyError::Aws { addr: change.addr.clone(), verb: "delete", error: Box::new(error) });
            }
        }
        self.record(state, &change.addr, None).await
    }

    /// Records one resource's new state (or its removal) in the store at once. The state stays
    /// locked while it is saved, so saves happen in the order of the changes.
    async fn record(
        &self,
        state: &Mutex<State>,
        addr: &ResourceAddr,
        res: Option<ResourceState>,
    ) -> Result<(), ApplyError> {
        let mut s = state.lock().await;
        match &res {
            Some(r) => s.resources.insert(addr.clone(), r.clone()),
            None => s.resources.remove(addr),
        };
        s.serial += 1;
        self.store.record(&s, addr, res.as_ref()).await.map_err(|error| ApplyError::State { addr: addr.clone(), error })
    }

    async fn save(&self, state: &mut State) -> Result<(), StateError> {
        state.serial += 1;
        self.store.save(state).await
    }
}

/// The state entry for a resource just created or updated.
fn recorded(change: &ResourceChange, id: String, attributes: Attrs) -> ResourceState {
    ResourceState {
        id,
        attributes,
        dependencies: change.dependencies.clone(),
        sensitive: change.sensitive.clone(),
        prevent_destroy: change.prevent_destroy,
    }
}

/// Each change and what must finish before it: creates and updates follow the resources they
/// reference; a delete waits for the deletes of everything that depended on it.
fn execution_order(plan: &Plan) -> BTreeMap<ResourceAddr, BTreeSet<ResourceAddr>> {
    let active: BTreeMap<&ResourceAddr, &ResourceChange> =
        plan.changes.iter().filter(|c| c.action != Action::NoOp || c.imported).map(|c| (&c.addr, c)).collect();
    let mut deps: BTreeMap<ResourceAddr, BTreeSet<ResourceAddr>> = BTreeMap::new();
    for c in active.values() {
        let entry = deps.entry(c.addr.clone()).or_default();
        if c.action != Action::Delete {
            entry.extend(
                c.dependencies.iter().filter(|d| active.get(d).is_some_and(|dc| dc.action != Action::Delete)).cloned(),
            );
        }
    }
    // A resource being deleted (or replaced) waits for the deletion of its dependents.
    for c in active.values().filter(|c| c.action == Action::Delete) {
        for d in &c.dependencies {
            if let Some(dc) = active.get(d).filter(|dc| matches!(dc.action, Action::Delete | Action::Replace)) {
                deps.entry(dc.addr.clone()).or_default().insert(c.addr.clone());
            }
        }
    }
    deps
}

/// Outputs evaluated against the state; an output whose resource failed is left out.
fn outputs(spec: &Spec, plan: &Plan, state: &State) -> BTreeMap<String, OutputState> {
    spec.outputs
        .iter()
        .filter_map(|o| {
            let value = o.value.eval(&|addr, attr| plan.value_of(state, addr, attr));
            (!contains_unknown(&value)).then(|| (o.name.clone(), OutputState { value, sensitive: o.sensitive }))
        })
        .collect()
}

fn elapsed(started: Instant) -> String {
    let d = started.elapsed();
    if d.as_secs() >= 1 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}
