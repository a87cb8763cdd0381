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
pub mod facets;
mod iam_role;
mod lambda_function;
mod lambda_permission;
mod log_group;
mod lookups;
pub mod names;
mod normalize;
pub mod ownership;
pub mod partition;
mod planned;
mod route53_record;
mod s3_bucket;
mod s3_bucket_notification;
mod s3_bucket_policy;
pub mod schema;
mod singleton;
mod sns_subscription;
mod sns_topic;
mod sns_topic_policy;
mod typed;

use async_trait::async_trait;

pub use aws::{Aws, AwsOptions, RetrySink};
pub use cruddur_model_derive::{Fields, Planned};
pub use error::{ErrorClass, ProviderError};
pub use facets::{
    Access, Annotate, Annotation, Artifact, ChangeView, Decision, Inventory, Operation, OperationArgs, Operations,
    Parent, Stage,
};
pub use normalize::empty as empty_value;
pub use ownership::{FindReason, Found, Owner};
pub use planned::{HasPlan, Known, KnownText, KnownValue, Plannable};
pub use s3_bucket::in_bucket_region;
pub use schema::{AttrType, Attribute, ResourceSchema};
pub use typed::{Fields, Kind, Live, NoComputed, PlanOf, Prior, Typed, int_in_range};

use crate::addr::ResourceAddr;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::value::Attrs;

/// What a creating call returns: AWS's identifier for the resource and what it computed.
#[derive(Debug)]
pub struct Created<C = Attrs, S = Attrs> {
    pub id: String,
    pub computed: C,
    /// Settable attributes the creating call does not set (a bucket's CORS rules, a role's
    /// inline policies): the engine records the resource first, then applies those the spec
    /// sets with an update.
    pub deferred: &'static [&'static str],
    /// Deferred attributes the update must write even when the spec leaves them out: a bucket's
    /// tags, which carry the ownership tags S3 cannot take with `CreateBucket`.
    pub deferred_always: &'static [&'static str],
    /// The resource as a read would give it, where the creating call's request and answer tell
    /// it whole (what was sent, with the defaults AWS answered): the engine takes the snapshot of
    /// the attributes the spec leaves unset from it instead of reading again. `None`: read.
    pub observed: Option<S>,
}

impl<C, S> Created<C, S> {
    /// A resource whose creating call set everything the spec can.
    pub fn new(id: impl Into<String>, computed: C) -> Self {
        Self { id: id.into(), computed, deferred: &[], deferred_always: &[], observed: None }
    }

    /// The same, with settings to apply right after the create (see [`Created::deferred`]).
    pub fn deferring(self, deferred: &'static [&'static str], always: &'static [&'static str]) -> Self {
        Self { deferred, deferred_always: always, ..self }
    }

    /// The same, knowing what AWS now holds (see [`Created::observed`]).
    pub fn observed(self, live: S) -> Self {
        Self { observed: Some(live), ..self }
    }
}

/// How a delete ended.
#[derive(Debug, PartialEq)]
pub enum Deleted {
    /// AWS deleted it (or it was gone already).
    Yes,
    /// AWS refuses to delete it now and removes it itself later (an SNS subscription pending
    /// confirmation): the engine forgets it, saying why.
    LeftToAws(String),
}

/// One resource as the spec declares it, for a kind's own checks before any AWS call.
#[derive(Debug)]
pub struct Declared {
    pub addr: ResourceAddr,
    /// Each attribute the spec sets, with its value where it is known before apply (literals
    /// and variables); `None` where it depends on another resource.
    pub values: std::collections::BTreeMap<String, Option<serde_json::Value>>,
    /// Each attribute the spec sets as far as it is known before apply: what is not known yet is
    /// the unknown marker, inside lists and blocks too (so a literal beside a reference is
    /// still checked).
    pub partial: std::collections::BTreeMap<String, serde_json::Value>,
    /// The other resources' attributes each attribute refers to.
    pub references: std::collections::BTreeMap<String, Vec<(ResourceAddr, String)>>,
    /// Everything the resource comes after: what it refers to and its `depends_on`.
    pub dependencies: std::collections::BTreeSet<ResourceAddr>,
}

impl Declared {
    pub fn has(&self, attr: &str) -> bool {
        self.values.contains_key(attr)
    }

    /// The attribute's value, if the spec sets it to something known before apply.
    pub fn known(&self, attr: &str) -> Option<&serde_json::Value> {
        self.values.get(attr).and_then(Option::as_ref)
    }
}

