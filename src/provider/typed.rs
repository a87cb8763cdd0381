//! The typed side of a resource kind: each AWS kind reads its attributes into its own structs
//! ([`Kind::Spec`], [`Kind::Computed`]) and [`Typed`] converts between those and the engine's
//! JSON attribute maps.
//!
//! *Guarantees*: a kind never sees a missing required value or a value of the wrong type (the
//! conversion fails with the attribute named); an attribute name is spelled once in the kind,
//! as a field, and a test keeps the fields equal to the schema table.

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Lifecycle;
use super::facets::{Access, Annotate, Annotation, Artifact, ChangeView, Inventory, Operations};
use super::normalize;
use super::{AttrType, Declared, DeclaredAs, Deleted, Finding};
use super::{
    Aws, Created, FindReason, Found, Managed, ModelFields, Owner, ProviderError, ResourceKind, ResourceSchema,
};
use super::{HasPlan, planned};
use crate::addr::ResourceAddr;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::{Grant, PolicyKind};
use crate::value::{Attrs, UNKNOWN};

/// One kind of AWS resource, in its own types.
///
/// *Contract*: `create` makes exactly one creating call and returns the id; settings the
/// creating call cannot carry are listed in [`Created::deferred`] and applied by `update`;
/// `update` and `delete` are idempotent as a whole (the engine may run them again after any
/// failure), and each step of a delete treats "already gone" as done.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    /// The kind's name in specs and addresses, e.g. `s3_bucket`.
    const NAME: &'static str;
    /// Every settable and derived attribute, one field each (`#[derive(Fields)]` gives the enum
    /// `update` matches on).
    /// `#[derive(Planned)]` gives its plan-time twin ([`PlanOf`]), which normalisation, grants,
    /// findings, deployer ARNs, annotations and checks read.
    type Spec: Serialize + DeserializeOwned + Send + Sync + Fields + HasPlan;
    /// Every attribute AWS computes, one field each.
    type Computed: Serialize + DeserializeOwned + Send + Sync;

    fn schema(&self) -> &'static ResourceSchema;

    /// Rules beyond the schema's types (case, order, defaults AWS adds), on the spec as a plan
    /// holds it (values may be unknown) or as AWS reports it; the schema's own normalisation
    /// has already run.
    fn normalize(&self, _spec: &mut PlanOf<Self>) {}

    /// The resource as AWS reports it, or `None` if it is gone. Attributes not `managed` may be
    /// left `None`; `prior` is what was last recorded, as far as it still reads as the kind's types.
    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        prior: &Prior<Self::Spec, Self::Computed>,
    ) -> Result<Option<(Self::Spec, Self::Computed)>, ProviderError>;

    async fn create(
        &self,
        aws: &Aws,
        spec: &Self::Spec,
        owner: &Owner,
    ) -> Result<Created<Self::Computed, Self::Spec>, ProviderError>;

    /// Changes `changed` in place; what AWS computed anew, if anything. `changed` names fields
    /// of the spec: a match on them is exhaustive, so a new attribute does not compile until
    /// `update` says what it does with it (an attribute that forces replacement is never
    /// passed: [`cannot_update`] answers it).
    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Self::Spec,
        changed: &[<Self::Spec as Fields>::Field],
        owner: &Owner,
    ) -> Result<Option<Self::Computed>, ProviderError>;

    /// Waits until the resource can be used by what depends on it.
    async fn wait_ready(&self, _aws: &Aws, _id: &str, _spec: &Self::Spec) -> Result<(), ProviderError> {
        Ok(())
    }

    /// See [`ResourceKind::validate`]: the resource in the kind's plan model, and every
    /// declared resource (of any kind) it may be checked against.
    fn validate(&self, _this: &DeclaredAs<'_, PlanOf<Self>>, _all: &[Declared]) -> Vec<Finding> {
        Vec::new()
    }

    /// See [`ResourceKind::lifecycle`].
    const LIFECYCLE: Lifecycle = Lifecycle::DEFAULT;

    async fn find(
        &self,
        aws: &Aws,
        spec: &Self::Spec,
        owner: &Owner,
        reason: FindReason,
    ) -> Result<Option<Found>, ProviderError>;

    /// Who its resources let do what, and what the deployer needs (see [`Access`]), read from
    /// its plan model.
    fn access(&self) -> Option<&dyn Access<PlanOf<Self>>> {
        None
    }

    /// What closed-world drift lists beside what the state manages (see [`Inventory`]).
    fn inventory(&self) -> Option<&dyn Inventory> {
        None
    }

    /// What is built on this machine before the kind's values are known (see [`Artifact`]).
    fn artifact(&self) -> Option<&dyn Artifact> {
        None
    }

    /// Commands beyond plan and apply (see [`Operations`]).
    fn operations(&self) -> Option<&dyn Operations> {
        None
    }

    /// What a plan says about a change beyond its attributes (see [`Annotate`]), from its
    /// models.
    fn annotate(&self) -> Option<&dyn Annotate<PlanOf<Self>, Live<Self>>> {
        None
    }

    /// Deletes the resource; `prior` is what was last recorded of it (its spec and computed
    /// attributes, each if it still reads as one).
    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        prior: &Prior<Self::Spec, Self::Computed>,
    ) -> Result<Deleted, ProviderError>;
}

