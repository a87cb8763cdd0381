//! `sns_topic_policy`: a topic's access policy as its own resource, so the policy can name the
//! topic's ARN (and bucket notifications can wait for it) without a cycle.
//!
//! The id is the topic ARN. Setting it is idempotent; deleting it puts back the policy SNS
//! gives every new topic. A topic's policy always exists, so an interrupted create finds it.

use crate::addr::ResourceAddr;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::{self, Grant};
use crate::value::Attrs;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::sns_topic::{default_policy, set_attribute, topic_attributes};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, NoComputed, Owner, Prior, ProviderError};

pub struct SnsTopicPolicy;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("topic_arn", AttrType::String, "the topic").force_new(),
        Attribute::required("policy", AttrType::Policy, "the topic's access policy"),
    ],
};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicPolicy {
    topic_arn: String,
    policy: Value,
}

#[async_trait]
impl Kind for SnsTopicPolicy {
    const NAME: &'static str = "sns_topic_policy";
    type Spec = TopicPolicy;
    type Computed = NoComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    const DEPLOYER: Deployer = Deployer {
        read: &["sns:GetTopicAttributes"],
        write: &["sns:SetTopicAttributes"],
        delete: &["sns:SetTopicAttributes"],
        unscoped: &[],
    };

    fn deployer_arns(&self, attrs: &Attrs, _scope: &ArnScope) -> Vec<String> {
        vec![ArnScope::part(attrs.get("topic_arn"))]
    }

    fn grants(&self, _addr: &ResourceAddr, attrs: &Attrs) -> Vec<Grant> {
        permissions::of_resource_policy(attrs)
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Prior<TopicPolicy, NoComputed>,
    ) -> Result<Option<(TopicPolicy, NoComputed)>, ProviderError> {
        let Some(attrs) = topic_attributes(aws.sns().await, id).await? else { return Ok(None) };
        let policy = attrs.get("Policy").map_or(Value::Null, |p| json!(p));
        Ok(Some((TopicPolicy { topic_arn: id.to_string(), policy }, NoComputed {})))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &TopicPolicy,
        _owner: &Owner,
    ) -> Result<Created<NoComputed>, ProviderError> {
        set_attribute(aws.sns().await, &spec.topic_arn, "Policy", &spec.policy.to_string()).await?;
        Ok(Created::new(spec.topic_arn.clone(), NoComputed {}))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &TopicPolicy,
        _changed: &[&str],
        _owner: &Owner,
    ) -> Result<Option<NoComputed>, ProviderError> {
        set_attribute(aws.sns().await, id, "Policy", &spec.policy.to_string()).await?;
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &TopicPolicy,
        _owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let exists = topic_attributes(aws.sns().await, &spec.topic_arn).await?.is_some();
        Ok(exists.then(|| Found::Ours { id: spec.topic_arn.clone() }))
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: Option<&TopicPolicy>) -> Result<Deleted, ProviderError> {
        set_attribute(aws.sns().await, id, "Policy", &default_policy(id)).await?;
        Ok(Deleted::Yes)
    }
}
