//! The `live` alias of a function and the versions behind it.
//!
//! Every code or configuration apply publishes a version and points `live` at it; what invokes
//! the function (the API's integration and authorizer, the bucket's notification) invokes the
//! alias, whose ARN never changes. So a code change touches nothing but the function, and a
//! rollback is one `UpdateAlias`.
//!
//! Each step here is safe to repeat: `PublishVersion` answers with the newest version when
//! nothing changed since it was published (so a publish whose answer was lost publishes nothing
//! new when retried), pointing the alias where it points already changes nothing, and deleting a
//! version already gone is done. A version is published only with the code the spec built
//! (`CodeSha256` is a precondition of the call), so code someone uploaded meanwhile never goes
//! live under our name.
//!
//! The version's description records which build profile built its code: that survives in AWS
//! with the version, so a rollback to an older version reports that version's profile.

use aws_sdk_lambda::Client;
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, FunctionConfiguration};

use super::{READY_TIMEOUT, waiter_error};
use crate::provider::{ErrorClass, ProviderError};

/// The alias every invoker calls.
pub const ALIAS: &str = "live";

/// How many published versions are kept when the spec does not say.
pub const DEFAULT_KEEP_VERSIONS: i32 = 5;

/// How the description of every version we publish starts.
pub const OURS: &str = "cruddur-infra: ";

/// The description of a version we publish: whose it is and how its code was built.
pub fn description(build_profile: Option<&str>) -> String {
    match build_profile {
        Some(profile) => format!("{OURS}{profile} build"),
        None => format!("{OURS}zip_file"),
    }
}

/// The build profile a version's description records, if we published it from a source.
pub fn build_profile_of(description: Option<&str>) -> Option<String> {
    let rest = description?.strip_prefix(OURS)?;
    rest.strip_suffix(" build").map(str::to_string)
}

