//! Engine tests: plan and apply against an in-memory provider that records every call and can
//! fail on demand (before doing the work, or after doing it with the answer lost), to prove
//! ordering, what is (not) called, and that nothing is lost or made twice.

use crate::provider::Fields;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_with::skip_serializing_none;

use super::{Applier, ApplyError, ApplyEvents, ApplyReport};
use crate::addr::ResourceAddr;
use crate::graph::NodeOutcome;
use crate::plan::{Action, Plan, PlanOptions, Planner, Reason};
use crate::provider::ownership::Tagged;
use crate::provider::schema::{AttrType, Attribute, ResourceSchema};
use crate::provider::{
    Aws, AwsOptions, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Prior, ProviderError, Registry, Typed,
};
use crate::provider::{DependentsWait, Lifecycle};
use crate::retry::RetryNotice;
use crate::retry::RetryPolicy;
use crate::spec::{Overrides, Spec, SpecSource};
use crate::state::{Acquired, Intent, LocalState, ResourceState, ResourceStatus, State, StateBackend, StateError};
use crate::value::Attrs;
use std::sync::atomic::Ordering::SeqCst;

/// How a scripted failure behaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// AWS refuses: nothing is done.
    Before(&'static str),
    /// AWS does the work, and the answer is lost on the way back.
    After(&'static str),
}

/// One thing in the fake cloud.
#[derive(Clone, Debug)]
struct Object {
    attrs: Attrs,
    /// The ownership tags it was created with.
    tags: Vec<(String, String)>,
}

/// A fake cloud: objects by id, the log of calls made to it, and failures to inject.
#[derive(Default)]
struct Cloud {
    objects: Mutex<BTreeMap<String, Object>>,
    log: Mutex<Vec<String>>,
    faults: Mutex<VecDeque<(&'static str, Fault)>>,
    /// How long a slow resource takes to become ready, before it looks for what refers to it.
    ready_after: Mutex<std::time::Duration>,
    /// How many of the next finds see nothing yet (a listing that lags a create).
    lagging_finds: std::sync::atomic::AtomicUsize,
}

impl Cloud {
    fn log(&self, line: String) {
        self.log.lock().expect("lock").push(line);
    }

    /// Fails the next call of `op` as `fault` says.
    fn fail(&self, op: &'static str, fault: Fault) {
        self.faults.lock().expect("lock").push_back((op, fault));
    }

    /// The scripted failure for this call of `op`, if any.
    fn fault(&self, op: &'static str) -> Option<Fault> {
        let mut faults = self.faults.lock().expect("lock");
        let i = faults.iter().position(|(o, _)| *o == op)?;
        faults.remove(i).map(|(_, f)| f)
    }

    /// Runs `work` as a call of `op`, with any scripted failure.
    fn call<T>(&self, op: &'static str, work: impl FnOnce() -> T) -> Result<T, ProviderError> {
        match self.fault(op) {
            Some(Fault::Before(code)) => Err(ProviderError::new(op, code, "injected before the work")),
            Some(Fault::After(code)) => {
                work();
                Err(ProviderError::new(op, code, "injected after the work: the answer was lost"))
            }
            None => Ok(work()),
        }
    }

    fn names(&self) -> Vec<String> {
        self.objects.lock().expect("lock").keys().cloned().collect()
    }
}

struct Thing(Arc<Cloud>);

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "id").force_new(),
        Attribute::optional("peer", AttrType::String, "another thing's arn"),
        Attribute::optional("color", AttrType::String, "set after creation; AWS fills in a default when unset"),
        Attribute::computed("arn", "arn:mem:NAME"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, crate::provider::Planned)]
#[serde(deny_unknown_fields)]
struct ThingSpec {
    name: String,
    peer: Option<String>,
    color: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ThingComputed {
    arn: String,
}

#[async_trait]
impl Kind for Thing {
    const NAME: &'static str = "thing";
    type Spec = ThingSpec;
    type Computed = ThingComputed;
    // Like an API Gateway integration: what another thing refers to cannot be deleted.
    const LIFECYCLE: Lifecycle = Lifecycle { create_before_destroy: true, ..Lifecycle::DEFAULT };

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        _: &Aws,
        id: &str,
        _: &Managed<'_>,
        _prior: &Prior<ThingSpec, ThingComputed>,
    ) -> Result<Option<(ThingSpec, ThingComputed)>, ProviderError> {
        let found = self.0.call("Read", || self.0.objects.lock().expect("lock").get(id).cloned())?;
        Ok(found.map(|o| {
            let get = |k: &str| o.attrs.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let spec =
                ThingSpec { name: id.to_string(), peer: get("peer"), color: get("color").or(Some("grey".into())) };
            (spec, ThingComputed { arn: format!("arn:mem:{id}") })
        }))
    }

    async fn create(
        &self,
        _: &Aws,
        spec: &ThingSpec,
        owner: &Owner,
    ) -> Result<Created<ThingComputed, Self::Spec>, ProviderError> {
        if spec.name.starts_with("fail") {
            return Err(ProviderError::new("CreateThing", "InvalidName", "names starting with fail are refused"));
        }
        let name = spec.name.clone();
        let made = self.0.call("Create", || {
            let mut objects = self.0.objects.lock().expect("lock");
            if objects.contains_key(&name) {
                return false;
            }
            let mut attrs = Attrs::new();
            if let Some(peer) = &spec.peer {
                attrs.insert("peer".into(), json!(peer));
            }
            let tags = owner.tags().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            objects.insert(name.clone(), Object { attrs, tags });
            true
        })?;
        if !made {
            return Err(ProviderError::new("CreateThing", "EntityAlreadyExists", format!("{name} exists")));
        }
        self.0.log(format!("create {name}"));
        Ok(Created::new(name.clone(), ThingComputed { arn: format!("arn:mem:{name}") }).deferring(&["color"], &[]))
    }

