//! The command line: one file per subcommand, one error type at the edge whose every variant
//! exits with code 1 and says what to do next.

mod apply;
mod build;
mod destroy;
mod drift;
mod events;
mod force_unlock;
mod gates;
mod graph;
mod iam_policy;
mod import;
mod output;
mod plan;
mod rollback;
mod schema;
mod show;
pub mod signals;
mod stages;
mod state;
mod stdout;
pub mod style;
mod undo;
mod validate;
mod version;
mod watch;

use std::path::PathBuf;

use crate::build::BuildProfile;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use miette::Diagnostic;

use crate::provider::{Aws, AwsOptions, Registry};
use crate::spec::{LoadError, Spec};
use crate::state::{StateBackend, StateError};

/// Declarative infrastructure for the Cruddur avatar stack on AWS.
///
/// Region, credentials and endpoint come from the standard AWS chain (environment, profiles,
/// SSO); AWS_ENDPOINT_URL points every service at an emulator.
#[derive(Debug, Parser)]
#[command(name = "cruddur-infra", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Address S3 buckets by path (http://host/bucket), for emulators reached by host name.
    #[arg(long, global = true, env = "CRUDDUR_S3_FORCE_PATH_STYLE")]
    s3_force_path_style: bool,
    /// Do not wait for deployments AWS finishes in the background (CloudFront).
    #[arg(long, global = true)]
    no_wait: bool,
    /// Append every AWS request (`service operation`, one per line) to this file.
    #[arg(long, global = true, env = "CRUDDUR_AWS_CALL_LOG")]
    aws_call_log: Option<PathBuf>,
    /// No colour in the output (also when NO_COLOR is set or the output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// The cargo profile Lambda code is built with: `release` (what CI deploys) or `dev` (no
    /// LTO, incremental: seconds per edit; recorded in the state, and plans warn while it runs).
    #[arg(long, global = true, value_enum, default_value_t = BuildProfile::Release, env = "CRUDDUR_BUILD_PROFILE")]
    build_profile: BuildProfile,
    /// Work in this folder, as if started there: the spec, the state, .env and saved plans are
    /// found relative to it (Terraform's -chdir).
    #[arg(long, global = true, value_name = "DIR")]
    chdir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::ValidateArgs),
    Plan(plan::PlanArgs),
    Apply(apply::ApplyArgs),
    Destroy(destroy::DestroyArgs),
    Build(build::BuildArgs),
    Output(output::OutputArgs),
    Drift(drift::DriftArgs),
    Import(import::ImportArgs),
    IamPolicy(iam_policy::IamPolicyArgs),
    Rollback(rollback::RollbackArgs),
    Undo(undo::UndoArgs),
    State(state::StateArgs),
    Stages(stages::StagesArgs),
    ForceUnlock(force_unlock::ForceUnlockArgs),
    Graph(graph::GraphArgs),
    Schema(schema::SchemaArgs),
    Show(show::ShowArgs),
    Version(version::VersionArgs),
    Completions(version::CompletionsArgs),
    #[command(hide = true)]
    Reference(version::ReferenceArgs),
}

/// How a plan or drift report is printed: text (the default), JSON or Markdown.
#[derive(Debug, Args, Clone, Copy)]
pub struct ReportFormat {
    /// Print JSON (the formats: docs/plan-json.md).
    #[arg(long, conflicts_with = "markdown")]
    pub(super) json: bool,
    /// Print Markdown, for a pull-request or issue comment.
    #[arg(long)]
    pub(super) markdown: bool,
    /// Show sensitive values in --json output.
    #[arg(long, requires = "json")]
    pub(super) show_sensitive: bool,
}

impl ReportFormat {
    /// Prints `plan` in this format, as `plan` and `show` do.
    pub(super) fn print_plan(&self, plan: &crate::plan::Plan) {
        use stdout::{out, outln};
        if self.json {
            let doc = crate::plan::json::render_json(plan, self.show_sensitive);
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        } else if self.markdown {
            out!("{}", crate::plan::markdown::render_markdown(plan));
        } else {
            out!("{}", style::plan(&crate::plan::render_text(plan)));
        }
    }
}

