//! `--target`: limit a plan to some resources and what they need.

use std::collections::BTreeSet;

use super::{Action, Plan};
use crate::addr::ResourceAddr;
use crate::spec::Spec;

/// A target names nothing in the spec or the state.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("--target {0}: no such resource in the spec or the state")]
#[diagnostic(code(cruddur::plan::target), help("`cruddur-infra state list` shows what the state holds"))]
pub struct TargetError(pub ResourceAddr);

/// Keeps only the changes of the targets and what they depend on (for a destroy: the targets
/// and what depends on them, which cannot outlive them). The rest is left as it is.
pub fn restrict_to_targets(plan: &mut Plan, spec: &Spec, targets: &[ResourceAddr]) -> Result<(), TargetError> {
    if targets.is_empty() {
        return Ok(());
    }
    for t in targets {
        if spec.resource(t).is_none() && !plan.prior.resources.contains_key(t) {
            return Err(TargetError(t.clone()));
        }
    }
    let keep = if plan.destroy { with_dependents(plan, targets) } else { with_dependencies(plan, spec, targets) };
    plan.changes.retain(|c| keep.contains(&c.addr) || c.action == Action::NoOp && !c.imported);
    plan.permissions.retain(|p| keep.contains(&p.addr));
    plan.policy.retain(|f| keep.contains(&f.addr));
    Ok(())
}

fn with_dependencies(plan: &Plan, spec: &Spec, targets: &[ResourceAddr]) -> BTreeSet<ResourceAddr> {
    let graph = crate::spec::dependency_graph(&spec.resources);
    let mut keep = BTreeSet::new();
    for t in targets {
        if spec.resource(t).is_some() {
            keep.extend(graph.with_dependencies(t));
        } else if let Some(prior) = plan.prior.resources.get(t) {
            keep.insert(t.clone());
            keep.extend(prior.dependencies.iter().cloned());
        }
    }
    keep
}

fn with_dependents(plan: &Plan, targets: &[ResourceAddr]) -> BTreeSet<ResourceAddr> {
    let mut keep: BTreeSet<ResourceAddr> = targets.iter().cloned().collect();
    loop {
        let more: Vec<ResourceAddr> = plan
            .prior
            .resources
            .iter()
            .filter(|(addr, r)| !keep.contains(*addr) && r.dependencies.iter().any(|d| keep.contains(d)))
            .map(|(addr, _)| addr.clone())
            .collect();
        if more.is_empty() {
            return keep;
        }
        keep.extend(more);
    }
}
