//! The states a store kept: who wrote each (the command, the caller, when), what changed from
//! one to the next, and the differences between any two.
//!
//! Each command that writes keeps the state it started from (the one before its first save)
//! beside the current one, stored as the current one is (sealed with the same key when
//! encryption is on): a local state in `<state>.history/`, an S3 state under
//! `<key>.history/`, each entry named by its serial; the oldest beyond the kept number go.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::State;
use crate::addr::ResourceAddr;

/// How many earlier states a store keeps unless told otherwise.
pub const DEFAULT_KEEP: usize = 20;

/// Who wrote a state, recorded in it when it is saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Written {
    /// The command (`apply`, `destroy`, `state mv`, ...), as its lock names it.
    pub command: String,
    /// The caller's ARN when the command had asked AWS who it is; else `user@host`.
    pub by: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

impl Written {
    /// Written now by `command` for `by`.
    pub fn now(command: &str, by: String) -> Self {
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self { command: command.to_string(), by, at }
    }
}

/// What a store needs to keep earlier states: how many, and who is writing.
#[derive(Clone, Copy)]
pub struct Keeping<'a> {
    /// How many earlier states stay (0: none are kept, and those there are removed).
    pub keep: usize,
    /// Where the caller's ARN comes from, once the command asked AWS who it is.
    pub caller: Option<&'a crate::provider::Aws>,
}

impl Default for Keeping<'_> {
    fn default() -> Self {
        Self { keep: DEFAULT_KEEP, caller: None }
    }
}

impl Keeping<'_> {
    /// The stamp of a document saved now under a lock taken for `operation`: who the AWS
    /// credentials are (asked once per command, if the command has not asked already), or
    /// `user@host` when AWS cannot say.
    pub async fn stamp(&self, operation: Option<&str>) -> Written {
        let arn = match self.caller {
            Some(aws) => aws.caller_arn().await.ok().flatten().map(str::to_string),
            None => None,
        };
        Written::now(operation.unwrap_or("unknown"), arn.unwrap_or_else(local_user))
    }
}

/// The serial of a stored document (sealed or not).
pub async fn serial_of_stored(
    codec: &super::Codec<'_>,
    stored: &[u8],
    location: &str,
) -> Result<u64, super::StateError> {
    #[derive(Deserialize)]
    struct Serial {
        serial: u64,
    }
    let plain = codec.open(stored, super::encryption::Purpose::State, location).await?;
    serde_json::from_slice::<Serial>(&plain).map(|s| s.serial).map_err(|e| super::StateError::Corrupt {
        path: location.to_string(),
        reason: format!("no serial: {e}"),
        hint: super::corrupt_hint(location),
    })
}

/// `at` (seconds since the Unix epoch) as RFC 3339 in UTC, to the second.
pub fn rfc3339(at: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at)).to_string()
}

/// `user@host` of this process: who wrote a state when the caller's ARN is not known.
pub fn local_user() -> String {
    let user =
        ["USER", "LOGNAME", "USERNAME"].iter().find_map(|v| std::env::var(v).ok()).unwrap_or_else(|| "unknown".into());
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

/// The name a kept state is stored under: its serial, zero-padded so names sort as serials do.
pub fn entry_name(serial: u64) -> String {
    format!("{serial:020}.json")
}

/// The serial an entry's name holds.
pub fn serial_of(name: &str) -> Option<u64> {
    name.strip_suffix(".json").filter(|s| s.len() == 20).and_then(|s| s.parse().ok())
}

/// Which entries go when `serials` (any order) are kept and at most `keep` may stay.
pub fn beyond(mut serials: Vec<u64>, keep: usize) -> Vec<u64> {
    serials.sort_unstable();
    let drop = serials.len().saturating_sub(keep);
    serials.truncate(drop);
    serials
}

/// How one resource differs between two states.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResourceDiff {
    pub addr: ResourceAddr,
    pub change: Change,
    /// For a changed resource: its id, if that changed, and each attribute that did.
    pub attributes: Vec<AttributeDiff>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Changed,
    Removed,
}

impl Change {
    pub fn symbol(self) -> &'static str {
        match self {
            Change::Added => "+",
            Change::Changed => "~",
            Change::Removed => "-",
        }
    }
}

/// One attribute's values in the older and the newer state (null where absent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttributeDiff {
    pub name: String,
    pub before: Value,
    pub after: Value,
}