    async fn update(
        &self,
        _: &Aws,
        id: &str,
        spec: &ThingSpec,
        changed: &[ThingSpecField],
        _owner: &Owner,
    ) -> Result<Option<ThingComputed>, ProviderError> {
        let desired = serde_json::to_value(spec).expect("json");
        let changed: Vec<&str> = changed.iter().map(|c| c.name()).collect();
        self.0.call("Update", || {
            let mut objects = self.0.objects.lock().expect("lock");
            let obj = objects.get_mut(id).expect("updated things exist");
            for c in &changed {
                obj.attrs.insert((*c).to_string(), desired.get(*c).cloned().unwrap_or_default());
            }
        })?;
        self.0.log(format!("update {id} {}", changed.join(",")));
        Ok(None)
    }

    async fn wait_ready(&self, _: &Aws, id: &str, _spec: &ThingSpec) -> Result<(), ProviderError> {
        self.0.call("WaitReady", || ())?;
        self.0.log(format!("ready {id}"));
        Ok(())
    }

    async fn find(
        &self,
        _: &Aws,
        spec: &ThingSpec,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        self.0.log(format!("find {}", spec.name));
        let lagging = self.0.lagging_finds.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok();
        let found = self.0.call("Find", || self.0.objects.lock().expect("lock").get(&spec.name).cloned())?;
        let found = found.filter(|_| !lagging);
        Ok(found.map(|o| match owner.judge_tags(o.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Tagged::Ours => Found::Ours { id: spec.name.clone() },
            _ => Found::NotOurs { id: spec.name.clone(), why: "made by someone else".into() },
        }))
    }

    async fn delete(
        &self,
        _: &Aws,
        id: &str,
        _prior: &Prior<ThingSpec, ThingComputed>,
    ) -> Result<Deleted, ProviderError> {
        let arn = format!("arn:mem:{id}");
        let referrer = self
            .0
            .objects
            .lock()
            .expect("lock")
            .iter()
            .find(|(_, o)| o.attrs.get("peer") == Some(&json!(arn)))
            .map(|(k, _)| k.clone());
        if let Some(referrer) = referrer {
            return Err(ProviderError::new(
                "DeleteThing",
                "ConflictException",
                format!("{id} is referenced by {referrer}"),
            ));
        }
        let removed = self.0.call("Delete", || self.0.objects.lock().expect("lock").remove(id))?;
        if removed.is_none() {
            return Err(ProviderError::new("DeleteThing", "NoSuchThing", format!("{id} is gone")));
        }
        self.0.log(format!("delete {id}"));
        Ok(Deleted::Yes)
    }
}

/// Like a CloudFront distribution: known (an id, an ARN) at once, ready much later; what
/// depends on it needs only the ARN. Here it becomes ready only once a thing exists that refers
/// to it, so an engine that made dependents wait for readiness would never finish.
struct Slow(Arc<Cloud>);

static SLOW: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "id").force_new(),
        Attribute::computed("arn", "arn:slow:NAME"),
    ],
};

#[derive(Debug, Serialize, Deserialize, Fields, crate::provider::Planned)]
#[serde(deny_unknown_fields)]
struct SlowSpec {
    name: String,
}

#[async_trait]
impl Kind for Slow {
    const NAME: &'static str = "slow";
    type Spec = SlowSpec;
    type Computed = ThingComputed;
    const LIFECYCLE: Lifecycle = Lifecycle { dependents_wait: DependentsWait::Id, ..Lifecycle::DEFAULT };

