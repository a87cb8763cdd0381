//! `apigatewayv2_route`: a route key (`POST /avatars/key_upload`) with its target integration
//! and authorizer.
//!
//! The id is `API_ID/ROUTE_ID`.

use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::AuthorizationType;
use serde_json::{Value, json};

use super::attrs::{build, found, opt_string, split_id, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct ApiGatewayV2Route;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("api_id", AttrType::String, "the API").force_new(),
        Attribute::required("route_key", AttrType::String, "METHOD /path, e.g. POST /avatars/key_upload"),
        Attribute::optional("target", AttrType::String, "integrations/INTEGRATION_ID"),
        Attribute::optional(
            "authorization_type",
            AttrType::Enum(&["NONE", "CUSTOM", "JWT", "AWS_IAM"]),
            "CUSTOM for a Lambda authorizer",
        ),
        Attribute::optional("authorizer_id", AttrType::String, "the authorizer guarding the route"),
        Attribute::computed("route_id", "the route id"),
    ],
};

#[async_trait]
impl ResourceKind for ApiGatewayV2Route {
    fn kind(&self) -> &'static str {
        "apigatewayv2_route"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        // NONE is what AWS reports for a route without authorization.
        if attrs.get("authorization_type") == Some(&json!("NONE")) {
            attrs.insert("authorization_type".into(), Value::Null);
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let (api, route) = split_id("GetRoute", id)?;
        let got = aws.apigatewayv2().await.get_route().api_id(api).route_id(route).send().await;
        let Some(r) = found(got.map_err(|e| ProviderError::from_sdk("GetRoute", e)))? else { return Ok(None) };
        Ok(Some(build([
            ("api_id", json!(api)),
            ("route_key", json!(r.route_key())),
            ("target", r.target().map_or(Value::Null, |t| json!(t))),
            ("authorization_type", r.authorization_type().map_or(Value::Null, |t| json!(t.as_str()))),
            ("authorizer_id", r.authorizer_id().map_or(Value::Null, |a| json!(a))),
            ("route_id", json!(route)),
        ])))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let api = string(desired, "api_id");
        let out = aws
            .apigatewayv2()
            .await
            .create_route()
            .api_id(api)
            .route_key(string(desired, "route_key"))
            .set_target(opt_string(desired, "target").map(str::to_string))
            .set_authorization_type(opt_string(desired, "authorization_type").map(AuthorizationType::from))
            .set_authorizer_id(opt_string(desired, "authorizer_id").map(str::to_string))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateRoute", e))?;
        let id = out.route_id().ok_or_else(|| ProviderError::unexpected("CreateRoute", "no RouteId"))?;
        Ok(Created { id: format!("{api}/{id}"), attrs: build([("route_id", json!(id))]) })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        let (api, route) = split_id("UpdateRoute", id)?;
        aws.apigatewayv2()
            .await
            .update_route()
            .api_id(api)
            .route_id(route)
            .route_key(string(desired, "route_key"))
            .set_target(opt_string(desired, "target").map(str::to_string))
            .authorization_type(AuthorizationType::from(opt_string(desired, "authorization_type").unwrap_or("NONE")))
            .set_authorizer_id(opt_string(desired, "authorizer_id").map(str::to_string))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateRoute", e))?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let (api, route) = split_id("DeleteRoute", id)?;
        let client = aws.apigatewayv2().await;
        client
            .delete_route()
            .api_id(api)
            .route_id(route)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteRoute", e))?;
        Ok(())
    }
}
