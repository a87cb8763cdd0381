//! The spec: a YAML file of variables, resources and outputs, loaded with source positions,
//! checked against each kind's schema, with every problem reported in one run.
//!
//! ```yaml
//! variables:
//!   UPLOADS_BUCKET_NAME: { default: cruddur-uploads }
//! resources:
//!   s3_bucket:
//!     uploads:
//!       name: ${var.UPLOADS_BUCKET_NAME}
//! outputs:
//!   uploads_bucket: ${s3_bucket.uploads.name}
//! ```

pub mod adopt;
mod check;
pub mod diagnostic;
pub mod expr;
#[cfg(test)]
mod hostile_tests;
mod json_schema;
mod kinds_reference;
pub mod moved;
mod node;
pub mod recorded;
mod source;
pub mod stage;
pub mod variables;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use miette::SourceSpan;

pub use check::SpannedRef;
pub use diagnostic::{Problem, SpecErrors};
pub use expr::Expr;
pub use json_schema::json_schema;
pub use kinds_reference::kinds_markdown;
pub use node::{Node, NodeValue};
pub use source::SpecSource;
pub use variables::{Overrides, Variable};

use crate::addr::{ResourceAddr, is_ident};
use crate::provider::schema::did_you_mean;
use crate::provider::{Registry, ResourceSchema};
use diagnostic::Problems;

/// How a command loads the spec: its stage (`--stage`), and variables given on its command
/// line (`--var-file` files first, then `--var`: a later one wins), which beat the environment
/// and `.env`.
#[derive(Clone, Debug, Default)]
pub struct Loading {
    pub stage: Option<String>,
    pub vars: Vec<(String, String)>,
}

/// A loaded, checked spec.
#[derive(Debug)]
pub struct Spec {
    pub source: SpecSource,
    pub variables: Vec<Variable>,
    /// In file order.
    pub resources: Vec<ResourceSpec>,
    /// Read-only queries, evaluated at plan time.
    pub lookups: Vec<ResourceSpec>,
    pub outputs: Vec<OutputSpec>,
    /// `drift: { ignore: [PATTERN] }`: undeclared children someone manages elsewhere, matched
    /// (`*` wildcards) against what drift calls them (`route GET /health in the API abc`).
    pub drift_ignore: Vec<String>,
    /// `state: { encryption: kms:KEY }`: the KMS key the state, journal, backup and saved
    /// plans are sealed with.
    pub state_encryption: Option<String>,
    /// `moved: [{ from, to }]`: resources renamed in the spec, which keep their AWS objects.
    pub moves: Vec<moved::Move>,
    /// The stage it was loaded for (`--stage`): what it creates is tagged with it.
    pub stage: Option<String>,
}

/// One declared resource.
#[derive(Debug)]
pub struct ResourceSpec {
    pub addr: ResourceAddr,
    /// Where its name is written.
    pub span: SourceSpan,
    /// Attributes the spec sets, in the order written.
    pub attrs: Vec<(String, Expr)>,
    /// Where each attribute's name is written.
    pub attr_spans: BTreeMap<String, SourceSpan>,
    /// References to other resources' attributes, each with where it is written.
    pub refs: Vec<SpannedRef>,
    /// Extra ordering edges from `depends_on`.
    pub depends_on: Vec<(ResourceAddr, SourceSpan)>,
    /// `import_id`: adopt the existing resource with this id instead of creating one.
    pub import_id: Option<String>,
    /// Attributes whose values use a sensitive variable.
    pub sensitive: BTreeSet<String>,
    /// `lifecycle: { prevent_destroy: true }`: no plan may destroy or replace it.
    pub prevent_destroy: bool,
    /// `lifecycle: { retain_on_destroy: BOOL }`: kept in AWS (only forgotten) when destroyed or
    /// replaced. Unset, adopted resources (`import_id`) are retained and created ones are not.
    pub retain_on_destroy: Option<bool>,
    /// `waivers: { RULE: REASON }`: built-in policy rules this resource may break, and why.
    pub waivers: BTreeMap<String, String>,
    /// Attributes whose value uses `${stage}`: they differ from one stage to the next.
    pub staged: BTreeSet<String>,
    /// The folder the paths it names (a Lambda's `source:`) are relative to: its spec's.
    pub dir: PathBuf,
}

impl ResourceSpec {
    /// The resource as its kind's checks see it.
    pub fn declared(&self) -> crate::provider::Declared {
        let partial: std::collections::BTreeMap<String, serde_json::Value> =
            self.attrs.iter().map(|(name, expr)| (name.clone(), expr.eval(&|_, _| crate::value::unknown()))).collect();
        // Known when nothing in it refers to a resource (lists and blocks of literals and
        // variables included); a variable without a value (`build`) is unknown, as a reference
        // is: neither is checked before apply.
        let values = partial
            .iter()
            .map(|(name, value)| (name.clone(), (!crate::value::contains_unknown(value)).then(|| value.clone())))
            .collect();
        let references = self
            .attrs
            .iter()
            .map(|(name, expr)| {
                let mut refs = Vec::new();
                expr.references(&mut refs);
                (name.clone(), refs)
            })
            .collect();
        crate::provider::Declared {
            addr: self.addr.clone(),
            values,
            partial,
            references,
            dependencies: self.dependencies(),
        }
    }