    fn schema(&self) -> &'static ResourceSchema {
        &SLOW
    }

    async fn read(
        &self,
        _: &Aws,
        id: &str,
        _: &Managed<'_>,
        _: &Prior<SlowSpec, ThingComputed>,
    ) -> Result<Option<(SlowSpec, ThingComputed)>, ProviderError> {
        let exists = self.0.objects.lock().expect("lock").contains_key(id);
        Ok(exists.then(|| (SlowSpec { name: id.to_string() }, ThingComputed { arn: format!("arn:slow:{id}") })))
    }

    async fn create(
        &self,
        _: &Aws,
        spec: &SlowSpec,
        _: &Owner,
    ) -> Result<Created<ThingComputed, Self::Spec>, ProviderError> {
        if spec.name.starts_with("fail") {
            return Err(ProviderError::new("CreateSlow", "CNAMEAlreadyExists", "refused"));
        }
        self.0.objects.lock().expect("lock").insert(spec.name.clone(), Object { attrs: Attrs::new(), tags: vec![] });
        self.0.log(format!("create slow {}", spec.name));
        Ok(Created::new(spec.name.clone(), ThingComputed { arn: format!("arn:slow:{}", spec.name) }))
    }

    async fn update(
        &self,
        _: &Aws,
        _: &str,
        _: &SlowSpec,
        _: &[SlowSpecField],
        _: &Owner,
    ) -> Result<Option<ThingComputed>, ProviderError> {
        Ok(None)
    }

    async fn wait_ready(&self, _: &Aws, id: &str, _: &SlowSpec) -> Result<(), ProviderError> {
        let delay = *self.0.ready_after.lock().expect("lock");
        tokio::time::sleep(delay).await;
        let referred = || {
            self.0
                .objects
                .lock()
                .expect("lock")
                .values()
                .any(|o| o.attrs.get("peer") == Some(&json!(format!("arn:slow:{id}"))))
        };
        for _ in 0..1000 {
            if referred() {
                self.0.log(format!("ready slow {id}"));
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        Err(ProviderError::new("WaitSlow", "NeverReady", "nothing that refers to it was made while it was waited for"))
    }

    async fn find(&self, _: &Aws, _: &SlowSpec, _: &Owner, _: FindReason) -> Result<Option<Found>, ProviderError> {
        Ok(None)
    }

    async fn delete(&self, _: &Aws, id: &str, _: &Prior<SlowSpec, ThingComputed>) -> Result<Deleted, ProviderError> {
        self.0.objects.lock().expect("lock").remove(id);
        Ok(Deleted::Yes)
    }
}

/// A store that remembers every write, in order, as `addr status`.
struct RecordingStore {
    inner: LocalState<'static>,
    writes: Mutex<Vec<String>>,
    /// The cloud's call log: each write is logged there too, so a test sees writes and calls
    /// in the one order they happened.
    calls: Arc<Cloud>,
}

#[async_trait]
impl StateBackend for RecordingStore {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn load(&self) -> Result<State, StateError> {
        StateBackend::load(&self.inner).await
    }
    async fn lock(&self, operation: &str) -> Result<Acquired, StateError> {
        StateBackend::lock(&self.inner, operation).await
    }
    async fn unlock(&self, lock: &crate::state::LockInfo) -> Result<(), StateError> {
        StateBackend::unlock(&self.inner, lock).await
    }
    async fn force_unlock(&self, id: &str) -> Result<crate::state::LockInfo, StateError> {
        StateBackend::force_unlock(&self.inner, id).await
    }
    async fn remove(&self) -> Result<(), StateError> {
        StateBackend::remove(&self.inner).await
    }
    async fn save(&self, state: &State) -> Result<(), StateError> {
        StateBackend::save(&self.inner, state).await
    }
    async fn record(
        &self,
        state: &State,
        addr: &ResourceAddr,
        entry: Option<&ResourceState>,
    ) -> Result<(), StateError> {
        let what = match entry.map(|e| &e.status) {
            None => "gone",
            Some(ResourceStatus::Pending(_)) => "intent",
            Some(ResourceStatus::Creating) => "creating",
            Some(ResourceStatus::Ready) => "ready",
        };
        let result = StateBackend::record(&self.inner, state, addr, entry).await;
        self.writes.lock().expect("lock").push(format!("{addr} {what}"));
        self.calls.log(format!("stored {addr} {what}"));
        result
    }
}

/// Remembers the events of an apply.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl ApplyEvents for Recorder {
    fn started(&self, addr: &ResourceAddr, action: Action, _: Option<&str>) {
        self.0.lock().expect("lock").push(format!("{addr} started {action:?}"));
    }
    fn still_working(&self, addr: &ResourceAddr, action: Action, elapsed: std::time::Duration) {
        self.0.lock().expect("lock").push(format!("{addr} still {action:?} {}", elapsed.as_millis() >= 10));
    }
    fn finished(&self, addr: &ResourceAddr, action: Action, _: Option<&str>, _: std::time::Duration) {
        self.0.lock().expect("lock").push(format!("{addr} finished {action:?}"));
    }
    fn ready(&self, addr: &ResourceAddr, _: std::time::Duration) {
        self.0.lock().expect("lock").push(format!("{addr} ready"));
    }
    fn failed(&self, addr: &ResourceAddr, action: Action, error: &ApplyError, _: std::time::Duration) {
        self.0.lock().expect("lock").push(format!("{addr} failed {action:?}: {error}"));
    }
    fn retrying(&self, addr: &ResourceAddr, notice: &RetryNotice) {
        self.0.lock().expect("lock").push(format!("{addr} retry {} {}", notice.error.operation, notice.error.code));
    }
    fn adopted(&self, addr: &ResourceAddr, id: &str) {
        self.0.lock().expect("lock").push(format!("{addr} adopted {id}"));
    }
    fn created(&self, addr: &ResourceAddr, id: &str) {
        self.0.lock().expect("lock").push(format!("{addr} created {id}"));
    }
}

struct Engine {
    cloud: Arc<Cloud>,
    registry: Registry,
    aws: Aws,
    dir: tempfile::TempDir,
}

/// What one apply did: the cloud calls, the store writes, the events, the outcome.
struct Applied {
    calls: Vec<String>,
    /// The calls and the store's writes, in the order they happened.
    sequence: Vec<String>,
    writes: Vec<String>,
    events: Vec<String>,
    report: ApplyReport,
}

impl Applied {
    fn failures(&self) -> Vec<String> {
        self.report
            .outcomes
            .values()
            .filter_map(|o| match o {
                NodeOutcome::Failed(e) => Some(e.to_string()),
                _ => None,
            })
            .collect()
    }
}

