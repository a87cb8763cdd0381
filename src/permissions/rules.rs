//! The built-in policy rules every plan checks (`plan --policy-check` fails on any not waived).
//!
//! Rules about permission statements are checked here, on every kind's [`Grant`]s; rules about
//! one kind's settings (a bucket's public access block) are that kind's
//! (`ResourceKind::policy_findings`). A resource waives a rule with
//! `waivers: { RULE: "why" }` in the spec; the plan shows the waiver and its reason.

use serde::{Deserialize, Serialize};

use super::{Grant, PolicyKind, glob};
use crate::addr::ResourceAddr;

/// A rule's id and what it asks.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub asks: &'static str,
}

pub const NO_WILDCARD_DATA_ACCESS: &str = "no-wildcard-data-access";
pub const PUBLIC_ACCESS_BLOCK: &str = "public-access-block";
pub const BUCKET_READ_THROUGH_CLOUDFRONT: &str = "bucket-read-through-cloudfront";
pub const ORIGIN_ACCESS_CONTROL: &str = "origin-access-control";
pub const ROUTE_AUTHORIZER: &str = "route-authorizer";
pub const PERMISSION_SOURCE: &str = "permission-source";
pub const HTTPS_SUBSCRIPTION: &str = "https-subscription";

pub const RULES: &[Rule] = &[
    Rule {
        id: NO_WILDCARD_DATA_ACCESS,
        asks: "no `*` action or resource on data actions (s3:GetObject, s3:PutObject, sns:Publish, ...)",
    },
    Rule { id: PUBLIC_ACCESS_BLOCK, asks: "every bucket keeps all four public access block settings on" },
    Rule {
        id: BUCKET_READ_THROUGH_CLOUDFRONT,
        asks: "a bucket policy lets only CloudFront read objects, and only for one distribution (AWS:SourceArn)",
    },
    Rule { id: ORIGIN_ACCESS_CONTROL, asks: "a distribution reads its S3 origin through an origin access control" },
    Rule { id: ROUTE_AUTHORIZER, asks: "every API route has an authorizer (waive it for a public route)" },
    Rule {
        id: PERMISSION_SOURCE,
        asks: "a Lambda permission for a service names source_arn (and source_account for S3)",
    },
    Rule { id: HTTPS_SUBSCRIPTION, asks: "topic subscriptions deliver over https" },
];

/// Actions that read or write data, where a wildcard action or resource is never right.
const DATA_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:GetObjectVersion",
    "sns:Publish",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "lambda:InvokeFunction",
    "kms:Decrypt",
];

/// One rule a planned resource breaks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub addr: ResourceAddr,
    pub rule: String,
    pub message: String,
    /// The spec's reason, when the resource waives the rule.
    pub waived: Option<String>,
}

