//! The S3 state backend: the state is one object; the lock is a second object created with a
//! conditional write (`If-None-Match: *`), so exactly one command gets it; each save is a
//! conditional write on the ETag last read or written (`If-Match`), so a writer that ignored
//! the lock can never be overwritten silently. The state as it was before a command is copied
//! to `KEY.backup`. With an encryption key ([`Codec`]) the state and its backup are envelopes.
//!
//! Every request goes through the engine's retry policy. A conditional write whose answer was
//! lost and that is refused when sent again (412) is checked against what is there: our own
//! lock, or our own state, means the first write landed.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use super::backend::{Acquired, StateBackend};
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
        }
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
                let body = out.body.collect().await.map_err(|e| {
                    ProviderError::new("GetObject", "ReadFailed", e.to_string()).with_class(ErrorClass::Transient)
                })?;
                Ok(Some(Object { bytes: body.into_bytes().to_vec(), etag }))
            })
            .await
    }

    async fn read_lock(&self) -> Option<LockInfo> {
        self.read_lock_object().await.map(|(info, _)| info)
    }

    /// The lock object's holder and ETag.
    async fn read_lock_object(&self) -> Option<(LockInfo, Option<String>)> {
        let lock = self.get(&self.lock_key()).await.ok()??;
        serde_json::from_slice(&lock.bytes).ok().map(|info| (info, lock.etag))
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

    async fn lock(&self, operation: &str) -> Result<Acquired, StateError> {
        let info = LockInfo::new(operation);
        let body = serde_json::to_vec_pretty(&info).expect("lock info is plain data");
        if self.put_if(&self.lock_key(), &body, Condition::Absent).await.map_err(|e| self.remote(e))?.is_some() {
            return Ok(Acquired { info, took_over: None });
        }
        let (holder, hint) = match self.read_lock_object().await {
            // Our own first attempt took it; its answer was lost.
            Some((held, _)) if held.id == info.id => return Ok(Acquired { info, took_over: None }),
            // Its holder provably died on this host (same boot, pid gone): taken over by
            // replacing exactly that lock object, so of several takers only one succeeds and a
            // lock renewed or replaced meanwhile is left alone.
            Some((held, Some(etag))) if held.holder_is_gone() => {
                let replaced = self.put_if(&self.lock_key(), &body, Condition::Matches(&etag)).await;
                let ours = match replaced.map_err(|e| self.remote(e))? {
                    Some(_) => true,
                    // Refused: another taker won, or our own replace landed and its answer was
                    // lost (the retry then finds the ETag moved): what is there says which.
                    None => self.read_lock().await.is_some_and(|now| now.id == info.id),
                };
                if ours {
                    return Ok(Acquired { info, took_over: Some(held) });
                }
                (held.describe(), "another command took the lock over first: wait for it to finish".to_string())
            }
            Some((held, _)) => (
                held.describe(),
                format!(
                    "wait for it to finish; if its holder died, run `cruddur-infra force-unlock {}` (the lock is {} old)",
                    held.id,
                    age(held.created)
                ),
            ),
            None => (
                "unknown holder".into(),
                format!("remove s3://{}/{} if no command is running", self.bucket, self.lock_key()),
            ),
        };
        Err(StateError::Locked { path: self.location(), holder, hint })
    }

    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError> {
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
        let body = self.codec.seal(state.to_json().as_bytes(), Purpose::State, &self.location()).await?;
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

impl S3State<'_> {
    async fn backup(&self, etag: &str) -> Result<(), StateError> {
        // What this command read (nothing: the object is this command's own first write, in
        // the form it writes).
        let stored = self.stored.lock().expect("not poisoned").clone();
        if let Some(stored) =
            stored.filter(|s| Envelope::find(s).ok().flatten().is_some() != self.codec.key().is_some())
        {
            // A state changing form (`state encrypt|decrypt`) leaves no copy in the old form.
            let location = self.location();
            let plain = self.codec.open(&stored, Purpose::State, &location).await?;
            let body = self.codec.seal(&plain, Purpose::State, &location).await?;
            let key = format!("{}.backup", self.key);
            return match self.put_if(&key, &body, Condition::Always).await {
                Ok(_) => Ok(()),
                Err(e) => Err(self.remote(e)),
            };
        }
        // The bucket's region is known by now: the state was read from it.
        let s3 = self.aws.s3_for(&self.bucket).await;
        let source = format!("{}/{}", self.bucket, self.key);
        let copied = self
            .aws
            .retried(|| async {
                s3.copy_object()
                    .bucket(&self.bucket)
                    .key(format!("{}.backup", self.key))
                    .copy_source(&source)
                    .copy_source_if_match(etag)
                    .send()
                    .await
                    .map_err(|e| ProviderError::from_sdk("CopyObject", e))
            })
            .await;
        copied.map(|_| ()).map_err(|e| self.remote(e))
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

fn age(created: u64) -> String {
    let created = UNIX_EPOCH + Duration::from_secs(created);
    let secs = SystemTime::now().duration_since(created).unwrap_or_default().as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}
