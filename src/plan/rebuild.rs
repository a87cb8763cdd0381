//! A lost stage's state, rebuilt from what AWS holds, so that the stage can be destroyed as any
//! stage is (dependency order, the journal, a killed run finished by the next one).
//!
//! The spec, loaded for the stage, says where each of its resources would be: its physical
//! name with the stage applied, or its parent. Each is looked for with its kind's `find`, in
//! dependency order (a route is looked for in the API found before it), and judged:
//! - a taggable resource is the stage's when its address and stage tags say so, whatever
//!   state (lineage) made it: that state is the one lost;
//! - an untaggable one (a route, a record, an access control, a permission) is the stage's
//!   when its find takes it by its natural key; and every one, tagged or not, must hang off a
//!   resource found as the stage's or carry the stage's name in its identity (a stage-derived
//!   name);
//! - nothing the main stack's state holds is ever the stage's, and what the spec adopts
//!   (`import_id`) is never looked for: the stage did not make it.
//!
//! Only reads are made; the caller saves the state before anything is deleted.

use std::collections::BTreeSet;

use crate::addr::ResourceAddr;
use crate::provider::{Aws, FindReason, Found, Owner, Registry};
use crate::spec::Spec;
use crate::state::{ResourceState, State};
use crate::value::contains_unknown;

use super::PlanError;
use super::planner::{evaluate, lookups, order, read_adopted};

/// What the rebuild found, and what it looked at but left alone (with why), for the report.
pub struct Rebuilt {
    pub state: State,
    /// Resources of the spec it did not take, with the reason (not found, not the stage's).
    pub passed: Vec<(ResourceAddr, String)>,
}

/// Looks for every resource of `spec` (loaded with `--stage stage`) in AWS and returns a new
/// state (fresh lineage, serial 0) holding those that are the stage's. `main` is the main
/// stack's state: what it holds is never taken.
pub async fn rebuild_stage(
    registry: &Registry,
    aws: &Aws,
    spec: &Spec,
    stage: &str,
    main: &State,
    parallelism: usize,
) -> Result<Rebuilt, PlanError> {
    let answers = lookups(registry, aws, spec, parallelism).await?;
    let mains: BTreeSet<&str> = main.resources.values().map(|r| r.id.as_str()).collect();
    let mut state = State::new();
    let mut passed = Vec::new();
    for res in order(&spec.resources) {
        let addr = &res.addr;
        let Some(kind) = registry.get(&addr.kind) else {
            return Err(PlanError::UnknownKind { addr: addr.clone() });
        };
        if res.import_id.is_some() {
            passed.push((addr.clone(), "adopted by the spec (import_id): not the stage's to delete".into()));
            continue;
        }
        let mut desired = evaluate(res, &|a, attr| super::value_in(&answers, &state, a, attr));
        kind.normalize(&mut desired);
        let identity: Vec<&str> = kind.schema().identity().map(|a| a.name).collect();
        if identity.iter().any(|k| desired.get(*k).is_some_and(contains_unknown)) {
            passed.push((addr.clone(), "not looked for: what it belongs to was not found".into()));
            continue;
        }
        let owner = Owner::of_lost_stage(addr.clone(), stage);
        let found = aws.retried(|| kind.find(aws, &desired, &owner, FindReason::Intent)).await;
        let id = match found {
            Ok(Some(Found::Ours { id })) => id,
            Ok(Some(Found::NotOurs { id, why })) => {
                passed.push((addr.clone(), format!("`{id}` is not the stage's: {why}")));
                continue;
            }
            Ok(None) => {
                passed.push((addr.clone(), "not found".into()));
                continue;
            }
            // What cannot be looked for with the values known (a setting of another resource
            // that is gone): its parent's delete takes it, or the leftovers name it.
            Err(e) if e.is_invalid_attributes() => {
                passed.push((addr.clone(), format!("not looked for: {}", e.message)));
                continue;
            }
            Err(error) => return Err(PlanError::Refresh { addr: addr.clone(), error: Box::new(error) }),
        };
        if mains.contains(id.as_str()) {
            passed.push((addr.clone(), format!("`{id}` is the main stack's")));
            continue;
        }
        // Tagged kinds have had their stage tag checked by the find; this is what an untagged
        // one has instead, and no stage's resource fails it (its names carry the stage).
        let hangs_off_found = res.dependencies().iter().any(|d| state.resources.contains_key(d));
        let stage_named =
            identity.iter().any(|k| desired.get(*k).and_then(|v| v.as_str()).is_some_and(|v| v.contains(stage)));
        // A kind without a natural key is found by its tags or marker alone.
        if !identity.is_empty() && !hangs_off_found && !stage_named {
            passed.push((
                addr.clone(),
                format!("`{id}` hangs off nothing of the stage's and its name does not say the stage"),
            ));
            continue;
        }
        let mut entry: ResourceState = read_adopted(aws, kind, res, &id, &desired).await?;
        entry.retain_on_destroy = res.retain_on_destroy.unwrap_or(false);
        state.resources.insert(addr.clone(), entry);
    }
    Ok(Rebuilt { state, passed })
}
