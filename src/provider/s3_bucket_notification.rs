//! `s3_bucket_notification`: a bucket's whole notification configuration (Lambda and SNS
//! targets, event types, prefix/suffix filters). One resource owns a bucket's configuration,
//! since S3 replaces it whole on every write.
//!
//! The id is the bucket name. Real S3 rejects the configuration unless each target already
//! lets S3 deliver (the Lambda permission, the topic policy): reference those in the spec
//! (e.g. `depends_on`) so they come first. Right after they are written S3 may still fail to
//! validate them ("Unable to validate the following destination configurations"): that is
//! classed as propagating and waited out. Filter rule names are sent in lower case and read
//! case-insensitively. Putting the configuration is idempotent.
//!
//! The spec manages Lambda and SNS targets. Queue targets and EventBridge delivery that someone
//! set up on the bucket (an adopted bucket, say) are kept: every put reads the configuration
//! first and writes them back, since S3 replaces the whole configuration. Closed-world drift
//! reports them, and `drift --revert` removes them (unless `drift.ignore` keeps them).
//!
//! A bucket the stack adopted may have Lambda or SNS targets already: the create takes over
//! only the spec's own targets unless `allow_overwrite: true`, records what it found and puts
//! it back on destroy (see [`super::singleton`]).

use super::Fields;
use super::facets::{Access, Annotate, Annotation, ChangeView, Inventory};
use super::planned;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::provider::{DeclaredAs, Known, KnownValue, Live};
use async_trait::async_trait;
use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter, TopicConfiguration,
};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::attrs::found;
use super::s3_bucket::in_bucket_region;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::singleton::{self, ALLOW_OVERWRITE, REPLACED};
use super::{
    Aws, Created, Deleted, ErrorClass, FindReason, Found, Kind, Managed, Owner, Planned, Prior, ProviderError,
};
use super::{Declared, Finding, Held};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct S3BucketNotification;

const LAMBDA_TARGET: &[Attribute] = &[
    Attribute::required("function_arn", AttrType::String, "the function to invoke"),
    Attribute::required("events", AttrType::List(&AttrType::String), "event types, e.g. s3:ObjectCreated:*"),
    Attribute::optional("filter_prefix", AttrType::String, "only keys starting with this"),
    Attribute::optional("filter_suffix", AttrType::String, "only keys ending with this"),
];

const TOPIC_TARGET: &[Attribute] = &[
    Attribute::required("topic_arn", AttrType::String, "the topic to publish to"),
    Attribute::required("events", AttrType::List(&AttrType::String), "event types, e.g. s3:ObjectCreated:Put"),
    Attribute::optional("filter_prefix", AttrType::String, "only keys starting with this"),
    Attribute::optional("filter_suffix", AttrType::String, "only keys ending with this"),
];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("bucket", AttrType::String, "the bucket's name").force_new().identity(),
        Attribute::optional("lambda_functions", AttrType::List(&AttrType::Object(LAMBDA_TARGET)), "Lambda targets"),
        Attribute::optional("topics", AttrType::List(&AttrType::Object(TOPIC_TARGET)), "SNS targets"),
        ALLOW_OVERWRITE,
        REPLACED,
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    bucket: String,
    lambda_functions: Option<Vec<LambdaTarget>>,
    topics: Option<Vec<TopicTarget>>,
    allow_overwrite: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NotificationComputed {
    replaced: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Planned)]
#[serde(deny_unknown_fields)]
struct LambdaTarget {
    function_arn: String,
    events: Vec<String>,
    filter_prefix: Option<String>,
    filter_suffix: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Planned)]
#[serde(deny_unknown_fields)]
struct TopicTarget {
    topic_arn: String,
    events: Vec<String>,
    filter_prefix: Option<String>,
    filter_suffix: Option<String>,
}

#[async_trait]
impl Kind for S3BucketNotification {
    const NAME: &'static str = "s3_bucket_notification";
    type Spec = Notification;
    type Computed = NotificationComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn annotate(&self) -> Option<&dyn Annotate<NotificationPlanned, Live<Self>>> {
        Some(self)
    }

