//! The S3 state backend: the state is one object; the lock is a second object created with a
//! conditional write (`If-None-Match: *`), so exactly one command gets it; each save is a
//! conditional write on the ETag last read or written (`If-Match`), so a writer that ignored
//! the lock can never be overwritten silently. The state as it was before a command is copied
//! to `KEY.backup`. With an encryption key ([`Codec`]) the state and its backup are envelopes.
//!
//! The lock is a lease: its holder renews it while it works (a conditional write over the
//! version it last wrote, every quarter of the lease), so a lock whose holder died anywhere
//! (a CI runner that was stopped) is taken over once it has not been renewed for a whole lease,
//! judged by the lock object's `Last-Modified` (S3's clock) against this host's clock: a clock
//! up to three quarters of a lease off still never displaces a live holder. A holder that finds
//! its lock taken over, or cannot renew it within its lease, stops before its next write. A
//! holder that provably died on this host (same boot, pid gone) is taken over at once.
//!
//! Every request goes through the engine's retry policy. A conditional write whose answer was
//! lost and that is refused when sent again (412) is checked against what is there: our own
//! lock, or our own state, means the first write landed.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use super::backend::{Acquired, StateBackend, Takeover, TookOver};
use super::encryption::{Codec, Envelope, Purpose};
use super::{LockInfo, State, StateError};
use crate::provider::{Aws, ErrorClass, ProviderError, in_bucket_region};

pub struct S3State<'a> {
    aws: &'a Aws,
    bucket: String,
    key: String,
    /// The ETag of the state object as last read or written (None: there is none yet).
    etag: Mutex<Option<String>>,
    /// The state object's bytes as last read (for a backup in another form).
    stored: Mutex<Option<Vec<u8>>>,
    backed_up: std::sync::atomic::AtomicBool,
    codec: Codec<'a>,
    /// How long a lock this command takes lasts without a renewal.
    lease: Duration,
    /// The lock this command holds, as last written, and that version's ETag.
    held: Mutex<Option<(LockInfo, String)>>,
    /// How many earlier states are kept under `KEY.history/`, and who writes.
    history: super::history::Keeping<'a>,
}

/// The default lease: renewed every 15 s, taken over after a minute without a renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// A lock object as read.
struct HeldLock {
    info: LockInfo,
    etag: Option<String>,
    /// When it was last written, by S3's clock.
    modified: Option<SystemTime>,
}

impl HeldLock {
    /// Why this lock may be taken over, if it may: its holder died on this host, or its lease
    /// lapsed. A lock without a lease (written by an engine before leases) lasts until its
    /// holder releases it or someone runs `force-unlock`.
    fn takeover(&self) -> Option<Takeover> {
        if self.info.holder_is_gone() {
            return Some(Takeover::HolderGone);
        }
        let idle = self.idle()?;
        (idle > Duration::from_secs(self.info.lease?)).then_some(Takeover::LeaseLapsed { idle })
    }

    /// How long since it was last written.
    fn idle(&self) -> Option<Duration> {
        SystemTime::now().duration_since(self.modified?).ok()
    }
}

/// When a write goes ahead.
#[derive(Clone, Copy)]
enum Condition<'a> {
    /// Only if there is no object yet (`If-None-Match: *`).
    Absent,
    /// Only over this version (`If-Match: ETAG`).
    Matches(&'a str),
    /// Whatever is there.
    Always,
}

/// An object as read: its bytes and ETag.
struct Object {
    bytes: Vec<u8>,
    etag: Option<String>,
    modified: Option<SystemTime>,
}

impl<'a> S3State<'a> {
    pub fn new(aws: &'a Aws, bucket: &str, key: &str, codec: Codec<'a>) -> Self {
        Self {
            codec,
            stored: Mutex::new(None),
            aws,
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag: Mutex::new(None),
            backed_up: Default::default(),
            lease: DEFAULT_LEASE,
            held: Mutex::new(None),
            history: super::history::Keeping::default(),
        }
    }

    /// Keeps earlier states as `history` says.
    pub fn with_history(mut self, history: super::history::Keeping<'a>) -> Self {
        self.history = history;
        self
    }