impl Engine {
    fn new() -> Self {
        let cloud = Arc::new(Cloud::default());
        let registry = Registry::new(vec![Typed::boxed(Thing(cloud.clone())), Typed::boxed(Slow(cloud.clone()))]);
        Self {
            cloud,
            registry,
            aws: Aws::new(AwsOptions { retry: RetryPolicy::fast(), ..Default::default() }),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn spec(&self, text: &str) -> Spec {
        Spec::parse(SpecSource::new("t.yaml", text.to_string()), &self.registry, &Overrides::none())
            .expect("valid spec")
    }

    fn store(&self) -> LocalState<'static> {
        LocalState::new(self.dir.path().join("state.json"))
    }

    async fn state(&self) -> State {
        self.store().load().await.expect("state")
    }

    async fn plan(&self, spec: &Spec, destroy: bool) -> Plan {
        let prior = self.store().load().await.expect("state");
        let options = PlanOptions { parallelism: 4, destroy, ..Default::default() };
        Planner { registry: &self.registry, aws: &self.aws, options }.plan(spec, &prior).await.expect("plan")
    }

    /// Plans and applies, whatever happens.
    async fn try_apply(&self, text: &str, destroy: bool) -> Applied {
        let spec = self.spec(text);
        let plan = self.plan(&spec, destroy).await;
        self.apply_plan(&spec, &plan).await
    }

    async fn apply_plan(&self, spec: &Spec, plan: &Plan) -> Applied {
        self.cloud.log.lock().expect("lock").clear();
        let store = RecordingStore { inner: self.store(), writes: Mutex::new(vec![]), calls: self.cloud.clone() };
        store.inner.lock("apply").expect("lock");
        let cancelled = AtomicBool::new(false);
        let events = Recorder::default();
        let applier = Applier {
            registry: &self.registry,
            aws: &self.aws,
            store: &store,
            parallelism: 4,
            cancelled: &cancelled,
            events: &events,
            progress_every: std::time::Duration::from_millis(10),
            builds: &crate::build::Builds::default(),
        };
        let report = applier.apply(spec, plan).await.expect("state saved");
        let sequence = self.cloud.log.lock().expect("lock").clone();
        Applied {
            calls: sequence.iter().filter(|l| !l.starts_with("stored ")).cloned().collect(),
            sequence,
            writes: store.writes.into_inner().expect("lock"),
            events: events.0.into_inner().expect("lock"),
            report,
        }
    }

    /// Plans and applies; returns the calls made to the cloud during the apply.
    async fn apply(&self, text: &str, destroy: bool) -> Vec<String> {
        let applied = self.try_apply(text, destroy).await;
        assert!(!applied.report.failed(), "apply failed: {:?}", applied.failures());
        applied.calls
    }

    async fn assert_converged(&self, text: &str) {
        let plan = self.plan(&self.spec(text), false).await;
        assert!(!plan.has_changes(), "the next plan is not empty: {:?}", plan.changes);
    }
}

const CHAIN: &str = "
resources:
  thing:
    a: { name: a, peer: '${thing.b.arn}' }
    b: { name: b, peer: '${thing.c.arn}' }
    c: { name: c }
";

const ONE: &str = "resources:\n  thing:\n    t: { name: t, color: blue }\n";

fn addr(name: &str) -> ResourceAddr {
    ResourceAddr::new("thing", name)
}

#[tokio::test]
async fn creates_follow_references_and_get_their_values() {
    // a references b references c: c is created first, and each peer is the real ARN.
    let e = Engine::new();
    let calls = e.apply(CHAIN, false).await;
    let creates: Vec<&String> = calls.iter().filter(|c| c.starts_with("create")).collect();
    assert_eq!(creates, ["create c", "create b", "create a"]);
    assert_eq!(e.cloud.objects.lock().expect("lock")["a"].attrs["peer"], "arn:mem:b");
    e.assert_converged(CHAIN).await;
}

#[tokio::test]
async fn a_create_records_its_intent_then_the_resource_then_it_ready_each_before_the_next_step() {
    // The store sees the intent before the creating call, the resource (still creating) the
    // moment the call answers, and the finished resource after its settings and readiness.
    let e = Engine::new();
    let applied = e.try_apply(ONE, false).await;
    assert_eq!(applied.writes, ["thing.t intent", "thing.t creating", "thing.t ready"]);
    assert_eq!(applied.calls, ["create t", "update t color", "ready t"]);
    assert_eq!(applied.events, ["thing.t started Create", "thing.t created t", "thing.t finished Create"]);
    let state = e.state().await;
    let t = &state.resources[&addr("t")];
    assert_eq!((t.id.as_str(), &t.status), ("t", &ResourceStatus::Ready));
    assert_eq!(t.attributes["color"], "blue");
    e.assert_converged(ONE).await;
}

#[tokio::test]
async fn a_throttled_setting_after_the_create_is_retried_without_creating_again() {
    // The settings call is throttled twice: it is retried, and the create runs once.
    let e = Engine::new();
    e.cloud.fail("Update", Fault::Before("Throttling"));
    e.cloud.fail("Update", Fault::Before("ThrottlingException"));
    let applied = e.try_apply(ONE, false).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert_eq!(applied.calls.iter().filter(|c| c.starts_with("create")).count(), 1);
    assert_eq!(applied.events.iter().filter(|e| e.contains("retry Update")).count(), 2, "{:?}", applied.events);
    e.assert_converged(ONE).await;
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_and_adopted_not_made_twice() {
    // The creating call succeeds but its answer is lost: the engine looks before trying again,
    // finds its own thing by the ownership tags, and adopts it.
    let e = Engine::new();
    e.cloud.fail("Create", Fault::After("DispatchFailure"));
    let applied = e.try_apply(ONE, false).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert_eq!(e.cloud.names(), ["t"]);
    assert!(applied.events.contains(&"thing.t adopted t".to_string()), "{:?}", applied.events);
    assert_eq!(applied.writes.last().map(String::as_str), Some("thing.t ready"));
    assert_eq!(e.cloud.objects.lock().expect("lock")["t"].attrs["color"], "blue", "settings applied to it");
    e.assert_converged(ONE).await;
}

#[tokio::test]
async fn a_create_that_failed_before_the_work_is_looked_for_and_then_retried() {
    // A 5xx may or may not have done the work: the engine looks, finds nothing, creates.
    let e = Engine::new();
    e.cloud.fail("Create", Fault::Before("InternalError"));
    let applied = e.try_apply(ONE, false).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert_eq!(applied.calls[..2], ["find t".to_string(), "create t".to_string()]);
    assert_eq!(e.cloud.names(), ["t"]);
}

#[tokio::test]
async fn an_already_exists_after_a_lost_answer_keeps_the_intent_when_the_find_lags() {
    // The first create's answer is lost; the retry is told the thing exists, and the listing
    // does not show it yet: the apply fails with AWS's answer, but the intent stays, so the
    // next apply finds and adopts what the first attempt made instead of forgetting it.
    let e = Engine::new();
    e.cloud.fail("Create", Fault::After("InternalError"));
    e.cloud.lagging_finds.store(2, SeqCst);
    let applied = e.try_apply(ONE, false).await;
    assert!(applied.report.failed());
    assert!(e.state().await.resources[&addr("t")].pending().is_some(), "the intent is kept");
    let applied = e.try_apply(ONE, false).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert!(!applied.calls.iter().any(|c| c.starts_with("create")), "{:?}", applied.calls);
    assert_eq!(e.cloud.names(), ["t"]);
    e.assert_converged(ONE).await;
}

#[tokio::test]
async fn something_in_the_way_that_is_not_ours_is_an_error_naming_it_and_the_intent_is_dropped() {
    // A thing named t exists without our tags: never adopted, the error says what to do.
    let e = Engine::new();
    e.cloud.objects.lock().expect("lock").insert("t".into(), Object { attrs: Attrs::new(), tags: vec![] });
    let applied = e.try_apply(ONE, false).await;
    let failures = applied.failures();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].contains("`t` exists and was not made for it"), "{failures:?}");
    assert_eq!(applied.writes, ["thing.t intent", "thing.t gone"], "the intent is dropped");
    assert!(e.state().await.resources.is_empty());
    let NodeOutcome::Failed(err) = &applied.report.outcomes[&addr("t")] else { panic!("failed") };
    assert!(err.hint().is_some_and(|h| h.contains("cruddur-infra import thing.t t")), "{:?}", err.hint());
}

