//! `cloudfront_distribution`: a distribution serving one S3 origin through an origin access
//! control, under aliases with an ACM certificate (which must live in us-east-1).
//!
//! The id is the distribution id. Every update reads the config and its ETag, then sends
//! If-Match with it. A delete first disables the distribution and waits for that deployment,
//! as CloudFront requires. Creates and updates wait until the distribution is `Deployed`
//! unless `--no-wait`. The CallerReference is derived from the address and the config, so a
//! create retried after a crash finds the distribution it already made instead of a second one.
//! Fields a read does not echo (moto drops the origin's OAC id) keep their recorded value.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    Aliases, DefaultCacheBehavior, DistributionConfig, MinimumProtocolVersion, Origin, Origins, PriceClass,
    S3OriginConfig, SslSupportMethod, ViewerCertificate, ViewerProtocolPolicy,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::attrs::{boolean, build, found, opt_string, string, strings};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct CloudFrontDistribution;

/// The hosted zone id of every CloudFront distribution, for Route53 alias records.
const CLOUDFRONT_ZONE_ID: &str = "Z2FDTNDATAQYW2";
/// Real deployments take minutes; this is the longest we wait.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(45 * 60);

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("origin_domain_name", AttrType::String, "the bucket's regional domain name"),
        Attribute::required("origin_id", AttrType::String, "a name for the origin"),
        Attribute::optional("origin_access_control_id", AttrType::String, "the OAC that signs requests to the bucket"),
        Attribute::optional("enabled", AttrType::Bool, "serve requests [default: true]"),
        Attribute::optional("comment", AttrType::String, "a comment"),
        Attribute::optional(
            "aliases",
            AttrType::List(&AttrType::String),
            "extra domain names, e.g. assets.example.com",
        ),
        Attribute::optional("certificate_arn", AttrType::String, "ACM certificate for the aliases (us-east-1)"),
        Attribute::optional("default_root_object", AttrType::String, "object served for /"),
        Attribute::optional(
            "price_class",
            AttrType::Enum(&["PriceClass_100", "PriceClass_200", "PriceClass_All"]),
            "edge locations used",
        ),
        Attribute::optional(
            "cache_policy_id",
            AttrType::String,
            "cache policy of the default behaviour (a managed one by id)",
        ),
        Attribute::optional(
            "viewer_protocol_policy",
            AttrType::Enum(&["allow-all", "https-only", "redirect-to-https"]),
            "[default: redirect-to-https]",
        ),
        Attribute::computed("distribution_id", "the distribution id"),
        Attribute::computed("arn", "the distribution ARN, for bucket policies"),
        Attribute::computed("domain_name", "dxxxx.cloudfront.net"),
        Attribute::computed("hosted_zone_id", "CloudFront's hosted zone id, for alias records"),
        Attribute::computed("status", "InProgress or Deployed"),
    ],
};