/// Where the spec and the state are.
#[derive(Debug, Args, Clone)]
pub struct Paths {
    /// The spec file.
    #[arg(long, default_value = "specs/cruddur.yaml")]
    pub(super) spec: PathBuf,
    /// Where the state is: a file, or s3://BUCKET/KEY for a team's shared state
    /// [default: state/<spec file stem>.json]
    #[arg(long, env = "CRUDDUR_STATE", value_parser = state_location)]
    pub(super) state: Option<String>,
    /// Seal the state, its journal and backup, and saved plans with this KMS key: kms:KEY (a
    /// key id, ARN or alias) [default: the spec's `state: { encryption }`, else plain text]
    #[arg(long, env = "CRUDDUR_STATE_ENCRYPTION", value_parser = crate::state::encryption::parse_setting)]
    pub(super) state_encryption: Option<String>,
    /// How long to wait for the state lock another command holds (e.g. 90s, 10m), saying who
    /// holds it meanwhile; 0 fails at once, naming the holder
    #[arg(long, env = "CRUDDUR_LOCK_TIMEOUT", value_parser = lock_timeout, default_value = "0s")]
    pub(super) lock_timeout: std::time::Duration,
    /// How long an S3 state lock lasts without a renewal: its holder renews it every quarter of
    /// this while it works, and a lock not renewed for this long (its holder was killed on
    /// another host) is taken over
    #[arg(long, env = "CRUDDUR_LOCK_LEASE", value_parser = lock_timeout, default_value = "1m")]
    pub(super) lock_lease: std::time::Duration,
    /// How many earlier states to keep beside the state (one per command that writes it:
    /// `state history` lists them); 0 keeps none
    #[arg(long, env = "CRUDDUR_STATE_HISTORY", default_value_t = crate::state::history::DEFAULT_KEEP)]
    pub(super) state_history: usize,
    /// A separate copy of the stack (a preview per pull request): its own state beside the main
    /// one (s.json -> s.NAME.json) and its own names (`${stage}` in the spec is `-NAME`, empty
    /// for the main stack)
    #[arg(long, env = "CRUDDUR_STAGE", value_parser = crate::spec::stage::parse_name)]
    pub(super) stage: Option<String>,
    /// A spec variable's value (repeatable); beats --var-file, the environment and .env
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub(super) vars: Vec<(String, String)>,
    /// A file of NAME=VALUE lines (the .env format) for spec variables (repeatable; a later one
    /// wins); beats the environment and .env
    #[arg(long = "var-file", value_name = "FILE")]
    pub(super) var_files: Vec<PathBuf>,
    /// `state` names the stage's own state already (a saved plan's): the stage is not applied
    /// to it again.
    #[arg(skip)]
    pub(super) state_is_staged: bool,
}

/// A `--var` value: `NAME=VALUE`.
fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if crate::addr::is_ident(name.trim()) => Ok((name.trim().to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not NAME=VALUE (a spec variable's name, `=`, its value)")),
    }
}

/// A `--lock-timeout` value: a duration such as `90s`, `10m` or `1h 30m`.
fn lock_timeout(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("`{text}` is not a duration such as 90s or 10m: {e}"))
}

/// A `--state` value: a file path, or `s3://BUCKET/KEY` with both parts.
fn state_location(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the state location is empty: give a file path or s3://BUCKET/KEY".into());
    }
    if let Some(rest) = text.strip_prefix("s3://") {
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') => {}
            _ => {
                return Err(format!(
                    "`{text}` names no object: the S3 backend needs s3://BUCKET/KEY, e.g. s3://my-team-state/cruddur.json"
                ));
            }
        }
    }
    Ok(text.to_string())
}

