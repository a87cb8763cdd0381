//! One plan-then-apply run, the shape apply, destroy, `drift --revert` and a watch round share
//! (and later commands that change AWS will): take the state's lock, load the state, make the
//! plan (fresh, from a saved plan, a revert, or only what is built here), let the caller review
//! it, carry it out, remove what a revert removes beside the plan, let the lock go.
//!
//! *Guarantees*: the lock is released however the run ends; nothing is carried out that the
//! caller's review did not let through; a saved plan is checked whole (fresh for this state,
//! unchanged, every value still what apply would send) before the first AWS call; Ctrl-C
//! (`cancelled`) starts nothing new and what ran is recorded.
//!
//! Nothing here prints: the caller sees the plan and the outcome through [`Review`] and
//! [`ApplyEvents`] and renders them.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::addr::ResourceAddr;
use crate::apply::{Applier, ApplyEvents, ApplyReport, PROGRESS_EVERY};
use crate::build::Builds;
use crate::plan::drift::Undeclared;
use crate::plan::revert::Removal;
use crate::plan::saved::{SavedPlan, SavedPlanError};
use crate::plan::{Plan, PlanError, PlanOptions, Planner, TargetError};
use crate::provider::{Aws, ProviderError, Registry};
use crate::spec::Spec;
use crate::state::{State, StateBackend, StateError};

/// What a run plans.
pub enum Source<'a> {
    /// A fresh plan of the spec, or of destroying everything the state holds, limited to
    /// `targets` and what depends on them when any are given.
    Fresh { destroy: bool, targets: &'a [ResourceAddr], replace: &'a [ResourceAddr] },
    /// A plan saved by `plan --out`: carried out exactly or not at all.
    Saved { path: &'a Path, saved: Box<SavedPlan> },
    /// `drift --revert`: the spec's plan, with the undeclared children the engine can remove
    /// entered as resources the spec does not declare, and what managed resources hold removed
    /// by their kinds once the plan is carried out.
    Revert,
    /// A watch round: what is built on this machine is refreshed; nothing else is read.
    Built,
    /// `undo`: a fresh plan of the spec an earlier state recorded (the caller made it).
    Undo,
}

/// What the run asks of whoever started it.
pub trait Review {
    /// The error the caller's answers carry; the run's own errors become one too.
    type Error: From<RunError>;

    /// A dead command's lock was taken over.
    fn took_over(&self, _dead: &crate::state::TookOver) {}

    /// Whether to carry out `plan` (and, for a revert, `removal`): show it, check it against the
    /// gates, ask. `Ok(false)` ends the run without an error and without a change.
    fn review(&self, plan: &Plan, removal: Option<&Removal>, destroy: bool) -> Result<bool, Self::Error>;

    /// Where the apply reports each resource's progress.
    fn events(&self) -> &dyn ApplyEvents;
}

/// How a run ended, for the caller to render.
pub struct Ran {
    pub plan: Plan,
    pub destroy: bool,
    /// `None` when the review stopped the run before anything was carried out.
    pub report: Option<ApplyReport>,
    /// What a revert removed beside the plan, and what it could not remove (and why).
    pub removed: Vec<Undeclared>,
    pub not_removed: Vec<(Undeclared, ProviderError)>,
}

/// Why a run stopped before it could carry out a plan (a resource's failure is in the report).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    SavedPlan(#[from] SavedPlanError),
    #[error("no AWS region is configured: set AWS_REGION (or a profile's region)")]
    NoRegion,
}

/// Refuses, before any AWS call, a command that would reach AWS without a region to reach.
pub async fn region_known(aws: &Aws, spec: &Spec, prior: &State) -> Result<(), RunError> {
    let touches_aws = !spec.resources.is_empty() || !prior.resources.is_empty();
    if touches_aws && aws.config().await.region().is_none() {
        return Err(RunError::NoRegion);
    }
    Ok(())
}

/// Everything a run works with.
pub struct Run<'a> {
    pub registry: &'a Registry,
    pub aws: &'a Aws,
    pub store: &'a dyn StateBackend,
    pub parallelism: usize,
    pub builds: &'a Builds,
    /// Set on Ctrl-C: start nothing new, let running calls finish and be recorded.
    pub cancelled: &'a AtomicBool,
}