#[tokio::test]
async fn a_failed_wait_leaves_the_resource_recorded_and_the_next_apply_finishes_it() {
    // The resource exists but never became ready: it stays in the state as creating; the next
    // plan says it will be finished, and the next apply waits again without creating.
    let e = Engine::new();
    e.cloud.fail("WaitReady", Fault::Before("FunctionNotActive"));
    let applied = e.try_apply(ONE, false).await;
    assert!(applied.report.failed());
    assert_eq!(e.state().await.resources[&addr("t")].status, ResourceStatus::Creating);
    let plan = e.plan(&e.spec(ONE), false).await;
    let change = plan.change(&addr("t")).expect("planned");
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.reason, Some(Reason::Unfinished), "{change:?}");
    assert!(change.reason.as_ref().is_some_and(|r| r.to_string().contains("did not finish")));
    let applied = e.apply_plan(&e.spec(ONE), &plan).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert_eq!(applied.calls, ["ready t"]);
    assert_eq!(e.state().await.resources[&addr("t")].status, ResourceStatus::Ready);
    e.assert_converged(ONE).await;
}

/// A state whose apply died right after sending the creating call of `thing.t`.
async fn leave_intent(e: &Engine, token: &str) {
    let store = e.store();
    store.lock("test").expect("lock");
    let mut state = store.load().await.expect("state");
    let attrs: Attrs = serde_json::from_value(json!({"name": "t", "color": "blue"})).expect("attrs");
    state.resources.insert(addr("t"), ResourceState::intent(attrs, Intent { token: token.into(), since: 1 }));
    state.serial += 1;
    store.save(&state).await.expect("saved");
}

/// What the creating call of that intent made before the crash: `t`, tagged as ours.
async fn made_by_the_interrupted_create(e: &Engine) {
    let lineage = e.state().await.lineage;
    let tags = vec![("cruddur-infra:address".into(), "thing.t".into()), ("cruddur-infra:lineage".into(), lineage)];
    e.cloud.objects.lock().expect("lock").insert("t".into(), Object { attrs: Attrs::new(), tags });
}

#[tokio::test]
async fn an_intent_left_by_a_crash_is_adopted_when_the_call_had_made_it() {
    // The process died after AWS made t: the next plan finds it by its tags and says it will be
    // adopted; apply records it and sets it up, and nothing is made twice.
    let e = Engine::new();
    leave_intent(&e, "tok").await;
    made_by_the_interrupted_create(&e).await;
    let plan = e.plan(&e.spec(ONE), false).await;
    let change = plan.change(&addr("t")).expect("planned");
    assert!(change.imported && change.reason == Some(Reason::AdoptedAfterInterruption), "{change:?}");
    assert_eq!(change.action, Action::Update, "its settings are still to be applied");
    let applied = e.apply_plan(&e.spec(ONE), &plan).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert!(!applied.calls.iter().any(|c| c.starts_with("create")), "{:?}", applied.calls);
    assert_eq!(e.cloud.names(), ["t"]);
    assert_eq!(e.state().await.resources[&addr("t")].status, ResourceStatus::Ready);
    e.assert_converged(ONE).await;
}

