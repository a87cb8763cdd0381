//! The JSON Schema (draft 2020-12) of spec files, generated from the same schemas the checker
//! uses, so the editor and `validate` never disagree about attributes.

use serde_json::{Map, Value, json};

use crate::provider::{AttrType, Attribute, Registry, ResourceSchema};

pub fn json_schema(registry: &Registry) -> Value {
    let kinds = |names: Vec<&'static str>| -> Value {
        let props: Map<String, Value> = names
            .into_iter()
            .filter_map(|k| registry.schema(k).map(|s| (k, s)))
            .map(|(k, s)| (k.to_string(), json!({"type": "object", "additionalProperties": block(s, true)})))
            .collect();
        json!({"type": "object", "properties": props, "additionalProperties": false})
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/cruddur/cruddur-infra/schema/cruddur-spec.schema.json",
        "title": "cruddur-infra spec",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "variables": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [
                        {"type": ["string", "number", "boolean"]},
                        {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": {
                                "default": {"type": ["string", "number", "boolean"]},
                                "description": {"type": "string"},
                                "sensitive": {"type": "boolean"}
                            }
                        }
                    ]
                }
            },
            "lookups": kinds(registry.lookup_names().collect()),
            "resources": kinds(registry.names().collect()),
            "drift": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"ignore": {"type": "array", "items": {"type": "string", "minLength": 1}, "description": "undeclared children managed elsewhere, matched with * against what drift calls them"}}
            },
            "moved": {
                "type": "array",
                "description": "resources renamed in the spec: each keeps its AWS object under its new address",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["from", "to"],
                    "properties": {
                        "from": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*\\.[A-Za-z_][A-Za-z0-9_-]*$", "description": "the old address, KIND.NAME"},
                        "to": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*\\.[A-Za-z_][A-Za-z0-9_-]*$", "description": "the new address, of the same kind"}
                    }
                }
            },
            "state": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"encryption": {"type": "string", "pattern": "^kms:.+", "description": "the KMS key (id, ARN or alias) the state, journal, backup and saved plans are sealed with"}}
            },
            "outputs": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "required": ["value"],
                            "additionalProperties": false,
                            "properties": {"value": {"type": "string"}, "description": {"type": "string"}, "sensitive": {"type": "boolean"}, "env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}}
                        }
                    ]
                }
            }
        }
    })
}

/// A block's attributes; a resource block also takes the meta fields.
fn block(schema: &ResourceSchema, resource: bool) -> Value {
    let mut out = object(schema.attributes);
    if resource {
        let props = out["properties"].as_object_mut().expect("object() makes properties");
        props.insert("depends_on".into(), json!({"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*\\.[A-Za-z_][A-Za-z0-9_-]*$"}}));
        props.insert(
            "import_id".into(),
            json!({"type": "string", "description": "adopt the existing resource with this id"}),
        );
        props.insert(
            "lifecycle".into(),
            json!({"type": "object", "additionalProperties": false, "properties": {"prevent_destroy": {"type": "boolean"}, "retain_on_destroy": {"type": "boolean"}}}),
        );
        let rules: Map<String, Value> = crate::permissions::rules::RULES
            .iter()
            .map(|r| (r.id.to_string(), json!({"type": "string", "minLength": 1, "description": r.asks})))
            .collect();
        props.insert(
            "waivers".into(),
            json!({"type": "object", "additionalProperties": false, "description": "built-in policy rules waived, each with its reason", "properties": rules}),
        );
    }
    out
}

fn object(fields: &[Attribute]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .filter(|a| !a.computed && !a.derived)
        .map(|a| {
            let mut t = ty(&a.ty);
            t["description"] = json!(if a.force_new {
                format!("{} (changing it replaces the resource)", a.description)
            } else {
                a.description.to_string()
            });
            (a.name.to_string(), t)
        })
        .collect();
    let required: Vec<&str> = fields.iter().filter(|a| a.required).map(|a| a.name).collect();
    json!({"type": "object", "additionalProperties": false, "properties": props, "required": required})
}

/// A reference `${...}` can stand for any value, so every typed value also accepts a string
/// containing one.
fn ty(t: &AttrType) -> Value {
    let reference = json!({"type": "string", "pattern": "\\$\\{[^}]+\\}"});
    match t {
        AttrType::String => json!({"type": "string"}),
        AttrType::Bool => json!({"anyOf": [{"type": "boolean"}, reference]}),
        AttrType::Int => json!({"anyOf": [{"type": "integer"}, reference]}),
        AttrType::Enum(values) => json!({"anyOf": [{"enum": values}, reference]}),
        AttrType::List(item) => json!({"anyOf": [{"type": "array", "items": ty(item)}, reference]}),
        AttrType::Map(item) => json!({"anyOf": [{"type": "object", "additionalProperties": ty(item)}, reference]}),
        AttrType::Object(fields) => object(fields),
        AttrType::Policy => json!({"anyOf": [{"type": "object"}, {"type": "string"}]}),
    }
}
