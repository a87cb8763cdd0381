//! Where a state lives: a local file (the default) or an S3 object shared by a team and CI.

use async_trait::async_trait;

use super::{LockInfo, ResourceState, State, StateError};
use crate::addr::ResourceAddr;

/// A lock this command now holds.
#[derive(Clone, Debug)]
pub struct Acquired {
    pub info: LockInfo,
    /// The lock of a command that died, taken over.
    pub took_over: Option<TookOver>,
}

/// A lock taken over from a command that no longer holds it, and how that is known.
#[derive(Clone, Debug, PartialEq)]
pub struct TookOver {
    pub holder: LockInfo,
    pub why: Takeover,
}

/// Why a lock could be taken over.
#[derive(Clone, Debug, PartialEq)]
pub enum Takeover {
    /// It ran on this host in this boot and its process no longer runs.
    HolderGone,
    /// Its holder stopped renewing it: not renewed for this long, past its lease.
    LeaseLapsed { idle: std::time::Duration },
}

impl TookOver {
    /// `Took over the state lock of apply by pid 42 ...: its lease of 1m lapsed (not renewed for 3m 2s).`
    pub fn describe(&self) -> String {
        let why = match &self.why {
            Takeover::HolderGone => "that process is no longer running (it ran on this host in this boot)".to_string(),
            Takeover::LeaseLapsed { idle } => format!(
                "its holder stopped renewing it (lease {}, not renewed for {})",
                humantime::format_duration(std::time::Duration::from_secs(self.holder.lease.unwrap_or_default())),
                humantime::format_duration(std::time::Duration::from_secs(idle.as_secs()))
            ),
        };
        format!(
            "Took over the state lock of {}: {why}. What it recorded before it stopped is kept.",
            self.holder.describe()
        )
    }
}

/// Runs `work` while `lock` is held, keeping the lock alive ([`StateBackend::keep`]): its
/// output, or, if the lock is lost meanwhile, the loss. `work` is then dropped at once, before
/// its next write, as a kill would stop it (the journal and intents make that safe).
pub async fn while_locked<T>(
    store: &dyn StateBackend,
    lock: &LockInfo,
    work: impl std::future::Future<Output = T>,
) -> Result<T, StateError> {
    tokio::select! {
        biased;
        done = work => Ok(done),
        lost = store.keep(lock) => Err(lost),
    }
}

/// A store for one state document and its lock.
///
/// *Guarantees*: `save` replaces the whole document atomically; only the holder of the lock
/// saves; a lock that is taken makes a second `lock` fail at once, naming the holder.
#[async_trait]
pub trait StateBackend: Send + Sync {
    /// Where the state is, for messages (`state/cruddur.json`, `s3://bucket/key`).
    fn location(&self) -> String;

    /// The stored state, or a new empty one when there is none yet.
    async fn load(&self) -> Result<State, StateError>;

    /// The stored state, for a command that reports on one (`drift`, `output`, `state ...`):
    /// none where it was pointed is an error naming the place, never an empty report (a nightly
    /// drift check with a wrong path would otherwise stay green forever).
    async fn load_existing(&self) -> Result<State, StateError> {
        let state = self.load().await?;
        if state.serial == 0 && state.resources.is_empty() {
            return Err(StateError::Missing { path: self.location() });
        }
        Ok(state)
    }

    /// The serials of the earlier states this store keeps (one per command that wrote: the
    /// state it started from), oldest first.
    async fn kept(&self) -> Result<Vec<u64>, StateError> {
        Ok(vec![])
    }

    /// An earlier state this store keeps, by serial; `None` when it is not kept.
    async fn load_kept(&self, _serial: u64) -> Result<Option<State>, StateError> {
        Ok(None)
    }

    /// Removes the state, its backup, journal and kept history (a stage destroyed). The caller
    /// holds the lock, which it releases afterwards.
    async fn remove(&self) -> Result<(), StateError>;

    /// Takes the exclusive lock for `operation`.
    async fn lock(&self, operation: &str) -> Result<Acquired, StateError>;

    /// Keeps a lock this command holds alive while it works; returns only when the lock is
    /// lost (taken over after its lease lapsed, or removed by `force-unlock`). A lock that
    /// lasts until released (a local file) never returns.
    async fn keep(&self, _lock: &LockInfo) -> StateError {
        std::future::pending().await
    }

    /// Releases a lock this command took.
    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError>;

    /// Removes the lock with this id, whoever holds it (for a holder that died).
    async fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError>;

    /// Stores `state`. The caller holds the lock.
    async fn save(&self, state: &State) -> Result<(), StateError>;

    /// Makes one resource's change (its new entry, or `None` once deleted) durable; `state`
    /// already holds it, with its serial raised. A store that can, writes in time proportional
    /// to the change, not to the state; `save` later folds the changes in. By default the whole
    /// state is saved.
    async fn record(
        &self,
        state: &State,
        _addr: &ResourceAddr,
        _entry: Option<&ResourceState>,
    ) -> Result<(), StateError> {
        self.save(state).await
    }
}
