//! `undo`: plan AWS back to what an earlier state recorded, name what cannot come back, and
//! carry the plan out as `apply` does (or save it for `apply FILE`).

use super::stdout::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::apply::{Approval, Approving, RunOptions, reviewed_run};
use super::{CliError, Paths};
use crate::apply::ApplyEvents;
use crate::build::Builds;
use crate::plan::revert::Removal;
use crate::plan::undo::{Loss, losses};
use crate::plan::{Plan, PlanOptions};
use crate::provider::{Aws, Registry};
use crate::run::{Review, Source};
use crate::spec::Spec;
use crate::state::{State, StateBackend};

/// Put AWS back to what an earlier state recorded: settings changed since go back, resources
/// created since are deleted, resources deleted since are created again. The plan is shown and
/// confirmed as apply's is; what cannot come back as it was (a deleted bucket's objects, code
/// built from a source that changed since) is named first and needs --allow-loss.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The state serial to go back to (`state history` lists the kept ones) [default: the state
    /// the last command that wrote started from]
    #[arg(long, value_name = "SERIAL")]
    to: Option<u64>,
    #[command(flatten)]
    paths: Paths,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    auto_approve: bool,
    /// Go ahead although something cannot come back as it was.
    #[arg(long)]
    allow_loss: bool,
    /// Save the plan to this file instead of applying it; `cruddur-infra apply FILE` carries
    /// out exactly it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// How many resources to change at once.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Print one JSON object per line (the plan, each event, the outcome) instead of text;
    /// needs --auto-approve or --out.
    #[arg(long)]
    json: bool,
}

