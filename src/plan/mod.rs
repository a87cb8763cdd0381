//! The plan is data: for each resource an [`Action`], the attribute-level changes, and for a
//! replacement the attributes that force it. Built from the spec, the prior state and what AWS
//! reports now (the refreshed state), which are kept apart.

pub mod cause;
pub mod diff;
pub mod drift;
pub mod json;
pub mod markdown;
pub mod moves;
mod planner;
mod reason;
pub mod rebuild;
mod render;
pub mod revert;
pub mod saved;
mod target;
pub mod undo;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use planner::{PlanError, PlanOptions, Planner, adopt, evaluate, unset_view};
pub use reason::Reason;
pub use render::{SENSITIVE, render_body, render_text};
pub use target::{TargetError, restrict_to_targets};

use crate::addr::ResourceAddr;
use crate::state::State;
use crate::value::Attrs;

/// What apply will do to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Destroy, then create: an attribute that AWS cannot change in place differs.
    Replace,
    Delete,
    /// Drop from the state and keep in AWS: a resource adopted with `import_id` (or
    /// `lifecycle.retain_on_destroy`) that the spec no longer has, or destroy.
    Forget,
}

impl Action {
    /// Whether the resource leaves the state: destroyed, or forgotten.
    pub fn removes(self) -> bool {
        matches!(self, Action::Delete | Action::Forget)
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Forget => ".",
        }
    }
}

/// One attribute's planned change. `before` is what AWS reports now; `after` may be unknown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttrChange {
    pub name: String,
    pub before: Value,
    pub after: Value,
    pub forces_replacement: bool,
}

/// The planned change of one resource.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResourceChange {
    pub addr: ResourceAddr,
    pub action: Action,
    /// AWS's id of the existing resource, if there is one.
    pub id: Option<String>,
    pub changes: Vec<AttrChange>,
    /// The values to apply (may contain unknowns that apply resolves).
    pub desired: Option<Attrs>,
    /// Why the action was chosen, when it is not obvious from the changes.
    pub reason: Option<Reason>,
    /// The resource exists already and is adopted into the state (`import_id`).
    pub imported: bool,
    /// Attributes whose values come from sensitive variables: never shown.
    #[serde(default)]
    pub sensitive: std::collections::BTreeSet<String>,
    /// `lifecycle: prevent_destroy` from the spec, recorded in the state with the resource.
    #[serde(default)]
    pub prevent_destroy: bool,
    /// Kept in AWS when destroyed or replaced: adopted (`import_id`), or the spec says so.
    #[serde(default)]
    pub retain_on_destroy: bool,
    /// A replacement made before the old object is deleted, which waits until what refers to
    /// the resource has moved to the new one (AWS refuses to delete it while referred to).
    #[serde(default)]
    pub creates_first: bool,
    /// Ids of earlier objects of this resource that a replacement left behind, to delete.
    #[serde(default)]
    pub deposed: Vec<String>,
    /// Resources this one comes after (from the spec, or for deletes, from the state).
    pub dependencies: BTreeSet<ResourceAddr>,
    /// For a create: the open intent of a command that died, which the refresh looked for and
    /// did not find. The create is sent again under its token, so that a create of that command
    /// AWS finishes only now (still in flight when it died) meets it as the same object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<crate::state::Intent>,
    /// The address it had before a move (`moved:` in the spec, or a rename found): the same
    /// AWS object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<moves::MovedFrom>,
    /// For a replacement: why, per attribute that forces it, back to the edit that started it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_causes: Vec<cause::Cause>,
    /// How the spec declares it, recorded in the state once it is applied (`undo` plans back
    /// to it); `None` for a resource the spec no longer declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration: Option<serde_json::Value>,
}

impl ResourceChange {
    /// A change of `addr` by `action` with nothing else known yet: no id, no attribute
    /// changes, no reason, no flags. Callers set what they know with struct update syntax.
    pub fn new(addr: ResourceAddr, action: Action) -> Self {
        Self {
            addr,
            action,
            id: None,
            changes: vec![],
            desired: None,
            reason: None,
            imported: false,
            sensitive: BTreeSet::new(),
            prevent_destroy: false,
            retain_on_destroy: false,
            creates_first: false,
            deposed: vec![],
            dependencies: BTreeSet::new(),
            intent: None,
            moved_from: None,
            replace_causes: vec![],
            declaration: None,
        }
    }

    /// Attributes whose change forces the replacement.
    pub fn replace_reasons(&self) -> Vec<&str> {
        self.changes.iter().filter(|c| c.forces_replacement).map(|c| c.name.as_str()).collect()
    }