impl Paths {
    /// Where the state is: `--state`, else `state/<spec file stem>.json`; a stage's beside it.
    pub fn state_location(&self) -> String {
        let main = self.state.clone().unwrap_or_else(|| {
            let stem = self.spec.file_stem().map_or_else(|| "default".into(), |s| s.to_string_lossy().into_owned());
            format!("state/{stem}.json")
        });
        match &self.stage {
            Some(stage) if !self.state_is_staged => crate::spec::stage::state_location(&main, stage),
            _ => main,
        }
    }

    /// The state's store, sealing and opening documents as the flag or the spec says.
    pub fn backend<'a>(&self, aws: &'a Aws) -> Result<Box<dyn StateBackend + 'a>, CliError> {
        Ok(Box::new(self.open(&self.state_location(), aws, self.codec(aws)?)))
    }

    /// The store at `location` storing documents as `codec` says, locking as `--lock-timeout`
    /// and `--lock-lease` say.
    pub fn open<'a>(&self, location: &str, aws: &'a Aws, codec: crate::state::Codec<'a>) -> crate::state::Waiting<'a> {
        let store = crate::state::open(location, aws, codec, self.lock_lease, self.state_history);
        crate::state::Waiting { inner: store, timeout: self.lock_timeout }
    }

    /// How this command stores the state and saved plans: `--state-encryption`, else the
    /// spec's `state: { encryption }` (a missing spec file: plain text).
    pub fn codec<'a>(&self, aws: &'a Aws) -> Result<crate::state::Codec<'a>, CliError> {
        Ok(crate::state::Codec::configured(aws, self.encryption_key()?))
    }

    pub fn encryption_key(&self) -> Result<Option<String>, CliError> {
        if let Some(key) = &self.state_encryption {
            return Ok(Some(key.clone()));
        }
        if !self.spec.exists() {
            return Ok(None);
        }
        Ok(Spec::state_encryption_of(&self.spec)?)
    }

    pub fn load_spec(&self, registry: &Registry) -> Result<Spec, CliError> {
        Ok(Spec::load(&self.spec, registry, &self.loading()?)?)
    }

    /// The spec, for a command that builds nothing: the paths it names need not exist.
    pub fn load_spec_without_sources(&self, registry: &Registry) -> Result<Spec, CliError> {
        Ok(Spec::load_without_sources(&self.spec, registry, &self.loading()?)?)
    }

    /// How this command loads the spec: its stage, its --var-file files' values, then its --var
    /// values (a later one wins).
    pub fn loading(&self) -> Result<crate::spec::Loading, CliError> {
        let mut vars = Vec::new();
        for file in &self.var_files {
            let read = dotenvy::from_path_iter(file)
                .and_then(|lines| lines.collect::<Result<Vec<_>, _>>())
                .map_err(|e| CliError::Io(format!("--var-file {}: {e}", file.display())))?;
            vars.extend(read);
        }
        vars.extend(self.vars.iter().cloned());
        Ok(crate::spec::Loading { stage: self.stage.clone(), vars })
    }
}