    /// Every resource this one must follow: referenced ones and `depends_on`.
    pub fn dependencies(&self) -> BTreeSet<ResourceAddr> {
        self.refs.iter().map(|r| r.target.clone()).chain(self.depends_on.iter().map(|(a, _)| a.clone())).collect()
    }
}

/// A named value shown after apply.
#[derive(Debug)]
pub struct OutputSpec {
    pub name: String,
    pub value: Expr,
    pub description: Option<String>,
    pub sensitive: bool,
    /// The variable name `output --format dotenv` prints it as (`env: REACT_APP_...`).
    pub env: Option<String>,
}

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read spec {path}: {source}")]
    #[diagnostic(code(cruddur::spec::io))]
    Io { path: String, source: std::io::Error },
    /// The `.env` file in the working directory is malformed.
    #[error("cannot read variables: {0}")]
    #[diagnostic(code(cruddur::spec::dotenv))]
    DotEnv(String),
    /// One or more problems in the spec's content.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<SpecErrors>),
}

/// The top-level sections of a spec.
const SECTIONS: &[&str] = &["variables", "lookups", "resources", "outputs", "drift", "state", "moved"];

/// Fields a resource block takes besides its kind's attributes.
const META_FIELDS: &[&str] = &["depends_on", "import_id", "lifecycle", "waivers"];

impl Spec {
    /// Reads and checks the spec at `path`, with variables from the environment and `.env`.
    pub fn load(path: &Path, registry: &Registry, how: &Loading) -> Result<Spec, LoadError> {
        let spec = Self::load_without_sources(path, registry, how)?;
        check_paths(&spec, registry)?;
        Ok(spec)
    }

    /// The same, except that the files and folders it names need not exist: for commands that
    /// build nothing (`destroy`, `import`, `iam-policy`), so a crate folder deleted along with
    /// its function does not stand in the way of destroying what it made.
    pub fn load_without_sources(path: &Path, registry: &Registry, how: &Loading) -> Result<Spec, LoadError> {
        let source =
            SpecSource::read(path).map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
        let overrides = Overrides::from_environment(Path::new(".")).map_err(LoadError::DotEnv)?.loading(how);
        Self::parse(source, registry, &overrides)
    }

    /// `text` checked as the spec at `path` (`drift --adopt` checks its patch before writing).
    pub fn load_text(path: &Path, text: String, registry: &Registry, how: &Loading) -> Result<Spec, LoadError> {
        let overrides = Overrides::from_environment(Path::new(".")).map_err(LoadError::DotEnv)?.loading(how);
        let spec = Self::parse(SpecSource::new(path, text), registry, &overrides)?;
        check_paths(&spec, registry)?;
        Ok(spec)
    }

    /// The same, but a variable without a value is unknown rather than an error: for commands
    /// (`build`) that need only some variables and name the one they lack.
    pub fn load_allowing_unset(path: &Path, registry: &Registry, how: &Loading) -> Result<Spec, LoadError> {
        let source =
            SpecSource::read(path).map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
        let overrides =
            Overrides::from_environment(Path::new(".")).map_err(LoadError::DotEnv)?.allowing_unset().loading(how);
        let spec = Self::parse(source, registry, &overrides)?;
        check_paths(&spec, registry)?;
        Ok(spec)
    }

    /// Checks a spec's text; all problems are reported together.
    pub fn parse(source: SpecSource, registry: &Registry, overrides: &Overrides) -> Result<Spec, LoadError> {
        let mut problems = Problems::default();
        let spec = match Node::parse(&source) {
            Ok(root) => Some(Self::from_root(&root, &source, registry, overrides, &mut problems)),
            Err(e) => {
                let mut p = Problem::at(e.span, format!("invalid YAML: {}", e.message), "here");
                if let Some(help) = syntax_hint(source.text(), e.span.offset(), &e.message) {
                    p = p.with_help(help);
                }
                problems.push(p);
                None
            }
        };
        // Report in reading order, whatever order the checks found them in.
        problems.0.sort_by_key(|p| p.labels.first().map_or(0, |l| l.offset()));
        match spec {
            Some(spec) if problems.is_empty() => Ok(spec),
            _ => Err(LoadError::Invalid(Box::new(SpecErrors::new(
                source.path().display().to_string(),
                source.named(),
                problems.0,
            )))),
        }
    }

