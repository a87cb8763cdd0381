//! `apigatewayv2_api`: an HTTP API with its CORS configuration.
//!
//! The id is the API id. The CORS block is always sent whole (UpdateApi replaces it), and
//! compared with header names in lower case and lists as sets. API names are not unique, so
//! an API is recognised as ours only by the ownership tags `CreateApi` writes on it.

use super::Fields;
use super::facets::{Access, Inventory, Parent};
use super::planned::{self, Case};
use super::{Lifecycle, SecondCreate};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::provider::{Known, KnownValue};
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::{Cors, ProtocolType};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::attrs::{find_in_pages, found};
use super::ownership::Tagged;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Planned, Prior, ProviderError};
use crate::value::Attrs;

pub struct ApiGatewayV2Api;

const CORS: &[Attribute] = &[
    Attribute::optional("allow_origins", AttrType::List(&AttrType::String), "origins allowed to call the API"),
    Attribute::optional("allow_methods", AttrType::List(&AttrType::String), "methods allowed, or *"),
    Attribute::optional("allow_headers", AttrType::List(&AttrType::String), "request headers allowed"),
    Attribute::optional("expose_headers", AttrType::List(&AttrType::String), "response headers the browser may read"),
    Attribute::optional("max_age", AttrType::Int, "seconds a preflight may be cached"),
    Attribute::optional("allow_credentials", AttrType::Bool, "allow cookies and Authorization"),
];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the API's name").named(super::names::NameRule::ApiGateway),
        Attribute::optional("protocol_type", AttrType::Enum(&["HTTP", "WEBSOCKET"]), "HTTP [default] or WEBSOCKET")
            .force_new(),
        Attribute::optional("description", AttrType::String, "what the API is for"),
        Attribute::optional("cors", AttrType::Object(CORS), "the CORS configuration"),
        Attribute::computed("api_id", "the API id"),
        Attribute::computed("api_endpoint", "https://ID.execute-api.REGION.amazonaws.com"),
        Attribute::computed("execution_arn", "arn:PARTITION:execute-api:REGION:ACCOUNT:ID, for Lambda permissions"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Api {
    name: String,
    protocol_type: Option<String>,
    description: Option<String>,
    cors: Option<ApiCors>,
}

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Planned)]
#[serde(deny_unknown_fields)]
struct ApiCors {
    allow_origins: Option<Vec<String>>,
    allow_methods: Option<Vec<String>>,
    allow_headers: Option<Vec<String>>,
    expose_headers: Option<Vec<String>>,
    max_age: Option<i32>,
    allow_credentials: Option<bool>,
}

impl Api {
    /// The API as AWS describes it (GetApi and CreateApi answer alike).
    fn of(name: Option<&str>, protocol: Option<&ProtocolType>, description: Option<&str>, cors: Option<&Cors>) -> Self {
        let cors = cors.map(|c| ApiCors {
            allow_origins: Some(c.allow_origins().to_vec()),
            allow_methods: Some(c.allow_methods().to_vec()),
            allow_headers: Some(c.allow_headers().to_vec()),
            expose_headers: Some(c.expose_headers().to_vec()),
            max_age: c.max_age(),
            allow_credentials: c.allow_credentials(),
        });
        Api {
            name: name.unwrap_or_default().to_string(),
            protocol_type: protocol.map(|p| p.as_str().to_string()),
            description: description.map(str::to_string),
            cors,
        }
    }
}

