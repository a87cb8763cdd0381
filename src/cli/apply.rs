//! `apply`: plan (or read a saved plan), confirm, and carry the plan out.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use serde_json::json;

use super::events::{JsonEvents, TextEvents};
use super::style::{Tone, paint};
use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::apply::{Applier, ApplyEvents, ApplyReport, PROGRESS_EVERY};
use crate::build::Builds;
use crate::graph::NodeOutcome;
use crate::plan::json::render_json;
use crate::plan::saved::SavedPlan;
use crate::plan::{Action, Plan, PlanOptions, render_text};
use crate::provider::{Aws, Registry};
use crate::spec::Spec;
use crate::state::StateBackend;

/// Plan, ask for confirmation, then create, update and delete resources in dependency order.
/// Given a saved plan (`plan --out FILE`), carry out exactly that plan, without asking.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `cruddur-infra plan --out FILE`.
    plan_file: Option<PathBuf>,
    #[command(flatten)]
    paths: Paths,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    auto_approve: bool,
    /// How many resources to change at once.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Apply only this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR", conflicts_with = "plan_file")]
    targets: Vec<ResourceAddr>,
    /// Print one JSON object per line (the plan, each event, the outcome, the outputs) instead
    /// of text; needs --auto-approve or a saved plan. Format: docs/plan-json.md.
    #[arg(long)]
    pub(super) json: bool,
    /// After applying, watch the crates behind every lambda_function `source:` and, on each
    /// save, rebuild and apply when only code changes (pair with --build-profile dev). Needs
    /// --auto-approve.
    #[arg(long, requires = "auto_approve", conflicts_with_all = ["plan_file", "targets", "json"])]
    watch: bool,
    #[command(flatten)]
    gates: super::gates::Gates,
}

/// How apply and destroy run and report.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    pub parallelism: usize,
    /// JSON lines on stdout instead of text.
    pub json: bool,
    /// The command's builds (with a saved plan, its profile).
    pub builds: &'a Builds,
}

/// What to carry out: a fresh plan, or a saved one.
pub enum Source<'a> {
    Fresh {
        destroy: bool,
        targets: &'a [ResourceAddr],
        auto_approve: bool,
    },
    Saved {
        path: &'a Path,
        saved: Box<SavedPlan>,
    },
    /// `drift --revert`: a fresh plan of the spec that also removes the undeclared children
    /// the engine can remove.
    Revert {
        auto_approve: bool,
    },
}

pub async fn cmd_apply(args: ApplyArgs, registry: &Registry, aws: &Aws, builds: &Builds) -> Result<ExitCode, CliError> {
    let options = RunOptions { parallelism: args.parallelism, json: args.json, builds };
    if args.watch {
        return super::watch::watch(&args.paths, registry, aws, options, &args.gates).await;
    }
    match &args.plan_file {
        Some(path) => {
            let stored = std::fs::read(path)
                .map_err(|e| CliError::Io(format!("cannot read saved plan {}: {e}", path.display())))?;
            let codec = crate::state::Codec::any_reader(aws);
            let text =
                codec.open(&stored, crate::state::encryption::Purpose::Plan, &path.display().to_string()).await?;
            let saved = SavedPlan::decode(path, &String::from_utf8_lossy(&text))?;
            let profile = saved
                .build_profile
                .as_deref()
                .map_or(Some(crate::build::BuildProfile::Release), crate::build::BuildProfile::parse);
            let profile = profile.ok_or_else(|| {
                CliError::NotConfirmed(format!("{}: unknown build_profile {:?}", path.display(), saved.build_profile))
            })?;
            let builds = builds.with_profile(profile);
            let options = RunOptions { builds: &builds, ..options };
            let mut paths = args.paths.clone();
            paths.spec = PathBuf::from(&saved.spec);
            paths.state.get_or_insert_with(|| saved.state.clone());
            let spec = paths.load_spec(registry)?;
            let source = Source::Saved { path, saved: Box::new(saved) };
            run(&spec, &paths, registry, aws, source, options, Some(&args.gates)).await
        }
        None => {
            let spec = args.paths.load_spec(registry)?;
            let source = Source::Fresh { destroy: false, targets: &args.targets, auto_approve: args.auto_approve };
            run(&spec, &args.paths, registry, aws, source, options, Some(&args.gates)).await
        }
    }
}

/// The shared body of apply and destroy: lock, plan, confirm, apply, report, unlock.
pub async fn run(
    spec: &Spec,
    paths: &Paths,
    registry: &Registry,
    aws: &Aws,
    source: Source<'_>,
    options: RunOptions<'_>,
    gates: Option<&super::gates::Gates>,
) -> Result<ExitCode, CliError> {
    let store = paths.backend(aws)?;
    let operation = match &source {
        Source::Fresh { destroy: true, .. } => "destroy",
        _ => "apply",
    };
    let store = store.as_ref();
    super::with_lock(store, operation, async move || locked(spec, store, registry, aws, source, options, gates).await)
        .await
}

