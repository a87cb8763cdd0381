//! `drift --revert`: the plan that puts AWS back as the spec says, and removes the undeclared
//! children the engine can remove (those a kind of its own deletes by id: a statement in a
//! function's policy, a subscription, an API's route, integration, authorizer or stage, a
//! record set).
//!
//! Each such child enters the prior state as a resource the spec does not declare, at
//! `KIND.undeclared_N`, so the ordinary planner plans its deletion and the ordinary apply
//! carries it out, journaled like any delete; a delete that fails leaves the entry in the
//! state, and the next apply deletes it.

use crate::addr::ResourceAddr;
use crate::plan::drift::Undeclared;
use crate::provider::Registry;
use crate::state::{ResourceState, State};

/// The children `drift --revert` removes, and those it leaves (not removable by the engine,
/// or ignored by the spec's `drift.ignore`).
#[derive(Debug, Default)]
pub struct Removal {
    /// Children of a kind, entered into the plan.
    pub removed: Vec<(ResourceAddr, Undeclared)>,
    /// What resources hold, removed by their kind once the plan is carried out.
    pub held: Vec<Undeclared>,
    pub left: Vec<Undeclared>,
}

/// `state` with each removable, not ignored, child of `undeclared` added as a resource the
/// spec does not declare; each after what its kind says it may refer to (see
/// [`crate::provider::Inventory::refers_to`]), so that it is deleted first.
pub fn with_undeclared(registry: &Registry, state: &State, undeclared: &[Undeclared]) -> (State, Removal) {
    let mut out = state.clone();
    let mut removal = Removal::default();
    for u in undeclared {
        // One removal can take several held things (a bucket's CORS rules go together): none
        // is removed when any of them is ignored.
        let shares_ignored = |u: &Undeclared| {
            u.held.is_some() && undeclared.iter().any(|o| o.ignored && o.id == u.id && o.held == u.held)
        };
        if !u.removable || u.ignored || shares_ignored(u) {
            removal.left.push(u.clone());
            continue;
        }
        if u.held.is_some() {
            removal.held.push(u.clone());
            continue;
        }
        let addr = (1..)
            .map(|n| ResourceAddr::new(&u.kind, format!("undeclared_{n}")))
            .find(|a| !out.resources.contains_key(a))
            .expect("an unused name");
        out.resources.insert(addr.clone(), ResourceState { id: u.id.clone(), ..Default::default() });
        removal.removed.push((addr, u.clone()));
    }
    // A child goes before what it may refer to: destroy walks dependencies in reverse.
    let removed: Vec<ResourceAddr> = removal.removed.iter().map(|(a, _)| a.clone()).collect();
    for addr in &removed {
        let refers_to = registry.get(&addr.kind).and_then(|k| k.inventory()).map_or(&[][..], |i| i.refers_to());
        let targets = removed.iter().filter(|t| refers_to.contains(&t.kind.as_str())).cloned();
        if let Some(entry) = out.resources.get_mut(addr) {
            entry.dependencies.extend(targets);
        }
    }
    (out, removal)
}

/// Removes what managed resources hold (after the plan is carried out): each distinct
/// (resource, key) once, retried like any call. What failed, by what it was.
pub async fn remove_held(
    registry: &crate::provider::Registry,
    aws: &crate::provider::Aws,
    held: &[Undeclared],
) -> Vec<(String, crate::provider::ProviderError)> {
    let mut done = std::collections::BTreeSet::new();
    let mut failed = Vec::new();
    for u in held {
        let (Some(key), Some(kind)) = (&u.held, registry.get(&u.kind)) else { continue };
        if !done.insert((u.kind.clone(), u.id.clone(), key.clone())) {
            continue;
        }
        let Some(inventory) = kind.inventory() else { continue };
        let removed = aws.retried(|| inventory.remove_held(aws, &u.id, key)).await;
        if let Err(e) = removed {
            failed.push((u.describe(), e));
        }
    }
    failed
}

/// What `drift --revert` says before the plan: what it removes, and what it cannot.
pub fn render(removal: &Removal) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if !removal.removed.is_empty() || !removal.held.is_empty() {
        let _ = writeln!(out, "Undeclared children to remove ({}):", removal.removed.len() + removal.held.len());
        for (addr, u) in &removal.removed {
            let _ = writeln!(out, "  - {} (as {addr}, id `{}`)", u.describe(), u.id);
        }
        for u in &removal.held {
            let _ = writeln!(out, "  - {} (by its {}, after the plan)", u.describe(), u.kind);
        }
        out.push('\n');
    }
    let (ignored, kept): (Vec<&Undeclared>, Vec<&Undeclared>) = removal.left.iter().partition(|u| u.ignored);
    let (inert, kept): (Vec<&Undeclared>, Vec<&Undeclared>) = kept.into_iter().partition(|u| u.inert.is_some());
    for u in inert {
        let _ =
            writeln!(out, "Left in place, not drift: {} ({})", u.describe(), u.inert.as_deref().unwrap_or_default());
    }
    if !kept.is_empty() {
        let _ = writeln!(
            out,
            "Left in place: no kind of the engine removes them; declare them, list them in drift.ignore, or remove \
             them by hand ({}):",
            kept.len()
        );
        for u in kept {
            let _ = writeln!(out, "  . {}", u.describe());
        }
        out.push('\n');
    }
    if !ignored.is_empty() {
        let _ = writeln!(out, "Left in place (drift.ignore in the spec): {}", ignored.len());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(kind: &str, id: &str, removable: bool, ignored: bool) -> Undeclared {
        Undeclared {
            kind: kind.into(),
            parent: "the API".into(),
            id: id.into(),
            what: format!("{kind} {id}"),
            ignored,
            removable,
            held: None,
            inert: None,
            adopt: vec![],
        }
    }

    #[test]
    fn removable_children_become_undeclared_resources_and_routes_go_first() {
        let mut state = State::new();
        state.resources.insert(ResourceAddr::new("apigatewayv2_route", "undeclared_1"), ResourceState::default());
        let undeclared = [
            child("apigatewayv2_route", "api/r1", true, false),
            child("apigatewayv2_integration", "api/i1", true, false),
            child("apigatewayv2_stage", "api/manual", true, true),
            child("iam_role", "role", false, false),
        ];
        let (with, removal) = with_undeclared(&Registry::aws(), &state, &undeclared);
        let names: Vec<String> = removal.removed.iter().map(|(a, _)| a.to_string()).collect();
        assert_eq!(names, ["apigatewayv2_route.undeclared_2", "apigatewayv2_integration.undeclared_1"]);
        assert_eq!(removal.left.len(), 2, "the ignored stage and the role's child stay");
        let route = &with.resources[&ResourceAddr::new("apigatewayv2_route", "undeclared_2")];
        assert_eq!(route.id, "api/r1");
        assert!(route.dependencies.contains(&ResourceAddr::new("apigatewayv2_integration", "undeclared_1")));
        let text = render(&removal);
        assert!(text.contains("Undeclared children to remove (2)") && text.contains("Left in place"), "{text}");
    }
}
