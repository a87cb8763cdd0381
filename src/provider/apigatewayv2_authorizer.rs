//! `apigatewayv2_authorizer`: a Lambda REQUEST authorizer of an HTTP API.
//!
//! The id is `API_ID/AUTHORIZER_ID`, read with GetAuthorizer (one by id: a refresh needs no
//! list). Authorizers take no tags; their names are unique within an API, so an interrupted
//! create is found by name among the API's authorizers.

use super::Fields;
use super::Lifecycle;
use super::apigatewayv2_api::{API_DEPLOYER, api_arns};
use super::facets::{Access, Inventory, Parent};
use super::{Planned, Sibling, Siblings};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::provider::DeclaredAs;
use crate::value::Attrs;
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::AuthorizerType;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::apigatewayv2_api::write_lock;
use super::attrs::{all_pages, find_in_pages, found, split_id};
use super::lambda_permission::invoke_permission_findings;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Prior, ProviderError};
use super::{Declared, Finding, int_in_range};

pub struct ApiGatewayV2Authorizer;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("api_id", AttrType::String, "the API").force_new().identity(),
        Attribute::required("name", AttrType::String, "the authorizer's name")
            .identity()
            .named(super::names::NameRule::ApiGateway),
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

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Authorizer {
    api_id: String,
    name: String,
    authorizer_type: String,
    authorizer_uri: Option<String>,
    identity_sources: Option<Vec<String>>,
    payload_format_version: Option<String>,
    enable_simple_responses: Option<bool>,
    result_ttl_seconds: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuthorizerComputed {
    authorizer_id: String,
}

#[async_trait]
impl Kind for ApiGatewayV2Authorizer {
    const NAME: &'static str = "apigatewayv2_authorizer";
    type Spec = Authorizer;
    // A route refers to it: API Gateway refuses to delete it until the route moved on.
    const LIFECYCLE: Lifecycle = Lifecycle { create_before_destroy: true, ..Lifecycle::DEFAULT };
    type Computed = AuthorizerComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn validate(&self, this: &DeclaredAs<'_, AuthorizerPlanned>, all: &[Declared]) -> Vec<Finding> {
        let ttl = &this.spec.result_ttl_seconds;
        let mut out: Vec<Finding> =
            int_in_range(this.addr(), "result_ttl_seconds", ttl, 0..=3600, "seconds").into_iter().collect();
        out.extend(invoke_permission_findings(this.declared, all, "authorizer_uri", "apigateway.amazonaws.com"));
        out
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Prior<Authorizer, AuthorizerComputed>,
    ) -> Result<Option<(Authorizer, AuthorizerComputed)>, ProviderError> {
        let (api, authorizer) = split_id("GetAuthorizer", id)?;
        let got = aws.apigatewayv2().await.get_authorizer().api_id(api).authorizer_id(authorizer).send().await;
        let Some(a) = found(got.map_err(|e| ProviderError::from_sdk("GetAuthorizer", e)))? else { return Ok(None) };
        let spec = Authorizer {
            api_id: api.to_string(),
            name: a.name().unwrap_or_default().to_string(),
            authorizer_type: a.authorizer_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            authorizer_uri: a.authorizer_uri().map(str::to_string),
            identity_sources: Some(a.identity_source().to_vec()),
            payload_format_version: a.authorizer_payload_format_version().map(str::to_string),
            enable_simple_responses: a.enable_simple_responses(),
            result_ttl_seconds: a.authorizer_result_ttl_in_seconds(),
        };
        Ok(Some((spec, AuthorizerComputed { authorizer_id: authorizer.to_string() })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Authorizer,
        owner: &Owner,
    ) -> Result<Created<AuthorizerComputed, Self::Spec>, ProviderError> {
        let _one_write_at_a_time = aws.exclusive(write_lock(&spec.api_id)).await;
        // Names are unique in an API, and the authorizer this one replaces (made first: a route
        // refers to it) still holds the name: it moves aside, to be deleted once the route moved.
        for replaced in &owner.replacing {
            move_aside(aws, replaced, &spec.name, &owner.token).await?;
        }
        let out = aws
            .apigatewayv2()
            .await
            .create_authorizer()
            .api_id(&spec.api_id)
            .name(&spec.name)
            .authorizer_type(AuthorizerType::from(spec.authorizer_type.as_str()))
            .set_authorizer_uri(spec.authorizer_uri.clone())
            .set_identity_source(Some(spec.identity_sources.clone().unwrap_or_default()))
            .set_authorizer_payload_format_version(spec.payload_format_version.clone())
            .set_enable_simple_responses(spec.enable_simple_responses)
            .set_authorizer_result_ttl_in_seconds(spec.result_ttl_seconds)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateAuthorizer", e))?;
        let id = out.authorizer_id().ok_or_else(|| ProviderError::unexpected("CreateAuthorizer", "no AuthorizerId"))?;
        Ok(Created::new(format!("{}/{id}", spec.api_id), AuthorizerComputed { authorizer_id: id.to_string() }))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Authorizer,
        _changed: &[AuthorizerField],
        _owner: &Owner,
    ) -> Result<Option<AuthorizerComputed>, ProviderError> {
        let (api, authorizer) = split_id("UpdateAuthorizer", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(api)).await;
        aws.apigatewayv2()
            .await
            .update_authorizer()
            .api_id(api)
            .authorizer_id(authorizer)
            .name(&spec.name)
            .set_authorizer_uri(spec.authorizer_uri.clone())
            .set_identity_source(Some(spec.identity_sources.clone().unwrap_or_default()))
            .set_authorizer_payload_format_version(spec.payload_format_version.clone())
            .set_enable_simple_responses(spec.enable_simple_responses)
            .set_authorizer_result_ttl_in_seconds(spec.result_ttl_seconds)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateAuthorizer", e))?;
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Authorizer,
        owner: &Owner,
        reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let client = aws.apigatewayv2().await;
        let page = |next| authorizers_page(client, &spec.api_id, next);
        let named = |a: &aws_sdk_apigatewayv2::types::Authorizer| {
            let id = format!("{}/{}", spec.api_id, a.authorizer_id().unwrap_or_default());
            (a.name() == Some(spec.name.as_str())).then_some(id)
        };
        Ok(find_in_pages(page, named).await?.map(|id| owner.judge_untagged(&id, reason, None)))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Authorizer, AuthorizerComputed>,
    ) -> Result<Deleted, ProviderError> {
        let (api, authorizer) = split_id("DeleteAuthorizer", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(api)).await;
        let deleted = aws.apigatewayv2().await.delete_authorizer().api_id(api).authorizer_id(authorizer).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteAuthorizer", e))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<AuthorizerPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

#[async_trait]
impl Inventory for ApiGatewayV2Authorizer {
    /// The API, from the id (`API/CHILD`).
    fn parent(&self, id: &str, _recorded: &Attrs) -> Option<Parent> {
        id.split_once('/').map(|(api, _)| Parent(api.to_string()))
    }

    async fn children(&self, aws: &Aws, parent: &Parent) -> Result<Option<Siblings>, ProviderError> {
        let api = parent.0.as_str();
        let client = aws.apigatewayv2().await;
        let page = |next| authorizers_page(client, api, next);
        let Some(items) = all_pages(page).await? else { return Ok(None) };
        let children = items
            .iter()
            .map(|a| {
                let what = format!("authorizer {}", a.name().unwrap_or("?"));
                Sibling::new(format!("{api}/{}", a.authorizer_id().unwrap_or_default()), what)
            })
            .collect();
        Ok(Some(Siblings { parent: format!("the API {api}"), children }))
    }
}

impl Access<AuthorizerPlanned> for ApiGatewayV2Authorizer {
    fn deployer(&self) -> Deployer {
        API_DEPLOYER
    }

    fn deployer_arns(&self, _spec: &AuthorizerPlanned, scope: &ArnScope) -> Vec<String> {
        api_arns(scope)
    }
}

/// One page of the API's authorizers after `next` (`None`: the first), with the next token;
/// `None` when the API is gone.
async fn authorizers_page(
    client: &aws_sdk_apigatewayv2::Client,
    api: &str,
    next: Option<String>,
) -> Result<Option<(Vec<aws_sdk_apigatewayv2::types::Authorizer>, Option<String>)>, ProviderError> {
    let got = client.get_authorizers().api_id(api).set_next_token(next).send().await;
    let got = found(got.map_err(|e| ProviderError::from_sdk("GetAuthorizers", e)))?;
    Ok(got.map(|out| (out.items().to_vec(), out.next_token().map(str::to_string))))
}

/// Renames the replaced authorizer `id` out of `name`'s way (`NAME-replaced-TOKEN`), if it still
/// holds it; gone, or already renamed by an earlier attempt of this create, is fine.
async fn move_aside(aws: &Aws, id: &str, name: &str, token: &str) -> Result<(), ProviderError> {
    let (api, authorizer) = split_id("UpdateAuthorizer", id)?;
    let client = aws.apigatewayv2().await;
    let got = client.get_authorizer().api_id(api).authorizer_id(authorizer).send().await;
    let Some(current) = found(got.map_err(|e| ProviderError::from_sdk("GetAuthorizer", e)))? else { return Ok(()) };
    if current.name() != Some(name) {
        return Ok(());
    }
    let aside = format!("{name}-replaced-{}", token.chars().take(8).collect::<String>());
    let renamed = client.update_authorizer().api_id(api).authorizer_id(authorizer).name(aside).send().await;
    renamed.map_err(|e| ProviderError::from_sdk("UpdateAuthorizer", e))?;
    Ok(())
}
