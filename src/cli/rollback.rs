//! `rollback`: the `rollback` operation of a kind that offers one (a function's `live` alias
//! back to a version it served before), run through the engine's journaled operations.

use super::stdout::outln;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::apply::operate::operate;
use crate::provider::{Aws, OperationArgs, Registry};

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
    let store = args.paths.backend(aws)?;
    let store = store.as_ref();
    let operation_args: OperationArgs = args.to.iter().map(|to| ("to".to_string(), to.clone())).collect();
    let done = super::with_lock(store, "rollback", async || {
        Ok(operate(registry, aws, store, &args.addr, "rollback", &operation_args).await?)
    })
    .await?;
    outln!("{}: {}.", args.addr, done.summary);
    if let Some(next) = done.next {
        outln!("{next}");
    }
    Ok(ExitCode::SUCCESS)
}
