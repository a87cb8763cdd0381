//! Plans and drift reports as Markdown for pull-request comments: the summary first, then each
//! resource's diff in a collapsible block.

use std::fmt::Write;

use super::{Action, Plan, ResourceChange, render_body};

pub fn render_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let s = plan.summary();
    let warnings: String = plan.warnings().iter().map(|w| format!("> **Warning**: {w}.\n")).collect();
    if !plan.has_changes() {
        out.push_str("### cruddur-infra plan: no changes\n\nThe infrastructure matches the spec.\n");
        if !warnings.is_empty() {
            out.push('\n');
            out.push_str(&warnings);
        }
        policy(&mut out, plan);
        return out;
    }
    let _ = writeln!(out, "### cruddur-infra plan: {}\n", s.counts());
    if !warnings.is_empty() {
        out.push_str(&warnings);
        out.push('\n');
    }
    out.push_str("| | resource | action | why |\n|---|---|---|---|\n");
    let shown: Vec<&ResourceChange> =
        plan.changes.iter().filter(|c| c.action != Action::NoOp || c.imported || c.moved_from.is_some()).collect();
    for c in &shown {
        let (what, why) = match c.action {
            Action::NoOp if !c.imported => ("move", String::new()),
            Action::Create => ("create", note(c)),
            Action::Update => ("update in place", note(c)),
            Action::Replace if c.replace_reasons().is_empty() => ("**replace**", note(c)),
            Action::Replace if c.replace_causes.is_empty() => {
                ("**replace**", format!("{} cannot change in place", c.replace_reasons().join(", ")))
            }
            Action::Replace => {
                let causes: Vec<String> = c.replace_causes.iter().map(ToString::to_string).collect();
                ("**replace**", causes.join("; ").replace('|', "\\|"))
            }
            Action::Delete => ("**destroy**", String::new()),
            Action::Forget => ("forget (kept in AWS)", note(c)),
            Action::NoOp => ("import", note(c)),
        };
        let why = match c.moved_from.as_ref().map(|m| &m.from) {
            Some(from) if why.is_empty() => format!("moved from `{from}`"),
            Some(from) => format!("moved from `{from}`; {why}"),
            None => why,
        };
        let _ = writeln!(out, "| `{}` | `{}` | {what} | {why} |", c.action.symbol().trim(), c.addr);
    }
    out.push('\n');
    permissions(&mut out, plan);
    policy(&mut out, plan);
    for c in shown {
        details(&mut out, &format!("<code>{} {}</code>", c.action.symbol().trim(), c.addr), &render_body(c));
    }
    out
}

/// Who can now do what: every added and removed statement, broadening ones marked.
fn permissions(out: &mut String, plan: &Plan) {
    if plan.permissions.is_empty() {
        return;
    }
    let broadening = plan.permissions.iter().flat_map(|p| p.broadening()).count();
    let headline = if broadening > 0 { format!(" ({broadening} broadening)") } else { String::new() };
    let _ = writeln!(out, "#### Who can now do what{headline}\n");
    out.push_str(
        "| | resource | principal | action | resource acted on | conditions | |\n|---|---|---|---|---|---|---|\n",
    );
    for pc in &plan.permissions {
        for c in &pc.changes {
            let g = &c.grant;
            let cell = |s: &str| s.replace(crate::value::UNKNOWN, "(known after apply)").replace('|', "\\|");
            let mark = match &c.why {
                Some(why) => format!("**broadening**: {why} (`{}`)", c.fingerprint),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {}{} | `{}` | `{}` | {} | {mark} |",
                if c.added { "+" } else { "-" },
                pc.addr,
                if g.deny { "DENY " } else { "" },
                cell(&g.principal),
                cell(&g.action),
                cell(&g.resource),
                cell(&g.conditions.join(" and ")),
            );
        }
    }
    out.push('\n');
}

/// The built-in policy rules broken, and those waived with their reasons.
fn policy(out: &mut String, plan: &Plan) {
    if plan.policy.is_empty() {
        return;
    }
    out.push_str("#### Policy rules\n\n| | resource | rule | finding |\n|---|---|---|---|\n");
    for f in &plan.policy {
        let status = match &f.waived {
            Some(why) => format!("waived: {why}"),
            None => "**failed**".to_string(),
        };
        let _ = writeln!(out, "| {status} | `{}` | `{}` | {} |", f.addr, f.rule, f.message.replace('|', "\\|"));
    }
    out.push('\n');
}

/// A collapsible block holding text rendered as a diff.
pub fn details(out: &mut String, summary: &str, body: &str) {
    let _ = writeln!(out, "<details><summary>{summary}</summary>\n\n```diff\n{}```\n</details>\n", as_diff(body));
}

/// Moves each line's `+`/`-`/`~` to the first column, where diff highlighting looks for it.
fn as_diff(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            match trimmed.chars().next() {
                Some(c @ ('+' | '-')) => format!("{c}{}{}\n", " ".repeat(indent), &trimmed[1..]),
                Some('~') => format!("!{}{}\n", " ".repeat(indent), &trimmed[1..]),
                _ => format!(" {line}\n"),
            }
        })
        .collect()
}

/// The change's reason in words, or nothing.
fn note(c: &ResourceChange) -> String {
    c.reason.as_ref().map(ToString::to_string).unwrap_or_default()
}
