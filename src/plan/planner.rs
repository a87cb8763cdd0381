//! Builds a [`Plan`]: refresh what the state manages (in parallel, bounded), evaluate the
//! spec's values in dependency order, and diff.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::diff::{creation, deletion, diff};
use super::{Action, Plan, Reason, ResourceChange};
use crate::addr::ResourceAddr;
use crate::build::{Builds, PrepareError};
use crate::permissions::{self, PermissionChange, rules};
use crate::provider::{
    Annotation, Aws, ChangeView, FindReason, Found, Managed, Owner, ProviderError, Registry, ResourceKind, Stage,
};
use crate::spec::{ResourceSpec, Spec};
use crate::state::{Intent, ResourceState, ResourceStatus, State};
use crate::value::{Attrs, unknown};

/// How to plan.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Read each managed resource from AWS first (`--refresh=false` trusts the state).
    pub refresh: bool,
    /// Concurrent reads.
    pub parallelism: usize,
    /// Plan to destroy everything in the state.
    pub destroy: bool,
    /// How reads are retried.
    /// With `refresh`, read only these; the rest is taken as recorded (a watch round, which
    /// applies nothing but these, reads nothing else).
    pub refresh_only: Option<BTreeSet<ResourceAddr>>,
    /// The command's builds: what `prepare` builds, and with which profile.
    pub builds: Builds,
    /// `--replace ADDR`: replaced even where an update in place (or nothing) would do.
    pub replace: BTreeSet<ResourceAddr>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            refresh: true,
            parallelism: 10,
            destroy: false,
            refresh_only: None,
            builds: Builds::default(),
            replace: BTreeSet::new(),
        }
    }
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    /// A `moved:` entry cannot be made in the state.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Move(#[from] super::moves::MoveError),
    /// Reading a resource from AWS failed.
    #[error("{addr}: refresh failed: {error}")]
    #[diagnostic(code(cruddur::plan::refresh))]
    Refresh { addr: ResourceAddr, error: Box<ProviderError> },
    /// A lookup found nothing or failed.
    #[error("{addr}: lookup failed: {error}")]
    #[diagnostic(code(cruddur::plan::lookup))]
    Lookup { addr: ResourceAddr, error: Box<ProviderError> },
    /// Preparing a resource's artifacts (building, hashing) failed.
    #[error("{addr}: {error}")]
    #[diagnostic(code(cruddur::plan::prepare))]
    Prepare { addr: ResourceAddr, error: Box<PrepareError> },
    /// `import_id` names something that does not exist.
    #[error("{addr}: cannot adopt `{id}`: it does not exist")]
    #[diagnostic(
        code(cruddur::plan::import_missing),
        help("create it first, or remove import_id so the engine creates it")
    )]
    ImportMissing { addr: ResourceAddr, id: String },
    /// The plan would destroy a resource marked `prevent_destroy`.
    #[error("{addr} has lifecycle.prevent_destroy set, but {why}")]
    #[diagnostic(
        code(cruddur::plan::prevent_destroy),
        help("if destroying it is really meant, set prevent_destroy: false, apply, then plan again")
    )]
    PreventDestroy { addr: ResourceAddr, why: String },
    /// An interrupted apply meant to create the resource, and something the engine did not
    /// make is there.
    #[error("{addr}: an interrupted apply was creating it, and `{id}` is there but was not made for it ({why})")]
    #[diagnostic(
        code(cruddur::plan::not_ours),
        help(
            "adopt it with `cruddur-infra import {addr} {id}` if it should be managed here, or remove it; then plan again"
        )
    )]
    NotOurs { addr: ResourceAddr, id: String, why: String },
    /// The state names a kind this build does not know.
    #[error("{addr}: the state holds a resource of unknown kind `{}`", addr.kind)]
    #[diagnostic(code(cruddur::plan::unknown_kind), help("was the state written by a newer cruddur-infra?"))]
    UnknownKind { addr: ResourceAddr },
}

pub struct Planner<'a> {
    pub registry: &'a Registry,
    pub aws: &'a Aws,
    pub options: PlanOptions,
}

/// A resource's planned values, for references from resources planned after it.
struct Planned {
    action: Action,
    desired: Attrs,
    live: Attrs,
}