/// A declared resource as its kind checks it: what the spec sets, in the kind's plan model
/// (values known before apply, the rest [`Known::Unknown`], inside lists and blocks too), and
/// the resource as declared (its address, references and dependencies).
#[derive(Debug)]
pub struct DeclaredAs<'a, P> {
    pub spec: P,
    pub declared: &'a Declared,
}

impl<P> DeclaredAs<'_, P> {
    pub fn addr(&self) -> &ResourceAddr {
        &self.declared.addr
    }
}

/// A problem a kind finds in a declared resource: at an attribute, or at the resource.
#[derive(Debug, PartialEq)]
pub struct Finding {
    pub attr: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl Finding {
    pub fn at(attr: &str, message: impl Into<String>) -> Self {
        Self { attr: Some(attr.to_string()), message: message.into(), help: None }
    }

    pub fn on_resource(message: impl Into<String>) -> Self {
        Self { attr: None, message: message.into(), help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Which attributes the spec or the prior state manages; reads may skip the rest.
pub struct Managed<'a>(pub &'a (dyn Fn(&str) -> bool + Sync));

impl Managed<'_> {
    pub fn has(&self, attr: &str) -> bool {
        (self.0)(attr)
    }
}

/// The field names of a kind's typed model, which must equal its schema's attribute names.
#[derive(Debug)]
pub struct ModelFields {
    /// Settable and derived attributes.
    pub spec: &'static [&'static str],
    /// Attributes AWS computes.
    pub computed: &'static [&'static str],
    /// The variants of the spec model's field enum (`derive(Fields)`), which `update` matches.
    pub fields: Vec<&'static str>,
}

/// One kind of AWS resource, as the engine sees it: attributes as JSON maps. Every AWS kind
/// implements the typed [`Kind`] and is registered as [`Typed`], which converts.
///
/// Values passed in are already validated against [`ResourceKind::schema`], normalised with
/// [`ResourceKind::normalize`], and fully known (no unknown markers).
///
/// *Errors*: each method returns a [`ProviderError`] whose class says what the failure is; the
/// engine's retry policy decides what to do. `update` and `delete` are safe to run again as a
/// whole; `create` makes exactly one creating call, which is not.
#[async_trait]
pub trait ResourceKind: Send + Sync {
    /// The kind's name in specs and addresses, e.g. `s3_bucket`.
    fn kind(&self) -> &'static str;

    fn schema(&self) -> &'static ResourceSchema;

    /// The field names of the kind's typed model.
    fn model(&self) -> ModelFields;

    /// Rules across attributes, or across resources (`all` is every declared resource), that
    /// AWS would enforce: checked by `validate` and every plan, before any AWS call.
    fn validate(&self, this: &Declared, all: &[Declared]) -> Vec<Finding>;

    /// How its replacement is ordered and what its dependents wait for.
    fn lifecycle(&self) -> Lifecycle;

    /// Rewrites attributes so that equal things compare equal (case, order, defaults AWS
    /// adds). Applied to the spec's values and to what AWS reports before they are diffed.
    fn normalize(&self, attrs: &mut Attrs);

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

    /// The one call that brings the resource into existence, tagged with `owner` where AWS
    /// takes tags. Returns as soon as AWS has answered with the id.
    async fn create(&self, aws: &Aws, desired: &Attrs, owner: &Owner) -> Result<Created, ProviderError>;

    /// Changes what `changed` names, in place. Only called when no changed attribute forces
    /// replacement. Returns the attributes computed by AWS after the change.
    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        desired: &Attrs,
        changed: &[&str],
        owner: &Owner,
    ) -> Result<Attrs, ProviderError>;

    /// Waits until a resource just created or updated can be used by what depends on it (a
    /// Lambda `Active`, a distribution `Deployed`, a subscription confirmed).
    async fn wait_ready(&self, aws: &Aws, id: &str, desired: &Attrs) -> Result<(), ProviderError>;

    /// Looks for what a create of `desired` by `owner` may have made (its answer was lost, or
    /// the process died): by the ownership tags, the idempotency token, or a natural key.
    async fn find(
        &self,
        aws: &Aws,
        desired: &Attrs,
        owner: &Owner,
        reason: FindReason,
    ) -> Result<Option<Found>, ProviderError>;

    /// Deletes the resource. Each step treats "already gone" as done and goes on, so a delete
    /// interrupted half-way finishes when run again.
    async fn delete(&self, aws: &Aws, id: &str, prior: &Attrs) -> Result<Deleted, ProviderError>;

    /// The [`Access`] facet: grants, policy findings, the deployer's actions and ARNs.
    fn access(&self) -> Option<&dyn Access>;

    /// The [`Inventory`] facet: parents, children and what a resource holds, for drift.
    fn inventory(&self) -> Option<&dyn Inventory>;

    /// The [`Artifact`] facet: what is built on this machine (a Lambda's zip) and fills in
    /// attributes before the values are diffed.
    fn artifact(&self) -> Option<&dyn Artifact>;

    /// The [`Operations`] facet: commands beyond plan and apply (a function's `rollback`).
    fn operations(&self) -> Option<&dyn Operations>;

    /// The [`Annotate`] facet: what a plan says about a change beyond its attributes.
    fn annotate(&self) -> Option<&dyn Annotate>;
}