    /// Locks this command takes last `lease` without a renewal (at least a second).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    fn remote(&self, e: ProviderError) -> StateError {
        StateError::Remote { path: self.location(), operation: e.operation, code: e.code, message: e.message }
    }

    /// The object at `key`, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Object>, ProviderError> {
        in_bucket_region(self.aws, &self.bucket, |s3| async move { self.get_in(&s3, key).await }).await
    }

    async fn get_in(&self, s3: &aws_sdk_s3::Client, key: &str) -> Result<Option<Object>, ProviderError> {
        self.aws
            .retried(|| async {
                let out = match s3.get_object().bucket(&self.bucket).key(key).send().await {
                    Ok(out) => out,
                    Err(e) => {
                        let e = ProviderError::from_sdk("GetObject", e);
                        return if e.code == "NoSuchKey" { Ok(None) } else { Err(e) };
                    }
                };
                let etag = out.e_tag().map(str::to_string);
                let modified = out.last_modified().and_then(|t| SystemTime::try_from(*t).ok());
                let body = out.body.collect().await.map_err(|e| {
                    ProviderError::new("GetObject", "ReadFailed", e.to_string()).with_class(ErrorClass::Transient)
                })?;
                Ok(Some(Object { bytes: body.into_bytes().to_vec(), etag, modified }))
            })
            .await
    }

    async fn read_lock(&self) -> Option<LockInfo> {
        self.read_lock_object().await.map(|held| held.info)
    }

    /// The lock object: its holder, ETag and when it was last written.
    async fn read_lock_object(&self) -> Option<HeldLock> {
        let lock = self.get(&self.lock_key()).await.ok()??;
        let info = serde_json::from_slice(&lock.bytes).ok()?;
        Some(HeldLock { info, etag: lock.etag, modified: lock.modified })
    }

    /// Puts `body` at `key` on a condition; its new ETag, or `Ok(None)` when the condition
    /// failed. A retry after an attempt whose answer was lost fails the condition too, so the
    /// caller checks what is there.
    async fn put_if(&self, key: &str, body: &[u8], when: Condition<'_>) -> Result<Option<String>, ProviderError> {
        in_bucket_region(self.aws, &self.bucket, |s3| async move { self.put_if_in(&s3, key, body, when).await }).await
    }

    async fn put_if_in(
        &self,
        s3: &aws_sdk_s3::Client,
        key: &str,
        body: &[u8],
        when: Condition<'_>,
    ) -> Result<Option<String>, ProviderError> {
        self.aws
            .retried(|| async {
                let put = s3
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type("application/json")
                    .body(ByteStream::from(body.to_vec()));
                let put = match when {
                    Condition::Matches(etag) => put.if_match(etag),
                    Condition::Absent => put.if_none_match("*"),
                    Condition::Always => put,
                };
                match put.send().await {
                    Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
                    Err(e) => {
                        let e = ProviderError::from_sdk("PutObject", e);
                        if e.status == Some(412) || e.code == "PreconditionFailed" { Ok(None) } else { Err(e) }
                    }
                }
            })
            .await
    }
}

