//! `destroy`: delete everything the state manages (or some of it), dependents first.

use std::process::ExitCode;

use clap::Args;

use super::apply::{Approval, RunOptions, Source};
use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::build::Builds;
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
    /// Destroy only this resource and what depends on it (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    targets: Vec<ResourceAddr>,
    /// Print one JSON object per line instead of text (see apply --json); needs --auto-approve.
    #[arg(long)]
    pub(super) json: bool,
}

impl DestroyArgs {
    /// Destroy everything of the stack `paths` names (a stage), as `stages destroy` does.
    pub(super) fn for_stage(paths: Paths, auto_approve: bool) -> Self {
        Self { paths, auto_approve, parallelism: 10, targets: vec![], json: false }
    }
}

pub async fn cmd_destroy(
    args: DestroyArgs,
    registry: &Registry,
    aws: &Aws,
    builds: &Builds,
) -> Result<ExitCode, CliError> {
    let spec = args.paths.load_spec_without_sources(registry)?;
    let source = Source::Fresh { destroy: true, targets: &args.targets, replace: &[] };
    let options = RunOptions { parallelism: args.parallelism, json: args.json, builds };
    let approval =
        Approval { auto_approve: args.auto_approve, targeted: !args.targets.is_empty(), ..Approval::new(args.json) };
    super::apply::run(&spec, &args.paths, registry, aws, source, options, approval).await
}
