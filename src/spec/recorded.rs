//! How each resource was declared, as the state records it beside what AWS holds, and a spec
//! made back from those records.
//!
//! Every apply records, per resource, its declaration as the spec wrote it: the attributes
//! with references to other resources kept (`${sns_topic.assets.arn}`), variables and
//! `${stage}` already substituted, and `depends_on`, `import_id`, `lifecycle` and `waivers`;
//! and, once per state, the spec's lookups and outputs. `undo` loads the records of an earlier
//! state as a spec and plans back to it: a resource deleted since is created again with its
//! references to whatever its dependencies are now (a re-created topic's new ARN), which
//! recorded values alone could not give.
//!
//! A record is spec text in JSON form (a spec is YAML, and JSON is YAML), so it is checked by
//! the same loader, with the same errors, as a spec a person wrote; literal text that looks like
//! a reference is escaped (`$${`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::expr::{Expr, Part};
use super::{OutputSpec, ResourceSpec, Spec};
use crate::addr::ResourceAddr;

/// A spec's lookups and outputs as the last apply declared them (resources are recorded with
/// their state entries).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lookups: BTreeMap<ResourceAddr, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Value>,
}

impl Declared {
    /// The lookups and outputs of `spec`.
    pub fn of(spec: &Spec) -> Self {
        Declared {
            lookups: spec.lookups.iter().map(|l| (l.addr.clone(), declaration(l))).collect(),
            outputs: spec.outputs.iter().map(|o| (o.name.clone(), output(o))).collect(),
        }
    }
}

/// A resource (or lookup) as its spec declares it, in spec syntax.
pub fn declaration(r: &ResourceSpec) -> Value {
    let mut out = Map::new();
    for (name, expr) in &r.attrs {
        out.insert(name.clone(), written(expr));
    }
    if !r.depends_on.is_empty() {
        out.insert("depends_on".into(), r.depends_on.iter().map(|(a, _)| Value::String(a.to_string())).collect());
    }
    if let Some(id) = &r.import_id {
        out.insert("import_id".into(), Value::String(escaped(id)));
    }
    let mut lifecycle = Map::new();
    if r.prevent_destroy {
        lifecycle.insert("prevent_destroy".into(), Value::Bool(true));
    }
    if let Some(retain) = r.retain_on_destroy {
        lifecycle.insert("retain_on_destroy".into(), Value::Bool(retain));
    }
    if !lifecycle.is_empty() {
        out.insert("lifecycle".into(), Value::Object(lifecycle));
    }
    if !r.waivers.is_empty() {
        out.insert("waivers".into(), json!(r.waivers));
    }
    Value::Object(out)
}

fn output(o: &OutputSpec) -> Value {
    let mut out = Map::new();
    out.insert("value".into(), written(&o.value));
    if let Some(d) = &o.description {
        out.insert("description".into(), Value::String(d.clone()));
    }
    if o.sensitive {
        out.insert("sensitive".into(), Value::Bool(true));
    }
    if let Some(env) = &o.env {
        out.insert("env".into(), Value::String(env.clone()));
    }
    Value::Object(out)
}

/// An attribute value as a spec writes it: references as `${...}`, literal `${` as `$${`.
pub fn written(expr: &Expr) -> Value {
    match expr {
        Expr::Literal(v) => escaped_value(v),
        Expr::Template(parts) => Value::String(
            parts
                .iter()
                .map(|p| match p {
                    Part::Lit(s) => escaped(s),
                    // Only resource references are left once a spec is loaded.
                    Part::Ref(target, _) => format!("${{{target}}}"),
                })
                .collect(),
        ),
        Expr::List(items) => Value::Array(items.iter().map(written).collect()),
        Expr::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), written(v))).collect()),
    }
}

fn escaped(s: &str) -> String {
    s.replace("${", "$${")
}

fn escaped_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(escaped(s)),
        Value::Array(items) => Value::Array(items.iter().map(escaped_value).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), escaped_value(v))).collect()),
        other => other.clone(),
    }
}

/// Spec text declaring `resources` (address and recorded declaration) with `declared`'s
/// lookups and outputs: pretty JSON, so an error in it names a line a person can find.
pub fn spec_text<'a>(
    resources: impl IntoIterator<Item = (&'a ResourceAddr, &'a Value)>,
    declared: &Declared,
) -> String {
    fn by_kind<'a>(entries: impl IntoIterator<Item = (&'a ResourceAddr, &'a Value)>) -> Value {
        let mut out: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for (addr, decl) in entries {
            out.entry(addr.kind.as_str()).or_default().insert(addr.name.clone(), decl.clone());
        }
        json!(out)
    }
    let mut doc = Map::new();
    doc.insert("resources".into(), by_kind(resources));
    if !declared.lookups.is_empty() {
        doc.insert("lookups".into(), by_kind(&declared.lookups));
    }
    if !declared.outputs.is_empty() {
        doc.insert("outputs".into(), json!(declared.outputs));
    }
    serde_json::to_string_pretty(&Value::Object(doc)).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::expr::parse_template;

    #[test]
    fn a_written_template_parses_back_to_itself_with_literal_dollars_kept() {
        // References stay references; text that only looks like one stays text, both ways.
        for text in ["arn:${s3_bucket.up.arn}/*", "${sns_topic.t.arn}", "a$${b}", "x$$${y}", "plain"] {
            let expr = Expr::Template(parse_template(text).expect("parses"));
            let again = written(&expr);
            let reparsed = Expr::Template(parse_template(again.as_str().expect("a string")).expect("parses again"));
            assert_eq!(reparsed, expr, "{text} -> {again}");
        }
        let literal = Expr::Literal(json!({"k": ["${not.a.ref}", 3]}));
        assert_eq!(written(&literal), json!({"k": ["$${not.a.ref}", 3]}));
    }
}
