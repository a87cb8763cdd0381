//! `drift`: what changed in AWS since the last apply, for scheduled checks in CI.

use super::stdout::{out, outln};
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::build::Builds;
use crate::plan::{PlanOptions, Planner, drift};
use crate::provider::{Aws, Registry};

/// Read every resource in the state from AWS and report what no longer matches the last apply
/// (spec edits are ignored), and the children in their scope the spec does not declare. Exit
/// 0: no drift, 2: drift, 1: error. `--revert` puts AWS back as the spec says; `--adopt`
/// writes the spec change that accepts what is live.
#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    paths: Paths,
    #[command(flatten)]
    format: super::ReportFormat,
    /// Concurrent AWS reads.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Put AWS back as the spec says: apply the spec, and remove the undeclared children the
    /// engine can remove (a policy statement, a subscription, an API's route, integration,
    /// authorizer or stage, a record set). Shows the plan and asks, like apply.
    #[arg(long, conflicts_with_all = ["adopt", "json", "markdown"])]
    revert: bool,
    /// With --revert: do not ask for confirmation.
    #[arg(long, requires = "revert")]
    auto_approve: bool,
    /// Write the spec change that accepts what is live into the spec file, keeping its comments
    /// and layout: changed values where they are written, attributes the spec left unset
    /// added, undeclared children added to drift.ignore. What cannot be adopted is named.
    #[arg(long, conflicts_with_all = ["json", "markdown"])]
    adopt: bool,
}

pub async fn cmd_drift(args: DriftArgs, registry: &Registry, aws: &Aws, builds: &Builds) -> Result<ExitCode, CliError> {
    if args.revert {
        let spec = args.paths.load_spec(registry)?;
        let source = super::apply::Source::Revert;
        let options = super::apply::RunOptions { parallelism: args.parallelism, json: false, builds };
        let approval = super::apply::Approval { auto_approve: args.auto_approve, ..super::apply::Approval::new(false) };
        return super::apply::run(&spec, &args.paths, registry, aws, source, options, approval).await;
    }
    let recorded = args.paths.backend(aws)?.load_existing().await?;
    let options = PlanOptions { refresh: true, parallelism: args.parallelism, destroy: false, ..Default::default() };
    let live = Planner { registry, aws, options }.refresh_only(&recorded).await?;
    let found = drift::detect(registry, &recorded, &live);
    // Closed world: children of what the state manages that nothing manages.
    let mut undeclared = drift::undeclared(registry, aws, &live).await?;
    // The spec's `drift.ignore` (the spec is read for nothing else: its edits are not drift).
    match args.paths.load_spec(registry) {
        Ok(spec) => drift::ignore(&mut undeclared, &spec.drift_ignore),
        Err(e) => eprintln!("Warning: the spec could not be read, so no drift.ignore applies: {e}"),
    }
    if args.adopt {
        return adopt(&args.paths, registry, &found, &undeclared);
    }
    if args.format.json {
        let json = drift::render_json(&found, &undeclared, args.format.show_sensitive);
        outln!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    } else if args.format.markdown {
        out!("{}", drift::render_markdown(&found, &undeclared));
    } else {
        out!("{}", super::style::plan(&drift::render_text(&found, &undeclared)));
    }
    Ok(if drift::drifted(&found, &undeclared) { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// `drift --adopt`: the spec rewritten to accept what is live, checked, then written in place.
fn adopt(
    paths: &Paths,
    registry: &Registry,
    found: &[drift::Drifted],
    undeclared: &[drift::Undeclared],
) -> Result<ExitCode, CliError> {
    use crate::spec::adopt::{Accept, patch};
    let mut accepts = Vec::new();
    let mut left = Vec::new();
    for d in found {
        if d.deleted {
            left.push(format!(
                "{}: deleted outside cruddur-infra; `apply` makes it again, or remove it from the spec",
                d.addr
            ));
            continue;
        }
        let schema = registry.get(&d.addr.kind).map(|k| k.schema());
        for c in &d.changes {
            let settable = schema.and_then(|s| s.attribute(&c.name)).is_some_and(|a| !a.computed && !a.derived);
            if !settable {
                left.push(format!("{}.{}: not written in a spec; `apply` puts it back", d.addr, c.name));
            } else if d.sensitive.contains(&c.name) {
                left.push(format!("{}.{}: sensitive, never written into the spec", d.addr, c.name));
            } else {
                accepts.push(Accept::Attribute { addr: d.addr.clone(), attr: c.name.clone(), value: c.after.clone() });
            }
        }
    }
    for u in undeclared.iter().filter(|u| u.counts()) {
        if u.adopt.is_empty() {
            accepts.push(Accept::Ignore(u.describe()));
        }
        for (addr, attr, value) in &u.adopt {
            let value = serde_json::from_str(value).unwrap_or(serde_json::Value::Null);
            accepts.push(Accept::Attribute { addr: addr.clone(), attr: attr.clone(), value });
        }
    }
    if accepts.is_empty() && left.is_empty() {
        outln!("No drift: nothing to adopt.");
        return Ok(ExitCode::SUCCESS);
    }
    let path = &paths.spec;
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::Io(format!("cannot read {}: {e}", path.display())))?;
    let source = crate::spec::SpecSource::new(path, text);
    let patched = patch(&source, &accepts).map_err(|e| CliError::Io(format!("{}: {e}", path.display())))?;
    if !patched.applied.is_empty() {
        // Written only if it is still a valid spec.
        if let Err(e) = crate::spec::Spec::load_text(path, patched.text.clone(), registry, &paths.loading()?) {
            eprintln!("The adopted spec would not be valid, so {} was not changed:", path.display());
            return Err(e.into());
        }
        write_atomically(path, &patched.text)
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?;
        outln!("Adopted into {} ({}):", path.display(), patched.applied.len());
        for a in &patched.applied {
            outln!("  ~ {a}");
        }
    }
    left.extend(patched.left);
    if !left.is_empty() {
        outln!("Not adopted ({}):", left.len());
        for l in &left {
            outln!("  . {l}");
        }
    }
    outln!("Review the change, then `cruddur-infra apply` records what AWS has (nothing in AWS changes).");
    Ok(ExitCode::SUCCESS)
}

fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    crate::atomic_file::write(path, text.as_bytes(), 0o644)
}
