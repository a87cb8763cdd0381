//! Plan text for people: one block per changed resource, attribute-level `before -> after`
//! (nested into maps and lists, unchanged parts hidden), `(known after apply)`, the
//! attributes that force a replacement, and a summary line.

use std::fmt::Write;

use serde_json::Value;

use super::{Action, AttrChange, Plan, Reason, ResourceChange};
use crate::value::{UNKNOWN, contains_unknown, is_unknown};

/// Structures longer than this on one line are spread over several.
const INLINE_WIDTH: usize = 60;

/// The whole plan as text, ending with `Plan: ...` or `No changes.`.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let notes: Vec<&ResourceChange> =
        plan.changes.iter().filter(|c| c.action == Action::NoOp && c.reason.is_some()).collect();
    for c in &notes {
        let _ = writeln!(out, "  # {} was {}", c.addr, c.reason.as_ref().map(ToString::to_string).unwrap_or_default());
    }
    if !notes.is_empty() {
        out.push('\n');
    }
    let warnings = plan.warnings();
    for w in &warnings {
        let _ = writeln!(out, "Warning: {w}.");
    }
    if !warnings.is_empty() {
        out.push('\n');
    }
    let policy = crate::permissions::rules::render_text(&plan.policy);
    if !plan.has_changes() {
        if !policy.is_empty() {
            let _ = writeln!(out, "{policy}");
        }
        out.push_str("No changes. Your infrastructure matches the spec.\n");
        return out;
    }
    out.push_str("cruddur-infra will perform the following actions:\n\n");
    let shown =
        |c: &&ResourceChange| c.action != Action::NoOp || c.imported || !c.deposed.is_empty() || c.moved_from.is_some();
    for c in plan.changes.iter().filter(shown) {
        out.push_str(&render_resource(c));
    }
    for section in [crate::permissions::render_text(&plan.permissions), policy] {
        if !section.is_empty() {
            let _ = writeln!(out, "{section}");
        }
    }
    let _ = writeln!(out, "Plan: {}.", plan.summary().counts());
    out
}

/// One resource's block: the headline, then its attribute changes.
pub fn render_resource(c: &ResourceChange) -> String {
    let mut out = String::new();
    if let Some(super::moves::MovedFrom { from, found }) = &c.moved_from {
        match found {
            Some(by) => {
                let _ = writeln!(out, "  # {from} has moved to {}: {}", c.addr, by.describe(&c.addr.kind));
                let _ = writeln!(out, "  #   (to say so in the spec: `moved: [{{ from: {from}, to: {} }}]`)", c.addr);
            }
            None => {
                let _ = writeln!(out, "  # {from} has moved to {}", c.addr);
            }
        }
        if c.action == Action::NoOp && !c.imported {
            let id = c.id.as_deref().unwrap_or_default();
            let _ = writeln!(out, "    {} \"{}\" {{ id = \"{id}\" }}\n", c.addr.kind, c.addr.name);
            out.push_str(&deposed(c));
            return out;
        }
    }
    let mut headline = match c.action {
        Action::Create => "will be created".to_string(),
        Action::Update => "will be updated in-place".to_string(),
        Action::Replace if c.creates_first => format!(
            "must be replaced ({} cannot be changed in place): the new one is made first, and the old one destroyed \
             once what refers to it has moved",
            list(&c.replace_reasons())
        ),
        Action::Replace if c.replace_reasons().is_empty() => "must be replaced".to_string(),
        Action::Replace => format!("must be replaced ({} cannot be changed in place)", list(&c.replace_reasons())),
        Action::Delete => "will be destroyed".to_string(),
        Action::Forget => "will no longer be managed: it is kept in AWS".to_string(),
        Action::NoOp if c.imported => "will be imported".to_string(),
        Action::NoOp => return deposed(c),
    };
    let mut note = c.reason.as_ref();
    if let Some(adopted @ Reason::AdoptedAfterInterruption) = note {
        headline = match c.action {
            Action::NoOp => adopted.to_string(),
            _ => format!("{adopted}, and then {headline}"),
        };
        note = None;
    }
    let _ = write!(out, "  # {} {headline}", c.addr);
    match note {
        Some(note) => {
            let _ = writeln!(out, " ({note})");
        }
        None => out.push('\n'),
    }
    for cause in c.telling_causes() {
        let _ = writeln!(out, "  #   because {cause}");
    }
    out.push_str(&render_body(c));
    out.push_str(&deposed(c));
    out
}

