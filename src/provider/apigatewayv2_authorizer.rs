//! `apigatewayv2_authorizer`: a Lambda REQUEST authorizer of an HTTP API.
//!
//! The id is `API_ID/AUTHORIZER_ID`, read with GetAuthorizer (one by id; moto's list call
//! fails, and one read per resource is all a refresh needs anyway).

use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::AuthorizerType;
use serde_json::{Value, json};

use super::attrs::{boolean, build, found, int, opt_string, split_id, string, strings};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct ApiGatewayV2Authorizer;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("api_id", AttrType::String, "the API").force_new(),
        Attribute::required("name", AttrType::String, "the authorizer's name"),
        Attribute::required("authorizer_type", AttrType::Enum(&["REQUEST", "JWT"]), "REQUEST for a Lambda authorizer")
            .force_new(),
        Attribute::optional("authorizer_uri", AttrType::String, "the Lambda's invoke ARN"),
        Attribute::optional(
            "identity_sources",
            AttrType::List(&AttrType::String),
            "e.g. $request.header.Authorization",
        ),
        Attribute::optional(
            "payload_format_version",
            AttrType::Enum(&["1.0", "2.0"]),
            "the event format sent to the Lambda",
        ),
        Attribute::optional("enable_simple_responses", AttrType::Bool, "the Lambda answers {isAuthorized: bool}"),
        Attribute::optional("result_ttl_seconds", AttrType::Int, "how long a decision is cached"),
        Attribute::computed("authorizer_id", "the authorizer id, for routes"),
    ],
};

#[async_trait]
impl ResourceKind for ApiGatewayV2Authorizer {
    fn kind(&self) -> &'static str {
        "apigatewayv2_authorizer"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let (api, authorizer) = split_id("GetAuthorizer", id)?;
        let got = aws.apigatewayv2().await.get_authorizer().api_id(api).authorizer_id(authorizer).send().await;
        let Some(a) = found(got.map_err(|e| ProviderError::from_sdk("GetAuthorizer", e)))? else { return Ok(None) };
        Ok(Some(build([
            ("api_id", json!(api)),
            ("name", json!(a.name())),
            ("authorizer_type", a.authorizer_type().map_or(Value::Null, |t| json!(t.as_str()))),
            ("authorizer_uri", a.authorizer_uri().map_or(Value::Null, |u| json!(u))),
            ("identity_sources", json!(a.identity_source())),
            ("payload_format_version", a.authorizer_payload_format_version().map_or(Value::Null, |v| json!(v))),
            ("enable_simple_responses", a.enable_simple_responses().map_or(Value::Null, |b| json!(b))),
            ("result_ttl_seconds", a.authorizer_result_ttl_in_seconds().map_or(Value::Null, |t| json!(t))),
            ("authorizer_id", json!(authorizer)),
        ])))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let api = string(desired, "api_id");
        let out = aws
            .apigatewayv2()
            .await
            .create_authorizer()
            .api_id(api)
            .name(string(desired, "name"))
            .authorizer_type(AuthorizerType::from(string(desired, "authorizer_type")))
            .set_authorizer_uri(opt_string(desired, "authorizer_uri").map(str::to_string))
            .set_identity_source(Some(strings(desired.get("identity_sources"))))
            .set_authorizer_payload_format_version(opt_string(desired, "payload_format_version").map(str::to_string))
            .set_enable_simple_responses(boolean(desired, "enable_simple_responses"))
            .set_authorizer_result_ttl_in_seconds(int(desired, "result_ttl_seconds").map(|n| n as i32))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateAuthorizer", e))?;
        let id = out.authorizer_id().ok_or_else(|| ProviderError::unexpected("CreateAuthorizer", "no AuthorizerId"))?;
        Ok(Created { id: format!("{api}/{id}"), attrs: build([("authorizer_id", json!(id))]) })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        let (api, authorizer) = split_id("UpdateAuthorizer", id)?;
        aws.apigatewayv2()
            .await
            .update_authorizer()
            .api_id(api)
            .authorizer_id(authorizer)
            .name(string(desired, "name"))
            .set_authorizer_uri(opt_string(desired, "authorizer_uri").map(str::to_string))
            .set_identity_source(Some(strings(desired.get("identity_sources"))))
            .set_authorizer_payload_format_version(opt_string(desired, "payload_format_version").map(str::to_string))
            .set_enable_simple_responses(boolean(desired, "enable_simple_responses"))
            .set_authorizer_result_ttl_in_seconds(int(desired, "result_ttl_seconds").map(|n| n as i32))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateAuthorizer", e))?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let (api, authorizer) = split_id("DeleteAuthorizer", id)?;
        let client = aws.apigatewayv2().await;
        client
            .delete_authorizer()
            .api_id(api)
            .authorizer_id(authorizer)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteAuthorizer", e))?;
        Ok(())
    }
}
