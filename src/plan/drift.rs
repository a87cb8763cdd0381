//! Drift: what changed in AWS since the last apply, whatever the spec says now. Compares the
//! recorded state with a fresh read of the same resources.

use std::fmt::Write;

use serde_json::{Value, json};

use super::{Action, AttrChange, Reason, ResourceChange};
use crate::addr::ResourceAddr;
use crate::provider::{Parent, Registry};
use crate::state::State;

/// One resource that no longer matches the last apply.
#[derive(Debug)]
pub struct Drifted {
    pub addr: ResourceAddr,
    /// Deleted outside the engine.
    pub deleted: bool,
    /// `before` is what was applied, `after` what AWS reports now.
    pub changes: Vec<AttrChange>,
    pub sensitive: std::collections::BTreeSet<String>,
    /// Those of `changes` the spec leaves unset: `before` is the snapshot the last apply
    /// recorded.
    pub unset: std::collections::BTreeSet<String>,
}

/// Every resource of `recorded` whose managed attributes differ in `live`, or that is gone.
pub fn detect(registry: &Registry, recorded: &State, live: &State) -> Vec<Drifted> {
    let mut out = Vec::new();
    // A pending intent records what was about to be made, not what was applied: the next plan
    // resolves it.
    for (addr, was) in recorded.resources.iter().filter(|(_, r)| r.pending().is_none()) {
        let sensitive = was.sensitive.clone();
        let Some(now) = live.resources.get(addr) else {
            out.push(Drifted {
                addr: addr.clone(),
                deleted: true,
                changes: vec![],
                sensitive,
                unset: Default::default(),
            });
            continue;
        };
        let Some(kind) = registry.get(&addr.kind) else { continue };
        // Drift is reported, never applied: nothing is "forced" by it.
        let mut changes: Vec<AttrChange> =
            super::diff::compare(kind.schema(), &was.attributes, &now.attributes, |a| was.attributes.contains_key(a))
                .into_iter()
                .map(|c| AttrChange { forces_replacement: false, ..c })
                .collect();
        // Unset in the spec, changed away from the snapshot (one set where it was empty, too);
        // nothing to compare with before an apply recorded a snapshot.
        let unset_changes = match (&was.unset, &now.unset) {
            (Some(was_unset), Some(now)) => {
                let compared =
                    |a: &str| (was_unset.contains_key(a) || now.contains_key(a)) && !was.attributes.contains_key(a);
                super::diff::compare(kind.schema(), was_unset, now, compared)
            }
            _ => vec![],
        };
        let unset = unset_changes.iter().map(|c| c.name.clone()).collect();
        changes.extend(unset_changes.into_iter().map(|c| AttrChange { forces_replacement: false, ..c }));
        if !changes.is_empty() {
            out.push(Drifted { addr: addr.clone(), deleted: false, changes, sensitive, unset });
        }
    }
    out
}

/// A child in the scope of a managed parent that no resource of the state manages: a route
/// added to the API by hand, a statement added to a function's policy, a second subscription.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Undeclared {
    /// The kind it would be declared as.
    pub kind: String,
    pub parent: String,
    pub id: String,
    pub what: String,
    /// Matched by the spec's `drift.ignore`: shown, not counted as drift.
    pub ignored: bool,
    /// Whether `drift --revert` can remove it: a child of a kind the engine has (deleted by its
    /// id), or something a resource holds that its kind can remove (an alias, an inline policy).
    pub removable: bool,
    /// For what a resource holds (`None`: a child of a kind), what its kind removes it by.
    pub held: Option<String>,
    /// Why it does not count as drift: it cannot act (a subscription pending confirmation).
    pub inert: Option<String>,
    /// What `drift --adopt` writes into the spec to accept it (the resource's attributes), where
    /// it is a setting rather than a thing; empty: accepted through `drift.ignore`.
    /// (The values are JSON text: this type is ordered, and JSON values are not.)
    pub adopt: Vec<(ResourceAddr, String, String)>,
}

impl Undeclared {
    /// What drift calls it: `route GET /x in the API abc`.
    pub fn describe(&self) -> String {
        format!("{} in {}", self.what, self.parent)
    }

    /// Whether it counts as drift: not ignored by the spec, and able to act.
    pub fn counts(&self) -> bool {
        !self.ignored && self.inert.is_none()
    }
}

/// Marks the children a `drift.ignore` pattern matches (against `what in parent`, or `what`).
pub fn ignore(undeclared: &mut [Undeclared], patterns: &[String]) {
    for u in undeclared {
        u.ignored =
            patterns.iter().any(|p| crate::permissions::glob(p, &u.describe()) || crate::permissions::glob(p, &u.what));
    }
}

/// Whether anything counts as drift.
pub fn drifted(drift: &[Drifted], undeclared: &[Undeclared]) -> bool {
    !drift.is_empty() || undeclared.iter().any(Undeclared::counts)
}

