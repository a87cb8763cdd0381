//! Lookups of things that already exist and are managed elsewhere: a hosted zone by domain
//! name, a Cognito user pool by id.

use crate::permissions::deployer::{ArnScope, Deployer};
use async_trait::async_trait;
use serde_json::json;

use super::attrs::{build, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, LookupKind, ProviderError};
use crate::value::Attrs;

/// `route53_zone`: a public hosted zone found by its domain name.
pub struct Route53Zone;

static ZONE: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the zone's domain name, e.g. example.com"),
        Attribute::computed("zone_id", "the hosted zone id"),
    ],
};

#[async_trait]
impl LookupKind for Route53Zone {
    fn kind(&self) -> &'static str {
        "route53_zone"
    }

    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["route53:ListHostedZonesByName"],
            unscoped: &["route53:ListHostedZonesByName"],
            ..Deployer::NONE
        }
    }

    fn schema(&self) -> &'static ResourceSchema {
        &ZONE
    }

    async fn lookup(&self, aws: &Aws, query: &Attrs) -> Result<Attrs, ProviderError> {
        let name = format!("{}.", string(query, "name").trim_end_matches('.').to_ascii_lowercase());
        let out = aws
            .route53()
            .await
            .list_hosted_zones_by_name()
            .dns_name(&name)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("ListHostedZonesByName", e))?;
        let zone = out
            .hosted_zones()
            .iter()
            .find(|z| z.name().eq_ignore_ascii_case(&name) && !z.config().is_some_and(|c| c.private_zone()))
            .ok_or_else(|| {
                ProviderError::new(
                    "ListHostedZonesByName",
                    "NoSuchHostedZone",
                    format!("no public hosted zone named {name}"),
                )
            })?;
        Ok(build([("name", json!(name)), ("zone_id", json!(zone.id().trim_start_matches("/hostedzone/")))]))
    }
}

/// `cognito_user_pool`: a user pool by id, with the issuer its tokens carry.
pub struct CognitoUserPool;

static POOL: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("id", AttrType::String, "the user pool id, e.g. us-east-1_AbCdEf"),
        Attribute::computed("arn", "the user pool ARN"),
        Attribute::computed("name", "the user pool name"),
        Attribute::computed("issuer", "https://cognito-idp.REGION.amazonaws.com/ID, the tokens' iss"),
    ],
};

#[async_trait]
impl LookupKind for CognitoUserPool {
    fn kind(&self) -> &'static str {
        "cognito_user_pool"
    }

    fn deployer(&self) -> Deployer {
        Deployer { read: &["cognito-idp:DescribeUserPool"], ..Deployer::NONE }
    }

    fn deployer_arns(&self, query: &Attrs, scope: &ArnScope) -> Vec<String> {
        // A pool id carries its region (eu-west-1_AbC), as the lookup reads it.
        let id = ArnScope::part(query.get("id").and_then(serde_json::Value::as_str));
        let region = id.split('_').next().filter(|r| r.contains('-')).unwrap_or(&scope.region);
        vec![scope.arn("cognito-idp", region, &scope.account, &format!("userpool/{id}"))]
    }

    fn schema(&self) -> &'static ResourceSchema {
        &POOL
    }

    async fn lookup(&self, aws: &Aws, query: &Attrs) -> Result<Attrs, ProviderError> {
        let id = string(query, "id");
        // A pool id carries its region (eu-west-1_AbC): the pool lives there, whatever the
        // configured region.
        let region = id.split('_').next().filter(|r| r.contains('-')).map_or(aws.region().await, str::to_string);
        let out = aws
            .cognito_in(&region)
            .await
            .describe_user_pool()
            .user_pool_id(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DescribeUserPool", e))?;
        let pool = out.user_pool().ok_or_else(|| ProviderError::unexpected("DescribeUserPool", "no UserPool"))?;
        Ok(build([
            ("id", json!(id)),
            ("arn", json!(pool.arn())),
            ("name", json!(pool.name())),
            ("issuer", json!(format!("https://cognito-idp.{region}.amazonaws.com/{id}"))),
        ]))
    }
}

/// `caller_identity`: the account the credentials belong to.
pub struct CallerIdentity;

static IDENTITY: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::computed("account_id", "the 12-digit account id"),
        Attribute::computed("region", "the region requests go to"),
    ],
};

#[async_trait]
impl LookupKind for CallerIdentity {
    fn kind(&self) -> &'static str {
        "caller_identity"
    }

    fn deployer(&self) -> Deployer {
        // AWS allows GetCallerIdentity to everyone; listed so the policy says what is called.
        Deployer { read: &["sts:GetCallerIdentity"], unscoped: &["sts:GetCallerIdentity"], ..Deployer::NONE }
    }

    fn schema(&self) -> &'static ResourceSchema {
        &IDENTITY
    }

    async fn lookup(&self, aws: &Aws, _query: &Attrs) -> Result<Attrs, ProviderError> {
        Ok(build([("account_id", json!(aws.account_id().await?)), ("region", json!(aws.region().await))]))
    }
}
