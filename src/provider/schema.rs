//! The attributes each resource kind accepts: their types, which are required, which force a
//! replacement, and which AWS computes. Validation, diffing and plan rendering all read it.

/// The type of an attribute value as written in a spec.
#[derive(Debug)]
pub enum AttrType {
    String,
    Bool,
    Int,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    List(&'static AttrType),
    /// String keys, values of one type (tags).
    Map(&'static AttrType),
    /// A nested block with its own attributes.
    Object(&'static [Attribute]),
    /// An IAM-style JSON document, written as a YAML mapping or as a JSON string; compared as
    /// parsed, normalised JSON.
    Policy,
}

impl AttrType {
    pub fn describe(&self) -> String {
        match self {
            AttrType::String => "a string".into(),
            AttrType::Bool => "a boolean".into(),
            AttrType::Int => "an integer".into(),
            AttrType::Enum(values) => format!("one of {}", values.join(", ")),
            AttrType::List(item) => format!("a list of {}", item.describe_plural()),
            AttrType::Map(item) => format!("a mapping of names to {}", item.describe_plural()),
            AttrType::Object(_) => "a mapping".into(),
            AttrType::Policy => "a policy document (a mapping or a JSON string)".into(),
        }
    }

    fn describe_plural(&self) -> String {
        match self {
            AttrType::String => "strings".into(),
            AttrType::Bool => "booleans".into(),
            AttrType::Int => "integers".into(),
            AttrType::Object(_) => "mappings".into(),
            other => other.describe(),
        }
    }
}

/// One attribute of a resource kind or of a nested block.
#[derive(Debug)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub required: bool,
    /// Changing it cannot be done in place: the resource is replaced.
    pub force_new: bool,
    /// Set by AWS, never by the spec; shown as `(known after apply)` until created.
    pub computed: bool,
    /// Not written in the spec but derived from it by the kind (a code hash from an artifact),
    /// and diffed like a spec value.
    pub derived: bool,
    /// An engine setting AWS does not hold (`force_destroy`, `allow_overwrite`, a source
    /// path): never read from AWS, so it cannot drift and needs no read to be known.
    pub local: bool,
    /// Part of what names the object in AWS (a bucket's name; a route's API and route key):
    /// two resources of a kind with the same identity are the same AWS object, so a rename in
    /// the spec is found as a move.
    pub identity: bool,
    /// The limits AWS puts on the name this attribute gives the object (each element, for a
    /// list): checked when the spec loads, with the stage applied.
    pub name_rule: Option<super::names::NameRule>,
    pub description: &'static str,
}

impl Attribute {
    /// An attribute with every flag off.
    const fn plain(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            required: false,
            force_new: false,
            computed: false,
            derived: false,
            local: false,
            identity: false,
            name_rule: None,
            description,
        }
    }
    pub const fn optional(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Self::plain(name, ty, description)
    }
    pub const fn required(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Self { required: true, ..Self::plain(name, ty, description) }
    }
    pub const fn computed(name: &'static str, description: &'static str) -> Self {
        Self { computed: true, ..Self::plain(name, AttrType::String, description) }
    }
    pub const fn derived(name: &'static str, description: &'static str) -> Self {
        Self { derived: true, ..Self::plain(name, AttrType::String, description) }
    }
    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }
    pub const fn local(mut self) -> Self {
        self.local = true;
        self
    }
    pub const fn identity(mut self) -> Self {
        self.identity = true;
        self
    }
    /// The attribute names the object in AWS, within `rule`'s limits.
    pub const fn named(mut self, rule: super::names::NameRule) -> Self {
        self.name_rule = Some(rule);
        self
    }
}

/// All attributes of a resource kind.
#[derive(Debug)]
pub struct ResourceSchema {
    pub attributes: &'static [Attribute],
}

impl ResourceSchema {
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Attributes a spec may set.
    pub fn settable(&self) -> impl Iterator<Item = &'static Attribute> {
        self.attributes.iter().filter(|a| !a.computed && !a.derived)
    }

    /// Settable attributes AWS holds (the ones a read can tell).
    pub fn held_by_aws(&self) -> impl Iterator<Item = &'static Attribute> {
        self.settable().filter(|a| !a.local)
    }

    /// The attributes that together name an object in AWS; none for a kind AWS lets have
    /// twins (an HTTP API, an integration, a distribution).
    pub fn identity(&self) -> impl Iterator<Item = &'static Attribute> {
        self.attributes.iter().filter(|a| a.identity)
    }

    /// Attributes compared between the spec and AWS: the settable and the derived ones.
    pub fn compared(&self) -> impl Iterator<Item = &'static Attribute> {
        self.attributes.iter().filter(|a| !a.computed)
    }
}

/// The closest name in `candidates` to a misspelled `name`, if one is close enough to suggest.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
