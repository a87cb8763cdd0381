//! Where a state lives: a local file (the default) or an S3 object shared by a team and CI.

use async_trait::async_trait;

use super::{LockInfo, ResourceState, State, StateError};
use crate::addr::ResourceAddr;

/// A lock this command now holds.
#[derive(Clone, Debug)]
pub struct Acquired {
    pub info: LockInfo,
    /// The lock of a command that died, taken over because its holder provably no longer runs.
    pub took_over: Option<LockInfo>,
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

    /// Takes the exclusive lock for `operation`.
    async fn lock(&self, operation: &str) -> Result<Acquired, StateError>;

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
