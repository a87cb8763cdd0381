//! `sns_subscription`: a topic subscription (https webhook, email, lambda, sqs, ...).
//!
//! The id is the subscription ARN. Topic, protocol and endpoint cannot change in place: a
//! change replaces the subscription. Real AWS keeps an https subscription "pending
//! confirmation" until the endpoint confirms; with `ReturnSubscriptionArn` the ARN is still
//! returned, so the engine never stores the string "pending confirmation" as an id.
//! `Subscribe` is idempotent for the same topic, protocol and endpoint: sent again, it answers
//! with the same subscription.
//!
//! AWS refuses to unsubscribe a subscription that is still pending confirmation ("Cannot
//! unsubscribe a subscription that is pending confirmation") and deletes it itself after about
//! three days: deleting one forgets it, and the plan says so. With `endpoint_auto_confirms` the
//! engine waits (up to `confirmation_timeout_in_minutes`) until the endpoint confirms, as
//! Terraform does; both are local settings, never sent to AWS.

use super::Fields;
use super::facets::{Access, Annotate, Annotation, ChangeView, Inventory, Parent, Stage};
use super::planned;
use super::{Planned, Sibling, Siblings};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::rules;
use crate::provider::{DeclaredAs, Live};
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use serde_with::skip_serializing_none;

use super::schema::{AttrType, Attribute, ResourceSchema};
use super::typed::cannot_update;
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, Owner, Prior, ProviderError};
use super::{Declared, Finding, int_in_range};
use crate::poll::{self, Poll, Seen};
use crate::value::Attrs;

pub struct SnsSubscription;