/// The line for objects an interrupted replacement left behind, if any.
fn deposed(c: &ResourceChange) -> String {
    if c.deposed.is_empty() {
        return String::new();
    }
    format!(
        "  # {}: {} left behind by a replacement will be destroyed\n\n",
        c.addr,
        c.deposed.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
    )
}

/// The `~ kind "name" { attribute lines }` part of a resource's block.
pub fn render_body(c: &ResourceChange) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:>3} {} \"{}\" {{", c.action.symbol(), c.addr.kind, c.addr.name);
    let width = c.changes.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &c.changes {
        if c.sensitive.contains(&a.name) {
            let hidden = masked(a);
            if hidden.before == hidden.after && !hidden.after.is_null() {
                // Both sides read the same once masked: say that it changes, never to what.
                let name = format!("{:width$}", a.name);
                let forces = if a.forces_replacement { " # forces replacement" } else { "" };
                let _ = writeln!(out, "      ~ {name} = {SENSITIVE}{forces}");
            } else {
                attribute(&mut out, c.action, &hidden, width);
            }
        } else {
            attribute(&mut out, c.action, a, width);
        }
    }
    out.push_str("    }\n\n");
    out
}

/// What a sensitive value is shown as, wherever values are shown.
pub const SENSITIVE: &str = "(sensitive value)";

/// The change with its values hidden (whether it changes still shows).
fn masked(a: &AttrChange) -> AttrChange {
    let hide = |v: &Value| if v.is_null() { Value::Null } else { Value::String(SENSITIVE.into()) };
    AttrChange { before: hide(&a.before), after: hide(&a.after), ..a.clone() }
}

fn attribute(out: &mut String, action: Action, a: &AttrChange, width: usize) {
    let name = format!("{:width$}", a.name);
    let mut lines = Lines { out, indent: 6 };
    match action {
        Action::Create => lines.value('+', &name, &a.after),
        Action::Delete | Action::Forget => lines.value('-', &name, &a.before),
        _ => lines.change(&name, &a.before, &a.after),
    }
    if a.forces_replacement {
        out.truncate(out.trim_end_matches('\n').len());
        out.push_str(" # forces replacement\n");
    }
}

/// Writes indented `sign key = value` lines.
struct Lines<'a> {
    out: &'a mut String,
    indent: usize,
}

