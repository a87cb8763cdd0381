//! `apigatewayv2_stage`: a stage of an HTTP API (`$default` with auto-deploy, so every change
//! to routes is live without a deployment resource).
//!
//! The id is `API_ID/STAGE_NAME`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::attrs::{boolean, build, found, split_id, string};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct ApiGatewayV2Stage;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("api_id", AttrType::String, "the API").force_new(),
        Attribute::required("name", AttrType::String, "the stage name, e.g. $default").force_new(),
        Attribute::optional("auto_deploy", AttrType::Bool, "deploy every change automatically"),
    ],
};

#[async_trait]
impl ResourceKind for ApiGatewayV2Stage {
    fn kind(&self) -> &'static str {
        "apigatewayv2_stage"
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
        let (api, stage) = split_id("GetStage", id)?;
        let got = aws.apigatewayv2().await.get_stage().api_id(api).stage_name(stage).send().await;
        let Some(s) = found(got.map_err(|e| ProviderError::from_sdk("GetStage", e)))? else { return Ok(None) };
        Ok(Some(build([
            ("api_id", json!(api)),
            ("name", json!(s.stage_name())),
            ("auto_deploy", s.auto_deploy().map_or(Value::Null, |b| json!(b))),
        ])))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let (api, name) = (string(desired, "api_id"), string(desired, "name"));
        aws.apigatewayv2()
            .await
            .create_stage()
            .api_id(api)
            .stage_name(name)
            .set_auto_deploy(boolean(desired, "auto_deploy"))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateStage", e))?;
        Ok(Created { id: format!("{api}/{name}"), attrs: Attrs::new() })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        let (api, stage) = split_id("UpdateStage", id)?;
        aws.apigatewayv2()
            .await
            .update_stage()
            .api_id(api)
            .stage_name(stage)
            .auto_deploy(boolean(desired, "auto_deploy").unwrap_or(false))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateStage", e))?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let (api, stage) = split_id("DeleteStage", id)?;
        let client = aws.apigatewayv2().await;
        client
            .delete_stage()
            .api_id(api)
            .stage_name(stage)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteStage", e))?;
        Ok(())
    }
}