impl Planner<'_> {
    pub async fn plan(&self, spec: &Spec, prior: &State) -> Result<Plan, PlanError> {
        let lookups = match self.options.destroy {
            true => BTreeMap::new(),
            false => lookups(self.registry, self.aws, spec, self.options.parallelism).await?,
        };
        // Renamed resources first, said or found: everything below sees them at their new
        // addresses.
        let (moved, mut moves) = super::moves::make_moves(prior, &spec.moves)?;
        let moved = if self.options.destroy {
            moved
        } else {
            let (found_state, found) = super::moves::find_renames(self.registry, spec, &moved, &lookups)?;
            moves.extend(found);
            found_state
        };
        let prior = &moved;
        let mut refreshed = self.refresh(Some(spec), prior).await?;
        let mut changes = Vec::new();
        let mut planned: BTreeMap<ResourceAddr, Planned> = BTreeMap::new();
        if !self.options.destroy {
            for res in order(&spec.resources) {
                let change = self.plan_resource(res, prior, &mut refreshed, &planned, &lookups).await?;
                let live = refreshed.resources.get(&res.addr).map(|r| r.attributes.clone()).unwrap_or_default();
                let desired = change.desired.clone().unwrap_or_default();
                planned.insert(res.addr.clone(), Planned { action: change.action, desired, live });
                changes.push(change);
            }
        }
        for (addr, prior_res) in &prior.resources {
            if planned.contains_key(addr) {
                continue;
            }
            let kind = self.kind(addr)?;
            // Destroying, the spec (if it still has the resource) says whether to keep it.
            let retain = spec.resource(addr).and_then(|r| r.retain_on_destroy).unwrap_or(prior_res.retain_on_destroy);
            let base = ResourceChange {
                sensitive: prior_res.sensitive.clone(),
                prevent_destroy: prior_res.prevent_destroy,
                retain_on_destroy: retain,
                deposed: prior_res.deposed.iter().map(|d| d.id.clone()).collect(),
                ..ResourceChange::new(addr.clone(), Action::NoOp)
            };
            changes.push(match refreshed.resources.get(addr) {
                Some(live) if retain => ResourceChange {
                    action: Action::Forget,
                    id: Some(live.id.clone()),
                    changes: deletion(kind.schema(), &live.attributes),
                    dependencies: prior_res.dependencies.clone(),
                    reason: Some(Reason::Retained),
                    ..base
                },
                Some(live) => ResourceChange {
                    action: Action::Delete,
                    id: Some(live.id.clone()),
                    changes: deletion(kind.schema(), &live.attributes),
                    dependencies: prior_res.dependencies.clone(),
                    reason: kind_reason(kind, addr, Stage::Destroy, Some(&live.attributes), None),
                    ..base
                },
                // Already gone (or never made): nothing to do but forget it.
                None => ResourceChange {
                    reason: Some(if prior_res.pending().is_some() {
                        Reason::NeverCreated
                    } else {
                        Reason::DeletedOutsideAndUndeclared
                    }),
                    ..base
                },
            });
        }
        changes.sort_by(|a, b| a.addr.cmp(&b.addr));
        for c in &mut changes {
            c.moved_from = moves
                .iter()
                .find(|m| m.to == c.addr)
                .map(|m| super::moves::MovedFrom { from: m.from.clone(), found: m.found.clone() });
        }
        let mut causes = super::cause::explain(self.registry, spec, &changes, prior, &refreshed);
        for c in &mut changes {
            c.replace_causes = causes.remove(&c.addr).unwrap_or_default();
        }
        for c in &changes {
            let protected = c.prevent_destroy || prior.resources.get(&c.addr).is_some_and(|r| r.prevent_destroy);
            if protected && matches!(c.action, Action::Delete | Action::Replace) {
                let why = match c.action {
                    Action::Replace if c.telling_causes().next().is_some() => {
                        let causes: Vec<String> = c.telling_causes().map(ToString::to_string).collect();
                        format!("the plan would replace it ({})", causes.join("; "))
                    }
                    Action::Replace => {
                        format!("the plan would replace it ({} cannot change in place)", c.replace_reasons().join(", "))
                    }
                    _ => "the plan would destroy it".to_string(),
                };
                return Err(PlanError::PreventDestroy { addr: c.addr.clone(), why });
            }
        }
        let permissions = self.permission_changes(&changes, &refreshed);
        let policy = if self.options.destroy { vec![] } else { self.policy_findings(spec, &changes) };
        let warnings = if self.options.destroy { vec![] } else { self.warnings(&changes, &refreshed) };
        Ok(Plan {
            changes,
            refreshed,
            prior: prior.clone(),
            lookups,
            destroy: self.options.destroy,
            permissions,
            policy,
            warnings,
        })
    }

    /// What each kind warns a reviewer of about a resource that stays (see [`Annotate`]).
    fn warnings(&self, changes: &[ResourceChange], refreshed: &State) -> Vec<String> {
        let mut out = Vec::new();
        for c in changes.iter().filter(|c| !c.action.removes()) {
            let Some(annotate) = self.registry.get(&c.addr.kind).and_then(|k| k.annotate()) else { continue };
            let view = ChangeView {
                addr: &c.addr,
                stage: stage(c.action),
                live: refreshed.resources.get(&c.addr).map(|r| &r.attributes),
                desired: c.desired.as_ref(),
            };
            let warnings = annotate.annotate(&view).into_iter().filter(Annotation::is_warning);
            out.extend(warnings.map(|a| a.text(&c.addr)));
        }
        out
    }

    /// The permission statements each change adds and removes (a forgotten resource keeps its
    /// statements in AWS: no change).
    fn permission_changes(&self, changes: &[ResourceChange], refreshed: &State) -> Vec<PermissionChange> {
        let changed = changes.iter().filter(|c| !matches!(c.action, Action::NoOp | Action::Forget));
        changed
            .filter_map(|c| {
                let access = self.registry.get(&c.addr.kind)?.access()?;
                let live = refreshed.resources.get(&c.addr).filter(|r| r.pending().is_none());
                let before = live.map(|r| access.grants(&c.addr, &r.attributes)).unwrap_or_default();
                let after = match (c.action, &c.desired) {
                    (Action::Delete, _) | (_, None) => vec![],
                    (_, Some(desired)) => access.grants(&c.addr, desired),
                };
                permissions::compare(&c.addr, &before, &after)
            })
            .collect()
    }

    /// The built-in policy rules the planned resources break, with the spec's waivers.
    fn policy_findings(&self, spec: &Spec, changes: &[ResourceChange]) -> Vec<rules::Finding> {
        let mut out = Vec::new();
        for c in changes.iter().filter(|c| !c.action.removes()) {
            let access = self.registry.get(&c.addr.kind).and_then(|k| k.access());
            let (Some(access), Some(desired)) = (access, &c.desired) else { continue };
            let waivers = spec.resource(&c.addr).map(|r| &r.waivers);
            let mut found = access.policy_findings(desired);
            found.extend(rules::of_grants(&access.grants(&c.addr, desired)));
            out.extend(found.into_iter().map(|(rule, message)| rules::Finding {
                addr: c.addr.clone(),
                rule: rule.to_string(),
                message,
                waived: waivers.and_then(|w| w.get(rule)).cloned(),
            }));
        }
        out
    }

    fn kind(&self, addr: &ResourceAddr) -> Result<&dyn ResourceKind, PlanError> {
        self.registry.get(&addr.kind).ok_or_else(|| PlanError::UnknownKind { addr: addr.clone() })
    }

    /// Reads every resource in the prior state from AWS; one gone is left out of the result.
    /// An open intent is resolved: what it made is found and read (recorded as still
    /// creating), or it is left out when nothing was made.
    async fn refresh(&self, spec: Option<&Spec>, prior: &State) -> Result<State, PlanError> {
        let mut refreshed = prior.clone();
        if !self.options.refresh {
            return Ok(refreshed);
        }
        let wanted = |addr: &ResourceAddr| self.options.refresh_only.as_ref().is_none_or(|only| only.contains(addr));
        // A refresh writes nothing: resources that describe one AWS object share its read.
        let _shared = self.aws.share_reads();
        let reads = prior.resources.iter().filter(|(addr, _)| wanted(addr)).map(|(addr, res)| async move {
            let kind = self.kind(addr)?;
            let in_spec: BTreeSet<&str> = spec
                .and_then(|s| s.resource(addr))
                .map(|r| r.attrs.iter().map(|(k, _)| k.as_str()).collect())
                .unwrap_or_default();
            let wants = |name: &str| in_spec.contains(name) || res.attributes.contains_key(name);
            let id = match res.pending() {
                Some(intent) => match self.resolve(kind, addr, res, intent, &prior.lineage).await? {
                    Some(id) => id,
                    None => return Ok((addr.clone(), None)),
                },
                None => res.id.clone(),
            };
            let managed = Managed(&wants);
            let read = self.aws.retried(|| kind.read(self.aws, &id, &managed, &res.attributes));
            let live = read.await.map_err(|error| PlanError::Refresh { addr: addr.clone(), error: Box::new(error) })?;
            let entry = live.map(|attrs| {
                let status = if res.pending().is_some() { ResourceStatus::Creating } else { res.status.clone() };
                let unset = Some(unset_view(kind, &attrs, &wants));
                ResourceState { id, attributes: managed_view(kind, attrs, &wants), unset, status, ..res.clone() }
            });
            Ok::<_, PlanError>((addr.clone(), entry))
        });
        let results: Vec<_> = stream::iter(reads).buffer_unordered(self.options.parallelism.max(1)).collect().await;
        for result in results {
            let (addr, live) = result?;
            match live {
                Some(entry) => {
                    refreshed.resources.insert(addr, entry);
                }
                None => {
                    refreshed.resources.remove(&addr);
                }
            }
        }
        Ok(refreshed)
    }

    /// What an open intent made: its id when found and ours, `None` when nothing was made.
    async fn resolve(
        &self,
        kind: &dyn ResourceKind,
        addr: &ResourceAddr,
        res: &ResourceState,
        intent: &Intent,
        lineage: &str,
    ) -> Result<Option<String>, PlanError> {
        let owner = Owner {
            addr: addr.clone(),
            lineage: lineage.to_string(),
            token: intent.token.clone(),
            since: intent.since,
            replacing: vec![],
            // Finding judges by address and lineage; the stage tag only marks what is made.
            stage: None,
        };
        let find = || kind.find(self.aws, &res.attributes, &owner, FindReason::Intent);
        let found = self.aws.retried(find).await;
        match found.map_err(|error| PlanError::Refresh { addr: addr.clone(), error: Box::new(error) })? {
            Some(Found::Ours { id }) => Ok(Some(id)),
            Some(Found::NotOurs { id, why }) => Err(PlanError::NotOurs { addr: addr.clone(), id, why }),
            None => Ok(None),
        }
    }

    async fn plan_resource(
        &self,
        res: &ResourceSpec,
        prior: &State,
        refreshed: &mut State,
        planned: &BTreeMap<ResourceAddr, Planned>,
        lookups: &BTreeMap<ResourceAddr, Attrs>,
    ) -> Result<ResourceChange, PlanError> {
        let kind = self.kind(&res.addr)?;
        let mut desired = evaluate(res, &|addr, attr| lookup(self.registry, planned, lookups, addr, attr));
        kind.normalize(&mut desired);
        if let Some(artifact) = kind.artifact() {
            artifact
                .prepare(&self.options.builds.in_dir(&res.dir), &mut desired)
                .await
                .map_err(|error| PlanError::Prepare { addr: res.addr.clone(), error: Box::new(error) })?;
        }
        let base = ResourceChange {
            sensitive: res.sensitive.clone(),
            prevent_destroy: res.prevent_destroy,
            // Adopted resources are kept when destroyed, once adopted always, unless the spec says.
            retain_on_destroy: res.retain_on_destroy.unwrap_or(
                res.import_id.is_some() || prior.resources.get(&res.addr).is_some_and(|r| r.retain_on_destroy),
            ),
            deposed: prior
                .resources
                .get(&res.addr)
                .map(|r| r.deposed.iter().map(|d| d.id.clone()).collect())
                .unwrap_or_default(),
            dependencies: res.dependencies(),
            // An open intent the refresh did not find: a create reuses its token.
            intent: prior
                .resources
                .get(&res.addr)
                .and_then(|r| r.pending().cloned())
                .filter(|_| !refreshed.resources.contains_key(&res.addr)),
            declaration: Some(crate::spec::recorded::declaration(res)),
            ..ResourceChange::new(res.addr.clone(), Action::Create)
        };
        let mut imported = false;
        let was_pending = prior.resources.get(&res.addr).is_some_and(|r| r.pending().is_some());
        if !refreshed.resources.contains_key(&res.addr)
            && !prior.resources.contains_key(&res.addr)
            && let Some(id) = &res.import_id
        {
            let live = self.adopt(kind, res, id, &desired).await?;
            refreshed.resources.insert(res.addr.clone(), live);
            imported = true;
        }
        // An intent still open (a plan without refresh) is resolved by apply, before creating.
        let Some(live) = refreshed.resources.get(&res.addr).filter(|r| r.pending().is_none()) else {
            let note = prior
                .resources
                .get(&res.addr)
                .filter(|r| r.pending().is_none())
                .map(|_| Reason::DeletedOutside)
                .or_else(|| kind_reason(kind, &res.addr, Stage::Create, None, Some(&desired)));
            return Ok(ResourceChange {
                changes: creation(kind.schema(), &desired),
                desired: Some(desired),
                reason: note,
                ..base
            });
        };
        let prior_attrs = prior.resources.get(&res.addr).map(|r| &r.attributes).unwrap_or(&live.attributes);
        let changes = diff(kind.schema(), &desired, prior_attrs, &live.attributes);
        let unfinished = live.status == ResourceStatus::Creating;
        let forced = self.options.replace.contains(&res.addr);
        let action = if changes.iter().any(|c| c.forces_replacement) || forced {
            Action::Replace
        } else if !changes.is_empty() || unfinished {
            Action::Update
        } else {
            Action::NoOp
        };
        let note = if was_pending {
            imported = true;
            Some(Reason::AdoptedAfterInterruption)
        } else if imported {
            Some(Reason::Adopting { kind: res.addr.kind.clone(), id: live.id.clone() })
        } else if unfinished && action == Action::Update {
            Some(Reason::Unfinished)
        } else if action == Action::Replace && base.retain_on_destroy {
            Some(Reason::ReplacementKeepsOld)
        } else if forced && !changes.iter().any(|c| c.forces_replacement) {
            Some(Reason::Requested)
        } else {
            kind_reason(kind, &res.addr, stage(action), Some(&live.attributes), Some(&desired))
        };
        let creates_first =
            action == Action::Replace && kind.lifecycle().create_before_destroy && !base.retain_on_destroy;
        Ok(ResourceChange {
            action,
            id: Some(live.id.clone()),
            changes,
            desired: Some(desired),
            reason: note,
            imported,
            creates_first,
            ..base
        })
    }

    /// Reads the existing resource named by `import_id` so it is managed from now on.
    async fn adopt(
        &self,
        kind: &dyn ResourceKind,
        res: &ResourceSpec,
        id: &str,
        desired: &Attrs,
    ) -> Result<ResourceState, PlanError> {
        read_adopted(self.aws, kind, res, id, desired).await
    }

    /// Every resource of `recorded` as AWS reports it now (`drift`): the spec plays no part.
    pub async fn refresh_only(&self, recorded: &State) -> Result<State, PlanError> {
        self.refresh(None, recorded).await
    }
}

