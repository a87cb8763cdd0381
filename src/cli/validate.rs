//! `validate`: check the spec without reaching AWS.

use super::stdout::outln;
use std::process::ExitCode;

use clap::Args;
use miette::Diagnostic as _;

use super::{CliError, Paths};
use crate::provider::Registry;
use crate::spec::LoadError;

/// Check the spec: kinds, attributes, types, references, cycles and names (with the stage
/// applied), all problems at once.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    paths: Paths,
    /// Print one JSON document: `valid` and every diagnostic with its file, line, column,
    /// severity and code (exit 1 when invalid, as without it).
    #[arg(long)]
    json: bool,
}

pub fn cmd_validate(args: ValidateArgs, registry: &Registry) -> Result<ExitCode, CliError> {
    let file = args.paths.spec.display().to_string();
    if !args.json {
        let spec = args.paths.load_spec(registry)?;
        outln!("{file} is valid: {} resource(s), {} output(s).", spec.resources.len(), spec.outputs.len());
        return Ok(ExitCode::SUCCESS);
    }
    let (valid, counts, diagnostics) = match args.paths.load_spec(registry) {
        Ok(spec) => (true, Some((spec.resources.len(), spec.outputs.len())), vec![]),
        Err(CliError::Spec(LoadError::Invalid(errors))) => (false, None, errors.diagnostics()),
        Err(CliError::Spec(other)) => {
            let one = serde_json::json!({
                "severity": "error",
                "code": other.code().map(|c| c.to_string()),
                "message": other.to_string(),
                "help": other.help().map(|h| h.to_string()),
                "file": file,
                "line": null,
                "column": null,
                "label": null,
            });
            (false, None, vec![one])
        }
        Err(other) => return Err(other),
    };
    let doc = serde_json::json!({
        "format_version": "1.0",
        "valid": valid,
        "file": file,
        "resources": counts.map(|c| c.0),
        "outputs": counts.map(|c| c.1),
        "diagnostics": diagnostics,
    });
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(if valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