    fn from_root(
        root: &Node,
        source: &SpecSource,
        registry: &Registry,
        overrides: &Overrides,
        problems: &mut Problems,
    ) -> Spec {
        let Some(entries) = root.as_map() else {
            problems.at(root.span, "a spec must be a mapping with variables, resources and outputs", root.type_name());
            return Spec {
                source: source.clone(),
                variables: vec![],
                resources: vec![],
                lookups: vec![],
                outputs: vec![],
                drift_ignore: vec![],
                state_encryption: None,
                moves: vec![],
                stage: overrides.stage().map(str::to_string),
            };
        };
        for (key, _) in entries {
            if !SECTIONS.contains(&key.name.as_str()) {
                let mut p = Problem::at(key.span, format!("unknown top-level section `{}`", key.name), "not a section");
                if let Some(near) = did_you_mean(&key.name, SECTIONS.iter().copied()) {
                    p = p.with_help(format!("did you mean `{near}`?"));
                }
                problems.push(p);
            }
        }
        let variables = variables::load(root.get("variables"), overrides, problems);
        let declared = root
            .get("variables")
            .and_then(|v| v.as_map())
            .map(|entries| entries.iter().map(|(k, _)| k.name.clone()).collect())
            .unwrap_or_default();
        let stage = stage::value(overrides.stage());
        let mut checker = check::Checker { source, variables: &variables, declared, problems, refs: vec![], stage };
        let lookups = blocks(root.get("lookups"), &Section::Lookups, registry, &mut checker);
        for l in &lookups {
            for r in &l.refs {
                checker.problems.at(
                    r.span,
                    format!("lookup {} references {}: a lookup may only use variables", l.addr, r.target),
                    "resource reference in a lookup",
                );
            }
        }
        let mut resources = blocks(root.get("resources"), &Section::Resources, registry, &mut checker);
        let outputs = outputs(root.get("outputs"), &mut checker);
        let output_refs = std::mem::take(&mut checker.refs);
        check_references(&resources, &lookups, &output_refs, registry, problems);
        check_names(&resources, registry, overrides.stage(), problems);
        if let Some(stage) = overrides.stage() {
            // A stage is a copy of its own: it adopts nothing the main stack adopted.
            for r in &mut resources {
                r.import_id = None;
            }
            check_stage_names(&resources, &lookups, registry, stage, problems);
        }
        if problems.is_empty() {
            check_kind_rules(&resources, registry, problems);
        }
        let mut outputs = outputs;
        for o in &mut outputs {
            // An output showing a sensitive attribute is sensitive too.
            let mut refs = Vec::new();
            o.value.references(&mut refs);
            o.sensitive |=
                refs.iter().any(|(addr, attr)| resources.iter().any(|r| &r.addr == addr && r.sensitive.contains(attr)));
        }
        if problems.is_empty() {
            for cycle in dependency_graph(&resources).cycles() {
                problems.push(cycle_problem(&cycle, &resources));
            }
        }
        let drift_ignore = drift_ignore(root.get("drift"), problems);
        let state_encryption = state_settings(root.get("state"), problems);
        let moves = moved::moves(root.get("moved"), &resources, problems);
        let dir = spec_dir(source.path());
        for r in &mut resources {
            r.dir = dir.clone();
        }
        Spec {
            source: source.clone(),
            variables,
            resources,
            lookups,
            outputs,
            drift_ignore,
            state_encryption,
            moves,
            stage: overrides.stage().map(str::to_string),
        }
    }

    /// Only the spec's `state:` settings (its encryption key), for commands that read the
    /// state without the rest of the spec; the rest of the file is not checked.
    pub fn state_encryption_of(path: &Path) -> Result<Option<String>, LoadError> {
        let source =
            SpecSource::read(path).map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
        let mut problems = Problems::default();
        let key = match Node::parse(&source) {
            Ok(root) => state_settings(root.get("state"), &mut problems),
            Err(e) => {
                problems.push(Problem::at(e.span, format!("invalid YAML: {}", e.message), "here"));
                None
            }
        };
        if problems.is_empty() {
            return Ok(key);
        }
        Err(LoadError::Invalid(Box::new(SpecErrors::new(
            source.path().display().to_string(),
            source.named(),
            problems.0,
        ))))
    }

    pub fn resource(&self, addr: &ResourceAddr) -> Option<&ResourceSpec> {
        self.resources.iter().find(|r| &r.addr == addr)
    }

    pub fn lookup(&self, addr: &ResourceAddr) -> Option<&ResourceSpec> {
        self.lookups.iter().find(|r| &r.addr == addr)
    }
}

