//! Waiting for work AWS does in the background (a distribution deploying, a DNS change going
//! `INSYNC`, a permission becoming readable, a subscription being confirmed): how long to pause
//! before asking again.
//!
//! *Guarantee*: the pause is a share of the time waited so far, so the end is noticed within
//! that share of the wait (and never later than `ceiling`), while a long wait asks less and
//! less often: the number of polls grows with the logarithm of the wait, not linearly.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::provider::{ErrorClass, ProviderError};

/// How one kind of wait polls.
#[derive(Clone, Copy, Debug)]
pub struct Poll {
    /// The pause is `1 / share` of the time waited so far...
    pub share: u32,
    /// ...but at least this (no flood of calls at the start)...
    pub floor: Duration,
    /// ...and at most this (the end is never noticed later than this).
    pub ceiling: Duration,
}

impl Poll {
    /// The pause before the next poll, after `waited`.
    pub fn pause(&self, waited: Duration) -> Duration {
        (waited / self.share).clamp(self.floor, self.ceiling)
    }
}

/// What one poll saw.
pub enum Seen<T> {
    /// The work is done: the wait ends with this.
    Done(T),
    /// Not yet.
    Waiting,
}

/// Polls with `look` until it sees the work done, pausing as `poll` says between looks.
///
/// *Guarantee*: one deadline, `timeout` from the first look, however the looks fail. A look that
/// fails in a way that clears by itself (throttled, a 5xx, a reset connection) is a look that saw
/// nothing: the wait goes on under the same deadline, so a transient error neither ends the wait
/// nor restarts it (which a retry around the whole wait would). Any other error ends the wait.
/// At the deadline the wait ends with `timed_out(waited)`, or with the last look's error if it
/// failed.
pub async fn until<T, F, Fut>(
    poll: Poll,
    timeout: Duration,
    mut look: F,
    timed_out: impl FnOnce(Duration) -> ProviderError,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Seen<T>, ProviderError>>,
{
    let started = Instant::now();
    loop {
        let failed = match look().await {
            Ok(Seen::Done(v)) => return Ok(v),
            Ok(Seen::Waiting) => None,
            Err(e) if matches!(e.class, ErrorClass::Throttled | ErrorClass::Transient) => Some(e),
            Err(e) => return Err(e),
        };
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(failed.unwrap_or_else(|| timed_out(waited)));
        }
        tokio::time::sleep(poll.pause(waited).min(timeout - waited)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a wait for work that ends at `ends`: when it is noticed, and how many polls it
    /// took.
    fn noticed(poll: Poll, ends: Duration) -> (Duration, usize) {
        let (mut now, mut polls) = (Duration::ZERO, 0);
        loop {
            polls += 1;
            if now >= ends {
                return (now, polls);
            }
            now += poll.pause(now);
        }
    }

    #[test]
    fn the_end_is_noticed_within_the_share_of_the_wait_and_the_ceiling() {
        let poll = Poll { share: 20, floor: Duration::from_secs(1), ceiling: Duration::from_secs(15) };
        for secs in [1, 5, 12, 30, 60, 61, 90, 240, 600, 1800] {
            let ends = Duration::from_secs(secs);
            let (at, _) = noticed(poll, ends);
            let late = at - ends;
            assert!(late <= poll.floor.max(ends / 20).min(poll.ceiling), "{secs} s: noticed {late:?} late");
        }
    }

    const FAST: Poll = Poll { share: 10, floor: Duration::from_millis(1), ceiling: Duration::from_millis(2) };

    #[tokio::test]
    async fn a_transient_error_neither_ends_the_wait_nor_restarts_its_deadline() {
        let looks = std::sync::atomic::AtomicU32::new(0);
        let look = || async {
            match looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 | 2 => {
                    Err(ProviderError::new("GetChange", "Throttling", "slow down").with_class(ErrorClass::Throttled))
                }
                1 | 3 => Ok(Seen::Waiting),
                _ => Ok(Seen::Done("INSYNC")),
            }
        };
        let done = until(FAST, Duration::from_secs(5), look, |_| ProviderError::new("GetChange", "Timeout", "late"));
        assert_eq!(done.await.expect("done after two transient errors"), "INSYNC");

        // Transient errors until the deadline: the wait ends at the deadline, with the error.
        let started = Instant::now();
        let failing = || async {
            Err::<Seen<()>, _>(
                ProviderError::new("GetChange", "ServiceUnavailable", "down").with_class(ErrorClass::Transient),
            )
        };
        let ended =
            until(FAST, Duration::from_millis(50), failing, |_| ProviderError::new("GetChange", "Timeout", "late"));
        let e = ended.await.expect_err("the deadline holds");
        assert_eq!(e.code, "ServiceUnavailable");
        assert!(started.elapsed() < Duration::from_secs(2), "one deadline, not one per error");
    }

    #[tokio::test]
    async fn any_other_error_ends_the_wait_and_waiting_ends_at_the_deadline() {
        let denied = || async {
            Err::<Seen<()>, _>(ProviderError::new("GetChange", "AccessDenied", "no").with_class(ErrorClass::Fatal))
        };
        let e = until(FAST, Duration::from_secs(5), denied, |_| ProviderError::new("GetChange", "Timeout", "late"));
        assert_eq!(e.await.expect_err("fatal").code, "AccessDenied");
        let never = || async { Ok::<Seen<()>, ProviderError>(Seen::Waiting) };
        let e = until(FAST, Duration::from_millis(20), never, |_| ProviderError::new("GetChange", "Timeout", "late"));
        assert_eq!(e.await.expect_err("timed out").code, "Timeout");
    }

    #[test]
    fn a_long_wait_does_not_flood_the_api() {
        let poll = Poll { share: 20, floor: Duration::from_secs(1), ceiling: Duration::from_secs(15) };
        // A minute's deployment: fewer than one poll a second on average.
        let (_, polls) = noticed(poll, Duration::from_secs(60));
        assert!(polls < 60, "{polls} polls in a minute");
        // Half an hour: the ceiling keeps it to one every 15 s.
        let (_, polls) = noticed(poll, Duration::from_secs(1800));
        assert!(polls < 1800 / 15 + 60, "{polls} polls in half an hour");
    }
}
