//! `force-unlock`: remove a lock whose holder died.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::state::StateLock;

/// Remove the state lock left by a command that died. Give the lock id from the error message,
/// so a lock that changed hands in the meantime is never removed by mistake.
#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// The lock id, as shown in the "locked by" message.
    lock_id: String,
    #[command(flatten)]
    paths: Paths,
}

pub fn cmd_force_unlock(args: ForceUnlockArgs) -> Result<ExitCode, CliError> {
    let info = StateLock::force_unlock(&args.paths.state_path(), &args.lock_id).map_err(CliError::NotFound)?;
    println!("Removed the lock held by {}.", info.describe());
    Ok(ExitCode::SUCCESS)
}
