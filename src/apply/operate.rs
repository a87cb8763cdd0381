//! Runs a kind's operation (see [`Operations`]) on one managed resource, journaled like any
//! other write: decide (reads only), record the expected outcome, carry it out, read the
//! resource back and record what it is. The caller holds the state lock.
//!
//! *Crash safety*: killed before the call, the state holds an outcome that did not happen and
//! the next refresh reads the truth back; killed after it, the state already says what
//! happened. Either way nothing is lost, and running the operation again decides afresh from
//! what AWS holds.

use crate::addr::ResourceAddr;
use crate::plan::{PlanError, PlanOptions, Planner};
use crate::provider::{Aws, OperationArgs, ProviderError, Registry};
use crate::state::{State, StateBackend, StateError};

/// What an operation did.
#[derive(Debug)]
pub struct Operated {
    /// In words, from the kind (`live serves version 2 (was 3)`).
    pub summary: String,
    /// What the user should know next, if anything.
    pub next: Option<String>,
}

/// Why an operation was not run, or did not finish.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OperateError {
    /// No kind by that name offers the operation.
    #[error("{addr} has no operation `{operation}`{}", offered(offered_by))]
    #[diagnostic(code(cruddur::operation::unknown))]
    NotOffered { addr: ResourceAddr, operation: String, offered_by: Vec<&'static str> },
    /// The state does not hold the resource (or holds only a create whose answer was lost).
    #[error("{addr} is not in the state: apply it first")]
    #[diagnostic(code(cruddur::operation::not_managed))]
    NotManaged { addr: ResourceAddr },
    /// The resource the state records is gone from AWS.
    #[error("{addr} ({id}) is gone from AWS")]
    #[diagnostic(code(cruddur::operation::gone))]
    Gone { addr: ResourceAddr, id: String },
    /// AWS refused or failed a call, or the kind refused the operation.
    #[error("{addr}: {error}")]
    #[diagnostic(code(cruddur::aws))]
    Aws { addr: ResourceAddr, error: Box<ProviderError> },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Refresh(#[from] PlanError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
}

fn offered(by: &[&str]) -> String {
    match by {
        [] => String::new(),
        [one] => format!(" (only {one} offers it)"),
        many => format!(" (only {} offer it)", many.join(", ")),
    }
}

/// Runs `operation` with `args` on the resource at `addr`.
pub async fn operate(
    registry: &Registry,
    aws: &Aws,
    store: &dyn StateBackend,
    addr: &ResourceAddr,
    operation: &str,
    args: &OperationArgs,
) -> Result<Operated, OperateError> {
    let not_offered = || OperateError::NotOffered {
        addr: addr.clone(),
        operation: operation.to_string(),
        offered_by: registry.offering(operation),
    };
    let kind = registry.get(&addr.kind).ok_or_else(not_offered)?;
    let ops = kind.operations().filter(|o| o.operations().iter().any(|op| op.name == operation));
    let ops = ops.ok_or_else(not_offered)?;
    let mut state = store.load().await?;
    let Some(entry) = state.resources.get(addr).filter(|r| r.pending().is_none()).cloned() else {
        return Err(OperateError::NotManaged { addr: addr.clone() });
    };
    let aws_error = |error| OperateError::Aws { addr: addr.clone(), error: Box::new(error) };
    // Decided once: a call retried after its answer was lost carries out the same decision.
    let decision =
        aws.retried(|| ops.decide(aws, operation, args, &entry.id, &entry.attributes)).await.map_err(aws_error)?;
    let expected = crate::state::ResourceState { attributes: decision.expected.clone(), ..entry.clone() };
    record(store, &mut state, addr, expected.clone()).await?;
    aws.retried(|| ops.carry_out(aws, operation, &entry.id, &decision)).await.map_err(aws_error)?;
    // What it is now, read as any refresh reads it (the expected outcome as the prior).
    let alone = State { resources: [(addr.clone(), expected)].into(), ..state.clone() };
    let planner = Planner { registry, aws, options: PlanOptions::default() };
    let mut read = planner.refresh_only(&alone).await?;
    let Some(now) = read.resources.remove(addr) else {
        return Err(OperateError::Gone { addr: addr.clone(), id: entry.id });
    };
    record(store, &mut state, addr, now).await?;
    store.save(&state).await?;
    Ok(Operated { summary: decision.summary, next: decision.next })
}

/// Makes one resource's new entry durable, as apply does.
async fn record(
    store: &dyn StateBackend,
    state: &mut State,
    addr: &ResourceAddr,
    entry: crate::state::ResourceState,
) -> Result<(), StateError> {
    state.resources.insert(addr.clone(), entry.clone());
    state.serial += 1;
    store.record(state, addr, Some(&entry)).await
}
