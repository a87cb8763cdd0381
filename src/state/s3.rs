//! The S3 state backend: the state is one object; the lock is a second object created with a
//! conditional write (`If-None-Match: *`), so exactly one command gets it; each save is a
//! conditional write on the ETag last read or written (`If-Match`), so a writer that ignored
//! the lock can never be overwritten silently. The state as it was before a command is copied
//! to `KEY.backup`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;

use super::backend::StateBackend;
use super::{LockInfo, State, StateError};
use crate::provider::Aws;

pub struct S3State<'a> {
    aws: &'a Aws,
    bucket: String,
    key: String,
    /// The ETag of the state object as last read or written (None: there is none yet).
    etag: Mutex<Option<String>>,
    backed_up: std::sync::atomic::AtomicBool,
}

impl<'a> S3State<'a> {
    pub fn new(aws: &'a Aws, bucket: &str, key: &str) -> Self {
        Self {
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

    fn remote<E: ProvideErrorMetadata>(&self, operation: &'static str, e: &E) -> StateError {
        StateError::Remote {
            path: self.location(),
            operation,
            code: e.code().unwrap_or("Unknown").to_string(),
            message: e.message().unwrap_or_default().to_string(),
        }
    }

    async fn read_lock(&self) -> Option<LockInfo> {
        let out = self.aws.s3().await.get_object().bucket(&self.bucket).key(self.lock_key()).send().await.ok()?;
        let bytes = out.body.collect().await.ok()?.into_bytes();
        serde_json::from_slice(&bytes).ok()
    }
}

#[async_trait]
impl StateBackend for S3State<'_> {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn load(&self) -> Result<State, StateError> {
        let got = self.aws.s3().await.get_object().bucket(&self.bucket).key(&self.key).send().await;
        let out = match got {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(State::new()),
            Err(e) => return Err(self.remote("GetObject", &e)),
        };
        *self.etag.lock().expect("not poisoned") = out.e_tag().map(str::to_string);
        let bytes = out.body.collect().await.map_err(|e| StateError::Remote {
            path: self.location(),
            operation: "GetObject",
            code: "ReadFailed".into(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8_lossy(&bytes.into_bytes()).into_owned();
        State::from_json(&text).map_err(|reason| StateError::Corrupt { path: self.location(), reason })
    }

    async fn lock(&self, operation: &str) -> Result<LockInfo, StateError> {
        let info = LockInfo::new(operation);
        let body = serde_json::to_vec_pretty(&info).expect("lock info is plain data");
        let put = self
            .aws
            .s3()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(self.lock_key())
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match put {
            Ok(_) => Ok(info),
            Err(e) if is_precondition_failed(&e) => {
                let (holder, hint) = match self.read_lock().await {
                    Some(held) => (
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
            Err(e) => Err(self.remote("PutObject", &e)),
        }
    }

    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError> {
        // Only remove the lock if it is still ours (force-unlock may have handed it on).
        if self.read_lock().await.is_some_and(|held| held.id == lock.id) {
            let s3 = self.aws.s3().await;
            let deleted = s3.delete_object().bucket(&self.bucket).key(self.lock_key()).send().await;
            deleted.map_err(|e| self.remote("DeleteObject", &e))?;
        }
        Ok(())
    }

    async fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        let unlock = |reason: String| StateError::Unlock { path: self.location(), reason };
        let held = self.read_lock().await.ok_or_else(|| unlock("it is not locked".into()))?;
        if held.id != id {
            return Err(unlock(format!("the lock has id {}, not {id}", held.id)));
        }
        let s3 = self.aws.s3().await;
        s3.delete_object()
            .bucket(&self.bucket)
            .key(self.lock_key())
            .send()
            .await
            .map_err(|e| self.remote("DeleteObject", &e))?;
        Ok(held)
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        let s3 = self.aws.s3().await;
        let etag = self.etag.lock().expect("not poisoned").clone();
        if let Some(etag) = &etag
            && !self.backed_up.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let source = format!("{}/{}", self.bucket, self.key);
            let copy = s3
                .copy_object()
                .bucket(&self.bucket)
                .key(format!("{}.backup", self.key))
                .copy_source(source)
                .copy_source_if_match(etag);
            copy.send().await.map_err(|e| self.remote("CopyObject", &e))?;
        }
        let put = s3
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .body(ByteStream::from(state.to_json().into_bytes()));
        // Create only if absent, or replace only the version this command last saw.
        let put = match &etag {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(out) => {
                *self.etag.lock().expect("not poisoned") = out.e_tag().map(str::to_string);
                Ok(())
            }
            Err(e) if is_precondition_failed(&e) => Err(StateError::Conflict { path: self.location() }),
            Err(e) => Err(self.remote("PutObject", &e)),
        }
    }
}

fn is_precondition_failed<E: ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    e.raw_response().is_some_and(|r| r.status().as_u16() == 412)
        || e.as_service_error().and_then(|s| s.code()).is_some_and(|c| c == "PreconditionFailed")
}

fn age(created: u64) -> String {
    let created = UNIX_EPOCH + Duration::from_secs(created);
    let secs = SystemTime::now().duration_since(created).unwrap_or_default().as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}
