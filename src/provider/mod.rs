//! Resource kinds: the [`ResourceKind`] trait every AWS resource implements, and the registry
//! that maps kind names to implementations.
//!
//! *Guarantees*: the engine never matches on kind names; everything kind-specific (schema,
//! normalisation, AWS calls) lives behind this trait, one kind per file.
//!
//! *Errors*: every AWS failure is a [`ProviderError`] with the service's error code.

mod apigatewayv2_api;
mod apigatewayv2_authorizer;
mod apigatewayv2_integration;
mod apigatewayv2_route;
mod apigatewayv2_stage;
mod attrs;
mod aws;
mod cloudfront_distribution;
mod cloudfront_origin_access_control;
mod error;
mod iam_role;
mod lambda_function;
mod lambda_permission;
mod lookups;
mod normalize;
mod route53_record;
mod s3_bucket;
mod s3_bucket_notification;
mod s3_bucket_policy;
pub mod schema;
mod sns_subscription;
mod sns_topic;
mod sns_topic_policy;

use async_trait::async_trait;

pub use aws::{Aws, AwsOptions};
pub use error::{ErrorClass, ProviderError};
pub use normalize::empty as empty_value;
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
    /// Only attributes in `managed` need to be read; computed attributes always are. `prior`
    /// holds the last recorded attributes: a value AWS does not echo back (or a local input
    /// such as an artifact path) is taken from there rather than reported as a change.
    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError>;

    /// Fills in attributes derived from local artifacts (a Lambda zip's hash) before the
    /// values are diffed. Called at plan time and again at apply time.
    async fn prepare(&self, _desired: &mut Attrs) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn create(&self, aws: &Aws, addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError>;

    /// Changes what `changed` names, in place. Only called when no changed attribute forces
    /// replacement. Returns the attributes computed by AWS after the change.
    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, changed: &[&str]) -> Result<Attrs, ProviderError>;

    async fn delete(&self, aws: &Aws, id: &str, prior: &Attrs) -> Result<(), ProviderError>;
}

/// A read-only query for something that already exists (a hosted zone by name, a user pool):
/// its settable attributes are the query, its computed ones the answer.
#[async_trait]
pub trait LookupKind: Send + Sync {
    fn kind(&self) -> &'static str;

    fn schema(&self) -> &'static ResourceSchema;

    /// The answer, or an error naming what was not found.
    async fn lookup(&self, aws: &Aws, query: &Attrs) -> Result<Attrs, ProviderError>;
}

/// Every resource and lookup kind the engine knows.
pub struct Registry {
    kinds: Vec<Box<dyn ResourceKind>>,
    lookups: Vec<Box<dyn LookupKind>>,
}

impl Registry {
    /// The built-in AWS kinds. A new kind is one file and one line here.
    pub fn aws() -> Self {
        Self {
            kinds: vec![
                Box::new(s3_bucket::S3Bucket),
                Box::new(s3_bucket_policy::S3BucketPolicy),
                Box::new(s3_bucket_notification::S3BucketNotification),
                Box::new(sns_topic::SnsTopic),
                Box::new(sns_topic_policy::SnsTopicPolicy),
                Box::new(sns_subscription::SnsSubscription),
                Box::new(iam_role::IamRole),
                Box::new(lambda_function::LambdaFunction),
                Box::new(lambda_permission::LambdaPermission),
                Box::new(cloudfront_origin_access_control::CloudFrontOriginAccessControl),
                Box::new(cloudfront_distribution::CloudFrontDistribution),
                Box::new(route53_record::Route53Record),
                Box::new(apigatewayv2_api::ApiGatewayV2Api),
                Box::new(apigatewayv2_authorizer::ApiGatewayV2Authorizer),
                Box::new(apigatewayv2_integration::ApiGatewayV2Integration),
                Box::new(apigatewayv2_route::ApiGatewayV2Route),
                Box::new(apigatewayv2_stage::ApiGatewayV2Stage),
            ],
            lookups: vec![
                Box::new(lookups::Route53Zone),
                Box::new(lookups::CognitoUserPool),
                Box::new(lookups::CallerIdentity),
            ],
        }
    }

    /// A registry of the given kinds (engine tests use in-memory ones).
    pub fn new(kinds: Vec<Box<dyn ResourceKind>>) -> Self {
        Self { kinds, lookups: vec![] }
    }

    pub fn lookup(&self, kind: &str) -> Option<&dyn LookupKind> {
        self.lookups.iter().find(|k| k.kind() == kind).map(|k| k.as_ref())
    }

    pub fn lookup_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.lookups.iter().map(|k| k.kind())
    }

    /// The schema of a resource or lookup kind.
    pub fn schema(&self, kind: &str) -> Option<&'static ResourceSchema> {
        self.get(kind).map(|k| k.schema()).or_else(|| self.lookup(kind).map(|k| k.schema()))
    }

    pub fn get(&self, kind: &str) -> Option<&dyn ResourceKind> {
        self.kinds.iter().find(|k| k.kind() == kind).map(|k| k.as_ref())
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|k| k.kind())
    }
}
