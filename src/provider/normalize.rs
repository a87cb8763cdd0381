//! Normalisation shared by resource kinds: the rules that make equal configurations compare
//! equal whatever their spelling (policy documents, optional fields left empty).

use serde_json::Value;

use super::schema::{AttrType, Attribute, ResourceSchema};
use crate::value::Attrs;

/// Normalises every attribute by its declared type.
pub fn by_schema(schema: &ResourceSchema, attrs: &mut Attrs) {
    for attr in schema.attributes {
        if let Some(v) = attrs.get_mut(attr.name) {
            by_type(&attr.ty, v);
        }
    }
}

fn by_type(ty: &AttrType, v: &mut Value) {
    match (ty, v) {
        (AttrType::Policy, v) => *v = policy(v.take()),
        (AttrType::List(item), Value::Array(items)) => items.iter_mut().for_each(|i| by_type(item, i)),
        (AttrType::Map(item), Value::Object(map)) => map.values_mut().for_each(|i| by_type(item, i)),
        (AttrType::Object(fields), Value::Object(map)) => object(fields, map),
        _ => {}
    }
}

/// In a nested block an optional field left out, null, or empty means the same thing: drop it.
fn object(fields: &[Attribute], map: &mut Attrs) {
    for f in fields {
        if let Some(v) = map.get_mut(f.name) {
            by_type(&f.ty, v);
        }
    }
    map.retain(|_, v| !is_empty(v));
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The empty value of a type: what an optional attribute means when it is left out.
pub fn empty(ty: &AttrType) -> Value {
    match ty {
        AttrType::List(_) => Value::Array(vec![]),
        AttrType::Map(_) => Value::Object(Default::default()),
        _ => Value::Null,
    }
}

/// Keys of IAM policy statements whose values may be one string or a list of strings: AWS
/// treats both the same and returns either.
const STRING_OR_LIST: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

/// An IAM-style policy as parsed JSON with one spelling for each meaning: a JSON string is
/// parsed, `Statement` is always a list, and string-or-list fields are sorted lists.
pub fn policy(v: Value) -> Value {
    let mut doc = match v {
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(parsed) => parsed,
            Err(_) => return Value::String(s),
        },
        other => other,
    };
    if let Some(obj) = doc.as_object_mut()
        && let Some(stmt) = obj.get_mut("Statement")
    {
        if stmt.is_object() {
            *stmt = Value::Array(vec![stmt.take()]);
        }
        if let Value::Array(stmts) = stmt {
            stmts.iter_mut().filter_map(Value::as_object_mut).for_each(statement);
        }
    }
    doc
}

fn statement(stmt: &mut Attrs) {
    for key in STRING_OR_LIST {
        if let Some(v) = stmt.get_mut(*key) {
            string_list(v);
        }
    }
    for key in ["Principal", "NotPrincipal"] {
        if let Some(Value::Object(principals)) = stmt.get_mut(key) {
            principals.values_mut().for_each(string_list);
        }
    }
    if let Some(Value::Object(conditions)) = stmt.get_mut("Condition") {
        for operator in conditions.values_mut().filter_map(Value::as_object_mut) {
            operator.values_mut().for_each(string_list);
        }
    }
}

fn string_list(v: &mut Value) {
    if v.is_string() {
        *v = Value::Array(vec![v.take()]);
    }
    if let Value::Array(items) = v {
        items.sort_by_key(|a| a.to_string());
        items.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_spelled_differently_normalise_equal() {
        // A JSON string with single values equals a mapping with one-element lists in another order.
        let a = policy(json!(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sns:Publish","Principal":{"Service":"s3.amazonaws.com"},"Resource":"arn:t"}}"#
        ));
        let b = policy(
            json!({"Statement":[{"Resource":["arn:t"],"Principal":{"Service":["s3.amazonaws.com"]},"Action":["sns:Publish"],"Effect":"Allow"}],"Version":"2012-10-17"}),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn action_lists_compare_as_sets() {
        // The order of actions does not matter to AWS, so it does not make a diff.
        let a = policy(json!({"Statement":[{"Action":["s3:PutObject","s3:GetObject"]}]}));
        let b = policy(json!({"Statement":[{"Action":["s3:GetObject","s3:PutObject"]}]}));
        assert_eq!(a, b);
    }

    #[test]
    fn invalid_policy_json_is_left_for_validation() {
        // A string that is not JSON stays a string instead of being silently dropped.
        assert_eq!(policy(json!("{not json")), json!("{not json"));
    }
}
