//! `s3_bucket_notification`: a bucket's whole notification configuration (Lambda and SNS
//! targets, event types, prefix/suffix filters). One resource owns a bucket's configuration,
//! since S3 replaces it whole on every write.
//!
//! The id is the bucket name. Real S3 rejects the configuration unless each target already
//! lets S3 deliver (the Lambda permission, the topic policy): reference those in the spec
//! (e.g. `depends_on`) so they come first. Filter rule names are sent in lower case and read
//! case-insensitively.

use async_trait::async_trait;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter, TopicConfiguration,
};
use serde_json::{Value, json};

use super::attrs::{build, found, opt_string, string, strings};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
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
        Attribute::required("bucket", AttrType::String, "the bucket's name").force_new(),
        Attribute::optional("lambda_functions", AttrType::List(&AttrType::Object(LAMBDA_TARGET)), "Lambda targets"),
        Attribute::optional("topics", AttrType::List(&AttrType::Object(TOPIC_TARGET)), "SNS targets"),
    ],
};

#[async_trait]
impl ResourceKind for S3BucketNotification {
    fn kind(&self) -> &'static str {
        "s3_bucket_notification"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        super::normalize::by_schema(&SCHEMA, attrs);
        for list in ["lambda_functions", "topics"] {
            if let Some(Value::Array(targets)) = attrs.get_mut(list) {
                for t in targets.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(Value::Array(events)) = t.get_mut("events") {
                        events.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                    }
                }
                targets.sort_by_key(|t| t.to_string());
            }
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let got = aws.s3().await.get_bucket_notification_configuration().bucket(id).send().await;
        let got = got.map_err(|e| ProviderError::from_sdk("GetBucketNotificationConfiguration", e));
        let Some(out) = found(got)? else { return Ok(None) };
        let lambdas: Vec<Value> = out
            .lambda_function_configurations()
            .iter()
            .map(|c| target("function_arn", c.lambda_function_arn(), c.events(), c.filter()))
            .collect();
        let topics: Vec<Value> = out
            .topic_configurations()
            .iter()
            .map(|c| target("topic_arn", c.topic_arn(), c.events(), c.filter()))
            .collect();
        Ok(Some(build([("bucket", json!(id)), ("lambda_functions", json!(lambdas)), ("topics", json!(topics))])))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let bucket = string(desired, "bucket");
        put(aws, bucket, desired).await?;
        Ok(Created { id: bucket.to_string(), attrs: Attrs::new() })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        put(aws, id, desired).await?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        put(aws, id, &Attrs::new()).await
    }
}

fn target(arn_key: &str, arn: &str, events: &[Event], filter: Option<&NotificationConfigurationFilter>) -> Value {
    let mut t = build([(arn_key, json!(arn)), ("events", json!(events.iter().map(Event::as_str).collect::<Vec<_>>()))]);
    for rule in filter.and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default() {
        let name = rule.name().map(|n| n.as_str().to_ascii_lowercase()).unwrap_or_default();
        if let Some(value) = rule.value() {
            t.insert(format!("filter_{name}"), json!(value));
        }
    }
    Value::Object(t)
}

fn filter(t: &Attrs) -> Option<NotificationConfigurationFilter> {
    let rules: Vec<FilterRule> = [("filter_prefix", FilterRuleName::Prefix), ("filter_suffix", FilterRuleName::Suffix)]
        .into_iter()
        .filter_map(|(key, name)| opt_string(t, key).map(|v| FilterRule::builder().name(name).value(v).build()))
        .collect();
    (!rules.is_empty()).then(|| {
        NotificationConfigurationFilter::builder()
            .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
            .build()
    })
}

fn events(t: &Attrs) -> Vec<Event> {
    strings(t.get("events")).iter().map(|e| Event::from(e.as_str())).collect()
}

/// Writes the whole configuration; an empty one removes every notification.
async fn put(aws: &Aws, bucket: &str, desired: &Attrs) -> Result<(), ProviderError> {
    let objects = |key: &str| -> Vec<Attrs> {
        desired
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_object().cloned()).collect())
            .unwrap_or_default()
    };
    let invalid = |e: aws_sdk_s3::error::BuildError| {
        ProviderError::new("PutBucketNotificationConfiguration", "InvalidArgument", e.to_string())
    };
    let mut config = NotificationConfiguration::builder();
    for t in objects("lambda_functions") {
        let c = LambdaFunctionConfiguration::builder()
            .lambda_function_arn(string(&t, "function_arn"))
            .set_events(Some(events(&t)))
            .set_filter(filter(&t))
            .build()
            .map_err(invalid)?;
        config = config.lambda_function_configurations(c);
    }
    for t in objects("topics") {
        let c = TopicConfiguration::builder()
            .topic_arn(string(&t, "topic_arn"))
            .set_events(Some(events(&t)))
            .set_filter(filter(&t))
            .build()
            .map_err(invalid)?;
        config = config.topic_configurations(c);
    }
    aws.s3()
        .await
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config.build())
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutBucketNotificationConfiguration", e))?;
    Ok(())
}
