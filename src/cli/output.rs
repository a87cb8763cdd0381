//! `output`: the outputs recorded by the last apply.

use super::stdout::{out, outln};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::{CliError, Paths};

/// Show outputs from the state (all of them, or one by name).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Show only this output; a sensitive one is shown in full when named.
    name: Option<String>,
    /// Print JSON (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// text (`name = value`), json, or dotenv (`NAME=value` for each output with `env:` in the
    /// spec, quoted as dotenv files need; for a frontend's build).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// With --format dotenv: include sensitive outputs too.
    #[arg(long)]
    show_sensitive: bool,
    /// Print a string output without quotes, for shell scripts.
    #[arg(long, requires = "name", conflicts_with_all = ["json", "format"])]
    raw: bool,
    #[command(flatten)]
    paths: Paths,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    Dotenv,
}

pub async fn cmd_output(args: OutputArgs, aws: &crate::provider::Aws) -> Result<ExitCode, CliError> {
    let state = args.paths.backend(aws)?.load_existing().await?;
    if let Some(name) = &args.name {
        let out = state.outputs.get(name).ok_or_else(|| {
            CliError::NotFound(format!("no output named `{name}` in {}", args.paths.state_location()))
        })?;
        match (&out.value, args.raw) {
            (Value::String(s), true) => outln!("{s}"),
            (v, _) => outln!("{v}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = if args.json { Format::Json } else { args.format };
    if format == Format::Dotenv {
        let (lines, notes) = dotenv(&state.outputs, args.show_sensitive);
        for note in notes {
            eprintln!("{note}");
        }
        out!("{lines}");
        return Ok(ExitCode::SUCCESS);
    }
    if format == Format::Json {
        let masked: serde_json::Map<String, Value> = state
            .outputs
            .iter()
            .map(|(k, o)| (k.clone(), serde_json::json!({"value": if o.sensitive { Value::Null } else { o.value.clone() }, "sensitive": o.sensitive})))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&masked).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", render(&state.outputs));
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

/// `NAME=value` lines for the outputs the spec maps to a variable name (`env:`), and notes on
/// what was left out. Sensitive outputs only when `show_sensitive`.
pub fn dotenv(
    outputs: &std::collections::BTreeMap<String, crate::state::OutputState>,
    show_sensitive: bool,
) -> (String, Vec<String>) {
    let mut lines = String::new();
    let mut notes = Vec::new();
    let mut mapped: Vec<(&str, &str, &crate::state::OutputState)> =
        outputs.iter().filter_map(|(k, o)| o.env.as_deref().map(|env| (env, k.as_str(), o))).collect();
    mapped.sort_by_key(|(env, name, _)| (*env, *name));
    for (env, name, output) in mapped {
        if output.sensitive && !show_sensitive {
            notes.push(format!("# {env} (output {name}) is sensitive: left out; pass --show-sensitive to include it"));
            continue;
        }
        let value = match &output.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        lines.push_str(&format!("{env}={}\n", dotenv_quote(&value)));
    }
    if outputs.values().all(|o| o.env.is_none()) {
        notes.push("# no output has `env:` in the spec: nothing to print".into());
    }
    (lines, notes)
}

/// A value as dotenv files (docker compose, dotenv for Node, python-dotenv) read it back
/// unchanged: bare when it is plain, single-quoted (no escapes, no expansion) when it can be,
/// else double-quoted with `\\`, `"`, `$` and newlines escaped.
fn dotenv_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:@+,=%".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        return value.to_string();
    }
    if !value.contains(['\'', '\n', '\r']) {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::state::OutputState;

    fn out(value: Value, sensitive: bool, env: Option<&str>) -> OutputState {
        OutputState { value, sensitive, env: env.map(str::to_string) }
    }

    #[test]
    fn dotenv_prints_mapped_outputs_quoted_as_dotenv_reads_them() {
        let outputs = BTreeMap::from([
            (
                "api".to_string(),
                out(
                    json!("https://abc.execute-api.us-east-1.amazonaws.com"),
                    false,
                    Some("REACT_APP_API_GATEWAY_ENDPOINT_URL"),
                ),
            ),
            ("greeting".to_string(), out(json!("it's $HOME \"here\""), false, Some("GREETING"))),
            ("spaced".to_string(), out(json!("two words # not a comment"), false, Some("SPACED"))),
            ("width".to_string(), out(json!(512), false, Some("WIDTH"))),
            ("secret".to_string(), out(json!("hunter2"), true, Some("SECRET"))),
            ("unmapped".to_string(), out(json!("x"), false, None)),
        ]);
        let (lines, notes) = dotenv(&outputs, false);
        assert_eq!(
            lines,
            "GREETING=\"it's \\$HOME \\\"here\\\"\"\n\
             REACT_APP_API_GATEWAY_ENDPOINT_URL=https://abc.execute-api.us-east-1.amazonaws.com\n\
             SPACED='two words # not a comment'\n\
             WIDTH=512\n"
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("SECRET") && notes[0].contains("--show-sensitive") && !notes[0].contains("hunter2"));
        let (shown, _) = dotenv(&outputs, true);
        assert!(shown.contains("SECRET=hunter2\n"), "{shown}");
    }
}