/// Everything that can make a command fail; each maps to exit code 1.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum CliError {
    /// The spec is unreadable or invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(#[from] LoadError),
    /// The state is unreadable, unwritable or locked.
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    /// Planning failed (a refresh read failed).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// Some resources failed; the state records everything that succeeded.
    #[error("apply failed: {failed} resource(s) failed, {skipped} skipped because of them")]
    #[diagnostic(
        code(cruddur::apply::failed),
        help("fix the errors above and run the command again: what succeeded is recorded in the state")
    )]
    ApplyFailed { failed: usize, skipped: usize },
    /// No plan back to an earlier state can be made.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Undo(#[from] crate::plan::undo::UndoError),
    /// The user did not confirm, or could not be asked.
    #[error("{0}")]
    #[diagnostic(code(cruddur::cancelled))]
    NotConfirmed(String),
    /// `apply --watch` cannot watch the sources (inotify limits, a directory that went away).
    #[error("cannot watch the Lambda sources: {0}")]
    #[diagnostic(code(cruddur::watch), help("on Linux, raise fs.inotify.max_user_watches if the limit is reached"))]
    Watch(String),
    /// No region in the environment or the profile: AWS calls cannot be addressed.
    #[error("no AWS region is configured")]
    #[diagnostic(
        code(cruddur::no_region),
        help("set AWS_REGION (or AWS_DEFAULT_REGION), or a region in your AWS profile")
    )]
    NoRegion,
    /// A saved plan is unreadable or stale.
    #[error(transparent)]
    #[diagnostic(transparent)]
    SavedPlan(#[from] crate::plan::saved::SavedPlanError),
    /// A --target names nothing.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Target(#[from] crate::plan::TargetError),
    /// A local file could not be written.
    #[error("{0}")]
    #[diagnostic(code(cruddur::io))]
    Io(String),
    /// An artifact depends on something unknown before apply.
    #[error("{0}")]
    #[diagnostic(
        code(cruddur::build::unknown_input),
        help("give the variable a value in the environment or .env; `build` needs only what the sources use")
    )]
    Unbuildable(String),
    /// A named thing does not exist.
    #[error("{0}")]
    #[diagnostic(code(cruddur::not_found))]
    NotFound(String),
    /// The plan broadens who can do what, and nobody approved it.
    #[error("the plan broadens access, and --require-approval broadening asks for an approval:\n{0}")]
    #[diagnostic(
        code(cruddur::plan::broadening),
        help(
            "review each statement; approve with --approve-broadening, or list the fingerprints in --approval-file \
             (the pull-request workflow writes it when a reviewer approves)"
        )
    )]
    Broadening(String),
    /// A planned resource breaks a built-in policy rule it does not waive.
    #[error("policy rules broken (--policy-check):\n{0}")]
    #[diagnostic(
        code(cruddur::plan::policy),
        help("fix the resource, or waive the rule on it in the spec with a reason: `waivers: {{ RULE: \"why\" }}`")
    )]
    PolicyCheck(String),
    /// An AWS call of a command that is neither a plan nor an apply failed.
    #[error("{addr}: {error}")]
    #[diagnostic(code(cruddur::aws))]
    Aws { addr: crate::addr::ResourceAddr, error: Box<crate::provider::ProviderError> },
    /// `state mv` cannot move the resource.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Move(#[from] crate::plan::moves::MoveError),
    /// A `stages` command was misused, or some stages could not be destroyed.
    #[error("{0}")]
    #[diagnostic(code(cruddur::stages))]
    Stages(String),
    /// A kind's operation (`rollback`) was refused or failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Operation(#[from] crate::apply::operate::OperateError),
}

/// Runs `work` holding the state lock for `operation`, and releases the lock afterwards on
/// every path (an S3 lock cannot be released from `Drop`). The work's error wins over a
/// failure to release.
pub async fn with_lock<T>(
    store: &dyn StateBackend,
    operation: &str,
    work: impl AsyncFnOnce() -> Result<T, CliError>,
) -> Result<T, CliError> {
    let acquired = store.lock(operation).await?;
    if let Some(dead) = &acquired.took_over {
        report_took_over(dead);
    }
    let result = crate::state::while_locked(store, &acquired.info, work()).await.map_err(CliError::from).flatten();
    let released = store.unlock(&acquired.info).await;
    let value = result?;
    released?;
    Ok(value)
}

/// Says whose lock a command took over, and why it could.
pub fn report_took_over(dead: &crate::state::TookOver) {
    eprintln!("{}", dead.describe());
}

/// The command with the environment variable of every option whose variable is empty removed.
fn without_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| match arg.get_env() {
            Some(name) if std::env::var_os(name).is_some_and(|v| v.is_empty()) => arg.env(None),
            _ => arg,
        })
        .mut_subcommands(without_empty_env)
}

