//! `schema`: the JSON Schema of specs, for editors (yaml-language-server) and CI linting.

use super::stdout::{out, outln};
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::provider::Registry;

/// Print the JSON Schema of the spec format: every kind, attribute and type. Editors use it for
/// completion and checks (`# yaml-language-server: $schema=...` in the spec).
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the reference of every kind as Markdown instead (docs/kinds.md).
    #[arg(long)]
    markdown: bool,
}

pub fn cmd_schema(args: SchemaArgs, registry: &Registry) -> Result<ExitCode, CliError> {
    if args.markdown {
        out!("{}", crate::spec::kinds_markdown(registry));
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{}", serde_json::to_string_pretty(&crate::spec::json_schema(registry)).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
