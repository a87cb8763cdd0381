//! `plan`: show what apply would change; optionally save it for `apply FILE`.

use super::stdout::{out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::build::{BuildProfile, Builds};
use crate::plan::saved::{SAVED_PLAN_VERSION, SavedPlan, spec_digest};
use crate::plan::{Plan, PlanOptions, Planner, json, markdown, render_text, restrict_to_targets};
use crate::provider::{Aws, Registry};
use crate::spec::Spec;
use crate::state::State;
use crate::state::encryption::Purpose;

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
    /// Save the plan to this file; `cruddur-infra apply FILE` carries out exactly it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the plan as JSON (format documented in docs/plan-json.md).
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the plan as Markdown, for a pull-request comment.
    #[arg(long)]
    markdown: bool,
    /// Show sensitive values in --json output.
    #[arg(long, requires = "json")]
    show_sensitive: bool,
    /// Plan only this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    targets: Vec<ResourceAddr>,
    #[command(flatten)]
    gates: super::gates::Gates,
}

pub async fn cmd_plan(args: PlanArgs, registry: &Registry, aws: &Aws, builds: &Builds) -> Result<ExitCode, CliError> {
    let spec = args.paths.load_spec(registry)?;
    let store = args.paths.backend(aws)?;
    let prior = store.load().await?;
    super::ensure_region(aws, &spec, &prior).await?;
    let options = PlanOptions {
        refresh: args.refresh,
        parallelism: args.parallelism,
        destroy: false,
        builds: builds.clone(),
        ..Default::default()
    };
    let plan = make_plan(&spec, &prior, registry, aws, options, &args.targets).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json::render_json(&plan, args.show_sensitive)).unwrap_or_default());
    } else if args.markdown {
        out!("{}", markdown::render_markdown(&plan));
    } else {
        out!("{}", super::style::plan(&render_text(&plan)));
    }
    let changes = plan.has_changes();
    args.gates.check(&plan)?;
    if let Some(path) = &args.out {
        let saved = saved_plan(&args.paths, &spec, &store.location(), &args.targets, builds.profile(), plan);
        save(&args.paths.codec(aws)?, path, saved).await?;
        if !args.json {
            eprintln!(
                "\nSaved the plan to {}: `cruddur-infra apply {}` carries out exactly these actions.",
                path.display(),
                path.display()
            );
        }
    }
    Ok(if args.detailed_exitcode && changes { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Plans, then keeps only the targets (and what they need) when there are any.
pub async fn make_plan(
    spec: &Spec,
    prior: &State,
    registry: &Registry,
    aws: &Aws,
    options: PlanOptions,
    targets: &[ResourceAddr],
) -> Result<Plan, CliError> {
    let mut plan = Planner { registry, aws, options }.plan(spec, prior).await?;
    restrict_to_targets(&mut plan, spec, targets)?;
    if !targets.is_empty() {
        eprintln!(
            "Note: --target is in effect; the plan may be incomplete. Plan without it before you rely on the result.\n"
        );
    }
    Ok(plan)
}

/// The plan as `apply <file>` reads it back: what it was made from, and with which profile.
fn saved_plan(
    paths: &Paths,
    spec: &Spec,
    state: &str,
    targets: &[ResourceAddr],
    profile: BuildProfile,
    plan: Plan,
) -> SavedPlan {
    SavedPlan {
        format_version: SAVED_PLAN_VERSION,
        spec: paths.spec.display().to_string(),
        spec_digest: spec_digest(spec),
        state: state.to_string(),
        lineage: plan.prior.lineage.clone(),
        serial: plan.prior.serial,
        targets: targets.to_vec(),
        plan,
        build_profile: Some(profile.name().to_string()),
        plan_digest: String::new(),
    }
}

async fn save(codec: &crate::state::Codec<'_>, path: &std::path::Path, mut saved: SavedPlan) -> Result<(), CliError> {
    let bytes = saved.encode();
    let sealed = codec.seal(&bytes, Purpose::Plan, &path.display().to_string()).await?;
    SavedPlan::write_file(path, &sealed).map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))
}
