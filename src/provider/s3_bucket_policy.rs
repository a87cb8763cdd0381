//! `s3_bucket_policy`: a bucket's policy as its own resource, so a policy that names a
//! distribution (which names the bucket) makes no cycle.
//!
//! The id is the bucket name. The policy is checked as JSON before it is sent (moto accepts
//! invalid JSON and then fails every object call on the bucket) and compared normalised.
//! Putting it is idempotent; a bucket that has a policy is where an interrupted create put it.

use crate::addr::ResourceAddr;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::{self, Grant};
use crate::value::Attrs;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::attrs::found;
use super::s3_bucket::in_bucket_region;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, NoComputed, Owner, Prior, ProviderError};

pub struct S3BucketPolicy;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("bucket", AttrType::String, "the bucket's name").force_new(),
        Attribute::required("policy", AttrType::Policy, "the bucket policy document"),
    ],
};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketPolicy {
    bucket: String,
    policy: Value,
}

#[async_trait]
impl Kind for S3BucketPolicy {
    const NAME: &'static str = "s3_bucket_policy";
    type Spec = BucketPolicy;
    type Computed = NoComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    const DEPLOYER: Deployer = Deployer {
        read: &["s3:GetBucketPolicy"],
        write: &["s3:PutBucketPolicy"],
        delete: &["s3:DeleteBucketPolicy"],
        unscoped: &[],
    };

    fn deployer_arns(&self, attrs: &Attrs, scope: &ArnScope) -> Vec<String> {
        vec![scope.arn("s3", "", "", &ArnScope::part(attrs.get("bucket")))]
    }

    fn grants(&self, _addr: &ResourceAddr, attrs: &Attrs) -> Vec<Grant> {
        permissions::of_resource_policy(attrs)
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Prior<BucketPolicy, NoComputed>,
    ) -> Result<Option<(BucketPolicy, NoComputed)>, ProviderError> {
        let policy = in_bucket_region(aws, id, move |s3| async move { get(&s3, id).await }).await?;
        Ok(policy.map(|policy| (BucketPolicy { bucket: id.to_string(), policy }, NoComputed {})))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &BucketPolicy,
        _owner: &Owner,
    ) -> Result<Created<NoComputed>, ProviderError> {
        in_bucket_region(aws, &spec.bucket, move |s3| async move { put(&s3, &spec.bucket, &spec.policy).await })
            .await?;
        Ok(Created::new(spec.bucket.clone(), NoComputed {}))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &BucketPolicy,
        _changed: &[&str],
        _owner: &Owner,
    ) -> Result<Option<NoComputed>, ProviderError> {
        in_bucket_region(aws, id, move |s3| async move { put(&s3, id, &spec.policy).await }).await?;
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &BucketPolicy,
        _owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let policy = in_bucket_region(aws, &spec.bucket, move |s3| async move { get(&s3, &spec.bucket).await }).await?;
        Ok(policy.map(|_| Found::Ours { id: spec.bucket.clone() }))
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: Option<&BucketPolicy>) -> Result<Deleted, ProviderError> {
        in_bucket_region(aws, id, move |s3| async move {
            let deleted = s3.delete_bucket_policy().bucket(id).send().await;
            deleted.map(|_| ()).map_err(|e| ProviderError::from_sdk("DeleteBucketPolicy", e))
        })
        .await?;
        Ok(Deleted::Yes)
    }
}

/// The bucket's policy, or `None` without one (or without the bucket).
async fn get(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<Value>, ProviderError> {
    let got = s3.get_bucket_policy().bucket(bucket).send().await;
    let Some(out) = found(got.map_err(|e| ProviderError::from_sdk("GetBucketPolicy", e)))? else { return Ok(None) };
    Ok(Some(out.policy().map_or(Value::Null, |p| json!(p))))
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, policy: &Value) -> Result<(), ProviderError> {
    let Value::Object(_) = policy else {
        return Err(ProviderError::new("PutBucketPolicy", "MalformedPolicy", format!("not a JSON document: {policy}")));
    };
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy.to_string())
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutBucketPolicy", e))?;
    Ok(())
}