/// The configuration of the version `live` points at; `None` when the function or the alias
/// does not exist.
pub async fn configuration(lambda: &Client, name: &str) -> Result<Option<FunctionConfiguration>, ProviderError> {
    let got = lambda.get_function().function_name(name).qualifier(ALIAS).send().await;
    match got.map_err(|e| ProviderError::from_sdk("GetFunction", e)) {
        Ok(out) => Ok(out.configuration),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Publishes `$LATEST` as a version (or finds the newest one, if nothing changed since it was
/// published) and waits until the version can be invoked; its number.
pub async fn publish(
    lambda: &Client,
    name: &str,
    code_sha256: &str,
    build_profile: Option<&str>,
) -> Result<String, ProviderError> {
    let out = lambda
        .publish_version()
        .function_name(name)
        .code_sha256(code_sha256)
        .description(description(build_profile))
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PublishVersion", e))?;
    let version = out.version().ok_or_else(|| ProviderError::unexpected("PublishVersion", "no Version"))?.to_string();
    // Lambda may publish a version Pending while it prepares it: the alias waits for Active.
    let active =
        lambda.wait_until_published_version_active().function_name(name).qualifier(&version).wait(READY_TIMEOUT).await;
    active
        .map_err(|e| waiter_error("VersionNotActive", name, &format!("version {version} did not become Active"), e))?;
    Ok(version)
}

/// Points `live` at `version` (creating the alias the first time), with all traffic on it.
pub async fn point(lambda: &Client, name: &str, version: &str) -> Result<(), ProviderError> {
    let updated = lambda
        .update_alias()
        .function_name(name)
        .name(ALIAS)
        .function_version(version)
        // No weighted routing: a canary left half-way is ended by the next apply.
        .routing_config(AliasRoutingConfiguration::builder().build())
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("UpdateAlias", e));
    match updated {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => {
            match create(lambda, name, version).await {
                Ok(_) => Ok(()),
                // Made meanwhile (a create whose answer was lost): point it again.
                Err(e) if e.code == "ResourceConflictException" => Err(e.with_class(ErrorClass::Transient)),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Makes `live`, pointing at `version`: the first time, right after the create published it.
pub async fn create(lambda: &Client, name: &str, version: &str) -> Result<(), ProviderError> {
    let created = lambda.create_alias().function_name(name).name(ALIAS).function_version(version).send().await;
    created.map(|_| ()).map_err(|e| ProviderError::from_sdk("CreateAlias", e))
}

/// The published versions of a function, oldest first (`$LATEST` left out).
pub async fn versions(lambda: &Client, name: &str) -> Result<Vec<u64>, ProviderError> {
    let mut pages = lambda.list_versions_by_function().function_name(name).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ProviderError::from_sdk("ListVersionsByFunction", e))?;
        out.extend(page.versions().iter().filter_map(|v| v.version()?.parse::<u64>().ok()));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The versions any alias of the function routes traffic to.
async fn aliased(lambda: &Client, name: &str) -> Result<Vec<u64>, ProviderError> {
    let mut pages = lambda.list_aliases().function_name(name).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ProviderError::from_sdk("ListAliases", e))?;
        for alias in page.aliases() {
            out.extend(alias.function_version().and_then(|v| v.parse::<u64>().ok()));
            let weights = alias.routing_config().and_then(|r| r.additional_version_weights());
            out.extend(weights.into_iter().flat_map(|w| w.keys()).filter_map(|v| v.parse::<u64>().ok()));
        }
    }
    Ok(out)
}

/// Which of `versions` (oldest first) go: all but the newest `keep` and those an alias uses.
pub fn to_delete(versions: &[u64], keep: usize, aliased: &[u64]) -> Vec<u64> {
    let old = versions.len().saturating_sub(keep);
    versions[..old].iter().copied().filter(|v| !aliased.contains(v)).collect()
}

/// Deletes published versions beyond the newest `keep`, never one an alias routes to.
pub async fn prune(lambda: &Client, name: &str, keep: usize) -> Result<Vec<u64>, ProviderError> {
    let all = versions(lambda, name).await?;
    if all.len() <= keep {
        return Ok(vec![]);
    }
    let doomed = to_delete(&all, keep, &aliased(lambda, name).await?);
    for v in &doomed {
        let deleted = lambda.delete_function().function_name(name).qualifier(v.to_string()).send().await;
        match deleted.map_err(|e| ProviderError::from_sdk("DeleteFunction", e)) {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            // An alias made meanwhile routes to it: it stays.
            Err(e) if e.code == "ResourceConflictException" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(doomed)
}

/// Where `rollback` moved the alias.
#[derive(Debug, PartialEq)]
pub struct RolledBack {
    pub from: String,
    pub to: String,
}

/// Where a rollback moves `live`: to `to`, or to the newest kept version older than the one it
/// serves. Reads only: the move is [`point`], so that a retried move (its answer lost) goes to
/// the same version instead of one further back.
pub async fn rollback_target(lambda: &Client, name: &str, to: Option<&str>) -> Result<RolledBack, ProviderError> {
    let alias = lambda.get_alias().function_name(name).name(ALIAS).send().await;
    let alias = alias.map_err(|e| ProviderError::from_sdk("GetAlias", e))?;
    let from = alias.function_version().unwrap_or_default().to_string();
    let kept = versions(lambda, name).await?;
    let list = || kept.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let refuse =
        |code: &str, message: String| ProviderError::new("Rollback", code, message).with_class(ErrorClass::Fatal);
    let target = match to {
        Some(to) => {
            let wanted: u64 =
                to.parse().map_err(|_| refuse("InvalidVersion", format!("`{to}` is not a version number")))?;
            if !kept.contains(&wanted) {
                return Err(refuse("VersionNotKept", format!("{name} has no version {to}; kept: {}", list())));
            }
            wanted
        }
        None => {
            let current: u64 = from.parse().unwrap_or(u64::MAX);
            let earlier = kept.iter().copied().filter(|v| *v < current).max();
            earlier.ok_or_else(|| {
                refuse("NoEarlierVersion", format!("{name}: no version older than {from} is kept (kept: {})", list()))
            })?
        }
    };
    Ok(RolledBack { from, to: target.to_string() })
}

/// Refuses a rollback to a version whose role no longer exists: a published version keeps
/// the role it was published with, and Lambda cannot run it without that role (a role replaced
/// since, under another name). A role that cannot be read for another reason (a policy without
/// `iam:GetRole` on an old role's name) does not stop a rollback, which is often urgent.
pub async fn check_role_of(aws: &crate::provider::Aws, name: &str, version: &str) -> Result<(), ProviderError> {
    let lambda = aws.lambda().await;
    let got = lambda.get_function_configuration().function_name(name).qualifier(version).send().await;
    let config = got.map_err(|e| ProviderError::from_sdk("GetFunctionConfiguration", e))?;
    let Some(role) = config.role().and_then(|arn| arn.rsplit('/').next()) else { return Ok(()) };
    match aws.iam().await.get_role().role_name(role).send().await {
        Err(e) => {
            let e = ProviderError::from_sdk("GetRole", e);
            if e.is_not_found() {
                return Err(ProviderError::new(
                    "Rollback",
                    "RoleGone",
                    format!(
                        "version {version} of {name} runs as the role {role}, which no longer exists: Lambda could not \
                         run it. Roll back to a version published since the role changed (`--to VERSION`)"
                    ),
                )
                .with_class(ErrorClass::Fatal));
            }
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_and_whatever_an_alias_routes_to() {
        assert_eq!(to_delete(&[1, 2, 3, 4, 5, 6], 3, &[6]), vec![1, 2, 3]);
        // live was rolled back to 2: it stays though it is old.
        assert_eq!(to_delete(&[1, 2, 3, 4, 5, 6], 3, &[2]), vec![1, 3]);
        assert_eq!(to_delete(&[4, 5], 3, &[5]), Vec::<u64>::new());
        assert_eq!(to_delete(&[], 3, &[]), Vec::<u64>::new());
    }

    #[test]
    fn a_versions_description_tells_its_build_profile() {
        assert_eq!(build_profile_of(Some(&description(Some("dev")))), Some("dev".into()));
        assert_eq!(build_profile_of(Some(&description(Some("release")))), Some("release".into()));
        assert_eq!(build_profile_of(Some(&description(None))), None);
        assert_eq!(build_profile_of(Some("made in the console")), None);
        assert_eq!(build_profile_of(None), None);
    }
}