#[async_trait]
impl StateBackend for S3State<'_> {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn load(&self) -> Result<State, StateError> {
        let Some(object) = self.get(&self.key).await.map_err(|e| self.remote(e))? else { return Ok(State::new()) };
        *self.etag.lock().expect("not poisoned") = object.etag;
        let opened = self.codec.open(&object.bytes, Purpose::State, &self.location()).await?;
        *self.stored.lock().expect("not poisoned") = Some(object.bytes);
        let text = String::from_utf8_lossy(&opened).into_owned();
        State::from_json(&text).map_err(|reason| StateError::Corrupt {
            path: self.location(),
            reason,
            hint: format!(
                "restore it from {}.backup (the state before the last command), or fix the named entry",
                self.location()
            ),
        })
    }

    async fn kept(&self) -> Result<Vec<u64>, StateError> {
        self.kept_serials().await
    }

    async fn remove(&self) -> Result<(), StateError> {
        for serial in self.kept_serials().await? {
            self.delete(&format!("{}{}", self.history_prefix(), super::history::entry_name(serial))).await?;
        }
        self.delete(&format!("{}.backup", self.key)).await?;
        // The state last: a remove killed midway leaves a state the next one finds.
        self.delete(&self.key).await
    }

    async fn load_kept(&self, serial: u64) -> Result<Option<State>, StateError> {
        let key = format!("{}{}", self.history_prefix(), super::history::entry_name(serial));
        let Some(object) = self.get(&key).await.map_err(|e| self.remote(e))? else { return Ok(None) };
        let location = format!("s3://{}/{key}", self.bucket);
        let opened = self.codec.open(&object.bytes, Purpose::State, &location).await?;
        State::from_json(&String::from_utf8_lossy(&opened)).map(Some).map_err(|reason| StateError::Corrupt {
            path: location,
            reason,
            hint: "an earlier state kept for `state history`".into(),
        })
    }

    async fn lock(&self, operation: &str) -> Result<Acquired, StateError> {
        let info = LockInfo { lease: Some(self.lease.as_secs()), ..LockInfo::new(operation) };
        let body = serde_json::to_vec_pretty(&info).expect("lock info is plain data");
        if let Some(etag) = self.put_if(&self.lock_key(), &body, Condition::Absent).await.map_err(|e| self.remote(e))? {
            return Ok(self.hold(info, etag, None));
        }
        let Some(held) = self.read_lock_object().await else {
            let hint = format!("remove s3://{}/{} if no command is running", self.bucket, self.lock_key());
            return Err(StateError::Locked {
                path: self.location(),
                holder: "unknown holder".into(),
                lock_id: None,
                hint,
            });
        };
        if held.info.id == info.id {
            // Our own first attempt took it; its answer was lost.
            return Ok(self.hold(info, held.etag.unwrap_or_default(), None));
        }
        let hint = match (held.takeover(), &held.etag) {
            // Its holder died or stopped renewing: taken over by replacing exactly the lock
            // object read, so of several takers only one succeeds and a lock renewed meanwhile
            // is left alone.
            (Some(why), Some(etag)) => {
                let replaced = self.put_if(&self.lock_key(), &body, Condition::Matches(etag)).await;
                let ours = match replaced.map_err(|e| self.remote(e))? {
                    Some(etag) => Some(etag),
                    // Refused: another taker won, or our own replace landed and its answer was
                    // lost (the retry then finds the ETag moved): what is there says which.
                    None => self.read_lock_object().await.filter(|now| now.info.id == info.id).and_then(|now| now.etag),
                };
                if let Some(etag) = ours {
                    return Ok(self.hold(info, etag, Some(TookOver { holder: held.info, why })));
                }
                "another command took the lock over first: wait for it to finish".to_string()
            }
            _ => self.locked_hint(&held),
        };
        Err(StateError::Locked {
            path: self.location(),
            holder: held.info.describe(),
            lock_id: Some(held.info.id),
            hint,
        })
    }

    async fn keep(&self, lock: &LockInfo) -> StateError {
        let every = self.lease / 4;
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            match self.renew(lock).await {
                Ok(()) => renewed = Instant::now(),
                Err(Renewal::Lost(reason)) => return StateError::LockLost { path: self.location(), reason },
                // Not renewed within the lease: another host may take it over any moment now.
                Err(Renewal::Failed(e)) if renewed.elapsed() + every >= self.lease => {
                    return StateError::LockLost {
                        path: self.location(),
                        reason: format!(
                            "its lease of {} is about to lapse and renewing it fails ({}: {})",
                            humantime::format_duration(self.lease),
                            e.code,
                            e.message
                        ),
                    };
                }
                Err(Renewal::Failed(_)) => {}
            }
        }
    }

    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError> {
        self.held.lock().expect("not poisoned").take();
        // Only remove the lock if it is still ours (force-unlock may have handed it on).
        if self.read_lock().await.is_some_and(|held| held.id == lock.id) {
            self.delete(&self.lock_key()).await?;
        }
        Ok(())
    }

    async fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        let unlock = |reason: String| StateError::Unlock { path: self.location(), reason };
        let held = self.read_lock().await.ok_or_else(|| unlock("it is not locked".into()))?;
        if held.id != id {
            return Err(unlock(format!("the lock has id {}, not {id}", held.id)));
        }
        self.delete(&self.lock_key()).await?;
        Ok(held)
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        let etag = self.etag.lock().expect("not poisoned").clone();
        if let Some(etag) = &etag
            && !self.backed_up.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.backup(etag).await?;
        }
        let operation = self.held.lock().expect("not poisoned").as_ref().map(|(info, _)| info.operation.clone());
        let written = self.history.stamp(operation.as_deref()).await;
        let body =
            self.codec.seal(state.to_json_written(&written).as_bytes(), Purpose::State, &self.location()).await?;
        // Create only if absent, or replace only the version this command last saw.
        if let Some(new_etag) = self
            .put_if(&self.key, &body, etag.as_deref().map_or(Condition::Absent, Condition::Matches))
            .await
            .map_err(|e| self.remote(e))?
        {
            *self.etag.lock().expect("not poisoned") = Some(new_etag);
            return Ok(());
        }
        // Refused: either someone else wrote, or our own write landed and its answer was lost.
        match self.get(&self.key).await.map_err(|e| self.remote(e))? {
            Some(now) if now.bytes == body => {
                *self.etag.lock().expect("not poisoned") = now.etag;
                Ok(())
            }
            _ => Err(StateError::Conflict { path: self.location() }),
        }
    }
}

