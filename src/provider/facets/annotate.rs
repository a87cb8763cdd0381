//! The `Annotate` facet: what a plan should say about a change that its attribute changes alone
//! do not tell (a document taken over, a subscription that can only be forgotten, a function
//! rolled back), and what a reviewer must not miss about a resource that stays (a dev build).
//! Annotations are data: the plan keeps them as its reason for an action, renders them as text
//! and names them by a stable code in `plan --json`.

use serde::{Deserialize, Serialize};

use crate::addr::ResourceAddr;
use crate::value::Attrs;

/// What the plan does to the resource, as far as an annotation cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Create,
    Update,
    Replace,
    Destroy,
    /// Left as it is (the plan changes nothing of it).
    Stays,
}

/// The change a kind annotates: the engine builds it on attributes, and
/// [`crate::provider::Typed`] gives the kind its own models (`desired`: the plan model, whose
/// values may be unknown; `live`: the spec and computed models as AWS reports them).
#[derive(Debug)]
pub struct ChangeView<'a, D = Attrs, L = Attrs> {
    pub addr: &'a ResourceAddr,
    pub stage: Stage,
    /// The resource as it reads now, if it exists.
    pub live: Option<&'a L>,
    /// The spec's values, unless it is destroyed.
    pub desired: Option<&'a D>,
}

impl<D, L> Clone for ChangeView<'_, D, L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D, L> Copy for ChangeView<'_, D, L> {}

/// One thing a kind has to say about a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Annotation {
    /// `allow_overwrite`: the create takes over what is there (`what`), and puts it back on
    /// destroy when `put_back`.
    TakesOver { what: String, put_back: bool },
    /// Destroying it only forgets it (`why`: what AWS does not allow).
    ForgottenNotDeleted { why: String },
    /// A rollback left `version` live, moved from `from`: the update deploys the source again.
    RolledBack { version: String, from: String },
    /// Nothing is published yet: the update publishes and points `alias` at it.
    NothingPublished { alias: String },
    /// The code deployed was built with the dev profile: a warning, not a reason.
    DevBuild,
}

impl Annotation {
    /// Whether a reviewer must see it although the resource may not change (the plan's
    /// warnings), rather than it being the reason for an action.
    pub fn is_warning(&self) -> bool {
        matches!(self, Annotation::DevBuild)
    }

    /// Its stable name in `plan --json`.
    pub fn code(&self) -> &'static str {
        match self {
            Annotation::TakesOver { .. } => "takes_over",
            Annotation::ForgottenNotDeleted { .. } => "forgotten_not_deleted",
            Annotation::RolledBack { .. } => "rolled_back",
            Annotation::NothingPublished { .. } => "nothing_published",
            Annotation::DevBuild => "dev_build",
        }
    }

    /// In words, about the resource at `addr`.
    pub fn text(&self, addr: &ResourceAddr) -> String {
        match self {
            Annotation::TakesOver { what, put_back: true } => {
                format!("allow_overwrite: {what} there already is replaced, and put back on destroy")
            }
            Annotation::TakesOver { what, put_back: false } => {
                format!("allow_overwrite: {what} that exists already is taken over")
            }
            Annotation::ForgottenNotDeleted { why } => format!("it will be forgotten, not deleted: {why}"),
            Annotation::RolledBack { version, from } => format!(
                "live serves version {version}, rolled back from {from}: the source differs from what is live, and \
                 this apply publishes it again"
            ),
            Annotation::NothingPublished { alias } => {
                format!("nothing is published yet: this apply publishes a version and points `{alias}` at it")
            }
            Annotation::DevBuild => format!(
                "{addr} runs code built with --build-profile dev (no LTO: larger, not what CI deploys); plan and \
                 apply without it before this stack serves users"
            ),
        }
    }
}

pub trait Annotate<D = Attrs, L = Attrs>: Send + Sync {
    /// What to say about this change, in order; the first that is not a warning becomes the
    /// reason shown for the action.
    fn annotate(&self, change: &ChangeView<'_, D, L>) -> Vec<Annotation>;
}
