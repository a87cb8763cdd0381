//! `apigatewayv2_integration`: how an HTTP API reaches its backend (a Lambda proxy here).
//!
//! The id is `API_ID/INTEGRATION_ID`. Integrations take no tags and nothing about them is
//! unique, so the engine writes its ownership marker (the address and the state's lineage) in
//! the integration's description; an interrupted create is found by it.

use super::Fields;
use super::apigatewayv2_api::{API_DEPLOYER, api_arns};
use super::facets::{Access, Inventory, Parent};
use super::{Lifecycle, SecondCreate};
use super::{Planned, Sibling, Siblings};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::provider::DeclaredAs;
use crate::value::Attrs;
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::IntegrationType;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::apigatewayv2_api::write_lock;
use super::attrs::{all_pages, find_in_pages, found, split_id};
use super::lambda_permission::invoke_permission_findings;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Prior, ProviderError};
use super::{Declared, Finding};

pub struct ApiGatewayV2Integration;

const TYPES: &[&str] = &["AWS_PROXY", "HTTP_PROXY", "MOCK", "AWS", "HTTP"];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("api_id", AttrType::String, "the API").force_new(),
        Attribute::required("integration_type", AttrType::Enum(TYPES), "AWS_PROXY for a Lambda").force_new(),
        Attribute::required("integration_uri", AttrType::String, "the Lambda's ARN or invoke ARN"),
        Attribute::optional("integration_method", AttrType::String, "the method used to call the backend"),
        Attribute::optional(
            "payload_format_version",
            AttrType::Enum(&["1.0", "2.0"]),
            "the event format sent to the Lambda",
        ),
        Attribute::computed("integration_id", "the integration id, for routes"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    api_id: String,
    integration_type: String,
    integration_uri: String,
    integration_method: Option<String>,
    payload_format_version: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IntegrationComputed {
    integration_id: String,
}

/// The description that marks an integration as made by this engine for `owner`, by this very
/// create: during a create-first replacement the old integration carries the same address and
/// lineage, and a lost answer must find the new one, never adopt the one being replaced.
fn ownership_marker(owner: &Owner) -> String {
    format!("managed by cruddur-infra as {} (state {}, create {})", owner.addr, owner.lineage, owner.token)
}

#[async_trait]
impl Kind for ApiGatewayV2Integration {
    const NAME: &'static str = "apigatewayv2_integration";
    type Spec = Integration;
    // A route refers to it: API Gateway refuses to delete it until the route moved on.
    /// Integrations have no key: a second CreateIntegration makes a second integration.
    const LIFECYCLE: Lifecycle =
        Lifecycle { create_before_destroy: true, second_create: SecondCreate::MakesAnother, ..Lifecycle::DEFAULT };
    type Computed = IntegrationComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn validate(&self, this: &DeclaredAs<'_, IntegrationPlanned>, all: &[Declared]) -> Vec<Finding> {
        invoke_permission_findings(this.declared, all, "integration_uri", "apigateway.amazonaws.com")
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Prior<Integration, IntegrationComputed>,
    ) -> Result<Option<(Integration, IntegrationComputed)>, ProviderError> {
        let (api, integration) = split_id("GetIntegration", id)?;
        let got = aws.apigatewayv2().await.get_integration().api_id(api).integration_id(integration).send().await;
        let Some(i) = found(got.map_err(|e| ProviderError::from_sdk("GetIntegration", e)))? else { return Ok(None) };
        let spec = Integration {
            api_id: api.to_string(),
            integration_type: i.integration_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            integration_uri: i.integration_uri().unwrap_or_default().to_string(),
            // AWS fills in POST for Lambda proxies: only a method the spec manages is compared.
            integration_method: i
                .integration_method()
                .filter(|_| managed.has("integration_method"))
                .map(str::to_string),
            payload_format_version: i.payload_format_version().map(str::to_string),
        };
        Ok(Some((spec, IntegrationComputed { integration_id: integration.to_string() })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Integration,
        owner: &Owner,
    ) -> Result<Created<IntegrationComputed, Self::Spec>, ProviderError> {
        let _one_write_at_a_time = aws.exclusive(write_lock(&spec.api_id)).await;
        let out = aws
            .apigatewayv2()
            .await
            .create_integration()
            .api_id(&spec.api_id)
            .integration_type(IntegrationType::from(spec.integration_type.as_str()))
            .integration_uri(&spec.integration_uri)
            .set_integration_method(spec.integration_method.clone())
            .set_payload_format_version(spec.payload_format_version.clone())
            .description(ownership_marker(owner))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateIntegration", e))?;
        let id =
            out.integration_id().ok_or_else(|| ProviderError::unexpected("CreateIntegration", "no IntegrationId"))?;
        // As sent: AWS's default method is read only where the spec manages it.
        let computed = IntegrationComputed { integration_id: id.to_string() };
        Ok(Created::new(format!("{}/{id}", spec.api_id), computed).observed(spec.clone()))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Integration,
        _changed: &[IntegrationField],
        _owner: &Owner,
    ) -> Result<Option<IntegrationComputed>, ProviderError> {
        let (api, integration) = split_id("UpdateIntegration", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(api)).await;
        aws.apigatewayv2()
            .await
            .update_integration()
            .api_id(api)
            .integration_id(integration)
            .integration_uri(&spec.integration_uri)
            .set_integration_method(spec.integration_method.clone())
            .set_payload_format_version(spec.payload_format_version.clone())
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateIntegration", e))?;
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Integration,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let client = aws.apigatewayv2().await;
        let marker = ownership_marker(owner);
        let page = |next| integrations_page(client, &spec.api_id, next);
        let marked = |i: &aws_sdk_apigatewayv2::types::Integration| {
            let id = format!("{}/{}", spec.api_id, i.integration_id().unwrap_or_default());
            (i.description() == Some(marker.as_str())).then_some(Found::Ours { id })
        };
        find_in_pages(page, marked).await
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Integration, IntegrationComputed>,
    ) -> Result<Deleted, ProviderError> {
        let (api, integration) = split_id("DeleteIntegration", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(api)).await;
        let client = aws.apigatewayv2().await;
        let deleted = client.delete_integration().api_id(api).integration_id(integration).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteIntegration", e))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<IntegrationPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

#[async_trait]
impl Inventory for ApiGatewayV2Integration {
    /// The API, from the id (`API/CHILD`).
    fn parent(&self, id: &str, _recorded: &Attrs) -> Option<Parent> {
        id.split_once('/').map(|(api, _)| Parent(api.to_string()))
    }

    async fn children(&self, aws: &Aws, parent: &Parent) -> Result<Option<Siblings>, ProviderError> {
        let api = parent.0.as_str();
        let client = aws.apigatewayv2().await;
        let page = |next| integrations_page(client, api, next);
        let Some(items) = all_pages(page).await? else { return Ok(None) };
        let children = items
            .iter()
            .map(|i| {
                let what = format!("integration to {}", i.integration_uri().unwrap_or("?"));
                Sibling::new(format!("{api}/{}", i.integration_id().unwrap_or_default()), what)
            })
            .collect();
        Ok(Some(Siblings { parent: format!("the API {api}"), children }))
    }
}

impl Access<IntegrationPlanned> for ApiGatewayV2Integration {
    fn deployer(&self) -> Deployer {
        API_DEPLOYER
    }

    fn deployer_arns(&self, _spec: &IntegrationPlanned, scope: &ArnScope) -> Vec<String> {
        api_arns(scope)
    }
}

/// One page of the API's integrations after `next` (`None`: the first), with the next token;
/// `None` when the API is gone.
async fn integrations_page(
    client: &aws_sdk_apigatewayv2::Client,
    api: &str,
    next: Option<String>,
) -> Result<Option<(Vec<aws_sdk_apigatewayv2::types::Integration>, Option<String>)>, ProviderError> {
    let got = client.get_integrations().api_id(api).set_next_token(next).send().await;
    let got = found(got.map_err(|e| ProviderError::from_sdk("GetIntegrations", e)))?;
    Ok(got.map(|out| (out.items().to_vec(), out.next_token().map(str::to_string))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_is_marked_apart_from_the_integration_it_replaces() {
        // Same address and state, another create: a lost answer finds this create's integration.
        let owner = |token: &str| Owner {
            addr: "apigatewayv2_integration.presigner".parse().expect("an address"),
            lineage: "lineage-1".into(),
            token: token.into(),
            since: 0,
            replacing: vec![],
            stage: None,
        };
        assert_ne!(ownership_marker(&owner("old-create")), ownership_marker(&owner("new-create")));
        assert_eq!(ownership_marker(&owner("t")), ownership_marker(&owner("t")));
    }
}