/// The folder of the spec at `path`: what the paths in it are relative to (`.` for a bare file
/// name).
pub fn spec_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Every path a resource names on this machine (its kind's [`crate::provider::Artifact::paths`])
/// exists, relative to the spec's folder. Values not known before apply are not checked.
fn check_paths(spec: &Spec, registry: &Registry) -> Result<(), LoadError> {
    let mut problems = Problems::default();
    for res in &spec.resources {
        let Some(artifact) = registry.get(&res.addr.kind).and_then(|k| k.artifact()) else { continue };
        for (attr, expr) in res.attrs.iter().filter(|(a, _)| artifact.paths().contains(&a.as_str())) {
            // A variable without a value (`build` allows that) is not known before apply.
            let Expr::Literal(serde_json::Value::String(written)) = expr else { continue };
            if written.contains(crate::value::UNKNOWN) {
                continue;
            }
            let resolved = res.dir.join(written);
            if resolved.exists() {
                continue;
            }
            let span = res.attr_spans.get(attr).copied().unwrap_or(res.span);
            problems.push(
                Problem::at(
                    span,
                    format!("{attr} of {} names {written}, which does not exist ({})", res.addr, resolved.display()),
                    format!("this {attr}"),
                )
                .with_help(format!(
                    "paths in a spec are relative to the spec's folder ({}), wherever the command runs",
                    res.dir.display()
                )),
            );
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(LoadError::Invalid(Box::new(SpecErrors::new(
        spec.source.path().display().to_string(),
        spec.source.named(),
        problems.0,
    ))))
}

/// Each kind's own rules (across attributes, or across resources), reported where the
/// attribute is written.
fn check_kind_rules(resources: &[ResourceSpec], registry: &Registry, problems: &mut Problems) {
    let declared: Vec<crate::provider::Declared> = resources.iter().map(ResourceSpec::declared).collect();
    for (res, this) in resources.iter().zip(&declared) {
        let Some(kind) = registry.get(&res.addr.kind) else { continue };
        for finding in kind.validate(this, &declared) {
            let (span, label) = match finding.attr.as_deref().and_then(|a| res.attr_spans.get(a).map(|s| (a, s))) {
                Some((attr, span)) => (*span, format!("this {attr}")),
                None => (res.span, "in this resource".to_string()),
            };
            let mut p = Problem::at(span, finding.message, label);
            if let Some(help) = finding.help {
                p = p.with_help(help);
            }
            problems.push(p);
        }
    }
}

/// Which section a block of kinds is in.
enum Section {
    Resources,
    Lookups,
}

impl Section {
    fn name(&self) -> &'static str {
        match self {
            Section::Resources => "resources",
            Section::Lookups => "lookups",
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Section::Resources => "resource kind",
            Section::Lookups => "lookup kind",
        }
    }

    fn kind(&self, registry: &Registry, kind: &str) -> Option<(&'static str, &'static ResourceSchema)> {
        match self {
            Section::Resources => registry.get(kind).map(|k| (k.kind(), k.schema())),
            Section::Lookups => registry.lookup(kind).map(|k| (k.kind(), k.schema())),
        }
    }

    fn names(&self, registry: &Registry) -> Vec<&'static str> {
        match self {
            Section::Resources => registry.names().collect(),
            Section::Lookups => registry.lookup_names().collect(),
        }
    }
}

/// Reads `KIND: { NAME: { attributes } }` blocks of one section.
fn blocks(
    node: Option<&Node>,
    section: &Section,
    registry: &Registry,
    checker: &mut check::Checker<'_>,
) -> Vec<ResourceSpec> {
    let Some(node) = node else { return vec![] };
    let Some(kinds) = node.as_map() else {
        let message = format!("`{}` must be a mapping of kinds to named blocks", section.name());
        checker.problems.at(node.span, message, node.type_name());
        return vec![];
    };
    let mut out = Vec::new();
    for (kind_key, named) in kinds {
        let Some((kind, schema)) = section.kind(registry, &kind_key.name) else {
            let names = section.names(registry);
            let message = format!("unknown {} `{}`", section.what(), kind_key.name);
            let mut p = Problem::at(kind_key.span, message, format!("not a {}", section.what()));
            p = match did_you_mean(&kind_key.name, names.iter().copied()) {
                Some(near) => p.with_help(format!("did you mean `{near}`?")),
                None => p.with_help(format!("known kinds: {}", names.join(", "))),
            };
            checker.problems.push(p);
            continue;
        };
        let Some(named) = named.as_map() else {
            let message = format!("`{}` must be a mapping of names to attributes", kind_key.name);
            checker.problems.at(named.span, message, named.type_name());
            continue;
        };
        for (name_key, body) in named {
            if !is_ident(&name_key.name) {
                let message = format!("`{}` is not a valid name", name_key.name);
                checker.problems.at(name_key.span, message, "use letters, digits, _ and -");
                continue;
            }
            let addr = ResourceAddr::new(kind, &name_key.name);
            let Some(fields) = body.as_map() else {
                checker.problems.at(body.span, format!("{addr} must be a mapping of attributes"), body.type_name());
                continue;
            };
            let (meta, attrs): (Vec<_>, Vec<_>) =
                fields.iter().cloned().partition(|(k, _)| META_FIELDS.contains(&k.name.as_str()));
            let attr_spans = attrs.iter().map(|(k, _)| (k.name.clone(), k.span)).collect();
            let before = checker.refs.len();
            let attrs = checker.block(&addr.to_string(), schema.attributes, &attrs, name_key.span);
            let refs = checker.refs.split_off(before);
            let depends_on = depends_on(&addr, &meta, checker.problems);
            let import_id = import_id(&addr, &meta, checker);
            let sensitive = fields
                .iter()
                .filter(|(k, v)| !META_FIELDS.contains(&k.name.as_str()) && uses_sensitive(v, checker.variables))
                .map(|(k, _)| k.name.clone())
                .collect();
            let Lifecycle { prevent_destroy, retain_on_destroy } = lifecycle(&addr, &meta, checker.problems);
            let waivers = waivers(&addr, &meta, checker.problems);
            let staged = fields
                .iter()
                .filter(|(k, v)| !META_FIELDS.contains(&k.name.as_str()) && uses_stage(v))
                .map(|(k, _)| k.name.clone())
                .collect();
            out.push(ResourceSpec {
                addr,
                span: name_key.span,
                attrs,
                attr_spans,
                refs,
                depends_on,
                import_id,
                sensitive,
                prevent_destroy,
                retain_on_destroy,
                waivers,
                staged,
                dir: PathBuf::new(),
            });
        }
    }
    out
}

/// What usually causes a YAML syntax error in a spec, when the text around it says so.
fn syntax_hint(text: &str, offset: usize, message: &str) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset.min(text.len())..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text.get(line_start..line_end).unwrap_or_default();
    if message.contains("flow mapping") && line.contains("${") {
        return Some(
            "inside `{ ... }` a `${...}` must be quoted, or YAML reads its braces as a mapping: `name: \"${var.X}\"`"
                .into(),
        );
    }
    if message.contains("flow sequence") || message.contains("flow mapping") {
        let (open, close) = if message.contains("sequence") { ('[', ']') } else { ('{', '}') };
        // The last bracket opened before the error and not closed since.
        let mut depth = 0i32;
        for (i, c) in before.char_indices().rev() {
            if c == close {
                depth += 1;
            } else if c == open {
                if depth == 0 {
                    let line_no = before[..i].matches('\n').count() + 1;
                    return Some(format!(
                        "the `{open}` on line {line_no} is not closed: end it with `{close}` (a flow list or mapping may span lines, but its items need commas)"
                    ));
                }
                depth -= 1;
            }
        }
    }
    None
}

