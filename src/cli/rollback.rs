//! `rollback`: point a function's `live` alias back at a version it served before.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::plan::{PlanOptions, Planner};
use crate::provider::{Aws, Registry, point_live, rollback_target};
use crate::retry::{RetryPolicy, Scope};
use crate::state::State;

/// Serve an older version of a function at once: its `live` alias (what the API, the
/// authorizer and the bucket notification invoke) moves to the version before the one it
/// serves, or to --to VERSION. Recorded in the state; the next plan shows that the source
/// differs from what is live, and `apply` deploys the source again.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The function, e.g. lambda_function.presigner.
    addr: ResourceAddr,
    /// The version to serve [default: the newest kept version older than the live one].
    #[arg(long, value_name = "VERSION")]
    to: Option<String>,
    #[command(flatten)]
    paths: Paths,
}

pub async fn cmd_rollback(args: RollbackArgs, registry: &Registry, aws: &Aws) -> Result<ExitCode, CliError> {
    if args.addr.kind != "lambda_function" {
        return Err(CliError::NotFound(format!(
            "{} is not a lambda_function: only functions have versions to go back to",
            args.addr
        )));
    }
    let store = args.paths.backend(aws)?;
    let store = store.as_ref();
    super::with_lock(store, "rollback", async || {
        let mut state = store.load().await?;
        let Some(entry) = state.resources.get(&args.addr).filter(|r| r.pending().is_none()).cloned() else {
            return Err(CliError::NotFound(format!("{} is not in the state: apply it first", args.addr)));
        };
        let aws_error = |error| CliError::Aws { addr: args.addr.clone(), error: Box::new(error) };
        let retry = RetryPolicy::default();
        // The target is chosen once: a move retried after its answer was lost goes to the same
        // version, never one further back.
        let rolled = retry
            .run(Scope::quiet(), || rollback_target(aws, &entry.id, args.to.as_deref()))
            .await
            .map_err(aws_error)?;
        retry.run(Scope::quiet(), || point_live(aws, &entry.id, &rolled.to)).await.map_err(aws_error)?;
        // Record the function as it reads now, and where the rollback moved it from: the plan
        // says so until live serves something else.
        let alone = State { resources: [(args.addr.clone(), entry.clone())].into(), ..state.clone() };
        let planner = Planner { registry, aws, options: PlanOptions::default() };
        let mut read = planner.refresh_only(&alone).await?;
        let Some(mut now) = read.resources.remove(&args.addr) else {
            return Err(CliError::NotFound(format!("{} ({}) is gone from AWS", args.addr, entry.id)));
        };
        now.attributes.insert("rolled_back_from".into(), serde_json::json!(rolled.from));
        let code = now.attributes.get("code_sha256").and_then(|v| v.as_str()).unwrap_or("?").to_string();
        state.resources.insert(args.addr.clone(), now);
        state.serial += 1;
        store.save(&state).await?;
        println!(
            "{}: live serves version {} (was {}), code {code}.\nThe next plan shows that the source differs from what \
             is live; `cruddur-infra apply` deploys the source again.",
            args.addr, rolled.to, rolled.from
        );
        Ok(ExitCode::SUCCESS)
    })
    .await
}
