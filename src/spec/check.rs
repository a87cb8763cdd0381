//! Checks one resource's attribute values against its kind's schema and turns them into
//! expressions, substituting variables. Every problem is collected, none stops the check.

use miette::SourceSpan;
use serde_json::Value;

use super::diagnostic::{Problem, Problems};
use super::expr::{Expr, Part, RefTarget, parse_template};
use super::node::{Node, NodeValue};
use super::source::SpecSource;
use super::variables::Variable;
use crate::provider::schema::{AttrType, Attribute, did_you_mean};

/// A reference to another resource's attribute and where it is written.
#[derive(Clone, Debug)]
pub struct SpannedRef {
    pub target: crate::addr::ResourceAddr,
    pub attr: String,
    pub span: SourceSpan,
}

/// What checking needs to know besides the value.
pub struct Checker<'a> {
    pub source: &'a SpecSource,
    pub variables: &'a [Variable],
    /// Every name under `variables:`, including those whose declaration has a problem (already
    /// reported there, so their uses are not reported again as unknown).
    pub declared: Vec<String>,
    pub problems: &'a mut Problems,
    /// References to other resources found so far, checked once every resource is known.
    pub refs: Vec<SpannedRef>,
    /// What `${stage}` is: empty for the main stack, `-NAME` in a stage.
    pub stage: String,
}

