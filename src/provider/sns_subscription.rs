//! `sns_subscription`: a topic subscription (https webhook, email, lambda, sqs, ...).
//!
//! The id is the subscription ARN. Topic, protocol and endpoint cannot change in place: a
//! change replaces the subscription. Real AWS keeps an https subscription "pending
//! confirmation" until the endpoint confirms; with `ReturnSubscriptionArn` the ARN is still
//! returned, so the engine never stores the string "pending confirmation" as an id.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub struct SnsSubscription;

const PROTOCOLS: &[&str] = &["http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("topic_arn", AttrType::String, "the topic to subscribe to").force_new(),
        Attribute::required("protocol", AttrType::Enum(PROTOCOLS), "how messages are delivered").force_new(),
        Attribute::required("endpoint", AttrType::String, "where messages are delivered (a URL for https)").force_new(),
        Attribute::optional(
            "raw_message_delivery",
            AttrType::Bool,
            "deliver the message body without the SNS envelope",
        ),
        Attribute::computed("arn", "the subscription ARN"),
        Attribute::computed("pending_confirmation", "true until the endpoint confirms the subscription"),
    ],
};

#[async_trait]
impl ResourceKind for SnsSubscription {
    fn kind(&self) -> &'static str {
        "sns_subscription"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        // Unset and false are the same delivery mode.
        if attrs.get("raw_message_delivery") == Some(&Value::Bool(false)) {
            attrs.insert("raw_message_delivery".into(), Value::Null);
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let out = match aws.sns().await.get_subscription_attributes().subscription_arn(id).send().await {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) => {
                let e = ProviderError::from_sdk("GetSubscriptionAttributes", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        let get = |k: &str| out.get(k).map_or(Value::Null, |v| json!(v));
        let mut attrs = Attrs::new();
        attrs.insert("arn".into(), json!(id));
        attrs.insert("topic_arn".into(), get("TopicArn"));
        attrs.insert("protocol".into(), get("Protocol"));
        attrs.insert("endpoint".into(), get("Endpoint"));
        attrs.insert(
            "pending_confirmation".into(),
            json!(out.get("PendingConfirmation").is_some_and(|v| v == "true").to_string()),
        );
        if managed.has("raw_message_delivery") {
            let raw = out.get("RawMessageDelivery").is_some_and(|v| v == "true");
            attrs.insert("raw_message_delivery".into(), if raw { Value::Bool(true) } else { Value::Null });
        }
        Ok(Some(attrs))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let s = |k: &str| desired.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut req = aws
            .sns()
            .await
            .subscribe()
            .topic_arn(s("topic_arn"))
            .protocol(s("protocol"))
            .endpoint(s("endpoint"))
            .return_subscription_arn(true);
        if desired.get("raw_message_delivery") == Some(&Value::Bool(true)) {
            req = req.attributes("RawMessageDelivery", "true");
        }
        let out = req.send().await.map_err(|e| ProviderError::from_sdk("Subscribe", e))?;
        let arn = out.subscription_arn().filter(|a| a.starts_with("arn:")).ok_or_else(|| {
            ProviderError::unexpected(
                "Subscribe",
                format!("no subscription ARN in the response ({:?})", out.subscription_arn()),
            )
        })?;
        let mut attrs = Attrs::new();
        attrs.insert("arn".into(), json!(arn));
        Ok(Created { id: arn.to_string(), attrs })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, changed: &[&str]) -> Result<Attrs, ProviderError> {
        if changed.contains(&"raw_message_delivery") {
            let raw = desired.get("raw_message_delivery") == Some(&Value::Bool(true));
            aws.sns()
                .await
                .set_subscription_attributes()
                .subscription_arn(id)
                .attribute_name("RawMessageDelivery")
                .attribute_value(raw.to_string())
                .send()
                .await
                .map_err(|e| ProviderError::from_sdk("SetSubscriptionAttributes", e))?;
        }
        let mut attrs = Attrs::new();
        attrs.insert("arn".into(), json!(id));
        Ok(attrs)
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        aws.sns()
            .await
            .unsubscribe()
            .subscription_arn(id)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("Unsubscribe", e))?;
        Ok(())
    }
}
