//! `lambda_function`: a function deployed from a zip artifact.
//!
//! The id is the function name; renaming replaces the function. The artifact's base64 SHA-256
//! (`code_sha256`, derived at plan time) is compared with the deployed `CodeSha256`, so code is
//! uploaded only when it changed. A new role is not assumable by Lambda for a few seconds after
//! IAM creates it: create retries that error for up to two minutes. Dependents wait until the
//! function is `Active` (and after an update, until `LastUpdateStatus` is `Successful`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
use serde_json::{Value, json};

use super::attrs::{build, found, int, opt_string, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, ErrorClass, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::apply::RetryPolicy;
use crate::build::{self as artifacts, code_sha256};
use crate::value::Attrs;

pub struct LambdaFunction;

const ARCHITECTURES: &[&str] = &["x86_64", "arm64"];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the function name").force_new(),
        Attribute::required("role", AttrType::String, "ARN of the execution role"),
        Attribute::optional("runtime", AttrType::String, "the runtime [default: provided.al2023]"),
        Attribute::optional("handler", AttrType::String, "the handler [default: bootstrap]"),
        Attribute::optional(
            "architecture",
            AttrType::Enum(ARCHITECTURES),
            "x86_64 or arm64 (Graviton) [default: x86_64]",
        ),
        Attribute::optional("memory_size", AttrType::Int, "memory in MB [default: 128]"),
        Attribute::optional("timeout", AttrType::Int, "timeout in seconds [default: 3]"),
        Attribute::optional("environment", AttrType::Map(&AttrType::String), "environment variables"),
        Attribute::optional(
            "source",
            AttrType::String,
            "a cargo package (lambdas/<crate>) built and packaged by plan and apply",
        ),
        Attribute::optional(
            "zip_file",
            AttrType::String,
            "a ready deployment zip, relative to the working directory (instead of source)",
        ),
        Attribute::derived("code_sha256", "base64 SHA-256 of the zip, compared with the deployed CodeSha256"),
        Attribute::computed("arn", "the function ARN"),
        Attribute::computed("invoke_arn", "the ARN API Gateway uses to invoke the function"),
    ],
};

/// How long a new role may take to become assumable by Lambda.
const ROLE_PROPAGATION: Duration = Duration::from_secs(120);
/// How long a function may take to become Active or finish an update.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

