//! Who can do what: the permission statements a plan adds and removes, and which of them
//! broaden access.
//!
//! Each resource kind that writes a policy (a role's trust and inline policies and its managed
//! attachments, a bucket or topic policy, a Lambda permission) says which [`Grant`]s its
//! attributes give (`ResourceKind::grants`). A plan compares the grants of what AWS holds now
//! with those of the spec, resource by resource. The values are the plan's: fully resolved where
//! the plan knows them, which is what plan scanners reading the spec text cannot see.
//!
//! *Broadening* is an added `Allow` that no grant before covers (same or wider principal, action
//! and resource, with no more conditions), any added wildcard, a removed condition, or a
//! removed `Deny`.

pub mod deployer;
pub mod rules;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::addr::ResourceAddr;
use crate::value::UNKNOWN;

/// Where a grant is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// A role's own policies: what the role may do.
    Identity,
    /// A role's trust policy: who may assume it.
    Trust,
    /// A resource's policy (bucket, topic, function): who may act on it.
    Resource,
}

/// One principal allowed (or denied) one action on one resource, under conditions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub policy: PolicyKind,
    pub deny: bool,
    /// `service:s3.amazonaws.com`, `aws:ARN`, `*`, or the resource address of a role.
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// `Operator key value`, sorted.
    pub conditions: Vec<String>,
}

impl Grant {
    /// `principal -> action -> resource [if conditions]`, unknown values as `(known after apply)`.
    pub fn describe(&self) -> String {
        let shown = |s: &str| s.replace(UNKNOWN, "(known after apply)");
        let mut text = format!(
            "{}{} -> {} -> {}",
            if self.deny { "DENY " } else { "" },
            shown(&self.principal),
            shown(&self.action),
            shown(&self.resource)
        );
        if !self.conditions.is_empty() {
            text.push_str(&format!(" if {}", shown(&self.conditions.join(" and "))));
        }
        text
    }

    /// Whether this grant allows at least what `other` allows: each of its patterns matches
    /// every string the other's matches.
    fn covers(&self, other: &Grant) -> bool {
        self.deny == other.deny
            && subsumes(&self.principal, &other.principal)
            && subsumes(&self.action.to_ascii_lowercase(), &other.action.to_ascii_lowercase())
            && subsumes(&self.resource, &other.resource)
            && self.conditions.iter().all(|c| other.conditions.contains(c))
    }
}

/// Whether the IAM pattern `wide` matches every string the pattern `narrow` matches (`*` any
/// run of characters, `?` any one). Sound, never too generous: where it answers yes, no string
/// escapes; a few covering pairs it cannot prove are answered no (a broadening shown that a
/// reviewer may approve). Unknown values are covered by nothing.
pub(crate) fn subsumes(wide: &str, narrow: &str) -> bool {
    if wide.contains(UNKNOWN) || narrow.contains(UNKNOWN) {
        return false;
    }
    let (w, n) = (tokens(wide), tokens(narrow));
    // covered[i][j]: wide[i..] covers narrow[j..], filled from the ends.
    let mut covered = vec![vec![false; n.len() + 1]; w.len() + 1];
    for i in (0..=w.len()).rev() {
        for j in (0..=n.len()).rev() {
            covered[i][j] = match (w.get(i), n.get(j)) {
                // Nothing left of the narrow one: the rest of the wide one must match "".
                (_, None) => w[i..].iter().all(|t| *t == Token::Any),
                (None, Some(_)) => false,
                // A `*` takes whole tokens of the narrow pattern, or none.
                (Some(Token::Any), Some(_)) => covered[i + 1][j] || covered[i][j + 1],
                (Some(Token::One), Some(Token::One | Token::Char(_))) => covered[i + 1][j + 1],
                (Some(Token::Char(a)), Some(Token::Char(b))) => a == b && covered[i + 1][j + 1],
                _ => false,
            };
        }
    }
    covered[0][0]
}

/// One element of an IAM pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Any,
}

/// The pattern's tokens, each run of wildcards in its one canonical form (its `?`s, then one
/// `*` if it has any): `*?` and `?*` match the same strings and must compare alike.
fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '*' && c != '?' {
            out.push(Token::Char(c));
            continue;
        }
        let (mut ones, mut any) = (usize::from(c == '?'), c == '*');
        while let Some(&next) = chars.peek().filter(|n| **n == '*' || **n == '?') {
            ones += usize::from(next == '?');
            any |= next == '*';
            chars.next();
        }
        out.extend(std::iter::repeat_n(Token::One, ones));
        if any {
            out.push(Token::Any);
        }
    }
    out
}