    /// The causes worth a line of their own beside the headline that names the attributes:
    /// those that follow another resource, or began outside cruddur-infra.
    pub fn telling_causes(&self) -> impl Iterator<Item = &cause::Cause> {
        self.replace_causes.iter().filter(|c| c.links.len() > 1 || c.origin != cause::Origin::Spec)
    }
}

/// A whole plan.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    /// Every resource in the spec or the state, by address.
    pub changes: Vec<ResourceChange>,
    /// The prior state with each resource's attributes as AWS reports them now; resources
    /// deleted outside the engine are absent.
    pub refreshed: State,
    /// The state the plan was made from, as read before refreshing.
    pub prior: State,
    /// Answers to the spec's lookups.
    pub lookups: std::collections::BTreeMap<ResourceAddr, Attrs>,
    /// True when the plan destroys everything (`destroy`).
    pub destroy: bool,
    /// The permission statements the plan adds and removes, by resource.
    #[serde(default)]
    pub permissions: Vec<crate::permissions::PermissionChange>,
    /// The built-in policy rules the planned resources break, waived ones included.
    #[serde(default)]
    pub policy: Vec<crate::permissions::rules::Finding>,
    /// What a reviewer must not miss although AWS is as the spec says.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Counts for the summary line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub import: usize,
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub forget: usize,
    pub moved: usize,
}

/// The changes that turn `live` into `desired`, comparing only what `desired` sets (as a plan
/// does for a resource with no prior record).
pub fn attribute_changes(schema: &crate::provider::ResourceSchema, desired: &Attrs, live: &Attrs) -> Vec<AttrChange> {
    diff::diff(schema, desired, &Attrs::new(), live)
}

impl Summary {
    /// `1 to import, 0 to add, 1 to change, 0 to destroy, 1 to move`: the counts a plan's
    /// summary line gives (imports, forgets and moves only when there are any).
    pub fn counts(&self) -> String {
        let imports = if self.import > 0 { format!("{} to import, ", self.import) } else { String::new() };
        let forgets = if self.forget > 0 { format!(", {} to forget", self.forget) } else { String::new() };
        let moves = if self.moved > 0 { format!(", {} to move", self.moved) } else { String::new() };
        format!("{imports}{} to add, {} to change, {} to destroy{forgets}{moves}", self.add, self.change, self.destroy)
    }

    /// Counts one resource's action as the summary line does: a replace is one add and one
    /// destroy. Plans count what they will do, apply reports count what was done.
    pub fn count(&mut self, action: Action) {
        match action {
            Action::Create => self.add += 1,
            Action::Update => self.change += 1,
            Action::Replace => {
                self.add += 1;
                self.destroy += 1;
            }
            Action::Delete => self.destroy += 1,
            Action::Forget => self.forget += 1,
            Action::NoOp => {}
        }
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            s.import += usize::from(c.imported);
            s.destroy += c.deposed.len();
            s.moved += usize::from(c.moved_from.is_some());
            s.count(c.action);
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.action != Action::NoOp || c.imported || !c.deposed.is_empty() || c.moved_from.is_some())
    }

    /// Whether the plan moves a resource to a new address (its changes are at the new ones).
    pub fn moves(&self) -> bool {
        self.changes.iter().any(|c| c.moved_from.is_some())
    }

    /// A reference's value after apply: a lookup's answer, else the state's attribute.
    pub fn value_of(&self, state: &State, addr: &ResourceAddr, attr: &str) -> serde_json::Value {
        value_in(&self.lookups, state, addr, attr)
    }

    /// What a reviewer must not miss although AWS is as the spec says (each kind's
    /// `ResourceKind::plan_warning`: a function running code built with `--build-profile dev`).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Policy findings no waiver covers.
    pub fn policy_failures(&self) -> impl Iterator<Item = &crate::permissions::rules::Finding> {
        self.policy.iter().filter(|f| f.waived.is_none())
    }

    pub fn change(&self, addr: &ResourceAddr) -> Option<&ResourceChange> {
        self.changes.iter().find(|c| &c.addr == addr)
    }
}

/// A reference's value given the lookups' answers and a state: a lookup's answer, else the
/// state's attribute, else unknown.
pub fn value_in(
    lookups: &BTreeMap<ResourceAddr, Attrs>,
    state: &State,
    addr: &ResourceAddr,
    attr: &str,
) -> serde_json::Value {
    match lookups.get(addr) {
        Some(answer) => answer.get(attr).cloned().unwrap_or_default(),
        None => state
            .resources
            .get(addr)
            .and_then(|r| r.attributes.get(attr).cloned())
            .unwrap_or_else(crate::value::unknown),
    }
}