/// Something a managed resource holds that no kind manages (see [`Inventory::held`]).
#[derive(Debug, Clone)]
pub struct Held {
    /// What the kind's [`Inventory::remove_held`] takes to remove it.
    pub key: String,
    /// What it is, for people: `alias hand (version 1)`.
    pub what: String,
    /// Whether the kind can remove it (`drift --revert`).
    pub removable: bool,
    /// The attribute values that would accept it into the spec (`drift --adopt`), where it is
    /// a setting rather than a thing (unpublished changes to a function's `$LATEST`); empty:
    /// accepted by listing it in `drift.ignore`.
    pub adopt: Vec<(String, serde_json::Value)>,
}

impl Held {
    pub fn removable(key: impl Into<String>, what: impl Into<String>) -> Self {
        Self { key: key.into(), what: what.into(), removable: true, adopt: vec![] }
    }

    pub fn kept(what: impl Into<String>) -> Self {
        Self { key: String::new(), what: what.into(), removable: false, adopt: vec![] }
    }

    /// The same, accepted by writing these attribute values into the spec.
    pub fn adopted_as(self, adopt: Vec<(String, serde_json::Value)>) -> Self {
        Self { adopt, ..self }
    }
}

/// The children of the parent a managed resource belongs to, as AWS lists them (the statements
/// of a function's policy, the subscriptions of a topic): closed-world drift reports those no
/// resource of the state manages.
#[derive(Debug)]
pub struct Siblings {
    /// What holds them, e.g. `the policy of cruddur-presigner:live`.
    pub parent: String,
    pub children: Vec<Sibling>,
}

/// One child as its parent's listing shows it.
#[derive(Debug, Clone)]
pub struct Sibling {
    /// Its id, written as the kind writes its ids; or what AWS lists where it shows none (a
    /// subscription pending confirmation is listed as `PendingConfirmation`).
    pub id: String,
    /// What it is, for people: `https subscription to https://hooks.example.com/x`.
    pub what: String,
    /// Where the listing shows no id: the attributes that identify it instead. A resource of
    /// the state whose recorded attributes have these values is this child (SNS answers
    /// `Subscribe` of the same topic, protocol and endpoint with the same subscription).
    pub identified_by: Option<Attrs>,
    /// Why it does not count as drift although no resource declares it: it cannot act (a
    /// subscription pending confirmation receives nothing, and SNS deletes it in about three
    /// days). Shown, never counted, never removed.
    pub inert: Option<String>,
}

impl Sibling {
    /// A child listed with its id.
    pub fn new(id: impl Into<String>, what: impl Into<String>) -> Self {
        Self { id: id.into(), what: what.into(), identified_by: None, inert: None }
    }

    /// Whether `drift --revert` can delete it by its id.
    pub fn has_id(&self) -> bool {
        self.identified_by.is_none()
    }
}

impl From<(String, String)> for Sibling {
    fn from((id, what): (String, String)) -> Self {
        Self::new(id, what)
    }
}

/// A read-only query for something that already exists (a hosted zone by name, a user pool):
/// its settable attributes are the query, its computed ones the answer.
#[async_trait]
pub trait LookupKind: Send + Sync {
    fn kind(&self) -> &'static str;

    fn schema(&self) -> &'static ResourceSchema;

    /// The answer, or an error naming what was not found.
    async fn lookup(&self, aws: &Aws, query: &Attrs) -> Result<Attrs, ProviderError>;

    /// The IAM actions the lookup calls (every command but destroy looks up).
    fn deployer(&self) -> Deployer;

    /// The ARNs those actions act on for this query (`*` where unknown).
    fn deployer_arns(&self, _query: &Attrs, _scope: &ArnScope) -> Vec<String> {
        vec!["*".into()]
    }
}

