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

/// The first item over every page of a `NextToken`-paged list that `pick` accepts (for the
/// services whose SDK has no paginator). `page` fetches the page after a token (`None`: the
/// first), answering its items and the next token, or `None` when what is listed is gone.
pub async fn find_in_pages<T, R, F, Fut>(
    mut page: F,
    mut pick: impl FnMut(&T) -> Option<R>,
) -> Result<Option<R>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Option<(Vec<T>, Option<String>)>, ProviderError>>,
{
    let mut next = None;
    loop {
        let Some((items, token)) = page(next.take()).await? else { return Ok(None) };
        if let Some(found) = items.iter().find_map(&mut pick) {
            return Ok(Some(found));
        }
        match token.filter(|t| !t.is_empty()) {
            Some(t) => next = Some(t),
            None => return Ok(None),
        }
    }
}

/// Every item over every page of a `NextToken`-paged list (see [`find_in_pages`]); `None`
/// when what is listed is gone.
pub async fn all_pages<T, F, Fut>(mut page: F) -> Result<Option<Vec<T>>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Option<(Vec<T>, Option<String>)>, ProviderError>>,
{
    let (mut next, mut out) = (None, Vec::new());
    loop {
        let Some((items, token)) = page(next.take()).await? else { return Ok(None) };
        out.extend(items);
        match token.filter(|t| !t.is_empty()) {
            Some(t) => next = Some(t),
            None => return Ok(Some(out)),
        }
    }
}

/// Splits a composite id `a/b` into its two parts.
pub fn split_id<'a>(operation: &'static str, id: &'a str) -> Result<(&'a str, &'a str), ProviderError> {
    id.split_once('/').ok_or_else(|| ProviderError::new(operation, "InvalidId", format!("`{id}` is not PARENT/CHILD")))
}
