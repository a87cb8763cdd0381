//! `state list|show|rm`: look at and edit what the state holds, without touching AWS.

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
}

pub async fn cmd_state(args: StateArgs, aws: &Aws) -> Result<ExitCode, CliError> {
    match args.command {
        StateCommand::List { paths } => {
            let state = paths.backend(aws).load().await?;
            for (addr, r) in &state.resources {
                match &r.status {
                    ResourceStatus::Ready => println!("{addr}\t{}", r.id),
                    ResourceStatus::Creating => println!("{addr}\t{}\tcreating", r.id),
                    ResourceStatus::Pending(_) => println!("{addr}\t-\tpending"),
                }
            }
        }
        StateCommand::Show { addr, paths } => {
            let state = paths.backend(aws).load().await?;
            let r =
                state.resources.get(&addr).ok_or_else(|| CliError::NotFound(format!("{addr} is not in the state")))?;
            let mut shown = r.clone();
            for name in &r.sensitive {
                if let Some(v) = shown.attributes.get_mut(name) {
                    *v = serde_json::json!(crate::plan::SENSITIVE);
                }
            }
            println!("# {addr}\n{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
        }
        StateCommand::Rm { addr, paths } => {
            let store = paths.backend(aws);
            let store = store.as_ref();
            super::with_lock(store, "state rm", async || {
                let mut state = store.load().await?;
                let removed = state
                    .resources
                    .remove(&addr)
                    .ok_or_else(|| CliError::NotFound(format!("{addr} is not in the state")))?;
                state.serial += 1;
                store.save(&state).await?;
                println!("Removed {addr} (id {}) from the state; it still exists in AWS.", removed.id);
                Ok(())
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