/// What the plan does to a resource, as its kind's annotations see it.
fn stage(action: Action) -> Stage {
    match action {
        Action::Create => Stage::Create,
        Action::Update => Stage::Update,
        Action::Replace => Stage::Replace,
        Action::Delete | Action::Forget => Stage::Destroy,
        Action::NoOp => Stage::Stays,
    }
}

/// The kind's first annotation of the change that is a reason, not a warning.
fn kind_reason(
    kind: &dyn ResourceKind,
    addr: &ResourceAddr,
    stage: Stage,
    live: Option<&Attrs>,
    desired: Option<&Attrs>,
) -> Option<Reason> {
    let view = ChangeView { addr, stage, live, desired };
    let annotation = kind.annotate()?.annotate(&view).into_iter().find(|a| !a.is_warning())?;
    Some(Reason::Kind { addr: addr.clone(), annotation })
}

pub(super) async fn read_adopted(
    aws: &Aws,
    kind: &dyn ResourceKind,
    res: &ResourceSpec,
    id: &str,
    desired: &Attrs,
) -> Result<ResourceState, PlanError> {
    let wants = |name: &str| desired.contains_key(name) || kind.schema().attribute(name).is_some_and(|a| a.derived);
    let (managed, no_prior) = (Managed(&wants), Attrs::new());
    let read = aws.retried(|| kind.read(aws, id, &managed, &no_prior));
    let live = read.await.map_err(|error| PlanError::Refresh { addr: res.addr.clone(), error: Box::new(error) })?;
    let Some(attributes) = live else {
        return Err(PlanError::ImportMissing { addr: res.addr.clone(), id: id.to_string() });
    };
    let attributes = managed_view(kind, attributes, &wants);
    Ok(ResourceState {
        id: id.to_string(),
        attributes,
        dependencies: res.dependencies(),
        sensitive: res.sensitive.clone(),
        prevent_destroy: res.prevent_destroy,
        status: ResourceStatus::Ready,
        retain_on_destroy: res.retain_on_destroy.unwrap_or(true),
        deposed: vec![],
        unset: None,
        declaration: Some(crate::spec::recorded::declaration(res)),
    })
}