/// The resources' dependency graph: an edge for each reference and `depends_on`.
pub fn dependency_graph(resources: &[ResourceSpec]) -> crate::graph::DependencyGraph {
    crate::graph::DependencyGraph::new(resources.iter().map(|r| (&r.addr, r.dependencies())))
}

/// The diagnostic for one dependency cycle, labelling each reference that closes the loop.
fn cycle_problem(path: &[ResourceAddr], resources: &[ResourceSpec]) -> Problem {
    let by_addr: BTreeMap<&ResourceAddr, &ResourceSpec> = resources.iter().map(|r| (&r.addr, r)).collect();
    let names: Vec<String> = path.iter().map(ToString::to_string).collect();
    let first = by_addr[&path[0]];
    let mut p = Problem {
        message: format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
        labels: vec![],
        help: Some(
            "break the cycle by moving one of these references into a resource of its own (e.g. a bucket policy)"
                .into(),
        ),
    };
    for (i, from) in path.iter().enumerate() {
        let to = &path[(i + 1) % path.len()];
        let from_spec = by_addr[from];
        let span = from_spec
            .refs
            .iter()
            .find(|r| &r.target == to)
            .map(|r| r.span)
            .or_else(|| from_spec.depends_on.iter().find(|(a, _)| a == to).map(|(_, s)| *s))
            .unwrap_or(first.span);
        p = p.with_label(span, format!("{} depends on {to}", from_spec.addr));
    }
    p
}

/// A resource's `lifecycle` settings.
#[derive(Default)]
struct Lifecycle {
    prevent_destroy: bool,
    retain_on_destroy: Option<bool>,
}

