//! `rollback`, the function's one [`Operations`] entry: `live` moves back to an older
//! published version (the one before the version it serves, or `--to VERSION`).
//!
//! Deciding reads the alias and the kept versions, and refuses a version whose role is gone;
//! the decision is recorded before the alias moves, so a move retried after its answer was lost,
//! or an interrupted rollback run again, goes to the same version, never one further back.

use async_trait::async_trait;
use serde_json::json;

use super::{LambdaFunction, live};
use crate::provider::facets::{Decision, Operation, OperationArgs, Operations};
use crate::provider::{Aws, ProviderError};
use crate::value::Attrs;

const ROLLBACK: Operation = Operation {
    name: "rollback",
    about: "serve an older published version: live moves to the version before the one it serves, or to --to VERSION",
};

#[async_trait]
impl Operations for LambdaFunction {
    fn operations(&self) -> &'static [Operation] {
        &[ROLLBACK]
    }

    async fn decide(
        &self,
        aws: &Aws,
        operation: &str,
        args: &OperationArgs,
        id: &str,
        recorded: &Attrs,
    ) -> Result<Decision, ProviderError> {
        unknown_operation(operation)?;
        let target = live::rollback_target(aws.lambda().await, id, args.get("to").map(String::as_str)).await?;
        live::check_role_of(aws, id, &target.to).await?;
        let mut expected = recorded.clone();
        expected.insert("version".into(), json!(target.to));
        // Already there (a rollback run again after its first run was interrupted): where live
        // was moved from stays what was recorded.
        let summary = if target.to == target.from {
            format!("live already serves version {}", target.to)
        } else {
            expected.insert("rolled_back_from".into(), json!(target.from));
            format!("live serves version {} (was {})", target.to, target.from)
        };
        Ok(Decision {
            expected,
            summary,
            next: Some(
                "The next plan shows that the source differs from what is live; `cruddur-infra apply` deploys the \
                 source again."
                    .into(),
            ),
        })
    }

    async fn carry_out(&self, aws: &Aws, operation: &str, id: &str, decision: &Decision) -> Result<(), ProviderError> {
        unknown_operation(operation)?;
        let version = decision.expected.get("version").and_then(|v| v.as_str()).ok_or_else(|| {
            ProviderError::unexpected("Rollback", "the decision names no version to serve".to_string())
        })?;
        live::point(aws.lambda().await, id, version).await
    }
}

/// The registry only routes `rollback` here; anything else is an engine bug, refused.
fn unknown_operation(operation: &str) -> Result<(), ProviderError> {
    if operation == ROLLBACK.name {
        Ok(())
    } else {
        Err(ProviderError::unexpected("Operation", format!("lambda_function has no operation `{operation}`")))
    }
}
