//! The `Inventory` facet: what closed-world drift lists beside what the state manages. A child
//! kind (a route, a subscription, a statement, a record set) names the parent each of its
//! resources belongs to and lists all of that parent's children; a parent kind (an API, a
//! topic, a function) names the children other kinds list from it, so a parent whose spec
//! declares none of them is listed too; and a kind lists what a resource holds that no kind
//! manages (an alias beside `live`, a role's policy the spec leaves unset) and removes it.
//!
//! A parent is a key the child kind owns (an API id, a topic ARN, `FUNCTION:QUALIFIER`,
//! `ZONE/NAME`): the engine only compares keys, so each parent is listed once.

use async_trait::async_trait;

use crate::provider::{Aws, Held, ProviderError, Siblings};
use crate::value::Attrs;

/// A parent whose children a child kind lists, by the key that kind reads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Parent(pub String);

#[async_trait]
pub trait Inventory: Send + Sync {
    /// For a child kind: the parent the resource `id` belongs to (`None`: it has none).
    fn parent(&self, _id: &str, _recorded: &Attrs) -> Option<Parent> {
        None
    }

    /// For a parent kind: the children other kinds list from the resource `id`, as (that kind,
    /// this resource as their parent). No AWS call.
    fn children_listed_by(&self, _id: &str, _recorded: &Attrs) -> Vec<(&'static str, Parent)> {
        Vec::new()
    }

    /// For a child kind: every child of `parent`, managed or not (`None`: the parent is gone).
    async fn children(&self, _aws: &Aws, _parent: &Parent) -> Result<Option<Siblings>, ProviderError> {
        Ok(None)
    }

    /// The kinds whose children this kind's children may refer to (a route to an integration
    /// or an authorizer): `drift --revert` deletes this kind's undeclared children first, since
    /// AWS refuses to delete what is still referred to.
    fn refers_to(&self) -> &'static [&'static str] {
        &[]
    }

    /// What the resource `id` holds that neither it nor any other kind manages.
    async fn held(&self, _aws: &Aws, _id: &str, _recorded: &Attrs) -> Result<Vec<Held>, ProviderError> {
        Ok(Vec::new())
    }

    /// Removes what [`Inventory::held`] found under `key` (`drift --revert`); gone already
    /// counts as removed.
    async fn remove_held(&self, _aws: &Aws, id: &str, key: &str) -> Result<(), ProviderError> {
        Err(ProviderError::new("RemoveHeld", "NotRemovable", format!("{key} of {id}: no kind removes it")))
    }
}
