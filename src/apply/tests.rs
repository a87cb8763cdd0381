//! Engine tests: plan and apply against an in-memory provider that records every call, to
//! prove ordering and what is (not) called.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;

use super::{Applier, RetryPolicy};
use crate::addr::ResourceAddr;
use crate::plan::{Action, Plan, PlanOptions, Planner};
use crate::provider::schema::{AttrType, Attribute, ResourceSchema};
use crate::provider::{Aws, AwsOptions, Created, Managed, ProviderError, Registry, ResourceKind};
use crate::spec::{Overrides, Spec, SpecSource};
use crate::state::LocalState;
use crate::value::Attrs;

/// A fake cloud: objects by id, and the log of calls made to it.
#[derive(Default)]
struct Cloud {
    objects: Mutex<BTreeMap<String, Attrs>>,
    log: Mutex<Vec<String>>,
}

struct Thing(Arc<Cloud>);

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "id").force_new(),
        Attribute::optional("peer", AttrType::String, "another thing's arn"),
        Attribute::optional("color", AttrType::String, "AWS fills in a default when unset"),
        Attribute::computed("arn", "arn:mem:NAME"),
    ],
};

#[async_trait]
impl ResourceKind for Thing {
    fn kind(&self) -> &'static str {
        "thing"
    }
    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }
    async fn read(&self, _: &Aws, id: &str, _: &Managed<'_>, _prior: &Attrs) -> Result<Option<Attrs>, ProviderError> {
        let mut found = self.0.objects.lock().expect("lock").get(id).cloned();
        if let Some(attrs) = found.as_mut() {
            attrs.entry("color").or_insert_with(|| json!("grey"));
        }
        Ok(found)
    }
    async fn create(&self, _: &Aws, _: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let name = desired["name"].as_str().expect("name").to_string();
        if name.starts_with("fail") {
            return Err(ProviderError::new("CreateThing", "InvalidName", "names starting with fail are refused"));
        }
        self.0.log.lock().expect("lock").push(format!("create {name}"));
        let mut attrs = desired.clone();
        attrs.insert("arn".into(), json!(format!("arn:mem:{name}")));
        self.0.objects.lock().expect("lock").insert(name.clone(), attrs);
        let mut computed = Attrs::new();
        computed.insert("arn".into(), json!(format!("arn:mem:{name}")));
        Ok(Created { id: name, attrs: computed })
    }
    async fn update(&self, _: &Aws, id: &str, desired: &Attrs, changed: &[&str]) -> Result<Attrs, ProviderError> {
        self.0.log.lock().expect("lock").push(format!("update {id} {}", changed.join(",")));
        let mut objects = self.0.objects.lock().expect("lock");
        let obj = objects.get_mut(id).expect("updated things exist");
        for c in changed {
            obj.insert((*c).to_string(), desired.get(*c).cloned().unwrap_or_default());
        }
        Ok(Attrs::new())
    }
    async fn delete(&self, _: &Aws, id: &str, _: &Attrs) -> Result<(), ProviderError> {
        self.0.log.lock().expect("lock").push(format!("delete {id}"));
        self.0.objects.lock().expect("lock").remove(id);
        Ok(())
    }
}

struct Engine {
    cloud: Arc<Cloud>,
    registry: Registry,
    aws: Aws,
    dir: tempfile::TempDir,
}

impl Engine {
    fn new() -> Self {
        let cloud = Arc::new(Cloud::default());
        let registry = Registry::new(vec![Box::new(Thing(cloud.clone()))]);
        Self { cloud, registry, aws: Aws::new(AwsOptions::default()), dir: tempfile::tempdir().expect("tempdir") }
    }

    fn spec(&self, text: &str) -> Spec {
        Spec::parse(SpecSource::new("t.yaml", text.to_string()), &self.registry, &Overrides::none())
            .expect("valid spec")
    }

    fn store(&self) -> LocalState {
        LocalState::new(self.dir.path().join("state.json"))
    }

    async fn plan(&self, spec: &Spec, destroy: bool) -> Plan {
        let prior = self.store().load().expect("state");
        let options = PlanOptions { refresh: true, parallelism: 4, destroy };
        Planner { registry: &self.registry, aws: &self.aws, options }.plan(spec, &prior).await.expect("plan")
    }

