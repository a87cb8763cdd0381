//! `iam-policy --for COMMAND`: the least-privilege IAM policy the engine needs for one command on
//! this spec, printed as a policy document.

use super::stdout::outln;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::permissions::deployer::{ArnScope, Command, Deployer, Policy};
use crate::provider::{Aws, Registry};
use crate::value::{Attrs, unknown};

/// Print the IAM policy `cruddur-infra COMMAND` needs on this spec: exactly the actions its
/// resource kinds, lookups and state backend call, scoped to the spec's ARNs where AWS takes
/// resource-level permissions (`*` where a name is known only after apply). `plan` and `drift`
/// get read-only policies. Its only AWS calls read the state, for the resources the spec no
/// longer declares: the S3 object of a remote state, and KMS for an encrypted one.
#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The command the policy is for.
    #[arg(long = "for", value_enum, value_name = "COMMAND")]
    command: Command,
    /// The account the ARNs name [default: any account, `*`].
    #[arg(long)]
    account: Option<String>,
    #[command(flatten)]
    paths: Paths,
}

pub async fn cmd_iam_policy(args: IamPolicyArgs, registry: &Registry, aws: &Aws) -> Result<ExitCode, CliError> {
    let spec = args.paths.load_spec_without_sources(registry)?;
    let recorded = match args.paths.backend(aws)?.load().await {
        Ok(state) => state,
        Err(e) => {
            eprintln!(
                "Warning: the state could not be read ({e}): the policy covers the spec's resources only, not those \
                 the state alone still records."
            );
            crate::state::State::default()
        }
    };
    let region = aws.config().await.region().map_or_else(|| "*".to_string(), |r| r.to_string());
    let scope = ArnScope::new(region, args.account.clone().unwrap_or_else(|| "*".into()));
    let mut policy = Policy::default();
    let mut grant = |deployer: Deployer, arns: Vec<String>| {
        policy.grant(&deployer.for_command(args.command), deployer.unscoped, arns);
    };
    // The spec's resources, and those only the state still records (a plan deletes what the
    // spec dropped; drift reads what the state records, which is the spec's once applied).
    let mut seen = std::collections::BTreeSet::new();
    for res in &spec.resources {
        let Some(access) = registry.get(&res.addr.kind).and_then(|k| k.access()) else { continue };
        let values: Attrs = crate::plan::evaluate(res, &|_, _| unknown());
        grant(access.deployer(), access.deployer_arns(&values, &scope));
        seen.insert(res.addr.clone());
    }
    for (addr, res) in recorded.resources.iter().filter(|(a, _)| !seen.contains(*a)) {
        let Some(access) = registry.get(&addr.kind).and_then(|k| k.access()) else { continue };
        grant(access.deployer(), access.deployer_arns(&res.attributes, &scope));
    }
    // Lookups are answered by plans, and by `stages destroy` rebuilding a lost stage's state.
    if matches!(args.command, Command::Plan | Command::Apply | Command::Destroy) {
        for lookup in &spec.lookups {
            let Some(kind) = registry.lookup(&lookup.addr.kind) else { continue };
            let query: Attrs = crate::plan::evaluate(lookup, &|_, _| unknown());
            grant(kind.deployer(), kind.deployer_arns(&query, &scope));
        }
    }
    // Who the credentials are: the account some checks need (AWS allows it to everyone).
    let identity = &["sts:GetCallerIdentity"];
    grant(Deployer { read: identity, unscoped: identity, ..Deployer::NONE }, vec![]);
    // `stages destroy` and `stages prune` look for the stages whose state is lost by their tag.
    if args.command == Command::Destroy {
        let tags: &'static [&'static str] = &["tag:GetResources"];
        grant(Deployer { delete: tags, unscoped: tags, ..Deployer::NONE }, vec![]);
    }
    // The S3 state backend: the state object, and for commands that write it its lock and backup.
    if let Some((bucket, key)) = args.paths.state_location().strip_prefix("s3://").and_then(|r| r.split_once('/')) {
        let state = Deployer {
            read: &["s3:GetObject"],
            write: &["s3:PutObject", "s3:DeleteObject"],
            delete: &["s3:PutObject", "s3:DeleteObject"],
            unscoped: &[],
        };
        let objects = if args.command.writes_state() {
            vec![
                scope.arn("s3", "", "", &format!("{bucket}/{key}")),
                scope.arn("s3", "", "", &format!("{bucket}/{key}.*")),
            ]
        } else {
            vec![scope.arn("s3", "", "", &format!("{bucket}/{key}"))]
        };
        grant(state, objects);
        // A command that writes lists the earlier states kept (KEY.history/) to let the oldest go.
        if args.command.writes_state() {
            let list = Deployer { write: &["s3:ListBucket"], delete: &["s3:ListBucket"], ..Deployer::NONE };
            grant(list, vec![scope.arn("s3", "", "", bucket)]);
        }
        // Where the bucket lives, asked when S3 answers that it is in another region.
        let locate = Deployer { read: &["s3:GetBucketLocation"], ..Deployer::NONE };
        grant(locate, vec![scope.arn("s3", "", "", bucket)]);
    }
    // A sealed state: its data keys are decrypted on every read, and made by every command
    // that writes the state or a saved plan (drift writes neither).
    if let Some(key) = args.paths.encryption_key()? {
        let read: &'static [&'static str] = match args.command {
            Command::Drift => &["kms:Decrypt", "kms:DescribeKey"],
            _ => &["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
        };
        grant(Deployer { read, ..Deployer::NONE }, vec![kms_key_arn(&key, &scope)]);
    }
    let text = serde_json::to_string_pretty(&policy.document()).unwrap_or_default();
    outln!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The ARN a policy names for the KMS key given as `kms:KEY`: an ARN as it is, a key id in
/// the scope's region and account; an alias names no key ARN, so any key of the account
/// (IAM evaluates KMS permissions on the key, never on its alias).
fn kms_key_arn(key: &str, scope: &ArnScope) -> String {
    if key.starts_with("arn:") && key.contains(":key/") {
        return key.to_string();
    }
    let id = if key.starts_with("alias/") || key.contains(":alias/") { "*" } else { key };
    scope.arn("kms", &scope.region, &scope.account, &format!("key/{id}"))
}
