//! `state list|show|rm`: look at and edit what the state holds, without touching AWS;
//! `state encrypt|decrypt`: move it between plain text and KMS envelope encryption.

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
    /// Show one resource's id, attributes and dependencies (sensitive values masked).
    Show {
        addr: ResourceAddr,
        #[command(flatten)]
        paths: Paths,
    },
    /// Forget a resource: it stays in AWS but is no longer managed.
    Rm {
        addr: ResourceAddr,
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
        StateCommand::Show { addr, paths } => {
            let state = paths.backend(aws)?.load_existing().await?;
            let r =
                state.resources.get(&addr).ok_or_else(|| CliError::NotFound(format!("{addr} is not in the state")))?;
            let mut shown = r.clone();
            for name in &r.sensitive {
                if let Some(v) = shown.attributes.get_mut(name) {
                    *v = serde_json::json!(crate::plan::SENSITIVE);
                }
            }
            outln!("# {addr}\n{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
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
    let store = paths.waiting(crate::state::open(&location, aws, codec));
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
