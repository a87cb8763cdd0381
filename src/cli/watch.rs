//! `apply --watch`: after a normal apply, watches the sources of every resource built on this
//! machine (the [`Artifact`] facet: a Lambda's crate) and on each save rebuilds, plans and
//! applies, when the plan changes nothing but their code (or environment). Each round is a whole apply: locked, planned, journaled,
//! the state saved; only the lock is let go between rounds, so `plan` and `drift` can run.
//!
//! *Guarantees*: a compile error, or a plan that changes anything else, is shown and nothing is
//! applied: the version deployed before keeps serving. Ctrl-C between rounds stops at once; during
//! one, the calls in flight finish, the state is saved and the lock released before it stops.

use super::stdout::{out, outln};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::apply::{Approval, Approving, RunOptions, Source, reviewed_run, run};
use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::apply::ApplyEvents;
use crate::plan::revert::Removal;
use crate::plan::{Action, Plan, render_text};
use crate::provider::{Artifact, Aws, Registry};
use crate::run::Review;

/// Saves come in bursts (an editor writes a file, a backup, a rename): they are one change.
const SETTLE: Duration = Duration::from_millis(300);

pub async fn watch(
    paths: &Paths,
    registry: &Registry,
    aws: &Aws,
    options: RunOptions<'_>,
    gates: &super::gates::Gates,
) -> Result<ExitCode, CliError> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(tokio::sync::Notify::new());
    let signals = super::signals::Signals::listen().map_err(|e| CliError::Watch(format!("stop signals: {e}")))?;
    tokio::spawn({
        let (interrupted, stop) = (interrupted.clone(), stop.clone());
        signals.stop_then_exit("finishing this round, then stopping.", move |_| {
            interrupted.store(true, Ordering::SeqCst);
            stop.notify_one();
        })
    });

    let spec = paths.load_spec(registry)?;
    let first = Source::Fresh { destroy: false, targets: &[], replace: &[] };
    let approval = Approval { auto_approve: true, gates: Some(gates), ..Approval::new(false) };
    if let Err(e) = run(&spec, paths, registry, aws, first, options, approval).await {
        report_error(&e);
    }

    let (tx, mut saves) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
            && event.paths.iter().any(|p| is_source(p))
        {
            let _ = tx.send(Instant::now());
        }
    })
    .map_err(|e| CliError::Watch(e.to_string()))?;
    let mut watched: Vec<PathBuf> = Vec::new();
    loop {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        let sources = sources(paths, registry, aws).await;
        for dir in sources.iter().filter(|d| !watched.contains(d)) {
            watcher
                .watch(dir, RecursiveMode::Recursive)
                .map_err(|e| CliError::Watch(format!("{}: {e}", dir.display())))?;
        }
        for dir in watched.iter().filter(|d| !sources.contains(d)) {
            let _ = watcher.unwatch(dir);
        }
        watched = sources;
        if watched.is_empty() {
            outln!("Nothing to watch: nothing in the state is built from source.");
            return Ok(ExitCode::SUCCESS);
        }
        let list: Vec<String> = watched.iter().map(|d| d.display().to_string()).collect();
        outln!("\nWatching {} for changes (Ctrl-C to stop)...", list.join(", "));
        let saved_at = tokio::select! {
            _ = stop.notified() => break,
            save = saves.recv() => match save { Some(at) => at, None => break },
        };
        tokio::time::sleep(SETTLE).await;
        while saves.try_recv().is_ok() {}
        options.builds.forget();
        if let Err(e) = round(paths, registry, aws, options, saved_at).await {
            report_error(&e);
            outln!("Not deployed: the version deployed before keeps serving.");
        }
    }
    outln!("Stopped watching.");
    Ok(ExitCode::SUCCESS)
}

/// One save: rebuild, plan what is built here, and apply if only code changes.
async fn round(
    paths: &Paths,
    registry: &Registry,
    aws: &Aws,
    options: RunOptions<'_>,
    saved_at: Instant,
) -> Result<(), CliError> {
    let spec = paths.load_spec(registry)?;
    let review = CodeOnly { registry, saved_at, planned: std::sync::Mutex::default(), approval: Approval::new(false) };
    // A round applies nothing but what is built here: only that is read from AWS. Anything
    // else the plan would change (a spec edit) makes the round stop and ask for a reviewed apply.
    let ran = reviewed_run(&spec, paths, registry, aws, Source::Built, options, &review).await?;
    if ran.report.is_none() {
        return Ok(());
    }
    let outcome = super::apply::render(&ran, false)?;
    if outcome == ExitCode::SUCCESS {
        let changed: Vec<String> =
            ran.plan.changes.iter().filter(|c| c.action != Action::NoOp).map(|c| c.addr.to_string()).collect();
        let planned = review.planned.lock().expect("not poisoned").unwrap_or_default();
        outln!(
            "{} live {:.1} s after the save (build and plan {:.1} s, apply {:.1} s).",
            changed.join(", "),
            saved_at.elapsed().as_secs_f64(),
            planned.as_secs_f64(),
            (saved_at.elapsed() - planned).as_secs_f64()
        );
    }
    Ok(())
}

/// A watch round's review: a plan that changes nothing is not applied, nor one that changes
/// more than code (that needs a reviewed `apply`).
struct CodeOnly<'a> {
    registry: &'a Registry,
    saved_at: Instant,
    /// How long after the save the plan was ready.
    planned: std::sync::Mutex<Option<Duration>>,
    approval: Approval<'a>,
}

