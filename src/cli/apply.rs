//! `apply`: plan (or read a saved plan), confirm, and carry the plan out.

use super::stdout::{out, outln};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use serde_json::json;

use super::events::{JsonEvents, TextEvents};
use super::style::{Tone, paint};
use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::apply::{ApplyEvents, ApplyReport};
use crate::build::Builds;
use crate::graph::NodeOutcome;
use crate::plan::json::render_json;
use crate::plan::revert::Removal;
use crate::plan::saved::SavedPlan;
use crate::plan::{Action, Plan, render_text};
use crate::provider::{Aws, Registry};
pub use crate::run::Source;
use crate::run::{Ran, Review, Run};
use crate::spec::Spec;

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
    /// Replace this resource even where an update in place (or nothing) would do: a new object
    /// for a stuck or suspect one (repeatable).
    #[arg(long = "replace", value_name = "ADDR", conflicts_with = "plan_file")]
    replace: Vec<ResourceAddr>,
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
            if paths.stage.is_some() && paths.stage != saved.stage {
                return Err(CliError::Stages(format!(
                    "{} was planned for {}, not for stage {}: apply it without --stage, or plan again for that stage",
                    path.display(),
                    saved.stage.as_deref().map_or_else(|| "the main stack".to_string(), |s| format!("stage {s}")),
                    paths.stage.as_deref().unwrap_or_default()
                )));
            }
            paths.stage.clone_from(&saved.stage);
            paths.spec = PathBuf::from(&saved.spec);
            if paths.state.is_none() {
                // The plan's own state: its stage's already.
                paths.state = Some(saved.state.clone());
                paths.state_is_staged = true;
            }
            let spec = match saved.undo_of {
                // `undo --out`: the spec the kept state recorded, made again.
                Some(serial) => super::undo::saved_spec(serial, &paths, registry, aws).await?,
                None => paths.load_spec(registry)?,
            };
            let source = Source::Saved { path, saved: Box::new(saved) };
            let approval = Approval { auto_approve: true, gates: Some(&args.gates), ..Approval::new(options.json) };
            run(&spec, &paths, registry, aws, source, options, approval).await
        }
        None => {
            let spec = args.paths.load_spec(registry)?;
            super::plan::check_replace(&spec, &args.replace)?;
            let source = Source::Fresh { destroy: false, targets: &args.targets, replace: &args.replace };
            let approval = Approval {
                auto_approve: args.auto_approve,
                gates: Some(&args.gates),
                targeted: !args.targets.is_empty(),
                ..Approval::new(options.json)
            };
            run(&spec, &args.paths, registry, aws, source, options, approval).await
        }
    }
}

/// One plan-then-apply run of the engine ([`crate::run`]), reviewed by `approval` and
/// rendered: the plan, the confirmation, the outcome and the outputs.
pub async fn run(
    spec: &Spec,
    paths: &Paths,
    registry: &Registry,
    aws: &Aws,
    source: Source<'_>,
    options: RunOptions<'_>,
    approval: Approval<'_>,
) -> Result<ExitCode, CliError> {
    let ran = reviewed_run(spec, paths, registry, aws, source, options, &approval).await?;
    render(&ran, options.json)
}

/// A review that approves through an [`Approval`], which arms Ctrl-C.
pub(super) trait Approving: Review<Error = CliError> {
    fn approval(&self) -> &Approval<'_>;
}

impl Approving for Approval<'_> {
    fn approval(&self) -> &Approval<'_> {
        self
    }
}

/// The engine's run with `review`; Ctrl-C is armed once the plan is approved and disarmed when
/// the run ends.
pub(super) async fn reviewed_run(
    spec: &Spec,
    paths: &Paths,
    registry: &Registry,
    aws: &Aws,
    source: Source<'_>,
    options: RunOptions<'_>,
    review: &impl Approving,
) -> Result<Ran, CliError> {
    let approval = review.approval();
    let store = paths.backend(aws)?;
    let run = Run {
        registry,
        aws,
        store: store.as_ref(),
        parallelism: options.parallelism,
        builds: options.builds,
        cancelled: &approval.cancelled,
    };
    let ran = run.run(spec, source, review).await;
    approval.disarm();
    ran
}

