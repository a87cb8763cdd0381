//! `show PLANFILE`: a saved plan (`plan --out FILE`) as text, JSON or Markdown, read without
//! any AWS call (a sealed plan asks KMS to open its data key, and nothing else).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use super::stdout::outln;
use crate::plan::saved::SavedPlan;
use crate::provider::Aws;

/// Show a saved plan as text, JSON or Markdown, as `plan` showed it, without any AWS call.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The plan file `plan --out` wrote.
    plan_file: PathBuf,
    #[command(flatten)]
    format: super::ReportFormat,
}

pub async fn cmd_show(args: ShowArgs, aws: &Aws) -> Result<ExitCode, CliError> {
    let path = &args.plan_file;
    let stored =
        std::fs::read(path).map_err(|e| CliError::Io(format!("cannot read saved plan {}: {e}", path.display())))?;
    let codec = crate::state::Codec::any_reader(aws);
    let text = codec.open(&stored, crate::state::encryption::Purpose::Plan, &path.display().to_string()).await?;
    let saved = SavedPlan::decode(path, &String::from_utf8_lossy(&text))?;
    if !args.format.json && !args.format.markdown {
        let stage = saved.stage.as_deref().map(|s| format!(", stage {s}")).unwrap_or_default();
        outln!(
            "Saved plan {} for {} at serial {}{stage} (spec {}):\n",
            path.display(),
            saved.state,
            saved.serial,
            saved.spec
        );
    }
    args.format.print_plan(&saved.plan);
    Ok(ExitCode::SUCCESS)
}
