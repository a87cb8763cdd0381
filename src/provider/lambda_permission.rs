//! `lambda_permission`: one statement of a function's resource policy, letting a service
//! (S3, API Gateway) invoke it.
//!
//! The id is `FUNCTION/STATEMENT_ID`, or `FUNCTION:QUALIFIER/STATEMENT_ID` for a statement of
//! an alias's policy (Lambda keeps one policy per alias and version: invoking the `live` alias
//! is allowed by the alias's policy alone). Lambda has no update for a statement: any change
//! replaces it. The statement id is the natural key: an interrupted create is found by it, and
//! a statement with that id that was there before the create is reported, never taken over.
//!
//! Lambda loses statements of one function's policy written in parallel (an AWS-acknowledged
//! bug terraform-provider-aws works around with a lock per function): adds and removes of one
//! function's statements run one at a time. A statement just added may not be visible at once,
//! and S3 validates a notification against it: the permission is ready once `GetPolicy` shows it.

use super::Fields;
use super::facets::{Access, Inventory, Parent};
use super::{Declared, Finding, Planned, Sibling, Siblings};
use crate::addr::ResourceAddr;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::{Grant, PolicyKind};
use crate::provider::KnownText;
use crate::value::Attrs;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::attrs::split_id;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::typed::cannot_update;
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, NoComputed, Owner, Prior, ProviderError};
use crate::poll::{self, Poll, Seen};

pub struct LambdaPermission;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("function_name", AttrType::String, "the function's name or ARN").force_new().identity(),
        Attribute::required("statement_id", AttrType::String, "the statement's id in the function policy")
            .force_new()
            .identity(),
        Attribute::required("action", AttrType::String, "usually lambda:InvokeFunction").force_new(),
        Attribute::required("principal", AttrType::String, "the service allowed, e.g. s3.amazonaws.com").force_new(),
        Attribute::optional("source_arn", AttrType::String, "only this resource may invoke").force_new(),
        Attribute::optional("source_account", AttrType::String, "only resources of this account may invoke")
            .force_new(),
        Attribute::optional(
            "qualifier",
            AttrType::String,
            "an alias (or version) whose policy holds the statement: `live` when the invoker calls the live alias",
        )
        .force_new()
        .identity(),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    function_name: String,
    statement_id: String,
    action: String,
    principal: String,
    source_arn: Option<String>,
    source_account: Option<String>,
    qualifier: Option<String>,
}

impl Permission {
    /// The permission a policy statement grants (GetPolicy's statement and AddPermission's
    /// answer alike).
    fn of(stmt: &Value, function_name: String, sid: &str, qualifier: Option<&str>) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let principal = match stmt.get("Principal") {
            Some(Value::Object(p)) => p.values().next().cloned(),
            other => other.cloned(),
        };
        let condition = |op: &str, key: &str| -> Option<String> {
            let m = stmt.get("Condition")?.get(op)?.as_object()?;
            m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).and_then(|(_, v)| v.as_str()).map(str::to_string)
        };
        Permission {
            function_name,
            statement_id: sid.to_string(),
            action: text(stmt.get("Action")).unwrap_or_default(),
            principal: text(principal.as_ref()).unwrap_or_default(),
            source_arn: condition("ArnLike", "AWS:SourceArn"),
            source_account: condition("StringEquals", "AWS:SourceAccount"),
            qualifier: qualifier.map(str::to_string),
        }
    }

    fn id(&self) -> String {
        format!("{}/{}", Policy::of(self).holder(), self.statement_id)
    }
}

/// Whose policy a statement is in: a function (by name or ARN), maybe qualified.
struct Policy<'a> {
    function: &'a str,
    qualifier: Option<&'a str>,
}

impl<'a> Policy<'a> {
    /// The policy and the statement id an id names.
    fn of_id(operation: &'static str, id: &'a str) -> Result<(Policy<'a>, &'a str), ProviderError> {
        let (function, sid) = split_id(operation, id)?;
        Ok((Policy::of_holder(function), sid))
    }