async fn locked(
    spec: &Spec,
    store: &dyn StateBackend,
    registry: &Registry,
    aws: &Aws,
    source: Source<'_>,
    options: RunOptions<'_>,
    gates: Option<&super::gates::Gates>,
) -> Result<ExitCode, CliError> {
    let RunOptions { parallelism, json, builds } = options;
    let check = |plan: &Plan| gates.map_or(Ok(()), |g| g.check(plan));
    let show_plan = |plan: &Plan| {
        if json {
            JsonEvents::line("plan", json!({ "plan": render_json(plan, false) }));
        } else {
            print!("{}", super::style::plan(&render_text(plan)));
        }
    };
    let prior = store.load().await?;
    super::ensure_region(aws, spec, &prior).await?;
    let fresh = async |prior: &crate::state::State,
                       destroy: bool,
                       targets: &[ResourceAddr],
                       auto_approve: bool,
                       more_to_do: bool| {
        let options = PlanOptions { refresh: true, parallelism, destroy, builds: builds.clone(), ..Default::default() };
        let plan = super::plan::make_plan(spec, prior, registry, aws, options, targets).await?;
        show_plan(&plan);
        check(&plan)?;
        if (plan.has_changes() || more_to_do) && !auto_approve {
            if json {
                return Err(CliError::NotConfirmed(
                    "--json cannot ask for confirmation: pass --auto-approve, or apply a saved plan".into(),
                ));
            }
            confirm(destroy)?;
        }
        Ok::<_, CliError>(plan)
    };
    let (plan, destroy) = match source {
        Source::Fresh { destroy, targets, auto_approve } => {
            (fresh(&prior, destroy, targets, auto_approve, false).await?, destroy)
        }
        Source::Revert { auto_approve } => {
            // The undeclared children to remove enter the prior state as resources the spec
            // does not declare: the plan deletes them like any other.
            let mut undeclared = crate::plan::drift::undeclared(registry, aws, &prior).await?;
            crate::plan::drift::ignore(&mut undeclared, &spec.drift_ignore);
            let (with_children, removal) = crate::plan::revert::with_undeclared(registry, &prior, &undeclared);
            if !json {
                print!("{}", crate::plan::revert::render(&removal));
            }
            let plan = fresh(&with_children, false, &[], auto_approve, !removal.held.is_empty()).await?;
            let applied = carry_out(spec, store, registry, aws, &plan, false, options).await?;
            return remove_held(registry, aws, &removal.held, applied).await;
        }
        Source::Saved { path, saved } => {
            saved.check_fresh(path, spec, &prior)?;
            // Before any AWS call: an edited plan is refused whole, never carried out in part.
            saved.validate(path, spec, registry, builds, &prior).await?;
            let saved = *saved;
            show_plan(&saved.plan);
            check(&saved.plan)?;
            let destroy = saved.plan.destroy;
            (saved.plan, destroy)
        }
    };
    carry_out(spec, store, registry, aws, &plan, destroy, options).await
}

/// Applies a plan already shown (and confirmed): Ctrl-C stops new work, the calls in flight
/// finish and are recorded; then the outcome and the outputs are reported.
pub(super) async fn carry_out(
    spec: &Spec,
    store: &dyn StateBackend,
    registry: &Registry,
    aws: &Aws,
    plan: &Plan,
    destroy: bool,
    options: RunOptions<'_>,
) -> Result<ExitCode, CliError> {
    let RunOptions { parallelism, json, builds } = options;
    let cancelled = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(interrupt_watch(cancelled.clone()));
    let events: &dyn ApplyEvents = if json { &JsonEvents } else { &TextEvents };
    let applier = Applier {
        registry,
        aws,
        store,
        parallelism,
        cancelled: &cancelled,
        events,
        progress_every: PROGRESS_EVERY,
        builds,
    };
    let report = applier.apply(spec, plan).await;
    watcher.abort();
    let report = report?;
    let summary = Summary::of(plan, &report, destroy);
    if json { summary.json() } else { summary.text() }
}

/// Stops new work on the first Ctrl-C; the calls in flight finish and are recorded.
async fn interrupt_watch(cancelled: Arc<AtomicBool>) {
    if tokio::signal::ctrl_c().await.is_ok() {
        cancelled.store(true, Ordering::SeqCst);
        eprintln!(
            "\nInterrupt received: waiting for the calls in flight, then saving the state. Nothing new will start."
        );
    }
}

fn confirm(destroy: bool) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::NotConfirmed(
            "no terminal to confirm on: pass --auto-approve to apply without confirmation".into(),
        ));
    }
    let what = if destroy { "destroy all resources" } else { "perform these actions" };
    print!("\nDo you want to {what}?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        println!();
        Ok(())
    } else {
        Err(CliError::NotConfirmed(format!(
            "{} cancelled: nothing was changed",
            if destroy { "destroy" } else { "apply" }
        )))
    }
}

/// What an apply came to: counts, failures, skips, and the outputs.
struct Summary<'a> {
    destroy: bool,
    /// What was done, counted as the plan's summary counts what it would do.
    done: crate::plan::Summary,
    failures: Vec<(&'a ResourceAddr, &'a crate::apply::ApplyError)>,
    /// What was not applied: because a dependency failed (named), or interrupted (`None`).
    skipped: Vec<(&'a ResourceAddr, Option<String>)>,
    report: &'a ApplyReport,
}