/// Why a lock was not renewed.
enum Renewal {
    /// Someone else holds it now, or nobody does: this command must stop writing.
    Lost(String),
    /// The renewal failed; the lock may still be ours.
    Failed(ProviderError),
}

impl S3State<'_> {
    /// Notes the lock this command now holds, as written with `etag`.
    fn hold(&self, info: LockInfo, etag: String, took_over: Option<TookOver>) -> Acquired {
        *self.held.lock().expect("not poisoned") = Some((info.clone(), etag));
        Acquired { info, took_over }
    }

    /// Renews the lock: writes it again, one renewal later, over the version last written.
    async fn renew(&self, lock: &LockInfo) -> Result<(), Renewal> {
        let Some((last, etag)) = self.held.lock().expect("not poisoned").clone().filter(|(i, _)| i.id == lock.id)
        else {
            return Err(Renewal::Lost("it was released".into()));
        };
        let next = LockInfo { renewed: last.renewed + 1, ..last };
        let body = serde_json::to_vec_pretty(&next).expect("lock info is plain data");
        let written = self.put_if(&self.lock_key(), &body, Condition::Matches(&etag)).await.map_err(Renewal::Failed)?;
        let etag = match written {
            Some(etag) => etag,
            // Refused: taken over or removed, or this renewal landed and its answer was lost.
            // A read that fails says neither: the lock may still be ours.
            None => match self.get(&self.lock_key()).await.map_err(Renewal::Failed)? {
                None => return Err(Renewal::Lost("it was removed (`force-unlock`)".into())),
                Some(now) => match serde_json::from_slice::<LockInfo>(&now.bytes) {
                    Ok(info) if info == next => now.etag.unwrap_or_default(),
                    Ok(info) => return Err(Renewal::Lost(format!("it was taken over by {}", info.describe()))),
                    Err(_) => return Err(Renewal::Lost("it was replaced by an unreadable lock object".into())),
                },
            },
        };
        *self.held.lock().expect("not poisoned") = Some((next, etag));
        Ok(())
    }

    /// What to do about a lock another command holds.
    fn locked_hint(&self, held: &HeldLock) -> String {
        let unlock = format!("if its holder died, run `cruddur-infra force-unlock {}`", held.info.id);
        match (held.info.lease, held.idle()) {
            (Some(lease), Some(idle)) => {
                let left = Duration::from_secs(lease).saturating_sub(idle);
                format!(
                    "its holder renews it while it works (last {} ago); if it stops, the lock is free in {}: wait for \
                     it (--lock-timeout), or {unlock}",
                    humantime::format_duration(Duration::from_secs(idle.as_secs())),
                    humantime::format_duration(Duration::from_secs(left.as_secs() + 1))
                )
            }
            _ => format!("wait for it to finish; {unlock} (the lock is {} old)", age(held.info.created)),
        }
    }

    async fn backup(&self, etag: &str) -> Result<(), StateError> {
        // What this command read (nothing: the object is this command's own first write, in
        // the form it writes).
        let Some(stored) = self.stored.lock().expect("not poisoned").clone() else { return Ok(()) };
        let serial = if self.history.keep > 0 {
            Some(super::history::serial_of_stored(&self.codec, &stored, &self.location()).await?)
        } else {
            None
        };
        let history_key =
            serial.map(|serial| format!("{}{}", self.history_prefix(), super::history::entry_name(serial)));
        if Envelope::find(&stored).ok().flatten().is_some() != self.codec.key().is_some() {
            // A state changing form (`state encrypt|decrypt`) leaves no copy in the old form.
            let location = self.location();
            let plain = self.codec.open(&stored, Purpose::State, &location).await?;
            let body = self.codec.seal(&plain, Purpose::State, &location).await?;
            let backup = format!("{}.backup", self.key);
            for key in std::iter::once(&backup).chain(history_key.as_ref()) {
                self.put_if(key, &body, Condition::Always).await.map_err(|e| self.remote(e))?;
            }
            return self.prune_history(serial, true).await;
        }
        let backup = format!("{}.backup", self.key);
        for key in std::iter::once(&backup).chain(history_key.as_ref()) {
            self.copy_state_to(key, etag).await?;
        }
        self.prune_history(serial, false).await
    }

    /// Copies the state object, exactly the version `etag`, to `key`.
    async fn copy_state_to(&self, key: &str, etag: &str) -> Result<(), StateError> {
        // The bucket's region is known by now: the state was read from it.
        let s3 = self.aws.s3_for(&self.bucket).await;
        let source = format!("{}/{}", self.bucket, self.key);
        let copied = self
            .aws
            .retried(|| async {
                s3.copy_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .copy_source(&source)
                    .copy_source_if_match(etag)
                    .send()
                    .await
                    .map_err(|e| ProviderError::from_sdk("CopyObject", e))
            })
            .await;
        copied.map(|_| ()).map_err(|e| self.remote(e))
    }

    /// Where earlier states are kept: `KEY.history/`.
    fn history_prefix(&self) -> String {
        format!("{}.history/", self.key)
    }

    /// After `kept` (the serial just kept, if any) joined the earlier states: the oldest beyond
    /// the kept number go, and when the state changed form the others are stored in the new
    /// one.
    async fn prune_history(&self, kept: Option<u64>, form_changed: bool) -> Result<(), StateError> {
        let mut serials = self.kept_serials().await?;
        if form_changed {
            for serial in serials.iter().filter(|s| Some(**s) != kept) {
                let key = format!("{}{}", self.history_prefix(), super::history::entry_name(*serial));
                let Some(object) = self.get(&key).await.map_err(|e| self.remote(e))? else { continue };
                let location = format!("s3://{}/{key}", self.bucket);
                let plain = self.codec.open(&object.bytes, Purpose::State, &location).await?;
                let body = self.codec.seal(&plain, Purpose::State, &location).await?;
                self.put_if(&key, &body, Condition::Always).await.map_err(|e| self.remote(e))?;
            }
        }
        if let Some(kept) = kept.filter(|k| !serials.contains(k)) {
            serials.push(kept);
        }
        for gone in super::history::beyond(serials, self.history.keep) {
            self.delete(&format!("{}{}", self.history_prefix(), super::history::entry_name(gone))).await?;
        }
        Ok(())
    }

    /// The serials kept under `KEY.history/`, oldest first.
    async fn kept_serials(&self) -> Result<Vec<u64>, StateError> {
        let prefix = self.history_prefix();
        let listed = list_keys(self.aws, &self.bucket, &prefix).await.map_err(|e| self.remote(e))?;
        let mut serials: Vec<u64> =
            listed.iter().filter_map(|k| k.strip_prefix(&prefix)).filter_map(super::history::serial_of).collect();
        serials.sort_unstable();
        Ok(serials)
    }

    async fn delete(&self, key: &str) -> Result<(), StateError> {
        let s3 = self.aws.s3_for(&self.bucket).await;
        let deleted = self
            .aws
            .retried(|| async {
                s3.delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| ProviderError::from_sdk("DeleteObject", e))
            })
            .await;
        deleted.map(|_| ()).map_err(|e| self.remote(e))
    }
}

