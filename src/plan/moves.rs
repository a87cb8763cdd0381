//! Resources renamed in the spec (`moved:`) or by `state mv`: the state's entry goes from the
//! old address to the new one, with every reference to it in other entries, and the AWS object
//! stays as it is.

use serde::{Deserialize, Serialize};

use crate::addr::ResourceAddr;
use crate::state::State;

/// A move the plan carries out: the state's `from` entry becomes `to`'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    pub from: ResourceAddr,
    pub to: ResourceAddr,
    /// How a move the spec does not declare was found; `None` for a `moved:` entry.
    pub found: Option<FoundBy>,
}

/// Where a planned resource was before a move, as its change carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedFrom {
    pub from: ResourceAddr,
    /// How a move the spec does not declare was found (the plan then shows the `moved:` line
    /// that says it); `None` for a `moved:` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<FoundBy>,
}

/// How a rename the spec did not declare was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// The same identity in AWS: these attributes (a bucket's name; a route's API and key).
    Identity(Vec<String>),
    /// A kind without one: the only resource of its kind to leave and to arrive, with the same
    /// settings.
    Settings,
}

impl FoundBy {
    /// `found by its name`, for the plan.
    pub fn describe(&self, kind: &str) -> String {
        match self {
            FoundBy::Identity(attrs) => format!("the same AWS object, found by its {}", attrs.join(" and ")),
            FoundBy::Settings => {
                format!("the same AWS object, found as the only {kind} to leave and to arrive, with the same settings")
            }
        }
    }
}

/// Why a move cannot be made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum MoveError {
    #[error("{from} is moved to {to}, but the state holds both")]
    #[diagnostic(
        code(cruddur::plan::move_target_exists),
        help(
            "two resources would claim one AWS object: keep one with `cruddur-infra state rm` of the other (its AWS \
             object is then neither managed nor deleted), or remove the move"
        )
    )]
    BothExist { from: ResourceAddr, to: ResourceAddr },
    #[error("{0} is not in the state")]
    #[diagnostic(code(cruddur::state::not_found), help("`cruddur-infra state list` shows what the state holds"))]
    NotInState(ResourceAddr),
    #[error("{from} cannot move to {to}: a move keeps the AWS object, so the kind must stay {}", from.kind)]
    #[diagnostic(code(cruddur::state::move_kind))]
    OtherKind { from: ResourceAddr, to: ResourceAddr },
    #[error("{to} may be a rename of any of {}: the plan will not guess", list(candidates))]
    #[diagnostic(
        code(cruddur::plan::ambiguous_rename),
        help("say which in the spec, e.g.\nmoved:\n  - {{ from: {}, to: {to} }}\n(or change a setting so that they differ)", candidates[0])
    )]
    Ambiguous { to: ResourceAddr, candidates: Vec<ResourceAddr> },
    #[error("{from} may have been renamed to any of {}: the plan will not guess", list(candidates))]
    #[diagnostic(
        code(cruddur::plan::ambiguous_rename),
        help("say which in the spec, e.g.\nmoved:\n  - {{ from: {from}, to: {} }}\n(or change a setting so that they differ)", candidates[0])
    )]
    AmbiguousTarget { from: ResourceAddr, candidates: Vec<ResourceAddr> },
}