fn allows(pattern: &str, action: &str) -> bool {
    glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// The rules the grants of one resource break: (rule, what breaks it).
pub fn of_grants(grants: &[Grant]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for g in grants.iter().filter(|g| !g.deny && g.policy != PolicyKind::Trust) {
        let data = DATA_ACTIONS.iter().find(|a| allows(&g.action, a));
        if let Some(data) = data
            && (g.action.contains('*') || g.resource == "*")
        {
            out.push((NO_WILDCARD_DATA_ACCESS, format!("`{}` allows {data} with a wildcard", g.describe())));
        }
        if g.policy != PolicyKind::Resource {
            continue;
        }
        let condition = |key: &str| g.conditions.iter().any(|c| c.split(' ').nth(1) == Some(key));
        if allows(&g.action, "s3:GetObject") && g.resource.split(':').nth(2) == Some("s3") {
            let through_cloudfront = g.principal == "service:cloudfront.amazonaws.com" && condition("aws:sourcearn");
            if !through_cloudfront {
                out.push((
                    BUCKET_READ_THROUGH_CLOUDFRONT,
                    format!("`{}` lets someone other than one CloudFront distribution read objects", g.describe()),
                ));
            }
        }
        if allows(&g.action, "lambda:InvokeFunction") && g.principal.starts_with("service:") {
            let mut missing = Vec::new();
            if !condition("aws:sourcearn") {
                missing.push("source_arn");
            }
            if g.principal == "service:s3.amazonaws.com" && !condition("aws:sourceaccount") {
                missing.push("source_account");
            }
            if !missing.is_empty() {
                out.push((
                    PERMISSION_SOURCE,
                    format!("`{}` has no {}: any {} could invoke it", g.describe(), missing.join(" or "), g.principal),
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The policy section of a text plan (empty when nothing is found).
pub fn render_text(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let mut out = String::from("Policy rules:\n");
    for f in findings {
        match &f.waived {
            Some(why) => out.push_str(&format!("  waived  {} [{}]: {} (waiver: {why})\n", f.addr, f.rule, f.message)),
            None => out.push_str(&format!("  FAILED  {} [{}]: {}\n", f.addr, f.rule, f.message)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(policy: PolicyKind, principal: &str, action: &str, resource: &str, conditions: &[&str]) -> Grant {
        Grant {
            policy,
            deny: false,
            principal: principal.into(),
            action: action.into(),
            resource: resource.into(),
            conditions: conditions.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn rules(g: Grant) -> Vec<&'static str> {
        of_grants(&[g]).into_iter().map(|(r, _)| r).collect()
    }

    #[test]
    fn wildcards_on_data_actions_are_found_in_any_policy() {
        let id = PolicyKind::Identity;
        assert_eq!(rules(grant(id, "iam_role.r", "s3:*", "arn:aws:s3:::b/*", &[])), [NO_WILDCARD_DATA_ACCESS]);
        assert_eq!(rules(grant(id, "iam_role.r", "s3:PutObject", "*", &[])), [NO_WILDCARD_DATA_ACCESS]);
        assert!(rules(grant(id, "iam_role.r", "s3:PutObject", "arn:aws:s3:::b/*", &[])).is_empty());
        assert!(rules(grant(id, "iam_role.r", "logs:*", "*", &[])).is_empty(), "not a data action");
    }

    #[test]
    fn a_bucket_is_read_only_through_one_distribution() {
        let r = PolicyKind::Resource;
        let cf = "service:cloudfront.amazonaws.com";
        let ok = grant(r, cf, "s3:GetObject", "arn:aws:s3:::b/*", &["StringEquals aws:sourcearn = arn:d"]);
        assert!(rules(ok).is_empty());
        let any = grant(r, cf, "s3:GetObject", "arn:aws:s3:::b/*", &[]);
        assert_eq!(rules(any), [BUCKET_READ_THROUGH_CLOUDFRONT]);
        let public = grant(r, "*", "s3:GetObject", "arn:aws:s3:::b/*", &[]);
        assert_eq!(rules(public), [BUCKET_READ_THROUGH_CLOUDFRONT]);
    }

    #[test]
    fn a_service_may_invoke_a_function_only_from_a_named_source() {
        let r = PolicyKind::Resource;
        let s3 = "service:s3.amazonaws.com";
        let arn = "ArnLike aws:sourcearn = arn:aws:s3:::b";
        let both = grant(r, s3, "lambda:InvokeFunction", "f", &[arn, "StringEquals aws:sourceaccount = 1"]);
        assert!(rules(both).is_empty());
        assert_eq!(rules(grant(r, s3, "lambda:InvokeFunction", "f", &[arn])), [PERMISSION_SOURCE]);
        let api = "service:apigateway.amazonaws.com";
        assert!(rules(grant(r, api, "lambda:InvokeFunction", "f", &["ArnLike aws:sourcearn = x"])).is_empty());
        assert_eq!(rules(grant(r, api, "lambda:InvokeFunction", "f", &[])), [PERMISSION_SOURCE]);
    }

    #[test]
    fn each_kind_reports_its_grants_and_settings_to_the_rules() {
        let registry = crate::provider::Registry::aws();
        let attrs = |v: serde_json::Value| v.as_object().cloned().expect("an object");
        let addr: ResourceAddr = "lambda_permission.p".parse().expect("addr");
        let permission = registry.get("lambda_permission").expect("kind");
        let grants = permission.access().expect("an access facet").grants(
            &addr,
            &attrs(serde_json::json!({"function_name": "f", "statement_id": "s", "action": "lambda:InvokeFunction",
                "principal": "s3.amazonaws.com", "source_arn": "arn:aws:s3:::b", "qualifier": "live"})),
        );
        assert_eq!(grants[0].resource, "f:live");
        assert_eq!(of_grants(&grants).into_iter().map(|(r, _)| r).collect::<Vec<_>>(), [PERMISSION_SOURCE]);
        let found = |kind: &str, v: serde_json::Value| {
            let access = registry.get(kind).expect("kind").access().expect("an access facet");
            access.policy_findings(&attrs(v)).into_iter().map(|(r, _)| r).collect::<Vec<_>>()
        };
        assert_eq!(found("s3_bucket", serde_json::json!({"name": "b"})), [PUBLIC_ACCESS_BLOCK]);
        let route = serde_json::json!({"api_id": "a", "route_key": "GET /", "authorization_type": "NONE"});
        assert_eq!(found("apigatewayv2_route", route), [ROUTE_AUTHORIZER]);
        let origin = serde_json::json!({"origin_domain_name": "b.s3.us-east-1.amazonaws.com", "origin_id": "o"});
        assert_eq!(found("cloudfront_distribution", origin), [ORIGIN_ACCESS_CONTROL]);
        let sub = serde_json::json!({"topic_arn": "t", "protocol": "email", "endpoint": "a@b.c"});
        assert_eq!(found("sns_subscription", sub), [HTTPS_SUBSCRIPTION]);
    }

    #[test]
    fn attributes_that_do_not_read_as_the_kinds_model_grant_the_unknown_not_nothing() {
        let registry = crate::provider::Registry::aws();
        let addr: ResourceAddr = "iam_role.r".parse().expect("addr");
        let role = registry.get("iam_role").expect("kind").access().expect("an access facet");
        let broken = serde_json::json!({"name": 5, "assume_role_policy": {}});
        let grants = role.grants(&addr, broken.as_object().expect("an object"));
        assert_eq!(grants.len(), 1, "{grants:?}");
        assert!(grants[0].describe().contains("(known after apply)"), "{}", grants[0].describe());
    }
}
