//! `sns_topic_policy`: a topic's access policy as its own resource, so the policy can name the
//! topic's ARN (and bucket notifications can wait for it) without a cycle.
//!
//! The id is the topic ARN. Setting it is idempotent; deleting it puts back the policy SNS
//! gives every new topic. A topic's policy always exists: SNS's default one is replaced
//! freely; another one (a topic the stack adopted) only with `allow_overwrite: true`, recorded
//! and put back on destroy (see [`super::singleton`]).

use super::Fields;
use super::facets::{Access, Annotate, Annotation, ChangeView};
use super::planned;
use crate::addr::ResourceAddr;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::{self, Grant};
use crate::provider::Live;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::singleton::{self, ALLOW_OVERWRITE, REPLACED};
use super::sns_topic::{default_policy, set_attribute, shared_topic_attributes, topic_attributes};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Planned, Prior, ProviderError};

pub struct SnsTopicPolicy;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("topic_arn", AttrType::String, "the topic").force_new().identity(),
        Attribute::required("policy", AttrType::Policy, "the topic's access policy"),
        ALLOW_OVERWRITE,
        REPLACED,
    ],
};

#[serde_with::skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct TopicPolicy {
    topic_arn: String,
    policy: Value,
    allow_overwrite: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TopicPolicyComputed {
    replaced: String,
}

#[async_trait]
impl Kind for SnsTopicPolicy {
    const NAME: &'static str = "sns_topic_policy";
    type Spec = TopicPolicy;
    type Computed = TopicPolicyComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn annotate(&self) -> Option<&dyn Annotate<TopicPolicyPlanned, Live<Self>>> {
        Some(self)
    }

    fn normalize(&self, spec: &mut TopicPolicyPlanned) {
        planned::unset_when(&mut spec.allow_overwrite, &false);
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        prior: &Prior<TopicPolicy, TopicPolicyComputed>,
    ) -> Result<Option<(TopicPolicy, TopicPolicyComputed)>, ProviderError> {
        let Some(attrs) = shared_topic_attributes(aws, id).await? else { return Ok(None) };
        let policy = attrs.get("Policy").map_or(Value::Null, |p| json!(p));
        // What the create found and the overwrite setting are the engine's alone.
        let allow_overwrite = prior.spec().and_then(|p| p.allow_overwrite);
        let replaced = prior.computed.as_ref().map(|c| c.replaced.clone()).unwrap_or_default();
        Ok(Some((TopicPolicy { topic_arn: id.to_string(), policy, allow_overwrite }, TopicPolicyComputed { replaced })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &TopicPolicy,
        _owner: &Owner,
    ) -> Result<Created<TopicPolicyComputed, Self::Spec>, ProviderError> {
        let sns = aws.sns().await;
        let found = existing(sns, &spec.topic_arn).await?;
        let holder = format!("the topic {}", spec.topic_arn);
        let desired = super::normalize::policy(spec.policy.clone());
        let allowed = spec.allow_overwrite == Some(true);
        let replaced = singleton::take_over("SetTopicAttributes", "a policy", &holder, found, &desired, allowed)?;
        set_attribute(sns, &spec.topic_arn, "Policy", &spec.policy.to_string()).await?;
        Ok(Created::new(spec.topic_arn.clone(), TopicPolicyComputed { replaced }))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &TopicPolicy,
        changed: &[TopicPolicyField],
        _owner: &Owner,
    ) -> Result<Option<TopicPolicyComputed>, ProviderError> {
        // allow_overwrite is the engine's alone: changing it changes nothing in AWS.
        if changed.iter().any(|c| *c != TopicPolicyField::AllowOverwrite) {
            set_attribute(aws.sns().await, id, "Policy", &spec.policy.to_string()).await?;
        }
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &TopicPolicy,
        _owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        // SNS's default policy: the create did not get to write. The spec's: it did. Another:
        // not the stack's.
        let Some(found) = existing(aws.sns().await, &spec.topic_arn).await? else { return Ok(None) };
        let id = spec.topic_arn.clone();
        Ok(Some(match found == super::normalize::policy(spec.policy.clone()) {
            true => Found::Ours { id },
            false => Found::NotOurs { id, why: "the topic has another policy".into() },
        }))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        prior: &Prior<TopicPolicy, TopicPolicyComputed>,
    ) -> Result<Deleted, ProviderError> {
        // What the topic had before the stack, else the policy SNS gives every new topic.
        let put_back = singleton::to_put_back(prior.computed.as_ref().map(|c| c.replaced.as_str()));
        let policy = put_back.map_or_else(|| default_policy(id), |p| p.to_string());
        set_attribute(aws.sns().await, id, "Policy", &policy).await?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<TopicPolicyPlanned>> {
        Some(self)
    }
}

impl Annotate<TopicPolicyPlanned, Live<Self>> for SnsTopicPolicy {
    fn annotate(&self, change: &ChangeView<'_, TopicPolicyPlanned, Live<Self>>) -> Vec<Annotation> {
        let allowed = change.desired.and_then(|d| d.allow_overwrite.as_ref());
        singleton::takes_over("a policy other than SNS's default the topic has", change.stage, allowed)
    }
}

impl Access<TopicPolicyPlanned> for SnsTopicPolicy {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["sns:GetTopicAttributes"],
            write: &["sns:SetTopicAttributes"],
            delete: &["sns:SetTopicAttributes"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &TopicPolicyPlanned, _scope: &ArnScope) -> Vec<String> {
        vec![ArnScope::part(Some(spec.topic_arn.text()))]
    }

    fn grants(&self, _addr: &ResourceAddr, spec: &TopicPolicyPlanned) -> Vec<Grant> {
        permissions::of_resource_policy(spec.policy.known())
    }
}

/// The topic's policy, normalised, unless it is the one SNS gives every new topic (`None`, as
/// when the topic is gone): nobody's document to keep.
async fn existing(sns: &aws_sdk_sns::Client, topic: &str) -> Result<Option<Value>, ProviderError> {
    let Some(attrs) = topic_attributes(sns, topic).await? else { return Ok(None) };
    let Some(policy) = attrs.get("Policy") else { return Ok(None) };
    let policy = super::normalize::policy(json!(policy));
    let default = super::normalize::policy(json!(default_policy(topic)));
    Ok((policy != default).then_some(policy))
}
