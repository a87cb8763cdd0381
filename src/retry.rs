//! The one retry authority for AWS calls: which failures are tried again, how long to wait
//! between tries, and when to give up.
//!
//! *Guarantees*: every retry happens here (the SDK's own retries are off), with exponential
//! backoff and jitter, within a time budget per [`ErrorClass`]; each retry is reported before
//! the wait; an error given up on says how many attempts were made and how long was waited.
//!
//! *Assumptions*: the operation run is safe to repeat as a whole (reads, idempotent updates
//! and deletes). A creating call is not: the engine runs it with a [`RetryState`] and looks for
//! what an ambiguous attempt may have made before trying again.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::provider::{ErrorClass, ProviderError};

/// Waits for one class of failure: `first`, doubling up to `max`, for at most `budget` from
/// the first failure of the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub budget: Duration,
}

impl Backoff {
    const fn secs(first_ms: u64, max_s: u64, budget_s: u64) -> Self {
        Self {
            first: Duration::from_millis(first_ms),
            max: Duration::from_secs(max_s),
            budget: Duration::from_secs(budget_s),
        }
    }
}

/// What the engine does about each class of failure.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Throttling: AWS refused because of the rate, so back off harder.
    pub throttled: Backoff,
    /// 5xx, resets, timeouts.
    pub transient: Backoff,
    /// "Concurrent modification, try again later", "an update is in progress".
    pub conflict: Backoff,
    /// Something just made is not usable yet (a role Lambda cannot assume yet).
    pub propagating: Backoff,
    /// "Not found" from a call about a resource created moments ago.
    pub not_yet_visible: Backoff,
    /// How long after a create "not found" still means "not yet visible".
    pub visibility_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            throttled: Backoff::secs(1000, 20, 120),
            // Reads, updates and deletes are retried as a whole, and a read is several calls
            // (a role: GetRole, its inline and attached policies): the budget must outlast a
            // run of failures among them, not only of one call.
            transient: Backoff::secs(500, 10, 180),
            conflict: Backoff::secs(1000, 10, 120),
            propagating: Backoff::secs(1000, 10, 120),
            not_yet_visible: Backoff::secs(500, 5, 60),
            visibility_window: Duration::from_secs(120),
        }
    }
}

/// A retry about to happen, for the user to see.
#[derive(Debug)]
pub struct RetryNotice<'a> {
    pub error: &'a ProviderError,
    /// The attempt that failed (1 is the first).
    pub attempt: u32,
    pub delay: Duration,
}

/// The circumstances of one operation.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// When the resource was created, if recently: "not found" is then retried.
    pub created_at: Option<Instant>,
    pub on_retry: &'a (dyn Fn(&RetryNotice) + Sync),
}

impl Scope<'_> {
    /// No recent create, nobody told about retries.
    pub fn quiet() -> Scope<'static> {
        Scope { created_at: None, on_retry: &|_| {} }
    }
}

impl RetryPolicy {
    /// Tiny waits and budgets, for tests that inject failures.
    pub fn fast() -> Self {
        let tiny = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(5),
            budget: Duration::from_millis(500),
        };
        Self {
            throttled: tiny,
            transient: tiny,
            conflict: tiny,
            propagating: tiny,
            not_yet_visible: tiny,
            visibility_window: Duration::from_secs(60),
        }
    }

    /// The backoff for `class`, or `None` when it is not retried. `NotFound` is retried only as
    /// "not yet visible", within the window after a create.
    fn backoff(&self, class: ErrorClass, created_at: Option<Instant>) -> Option<&Backoff> {
        match class {
            ErrorClass::Throttled => Some(&self.throttled),
            ErrorClass::Transient => Some(&self.transient),
            ErrorClass::Conflict => Some(&self.conflict),
            ErrorClass::Propagating => Some(&self.propagating),
            ErrorClass::NotFound if created_at.is_some_and(|t| t.elapsed() < self.visibility_window) => {
                Some(&self.not_yet_visible)
            }
            ErrorClass::NotFound | ErrorClass::AlreadyExists | ErrorClass::Fatal => None,
        }
    }

    /// Runs `op` until it succeeds, fails in a way the policy does not retry, or the budget of
    /// the failure's class is spent.
    pub async fn run<T, F, Fut>(&self, scope: Scope<'_>, mut op: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut state = RetryState::new(self, scope);
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => match state.next_delay(&e) {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(state.give_up(e)),
                },
            }
        }
    }
}

/// The retries of one operation so far, for callers that must act between attempts (a create
/// looks for what an ambiguous attempt may have made before trying again).
pub struct RetryState<'a> {
    policy: &'a RetryPolicy,
    scope: Scope<'a>,
    attempts: u32,
    waited: Duration,
    /// When each class first failed, and how many times it has.
    first_failure: Vec<(ErrorClass, Instant, u32)>,
}

impl<'a> RetryState<'a> {
    pub fn new(policy: &'a RetryPolicy, scope: Scope<'a>) -> Self {
        Self { policy, scope, attempts: 0, waited: Duration::ZERO, first_failure: Vec::new() }
    }

