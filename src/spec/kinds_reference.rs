//! `docs/kinds.md`: the reference of every resource and lookup kind, generated from the registry
//! (`cruddur-infra schema --markdown`) so it cannot drift from what `validate` accepts.

use std::fmt::Write;

use crate::provider::schema::{AttrType, Attribute};
use crate::provider::{Registry, ResourceSchema};

/// The whole reference as Markdown.
pub fn kinds_markdown(registry: &Registry) -> String {
    let mut out = String::new();
    out.push_str("# Resource and lookup kinds\n\n");
    out.push_str(
        "Generated from the engine's registry by `cruddur-infra schema --markdown > docs/kinds.md`;\n\
         a test fails when it differs from what the binary prints. Do not edit by hand.\n\n\
         Columns: **required** (the spec must set it), **on change** (`in place` is an update AWS\n\
         allows; `replaces` means the resource is destroyed and created again, and the plan says\n\
         which attribute forced it). Nested blocks are listed as `parent[].child` (a list of\n\
         mappings), `parent.child` (a mapping) or `parent.*` (a mapping of names to values).\n\
         Computed attributes are set by AWS and can be referenced as `${KIND.NAME.ATTRIBUTE}`;\n\
         they are `(known after apply)` until the resource exists. An optional attribute the\n\
         spec leaves out is not managed at all.\n\n\
         Every resource also takes the meta settings `depends_on: [KIND.NAME]` (an ordering edge),\n\
         `import_id: ID` (adopt an existing resource), `lifecycle: { prevent_destroy: BOOL,\n\
         retain_on_destroy: BOOL }` and `waivers: { RULE: REASON }` (a built-in policy rule it may\n\
         break, and why: [cli.md](cli.md#who-can-do-what-permission-diffs-and-policy-rules)); see\n\
         [spec.md](spec.md).\n\n",
    );
    out.push_str("Resource kinds:");
    for (i, kind) in registry.names().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        write!(out, "{sep}[`{kind}`](#{kind})").ok();
    }
    out.push_str(".\nLookup kinds:");
    for (i, kind) in registry.lookup_names().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        write!(out, "{sep}[`{kind}`](#{kind})").ok();
    }
    out.push_str(".\n");
    for kind in registry.names() {
        if let Some(schema) = registry.schema(kind) {
            section(&mut out, kind, schema, false);
        }
    }
    out.push_str("\n## Lookups\n\nRead in the `lookups:` section at every plan; they may use variables only.\n");
    for kind in registry.lookup_names() {
        if let Some(schema) = registry.schema(kind) {
            section(&mut out, kind, schema, true);
        }
    }
    out
}

fn section(out: &mut String, kind: &str, schema: &ResourceSchema, lookup: bool) {
    let level = if lookup { "###" } else { "##" };
    write!(out, "\n{level} {kind}\n\n").ok();
    let settable: Vec<&Attribute> = schema.settable().collect();
    if settable.is_empty() {
        out.push_str("Takes no attributes.\n");
    } else {
        out.push_str("| attribute | type | required | on change | description |\n|---|---|---|---|---|\n");
        for attr in settable {
            rows(out, "", attr, lookup);
        }
    }
    if !lookup {
        let identity: Vec<String> = schema.identity().map(|a| format!("`{}`", a.name)).collect();
        if identity.is_empty() {
            out.push_str(
                "\nIdentity: none (AWS lets two be alike); renamed, it moves only as the one of its kind to leave and \
                 arrive with the same settings.\n",
            );
        } else {
            writeln!(out, "\nIdentity in AWS (a rename keeping these is a move): {}.", identity.join(", ")).ok();
        }
    }
    for a in schema.attributes {
        if let Some(rule) = a.name_rule {
            writeln!(
                out,
                "\nNames AWS accepts for `{}` (checked when the spec loads, with the stage applied): {}.",
                a.name,
                rule.describe()
            )
            .ok();
        }
    }
    let derived: Vec<&Attribute> = schema.attributes.iter().filter(|a| a.derived).collect();
    if !derived.is_empty() {
        out.push_str("\nDerived from the spec by the engine and compared with AWS:\n\n");
        for attr in derived {
            writeln!(out, "- `{}`: {}", attr.name, attr.description).ok();
        }
    }
    let computed: Vec<&Attribute> = schema.attributes.iter().filter(|a| a.computed).collect();
    if !computed.is_empty() {
        out.push_str(if lookup { "\nAnswers:\n\n" } else { "\nComputed by AWS:\n\n" });
        for attr in computed {
            writeln!(out, "- `{}`: {}", attr.name, attr.description).ok();
        }
    }
}

/// The attribute's row, then one per attribute of a nested block.
fn rows(out: &mut String, prefix: &str, attr: &Attribute, lookup: bool) {
    let path = format!("{prefix}{}", attr.name);
    let required = if attr.required { "yes" } else { "" };
    let change = if lookup {
        ""
    } else if attr.force_new {
        "replaces"
    } else {
        "in place"
    };
    let description = attr.description.replace('|', "\\|");
    writeln!(out, "| `{path}` | {} | {required} | {change} | {description} |", type_name(&attr.ty)).ok();
    let (nested, marker) = match &attr.ty {
        AttrType::Object(fields) => (Some(*fields), "."),
        AttrType::List(AttrType::Object(fields)) => (Some(*fields), "[]."),
        AttrType::Map(AttrType::Object(fields)) => (Some(*fields), ".*."),
        _ => (None, ""),
    };
    for field in nested.unwrap_or_default() {
        rows(out, &format!("{path}{marker}"), field, lookup);
    }
}

fn type_name(ty: &AttrType) -> String {
    match ty {
        AttrType::String => "string".into(),
        AttrType::Bool => "bool".into(),
        AttrType::Int => "int".into(),
        AttrType::Enum(values) => values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" \\| "),
        AttrType::List(AttrType::Object(_)) => "list of mappings".into(),
        AttrType::Map(AttrType::Object(_)) => "map of mappings".into(),
        AttrType::List(item) => format!("list of {}", type_name(item)),
        AttrType::Map(item) => format!("map of {}", type_name(item)),
        AttrType::Object(_) => "mapping".into(),
        AttrType::Policy => "policy (mapping or JSON)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_kinds_reference_is_what_the_registry_generates() {
        // docs/kinds.md is regenerated whenever a kind's attributes change; the hand-kept table it
        // replaced had drifted (lambda_function lacked `source`).
        let committed = include_str!("../../docs/kinds.md");
        let generated = kinds_markdown(&Registry::aws());
        assert!(committed == generated, "docs/kinds.md is stale: cargo run -- schema --markdown > docs/kinds.md");
        assert!(generated.contains("| `source` | string |"), "lambda_function's source is listed");
        assert!(generated.contains("| `name` | string | yes | replaces |"), "force-new attributes are marked");
        assert!(generated.contains("| `cors_rules[].allowed_methods` |"), "nested blocks are listed");
    }
}
