//! Who made a resource: the tags the engine writes on everything it creates, and how a kind
//! decides whether something it finds is the resource an interrupted create made.
//!
//! *Guarantees*: a resource found by a tag naming another address or state is never adopted;
//! one found by a natural key alone (a name, a route key) is adopted only when the engine has
//! reason to think its own earlier attempt made it (an open intent, or an attempt whose answer
//! was lost), never when the first attempt was refused because it existed, unless that attempt
//! continues a dead command's open intent (its create, in flight when it died, may be what
//! AWS refused the new one for).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::addr::ResourceAddr;

/// The tag naming the address a resource was created for.
pub const ADDRESS_TAG: &str = "cruddur-infra:address";
/// The tag naming the state (its lineage) that created the resource.
pub const LINEAGE_TAG: &str = "cruddur-infra:lineage";
/// The tag naming the stage (`--stage`) a resource belongs to; the main stack's carry none.
pub const STAGE_TAG: &str = "cruddur-infra:stage";

/// True for the tags the engine itself writes: they are not the spec's and never diffed.
pub fn is_engine_tag(key: &str) -> bool {
    key.starts_with("cruddur-infra:")
}

/// The identity of one create: what the engine tags the resource with, the idempotency token,
/// and when it was intended.
#[derive(Clone, Debug)]
pub struct Owner {
    pub addr: ResourceAddr,
    /// The lineage of the state that records the resource.
    pub lineage: String,
    /// This create's idempotency token (CloudFront's CallerReference); the same across the
    /// attempts of one create and across a crash, since the intent records it.
    pub token: String,
    /// When the intent was recorded (seconds since the Unix epoch).
    pub since: u64,
    /// The ids of the objects this create replaces, made first while they still exist (an
    /// authorizer a route refers to): a kind whose names are unique moves them out of the way.
    pub replacing: Vec<String>,
    /// The stage the resource belongs to (`--stage`); `None` for the main stack.
    pub stage: Option<String>,
}

impl Owner {
    /// The tags every taggable resource gets at creation (and keeps through updates).
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        let mut tags = vec![(ADDRESS_TAG, self.addr.to_string()), (LINEAGE_TAG, self.lineage.clone())];
        if let Some(stage) = &self.stage {
            tags.push((STAGE_TAG, stage.clone()));
        }
        tags
    }

    /// Whom a lost stage's resources are looked for as (`stages destroy` of a stage whose
    /// state is gone): the lineage died with the state, so a tagged resource is the stage's
    /// when its address and stage tags say so, whatever its lineage; an untagged one found by
    /// its natural key is taken (the caller checks it against the main stack and the stage).
    pub fn of_lost_stage(addr: ResourceAddr, stage: &str) -> Self {
        Owner {
            addr,
            lineage: String::new(),
            token: String::new(),
            since: 0,
            replacing: vec![],
            stage: Some(stage.to_string()),
        }
    }

    /// Whether this is a lost stage's owner ([`Owner::of_lost_stage`]): no lineage, no token.
    pub fn is_lost_stage(&self) -> bool {
        self.lineage.is_empty() && self.stage.is_some()
    }

    /// What a resource's tags say about who made it.
    pub fn judge_tags<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tagged {
        let (mut address, mut lineage, mut stage) = (None, None, None);
        for (k, v) in tags {
            match k {
                ADDRESS_TAG => address = Some(v.to_string()),
                LINEAGE_TAG => lineage = Some(v.to_string()),
                STAGE_TAG => stage = Some(v.to_string()),
                _ => {}
            }
        }
        // A lost stage's owner knows no lineage (see `of_lost_stage`): its stage decides.
        let lost_stage = self.is_lost_stage();
        match (address, lineage) {
            (None, None) => Tagged::Untagged,
            (Some(a), Some(l))
                if a == self.addr.to_string() && (l == self.lineage || lost_stage && stage == self.stage) =>
            {
                Tagged::Ours
            }
            (a, l) => Tagged::Other(format!(
                "it is tagged as {} of state {}",
                a.as_deref().unwrap_or("another resource"),
                l.as_deref().unwrap_or("(unknown)")
            )),
        }
    }

    /// The verdict on a resource whose creating call carries the ownership tags (so one of ours
    /// always has them): untagged means someone else made it.
    pub fn judge_tagged_at_create<'a>(&self, id: &str, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Found {
        match self.judge_tags(tags) {
            Tagged::Ours => Found::Ours { id: id.to_string() },
            Tagged::Other(why) => Found::NotOurs { id: id.to_string(), why },
            Tagged::Untagged => {
                Found::NotOurs { id: id.to_string(), why: "it does not carry the tags cruddur-infra writes".into() }
            }
        }
    }

    /// The verdict on a resource found by a natural key that carries no tags: ours only if
    /// our earlier attempt may have made it, and (when AWS tells) it was created after the intent.
    pub fn judge_untagged(&self, id: &str, reason: FindReason, created: Option<u64>) -> Found {
        // Clocks differ between this machine and AWS; a resource made this long before the
        // intent cannot be ours.
        const SKEW: u64 = 300;
        if reason == FindReason::Conflict {
            return Found::NotOurs {
                id: id.to_string(),
                why: "it existed before this apply tried to create it".into(),
            };
        }
        match created {
            Some(t) if t + SKEW < self.since => Found::NotOurs {
                id: id.to_string(),
                why: format!("it was created {} seconds before this create was started", self.since - t),
            },
            _ => Found::Ours { id: id.to_string() },
        }
    }
}

