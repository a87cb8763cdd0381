//! The `Operations` facet: commands a kind defines beyond plan and apply (a function's
//! `rollback`), after Terraform's provider-defined actions. The engine runs one in two steps
//! ([`crate::apply::operate`]): the kind decides what it will do from what AWS holds now,
//! changing nothing; the engine records the outcome it expects in the state's journal; then
//! the kind carries the decision out. A call retried after its answer was lost, or run again
//! after the process was killed, carries out the same decision, never a further step.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::provider::{Aws, ProviderError};
use crate::value::Attrs;

/// One operation a kind offers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Operation {
    /// Its name on the command line (`rollback`).
    pub name: &'static str,
    /// What it does, in a line.
    pub about: &'static str,
}

/// The arguments an operation was given (`--to 2` is `to: "2"`).
pub type OperationArgs = BTreeMap<String, String>;

/// What an operation will do, decided once.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The resource's attributes as they will read once it is done. Recorded before AWS is
    /// touched: if the process dies during the call, the next refresh corrects whichever part
    /// did not happen.
    pub expected: Attrs,
    /// What it does, in words (`live serves version 2 (was 3)`).
    pub summary: String,
    /// What the user should know next, if anything.
    pub next: Option<String>,
}

#[async_trait]
pub trait Operations: Send + Sync {
    /// The operations this kind offers.
    fn operations(&self) -> &'static [Operation];

    /// Decides what `operation` does to the resource `id`, last recorded as `recorded`: reads
    /// AWS and changes nothing. A refusal (nothing to go back to) is an error here.
    async fn decide(
        &self,
        aws: &Aws,
        operation: &str,
        args: &OperationArgs,
        id: &str,
        recorded: &Attrs,
    ) -> Result<Decision, ProviderError>;

    /// Carries out a decision: makes the resource what `decision.expected` says. Safe to repeat.
    async fn carry_out(&self, aws: &Aws, operation: &str, id: &str, decision: &Decision) -> Result<(), ProviderError>;
}
