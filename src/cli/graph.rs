//! `graph`: the dependency graph as Graphviz DOT.

use super::stdout::out;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::provider::Registry;

/// Print the spec's dependency graph in DOT (pipe it to `dot -Tsvg`).
#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    paths: Paths,
}

pub fn cmd_graph(args: GraphArgs, registry: &Registry) -> Result<ExitCode, CliError> {
    // The graph's edges come from references, not values: unset variables do not matter.
    let spec = crate::spec::Spec::load_allowing_unset(&args.paths.spec, registry, &args.paths.loading()?)?;
    out!("{}", crate::spec::dependency_graph(&spec.resources).to_dot());
    Ok(ExitCode::SUCCESS)
}
