//! `cloudfront_distribution`: a distribution serving one S3 origin through an origin access
//! control, under aliases with an ACM certificate (which must live in us-east-1).
//!
//! The id is the distribution id. Creating is one `CreateDistributionWithTags` whose
//! `CallerReference` is the create's idempotency token, recorded in its intent: a create sent
//! again answers `DistributionAlreadyExists`, and [`Kind::find`] recognises the distribution
//! by that reference, so a lost answer or a crash never leaves a second distribution. Every
//! update reads the config and its ETag, then sends If-Match with it (a stale ETag is a
//! conflict, retried with a fresh read). A delete first disables the distribution and waits for
//! that deployment, as CloudFront requires. Dependents wait until it is `Deployed` unless
//! `--no-wait`. Fields a read does not echo (moto drops the origin's OAC id) keep their
//! recorded value.

use super::Fields;
use super::facets::Access;
use super::planned;
use super::{DependentsWait, Lifecycle, Planned};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::rules;
use crate::provider::{DeclaredAs, Known, KnownValue};
use crate::value::UNKNOWN;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    Aliases, DefaultCacheBehavior, DistributionConfig, DistributionConfigWithTags, MinimumProtocolVersion, Origin,
    Origins, PriceClass, S3OriginConfig, SslSupportMethod, Tag, Tags, ViewerCertificate, ViewerProtocolPolicy,
};
use serde::{Deserialize, Serialize};

use serde_with::skip_serializing_none;

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Deleted, ErrorClass, FindReason, Found, Kind, Managed, Owner, Prior, ProviderError};
use super::{Declared, Finding};
use crate::poll::{self, Poll, Seen};

pub struct CloudFrontDistribution;

/// The hosted zone id of every CloudFront distribution, for Route53 alias records.
const CLOUDFRONT_ZONE_ID: &str = "Z2FDTNDATAQYW2";
/// Real deployments take minutes, sometimes very many; this is the longest we wait.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(90 * 60);

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("origin_domain_name", AttrType::String, "the bucket's regional domain name"),
        Attribute::required("origin_id", AttrType::String, "a name for the origin"),
        Attribute::optional("origin_access_control_id", AttrType::String, "the OAC that signs requests to the bucket"),
        Attribute::optional("enabled", AttrType::Bool, "serve requests [default: true]"),
        Attribute::optional("comment", AttrType::String, "a comment"),
        Attribute::optional(
            "ipv6_enabled",
            AttrType::Bool,
            "answer AAAA queries (needed for an AAAA alias to mean anything) [default: false]",
        ),
        Attribute::optional(
            "aliases",
            AttrType::List(&AttrType::String),
            "extra domain names, e.g. assets.example.com",
        )
        .named(super::names::NameRule::Dns),
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

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    origin_domain_name: String,
    origin_id: String,
    origin_access_control_id: Option<String>,
    enabled: Option<bool>,
    comment: Option<String>,
    ipv6_enabled: Option<bool>,
    aliases: Option<Vec<String>>,
    certificate_arn: Option<String>,
    default_root_object: Option<String>,
    price_class: Option<String>,
    cache_policy_id: Option<String>,
    viewer_protocol_policy: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DistributionComputed {
    distribution_id: String,
    arn: String,
    domain_name: String,
    hosted_zone_id: String,
    status: String,
}

impl DistributionComputed {
    fn of(d: &aws_sdk_cloudfront::types::Distribution) -> Self {
        Self {
            distribution_id: d.id().to_string(),
            arn: d.arn().to_string(),
            domain_name: d.domain_name().to_string(),
            hosted_zone_id: CLOUDFRONT_ZONE_ID.to_string(),
            status: d.status().to_string(),
        }
    }
}

