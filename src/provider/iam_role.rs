//! `iam_role`: a role with its trust policy, inline policies and managed policy attachments.
//!
//! The id is the role name; renaming replaces the role. IAM returns policy documents
//! URL-encoded: they are decoded and compared as normalised JSON. Inline policies and
//! attachments are reconciled exactly: what the spec does not list is removed.
//!
//! `CreateRole` carries the ownership tags, so a role of ours always has them. Inline policies
//! and attachments are separate calls, applied right after the create as an update. Deleting
//! removes every policy first (IAM refuses otherwise); a step that finds its policy already
//! gone goes on, so an interrupted delete finishes when run again.

use super::Fields;
use super::facets::{Access, Inventory};
use super::planned;
use crate::addr::ResourceAddr;
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::{self, Grant, PolicyKind};
use crate::provider::{Known, KnownValue};
use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::typed::cannot_update;
use super::{
    Aws, Created, Deleted, ErrorClass, FindReason, Found, Held, Kind, Managed, Owner, Planned, Prior, ProviderError,
};
use crate::value::Attrs;

pub struct IamRole;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the role name")
            .force_new()
            .identity()
            .named(super::names::NameRule::Role),
        Attribute::required("assume_role_policy", AttrType::Policy, "who may assume the role (the trust policy)"),
        Attribute::optional(
            "inline_policies",
            AttrType::Map(&AttrType::Policy),
            "policies embedded in the role, by name",
        ),
        Attribute::optional(
            "managed_policy_arns",
            AttrType::List(&AttrType::String),
            "managed policies attached to the role",
        ),
        Attribute::optional("description", AttrType::String, "what the role is for"),
        Attribute::computed("arn", "the role ARN"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Role {
    name: String,
    assume_role_policy: Value,
    inline_policies: Option<BTreeMap<String, Value>>,
    managed_policy_arns: Option<Vec<String>>,
    description: Option<String>,
}

impl Role {
    /// The role as AWS describes it (GetRole and CreateRole answer alike), with its policies.
    fn of(
        role: &aws_sdk_iam::types::Role,
        inline_policies: Option<BTreeMap<String, Value>>,
        managed_policy_arns: Option<Vec<String>>,
    ) -> Self {
        Role {
            name: role.role_name().to_string(),
            assume_role_policy: role.assume_role_policy_document().map_or(Value::Null, decode),
            inline_policies,
            managed_policy_arns,
            description: role.description().map(str::to_string),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RoleComputed {
    arn: String,
}

#[async_trait]
impl Kind for IamRole {
    const NAME: &'static str = "iam_role";
    type Spec = Role;
    type Computed = RoleComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, spec: &mut RolePlanned) {
        if let Some(arns) = spec.managed_policy_arns.known_mut() {
            planned::sort_by_text(arns);
            arns.dedup();
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Prior<Role, RoleComputed>,
    ) -> Result<Option<(Role, RoleComputed)>, ProviderError> {
        let iam = aws.iam().await;
        // Each call is retried on its own: a throttled third call does not ask the first two again.
        let Some(role) = aws.retried(|| get_role(iam, id)).await? else { return Ok(None) };
        let inline_policies =
            if managed.has("inline_policies") { Some(inline_policies(aws, iam, id).await?) } else { None };
        let managed_policy_arns =
            if managed.has("managed_policy_arns") { Some(aws.retried(|| attached(iam, id)).await?) } else { None };
        let spec = Role::of(&role, inline_policies, managed_policy_arns);
        Ok(Some((spec, RoleComputed { arn: role.arn().to_string() })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Role,
        owner: &Owner,
    ) -> Result<Created<RoleComputed, Self::Spec>, ProviderError> {
        let tags = owner
            .tags()
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProviderError::new("CreateRole", "InvalidTag", e.to_string()))?;
        let out = aws
            .iam()
            .await
            .create_role()
            .role_name(&spec.name)
            .assume_role_policy_document(spec.assume_role_policy.to_string())
            .set_description(spec.description.clone())
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateRole", e))?;
        let role = out.role().ok_or_else(|| ProviderError::unexpected("CreateRole", "no Role"))?;
        // The policies are the spec's once the update right after has written them.
        let observed = Role::of(role, spec.inline_policies.clone(), spec.managed_policy_arns.clone());
        Ok(Created::new(spec.name.clone(), RoleComputed { arn: role.arn().to_string() })
            .deferring(&["inline_policies", "managed_policy_arns"], &[])
            .observed(observed))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Role,
        changed: &[RoleField],
        _owner: &Owner,
    ) -> Result<Option<RoleComputed>, ProviderError> {
        let iam = aws.iam().await;
        for &attr in changed {
            match attr {
                RoleField::AssumeRolePolicy => {
                    iam.update_assume_role_policy()
                        .role_name(id)
                        .policy_document(spec.assume_role_policy.to_string())
                        .send()
                        .await
                        .map_err(|e| ProviderError::from_sdk("UpdateAssumeRolePolicy", e))?;
                }
                RoleField::Description => {
                    iam.update_role()
                        .role_name(id)
                        .description(spec.description.as_deref().unwrap_or_default())
                        .send()
                        .await
                        .map_err(|e| ProviderError::from_sdk("UpdateRole", e))?;
                }
                RoleField::InlinePolicies => sync_inline(iam, id, spec.inline_policies.as_ref()).await?,
                RoleField::ManagedPolicyArns => sync_attached(iam, id, spec.managed_policy_arns.as_deref()).await?,
                RoleField::Name => return Err(cannot_update(Self::NAME, attr.name())),
            }
        }
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Role,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let Some(role) = get_role(aws.iam().await, &spec.name).await? else { return Ok(None) };
        Ok(Some(owner.judge_tagged_at_create(&spec.name, role.tags().iter().map(|t| (t.key(), t.value())))))
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Prior<Role, RoleComputed>) -> Result<Deleted, ProviderError> {
        let iam = aws.iam().await;
        // IAM refuses to delete a role that still has policies (DeleteConflict).
        sync_inline(iam, id, None).await?;
        sync_attached(iam, id, None).await?;
        iam.delete_role().role_name(id).send().await.map_err(|e| {
            let e = ProviderError::from_sdk("DeleteRole", e);
            // Policies just removed may still count for a moment.
            if e.code == "DeleteConflict" { e.with_class(ErrorClass::Conflict) } else { e }
        })?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<RolePlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

#[async_trait]
impl Inventory for IamRole {
    /// Inline and attached policies, when the spec leaves them unmanaged (managed ones are
    /// compared as attributes).
    async fn held(&self, aws: &Aws, id: &str, recorded: &Attrs) -> Result<Vec<Held>, ProviderError> {
        let iam = aws.iam().await;
        let mut out = Vec::new();
        let gone = |e: ProviderError| if e.is_not_found() { Ok(vec![]) } else { Err(e) };
        if !recorded.contains_key("inline_policies") {
            let names = inline_names(iam, id).await.or_else(gone)?;
            out.extend(names.into_iter().map(|n| Held::removable(format!("inline:{n}"), format!("inline policy {n}"))));
        }
        if !recorded.contains_key("managed_policy_arns") {
            let arns = attached(iam, id).await.or_else(gone)?;
            out.extend(
                arns.into_iter().map(|a| Held::removable(format!("attached:{a}"), format!("attached policy {a}"))),
            );
        }
        Ok(out)
    }

    /// Deletes an inline policy, or detaches a managed one.
    async fn remove_held(&self, aws: &Aws, id: &str, key: &str) -> Result<(), ProviderError> {
        let iam = aws.iam().await;
        let done = match key.split_once(':') {
            Some(("inline", name)) => iam
                .delete_role_policy()
                .role_name(id)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ProviderError::from_sdk("DeleteRolePolicy", e)),
            Some(("attached", arn)) => iam
                .detach_role_policy()
                .role_name(id)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ProviderError::from_sdk("DetachRolePolicy", e)),
            _ => {
                return Err(ProviderError::unexpected(
                    "RemoveUnmanaged",
                    format!("`{key}` names nothing a role holds"),
                ));
            }
        };
        done.or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
    }
}

impl Access<RolePlanned> for IamRole {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies"],
            write: &[
                "iam:CreateRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:AttachRolePolicy",
                "iam:DetachRolePolicy",
            ],
            delete: &["iam:DeleteRole", "iam:DeleteRolePolicy", "iam:DetachRolePolicy"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &RolePlanned, scope: &ArnScope) -> Vec<String> {
        vec![scope.arn("iam", "", &scope.account, &format!("role/{}", ArnScope::part(Some(spec.name.text()))))]
    }

    fn grants(&self, addr: &ResourceAddr, spec: &RolePlanned) -> Vec<Grant> {
        let role = addr.to_string();
        let mut out = Vec::new();
        if let Some(trust) = spec.assume_role_policy.known() {
            out.extend(permissions::from_document(trust, PolicyKind::Trust, None, Some(&role)));
        }
        for doc in spec.inline_policies.known().into_iter().flat_map(|m| m.values()).filter_map(Known::known) {
            out.extend(permissions::from_document(doc, PolicyKind::Identity, Some(&role), None));
        }
        let managed = spec.managed_policy_arns.known().into_iter().flatten();
        out.extend(managed.map(Known::text).map(|arn| Grant {
            policy: PolicyKind::Identity,
            deny: false,
            principal: role.clone(),
            action: "(every action of the managed policy)".into(),
            resource: arn.to_string(),
            conditions: vec![],
        }));
        out
    }
}

async fn get_role(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<aws_sdk_iam::types::Role>, ProviderError> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e) => {
            let e = ProviderError::from_sdk("GetRole", e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

/// IAM documents come URL-encoded; an undecodable one is kept as text so it shows in a diff.
fn decode(doc: &str) -> Value {
    let text = percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
}

async fn inline_names(iam: &aws_sdk_iam::Client, role: &str) -> Result<Vec<String>, ProviderError> {
    let out = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListRolePolicies", e))?;
    Ok(out.policy_names().to_vec())
}

async fn inline_policies(
    aws: &Aws,
    iam: &aws_sdk_iam::Client,
    role: &str,
) -> Result<BTreeMap<String, Value>, ProviderError> {
    let mut out = BTreeMap::new();
    for name in aws.retried(|| inline_names(iam, role)).await? {
        let get = || async {
            let got = iam.get_role_policy().role_name(role).policy_name(&name).send().await;
            got.map_err(|e| ProviderError::from_sdk("GetRolePolicy", e))
        };
        match aws.retried(get).await {
            Ok(doc) => {
                out.insert(name, decode(doc.policy_document()));
            }
            // Deleted between the list and the get: not there.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

async fn attached(iam: &aws_sdk_iam::Client, role: &str) -> Result<Vec<String>, ProviderError> {
    let out = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListAttachedRolePolicies", e))?;
    Ok(out.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect())
}

/// `Ok` for "already gone": a step of a reconciliation whose work is done.
fn gone_is_done(result: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// Makes the role's inline policies exactly `desired` (none when `None`).
async fn sync_inline(
    iam: &aws_sdk_iam::Client,
    role: &str,
    desired: Option<&BTreeMap<String, Value>>,
) -> Result<(), ProviderError> {
    let empty = BTreeMap::new();
    let desired = desired.unwrap_or(&empty);
    for name in inline_names(iam, role).await?.into_iter().filter(|n| !desired.contains_key(n)) {
        let deleted = iam.delete_role_policy().role_name(role).policy_name(&name).send().await;
        gone_is_done(deleted.map(|_| ()).map_err(|e| ProviderError::from_sdk("DeleteRolePolicy", e)))?;
    }
    for (name, doc) in desired {
        iam.put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(doc.to_string())
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("PutRolePolicy", e))?;
    }
    Ok(())
}

/// Makes the role's managed attachments exactly `desired` (none when `None`).
async fn sync_attached(iam: &aws_sdk_iam::Client, role: &str, desired: Option<&[String]>) -> Result<(), ProviderError> {
    let desired: BTreeSet<&str> = desired.unwrap_or_default().iter().map(String::as_str).collect();
    let current: BTreeSet<String> = attached(iam, role).await?.into_iter().collect();
    for arn in current.iter().filter(|a| !desired.contains(a.as_str())) {
        let detached = iam.detach_role_policy().role_name(role).policy_arn(arn).send().await;
        gone_is_done(detached.map(|_| ()).map_err(|e| ProviderError::from_sdk("DetachRolePolicy", e)))?;
    }
    for arn in desired.iter().filter(|a| !current.contains(**a)) {
        iam.attach_role_policy()
            .role_name(role)
            .policy_arn(*arn)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("AttachRolePolicy", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_encoded_trust_policy_decodes_to_json() {
        // IAM's %7B...%7D form is read back as the document itself.
        let v = decode("%7B%22Version%22%3A%222012-10-17%22%7D");
        assert_eq!(v, json!({"Version": "2012-10-17"}));
    }
}