impl Run<'_> {
    /// Locks the state, plans from `source`, lets `review` decide, carries the plan out, and
    /// lets the lock go, whatever happened.
    pub async fn run<R: Review>(&self, spec: &Spec, source: Source<'_>, review: &R) -> Result<Ran, R::Error> {
        let operation = match &source {
            Source::Fresh { destroy: true, .. } => "destroy",
            Source::Undo => "undo",
            _ => "apply",
        };
        let acquired = self.store.lock(operation).await.map_err(RunError::from)?;
        if let Some(dead) = &acquired.took_over {
            review.took_over(dead);
        }
        let work = self.locked(spec, source, review);
        let result = match crate::state::while_locked(self.store, &acquired.info, work).await {
            Ok(ran) => ran,
            Err(lost) => Err(RunError::from(lost).into()),
        };
        let released = self.store.unlock(&acquired.info).await.map_err(RunError::from);
        let ran = result?;
        released?;
        Ok(ran)
    }

    async fn locked<R: Review>(&self, spec: &Spec, source: Source<'_>, review: &R) -> Result<Ran, R::Error> {
        let prior = self.store.load().await.map_err(RunError::from)?;
        region_known(self.aws, spec, &prior).await?;
        let (plan, destroy, removal) = match source {
            Source::Fresh { destroy, targets, replace } => {
                let replace = replace.iter().cloned().collect();
                let options = PlanOptions { destroy, replace, ..self.plan_options() };
                (self.plan(spec, &prior, options, targets).await?, destroy, None)
            }
            Source::Undo => (self.plan(spec, &prior, self.plan_options(), &[]).await?, false, None),
            Source::Built => {
                let built = prior
                    .resources
                    .keys()
                    .filter(|a| self.registry.get(&a.kind).is_some_and(|k| k.artifact().is_some()))
                    .cloned()
                    .collect();
                let options = PlanOptions { refresh_only: Some(built), ..self.plan_options() };
                (self.plan(spec, &prior, options, &[]).await?, false, None)
            }
            Source::Revert => {
                let mut undeclared =
                    crate::plan::drift::undeclared(self.registry, self.aws, &prior).await.map_err(RunError::from)?;
                crate::plan::drift::ignore(&mut undeclared, &spec.drift_ignore);
                let (with_children, removal) = crate::plan::revert::with_undeclared(self.registry, &prior, &undeclared);
                (self.plan(spec, &with_children, self.plan_options(), &[]).await?, false, Some(removal))
            }
            Source::Saved { path, saved } => {
                saved.check_fresh(path, spec, &prior).map_err(RunError::from)?;
                // Before any AWS call: an edited plan is refused whole, never carried out in part.
                saved.validate(path, spec, self.registry, self.builds, &prior).await.map_err(RunError::from)?;
                let destroy = saved.plan.destroy;
                (saved.plan, destroy, None)
            }
        };
        let mut ran = Ran { plan, destroy, report: None, removed: vec![], not_removed: vec![] };
        if !review.review(&ran.plan, removal.as_ref(), destroy)? {
            return Ok(ran);
        }
        ran.report = Some(self.carry_out(spec, &ran.plan, review.events()).await?);
        if let Some(removal) = removal {
            let failed = crate::plan::revert::remove_held(self.registry, self.aws, &removal.held).await;
            for u in removal.held {
                match failed.iter().find(|(what, _)| *what == u.describe()) {
                    Some((_, e)) => ran.not_removed.push((u, e.clone())),
                    None => ran.removed.push(u),
                }
            }
        }
        Ok(ran)
    }

    fn plan_options(&self) -> PlanOptions {
        PlanOptions { refresh: true, parallelism: self.parallelism, builds: self.builds.clone(), ..Default::default() }
    }

    async fn plan(
        &self,
        spec: &Spec,
        prior: &State,
        options: PlanOptions,
        targets: &[ResourceAddr],
    ) -> Result<Plan, RunError> {
        let mut plan = Planner { registry: self.registry, aws: self.aws, options }.plan(spec, prior).await?;
        crate::plan::restrict_to_targets(&mut plan, spec, targets)?;
        Ok(plan)
    }

    /// Carries out a plan already reviewed, under a lock the caller holds.
    pub async fn carry_out(&self, spec: &Spec, plan: &Plan, events: &dyn ApplyEvents) -> Result<ApplyReport, RunError> {
        let applier = Applier {
            registry: self.registry,
            aws: self.aws,
            store: self.store,
            parallelism: self.parallelism,
            cancelled: self.cancelled,
            events,
            progress_every: PROGRESS_EVERY,
            builds: self.builds,
        };
        Ok(applier.apply(spec, plan).await?)
    }
}
