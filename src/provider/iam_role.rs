//! `iam_role`: a role with its trust policy, inline policies and managed policy attachments.
//!
//! The id is the role name; renaming replaces the role. IAM returns policy documents
//! URL-encoded: they are decoded and compared as normalised JSON. Inline policies and
//! attachments are reconciled exactly: what the spec does not list is removed.

use std::collections::BTreeSet;

use async_trait::async_trait;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::attrs::{build, found, string, strings};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct IamRole;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the role name").force_new(),
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

#[async_trait]
impl ResourceKind for IamRole {
    fn kind(&self) -> &'static str {
        "iam_role"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        super::normalize::by_schema(&SCHEMA, attrs);
        if let Some(Value::Array(arns)) = attrs.get_mut("managed_policy_arns") {
            arns.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            arns.dedup();
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let iam = aws.iam().await;
        let got = iam.get_role().role_name(id).send().await.map_err(|e| ProviderError::from_sdk("GetRole", e));
        let Some(role) = found(got)?.and_then(|o| o.role) else { return Ok(None) };
        let mut attrs = build([
            ("name", json!(role.role_name())),
            ("arn", json!(role.arn())),
            ("assume_role_policy", role.assume_role_policy_document().map_or(Value::Null, decode)),
            ("description", role.description().map_or(Value::Null, |d| json!(d))),
        ]);
        if managed.has("inline_policies") {
            attrs.insert("inline_policies".into(), Value::Object(inline_policies(iam, id).await?));
        }
        if managed.has("managed_policy_arns") {
            attrs.insert("managed_policy_arns".into(), json!(attached(iam, id).await?));
        }
        Ok(Some(attrs))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let iam = aws.iam().await;
        let name = string(desired, "name");
        let out = iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(desired.get("assume_role_policy").map(Value::to_string).unwrap_or_default())
            .set_description(desired.get("description").and_then(Value::as_str).map(str::to_string))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateRole", e))?;
        let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
        sync_inline(iam, name, desired.get("inline_policies")).await?;
        sync_attached(iam, name, desired.get("managed_policy_arns")).await?;
        Ok(Created { id: name.to_string(), attrs: build([("arn", json!(arn))]) })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, changed: &[&str]) -> Result<Attrs, ProviderError> {
        let iam = aws.iam().await;
        for &attr in changed {
            match attr {
                "assume_role_policy" => {
                    let doc = desired.get("assume_role_policy").map(Value::to_string).unwrap_or_default();
                    iam.update_assume_role_policy()
                        .role_name(id)
                        .policy_document(doc)
                        .send()
                        .await
                        .map_err(|e| ProviderError::from_sdk("UpdateAssumeRolePolicy", e))?;
                }
                "description" => {
                    iam.update_role()
                        .role_name(id)
                        .description(string(desired, "description"))
                        .send()
                        .await
                        .map_err(|e| ProviderError::from_sdk("UpdateRole", e))?;
                }
                "inline_policies" => sync_inline(iam, id, desired.get("inline_policies")).await?,
                "managed_policy_arns" => sync_attached(iam, id, desired.get("managed_policy_arns")).await?,
                _ => {}
            }
        }
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let iam = aws.iam().await;
        // IAM refuses to delete a role that still has policies (DeleteConflict).
        sync_inline(iam, id, None).await?;
        sync_attached(iam, id, None).await?;
        iam.delete_role().role_name(id).send().await.map_err(|e| ProviderError::from_sdk("DeleteRole", e))?;
        Ok(())
    }
}

/// IAM documents come URL-encoded; an undecodable one is kept as text so it shows in a diff.
fn decode(doc: &str) -> Value {
    let text = percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
}

async fn inline_policies(iam: &aws_sdk_iam::Client, role: &str) -> Result<Attrs, ProviderError> {
    let names = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListRolePolicies", e))?;
    let mut out = Attrs::new();
    for name in names.policy_names() {
        let doc = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("GetRolePolicy", e))?;
        out.insert(name.clone(), decode(doc.policy_document()));
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

/// Makes the role's inline policies exactly `desired` (none when `None`).
async fn sync_inline(iam: &aws_sdk_iam::Client, role: &str, desired: Option<&Value>) -> Result<(), ProviderError> {
    let desired = desired.and_then(Value::as_object).cloned().unwrap_or_default();
    let current = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListRolePolicies", e))?;
    for name in current.policy_names().iter().filter(|n| !desired.contains_key(n.as_str())) {
        iam.delete_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteRolePolicy", e))?;
    }
    for (name, doc) in &desired {
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
async fn sync_attached(iam: &aws_sdk_iam::Client, role: &str, desired: Option<&Value>) -> Result<(), ProviderError> {
    let desired: BTreeSet<String> = strings(desired).into_iter().collect();
    let current: BTreeSet<String> = attached(iam, role).await?.into_iter().collect();
    for arn in current.difference(&desired) {
        iam.detach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DetachRolePolicy", e))?;
    }
    for arn in desired.difference(&current) {
        iam.attach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("AttachRolePolicy", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_trust_policy_decodes_to_json() {
        // IAM's %7B...%7D form is read back as the document itself.
        let v = decode("%7B%22Version%22%3A%222012-10-17%22%7D");
        assert_eq!(v, json!({"Version": "2012-10-17"}));
    }
}