    /// S3 refuses a configuration whose targets do not already let it deliver: each Lambda
    /// target needs a `lambda_permission` for `s3.amazonaws.com`, each topic a policy, among
    /// what the notification comes after.
    fn validate(&self, this: &DeclaredAs<'_, NotificationPlanned>, all: &[Declared]) -> Vec<Finding> {
        // Only what other resources declare decides: a target's permission or policy first.
        let this = this.declared;
        let mut out = Vec::new();
        let targets = |attr: &str, kind: &str| -> Vec<ResourceAddr> {
            let refs = this.references.get(attr).into_iter().flatten();
            refs.filter(|(addr, _)| addr.kind == kind).map(|(addr, _)| addr.clone()).collect()
        };
        for function in targets("lambda_functions", "lambda_function") {
            // S3 invoking an alias (the function's `live_arn`) is allowed by the alias's own
            // policy only: the permission must name the same qualifier.
            let via_alias = this
                .references
                .get("lambda_functions")
                .into_iter()
                .flatten()
                .any(|(addr, attr)| *addr == function && attr == "live_arn");
            let qualifier_fits = |p: &Declared| match p.values.get("qualifier") {
                None => !via_alias,
                Some(Some(q)) => via_alias && q == "live",
                Some(None) => true,
            };
            let lets_s3 = |p: &&Declared| {
                p.addr.kind == "lambda_permission"
                    && refers_to(p, "function_name", &function)
                    && p.known("principal").is_none_or(|v| v == "s3.amazonaws.com")
                    && qualifier_fits(p)
            };
            if all.iter().filter(|p| this.dependencies.contains(&p.addr)).any(|p| lets_s3(&p)) {
                continue;
            }
            let help = match all.iter().find(|p| lets_s3(p)) {
                Some(p) => format!("add `depends_on: [{}]` here, so it is in place first", p.addr),
                None if via_alias => format!(
                    "S3 invokes {function}'s live alias (live_arn), which only a statement in the alias's policy \
                     allows: give a lambda_permission for {function} with principal s3.amazonaws.com `qualifier: live`, \
                     and list it in this resource's depends_on"
                ),
                None => format!(
                    "declare a lambda_permission for {function} with principal s3.amazonaws.com and the bucket as \
                     source_arn, and list it in this resource's depends_on"
                ),
            };
            out.push(
                Finding::at(
                    "lambda_functions",
                    not_first(this, &function, "a lambda_permission letting s3.amazonaws.com invoke it"),
                )
                .help(help),
            );
        }
        for topic in targets("topics", "sns_topic") {
            let has_policy = |p: &&Declared| {
                (p.addr.kind == "sns_topic_policy" && refers_to(p, "topic_arn", &topic))
                    || (p.addr == topic && p.has("policy"))
            };
            if all.iter().filter(|p| this.dependencies.contains(&p.addr)).any(|p| has_policy(&p)) {
                continue;
            }
            let help = match all.iter().find(|p| has_policy(p)) {
                Some(p) => format!("add `depends_on: [{}]` here, so it is in place first", p.addr),
                None => format!(
                    "declare an sns_topic_policy for {topic} that lets s3.amazonaws.com publish, and list it in this \
                     resource's depends_on"
                ),
            };
            out.push(
                Finding::at("topics", not_first(this, &topic, "a topic policy letting S3 publish to it")).help(help),
            );
        }
        out
    }

