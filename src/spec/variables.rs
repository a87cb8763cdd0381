//! Spec variables: declared with a default, overridden by the environment or by a `.env` file
//! in the working directory (the original stack's convention), in that order of precedence.

use std::collections::HashMap;
use std::path::Path;

use miette::SourceSpan;
use serde_json::Value;

use super::diagnostic::Problems;
use super::node::{Node, NodeValue};

/// Where a variable's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `--var` or `--var-file`.
    CommandLine,
    Environment,
    DotEnv,
    Default,
    /// No value anywhere, and the command does not need one (`build`): the value is unknown.
    Unset,
}

/// A declared variable and its value for this run.
#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub value: Value,
    pub origin: Origin,
    pub sensitive: bool,
    pub description: Option<String>,
    pub span: SourceSpan,
}

/// Values that override defaults: the process environment first, then `.env`.
pub struct Overrides {
    env: HashMap<String, String>,
    /// Names in the environment whose values are not UTF-8: a spec variable of that name is
    /// an error naming it (anything else in the environment is none of the spec's business).
    not_unicode: std::collections::HashSet<String>,
    dotenv: HashMap<String, String>,
    /// A variable with no value anywhere is unknown instead of an error (for commands that use
    /// only some variables, and say which they lack when they need one).
    unset_is_unknown: bool,
    /// The stage (`--stage`): `None` for the main stack.
    stage: Option<String>,
    /// `--var` and `--var-file` values: they beat the environment and `.env`.
    flags: HashMap<String, String>,
}