impl Lines<'_> {
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{:indent$}{text}", "", indent = self.indent);
    }

    /// A whole value added or removed, spread over lines when it is long.
    fn value(&mut self, sign: char, key: &str, v: &Value) {
        let (open, close, items): (&str, &str, Vec<(String, &Value)>) = match v {
            Value::Object(m) if !fits(v) => ("{", "}", m.iter().map(|(k, v)| (quote(k), v)).collect()),
            Value::Array(a) if !fits(v) => ("[", "]", a.iter().map(|v| (String::new(), v)).collect()),
            _ => return self.line(&format!("{sign} {key}{}{}", eq(key), inline(v))),
        };
        self.line(&format!("{sign} {key}{}{open}", eq(key)));
        self.indent += 4;
        let width = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, item) in items {
            self.value(sign, &format!("{k:width$}"), item);
        }
        self.indent -= 4;
        self.line(&format!("  {close}"));
    }

    /// A change from `before` to `after`, descending into maps and lists so only what
    /// differs is shown.
    fn change(&mut self, key: &str, before: &Value, after: &Value) {
        match (before, after) {
            (b, a) if b == a => {}
            (Value::Null, a) => self.value('+', key, a),
            (b, Value::Null) => self.value('-', key, b),
            (Value::Object(b), Value::Object(a)) if !contains_unknown(after) => {
                self.line(&format!("~ {key}{}{{", eq(key)));
                self.indent += 4;
                let width = b.keys().chain(a.keys()).map(|k| quote(k).len()).max().unwrap_or(0);
                let mut hidden = 0;
                for (k, bv) in b {
                    match a.get(k) {
                        Some(av) if av == bv => hidden += 1,
                        Some(av) => self.change(&format!("{:width$}", quote(k)), bv, av),
                        None => self.value('-', &format!("{:width$}", quote(k)), bv),
                    }
                }
                for (k, av) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
                    self.value('+', &format!("{:width$}", quote(k)), av);
                }
                if hidden > 0 {
                    self.line(&format!(
                        "  # ({hidden} unchanged {})",
                        if hidden == 1 { "entry hidden" } else { "entries hidden" }
                    ));
                }
                self.indent -= 4;
                self.line("  }");
            }
            (Value::Array(b), Value::Array(a)) if !contains_unknown(after) => {
                self.line(&format!("~ {key}{}[", eq(key)));
                self.indent += 4;
                // Elements matched by a longest common subsequence: one inserted at the front is
                // one `+`, not every element after it changed.
                let (bs, as_): (Vec<String>, Vec<String>) =
                    (b.iter().map(Value::to_string).collect(), a.iter().map(Value::to_string).collect());
                let mut hidden = 0;
                for op in similar::capture_diff_slices(similar::Algorithm::Lcs, &bs, &as_) {
                    let (_, old, new) = op.as_tag_tuple();
                    let (old, new) = (&b[old], &a[new]);
                    if matches!(op, similar::DiffOp::Equal { .. }) {
                        hidden += old.len();
                        continue;
                    }
                    // Replaced elements pair up: two mappings show what changed inside them.
                    for i in 0..old.len().max(new.len()) {
                        match (old.get(i), new.get(i)) {
                            (Some(bv), Some(av)) if bv.is_object() && av.is_object() => self.change("", bv, av),
                            (bv, av) => {
                                if let Some(bv) = bv {
                                    self.value('-', "", bv);
                                }
                                if let Some(av) = av {
                                    self.value('+', "", av);
                                }
                            }
                        }
                    }
                }
                if hidden > 0 {
                    self.line(&format!(
                        "  # ({hidden} unchanged {})",
                        if hidden == 1 { "element hidden" } else { "elements hidden" }
                    ));
                }
                self.indent -= 4;
                self.line("  ]");
            }
            (b, a) => self.line(&format!("~ {key}{}{} -> {}", eq(key), inline(b), inline(a))),
        }
    }
}

/// ` = ` after a key; nothing for list elements, which have none.
fn eq(key: &str) -> &'static str {
    if key.is_empty() { "" } else { " = " }
}

fn fits(v: &Value) -> bool {
    inline(v).len() <= INLINE_WIDTH
}

fn quote(k: &str) -> String {
    format!("\"{k}\"")
}

/// A value on one line: JSON, with unknown parts as `(known after apply)`.
fn inline(v: &Value) -> String {
    if is_unknown(v) {
        return "(known after apply)".into();
    }
    let text = serde_json::to_string(v).unwrap_or_default();
    if contains_unknown(v) {
        return text.replace(&serde_json::to_string(UNKNOWN).unwrap_or_default(), "(known after apply)");
    }
    text
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::ResourceAddr;
    use serde_json::json;

    fn body(before: Value, after: Value) -> String {
        let change = AttrChange { name: "aliases".into(), before, after, forces_replacement: false };
        render_body(&ResourceChange {
            changes: vec![change],
            ..ResourceChange::new(ResourceAddr::new("cloudfront_distribution", "d"), Action::Update)
        })
    }

    #[test]
    fn a_list_diff_shows_what_was_inserted_or_removed_not_every_element_after_it() {
        // One origin inserted at the front: one `+`, the two others unchanged and hidden.
        let text = body(json!(["b.example", "c.example"]), json!(["a.example", "b.example", "c.example"]));
        assert_eq!(text.matches("+ \"a.example\"").count(), 1, "{text}");
        assert!(!text.contains('-'), "nothing removed: {text}");
        assert!(text.contains("(2 unchanged elements hidden)"), "{text}");
        // One removed from the middle, one appended: one `-`, one `+`.
        let text = body(json!(["a", "b", "c"]), json!(["a", "c", "d"]));
        assert_eq!((text.matches("- \"b\"").count(), text.matches("+ \"d\"").count()), (1, 1), "{text}");
        assert!(text.contains("(2 unchanged elements hidden)"), "{text}");
        // A changed mapping in a list still shows what changed inside it.
        let text = body(json!([{"k": 1}, {"k": 2}]), json!([{"k": 1}, {"k": 3}]));
        assert!(text.contains("~ \"k\" = 2 -> 3"), "{text}");
    }
}
