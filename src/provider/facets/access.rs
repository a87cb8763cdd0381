//! The `Access` facet: who a kind's resources let do what (the grants their attributes write,
//! the built-in policy rules their settings break), and what the deployer needs to manage them
//! (the IAM actions its calls make, on which ARNs). Every AWS kind has it.
//!
//! A kind implements it on its plan model (`Access<PlanOf<Self>>`: values may be unknown); the
//! engine sees it on attributes (`Access<Attrs>`), which [`crate::provider::Typed`] reads into
//! the kind's model.

use crate::addr::ResourceAddr;
use crate::permissions::Grant;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::value::Attrs;

pub trait Access<M = Attrs>: Send + Sync {
    /// The IAM actions the kind's AWS calls need, by what runs them (`iam-policy`).
    fn deployer(&self) -> Deployer;

    /// The ARNs those actions act on for a resource with these values (`*` where unknown).
    fn deployer_arns(&self, _spec: &M, _scope: &ArnScope) -> Vec<String> {
        vec!["*".into()]
    }

    /// The permission statements these attributes write (a role's policies, a bucket policy,
    /// a Lambda permission); `addr` names the resource where a statement names no principal.
    /// Values may be unknown (a plan's).
    fn grants(&self, _addr: &ResourceAddr, _spec: &M) -> Vec<Grant> {
        Vec::new()
    }

    /// The built-in policy rules these settings break, other than by their grants: (rule id,
    /// what breaks it). See [`crate::permissions::rules`].
    fn policy_findings(&self, _spec: &M) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}
