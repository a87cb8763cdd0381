//! `plan`: show what apply would change; optionally save it for `apply FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::build::{BuildProfile, Builds};
use crate::plan::saved::{SAVED_PLAN_VERSION, SavedPlan, spec_digest};
use crate::plan::{Plan, PlanOptions, Planner, restrict_to_targets};
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
    #[command(flatten)]
    format: super::ReportFormat,
    /// Plan only this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    targets: Vec<ResourceAddr>,
    /// Plan to replace this resource even where an update in place (or nothing) would do
    /// (repeatable).
    #[arg(long = "replace", value_name = "ADDR")]
    replace: Vec<ResourceAddr>,
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
        replace: args.replace.iter().cloned().collect(),
        ..Default::default()
    };
    check_replace(&spec, &args.replace)?;
    let plan = make_plan(&spec, &prior, registry, aws, options, &args.targets).await?;
    args.format.print_plan(&plan);
    let changes = plan.has_changes();
    args.gates.check(&plan)?;
    if let Some(path) = &args.out {
        let saved = saved_plan(&args.paths, &spec, &store.location(), &args.targets, builds.profile(), plan);
        save(&args.paths.codec(aws)?, path, saved).await?;
        if !args.format.json {
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
/// Every `--replace` address names a resource of the spec.
pub(super) fn check_replace(spec: &Spec, replace: &[ResourceAddr]) -> Result<(), CliError> {
    match replace.iter().find(|addr| spec.resource(addr).is_none()) {
        Some(addr) => Err(CliError::NotFound(format!("--replace {addr}: the spec declares no such resource"))),
        None => Ok(()),
    }
}

pub(super) fn saved_plan(
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
        stage: paths.stage.clone(),
        undo_of: None,
        plan_digest: String::new(),
    }
}

pub(super) async fn save(
    codec: &crate::state::Codec<'_>,
    path: &std::path::Path,
    mut saved: SavedPlan,
) -> Result<(), CliError> {
    let bytes = saved.encode();
    let sealed = codec.seal(&bytes, Purpose::Plan, &path.display().to_string()).await?;
    SavedPlan::write_file(path, &sealed).map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))
}
