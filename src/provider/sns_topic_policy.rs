//! `sns_topic_policy`: a topic's access policy as its own resource, so the policy can name the
//! topic's ARN (and bucket notifications can wait for it) without a cycle.
//!
//! The id is the topic ARN. Deleting it puts back the policy SNS gives every new topic.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::attrs::{build, found, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::sns_topic::{default_policy, set_attribute};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct SnsTopicPolicy;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("topic_arn", AttrType::String, "the topic").force_new(),
        Attribute::required("policy", AttrType::Policy, "the topic's access policy"),
    ],
};

#[async_trait]
impl ResourceKind for SnsTopicPolicy {
    fn kind(&self) -> &'static str {
        "sns_topic_policy"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let got = aws.sns().await.get_topic_attributes().topic_arn(id).send().await;
        let Some(out) = found(got.map_err(|e| ProviderError::from_sdk("GetTopicAttributes", e)))? else {
            return Ok(None);
        };
        let policy = out.attributes().and_then(|a| a.get("Policy")).map_or(Value::Null, |p| json!(p));
        Ok(Some(build([("topic_arn", json!(id)), ("policy", policy)])))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let arn = string(desired, "topic_arn");
        let policy = desired.get("policy").map(Value::to_string).unwrap_or_default();
        set_attribute(aws.sns().await, arn, "Policy", &policy).await?;
        Ok(Created { id: arn.to_string(), attrs: Attrs::new() })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        let policy = desired.get("policy").map(Value::to_string).unwrap_or_default();
        set_attribute(aws.sns().await, id, "Policy", &policy).await?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        set_attribute(aws.sns().await, id, "Policy", &default_policy(id)).await
    }
}