#[tokio::test]
async fn an_intent_whose_call_made_nothing_is_dropped_and_the_resource_created() {
    // The process died before AWS made anything: the plan creates it, once.
    let e = Engine::new();
    leave_intent(&e, "tok").await;
    let plan = e.plan(&e.spec(ONE), false).await;
    assert_eq!(plan.change(&addr("t")).map(|c| (c.action, c.imported)), Some((Action::Create, false)));
    let applied = e.apply_plan(&e.spec(ONE), &plan).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert_eq!(e.cloud.names(), ["t"]);
    e.assert_converged(ONE).await;
}

#[tokio::test]
async fn an_intent_found_by_a_plan_without_refresh_is_resolved_by_apply() {
    // With --refresh=false the plan cannot look; apply looks before creating.
    let e = Engine::new();
    leave_intent(&e, "tok").await;
    made_by_the_interrupted_create(&e).await;
    let spec = e.spec(ONE);
    let prior = e.state().await;
    let options = PlanOptions { refresh: false, ..Default::default() };
    let plan = Planner { registry: &e.registry, aws: &e.aws, options }.plan(&spec, &prior).await.expect("plan");
    let applied = e.apply_plan(&spec, &plan).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert_eq!(applied.calls.first().map(String::as_str), Some("find t"));
    assert!(!applied.calls.iter().any(|c| c.starts_with("create")));
    e.assert_converged(ONE).await;
}

#[tokio::test]
async fn an_intent_for_a_resource_no_longer_in_the_spec_is_destroyed_if_it_was_made() {
    // The spec dropped t after the crash: what the interrupted create made is deleted.
    let e = Engine::new();
    leave_intent(&e, "tok").await;
    made_by_the_interrupted_create(&e).await;
    let calls = e.apply("resources: {}\n", false).await;
    assert_eq!(calls, ["delete t"]);
    assert!(e.cloud.names().is_empty() && e.state().await.resources.is_empty());
}

#[tokio::test]
async fn a_delete_whose_answer_was_lost_is_confirmed_by_reading_and_recorded_once_gone() {
    // DeleteThing does the work but the answer is lost; the retry says "not found", which the
    // engine accepts only because a read confirms it.
    let e = Engine::new();
    e.apply(ONE, false).await;
    e.cloud.fail("Delete", Fault::After("DispatchFailure"));
    let applied = e.try_apply(ONE, true).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert!(e.cloud.names().is_empty());
    assert!(e.state().await.resources.is_empty());
}

#[tokio::test]
async fn a_delete_that_says_not_found_while_the_resource_still_reads_fails_and_keeps_it() {
    // Gone is what reads as gone: a stray "not found" never drops a live resource from the state.
    let e = Engine::new();
    e.apply(ONE, false).await;
    e.cloud.fail("Delete", Fault::Before("NoSuchThing"));
    let applied = e.try_apply(ONE, true).await;
    assert!(applied.report.failed());
    assert_eq!(e.cloud.names(), ["t"]);
    assert!(e.state().await.resources.contains_key(&addr("t")));
}

#[tokio::test]
async fn reads_of_a_refresh_are_retried_on_transient_errors() {
    // One reset during the refresh does not fail the plan.
    let e = Engine::new();
    e.apply(ONE, false).await;
    e.cloud.fail("Read", Fault::Before("DispatchFailure"));
    e.cloud.fail("Read", Fault::Before("ServiceUnavailable"));
    e.assert_converged(ONE).await;
}

#[tokio::test]
async fn destroy_deletes_dependents_first() {
    // Reverse dependency order: a, then b, then c.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    assert_eq!(e.apply(CHAIN, true).await, vec!["delete a", "delete b", "delete c"]);
    assert!(e.cloud.objects.lock().expect("lock").is_empty());
    assert!(e.state().await.resources.is_empty());
}

#[tokio::test]
async fn a_replacement_that_others_refer_to_is_made_first_and_the_old_one_deleted_once_they_moved() {
    // Renaming c replaces it; b refers to c, and the cloud refuses to delete what is referred
    // to. The new c2 is made, b moves to it (only peer is sent), and then the old c goes.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    let renamed = CHAIN.replace("c: { name: c }", "c: { name: c2 }");
    let plan = e.plan(&e.spec(&renamed), false).await;
    let action = |n: &str| plan.change(&addr(n)).map(|c| c.action);
    assert_eq!(
        (action("a"), action("b"), action("c")),
        (Some(Action::NoOp), Some(Action::Update), Some(Action::Replace))
    );
    assert!(plan.change(&addr("c")).is_some_and(|c| c.creates_first));
    assert_eq!(e.apply(&renamed, false).await, vec!["create c2", "ready c2", "update b peer", "ready b", "delete c"]);
    assert_eq!(e.cloud.objects.lock().expect("lock")["b"].attrs["peer"], "arn:mem:c2");
    assert!(e.state().await.resources[&addr("c")].deposed.is_empty());
    e.assert_converged(&renamed).await;
}

#[tokio::test]
async fn an_object_a_replacement_left_behind_is_deleted_by_the_next_apply() {
    // Deleting the old c fails after the new c2 is in place: the apply reports it, the old c
    // stays recorded as deposed, the next plan says it will be destroyed, and the next apply
    // does it and nothing else.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    let renamed = CHAIN.replace("c: { name: c }", "c: { name: c2 }");
    e.cloud.fail("Delete", Fault::Before("AccessDenied"));
    let applied = e.try_apply(&renamed, false).await;
    assert_eq!(applied.failures().len(), 1, "{:?}", applied.failures());
    let state = e.state().await;
    let deposed: Vec<&str> = state.resources[&addr("c")].deposed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!((state.resources[&addr("c")].id.as_str(), deposed), ("c2", vec!["c"]));
    let plan = e.plan(&e.spec(&renamed), false).await;
    assert_eq!(plan.change(&addr("c")).map(|c| c.deposed.clone()), Some(vec!["c".to_string()]));
    assert!(crate::plan::render_text(&plan).contains("`c` left behind by a replacement will be destroyed"));
    let applied = e.apply_plan(&e.spec(&renamed), &plan).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    assert_eq!(applied.calls, ["delete c"]);
    assert_eq!(e.cloud.names(), ["a", "b", "c2"]);
    e.assert_converged(&renamed).await;
}

