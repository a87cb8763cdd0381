//! The machine-readable plan (`plan --json`), format version 1.0; documented in
//! docs/plan-json.md. Sensitive values are masked unless asked for.

use serde_json::{Value, json};

use super::{Plan, Reason, ResourceChange, SENSITIVE};
use crate::value::{UNKNOWN, contains_unknown};

/// The version of the JSON plan format; bumped on any incompatible change.
pub const JSON_FORMAT_VERSION: &str = "1.5";

pub fn render_json(plan: &Plan, show_sensitive: bool) -> Value {
    let s = plan.summary();
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .filter(|c| {
            c.action != super::Action::NoOp
                || c.imported
                || c.reason.is_some()
                || !c.deposed.is_empty()
                || c.moved_from.is_some()
        })
        .map(|c| resource(c, show_sensitive))
        .collect();
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "has_changes": plan.has_changes(),
        "summary": {
            "import": s.import, "add": s.add, "change": s.change, "destroy": s.destroy, "forget": s.forget, "move": s.moved,
        },
        "resource_changes": changes,
        "warnings": plan.warnings(),
        "permission_changes": plan.permissions.iter().map(permission_change).collect::<Vec<_>>(),
        "policy_findings": plan.policy.iter().map(|f| json!({
            "address": f.addr.to_string(),
            "rule": f.rule,
            "message": f.message,
            "waived": f.waived.is_some(),
            "waiver_reason": f.waived,
        })).collect::<Vec<_>>(),
    })
}

/// One resource's added and removed statements, unknown parts as null.
fn permission_change(pc: &crate::permissions::PermissionChange) -> Value {
    let statements: Vec<Value> = pc
        .changes
        .iter()
        .map(|c| {
            let g = &c.grant;
            json!({
                "change": if c.added { "add" } else { "remove" },
                "effect": if g.deny { "Deny" } else { "Allow" },
                "policy": g.policy,
                "principal": known(&json!(g.principal)),
                "action": known(&json!(g.action)),
                "resource": known(&json!(g.resource)),
                "conditions": g.conditions,
                "broadening": c.broadening,
                "why": c.why,
                "fingerprint": c.fingerprint,
            })
        })
        .collect();
    json!({"address": pc.addr.to_string(), "statements": statements})
}

/// One resource's entry; `changes` lists attributes with `before`, `after` and whether the
/// after value is only known after apply (unknown parts are null).
pub fn resource(c: &ResourceChange, show_sensitive: bool) -> Value {
    let changes: Vec<Value> = c
        .changes
        .iter()
        .map(|a| {
            let sensitive = c.sensitive.contains(&a.name);
            let shown =
                |v: &Value| if sensitive && !show_sensitive && !v.is_null() { json!(SENSITIVE) } else { known(v) };
            json!({
                "attribute": a.name,
                "before": shown(&a.before),
                "after": shown(&a.after),
                "after_unknown": contains_unknown(&a.after),
                "forces_replacement": a.forces_replacement,
                "sensitive": sensitive,
            })
        })
        .collect();
    json!({
        "address": c.addr.to_string(),
        "kind": c.addr.kind,
        "name": c.addr.name,
        "action": c.action,
        "imported": c.imported,
        "id": c.id,
        "replace_because": c.replace_reasons(),
        "replace_causes": c.replace_causes.iter().map(|cause| json!({
            "attribute": cause.links.first().map(|l| l.attribute.as_str()),
            "chain": cause.links.iter().map(|l| json!({
                "address": l.addr.to_string(),
                "attribute": l.attribute,
                "step": l.step,
            })).collect::<Vec<_>>(),
            "origin": cause.origin,
            "text": cause.to_string(),
        })).collect::<Vec<_>>(),
        "creates_first": c.creates_first,
        "deposed": c.deposed,
        "note": c.reason.as_ref().map(ToString::to_string),
        "action_reason": c.reason.as_ref().map(Reason::code),
        "moved_from": c.moved_from.as_ref().map(|m| m.from.to_string()),
        "move_found": c.moved_from.as_ref().and_then(|m| m.found.as_ref()).map(|by| by.describe(&c.addr.kind)),
        "changes": changes,
    })
}

/// The value with unknown parts as null.
fn known(v: &Value) -> Value {
    match v {
        Value::String(s) if s == UNKNOWN => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(known).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), known(v))).collect()),
        other => other.clone(),
    }
}
