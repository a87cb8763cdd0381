//! `apply`: plan, confirm, and carry the plan out.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use super::{CliError, Paths};
use crate::apply::{Applier, ApplyReport, RetryPolicy};
use crate::graph::NodeOutcome;
use crate::plan::{Action, Plan, PlanOptions, Planner, render_text};
use crate::provider::{Aws, Registry};
use crate::spec::Spec;
use crate::state::LocalState;

/// Plan, ask for confirmation, then create, update and delete resources in dependency order.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    paths: Paths,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    auto_approve: bool,
    /// How many resources to change at once.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
}

pub async fn cmd_apply(args: ApplyArgs, registry: &Registry, aws: &Aws) -> Result<ExitCode, CliError> {
    let spec = args.paths.load_spec(registry)?;
    run(&spec, &args.paths, registry, aws, args.auto_approve, args.parallelism, false).await
}

/// The shared body of apply and destroy: lock, plan, confirm, apply, report.
pub async fn run(
    spec: &Spec,
    paths: &Paths,
    registry: &Registry,
    aws: &Aws,
    auto_approve: bool,
    parallelism: usize,
    destroy: bool,
) -> Result<ExitCode, CliError> {
    let store = paths.store();
    let lock = store.lock(if destroy { "destroy" } else { "apply" })?;
    let prior = store.load()?;
    super::ensure_region(aws, spec, &prior).await?;
    let options = PlanOptions { refresh: true, parallelism, destroy };
    let plan = Planner { registry, aws, options }.plan(spec, &prior).await?;
    print!("{}", render_text(&plan));
    if plan.has_changes() && !auto_approve {
        confirm(destroy)?;
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(interrupt_watch(cancelled.clone()));
    let applier = Applier {
        registry,
        aws,
        store: &store,
        lock: &lock,
        parallelism,
        retry: RetryPolicy::default(),
        cancelled: &cancelled,
    };
    let report = applier.apply(spec, &plan).await;
    watcher.abort();
    let report = report?;
    finish(&plan, &report, &store, destroy)
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
fn finish(plan: &Plan, report: &ApplyReport, store: &LocalState, destroy: bool) -> Result<ExitCode, CliError> {
    let (mut added, mut changed, mut destroyed, mut failed, mut skipped) = (0, 0, 0, 0, 0);
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
                Action::NoOp => {}
            },
            NodeOutcome::Failed(e) => {
                failed += 1;
                eprintln!("Error: {e}");
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
    if failed > 0 || skipped > 0 {
        println!("\n{verb} incomplete. Resources: {added} added, {changed} changed, {destroyed} destroyed.");
        return Err(CliError::ApplyFailed { failed, skipped });
    }
    println!("\n{verb} complete! Resources: {added} added, {changed} changed, {destroyed} destroyed.");
    if !report.state.outputs.is_empty() {
        println!("\nOutputs:\n\n{}", super::output::render(&report.state.outputs));
    }
    let _ = store;
    Ok(ExitCode::SUCCESS)
}