const PROTOCOLS: &[&str] = &["http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"];
/// Protocols whose endpoint must confirm before messages flow.
const CONFIRMED_BY_ENDPOINT: &[&str] = &["http", "https", "email", "email-json"];
/// How long an auto-confirming endpoint is waited for by default (Terraform's default too).
const CONFIRMATION_TIMEOUT_MINUTES: u64 = 1;
/// How a subscription is polled until its endpoint confirmed it.
const CONFIRMED_POLL: Poll = Poll { share: 10, floor: Duration::from_millis(500), ceiling: Duration::from_secs(5) };
/// Why a pending subscription is forgotten rather than deleted.
const PENDING_NOT_DELETED: &str = "it is pending confirmation by its endpoint, which AWS refuses to unsubscribe; \
SNS deletes it within about three days";

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("topic_arn", AttrType::String, "the topic to subscribe to").force_new().identity(),
        Attribute::required("protocol", AttrType::Enum(PROTOCOLS), "how messages are delivered").force_new().identity(),
        Attribute::required("endpoint", AttrType::String, "where messages are delivered (a URL for https)")
            .force_new()
            .identity(),
        Attribute::optional(
            "raw_message_delivery",
            AttrType::Bool,
            "deliver the message body without the SNS envelope",
        ),
        Attribute::optional(
            "endpoint_auto_confirms",
            AttrType::Bool,
            "the endpoint confirms by itself: wait for it [default: false]",
        )
        .local(),
        Attribute::optional(
            "confirmation_timeout_in_minutes",
            AttrType::Int,
            "how long to wait for an auto-confirming endpoint [default: 1]",
        )
        .local(),
        Attribute::computed("arn", "the subscription ARN"),
        Attribute::computed("pending_confirmation", "true until the endpoint confirms the subscription"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    topic_arn: String,
    protocol: String,
    endpoint: String,
    raw_message_delivery: Option<bool>,
    endpoint_auto_confirms: Option<bool>,
    confirmation_timeout_in_minutes: Option<u32>,
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

    fn annotate(&self) -> Option<&dyn Annotate<SubscriptionPlanned, Live<Self>>> {
        Some(self)
    }

    fn validate(&self, this: &DeclaredAs<'_, SubscriptionPlanned>, _all: &[Declared]) -> Vec<Finding> {
        let timeout = &this.spec.confirmation_timeout_in_minutes;
        int_in_range(this.addr(), "confirmation_timeout_in_minutes", timeout, 1..=10_080, "minutes")
            .into_iter()
            .collect()
    }

    fn normalize(&self, spec: &mut SubscriptionPlanned) {
        // Unset and false are the same delivery mode.
        planned::unset_when(&mut spec.raw_message_delivery, &false);
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        prior: &Prior<Subscription, SubscriptionComputed>,
    ) -> Result<Option<(Subscription, SubscriptionComputed)>, ProviderError> {
        let Some(out) = attributes(aws, id).await? else { return Ok(None) };
        let get = |k: &str| out.get(k).cloned().unwrap_or_default();
        let raw = out.get("RawMessageDelivery").is_some_and(|v| v == "true");
        let spec = Subscription {
            topic_arn: get("TopicArn"),
            protocol: get("Protocol"),
            endpoint: get("Endpoint"),
            raw_message_delivery: (managed.has("raw_message_delivery") && raw).then_some(true),
            // Ours alone: AWS never sees them.
            endpoint_auto_confirms: prior.spec().and_then(|p| p.endpoint_auto_confirms),
            confirmation_timeout_in_minutes: prior.spec().and_then(|p| p.confirmation_timeout_in_minutes),
        };
        let pending = out.get("PendingConfirmation").is_some_and(|v| v == "true");
        Ok(Some((spec, SubscriptionComputed { arn: id.to_string(), pending_confirmation: pending.to_string() })))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Subscription,
        _owner: &Owner,
    ) -> Result<Created<SubscriptionComputed, Self::Spec>, ProviderError> {
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
        // As sent: the delivery mode is read only where the spec manages it.
        Ok(Created::new(arn.to_string(), computed).observed(spec.clone()))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Subscription,
        changed: &[SubscriptionField],
        _owner: &Owner,
    ) -> Result<Option<SubscriptionComputed>, ProviderError> {
        for &attr in changed {
            match attr {
                SubscriptionField::RawMessageDelivery => {
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
                // Ours alone: AWS never sees them.
                SubscriptionField::EndpointAutoConfirms | SubscriptionField::ConfirmationTimeoutInMinutes => {}
                SubscriptionField::TopicArn | SubscriptionField::Protocol | SubscriptionField::Endpoint => {
                    return Err(cannot_update(Self::NAME, attr.name()));
                }
            }
        }
        Ok(None)
    }

    async fn wait_ready(&self, aws: &Aws, id: &str, spec: &Subscription) -> Result<(), ProviderError> {
        if spec.endpoint_auto_confirms != Some(true) {
            return Ok(());
        }
        let minutes = spec.confirmation_timeout_in_minutes.map_or(CONFIRMATION_TIMEOUT_MINUTES, u64::from);
        let deadline = Duration::from_secs(minutes * 60);
        let look = || async {
            let pending = attributes(aws, id).await?.is_some_and(|a| is_pending(&a));
            Ok(if pending { Seen::Waiting } else { Seen::Done(()) })
        };
        let timed_out = |_| {
            ProviderError::new(
                "GetSubscriptionAttributes",
                "SubscriptionNotConfirmed",
                format!("{} did not confirm {id} within {minutes} minute(s)", spec.endpoint),
            )
        };
        poll::until(CONFIRMED_POLL, deadline, look, timed_out).await
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
        let Some(all) = subscriptions(aws, &spec.topic_arn).await? else { return Ok(None) };
        let ours = all.iter().find(|s| {
            s.protocol() == Some(spec.protocol.as_str())
                && s.endpoint() == Some(spec.endpoint.as_str())
                && s.subscription_arn().is_some_and(|a| a.starts_with("arn:"))
        });
        Ok(ours.and_then(|s| s.subscription_arn()).map(|arn| Found::Ours { id: arn.to_string() }))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Subscription, SubscriptionComputed>,
    ) -> Result<Deleted, ProviderError> {
        match attributes(aws, id).await? {
            None => return Ok(Deleted::Yes),
            Some(a) if is_pending(&a) => return Ok(Deleted::LeftToAws(PENDING_NOT_DELETED.into())),
            Some(_) => {}
        }
        let unsubscribed = aws.sns().await.unsubscribe().subscription_arn(id).send().await;
        match unsubscribed.map_err(|e| ProviderError::from_sdk("Unsubscribe", e)) {
            Ok(_) => Ok(Deleted::Yes),
            // Confirmation still pending after all (the read raced it): AWS keeps it.
            Err(e) if refused_as_pending(&e) => Ok(Deleted::LeftToAws(PENDING_NOT_DELETED.into())),
            Err(e) => Err(e),
        }
    }

    fn access(&self) -> Option<&dyn Access<SubscriptionPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

impl Annotate<SubscriptionPlanned, Live<Self>> for SnsSubscription {
    /// A subscription still pending confirmation cannot be deleted, only forgotten.
    fn annotate(&self, change: &ChangeView<'_, SubscriptionPlanned, Live<Self>>) -> Vec<Annotation> {
        let removed = matches!(change.stage, Stage::Destroy | Stage::Replace);
        let computed = change.live.and_then(|l| l.computed.as_ref());
        let pending = computed.is_some_and(|c| c.pending_confirmation == "true");
        (removed && pending)
            .then(|| Annotation::ForgottenNotDeleted { why: PENDING_NOT_DELETED.into() })
            .into_iter()
            .collect()
    }
}

#[async_trait]
impl Inventory for SnsSubscription {
    /// The topic, as the state recorded it.
    fn parent(&self, _id: &str, recorded: &Attrs) -> Option<Parent> {
        recorded.get("topic_arn").and_then(serde_json::Value::as_str).map(|t| Parent(t.to_string()))
    }

    async fn children(&self, aws: &Aws, parent: &Parent) -> Result<Option<Siblings>, ProviderError> {
        let topic = parent.0.as_str();
        let Some(all) = subscriptions(aws, topic).await? else { return Ok(None) };
        let children = all.iter().filter_map(|s| listed_child(topic, s)).collect();
        Ok(Some(Siblings { parent: format!("the topic {topic}"), children }))
    }
}

impl Access<SubscriptionPlanned> for SnsSubscription {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["sns:GetSubscriptionAttributes", "sns:ListSubscriptionsByTopic"],
            write: &["sns:Subscribe", "sns:SetSubscriptionAttributes"],
            delete: &["sns:Unsubscribe"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &SubscriptionPlanned, _scope: &ArnScope) -> Vec<String> {
        // Subscription ARNs are the topic's with an id appended.
        let topic = ArnScope::part(Some(spec.topic_arn.text()));
        vec![topic.clone(), format!("{topic}:*")]
    }

    fn policy_findings(&self, spec: &SubscriptionPlanned) -> Vec<(&'static str, String)> {
        match spec.protocol.known().map(String::as_str) {
            Some("https") | None => vec![],
            Some(other) => vec![(rules::HTTPS_SUBSCRIPTION, format!("delivers over {other}, not https"))],
        }
    }
}

/// What AWS lists in place of an ARN for a subscription its endpoint has not confirmed.
const LISTED_PENDING: &str = "PendingConfirmation";
/// What AWS lists for a moment in place of the ARN of a subscription just unsubscribed.
const LISTED_DELETED: &str = "Deleted";
/// Why an undeclared pending subscription is not drift.
const PENDING_INERT: &str = "pending confirmation: it receives nothing until its endpoint confirms it, \
cannot be unsubscribed, and SNS deletes it within about three days";

/// A subscription of `topic` as closed-world drift sees it. AWS lists one that is pending
/// confirmation without its ARN (`PendingConfirmation`): it is identified by its topic, protocol
/// and endpoint instead (the same key `Subscribe` answers by), and, when no resource of the
/// state has that key, shown as inert. One just unsubscribed (`Deleted`) is gone already.
fn listed_child(topic: &str, s: &aws_sdk_sns::types::Subscription) -> Option<Sibling> {
    let (protocol, endpoint) = (s.protocol().unwrap_or("?"), s.endpoint().unwrap_or("?"));
    let what = format!("{protocol} subscription to {endpoint}");
    match s.subscription_arn().unwrap_or_default() {
        arn if arn.starts_with("arn:") => Some(Sibling::new(arn, what)),
        LISTED_DELETED => None,
        listed => {
            let key = serde_json::json!({"topic_arn": topic, "protocol": protocol, "endpoint": endpoint});
            Some(Sibling {
                id: if listed.is_empty() { LISTED_PENDING.to_string() } else { listed.to_string() },
                what: format!("{what} (pending confirmation)"),
                identified_by: serde_json::from_value(key).ok(),
                inert: Some(PENDING_INERT.to_string()),
            })
        }
    }
}

/// Every subscription of the topic, confirmed or pending; `None` when the topic is gone.
async fn subscriptions(aws: &Aws, topic: &str) -> Result<Option<Vec<aws_sdk_sns::types::Subscription>>, ProviderError> {
    let sns = aws.sns().await;
    let listed = sns.list_subscriptions_by_topic().topic_arn(topic).into_paginator().items().send();
    match listed.try_collect().await.map_err(|e| ProviderError::from_sdk("ListSubscriptionsByTopic", e)) {
        Ok(all) => Ok(Some(all)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The subscription's attributes, or `None` if it does not exist.
async fn attributes(aws: &Aws, arn: &str) -> Result<Option<HashMap<String, String>>, ProviderError> {
    match aws.sns().await.get_subscription_attributes().subscription_arn(arn).send().await {
        Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
        Err(e) => {
            let e = ProviderError::from_sdk("GetSubscriptionAttributes", e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

fn is_pending(attributes: &HashMap<String, String>) -> bool {
    attributes.get("PendingConfirmation").is_some_and(|v| v == "true")
}

/// AWS's refusal to unsubscribe a subscription that is pending confirmation.
fn refused_as_pending(e: &ProviderError) -> bool {
    e.code == "InvalidParameter" && e.message.to_ascii_lowercase().contains("pending confirmation")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::ResourceAddr;

    #[test]
    fn awss_refusal_to_unsubscribe_a_pending_subscription_is_recognised() {
        // The message AWS sends (moto never does: it confirms at once).
        let e = ProviderError::new(
            "Unsubscribe",
            "InvalidParameter",
            "Invalid parameter: Cannot unsubscribe a subscription that is pending confirmation",
        );
        assert!(refused_as_pending(&e));
        assert!(!refused_as_pending(&ProviderError::new("Unsubscribe", "InvalidParameter", "Invalid ARN")));
    }

    fn listed(arn: &str) -> aws_sdk_sns::types::Subscription {
        aws_sdk_sns::types::Subscription::builder()
            .subscription_arn(arn)
            .protocol("https")
            .endpoint("https://hooks.example.test/x")
            .topic_arn("arn:aws:sns:us-east-1:123456789012:t")
            .build()
    }

    #[test]
    fn a_pending_subscription_listed_without_its_arn_is_identified_by_topic_protocol_and_endpoint() {
        // AWS lists an unconfirmed subscription as `PendingConfirmation`: it is matched to the
        // managed one by its key, never offered for deletion by that fake id, and inert.
        let topic = "arn:aws:sns:us-east-1:123456789012:t";
        let child = listed_child(topic, &listed("PendingConfirmation")).expect("listed");
        assert!(!child.has_id());
        assert!(child.inert.is_some());
        let key = child.identified_by.expect("a key");
        assert_eq!(key.get("endpoint"), Some(&serde_json::Value::from("https://hooks.example.test/x")));
        assert_eq!(key.get("topic_arn"), Some(&serde_json::Value::from(topic)));
        assert_eq!(key.get("protocol"), Some(&serde_json::Value::from("https")));
        let confirmed = listed_child(topic, &listed(&format!("{topic}:abc"))).expect("listed");
        assert!(confirmed.has_id() && confirmed.inert.is_none());
        assert_eq!(confirmed.id, format!("{topic}:abc"));
        assert!(listed_child(topic, &listed("Deleted")).is_none(), "just unsubscribed: gone");
    }

    #[test]
    fn destroying_a_pending_subscription_says_it_is_forgotten() {
        // The plan tells the reviewer before apply does it.
        let addr = ResourceAddr::new("sns_subscription", "s");
        let said = |pending: &str, stage: Stage| {
            let live: Attrs = serde_json::from_value(serde_json::json!({"arn": "a", "pending_confirmation": pending}))
                .expect("attrs");
            let view = ChangeView { addr: &addr, stage, live: Some(&live), desired: None };
            Annotate::annotate(&crate::provider::Typed(SnsSubscription), &view)
        };
        let forgotten = said("true", Stage::Destroy);
        assert!(matches!(forgotten.as_slice(), [Annotation::ForgottenNotDeleted { .. }]), "{forgotten:?}");
        assert!(forgotten[0].text(&addr).contains("forgotten, not deleted"));
        assert_eq!(said("true", Stage::Replace), forgotten, "a replacement forgets the old one too");
        assert_eq!(said("false", Stage::Destroy), vec![]);
        assert_eq!(said("true", Stage::Update), vec![]);
    }
}