/// How a kind's resources are replaced and waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// A replacement is created before the old one is deleted: AWS refuses to delete it while
    /// something still refers to it (a route, its integration or authorizer).
    pub create_before_destroy: bool,
    /// What a dependent waits for before it goes ahead.
    pub dependents_wait: DependentsWait,
    /// What AWS does with a second create of the same resource.
    pub second_create: SecondCreate,
    /// What a deleted resource takes with it that no spec declares and so no apply can put
    /// back (a bucket's objects): `undo` names it before it deletes or re-creates one.
    pub lost_when_deleted: Option<&'static str>,
}

/// What AWS does when the same create is sent twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondCreate {
    /// It refuses it (a natural key: a name, a route key) or answers with the first (an
    /// idempotency token, an idempotent call): a create the dead command still had in flight
    /// cannot make a second object.
    Refused,
    /// It makes a second object (an HTTP API, an integration): no key tells the two apart, so
    /// a create reusing an intent of a command that died moments ago first waits out what that
    /// command may still have in flight, then looks again.
    MakesAnother,
}

/// What a resource's dependents wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DependentsWait {
    /// Until it is ready ([`ResourceKind::wait_ready`]).
    Ready,
    /// Only for its id and computed attributes. A distribution's dependents need only its domain
    /// name and ARN, not its deployment: they go ahead, and the apply waits for the deployment
    /// on its own.
    Id,
}

impl Lifecycle {
    /// Delete, then create; dependents wait until it is ready.
    pub const DEFAULT: Lifecycle = Lifecycle {
        create_before_destroy: false,
        dependents_wait: DependentsWait::Ready,
        second_create: SecondCreate::Refused,
        lost_when_deleted: None,
    };
}

/// Every resource and lookup kind the engine knows.
pub struct Registry {
    kinds: Vec<Box<dyn ResourceKind>>,
    lookups: Vec<Box<dyn LookupKind>>,
}

impl Registry {
    /// The built-in AWS kinds. A new kind is its own file, its `mod` line and one line here.
    pub fn aws() -> Self {
        Self {
            kinds: vec![
                Typed::boxed(s3_bucket::S3Bucket),
                Typed::boxed(s3_bucket_policy::S3BucketPolicy),
                Typed::boxed(s3_bucket_notification::S3BucketNotification),
                Typed::boxed(sns_topic::SnsTopic),
                Typed::boxed(sns_topic_policy::SnsTopicPolicy),
                Typed::boxed(sns_subscription::SnsSubscription),
                Typed::boxed(iam_role::IamRole),
                Typed::boxed(lambda_function::LambdaFunction),
                Typed::boxed(lambda_permission::LambdaPermission),
                Typed::boxed(log_group::LogGroup),
                Typed::boxed(cloudfront_origin_access_control::CloudFrontOriginAccessControl),
                Typed::boxed(cloudfront_distribution::CloudFrontDistribution),
                Typed::boxed(route53_record::Route53Record),
                Typed::boxed(apigatewayv2_api::ApiGatewayV2Api),
                Typed::boxed(apigatewayv2_authorizer::ApiGatewayV2Authorizer),
                Typed::boxed(apigatewayv2_integration::ApiGatewayV2Integration),
                Typed::boxed(apigatewayv2_route::ApiGatewayV2Route),
                Typed::boxed(apigatewayv2_stage::ApiGatewayV2Stage),
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

    /// The kinds that offer the operation `name`.
    pub fn offering(&self, name: &str) -> Vec<&'static str> {
        let offers =
            |k: &dyn ResourceKind| k.operations().is_some_and(|o| o.operations().iter().any(|op| op.name == name));
        self.kinds.iter().filter(|k| offers(k.as_ref())).map(|k| k.kind()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_kinds_typed_model_has_exactly_its_schemas_attributes() {
        // Each attribute name is a field of the kind's model and a row of its schema table:
        // neither may have one the other lacks.
        let registry = Registry::aws();
        for name in registry.names() {
            let kind = registry.get(name).expect("registered");
            let model = kind.model();
            let schema = kind.schema();
            let compared: BTreeSet<&str> = schema.compared().map(|a| a.name).collect();
            let computed: BTreeSet<&str> = schema.attributes.iter().filter(|a| a.computed).map(|a| a.name).collect();
            assert_eq!(model.spec.iter().copied().collect::<BTreeSet<_>>(), compared, "{name}: spec model vs schema");
            assert_eq!(model.fields, model.spec, "{name}: field enum vs spec model");
            assert_eq!(
                model.computed.iter().copied().collect::<BTreeSet<_>>(),
                computed,
                "{name}: computed model vs schema"
            );
        }
    }
}
