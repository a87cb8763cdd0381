//! Executes a plan: walks the changes in dependency order with bounded parallelism, records
//! each resource in the state as soon as AWS confirms it, and reports each failure once.
//!
//! *Guarantees*:
//! - every resource that changes is recorded in the store at once (the local store appends it
//!   to a journal; the whole state is written once, at the end);
//! - before a creating call an intent is recorded, and the resource is recorded the moment the
//!   call answers, before its settings and its readiness: whatever fails or dies afterwards,
//!   the resource is never lost, and an intent left open is resolved by the next plan
//!   ([`create`]);
//! - a resource is recorded as deleted only when AWS confirms it is gone;
//! - a failed resource skips only what depends on it; deletes run after everything that
//!   depended on the deleted resource.
//!
//! *Errors*: each failure names the resource and carries the AWS error code; retries are the
//! policy's ([`crate::retry`]) and are reported as events.

mod create;
pub mod events;
pub mod operate;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use events::{ApplyEvents, Silent};

use crate::addr::ResourceAddr;
use crate::graph::{NodeOutcome, walk};
use crate::plan::{Action, Plan, ResourceChange, evaluate};
use crate::provider::{Aws, Deleted, Managed, Owner, ProviderError, Registry, ResourceKind};
use crate::retry::Scope;
use crate::spec::Spec;
use crate::state::{Deposed, OutputState, ResourceState, ResourceStatus, State, StateBackend, StateError};
use crate::value::{Attrs, contains_unknown};
use tokio::sync::Mutex;

/// Why one resource's change failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// AWS refused or failed the call.
    #[error("{addr}: {verb} failed: {error}")]
    Aws { addr: ResourceAddr, verb: &'static str, error: Box<ProviderError> },
    /// Something the engine did not make is where the resource would be created.
    #[error("{addr}: cannot create it: `{id}` exists and was not made for it ({why})")]
    NotOurs { addr: ResourceAddr, id: String, why: String },
    /// Recording the result failed; the resource exists in AWS but may be missing from the state.
    #[error("{addr}: the change was made but the state could not be saved: {error}")]
    State { addr: ResourceAddr, error: StateError },
    /// A value differs from what the plan showed, so the plan is not what would be done.
    #[error("{addr}: `{attr}` is no longer what the plan showed; run plan again")]
    PlanMismatch { addr: ResourceAddr, attr: String },
    /// A value the plan left unknown is still unknown when its turn comes (an engine bug).
    #[error("{addr}: attribute `{attr}` is still unknown at apply time")]
    Unresolved { addr: ResourceAddr, attr: String },
    /// Building or reading the resource's local artifact failed.
    #[error("{addr}: {error}")]
    Prepare { addr: ResourceAddr, error: Box<crate::build::PrepareError> },
}

impl ApplyError {
    /// The hint a user needs next, where there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApplyError::NotOurs { addr, id, .. } => Some(format!(
                "if it should be managed here, adopt it with `cruddur-infra import {addr} {id}`; otherwise rename \
                 the resource in the spec"
            )),
            _ => None,
        }
    }
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
    /// Set by Ctrl-C: start nothing new, let running calls finish and be recorded.
    pub cancelled: &'a AtomicBool,
    pub events: &'a dyn ApplyEvents,
    /// How often a step still running is reported ([`ApplyEvents::still_working`]).
    pub progress_every: Duration,
    /// The command's builds: a Lambda's zip is built (or found built) again before it is sent.
    pub builds: &'a crate::build::Builds,
}

/// Terraform's rhythm for "Still creating...".
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What one resource's work needs besides the kind: the plan's change and the shared state.
struct Work<'a> {
    spec: &'a Spec,
    plan: &'a Plan,
    change: &'a ResourceChange,
    kind: &'a dyn ResourceKind,
    state: &'a Mutex<State>,
    /// When each resource this apply created was created (for "not yet visible" retries).
    created: &'a std::sync::Mutex<BTreeMap<ResourceAddr, Instant>>,
}