impl Distribution {
    /// The distribution as AWS describes it (GetDistribution and the create answer alike).
    fn described(d: &aws_sdk_cloudfront::types::Distribution, operation: &'static str) -> Result<Self, ProviderError> {
        let Some(c) = d.distribution_config() else {
            return Err(ProviderError::unexpected(operation, "no DistributionConfig"));
        };
        let origin = c.origins().and_then(|o| o.items().first());
        let text = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
        let behaviour = c.default_cache_behavior();
        Ok(Distribution {
            origin_domain_name: origin.map(|o| o.domain_name().to_string()).unwrap_or_default(),
            origin_id: origin.map(|o| o.id().to_string()).unwrap_or_default(),
            origin_access_control_id: text(origin.and_then(|o| o.origin_access_control_id())),
            enabled: Some(c.enabled()),
            comment: text(Some(c.comment())),
            ipv6_enabled: c.is_ipv6_enabled(),
            aliases: Some(c.aliases().map(|a| a.items().to_vec()).unwrap_or_default()),
            certificate_arn: text(c.viewer_certificate().and_then(|v| v.acm_certificate_arn())),
            default_root_object: text(c.default_root_object()),
            price_class: c.price_class().map(|p| p.as_str().to_string()),
            cache_policy_id: text(behaviour.and_then(|b| b.cache_policy_id())),
            viewer_protocol_policy: behaviour.map(|b| b.viewer_protocol_policy().as_str().to_string()),
        })
    }
}

#[async_trait]
impl Kind for CloudFrontDistribution {
    const NAME: &'static str = "cloudfront_distribution";
    type Spec = Distribution;
    type Computed = DistributionComputed;
    // Alias records and the bucket policy need the domain name and ARN, known at once; the
    // deployment takes minutes.
    const LIFECYCLE: Lifecycle = Lifecycle { dependents_wait: DependentsWait::Id, ..Lifecycle::DEFAULT };

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn validate(&self, this: &DeclaredAs<'_, DistributionPlanned>, _all: &[Declared]) -> Vec<Finding> {
        let mut out = Vec::new();
        let spec = &this.spec;
        if let Some(arn) = spec.certificate_arn.as_ref().and_then(Known::whole) {
            let in_us_east_1 =
                arn.starts_with("arn:aws:acm:us-east-1:") || arn.starts_with("arn:aws-cn:acm:us-east-1:");
            if !in_us_east_1 {
                out.push(
                    Finding::at(
                        "certificate_arn",
                        format!("certificate_arn of {} is not an ACM certificate in us-east-1: {arn}", this.addr()),
                    )
                    .help("CloudFront takes certificates from ACM in us-east-1 only, whatever the stack's region"),
                );
            }
        }
        if let Some(origin) = spec.origin_domain_name.whole().filter(|o| o.contains(".s3-website")) {
            out.push(
                Finding::at(
                    "origin_domain_name",
                    format!("{} reads the S3 website endpoint {origin}: an origin access control works only with the bucket's REST endpoint, and this kind sends an S3 origin", this.addr()),
                )
                .help("use the bucket's regional domain name (`${s3_bucket.NAME.bucket_regional_domain_name}`); a website endpoint is a custom origin, which this kind does not make"),
            );
        }
        // Unknown aliases may be some.
        let aliases = spec.aliases.as_ref().is_some_and(|a| a.known().is_none_or(|a| !a.is_empty()));
        if aliases && spec.certificate_arn.is_none() {
            out.push(
                Finding::at("aliases", format!("{} serves aliases without a certificate_arn", this.addr()))
                    .help("an alias needs a certificate covering it: set certificate_arn (ACM, us-east-1)"),
            );
        }
        if spec.cache_policy_id.is_none() {
            out.push(
                Finding::on_resource(format!("{} has no cache_policy_id for its default cache behaviour", this.addr()))
                    .help(
                        "CloudFront needs a cache policy: e.g. the managed CachingOptimized, \
                         658327ea-f89d-4fab-a63d-7e88639e58f6",
                    ),
            );
        }
        out
    }