impl Approving for CodeOnly<'_> {
    fn approval(&self) -> &Approval<'_> {
        &self.approval
    }
}

impl Review for CodeOnly<'_> {
    type Error = CliError;

    fn took_over(&self, dead: &crate::state::TookOver) {
        super::report_took_over(dead);
    }

    fn review(&self, plan: &Plan, _removal: Option<&Removal>, _destroy: bool) -> Result<bool, CliError> {
        *self.planned.lock().expect("not poisoned") = Some(self.saved_at.elapsed());
        if !plan.has_changes() {
            outln!("No change to deploy: the save did not change what is built.");
            return Ok(false);
        }
        out!("{}", super::style::plan(&render_text(plan)));
        if let Some(why) = more_than_code(self.registry, plan) {
            outln!("Not applied: {why}. Run `apply` to review and apply it.");
            return Ok(false);
        }
        self.approval.arm();
        Ok(true)
    }

    fn events(&self) -> &dyn ApplyEvents {
        self.approval.events()
    }
}

/// The [`Artifact`] facet of the resource's kind, if it has one.
fn artifact<'r>(registry: &'r Registry, addr: &ResourceAddr) -> Option<&'r dyn Artifact> {
    registry.get(&addr.kind).and_then(|k| k.artifact())
}

/// Why a plan is more than a code change, if it is.
fn more_than_code(registry: &Registry, plan: &Plan) -> Option<String> {
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp || c.imported || !c.deposed.is_empty()) {
        let built = artifact(registry, &c.addr);
        if c.action != Action::Update || built.is_none() || c.imported || !c.deposed.is_empty() {
            let what = match c.action {
                Action::Create => "created",
                Action::Replace => "replaced",
                Action::Delete => "destroyed",
                Action::Forget => "forgotten",
                Action::NoOp if c.imported => "imported",
                _ => "changed",
            };
            return Some(format!("{} is to be {what}", c.addr));
        }
        let code = built.map_or(&[][..], |a| a.code_attributes());
        if let Some(other) = c.changes.iter().find(|a| !code.contains(&a.name.as_str())) {
            return Some(format!("{} changes {} as well as code", c.addr, other.name));
        }
    }
    None
}

/// The source directories of what the state records as built here.
async fn sources(paths: &Paths, registry: &Registry, aws: &Aws) -> Vec<PathBuf> {
    let Ok(store) = paths.backend(aws) else { return Vec::new() };
    let Ok(state) = store.load().await else { return Vec::new() };
    // As written in the spec: relative to its folder.
    let dir = crate::spec::spec_dir(&paths.spec);
    let mut dirs: Vec<PathBuf> = state
        .resources
        .iter()
        .filter_map(|(addr, r)| artifact(registry, addr).map(|a| a.sources(&r.attributes)))
        .flatten()
        .map(|s| dir.join(s))
        .filter_map(|s| std::fs::canonicalize(s).ok())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// A file whose change can change a build: not build output, not version control.
fn is_source(path: &Path) -> bool {
    !path.components().any(|c| matches!(c, Component::Normal(n) if n == "target" || n == ".git"))
}

fn report_error(e: &CliError) {
    eprintln!("{} {e}", super::style::paint(super::style::Tone::Destroy, "Error:"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AttrChange, ResourceChange};
    use crate::state::State;

    fn change(kind: &str, action: Action, attrs: &[&str]) -> ResourceChange {
        ResourceChange {
            id: Some("fn".into()),
            changes: attrs
                .iter()
                .map(|a| AttrChange {
                    name: a.to_string(),
                    before: serde_json::json!("a"),
                    after: serde_json::json!("b"),
                    forces_replacement: false,
                })
                .collect(),
            ..ResourceChange::new(ResourceAddr::new(kind, "fn"), action)
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            changes,
            refreshed: State::new(),
            prior: State::new(),
            lookups: Default::default(),
            destroy: false,
            permissions: vec![],
            policy: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn only_a_plan_of_function_code_and_environment_updates_is_applied_by_a_watch_round() {
        let code = change("lambda_function", Action::Update, &["code_sha256", "zip_file", "build_profile"]);
        let env = change("lambda_function", Action::Update, &["environment"]);
        assert_eq!(more_than_code(&Registry::aws(), &plan(vec![code, env])), None);

        // Code and a role: the normal way, reviewed.
        let with_role = change("lambda_function", Action::Update, &["code_sha256", "role"]);
        assert_eq!(
            more_than_code(&Registry::aws(), &plan(vec![with_role])).as_deref(),
            Some("lambda_function.fn changes role as well as code")
        );
        let role = change("iam_role", Action::Update, &["assume_role_policy"]);
        let code = change("lambda_function", Action::Update, &["code_sha256"]);
        assert_eq!(
            more_than_code(&Registry::aws(), &plan(vec![code, role])).as_deref(),
            Some("iam_role.fn is to be changed")
        );
        // A replacement (a renamed function) or a new resource is never a code change.
        let renamed = change("lambda_function", Action::Replace, &["name"]);
        assert_eq!(
            more_than_code(&Registry::aws(), &plan(vec![renamed])).as_deref(),
            Some("lambda_function.fn is to be replaced")
        );
        let created = change("lambda_function", Action::Create, &[]);
        assert_eq!(
            more_than_code(&Registry::aws(), &plan(vec![created])).as_deref(),
            Some("lambda_function.fn is to be created")
        );
    }
}