/// `lifecycle: { prevent_destroy: BOOL, retain_on_destroy: BOOL }`.
fn lifecycle(addr: &ResourceAddr, meta: &[(node::Key, Node)], problems: &mut Problems) -> Lifecycle {
    let mut out = Lifecycle::default();
    let Some((_, node)) = meta.iter().find(|(k, _)| k.name == "lifecycle") else { return out };
    let Some(fields) = node.as_map() else {
        problems.at(node.span, format!("lifecycle of {addr} must be a mapping"), node.type_name());
        return out;
    };
    for (k, v) in fields {
        match (k.name.as_str(), &v.value) {
            ("prevent_destroy", NodeValue::Bool(b)) => out.prevent_destroy = *b,
            ("retain_on_destroy", NodeValue::Bool(b)) => out.retain_on_destroy = Some(*b),
            (setting @ ("prevent_destroy" | "retain_on_destroy"), _) => {
                problems.at(v.span, format!("{setting} must be true or false"), v.type_name())
            }
            (other, _) => problems.push(
                Problem::at(k.span, format!("unknown lifecycle setting `{other}`"), "not a lifecycle setting")
                    .with_help("lifecycle takes prevent_destroy and retain_on_destroy"),
            ),
        }
    }
    out
}

/// `drift: { ignore: [PATTERN, ...] }`.
fn drift_ignore(node: Option<&Node>, problems: &mut Problems) -> Vec<String> {
    let Some(node) = node else { return vec![] };
    let Some(fields) = node.as_map() else {
        problems.at(node.span, "`drift` must be a mapping: `drift: { ignore: [PATTERN] }`", node.type_name());
        return vec![];
    };
    let mut out = Vec::new();
    for (k, v) in fields {
        if k.name != "ignore" {
            problems.push(
                Problem::at(k.span, format!("unknown drift setting `{}`", k.name), "not a drift setting")
                    .with_help("drift takes `ignore: [PATTERN]`"),
            );
            continue;
        }
        let NodeValue::List(items) = &v.value else {
            problems.at(v.span, "drift.ignore must be a list of patterns", v.type_name());
            continue;
        };
        for item in items {
            match item.as_str() {
                Some(p) if !p.trim().is_empty() => out.push(p.to_string()),
                _ => problems.at(item.span, "a drift.ignore pattern must be a non-empty string", item.type_name()),
            }
        }
    }
    out
}

/// `state: { encryption: kms:KEY }`: the key, checked in form only (KMS is asked when the
/// state is read or written).
fn state_settings(node: Option<&Node>, problems: &mut Problems) -> Option<String> {
    let node = node?;
    let Some(fields) = node.as_map() else {
        problems.at(node.span, "`state` must be a mapping: `state: { encryption: kms:KEY }`", node.type_name());
        return None;
    };
    let mut key = None;
    for (k, v) in fields {
        if k.name != "encryption" {
            problems.push(
                Problem::at(k.span, format!("unknown state setting `{}`", k.name), "not a state setting")
                    .with_help("state takes `encryption: kms:KEY`; its location is --state (or CRUDDUR_STATE)"),
            );
            continue;
        }
        match v.as_str().map(crate::state::encryption::parse_setting) {
            Some(Ok(k)) => key = Some(k),
            Some(Err(e)) => problems.at(v.span, e, "this setting"),
            None => problems.at(v.span, "state.encryption must be a string: kms:KEY", v.type_name()),
        }
    }
    key
}

/// `waivers: { RULE: "reason" }`: each a built-in policy rule, each with a reason to show.
fn waivers(addr: &ResourceAddr, meta: &[(node::Key, Node)], problems: &mut Problems) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some((_, node)) = meta.iter().find(|(k, _)| k.name == "waivers") else { return out };
    let Some(fields) = node.as_map() else {
        problems.at(node.span, format!("waivers of {addr} must be a mapping of rule to reason"), node.type_name());
        return out;
    };
    let rules = crate::permissions::rules::RULES;
    for (k, v) in fields {
        if !rules.iter().any(|r| r.id == k.name) {
            let ids: Vec<&str> = rules.iter().map(|r| r.id).collect();
            problems.push(
                Problem::at(k.span, format!("`{}` is not a policy rule", k.name), "not a rule")
                    .with_help(format!("the rules are {}", ids.join(", "))),
            );
            continue;
        }
        match v.as_str().map(str::trim) {
            Some(reason) if !reason.is_empty() => {
                out.insert(k.name.clone(), reason.to_string());
            }
            _ => problems.at(v.span, format!("waiving {} needs a reason", k.name), "no reason given"),
        }
    }
    out
}

/// True when a value interpolates a variable declared sensitive, anywhere inside it.
fn uses_sensitive(node: &Node, variables: &[Variable]) -> bool {
    match &node.value {
        NodeValue::Str(s) => expr::parse_template(s).is_ok_and(|parts| {
            parts.iter().any(|p| {
                matches!(p, expr::Part::Ref(expr::RefTarget::Var(name), _)
                    if variables.iter().any(|v| &v.name == name && v.sensitive))
            })
        }),
        NodeValue::List(items) => items.iter().any(|n| uses_sensitive(n, variables)),
        NodeValue::Map(entries) => entries.iter().any(|(_, n)| uses_sensitive(n, variables)),
        _ => false,
    }
}

