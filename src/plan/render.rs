//! Plan text for people: one block per changed resource, attribute-level `before -> after`,
//! `(known after apply)`, the attributes that force a replacement, and a summary line.

use std::fmt::Write;

use serde_json::Value;

use super::{Action, AttrChange, Plan, ResourceChange};
use crate::value::{contains_unknown, is_unknown};

/// The whole plan as text, ending with `Plan: ...` or `No changes.`.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let notes: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::NoOp && c.note.is_some())
        .collect();
    for c in &notes {
        let _ = writeln!(
            out,
            "  # {} was {}",
            c.addr,
            c.note
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches("it was ")
        );
    }
    if !notes.is_empty() {
        out.push('\n');
    }
    if !plan.has_changes() {
        out.push_str("No changes. Your infrastructure matches the spec.\n");
        return out;
    }
    out.push_str("cruddur-infra will perform the following actions:\n\n");
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        resource(&mut out, c);
    }
    let s = plan.summary();
    let _ = writeln!(
        out,
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    );
    out
}

fn resource(out: &mut String, c: &ResourceChange) {
    let headline = match c.action {
        Action::Create => "will be created".to_string(),
        Action::Update => "will be updated in-place".to_string(),
        Action::Replace => format!(
            "must be replaced ({} cannot be changed in place)",
            list(&c.replace_reasons())
        ),
        Action::Delete => "will be destroyed".to_string(),
        Action::NoOp => return,
    };
    let _ = write!(out, "  # {} {headline}", c.addr);
    match &c.note {
        Some(note) => {
            let _ = writeln!(out, " ({note})");
        }
        None => out.push('\n'),
    }
    let symbol = c.action.symbol();
    let _ = writeln!(out, "{symbol:>3} {} \"{}\" {{", c.addr.kind, c.addr.name);
    let width = c.changes.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &c.changes {
        attribute(out, c.action, a, width);
    }
    out.push_str("    }\n\n");
}

fn attribute(out: &mut String, action: Action, a: &AttrChange, width: usize) {
    let name = format!("{:width$}", a.name);
    let line = match action {
        Action::Create => format!("      + {name} = {}", value(&a.after)),
        Action::Delete => format!("      - {name} = {}", value(&a.before)),
        _ if a.before.is_null() => format!("      + {name} = {}", value(&a.after)),
        _ if a.after.is_null() => format!("      - {name} = {} -> null", value(&a.before)),
        _ => format!(
            "      ~ {name} = {} -> {}",
            value(&a.before),
            value(&a.after)
        ),
    };
    out.push_str(&line);
    if a.forces_replacement {
        out.push_str(" # forces replacement");
    }
    out.push('\n');
}

/// A value as one line: strings quoted, unknowns as `(known after apply)`, structures as JSON
/// with unknown parts marked.
pub fn value(v: &Value) -> String {
    if is_unknown(v) {
        return "(known after apply)".into();
    }
    if contains_unknown(v) {
        return serde_json::to_string(v).unwrap_or_default().replace(
            &serde_json::to_string(crate::value::UNKNOWN).unwrap_or_default(),
            "(known after apply)",
        );
    }
    serde_json::to_string(v).unwrap_or_default()
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
