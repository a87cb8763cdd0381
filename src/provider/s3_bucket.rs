//! `s3_bucket`: a bucket with its CORS rules, tags and public access block.
//!
//! The id is the bucket name. Renaming replaces the bucket (S3 cannot rename). Only the
//! settings the spec manages are read, one request each, concurrently.

use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CorsConfiguration, CorsRule, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    Tag, Tagging,
};
use serde_json::{Value, json};

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct S3Bucket;

/// The bucket settings that are separate S3 APIs, each read and written only when the spec sets it.
const SETTINGS: [&str; 3] = ["cors_rules", "tags", "public_access_block"];

const CORS_RULE: &[Attribute] = &[
    Attribute::optional("id", AttrType::String, "a name for the rule"),
    Attribute::required(
        "allowed_methods",
        AttrType::List(&AttrType::Enum(&["GET", "PUT", "POST", "DELETE", "HEAD"])),
        "HTTP methods the origins may use",
    ),
    Attribute::required(
        "allowed_origins",
        AttrType::List(&AttrType::String),
        "origins allowed to make cross-origin requests",
    ),
    Attribute::optional("allowed_headers", AttrType::List(&AttrType::String), "request headers allowed in a preflight"),
    Attribute::optional("expose_headers", AttrType::List(&AttrType::String), "response headers the browser may read"),
    Attribute::optional("max_age_seconds", AttrType::Int, "how long a browser may cache the preflight response"),
];

const PUBLIC_ACCESS_BLOCK: &[Attribute] = &[
    Attribute::optional("block_public_acls", AttrType::Bool, "reject requests that grant public ACLs"),
    Attribute::optional("ignore_public_acls", AttrType::Bool, "ignore public ACLs on the bucket and its objects"),
    Attribute::optional("block_public_policy", AttrType::Bool, "reject bucket policies that grant public access"),
    Attribute::optional("restrict_public_buckets", AttrType::Bool, "restrict access to buckets with public policies"),
];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the globally unique bucket name").force_new(),
        Attribute::optional(
            "cors_rules",
            AttrType::List(&AttrType::Object(CORS_RULE)),
            "CORS rules, in the order S3 evaluates them",
        ),
        Attribute::optional("tags", AttrType::Map(&AttrType::String), "tags on the bucket"),
        Attribute::optional(
            "public_access_block",
            AttrType::Object(PUBLIC_ACCESS_BLOCK),
            "the bucket's public access block",
        ),
        Attribute::computed("arn", "arn:aws:s3:::NAME"),
        Attribute::computed("bucket_regional_domain_name", "NAME.s3.REGION.amazonaws.com, for CloudFront origins"),
    ],
};

