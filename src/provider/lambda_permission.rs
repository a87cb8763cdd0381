//! `lambda_permission`: one statement of a function's resource policy, letting a service
//! (S3, API Gateway) invoke it.
//!
//! The id is `FUNCTION/STATEMENT_ID`. Lambda has no update for a statement: any change
//! replaces it. Adding a statement whose id exists already (a retry after a crash) replaces it
//! rather than failing.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::attrs::{build, found, opt_string, split_id, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct LambdaPermission;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("function_name", AttrType::String, "the function's name or ARN").force_new(),
        Attribute::required("statement_id", AttrType::String, "the statement's id in the function policy").force_new(),
        Attribute::required("action", AttrType::String, "usually lambda:InvokeFunction").force_new(),
        Attribute::required("principal", AttrType::String, "the service allowed, e.g. s3.amazonaws.com").force_new(),
        Attribute::optional("source_arn", AttrType::String, "only this resource may invoke").force_new(),
        Attribute::optional("source_account", AttrType::String, "only resources of this account may invoke")
            .force_new(),
    ],
};

#[async_trait]
impl ResourceKind for LambdaPermission {
    fn kind(&self) -> &'static str {
        "lambda_permission"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let (function, sid) = split_id("GetPolicy", id)?;
        let got = aws.lambda().await.get_policy().function_name(function).send().await;
        let Some(out) = found(got.map_err(|e| ProviderError::from_sdk("GetPolicy", e)))? else { return Ok(None) };
        let policy: Value = serde_json::from_str(out.policy().unwrap_or("{}"))
            .map_err(|e| ProviderError::unexpected("GetPolicy", format!("policy is not JSON: {e}")))?;
        let statements = policy.get("Statement").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(stmt) = statements.iter().find(|s| s.get("Sid").and_then(Value::as_str) == Some(sid)) else {
            return Ok(None);
        };
        let principal = match stmt.get("Principal") {
            Some(Value::Object(p)) => p.values().next().cloned().unwrap_or(Value::Null),
            Some(other) => other.clone(),
            None => Value::Null,
        };
        let condition = |op: &str, key: &str| -> Value {
            stmt.get("Condition")
                .and_then(|c| c.get(op))
                .and_then(Value::as_object)
                .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone()))
                .unwrap_or(Value::Null)
        };
        Ok(Some(build([
            ("function_name", prior.get("function_name").cloned().unwrap_or_else(|| json!(function))),
            ("statement_id", json!(sid)),
            ("action", stmt.get("Action").cloned().unwrap_or(Value::Null)),
            ("principal", principal),
            ("source_arn", condition("ArnLike", "AWS:SourceArn")),
            ("source_account", condition("StringEquals", "AWS:SourceAccount")),
        ])))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let lambda = aws.lambda().await;
        let (function, sid) = (string(desired, "function_name"), string(desired, "statement_id"));
        let add = || {
            lambda
                .add_permission()
                .function_name(function)
                .statement_id(sid)
                .action(string(desired, "action"))
                .principal(string(desired, "principal"))
                .set_source_arn(opt_string(desired, "source_arn").map(str::to_string))
                .set_source_account(opt_string(desired, "source_account").map(str::to_string))
                .send()
        };
        match add().await.map_err(|e| ProviderError::from_sdk("AddPermission", e)) {
            Err(e) if e.code == "ResourceConflictException" => {
                remove(lambda, function, sid).await?;
                add().await.map_err(|e| ProviderError::from_sdk("AddPermission", e))?;
            }
            other => {
                other?;
            }
        }
        Ok(Created { id: format!("{function}/{sid}"), attrs: Attrs::new() })
    }

    async fn update(&self, _aws: &Aws, _id: &str, _desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        // Every attribute forces replacement, so the engine never asks for an update.
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let (function, sid) = split_id("RemovePermission", id)?;
        remove(aws.lambda().await, function, sid).await
    }
}

async fn remove(lambda: &aws_sdk_lambda::Client, function: &str, sid: &str) -> Result<(), ProviderError> {
    lambda
        .remove_permission()
        .function_name(function)
        .statement_id(sid)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("RemovePermission", e))?;
    Ok(())
}
