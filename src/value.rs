//! Attribute values shared by specs, plans and state: JSON values, plus a marker for values
//! that only AWS can tell after apply.

use serde_json::{Map, Value};

/// Attributes of one resource, by name.
pub type Attrs = Map<String, Value>;

/// Stands for a value known only after apply (an ARN of a resource not yet created).
/// It contains a NUL character, which YAML cannot carry, so no spec value can equal it.
pub const UNKNOWN: &str = "\u{0}(known after apply)";

pub fn unknown() -> Value {
    Value::String(UNKNOWN.into())
}

pub fn is_unknown(v: &Value) -> bool {
    matches!(v, Value::String(s) if s == UNKNOWN)
}

/// True when the value or anything inside it is unknown.
pub fn contains_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s == UNKNOWN,
        Value::Array(items) => items.iter().any(contains_unknown),
        Value::Object(map) => map.values().any(contains_unknown),
        _ => false,
    }
}
