//! `cloudfront_origin_access_control`: lets a distribution sign its requests to a private S3
//! bucket (the successor of origin access identities).
//!
//! The id is the OAC id. Read with GetOriginAccessControl (moto's GetOriginAccessControlConfig
//! fails). Updates and deletes send If-Match with the ETag of a read made just before.

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols,
};
use serde_json::{Value, json};

use super::attrs::{build, found, opt_string, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct CloudFrontOriginAccessControl;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "a name unique in the account"),
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

#[async_trait]
impl ResourceKind for CloudFrontOriginAccessControl {
    fn kind(&self) -> &'static str {
        "cloudfront_origin_access_control"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        for (key, default) in [("origin_type", "s3"), ("signing_behavior", "always"), ("signing_protocol", "sigv4")] {
            attrs.entry(key).or_insert_with(|| json!(default));
        }
        if attrs.get("description") == Some(&json!("")) {
            attrs.remove("description");
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let got = aws.cloudfront().await.get_origin_access_control().id(id).send().await;
        let got = got.map_err(|e| ProviderError::from_sdk("GetOriginAccessControl", e));
        let Some(config) = found(got)?.and_then(|o| o.origin_access_control?.origin_access_control_config) else {
            return Ok(None);
        };
        Ok(Some(build([
            ("name", json!(config.name())),
            ("description", config.description().map_or(Value::Null, |d| json!(d))),
            ("origin_type", json!(config.origin_access_control_origin_type().as_str())),
            ("signing_behavior", json!(config.signing_behavior().as_str())),
            ("signing_protocol", json!(config.signing_protocol().as_str())),
            ("oac_id", json!(id)),
        ])))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let out = aws
            .cloudfront()
            .await
            .create_origin_access_control()
            .origin_access_control_config(config(desired)?)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateOriginAccessControl", e))?;
        let id = out.origin_access_control().map(|o| o.id().to_string()).unwrap_or_default();
        Ok(Created { id: id.clone(), attrs: build([("oac_id", json!(id))]) })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        let cloudfront = aws.cloudfront().await;
        let etag = etag(cloudfront, id).await?;
        cloudfront
            .update_origin_access_control()
            .id(id)
            .if_match(etag)
            .origin_access_control_config(config(desired)?)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateOriginAccessControl", e))?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let cloudfront = aws.cloudfront().await;
        let etag = etag(cloudfront, id).await?;
        let deleted = cloudfront.delete_origin_access_control().id(id).if_match(etag).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteOriginAccessControl", e))?;
        Ok(())
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

fn config(desired: &Attrs) -> Result<OriginAccessControlConfig, ProviderError> {
    OriginAccessControlConfig::builder()
        .name(string(desired, "name"))
        .set_description(opt_string(desired, "description").map(str::to_string))
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::from(
            opt_string(desired, "origin_type").unwrap_or("s3"),
        ))
        .signing_behavior(OriginAccessControlSigningBehaviors::from(
            opt_string(desired, "signing_behavior").unwrap_or("always"),
        ))
        .signing_protocol(OriginAccessControlSigningProtocols::from(
            opt_string(desired, "signing_protocol").unwrap_or("sigv4"),
        ))
        .build()
        .map_err(|e| ProviderError::new("CreateOriginAccessControl", "InvalidArgument", e.to_string()))
}
