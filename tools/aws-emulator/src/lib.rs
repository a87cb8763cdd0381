//! What AWS does to a client that moto never does, played by an HTTP proxy in front of moto:
//! faults ([`proxy`]: throttling, 5xx, resets, lost answers, a SIGKILL right after AWS did the
//! work) and AWS's strict rules and clocks ([`strict`]: eventual consistency, conflicts,
//! deployments). The integration tests drive it in-process; `aws-emulator` runs it standalone
//! for the benchmark, so that Terraform meets the same AWS as the engine. And the Lambda Runtime
//! API ([`runtime_api`]) a deployed `bootstrap` is run through, for the tests and the demo.

pub mod proxy;
pub mod runtime_api;
pub mod strict;
