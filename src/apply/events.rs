//! What an apply reports as it goes: the engine calls an [`ApplyEvents`]; the CLI renders the
//! events as text, tests record them. The engine itself never prints.

use std::time::Duration;

use super::ApplyError;
use crate::addr::ResourceAddr;
use crate::plan::Action;
use crate::retry::RetryNotice;

/// Receives an apply's progress. Every method has an empty default.
pub trait ApplyEvents: Sync {
    /// Work on a resource begins.
    fn started(&self, _addr: &ResourceAddr, _action: Action, _id: Option<&str>) {}

    /// A call failed and will be tried again after `notice.delay`.
    fn retrying(&self, _addr: &ResourceAddr, _notice: &RetryNotice) {}

    /// The creating call answered: the resource exists and is recorded, its settings and
    /// readiness still to come.
    fn created(&self, _addr: &ResourceAddr, _id: &str) {}

    /// A resource an earlier attempt (or an interrupted apply) made was found and taken into
    /// the state instead of being created again.
    fn adopted(&self, _addr: &ResourceAddr, _id: &str) {}

    /// An intent whose resource was never made was dropped.
    fn intent_dropped(&self, _addr: &ResourceAddr) {}

    /// A create waits `wait` for what an interrupted command may still have in flight before
    /// it looks again (where AWS would make a second object).
    fn awaiting_in_flight(&self, _addr: &ResourceAddr, _wait: Duration) {}

    /// AWS would not delete the resource now and removes it itself later; it is forgotten.
    fn left_to_aws(&self, _addr: &ResourceAddr, _why: &str) {}

    /// Still at work on the resource (a long create, a deployment being waited for): sent every
    /// [`super::Applier::progress_every`] while one step of it runs.
    fn still_working(&self, _addr: &ResourceAddr, _action: Action, _elapsed: Duration) {}

    /// The resource is done: created, changed or destroyed, and recorded.
    fn finished(&self, _addr: &ResourceAddr, _action: Action, _id: Option<&str>, _elapsed: Duration) {}

    /// A resource created or changed earlier in this apply is now ready for use (a distribution
    /// deployed); its dependents that needed only its id went ahead before.
    fn ready(&self, _addr: &ResourceAddr, _elapsed: Duration) {}

    /// The resource's change failed; what depends on it is skipped. Sent once per failure.
    fn failed(&self, _addr: &ResourceAddr, _action: Action, _error: &ApplyError, _elapsed: Duration) {}
}

/// Reports nothing.
pub struct Silent;

impl ApplyEvents for Silent {}
