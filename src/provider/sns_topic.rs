//! `sns_topic`: a standard topic with its display name, access policy and tags.
//!
//! The id is the topic ARN. Renaming replaces the topic. The policy is compared as parsed,
//! normalised JSON, since SNS returns it re-serialised. `CreateTopic` carries the attributes
//! and the ownership tags, and is idempotent for the same name and attributes.

use super::Fields;
use super::facets::{Access, Inventory, Parent};
use crate::addr::ResourceAddr;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::{self, Grant};
use crate::provider::KnownValue;
use crate::value::Attrs;
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serde_with::skip_serializing_none;

use super::ownership::is_engine_tag;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::typed::cannot_update;
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Planned, Prior, ProviderError};

pub struct SnsTopic;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the topic name")
            .force_new()
            .identity()
            .named(super::names::NameRule::Topic),
        Attribute::optional("display_name", AttrType::String, "the display name used in SMS and email"),
        Attribute::optional("policy", AttrType::Policy, "the topic's access policy"),
        Attribute::optional("tags", AttrType::Map(&AttrType::String), "tags on the topic"),
        Attribute::computed("arn", "the topic ARN"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    name: String,
    display_name: Option<String>,
    policy: Option<Value>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TopicComputed {
    arn: String,
}

#[async_trait]
impl Kind for SnsTopic {
    const NAME: &'static str = "sns_topic";
    type Spec = Topic;
    type Computed = TopicComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Prior<Topic, TopicComputed>,
    ) -> Result<Option<(Topic, TopicComputed)>, ProviderError> {
        let sns = aws.sns().await;
        let Some(attrs) = aws.retried(|| shared_topic_attributes(aws, id)).await? else { return Ok(None) };
        let tags = if managed.has("tags") {
            let mut tags = aws.retried(|| list_tags(sns, id)).await?;
            tags.retain(|k, _| !is_engine_tag(k));
            Some(tags)
        } else {
            None
        };
        let spec = Topic {
            name: id.rsplit(':').next().unwrap_or(id).to_string(),
            // Reported even when unmanaged (it costs nothing): the snapshot drift compares.
            display_name: attrs.get("DisplayName").filter(|s| !s.is_empty()).cloned(),
            policy: attrs.get("Policy").filter(|_| managed.has("policy")).map(|p| json!(p)),
            tags,
        };
        Ok(Some((spec, TopicComputed { arn: id.to_string() })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Topic,
        owner: &Owner,
    ) -> Result<Created<TopicComputed, Self::Spec>, ProviderError> {
        let mut req = aws.sns().await.create_topic().name(&spec.name);
        if let Some(name) = &spec.display_name {
            req = req.attributes("DisplayName", name);
        }
        if let Some(policy) = spec.policy.as_ref().filter(|p| !p.is_null()) {
            req = req.attributes("Policy", policy.to_string());
        }
        let out = req
            .set_tags(Some(tags(spec.tags.as_ref(), owner)?))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateTopic", e))?;
        let arn =
            out.topic_arn().ok_or_else(|| ProviderError::unexpected("CreateTopic", "no TopicArn in the response"))?;
        // As sent: a display name left out is empty; the policy and tags are read only where
        // the spec manages them.
        let observed = Topic { display_name: spec.display_name.clone().filter(|s| !s.is_empty()), ..spec.clone() };
        Ok(Created::new(arn.to_string(), TopicComputed { arn: arn.to_string() }).observed(observed))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Topic,
        changed: &[TopicField],
        owner: &Owner,
    ) -> Result<Option<TopicComputed>, ProviderError> {
        let sns = aws.sns().await;
        for &attr in changed {
            match attr {
                TopicField::DisplayName => {
                    set_attribute(sns, id, "DisplayName", spec.display_name.as_deref().unwrap_or_default()).await?
                }
                TopicField::Policy => {
                    let policy = match spec.policy.as_ref().filter(|p| !p.is_null()) {
                        Some(p) => p.to_string(),
                        // SNS cannot drop a policy: put back the one every new topic gets.
                        None => default_policy(id),
                    };
                    set_attribute(sns, id, "Policy", &policy).await?;
                }
                TopicField::Tags => retag(sns, id, spec.tags.as_ref(), owner).await?,
                TopicField::Name => return Err(cannot_update(Self::NAME, attr.name())),
            }
        }
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Topic,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let sns = aws.sns().await;
        let arn = format!(
            "arn:{}:sns:{}:{}:{}",
            aws.partition().await?.name,
            aws.region().await,
            aws.account_id().await?,
            spec.name
        );
        if topic_attributes(sns, &arn).await?.is_none() {
            return Ok(None);
        }
        let tags = list_tags(sns, &arn).await?;
        Ok(Some(owner.judge_tagged_at_create(&arn, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Topic, TopicComputed>,
    ) -> Result<Deleted, ProviderError> {
        let deleted = aws.sns().await.delete_topic().topic_arn(id).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteTopic", e))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<TopicPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

impl Inventory for SnsTopic {
    /// Its subscriptions, listed by `sns_subscription` (any of them may be undeclared).
    fn children_listed_by(&self, id: &str, _recorded: &Attrs) -> Vec<(&'static str, Parent)> {
        vec![("sns_subscription", Parent(id.to_string()))]
    }
}

impl Access<TopicPlanned> for SnsTopic {
    // drift lists the topic's subscriptions.
    fn deployer(&self) -> Deployer {
        Deployer {
            // drift lists the topic's subscriptions.
            read: &["sns:GetTopicAttributes", "sns:ListTagsForResource", "sns:ListSubscriptionsByTopic"],
            write: &["sns:CreateTopic", "sns:SetTopicAttributes", "sns:TagResource", "sns:UntagResource"],
            delete: &["sns:DeleteTopic"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &TopicPlanned, scope: &ArnScope) -> Vec<String> {
        vec![scope.arn("sns", &scope.region, &scope.account, &ArnScope::part(Some(spec.name.text())))]
    }

    fn grants(&self, _addr: &ResourceAddr, spec: &TopicPlanned) -> Vec<Grant> {
        permissions::of_resource_policy(spec.policy.known())
    }
}

/// The topic's attributes, or `None` if it does not exist.
pub(super) async fn topic_attributes(
    sns: &aws_sdk_sns::Client,
    arn: &str,
) -> Result<Option<std::collections::HashMap<String, String>>, ProviderError> {
    match sns.get_topic_attributes().topic_arn(arn).send().await {
        Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
        Err(e) => {
            let e = ProviderError::from_sdk("GetTopicAttributes", e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

/// The same, read once in a refresh for the topic and its policy (see [`Aws::read_once`]).
pub(super) async fn shared_topic_attributes(
    aws: &Aws,
    arn: &str,
) -> Result<Option<std::collections::HashMap<String, String>>, ProviderError> {
    let sns = aws.sns().await;
    aws.read_once(&format!("GetTopicAttributes:{arn}"), || topic_attributes(sns, arn)).await
}

pub(super) async fn set_attribute(
    sns: &aws_sdk_sns::Client,
    arn: &str,
    name: &str,
    value: &str,
) -> Result<(), ProviderError> {
    sns.set_topic_attributes()
        .topic_arn(arn)
        .attribute_name(name)
        .attribute_value(value)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("SetTopicAttributes", e))?;
    Ok(())
}

async fn list_tags(sns: &aws_sdk_sns::Client, arn: &str) -> Result<BTreeMap<String, String>, ProviderError> {
    let out = sns
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListTagsForResource", e))?;
    Ok(out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
}

/// The spec's tags plus the ownership tags.
fn tags(spec: Option<&BTreeMap<String, String>>, owner: &Owner) -> Result<Vec<Tag>, ProviderError> {
    let ownership = owner.tags();
    spec.into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(ownership.iter().map(|(k, v)| (*k, v.as_str())))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProviderError::new("TagResource", "InvalidTag", e.to_string()))
}

/// Makes the topic's tags exactly the spec's plus the ownership tags.
async fn retag(
    sns: &aws_sdk_sns::Client,
    arn: &str,
    desired: Option<&BTreeMap<String, String>>,
    owner: &Owner,
) -> Result<(), ProviderError> {
    let current = list_tags(sns, arn).await?;
    let wanted = tags(desired, owner)?;
    let stale: Vec<String> = current.into_keys().filter(|k| !wanted.iter().any(|w| w.key() == k)).collect();
    if !stale.is_empty() {
        sns.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UntagResource", e))?;
    }
    sns.tag_resource()
        .resource_arn(arn)
        .set_tags(Some(wanted))
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("TagResource", e))?;
    Ok(())
}

/// The policy SNS gives a new topic: only the owning account may use it.
pub(super) fn default_policy(arn: &str) -> String {
    let account = arn.split(':').nth(4).unwrap_or_default();
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
                       "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}}
        }]
    })
    .to_string()
}
