//! Documents a parent holds one of (a bucket's policy, its notification configuration, a
//! topic's policy), when the parent was not made by the stack: what the create finds there.
//!
//! The model is Route53's for records: the create reads what is there first. Nothing, or
//! exactly what the spec says: the document is the stack's (and what was found is put back on
//! destroy). Something else: refused, naming what is there, unless the spec says
//! `allow_overwrite: true`; then it is replaced, recorded, and put back on destroy instead of
//! being deleted. A stack adopting a hand-made bucket never silently drops the policy the old
//! distribution reads through, and its destroy leaves the bucket as it found it.
//!
//! *Assumption*: the document found is recorded when the create's answer arrives. A process
//! killed between the write and its record leaves nothing recorded to put back (the next plan
//! finds the spec's document, which is then the stack's); `find` never takes a different
//! document for the stack's.

use crate::provider::Known;
use serde_json::Value;

use super::ProviderError;
use super::facets::{Annotation, Stage};
use super::schema::{AttrType, Attribute};

/// The schema row of the engine-only setting that allows taking over what is there.
pub const ALLOW_OVERWRITE: Attribute = Attribute::optional(
    "allow_overwrite",
    AttrType::Bool,
    "replace what is there already (put back on destroy) instead of refusing [default: false]",
)
.local();

/// The schema row of what was found and is put back on destroy.
pub const REPLACED: Attribute =
    Attribute::computed("replaced", "what was there before the stack wrote it (JSON), put back on destroy");

/// What to do with what a create finds in place of the document `desired`: `Ok(replaced)`, the
/// JSON of what to put back on destroy (empty: nothing was there), or the refusal.
pub fn take_over(
    operation: &'static str,
    what: &str,
    holder: &str,
    found: Option<Value>,
    desired: &Value,
    allow_overwrite: bool,
) -> Result<String, ProviderError> {
    match found {
        None => Ok(String::new()),
        Some(found) if &found == desired || allow_overwrite => Ok(found.to_string()),
        Some(found) => Err(ProviderError::new(
            operation,
            "DocumentExists",
            format!(
                "{holder} has {what} already, which this resource would replace: {found}. Write it into the spec, or \
                 set `allow_overwrite: true` to replace it (destroy then puts it back)"
            ),
        )
        .with_class(super::ErrorClass::Fatal)),
    }
}

/// What the create recorded to put back, if anything.
pub fn to_put_back(replaced: Option<&str>) -> Option<Value> {
    replaced.filter(|r| !r.is_empty()).and_then(|r| serde_json::from_str(r).ok())
}

/// What a plan says about a create that may take over a document (`what`) with
/// `allow_overwrite`: that it is replaced, and put back on destroy.
pub fn takes_over(what: &str, stage: Stage, allow_overwrite: Option<&Known<bool>>) -> Vec<Annotation> {
    let allowed = allow_overwrite == Some(&Known::Known(true));
    (stage == Stage::Create && allowed)
        .then(|| Annotation::TakesOver { what: what.to_string(), put_back: true })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_different_document_is_taken_over_only_when_allowed_and_then_recorded() {
        let desired = json!({"Statement": ["ours"]});
        let theirs = json!({"Statement": ["theirs"]});
        assert_eq!(take_over("Put", "a policy", "bucket b", None, &desired, false).expect("nothing there"), "");
        let same = take_over("Put", "a policy", "bucket b", Some(desired.clone()), &desired, false);
        assert_eq!(same.expect("the same"), desired.to_string(), "recorded, so destroy leaves it as found");
        let refused =
            take_over("Put", "a policy", "bucket b", Some(theirs.clone()), &desired, false).expect_err("refused");
        assert!(refused.message.contains("bucket b has a policy already") && refused.message.contains("theirs"));
        let allowed = take_over("Put", "a policy", "bucket b", Some(theirs.clone()), &desired, true).expect("allowed");
        assert_eq!(to_put_back(Some(&allowed)), Some(theirs));
        assert_eq!(to_put_back(Some("")), None);
    }
}
