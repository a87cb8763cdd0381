//! `${...}` interpolation in spec strings: parsing references and evaluating attribute values.
//!
//! Variables are substituted when the spec loads; what remains in an [`Expr`] are references to
//! other resources' attributes, evaluated at plan time (possibly to unknown) and again at apply
//! time (always known, since dependencies are applied first).

use std::ops::Range;

use serde_json::Value;

use crate::addr::{ResourceAddr, is_ident};
use crate::value::{UNKNOWN, is_unknown};

/// What a `${...}` names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefTarget {
    /// `${var.NAME}`
    Var(String),
    /// `${kind.name.attribute}`
    Attr { addr: ResourceAddr, attr: String },
    /// `${stage}`: empty for the main stack, `-NAME` in stage NAME (substituted at load).
    Stage,
}

impl std::fmt::Display for RefTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefTarget::Var(name) => write!(f, "var.{name}"),
            RefTarget::Attr { addr, attr } => write!(f, "{addr}.{attr}"),
            RefTarget::Stage => f.write_str("stage"),
        }
    }
}

/// One piece of a string with interpolations.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Lit(String),
    /// A reference and its byte range inside the string, `${` to `}` inclusive.
    Ref(RefTarget, Range<usize>),
}

/// Why a `${...}` could not be parsed; `range` is inside the string.
#[derive(Debug, PartialEq)]
pub struct ExprError {
    pub message: String,
    pub range: Range<usize>,
}

/// Splits a string into literal text and references. `$${` is a literal `${`.
pub fn parse_template(s: &str) -> Result<Vec<Part>, ExprError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    let mut offset = 0;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            lit.push_str(&rest[..pos - 1]);
            lit.push_str("${");
            rest = &rest[pos + 2..];
            offset += pos + 2;
            continue;
        }
        lit.push_str(&rest[..pos]);
        let start = offset + pos;
        let Some(close) = rest[pos..].find('}') else {
            return Err(ExprError { message: "unterminated `${`: expected `}`".into(), range: start..s.len() });
        };
        let inner = rest[pos + 2..pos + close].trim();
        let range = start..start + close + 1;
        let target = parse_ref(inner).ok_or_else(|| ExprError {
            message: format!(
                "`${{{inner}}}` is not a reference: expected `${{var.NAME}}`, `${{stage}}` or `${{KIND.NAME.ATTRIBUTE}}`"
            ),
            range: range.clone(),
        })?;
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(&mut lit)));
        }
        parts.push(Part::Ref(target, range));
        rest = &rest[pos + close + 1..];
        offset += pos + close + 1;
    }
    lit.push_str(rest);
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

fn parse_ref(inner: &str) -> Option<RefTarget> {
    let segments: Vec<&str> = inner.split('.').collect();
    match segments.as_slice() {
        ["var", name] if is_ident(name) => Some(RefTarget::Var(name.to_string())),
        ["stage"] => Some(RefTarget::Stage),
        [kind, name, attr] if [kind, name, attr].iter().all(|s| is_ident(s)) => {
            Some(RefTarget::Attr { addr: ResourceAddr::new(*kind, *name), attr: attr.to_string() })
        }
        _ => None,
    }
}

/// An attribute value in a spec, with references to other resources left to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// A string with references; a template that is one reference alone takes that value's type.
    Template(Vec<Part>),
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
}

impl Expr {
    /// Evaluates with `lookup` giving each referenced attribute's value (or [`UNKNOWN`]).
    /// A string containing an unknown part is unknown as a whole.
    pub fn eval(&self, lookup: &dyn Fn(&ResourceAddr, &str) -> Value) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Template(parts) => {
                if let [Part::Ref(RefTarget::Attr { addr, attr }, _)] = parts.as_slice() {
                    return lookup(addr, attr);
                }
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Lit(s) => out.push_str(s),
                        Part::Ref(RefTarget::Attr { addr, attr }, _) => match lookup(addr, attr) {
                            v if is_unknown(&v) => return Value::String(UNKNOWN.into()),
                            Value::String(s) => out.push_str(&s),
                            Value::Null => {}
                            other => out.push_str(&other.to_string()),
                        },
                        // Variables are substituted at load time; one left here is a bug in the loader.
                        Part::Ref(RefTarget::Var(_) | RefTarget::Stage, _) => return Value::String(UNKNOWN.into()),
                    }
                }
                Value::String(out)
            }
            Expr::List(items) => Value::Array(items.iter().map(|i| i.eval(lookup)).collect()),
            Expr::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.eval(lookup))).collect()),
        }
    }

    /// Every resource this expression references, with the attribute named.
    pub fn references(&self, out: &mut Vec<(ResourceAddr, String)>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Template(parts) => {
                for part in parts {
                    if let Part::Ref(RefTarget::Attr { addr, attr }, _) = part {
                        out.push((addr.clone(), attr.clone()));
                    }
                }
            }
            Expr::List(items) => items.iter().for_each(|i| i.references(out)),
            Expr::Map(entries) => entries.iter().for_each(|(_, v)| v.references(out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_splits_literals_and_references() {
        // A string mixing text, a variable and an attribute reference parses into three kinds of parts.
        let parts = parse_template("arn:${s3_bucket.up.arn}/*-${var.X}").expect("parses");
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], Part::Lit("arn:".into()));
        assert!(matches!(&parts[1], Part::Ref(RefTarget::Attr { attr, .. }, r) if attr == "arn" && *r == (4..23)));
        assert_eq!(parts[2], Part::Lit("/*-".into()));
        assert!(matches!(&parts[3], Part::Ref(RefTarget::Var(n), _) if n == "X"));
    }

    #[test]
    fn double_dollar_escapes_interpolation() {
        // `$${` stays literal text, as in Terraform.
        assert_eq!(parse_template("a$${b}").expect("parses"), vec![Part::Lit("a${b}".into())]);
    }

    #[test]
    fn malformed_references_are_errors_with_ranges() {
        // Unterminated and misshapen references say where they are.
        let e = parse_template("x ${var.A").expect_err("unterminated");
        assert_eq!(e.range, 2..9);
        let e = parse_template("${s3_bucket.x}").expect_err("two segments");
        assert!(e.message.contains("not a reference"), "{}", e.message);
    }

    #[test]
    fn unknown_reference_makes_the_whole_string_unknown() {
        // Interpolating a value known only after apply gives an unknown string, not a partial one.
        let expr = Expr::Template(parse_template("${a.b.arn}/*").expect("parses"));
        let v = expr.eval(&|_, _| Value::String(UNKNOWN.into()));
        assert!(is_unknown(&v));
        let v = expr.eval(&|_, _| json!("arn:x"));
        assert_eq!(v, json!("arn:x/*"));
    }

    #[test]
    fn lone_reference_keeps_the_value_type() {
        // `${a.b.tags}` alone evaluates to the referenced value itself.
        let expr = Expr::Template(parse_template("${a.b.tags}").expect("parses"));
        assert_eq!(expr.eval(&|_, _| json!({"k": "v"})), json!({"k": "v"}));
    }
}
