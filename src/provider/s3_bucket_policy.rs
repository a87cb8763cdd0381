//! `s3_bucket_policy`: a bucket's policy as its own resource, so a policy that names a
//! distribution (which names the bucket) makes no cycle.
//!
//! The id is the bucket name. The policy is checked as JSON before it is sent (moto accepts
//! invalid JSON and then fails every object call on the bucket) and compared normalised.
//! Putting it is idempotent.
//!
//! A bucket has one policy, and a bucket the stack adopted may have one already: the create
//! reads it first, and takes over only the spec's own document unless `allow_overwrite: true`;
//! what it found is recorded and put back on destroy (see [`super::singleton`]).

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

use super::attrs::found;
use super::s3_bucket::in_bucket_region;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::singleton::{self, ALLOW_OVERWRITE, REPLACED};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Planned, Prior, ProviderError};

pub struct S3BucketPolicy;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("bucket", AttrType::String, "the bucket's name").force_new().identity(),
        Attribute::required("policy", AttrType::Policy, "the bucket policy document"),
        ALLOW_OVERWRITE,
        REPLACED,
    ],
};

#[serde_with::skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct BucketPolicy {
    bucket: String,
    policy: Value,
    allow_overwrite: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BucketPolicyComputed {
    replaced: String,
}

#[async_trait]
impl Kind for S3BucketPolicy {
    const NAME: &'static str = "s3_bucket_policy";
    type Spec = BucketPolicy;
    type Computed = BucketPolicyComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn annotate(&self) -> Option<&dyn Annotate<BucketPolicyPlanned, Live<Self>>> {
        Some(self)
    }

    fn normalize(&self, spec: &mut BucketPolicyPlanned) {
        planned::unset_when(&mut spec.allow_overwrite, &false);
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        prior: &Prior<BucketPolicy, BucketPolicyComputed>,
    ) -> Result<Option<(BucketPolicy, BucketPolicyComputed)>, ProviderError> {
        let policy = in_bucket_region(aws, id, move |s3| async move { get(&s3, id).await }).await?;
        // What the create found and the overwrite setting are the engine's alone.
        let allow_overwrite = prior.spec().and_then(|p| p.allow_overwrite);
        let replaced = prior.computed.as_ref().map(|c| c.replaced.clone()).unwrap_or_default();
        Ok(policy.map(|policy| {
            (BucketPolicy { bucket: id.to_string(), policy, allow_overwrite }, BucketPolicyComputed { replaced })
        }))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &BucketPolicy,
        _owner: &Owner,
    ) -> Result<Created<BucketPolicyComputed, Self::Spec>, ProviderError> {
        let bucket = spec.bucket.as_str();
        let replaced = in_bucket_region(aws, bucket, move |s3| async move {
            let found = get(&s3, bucket).await?.map(super::normalize::policy);
            let desired = super::normalize::policy(spec.policy.clone());
            let holder = format!("the bucket {bucket}");
            let replaced = singleton::take_over(
                "PutBucketPolicy",
                "a policy",
                &holder,
                found,
                &desired,
                spec.allow_overwrite == Some(true),
            )?;
            put(&s3, bucket, &spec.policy).await?;
            Ok(replaced)
        })
        .await?;
        Ok(Created::new(spec.bucket.clone(), BucketPolicyComputed { replaced }))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &BucketPolicy,
        changed: &[BucketPolicyField],
        _owner: &Owner,
    ) -> Result<Option<BucketPolicyComputed>, ProviderError> {
        // allow_overwrite is the engine's alone: changing it changes nothing in AWS.
        if changed.iter().any(|c| *c != BucketPolicyField::AllowOverwrite) {
            in_bucket_region(aws, id, move |s3| async move { put(&s3, id, &spec.policy).await }).await?;
        }
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &BucketPolicy,
        _owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        // Only the spec's own document is what an interrupted create wrote; another is not ours.
        let policy = in_bucket_region(aws, &spec.bucket, move |s3| async move { get(&s3, &spec.bucket).await }).await?;
        let desired = super::normalize::policy(spec.policy.clone());
        Ok(policy.map(|found| match super::normalize::policy(found) == desired {
            true => Found::Ours { id: spec.bucket.clone() },
            false => Found::NotOurs { id: spec.bucket.clone(), why: "the bucket has another policy".into() },
        }))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        prior: &Prior<BucketPolicy, BucketPolicyComputed>,
    ) -> Result<Deleted, ProviderError> {
        // What the bucket had before the stack is put back; else the policy goes.
        let put_back = singleton::to_put_back(prior.computed.as_ref().map(|c| c.replaced.as_str()));
        let put_back = &put_back;
        in_bucket_region(aws, id, move |s3| async move {
            if let Some(policy) = put_back {
                return put(&s3, id, policy).await;
            }
            let deleted = s3.delete_bucket_policy().bucket(id).send().await;
            deleted.map(|_| ()).map_err(|e| ProviderError::from_sdk("DeleteBucketPolicy", e))
        })
        .await?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<BucketPolicyPlanned>> {
        Some(self)
    }
}

impl Annotate<BucketPolicyPlanned, Live<Self>> for S3BucketPolicy {
    fn annotate(&self, change: &ChangeView<'_, BucketPolicyPlanned, Live<Self>>) -> Vec<Annotation> {
        let allowed = change.desired.and_then(|d| d.allow_overwrite.as_ref());
        singleton::takes_over("a policy the bucket has", change.stage, allowed)
    }
}

impl Access<BucketPolicyPlanned> for S3BucketPolicy {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["s3:GetBucketPolicy"],
            write: &["s3:PutBucketPolicy"],
            delete: &["s3:DeleteBucketPolicy"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &BucketPolicyPlanned, scope: &ArnScope) -> Vec<String> {
        vec![scope.arn("s3", "", "", &ArnScope::part(Some(spec.bucket.text())))]
    }

    fn grants(&self, _addr: &ResourceAddr, spec: &BucketPolicyPlanned) -> Vec<Grant> {
        permissions::of_resource_policy(spec.policy.known())
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
