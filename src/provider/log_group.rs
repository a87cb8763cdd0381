//! `log_group`: a CloudWatch Logs log group with its retention and tags.
//!
//! The id is the group's name. Lambda writes a function's logs to `/aws/lambda/<name>` and, on
//! the first invocation, makes that group itself if it does not exist, with no retention (logs
//! kept forever, billed forever) and nothing managing it. Declared here and made before the
//! function (the function `depends_on` it), the group is the stack's: its retention is what the
//! spec says, and destroy deletes it with the function.
//!
//! `CreateLogGroup` takes the tags, the ownership tags included; the retention follows as the
//! create's deferred update. Renaming replaces the group (and its logs).

use super::Fields;
use super::facets::Access;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::provider::{DeclaredAs, KnownValue};
use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::ownership::is_engine_tag;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::typed::cannot_update;
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Planned, Prior, ProviderError};
use super::{Declared, Finding};

pub struct LogGroup;

/// The retention periods CloudWatch Logs accepts, in days.
const RETENTION_DAYS: &[i64] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the group's name, e.g. /aws/lambda/FUNCTION")
            .force_new()
            .identity()
            .named(super::names::NameRule::LogGroup),
        Attribute::optional(
            "retention_in_days",
            AttrType::Int,
            "how long events are kept (1, 3, 5, 7, 14, 30, ... 3653) [default: forever]",
        ),
        Attribute::optional("tags", AttrType::Map(&AttrType::String), "tags on the group"),
        Attribute::computed("arn", "the group's ARN (without the `:*` suffix)"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Group {
    name: String,
    retention_in_days: Option<i32>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupComputed {
    arn: String,
}

#[async_trait]
impl Kind for LogGroup {
    const NAME: &'static str = "log_group";
    type Spec = Group;
    type Computed = GroupComputed;
    const LIFECYCLE: crate::provider::Lifecycle = crate::provider::Lifecycle {
        lost_when_deleted: Some("the log events it holds"),
        ..crate::provider::Lifecycle::DEFAULT
    };

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn validate(&self, this: &DeclaredAs<'_, GroupPlanned>, _all: &[Declared]) -> Vec<Finding> {
        match this.spec.retention_in_days.known().copied() {
            Some(days) if !RETENTION_DAYS.contains(&days) => vec![
                Finding::at(
                    "retention_in_days",
                    format!("retention_in_days of {} is {days}: CloudWatch Logs takes only set periods", this.addr()),
                )
                .help(format!("one of {}", RETENTION_DAYS.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))),
            ],
            _ => vec![],
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Prior<Group, GroupComputed>,
    ) -> Result<Option<(Group, GroupComputed)>, ProviderError> {
        let Some(group) = aws.retried(|| describe(aws, id)).await? else { return Ok(None) };
        let arn = bare_arn(group.arn().unwrap_or_default());
        let tags = if managed.has("tags") {
            let mut tags = aws.retried(|| list_tags(aws, &arn)).await?;
            tags.retain(|k, _| !is_engine_tag(k));
            Some(tags)
        } else {
            None
        };
        // Reported even when unmanaged (it costs nothing): the snapshot drift compares.
        let spec = Group { name: id.to_string(), retention_in_days: group.retention_in_days(), tags };
        Ok(Some((spec, GroupComputed { arn })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Group,
        owner: &Owner,
    ) -> Result<Created<GroupComputed, Self::Spec>, ProviderError> {
        let tags = spec
            .tags
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(owner.tags().into_iter().map(|(k, v)| (k.to_string(), v)))
            .collect();
        let logs = aws.logs().await;
        let created = logs.create_log_group().log_group_name(&spec.name).set_tags(Some(tags)).send().await;
        created.map_err(|e| ProviderError::from_sdk("CreateLogGroup", e))?;
        let arn = format!(
            "arn:{}:logs:{}:{}:log-group:{}",
            aws.partition().await?.name,
            aws.region().await,
            aws.account_id().await?,
            spec.name
        );
        // As sent: the retention the update right after sets, tags read only where managed.
        let observed = spec;
        Ok(Created::new(spec.name.clone(), GroupComputed { arn })
            .deferring(&["retention_in_days"], &[])
            .observed(observed.clone()))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Group,
        changed: &[GroupField],
        owner: &Owner,
    ) -> Result<Option<GroupComputed>, ProviderError> {
        let logs = aws.logs().await;
        for &attr in changed {
            match attr {
                GroupField::RetentionInDays => match spec.retention_in_days {
                    Some(days) => {
                        let put = logs.put_retention_policy().log_group_name(id).retention_in_days(days).send().await;
                        put.map_err(|e| ProviderError::from_sdk("PutRetentionPolicy", e))?;
                    }
                    None => {
                        let deleted = logs.delete_retention_policy().log_group_name(id).send().await;
                        deleted.map_err(|e| ProviderError::from_sdk("DeleteRetentionPolicy", e))?;
                    }
                },
                GroupField::Tags => {
                    let arn = describe(aws, id)
                        .await?
                        .map(|g| bare_arn(g.arn().unwrap_or_default()))
                        .ok_or_else(|| ProviderError::new("DescribeLogGroups", "ResourceNotFoundException", id))?;
                    retag(aws, &arn, spec.tags.as_ref(), owner).await?;
                }
                GroupField::Name => return Err(cannot_update(Self::NAME, attr.name())),
            }
        }
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Group,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let Some(group) = describe(aws, &spec.name).await? else { return Ok(None) };
        let tags = list_tags(aws, &bare_arn(group.arn().unwrap_or_default())).await?;
        Ok(Some(owner.judge_tagged_at_create(&spec.name, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Group, GroupComputed>,
    ) -> Result<Deleted, ProviderError> {
        let deleted = aws.logs().await.delete_log_group().log_group_name(id).send().await;
        match deleted.map_err(|e| ProviderError::from_sdk("DeleteLogGroup", e)) {
            Ok(_) => Ok(Deleted::Yes),
            Err(e) if e.is_not_found() => Ok(Deleted::Yes),
            Err(e) => Err(e),
        }
    }

    fn access(&self) -> Option<&dyn Access<GroupPlanned>> {
        Some(self)
    }
}

impl Access<GroupPlanned> for LogGroup {
    // DescribeLogGroups is authorised on every group of the account and region.
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["logs:DescribeLogGroups", "logs:ListTagsForResource"],
            write: &[
                "logs:CreateLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
            ],
            delete: &["logs:DeleteLogGroup"],
            // DescribeLogGroups is authorised on every group of the account and region.
            unscoped: &["logs:DescribeLogGroups"],
        }
    }

    fn deployer_arns(&self, spec: &GroupPlanned, scope: &ArnScope) -> Vec<String> {
        let name = ArnScope::part(Some(spec.name.text()));
        let group = scope.arn("logs", &scope.region, &scope.account, &format!("log-group:{name}"));
        vec![group.clone(), format!("{group}:*")]
    }
}

/// The group named exactly `name`, or `None` (DescribeLogGroups matches by prefix).
async fn describe(aws: &Aws, name: &str) -> Result<Option<aws_sdk_cloudwatchlogs::types::LogGroup>, ProviderError> {
    let logs = aws.logs().await;
    let mut pages = logs.describe_log_groups().log_group_name_prefix(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ProviderError::from_sdk("DescribeLogGroups", e))?;
        if let Some(group) = page.log_groups().iter().find(|g| g.log_group_name() == Some(name)) {
            return Ok(Some(group.clone()));
        }
    }
    Ok(None)
}

/// A group's ARN as the tagging calls take it: DescribeLogGroups adds `:*`.
fn bare_arn(arn: &str) -> String {
    arn.strip_suffix(":*").unwrap_or(arn).to_string()
}

async fn list_tags(aws: &Aws, arn: &str) -> Result<BTreeMap<String, String>, ProviderError> {
    let out = aws.logs().await.list_tags_for_resource().resource_arn(arn).send().await;
    let out = out.map_err(|e| ProviderError::from_sdk("ListTagsForResource", e))?;
    Ok(out.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default())
}

/// Makes the group's tags exactly the spec's plus the ownership tags.
async fn retag(
    aws: &Aws,
    arn: &str,
    desired: Option<&BTreeMap<String, String>>,
    owner: &Owner,
) -> Result<(), ProviderError> {
    let logs = aws.logs().await;
    let wanted: BTreeMap<String, String> = desired
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(owner.tags().into_iter().map(|(k, v)| (k.to_string(), v)))
        .collect();
    let stale: Vec<String> = list_tags(aws, arn).await?.into_keys().filter(|k| !wanted.contains_key(k)).collect();
    if !stale.is_empty() {
        let untag = logs.untag_resource().resource_arn(arn).set_tag_keys(Some(stale)).send().await;
        untag.map_err(|e| ProviderError::from_sdk("UntagResource", e))?;
    }
    let tag = logs.tag_resource().resource_arn(arn).set_tags(Some(wanted.into_iter().collect())).send().await;
    tag.map_err(|e| ProviderError::from_sdk("TagResource", e))?;
    Ok(())
}
