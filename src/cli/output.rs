//! `output`: the outputs recorded by the last apply.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::{CliError, Paths};

/// Show outputs from the state (all of them, or one by name).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Show only this output; a sensitive one is shown in full when named.
    name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Print a string output without quotes, for shell scripts.
    #[arg(long, requires = "name", conflicts_with = "json")]
    raw: bool,
    #[command(flatten)]
    paths: Paths,
}

pub async fn cmd_output(args: OutputArgs, aws: &crate::provider::Aws) -> Result<ExitCode, CliError> {
    let state = args.paths.backend(aws).load().await?;
    if let Some(name) = &args.name {
        let out = state.outputs.get(name).ok_or_else(|| {
            CliError::NotFound(format!("no output named `{name}` in {}", args.paths.state_location()))
        })?;
        match (&out.value, args.raw) {
            (Value::String(s), true) => println!("{s}"),
            (v, _) => println!("{v}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        let masked: serde_json::Map<String, Value> = state
            .outputs
            .iter()
            .map(|(k, o)| (k.clone(), serde_json::json!({"value": if o.sensitive { Value::Null } else { o.value.clone() }, "sensitive": o.sensitive})))
            .collect();
        println!("{}", serde_json::to_string_pretty(&masked).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(&state.outputs));
    Ok(ExitCode::SUCCESS)
}

/// `name = value` lines, sensitive values masked.
pub fn render(outputs: &std::collections::BTreeMap<String, crate::state::OutputState>) -> String {
    let width = outputs.keys().map(String::len).max().unwrap_or(0);
    outputs
        .iter()
        .map(|(k, o)| {
            let v = if o.sensitive { "<sensitive>".to_string() } else { o.value.to_string() };
            format!("{k:width$} = {v}\n")
        })
        .collect()
}
