//! `stages list|destroy|prune`: the copies of the stack (`--stage NAME`) whose states are kept
//! beside the main stack's, and their clean-up. The main stack is never one of them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::stdout::outln;
use super::{CliError, Paths};
use crate::build::Builds;
use crate::provider::{Aws, Registry};
use crate::spec::stage;

/// List, destroy or prune the stages (copies of the stack made with --stage).
#[derive(Debug, Args)]
pub struct StagesArgs {
    #[command(subcommand)]
    command: StagesCommand,
}

#[derive(Debug, Subcommand)]
enum StagesCommand {
    /// Every stage whose state is kept beside the main stack's: how many resources it holds,
    /// when it was last written and by whom.
    List {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        paths: Paths,
    },
    /// Destroy one stage, as `destroy --stage NAME` does, and remove its state once it holds
    /// nothing.
    Destroy {
        #[arg(value_parser = stage::parse_name)]
        name: String,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        paths: Paths,
    },
    /// Destroy every stage not kept (never the main stack): a nightly clean-up of the previews
    /// of closed pull requests. Asks once for all of them.
    Prune {
        /// Stages to keep (comma-separated or repeated).
        #[arg(long, value_delimiter = ',', value_parser = stage::parse_name)]
        keep: Vec<String>,
        /// A file naming stages to keep, one per line (`#` starts a comment).
        #[arg(long)]
        keep_file: Option<PathBuf>,
        /// Only stages last written longer ago than this (e.g. 24h, 7d).
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        paths: Paths,
    },
}

/// One stage found beside the main state, or in AWS by its tag.
struct Found {
    name: String,
    location: String,
    /// Whether its state exists (a stage found only by its tag has lost it).
    state: bool,
    resources: usize,
    /// When its state was last written, and by whom (states written before stamps: unknown).
    written: Option<crate::state::history::Written>,
    /// What AWS holds tagged with it (None: the tags could not be listed).
    in_aws: Option<Vec<crate::provider::ownership::StagedInAws>>,
}

impl Found {
    fn in_aws_count(&self) -> String {
        self.in_aws.as_ref().map_or_else(|| "?".into(), |r| r.len().to_string())
    }
}

