//! `destroy`: delete everything the state manages, dependents first.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::provider::{Aws, Registry};

/// Delete every resource in the state, in reverse dependency order.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    paths: Paths,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    auto_approve: bool,
    /// How many resources to delete at once.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
}

pub async fn cmd_destroy(args: DestroyArgs, registry: &Registry, aws: &Aws) -> Result<ExitCode, CliError> {
    let spec = args.paths.load_spec(registry)?;
    super::apply::run(&spec, &args.paths, registry, aws, args.auto_approve, args.parallelism, true).await
}
