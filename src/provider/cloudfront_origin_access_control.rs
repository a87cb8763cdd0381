//! `cloudfront_origin_access_control`: lets a distribution sign its requests to a private S3
//! bucket (the successor of origin access identities).
//!
//! The id is the OAC id. Read with GetOriginAccessControl (moto's GetOriginAccessControlConfig
//! fails). Updates and deletes send If-Match with the ETag of a read made just before. OACs
//! take no tags; their names are unique in the account, so an interrupted create is found by
//! name, and a name taken before the create is reported, never taken over.

use super::Fields;
use super::facets::Access;
use super::planned;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::provider::Known;
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols,
};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::attrs::found;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{
    Aws, Created, Deleted, ErrorClass, FindReason, Found, Kind, Managed, Owner, Planned, Prior, ProviderError,
};

pub struct CloudFrontOriginAccessControl;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "a name unique in the account")
            .identity()
            .named(super::names::NameRule::OriginAccessControl),
        Attribute::optional("description", AttrType::String, "what it is for"),
        Attribute::optional(
            "origin_type",
            AttrType::Enum(&["s3", "mediastore", "lambda", "mediapackagev2"]),
            "[default: s3]",
        ),
        Attribute::optional(
            "signing_behavior",
            AttrType::Enum(&["always", "never", "no-override"]),
            "[default: always]",
        ),
        Attribute::optional("signing_protocol", AttrType::Enum(&["sigv4"]), "[default: sigv4]"),
        Attribute::computed("oac_id", "the origin access control id"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct AccessControl {
    name: String,
    description: Option<String>,
    origin_type: Option<String>,
    signing_behavior: Option<String>,
    signing_protocol: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessControlComputed {
    oac_id: String,
}

#[async_trait]
impl Kind for CloudFrontOriginAccessControl {
    const NAME: &'static str = "cloudfront_origin_access_control";
    type Spec = AccessControl;
    type Computed = AccessControlComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, spec: &mut AccessControlPlanned) {
        for (value, default) in [
            (&mut spec.origin_type, "s3"),
            (&mut spec.signing_behavior, "always"),
            (&mut spec.signing_protocol, "sigv4"),
        ] {
            value.get_or_insert_with(|| Known::Known(default.into()));
        }
        planned::unset_when(&mut spec.description, &String::new());
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Prior<AccessControl, AccessControlComputed>,
    ) -> Result<Option<(AccessControl, AccessControlComputed)>, ProviderError> {
        let got = aws.cloudfront().await.get_origin_access_control().id(id).send().await;
        let got = got.map_err(|e| ProviderError::from_sdk("GetOriginAccessControl", e));
        let Some(config) = found(got)?.and_then(|o| o.origin_access_control?.origin_access_control_config) else {
            return Ok(None);
        };
        let spec = AccessControl {
            name: config.name().to_string(),
            description: config.description().map(str::to_string),
            origin_type: Some(config.origin_access_control_origin_type().as_str().to_string()),
            signing_behavior: Some(config.signing_behavior().as_str().to_string()),
            signing_protocol: Some(config.signing_protocol().as_str().to_string()),
        };
        Ok(Some((spec, AccessControlComputed { oac_id: id.to_string() })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &AccessControl,
        _owner: &Owner,
    ) -> Result<Created<AccessControlComputed, Self::Spec>, ProviderError> {
        let out = aws
            .cloudfront()
            .await
            .create_origin_access_control()
            .origin_access_control_config(config(spec)?)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateOriginAccessControl", e))?;
        let id = out
            .origin_access_control()
            .map(|o| o.id().to_string())
            .ok_or_else(|| ProviderError::unexpected("CreateOriginAccessControl", "no OriginAccessControl"))?;
        Ok(Created::new(id.clone(), AccessControlComputed { oac_id: id }))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &AccessControl,
        _changed: &[AccessControlField],
        _owner: &Owner,
    ) -> Result<Option<AccessControlComputed>, ProviderError> {
        let cloudfront = aws.cloudfront().await;
        let etag = etag(cloudfront, id).await?;
        cloudfront
            .update_origin_access_control()
            .id(id)
            .if_match(etag)
            .origin_access_control_config(config(spec)?)
            .send()
            .await
            .map_err(|e| conflict(ProviderError::from_sdk("UpdateOriginAccessControl", e)))?;
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &AccessControl,
        owner: &Owner,
        reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let listed = aws.cloudfront().await.list_origin_access_controls().into_paginator().items().send();
        let all = listed.try_collect().await.map_err(|e| ProviderError::from_sdk("ListOriginAccessControls", e))?;
        Ok(all.iter().find(|o| o.name() == spec.name).map(|o| owner.judge_untagged(o.id(), reason, None)))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<AccessControl, AccessControlComputed>,
    ) -> Result<Deleted, ProviderError> {
        let cloudfront = aws.cloudfront().await;
        let etag = etag(cloudfront, id).await?;
        let deleted = cloudfront.delete_origin_access_control().id(id).if_match(etag).send().await;
        deleted.map_err(|e| conflict(ProviderError::from_sdk("DeleteOriginAccessControl", e)))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<AccessControlPlanned>> {
        Some(self)
    }
}

impl Access<AccessControlPlanned> for CloudFrontOriginAccessControl {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["cloudfront:GetOriginAccessControl", "cloudfront:ListOriginAccessControls"],
            write: &["cloudfront:CreateOriginAccessControl", "cloudfront:UpdateOriginAccessControl"],
            delete: &["cloudfront:DeleteOriginAccessControl"],
            unscoped: &["cloudfront:ListOriginAccessControls", "cloudfront:CreateOriginAccessControl"],
        }
    }

    fn deployer_arns(&self, _spec: &AccessControlPlanned, scope: &ArnScope) -> Vec<String> {
        // The id is CloudFront's: any origin access control of the account.
        vec![scope.arn("cloudfront", "", &scope.account, "origin-access-control/*")]
    }
}

/// A stale ETag, or an OAC still held by a distribution being deleted: try again.
fn conflict(e: ProviderError) -> ProviderError {
    match e.code.as_str() {
        "PreconditionFailed" | "OriginAccessControlInUse" => e.with_class(ErrorClass::Conflict),
        _ => e,
    }
}

async fn etag(cloudfront: &aws_sdk_cloudfront::Client, id: &str) -> Result<String, ProviderError> {
    let out = cloudfront
        .get_origin_access_control()
        .id(id)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("GetOriginAccessControl", e))?;
    Ok(out.e_tag().unwrap_or_default().to_string())
}

fn config(spec: &AccessControl) -> Result<OriginAccessControlConfig, ProviderError> {
    OriginAccessControlConfig::builder()
        .name(&spec.name)
        .set_description(spec.description.clone())
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::from(
            spec.origin_type.as_deref().unwrap_or("s3"),
        ))
        .signing_behavior(OriginAccessControlSigningBehaviors::from(
            spec.signing_behavior.as_deref().unwrap_or("always"),
        ))
        .signing_protocol(OriginAccessControlSigningProtocols::from(
            spec.signing_protocol.as_deref().unwrap_or("sigv4"),
        ))
        .build()
        .map_err(|e| ProviderError::new("CreateOriginAccessControl", "InvalidArgument", e.to_string()))
}
