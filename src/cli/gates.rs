//! Review gates on a plan: permissions that broaden access must be approved
//! (`--require-approval broadening`), and built-in policy rules must hold (`--policy-check`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::plan::Plan;

/// When a plan needs an approval before it may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RequireApproval {
    /// When it adds a principal, action or resource, a wildcard, or removes a condition or a Deny.
    Broadening,
    /// Never (the default).
    Never,
}

#[derive(Debug, Args, Clone)]
pub struct Gates {
    /// `broadening`: fail (exit 1), naming each statement, when the plan broadens who can do
    /// what, unless --approve-broadening or --approval-file approves it.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = RequireApproval::Never)]
    require_approval: RequireApproval,
    /// Approve every broadening statement of this plan.
    #[arg(long)]
    approve_broadening: bool,
    /// Approve the broadening statements whose fingerprints this file lists, one per line (`#`
    /// starts a comment): what a pull-request workflow writes when a reviewer approves.
    #[arg(long, value_name = "FILE")]
    approval_file: Option<PathBuf>,
    /// Fail (exit 1) when a planned resource breaks a built-in policy rule it does not waive.
    #[arg(long)]
    policy_check: bool,
}

impl Gates {
    /// Whether the plan may go on; the error names every statement or rule that stops it.
    pub fn check(&self, plan: &Plan) -> Result<(), CliError> {
        if self.policy_check {
            let failed: Vec<String> =
                plan.policy_failures().map(|f| format!("{} [{}]: {}", f.addr, f.rule, f.message)).collect();
            if !failed.is_empty() {
                return Err(CliError::PolicyCheck(failed.join("\n")));
            }
        }
        if self.require_approval == RequireApproval::Broadening {
            let approved = self.approved()?;
            let missing = crate::permissions::unapproved(&plan.permissions, self.approve_broadening, &approved);
            if !missing.is_empty() {
                let lines: Vec<String> = missing
                    .iter()
                    .map(|(addr, c)| {
                        format!(
                            "{addr}: + {} ({}; fingerprint {})",
                            c.grant.describe(),
                            c.why.as_deref().unwrap_or(""),
                            c.fingerprint
                        )
                    })
                    .collect();
                return Err(CliError::Broadening(lines.join("\n")));
            }
        }
        Ok(())
    }

    fn approved(&self) -> Result<BTreeSet<String>, CliError> {
        let Some(path) = &self.approval_file else { return Ok(BTreeSet::new()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Io(format!("cannot read the approval file {}: {e}", path.display())))?;
        Ok(text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }
}
