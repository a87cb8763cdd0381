//! Small accessors for attribute maps, shared by the resource kinds.

use serde_json::Value;

use super::ProviderError;
use crate::value::Attrs;

/// A string attribute, or "" when absent.
pub fn string<'a>(attrs: &'a Attrs, name: &str) -> &'a str {
    attrs.get(name).and_then(Value::as_str).unwrap_or_default()
}

pub fn opt_string<'a>(attrs: &'a Attrs, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(Value::as_str)
}

/// Builds attributes from pairs, leaving out nulls.
pub fn build<const N: usize>(pairs: [(&str, Value); N]) -> Attrs {
    pairs.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.to_string(), v)).collect()
}

/// `Ok(None)` for a not-found error: how reads report a deleted resource.
pub fn found<T>(result: Result<T, ProviderError>) -> Result<Option<T>, ProviderError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Splits a composite id `a/b` into its two parts.
pub fn split_id<'a>(operation: &'static str, id: &'a str) -> Result<(&'a str, &'a str), ProviderError> {
    id.split_once('/').ok_or_else(|| ProviderError::new(operation, "InvalidId", format!("`{id}` is not PARENT/CHILD")))
}
