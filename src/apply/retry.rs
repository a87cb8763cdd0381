//! The retry policy for AWS calls: which errors are retried, how often, and how long to wait.

use std::future::Future;
use std::time::Duration;

use crate::provider::{ErrorClass, ProviderError};

/// Retries errors classed [`ErrorClass::Retryable`] with exponential backoff; every other error
/// returns at once. (The SDK already retries single requests; this covers whole operations.)
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Stop retrying once this much time has passed since the first attempt.
    pub max_elapsed: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_elapsed: None,
        }
    }
}

impl RetryPolicy {
    /// Retries for as long as `limit`, polling quickly at first (for eventual consistency).
    pub fn until(limit: Duration) -> Self {
        Self {
            max_attempts: u32::MAX,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_elapsed: Some(limit),
        }
    }

    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        let started = std::time::Instant::now();
        loop {
            let in_time = self.max_elapsed.is_none_or(|limit| started.elapsed() + delay < limit);
            match op().await {
                Err(e) if e.class == ErrorClass::Retryable && attempt < self.max_attempts && in_time => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_delay);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_elapsed: None,
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_until_it_succeeds() {
        // Two throttled attempts, then success: the caller sees the success.
        let calls = Cell::new(0);
        let out =
            fast()
                .run(|| {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n < 3 { Err(ProviderError::new("Op", "ThrottlingException", "slow down")) } else { Ok(n) }
                    }
                })
                .await;
        assert_eq!(out.expect("succeeds"), 3);
    }

    #[tokio::test]
    async fn validation_errors_are_not_retried() {
        // A fatal error returns after one attempt.
        let calls = Cell::new(0);
        let out: Result<(), _> = fast()
            .run(|| {
                calls.set(calls.get() + 1);
                async { Err(ProviderError::new("Op", "InvalidParameter", "bad")) }
            })
            .await;
        assert_eq!(out.expect_err("fails").code, "InvalidParameter");
        assert_eq!(calls.get(), 1);
    }
}