pub async fn cmd_stages(
    args: StagesArgs,
    registry: &Registry,
    aws: &Aws,
    builds: &Builds,
) -> Result<ExitCode, CliError> {
    let paths = match &args.command {
        StagesCommand::List { paths, .. }
        | StagesCommand::Destroy { paths, .. }
        | StagesCommand::Prune { paths, .. } => paths,
    };
    if let Some(stage) = &paths.stage {
        return Err(CliError::Stages(format!(
            "`stages` works on every stage beside the main state: leave out --stage {stage} (and CRUDDUR_STAGE)"
        )));
    }
    match args.command {
        StagesCommand::List { json, paths } => {
            let found = find(&paths, aws).await?;
            if json {
                let stages: Vec<serde_json::Value> = found
                    .iter()
                    .map(|f| {
                        serde_json::json!({
                            "stage": f.name,
                            "state": f.location,
                            "state_exists": f.state,
                            "resources": f.resources,
                            "tagged_in_aws": f.in_aws,
                            "written_at": f.written.as_ref().map(|w| crate::state::history::rfc3339(w.at)),
                            "age_seconds": f.written.as_ref().map(|w| age(w.at).as_secs()),
                            "by": f.written.as_ref().map(|w| w.by.clone()),
                        })
                    })
                    .collect();
                let doc =
                    serde_json::json!({"format_version": "1.0", "main": paths.state_location(), "stages": stages});
                outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else if found.is_empty() {
                outln!("No stages beside {}.", paths.state_location());
            } else {
                outln!("{:<32} {:>9} {:>6} {:<12} {:<40} STATE", "STAGE", "RESOURCES", "IN AWS", "AGE", "BY");
                for f in &found {
                    let age = f.written.as_ref().map_or_else(|| "-".into(), |w| short(age(w.at)));
                    let by = f.written.as_ref().map_or("-", |w| w.by.as_str());
                    let state =
                        if f.state { f.location.clone() } else { format!("(lost: no state at {})", f.location) };
                    let in_aws = f.in_aws_count();
                    outln!("{:<32} {:>9} {:>6} {:<12} {:<40} {state}", f.name, f.resources, in_aws, age, by);
                }
                if found.iter().any(|f| !f.state) {
                    outln!(
                        "\nA stage whose state is lost still holds what IN AWS counts (tagged cruddur-infra:stage); \
                         `stages prune` names it and fails until it is gone."
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StagesCommand::Destroy { name, auto_approve, paths } => {
            let code = destroy(&paths, &name, auto_approve, registry, aws, builds).await?;
            if code == ExitCode::SUCCESS {
                name_leftovers(aws, &[name.as_str()]).await;
            }
            Ok(code)
        }
        StagesCommand::Prune { keep, keep_file, older_than, auto_approve, paths } => {
            let mut kept: BTreeSet<String> = keep.into_iter().collect();
            if let Some(file) = keep_file {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CliError::Io(format!("cannot read {}: {e}", file.display())))?;
                for (n, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or_default().trim();
                    if line.is_empty() {
                        continue;
                    }
                    let name = stage::parse_name(line)
                        .map_err(|e| CliError::Stages(format!("{} line {}: {e}", file.display(), n + 1)))?;
                    kept.insert(name);
                }
            }
            let found = find(&paths, aws).await?;
            let unlisted = found.iter().any(|f| f.in_aws.is_none());
            // A stage whose state is lost has no age: it is destroyed from what AWS holds.
            let doomed: Vec<&Found> = found
                .iter()
                .filter(|f| !kept.contains(&f.name))
                .filter(|f| older_than.is_none_or(|limit| f.written.as_ref().is_none_or(|w| age(w.at) >= limit)))
                .collect();
            if doomed.is_empty() {
                outln!("Nothing to prune: {} stage(s), every one kept or too recent.", found.len());
                return pruned(Vec::new(), unlisted);
            }
            outln!("Stages to destroy ({} of {}):", doomed.len(), found.len());
            for f in &doomed {
                match f.state {
                    true => outln!("  {} ({} resources, {})", f.name, f.resources, f.location),
                    false => outln!(
                        "  {} (its state {} is lost: {} resource(s) tagged with it in AWS)",
                        f.name,
                        f.location,
                        f.in_aws_count()
                    ),
                }
            }
            if !auto_approve {
                super::apply::confirm_text("destroy these stages")?;
            }
            let mut failed = Vec::new();
            let mut destroyed = Vec::new();
            for f in doomed {
                outln!("\n== stage {}", f.name);
                match destroy(&paths, &f.name, true, registry, aws, builds).await {
                    Ok(code) if code == ExitCode::SUCCESS => destroyed.push(f.name.as_str()),
                    Ok(_) => failed.push(f.name.clone()),
                    Err(e) => {
                        eprintln!("{:?}", miette::Report::new(e));
                        failed.push(f.name.clone());
                    }
                }
            }
            name_leftovers(aws, &destroyed).await;
            pruned(failed, unlisted)
        }
    }
}

/// The end of a prune: stages whose destroy failed fail it by name (a nightly job must not stay
/// green while they cost money), as does not being able to look in AWS for stages whose state
/// is lost (`unlisted`).
fn pruned(failed: Vec<String>, unlisted: bool) -> Result<ExitCode, CliError> {
    match (failed.is_empty(), unlisted) {
        (false, _) => Err(CliError::Stages(format!(
            "stages not destroyed: {} (run the prune again: each stage's destroy finishes what was left)",
            failed.join(", ")
        ))),
        (true, true) => Err(CliError::Stages(
            "what AWS holds tagged with a stage could not be listed (see the warning above): a stage whose state is \
             lost would go unnoticed; grant tag:GetResources"
                .into(),
        )),
        (true, false) => Ok(ExitCode::SUCCESS),
    }
}

/// Destroys stage `name` and, once its state holds nothing, removes the state.
async fn destroy(
    paths: &Paths,
    name: &str,
    auto_approve: bool,
    registry: &Registry,
    aws: &Aws,
    builds: &Builds,
) -> Result<ExitCode, CliError> {
    let staged = Paths { stage: Some(name.to_string()), ..paths.clone() };
    let store = staged.backend(aws)?;
    let state = store.load().await?;
    drop(store);
    if state.serial == 0 && state.resources.is_empty() {
        rebuild_lost(paths, &staged, name, registry, aws).await?;
    }
    let args = super::destroy::DestroyArgs::for_stage(staged.clone(), auto_approve);
    let code = super::destroy::cmd_destroy(args, registry, aws, builds).await?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let store = staged.backend(aws)?;
    let store = store.as_ref();
    super::with_lock(store, "stages destroy", async || {
        let state = store.load().await?;
        if state.resources.is_empty() {
            store.remove().await?;
            outln!("Stage {name} is gone: its state {} was removed.", staged.state_location());
        }
        Ok(())
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// After stages were destroyed: whatever AWS still lists tagged with one of them is named, once
/// for the whole command (one scan of the account's tags). What the spec no longer declares (an
/// edit since the stage was applied) is not in a rebuilt state; and AWS's tagging API may list a
/// deleted resource for a few minutes: one that stays shows in `stages list`, and the next
/// prune fails on it by name.
async fn name_leftovers(aws: &Aws, destroyed: &[&str]) {
    let Ok(tagged) = crate::provider::ownership::staged_in_aws(aws).await else { return };
    for name in destroyed {
        let Some(left) = tagged.get(*name) else { continue };
        eprintln!("Warning: AWS still lists {} resource(s) tagged with stage {name}:", left.len());
        for r in left {
            eprintln!("  {} ({})", r.arn, r.address.as_deref().unwrap_or("no address tag"));
        }
    }
}

/// A stage whose state is gone: its state is rebuilt from the spec and what AWS holds (reads
/// only; see [`crate::plan::rebuild`]) and saved before anything is deleted, so the destroy
/// that follows is any stage's, and a run killed at any point is finished by the next one.
async fn rebuild_lost(
    paths: &Paths,
    staged: &Paths,
    name: &str,
    registry: &Registry,
    aws: &Aws,
) -> Result<(), CliError> {
    let location = staged.state_location();
    let spec = staged.load_spec_without_sources(registry)?;
    // The main stack's state must be there: it is what the rebuild never takes from, and a
    // mistyped --state would otherwise leave nothing to guard it.
    let main = paths.backend(aws)?.load_existing().await?;
    outln!("Stage {name} has no state at {location}: looking in AWS for what the spec would have made for it ...");
    let rebuilt = crate::plan::rebuild::rebuild_stage(registry, aws, &spec, name, &main, 4).await?;
    if rebuilt.state.resources.is_empty() {
        let tagged = crate::provider::ownership::staged_in_aws(aws).await.unwrap_or_else(|e| {
            eprintln!(
                "Warning: cannot list what AWS holds tagged with stage {name} ({}: {}): if its state was lost, what \
                 the spec does not declare is not named",
                e.code, e.message
            );
            Default::default()
        });
        if let Some(left) = tagged.get(name) {
            return Err(CliError::Stages(format!(
                "stage `{name}` has no state at {location}, and none of what {} declares was found for it, but AWS \
                 holds {} resource(s) tagged with it: {} (made from another spec? run `stages destroy` with that \
                 --spec, or delete them by hand)",
                staged.spec.display(),
                left.len(),
                left.iter().map(|r| r.arn.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        return Err(CliError::NotFound(format!(
            "there is no stage `{name}`: no state at {location}, and AWS holds nothing the spec would have made for \
             it (`stages list` shows the stages there are)"
        )));
    }
    outln!(
        "Found {} of its resources (by their stage tag, or by their parent and stage-derived names):",
        rebuilt.state.resources.len()
    );
    for (addr, r) in &rebuilt.state.resources {
        outln!("  {addr} ({})", r.id);
    }
    if !rebuilt.passed.is_empty() {
        outln!("Not taken:");
        for (addr, why) in &rebuilt.passed {
            outln!("  {addr}: {why}");
        }
    }
    let store = staged.backend(aws)?;
    let store = store.as_ref();
    super::with_lock(store, "stages destroy", async || {
        // A state written meanwhile is another command's (a first apply of the stage finishing):
        // the stage is not lost, and what was decided about it as lost no longer holds.
        let current = store.load().await?;
        if current.serial != 0 || !current.resources.is_empty() {
            return Err(CliError::Stages(format!(
                "stage `{name}` got a state at {location} while this looked in AWS (another command wrote it): \
                 not destroyed; run again to destroy it from its state"
            )));
        }
        let mut state = rebuilt.state.clone();
        state.serial = 1;
        store.save(&state).await?;
        outln!("Its state is rebuilt at {location}; it is destroyed as any stage's.\n");
        Ok(())
    })
    .await
}

/// The stages whose states sit beside the main state: `<stem>.<stage><ext>` next to it (a
/// file, or an S3 key), each read for its count and stamp.
async fn find(paths: &Paths, aws: &Aws) -> Result<Vec<Found>, CliError> {
    let main = paths.state_location();
    // What a stage's location looks like, split around its name.
    let pattern = stage::state_location(&main, "\u{0}");
    let (prefix, suffix) = pattern.split_once('\u{0}').unwrap_or((pattern.as_str(), ""));
    let candidates: Vec<String> = match prefix.strip_prefix("s3://").and_then(|r| r.split_once('/')) {
        Some((bucket, key_prefix)) => crate::state::list_keys(aws, bucket, key_prefix)
            .await
            .map_err(|e| CliError::Stages(format!("cannot list the stages beside {main}: {}: {}", e.code, e.message)))?
            .into_iter()
            .map(|key| format!("s3://{bucket}/{key}"))
            .collect(),
        None => {
            let dir = std::path::Path::new(prefix).parent().filter(|d| !d.as_os_str().is_empty());
            let dir = dir.map_or_else(|| PathBuf::from("."), PathBuf::from);
            match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if prefix.contains('/') { format!("{}/{name}", dir.display()) } else { name }
                    })
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
                Err(e) => return Err(CliError::Io(format!("cannot list {}: {e}", dir.display()))),
            }
        }
    };
    let mut found = Vec::new();
    for location in candidates {
        let Some(name) = location.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(suffix)) else { continue };
        let Ok(name) = stage::parse_name(name) else { continue };
        let staged = Paths { stage: Some(name.clone()), ..paths.clone() };
        let state = staged.backend(aws)?.load().await?;
        let (resources, written) = (state.resources.len(), state.written);
        found.push(Found { name, location, state: true, resources, written, in_aws: Some(vec![]) });
    }
    // Nothing at all where the main state should be is a wrong path (a typo, an unset CI
    // variable), never "no stages": a nightly prune pointed there would stay green forever.
    if found.is_empty() {
        paths.backend(aws)?.load_existing().await?;
    }
    // What AWS holds tagged with a stage: counted for each stage, and a stage whose state is
    // gone is found by it.
    match crate::provider::ownership::staged_in_aws(aws).await {
        Ok(tagged) => {
            for (name, resources) in tagged {
                match found.iter_mut().find(|f| f.name == name) {
                    Some(f) => f.in_aws = Some(resources),
                    None => found.push(Found {
                        location: stage::state_location(&main, &name),
                        name,
                        state: false,
                        resources: 0,
                        written: None,
                        in_aws: Some(resources),
                    }),
                }
            }
        }
        Err(e) => {
            eprintln!(
                "Warning: cannot list what AWS holds tagged with a stage ({}: {}): a stage whose state is lost is not \
                 shown",
                e.code, e.message
            );
            for f in &mut found {
                f.in_aws = None;
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn age(at: u64) -> Duration {
    let then = std::time::UNIX_EPOCH + Duration::from_secs(at);
    std::time::SystemTime::now().duration_since(then).unwrap_or_default()
}

/// `3h 12m`: the two largest units.
fn short(d: Duration) -> String {
    let text = humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    text.split(' ').take(2).collect::<Vec<_>>().join(" ")
}
