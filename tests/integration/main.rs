//! Integration tests: the real binary and the real AWS SDK against a private moto server per
//! test; results are checked through the AWS API, never through the engine's own state.

mod aws_rules;
mod bad_input;
mod build;
mod cli_habits;
mod closed_world;
mod deployer;
mod diagnostics;
mod docs;
mod encryption;
mod end_to_end;
mod guards;
mod harness;
mod history;
mod hostile;
mod lambdas;
mod lifecycle;
mod locking;
mod moves;
mod output_formats;
mod permissions;
mod remote;
mod review;
mod runtime_api;
mod schema;
mod stack;
mod stages;
mod undo;
mod versions;
mod workflows;

// The fault and strict proxy lives in its own crate (tools/aws-emulator) so the benchmark can
// run it standalone; the tests name it as before.
use aws_emulator::{proxy, strict};