    /// The wait before the next attempt after `e`, reported to the scope; `None` to give up.
    pub fn next_delay(&mut self, e: &ProviderError) -> Option<Duration> {
        self.attempts += 1;
        let backoff = self.policy.backoff(e.class, self.scope.created_at)?;
        let now = Instant::now();
        let (since, failures) = match self.first_failure.iter_mut().find(|(c, _, _)| *c == e.class) {
            Some(entry) => {
                entry.2 += 1;
                (entry.1, entry.2)
            }
            None => {
                self.first_failure.push((e.class, now, 1));
                (now, 1)
            }
        };
        let exponential = backoff.first.saturating_mul(1u32 << (failures - 1).min(16));
        let capped = exponential.min(backoff.max);
        // Full-range jitter in [50%, 100%] keeps parallel retries from moving in step.
        let delay = capped.mul_f64(0.5 + fastrand::f64() * 0.5);
        if now.duration_since(since) + delay > backoff.budget {
            return None;
        }
        (self.scope.on_retry)(&RetryNotice { error: e, attempt: self.attempts, delay });
        self.waited += delay;
        Some(delay)
    }

    /// `e`, stamped with the attempts made and the time waited.
    pub fn give_up(&self, mut e: ProviderError) -> ProviderError {
        e.attempts = self.attempts.max(1);
        e.waited = self.waited;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn failing(code: &'static str, times: u32) -> (AtomicU32, impl Fn(&AtomicU32) -> Result<u32, ProviderError>) {
        let calls = AtomicU32::new(0);
        let op = move |calls: &AtomicU32| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= times { Err(ProviderError::new("Op", code, "injected")) } else { Ok(n) }
        };
        (calls, op)
    }

    async fn run_with(
        policy: &RetryPolicy,
        scope: Scope<'_>,
        code: &'static str,
        times: u32,
    ) -> (Result<u32, ProviderError>, u32) {
        let (calls, op) = failing(code, times);
        let out = policy.run(scope, || std::future::ready(op(&calls))).await;
        (out, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn throttling_transient_and_conflict_failures_are_retried_until_success() {
        // Each retryable class: two failures, then success on the third attempt.
        for code in ["ThrottlingException", "InternalError", "ConcurrentModification"] {
            let (out, calls) = run_with(&RetryPolicy::fast(), Scope::quiet(), code, 2).await;
            assert_eq!(out.expect("succeeds"), 3, "{code}");
            assert_eq!(calls, 3, "{code}");
        }
    }

    #[tokio::test]
    async fn validation_and_already_exists_errors_are_not_retried() {
        // A fatal error returns after one attempt, unstamped.
        for code in ["InvalidParameter", "EntityAlreadyExists"] {
            let (out, calls) = run_with(&RetryPolicy::fast(), Scope::quiet(), code, 5).await;
            let e = out.expect_err("fails");
            assert_eq!((e.code.as_str(), calls, e.attempts), (code, 1, 1));
        }
    }

    #[tokio::test]
    async fn not_found_is_retried_only_right_after_a_create() {
        // NoSuchBucket from a settings call moments after CreateBucket is "not yet visible";
        // from any other call it means gone.
        let (out, calls) = run_with(&RetryPolicy::fast(), Scope::quiet(), "NoSuchBucket", 2).await;
        assert!(out.expect_err("gone").is_not_found());
        assert_eq!(calls, 1);
        let fresh = Scope { created_at: Some(Instant::now()), on_retry: &|_| {} };
        let (out, calls) = run_with(&RetryPolicy::fast(), fresh, "NoSuchBucket", 2).await;
        assert_eq!(out.expect("visible by then"), 3);
        assert_eq!(calls, 3);
        let long_ago = Scope { created_at: Instant::now().checked_sub(Duration::from_secs(600)), on_retry: &|_| {} };
        let (out, _) = run_with(&RetryPolicy::fast(), long_ago, "NoSuchBucket", 2).await;
        assert!(out.is_err(), "outside the window, not found is final");
    }

    #[tokio::test]
    async fn a_spent_budget_gives_up_and_says_how_long_it_tried() {
        // Throttling that never ends: the error comes back stamped with attempts and time.
        let policy = RetryPolicy {
            throttled: Backoff {
                first: Duration::from_millis(10),
                max: Duration::from_millis(20),
                budget: Duration::from_millis(100),
            },
            ..RetryPolicy::fast()
        };
        let started = Instant::now();
        let (out, calls) = run_with(&policy, Scope::quiet(), "Throttling", u32::MAX).await;
        let e = out.expect_err("gives up");
        assert!(calls >= 4, "retried several times: {calls}");
        assert_eq!(e.attempts, calls);
        assert!(e.waited <= Duration::from_millis(100) && e.waited >= Duration::from_millis(20), "{:?}", e.waited);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(e.to_string().contains(&format!("after {calls} attempts")), "{e}");
    }

    #[tokio::test]
    async fn each_retry_is_reported_before_the_wait_with_growing_delays() {
        // The reporter sees every retry, in order, with the failed attempt's number.
        let seen = Mutex::new(Vec::new());
        let report = |n: &RetryNotice| seen.lock().expect("lock").push((n.attempt, n.delay, n.error.code.clone()));
        let policy = RetryPolicy {
            transient: Backoff {
                first: Duration::from_millis(4),
                max: Duration::from_millis(64),
                budget: Duration::from_secs(5),
            },
            ..RetryPolicy::fast()
        };
        let (out, _) = run_with(&policy, Scope { created_at: None, on_retry: &report }, "ServiceUnavailable", 4).await;
        out.expect("succeeds");
        let seen = seen.into_inner().expect("lock");
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        // Jitter keeps each delay within [50%, 100%] of 4, 8, 16, 32 ms.
        for (i, (_, delay, code)) in seen.iter().enumerate() {
            let full = Duration::from_millis(4 << i);
            assert!(*delay >= full / 2 && *delay <= full, "retry {i}: {delay:?}");
            assert_eq!(code, "ServiceUnavailable");
        }
    }
}
