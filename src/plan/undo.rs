//! `undo`: the spec an earlier state was applied from, made back from the declarations that
//! state recorded ([`crate::spec::recorded`]), and what a plan back to it cannot restore.
//!
//! The plan itself is an ordinary plan of that spec against the state as it is now: updates
//! go back, what was created since is deleted, what was deleted since is created again, with
//! its references resolved to whatever its dependencies are now.

use std::path::Path;

use crate::addr::ResourceAddr;
use crate::plan::{Action, ResourceChange};
use crate::provider::Registry;
use crate::spec::recorded::spec_text;
use crate::spec::{LoadError, Loading, Spec};
use crate::state::State;

/// Why no plan back to an earlier state can be made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UndoError {
    /// The earlier state holds resources without a recorded declaration.
    #[error(
        "state serial {serial} does not record how {} {} declared: it was saved by an engine older than undo",
        addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        if addrs.len() == 1 { "was" } else { "were" }
    )]
    #[diagnostic(
        code(cruddur::undo::not_recorded),
        help("undo can go back to a state saved by an apply of this version or later: `state history` lists them")
    )]
    NotRecorded { serial: u64, addrs: Vec<ResourceAddr> },
    /// The recorded declarations do not load as a spec today (a kind's rules changed, a
    /// Lambda's source folder is gone).
    #[error("state serial {serial}'s declarations do not load as a spec: {error}")]
    #[diagnostic(code(cruddur::undo::unloadable))]
    Unloadable { serial: u64, error: Box<LoadError> },
}

/// The spec state `then` was applied from, checked as a spec beside `spec_path` (paths in it,
/// a Lambda's `source`, are relative to that folder, as they were written). Its names have the
/// stage applied already, so it loads as the main stack's.
pub fn spec_of(then: &State, spec_path: &Path, registry: &Registry) -> Result<Spec, UndoError> {
    let missing: Vec<ResourceAddr> =
        then.resources.iter().filter(|(_, r)| r.declaration.is_none()).map(|(a, _)| a.clone()).collect();
    if !missing.is_empty() {
        return Err(UndoError::NotRecorded { serial: then.serial, addrs: missing });
    }
    let declared = then.declared.clone().unwrap_or_default();
    let text = spec_text(then.resources.iter().filter_map(|(a, r)| r.declaration.as_ref().map(|d| (a, d))), &declared);
    let path = spec_path.with_file_name(format!("(state serial {})", then.serial));
    let unloadable = |error| UndoError::Unloadable { serial: then.serial, error: Box::new(error) };
    let mut spec = Spec::load_text(&path, text, registry, &Loading::default()).map_err(unloadable)?;
    for r in &mut spec.resources {
        // Values of sensitive variables were substituted when it was recorded: still masked.
        if let Some(entry) = then.resources.get(&r.addr) {
            r.sensitive.clone_from(&entry.sensitive);
        }
    }
    Ok(spec)
}

/// Something a plan back to an earlier state cannot put back as it was.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Loss {
    pub addr: ResourceAddr,
    pub what: String,
}

/// What the plan's `changes` (back to `then`, from `now`) cannot restore: what a resource it deletes takes
/// with it, what a resource it creates again held when it was deleted, and code that is built
/// on this machine and can only be built as its source is now.
pub fn losses(changes: &[ResourceChange], now: &State, then: &State, registry: &Registry) -> Vec<Loss> {
    let mut out = Vec::new();
    for change in changes {
        let Some(kind) = registry.get(&change.addr.kind) else { continue };
        let held = kind.lifecycle().lost_when_deleted;
        let loss = |what: String| Loss { addr: change.addr.clone(), what };
        match (change.action, held) {
            (Action::Delete | Action::Replace, Some(held)) => {
                out.push(loss(format!("is deleted: {held} go with it")));
            }
            (Action::Create, Some(held)) if then.resources.contains_key(&change.addr) => {
                let since = if now.resources.contains_key(&change.addr) { "" } else { " since it was deleted" };
                out.push(loss(format!(
                    "is created again, empty: {held} it held at serial {} are gone{since}",
                    then.serial
                )));
            }
            _ => {}
        }
        let (Some(artifact), Some(desired), Some(recorded)) =
            (kind.artifact(), change.desired.as_ref(), then.resources.get(&change.addr))
        else {
            continue;
        };
        for attr in artifact.code_attributes() {
            let (Some(want), Some(was)) = (desired.get(*attr), recorded.attributes.get(*attr)) else { continue };
            if want != was && !crate::value::is_unknown(want) {
                out.push(loss(format!(
                    "gets the code its source builds now ({attr} {want}), not the code serial {} ran ({was}): built \
                     code is not kept",
                    then.serial
                )));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ResourceState;
    use serde_json::json;

    fn entry(attrs: serde_json::Value) -> ResourceState {
        let attributes = attrs.as_object().expect("map").clone().into_iter().collect();
        ResourceState { id: "x".into(), attributes, ..Default::default() }
    }

    fn change(addr: &ResourceAddr, action: Action, desired: serde_json::Value) -> ResourceChange {
        let desired = desired.as_object().expect("map").clone().into_iter().collect();
        ResourceChange { desired: Some(desired), ..ResourceChange::new(addr.clone(), action) }
    }

    #[test]
    fn what_undo_cannot_restore_is_what_deleted_kinds_held_and_code_not_built_any_more() {
        let registry = Registry::aws();
        let (bucket, topic, function, logs) = (
            ResourceAddr::new("s3_bucket", "b"),
            ResourceAddr::new("sns_topic", "t"),
            ResourceAddr::new("lambda_function", "f"),
            ResourceAddr::new("log_group", "l"),
        );
        let (mut now, mut then) = (State::new(), State::new());
        then.serial = 7;
        then.resources.insert(bucket.clone(), entry(json!({"name": "b"})));
        then.resources.insert(topic.clone(), entry(json!({"name": "t"})));
        then.resources.insert(function.clone(), entry(json!({"name": "f", "code_sha256": "old"})));
        now.resources.insert(function.clone(), entry(json!({"name": "f", "code_sha256": "new"})));
        now.resources.insert(logs.clone(), entry(json!({"name": "l"})));
        let changes = [
            change(&bucket, Action::Create, json!({"name": "b"})),
            change(&topic, Action::Create, json!({"name": "t"})),
            change(&function, Action::Update, json!({"name": "f", "code_sha256": "new"})),
            change(&logs, Action::Delete, json!({})),
        ];
        let lost: Vec<String> =
            losses(&changes, &now, &then, &registry).iter().map(|l| format!("{} {}", l.addr, l.what)).collect();
        assert_eq!(lost.len(), 3, "{lost:#?}");
        assert!(lost[0].starts_with("s3_bucket.b is created again, empty: the objects it holds"), "{lost:#?}");
        assert!(lost[1].contains("lambda_function.f gets the code its source builds now"), "{lost:#?}");
        assert!(lost[2].starts_with("log_group.l is deleted: the log events it holds go with it"), "{lost:#?}");
        // The same code as then, and a topic created again, lose nothing.
        let same = [change(&function, Action::Update, json!({"code_sha256": "old"})), changes[1].clone()];
        assert!(losses(&same, &now, &then, &registry).is_empty());
    }
}
