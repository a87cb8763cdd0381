//! `force-unlock`: remove a lock whose holder died.

use super::stdout::outln;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};

/// Remove the state lock left by a command that died. Give the lock id from the error message,
/// so a lock that changed hands in the meantime is never removed by mistake.
#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// The lock id, as shown in the "locked by" message.
    lock_id: String,
    #[command(flatten)]
    paths: Paths,
}

pub async fn cmd_force_unlock(args: ForceUnlockArgs, aws: &crate::provider::Aws) -> Result<ExitCode, CliError> {
    let info = args.paths.backend(aws)?.force_unlock(&args.lock_id).await?;
    outln!("Removed the lock held by {}.", info.describe());
    Ok(ExitCode::SUCCESS)
}
