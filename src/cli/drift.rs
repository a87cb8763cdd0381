//! `drift`: what changed in AWS since the last apply, for scheduled checks in CI.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::plan::{PlanOptions, Planner, drift};
use crate::provider::{Aws, Registry};

/// Read every resource in the state from AWS and report what no longer matches the last apply
/// (spec edits are ignored). Exit 0: no drift, 2: drift, 1: error.
#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    paths: Paths,
    /// Print JSON.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print Markdown, for an issue or pull-request comment.
    #[arg(long)]
    markdown: bool,
    /// Show sensitive values in --json output.
    #[arg(long, requires = "json")]
    show_sensitive: bool,
    /// Concurrent AWS reads.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
}

pub async fn cmd_drift(args: DriftArgs, registry: &Registry, aws: &Aws) -> Result<ExitCode, CliError> {
    let recorded = args.paths.backend(aws)?.load().await?;
    let options = PlanOptions { refresh: true, parallelism: args.parallelism, destroy: false, ..Default::default() };
    let live = Planner { registry, aws, options }.refresh_only(&recorded).await?;
    let found = drift::detect(registry, &recorded, &live);
    // Closed world: children of what the state manages that nothing manages.
    let mut undeclared = drift::undeclared(registry, aws, &live, &crate::retry::RetryPolicy::default()).await?;
    // The spec's `drift.ignore` (the spec is read for nothing else: its edits are not drift).
    match args.paths.load_spec(registry) {
        Ok(spec) => drift::ignore(&mut undeclared, &spec.drift_ignore),
        Err(e) => eprintln!("Warning: the spec could not be read, so no drift.ignore applies: {e}"),
    }
    if args.json {
        let json = drift::render_json(&found, &undeclared, args.show_sensitive);
        println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    } else if args.markdown {
        print!("{}", drift::render_markdown(&found, &undeclared));
    } else {
        print!("{}", super::style::plan(&drift::render_text(&found, &undeclared)));
    }
    Ok(if drift::drifted(&found, &undeclared) { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
