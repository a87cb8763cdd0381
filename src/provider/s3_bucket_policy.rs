//! `s3_bucket_policy`: a bucket's policy as its own resource, so a policy that names a
//! distribution (which names the bucket) makes no cycle.
//!
//! The id is the bucket name. The policy is checked as JSON before it is sent (moto accepts
//! invalid JSON and then fails every object call on the bucket) and compared normalised.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::attrs::{build, found, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct S3BucketPolicy;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("bucket", AttrType::String, "the bucket's name").force_new(),
        Attribute::required("policy", AttrType::Policy, "the bucket policy document"),
    ],
};

#[async_trait]
impl ResourceKind for S3BucketPolicy {
    fn kind(&self) -> &'static str {
        "s3_bucket_policy"
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
        let got = aws.s3().await.get_bucket_policy().bucket(id).send().await;
        let Some(out) = found(got.map_err(|e| ProviderError::from_sdk("GetBucketPolicy", e)))? else { return Ok(None) };
        let policy = out.policy().map_or(Value::Null, |p| json!(p));
        Ok(Some(build([("bucket", json!(id)), ("policy", policy)])))
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
        let s3 = aws.s3().await;
        s3.delete_bucket_policy()
            .bucket(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteBucketPolicy", e))?;
        Ok(())
    }
}

async fn put(aws: &Aws, bucket: &str, desired: &Attrs) -> Result<(), ProviderError> {
    let policy = match desired.get("policy") {
        Some(Value::Object(doc)) => Value::Object(doc.clone()).to_string(),
        other => {
            let shown = other.map(Value::to_string).unwrap_or_default();
            return Err(ProviderError::new(
                "PutBucketPolicy",
                "MalformedPolicy",
                format!("not a JSON document: {shown}"),
            ));
        }
    };
    let s3 = aws.s3().await;
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutBucketPolicy", e))?;
    Ok(())
}
