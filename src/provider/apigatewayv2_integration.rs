//! `apigatewayv2_integration`: how an HTTP API reaches its backend (a Lambda proxy here).
//!
//! The id is `API_ID/INTEGRATION_ID`.

use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::IntegrationType;
use serde_json::{Value, json};

use super::attrs::{build, found, opt_string, split_id, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

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

#[async_trait]
impl ResourceKind for ApiGatewayV2Integration {
    fn kind(&self) -> &'static str {
        "apigatewayv2_integration"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let (api, integration) = split_id("GetIntegration", id)?;
        let got = aws.apigatewayv2().await.get_integration().api_id(api).integration_id(integration).send().await;
        let Some(i) = found(got.map_err(|e| ProviderError::from_sdk("GetIntegration", e)))? else { return Ok(None) };
        let method = if managed.has("integration_method") {
            i.integration_method().map_or(Value::Null, |m| json!(m))
        } else {
            Value::Null
        };
        Ok(Some(build([
            ("api_id", json!(api)),
            ("integration_type", i.integration_type().map_or(Value::Null, |t| json!(t.as_str()))),
            ("integration_uri", i.integration_uri().map_or(Value::Null, |u| json!(u))),
            ("integration_method", method),
            ("payload_format_version", i.payload_format_version().map_or(Value::Null, |v| json!(v))),
            ("integration_id", json!(integration)),
        ])))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let api = string(desired, "api_id");
        let out = aws
            .apigatewayv2()
            .await
            .create_integration()
            .api_id(api)
            .integration_type(IntegrationType::from(string(desired, "integration_type")))
            .integration_uri(string(desired, "integration_uri"))
            .set_integration_method(opt_string(desired, "integration_method").map(str::to_string))
            .set_payload_format_version(opt_string(desired, "payload_format_version").map(str::to_string))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateIntegration", e))?;
        let id =
            out.integration_id().ok_or_else(|| ProviderError::unexpected("CreateIntegration", "no IntegrationId"))?;
        Ok(Created { id: format!("{api}/{id}"), attrs: build([("integration_id", json!(id))]) })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        let (api, integration) = split_id("UpdateIntegration", id)?;
        aws.apigatewayv2()
            .await
            .update_integration()
            .api_id(api)
            .integration_id(integration)
            .integration_uri(string(desired, "integration_uri"))
            .set_integration_method(opt_string(desired, "integration_method").map(str::to_string))
            .set_payload_format_version(opt_string(desired, "payload_format_version").map(str::to_string))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateIntegration", e))?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let (api, integration) = split_id("DeleteIntegration", id)?;
        let client = aws.apigatewayv2().await;
        let deleted = client.delete_integration().api_id(api).integration_id(integration).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteIntegration", e))?;
        Ok(())
    }
}