impl Checker<'_> {
    /// Checks the attributes of a block against `fields`: unknown names, missing required
    /// ones, and each value's type.
    pub fn block(
        &mut self,
        owner: &str,
        fields: &'static [Attribute],
        entries: &[(super::node::Key, Node)],
        span: SourceSpan,
    ) -> Vec<(String, Expr)> {
        let mut out = Vec::new();
        for (key, node) in entries {
            match fields.iter().find(|f| f.name == key.name) {
                Some(f) if f.computed || f.derived => self.problems.push(
                    Problem::at(
                        key.span,
                        format!("`{}` of {owner} is set by AWS and cannot be written", key.name),
                        "computed attribute",
                    )
                    .with_help(format!("read it elsewhere as ${{{owner}.{}}}", key.name)),
                ),
                Some(f) => {
                    if let Some(expr) = self.value(&f.ty, node, &format!("{owner}.{}", f.name)) {
                        out.push((f.name.to_string(), expr));
                    }
                }
                None => {
                    let mut p = Problem::at(
                        key.span,
                        format!("unknown attribute `{}` on {owner}", key.name),
                        "not an attribute of this kind",
                    );
                    let names = fields.iter().filter(|f| !f.computed && !f.derived).map(|f| f.name);
                    p = match did_you_mean(&key.name, names.clone()) {
                        Some(near) => p.with_help(format!("did you mean `{near}`?")),
                        None => p.with_help(format!("valid attributes: {}", names.collect::<Vec<_>>().join(", "))),
                    };
                    self.problems.push(p);
                }
            }
        }
        for f in fields.iter().filter(|f| f.required) {
            if !entries.iter().any(|(k, _)| k.name == f.name) {
                self.problems.push(
                    Problem::at(
                        span,
                        format!("{owner} is missing the required attribute `{}`", f.name),
                        "in this block",
                    )
                    .with_help(format!("`{}` is {}: {}", f.name, f.ty.describe(), f.description)),
                );
            }
        }
        out
    }

    /// Checks one value against its type.
    pub fn value(&mut self, ty: &'static AttrType, node: &Node, what: &str) -> Option<Expr> {
        if let NodeValue::Str(s) = &node.value {
            let expr = self.template(s, node)?;
            return match expr {
                Expr::Literal(v) => self.literal(ty, v, node, what),
                // References to other resources are type-checked when they are evaluated.
                other => Some(other),
            };
        }
        match (ty, &node.value) {
            (AttrType::List(item), NodeValue::List(items)) => {
                let checked: Vec<_> =
                    items.iter().enumerate().map(|(i, n)| self.value(item, n, &format!("{what}[{i}]"))).collect();
                checked.into_iter().collect::<Option<Vec<_>>>().map(Expr::List)
            }
            (AttrType::Map(item), NodeValue::Map(entries)) => {
                let checked: Vec<_> = entries
                    .iter()
                    .map(|(k, n)| self.value(item, n, &format!("{what}.{}", k.name)).map(|e| (k.name.clone(), e)))
                    .collect();
                checked.into_iter().collect::<Option<Vec<_>>>().map(Expr::Map)
            }
            (AttrType::Object(fields), NodeValue::Map(entries)) => {
                Some(Expr::Map(self.block(what, fields, entries, node.span)))
            }
            (AttrType::Policy, NodeValue::Map(_) | NodeValue::List(_)) => self.any(node),
            // A list or a mapping where a single value (or the other shape) belongs: never
            // read as unset.
            (ty, NodeValue::List(_) | NodeValue::Map(_)) => {
                let shape = if matches!(node.value, NodeValue::List(_)) { "a list" } else { "a mapping" };
                let expected = ty.describe();
                self.problems.at(
                    node.span,
                    format!("{what} must be {expected}, not {shape}"),
                    format!("expected {expected}"),
                );
                None
            }
            (ty, _) => {
                let v = self.any(node).and_then(|e| match e {
                    Expr::Literal(v) => Some(v),
                    _ => None,
                });
                v.and_then(|v| self.literal(ty, v, node, what))
            }
        }
    }

    /// Type-checks a value known now (a literal, or a variable's value).
    fn literal(&mut self, ty: &'static AttrType, v: Value, node: &Node, what: &str) -> Option<Expr> {
        let ok = match (ty, &v) {
            (AttrType::String, Value::String(_)) => true,
            // YAML reads `name: 2024` as a number; a string attribute takes its text.
            (AttrType::String, Value::Number(n)) => {
                return Some(Expr::Literal(Value::String(n.to_string())));
            }
            (AttrType::Bool, Value::Bool(_)) => true,
            // A whole number a 64-bit integer holds; each kind checks AWS's range for it (by
            // default 0 to 2^31-1: AWS's integers are 32-bit, and none of ours is negative).
            (AttrType::Int, Value::Number(n)) => n.is_i64(),
            (AttrType::Enum(allowed), Value::String(s)) => {
                if !allowed.contains(&s.as_str()) {
                    let mut p = Problem::at(
                        node.span,
                        format!("`{s}` is not a valid value for {what}"),
                        format!("expected one of {}", allowed.join(", ")),
                    );
                    if let Some(near) = did_you_mean(s, allowed.iter().copied()) {
                        p = p.with_help(format!("did you mean `{near}`?"));
                    }
                    self.problems.push(p);
                    return None;
                }
                true
            }
            (AttrType::Policy, Value::String(s)) => {
                if let Err(e) = serde_json::from_str::<Value>(s) {
                    self.problems.at(node.span, format!("{what} is not valid JSON: {e}"), "invalid policy document");
                    return None;
                }
                true
            }
            _ => false,
        };
        if ok {
            Some(Expr::Literal(v))
        } else {
            let shown = match &v {
                Value::String(s) => format!("\"{}\"", abbreviated(s)),
                other => abbreviated(&other.to_string()),
            };
            self.problems.at(
                node.span,
                format!("{what} must be {}, not {shown}", ty.describe()),
                format!("expected {}", ty.describe()),
            );
            None
        }
    }

    /// Any value, without a type to check against (inside policy documents).
    fn any(&mut self, node: &Node) -> Option<Expr> {
        Some(match &node.value {
            NodeValue::Null => Expr::Literal(Value::Null),
            NodeValue::Bool(b) => Expr::Literal(Value::Bool(*b)),
            NodeValue::Int(i) => Expr::Literal(Value::from(*i)),
            NodeValue::Float(f) => Expr::Literal(Value::from(*f)),
            NodeValue::Str(s) => self.template(s, node)?,
            NodeValue::List(items) => {
                let items: Vec<_> = items.iter().map(|n| self.any(n)).collect();
                Expr::List(items.into_iter().collect::<Option<_>>()?)
            }
            NodeValue::Map(entries) => {
                let items: Vec<_> = entries.iter().map(|(k, n)| self.any(n).map(|e| (k.name.clone(), e))).collect();
                Expr::Map(items.into_iter().collect::<Option<_>>()?)
            }
        })
    }

    /// Parses `${...}` in a string node, substitutes variables, records resource references.
    pub fn template(&mut self, s: &str, node: &Node) -> Option<Expr> {
        let parts = match parse_template(s) {
            Ok(parts) => parts,
            Err(e) => {
                let span = self.inner_span(node, s, e.range.clone());
                self.problems.at(span, e.message, "here");
                return None;
            }
        };
        let mut out: Vec<Part> = Vec::new();
        let lone = parts.len() == 1;
        for part in parts {
            match part {
                Part::Ref(RefTarget::Var(name), range) => {
                    let Some(var) = self.variables.iter().find(|v| v.name == name) else {
                        if self.declared.contains(&name) {
                            return None;
                        }
                        let span = self.inner_span(node, s, range);
                        let mut p =
                            Problem::at(span, format!("unknown variable `{name}`"), "not declared under `variables`");
                        if let Some(near) = did_you_mean(&name, self.variables.iter().map(|v| v.name.as_str())) {
                            p = p.with_help(format!("did you mean `var.{near}`?"));
                        }
                        self.problems.push(p);
                        return None;
                    };
                    if lone {
                        return Some(Expr::Literal(var.value.clone()));
                    }
                    let text = match &var.value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    match out.last_mut() {
                        Some(Part::Lit(prev)) => prev.push_str(&text),
                        _ => out.push(Part::Lit(text)),
                    }
                }
                Part::Ref(RefTarget::Stage, _) => {
                    if lone {
                        return Some(Expr::Literal(Value::String(self.stage.clone())));
                    }
                    match out.last_mut() {
                        Some(Part::Lit(prev)) => prev.push_str(&self.stage),
                        _ => out.push(Part::Lit(self.stage.clone())),
                    }
                }
                Part::Ref(RefTarget::Attr { addr, attr }, range) => {
                    let span = self.inner_span(node, s, range.clone());
                    self.refs.push(SpannedRef { target: addr.clone(), attr: attr.clone(), span });
                    out.push(Part::Ref(RefTarget::Attr { addr, attr }, range));
                }
                Part::Lit(text) => match out.last_mut() {
                    Some(Part::Lit(prev)) => prev.push_str(&text),
                    _ => out.push(Part::Lit(text)),
                },
            }
        }
        Some(match out.as_slice() {
            [] => Expr::Literal(Value::String(String::new())),
            [Part::Lit(text)] => Expr::Literal(Value::String(text.clone())),
            _ => Expr::Template(out),
        })
    }

    /// The span of `range` (bytes of the decoded string) in the file: exact when the string
    /// is written without escapes, else the whole value.
    fn inner_span(&self, node: &Node, decoded: &str, range: std::ops::Range<usize>) -> SourceSpan {
        let raw_start = node.span.offset();
        let raw = &self.source.text()[raw_start..raw_start + node.span.len()];
        let needle = &decoded[range];
        match raw.find(needle) {
            Some(pos) => SourceSpan::new((raw_start + pos).into(), needle.len()),
            None => node.span,
        }
    }
}

/// A value short enough for one line of a message: its first 60 characters and how many more.
pub fn abbreviated(text: &str) -> String {
    const SHOWN: usize = 60;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}... ({} more characters)", &text[..cut], text[cut..].chars().count()),
        None => text.to_string(),
    }
}