impl Overrides {
    /// The process environment and the `.env` file in `dir`, if there is one.
    pub fn from_environment(dir: &Path) -> Result<Self, String> {
        let path = dir.join(".env");
        let dotenv = match dotenvy::from_path_iter(&path) {
            Ok(iter) => iter.collect::<Result<HashMap<_, _>, _>>().map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.not_found() => HashMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        // A value that is not UTF-8 cannot be a spec value: remembered by name, never a panic.
        let mut env = HashMap::new();
        let mut not_unicode = std::collections::HashSet::new();
        for (name, value) in std::env::vars_os() {
            let Ok(name) = name.into_string() else { continue };
            match value.into_string() {
                Ok(value) => {
                    env.insert(name, value);
                }
                Err(_) => {
                    not_unicode.insert(name);
                }
            }
        }
        Ok(Self { env, not_unicode, dotenv, unset_is_unknown: false, stage: None, flags: HashMap::new() })
    }

    pub fn none() -> Self {
        Self {
            env: HashMap::new(),
            not_unicode: Default::default(),
            dotenv: HashMap::new(),
            unset_is_unknown: false,
            stage: None,
            flags: HashMap::new(),
        }
    }

    /// The same, for stage `stage` (`None`: the main stack): what `${stage}` is, and whether
    /// `import_id` adopts.
    pub fn in_stage(self, stage: Option<&str>) -> Self {
        Self { stage: stage.map(str::to_string), ..self }
    }

    /// The same, as a command loads it: its stage and its command line's variables.
    pub fn loading(self, how: &super::Loading) -> Self {
        let flags = how.vars.iter().cloned().collect();
        Self { flags, ..self.in_stage(how.stage.as_deref()) }
    }

    /// The stage the spec is loaded for (`None`: the main stack).
    pub fn stage(&self) -> Option<&str> {
        self.stage.as_deref()
    }

    /// The same, with variables that have no value left unknown instead of refused.
    pub fn allowing_unset(self) -> Self {
        Self { unset_is_unknown: true, ..self }
    }

    /// A variable's value. An empty value counts as unset: CI systems expand a repository
    /// variable nobody set to the empty string (GitHub's `${{ vars.X }}`), which must leave the
    /// spec's default in place, not replace it with nothing.
    fn get(&self, name: &str) -> Option<(&str, Origin)> {
        let set = |v: &&String| !v.is_empty();
        if let Some(v) = self.flags.get(name) {
            return Some((v.as_str(), Origin::CommandLine));
        }
        self.env
            .get(name)
            .filter(set)
            .map(|v| (v.as_str(), Origin::Environment))
            .or_else(|| self.dotenv.get(name).filter(set).map(|v| (v.as_str(), Origin::DotEnv)))
    }
}

/// Reads the `variables:` block.
pub fn load(node: Option<&Node>, overrides: &Overrides, problems: &mut Problems) -> Vec<Variable> {
    let Some(node) = node else { return vec![] };
    let Some(entries) = node.as_map() else {
        problems.at(node.span, "`variables` must be a mapping of names to declarations", node.type_name());
        return vec![];
    };
    let mut out = Vec::new();
    for (key, decl) in entries {
        if !crate::addr::is_ident(&key.name) {
            problems.at(key.span, format!("`{}` is not a valid variable name", key.name), "use letters, digits and _");
            continue;
        }
        if let Some(v) = declare(&key.name, key.span, decl, overrides, problems) {
            out.push(v);
        }
    }
    out
}

fn declare(
    name: &str,
    span: SourceSpan,
    decl: &Node,
    overrides: &Overrides,
    problems: &mut Problems,
) -> Option<Variable> {
    let mut sensitive = false;
    let mut description = None;
    let default = match &decl.value {
        NodeValue::Map(fields) => {
            let mut default = None;
            for (k, v) in fields {
                match (k.name.as_str(), &v.value) {
                    ("default", _) => default = Some(v),
                    ("description", NodeValue::Str(s)) => description = Some(s.clone()),
                    ("sensitive", NodeValue::Bool(b)) => sensitive = *b,
                    ("description" | "sensitive", _) => problems.at(
                        v.span,
                        format!("`{}` of variable `{name}` has the wrong type", k.name),
                        v.type_name(),
                    ),
                    (other, _) => problems.push(
                        super::diagnostic::Problem::at(
                            k.span,
                            format!("unknown field `{other}` in variable `{name}`"),
                            "unknown field",
                        )
                        .with_help("a variable takes default, description and sensitive"),
                    ),
                }
            }
            default
        }
        _ => Some(decl),
    };
    let default_value = match default.map(|d| scalar(d, name, problems)) {
        Some(None) => return None,
        Some(Some(v)) => Some(v),
        None => None,
    };
    if overrides.not_unicode.contains(name) {
        problems.at(span, format!("variable `{name}` in the environment is not valid UTF-8"), "declared here");
        return None;
    }
    let (value, origin) = match overrides.get(name) {
        Some((raw, origin)) => match typed_like(raw, default_value.as_ref()) {
            Ok(v) => (v, origin),
            Err(expected) => {
                let from = match origin {
                    Origin::CommandLine => "the command line (--var, --var-file)",
                    Origin::Environment => "the environment",
                    _ => ".env",
                };
                problems.at(
                    span,
                    format!("variable `{name}` from {from} is `{raw}`, which is not {expected}"),
                    "declared here",
                );
                return None;
            }
        },
        None => match default_value {
            Some(v) => (v, Origin::Default),
            None if overrides.unset_is_unknown => (crate::value::unknown(), Origin::Unset),
            None => {
                problems.push(
                    super::diagnostic::Problem::at(span, format!("variable `{name}` has no value"), "no default")
                        .with_help(format!("set {name} in the environment or in .env, or give it a default")),
                );
                return None;
            }
        },
    };
    Some(Variable { name: name.to_string(), value, origin, sensitive, description, span })
}

fn scalar(node: &Node, name: &str, problems: &mut Problems) -> Option<Value> {
    match &node.value {
        NodeValue::Str(s) => Some(Value::String(s.clone())),
        NodeValue::Int(i) => Some(Value::from(*i)),
        NodeValue::Bool(b) => Some(Value::Bool(*b)),
        NodeValue::Float(f) => Some(Value::from(*f)),
        _ => {
            problems.at(node.span, format!("variable `{name}` must be a string, number or boolean"), node.type_name());
            None
        }
    }
}

/// Parses an override as the type of the default, so `PROCESS_WIDTH=256` stays an integer.
fn typed_like(raw: &str, default: Option<&Value>) -> Result<Value, &'static str> {
    match default {
        Some(Value::Number(_)) => raw.trim().parse::<i64>().map(Value::from).map_err(|_| "an integer"),
        Some(Value::Bool(_)) => match raw.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("true or false"),
        },
        _ => Ok(Value::String(raw.to_string())),
    }
}