#[async_trait]
impl ResourceKind for S3Bucket {
    fn kind(&self) -> &'static str {
        "s3_bucket"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        super::normalize::by_schema(&SCHEMA, attrs);
        if let Some(Value::Array(rules)) = attrs.get_mut("cors_rules") {
            rules.iter_mut().filter_map(Value::as_object_mut).for_each(normalize_cors_rule);
        }
        // S3 reports all four flags; a flag left out is false, and all false is no block.
        if let Some(Value::Object(pab)) = attrs.get_mut("public_access_block") {
            for flag in PUBLIC_ACCESS_BLOCK {
                pab.entry(flag.name).or_insert(Value::Bool(false));
            }
            if pab.values().all(|v| v == &Value::Bool(false)) {
                attrs.insert("public_access_block".into(), Value::Null);
            }
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let s3 = aws.s3().await;
        // A bucket whose settings are read needs no HeadBucket: each read of a missing bucket
        // fails with NoSuchBucket. One request saved per bucket.
        let reads_settings = SETTINGS.iter().any(|a| managed.has(a));
        if !reads_settings {
            match s3.head_bucket().bucket(id).send().await {
                Ok(_) => {}
                Err(e) => {
                    let e = ProviderError::from_sdk("HeadBucket", e);
                    return if e.is_not_found() { Ok(None) } else { Err(e) };
                }
            }
        }
        let settings = tokio::try_join!(
            async { if managed.has("cors_rules") { read_cors(s3, id).await.map(Some) } else { Ok(None) } },
            async { if managed.has("tags") { read_tags(s3, id).await.map(Some) } else { Ok(None) } },
            async {
                if managed.has("public_access_block") {
                    read_public_access_block(s3, id).await.map(Some)
                } else {
                    Ok(None)
                }
            },
        );
        let (cors, tags, pab) = match settings {
            Ok(read) => read,
            Err(e) if e.code == "NoSuchBucket" => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut attrs = computed(id, &aws.region().await);
        attrs.insert("name".into(), json!(id));
        for (name, v) in SETTINGS.into_iter().zip([cors, tags, pab]) {
            if let Some(v) = v {
                attrs.insert(name.into(), v);
            }
        }
        Ok(Some(attrs))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let s3 = aws.s3().await;
        let name = str_attr(desired, "name");
        let region = aws.region().await;
        let mut req = s3.create_bucket().bucket(name);
        // us-east-1 is the one region that refuses an explicit location constraint.
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        req.send().await.map_err(|e| ProviderError::from_sdk("CreateBucket", e))?;
        let settings: Vec<&str> = SETTINGS.into_iter().filter(|a| desired.contains_key(*a)).collect();
        put_settings(aws, name, desired, &settings).await?;
        Ok(Created { id: name.to_string(), attrs: computed(name, &region) })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, changed: &[&str]) -> Result<Attrs, ProviderError> {
        put_settings(aws, id, desired, changed).await?;
        Ok(computed(id, &aws.region().await))
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        aws.s3()
            .await
            .delete_bucket()
            .bucket(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteBucket", e))?;
        Ok(())
    }
}

fn computed(name: &str, region: &str) -> Attrs {
    let mut attrs = Attrs::new();
    attrs.insert("arn".into(), json!(format!("arn:aws:s3:::{name}")));
    attrs.insert("bucket_regional_domain_name".into(), json!(format!("{name}.s3.{region}.amazonaws.com")));
    attrs
}

fn str_attr<'a>(attrs: &'a Attrs, name: &str) -> &'a str {
    attrs.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Methods are upper case, header names compare case-insensitively, and the order of
/// methods, origins and headers within a rule carries no meaning.
fn normalize_cors_rule(rule: &mut Attrs) {
    for (key, lower) in
        [("allowed_methods", false), ("allowed_origins", false), ("allowed_headers", true), ("expose_headers", true)]
    {
        if let Some(Value::Array(items)) = rule.get_mut(key) {
            for item in items.iter_mut() {
                if let Value::String(s) = item {
                    *s = if lower {
                        s.to_ascii_lowercase()
                    } else if key == "allowed_methods" {
                        s.to_ascii_uppercase()
                    } else {
                        s.clone()
                    };
                }
            }
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            items.dedup();
        }
    }
}

/// Writes each named setting: an empty value removes it.
async fn put_settings(aws: &Aws, bucket: &str, desired: &Attrs, which: &[&str]) -> Result<(), ProviderError> {
    let s3 = aws.s3().await;
    for &attr in which {
        let value = desired.get(attr).unwrap_or(&Value::Null);
        match attr {
            "cors_rules" => put_cors(s3, bucket, value).await?,
            "tags" => put_tags(s3, bucket, value).await?,
            "public_access_block" => put_public_access_block(s3, bucket, value).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn read_cors(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Value, ProviderError> {
    let out = match s3.get_bucket_cors().bucket(bucket).send().await {
        Ok(out) => out,
        Err(e) => {
            let e = ProviderError::from_sdk("GetBucketCors", e);
            return if e.code == "NoSuchCORSConfiguration" { Ok(json!([])) } else { Err(e) };
        }
    };
    let rules = out
        .cors_rules()
        .iter()
        .map(|r| {
            let mut rule = Attrs::new();
            if let Some(id) = r.id() {
                rule.insert("id".into(), json!(id));
            }
            rule.insert("allowed_methods".into(), json!(r.allowed_methods()));
            rule.insert("allowed_origins".into(), json!(r.allowed_origins()));
            rule.insert("allowed_headers".into(), json!(r.allowed_headers()));
            rule.insert("expose_headers".into(), json!(r.expose_headers()));
            if let Some(age) = r.max_age_seconds() {
                rule.insert("max_age_seconds".into(), json!(age));
            }
            Value::Object(rule)
        })
        .collect();
    Ok(Value::Array(rules))
}

async fn put_cors(s3: &aws_sdk_s3::Client, bucket: &str, rules: &Value) -> Result<(), ProviderError> {
    let rules = rules.as_array().map(Vec::as_slice).unwrap_or_default();
    if rules.is_empty() {
        s3.delete_bucket_cors()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteBucketCors", e))?;
        return Ok(());
    }
    let strings = |r: &Value, k: &str| -> Vec<String> {
        r.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let mut config = CorsConfiguration::builder();
    for r in rules {
        let rule = CorsRule::builder()
            .set_id(r.get("id").and_then(Value::as_str).map(str::to_string))
            .set_allowed_methods(Some(strings(r, "allowed_methods")))
            .set_allowed_origins(Some(strings(r, "allowed_origins")))
            .set_allowed_headers(Some(strings(r, "allowed_headers")).filter(|v| !v.is_empty()))
            .set_expose_headers(Some(strings(r, "expose_headers")).filter(|v| !v.is_empty()))
            .set_max_age_seconds(r.get("max_age_seconds").and_then(Value::as_i64).map(|n| n as i32))
            .build()
            .map_err(|e| ProviderError::new("PutBucketCors", "InvalidCorsRule", e.to_string()))?;
        config = config.cors_rules(rule);
    }
    let config = config.build().map_err(|e| ProviderError::new("PutBucketCors", "InvalidCorsRule", e.to_string()))?;
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(config)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutBucketCors", e))?;
    Ok(())
}

async fn read_tags(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Value, ProviderError> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(Value::Object(out.tag_set().iter().map(|t| (t.key().to_string(), json!(t.value()))).collect())),
        Err(e) => {
            let e = ProviderError::from_sdk("GetBucketTagging", e);
            if e.code == "NoSuchTagSet" || e.code == "NoSuchTagSetError" { Ok(json!({})) } else { Err(e) }
        }
    }
}

async fn put_tags(s3: &aws_sdk_s3::Client, bucket: &str, tags: &Value) -> Result<(), ProviderError> {
    let tags = tags.as_object().cloned().unwrap_or_default();
    if tags.is_empty() {
        s3.delete_bucket_tagging()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteBucketTagging", e))?;
        return Ok(());
    }
    let tag_set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v.as_str().unwrap_or_default()).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProviderError::new("PutBucketTagging", "InvalidTag", e.to_string()))?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .map_err(|e| ProviderError::new("PutBucketTagging", "InvalidTag", e.to_string()))?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutBucketTagging", e))?;
    Ok(())
}

async fn read_public_access_block(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Value, ProviderError> {
    match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => Ok(out.public_access_block_configuration().map_or(Value::Null, |c| {
            json!({
                "block_public_acls": c.block_public_acls().unwrap_or(false),
                "ignore_public_acls": c.ignore_public_acls().unwrap_or(false),
                "block_public_policy": c.block_public_policy().unwrap_or(false),
                "restrict_public_buckets": c.restrict_public_buckets().unwrap_or(false),
            })
        })),
        Err(e) => {
            let e = ProviderError::from_sdk("GetPublicAccessBlock", e);
            if e.code == "NoSuchPublicAccessBlockConfiguration" { Ok(Value::Null) } else { Err(e) }
        }
    }
}

async fn put_public_access_block(s3: &aws_sdk_s3::Client, bucket: &str, pab: &Value) -> Result<(), ProviderError> {
    if pab.is_null() {
        s3.delete_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeletePublicAccessBlock", e))?;
        return Ok(());
    }
    let flag = |k: &str| pab.get(k).and_then(Value::as_bool).unwrap_or(false);
    let config = PublicAccessBlockConfiguration::builder()
        .block_public_acls(flag("block_public_acls"))
        .ignore_public_acls(flag("ignore_public_acls"))
        .block_public_policy(flag("block_public_policy"))
        .restrict_public_buckets(flag("restrict_public_buckets"))
        .build();
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(config)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutPublicAccessBlock", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_rules_differing_only_in_case_and_order_normalise_equal() {
        // Lower-case methods, mixed-case headers and reordered origins are the same rule to S3.
        let mut a: Attrs = serde_json::from_value(json!({"cors_rules": [{"allowed_methods": ["put", "GET"], "allowed_origins": ["https://b", "https://a"], "allowed_headers": ["Content-Type"], "expose_headers": []}]})).expect("object");
        let mut b: Attrs = serde_json::from_value(json!({"cors_rules": [{"allowed_methods": ["GET", "PUT"], "allowed_origins": ["https://a", "https://b"], "allowed_headers": ["content-type"]}]})).expect("object");
        S3Bucket.normalize(&mut a);
        S3Bucket.normalize(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn all_false_public_access_block_equals_none() {
        // S3 without a block and a block of four false flags mean the same thing.
        let mut a: Attrs = serde_json::from_value(json!({"public_access_block": {"block_public_acls": false, "ignore_public_acls": false, "block_public_policy": false, "restrict_public_buckets": false}})).expect("object");
        S3Bucket.normalize(&mut a);
        assert_eq!(a.get("public_access_block"), Some(&Value::Null));
    }
}