/// Every child of the parents the state's resources belong to that none of them manages.
pub async fn undeclared(
    registry: &Registry,
    aws: &crate::provider::Aws,
    recorded: &State,
) -> Result<Vec<Undeclared>, super::PlanError> {
    let settled: Vec<(&ResourceAddr, &crate::state::ResourceState)> =
        recorded.resources.iter().filter(|(_, r)| r.pending().is_none()).collect();
    let managed: std::collections::BTreeSet<(&str, &str)> =
        settled.iter().map(|(addr, r)| (addr.kind.as_str(), r.id.as_str())).collect();
    let mut asked = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (addr, res) in &settled {
        let Some(inventory) = registry.get(&addr.kind).and_then(|k| k.inventory()) else { continue };
        let refresh_error = |error| super::PlanError::Refresh { addr: (*addr).clone(), error: Box::new(error) };
        let held = aws.retried(|| inventory.held(aws, &res.id, &res.attributes)).await;
        out.extend(held.map_err(refresh_error)?.into_iter().map(|h| Undeclared {
            kind: addr.kind.clone(),
            parent: addr.to_string(),
            id: res.id.clone(),
            what: h.what,
            ignored: false,
            removable: h.removable,
            adopt: h.adopt.into_iter().map(|(attr, value)| ((*addr).clone(), attr, value.to_string())).collect(),
            held: Some(h.key),
            inert: None,
        }));
        // The parent it belongs to (listed by its own kind), and the children other kinds list
        // from it; each (kind, parent) once, whatever resource names it.
        let mut listings: Vec<(String, Parent)> = Vec::new();
        listings.extend(inventory.parent(&res.id, &res.attributes).map(|p| (addr.kind.clone(), p)));
        listings.extend(
            inventory.children_listed_by(&res.id, &res.attributes).into_iter().map(|(k, p)| (k.to_string(), p)),
        );
        for (child_kind, parent) in listings {
            if !asked.insert((child_kind.clone(), parent.clone())) {
                continue;
            }
            let Some(lister) = registry.get(&child_kind).and_then(|k| k.inventory()) else { continue };
            let listed = aws.retried(|| lister.children(aws, &parent)).await;
            let Some(siblings) = listed.map_err(refresh_error)? else { continue };
            for child in siblings.children {
                let identified = |r: &crate::state::ResourceState| {
                    child
                        .identified_by
                        .as_ref()
                        .is_some_and(|key| key.iter().all(|(k, v)| r.attributes.get(k) == Some(v)))
                };
                let declared = managed.contains(&(child_kind.as_str(), child.id.as_str()))
                    || settled.iter().any(|(a, r)| a.kind == child_kind && identified(r));
                if !declared {
                    out.push(Undeclared {
                        kind: child_kind.clone(),
                        parent: siblings.parent.clone(),
                        removable: child.has_id() && child.inert.is_none(),
                        id: child.id,
                        what: child.what,
                        ignored: false,
                        held: None,
                        inert: child.inert,
                        adopt: vec![],
                    });
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

fn undeclared_text(undeclared: &[Undeclared]) -> String {
    let mut out = String::new();
    let counted: Vec<&Undeclared> = undeclared.iter().filter(|u| u.counts()).collect();
    if !counted.is_empty() {
        let _ = writeln!(out, "Not declared in the spec, in the scope of what it manages ({}):", counted.len());
        for u in counted {
            let _ = writeln!(out, "  + {} ({}, id `{}`)", u.describe(), u.kind, u.id);
        }
        out.push('\n');
    }
    let inert: Vec<&Undeclared> = undeclared.iter().filter(|u| !u.ignored && u.inert.is_some()).collect();
    if !inert.is_empty() {
        let _ = writeln!(out, "Not declared, not counted as drift:");
        for u in inert {
            let _ = writeln!(out, "  . {}: {}", u.describe(), u.inert.as_deref().unwrap_or_default());
        }
        out.push('\n');
    }
    let ignored: Vec<&Undeclared> = undeclared.iter().filter(|u| u.ignored).collect();
    if !ignored.is_empty() {
        let _ = writeln!(out, "Ignored (drift.ignore in the spec):");
        for u in ignored {
            let _ = writeln!(out, "  . {}", u.describe());
        }
        out.push('\n');
    }
    out
}

/// What to run about each kind of finding: apply restores managed attributes, `drift --revert`
/// removes undeclared children, `drift --adopt` accepts either into the spec.
fn next_steps(drift: &[Drifted], undeclared: &[Undeclared]) -> String {
    let mut out = String::new();
    let managed = drift.iter().any(|d| d.deleted || d.changes.len() > d.unset.len());
    if managed {
        let _ = writeln!(
            out,
            "Changed or deleted resources: `cruddur-infra apply` (or `drift --revert`) restores what the spec says; \
             `cruddur-infra drift --adopt` writes what AWS has into the spec."
        );
    }
    if drift.iter().any(|d| !d.unset.is_empty()) {
        let _ = writeln!(
            out,
            "Attributes the spec leaves unset: `cruddur-infra drift --adopt` writes AWS's values into the spec; to \
             put the old values back, set them in the spec and apply."
        );
    }
    let counted: Vec<&Undeclared> = undeclared.iter().filter(|u| u.counts()).collect();
    if counted.iter().any(|u| u.removable) {
        let _ = writeln!(
            out,
            "Undeclared children: `cruddur-infra drift --revert` removes them; `cruddur-infra drift --adopt` lists them \
             in drift.ignore."
        );
    }
    if counted.iter().any(|u| !u.removable) {
        let _ = writeln!(
            out,
            "Undeclared children the engine cannot remove: remove them by hand, or list them in drift.ignore \
             (`cruddur-infra drift --adopt`)."
        );
    }
    out
}

fn as_change(d: &Drifted) -> ResourceChange {
    ResourceChange {
        changes: d.changes.clone(),
        reason: (!d.unset.is_empty()).then(|| Reason::UnsetChanged { names: d.unset.iter().cloned().collect() }),
        sensitive: d.sensitive.clone(),
        ..ResourceChange::new(d.addr.clone(), Action::Update)
    }
}

pub fn render_text(drift: &[Drifted], undeclared: &[Undeclared]) -> String {
    if !drifted(drift, undeclared) {
        let mut out = String::from(
            "No drift: every resource matches the last apply, and nothing undeclared is in their scope.\n",
        );
        if !undeclared.is_empty() {
            out.push('\n');
            out.push_str(&undeclared_text(undeclared));
        }
        return out;
    }
    let mut out = if drift.is_empty() {
        String::new()
    } else {
        format!("Drift detected: {} resource(s) changed outside cruddur-infra since the last apply.\n\n", drift.len())
    };
    for d in drift {
        if d.deleted {
            let _ = writeln!(out, "  # {} has been deleted\n", d.addr);
        } else {
            let _ = writeln!(out, "  # {} has changed", d.addr);
            if let Some(note) = as_change(d).reason {
                let _ = writeln!(out, "  # ({note})");
            }
            out.push_str(&super::render_body(&as_change(d)));
        }
    }
    out.push_str(&undeclared_text(undeclared));
    out.push_str(&next_steps(drift, undeclared));
    out
}

pub fn render_json(drift: &[Drifted], undeclared: &[Undeclared], show_sensitive: bool) -> Value {
    let resources: Vec<Value> = drift
        .iter()
        .map(|d| {
            let mut entry = super::json::resource(&as_change(d), show_sensitive);
            entry["deleted"] = json!(d.deleted);
            entry["unset_in_spec"] = json!(d.unset);
            if let Some(obj) = entry.as_object_mut() {
                for key in ["action", "imported", "id", "replace_because", "note"] {
                    obj.remove(key);
                }
            }
            entry
        })
        .collect();
    let children: Vec<Value> = undeclared
        .iter()
        .map(|u| {
            json!({"kind": u.kind, "parent": u.parent, "id": u.id, "what": u.what, "ignored": u.ignored,
                   "removable": u.removable, "inert": u.inert})
        })
        .collect();
    json!({
        "format_version": super::json::JSON_FORMAT_VERSION,
        "drifted": drifted(drift, undeclared),
        "resources": resources,
        "undeclared": children,
    })
}

pub fn render_markdown(drift: &[Drifted], undeclared: &[Undeclared]) -> String {
    if !drifted(drift, undeclared) {
        return "### cruddur-infra drift: none\n\nEvery resource matches the last apply.\n".into();
    }
    let counted = undeclared.iter().filter(|u| u.counts()).count();
    let mut out = format!(
        "### cruddur-infra drift: {} resource(s) changed outside cruddur-infra, {counted} undeclared\n\n",
        drift.len(),
    );
    if !undeclared.is_empty() {
        out.push_str("| not in the spec | in | id |\n|---|---|---|\n");
        for u in undeclared {
            let what = match (&u.inert, u.ignored) {
                (_, true) => format!("{} (ignored)", u.what),
                (Some(why), false) => format!("{} (not counted: {why})", u.what),
                (None, false) => u.what.clone(),
            };
            let _ = writeln!(out, "| {what} | {} | `{}` |", u.parent, u.id);
        }
        out.push('\n');
    }
    if drift.is_empty() {
        return out;
    }
    out.push_str("| resource | what happened |\n|---|---|\n");
    for d in drift {
        let what = if d.deleted {
            "**deleted**".to_string()
        } else {
            let name = |c: &AttrChange| {
                if d.unset.contains(&c.name) {
                    format!("`{}` (not in the spec)", c.name)
                } else {
                    format!("`{}`", c.name)
                }
            };
            d.changes.iter().map(name).collect::<Vec<_>>().join(", ") + " changed"
        };
        let _ = writeln!(out, "| `{}` | {what} |", d.addr);
    }
    out.push('\n');
    for d in drift.iter().filter(|d| !d.deleted) {
        super::markdown::details(&mut out, &format!("<code>{}</code>", d.addr), &super::render_body(&as_change(d)));
    }
    out
}