/// Whether a value uses `${stage}` anywhere.
fn uses_stage(node: &Node) -> bool {
    match &node.value {
        NodeValue::Str(s) => expr::parse_template(s)
            .is_ok_and(|parts| parts.iter().any(|p| matches!(p, expr::Part::Ref(expr::RefTarget::Stage, _)))),
        NodeValue::List(items) => items.iter().any(uses_stage),
        NodeValue::Map(entries) => entries.iter().any(|(_, n)| uses_stage(n)),
        _ => false,
    }
}

/// Every name the spec gives an object, checked against the limits AWS puts on names of its
/// kind (each kind's schema says which attribute names the object, and how): reported at
/// the attribute, with the value and the limit, before any AWS call.
fn check_names(resources: &[ResourceSpec], registry: &Registry, stage: Option<&str>, problems: &mut Problems) {
    for r in resources {
        let Some(kind) = registry.get(&r.addr.kind) else { continue };
        let declared = r.declared();
        for attr in kind.schema().attributes.iter().filter(|a| a.name_rule.is_some()) {
            let (Some(rule), Some(Some(value))) = (attr.name_rule, declared.values.get(attr.name)) else { continue };
            let names: Vec<&str> = match value {
                serde_json::Value::String(s) => vec![s.as_str()],
                serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
                _ => continue,
            };
            // A part known only later (a variable `build` leaves unset) is checked when known.
            for name in names.into_iter().filter(|n| !n.contains(crate::value::UNKNOWN)) {
                let Err(why) = rule.check(name) else { continue };
                let shown: String = if name.chars().count() > 100 {
                    format!("{}...", name.chars().take(60).collect::<String>())
                } else {
                    name.to_string()
                };
                let span = r.attr_spans.get(attr.name).copied().unwrap_or(r.span);
                let mut p = Problem::at(
                    span,
                    format!("{}: `{}` is `{shown}`, which AWS refuses: {why}", r.addr, attr.name),
                    "this name",
                );
                p = match stage.filter(|_| r.staged.contains(attr.name)) {
                    Some(stage) => p.with_help(format!(
                        "with the stage `{stage}` applied; {} allows {}: choose a shorter stage name or shorten the name",
                        r.addr.kind,
                        rule.describe()
                    )),
                    None => p.with_help(format!("{} allows {}", r.addr.kind, rule.describe())),
                };
                problems.push(p);
            }
        }
    }
}

/// In a stage, every resource whose kind names its objects (its identity in AWS) must be named
/// apart from the main stack's: by `${stage}` in an identity attribute, or by a reference to
/// a resource of the stage (its parent). One that is not would be the main stack's object.
fn check_stage_names(
    resources: &[ResourceSpec],
    lookups: &[ResourceSpec],
    registry: &Registry,
    stage: &str,
    problems: &mut Problems,
) {
    for r in resources {
        let Some(kind) = registry.get(&r.addr.kind) else { continue };
        let identity: Vec<&str> = kind.schema().identity().map(|a| a.name).collect();
        if identity.is_empty() {
            continue;
        }
        let declared = r.declared();
        let apart = identity.iter().any(|name| {
            r.staged.contains(*name)
                || declared
                    .references
                    .get(*name)
                    .is_some_and(|refs| refs.iter().any(|(target, _)| !lookups.iter().any(|l| &l.addr == target)))
        });
        if apart {
            continue;
        }
        let span = identity.iter().find_map(|n| r.attr_spans.get(*n)).copied().unwrap_or(r.span);
        problems.push(
            Problem::at(
                span,
                format!(
                    "{}: in stage `{stage}` it would be the main stack's own object: its {} does not change with the stage",
                    r.addr,
                    identity.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and ")
                ),
                "the same in every stage",
            )
            .with_help("put `${stage}` in the name (empty for the main stack, `-NAME` in a stage)"),
        );
    }
}

/// `import_id: ID` (variables allowed): the id of an existing resource to adopt.
fn import_id(addr: &ResourceAddr, meta: &[(node::Key, Node)], checker: &mut check::Checker<'_>) -> Option<String> {
    let (_, node) = meta.iter().find(|(k, _)| k.name == "import_id")?;
    match node.as_str().map(|s| checker.template(s, node)) {
        Some(Some(Expr::Literal(serde_json::Value::String(id)))) => Some(id),
        Some(None) => None,
        _ => {
            let message = format!("import_id of {addr} must be a string (variables allowed, no resource references)");
            checker.problems.at(node.span, message, node.type_name());
            None
        }
    }
}

fn depends_on(
    addr: &ResourceAddr,
    meta: &[(node::Key, Node)],
    problems: &mut Problems,
) -> Vec<(ResourceAddr, SourceSpan)> {
    let mut out = Vec::new();
    for (_, node) in meta.iter().filter(|(k, _)| k.name == "depends_on") {
        let NodeValue::List(items) = &node.value else {
            problems.at(
                node.span,
                format!("depends_on of {addr} must be a list of resource addresses"),
                node.type_name(),
            );
            continue;
        };
        for item in items {
            match item.as_str().map(str::parse::<ResourceAddr>) {
                Some(Ok(target)) => out.push((target, item.span)),
                Some(Err(e)) => problems.at(item.span, e.to_string(), "not KIND.NAME"),
                None => problems.at(
                    item.span,
                    "depends_on entries must be strings like s3_bucket.uploads",
                    item.type_name(),
                ),
            }
        }
    }
    out
}

