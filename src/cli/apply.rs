//! `apply`: plan (or read a saved plan), confirm, and carry the plan out.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use std::time::Duration;

use crate::apply::{Applier, ApplyEvents, ApplyReport, RetryPolicy};
use crate::graph::NodeOutcome;
use crate::plan::saved::SavedPlan;
use crate::plan::{Action, Plan, PlanOptions, render_text};
use crate::provider::{Aws, Registry};
use crate::retry::RetryNotice;
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
}

/// What to carry out: a fresh plan, or a saved one.
pub enum Source<'a> {
    Fresh { destroy: bool, targets: &'a [ResourceAddr], auto_approve: bool },
    Saved { path: &'a Path, saved: Box<SavedPlan> },
}

pub async fn cmd_apply(args: ApplyArgs, registry: &Registry, aws: &Aws) -> Result<ExitCode, CliError> {
    match &args.plan_file {
        Some(path) => {
            let saved = SavedPlan::read(path)?;
            let mut paths = args.paths.clone();
            paths.spec = PathBuf::from(&saved.spec);
            paths.state.get_or_insert_with(|| saved.state.clone());
            let spec = paths.load_spec(registry)?;
            let source = Source::Saved { path, saved: Box::new(saved) };
            run(&spec, &paths, registry, aws, source, args.parallelism).await
        }
        None => {
            let spec = args.paths.load_spec(registry)?;
            let source = Source::Fresh { destroy: false, targets: &args.targets, auto_approve: args.auto_approve };
            run(&spec, &args.paths, registry, aws, source, args.parallelism).await
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
    parallelism: usize,
) -> Result<ExitCode, CliError> {
    let store = paths.backend(aws);
    let operation = match &source {
        Source::Fresh { destroy: true, .. } => "destroy",
        _ => "apply",
    };
    let store = store.as_ref();
    super::with_lock(store, operation, async move || locked(spec, store, registry, aws, source, parallelism).await)
        .await
}

async fn locked(
    spec: &Spec,
    store: &dyn StateBackend,
    registry: &Registry,
    aws: &Aws,
    source: Source<'_>,
    parallelism: usize,
) -> Result<ExitCode, CliError> {
    let prior = store.load().await?;
    super::ensure_region(aws, spec, &prior).await?;
    let (plan, destroy) = match source {
        Source::Fresh { destroy, targets, auto_approve } => {
            let options = PlanOptions { refresh: true, parallelism, destroy, ..Default::default() };
            let plan = super::plan::make_plan(spec, &prior, registry, aws, options, targets).await?;
            print!("{}", render_text(&plan));
            if plan.has_changes() && !auto_approve {
                confirm(destroy)?;
            }
            (plan, destroy)
        }
        Source::Saved { path, saved } => {
            saved.check_fresh(path, spec, &prior)?;
            let saved = *saved;
            print!("{}", render_text(&saved.plan));
            let destroy = saved.plan.destroy;
            (saved.plan, destroy)
        }
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(interrupt_watch(cancelled.clone()));
    let events = TextEvents;
    let applier = Applier {
        registry,
        aws,
        store,
        parallelism,
        retry: RetryPolicy::default(),
        cancelled: &cancelled,
        events: &events,
    };
    let report = applier.apply(spec, &plan).await;
    watcher.abort();
    finish(&plan, &report?, destroy)
}

/// Renders an apply's events as Terraform users know them.
struct TextEvents;

impl ApplyEvents for TextEvents {
    fn started(&self, addr: &ResourceAddr, action: Action, id: Option<&str>) {
        let id = id.unwrap_or_default();
        match action {
            Action::Create => println!("{addr}: Creating..."),
            Action::Update => println!("{addr}: Modifying... [id={id}]"),
            Action::Replace => println!("{addr}: Replacing... [id={id}]"),
            Action::Delete => println!("{addr}: Destroying... [id={id}]"),
            Action::Forget => {}
            Action::NoOp => {}
        }
    }

    fn retrying(&self, addr: &ResourceAddr, notice: &RetryNotice) {
        let e = notice.error;
        println!(
            "{addr}: {} answered {}: trying again in {:.1}s (attempt {} failed)",
            e.operation,
            e.code,
            notice.delay.as_secs_f64(),
            notice.attempt
        );
    }

    fn adopted(&self, addr: &ResourceAddr, id: &str) {
        println!("{addr}: Found [id={id}], made by an earlier attempt that did not hear back: adopting it");
    }

    fn left_to_aws(&self, addr: &ResourceAddr, why: &str) {
        println!("{addr}: not deleted: {why}; it is no longer managed");
    }

    fn intent_dropped(&self, addr: &ResourceAddr) {
        println!("{addr}: an interrupted create made nothing");
    }

    fn finished(&self, addr: &ResourceAddr, action: Action, id: Option<&str>, elapsed: Duration) {
        let verb = match action {
            Action::NoOp => "Import",
            Action::Create => "Creation",
            Action::Update => "Modifications",
            Action::Replace => "Replacement",
            Action::Delete => "Destruction",
            Action::Forget => "Forgetting (kept in AWS)",
        };
        let elapsed = if elapsed.as_secs() >= 1 {
            format!("{}s", elapsed.as_secs())
        } else {
            format!("{}ms", elapsed.as_millis())
        };
        match id {
            Some(id) => println!("{addr}: {verb} complete after {elapsed} [id={id}]"),
            None => println!("{addr}: {verb} complete after {elapsed}"),
        }
    }
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

/// Reports every failure once, the summary, and the outputs.
fn finish(plan: &Plan, report: &ApplyReport, destroy: bool) -> Result<ExitCode, CliError> {
    let (mut added, mut changed, mut destroyed, mut forgotten, mut failed, mut skipped) = (0, 0, 0, 0, 0, 0);
    for (addr, outcome) in &report.outcomes {
        let action = plan.change(addr).map_or(Action::NoOp, |c| c.action);
        match outcome {
            NodeOutcome::Done => match action {
                Action::Create => added += 1,
                Action::Update => changed += 1,
                Action::Replace => {
                    added += 1;
                    destroyed += 1;
                }
                Action::Delete => destroyed += 1,
                Action::Forget => forgotten += 1,
                Action::NoOp => {}
            },
            NodeOutcome::Failed(e) => {
                failed += 1;
                eprintln!("Error: {e}");
                if let Some(hint) = e.hint() {
                    eprintln!("  hint: {hint}");
                }
            }
            NodeOutcome::Skipped { because } => {
                skipped += 1;
                eprintln!("{addr}: not applied because {because} failed");
            }
            NodeOutcome::Cancelled => {
                skipped += 1;
                eprintln!("{addr}: not applied: interrupted");
            }
        }
    }
    let verb = if destroy { "Destroy" } else { "Apply" };
    let forgotten = if forgotten > 0 { format!(", {forgotten} forgotten (kept in AWS)") } else { String::new() };
    if failed > 0 || skipped > 0 {
        println!("\n{verb} incomplete. Resources: {added} added, {changed} changed, {destroyed} destroyed{forgotten}.");
        return Err(CliError::ApplyFailed { failed, skipped });
    }
    println!("\n{verb} complete! Resources: {added} added, {changed} changed, {destroyed} destroyed{forgotten}.");
    if !report.state.outputs.is_empty() {
        println!("\nOutputs:\n\n{}", super::output::render(&report.state.outputs));
    }
    Ok(ExitCode::SUCCESS)
}