    fn normalize(&self, spec: &mut DistributionPlanned) {
        if let Some(aliases) = spec.aliases.known_mut() {
            planned::each_known(aliases, |s| *s = s.trim_end_matches('.').to_ascii_lowercase());
            planned::sort_by_text(aliases);
        }
        planned::unset_when(&mut spec.comment, &String::new());
        planned::unset_when(&mut spec.default_root_object, &String::new());
        // IPv6 off is what a distribution has when nothing says otherwise.
        planned::unset_when(&mut spec.ipv6_enabled, &false);
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        prior: &Prior<Distribution, DistributionComputed>,
    ) -> Result<Option<(Distribution, DistributionComputed)>, ProviderError> {
        let got = aws.cloudfront().await.get_distribution().id(id).send().await;
        let got = got.map_err(|e| ProviderError::from_sdk("GetDistribution", e));
        let d = match got {
            Ok(out) => match out.distribution {
                Some(d) => d,
                None => return Ok(None),
            },
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let computed = DistributionComputed::of(&d);
        let mut spec = Distribution::described(&d, "GetDistribution")?;
        // A field the API did not echo is not a change: keep what was last applied.
        if spec.origin_access_control_id.is_none() && managed.has("origin_access_control_id") {
            spec.origin_access_control_id = prior.spec().and_then(|p| p.origin_access_control_id.clone());
        }
        Ok(Some((spec, computed)))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Distribution,
        owner: &Owner,
    ) -> Result<Created<DistributionComputed, Self::Spec>, ProviderError> {
        let invalid = |e: aws_sdk_cloudfront::error::BuildError| {
            ProviderError::new("CreateDistributionWithTags", "InvalidArgument", e.to_string())
        };
        let tags = owner
            .tags()
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        let with_tags = DistributionConfigWithTags::builder()
            .distribution_config(config(spec, &owner.token)?)
            .tags(Tags::builder().set_items(Some(tags)).build())
            .build();
        let out = aws
            .cloudfront()
            .await
            .create_distribution_with_tags()
            .distribution_config_with_tags(with_tags)
            .send()
            .await
            .map_err(|e| config_refused(ProviderError::from_sdk("CreateDistributionWithTags", e), spec))?;
        let d = out
            .distribution()
            .ok_or_else(|| ProviderError::unexpected("CreateDistributionWithTags", "no Distribution"))?;
        let observed = Distribution::described(d, "CreateDistributionWithTags")?;
        Ok(Created::new(d.id().to_string(), DistributionComputed::of(d)).observed(observed))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Distribution,
        _changed: &[DistributionField],
        _owner: &Owner,
    ) -> Result<Option<DistributionComputed>, ProviderError> {
        let cloudfront = aws.cloudfront().await;
        let (current, etag) = current_config(cloudfront, id).await?;
        let out = cloudfront
            .update_distribution()
            .id(id)
            .if_match(etag)
            .distribution_config(config(spec, current.caller_reference())?)
            .send()
            .await
            .map_err(|e| config_refused(stale_etag(ProviderError::from_sdk("UpdateDistribution", e)), spec))?;
        Ok(out.distribution().map(DistributionComputed::of))
    }

    async fn wait_ready(&self, aws: &Aws, id: &str, _spec: &Distribution) -> Result<(), ProviderError> {
        if aws.options.no_wait {
            return Ok(());
        }
        wait_deployed(aws.cloudfront().await, id).await
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Distribution,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let cloudfront = aws.cloudfront().await;
        // The list shows each distribution's origins: only those with ours can be the one.
        let listed = cloudfront.list_distributions().into_paginator().items().send();
        let all = listed.try_collect().await.map_err(|e| ProviderError::from_sdk("ListDistributions", e))?;
        let candidates = all
            .iter()
            .filter(|d| {
                d.origins().is_some_and(|o| o.items().iter().any(|o| o.domain_name() == spec.origin_domain_name))
            })
            .map(|d| (d.id().to_string(), d.arn().to_string()));
        for (id, arn) in candidates {
            // A lost stage's distribution: its create's token died with the state; its tags say.
            if owner.is_lost_stage() {
                let listed = cloudfront.list_tags_for_resource().resource(&arn).send().await;
                let listed = listed.map_err(|e| ProviderError::from_sdk("ListTagsForResource", e))?;
                let tags = listed.tags().map(|t| t.items()).unwrap_or_default();
                let tags = tags.iter().map(|t| (t.key(), t.value().unwrap_or_default()));
                if owner.judge_tags(tags) == super::ownership::Tagged::Ours {
                    return Ok(Some(Found::Ours { id }));
                }
                continue;
            }
            match current_config(cloudfront, &id).await {
                Ok((config, _)) if config.caller_reference() == owner.token => return Ok(Some(Found::Ours { id })),
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Distribution, DistributionComputed>,
    ) -> Result<Deleted, ProviderError> {
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
                .map_err(|e| stale_etag(ProviderError::from_sdk("UpdateDistribution", e)))?;
        }
        // Deleting needs the disabled config deployed, whatever --no-wait says.
        wait_deployed(cloudfront, id).await?;
        let (_, etag) = current_config(cloudfront, id).await?;
        cloudfront.delete_distribution().id(id).if_match(etag).send().await.map_err(|e| {
            let e = stale_etag(ProviderError::from_sdk("DeleteDistribution", e));
            // Disabled a moment ago and not yet seen as such.
            if e.code == "DistributionNotDisabled" { e.with_class(ErrorClass::Conflict) } else { e }
        })?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<DistributionPlanned>> {
        Some(self)
    }
}

impl Access<DistributionPlanned> for CloudFrontDistribution {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["cloudfront:GetDistribution", "cloudfront:GetDistributionConfig", "cloudfront:ListDistributions"],
            write: &["cloudfront:CreateDistribution", "cloudfront:TagResource", "cloudfront:UpdateDistribution"],
            delete: &[
                "cloudfront:UpdateDistribution",
                "cloudfront:DeleteDistribution",
                "cloudfront:ListTagsForResource",
            ],
            unscoped: &["cloudfront:ListDistributions"],
        }
    }

    fn deployer_arns(&self, _spec: &DistributionPlanned, scope: &ArnScope) -> Vec<String> {
        vec![scope.arn("cloudfront", "", &scope.account, "distribution/*")]
    }

    fn policy_findings(&self, spec: &DistributionPlanned) -> Vec<(&'static str, String)> {
        let origin = spec.origin_domain_name.text();
        // An S3 REST origin (`.s3.REGION.`, or the legacy `.s3-REGION.`), not a website endpoint.
        let s3 = (origin.contains(".s3.") || origin.contains(".s3-") || origin.contains(UNKNOWN))
            && !origin.contains(".s3-website");
        if s3 && spec.origin_access_control_id.is_none() {
            return vec![(
                rules::ORIGIN_ACCESS_CONTROL,
                "its S3 origin is read without an origin access control".into(),
            )];
        }
        vec![]
    }
}

/// What a refused configuration means. A certificate issued moments ago is refused for a
/// while (`InvalidViewerCertificate`): wait it out. An alias another distribution holds
/// (`CNAMEAlreadyExists`, the hand-made distribution of the original stack, say) is named,
/// with the way to move it.
fn config_refused(e: ProviderError, spec: &Distribution) -> ProviderError {
    match e.code.as_str() {
        "InvalidViewerCertificate" => e.with_class(ErrorClass::Propagating),
        "CNAMEAlreadyExists" => {
            let aliases = spec.aliases.as_deref().unwrap_or_default().join(", ");
            let message = format!(
                "{} ({aliases}): another distribution already serves that alias. Remove the alias from that \
                 distribution (or disable and delete it) and apply again; to move a live alias without downtime, \
                 use CloudFront's AssociateAlias on this distribution once it exists",
                e.message
            );
            ProviderError { message, ..e }
        }
        _ => e,
    }
}

/// A write refused because the ETag moved since the read: read again and retry.
fn stale_etag(e: ProviderError) -> ProviderError {
    if e.code == "PreconditionFailed" || e.code == "InvalidIfMatchVersion" {
        e.with_class(ErrorClass::Conflict)
    } else {
        e
    }
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

/// How `wait_deployed` polls: what needs the deployment (the apply's end) learns of it within
/// 5% of the deployment's time (3 s after a minute), never more than 15 s late, at about 40
/// `GetDistribution` calls for a minute's deployment and one every 15 s after five minutes.
const DEPLOYED_POLL: Poll = Poll { share: 20, floor: Duration::from_secs(1), ceiling: Duration::from_secs(15) };

/// Polls until the distribution is `Deployed` (see [`DEPLOYED_POLL`]).
async fn wait_deployed(cloudfront: &aws_sdk_cloudfront::Client, id: &str) -> Result<(), ProviderError> {
    let look = || async {
        let out = cloudfront.get_distribution().id(id).send().await;
        let out = out.map_err(|e| ProviderError::from_sdk("GetDistribution", e))?;
        let deployed = out.distribution().is_some_and(|d| d.status() == "Deployed");
        Ok(if deployed { Seen::Done(()) } else { Seen::Waiting })
    };
    let timed_out = |_| {
        let minutes = DEPLOY_TIMEOUT.as_secs() / 60;
        ProviderError::new(
            "GetDistribution",
            "DeploymentTimeout",
            format!("{id} was not Deployed after {minutes} minutes"),
        )
    };
    poll::until(DEPLOYED_POLL, DEPLOY_TIMEOUT, look, timed_out).await
}

fn config(spec: &Distribution, caller_reference: &str) -> Result<DistributionConfig, ProviderError> {
    let invalid = |e: aws_sdk_cloudfront::error::BuildError| {
        ProviderError::new("DistributionConfig", "InvalidArgument", e.to_string())
    };
    let origin = Origin::builder()
        .id(&spec.origin_id)
        .domain_name(&spec.origin_domain_name)
        .origin_access_control_id(spec.origin_access_control_id.as_deref().unwrap_or_default())
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .map_err(invalid)?;
    let behaviour = DefaultCacheBehavior::builder()
        .target_origin_id(&spec.origin_id)
        .viewer_protocol_policy(ViewerProtocolPolicy::from(
            spec.viewer_protocol_policy.as_deref().unwrap_or("redirect-to-https"),
        ))
        .set_cache_policy_id(spec.cache_policy_id.clone())
        .build()
        .map_err(invalid)?;
    let aliases = spec.aliases.clone().unwrap_or_default();
    let quantity = i32::try_from(aliases.len())
        .map_err(|_| ProviderError::new("DistributionConfig", "InvalidArgument", "too many aliases"))?;
    let certificate = match &spec.certificate_arn {
        Some(arn) => ViewerCertificate::builder()
            .acm_certificate_arn(arn)
            .ssl_support_method(SslSupportMethod::SniOnly)
            .minimum_protocol_version(MinimumProtocolVersion::TlSv122021)
            .build(),
        None => ViewerCertificate::builder().cloud_front_default_certificate(true).build(),
    };
    DistributionConfig::builder()
        .caller_reference(caller_reference)
        .aliases(Aliases::builder().quantity(quantity).set_items(Some(aliases)).build().map_err(invalid)?)
        .origins(Origins::builder().quantity(1).items(origin).build().map_err(invalid)?)
        .default_cache_behavior(behaviour)
        .comment(spec.comment.as_deref().unwrap_or_default())
        .set_default_root_object(spec.default_root_object.clone())
        .set_price_class(spec.price_class.as_deref().map(PriceClass::from))
        .enabled(spec.enabled.unwrap_or(true))
        .set_is_ipv6_enabled(spec.ipv6_enabled)
        .viewer_certificate(certificate)
        .build()
        .map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(aliases: &[&str]) -> Distribution {
        serde_json::from_value(json!({"origin_domain_name": "b.s3.us-east-1.amazonaws.com", "origin_id": "o",
            "aliases": aliases}))
        .expect("spec")
    }

    #[test]
    fn a_fresh_certificate_is_waited_out_and_a_taken_alias_is_named_with_the_way_out() {
        // AWS refuses a just-issued certificate for a while, and an alias another distribution holds.
        let e = config_refused(ProviderError::new("CreateDistribution", "InvalidViewerCertificate", "x"), &spec(&[]));
        assert_eq!(e.class, ErrorClass::Propagating);
        let e = ProviderError::new(
            "CreateDistribution",
            "CNAMEAlreadyExists",
            "One or more of the CNAMEs you provided are already associated with a different resource.",
        );
        let e = config_refused(e, &spec(&["assets.cruddur.com"]));
        assert_eq!(e.class, ErrorClass::Fatal);
        assert!(e.message.contains("assets.cruddur.com") && e.message.contains("AssociateAlias"), "{}", e.message);
    }
}
