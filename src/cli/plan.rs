//! `plan`: show what apply would change.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::plan::{PlanOptions, Planner, render_text};
use crate::provider::{Aws, Registry};

/// Compare the spec with the state and with AWS, and show the changes apply would make.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    paths: Paths,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Read every managed resource from AWS first; `--refresh=false` trusts the state.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    refresh: bool,
    /// Concurrent AWS reads.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
}

pub async fn cmd_plan(args: PlanArgs, registry: &Registry, aws: &Aws) -> Result<ExitCode, CliError> {
    let spec = args.paths.load_spec(registry)?;
    let prior = args.paths.store().load()?;
    super::ensure_region(aws, &spec, &prior).await?;
    let options = PlanOptions { refresh: args.refresh, parallelism: args.parallelism, destroy: false };
    let plan = Planner { registry, aws, options }.plan(&spec, &prior).await?;
    print!("{}", render_text(&plan));
    Ok(if args.detailed_exitcode && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
