//! `graph`: the dependency graph as Graphviz DOT.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::graph::DependencyGraph;
use crate::provider::Registry;

/// Print the spec's dependency graph in DOT (pipe it to `dot -Tsvg`).
#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    paths: Paths,
}

pub fn cmd_graph(args: GraphArgs, registry: &Registry) -> Result<ExitCode, CliError> {
    let spec = args.paths.load_spec(registry)?;
    print!("{}", DependencyGraph::from_spec(&spec.resources).to_dot());
    Ok(ExitCode::SUCCESS)
}
