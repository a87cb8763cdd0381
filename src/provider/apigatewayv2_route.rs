//! `apigatewayv2_route`: a route key (`POST /avatars/key_upload`) with its target integration
//! and authorizer.
//!
//! The id is `API_ID/ROUTE_ID`. Routes take no tags; a route key is unique within an API
//! (AWS refuses a second one), so an interrupted create is found by its key.

use super::Fields;
use super::apigatewayv2_api::{API_DEPLOYER, api_arns};
use super::facets::{Access, Inventory, Parent};
use super::planned;
use super::{Planned, Sibling, Siblings};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::rules;
use crate::provider::Known;
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::AuthorizationType;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::apigatewayv2_api::write_lock;
use super::attrs::{all_pages, find_in_pages, found, split_id};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Prior, ProviderError};
use crate::value::Attrs;

pub struct ApiGatewayV2Route;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("api_id", AttrType::String, "the API").force_new().identity(),
        Attribute::required("route_key", AttrType::String, "METHOD /path, e.g. POST /avatars/key_upload").identity(),
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

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Route {
    api_id: String,
    route_key: String,
    target: Option<String>,
    authorization_type: Option<String>,
    authorizer_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RouteComputed {
    route_id: String,
}

#[async_trait]
impl Kind for ApiGatewayV2Route {
    const NAME: &'static str = "apigatewayv2_route";
    type Spec = Route;
    type Computed = RouteComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, spec: &mut RoutePlanned) {
        // NONE is what AWS reports for a route without authorization.
        planned::unset_when(&mut spec.authorization_type, &"NONE".to_string());
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Prior<Route, RouteComputed>,
    ) -> Result<Option<(Route, RouteComputed)>, ProviderError> {
        let (api, route) = split_id("GetRoute", id)?;
        let got = aws.apigatewayv2().await.get_route().api_id(api).route_id(route).send().await;
        let Some(r) = found(got.map_err(|e| ProviderError::from_sdk("GetRoute", e)))? else { return Ok(None) };
        let spec = Route {
            api_id: api.to_string(),
            route_key: r.route_key().unwrap_or_default().to_string(),
            target: r.target().map(str::to_string),
            authorization_type: r.authorization_type().map(|t| t.as_str().to_string()),
            authorizer_id: r.authorizer_id().map(str::to_string),
        };
        Ok(Some((spec, RouteComputed { route_id: route.to_string() })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Route,
        _owner: &Owner,
    ) -> Result<Created<RouteComputed, Self::Spec>, ProviderError> {
        let _one_write_at_a_time = aws.exclusive(write_lock(&spec.api_id)).await;
        let out = aws
            .apigatewayv2()
            .await
            .create_route()
            .api_id(&spec.api_id)
            .route_key(&spec.route_key)
            .set_target(spec.target.clone())
            .set_authorization_type(spec.authorization_type.as_deref().map(AuthorizationType::from))
            .set_authorizer_id(spec.authorizer_id.clone())
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateRoute", e))?;
        let id = out.route_id().ok_or_else(|| ProviderError::unexpected("CreateRoute", "no RouteId"))?;
        Ok(Created::new(format!("{}/{id}", spec.api_id), RouteComputed { route_id: id.to_string() }))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Route,
        _changed: &[RouteField],
        _owner: &Owner,
    ) -> Result<Option<RouteComputed>, ProviderError> {
        let (api, route) = split_id("UpdateRoute", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(api)).await;
        aws.apigatewayv2()
            .await
            .update_route()
            .api_id(api)
            .route_id(route)
            .route_key(&spec.route_key)
            .set_target(spec.target.clone())
            .authorization_type(AuthorizationType::from(spec.authorization_type.as_deref().unwrap_or("NONE")))
            .set_authorizer_id(spec.authorizer_id.clone())
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateRoute", e))?;
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Route,
        owner: &Owner,
        reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let client = aws.apigatewayv2().await;
        let page = |next| routes_page(client, &spec.api_id, next);
        let keyed = |r: &aws_sdk_apigatewayv2::types::Route| {
            let id = format!("{}/{}", spec.api_id, r.route_id().unwrap_or_default());
            (r.route_key() == Some(spec.route_key.as_str())).then_some(id)
        };
        Ok(find_in_pages(page, keyed).await?.map(|id| owner.judge_untagged(&id, reason, None)))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Route, RouteComputed>,
    ) -> Result<Deleted, ProviderError> {
        let (api, route) = split_id("DeleteRoute", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(api)).await;
        let deleted = aws.apigatewayv2().await.delete_route().api_id(api).route_id(route).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteRoute", e))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<RoutePlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

#[async_trait]
impl Inventory for ApiGatewayV2Route {
    /// The API, from the id (`API/CHILD`).
    fn parent(&self, id: &str, _recorded: &Attrs) -> Option<Parent> {
        id.split_once('/').map(|(api, _)| Parent(api.to_string()))
    }

    fn refers_to(&self) -> &'static [&'static str] {
        &["apigatewayv2_integration", "apigatewayv2_authorizer"]
    }

    async fn children(&self, aws: &Aws, parent: &Parent) -> Result<Option<Siblings>, ProviderError> {
        let api = parent.0.as_str();
        let client = aws.apigatewayv2().await;
        let page = |next| routes_page(client, api, next);
        let Some(routes) = all_pages(page).await? else { return Ok(None) };
        let children = routes
            .iter()
            .map(|r| {
                Sibling::new(
                    format!("{api}/{}", r.route_id().unwrap_or_default()),
                    format!("route {}", r.route_key().unwrap_or("?")),
                )
            })
            .collect();
        Ok(Some(Siblings { parent: format!("the API {api}"), children }))
    }
}

impl Access<RoutePlanned> for ApiGatewayV2Route {
    fn deployer(&self) -> Deployer {
        API_DEPLOYER
    }

    fn deployer_arns(&self, _spec: &RoutePlanned, scope: &ArnScope) -> Vec<String> {
        api_arns(scope)
    }

    fn policy_findings(&self, spec: &RoutePlanned) -> Vec<(&'static str, String)> {
        // Unset is NONE (an unknown type is not: it may be anything).
        let open = match &spec.authorization_type {
            None => true,
            Some(Known::Known(kind)) => kind == "NONE",
            Some(Known::Unknown) => false,
        };
        if open {
            let key = spec.route_key.text();
            return vec![(rules::ROUTE_AUTHORIZER, format!("`{key}` answers anyone: authorization_type is NONE"))];
        }
        vec![]
    }
}

/// One page of the API's routes after `next` (`None`: the first), with the next token;
/// `None` when the API is gone.
async fn routes_page(
    client: &aws_sdk_apigatewayv2::Client,
    api: &str,
    next: Option<String>,
) -> Result<Option<(Vec<aws_sdk_apigatewayv2::types::Route>, Option<String>)>, ProviderError> {
    let got = client.get_routes().api_id(api).set_next_token(next).send().await;
    let got = found(got.map_err(|e| ProviderError::from_sdk("GetRoutes", e)))?;
    Ok(got.map(|out| (out.items().to_vec(), out.next_token().map(str::to_string))))
}
