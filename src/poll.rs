//! Waiting for work AWS does in the background (a distribution deploying, a DNS change going
//! `INSYNC`, a permission becoming readable, a subscription being confirmed): how long to pause
//! before asking again.
//!
//! *Guarantee*: the pause is a share of the time waited so far, so the end is noticed within
//! that share of the wait (and never later than `ceiling`), while a long wait asks less and
//! less often: the number of polls grows with the logarithm of the wait, not linearly.

use std::time::Duration;

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
