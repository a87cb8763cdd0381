//! The least-privilege IAM policy of the deployer itself (`iam-policy --for COMMAND`): exactly
//! the actions the spec's resource kinds, lookups and state backend call for that command,
//! scoped to the spec's ARNs where AWS takes resource-level permissions.
//!
//! Each kind declares its IAM actions by what runs them ([`Deployer`]): `read` (refresh and the
//! search for what an interrupted create made: every command), `write` (create, update, the
//! waits: apply) and `delete` (apply's replacements and deletes, destroy). A test keeps the
//! declarations in step with the AWS call log of a full apply, plan, drift and destroy.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::value::UNKNOWN;

/// The IAM actions one kind's AWS calls need.
#[derive(Debug, Clone, Copy)]
pub struct Deployer {
    pub read: &'static [&'static str],
    pub write: &'static [&'static str],
    pub delete: &'static [&'static str],
    /// Of these, the actions AWS authorises on resource `*` only (`List*`, creates whose ARN
    /// holds an id AWS assigns).
    pub unscoped: &'static [&'static str],
}

impl Deployer {
    pub const NONE: Deployer = Deployer { read: &[], write: &[], delete: &[], unscoped: &[] };

    /// The actions a command needs of this kind.
    pub fn for_command(&self, command: Command) -> BTreeSet<&'static str> {
        let mut out: BTreeSet<&'static str> = self.read.iter().copied().collect();
        if matches!(command, Command::Apply) {
            out.extend(self.write);
        }
        if matches!(command, Command::Apply | Command::Destroy) {
            out.extend(self.delete);
        }
        out
    }
}

/// The command a policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Command {
    Drift,
    Plan,
    Apply,
    Destroy,
}

impl Command {
    /// Whether the command writes the state (and takes its lock).
    pub fn writes_state(self) -> bool {
        matches!(self, Command::Apply | Command::Destroy)
    }
}

/// Where ARNs point: the region and account (`*` when not known), and the partition.
#[derive(Debug, Clone)]
pub struct ArnScope {
    pub region: String,
    pub account: String,
    /// `aws`, `aws-cn`, `aws-us-gov`: the partition of the region.
    pub partition: &'static str,
}

impl ArnScope {
    /// The scope of `region` (`*`: any, in the commercial partition) and `account`.
    pub fn new(region: String, account: String) -> Self {
        let partition = if region == "*" { "aws" } else { crate::provider::partition::of_region(&region).name };
        Self { region, account, partition }
    }

    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, with whatever of region and account
    /// the service's ARNs carry given by the caller.
    pub fn arn(&self, service: &str, region: &str, account: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{region}:{account}:{resource}", self.partition)
    }

    /// `text` with an unknown value (a reference known only after apply) as `*`.
    pub fn part(text: Option<&str>) -> String {
        match text {
            Some(s) if !s.contains(UNKNOWN) && !s.is_empty() => s.to_string(),
            _ => "*".to_string(),
        }
    }
}

/// What one statement of the policy grants, before it is written out.
#[derive(Debug, Default)]
pub struct Policy {
    /// Scoped actions, by the ARNs they act on.
    scoped: BTreeMap<BTreeSet<String>, BTreeSet<String>>,
    /// Actions on `*`.
    unscoped: BTreeSet<String>,
}

impl Policy {
    /// Grants `actions` on `arns` (`*` among them, or `unscoped` ones, go on `*`).
    pub fn grant(&mut self, actions: &BTreeSet<&'static str>, unscoped: &[&str], arns: Vec<String>) {
        let wide = arns.is_empty() || arns.iter().any(|a| a == "*");
        for action in actions {
            if wide || unscoped.contains(action) {
                self.unscoped.insert(action.to_string());
            }
        }
        let scoped: BTreeSet<String> =
            actions.iter().filter(|a| !wide && !unscoped.contains(a)).map(|a| a.to_string()).collect();
        if !scoped.is_empty() {
            let arns: BTreeSet<String> = arns.into_iter().collect();
            self.scoped.entry(arns).or_default().extend(scoped);
        }
    }