#[tokio::test]
async fn removed_resources_are_deleted_and_forgotten() {
    // Dropping a resource from the spec deletes it and removes it from the state.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    let fewer = "resources:\n  thing:\n    c: { name: c }\n";
    assert_eq!(e.apply(fewer, false).await, vec!["delete a", "delete b"]);
    let state = e.state().await;
    assert_eq!(state.resources.keys().map(ToString::to_string).collect::<Vec<_>>(), vec!["thing.c"]);
}

#[tokio::test]
async fn defaults_aws_fills_in_never_become_changes() {
    // A read reports `color` though the spec never set it: after any number of applies the
    // plan stays empty, because the refreshed state keeps only what the spec manages.
    let e = Engine::new();
    e.apply(CHAIN, false).await;
    assert!(e.apply(CHAIN, false).await.is_empty(), "the second apply changes nothing");
    e.assert_converged(CHAIN).await;
    assert!(e.state().await.resources.values().all(|r| !r.attributes.contains_key("color")));
}

#[tokio::test]
async fn what_needs_only_an_id_does_not_wait_for_its_dependency_to_be_ready_but_the_apply_does() {
    // d is known at once and ready late (a distribution's deployment); t needs only its ARN.
    // t is made while d is still becoming ready, and the apply ends with d recorded ready.
    let e = Engine::new();
    let spec = "resources:\n  slow:\n    d: { name: d }\n  thing:\n    t: { name: t, peer: '${slow.d.arn}' }\n";
    let applied = e.try_apply(spec, false).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    let at = |line: &str| {
        applied.calls.iter().position(|c| c == line).unwrap_or_else(|| panic!("no `{line}` in {:?}", applied.calls))
    };
    assert!(at("create t") < at("ready slow d"), "{:?}", applied.calls);
    assert_eq!(e.state().await.resources[&ResourceAddr::new("slow", "d")].status, ResourceStatus::Ready);
    e.assert_converged(spec).await;
}

#[tokio::test]
async fn a_failed_change_is_reported_as_the_failure_not_as_skipped_by_its_readiness() {
    // The readiness step of a resource whose create failed is skipped; the report keeps the
    // failure, with its AWS code, and what depends on it is skipped because of it.
    let e = Engine::new();
    let spec = "resources:\n  slow:\n    d: { name: fail-d }\n  thing:\n    t: { name: t, peer: '${slow.d.arn}' }\n";
    let applied = e.try_apply(spec, false).await;
    let outcome = &applied.report.outcomes[&ResourceAddr::new("slow", "d")];
    assert!(matches!(outcome, NodeOutcome::Failed(e) if e.to_string().contains("CNAMEAlreadyExists")), "{outcome:?}");
    assert!(matches!(&applied.report.outcomes[&addr("t")], NodeOutcome::Skipped { because } if because == "slow.d"));
}

#[tokio::test]
async fn a_long_wait_is_reported_while_it_runs_and_each_step_by_its_events() {
    // Terraform's "Still creating... [10s elapsed]": while d's deployment is waited for, the
    // apply reports it every `progress_every`; the events name the resource and the action.
    let e = Engine::new();
    *e.cloud.ready_after.lock().expect("lock") = std::time::Duration::from_millis(80);
    let spec = "resources:\n  slow:\n    d: { name: d }\n  thing:\n    t: { name: t, peer: '${slow.d.arn}' }\n";
    let applied = e.try_apply(spec, false).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    let events = &applied.events;
    let at = |line: &str| events.iter().position(|c| c == line).unwrap_or_else(|| panic!("no `{line}` in {events:?}"));
    let still = events.iter().filter(|l| *l == "slow.d still Create true").count();
    assert!(still >= 3, "80 ms of waiting reported every 10 ms: {events:?}");
    assert!(at("slow.d started Create") < at("slow.d finished Create"));
    assert!(at("slow.d finished Create") < at("slow.d still Create true"), "the wait comes after the create");
    assert!(at("thing.t finished Create") < at("slow.d ready"), "t did not wait for d's readiness");
    assert!(!events.iter().any(|l| l.starts_with("thing.t still")), "a quick step is not reported as slow");
}

#[tokio::test]
async fn a_failure_is_reported_once_as_an_event_with_its_action_and_code() {
    let e = Engine::new();
    let spec = "resources:\n  slow:\n    d: { name: fail-d }\n  thing:\n    t: { name: t, peer: '${slow.d.arn}' }\n";
    let applied = e.try_apply(spec, false).await;
    let failed: Vec<&String> = applied.events.iter().filter(|l| l.contains(" failed ")).collect();
    assert_eq!(failed.len(), 1, "{:?}", applied.events);
    assert!(failed[0].starts_with("slow.d failed Create: ") && failed[0].contains("CNAMEAlreadyExists"), "{failed:?}");
    assert!(!applied.events.iter().any(|l| l.starts_with("thing.t started")), "t was skipped: {:?}", applied.events);
}

