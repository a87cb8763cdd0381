//! Why a replacement happens: the attribute that forces it and, when that attribute changed
//! because a resource it refers to changed, each step back to the edit that started it
//! (`bucket` of `s3_bucket_cors.uploads` follows `s3_bucket.uploads.bucket`, which was edited
//! in the spec). Reviewers see a replacement's root, not only its last link.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Action, ResourceChange};
use crate::addr::ResourceAddr;
use crate::provider::Registry;
use crate::spec::Spec;
use crate::state::State;

/// One reason a resource is replaced: the chain of attributes from the one that forces the
/// replacement back to where the change began.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    /// Nearest first: `links[0]` is the replaced resource's attribute that cannot change in
    /// place; each next link is what the one before takes its value from.
    pub links: Vec<Link>,
    /// Where the last link's change comes from.
    pub origin: Origin,
}

/// One attribute in a chain, and how its value changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub addr: ResourceAddr,
    pub attribute: String,
    pub step: Step,
}

/// How a link's attribute changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// It changes, and AWS cannot change it in place: its resource is replaced.
    ForcesReplacement,
    /// It changes in place.
    Changes,
    /// AWS assigns it (an ARN, an id), and its resource is replaced: the new object's differs.
    NewWithReplacement,
    /// AWS assigns it, and its resource is created: not known before apply.
    NewWithCreation,
}

/// Where a chain of changes begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The spec (or a variable it uses) gives the attribute a new value.
    Spec,
    /// AWS holds a value the last apply did not set: changed outside cruddur-infra.
    Outside,
    /// The resource the chain ends at is new (added to the spec, or deleted outside): so are its values.
    Created,
}

impl Origin {
    fn text(self) -> &'static str {
        match self {
            Origin::Spec => "edited in the spec (or a variable it uses)",
            Origin::Outside => "changed outside cruddur-infra",
            Origin::Created => "a new resource",
        }
    }
}

impl fmt::Display for Cause {
    /// `role cannot change in place <- iam_role.lambda.arn is new (replaced) <- iam_role.lambda.name
    /// cannot change in place: edited in the spec`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, link) in self.links.iter().enumerate() {
            // The first link is the replaced resource's own attribute: its name says it all.
            if i == 0 {
                f.write_str(&link.attribute)?;
            } else {
                write!(f, " <- {}.{}", link.addr, link.attribute)?;
            }
            f.write_str(match link.step {
                Step::ForcesReplacement => " cannot change in place",
                Step::Changes => " changes",
                Step::NewWithReplacement => " is new (replaced)",
                Step::NewWithCreation => " is new (created)",
            })?;
        }
        write!(f, ": {}", self.origin.text())
    }
}

/// Longest chain followed: the dependency graph has no cycles, this only bounds the work.
const MAX_LINKS: usize = 32;

/// The causes of every replacement in `changes`, one per attribute that forces it.
pub fn explain(
    registry: &Registry,
    spec: &Spec,
    changes: &[ResourceChange],
    prior: &State,
    refreshed: &State,
) -> BTreeMap<ResourceAddr, Vec<Cause>> {
    let tracer = Tracer { registry, spec, changes: changes.iter().map(|c| (&c.addr, c)).collect(), prior, refreshed };
    changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(|c| {
            let causes = c
                .replace_reasons()
                .into_iter()
                .map(|attr| {
                    let mut links =
                        vec![Link { addr: c.addr.clone(), attribute: attr.to_string(), step: Step::ForcesReplacement }];
                    let origin = tracer.trace(&c.addr, attr, &mut links);
                    Cause { links, origin }
                })
                .collect();
            (c.addr.clone(), causes)
        })
        .collect()
}

struct Tracer<'a> {
    registry: &'a Registry,
    spec: &'a Spec,
    changes: BTreeMap<&'a ResourceAddr, &'a ResourceChange>,
    prior: &'a State,
    refreshed: &'a State,
}