    /// Plans and applies; returns the calls made to the cloud during the apply.
    async fn apply(&self, text: &str, destroy: bool) -> Vec<String> {
        let spec = self.spec(text);
        let plan = self.plan(&spec, destroy).await;
        self.cloud.log.lock().expect("lock").clear();
        let store = self.store();
        store.lock("apply").expect("lock");
        let cancelled = AtomicBool::new(false);
        let applier = Applier {
            registry: &self.registry,
            aws: &self.aws,
            store: &store,
            parallelism: 4,
            retry: RetryPolicy::default(),
            cancelled: &cancelled,
        };
        let report = applier.apply(&spec, &plan).await.expect("state saved");
        assert!(!report.failed(), "apply failed: {:?}", report.outcomes);
        self.cloud.log.lock().expect("lock").clone()
    }
}

const CHAIN: &str = "
resources:
  thing:
    a: { name: a, peer: '${thing.b.arn}' }
    b: { name: b, peer: '${thing.c.arn}' }
    c: { name: c }
";

#[tokio::test]
async fn creates_follow_references_and_get_their_values() {
    // a references b references c: c is created first, and each peer is the real ARN.
    let e = Engine::new();
    assert_eq!(e.apply(CHAIN, false).await, vec!["create c", "create b", "create a"]);
    assert_eq!(e.cloud.objects.lock().expect("lock")["a"]["peer"], "arn:mem:b");
    let again = e.plan(&e.spec(CHAIN), false).await;
    assert!(!again.has_changes(), "second plan: {:?}", again.changes);
}

#[tokio::test]
async fn destroy_deletes_dependents_first() {
    // Reverse dependency order: a, then b, then c.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    assert_eq!(e.apply(CHAIN, true).await, vec!["delete a", "delete b", "delete c"]);
    assert!(e.cloud.objects.lock().expect("lock").is_empty());
    assert!(e.store().load().expect("state").resources.is_empty());
}

#[tokio::test]
async fn replace_deletes_then_creates_and_dependents_see_the_new_value() {
    // Renaming c replaces it; b's peer (unknown at plan time) is updated afterwards, and
    // only that attribute is sent.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    let renamed = CHAIN.replace("c: { name: c }", "c: { name: c2 }");
    let plan = e.plan(&e.spec(&renamed), false).await;
    let action = |n: &str| plan.change(&ResourceAddr::new("thing", n)).map(|c| c.action);
    assert_eq!(
        (action("a"), action("b"), action("c")),
        (Some(Action::NoOp), Some(Action::Update), Some(Action::Replace))
    );
    assert_eq!(e.apply(&renamed, false).await, vec!["delete c", "create c2", "update b peer"]);
    assert_eq!(e.cloud.objects.lock().expect("lock")["b"]["peer"], "arn:mem:c2");
}

#[tokio::test]
async fn removed_resources_are_deleted_and_forgotten() {
    // Dropping a resource from the spec deletes it and removes it from the state.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    let fewer = "resources:\n  thing:\n    c: { name: c }\n";
    assert_eq!(e.apply(fewer, false).await, vec!["delete a", "delete b"]);
    let state = e.store().load().expect("state");
    assert_eq!(state.resources.keys().map(ToString::to_string).collect::<Vec<_>>(), vec!["thing.c"]);
}

#[tokio::test]
async fn each_change_is_saved_as_it_happens() {
    // The state's serial counts one write per resource created (plus the outputs write).
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    let state = e.store().load().expect("state");
    assert_eq!(state.resources.len(), 3);
    assert!(state.serial >= 3, "serial {}", state.serial);
}

#[tokio::test]
async fn defaults_aws_fills_in_never_become_changes() {
    // A read reports `color` though the spec never set it: after any number of applies the
    // plan stays empty, because the refreshed state keeps only what the spec manages.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    assert!(e.apply(CHAIN, false).await.is_empty(), "the second apply changes nothing");
    let plan = e.plan(&e.spec(CHAIN), false).await;
    assert!(!plan.has_changes(), "third plan: {:?}", plan.changes);
    assert!(e.store().load().expect("state").resources.values().all(|r| !r.attributes.contains_key("color")));
}
