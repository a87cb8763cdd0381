//! The create protocol: how a resource comes into existence without ever being lost or made
//! twice.
//!
//! 1. An *intent* is recorded (durably) before the creating call: the address, what is to be
//!    created, an idempotency token and the time.
//! 2. The kind makes its one creating call, which carries the ownership tags (or marker, or
//!    token) where AWS takes them. When an attempt fails without a clear answer (a lost
//!    response, a 5xx) or is refused because the resource exists, the kind's `find` looks for
//!    what an earlier attempt made: ours is adopted, not ours is an error naming it, nothing
//!    means the call is tried again under the retry policy.
//! 3. The resource is recorded the moment its id is known, marked `creating`.
//! 4. Settings the creating call cannot carry are applied as an update, and the engine waits
//!    until the resource is ready; then it is recorded `ready`.
//!
//! A crash between 1 and 3 leaves the intent open: the next plan looks for the resource and
//! adopts it, or drops the intent when nothing was made. A failure after 3 leaves the resource
//! recorded as `creating`: the next plan finishes it.

use std::time::Instant;

use super::{Applier, ApplyError, Work, recorded};
use crate::provider::ownership::now_epoch;
use crate::provider::{Created, ErrorClass, FindReason, Found, Managed, Owner, ProviderError, SecondCreate};
use crate::retry::{RetryNotice, RetryState};
use crate::state::{Intent, ResourceStatus};
use crate::value::Attrs;

/// How the creating call ended well.
enum Made {
    /// The call answered: a new resource.
    Created(Created),
    /// An earlier attempt had made it: found and ours.
    Found(String),
}

/// How long after its intent a create the engine sent can still be carried out by AWS: the
/// request was sent right after the intent was recorded and AWS acts on what it received within
/// seconds. A retry the dead command sent later (after throttling) is not covered: see
/// docs/crash-safety.md.
const IN_FLIGHT: std::time::Duration = std::time::Duration::from_secs(10);

/// How the creating call ended badly, and whether the intent must stay open (the resource may
/// exist: the next plan looks again).
struct Failed {
    error: ApplyError,
    keep_intent: bool,
}

