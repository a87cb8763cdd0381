//! `state list|show|rm|mv`: look at and edit what the state holds, without touching AWS;
//! `state history|diff` and `state show --serial`: the earlier states kept, who wrote each and
//! what changed; `state encrypt|decrypt`: move it between plain text and KMS envelope
//! encryption.

use super::stdout::outln;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::provider::Aws;
use crate::state::ResourceStatus;

/// Inspect or edit the state.
#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// List every resource in the state with its id, and any not finished: `creating` (made,
    /// not yet set up or ready) or `pending` (an interrupted create; the next plan looks for it).
    List {
        #[command(flatten)]
        paths: Paths,
    },
    /// Show one resource's id, attributes and dependencies, or with no address the whole
    /// state (sensitive values masked); `--serial N` shows an earlier state kept.
    Show {
        addr: Option<ResourceAddr>,
        /// An earlier state (see `state history`) instead of the current one.
        #[arg(long)]
        serial: Option<u64>,
        #[command(flatten)]
        paths: Paths,
    },
    /// The earlier states kept (one per command that wrote the state: the state it started
    /// from) and the current one: serial, when, the command, who (the caller's ARN, or
    /// user@host when the command made no AWS call), and what changed.
    History {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        paths: Paths,
    },
    /// What changed between two states: each resource added, removed or changed, with each
    /// changed attribute (sensitive values masked).
    Diff {
        /// The older serial.
        from: u64,
        /// The newer serial [default: the current state].
        to: Option<u64>,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        paths: Paths,
    },
    /// Forget a resource: it stays in AWS but is no longer managed.
    Rm {
        addr: ResourceAddr,
        #[command(flatten)]
        paths: Paths,
    },
    /// Give a resource a new address (a rename in the spec): it keeps its AWS object, and what
    /// depends on it follows. Under the lock; one atomic save. `moved:` in the spec does the same
    /// as part of a reviewed plan.
    Mv {
        from: ResourceAddr,
        to: ResourceAddr,
        #[command(flatten)]
        paths: Paths,
    },
    /// Seal the state (and its backup) with a KMS key, or move it to another key. Under the
    /// lock; the content is unchanged; no copy in plain text is left behind.
    Encrypt {
        /// The key: kms:KEY (a key id, ARN or alias).
        #[arg(long, value_parser = crate::state::encryption::parse_setting)]
        key: String,
        #[command(flatten)]
        paths: Paths,
    },
    /// Store the state (and its backup) in plain text again.
    Decrypt {
        #[command(flatten)]
        paths: Paths,
    },
}