/// What differs from `older` to `newer`, by address. Sensitive values are masked with `mask`.
pub fn diff(older: &State, newer: &State, mask: &str) -> Vec<ResourceDiff> {
    let addrs: BTreeSet<&ResourceAddr> = older.resources.keys().chain(newer.resources.keys()).collect();
    addrs
        .into_iter()
        .filter_map(|addr| {
            let (before, after) = (older.resources.get(addr), newer.resources.get(addr));
            let (change, attributes) = match (before, after) {
                (None, None) => return None,
                (None, Some(_)) => (Change::Added, vec![]),
                (Some(_), None) => (Change::Removed, vec![]),
                (Some(b), Some(a)) => {
                    let sensitive: BTreeSet<&String> = b.sensitive.iter().chain(a.sensitive.iter()).collect();
                    let shown = |name: &String, v: Option<&Value>| match v {
                        Some(v) if sensitive.contains(name) && !v.is_null() => Value::String(mask.into()),
                        Some(v) => v.clone(),
                        None => Value::Null,
                    };
                    let mut attributes: Vec<AttributeDiff> = Vec::new();
                    if b.id != a.id {
                        attributes.push(AttributeDiff {
                            name: "id".into(),
                            before: Value::String(b.id.clone()),
                            after: Value::String(a.id.clone()),
                        });
                    }
                    let names: BTreeSet<&String> = b.attributes.keys().chain(a.attributes.keys()).collect();
                    for name in names {
                        let (was, now) = (b.attributes.get(name), a.attributes.get(name));
                        if was != now {
                            attributes.push(AttributeDiff {
                                name: name.clone(),
                                before: shown(name, was),
                                after: shown(name, now),
                            });
                        }
                    }
                    if attributes.is_empty() && b == a {
                        return None;
                    }
                    (Change::Changed, attributes)
                }
            };
            Some(ResourceDiff { addr: addr.clone(), change, attributes })
        })
        .collect()
}

/// `+1 ~2 -0: + s3_bucket.b, ~ lambda_function.f, ...` (the first few addresses), or
/// `no resource changed`.
pub fn summary(diffs: &[ResourceDiff]) -> String {
    if diffs.is_empty() {
        return "no resource changed".into();
    }
    let count = |c: Change| diffs.iter().filter(|d| d.change == c).count();
    let shown: Vec<String> = diffs.iter().take(3).map(|d| format!("{} {}", d.change.symbol(), d.addr)).collect();
    let more = if diffs.len() > 3 { format!(", {} more", diffs.len() - 3) } else { String::new() };
    format!(
        "+{} ~{} -{}: {}{more}",
        count(Change::Added),
        count(Change::Changed),
        count(Change::Removed),
        shown.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ResourceState;
    use serde_json::json;

    fn with(resources: &[(&str, &str, Value)]) -> State {
        let mut s = State::new();
        for (name, id, attrs) in resources {
            let attributes = attrs.as_object().expect("attrs").clone().into_iter().collect();
            s.resources.insert(
                ResourceAddr::new("s3_bucket", *name),
                ResourceState { id: id.to_string(), attributes, ..Default::default() },
            );
        }
        s
    }

    #[test]
    fn entry_names_sort_as_their_serials_do() {
        // 9 before 10: names are zero-padded, and read back.
        assert!(entry_name(9) < entry_name(10));
        assert_eq!(serial_of(&entry_name(1234)), Some(1234));
        assert_eq!(serial_of("12.json"), None);
        assert_eq!(beyond(vec![5, 1, 3, 4, 2], 3), vec![1, 2]);
        assert_eq!(beyond(vec![1], 3), Vec::<u64>::new());
        assert_eq!(beyond(vec![1, 2], 0), vec![1, 2]);
    }

    #[test]
    fn a_diff_names_each_added_removed_and_changed_attribute_and_masks_sensitive_ones() {
        // One bucket kept with a changed tag and a changed secret, one gone, one new.
        let mut older = with(&[("a", "a", json!({"tags": {"x": "1"}, "s": "old"})), ("gone", "g", json!({}))]);
        older.resources.get_mut(&ResourceAddr::new("s3_bucket", "a")).expect("a").sensitive.insert("s".into());
        let newer = with(&[("a", "a", json!({"tags": {"x": "2"}, "s": "new"})), ("new", "n", json!({}))]);
        let d = diff(&older, &newer, "(sensitive)");
        let by: Vec<(String, Change)> = d.iter().map(|d| (d.addr.name.clone(), d.change)).collect();
        assert_eq!(
            by,
            [("a".into(), Change::Changed), ("gone".into(), Change::Removed), ("new".into(), Change::Added)]
        );
        let names: Vec<&str> = d[0].attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["s", "tags"]);
        assert_eq!(d[0].attributes[0].after, json!("(sensitive)"));
        assert_eq!(d[0].attributes[1].before, json!({"x": "1"}));
        assert_eq!(summary(&d), "+1 ~1 -1: ~ s3_bucket.a, - s3_bucket.gone, + s3_bucket.new");
        assert_eq!(summary(&diff(&newer, &newer, "x")), "no resource changed");
    }
}
