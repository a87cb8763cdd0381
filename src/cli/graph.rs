//! `graph`: the dependency graph as Graphviz DOT.

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
    let spec = args.paths.load_spec(registry)?;
    print!("{}", crate::spec::dependency_graph(&spec.resources).to_dot());
    Ok(ExitCode::SUCCESS)
}