#[async_trait]
impl ResourceKind for LambdaFunction {
    fn kind(&self) -> &'static str {
        "lambda_function"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn prepare(&self, desired: &mut Attrs) -> Result<(), ProviderError> {
        let invalid = |m: &str| ProviderError::new("PrepareArtifact", "InvalidArtifact", m);
        match (opt_string(desired, "source"), opt_string(desired, "zip_file")) {
            (Some(_), Some(_)) => return Err(invalid("give either source or zip_file, not both")),
            (None, None) => return Err(invalid("give source (a cargo package) or zip_file")),
            (Some(source), None) => {
                let arch = opt_string(desired, "architecture").unwrap_or("x86_64");
                let arch = artifacts::Architecture::parse(arch)
                    .ok_or_else(|| invalid("architecture must be x86_64 or arm64"))?;
                let artifact = artifacts::build(std::path::Path::new(source), arch)
                    .await
                    .map_err(|e| ProviderError::new("BuildArtifact", "BuildFailed", e.to_string()))?;
                desired.insert("zip_file".into(), json!(artifact.zip_path.display().to_string()));
                desired.insert("code_sha256".into(), json!(artifact.code_sha256));
            }
            (None, Some(path)) => {
                let bytes = read_zip(path)?;
                desired.insert("code_sha256".into(), json!(code_sha256(&bytes)));
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let got = aws.lambda().await.get_function().function_name(id).send().await;
        let Some(out) = found(got.map_err(|e| ProviderError::from_sdk("GetFunction", e)))? else { return Ok(None) };
        let Some(c) = out.configuration else { return Ok(None) };
        let arn = c.function_arn().unwrap_or_default();
        let env: Attrs = c
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
            .unwrap_or_default();
        let mut attrs = build([
            ("name", json!(c.function_name())),
            ("role", json!(c.role())),
            ("runtime", c.runtime().map_or(Value::Null, |r| json!(r.as_str()))),
            ("handler", json!(c.handler())),
            ("architecture", c.architectures().first().map_or(json!("x86_64"), |a| json!(a.as_str()))),
            ("memory_size", json!(c.memory_size())),
            ("timeout", json!(c.timeout())),
            ("environment", Value::Object(env)),
            ("code_sha256", json!(c.code_sha256())),
            ("arn", json!(arn)),
            ("invoke_arn", json!(invoke_arn(arn))),
        ]);
        // The artifact's source and path are ours alone; AWS knows only its hash.
        for local in ["source", "zip_file"] {
            if let Some(v) = prior.get(local) {
                attrs.insert(local.into(), v.clone());
            }
        }
        Ok(Some(attrs))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let lambda = aws.lambda().await;
        let name = string(desired, "name");
        let zip = read_zip(string(desired, "zip_file"))?;
        let env = environment(desired);
        let propagation = RetryPolicy::until(ROLE_PROPAGATION);
        let out = propagation
            .run(|| async {
                lambda
                    .create_function()
                    .function_name(name)
                    .role(string(desired, "role"))
                    .runtime(Runtime::from(opt_string(desired, "runtime").unwrap_or("provided.al2023")))
                    .handler(opt_string(desired, "handler").unwrap_or("bootstrap"))
                    .architectures(Architecture::from(opt_string(desired, "architecture").unwrap_or("x86_64")))
                    .set_memory_size(int(desired, "memory_size").map(|n| n as i32))
                    .set_timeout(int(desired, "timeout").map(|n| n as i32))
                    .set_environment(env.clone())
                    .code(FunctionCode::builder().zip_file(Blob::new(zip.clone())).build())
                    .send()
                    .await
                    .map_err(|e| role_not_ready(ProviderError::from_sdk("CreateFunction", e)))
            })
            .await?;
        wait_active(lambda, name).await?;
        let arn = out.function_arn().unwrap_or_default();
        Ok(Created {
            id: name.to_string(),
            attrs: build([("arn", json!(arn)), ("invoke_arn", json!(invoke_arn(arn)))]),
        })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, changed: &[&str]) -> Result<Attrs, ProviderError> {
        let lambda = aws.lambda().await;
        let config_attrs = ["role", "runtime", "handler", "memory_size", "timeout", "environment"];
        if changed.iter().any(|c| config_attrs.contains(c)) {
            lambda
                .update_function_configuration()
                .function_name(id)
                .role(string(desired, "role"))
                .runtime(Runtime::from(opt_string(desired, "runtime").unwrap_or("provided.al2023")))
                .handler(opt_string(desired, "handler").unwrap_or("bootstrap"))
                .set_memory_size(int(desired, "memory_size").map(|n| n as i32))
                .set_timeout(int(desired, "timeout").map(|n| n as i32))
                .environment(environment(desired).unwrap_or_else(|| Environment::builder().build()))
                .send()
                .await
                .map_err(|e| ProviderError::from_sdk("UpdateFunctionConfiguration", e))?;
            wait_updated(lambda, id).await?;
        }
        if changed.contains(&"code_sha256") || changed.contains(&"architecture") {
            let zip = read_zip(string(desired, "zip_file"))?;
            lambda
                .update_function_code()
                .function_name(id)
                .zip_file(Blob::new(zip))
                .architectures(Architecture::from(opt_string(desired, "architecture").unwrap_or("x86_64")))
                .send()
                .await
                .map_err(|e| ProviderError::from_sdk("UpdateFunctionCode", e))?;
            wait_updated(lambda, id).await?;
        }
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let lambda = aws.lambda().await;
        lambda
            .delete_function()
            .function_name(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteFunction", e))?;
        Ok(())
    }
}

fn read_zip(path: &str) -> Result<Vec<u8>, ProviderError> {
    std::fs::read(path).map_err(|e| ProviderError::new("ReadArtifact", "ArtifactUnreadable", format!("{path}: {e}")))
}

fn environment(desired: &Attrs) -> Option<Environment> {
    let vars = desired.get("environment").and_then(Value::as_object)?;
    let vars =
        vars.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
    Some(Environment::builder().set_variables(Some(vars)).build())
}

fn invoke_arn(function_arn: &str) -> String {
    let region = function_arn.split(':').nth(3).unwrap_or("us-east-1");
    format!("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
}

/// The one validation error that is worth waiting out: IAM has not propagated the new role.
fn role_not_ready(mut e: ProviderError) -> ProviderError {
    let message = e.message.to_ascii_lowercase();
    if e.code == "InvalidParameterValueException" && message.contains("role") && message.contains("assume") {
        e.class = ErrorClass::Retryable;
        e.message.push_str(" (a new role takes a few seconds to become usable; retried for up to 2 minutes)");
    }
    e
}

async fn wait_active(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<(), ProviderError> {
    lambda.wait_until_function_active_v2().function_name(name).wait(READY_TIMEOUT).await.map(|_| ()).map_err(|e| {
        ProviderError::new("GetFunction", "FunctionNotActive", format!("{name} did not become Active: {e}"))
    })
}

async fn wait_updated(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<(), ProviderError> {
    lambda.wait_until_function_updated_v2().function_name(name).wait(READY_TIMEOUT).await.map(|_| ()).map_err(|e| {
        ProviderError::new("GetFunction", "FunctionUpdateFailed", format!("{name} did not finish updating: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_role_propagation_error_is_retried() {
        // "cannot be assumed" is retryable; other validation errors are not.
        let e = role_not_ready(ProviderError::new(
            "CreateFunction",
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        ));
        assert_eq!(e.class, ErrorClass::Retryable);
        let e = role_not_ready(ProviderError::new(
            "CreateFunction",
            "InvalidParameterValueException",
            "Unsupported runtime",
        ));
        assert_eq!(e.class, ErrorClass::Fatal);
    }
}