#[tokio::test]
async fn each_change_is_stored_before_the_next_change_begins() {
    // c, then b (which refers to c), then a: each resource is in the store, ready, before the
    // creating call of the next one is made. An executor that saved once at the end, or saved
    // after starting the next resource, fails here.
    let e = Engine::new();
    let applied = e.try_apply(CHAIN, false).await;
    assert!(!applied.report.failed(), "{:?}", applied.failures());
    let at = |line: &str| {
        let seq = &applied.sequence;
        seq.iter().position(|c| c == line).unwrap_or_else(|| panic!("no `{line}` in {seq:?}"))
    };
    assert!(at("stored thing.c intent") < at("create c"));
    assert!(at("create c") < at("stored thing.c creating"));
    assert!(at("stored thing.c ready") < at("stored thing.b intent"), "{:?}", applied.sequence);
    assert!(at("stored thing.b ready") < at("create a"), "{:?}", applied.sequence);
    let stored = applied.sequence.iter().filter(|l| l.starts_with("stored ")).count();
    assert_eq!(stored, 9, "three writes per created resource: {:?}", applied.sequence);
}

#[tokio::test]
async fn a_failed_resource_skips_only_what_depends_on_it() {
    // a fails; b depends on a and is skipped because of it; c is unrelated and is created.
    let e = Engine::new();
    let spec = "resources:\n  thing:\n    a: { name: fail-a }\n    b: { name: b, peer: '${thing.a.arn}' }\n    c: { name: c }\n";
    let applied = e.try_apply(spec, false).await;
    let outcome = |n: &str| &applied.report.outcomes[&addr(n)];
    assert!(
        matches!(outcome("a"), NodeOutcome::Failed(err) if err.to_string().contains("InvalidName")),
        "{:?}",
        outcome("a")
    );
    assert!(matches!(outcome("b"), NodeOutcome::Skipped { because } if because == "thing.a"), "{:?}", outcome("b"));
    assert!(matches!(outcome("c"), NodeOutcome::Done), "{:?}", outcome("c"));
    assert_eq!(e.cloud.names(), ["c"], "only c exists");
    let state = e.state().await;
    assert!(state.resources.contains_key(&addr("c")) && !state.resources.contains_key(&addr("b")));
}

/// Sets the cancel flag (as Ctrl-C does) when the first resource finishes.
struct CancelAfterFirst<'a>(&'a AtomicBool);

impl ApplyEvents for CancelAfterFirst<'_> {
    fn finished(&self, _: &ResourceAddr, _: Action, _: Option<&str>, _: std::time::Duration) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_interrupt_starts_nothing_new_and_what_finished_is_kept() {
    // Ctrl-C after c is done: b and a are not started, c is in the state and in the cloud.
    let e = Engine::new();
    let spec = e.spec(CHAIN);
    let plan = e.plan(&spec, false).await;
    let store = e.store();
    store.lock("apply").expect("lock");
    let cancelled = AtomicBool::new(false);
    let events = CancelAfterFirst(&cancelled);
    let applier = Applier {
        registry: &e.registry,
        aws: &e.aws,
        store: &store,
        parallelism: 1,
        cancelled: &cancelled,
        events: &events,
        progress_every: std::time::Duration::from_secs(10),
        builds: &crate::build::Builds::default(),
    };
    let report = applier.apply(&spec, &plan).await.expect("state saved");
    assert!(matches!(report.outcomes[&addr("c")], NodeOutcome::Done));
    for n in ["a", "b"] {
        assert!(matches!(report.outcomes[&addr(n)], NodeOutcome::Cancelled), "{n}: {:?}", report.outcomes[&addr(n)]);
    }
    assert_eq!(e.cloud.names(), ["c"]);
    let state = e.state().await;
    assert_eq!(state.resources.keys().cloned().collect::<Vec<_>>(), [addr("c")], "the state says what the cloud has");
}

#[tokio::test]
async fn a_plan_whose_known_value_differs_from_what_apply_would_send_is_refused_before_any_call() {
    // As if a saved plan had been edited: the plan says red, the spec says blue. Apply must not
    // carry out something other than what was shown.
    let e = Engine::new();
    let spec = e.spec(ONE);
    let mut plan = e.plan(&spec, false).await;
    let change = plan.changes.iter_mut().find(|c| c.addr == addr("t")).expect("planned");
    change.desired.as_mut().expect("a create has desired values").insert("color".into(), json!("red"));
    let applied = e.apply_plan(&spec, &plan).await;
    let outcome = &applied.report.outcomes[&addr("t")];
    assert!(
        matches!(outcome, NodeOutcome::Failed(ApplyError::PlanMismatch { attr, .. }) if attr == "color"),
        "{outcome:?}"
    );
    assert!(applied.calls.is_empty(), "nothing was called: {:?}", applied.calls);
    assert!(e.cloud.names().is_empty());
}

#[tokio::test]
async fn a_value_still_unknown_when_its_turn_comes_is_refused_not_sent() {
    // b refers to c, but c's change is missing from the plan (an edited plan): b's peer is
    // still unknown at apply time, and b is refused rather than created with a hole in it.
    let e = Engine::new();
    let spec = e.spec(CHAIN);
    let mut plan = e.plan(&spec, false).await;
    plan.changes.retain(|c| c.addr != addr("c"));
    let applied = e.apply_plan(&spec, &plan).await;
    let outcome = &applied.report.outcomes[&addr("b")];
    assert!(
        matches!(outcome, NodeOutcome::Failed(ApplyError::Unresolved { attr, .. }) if attr == "peer"),
        "{outcome:?}"
    );
    assert!(!applied.calls.iter().any(|c| c == "create b"), "{:?}", applied.calls);
}
