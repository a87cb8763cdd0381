//! Attribute-level comparison of what the spec wants with what AWS reports.

use serde_json::Value;

use super::AttrChange;
use crate::provider::{ResourceSchema, empty_value};
use crate::value::{Attrs, unknown};

/// The one attribute comparer, shared by plan, drift and apply: every compared attribute of
/// the schema that `managed` names and whose value differs between `before` and `after`. An
/// attribute missing on one side counts as its empty value (an alias record's read that
/// drops `records: []` is no change). An unknown value may turn out equal, but cannot be
/// assumed to: it differs.
pub fn compare(
    schema: &ResourceSchema,
    before: &Attrs,
    after: &Attrs,
    managed: impl Fn(&str) -> bool,
) -> Vec<AttrChange> {
    schema
        .compared()
        .filter(|attr| managed(attr.name))
        .filter_map(|attr| {
            let was = before.get(attr.name).cloned().unwrap_or_else(|| empty_value(&attr.ty));
            let now = after.get(attr.name).cloned().unwrap_or_else(|| empty_value(&attr.ty));
            (was != now).then(|| AttrChange {
                name: attr.name.to_string(),
                before: was,
                after: now,
                forces_replacement: attr.force_new,
            })
        })
        .collect()
}

/// Changes needed to turn `live` into `desired`. An attribute is compared when the spec sets
/// it or the prior state managed it (removing it from the spec resets it to empty); anything
/// else AWS reports is left alone.
pub fn diff(schema: &ResourceSchema, desired: &Attrs, prior: &Attrs, live: &Attrs) -> Vec<AttrChange> {
    compare(schema, live, desired, |name| desired.contains_key(name) || prior.contains_key(name))
}

/// Every attribute of a resource to be created, AWS-computed ones as unknown.
pub fn creation(schema: &ResourceSchema, desired: &Attrs) -> Vec<AttrChange> {
    let mut out: Vec<AttrChange> = schema
        .compared()
        .filter_map(|a| desired.get(a.name).map(|v| (a, v)))
        .map(|(a, v)| AttrChange {
            name: a.name.to_string(),
            before: Value::Null,
            after: v.clone(),
            forces_replacement: false,
        })
        .collect();
    out.extend(schema.attributes.iter().filter(|a| a.computed).map(|a| AttrChange {
        name: a.name.to_string(),
        before: Value::Null,
        after: unknown(),
        forces_replacement: false,
    }));
    out
}

/// Every attribute of a resource to be destroyed, as last known.
pub fn deletion(schema: &ResourceSchema, prior: &Attrs) -> Vec<AttrChange> {
    schema
        .compared()
        .filter_map(|a| prior.get(a.name).map(|v| (a, v)))
        .map(|(a, v)| AttrChange {
            name: a.name.to_string(),
            before: v.clone(),
            after: Value::Null,
            forces_replacement: false,
        })
        .collect()
}
