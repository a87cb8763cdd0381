//! cruddur-infra: a declarative infrastructure engine for the Cruddur serverless stack.
//!
//! A YAML [`spec`] is checked and turned into a dependency [`graph`]; the [`plan`] compares it
//! with the [`state`] and with what AWS reports through each [`provider`] kind; [`apply`]
//! carries the plan out in dependency order.

pub mod addr;
pub mod apply;
pub mod atomic_file;
pub mod build;
pub mod cli;
pub mod graph;
pub mod permissions;
pub mod plan;
pub mod poll;
pub mod provider;
pub mod retry;
pub mod run;
pub mod spec;
pub mod state;
pub mod value;