    /// The policy of `FUNCTION[:QUALIFIER]` (the function by name or ARN).
    fn of_holder(function: &'a str) -> Policy<'a> {
        // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER], or NAME[:QUALIFIER].
        let unqualified_parts = if function.starts_with("arn:") { 7 } else { 1 };
        match function.match_indices(':').nth(unqualified_parts - 1) {
            Some((at, _)) => Policy { function: &function[..at], qualifier: Some(&function[at + 1..]) },
            None => Policy { function, qualifier: None },
        }
    }

    fn of(spec: &'a Permission) -> Self {
        Policy { function: &spec.function_name, qualifier: spec.qualifier.as_deref() }
    }

    /// `FUNCTION` or `FUNCTION:QUALIFIER`: the first part of an id.
    fn holder(&self) -> String {
        match self.qualifier {
            Some(q) => format!("{}:{q}", self.function),
            None => self.function.to_string(),
        }
    }
}

#[async_trait]
impl Kind for LambdaPermission {
    const NAME: &'static str = "lambda_permission";
    type Spec = Permission;
    type Computed = NoComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        prior: &Prior<Permission, NoComputed>,
    ) -> Result<Option<(Permission, NoComputed)>, ProviderError> {
        let (policy, sid) = Policy::of_id("GetPolicy", id)?;
        let Some(stmt) = statement(aws, &policy, sid).await? else { return Ok(None) };
        // The spec may name the function by ARN; the id holds its name.
        let function_name = prior.spec().map_or_else(|| policy.function.to_string(), |p| p.function_name.clone());
        let spec = Permission::of(&stmt, function_name, sid, policy.qualifier);
        Ok(Some((spec, NoComputed {})))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Permission,
        _owner: &Owner,
    ) -> Result<Created<NoComputed, Self::Spec>, ProviderError> {
        let _one_write_at_a_time = aws.exclusive(write_lock(&spec.function_name)).await;
        let added = aws
            .lambda()
            .await
            .add_permission()
            .function_name(&spec.function_name)
            .statement_id(&spec.statement_id)
            .action(&spec.action)
            .principal(&spec.principal)
            .set_source_arn(spec.source_arn.clone())
            .set_source_account(spec.source_account.clone())
            .set_qualifier(spec.qualifier.clone())
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("AddPermission", e))?;
        // AWS answers with the statement as it holds it.
        let observed = added.statement().and_then(|text| serde_json::from_str::<Value>(text).ok()).map(|stmt| {
            Permission::of(&stmt, spec.function_name.clone(), &spec.statement_id, spec.qualifier.as_deref())
        });
        let created = Created::new(spec.id(), NoComputed {});
        Ok(match observed {
            Some(live) => created.observed(live),
            None => created,
        })
    }

    async fn update(
        &self,
        _aws: &Aws,
        _id: &str,
        _spec: &Permission,
        changed: &[PermissionField],
        _owner: &Owner,
    ) -> Result<Option<NoComputed>, ProviderError> {
        // Every attribute forces replacement, so the engine never asks for an update.
        match changed.first() {
            Some(attr) => Err(cannot_update(Self::NAME, attr.name())),
            None => Ok(None),
        }
    }

    async fn wait_ready(&self, aws: &Aws, id: &str, _spec: &Permission) -> Result<(), ProviderError> {
        let (policy, sid) = Policy::of_id("GetPolicy", id)?;
        let function = policy.function;
        let look =
            || async { Ok(if statement(aws, &policy, sid).await?.is_some() { Seen::Done(()) } else { Seen::Waiting }) };
        let timed_out = |waited: Duration| {
            ProviderError::new(
                "GetPolicy",
                "StatementNotVisible",
                format!("statement {sid} of {function} was added but is not in its policy after {}s", waited.as_secs()),
            )
        };
        poll::until(VISIBLE_POLL, VISIBLE_WITHIN, look, timed_out).await
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Permission,
        owner: &Owner,
        reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let found = statement(aws, &Policy::of(spec), &spec.statement_id).await?;
        Ok(found.map(|_| owner.judge_untagged(&spec.id(), reason, None)))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Permission, NoComputed>,
    ) -> Result<Deleted, ProviderError> {
        let (policy, sid) = Policy::of_id("RemovePermission", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(policy.function)).await;
        let lambda = aws.lambda().await;
        let remove = lambda.remove_permission().function_name(policy.function).statement_id(sid);
        let removed = remove.set_qualifier(policy.qualifier.map(str::to_string)).send().await;
        removed.map_err(|e| ProviderError::from_sdk("RemovePermission", e))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<PermissionPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

#[async_trait]
impl Inventory for LambdaPermission {
    /// The policy holding the statement: `FUNCTION[:QUALIFIER]`, from the id.
    fn parent(&self, id: &str, _recorded: &Attrs) -> Option<Parent> {
        Policy::of_id("GetPolicy", id).ok().map(|(policy, _)| Parent(policy.holder()))
    }

    async fn children(&self, aws: &Aws, parent: &Parent) -> Result<Option<Siblings>, ProviderError> {
        let policy = Policy::of_holder(&parent.0);
        let Some(all) = statements(aws, &policy).await? else { return Ok(None) };
        let holder = policy.holder();
        let children = all
            .iter()
            .filter_map(|s| {
                let sid = s.get("Sid").and_then(Value::as_str)?;
                let principal = s.get("Principal").map(|p| match p {
                    Value::Object(m) => m.values().next().map(|v| v.to_string()).unwrap_or_default(),
                    other => other.to_string(),
                });
                let label = format!("statement {sid} (principal {})", principal.unwrap_or_default().trim_matches('"'));
                Some(Sibling::new(format!("{holder}/{sid}"), label))
            })
            .collect();
        Ok(Some(Siblings { parent: format!("the policy of {holder}"), children }))
    }
}

impl Access<PermissionPlanned> for LambdaPermission {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["lambda:GetPolicy"],
            write: &["lambda:AddPermission"],
            delete: &["lambda:RemovePermission"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &PermissionPlanned, scope: &ArnScope) -> Vec<String> {
        let function = ArnScope::part(Some(spec.function_name.text()));
        let function = if function.starts_with("arn:") {
            function
        } else {
            scope.arn("lambda", &scope.region, &scope.account, &format!("function:{function}"))
        };
        vec![function.clone(), format!("{function}:*")]
    }

    fn grants(&self, _addr: &ResourceAddr, spec: &PermissionPlanned) -> Vec<Grant> {
        let principal = match spec.principal.text() {
            "*" => "*".to_string(),
            p if p.ends_with(".amazonaws.com") => format!("service:{p}"),
            p => format!("aws:{p}"),
        };
        let function = spec.function_name.text();
        let resource = match spec.qualifier.text() {
            Some(q) => format!("{function}:{q}"),
            None => function.to_string(),
        };
        let mut conditions = Vec::new();
        if let Some(arn) = spec.source_arn.text() {
            conditions.push(format!("ArnLike aws:sourcearn = {arn}"));
        }
        if let Some(account) = spec.source_account.text() {
            conditions.push(format!("StringEquals aws:sourceaccount = {account}"));
        }
        conditions.sort();
        vec![Grant {
            policy: PolicyKind::Resource,
            deny: false,
            principal,
            action: spec.action.text().to_string(),
            resource,
            conditions,
        }]
    }
}

/// How long a statement just added may take to show in the function's policy.
const VISIBLE_WITHIN: Duration = Duration::from_secs(120);
/// How `GetPolicy` is polled until an added statement is readable (usually at once).
const VISIBLE_POLL: Poll = Poll { share: 10, floor: Duration::from_millis(250), ceiling: Duration::from_secs(5) };

/// The lock adds and removes of one function's policy statements hold.
fn write_lock(function: &str) -> String {
    // A function may be named by its name or its ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME).
    let name = if function.starts_with("arn:") { function.split(':').nth(6).unwrap_or(function) } else { function };
    format!("lambda policy {name}")
}

/// The statement `sid` of the function's (or its alias's) resource policy, if both exist.
async fn statement(aws: &Aws, policy: &Policy<'_>, sid: &str) -> Result<Option<Value>, ProviderError> {
    let all = statements(aws, policy).await?.unwrap_or_default();
    Ok(all.into_iter().find(|s| s.get("Sid").and_then(Value::as_str) == Some(sid)))
}

/// Every statement of the function's (or its alias's) resource policy; `None` when there is
/// no policy (or no function).
async fn statements(aws: &Aws, policy: &Policy<'_>) -> Result<Option<Vec<Value>>, ProviderError> {
    let get = aws.lambda().await.get_policy().function_name(policy.function);
    let got = get.set_qualifier(policy.qualifier.map(str::to_string)).send().await;
    let out = match got.map_err(|e| ProviderError::from_sdk("GetPolicy", e)) {
        Ok(out) => out,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let doc: Value = serde_json::from_str(out.policy().unwrap_or("{}"))
        .map_err(|e| ProviderError::unexpected("GetPolicy", format!("policy is not JSON: {e}")))?;
    Ok(Some(doc.get("Statement").and_then(Value::as_array).cloned().unwrap_or_default()))
}

/// What `this` lacks where its `attr` makes `principal` invoke a function, for a service that
/// checks nothing at create (API Gateway): invoking the function's `live` alias
/// (`live_invoke_arn`, `live_arn`) is allowed only by a `lambda_permission` with
/// `qualifier: live`, in the alias's own policy; invoking the function (`invoke_arn`, `arn`) only
/// by one without a qualifier. A missing one shows only as HTTP 500 at request time.
pub(super) fn invoke_permission_findings(
    this: &Declared,
    all: &[Declared],
    attr: &str,
    principal: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (function, via) in this.references.get(attr).into_iter().flatten().filter(|(a, _)| a.kind == "lambda_function")
    {
        let via_alias = via.starts_with("live_");
        let fits = |p: &&Declared| {
            let refers = p.references.get("function_name").is_some_and(|r| r.iter().any(|(a, _)| a == function));
            let qualifier = match p.values.get("qualifier") {
                None => !via_alias,
                Some(Some(q)) => via_alias && q == "live",
                Some(None) => true,
            };
            p.addr.kind == "lambda_permission"
                && refers
                && qualifier
                && p.known("principal").is_none_or(|v| v == principal)
        };
        if all.iter().any(|p| fits(&p)) {
            continue;
        }
        let (what, fix) = if via_alias {
            (
                "its live alias",
                format!("a lambda_permission for {function} with principal {principal} and `qualifier: live`"),
            )
        } else {
            ("it", format!("a lambda_permission for {function} with principal {principal} and no qualifier"))
        };
        out.push(
            Finding::at(attr, format!("{} invokes {what} ({function}.{via}), but no lambda_permission lets {principal} do so: every request would fail with HTTP 500", this.addr))
                .help(format!("declare {fix}")),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_the_function_its_qualifier_and_the_statement() {
        let of = |id: &str| {
            let (p, sid) = Policy::of_id("GetPolicy", id).expect("an id");
            (p.function.to_string(), p.qualifier.map(str::to_string), sid.to_string())
        };
        assert_eq!(of("fn/Sid"), ("fn".into(), None, "Sid".into()));
        assert_eq!(of("fn:live/Sid"), ("fn".into(), Some("live".into()), "Sid".into()));
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:fn";
        assert_eq!(of(&format!("{arn}/Sid")), (arn.into(), None, "Sid".into()));
        assert_eq!(of(&format!("{arn}:live/Sid")), (arn.into(), Some("live".into()), "Sid".into()));
        assert!(Policy::of_id("GetPolicy", "no-statement").is_err());
    }
}