impl Tracer<'_> {
    /// Follows `addr.attr`'s change back through what its value refers to, appending a link
    /// per step, and says where it began.
    fn trace(&self, addr: &ResourceAddr, attr: &str, links: &mut Vec<Link>) -> Origin {
        let Some((target, target_attr, step)) = self.changed_reference(addr, attr).filter(|_| links.len() < MAX_LINKS)
        else {
            return self.origin(addr, attr);
        };
        links.push(Link { addr: target.clone(), attribute: target_attr.clone(), step });
        match step {
            Step::NewWithCreation => Origin::Created,
            // New because the resource is replaced: the chain goes on with why that one is.
            Step::NewWithReplacement => {
                let Some(forcing) = self.changes.get(&target).and_then(|c| c.replace_reasons().first().copied()) else {
                    return Origin::Spec;
                };
                links.push(Link {
                    addr: target.clone(),
                    attribute: forcing.to_string(),
                    step: Step::ForcesReplacement,
                });
                self.trace(&target, forcing, links)
            }
            Step::ForcesReplacement | Step::Changes => self.trace(&target, &target_attr, links),
        }
    }

    /// The first resource attribute `addr.attr` refers to in the spec whose value changes in
    /// this plan, and how.
    fn changed_reference(&self, addr: &ResourceAddr, attr: &str) -> Option<(ResourceAddr, String, Step)> {
        let res = self.spec.resource(addr)?;
        let (_, expr) = res.attrs.iter().find(|(name, _)| name == attr)?;
        let mut refs = Vec::new();
        expr.references(&mut refs);
        refs.into_iter().find_map(|(target, target_attr)| {
            let change = self.changes.get(&target)?;
            let assigned = self.assigned_by_aws(&target, &target_attr);
            let step = match change.action {
                // A reference to a new resource is new, whatever the attribute.
                Action::Create => Step::NewWithCreation,
                Action::Replace if assigned => Step::NewWithReplacement,
                Action::Replace | Action::Update => {
                    let changed = change.changes.iter().find(|c| c.name == target_attr)?;
                    if changed.forces_replacement { Step::ForcesReplacement } else { Step::Changes }
                }
                _ => return None,
            };
            Some((target, target_attr, step))
        })
    }

    /// Whether AWS assigns the attribute (an ARN, an id): a new object gets a new value.
    fn assigned_by_aws(&self, addr: &ResourceAddr, attr: &str) -> bool {
        let schema = self.registry.get(&addr.kind).map(|k| k.schema());
        schema.and_then(|s| s.attribute(attr)).is_none_or(|a| a.computed)
    }

    /// Where a change that follows no reference began: AWS holds a value the last apply did not
    /// record while the spec still asks for that one (changed outside), else the spec asks for
    /// a new value.
    fn origin(&self, addr: &ResourceAddr, attr: &str) -> Origin {
        let recorded = self.prior.resources.get(addr).and_then(|r| r.attributes.get(attr));
        let live = self.refreshed.resources.get(addr).and_then(|r| r.attributes.get(attr));
        let desired = self.changes.get(addr).and_then(|c| c.desired.as_ref()).and_then(|d| d.get(attr));
        match (recorded, live) {
            (Some(recorded), Some(live)) if recorded != live && desired == Some(recorded) => Origin::Outside,
            _ => Origin::Spec,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::AttrChange;
    use crate::spec::{Overrides, SpecSource};
    use crate::state::ResourceState;
    use serde_json::json;

    const SPEC: &str = r#"
resources:
  sns_topic:
    t: { name: topic-new }
  sns_subscription:
    s: { topic_arn: "${sns_topic.t.arn}", protocol: https, endpoint: https://hooks.example/x }
"#;

    fn change(
        addr: &ResourceAddr,
        action: Action,
        attr: &str,
        forces: bool,
        desired: serde_json::Value,
    ) -> ResourceChange {
        let desired: crate::value::Attrs = desired.as_object().expect("map").clone().into_iter().collect();
        ResourceChange {
            changes: vec![AttrChange {
                name: attr.into(),
                before: json!(null),
                after: json!(null),
                forces_replacement: forces,
            }],
            desired: Some(desired),
            ..ResourceChange::new(addr.clone(), action)
        }
    }

    fn recorded(state: &mut State, addr: &ResourceAddr, attrs: serde_json::Value) {
        let attributes = attrs.as_object().expect("map").clone().into_iter().collect();
        state.resources.insert(addr.clone(), ResourceState { id: "x".into(), attributes, ..Default::default() });
    }

    #[test]
    fn a_chain_ends_at_a_new_resource_or_at_a_change_made_outside() {
        // The subscription follows the topic; the topic is created (new in the spec), or its
        // name was changed outside while the spec still says what the last apply set.
        let registry = Registry::aws();
        let spec = Spec::parse(SpecSource::new("c.yaml", SPEC.into()), &registry, &Overrides::none()).expect("spec");
        let (topic, sub) = (ResourceAddr::new("sns_topic", "t"), ResourceAddr::new("sns_subscription", "s"));
        let sub_change = change(&sub, Action::Replace, "topic_arn", true, json!({}));

        let created = [change(&topic, Action::Create, "name", false, json!({"name": "topic-new"})), sub_change.clone()];
        let causes = explain(&registry, &spec, &created, &State::new(), &State::new());
        let cause = &causes[&sub][0];
        assert_eq!(cause.origin, Origin::Created);
        assert_eq!(cause.links[1].step, Step::NewWithCreation);
        assert_eq!(
            cause.to_string(),
            "topic_arn cannot change in place <- sns_topic.t.arn is new (created): a new resource"
        );

        let (mut prior, mut live) = (State::new(), State::new());
        recorded(&mut prior, &topic, json!({"name": "topic-new"}));
        recorded(&mut live, &topic, json!({"name": "renamed-by-hand"}));
        let drifted = [change(&topic, Action::Replace, "name", true, json!({"name": "topic-new"})), sub_change];
        let causes = explain(&registry, &spec, &drifted, &prior, &live);
        assert_eq!(causes[&topic][0].origin, Origin::Outside);
        let cause = &causes[&sub][0];
        assert_eq!(cause.origin, Origin::Outside);
        assert_eq!(
            cause.to_string(),
            "topic_arn cannot change in place <- sns_topic.t.arn is new (replaced) <- sns_topic.t.name cannot change in \
             place: changed outside cruddur-infra"
        );
        // The spec asking for a new name is an edit, even where AWS drifted too.
        recorded(&mut prior, &topic, json!({"name": "topic-old"}));
        let causes = explain(&registry, &spec, &drifted, &prior, &live);
        assert_eq!(causes[&sub][0].origin, Origin::Spec);
    }
}