    /// Every action the policy grants.
    pub fn actions(&self) -> BTreeSet<String> {
        self.scoped.values().flatten().chain(&self.unscoped).cloned().collect()
    }

    /// The IAM policy document: one statement per set of ARNs, one on `*`.
    pub fn document(&self) -> Value {
        // Actions granted on the same ARNs by several resources merge into one statement.
        let mut by_actions: BTreeMap<BTreeSet<String>, BTreeSet<String>> = BTreeMap::new();
        for (arns, actions) in &self.scoped {
            let actions: BTreeSet<String> = actions.difference(&self.unscoped).cloned().collect();
            if !actions.is_empty() {
                by_actions.entry(actions).or_default().extend(arns.iter().cloned());
            }
        }
        let mut statements: Vec<Value> = by_actions
            .iter()
            .enumerate()
            .map(|(i, (actions, arns))| {
                json!({"Sid": format!("Scoped{}", i + 1), "Effect": "Allow", "Action": actions, "Resource": arns})
            })
            .collect();
        if !self.unscoped.is_empty() {
            statements.push(json!({"Sid": "NoResourceLevelPermissions", "Effect": "Allow", "Action": self.unscoped, "Resource": "*"}));
        }
        json!({"Version": "2012-10-17", "Statement": statements})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: Deployer = Deployer {
        read: &["s3:GetBucketPolicy", "s3:ListAllMyBuckets"],
        write: &["s3:PutBucketPolicy"],
        delete: &["s3:DeleteBucketPolicy"],
        unscoped: &["s3:ListAllMyBuckets"],
    };

    #[test]
    fn each_command_gets_the_actions_it_runs() {
        let of = |c| KIND.for_command(c).into_iter().collect::<Vec<_>>();
        assert_eq!(of(Command::Drift), ["s3:GetBucketPolicy", "s3:ListAllMyBuckets"]);
        assert_eq!(of(Command::Plan), of(Command::Drift));
        assert_eq!(of(Command::Destroy), ["s3:DeleteBucketPolicy", "s3:GetBucketPolicy", "s3:ListAllMyBuckets"]);
        assert_eq!(of(Command::Apply).len(), 4);
    }

    #[test]
    fn scoped_actions_name_their_arns_and_the_rest_go_on_star() {
        let mut policy = Policy::default();
        policy.grant(&KIND.for_command(Command::Plan), KIND.unscoped, vec!["arn:aws:s3:::b".into()]);
        policy.grant(&KIND.for_command(Command::Plan), KIND.unscoped, vec!["arn:aws:s3:::c".into()]);
        let doc = policy.document();
        let statements = doc["Statement"].as_array().expect("statements");
        assert_eq!(statements.len(), 2, "{doc}");
        assert_eq!(statements[0]["Action"], json!(["s3:GetBucketPolicy"]));
        assert_eq!(statements[0]["Resource"], json!(["arn:aws:s3:::b", "arn:aws:s3:::c"]));
        assert_eq!(statements[1]["Resource"], "*");
        assert_eq!(statements[1]["Action"], json!(["s3:ListAllMyBuckets"]));
        // A resource whose ARN is unknown puts its actions on `*`.
        let mut policy = Policy::default();
        policy.grant(&KIND.for_command(Command::Plan), KIND.unscoped, vec!["*".into()]);
        assert_eq!(policy.document()["Statement"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn arns_name_the_partition_of_the_region() {
        // GovCloud and China ARNs are not `arn:aws:`; an unknown region (`*`) is the commercial one.
        assert_eq!(ArnScope::new("cn-north-1".into(), "1".into()).arn("s3", "", "", "b"), "arn:aws-cn:s3:::b");
        let gov = ArnScope::new("us-gov-west-1".into(), "1".into());
        assert_eq!(
            gov.arn("lambda", &gov.region, "1", "function:f"),
            "arn:aws-us-gov:lambda:us-gov-west-1:1:function:f"
        );
        assert_eq!(ArnScope::new("*".into(), "*".into()).arn("iam", "", "*", "role/r"), "arn:aws:iam::*:role/r");
    }
}