pub async fn cmd_state(args: StateArgs, aws: &Aws) -> Result<ExitCode, CliError> {
    match args.command {
        StateCommand::List { paths } => {
            let state = paths.backend(aws)?.load_existing().await?;
            for (addr, r) in &state.resources {
                match &r.status {
                    ResourceStatus::Ready => outln!("{addr}\t{}", r.id),
                    ResourceStatus::Creating => outln!("{addr}\t{}\tcreating", r.id),
                    ResourceStatus::Pending(_) => outln!("{addr}\t-\tpending"),
                }
            }
        }
        StateCommand::Show { addr, serial, paths } => {
            let store = paths.backend(aws)?;
            let current = store.load_existing().await?;
            let state = match serial {
                Some(serial) => at_serial(store.as_ref(), &current, serial).await?,
                None => current,
            };
            let at = serial.map(|s| format!(" (serial {s})")).unwrap_or_default();
            match addr {
                Some(addr) => {
                    let r = state
                        .resources
                        .get(&addr)
                        .ok_or_else(|| CliError::NotFound(format!("{addr} is not in the state{at}")))?;
                    outln!("# {addr}{at}\n{}", serde_json::to_string_pretty(&masked(r)).unwrap_or_default());
                }
                None => {
                    let mut shown = state.clone();
                    for r in shown.resources.values_mut() {
                        *r = masked(r);
                    }
                    for (name, o) in shown.outputs.iter_mut().filter(|(_, o)| o.sensitive) {
                        o.value = serde_json::json!(crate::plan::SENSITIVE);
                        if let Some(declared) = shown.declared.as_mut().and_then(|d| d.outputs.get_mut(name)) {
                            declared["value"] = serde_json::json!(crate::plan::SENSITIVE);
                        }
                    }
                    outln!("{}", shown.to_json().trim_end());
                }
            }
        }
        StateCommand::History { json, paths } => history(&paths, aws, json).await?,
        StateCommand::Diff { from, to, json, paths } => {
            let store = paths.backend(aws)?;
            let current = store.load_existing().await?;
            let older = at_serial(store.as_ref(), &current, from).await?;
            let newer = match to {
                Some(to) => at_serial(store.as_ref(), &current, to).await?,
                None => current,
            };
            let diffs = crate::state::history::diff(&older, &newer, crate::plan::SENSITIVE);
            if json {
                let doc = serde_json::json!({
                    "format_version": "1.0",
                    "from": older.serial,
                    "to": newer.serial,
                    "resources": diffs,
                });
                outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                outln!("State {} -> {}{}:", older.serial, newer.serial, written_by(&newer));
                if diffs.is_empty() {
                    outln!("  no resource changed");
                }
                for d in &diffs {
                    outln!("{} {}", d.change.symbol(), d.addr);
                    for a in &d.attributes {
                        outln!("    {}: {} -> {}", a.name, a.before, a.after);
                    }
                }
            }
        }
        StateCommand::Rm { addr, paths } => {
            let store = paths.backend(aws)?;
            let store = store.as_ref();
            // No state there: say so before taking a lock beside it.
            store.load_existing().await?;
            super::with_lock(store, "state rm", async || {
                let mut state = store.load_existing().await?;
                let removed = state
                    .resources
                    .remove(&addr)
                    .ok_or_else(|| CliError::NotFound(format!("{addr} is not in the state")))?;
                state.serial += 1;
                store.save(&state).await?;
                outln!("Removed {addr} (id {}) from the state; it still exists in AWS.", removed.id);
                Ok(())
            })
            .await?;
        }
        StateCommand::Mv { from, to, paths } => {
            let store = paths.backend(aws)?;
            let store = store.as_ref();
            store.load_existing().await?;
            super::with_lock(store, "state mv", async || {
                let mut state = store.load_existing().await?;
                if !state.resources.contains_key(&from) && state.resources.contains_key(&to) {
                    outln!("Nothing to move: {to} is in the state and {from} is not (moved already).");
                    return Ok(());
                }
                crate::plan::moves::rename(&mut state, &from, &to)?;
                state.serial += 1;
                store.save(&state).await?;
                let id = &state.resources[&to].id;
                outln!("Moved {from} to {to} (id {id}); its AWS object is unchanged.");
                Ok(())
            })
            .await?;
        }
        StateCommand::Encrypt { key, paths } => migrate(&paths, aws, Some(key)).await?,
        StateCommand::Decrypt { paths } => migrate(&paths, aws, None).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Rewrites the state sealed with `key` (or in plain text), under the lock: read in whatever
/// form it is, with any journal folded in; saved whole in the new form, the backup too.
async fn migrate(paths: &Paths, aws: &Aws, key: Option<String>) -> Result<(), CliError> {
    let location = paths.state_location();
    let codec = crate::state::Codec::migrating_to(aws, key.clone());
    let store = paths.open(&location, aws, codec);
    let store: &dyn crate::state::StateBackend = &store;
    let operation = if key.is_some() { "state encrypt" } else { "state decrypt" };
    super::with_lock(store, operation, async || {
        let state = store.load().await?;
        if state.serial == 0 && state.resources.is_empty() {
            return Err(CliError::NotFound(format!("there is no state at {location} to {}", &operation[6..])));
        }
        store.save(&state).await?;
        Ok(())
    })
    .await?;
    match &key {
        Some(key) => outln!(
            "State {location} is sealed with kms:{key}. Commands now need that key: set `state: {{ encryption: kms:{key} }}` \
             in the spec (or pass --state-encryption kms:{key})."
        ),
        None => outln!(
            "State {location} is stored in plain text. Remove `state: {{ encryption }}` from the spec (and \
             --state-encryption), or commands will refuse it."
        ),
    }
    Ok(())
}

/// A resource's entry with its sensitive attributes masked, in its attributes and in its
/// recorded declaration (which holds the values of the variables it used).
fn masked(r: &crate::state::ResourceState) -> crate::state::ResourceState {
    let mut shown = r.clone();
    for name in &r.sensitive {
        if let Some(v) = shown.attributes.get_mut(name) {
            *v = serde_json::json!(crate::plan::SENSITIVE);
        }
        if let Some(v) = shown.declaration.as_mut().and_then(|d| d.get_mut(name)) {
            *v = serde_json::json!(crate::plan::SENSITIVE);
        }
    }
    shown
}

/// The state at `serial`: the current one, or an earlier one the store kept.
async fn at_serial(
    store: &dyn crate::state::StateBackend,
    current: &crate::state::State,
    serial: u64,
) -> Result<crate::state::State, CliError> {
    if serial == current.serial {
        return Ok(current.clone());
    }
    if let Some(state) = store.load_kept(serial).await? {
        return Ok(state);
    }
    let kept = store.kept().await?;
    let kept = if kept.is_empty() {
        "none is kept".to_string()
    } else {
        format!("kept: {}", kept.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
    };
    Err(CliError::NotFound(format!(
        "state {} has no serial {serial} ({kept}; the current one is {})",
        store.location(),
        current.serial
    )))
}

/// ` (apply by ARN at TIME)`, or nothing for a state saved before stamps were written.
fn written_by(state: &crate::state::State) -> String {
    state.written.as_ref().map_or_else(String::new, |w| {
        format!(" ({} by {} at {})", w.command, w.by, crate::state::history::rfc3339(w.at))
    })
}

/// `state history`: each kept state and the current one, newest first, with what changed
/// from the one before it.
async fn history(paths: &Paths, aws: &Aws, json: bool) -> Result<(), CliError> {
    use crate::state::history::{diff, summary};
    let store = paths.backend(aws)?;
    let current = store.load_existing().await?;
    let mut states = Vec::new();
    for serial in store.kept().await?.into_iter().filter(|s| *s != current.serial) {
        if let Some(state) = store.load_kept(serial).await? {
            states.push(state);
        }
    }
    states.push(current);
    let rows: Vec<(serde_json::Value, String)> = states
        .iter()
        .enumerate()
        .rev()
        .map(|(i, state)| {
            let before = i.checked_sub(1).map(|p| &states[p]);
            let diffs = before.map(|b| diff(b, state, crate::plan::SENSITIVE));
            let change = diffs.as_deref().map_or_else(|| "(the oldest kept)".to_string(), summary);
            let w = state.written.as_ref();
            let names = |c: crate::state::history::Change| -> Vec<String> {
                diffs.iter().flatten().filter(|d| d.change == c).map(|d| d.addr.to_string()).collect()
            };
            let doc = serde_json::json!({
                "serial": state.serial,
                "current": i + 1 == states.len(),
                "written_at": w.map(|w| crate::state::history::rfc3339(w.at)),
                "command": w.map(|w| w.command.clone()),
                "by": w.map(|w| w.by.clone()),
                "resources": state.resources.len(),
                "change": diffs.as_ref().map(|_| serde_json::json!({
                    "added": names(crate::state::history::Change::Added),
                    "changed": names(crate::state::history::Change::Changed),
                    "removed": names(crate::state::history::Change::Removed),
                })),
            });
            let line = format!(
                "{:<7} {:<20} {:<14} {:<40} {change}{}",
                state.serial,
                w.map_or_else(|| "-".into(), |w| crate::state::history::rfc3339(w.at)),
                w.map_or("-", |w| w.command.as_str()),
                w.map_or("-", |w| w.by.as_str()),
                if i + 1 == states.len() { "  (current)" } else { "" }
            );
            (doc, line)
        })
        .collect();
    if json {
        let doc = serde_json::json!({
            "format_version": "1.0",
            "location": store.location(),
            "states": rows.iter().map(|(doc, _)| doc.clone()).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        outln!("{:<7} {:<20} {:<14} {:<40} CHANGE", "SERIAL", "WRITTEN", "COMMAND", "BY");
        for (_, line) in &rows {
            outln!("{line}");
        }
    }
    Ok(())
}