/// Reads the existing resource `id` for the spec's `addr` (`cruddur-infra import`), keeping
/// the attributes the spec manages.
pub async fn adopt(
    registry: &Registry,
    aws: &Aws,
    spec: &Spec,
    addr: &ResourceAddr,
    id: &str,
) -> Result<ResourceState, PlanError> {
    let kind = registry.get(&addr.kind).ok_or_else(|| PlanError::UnknownKind { addr: addr.clone() })?;
    let res = spec.resource(addr).ok_or_else(|| PlanError::UnknownKind { addr: addr.clone() })?;
    let desired = evaluate(res, &|_, _| unknown());
    read_adopted(aws, kind, res, id, &desired).await
}

/// What AWS reports, normalised and cut down to what the engine manages: the attributes the
/// spec sets or the prior state recorded, and the computed ones. Anything else a read returns
/// (a default AWS filled in) is not ours, and must not look like something to remove.
fn managed_view(kind: &dyn ResourceKind, mut live: Attrs, wants: &dyn Fn(&str) -> bool) -> Attrs {
    kind.normalize(&mut live);
    live.retain(|name, _| wants(name) || kind.schema().attribute(name).is_some_and(|a| a.computed));
    live
}

/// What a read reports of the attributes nobody manages (neither wanted nor computed): the
/// snapshot drift compares later. Normalised as the managed ones are; nulls left out.
pub fn unset_view(kind: &dyn ResourceKind, live: &Attrs, wants: &dyn Fn(&str) -> bool) -> Attrs {
    let mut live = live.clone();
    kind.normalize(&mut live);
    live.retain(|name, value| {
        !wants(name) && !value.is_null() && kind.schema().attribute(name).is_some_and(|a| !a.computed && !a.derived)
    });
    live
}