/// What a resource's ownership tags say.
#[derive(Debug, PartialEq)]
pub enum Tagged {
    Ours,
    /// Tagged for another address or state: the reason, for the message.
    Other(String),
    Untagged,
}

/// Why the engine is looking for a resource a create may have made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindReason {
    /// An intent left by an apply that died before recording the outcome of its create.
    Intent,
    /// An earlier attempt of this create failed without a clear answer (a lost response, a 5xx).
    Ambiguous,
    /// The first attempt was refused because the resource exists.
    Conflict,
}

/// What a kind's `find` found.
#[derive(Debug, PartialEq)]
pub enum Found {
    /// The resource this create made: adopt it.
    Ours { id: String },
    /// Something in the way that the engine did not make: never adopted.
    NotOurs { id: String, why: String },
}

/// Seconds since the Unix epoch, now.
pub fn now_epoch() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A resource AWS holds with a stage tag, as the Resource Groups Tagging API lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StagedInAws {
    pub arn: String,
    /// Its address tag: what the stage's state called it.
    pub address: Option<String>,
}

/// Every resource in the configured region tagged with a stage, by stage: what a stage whose
/// state is lost still holds. The Resource Groups Tagging API lists taggable resources of the
/// region it is asked in (buckets, functions, topics, log groups, APIs; CloudFront
/// distributions only when that region is us-east-1); IAM roles and the untaggable children
/// (permissions, policies, routes, records) go unlisted. AWS documents that it may still list
/// a resource for a while after it was deleted.
pub async fn staged_in_aws(
    aws: &super::Aws,
) -> Result<std::collections::BTreeMap<String, Vec<StagedInAws>>, super::ProviderError> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let client = aws.tagging().await;
    let mut out: std::collections::BTreeMap<String, Vec<StagedInAws>> = Default::default();
    let mut token: Option<String> = None;
    loop {
        let page = aws
            .retried(|| async {
                client
                    .get_resources()
                    .tag_filters(TagFilter::builder().key(STAGE_TAG).build())
                    .set_pagination_token(token.clone().filter(|t| !t.is_empty()))
                    .send()
                    .await
                    .map_err(|e| super::ProviderError::from_sdk("GetResources", e))
            })
            .await?;
        for r in page.resource_tag_mapping_list() {
            let tag = |key: &str| r.tags().iter().find(|t| t.key() == key).map(|t| t.value().to_string());
            let (Some(stage), Some(arn)) = (tag(STAGE_TAG), r.resource_arn()) else { continue };
            out.entry(stage).or_default().push(StagedInAws { arn: arn.to_string(), address: tag(ADDRESS_TAG) });
        }
        token = page.pagination_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            addr: ResourceAddr::new("iam_role", "r"),
            lineage: "L".into(),
            token: "t".into(),
            since: 10_000,
            replacing: vec![],
            stage: None,
        }
    }

    #[test]
    fn tags_decide_ownership_when_present() {
        // Our address and lineage: ours; any other address or lineage: not ours.
        let o = owner();
        let tags = o.tags();
        assert_eq!(o.judge_tags(tags.iter().map(|(k, v)| (*k, v.as_str()))), Tagged::Ours);
        assert!(matches!(o.judge_tags([(ADDRESS_TAG, "iam_role.r"), (LINEAGE_TAG, "other")]), Tagged::Other(_)));
        assert!(matches!(o.judge_tags([(ADDRESS_TAG, "iam_role.x"), (LINEAGE_TAG, "L")]), Tagged::Other(_)));
        assert_eq!(o.judge_tags([("app", "cruddur")]), Tagged::Untagged);
    }

    #[test]
    fn a_lost_stages_owner_takes_its_address_in_its_stage_whatever_the_lineage() {
        let lost = Owner::of_lost_stage(ResourceAddr::new("iam_role", "r"), "pr-2");
        let tagged = |addr: &'static str, stage: Option<&'static str>| {
            let mut tags = vec![(ADDRESS_TAG, addr), (LINEAGE_TAG, "any-lineage")];
            tags.extend(stage.map(|s| (STAGE_TAG, s)));
            lost.judge_tags(tags)
        };
        assert_eq!(tagged("iam_role.r", Some("pr-2")), Tagged::Ours);
        assert!(matches!(tagged("iam_role.r", Some("pr-3")), Tagged::Other(_)), "another stage's");
        assert!(matches!(tagged("iam_role.r", None), Tagged::Other(_)), "the main stack's");
        assert!(matches!(tagged("iam_role.x", Some("pr-2")), Tagged::Other(_)), "another address");
        // A known lineage still decides alone: a live stage never takes another state's.
        let live = Owner { stage: Some("pr-2".into()), ..owner() };
        assert!(matches!(
            live.judge_tags([(ADDRESS_TAG, "iam_role.r"), (LINEAGE_TAG, "other"), (STAGE_TAG, "pr-2")]),
            Tagged::Other(_)
        ));
    }

    #[test]
    fn an_untagged_find_is_ours_only_after_an_ambiguous_attempt_and_not_from_before_the_intent() {
        // A refused first attempt means it was there already; a find after a lost answer or a
        // crash adopts it, unless AWS says it is older than the intent.
        let o = owner();
        assert!(matches!(o.judge_untagged("x", FindReason::Conflict, None), Found::NotOurs { .. }));
        assert_eq!(o.judge_untagged("x", FindReason::Intent, None), Found::Ours { id: "x".into() });
        assert_eq!(o.judge_untagged("x", FindReason::Ambiguous, Some(10_010)), Found::Ours { id: "x".into() });
        assert!(matches!(o.judge_untagged("x", FindReason::Intent, Some(1_000)), Found::NotOurs { .. }));
    }
}