fn list(addrs: &[ResourceAddr]) -> String {
    addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// `prior` with the spec's moves made: each whose old address the state holds and whose new
/// one it does not. A move already made (only the new address held) or of nothing is skipped.
pub fn make_moves(prior: &State, moves: &[crate::spec::moved::Move]) -> Result<(State, Vec<Moved>), MoveError> {
    let mut state = prior.clone();
    let mut made = Vec::new();
    for m in moves {
        match (state.resources.contains_key(&m.from), state.resources.contains_key(&m.to)) {
            (true, true) => return Err(MoveError::BothExist { from: m.from.clone(), to: m.to.clone() }),
            (true, false) => {
                rename(&mut state, &m.from, &m.to)?;
                made.push(Moved { from: m.from.clone(), to: m.to.clone(), found: None });
            }
            _ => {}
        }
    }
    Ok((state, made))
}

/// Renames the spec made without saying so, found in `prior` (after the spec's own moves): a
/// resource the spec no longer declares and one it now declares are the same AWS object when
/// their kind's identity attributes agree (evaluated from variables, lookups and the state), or,
/// for a kind without an identity, when each is the only one of its kind to leave and to arrive
/// and every setting agrees. Found in rounds, so a child whose identity names its renamed
/// parent's id is judged once the parent has moved.
pub fn find_renames(
    registry: &crate::provider::Registry,
    spec: &crate::spec::Spec,
    prior: &State,
    lookups: &std::collections::BTreeMap<ResourceAddr, crate::value::Attrs>,
) -> Result<(State, Vec<Moved>), MoveError> {
    use crate::value::{Attrs, contains_unknown, unknown};
    let mut state = prior.clone();
    let mut found = Vec::new();
    loop {
        let departing: Vec<ResourceAddr> = state
            .resources
            .iter()
            .filter(|(a, r)| spec.resource(a).is_none() && r.pending().is_none())
            .map(|(a, _)| a.clone())
            .collect();
        // Only kinds something leaves from can have a rename (nothing leaves on most plans).
        // An adopted resource (`import_id`) renamed is moved too, not forgotten and adopted again.
        let arriving: Vec<&crate::spec::ResourceSpec> = spec
            .resources
            .iter()
            .filter(|r| !state.resources.contains_key(&r.addr) && departing.iter().any(|a| a.kind == r.addr.kind))
            .collect();
        if arriving.is_empty() {
            break;
        }
        let value = |addr: &ResourceAddr, attr: &str| -> serde_json::Value {
            if let Some(answer) = lookups.get(addr) {
                return answer.get(attr).cloned().unwrap_or_default();
            }
            state.resources.get(addr).and_then(|r| r.attributes.get(attr).cloned()).unwrap_or_else(unknown)
        };
        let wanted: Vec<Attrs> = arriving
            .iter()
            .map(|r| {
                let mut attrs = crate::plan::evaluate(r, &value);
                if let Some(kind) = registry.get(&r.addr.kind) {
                    kind.normalize(&mut attrs);
                }
                attrs
            })
            .collect();
        let recorded = |a: &ResourceAddr| &state.resources[a].attributes;
        // Every setting known and the same as recorded: the test for a kind without an identity.
        let alike = |desired: &Attrs, a: &ResourceAddr| {
            desired.iter().all(|(k, v)| !contains_unknown(v) && recorded(a).get(k) == Some(v))
        };
        let mut next = None;
        for (b, desired) in arriving.iter().zip(&wanted) {
            let Some(kind) = registry.get(&b.addr.kind) else { continue };
            let keys: Vec<&str> = kind.schema().identity().map(|a| a.name).collect();
            let same_kind = departing.iter().filter(|a| a.kind == b.addr.kind);
            let (matches, by): (Vec<&ResourceAddr>, FoundBy) = if keys.is_empty() {
                (same_kind.filter(|a| alike(desired, a)).collect(), FoundBy::Settings)
            } else {
                let known = |k: &&str| desired.get(*k).is_none_or(|v| !contains_unknown(v));
                if !keys.iter().all(known) || keys.iter().all(|k| desired.get(*k).is_none()) {
                    continue;
                }
                let same = |a: &&ResourceAddr| keys.iter().all(|k| desired.get(*k) == recorded(a).get(*k));
                (same_kind.filter(same).collect(), FoundBy::Identity(keys.iter().map(ToString::to_string).collect()))
            };
            match matches.as_slice() {
                [] => {}
                [one] => {
                    // Settings alone must also pick this arrival out from the others alike.
                    if by == FoundBy::Settings {
                        let alike_arrivals: Vec<ResourceAddr> = arriving
                            .iter()
                            .zip(&wanted)
                            .filter(|(r, d)| r.addr.kind == b.addr.kind && alike(d, one))
                            .map(|(r, _)| r.addr.clone())
                            .collect();
                        if alike_arrivals.len() > 1 {
                            return Err(MoveError::AmbiguousTarget {
                                from: (*one).clone(),
                                candidates: alike_arrivals,
                            });
                        }
                    }
                    next = Some(((*one).clone(), b.addr.clone(), by));
                    break;
                }
                many => {
                    return Err(MoveError::Ambiguous {
                        to: b.addr.clone(),
                        candidates: many.iter().map(|a| (*a).clone()).collect(),
                    });
                }
            }
        }
        let Some((from, to, by)) = next else { break };
        rename(&mut state, &from, &to)?;
        found.push(Moved { from, to, found: Some(by) });
    }
    Ok((state, found))
}

/// Moves the entry at `from` to `to` and points every dependency on it at `to`.
pub fn rename(state: &mut State, from: &ResourceAddr, to: &ResourceAddr) -> Result<(), MoveError> {
    if from.kind != to.kind {
        return Err(MoveError::OtherKind { from: from.clone(), to: to.clone() });
    }
    if state.resources.contains_key(to) {
        return Err(MoveError::BothExist { from: from.clone(), to: to.clone() });
    }
    let entry = state.resources.remove(from).ok_or_else(|| MoveError::NotInState(from.clone()))?;
    state.resources.insert(to.clone(), entry);
    for other in state.resources.values_mut() {
        if other.dependencies.remove(from) {
            other.dependencies.insert(to.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ResourceState;

    fn addr(s: &str) -> ResourceAddr {
        s.parse().expect("an address")
    }

    fn state(entries: &[(&str, &[&str])]) -> State {
        let mut s = State::new();
        for (a, deps) in entries {
            let entry = ResourceState {
                id: format!("id-of-{a}"),
                dependencies: deps.iter().map(|d| addr(d)).collect(),
                ..Default::default()
            };
            s.resources.insert(addr(a), entry);
        }
        s
    }

    #[test]
    fn a_move_keeps_the_entry_and_repoints_what_depends_on_it() {
        let mut s = state(&[("s3_bucket.uploads", &[]), ("s3_bucket_policy.p", &["s3_bucket.uploads"])]);
        rename(&mut s, &addr("s3_bucket.uploads"), &addr("s3_bucket.avatars")).expect("moved");
        assert_eq!(s.resources[&addr("s3_bucket.avatars")].id, "id-of-s3_bucket.uploads");
        assert!(!s.resources.contains_key(&addr("s3_bucket.uploads")));
        assert_eq!(s.resources[&addr("s3_bucket_policy.p")].dependencies, [addr("s3_bucket.avatars")].into());
    }

    #[test]
    fn a_move_onto_a_held_address_another_kind_or_nothing_is_refused() {
        let mut s = state(&[("s3_bucket.a", &[]), ("s3_bucket.b", &[])]);
        let before = s.clone();
        assert!(matches!(rename(&mut s, &addr("s3_bucket.a"), &addr("s3_bucket.b")), Err(MoveError::BothExist { .. })));
        assert!(matches!(rename(&mut s, &addr("s3_bucket.a"), &addr("sns_topic.a")), Err(MoveError::OtherKind { .. })));
        assert!(matches!(rename(&mut s, &addr("s3_bucket.c"), &addr("s3_bucket.d")), Err(MoveError::NotInState(_))));
        assert_eq!(s, before, "nothing changed");
    }
}
