//! `moved: [{ from: s3_bucket.uploads, to: s3_bucket.avatar_uploads }]`: a resource renamed in
//! the spec keeps its AWS object. The plan moves the state's entry from the old address to the
//! new one (saying so) instead of destroying one and creating the other.
//!
//! *Guarantees* (checked with the spec, before any AWS call): both ends are addresses of the
//! same kind; `to` is declared and `from` is not (a move to an address whose old one still
//! exists would leave two resources claiming one object); no address is moved from twice; no
//! move starts where another ends (a chain or a cycle: write the final address instead).
//! Each refusal points at both places.

use miette::SourceSpan;

use super::ResourceSpec;
use super::diagnostic::{Problem, Problems};
use super::node::{Node, NodeValue};
use crate::addr::ResourceAddr;

/// One `moved:` entry.
#[derive(Debug, Clone)]
pub struct Move {
    pub from: ResourceAddr,
    pub to: ResourceAddr,
    /// Where the entry is written.
    pub span: SourceSpan,
}

/// The `moved:` section, checked against the declared resources.
pub fn moves(node: Option<&Node>, resources: &[ResourceSpec], problems: &mut Problems) -> Vec<Move> {
    let Some(node) = node else { return vec![] };
    let NodeValue::List(items) = &node.value else {
        problems.at(node.span, "`moved` must be a list: `moved: [{ from: KIND.OLD, to: KIND.NEW }]`", node.type_name());
        return vec![];
    };
    let entries: Vec<Move> = items.iter().filter_map(|item| entry(item, problems)).collect();
    let mut out: Vec<Move> = Vec::new();
    for (i, mv) in entries.iter().enumerate() {
        // A move that ends where another starts (a chain, or a cycle).
        if let Some(next) = entries.iter().find(|o| o.from == mv.to) {
            problems.push(
                Problem::at(mv.span, format!("moves chain: {} -> {} -> {}", mv.from, mv.to, next.to), "this move")
                    .with_label(next.span, "and this one")
                    .with_help(format!("move {} straight to {} in one entry", mv.from, next.to)),
            );
            continue;
        }
        if let Some(first) = entries[..i].iter().find(|o| o.from == mv.from) {
            problems.push(
                Problem::at(mv.span, format!("{} is moved twice", mv.from), "moved again here")
                    .with_label(first.span, "first moved here"),
            );
            continue;
        }
        if let Some(declared) = resources.iter().find(|r| r.addr == mv.from) {
            problems.push(
                Problem::at(mv.span, format!("{} is moved to {}, but is still declared", mv.from, mv.to), "this move")
                    .with_label(declared.span, "still declared here")
                    .with_help("remove the old declaration (the move keeps its AWS object), or remove the move"),
            );
            continue;
        }
        if !resources.iter().any(|r| r.addr == mv.to) {
            problems.push(
                Problem::at(
                    mv.span,
                    format!("{} is moved to {}, which the spec does not declare", mv.from, mv.to),
                    "here",
                )
                .with_help(format!("declare {} (the renamed resource), or remove the move", mv.to)),
            );
            continue;
        }
        out.push(mv.clone());
    }
    out
}

/// One `{ from: ADDR, to: ADDR }` entry.
fn entry(item: &Node, problems: &mut Problems) -> Option<Move> {
    let Some(fields) = item.as_map() else {
        problems.at(item.span, "a move is `{ from: KIND.OLD, to: KIND.NEW }`", item.type_name());
        return None;
    };
    for (k, _) in fields {
        if k.name != "from" && k.name != "to" {
            problems.push(
                Problem::at(k.span, format!("unknown move setting `{}`", k.name), "not a move setting")
                    .with_help("a move takes `from` and `to`"),
            );
            return None;
        }
    }
    let mut addr = |name: &str| -> Option<ResourceAddr> {
        let Some(value) = item.get(name) else {
            problems.at(item.span, format!("a move needs `{name}: KIND.NAME`"), format!("no `{name}`"));
            return None;
        };
        match value.as_str().map(str::parse::<ResourceAddr>) {
            Some(Ok(addr)) => Some(addr),
            Some(Err(e)) => {
                problems.at(value.span, e.to_string(), "not KIND.NAME");
                None
            }
            None => {
                problems.at(value.span, format!("`{name}` must be an address KIND.NAME"), value.type_name());
                None
            }
        }
    };
    let (from, to) = (addr("from"), addr("to"));
    let (from, to) = (from?, to?);
    if from.kind != to.kind {
        problems.at(
            item.span,
            format!("{from} cannot move to {to}: a move keeps the AWS object, so the kind must stay {}", from.kind),
            "different kinds",
        );
        return None;
    }
    if from == to {
        problems.at(item.span, format!("{from} is moved to itself"), "same address");
        return None;
    }
    Some(Move { from, to, span: item.span })
}