impl Work<'_> {
    fn addr(&self) -> &ResourceAddr {
        &self.change.addr
    }

    /// The ownership of an existing resource (no create in progress).
    async fn owner(&self) -> Owner {
        let lineage = self.state.lock().await.lineage.clone();
        Owner {
            addr: self.addr().clone(),
            lineage,
            token: String::new(),
            since: 0,
            replacing: vec![],
            stage: self.spec.stage.clone(),
        }
    }
}

impl Applier<'_> {
    /// Applies `plan` to the refreshed state it was made from.
    pub async fn apply(&self, spec: &Spec, plan: &Plan) -> Result<ApplyReport, StateError> {
        let state = Mutex::new(keep_snapshots(plan));
        // Renamed resources are saved under their new addresses before anything else is
        // recorded: a journal entry at a new address must never meet the old one after a kill.
        if plan.moves() {
            self.save(&mut *state.lock().await).await?;
        }
        let created = std::sync::Mutex::new(BTreeMap::new());
        let deps = execution_order(plan, self.registry);
        let steps = walk(
            deps,
            self.parallelism,
            || self.cancelled.load(Ordering::SeqCst),
            |step: Step| {
                let addr = step.addr();
                let change = plan.change(addr).expect("every walked node comes from the plan");
                let kind = self.registry.get(&change.addr.kind).expect("planned kinds are registered");
                let work = Work { spec, plan, change, kind, state: &state, created: &created };
                async move {
                    let action = match step {
                        Step::DeleteDeposed(_) => Action::Delete,
                        _ => change.action,
                    };
                    let done = async {
                        match step {
                            Step::Change(_) => self.run(&work).await,
                            Step::Ready(_) => self.wait_ready(&work).await,
                            Step::DeleteDeposed(_) => self.delete_deposed(&work).await,
                        }
                    };
                    self.reported(work.addr(), action, done).await
                }
            },
        )
        .await;
        let outcomes = by_resource(steps);
        let mut state = state.into_inner();
        let outputs = outputs(spec, plan, &state);
        let declared = (!plan.destroy).then(|| crate::spec::recorded::Declared::of(spec));
        // Every recorded change raised the serial: the store folds them into one save.
        let recorded = state.serial != plan.refreshed.serial;
        if recorded
            || state.outputs != outputs
            || state.declared != declared
            || state.resources != plan.prior.resources
            || state.serial == 0
        {
            state.outputs = outputs;
            state.declared = declared;
            self.save(&mut state).await?;
        }
        Ok(ApplyReport { outcomes, state })
    }

    /// Runs one step of a resource's work, reporting it every `progress_every` while it runs
    /// and once if it fails.
    async fn reported(
        &self,
        addr: &ResourceAddr,
        action: Action,
        step: impl Future<Output = Result<(), ApplyError>>,
    ) -> Result<(), ApplyError> {
        let started = Instant::now();
        let every = self.progress_every.max(Duration::from_millis(10));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(step);
        loop {
            tokio::select! {
                result = &mut step => {
                    if let Err(error) = &result {
                        self.events.failed(addr, action, error, started.elapsed());
                    }
                    return result;
                }
                _ = ticks.tick() => {
                    if action != Action::NoOp {
                        self.events.still_working(addr, action, started.elapsed());
                    }
                }
            }
        }
    }

    async fn run(&self, work: &Work<'_>) -> Result<(), ApplyError> {
        let started = Instant::now();
        let (addr, change) = (work.addr(), work.change);
        match change.action {
            Action::NoOp if change.imported => {
                let adopted = work.state.lock().await.resources.get(addr).cloned();
                self.record(work.state, addr, adopted).await?;
                self.events.finished(addr, Action::NoOp, change.id.as_deref(), started.elapsed());
                return Ok(());
            }
            Action::NoOp => return Ok(()),
            Action::Forget => {
                self.record(work.state, addr, None).await?;
                self.events.finished(addr, Action::Forget, change.id.as_deref(), started.elapsed());
                return Ok(());
            }
            action => self.events.started(addr, action, change.id.as_deref()),
        }
        match change.action {
            Action::Replace if change.creates_first => self.depose(work).await?,
            Action::Replace | Action::Delete => self.delete(work).await?,
            _ => {}
        }
        let id = match change.action {
            Action::Create | Action::Replace => Some(self.create(work).await?),
            Action::Update => Some(self.update(work).await?),
            _ => None,
        };
        self.events.finished(addr, change.action, id.as_deref(), started.elapsed());
        Ok(())
    }

    /// The retry scope for `addr`'s calls: "not found" is retried while `created_at` is recent.
    fn scope<'s>(
        &'s self,
        on_retry: &'s (dyn Fn(&crate::retry::RetryNotice) + Sync),
        created_at: Option<Instant>,
    ) -> Scope<'s> {
        Scope { created_at, on_retry }
    }

    /// The spec's values for the resource, with references resolved against the state now.
    async fn desired(&self, work: &Work<'_>) -> Result<Attrs, ApplyError> {
        let (spec, plan, change, kind) = (work.spec, work.plan, work.change, work.kind);
        let res = spec.resource(&change.addr).expect("created and updated resources are in the spec");
        let mut desired = {
            let snapshot = work.state.lock().await;
            evaluate(res, &|a, attr| plan.value_of(&snapshot, a, attr))
        };
        kind.normalize(&mut desired);
        if let Some(artifact) = kind.artifact() {
            let prepared = artifact.prepare(&self.builds.in_dir(&res.dir), &mut desired).await;
            prepared.map_err(|error| ApplyError::Prepare { addr: change.addr.clone(), error: Box::new(error) })?;
        }
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

    async fn update(&self, work: &Work<'_>) -> Result<String, ApplyError> {
        let (change, kind, addr) = (work.change, work.kind, work.addr());
        let desired = self.desired(work).await?;
        let id = change.id.clone().expect("an update has an id");
        let (live, status) = {
            let state = work.state.lock().await;
            let entry = state.resources.get(addr);
            (
                entry.map(|r| r.attributes.clone()).unwrap_or_default(),
                entry.map(|r| r.status.clone()).unwrap_or_default(),
            )
        };
        // Values unknown at plan time are known now: compare again so only real changes are sent.
        let changed = changed_attributes(kind, &desired, &live);
        let owner = work.owner().await;
        let finishing = status == ResourceStatus::Creating;
        let computed = self.settle(work, &id, &desired, &changed, &owner, finishing, None).await?;
        let mut attributes = desired;
        attributes.extend(computed);
        for a in kind.schema().attributes.iter().filter(|a| a.computed) {
            if let (false, Some(v)) = (attributes.contains_key(a.name), live.get(a.name)) {
                attributes.insert(a.name.to_string(), v.clone());
            }
        }
        self.record_kept(work.state, addr, recorded(change, id.clone(), attributes, done(kind))).await?;
        Ok(id)
    }

    /// Applies `changed` to the resource `id` and waits until it is ready when anything
    /// changed or `finishing` a create; what AWS computed anew.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        work: &Work<'_>,
        id: &str,
        desired: &Attrs,
        changed: &[&str],
        owner: &Owner,
        finishing: bool,
        created_at: Option<Instant>,
    ) -> Result<Attrs, ApplyError> {
        let (kind, addr) = (work.kind, work.addr());
        let report = |n: &crate::retry::RetryNotice| self.events.retrying(addr, n);
        let scope = self.scope(&report, created_at);
        let aws_error = |verb| move |error| ApplyError::Aws { addr: addr.clone(), verb, error: Box::new(error) };
        let mut computed = Attrs::new();
        if !changed.is_empty() {
            computed = self
                .aws
                .retry()
                .run(scope, || kind.update(self.aws, id, desired, changed, owner))
                .await
                .map_err(aws_error("update"))?;
        }
        // Dependents that need only ids go ahead; the apply waits in a step of its own.
        if (!changed.is_empty() || finishing) && waits_for_ready(kind) {
            self.aws.retry().run(scope, || kind.wait_ready(self.aws, id, desired)).await.map_err(aws_error("wait"))?;
        }
        Ok(computed)
    }

    /// Waits until a resource whose dependents did not wait for it is ready, and records so.
    async fn wait_ready(&self, work: &Work<'_>) -> Result<(), ApplyError> {
        let started = Instant::now();
        let (kind, addr) = (work.kind, work.addr());
        let Some(mut entry) = work.state.lock().await.resources.get(addr).cloned() else { return Ok(()) };
        let report = |n: &crate::retry::RetryNotice| self.events.retrying(addr, n);
        let waited =
            self.aws.retry().run(self.scope(&report, None), || kind.wait_ready(self.aws, &entry.id, &entry.attributes));
        waited.await.map_err(|error| ApplyError::Aws { addr: addr.clone(), verb: "wait", error: Box::new(error) })?;
        entry.status = ResourceStatus::Ready;
        self.record_kept(work.state, addr, entry).await?;
        self.events.ready(addr, started.elapsed());
        Ok(())
    }

    /// Before a replacement that is made first: the old object becomes deposed, kept in the
    /// resource's entry until it is deleted. A kept (adopted) one is forgotten instead.
    async fn depose(&self, work: &Work<'_>) -> Result<(), ApplyError> {
        let addr = work.addr();
        let Some(mut entry) = work.state.lock().await.resources.get(addr).cloned() else { return Ok(()) };
        if entry.retain_on_destroy {
            self.events.left_to_aws(addr, "it is adopted (or lifecycle.retain_on_destroy): kept in AWS");
            return self.record(work.state, addr, None).await;
        }
        entry.deposed.push(Deposed { id: entry.id.clone(), attributes: entry.attributes.clone() });
        self.record(work.state, addr, Some(entry)).await
    }

    /// Deletes the objects replacements left behind, once what referred to them moved on.
    async fn delete_deposed(&self, work: &Work<'_>) -> Result<(), ApplyError> {
        let addr = work.addr();
        loop {
            let entry = work.state.lock().await.resources.get(addr).cloned();
            let Some(mut entry) = entry else { return Ok(()) };
            let Some(old) = entry.deposed.first().cloned() else { return Ok(()) };
            self.events.started(addr, Action::Delete, Some(&old.id));
            let started = Instant::now();
            self.delete_object(work, &old.id, &old.attributes).await?;
            entry.deposed.remove(0);
            self.record(work.state, addr, Some(entry)).await?;
            self.events.finished(addr, Action::Delete, Some(&old.id), started.elapsed());
        }
    }

    /// Records `entry` for the resource, keeping the deposed objects its current entry holds.
    async fn record_kept(
        &self,
        state: &Mutex<State>,
        addr: &ResourceAddr,
        mut entry: ResourceState,
    ) -> Result<(), ApplyError> {
        if let Some(current) = state.lock().await.resources.get(addr) {
            entry.deposed = current.deposed.clone();
            // The spec's unset attributes as last read; an update does not touch them. One the
            // spec stopped setting joins them with its last value.
            if entry.unset.is_none() {
                entry.unset = current.unset.clone();
            }
            if let Some(unset) = entry.unset.as_mut() {
                for (name, value) in &current.attributes {
                    if !entry.attributes.contains_key(name) && !value.is_null() {
                        unset.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        self.record(state, addr, Some(entry)).await
    }

    async fn delete(&self, work: &Work<'_>) -> Result<(), ApplyError> {
        let addr = work.addr();
        let prior = work.state.lock().await.resources.get(addr).cloned();
        let Some(prior) = prior else { return Ok(()) };
        for old in &prior.deposed {
            self.delete_object(work, &old.id, &old.attributes).await?;
        }
        // Replacing a resource that is kept (adopted): the old one stays in AWS, forgotten.
        if prior.retain_on_destroy && prior.pending().is_none() {
            self.events.left_to_aws(addr, "it is adopted (or lifecycle.retain_on_destroy): kept in AWS");
            return self.record(work.state, addr, None).await;
        }
        let id = match prior.pending() {
            // A plan made without refreshing may still hold an intent: delete what it made.
            Some(intent) => match self.resolve_intent(work, &prior.attributes, intent).await? {
                Some(id) => id,
                None => return self.record(work.state, addr, None).await,
            },
            None => prior.id.clone(),
        };
        self.delete_object(work, &id, &prior.attributes).await?;
        self.record(work.state, addr, None).await
    }

    /// Deletes one object of the resource; done when AWS says so, or when it reads as gone.
    async fn delete_object(&self, work: &Work<'_>, id: &str, recorded: &Attrs) -> Result<(), ApplyError> {
        let (kind, addr) = (work.kind, work.addr());
        let report = |n: &crate::retry::RetryNotice| self.events.retrying(addr, n);
        let aws_error = |error| ApplyError::Aws { addr: addr.clone(), verb: "delete", error: Box::new(error) };
        match self.aws.retry().run(self.scope(&report, None), || kind.delete(self.aws, id, recorded)).await {
            Ok(Deleted::Yes) => {}
            Ok(Deleted::LeftToAws(why)) => self.events.left_to_aws(addr, &why),
            // "Not found" from a delete means gone only if the resource reads as gone.
            Err(e) if e.is_not_found() => {
                let nothing = |_: &str| false;
                let managed = Managed(&nothing);
                let read =
                    self.aws.retry().run(self.scope(&report, None), || kind.read(self.aws, id, &managed, recorded));
                if read.await.map_err(aws_error)?.is_some() {
                    return Err(aws_error(e));
                }
            }
            Err(error) => return Err(aws_error(error)),
        }
        Ok(())
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

/// The compared attributes whose desired value differs from the recorded one.
fn changed_attributes(kind: &dyn ResourceKind, desired: &Attrs, live: &Attrs) -> Vec<&'static str> {
    let schema = kind.schema();
    crate::plan::diff::compare(schema, live, desired, |a| desired.contains_key(a) || live.contains_key(a))
        .iter()
        .filter_map(|c| schema.attribute(&c.name).map(|a| a.name))
        .collect()
}

/// The refreshed state the plan was made from, with each resource's snapshot of the attributes
/// the spec leaves unset kept as recorded (a state without one takes the refresh's): an apply
/// does not accept a change made in the console to something the spec does not say; `drift`
/// keeps reporting it until the spec says it (`drift --adopt`) or it is changed back.
fn keep_snapshots(plan: &Plan) -> State {
    let mut state = plan.refreshed.clone();
    // What stays as it is takes the spec's declaration now (an edit that changes no value, a
    // literal written as a reference); a change records its own once carried out.
    for change in plan.changes.iter().filter(|c| c.action == Action::NoOp && c.declaration.is_some()) {
        if let Some(entry) = state.resources.get_mut(&change.addr) {
            entry.declaration.clone_from(&change.declaration);
        }
    }
    for (addr, entry) in &mut state.resources {
        let Some(recorded) = plan.prior.resources.get(addr).and_then(|p| p.unset.as_ref()) else { continue };
        let mut kept = recorded.clone();
        kept.retain(|name, _| !entry.attributes.contains_key(name));
        entry.unset = Some(kept);
    }
    state
}

/// The state entry for a resource just created or updated.
fn recorded(change: &ResourceChange, id: String, attributes: Attrs, status: ResourceStatus) -> ResourceState {
    ResourceState {
        id,
        attributes,
        dependencies: change.dependencies.clone(),
        sensitive: change.sensitive.clone(),
        prevent_destroy: change.prevent_destroy,
        status,
        retain_on_destroy: change.retain_on_destroy,
        deposed: vec![],
        unset: None,
        declaration: change.declaration.clone(),
    }
}

/// The status of a resource whose change is carried out: ready, unless its readiness is a
/// step of its own still to come.
fn done(kind: &dyn ResourceKind) -> ResourceStatus {
    if waits_for_ready(kind) { ResourceStatus::Ready } else { ResourceStatus::Creating }
}

/// One step of an apply: a resource's planned change; waiting until it is ready, where what
/// depends on it need not wait; or deleting the objects a replacement left behind (which waits
/// for everything that refers to the resource).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Change(ResourceAddr),
    Ready(ResourceAddr),
    DeleteDeposed(ResourceAddr),
}

impl Step {
    fn addr(&self) -> &ResourceAddr {
        match self {
            Step::Change(a) | Step::Ready(a) | Step::DeleteDeposed(a) => a,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Change(a) => write!(f, "{a}"),
            Step::Ready(a) => write!(f, "{a} (becoming ready)"),
            Step::DeleteDeposed(a) => write!(f, "{a} (its replaced object)"),
        }
    }
}

/// Each resource's outcome: its change's, unless deleting what its replacement left failed.
fn by_resource(steps: BTreeMap<Step, NodeOutcome<ApplyError>>) -> BTreeMap<ResourceAddr, NodeOutcome<ApplyError>> {
    let mut out = BTreeMap::new();
    for (step, outcome) in steps {
        match step {
            Step::Change(addr) => {
                out.entry(addr).or_insert(outcome);
            }
            // A later step's failure is the resource's, unless its change already failed.
            Step::Ready(addr) | Step::DeleteDeposed(addr) if !matches!(outcome, NodeOutcome::Done) => {
                if out.get(&addr).is_none_or(|o| matches!(o, NodeOutcome::Done)) {
                    out.insert(addr, outcome);
                }
            }
            Step::Ready(_) | Step::DeleteDeposed(_) => {}
        }
    }
    out
}

/// Each step and what must finish before it: creates and updates follow the resources they
/// reference; a delete waits for the deletes of everything that depended on it; deleting what a
/// replacement left behind waits for the replacement and for every change that refers to it.
fn execution_order(plan: &Plan, registry: &Registry) -> BTreeMap<Step, BTreeSet<Step>> {
    let active: BTreeMap<&ResourceAddr, &ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp || c.imported || !c.deposed.is_empty())
        .map(|c| (&c.addr, c))
        .collect();
    let mut deps: BTreeMap<Step, BTreeSet<Step>> = BTreeMap::new();
    for c in active.values() {
        let entry = deps.entry(Step::Change(c.addr.clone())).or_default();
        if !c.action.removes() {
            let after = c.dependencies.iter().filter(|d| active.get(d).is_some_and(|dc| !dc.action.removes()));
            entry.extend(after.map(|d| Step::Change(d.clone())));
        }
    }
    // A resource being deleted (or replaced) waits for the deletion of its dependents.
    for c in active.values().filter(|c| c.action.removes()) {
        for d in &c.dependencies {
            if let Some(dc) = active.get(d).filter(|dc| dc.action.removes() || dc.action == Action::Replace) {
                deps.entry(Step::Change(dc.addr.clone())).or_default().insert(Step::Change(c.addr.clone()));
            }
        }
    }
    // Readiness nobody waits for is still waited for, after the change.
    let deferred = |c: &ResourceChange| registry.get(&c.addr.kind).is_some_and(|k| !waits_for_ready(k));
    for c in
        active.values().filter(|c| matches!(c.action, Action::Create | Action::Replace | Action::Update) && deferred(c))
    {
        deps.insert(Step::Ready(c.addr.clone()), BTreeSet::from([Step::Change(c.addr.clone())]));
    }
    // The old object of a replacement made first goes once nothing refers to it.
    for c in active.values().filter(|c| !c.action.removes() && (c.creates_first || !c.deposed.is_empty())) {
        let mut after: BTreeSet<Step> = BTreeSet::from([Step::Change(c.addr.clone())]);
        let referrers = active.values().filter(|d| d.dependencies.contains(&c.addr) && !d.action.removes());
        after.extend(referrers.map(|d| Step::Change(d.addr.clone())));
        deps.insert(Step::DeleteDeposed(c.addr.clone()), after);
    }
    deps
}

/// Outputs evaluated against the state; an output whose resource failed is left out.
fn outputs(spec: &Spec, plan: &Plan, state: &State) -> BTreeMap<String, OutputState> {
    spec.outputs
        .iter()
        .filter_map(|o| {
            let value = o.value.eval(&|addr, attr| plan.value_of(state, addr, attr));
            (!contains_unknown(&value))
                .then(|| (o.name.clone(), OutputState { value, sensitive: o.sensitive, env: o.env.clone() }))
        })
        .collect()
}

/// Whether what depends on a resource of this kind waits until it is ready.
fn waits_for_ready(kind: &dyn ResourceKind) -> bool {
    kind.lifecycle().dependents_wait == crate::provider::DependentsWait::Ready
}