/// A kind's spec as a plan holds it (every value a [`super::Known`]).
pub type PlanOf<K> = <<K as Kind>::Spec as HasPlan>::Plan;

/// A resource as it reads now: its spec and computed models, each if it reads as one.
pub type Live<K> = Prior<<K as Kind>::Spec, <K as Kind>::Computed>;

/// What was last recorded of a resource (nothing, for one being adopted or imported), or what
/// a read gave ([`Live`]): its spec and computed models, each if it still reads as one.
pub struct Prior<S, C> {
    pub spec: Option<S>,
    pub computed: Option<C>,
}

impl<S, C> Prior<S, C> {
    /// The last recorded spec.
    pub fn spec(&self) -> Option<&S> {
        self.spec.as_ref()
    }
}

/// A typed model's attributes as an enum: `#[derive(Fields)]` (crates/model-derive) writes it.
pub trait Fields {
    type Field: Copy + std::fmt::Debug + PartialEq + Send + Sync + 'static;

    /// The field called `name` in specs and plans.
    fn field(name: &str) -> Option<Self::Field>;

    /// Every field's name, in order.
    fn names() -> Vec<&'static str>;
}

/// For kinds AWS computes nothing for.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoComputed {}

/// A [`Kind`] as the engine's [`ResourceKind`].
pub struct Typed<K>(pub K);

impl<K: Kind> Typed<K> {
    pub fn boxed(kind: K) -> Box<dyn ResourceKind> {
        Box::new(Typed(kind))
    }
}

/// The attributes as the kind's type, or an error naming what does not fit.
pub(crate) fn decode<T: DeserializeOwned>(kind: &str, attrs: &Attrs) -> Result<T, ProviderError> {
    serde_json::from_value(Value::Object(attrs.clone())).map_err(|e| ProviderError::invalid_attributes(kind, e))
}

/// A typed value as attributes (`None` fields left out).
pub(crate) fn encode<T: Serialize>(kind: &str, value: &T) -> Result<Attrs, ProviderError> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Attrs::new()),
        Ok(other) => Err(ProviderError::invalid_attributes(kind, format!("not a mapping: {other}"))),
        Err(e) => Err(ProviderError::invalid_attributes(kind, e)),
    }
}

impl<K: Kind> Typed<K> {
    /// The recorded attributes as the kind's spec. They hold computed ones too: only the spec's
    /// are kept. A prior from an older schema may not fit any more; it is only a fallback.
    fn prior_spec(&self, recorded: &Attrs) -> Option<K::Spec> {
        let mut prior = recorded.clone();
        let schema = self.0.schema();
        prior.retain(|name, _| schema.compared().any(|a| a.name == name));
        decode(K::NAME, &prior).ok()
    }

    /// The recorded computed attributes as the kind's type, if they still read as it.
    fn prior_computed(&self, recorded: &Attrs) -> Option<K::Computed> {
        let mut prior = recorded.clone();
        let schema = self.0.schema();
        prior.retain(|name, _| schema.attribute(name).is_some_and(|a| a.computed));
        decode(K::NAME, &prior).ok()
    }
}

