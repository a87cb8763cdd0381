//! `build`: build and package every artifact the spec deploys, without touching AWS.

use super::stdout::outln;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::build::Builds;
use crate::plan::evaluate;
use crate::provider::Registry;
use crate::value::{contains_unknown, unknown};

/// Build and package what the spec deploys (Lambda crates), showing progress, and print each
/// artifact's hash. Nothing in AWS changes.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    paths: Paths,
}

pub async fn cmd_build(args: BuildArgs, registry: &Registry, builds: &Builds) -> Result<ExitCode, CliError> {
    // Building needs only the variables the sources use: a Cognito client id or a domain may be
    // unset, and is named only if an artifact depends on it.
    let spec = crate::spec::Spec::load_allowing_unset(&args.paths.spec, registry, &args.paths.loading()?)?;
    let mut built = 0;
    for res in &spec.resources {
        let Some(kind) = registry.get(&res.addr.kind) else { continue };
        let Some(artifact) = kind.artifact() else { continue };
        let derived: Vec<&str> = kind.schema().attributes.iter().filter(|a| a.derived).map(|a| a.name).collect();
        if derived.is_empty() {
            continue;
        }
        // References to other resources are unknown here; artifacts do not depend on them.
        let mut desired = evaluate(res, &|_, _| unknown());
        if let Some(attr) = artifact.inputs().iter().find(|a| desired.get(**a).is_some_and(contains_unknown)) {
            let unset: Vec<&str> = spec
                .variables
                .iter()
                .filter(|v| v.origin == crate::spec::variables::Origin::Unset)
                .map(|v| v.name.as_str())
                .collect();
            return Err(CliError::Unbuildable(format!(
                "{}: `{attr}` is not known before apply (it uses a resource attribute or one of the variables \
                 without a value: {}); set it to build",
                res.addr,
                unset.join(", ")
            )));
        }
        kind.normalize(&mut desired);
        artifact
            .prepare(&builds.in_dir(&res.dir), &mut desired)
            .await
            .map_err(|error| crate::plan::PlanError::Prepare { addr: res.addr.clone(), error: Box::new(error) })?;
        let mut made = false;
        for name in derived {
            if let Some(value) = desired.get(name).and_then(|v| v.as_str()) {
                outln!("{}: {name} = {value}", res.addr);
                made = true;
            }
        }
        built += usize::from(made);
    }
    outln!("Built {built} artifact(s).");
    Ok(ExitCode::SUCCESS)
}
