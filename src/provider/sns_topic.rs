//! `sns_topic`: a standard topic with its display name, access policy and tags.
//!
//! The id is the topic ARN. Renaming replaces the topic. The policy is compared as parsed,
//! normalised JSON, since SNS returns it re-serialised.

use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use serde_json::{Value, json};

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct SnsTopic;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the topic name").force_new(),
        Attribute::optional("display_name", AttrType::String, "the display name used in SMS and email"),
        Attribute::optional("policy", AttrType::Policy, "the topic's access policy"),
        Attribute::optional("tags", AttrType::Map(&AttrType::String), "tags on the topic"),
        Attribute::computed("arn", "the topic ARN"),
    ],
};

#[async_trait]
impl ResourceKind for SnsTopic {
    fn kind(&self) -> &'static str {
        "sns_topic"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let sns = aws.sns().await;
        let attrs = match sns.get_topic_attributes().topic_arn(id).send().await {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) => {
                let e = ProviderError::from_sdk("GetTopicAttributes", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        let mut out = Attrs::new();
        out.insert("arn".into(), json!(id));
        out.insert("name".into(), json!(id.rsplit(':').next().unwrap_or(id)));
        if managed.has("display_name") {
            let name = attrs.get("DisplayName").filter(|s| !s.is_empty());
            out.insert("display_name".into(), name.map_or(Value::Null, |s| json!(s)));
        }
        if managed.has("policy") {
            out.insert("policy".into(), attrs.get("Policy").map_or(Value::Null, |p| json!(p)));
        }
        if managed.has("tags") {
            let tags = sns
                .list_tags_for_resource()
                .resource_arn(id)
                .send()
                .await
                .map_err(|e| ProviderError::from_sdk("ListTagsForResource", e))?;
            out.insert(
                "tags".into(),
                Value::Object(tags.tags().iter().map(|t| (t.key().to_string(), json!(t.value()))).collect()),
            );
        }
        Ok(Some(out))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let sns = aws.sns().await;
        let mut req = sns.create_topic().name(desired.get("name").and_then(Value::as_str).unwrap_or_default());
        if let Some(name) = desired.get("display_name").and_then(Value::as_str) {
            req = req.attributes("DisplayName", name);
        }
        if let Some(policy) = desired.get("policy").filter(|p| !p.is_null()) {
            req = req.attributes("Policy", policy.to_string());
        }
        req = req.set_tags(Some(tags(desired.get("tags"))?).filter(|t| !t.is_empty()));
        let out = req.send().await.map_err(|e| ProviderError::from_sdk("CreateTopic", e))?;
        let arn =
            out.topic_arn().ok_or_else(|| ProviderError::unexpected("CreateTopic", "no TopicArn in the response"))?;
        let mut attrs = Attrs::new();
        attrs.insert("arn".into(), json!(arn));
        Ok(Created { id: arn.to_string(), attrs })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, changed: &[&str]) -> Result<Attrs, ProviderError> {
        let sns = aws.sns().await;
        for &attr in changed {
            match attr {
                "display_name" => {
                    let name = desired.get("display_name").and_then(Value::as_str).unwrap_or_default();
                    set_attribute(sns, id, "DisplayName", name).await?;
                }
                "policy" => {
                    let policy = match desired.get("policy").filter(|p| !p.is_null()) {
                        Some(p) => p.to_string(),
                        // SNS cannot drop a policy: put back the one every new topic gets.
                        None => default_policy(id),
                    };
                    set_attribute(sns, id, "Policy", &policy).await?;
                }
                "tags" => retag(sns, id, desired.get("tags")).await?,
                _ => {}
            }
        }
        let mut attrs = Attrs::new();
        attrs.insert("arn".into(), json!(id));
        Ok(attrs)
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        aws.sns()
            .await
            .delete_topic()
            .topic_arn(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteTopic", e))?;
        Ok(())
    }
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

fn tags(v: Option<&Value>) -> Result<Vec<Tag>, ProviderError> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| Tag::builder().key(k).value(v.as_str().unwrap_or_default()).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProviderError::new("TagResource", "InvalidTag", e.to_string()))
}

/// Makes the topic's tags exactly `desired`: untag what is gone, tag the rest.
async fn retag(sns: &aws_sdk_sns::Client, arn: &str, desired: Option<&Value>) -> Result<(), ProviderError> {
    let current = sns
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListTagsForResource", e))?;
    let wanted = tags(desired)?;
    let stale: Vec<String> =
        current.tags().iter().map(|t| t.key().to_string()).filter(|k| !wanted.iter().any(|w| w.key() == k)).collect();
    if !stale.is_empty() {
        sns.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UntagResource", e))?;
    }
    if !wanted.is_empty() {
        sns.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(wanted))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("TagResource", e))?;
    }
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