/// Every key under `prefix` in `bucket` (all pages), asked where the bucket lives.
pub async fn list_keys(aws: &Aws, bucket: &str, prefix: &str) -> Result<Vec<String>, ProviderError> {
    in_bucket_region(aws, bucket, |s3| async move {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = aws
                .retried(|| async {
                    s3.list_objects_v2()
                        .bucket(bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| ProviderError::from_sdk("ListObjectsV2", e))
                })
                .await?;
            keys.extend(page.contents().iter().filter_map(|o| o.key()).map(str::to_string));
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() || page.is_truncated() != Some(true) {
                break;
            }
        }
        Ok(keys)
    })
    .await
}

fn age(created: u64) -> String {
    let created = UNIX_EPOCH + Duration::from_secs(created);
    let secs = SystemTime::now().duration_since(created).unwrap_or_default().as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(host: &str, lease: Option<u64>, idle: u64) -> HeldLock {
        let info = LockInfo { host: host.into(), lease, ..LockInfo::new("apply") };
        HeldLock { info, etag: Some("e".into()), modified: Some(SystemTime::now() - Duration::from_secs(idle)) }
    }

    #[test]
    fn a_lock_is_taken_over_only_when_its_lease_lapsed_or_its_holder_died_here() {
        // Another host, renewed within its lease: kept, however long it has been held.
        assert_eq!(held("ci-runner-7", Some(60), 10).takeover(), None);
        // Not renewed for longer than its lease: taken over, saying for how long.
        assert!(matches!(
            held("ci-runner-7", Some(60), 61).takeover(),
            Some(Takeover::LeaseLapsed { idle }) if idle >= Duration::from_secs(61)
        ));
        // No lease (an engine from before leases): never lapses.
        assert_eq!(held("ci-runner-7", None, 7200).takeover(), None);
        // This host's live process, renewing: kept.
        let live_here = HeldLock { info: LockInfo { lease: Some(60), ..LockInfo::new("apply") }, ..held("", None, 0) };
        assert_eq!(live_here.takeover(), None);
    }
}