/// The spec's values of one resource, references resolved by `lookup`.
pub fn evaluate(res: &ResourceSpec, lookup: &dyn Fn(&ResourceAddr, &str) -> Value) -> Attrs {
    res.attrs.iter().map(|(name, expr)| (name.clone(), expr.eval(lookup))).collect()
}

/// The value a reference sees at plan time: a settable attribute has its planned value; a
/// computed one is unknown while its resource is still to be created.
fn lookup(
    registry: &Registry,
    planned: &BTreeMap<ResourceAddr, Planned>,
    lookups: &BTreeMap<ResourceAddr, Attrs>,
    addr: &ResourceAddr,
    attr: &str,
) -> Value {
    if let Some(answer) = lookups.get(addr) {
        return answer.get(attr).cloned().unwrap_or(Value::Null);
    }
    let Some(p) = planned.get(addr) else {
        return unknown();
    };
    let computed = registry.get(&addr.kind).and_then(|k| k.schema().attribute(attr)).is_none_or(|a| a.computed);
    if !computed && let Some(v) = p.desired.get(attr) {
        return v.clone();
    }
    match p.action {
        Action::Create | Action::Replace if computed => unknown(),
        _ => p.live.get(attr).cloned().unwrap_or_else(unknown),
    }
}

/// Answers every lookup (they depend on variables only), concurrently.
pub(super) async fn lookups(
    registry: &Registry,
    aws: &Aws,
    spec: &Spec,
    parallelism: usize,
) -> Result<BTreeMap<ResourceAddr, Attrs>, PlanError> {
    let queries = spec.lookups.iter().map(|l| async move {
        let kind = registry.lookup(&l.addr.kind).ok_or_else(|| PlanError::UnknownKind { addr: l.addr.clone() })?;
        let query = evaluate(l, &|_, _| unknown());
        let mut answer = aws
            .retried(|| kind.lookup(aws, &query))
            .await
            .map_err(|error| PlanError::Lookup { addr: l.addr.clone(), error: Box::new(error) })?;
        for (k, v) in query {
            answer.entry(k).or_insert(v);
        }
        Ok::<_, PlanError>((l.addr.clone(), answer))
    });
    stream::iter(queries).buffer_unordered(parallelism.max(1)).collect::<Vec<_>>().await.into_iter().collect()
}

/// Resources in an order where each comes after what it depends on.
pub fn order(resources: &[ResourceSpec]) -> Vec<&ResourceSpec> {
    let by_addr: BTreeMap<&ResourceAddr, &ResourceSpec> = resources.iter().map(|r| (&r.addr, r)).collect();
    let order = crate::spec::dependency_graph(resources).dependencies_first();
    order.iter().filter_map(|a| by_addr.get(a).copied()).collect()
}