impl<'a> Summary<'a> {
    fn of(plan: &Plan, report: &'a ApplyReport, destroy: bool) -> Self {
        let mut s =
            Summary { destroy, done: crate::plan::Summary::default(), failures: vec![], skipped: vec![], report };
        for (addr, outcome) in &report.outcomes {
            let action = plan.change(addr).map_or(Action::NoOp, |c| c.action);
            match outcome {
                NodeOutcome::Done => s.done.count(action),
                NodeOutcome::Failed(e) => s.failures.push((addr, e)),
                NodeOutcome::Skipped { because } => s.skipped.push((addr, Some(because.to_string()))),
                NodeOutcome::Cancelled => s.skipped.push((addr, None)),
            }
        }
        s
    }

    fn complete(&self) -> bool {
        self.failures.is_empty() && self.skipped.is_empty()
    }

    fn verdict(&self) -> Result<ExitCode, CliError> {
        if self.complete() {
            Ok(ExitCode::SUCCESS)
        } else {
            Err(CliError::ApplyFailed { failed: self.failures.len(), skipped: self.skipped.len() })
        }
    }

    /// Every failure once with its hint, what was skipped, the counts, and the outputs.
    fn text(&self) -> Result<ExitCode, CliError> {
        for (_, e) in &self.failures {
            eprintln!("{} {e}", paint(Tone::Error, "Error:"));
            if let Some(hint) = e.hint() {
                eprintln!("  hint: {hint}");
            }
        }
        for (addr, because) in &self.skipped {
            match because {
                Some(failed) => eprintln!("{addr}: not applied because {failed} failed"),
                None => eprintln!("{addr}: not applied: interrupted"),
            }
        }
        let verb = if self.destroy { "Destroy" } else { "Apply" };
        let forgotten = match self.done.forget {
            0 => String::new(),
            n => format!(", {n} forgotten (kept in AWS)"),
        };
        let counts = format!(
            "Resources: {} added, {} changed, {} destroyed{forgotten}.",
            self.done.add, self.done.change, self.done.destroy
        );
        if !self.complete() {
            println!("\n{} {counts}", paint(Tone::Error, &format!("{verb} incomplete.")));
            return self.verdict();
        }
        println!("\n{} {counts}", paint(Tone::Add, &format!("{verb} complete!")));
        if !self.report.state.outputs.is_empty() {
            println!("\nOutputs:\n\n{}", super::output::render(&self.report.state.outputs));
        }
        self.verdict()
    }

    /// The `outcome` line, then the `outputs` line.
    fn json(&self) -> Result<ExitCode, CliError> {
        let failures: Vec<_> = self
            .failures
            .iter()
            .map(|(addr, e)| json!({"address": addr.to_string(), "error": e.to_string(), "hint": e.hint()}))
            .collect();
        let skipped: Vec<_> = self
            .skipped
            .iter()
            .map(|(addr, because)| match because {
                Some(failed) => json!({"address": addr.to_string(), "because": format!("{failed} failed")}),
                None => json!({"address": addr.to_string(), "because": "interrupted"}),
            })
            .collect();
        JsonEvents::line(
            "outcome",
            json!({
                "operation": if self.destroy { "destroy" } else { "apply" },
                "complete": self.complete(),
                "summary": {
                    "add": self.done.add, "change": self.done.change, "destroy": self.done.destroy, "forget": self.done.forget,
                    "failed": self.failures.len(), "skipped": self.skipped.len(),
                },
                "failures": failures,
                "skipped": skipped,
            }),
        );
        let outputs: serde_json::Map<String, serde_json::Value> = self
            .report
            .state
            .outputs
            .iter()
            .map(|(k, o)| {
                let value = if o.sensitive { json!(crate::plan::SENSITIVE) } else { o.value.clone() };
                (k.clone(), json!({"value": value, "sensitive": o.sensitive}))
            })
            .collect();
        JsonEvents::line("outputs", json!({ "outputs": outputs }));
        self.verdict()
    }
}

/// After `drift --revert`'s plan: what managed resources hold that no kind manages, removed by
/// their kinds. A failure is named and makes the exit 1.
async fn remove_held(
    registry: &Registry,
    aws: &Aws,
    held: &[crate::plan::drift::Undeclared],
    applied: ExitCode,
) -> Result<ExitCode, CliError> {
    if held.is_empty() {
        return Ok(applied);
    }
    let failed = crate::plan::revert::remove_held(registry, aws, held).await;
    for u in held.iter().filter(|u| !failed.iter().any(|(what, _)| *what == u.describe())) {
        println!("Removed {}.", u.describe());
    }
    if failed.is_empty() {
        return Ok(applied);
    }
    for (what, e) in &failed {
        eprintln!("Error: could not remove {what}: {} failed: {}: {}", e.operation, e.code, e.message);
    }
    Ok(ExitCode::FAILURE)
}