pub async fn cmd_undo(args: UndoArgs, registry: &Registry, aws: &Aws, builds: &Builds) -> Result<ExitCode, CliError> {
    let store = args.paths.backend(aws)?;
    let then = earlier_state(store.as_ref(), args.to).await?;
    let spec = spec_of(&then, &args.paths, registry)?;
    if !args.json {
        outln!("Undo: back to state serial {}{}.\n", then.serial, written(&then));
    }
    match &args.out {
        Some(path) => {
            let prior = store.load().await?;
            super::ensure_region(aws, &spec, &prior).await?;
            let options = PlanOptions {
                refresh: true,
                parallelism: args.parallelism,
                builds: builds.clone(),
                ..Default::default()
            };
            let plan = super::plan::make_plan(&spec, &prior, registry, aws, options, &[]).await?;
            // As `plan --out` prints it: the plan's JSON document, not apply's event stream.
            super::ReportFormat { json: args.json, markdown: false, show_sensitive: false }.print_plan(&plan);
            let lost = losses(&plan.changes, &plan.prior, &then, registry);
            check_losses(&lost, then.serial, args.allow_loss, Listed::AsText { stderr: args.json })?;
            let mut saved = super::plan::saved_plan(&args.paths, &spec, &store.location(), &[], builds.profile(), plan);
            saved.undo_of = Some(then.serial);
            super::plan::save(&args.paths.codec(aws)?, path, saved).await?;
            if !args.json {
                eprintln!(
                    "\nSaved the plan to {}: `cruddur-infra apply {}` carries out exactly these actions.",
                    path.display(),
                    path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let options = RunOptions { parallelism: args.parallelism, json: args.json, builds };
            let review = UndoReview {
                approval: Approval { auto_approve: args.auto_approve, ..Approval::new(args.json) },
                then: &then,
                allow_loss: args.allow_loss,
                registry,
            };
            let ran = reviewed_run(&spec, &args.paths, registry, aws, Source::Undo, options, &review).await?;
            super::apply::render(&ran, args.json)
        }
    }
}

/// The spec a saved `undo --out` plan was made from, made again (`apply FILE`).
pub(super) async fn saved_spec(serial: u64, paths: &Paths, registry: &Registry, aws: &Aws) -> Result<Spec, CliError> {
    let store = paths.backend(aws)?;
    let then = earlier_state(store.as_ref(), Some(serial)).await?;
    spec_of(&then, paths, registry)
}

fn spec_of(then: &State, paths: &Paths, registry: &Registry) -> Result<Spec, CliError> {
    let mut spec = crate::plan::undo::spec_of(then, &paths.spec, registry)?;
    // Its names have the stage in them already; what it makes is still tagged with it.
    spec.stage.clone_from(&paths.stage);
    Ok(spec)
}

/// The kept state with serial `to`, or the newest kept one.
async fn earlier_state(store: &dyn StateBackend, to: Option<u64>) -> Result<State, CliError> {
    let serial = match to {
        Some(serial) => serial,
        None => *store.kept().await?.last().ok_or_else(|| {
            CliError::NotFound(format!(
                "no earlier state is kept for {}: there is nothing to undo (each command that writes the state keeps \
                 the one it started from, unless --state-history is 0)",
                store.location()
            ))
        })?,
    };
    store.load_kept(serial).await?.ok_or_else(|| {
        CliError::NotFound(format!(
            "state serial {serial} is not kept for {}: `cruddur-infra state history` lists the ones that are",
            store.location()
        ))
    })
}

/// `, saved by apply (ARN) at TIME`, when the state says.
fn written(then: &State) -> String {
    match &then.written {
        Some(w) => format!(", saved by {} ({}) at {}", w.command, w.by, crate::state::history::rfc3339(w.at)),
        None => String::new(),
    }
}

/// Where the losses are named: a line of apply's JSON event stream, or text (on stderr when
/// stdout holds a JSON document).
#[derive(Clone, Copy)]
enum Listed {
    AsEvent,
    AsText { stderr: bool },
}

/// Names what cannot come back; without `allow_loss`, refuses to go on if anything is named.
fn check_losses(losses: &[Loss], serial: u64, allow_loss: bool, listed: Listed) -> Result<(), CliError> {
    if losses.is_empty() {
        return Ok(());
    }
    match listed {
        Listed::AsEvent => {
            super::events::JsonEvents::line("undo_losses", serde_json::json!({ "serial": serial, "losses": losses }))
        }
        Listed::AsText { stderr } => {
            let mut text = format!("\nWhat undo cannot bring back as it was at serial {serial}:");
            for l in losses {
                text.push_str(&format!("\n  - {} {}", l.addr, l.what));
            }
            if stderr {
                eprintln!("{text}");
            } else {
                outln!("{text}");
            }
        }
    }
    if allow_loss {
        return Ok(());
    }
    Err(CliError::NotConfirmed(format!(
        "undo stopped before any change: {} thing(s) cannot come back as {} at serial {serial} (listed above); \
         pass --allow-loss to go ahead anyway",
        losses.len(),
        if losses.len() == 1 { "it was" } else { "they were" }
    )))
}

/// Apply's review, with what cannot come back named (and refused without --allow-loss) before
/// the confirmation.
struct UndoReview<'a> {
    approval: Approval<'a>,
    then: &'a State,
    allow_loss: bool,
    registry: &'a Registry,
}

impl Approving for UndoReview<'_> {
    fn approval(&self) -> &Approval<'_> {
        &self.approval
    }
}

impl Review for UndoReview<'_> {
    type Error = CliError;

    fn took_over(&self, dead: &crate::state::TookOver) {
        self.approval.took_over(dead);
    }

    fn review(&self, plan: &Plan, removal: Option<&Removal>, destroy: bool) -> Result<bool, CliError> {
        let lost = losses(&plan.changes, &plan.prior, self.then, self.registry);
        if !lost.is_empty() && !self.allow_loss {
            self.approval.show(plan);
        }
        let listed = if self.approval.json { Listed::AsEvent } else { Listed::AsText { stderr: false } };
        check_losses(&lost, self.then.serial, self.allow_loss, listed)?;
        self.approval.review(plan, removal, destroy)
    }

    fn events(&self) -> &dyn ApplyEvents {
        self.approval.events()
    }
}
