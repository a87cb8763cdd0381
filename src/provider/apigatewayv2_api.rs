//! `apigatewayv2_api`: an HTTP API with its CORS configuration.
//!
//! The id is the API id. The CORS block is always sent whole (UpdateApi replaces it), and
//! compared with header names in lower case and lists as sets.

use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::{Cors, ProtocolType};
use serde_json::{Value, json};

use super::attrs::{boolean, build, found, int, opt_string, string, strings};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
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
        Attribute::required("name", AttrType::String, "the API's name"),
        Attribute::optional("protocol_type", AttrType::Enum(&["HTTP", "WEBSOCKET"]), "HTTP [default] or WEBSOCKET")
            .force_new(),
        Attribute::optional("description", AttrType::String, "what the API is for"),
        Attribute::optional("cors", AttrType::Object(CORS), "the CORS configuration"),
        Attribute::computed("api_id", "the API id"),
        Attribute::computed("api_endpoint", "https://ID.execute-api.REGION.amazonaws.com"),
        Attribute::computed("execution_arn", "arn:aws:execute-api:REGION:ACCOUNT:ID, for Lambda permissions"),
    ],
};

#[async_trait]
impl ResourceKind for ApiGatewayV2Api {
    fn kind(&self) -> &'static str {
        "apigatewayv2_api"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        super::normalize::by_schema(&SCHEMA, attrs);
        if let Some(Value::Object(cors)) = attrs.get_mut("cors") {
            for (key, case) in [("allow_origins", 0), ("allow_methods", 1), ("allow_headers", 2), ("expose_headers", 2)]
            {
                if let Some(Value::Array(items)) = cors.get_mut(key) {
                    for item in items.iter_mut() {
                        if let Value::String(s) = item {
                            *s = match case {
                                1 => s.to_ascii_uppercase(),
                                2 => s.to_ascii_lowercase(),
                                _ => s.clone(),
                            };
                        }
                    }
                    items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                }
            }
            if cors.get("allow_credentials") == Some(&Value::Bool(false)) {
                cors.remove("allow_credentials");
            }
        }
        if attrs.get("cors").is_some_and(|c| c.as_object().is_some_and(|o| o.is_empty())) {
            attrs.insert("cors".into(), Value::Null);
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let got = aws.apigatewayv2().await.get_api().api_id(id).send().await;
        let Some(api) = found(got.map_err(|e| ProviderError::from_sdk("GetApi", e)))? else { return Ok(None) };
        let cors = api.cors_configuration().map_or(Value::Null, |c| {
            Value::Object(build([
                ("allow_origins", json!(c.allow_origins())),
                ("allow_methods", json!(c.allow_methods())),
                ("allow_headers", json!(c.allow_headers())),
                ("expose_headers", json!(c.expose_headers())),
                ("max_age", c.max_age().map_or(Value::Null, |m| json!(m))),
                ("allow_credentials", c.allow_credentials().map_or(Value::Null, |b| json!(b))),
            ]))
        });
        let mut attrs = build([
            ("name", json!(api.name())),
            ("protocol_type", api.protocol_type().map_or(Value::Null, |p| json!(p.as_str()))),
            ("description", api.description().map_or(Value::Null, |d| json!(d))),
            ("cors", cors),
        ]);
        attrs.extend(computed(aws, id, api.api_endpoint()).await?);
        Ok(Some(attrs))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let out = aws
            .apigatewayv2()
            .await
            .create_api()
            .name(string(desired, "name"))
            .protocol_type(ProtocolType::from(opt_string(desired, "protocol_type").unwrap_or("HTTP")))
            .set_description(opt_string(desired, "description").map(str::to_string))
            .set_cors_configuration(cors(desired))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateApi", e))?;
        let id = out.api_id().ok_or_else(|| ProviderError::unexpected("CreateApi", "no ApiId in the response"))?;
        Ok(Created { id: id.to_string(), attrs: computed(aws, id, out.api_endpoint()).await? })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, changed: &[&str]) -> Result<Attrs, ProviderError> {
        let client = aws.apigatewayv2().await;
        let cors = cors(desired);
        if changed.contains(&"cors") && cors.is_none() {
            client
                .delete_cors_configuration()
                .api_id(id)
                .send()
                .await
                .map_err(|e| ProviderError::from_sdk("DeleteCorsConfiguration", e))?;
        }
        client
            .update_api()
            .api_id(id)
            .name(string(desired, "name"))
            .set_description(opt_string(desired, "description").map(str::to_string))
            .set_cors_configuration(cors)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateApi", e))?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        aws.apigatewayv2()
            .await
            .delete_api()
            .api_id(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteApi", e))?;
        Ok(())
    }
}

fn cors(desired: &Attrs) -> Option<Cors> {
    let c = desired.get("cors").and_then(Value::as_object)?;
    let list = |k: &str| Some(strings(c.get(k))).filter(|v| !v.is_empty());
    Some(
        Cors::builder()
            .set_allow_origins(list("allow_origins"))
            .set_allow_methods(list("allow_methods"))
            .set_allow_headers(list("allow_headers"))
            .set_expose_headers(list("expose_headers"))
            .set_max_age(int(c, "max_age").map(|n| n as i32))
            .set_allow_credentials(boolean(c, "allow_credentials"))
            .build(),
    )
}

async fn computed(aws: &Aws, id: &str, endpoint: Option<&str>) -> Result<Attrs, ProviderError> {
    let region = aws.region().await;
    let account = aws.account_id().await?;
    Ok(build([
        ("api_id", json!(id)),
        (
            "api_endpoint",
            json!(endpoint.map_or_else(|| format!("https://{id}.execute-api.{region}.amazonaws.com"), str::to_string)),
        ),
        ("execution_arn", json!(format!("arn:aws:execute-api:{region}:{account}:{id}"))),
    ]))
}