/// How the command reviews a plan: shows it, checks the gates, asks (unless approved ahead),
/// and arms Ctrl-C once the plan is approved.
pub struct Approval<'a> {
    pub json: bool,
    pub auto_approve: bool,
    pub gates: Option<&'a super::gates::Gates>,
    /// `--target` is in effect: the plan may be incomplete, and says so.
    pub targeted: bool,
    pub(super) cancelled: Arc<AtomicBool>,
    pub(super) watcher: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Approval<'_> {
    pub fn new(json: bool) -> Self {
        Approval {
            json,
            auto_approve: false,
            gates: None,
            targeted: false,
            cancelled: Arc::default(),
            watcher: std::sync::Mutex::default(),
        }
    }

    /// From here SIGINT and SIGTERM stop new work instead of the process (not while asking: a prompt
    /// interrupted ends the command, as it always has).
    pub fn arm(&self) {
        // Listening starts here, before any work: a signal that came before the watcher first ran
        // would otherwise end the process (a busy machine may run it late).
        let watcher = tokio::spawn(interrupt_watch(super::signals::Signals::listen(), self.cancelled.clone()));
        *self.watcher.lock().expect("not poisoned") = Some(watcher);
    }

    pub(super) fn disarm(&self) {
        if let Some(watcher) = self.watcher.lock().expect("not poisoned").take() {
            watcher.abort();
        }
    }

    pub fn show(&self, plan: &Plan) {
        if self.json {
            JsonEvents::line("plan", json!({ "plan": render_json(plan, false) }));
        } else {
            out!("{}", super::style::plan(&render_text(plan)));
        }
    }
}

impl Review for Approval<'_> {
    type Error = CliError;

    fn took_over(&self, dead: &crate::state::TookOver) {
        super::report_took_over(dead);
    }

    fn review(&self, plan: &Plan, removal: Option<&Removal>, destroy: bool) -> Result<bool, CliError> {
        if let Some(removal) = removal.filter(|_| !self.json) {
            out!("{}", crate::plan::revert::render(removal));
        }
        if self.targeted {
            eprintln!(
                "Note: --target is in effect; the plan may be incomplete. Plan without it before you rely on the result.\n"
            );
        }
        self.show(plan);
        if let Some(gates) = self.gates {
            gates.check(plan)?;
        }
        let more_to_do = removal.is_some_and(|r| !r.held.is_empty());
        if (plan.has_changes() || more_to_do) && !self.auto_approve {
            if self.json {
                return Err(CliError::NotConfirmed(
                    "--json cannot ask for confirmation: pass --auto-approve, or apply a saved plan".into(),
                ));
            }
            confirm(destroy)?;
        }
        self.arm();
        Ok(true)
    }

    fn events(&self) -> &dyn ApplyEvents {
        if self.json { &JsonEvents } else { &TextEvents }
    }
}

/// The outcome of a run: what was done, what failed or was skipped, the outputs, and what a
/// revert removed beside the plan.
pub(super) fn render(ran: &Ran, json: bool) -> Result<ExitCode, CliError> {
    let Some(report) = &ran.report else { return Ok(ExitCode::SUCCESS) };
    let summary = Summary::of(&ran.plan, report, ran.destroy);
    let applied = if json { summary.json() } else { summary.text() }?;
    for u in &ran.removed {
        outln!("Removed {}.", u.describe());
    }
    for (u, e) in &ran.not_removed {
        eprintln!("Error: could not remove {}: {} failed: {}: {}", u.describe(), e.operation, e.code, e.message);
    }
    Ok(if ran.not_removed.is_empty() { applied } else { ExitCode::FAILURE })
}

/// Stops new work on the first SIGINT or SIGTERM (the calls in flight finish and are
/// recorded); a second exits at once.
async fn interrupt_watch(listening: std::io::Result<super::signals::Signals>, cancelled: Arc<AtomicBool>) {
    match listening {
        Ok(signals) => {
            let doing = "waiting for the calls in flight, then saving the state.";
            let stop = |by| {
                super::signals::record(by);
                cancelled.store(true, Ordering::SeqCst);
            };
            signals.stop_then_exit(doing, stop).await;
        }
        Err(e) => eprintln!("warning: cannot listen for stop signals ({e}): an interrupt ends the command at once"),
    }
}

fn confirm(destroy: bool) -> Result<(), CliError> {
    confirm_text(if destroy { "destroy all resources" } else { "perform these actions" }).map_err(|e| match e {
        CliError::NotConfirmed(why) if why.starts_with("cancelled") => {
            CliError::NotConfirmed(format!("{} {why}", if destroy { "destroy" } else { "apply" }))
        }
        other => other,
    })
}

/// Asks `Do you want to WHAT?` on the terminal; only `yes` goes on.
pub(super) fn confirm_text(what: &str) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::NotConfirmed(
            "no terminal to confirm on: pass --auto-approve to go on without confirmation".into(),
        ));
    }
    // Flushed by `out!`, so the prompt shows before the answer is read.
    out!("\nDo you want to {what}?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        outln!();
        Ok(())
    } else {
        Err(CliError::NotConfirmed("cancelled: nothing was changed".into()))
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
            outln!("\n{} {counts}", paint(Tone::Error, &format!("{verb} incomplete.")));
            return self.verdict();
        }
        outln!("\n{} {counts}", paint(Tone::Add, &format!("{verb} complete!")));
        if !self.report.state.outputs.is_empty() {
            outln!("\nOutputs:\n\n{}", super::output::render(&self.report.state.outputs));
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
