//! `validate`: check the spec without reaching AWS.

use super::stdout::outln;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::provider::Registry;

/// Check the spec: kinds, attributes, types, references and cycles, all problems at once.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    paths: Paths,
}

pub fn cmd_validate(args: ValidateArgs, registry: &Registry) -> Result<ExitCode, CliError> {
    let spec = args.paths.load_spec(registry)?;
    outln!(
        "{} is valid: {} resource(s), {} output(s).",
        args.paths.spec.display(),
        spec.resources.len(),
        spec.outputs.len()
    );
    Ok(ExitCode::SUCCESS)
}