#[async_trait]
impl ResourceKind for CloudFrontDistribution {
    fn kind(&self) -> &'static str {
        "cloudfront_distribution"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        super::normalize::by_schema(&SCHEMA, attrs);
        if let Some(Value::Array(aliases)) = attrs.get_mut("aliases") {
            for a in aliases.iter_mut() {
                if let Value::String(s) = a {
                    *s = s.trim_end_matches('.').to_ascii_lowercase();
                }
            }
            aliases.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
        for key in ["comment", "default_root_object"] {
            if attrs.get(key) == Some(&json!("")) {
                attrs.insert(key.into(), Value::Null);
            }
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let got = aws.cloudfront().await.get_distribution().id(id).send().await;
        let Some(d) =
            found(got.map_err(|e| ProviderError::from_sdk("GetDistribution", e)))?.and_then(|o| o.distribution)
        else {
            return Ok(None);
        };
        let mut attrs = computed(d.id(), d.arn(), d.domain_name(), d.status());
        let Some(c) = d.distribution_config() else { return Ok(Some(attrs)) };
        let origin = c.origins().and_then(|o| o.items().first());
        let cert = c.viewer_certificate().and_then(|v| v.acm_certificate_arn());
        let behaviour = c.default_cache_behavior();
        let text = |v: Option<&str>| v.filter(|s| !s.is_empty()).map_or(Value::Null, |s| json!(s));
        attrs.extend(build([
            ("origin_domain_name", json!(origin.map(|o| o.domain_name()))),
            ("origin_id", json!(origin.map(|o| o.id()))),
            ("origin_access_control_id", text(origin.and_then(|o| o.origin_access_control_id()))),
            ("enabled", json!(c.enabled())),
            ("comment", text(Some(c.comment()))),
            ("aliases", json!(c.aliases().map(|a| a.items()).unwrap_or_default())),
            ("certificate_arn", text(cert)),
            ("default_root_object", text(c.default_root_object())),
            ("price_class", c.price_class().map_or(Value::Null, |p| json!(p.as_str()))),
            ("cache_policy_id", text(behaviour.and_then(|b| b.cache_policy_id()))),
            ("viewer_protocol_policy", json!(behaviour.map(|b| b.viewer_protocol_policy().as_str()))),
        ]));
        // A field the API did not echo is not a change: keep what was last applied.
        for key in ["origin_access_control_id"] {
            if !attrs.contains_key(key)
                && managed.has(key)
                && let Some(v) = prior.get(key)
            {
                attrs.insert(key.into(), v.clone());
            }
        }
        Ok(Some(attrs))
    }

    async fn create(&self, aws: &Aws, addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let cloudfront = aws.cloudfront().await;
        let config = config(desired, &caller_reference(addr, desired))?;
        let out = cloudfront
            .create_distribution()
            .distribution_config(config)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateDistribution", e))?;
        let d = out.distribution().ok_or_else(|| ProviderError::unexpected("CreateDistribution", "no Distribution"))?;
        if !aws.options.no_wait {
            wait_deployed(cloudfront, d.id()).await?;
        }
        Ok(Created { id: d.id().to_string(), attrs: computed(d.id(), d.arn(), d.domain_name(), d.status()) })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        let cloudfront = aws.cloudfront().await;
        let (current, etag) = current_config(cloudfront, id).await?;
        let config = config(desired, current.caller_reference())?;
        cloudfront
            .update_distribution()
            .id(id)
            .if_match(etag)
            .distribution_config(config)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateDistribution", e))?;
        if !aws.options.no_wait {
            wait_deployed(cloudfront, id).await?;
        }
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let cloudfront = aws.cloudfront().await;
        let (current, etag) = current_config(cloudfront, id).await?;
        if current.enabled() {
            let mut disabled = current.clone();
            disabled.enabled = false;
            cloudfront
                .update_distribution()
                .id(id)
                .if_match(etag)
                .distribution_config(disabled)
                .send()
                .await
                .map_err(|e| ProviderError::from_sdk("UpdateDistribution", e))?;
        }
        // Deleting needs the disabled config deployed, whatever --no-wait says.
        wait_deployed(cloudfront, id).await?;
        let fresh = cloudfront
            .get_distribution()
            .id(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("GetDistribution", e))?;
        cloudfront
            .delete_distribution()
            .id(id)
            .if_match(fresh.e_tag().unwrap_or_default())
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteDistribution", e))?;
        Ok(())
    }
}

fn computed(id: &str, arn: &str, domain: &str, status: &str) -> Attrs {
    build([
        ("distribution_id", json!(id)),
        ("arn", json!(arn)),
        ("domain_name", json!(domain)),
        ("hosted_zone_id", json!(CLOUDFRONT_ZONE_ID)),
        ("status", json!(status)),
    ])
}

/// The same address and config give the same reference, so CloudFront treats a retried
/// create as the one it already performed.
fn caller_reference(addr: &ResourceAddr, desired: &Attrs) -> String {
    let digest = Sha256::digest(Value::Object(desired.clone()).to_string());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("cruddur-infra-{addr}-{hex}")
}

async fn current_config(
    cloudfront: &aws_sdk_cloudfront::Client,
    id: &str,
) -> Result<(DistributionConfig, String), ProviderError> {
    let out = cloudfront
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("GetDistributionConfig", e))?;
    let etag = out.e_tag().unwrap_or_default().to_string();
    let config = out
        .distribution_config
        .ok_or_else(|| ProviderError::unexpected("GetDistributionConfig", "no DistributionConfig"))?;
    Ok((config, etag))
}

/// Polls until the distribution is `Deployed`, quickly at first.
async fn wait_deployed(cloudfront: &aws_sdk_cloudfront::Client, id: &str) -> Result<(), ProviderError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let out = cloudfront
            .get_distribution()
            .id(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("GetDistribution", e))?;
        if out.distribution().is_some_and(|d| d.status() == "Deployed") {
            return Ok(());
        }
        if started.elapsed() > DEPLOY_TIMEOUT {
            return Err(ProviderError::new(
                "GetDistribution",
                "DeploymentTimeout",
                format!("{id} was not Deployed after 45 minutes"),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(20));
    }
}

fn config(desired: &Attrs, caller_reference: &str) -> Result<DistributionConfig, ProviderError> {
    let invalid = |e: aws_sdk_cloudfront::error::BuildError| {
        ProviderError::new("DistributionConfig", "InvalidArgument", e.to_string())
    };
    let origin_id = string(desired, "origin_id");
    let origin = Origin::builder()
        .id(origin_id)
        .domain_name(string(desired, "origin_domain_name"))
        .origin_access_control_id(opt_string(desired, "origin_access_control_id").unwrap_or_default())
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .map_err(invalid)?;
    let behaviour = DefaultCacheBehavior::builder()
        .target_origin_id(origin_id)
        .viewer_protocol_policy(ViewerProtocolPolicy::from(
            opt_string(desired, "viewer_protocol_policy").unwrap_or("redirect-to-https"),
        ))
        .set_cache_policy_id(opt_string(desired, "cache_policy_id").map(str::to_string))
        .build()
        .map_err(invalid)?;
    let aliases = strings(desired.get("aliases"));
    let certificate = match opt_string(desired, "certificate_arn") {
        Some(arn) => ViewerCertificate::builder()
            .acm_certificate_arn(arn)
            .ssl_support_method(SslSupportMethod::SniOnly)
            .minimum_protocol_version(MinimumProtocolVersion::TlSv122021)
            .build(),
        None => ViewerCertificate::builder().cloud_front_default_certificate(true).build(),
    };
    DistributionConfig::builder()
        .caller_reference(caller_reference)
        .aliases(Aliases::builder().quantity(aliases.len() as i32).set_items(Some(aliases)).build().map_err(invalid)?)
        .origins(Origins::builder().quantity(1).items(origin).build().map_err(invalid)?)
        .default_cache_behavior(behaviour)
        .comment(opt_string(desired, "comment").unwrap_or_default())
        .set_default_root_object(opt_string(desired, "default_root_object").map(str::to_string))
        .set_price_class(opt_string(desired, "price_class").map(PriceClass::from))
        .enabled(boolean(desired, "enabled").unwrap_or(true))
        .viewer_certificate(certificate)
        .build()
        .map_err(invalid)
}