#[async_trait]
impl<K: Kind> ResourceKind for Typed<K> {
    fn kind(&self) -> &'static str {
        K::NAME
    }

    fn schema(&self) -> &'static ResourceSchema {
        self.0.schema()
    }

    fn model(&self) -> ModelFields {
        ModelFields {
            spec: serde_aux::serde_introspection::serde_introspect::<K::Spec>(),
            computed: serde_aux::serde_introspection::serde_introspect::<K::Computed>(),
            fields: K::Spec::names(),
        }
    }

    fn normalize(&self, attrs: &mut Attrs) {
        normalize::by_schema(self.0.schema(), attrs);
        // Values that do not read as the kind's model (a spec that validation refuses, a state
        // of an older schema) keep the schema's normalisation only.
        let Ok(mut spec) = decode::<PlanOf<K>>(K::NAME, attrs) else { return };
        self.0.normalize(&mut spec);
        // The attributes are the model's from here on: a block's defaults are filled in.
        let _ = planned::write_back(K::NAME, &spec, &K::Spec::names(), attrs);
    }

    fn validate(&self, this: &Declared, all: &[Declared]) -> Vec<Finding> {
        let partial: Attrs = this.partial.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (mut out, unreadable) = match decode::<PlanOf<K>>(K::NAME, &partial) {
            Ok(spec) => (self.0.validate(&DeclaredAs { spec, declared: this }, all), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        // AWS's integers are 32-bit and none of ours may be negative (a size, a timeout, a TTL):
        // where the kind gives no narrower range of its own, that one applies.
        for attr in self.0.schema().attributes {
            let ranged = out.iter().any(|f| f.attr.as_deref() == Some(attr.name));
            if let (false, Some(value)) = (ranged, this.partial.get(attr.name)) {
                let mut bad = Vec::new();
                ints_out_of_range(&attr.ty, value, attr.name.to_string(), &mut bad);
                out.extend(bad.into_iter().map(|(path, n)| {
                    let max = i32::MAX;
                    Finding::at(attr.name, format!("{path} of {} is {n}: AWS takes 0 to {max}", this.addr))
                }));
            }
        }
        // Values the schema accepts but the kind's model cannot hold: said, never skipped.
        if let (Some(e), true) = (unreadable, out.is_empty()) {
            out.push(Finding::on_resource(format!("{}: {}", this.addr, e.message)));
        }
        out
    }

    fn lifecycle(&self) -> Lifecycle {
        K::LIFECYCLE
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let prior = Prior { spec: self.prior_spec(prior), computed: self.prior_computed(prior) };
        let Some((spec, computed)) = self.0.read(aws, id, managed, &prior).await? else { return Ok(None) };
        let mut attrs = encode(K::NAME, &spec)?;
        attrs.extend(encode(K::NAME, &computed)?);
        Ok(Some(attrs))
    }

    async fn create(&self, aws: &Aws, desired: &Attrs, owner: &Owner) -> Result<Created, ProviderError> {
        let spec: K::Spec = decode(K::NAME, desired)?;
        let created = self.0.create(aws, &spec, owner).await?;
        let computed = encode(K::NAME, &created.computed)?;
        let observed = created.observed.as_ref().map(|live| encode(K::NAME, live)).transpose()?;
        let Created { id, deferred, deferred_always, .. } = created;
        Ok(Created { id, computed, deferred, deferred_always, observed })
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        desired: &Attrs,
        changed: &[&str],
        owner: &Owner,
    ) -> Result<Attrs, ProviderError> {
        let spec: K::Spec = decode(K::NAME, desired)?;
        let changed = changed
            .iter()
            .map(|name| K::Spec::field(name).ok_or_else(|| cannot_update(K::NAME, name)))
            .collect::<Result<Vec<_>, _>>()?;
        match self.0.update(aws, id, &spec, &changed, owner).await? {
            Some(computed) => encode(K::NAME, &computed),
            None => Ok(Attrs::new()),
        }
    }

    async fn wait_ready(&self, aws: &Aws, id: &str, desired: &Attrs) -> Result<(), ProviderError> {
        // Called with the values to apply, or with a recorded entry (computed ones included).
        let mut desired = desired.clone();
        let schema = self.0.schema();
        desired.retain(|name, _| schema.compared().any(|a| a.name == name));
        let spec: K::Spec = decode(K::NAME, &desired)?;
        self.0.wait_ready(aws, id, &spec).await
    }

    async fn find(
        &self,
        aws: &Aws,
        desired: &Attrs,
        owner: &Owner,
        reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let spec: K::Spec = decode(K::NAME, desired)?;
        self.0.find(aws, &spec, owner, reason).await
    }

    fn access(&self) -> Option<&dyn Access> {
        self.0.access().map(|_| self as &dyn Access)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        self.0.inventory()
    }

    fn artifact(&self) -> Option<&dyn Artifact> {
        self.0.artifact()
    }

    fn operations(&self) -> Option<&dyn Operations> {
        self.0.operations()
    }

    fn annotate(&self) -> Option<&dyn Annotate> {
        self.0.annotate().map(|_| self as &dyn Annotate)
    }

    async fn delete(&self, aws: &Aws, id: &str, prior: &Attrs) -> Result<Deleted, ProviderError> {
        let prior = Prior { spec: self.prior_spec(prior), computed: self.prior_computed(prior) };
        self.0.delete(aws, id, &prior).await
    }
}

/// A finding if the attribute is set to an integer outside `range` (AWS's limits): the spec is
/// refused before any call, never truncated to fit.
/// Every integer in `value` (of type `ty`, nested blocks included) outside 0..=2^31-1, with
/// its path.
fn ints_out_of_range(ty: &AttrType, value: &Value, path: String, out: &mut Vec<(String, i64)>) {
    match (ty, value) {
        (AttrType::Int, Value::Number(n)) => {
            if let Some(n) = n.as_i64().filter(|n| !(0..=i64::from(i32::MAX)).contains(n)) {
                out.push((path, n));
            }
        }
        (AttrType::List(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                ints_out_of_range(item, v, format!("{path}[{i}]"), out);
            }
        }
        (AttrType::Map(item), Value::Object(entries)) => {
            for (k, v) in entries {
                ints_out_of_range(item, v, format!("{path}.{k}"), out);
            }
        }
        (AttrType::Object(fields), Value::Object(entries)) => {
            for f in fields.iter() {
                if let Some(v) = entries.get(f.name) {
                    ints_out_of_range(&f.ty, v, format!("{path}.{}", f.name), out);
                }
            }
        }
        _ => {}
    }
}

pub fn int_in_range<N: Copy + Into<i64>>(
    addr: &ResourceAddr,
    attr: &str,
    value: &Option<super::Known<N>>,
    range: std::ops::RangeInclusive<i64>,
    unit: &str,
) -> Option<Finding> {
    let n: i64 = (*super::KnownValue::known(value)?).into();
    (!range.contains(&n)).then(|| {
        Finding::at(attr, format!("{attr} of {addr} is {n}: AWS takes {} to {} {unit}", range.start(), range.end()))
    })
}

/// The error for an update asked to change an attribute the kind cannot change in place: the
/// schema should mark it `force_new`. Never a silent skip.
pub fn cannot_update(kind: &str, attr: &str) -> ProviderError {
    ProviderError::invalid_attributes(kind, format!("`{attr}` cannot be changed in place (an engine bug)"))
}

/// The kind's [`Access`] on attributes: they are read into its plan model first.
impl<K: Kind> Access for Typed<K> {
    fn deployer(&self) -> Deployer {
        self.0.access().map_or(Deployer::NONE, |a| a.deployer())
    }

    fn deployer_arns(&self, attrs: &Attrs, scope: &ArnScope) -> Vec<String> {
        match (self.0.access(), decode::<PlanOf<K>>(K::NAME, attrs)) {
            (Some(access), Ok(spec)) => access.deployer_arns(&spec, scope),
            _ => vec!["*".into()],
        }
    }

    /// Attributes that do not read as the kind's model grant what cannot be told: one grant
    /// of everything unknown, which the review shows and the rules flag rather than miss.
    fn grants(&self, addr: &ResourceAddr, attrs: &Attrs) -> Vec<Grant> {
        let Some(access) = self.0.access() else { return Vec::new() };
        match decode::<PlanOf<K>>(K::NAME, attrs) {
            Ok(spec) => access.grants(addr, &spec),
            Err(_) => vec![Grant {
                policy: PolicyKind::Resource,
                deny: false,
                principal: UNKNOWN.into(),
                action: UNKNOWN.into(),
                resource: UNKNOWN.into(),
                conditions: vec![],
            }],
        }
    }

    fn policy_findings(&self, attrs: &Attrs) -> Vec<(&'static str, String)> {
        match (self.0.access(), decode::<PlanOf<K>>(K::NAME, attrs)) {
            (Some(access), Ok(spec)) => access.policy_findings(&spec),
            _ => Vec::new(),
        }
    }
}

/// The kind's [`Annotate`] on attributes: the change is read into its models first.
impl<K: Kind> Annotate for Typed<K> {
    fn annotate(&self, change: &ChangeView<'_>) -> Vec<Annotation> {
        let Some(annotate) = self.0.annotate() else { return Vec::new() };
        let desired = change.desired.and_then(|d| decode::<PlanOf<K>>(K::NAME, d).ok());
        let live = change.live.map(|l| Prior { spec: self.prior_spec(l), computed: self.prior_computed(l) });
        annotate.annotate(&ChangeView {
            addr: change.addr,
            stage: change.stage,
            live: live.as_ref(),
            desired: desired.as_ref(),
        })
    }
}
