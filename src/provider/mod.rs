//! Resource kinds: the [`ResourceKind`] trait every AWS resource implements, and the registry
//! that maps kind names to implementations.
//!
//! *Guarantees*: the engine never matches on kind names; everything kind-specific (schema,
//! normalisation, AWS calls) lives behind this trait, one kind per file.
//!
//! *Errors*: every AWS failure is a [`ProviderError`] with the service's error code.

mod aws;
mod error;
mod normalize;
mod s3_bucket;
pub mod schema;
mod sns_subscription;
mod sns_topic;

use async_trait::async_trait;

pub use aws::{Aws, AwsOptions};
pub use error::{ErrorClass, ProviderError};
pub use normalize::{empty as empty_value, policy as normalize_policy};
pub use schema::{AttrType, Attribute, ResourceSchema};

use crate::addr::ResourceAddr;
use crate::value::Attrs;

/// What a create returns: AWS's identifier for the resource and its attributes, computed
/// ones included.
#[derive(Debug)]
pub struct Created {
    pub id: String,
    pub attrs: Attrs,
}

/// Which attributes the spec or the prior state manages; reads may skip the rest.
pub struct Managed<'a>(pub &'a (dyn Fn(&str) -> bool + Sync));

impl Managed<'_> {
    pub fn has(&self, attr: &str) -> bool {
        (self.0)(attr)
    }
}

/// One kind of AWS resource.
///
/// Values passed in are already validated against [`ResourceKind::schema`], normalised with
/// [`ResourceKind::normalize`], and fully known (no unknown markers).
#[async_trait]
pub trait ResourceKind: Send + Sync {
    /// The kind's name in specs and addresses, e.g. `s3_bucket`.
    fn kind(&self) -> &'static str;

    fn schema(&self) -> &'static ResourceSchema;

    /// Rewrites attributes so that equal things compare equal (case, order, defaults AWS
    /// adds). Applied to the spec's values and to what AWS reports before they are diffed.
    fn normalize(&self, attrs: &mut Attrs) {
        normalize::by_schema(self.schema(), attrs);
    }

    /// The live attributes of the resource with this id, or `None` if it no longer exists.
    /// Only attributes in `managed` need to be read; computed attributes always are.
    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
    ) -> Result<Option<Attrs>, ProviderError>;

    async fn create(
        &self,
        aws: &Aws,
        addr: &ResourceAddr,
        desired: &Attrs,
    ) -> Result<Created, ProviderError>;

    /// Changes what `changed` names, in place. Only called when no changed attribute forces
    /// replacement. Returns the attributes computed by AWS after the change.
    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        desired: &Attrs,
        changed: &[&str],
    ) -> Result<Attrs, ProviderError>;

    async fn delete(&self, aws: &Aws, id: &str, prior: &Attrs) -> Result<(), ProviderError>;
}

/// Every resource kind the engine knows.
pub struct Registry {
    kinds: Vec<Box<dyn ResourceKind>>,
}

impl Registry {
    /// The built-in AWS kinds. A new kind is one file and one line here.
    pub fn aws() -> Self {
        Self {
            kinds: vec![
                Box::new(s3_bucket::S3Bucket),
                Box::new(sns_topic::SnsTopic),
                Box::new(sns_subscription::SnsSubscription),
            ],
        }
    }

    /// A registry of the given kinds (engine tests use in-memory ones).
    pub fn new(kinds: Vec<Box<dyn ResourceKind>>) -> Self {
        Self { kinds }
    }

    pub fn get(&self, kind: &str) -> Option<&dyn ResourceKind> {
        self.kinds
            .iter()
            .find(|k| k.kind() == kind)
            .map(|k| k.as_ref())
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|k| k.kind())
    }
}
