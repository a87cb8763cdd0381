//! `--lock-timeout`: a state whose lock another command holds is waited for, up to a deadline,
//! on every backend and for every command that takes the lock. While it waits it says who holds
//! the lock (again whenever the holder changes); at the deadline it gives up with the holder
//! named, as a command without a timeout does at once.
//!
//! Waiters poll as every wait of the engine does ([`crate::poll::Poll`]: pauses that grow with
//! the time waited), each pause jittered so waiters that started together do not try together.
//! No backend here keeps a queue, so the order in which waiters get the lock is roughly, not
//! strictly, the order they came in.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::backend::Acquired;
use super::{LockInfo, ResourceState, State, StateBackend, StateError};
use crate::addr::ResourceAddr;
use crate::poll::Poll;

/// A tenth of the time waited so far, between 100 ms and 2 s.
const POLL: Poll = Poll { share: 10, floor: Duration::from_millis(100), ceiling: Duration::from_secs(2) };

/// A backend whose `lock` waits up to `timeout` for the holder to let go.
pub struct Waiting<'a> {
    pub inner: Box<dyn StateBackend + 'a>,
    pub timeout: Duration,
}

#[async_trait]
impl StateBackend for Waiting<'_> {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn load(&self) -> Result<State, StateError> {
        self.inner.load().await
    }

    async fn load_existing(&self) -> Result<State, StateError> {
        self.inner.load_existing().await
    }

    async fn kept(&self) -> Result<Vec<u64>, StateError> {
        self.inner.kept().await
    }

    async fn remove(&self) -> Result<(), StateError> {
        self.inner.remove().await
    }

    async fn load_kept(&self, serial: u64) -> Result<Option<State>, StateError> {
        self.inner.load_kept(serial).await
    }

    async fn lock(&self, operation: &str) -> Result<Acquired, StateError> {
        let started = Instant::now();
        let mut last_holder: Option<Option<String>> = None;
        loop {
            match self.inner.lock(operation).await {
                Err(StateError::Locked { path, holder, lock_id, hint }) => {
                    let waited = started.elapsed();
                    if waited >= self.timeout {
                        let hint = if self.timeout.is_zero() {
                            hint
                        } else {
                            let waited = humantime::format_duration(Duration::from_secs(waited.as_secs()));
                            format!("still locked after waiting {waited} (--lock-timeout); {hint}")
                        };
                        return Err(StateError::Locked { path, holder, lock_id, hint });
                    }
                    // Said again only when another command holds it (its age changes each poll).
                    if last_holder.as_ref() != Some(&lock_id) {
                        let left = humantime::format_duration(Duration::from_secs((self.timeout - waited).as_secs()));
                        eprintln!("Waiting for the state lock of {path}, held by {holder} (giving up in {left})");
                        last_holder = Some(lock_id);
                    }
                    // Give or take a quarter (the retry policy jitters the same way).
                    let pause = POLL.pause(waited).mul_f64(0.75 + fastrand::f64() * 0.5);
                    tokio::time::sleep(pause.min(self.timeout - waited)).await;
                }
                other => return other,
            }
        }
    }

    async fn keep(&self, lock: &LockInfo) -> StateError {
        self.inner.keep(lock).await
    }

    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError> {
        self.inner.unlock(lock).await
    }

    async fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        self.inner.force_unlock(id).await
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        self.inner.save(state).await
    }

    async fn record(
        &self,
        state: &State,
        addr: &ResourceAddr,
        entry: Option<&ResourceState>,
    ) -> Result<(), StateError> {
        self.inner.record(state, addr, entry).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::LocalState;

    fn waiting(path: &std::path::Path, timeout: Duration) -> Waiting<'static> {
        Waiting { inner: Box::new(LocalState::new(path.to_str().expect("utf-8"))), timeout }
    }

    #[tokio::test]
    async fn a_waiter_gets_the_lock_once_the_holder_lets_go_and_gives_up_at_its_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        let holder = waiting(&path, Duration::ZERO);
        let held = holder.lock("apply").await.expect("the first takes it");

        // No timeout: refused at once, naming the holder.
        let at_once = waiting(&path, Duration::ZERO).lock("apply").await.expect_err("locked");
        assert!(matches!(&at_once, StateError::Locked { hint, .. } if !hint.contains("--lock-timeout")), "{at_once}");

        // A short timeout: refused at its deadline, saying it waited.
        let started = Instant::now();
        let late = waiting(&path, Duration::from_millis(400)).lock("apply").await.expect_err("still locked");
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert!(matches!(&late, StateError::Locked { hint, .. } if hint.contains("--lock-timeout")), "{late}");

        // A waiter with time to spare gets it as soon as the holder lets go.
        let waiter = tokio::spawn({
            let path = path.clone();
            async move { waiting(&path, Duration::from_secs(30)).lock("apply").await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "it waits while the lock is held");
        holder.unlock(&held.info).await.expect("released");
        let got = waiter.await.expect("joins").expect("the waiter takes the lock");
        assert_eq!(got.info.operation, "apply");
    }
}