/// Whether `pattern` (with `*` and `?`) matches all of `text`. Unknown values match nothing.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    if pattern.contains(UNKNOWN) || text.contains(UNKNOWN) {
        return false;
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The grants of an IAM policy document. `principal` is whose policy it is for an identity
/// policy (a statement there names no principal), `resource` the resource a resource or trust
/// policy is attached to, for statements that name none.
pub fn from_document(doc: &Value, policy: PolicyKind, principal: Option<&str>, resource: Option<&str>) -> Vec<Grant> {
    let doc = match doc {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => vec![],
    };
    let mut out = Vec::new();
    for s in statements {
        let deny = s.get("Effect").and_then(Value::as_str) == Some("Deny");
        let principals = match (s.get("Principal"), principal) {
            (Some(p), _) => principals(p),
            (None, Some(own)) => vec![own.to_string()],
            (None, None) => vec!["*".to_string()],
        };
        let actions = list(s.get("Action"))
            .into_iter()
            .chain(list(s.get("NotAction")).into_iter().map(|a| format!("* except {a}")))
            .collect::<Vec<_>>();
        let mut resources = list(s.get("Resource"));
        resources.extend(list(s.get("NotResource")).into_iter().map(|r| format!("* except {r}")));
        if resources.is_empty() {
            resources.push(resource.unwrap_or("*").to_string());
        }
        let conditions = conditions(s.get("Condition"));
        for p in &principals {
            for a in &actions {
                for r in &resources {
                    out.push(Grant {
                        policy,
                        deny,
                        principal: p.clone(),
                        action: a.clone(),
                        resource: r.clone(),
                        conditions: conditions.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The grants of the resource policy a resource holds (a bucket's or a topic's), if any.
pub fn of_resource_policy(policy: Option<&Value>) -> Vec<Grant> {
    policy.into_iter().flat_map(|doc| from_document(doc, PolicyKind::Resource, None, None)).collect()
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().map(text).collect(),
        _ => vec![],
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn principals(p: &Value) -> Vec<String> {
    match p {
        Value::String(s) => vec![s.clone()],
        Value::Object(map) => map
            .iter()
            .flat_map(|(kind, v)| {
                list(Some(v)).into_iter().map(move |who| format!("{}:{who}", kind.to_ascii_lowercase()))
            })
            .map(|p| if p == "aws:*" { "*".to_string() } else { p })
            .collect(),
        _ => vec!["*".to_string()],
    }
}

fn conditions(c: Option<&Value>) -> Vec<String> {
    let Some(Value::Object(ops)) = c else { return vec![] };
    let mut out: Vec<String> = ops
        .iter()
        .flat_map(|(op, keys)| {
            keys.as_object().into_iter().flatten().map(move |(key, v)| {
                let values = list(Some(v)).join("|");
                format!("{op} {} = {values}", key.to_ascii_lowercase())
            })
        })
        .collect();
    out.sort();
    out
}

/// One statement a plan adds or removes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantChange {
    /// `+` added, `-` removed.
    pub added: bool,
    pub grant: Grant,
    pub broadening: bool,
    /// Why it broadens access.
    pub why: Option<String>,
    /// A short hash of the resource and the statement: what an approval names.
    pub fingerprint: String,
}

/// The permission statements one resource's planned change adds and removes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionChange {
    pub addr: ResourceAddr,
    pub changes: Vec<GrantChange>,
}

impl PermissionChange {
    pub fn broadening(&self) -> impl Iterator<Item = &GrantChange> {
        self.changes.iter().filter(|c| c.broadening)
    }
}

/// What changes between the grants of a resource as it is (`before`) and as planned (`after`).
pub fn compare(addr: &ResourceAddr, before: &[Grant], after: &[Grant]) -> Option<PermissionChange> {
    let (old, new): (BTreeSet<&Grant>, BTreeSet<&Grant>) = (before.iter().collect(), after.iter().collect());
    let mut changes = Vec::new();
    for g in new.difference(&old) {
        let same_statement = old
            .iter()
            .find(|o| !o.deny && o.principal == g.principal && o.action == g.action && o.resource == g.resource);
        let why = if g.deny {
            None
        } else if let Some(o) = same_statement
            && !o.conditions.iter().all(|c| g.conditions.contains(c))
        {
            Some("a condition removed".to_string())
        } else if old.iter().any(|o| o.covers(g)) {
            None
        } else if new_wildcard(g, &old) {
            Some("a wildcard".to_string())
        } else {
            Some(novelty(g, &old))
        };
        changes.push(change(addr, true, (*g).clone(), why));
    }
    for g in old.difference(&new) {
        let why = g.deny.then(|| "a Deny removed".to_string());
        changes.push(change(addr, false, (*g).clone(), why));
    }
    (!changes.is_empty()).then(|| PermissionChange { addr: addr.clone(), changes })
}

/// Whether the grant has a wildcard principal, action or resource no grant before had (an S3
/// object ARN ending in `/*` that was there already is no new wildcard).
fn new_wildcard(g: &Grant, old: &BTreeSet<&Grant>) -> bool {
    let fields = |x: &Grant| [x.principal.clone(), x.action.clone(), x.resource.clone()];
    let before: Vec<[String; 3]> = old.iter().map(|o| fields(o)).collect();
    fields(g).iter().enumerate().any(|(i, f)| f.contains('*') && !before.iter().any(|b| &b[i] == f))
}

/// What an added grant brings that none before had.
fn novelty(g: &Grant, old: &BTreeSet<&Grant>) -> String {
    let allows = old.iter().filter(|o| !o.deny);
    if !allows.clone().any(|o| subsumes(&o.principal, &g.principal)) {
        "a new principal".into()
    } else if !allows.clone().any(|o| subsumes(&o.action.to_ascii_lowercase(), &g.action.to_ascii_lowercase())) {
        "a new action".into()
    } else {
        "a new resource".into()
    }
}

fn change(addr: &ResourceAddr, added: bool, grant: Grant, why: Option<String>) -> GrantChange {
    let fingerprint = fingerprint(addr, added, &grant);
    GrantChange { added, broadening: why.is_some(), why, grant, fingerprint }
}

fn fingerprint(addr: &ResourceAddr, added: bool, g: &Grant) -> String {
    let text = format!("{addr}|{}|{}", if added { "+" } else { "-" }, g.describe());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The lines of the permission section of a text plan (empty when nothing changes).
pub fn render_text(changes: &[PermissionChange]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut out = String::from("Permission changes (principal -> action -> resource):\n");
    for pc in changes {
        out.push_str(&format!("\n  # {}\n", pc.addr));
        for c in &pc.changes {
            let mark = match &c.why {
                Some(why) => format!("  [broadening: {why}; {}]", c.fingerprint),
                None => String::new(),
            };
            out.push_str(&format!("    {} {}{mark}\n", if c.added { "+" } else { "-" }, c.grant.describe()));
        }
    }
    out
}

/// Statements that broaden access and are not approved: by `approve_all`, or by fingerprint.
pub fn unapproved<'a>(
    changes: &'a [PermissionChange],
    approve_all: bool,
    approved: &BTreeSet<String>,
) -> Vec<(&'a ResourceAddr, &'a GrantChange)> {
    if approve_all {
        return vec![];
    }
    changes
        .iter()
        .flat_map(|pc| pc.broadening().map(move |c| (&pc.addr, c)))
        .filter(|(_, c)| !approved.contains(&c.fingerprint))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn addr() -> ResourceAddr {
        "lambda_permission.p".parse().expect("addr")
    }

    fn grant(principal: &str, action: &str, resource: &str, conditions: &[&str]) -> Grant {
        Grant {
            policy: PolicyKind::Resource,
            deny: false,
            principal: principal.into(),
            action: action.into(),
            resource: resource.into(),
            conditions: conditions.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn a_document_becomes_one_grant_per_principal_action_and_resource() {
        let doc = json!({"Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": ["s3.amazonaws.com", "sns.amazonaws.com"]},
            "Action": ["sns:Publish"],
            "Resource": "arn:aws:sns:us-east-1:1:t",
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::b"}}
        }]});
        let grants = from_document(&doc, PolicyKind::Resource, None, None);
        assert_eq!(grants.len(), 2);
        assert_eq!(
            grants[0].describe(),
            "service:s3.amazonaws.com -> sns:Publish -> arn:aws:sns:us-east-1:1:t if ArnLike aws:sourcearn = arn:aws:s3:::b"
        );
        let identity =
            json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
        let grants = from_document(&identity, PolicyKind::Identity, Some("iam_role.r"), None);
        assert_eq!(grants[0].principal, "iam_role.r");
    }

    #[test]
    fn added_access_is_broadening_unless_something_before_covered_it() {
        let old = [grant("service:s3.amazonaws.com", "lambda:InvokeFunction", "fn", &["ArnLike aws:sourcearn = b"])];
        // Same statement, one condition more: narrower, not broadening.
        let narrower = [grant(
            "service:s3.amazonaws.com",
            "lambda:InvokeFunction",
            "fn",
            &["ArnLike aws:sourcearn = b", "StringEquals aws:sourceaccount = 1"],
        )];
        let c = compare(&addr(), &old, &narrower).expect("a change");
        assert!(c.broadening().next().is_none(), "{c:?}");
        // The condition removed.
        let bare = [grant("service:s3.amazonaws.com", "lambda:InvokeFunction", "fn", &[])];
        let c = compare(&addr(), &old, &bare).expect("a change");
        assert_eq!(c.broadening().next().and_then(|g| g.why.clone()).as_deref(), Some("a condition removed"));
        // A new principal; a wildcard.
        let other = [grant("service:sns.amazonaws.com", "lambda:InvokeFunction", "fn", &["ArnLike aws:sourcearn = b"])];
        let c = compare(&addr(), &old, &other).expect("a change");
        assert_eq!(c.broadening().next().and_then(|g| g.why.clone()).as_deref(), Some("a new principal"));
        let wild = [grant("*", "lambda:InvokeFunction", "fn", &[])];
        let c = compare(&addr(), &old, &wild).expect("a change");
        assert_eq!(c.broadening().next().and_then(|g| g.why.clone()).as_deref(), Some("a wildcard"));
        // Removing access is never broadening; removing a Deny is.
        let c = compare(&addr(), &old, &[]).expect("a change");
        assert!(c.broadening().next().is_none());
        let mut deny = old[0].clone();
        deny.deny = true;
        let c = compare(&addr(), &[deny], &[]).expect("a change");
        assert!(c.broadening().next().is_some());
        assert!(compare(&addr(), &old, &old).is_none());
    }

    #[test]
    fn an_action_covered_by_a_wildcard_before_is_not_new() {
        let old = [grant("iam_role.r", "s3:*", "arn:aws:s3:::b/*", &[])];
        let new = [grant("iam_role.r", "s3:GetObject", "arn:aws:s3:::b/*", &[])];
        let c = compare(&addr(), &old, &new).expect("a change");
        assert!(c.broadening().next().is_none(), "{c:?}");
        assert!(glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y"));
        assert!(!glob("arn:aws:s3:::b/*", "arn:aws:s3:::c/x"));
        assert!(!glob("*", UNKNOWN));
    }

    #[test]
    fn a_wildcard_is_not_covered_by_a_narrower_pattern_before() {
        // An old grant on `b/?` does not cover a new one on `b/*`: `b/xy` escapes it.
        let old = [grant("iam_role.r", "s3:GetObject", "arn:aws:s3:::b/?", &[])];
        let new = [grant("iam_role.r", "s3:GetObject", "arn:aws:s3:::b/*", &[])];
        let c = compare(&addr(), &old, &new).expect("a change");
        assert_eq!(c.broadening().count(), 1, "{c:?}");
        assert!(!subsumes("b/?", "b/*"));
        assert!(subsumes("b/*", "b/?"));
        assert!(subsumes("?*", "*?"), "the same strings, written two ways");
        assert!(subsumes("a*", "a?b*c"));
        assert!(!subsumes("*x", "*"));
    }

    /// Every string of length 0..=6 over the alphabet the generated patterns use (one longer
    /// than the longest pattern, so a counterexample is among them).
    fn all_strings() -> Vec<String> {
        let mut out = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..6 {
            last = last.iter().flat_map(|s| ['a', 'b', '/'].map(|c| format!("{s}{c}"))).collect();
            out.extend(last.iter().cloned());
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn coverage_never_claims_a_pattern_whose_strings_escape(
            wide in "[ab/*?]{0,5}",
            narrow in "[ab/*?]{0,5}",
        ) {
            // Checked against brute-force matching: where `subsumes` says yes, every string the
            // narrow pattern matches is matched by the wide one.
            if subsumes(&wide, &narrow) {
                for s in all_strings() {
                    proptest::prop_assert!(!glob(&narrow, &s) || glob(&wide, &s), "{wide} covers {narrow}, but not {s:?}");
                }
            }
        }

        #[test]
        fn coverage_is_found_wherever_the_narrow_pattern_has_no_wildcard(
            wide in "[ab/*?]{0,5}",
            text in "[ab/]{0,5}",
        ) {
            // For a plain string, coverage is exactly matching.
            proptest::prop_assert_eq!(subsumes(&wide, &text), glob(&wide, &text));
        }
    }

    #[test]
    fn an_approval_names_statements_by_fingerprint() {
        let c = compare(&addr(), &[], &[grant("*", "lambda:InvokeFunction", "fn", &[])]).expect("a change");
        let all = [c];
        assert_eq!(unapproved(&all, false, &BTreeSet::new()).len(), 1);
        assert!(unapproved(&all, true, &BTreeSet::new()).is_empty());
        let approved: BTreeSet<String> = [all[0].changes[0].fingerprint.clone()].into();
        assert!(unapproved(&all, false, &approved).is_empty());
    }
}
