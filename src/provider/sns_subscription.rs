//! `sns_subscription`: a topic subscription (https webhook, email, lambda, sqs, ...).
//!
//! The id is the subscription ARN. Topic, protocol and endpoint cannot change in place: a
//! change replaces the subscription. Real AWS keeps an https subscription "pending
//! confirmation" until the endpoint confirms; with `ReturnSubscriptionArn` the ARN is still
//! returned, so the engine never stores the string "pending confirmation" as an id.
//! `Subscribe` is idempotent for the same topic, protocol and endpoint: sent again, it answers
//! with the same subscription.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::typed::cannot_update;
use super::{Aws, Created, FindReason, Found, Kind, Managed, Owner, ProviderError};
use crate::value::Attrs;

pub struct SnsSubscription;

const PROTOCOLS: &[&str] = &["http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"];
/// Protocols whose endpoint must confirm before messages flow.
const CONFIRMED_BY_ENDPOINT: &[&str] = &["http", "https", "email", "email-json"];

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

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    topic_arn: String,
    protocol: String,
    endpoint: String,
    raw_message_delivery: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubscriptionComputed {
    arn: String,
    pending_confirmation: String,
}

#[async_trait]
impl Kind for SnsSubscription {
    const NAME: &'static str = "sns_subscription";
    type Spec = Subscription;
    type Computed = SubscriptionComputed;

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
        _prior: Option<&Subscription>,
    ) -> Result<Option<(Subscription, SubscriptionComputed)>, ProviderError> {
        let out = match aws.sns().await.get_subscription_attributes().subscription_arn(id).send().await {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) => {
                let e = ProviderError::from_sdk("GetSubscriptionAttributes", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        let get = |k: &str| out.get(k).cloned().unwrap_or_default();
        let raw = out.get("RawMessageDelivery").is_some_and(|v| v == "true");
        let spec = Subscription {
            topic_arn: get("TopicArn"),
            protocol: get("Protocol"),
            endpoint: get("Endpoint"),
            raw_message_delivery: (managed.has("raw_message_delivery") && raw).then_some(true),
        };
        let pending = out.get("PendingConfirmation").is_some_and(|v| v == "true");
        Ok(Some((spec, SubscriptionComputed { arn: id.to_string(), pending_confirmation: pending.to_string() })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Subscription,
        _owner: &Owner,
    ) -> Result<Created<SubscriptionComputed>, ProviderError> {
        let mut req = aws
            .sns()
            .await
            .subscribe()
            .topic_arn(&spec.topic_arn)
            .protocol(&spec.protocol)
            .endpoint(&spec.endpoint)
            .return_subscription_arn(true);
        if spec.raw_message_delivery == Some(true) {
            req = req.attributes("RawMessageDelivery", "true");
        }
        let out = req.send().await.map_err(|e| ProviderError::from_sdk("Subscribe", e))?;
        let arn = out.subscription_arn().filter(|a| a.starts_with("arn:")).ok_or_else(|| {
            ProviderError::unexpected(
                "Subscribe",
                format!("no subscription ARN in the response ({:?})", out.subscription_arn()),
            )
        })?;
        // Until read back, assume what the protocol implies; the next refresh says.
        let pending = CONFIRMED_BY_ENDPOINT.contains(&spec.protocol.as_str());
        let computed = SubscriptionComputed { arn: arn.to_string(), pending_confirmation: pending.to_string() };
        Ok(Created { id: arn.to_string(), computed, deferred: &[], deferred_always: &[] })
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Subscription,
        changed: &[&str],
        _owner: &Owner,
    ) -> Result<Option<SubscriptionComputed>, ProviderError> {
        for &attr in changed {
            match attr {
                "raw_message_delivery" => {
                    let raw = spec.raw_message_delivery == Some(true);
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
                other => return Err(cannot_update(Self::NAME, other)),
            }
        }
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Subscription,
        _owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        // Subscribing again returns the same subscription, so only a confirmed one listed with
        // its ARN needs finding; a pending one is listed without it and found by Subscribe.
        let sns = aws.sns().await;
        let listed = sns.list_subscriptions_by_topic().topic_arn(&spec.topic_arn).into_paginator().items().send();
        let all = match listed.try_collect().await.map_err(|e| ProviderError::from_sdk("ListSubscriptionsByTopic", e)) {
            Ok(all) => all,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let ours = all.iter().find(|s| {
            s.protocol() == Some(spec.protocol.as_str())
                && s.endpoint() == Some(spec.endpoint.as_str())
                && s.subscription_arn().is_some_and(|a| a.starts_with("arn:"))
        });
        Ok(ours.and_then(|s| s.subscription_arn()).map(|arn| Found::Ours { id: arn.to_string() }))
    }

    async fn delete(&self, aws: &Aws, id: &str) -> Result<(), ProviderError> {
        let deleted = aws.sns().await.unsubscribe().subscription_arn(id).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("Unsubscribe", e))?;
        Ok(())
    }
}
