//! `import`: adopt an existing AWS resource into the state under an address of the spec.

use super::stdout::outln;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Paths};
use crate::addr::ResourceAddr;
use crate::provider::{Aws, Registry};

/// Adopt the existing resource with AWS id ID as ADDR (which the spec must declare). Nothing
/// in AWS changes; run `plan` afterwards to see how it differs from the spec.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The address in the spec, e.g. s3_bucket.assets.
    addr: ResourceAddr,
    /// AWS's id of the existing resource (a bucket name, a function name, an ARN...).
    id: String,
    #[command(flatten)]
    paths: Paths,
}

pub async fn cmd_import(args: ImportArgs, registry: &Registry, aws: &Aws) -> Result<ExitCode, CliError> {
    let mut spec = args.paths.load_spec_without_sources(registry)?;
    let Some(res) = spec.resources.iter_mut().find(|r| r.addr == args.addr) else {
        return Err(CliError::NotFound(format!(
            "{} is not declared in {}: add it to the spec first",
            args.addr,
            args.paths.spec.display()
        )));
    };
    res.import_id = Some(args.id.clone());
    let store = args.paths.backend(aws)?;
    let store = store.as_ref();
    super::with_lock(store, "import", async || {
        let mut state = store.load().await?;
        // A pending intent is no resource: importing what is in its way resolves it.
        match state.resources.get(&args.addr).filter(|r| r.pending().is_none()) {
            // The same import again (a run killed after it saved, say): done already.
            Some(r) if r.id == args.id => {
                outln!("{} is already in the state as `{}`: nothing to import.", args.addr, args.id);
                return Ok(ExitCode::SUCCESS);
            }
            Some(r) => {
                return Err(CliError::NotFound(format!(
                    "{} is already in the state as `{}`: `state rm` it first to import another",
                    args.addr, r.id
                )));
            }
            None => {}
        }
        let adopted = crate::plan::adopt(registry, aws, &spec, &args.addr, &args.id).await?;
        state.resources.insert(args.addr.clone(), adopted);
        state.serial += 1;
        store.save(&state).await?;
        outln!("{} imported from `{}`. Run `cruddur-infra plan` to compare it with the spec.", args.addr, args.id);
        Ok(ExitCode::SUCCESS)
    })
    .await
}