/// Fails early, with a hint, when a command that will call AWS has no region to call.
pub async fn ensure_region(aws: &Aws, spec: &Spec, prior: &crate::state::State) -> Result<(), CliError> {
    Ok(crate::run::region_known(aws, spec, prior).await?)
}

impl Cli {
    /// Parses the command line, as `try_parse` does, except that an option's environment
    /// variable that is set but empty counts as unset: CI systems expand a variable nobody set
    /// to the empty string (GitHub's `${{ vars.CRUDDUR_STATE_ENCRYPTION }}`), which must leave
    /// the default in place, not be refused as a value.
    pub fn try_parse_args() -> Result<Self, clap::Error> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = without_empty_env(Cli::command()).try_get_matches()?;
        Cli::from_arg_matches(&matches)
    }

    pub async fn run(self) -> Result<ExitCode, CliError> {
        style::init(self.no_color);
        if let Some(dir) = &self.chdir {
            std::env::set_current_dir(dir)
                .map_err(|e| CliError::Io(format!("--chdir {}: cannot work there: {e}", dir.display())))?;
        }
        let json_stream = match &self.command {
            Command::Apply(args) => args.json,
            Command::Destroy(args) => args.json,
            _ => false,
        };
        let build_events: Box<dyn crate::build::BuildEvents> =
            if json_stream { Box::new(events::JsonBuildEvents) } else { Box::new(events::TextBuildEvents) };
        let builds = crate::build::Builds::new(self.build_profile, build_events);
        let registry = Registry::aws();
        let aws = Aws::new(AwsOptions {
            s3_force_path_style: self.s3_force_path_style,
            no_wait: self.no_wait,
            call_log: self.aws_call_log,
            retry: crate::retry::RetryPolicy::default(),
            on_retry: crate::provider::RetrySink::new(events::retrying),
        });
        match self.command {
            Command::Validate(args) => validate::cmd_validate(args, &registry),
            Command::Plan(args) => plan::cmd_plan(args, &registry, &aws, &builds).await,
            Command::Apply(args) => apply::cmd_apply(args, &registry, &aws, &builds).await,
            Command::Destroy(args) => destroy::cmd_destroy(args, &registry, &aws, &builds).await,
            Command::Build(args) => build::cmd_build(args, &registry, &builds).await,
            Command::Output(args) => output::cmd_output(args, &aws).await,
            Command::Graph(args) => graph::cmd_graph(args, &registry),
            Command::ForceUnlock(args) => force_unlock::cmd_force_unlock(args, &aws).await,
            Command::Drift(args) => drift::cmd_drift(args, &registry, &aws, &builds).await,
            Command::Import(args) => import::cmd_import(args, &registry, &aws).await,
            Command::IamPolicy(args) => iam_policy::cmd_iam_policy(args, &registry, &aws).await,
            Command::Rollback(args) => rollback::cmd_rollback(args, &registry, &aws).await,
            Command::Undo(args) => undo::cmd_undo(args, &registry, &aws, &builds).await,
            Command::State(args) => state::cmd_state(args, &aws).await,
            Command::Stages(args) => stages::cmd_stages(args, &registry, &aws, &builds).await,
            Command::Schema(args) => schema::cmd_schema(args, &registry),
            Command::Show(args) => show::cmd_show(args, &aws).await,
            Command::Version(args) => version::cmd_version(&args),
            Command::Completions(args) => version::cmd_completions(&args),
            Command::Reference(args) => version::cmd_reference(&args),
        }
    }
}

impl From<crate::run::RunError> for CliError {
    fn from(e: crate::run::RunError) -> Self {
        use crate::run::RunError;
        match e {
            RunError::State(e) => CliError::State(e),
            RunError::Plan(e) => CliError::Plan(e),
            RunError::Target(e) => CliError::Target(e),
            RunError::SavedPlan(e) => CliError::SavedPlan(e),
            RunError::NoRegion => CliError::NoRegion,
        }
    }
}
