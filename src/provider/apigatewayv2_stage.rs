//! `apigatewayv2_stage`: a stage of an HTTP API (`$default` with auto-deploy, so every change
//! to routes is live without a deployment resource).
//!
//! The id is `API_ID/STAGE_NAME`. `CreateStage` carries the ownership tags; a stage name is
//! unique within an API, so an interrupted create is found by name and judged by its tags.

use super::Fields;
use super::apigatewayv2_api::{API_DEPLOYER, api_arns};
use super::facets::{Access, Inventory, Parent};
use super::{Planned, Sibling, Siblings};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::value::Attrs;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::apigatewayv2_api::write_lock;
use super::attrs::{all_pages, found, split_id};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, NoComputed, Owner, Prior, ProviderError};

pub struct ApiGatewayV2Stage;

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("api_id", AttrType::String, "the API").force_new().identity(),
        Attribute::required("name", AttrType::String, "the stage name, e.g. $default").force_new().identity(),
        Attribute::optional("auto_deploy", AttrType::Bool, "deploy every change automatically"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    api_id: String,
    name: String,
    auto_deploy: Option<bool>,
}

#[async_trait]
impl Kind for ApiGatewayV2Stage {
    const NAME: &'static str = "apigatewayv2_stage";
    type Spec = Stage;
    type Computed = NoComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: &Prior<Stage, NoComputed>,
    ) -> Result<Option<(Stage, NoComputed)>, ProviderError> {
        let (api, stage) = split_id("GetStage", id)?;
        let got = aws.apigatewayv2().await.get_stage().api_id(api).stage_name(stage).send().await;
        let Some(s) = found(got.map_err(|e| ProviderError::from_sdk("GetStage", e)))? else { return Ok(None) };
        let spec = Stage {
            api_id: api.to_string(),
            name: s.stage_name().unwrap_or(stage).to_string(),
            auto_deploy: s.auto_deploy(),
        };
        Ok(Some((spec, NoComputed {})))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Stage,
        owner: &Owner,
    ) -> Result<Created<NoComputed, Self::Spec>, ProviderError> {
        let _one_write_at_a_time = aws.exclusive(write_lock(&spec.api_id)).await;
        aws.apigatewayv2()
            .await
            .create_stage()
            .api_id(&spec.api_id)
            .stage_name(&spec.name)
            .set_auto_deploy(spec.auto_deploy)
            .set_tags(Some(owner.tags().into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("CreateStage", e))?;
        Ok(Created::new(format!("{}/{}", spec.api_id, spec.name), NoComputed {}))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Stage,
        _changed: &[StageField],
        _owner: &Owner,
    ) -> Result<Option<NoComputed>, ProviderError> {
        let (api, stage) = split_id("UpdateStage", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(api)).await;
        aws.apigatewayv2()
            .await
            .update_stage()
            .api_id(api)
            .stage_name(stage)
            .auto_deploy(spec.auto_deploy.unwrap_or(false))
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("UpdateStage", e))?;
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Stage,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let got = aws.apigatewayv2().await.get_stage().api_id(&spec.api_id).stage_name(&spec.name).send().await;
        let Some(s) = found(got.map_err(|e| ProviderError::from_sdk("GetStage", e)))? else { return Ok(None) };
        let id = format!("{}/{}", spec.api_id, spec.name);
        let tags = s.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
        Ok(Some(owner.judge_tagged_at_create(&id, tags)))
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Prior<Stage, NoComputed>) -> Result<Deleted, ProviderError> {
        let (api, stage) = split_id("DeleteStage", id)?;
        let _one_write_at_a_time = aws.exclusive(write_lock(api)).await;
        let deleted = aws.apigatewayv2().await.delete_stage().api_id(api).stage_name(stage).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteStage", e))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<StagePlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

#[async_trait]
impl Inventory for ApiGatewayV2Stage {
    /// The API, from the id (`API/CHILD`).
    fn parent(&self, id: &str, _recorded: &Attrs) -> Option<Parent> {
        id.split_once('/').map(|(api, _)| Parent(api.to_string()))
    }

    async fn children(&self, aws: &Aws, parent: &Parent) -> Result<Option<Siblings>, ProviderError> {
        let api = parent.0.as_str();
        let client = aws.apigatewayv2().await;
        let page = |next| async move {
            let got = client.get_stages().api_id(api).set_next_token(next).send().await;
            let got = found(got.map_err(|e| ProviderError::from_sdk("GetStages", e)))?;
            Ok(got.map(|out| (out.items().to_vec(), out.next_token().map(str::to_string))))
        };
        let Some(items) = all_pages(page).await? else { return Ok(None) };
        let names = items.iter().filter_map(|s| s.stage_name());
        let children = names.map(|name| Sibling::new(format!("{api}/{name}"), format!("stage {name}"))).collect();
        Ok(Some(Siblings { parent: format!("the API {api}"), children }))
    }
}

impl Access<StagePlanned> for ApiGatewayV2Stage {
    fn deployer(&self) -> Deployer {
        API_DEPLOYER
    }

    fn deployer_arns(&self, _spec: &StagePlanned, scope: &ArnScope) -> Vec<String> {
        api_arns(scope)
    }
}