const OUTPUT_FIELDS: &[&str] = &["value", "description", "sensitive", "env"];

/// A name a dotenv file and a shell accept.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn outputs(node: Option<&Node>, checker: &mut check::Checker<'_>) -> Vec<OutputSpec> {
    let Some(node) = node else { return vec![] };
    let Some(entries) = node.as_map() else {
        checker.problems.at(node.span, "`outputs` must be a mapping of names to values", node.type_name());
        return vec![];
    };
    let mut out = Vec::new();
    for (key, decl) in entries {
        let (value_node, description, sensitive, env) = match &decl.value {
            NodeValue::Map(fields) => {
                for (k, _) in fields {
                    if !OUTPUT_FIELDS.contains(&k.name.as_str()) {
                        let help = match did_you_mean(&k.name, OUTPUT_FIELDS.iter().copied()) {
                            Some(close) => format!("did you mean `{close}`?"),
                            None => format!("an output takes {}", OUTPUT_FIELDS.join(", ")),
                        };
                        checker.problems.push(
                            Problem::at(
                                k.span,
                                format!("unknown output setting `{}`", k.name),
                                "not an output setting",
                            )
                            .with_help(help),
                        );
                    }
                }
                let desc = decl.get("description").and_then(Node::as_str).map(str::to_string);
                let sensitive = matches!(decl.get("sensitive").map(|n| &n.value), Some(NodeValue::Bool(true)));
                let env = decl.get("env").and_then(|n| match n.as_str() {
                    Some(name) if is_env_name(name) => Some(name.to_string()),
                    _ => {
                        checker.problems.push(
                            Problem::at(
                                n.span,
                                format!("output `{}`: `env` must be a variable name", key.name),
                                "here",
                            )
                            .with_help("letters, digits and _, not starting with a digit (e.g. REACT_APP_API_URL)"),
                        );
                        None
                    }
                });
                match decl.get("value") {
                    Some(v) => (v, desc, sensitive, env),
                    None => {
                        checker.problems.at(decl.span, format!("output `{}` has no `value`", key.name), "here");
                        continue;
                    }
                }
            }
            _ => (decl, None, false, None),
        };
        let value = match &value_node.value {
            NodeValue::Str(s) => checker.template(s, value_node),
            _ => {
                checker.problems.at(
                    value_node.span,
                    format!("output `{}` must be a string with references", key.name),
                    value_node.type_name(),
                );
                None
            }
        };
        let sensitive = sensitive || uses_sensitive(value_node, checker.variables);
        if let Some(value) = value {
            out.push(OutputSpec { name: key.name.clone(), value, description, sensitive, env });
        }
    }
    out
}

/// Every reference must name a declared resource and an attribute its kind has.
fn check_references(
    resources: &[ResourceSpec],
    lookups: &[ResourceSpec],
    output_refs: &[SpannedRef],
    registry: &Registry,
    problems: &mut Problems,
) {
    let declared: BTreeMap<&ResourceAddr, &ResourceSpec> =
        resources.iter().chain(lookups).map(|r| (&r.addr, r)).collect();
    let all_refs = resources.iter().flat_map(|r| r.refs.iter()).chain(output_refs);
    for r in all_refs {
        if !declared.contains_key(&r.target) {
            let mut p =
                Problem::at(r.span, format!("reference to undeclared resource `{}`", r.target), "no such resource");
            let names: Vec<String> = declared.keys().map(|a| a.to_string()).collect();
            if let Some(near) = did_you_mean(&r.target.to_string(), names.iter().map(String::as_str)) {
                p = p.with_help(format!("did you mean `{near}`?"));
            }
            problems.push(p);
            continue;
        }
        let Some(schema) = registry.schema(&r.target.kind) else {
            continue;
        };
        if schema.attribute(&r.attr).is_none() {
            let mut p = Problem::at(r.span, format!("{} has no attribute `{}`", r.target, r.attr), "unknown attribute");
            if let Some(near) = did_you_mean(&r.attr, schema.attributes.iter().map(|a| a.name)) {
                p = p.with_help(format!("did you mean `{near}`?"));
            }
            problems.push(p);
        }
    }
    for res in resources {
        for (target, span) in &res.depends_on {
            if !declared.contains_key(target) {
                problems.at(
                    *span,
                    format!("{} depends on undeclared resource `{target}`", res.addr),
                    "no such resource",
                );
            }
        }
    }
}