impl Applier<'_> {
    pub(super) async fn create(&self, work: &Work<'_>) -> Result<String, ApplyError> {
        let (change, addr) = (work.change, work.addr());
        let desired = self.desired(work).await?;
        // An intent this plan did not resolve (a plan made without refreshing): look first.
        let prior = work.state.lock().await.resources.get(addr).cloned();
        if let Some((attributes, intent)) = prior.as_ref().and_then(|p| p.pending().map(|i| (&p.attributes, i)))
            && let Some(id) = self.resolve_intent(work, attributes, intent).await?
        {
            return self.finish_found(work, &desired, id).await;
        }
        let lineage = work.state.lock().await.lineage.clone();
        // An open intent that found nothing is created again under its own token and time: a
        // create of the dead command still in flight when it died (AWS finishing it after the
        // refresh looked) then meets its own token (CloudFront answers DistributionAlreadyExists,
        // which is looked up and adopted) instead of leaving a second distribution.
        let reused = prior.as_ref().and_then(|p| p.pending().cloned()).or_else(|| change.intent.clone());
        // Where AWS would make a second object, what the dead command may still have in flight
        // is waited out first, then looked for again.
        if let Some(intent) =
            reused.as_ref().filter(|_| work.kind.lifecycle().second_create == SecondCreate::MakesAnother)
            && let Some(id) = self.after_in_flight(work, &desired, intent).await?
        {
            return self.finish_found(work, &desired, id).await;
        }
        // A dead command's create may still land, before this one: AWS then refuses this one as
        // existing, and what it refuses for may be that create's work (found as ours, not taken
        // for someone else's).
        let after_dead_create = reused.is_some();
        let intent = reused.unwrap_or_else(|| Intent { token: uuid::Uuid::new_v4().to_string(), since: now_epoch() });
        let token = intent.token.clone();
        let since = intent.since;
        let pending = recorded(change, String::new(), desired.clone(), ResourceStatus::Pending(intent));
        self.record_kept(work.state, addr, pending).await?;
        // What a create-first replacement replaces: deposed beside the intent by now.
        let replacing = {
            let state = work.state.lock().await;
            state.resources.get(addr).map(|r| r.deposed.iter().map(|d| d.id.clone()).collect()).unwrap_or_default()
        };
        let owner = Owner { addr: addr.clone(), lineage, token, since, replacing, stage: work.spec.stage.clone() };
        match self.creating_call(work, &desired, &owner, after_dead_create).await {
            Ok(Made::Created(created)) => self.finish_created(work, desired, &owner, created).await,
            Ok(Made::Found(id)) => {
                self.events.adopted(addr, &id);
                self.finish_found(work, &desired, id).await
            }
            Err(Failed { error, keep_intent }) => {
                if !keep_intent {
                    self.drop_intent(work).await?;
                    self.events.intent_dropped(addr);
                }
                Err(error)
            }
        }
    }

    /// Waits until a create sent by the command that recorded `intent` can no longer be in
    /// flight ([`IN_FLIGHT`] after the intent), then looks for what it made.
    async fn after_in_flight(
        &self,
        work: &Work<'_>,
        desired: &Attrs,
        intent: &Intent,
    ) -> Result<Option<String>, ApplyError> {
        let settled = intent.since + IN_FLIGHT.as_secs() + 1;
        let now = now_epoch();
        if now >= settled {
            return Ok(None);
        }
        let wait = std::time::Duration::from_secs(settled - now);
        self.events.awaiting_in_flight(work.addr(), wait);
        tokio::time::sleep(wait).await;
        self.resolve_intent(work, desired, intent).await
    }

    /// Forgets an intent that made nothing. A replacement made first had deposed the old
    /// object: that one is the resource again.
    async fn drop_intent(&self, work: &Work<'_>) -> Result<(), ApplyError> {
        let addr = work.addr();
        let current = work.state.lock().await.resources.get(addr).cloned();
        match current.and_then(|mut c| c.deposed.pop().map(|old| (old, c.deposed))) {
            Some((old, rest)) => {
                let mut entry = recorded(work.change, old.id, old.attributes, ResourceStatus::Ready);
                entry.deposed = rest;
                self.record(work.state, addr, Some(entry)).await
            }
            None => self.record(work.state, addr, None).await,
        }
    }

    /// The kind's creating call under the retry policy, looking for what an ambiguous or
    /// refused attempt may have made before trying again. `after_dead_create`: the create
    /// continues a dead command's open intent, whose own call may land first: a refusal as
    /// existing is then as ambiguous as a lost answer.
    async fn creating_call(
        &self,
        work: &Work<'_>,
        desired: &Attrs,
        owner: &Owner,
        after_dead_create: bool,
    ) -> Result<Made, Failed> {
        let (kind, addr) = (work.kind, work.addr());
        let report = |n: &RetryNotice| self.events.retrying(addr, n);
        // A parent created moments ago may not be visible to this call yet.
        let parents_created = {
            let created = work.created.lock().expect("not poisoned");
            work.change.dependencies.iter().filter_map(|d| created.get(d).copied()).max()
        };
        let scope = self.scope(&report, parents_created);
        let mut retry = RetryState::new(self.aws.retry(), scope);
        let aws = |verb, error| ApplyError::Aws { addr: addr.clone(), verb, error: Box::new(error) };
        let mut ambiguous = after_dead_create;
        loop {
            let error = match kind.create(self.aws, desired, owner).await {
                Ok(created) => return Ok(Made::Created(created)),
                Err(e) => e,
            };
            ambiguous |= error.class.maybe_done();
            let reason = match error.class {
                ErrorClass::AlreadyExists if ambiguous => Some(FindReason::Ambiguous),
                ErrorClass::AlreadyExists => Some(FindReason::Conflict),
                class if class.maybe_done() => Some(FindReason::Ambiguous),
                _ => None,
            };
            if let Some(reason) = reason {
                let found = self.aws.retry().run(scope, || kind.find(self.aws, desired, owner, reason)).await;
                match found {
                    Ok(Some(Found::Ours { id })) => return Ok(Made::Found(id)),
                    Ok(Some(Found::NotOurs { id, why })) => {
                        let error = ApplyError::NotOurs { addr: addr.clone(), id, why };
                        return Err(Failed { error, keep_intent: false });
                    }
                    // AWS says it exists, yet it cannot be found (a listing that lags the create,
                    // or a name someone else holds): AWS's answer stands, and the intent is kept
                    // so that the next plan looks again rather than forgetting what an earlier
                    // attempt of this apply may have made.
                    Ok(None) if error.class == ErrorClass::AlreadyExists => {
                        return Err(Failed { error: aws("create", retry.give_up(error)), keep_intent: ambiguous });
                    }
                    Ok(None) => {}
                    // Whether the resource exists is unknown: the next plan looks again.
                    Err(e) => return Err(Failed { error: aws("find", e), keep_intent: true }),
                }
            }
            match retry.next_delay(&error) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => {
                    let keep_intent = error.class.maybe_done();
                    return Err(Failed { error: aws("create", retry.give_up(error)), keep_intent });
                }
            }
        }
    }

    /// Records a resource the creating call just made, then applies what the call could not
    /// carry and waits until it is ready.
    async fn finish_created(
        &self,
        work: &Work<'_>,
        desired: Attrs,
        owner: &Owner,
        created: Created,
    ) -> Result<String, ApplyError> {
        let (change, addr) = (work.change, work.addr());
        let created_at = Instant::now();
        work.created.lock().expect("not poisoned").insert(addr.clone(), created_at);
        let mut established = desired.clone();
        established.retain(|name, _| !created.deferred.contains(&name.as_str()));
        established.extend(created.computed.clone());
        let entry = recorded(change, created.id.clone(), established, ResourceStatus::Creating);
        self.record_kept(work.state, addr, entry).await?;
        self.events.created(addr, &created.id);
        let deferred: Vec<&str> = created
            .deferred
            .iter()
            .copied()
            .filter(|a| desired.contains_key(*a) || created.deferred_always.contains(a))
            .collect();
        let computed = self.settle(work, &created.id, &desired, &deferred, owner, true, Some(created_at)).await?;
        let mut attributes = desired;
        attributes.extend(created.computed);
        attributes.extend(computed);
        let mut entry = recorded(change, created.id.clone(), attributes, super::done(work.kind));
        entry.unset = self.unset_snapshot(work, &created.id, &entry.attributes, created.observed.as_ref()).await;
        self.record_kept(work.state, addr, entry).await?;
        Ok(created.id)
    }

    /// The attributes the spec leaves unset as AWS has them now that the resource is made: the
    /// snapshot `drift` compares with. Nothing to take when the spec sets everything AWS holds;
    /// what the creating call observed when it knows; otherwise one read, and a failed read
    /// records none (drift then has nothing to compare them with until the next apply reads
    /// them).
    async fn unset_snapshot(
        &self,
        work: &Work<'_>,
        id: &str,
        desired: &Attrs,
        observed: Option<&Attrs>,
    ) -> Option<Attrs> {
        let kind = work.kind;
        let wants = |name: &str| desired.contains_key(name);
        if kind.schema().held_by_aws().all(|a| wants(a.name)) {
            return Some(Attrs::new());
        }
        if let Some(live) = observed {
            return Some(crate::plan::unset_view(kind, live, &wants));
        }
        let (managed, no_prior) = (Managed(&wants), Attrs::new());
        match self.aws.retried(|| kind.read(self.aws, id, &managed, &no_prior)).await {
            Ok(Some(live)) => Some(crate::plan::unset_view(kind, &live, &wants)),
            _ => None,
        }
    }

    /// Records a resource an earlier attempt made as it reads now, then makes it what the
    /// spec says and waits until it is ready.
    async fn finish_found(&self, work: &Work<'_>, desired: &Attrs, id: String) -> Result<String, ApplyError> {
        let (change, kind, addr) = (work.change, work.kind, work.addr());
        let report = |n: &RetryNotice| self.events.retrying(addr, n);
        let wants = |name: &str| desired.contains_key(name);
        let (managed, no_prior) = (Managed(&wants), Attrs::new());
        let read = self
            .aws
            .retry()
            .run(self.scope(&report, Some(Instant::now())), || kind.read(self.aws, &id, &managed, &no_prior));
        let aws = |error: ProviderError| ApplyError::Aws { addr: addr.clone(), verb: "read", error: Box::new(error) };
        let Some(mut live) = read.await.map_err(aws)? else {
            let gone = ProviderError::new("Read", "NotFound", format!("{id} was found, then read as gone"));
            return Err(aws(gone));
        };
        kind.normalize(&mut live);
        let entry = recorded(change, id.clone(), live.clone(), ResourceStatus::Creating);
        self.record_kept(work.state, addr, entry).await?;
        let changes = crate::plan::attribute_changes(kind.schema(), desired, &live);
        let changed: Vec<&str> =
            kind.schema().compared().map(|a| a.name).filter(|n| changes.iter().any(|c| c.name == *n)).collect();
        let owner = work.owner().await;
        let computed = self.settle(work, &id, desired, &changed, &owner, true, None).await?;
        let mut attributes = desired.clone();
        for a in kind.schema().attributes.iter().filter(|a| a.computed) {
            if let Some(v) = live.get(a.name) {
                attributes.insert(a.name.to_string(), v.clone());
            }
        }
        attributes.extend(computed);
        let mut entry = recorded(change, id.clone(), attributes, super::done(work.kind));
        entry.unset = Some(crate::plan::unset_view(kind, &live, &wants));
        self.record_kept(work.state, addr, entry).await?;
        Ok(id)
    }

    /// Looks for what an open intent's create made: its id if found and ours.
    pub(super) async fn resolve_intent(
        &self,
        work: &Work<'_>,
        attributes: &Attrs,
        intent: &Intent,
    ) -> Result<Option<String>, ApplyError> {
        let (kind, addr) = (work.kind, work.addr());
        let lineage = work.state.lock().await.lineage.clone();
        let owner = Owner {
            addr: addr.clone(),
            lineage,
            token: intent.token.clone(),
            since: intent.since,
            replacing: vec![],
            stage: work.spec.stage.clone(),
        };
        let report = |n: &RetryNotice| self.events.retrying(addr, n);
        let found = self
            .aws
            .retry()
            .run(self.scope(&report, None), || kind.find(self.aws, attributes, &owner, FindReason::Intent));
        match found.await {
            Ok(Some(Found::Ours { id })) => {
                self.events.adopted(addr, &id);
                Ok(Some(id))
            }
            Ok(Some(Found::NotOurs { id, why })) => Err(ApplyError::NotOurs { addr: addr.clone(), id, why }),
            Ok(None) => {
                self.events.intent_dropped(addr);
                Ok(None)
            }
            Err(error) => Err(ApplyError::Aws { addr: addr.clone(), verb: "find", error: Box::new(error) }),
        }
    }
}