    fn normalize(&self, spec: &mut NotificationPlanned) {
        planned::unset_when(&mut spec.allow_overwrite, &false);
        if let Some(targets) = spec.lambda_functions.known_mut() {
            for events in targets.iter_mut().filter_map(Known::known_mut).filter_map(|t| t.events.known_mut()) {
                planned::sort_by_text(events);
            }
            sort_as_json(targets);
        }
        if let Some(targets) = spec.topics.known_mut() {
            for events in targets.iter_mut().filter_map(Known::known_mut).filter_map(|t| t.events.known_mut()) {
                planned::sort_by_text(events);
            }
            sort_as_json(targets);
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        prior: &Prior<Notification, NotificationComputed>,
    ) -> Result<Option<(Notification, NotificationComputed)>, ProviderError> {
        let got = in_bucket_region(aws, id, move |s3| async move { configuration(&s3, id).await });
        let Some(out) = got.await? else { return Ok(None) };
        let mut spec = targets_of(id, &out);
        // What the create found and the overwrite setting are the engine's alone.
        spec.allow_overwrite = prior.spec().and_then(|p| p.allow_overwrite);
        let replaced = prior.computed.as_ref().map(|c| c.replaced.clone()).unwrap_or_default();
        Ok(Some((spec, NotificationComputed { replaced })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Notification,
        _owner: &Owner,
    ) -> Result<Created<NotificationComputed, Self::Spec>, ProviderError> {
        let bucket = spec.bucket.as_str();
        let replaced = in_bucket_region(aws, bucket, move |s3| async move {
            let current = configuration(&s3, bucket).await?;
            let found = current.as_ref().map(|out| targets_json(&targets_of(bucket, out)));
            let holder = format!("the bucket {bucket}");
            let allowed = spec.allow_overwrite == Some(true);
            let found = found.filter(has_targets);
            let replaced = singleton::take_over(
                "PutBucketNotificationConfiguration",
                "Lambda or SNS notification targets",
                &holder,
                found,
                &targets_json(spec),
                allowed,
            )?;
            match &current {
                Some(current) => put_onto(&s3, bucket, spec, current).await?,
                None => put(&s3, bucket, spec).await?,
            }
            Ok(replaced)
        })
        .await?;
        // S3 holds the targets as put: both lists, empty where the spec has none.
        let observed = Notification {
            bucket: spec.bucket.clone(),
            lambda_functions: Some(spec.lambda_functions.clone().unwrap_or_default()),
            topics: Some(spec.topics.clone().unwrap_or_default()),
            allow_overwrite: None,
        };
        Ok(Created::new(spec.bucket.clone(), NotificationComputed { replaced }).observed(observed))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Notification,
        changed: &[NotificationField],
        _owner: &Owner,
    ) -> Result<Option<NotificationComputed>, ProviderError> {
        // allow_overwrite is the engine's alone: changing it changes nothing in AWS.
        if changed.iter().any(|c| *c != NotificationField::AllowOverwrite) {
            in_bucket_region(aws, id, move |s3| async move { put(&s3, id, spec).await }).await?;
        }
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Notification,
        _owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let bucket = spec.bucket.as_str();
        // In the bucket's region: the adopted assets bucket may live elsewhere.
        let got = in_bucket_region(aws, bucket, |s3| async move {
            let got = s3.get_bucket_notification_configuration().bucket(bucket).send().await;
            found(got.map_err(|e| ProviderError::from_sdk("GetBucketNotificationConfiguration", e)))
        })
        .await?;
        // Only the spec's own targets are what an interrupted create wrote; others are not ours.
        let found = got.map(|out| targets_json(&targets_of(bucket, &out))).filter(has_targets);
        Ok(found.map(|found| match found == targets_json(spec) {
            true => Found::Ours { id: spec.bucket.clone() },
            false => {
                Found::NotOurs { id: spec.bucket.clone(), why: "the bucket has other notification targets".into() }
            }
        }))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        prior: &Prior<Notification, NotificationComputed>,
    ) -> Result<Deleted, ProviderError> {
        // What the bucket had before the stack is put back; else its Lambda and SNS targets go.
        let put_back = singleton::to_put_back(prior.computed.as_ref().map(|c| c.replaced.as_str()));
        let mut restored: Notification = put_back
            .and_then(|mut targets| {
                targets["bucket"] = serde_json::json!(id);
                serde_json::from_value(targets).ok()
            })
            .unwrap_or(Notification {
                bucket: id.to_string(),
                lambda_functions: None,
                topics: None,
                allow_overwrite: None,
            });
        restored.bucket = id.to_string();
        let restored = &restored;
        in_bucket_region(aws, id, move |s3| async move { put(&s3, id, restored).await }).await?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<NotificationPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

impl Annotate<NotificationPlanned, Live<Self>> for S3BucketNotification {
    fn annotate(&self, change: &ChangeView<'_, NotificationPlanned, Live<Self>>) -> Vec<Annotation> {
        let allowed = change.desired.and_then(|d| d.allow_overwrite.as_ref());
        singleton::takes_over("Lambda or SNS targets the bucket has", change.stage, allowed)
    }
}

#[async_trait]
impl Inventory for S3BucketNotification {
    /// Queue and EventBridge targets, which the kind leaves as they are (it manages Lambda and
    /// topic targets).
    async fn held(&self, aws: &Aws, id: &str, _recorded: &Attrs) -> Result<Vec<Held>, ProviderError> {
        let got = in_bucket_region(aws, id, move |s3| async move { configuration(&s3, id).await });
        let Some(out) = got.await? else { return Ok(vec![]) };
        // `drift --revert` removes them as it removes every undeclared child (`drift.ignore`
        // keeps one): the configuration is rewritten without it, the managed targets as they are.
        let mut found: Vec<Held> = out
            .queue_configurations()
            .iter()
            .map(|q| {
                Held::removable(format!("{QUEUE_KEY}{}", q.queue_arn()), format!("queue target {}", q.queue_arn()))
            })
            .collect();
        if out.event_bridge_configuration().is_some() {
            found.push(Held::removable(EVENTBRIDGE_KEY, "EventBridge delivery"));
        }
        Ok(found)
    }

    /// Rewrites the configuration without the queue target or EventBridge delivery `key`
    /// names, keeping everything else as S3 holds it; gone already counts as removed.
    async fn remove_held(&self, aws: &Aws, id: &str, key: &str) -> Result<(), ProviderError> {
        in_bucket_region(aws, id, move |s3| async move {
            let Some(current) = configuration(&s3, id).await? else { return Ok(()) };
            let queues: Vec<_> = current
                .queue_configurations()
                .iter()
                .filter(|q| key.strip_prefix(QUEUE_KEY) != Some(q.queue_arn()))
                .cloned()
                .collect();
            let event_bridge = current.event_bridge_configuration().filter(|_| key != EVENTBRIDGE_KEY).cloned();
            let config = NotificationConfiguration::builder()
                .set_lambda_function_configurations(Some(current.lambda_function_configurations().to_vec()))
                .set_topic_configurations(Some(current.topic_configurations().to_vec()))
                .set_queue_configurations(Some(queues))
                .set_event_bridge_configuration(event_bridge)
                .build();
            let put = s3.put_bucket_notification_configuration().bucket(id).notification_configuration(config);
            put.send().await.map_err(|e| ProviderError::from_sdk("PutBucketNotificationConfiguration", e))?;
            Ok(())
        })
        .await
    }
}

impl Access<NotificationPlanned> for S3BucketNotification {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["s3:GetBucketNotification"],
            write: &["s3:PutBucketNotification"],
            delete: &["s3:PutBucketNotification"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &NotificationPlanned, scope: &ArnScope) -> Vec<String> {
        vec![scope.arn("s3", "", "", &ArnScope::part(Some(spec.bucket.text())))]
    }
}

/// The Lambda and SNS targets of a configuration, as the spec writes them.
fn targets_of(bucket: &str, out: &GetBucketNotificationConfigurationOutput) -> Notification {
    let lambdas = out
        .lambda_function_configurations()
        .iter()
        .map(|c| {
            let (filter_prefix, filter_suffix) = filters(c.filter());
            LambdaTarget {
                function_arn: c.lambda_function_arn().to_string(),
                events: events(c.events()),
                filter_prefix,
                filter_suffix,
            }
        })
        .collect();
    let topics = out
        .topic_configurations()
        .iter()
        .map(|c| {
            let (filter_prefix, filter_suffix) = filters(c.filter());
            TopicTarget {
                topic_arn: c.topic_arn().to_string(),
                events: events(c.events()),
                filter_prefix,
                filter_suffix,
            }
        })
        .collect();
    Notification {
        bucket: bucket.to_string(),
        lambda_functions: Some(lambdas),
        topics: Some(topics),
        allow_overwrite: None,
    }
}

/// The targets of `n` as one comparable document: both lists present, events and targets in
/// one order (S3 keeps neither).
fn targets_json(n: &Notification) -> serde_json::Value {
    let mut attrs: Attrs = serde_json::from_value(serde_json::json!({
        "bucket": n.bucket,
        "lambda_functions": n.lambda_functions.as_deref().map(serde_json::to_value).transpose().ok().flatten().unwrap_or_default(),
        "topics": n.topics.as_deref().map(serde_json::to_value).transpose().ok().flatten().unwrap_or_default(),
    }))
    .unwrap_or_default();
    for list in ["lambda_functions", "topics"] {
        if attrs.get(list).is_none_or(serde_json::Value::is_null) {
            attrs.insert(list.into(), serde_json::json!([]));
        }
    }
    super::ResourceKind::normalize(&super::Typed(S3BucketNotification), &mut attrs);
    attrs.remove("bucket");
    serde_json::to_value(attrs).unwrap_or_default()
}

/// Whether a document of [`targets_json`] has any target.
fn has_targets(targets: &serde_json::Value) -> bool {
    ["lambda_functions", "topics"].iter().any(|l| targets[l].as_array().is_some_and(|a| !a.is_empty()))
}

fn events(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.as_str().to_string()).collect()
}

/// Whether the declared resource's attribute refers to `target`.
fn refers_to(d: &Declared, attr: &str, target: &ResourceAddr) -> bool {
    d.references.get(attr).is_some_and(|refs| refs.iter().any(|(addr, _)| addr == target))
}

fn not_first(this: &Declared, target: &ResourceAddr, what: &str) -> String {
    format!(
        "{} sends events to {target}, but {what} does not come before it: S3 refuses the configuration until it does",
        this.addr
    )
}

/// The prefix and suffix rules of a filter, by rule name whatever its case.
fn filters(filter: Option<&NotificationConfigurationFilter>) -> (Option<String>, Option<String>) {
    let (mut prefix, mut suffix) = (None, None);
    for rule in filter.and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default() {
        let name = rule.name().map(|n| n.as_str().to_ascii_lowercase()).unwrap_or_default();
        match name.as_str() {
            "prefix" => prefix = rule.value().map(str::to_string),
            "suffix" => suffix = rule.value().map(str::to_string),
            _ => {}
        }
    }
    (prefix, suffix)
}

fn filter(prefix: Option<&String>, suffix: Option<&String>) -> Option<NotificationConfigurationFilter> {
    let rules: Vec<FilterRule> = [(prefix, FilterRuleName::Prefix), (suffix, FilterRuleName::Suffix)]
        .into_iter()
        .filter_map(|(value, name)| value.map(|v| FilterRule::builder().name(name).value(v).build()))
        .collect();
    (!rules.is_empty()).then(|| {
        NotificationConfigurationFilter::builder()
            .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
            .build()
    })
}

/// Writes the spec's targets, keeping the queue targets and EventBridge delivery the bucket
/// has; an empty spec removes every Lambda and SNS target.
async fn put(s3: &aws_sdk_s3::Client, bucket: &str, spec: &Notification) -> Result<(), ProviderError> {
    let current = s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("GetBucketNotificationConfiguration", e))?;
    put_onto(s3, bucket, spec, &current).await
}

/// Writes the spec's targets over `current`, keeping the queue and EventBridge deliveries it
/// holds (the engine manages neither).
async fn put_onto(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    spec: &Notification,
    current: &GetBucketNotificationConfigurationOutput,
) -> Result<(), ProviderError> {
    let invalid = |e: aws_sdk_s3::error::BuildError| {
        ProviderError::new("PutBucketNotificationConfiguration", "InvalidArgument", e.to_string())
    };
    let mut config = NotificationConfiguration::builder()
        .set_queue_configurations(Some(current.queue_configurations().to_vec()).filter(|q| !q.is_empty()))
        .set_event_bridge_configuration(current.event_bridge_configuration().cloned());
    for t in spec.lambda_functions.iter().flatten() {
        let c = LambdaFunctionConfiguration::builder()
            .lambda_function_arn(&t.function_arn)
            .set_events(Some(t.events.iter().map(|e| Event::from(e.as_str())).collect()))
            .set_filter(filter(t.filter_prefix.as_ref(), t.filter_suffix.as_ref()))
            .build()
            .map_err(invalid)?;
        config = config.lambda_function_configurations(c);
    }
    for t in spec.topics.iter().flatten() {
        let c = TopicConfiguration::builder()
            .topic_arn(&t.topic_arn)
            .set_events(Some(t.events.iter().map(|e| Event::from(e.as_str())).collect()))
            .set_filter(filter(t.filter_prefix.as_ref(), t.filter_suffix.as_ref()))
            .build()
            .map_err(invalid)?;
        config = config.topic_configurations(c);
    }
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config.build())
        .send()
        .await
        .map_err(|e| not_validated_yet(ProviderError::from_sdk("PutBucketNotificationConfiguration", e)))?;
    Ok(())
}

/// The bucket's notification configuration, `None` without the bucket.
/// How `remove_unmanaged` names a queue target (`queue:ARN`) and EventBridge delivery.
const QUEUE_KEY: &str = "queue:";
const EVENTBRIDGE_KEY: &str = "eventbridge";

async fn configuration(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Option<GetBucketNotificationConfigurationOutput>, ProviderError> {
    let got = s3.get_bucket_notification_configuration().bucket(bucket).send().await;
    found(got.map_err(|e| ProviderError::from_sdk("GetBucketNotificationConfiguration", e)))
}

/// S3 test-delivers to every target when the configuration is put; a permission or topic
/// policy written moments before may not be visible to it yet.
fn not_validated_yet(e: ProviderError) -> ProviderError {
    if e.code == "InvalidArgument" && e.message.contains("Unable to validate the following destination configurations")
    {
        e.with_class(ErrorClass::Propagating)
    } else {
        e
    }
}

/// Sorts targets by their JSON text: their order carries no meaning.
fn sort_as_json<T: Serialize>(targets: &mut [Known<T>]) {
    targets.sort_by_cached_key(|t| serde_json::to_value(t).map(|v| v.to_string()).unwrap_or_default());
}