impl ApiCors {
    fn sdk(&self) -> Cors {
        let list = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
        Cors::builder()
            .set_allow_origins(list(&self.allow_origins))
            .set_allow_methods(list(&self.allow_methods))
            .set_allow_headers(list(&self.allow_headers))
            .set_expose_headers(list(&self.expose_headers))
            .set_max_age(self.max_age)
            .set_allow_credentials(self.allow_credentials)
            .build()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ApiComputed {
    api_id: String,
    api_endpoint: String,
    execution_arn: String,
}

#[async_trait]
impl Kind for ApiGatewayV2Api {
    const NAME: &'static str = "apigatewayv2_api";
    type Spec = Api;
    type Computed = ApiComputed;
    /// API names are not unique: a second CreateApi makes a second API.
    const LIFECYCLE: Lifecycle = Lifecycle { second_create: SecondCreate::MakesAnother, ..Lifecycle::DEFAULT };

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, spec: &mut ApiPlanned) {
        if let Some(cors) = spec.cors.known_mut() {
            for (list, case) in [
                (&mut cors.allow_origins, Case::AsWritten),
                (&mut cors.allow_methods, Case::Upper),
                (&mut cors.allow_headers, Case::Lower),
                (&mut cors.expose_headers, Case::Lower),
            ] {
                if let Some(items) = list.known_mut() {
                    case.spell_sorted(items);
                }
            }
            planned::unset_when(&mut cors.allow_credentials, &false);
        }
        if let Some(Known::Known(cors)) = &spec.cors {
            let set = [&cors.allow_origins, &cors.allow_methods, &cors.allow_headers, &cors.expose_headers];
            if set.iter().all(|l| l.is_none()) && cors.max_age.is_none() && cors.allow_credentials.is_none() {
                spec.cors = None;
            }
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Prior<Api, ApiComputed>,
    ) -> Result<Option<(Api, ApiComputed)>, ProviderError> {
        let got = aws.apigatewayv2().await.get_api().api_id(id).send().await;
        let Some(api) = found(got.map_err(|e| ProviderError::from_sdk("GetApi", e)))? else { return Ok(None) };
        let spec = Api::of(api.name(), api.protocol_type(), api.description(), api.cors_configuration());
        Ok(Some((spec, computed(aws, id, api.api_endpoint()).await?)))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Api,
        owner: &Owner,
    ) -> Result<Created<ApiComputed, Self::Spec>, ProviderError> {
        // Known before the creating call, so nothing can fail between it and the record.
        aws.account_id().await?;
        let out = aws
            .apigatewayv2()
            .await
            .create_api()
            .name(&spec.name)
            .protocol_type(ProtocolType::from(spec.protocol_type.as_deref().unwrap_or("HTTP")))
            .set_description(spec.description.clone())
            .set_cors_configuration(spec.cors.as_ref().map(ApiCors::sdk))
            .set_tags(Some(owner.tags().into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateApi", e))?;
        let id = out.api_id().ok_or_else(|| ProviderError::unexpected("CreateApi", "no ApiId in the response"))?;
        let observed = Api::of(out.name(), out.protocol_type(), out.description(), out.cors_configuration());
        Ok(Created::new(id.to_string(), computed(aws, id, out.api_endpoint()).await?).observed(observed))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Api,
        changed: &[ApiField],
        _owner: &Owner,
    ) -> Result<Option<ApiComputed>, ProviderError> {
        let _one_write_at_a_time = aws.exclusive(write_lock(id)).await;
        let client = aws.apigatewayv2().await;
        if changed.contains(&ApiField::Cors) && spec.cors.is_none() {
            let deleted = client.delete_cors_configuration().api_id(id).send().await;
            match deleted.map_err(|e| ProviderError::from_sdk("DeleteCorsConfiguration", e)) {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        client
            .update_api()
            .api_id(id)
            .name(&spec.name)
            .set_description(spec.description.clone())
            .set_cors_configuration(spec.cors.as_ref().map(ApiCors::sdk))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateApi", e))?;
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Api,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let client = aws.apigatewayv2().await;
        let page = |next| async move {
            let out = client.get_apis().set_next_token(next).send().await;
            let out = out.map_err(|e| ProviderError::from_sdk("GetApis", e))?;
            Ok(Some((out.items().to_vec(), out.next_token().map(str::to_string))))
        };
        // API names are not unique: only the ownership tags say which is ours.
        find_in_pages(page, |api: &aws_sdk_apigatewayv2::types::Api| {
            let tags = api.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
            let ours = api.name() == Some(spec.name.as_str()) && owner.judge_tags(tags) == Tagged::Ours;
            ours.then(|| Found::Ours { id: api.api_id().unwrap_or_default().to_string() })
        })
        .await
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Prior<Api, ApiComputed>) -> Result<Deleted, ProviderError> {
        let _one_write_at_a_time = aws.exclusive(write_lock(id)).await;
        let deleted = aws.apigatewayv2().await.delete_api().api_id(id).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteApi", e))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<ApiPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

impl Inventory for ApiGatewayV2Api {
    /// Its routes, integrations, authorizers and stages, each listed by its own kind.
    fn children_listed_by(&self, id: &str, _recorded: &Attrs) -> Vec<(&'static str, Parent)> {
        ["apigatewayv2_route", "apigatewayv2_integration", "apigatewayv2_authorizer", "apigatewayv2_stage"]
            .into_iter()
            .map(|kind| (kind, Parent(id.to_string())))
            .collect()
    }
}

impl Access<ApiPlanned> for ApiGatewayV2Api {
    fn deployer(&self) -> Deployer {
        API_DEPLOYER
    }

    fn deployer_arns(&self, _spec: &ApiPlanned, scope: &ArnScope) -> Vec<String> {
        api_arns(scope)
    }
}

/// The lock every write to one HTTP API (the API itself and its authorizers, integrations,
/// routes and stages) holds: API Gateway refuses concurrent changes to one API with
/// `ConflictException` ("concurrent modification ... try again later").
/// What every API Gateway v2 kind's calls need: API Gateway authorises by HTTP method on the
/// resource path, under the APIs of the region (and the tags of one for `TagResource`).
pub(super) const API_DEPLOYER: Deployer = Deployer {
    read: &["apigateway:GET"],
    write: &["apigateway:POST", "apigateway:PATCH", "apigateway:PUT", "apigateway:DELETE"],
    delete: &["apigateway:DELETE"],
    unscoped: &[],
};

/// The resource paths [`API_DEPLOYER`]'s actions act on.
pub(super) fn api_arns(scope: &ArnScope) -> Vec<String> {
    ["/apis", "/apis/*", "/tags/*"].iter().map(|path| scope.arn("apigateway", &scope.region, "", path)).collect()
}

pub(super) fn write_lock(api_id: &str) -> String {
    format!("apigatewayv2 api {api_id}")
}

async fn computed(aws: &Aws, id: &str, endpoint: Option<&str>) -> Result<ApiComputed, ProviderError> {
    let region = aws.region().await;
    let account = aws.account_id().await?;
    let partition = aws.partition().await?;
    Ok(ApiComputed {
        api_id: id.to_string(),
        api_endpoint: endpoint
            .map_or_else(|| format!("https://{id}.execute-api.{region}.{}", partition.dns_suffix), str::to_string),
        execution_arn: format!("arn:{}:execute-api:{region}:{account}:{id}", partition.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ResourceKind, Typed};
    use crate::value::{UNKNOWN, unknown};

    #[test]
    fn normalising_cors_spells_known_values_and_keeps_an_unknown_one_unknown() {
        // Methods compare upper case, but a method known only after apply stays the marker
        // (upper-casing it would turn it into a literal `(KNOWN AFTER APPLY)`).
        let mut attrs: Attrs = serde_json::from_value(serde_json::json!({
            "name": "a", "cors": {"allow_methods": ["post", unknown()], "allow_headers": ["Content-Type"]}
        }))
        .expect("attrs");
        Typed(ApiGatewayV2Api).normalize(&mut attrs);
        let cors = &attrs["cors"];
        assert_eq!(cors["allow_methods"], serde_json::json!([UNKNOWN, "POST"]));
        assert_eq!(cors["allow_headers"], serde_json::json!(["content-type"]));
    }
}
