//! `route53_record`: a record set in a hosted zone, usually an alias (A/AAAA) to CloudFront.
//!
//! The id is `ZONE_ID/NAME/TYPE`. Names compare in lower case with a trailing dot and with
//! Route53's octal escapes (`\052` for `*`) decoded, as Route53 returns them.
//!
//! A record set is created with `CREATE`, never `UPSERT`: an existing record of that name and
//! type (made by hand, or by another tool) is not silently taken over. If one exists and equals
//! what the spec says, it is adopted; otherwise the apply stops naming it, unless the spec says
//! `allow_overwrite: true`, in which case it is replaced with `UPSERT` (and the plan says so).
//! Updates are UPSERTs. Every change is waited on until INSYNC.

use super::Fields;
use super::facets::{Access, Annotate, Annotation, ChangeView, Inventory, Parent, Stage};
use super::planned;
use super::{Planned, Sibling, Siblings};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::provider::{DeclaredAs, KnownValue, Live};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde::{Deserialize, Serialize};

use serde_with::skip_serializing_none;

use super::attrs::found;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{
    Aws, Created, Deleted, ErrorClass, FindReason, Found, Kind, Managed, NoComputed, Owner, Prior, ProviderError,
};
use super::{Declared, Finding, int_in_range};
use crate::poll::{self, Poll, Seen};
use crate::value::Attrs;

pub struct Route53Record;

const ALIAS: &[Attribute] = &[
    Attribute::required("name", AttrType::String, "the target's DNS name, e.g. a distribution's domain_name"),
    Attribute::required("zone_id", AttrType::String, "the target's hosted zone id"),
    Attribute::optional("evaluate_target_health", AttrType::Bool, "[default: false]"),
];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("zone_id", AttrType::String, "the hosted zone").force_new().identity(),
        Attribute::required("name", AttrType::String, "the record name, e.g. assets.example.com")
            .force_new()
            .identity()
            .named(super::names::NameRule::Dns),
        Attribute::required("type", AttrType::Enum(&["A", "AAAA", "CNAME", "TXT", "MX", "NS"]), "the record type")
            .force_new()
            .identity(),
        Attribute::optional("alias", AttrType::Object(ALIAS), "an alias to an AWS resource (instead of records)"),
        Attribute::optional("ttl", AttrType::Int, "seconds, for plain records"),
        Attribute::optional("records", AttrType::List(&AttrType::String), "values, for plain records"),
        Attribute::optional(
            "allow_overwrite",
            AttrType::Bool,
            "take over a record set of this name and type that exists already [default: false]",
        )
        .local(),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Record {
    zone_id: String,
    name: String,
    #[serde(rename = "type")]
    record_type: String,
    alias: Option<Alias>,
    ttl: Option<i64>,
    records: Option<Vec<String>>,
    allow_overwrite: Option<bool>,
}

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Planned)]
#[serde(deny_unknown_fields)]
struct Alias {
    name: String,
    zone_id: String,
    evaluate_target_health: Option<bool>,
}

impl Record {
    fn id(&self) -> String {
        format!("{}/{}/{}", bare_zone_id(&self.zone_id), fqdn(&self.name), self.record_type)
    }
}

/// How long Route53 may take to apply a change everywhere.
const INSYNC_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How a change is polled until `INSYNC` (Route53 takes seconds to a minute).
const INSYNC_POLL: Poll = Poll { share: 10, floor: Duration::from_millis(500), ceiling: Duration::from_secs(10) };

#[async_trait]
impl Kind for Route53Record {
    const NAME: &'static str = "route53_record";
    type Spec = Record;
    type Computed = NoComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn annotate(&self) -> Option<&dyn Annotate<RecordPlanned, Live<Self>>> {
        Some(self)
    }

    fn normalize(&self, spec: &mut RecordPlanned) {
        planned::unset_when(&mut spec.allow_overwrite, &false);
        if let Some(records) = spec.records.known_mut() {
            planned::sort_by_text(records);
        }
        if let Some(name) = spec.name.known_mut() {
            *name = fqdn(name);
        }
        if let Some(zone) = spec.zone_id.known_mut() {
            *zone = bare_zone_id(zone);
        }
        if let Some(alias) = spec.alias.known_mut() {
            if let Some(name) = alias.name.known_mut() {
                *name = fqdn(name);
            }
            planned::unset_when(&mut alias.evaluate_target_health, &false);
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        prior: &Prior<Record, NoComputed>,
    ) -> Result<Option<(Record, NoComputed)>, ProviderError> {
        let (zone, name, rtype) = parse_id(id)?;
        let Some(set) = find_set(aws, zone, name, rtype).await? else { return Ok(None) };
        let mut live = record(zone, &set);
        // Ours alone: AWS never sees it.
        live.allow_overwrite = prior.spec().and_then(|p| p.allow_overwrite);
        Ok(Some((live, NoComputed {})))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Record,
        _owner: &Owner,
    ) -> Result<Created<NoComputed, Self::Spec>, ProviderError> {
        let action = if spec.allow_overwrite == Some(true) { ChangeAction::Upsert } else { ChangeAction::Create };
        let set = record_set(spec)?;
        // Route 53 holds the set as sent (the TTL default included).
        let observed = record(&bare_zone_id(&spec.zone_id), &set);
        change(aws, &bare_zone_id(&spec.zone_id), action, set).await.map_err(|e| {
            // "Tried to create resource record set [...] but it already exists"
            if e.code == "InvalidChangeBatch" && e.message.contains("already exists") {
                e.with_class(ErrorClass::AlreadyExists)
            } else {
                e
            }
        })?;
        Ok(Created::new(spec.id(), NoComputed {}).observed(observed))
    }

    fn validate(&self, this: &DeclaredAs<'_, RecordPlanned>, _all: &[Declared]) -> Vec<Finding> {
        let mut out = Vec::new();
        let spec = &this.spec;
        if spec.alias.is_some() {
            let set = [("records", spec.records.is_some()), ("ttl", spec.ttl.is_some())];
            for attr in set.into_iter().filter(|(_, set)| *set).map(|(attr, _)| attr) {
                out.push(
                    Finding::at(attr, format!("{} is an alias: it takes no {attr}", this.addr()))
                        .help("an alias answers with its target's addresses; remove records and ttl, or the alias"),
                );
            }
        } else if spec.records.is_none() {
            out.push(Finding::on_resource(format!("{} has neither alias nor records", this.addr())));
        }
        out.extend(int_in_range(this.addr(), "ttl", &spec.ttl, 0..=2_147_483_647, "seconds"));
        out
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Record,
        changed: &[RecordField],
        _owner: &Owner,
    ) -> Result<Option<NoComputed>, ProviderError> {
        let (zone, _, _) = parse_id(id)?;
        // allow_overwrite is the engine's alone: changing it changes nothing in AWS.
        if changed.iter().any(|c| *c != RecordField::AllowOverwrite) {
            change(aws, zone, ChangeAction::Upsert, record_set(spec)?).await?;
        }
        Ok(None)
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Record,
        _owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let zone = bare_zone_id(&spec.zone_id);
        let Some(set) = find_set(aws, &zone, &fqdn(&spec.name), &spec.record_type).await? else { return Ok(None) };
        let live = record(&zone, &set);
        Ok(Some(if same_records(&live, spec) || spec.allow_overwrite == Some(true) {
            // What this create would have made: adopting it changes nothing.
            Found::Ours { id: spec.id() }
        } else {
            Found::NotOurs {
                id: spec.id(),
                why: format!(
                    "a {} record set of that name exists with other values; set allow_overwrite: true to take it over",
                    spec.record_type
                ),
            }
        }))
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Prior<Record, NoComputed>) -> Result<Deleted, ProviderError> {
        let (zone, name, rtype) = parse_id(id)?;
        // A DELETE must repeat the record set exactly as it is now.
        match find_set(aws, zone, name, rtype).await? {
            Some(set) => change(aws, zone, ChangeAction::Delete, set).await.map(|()| Deleted::Yes),
            None => Ok(Deleted::Yes),
        }
    }

    fn access(&self) -> Option<&dyn Access<RecordPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

impl Annotate<RecordPlanned, Live<Self>> for Route53Record {
    /// `allow_overwrite` takes over a record set; destroying it deletes it, nothing is put back.
    fn annotate(&self, change: &ChangeView<'_, RecordPlanned, Live<Self>>) -> Vec<Annotation> {
        let allowed = change.desired.and_then(|d| d.allow_overwrite.known()) == Some(&true);
        (change.stage == Stage::Create && allowed)
            .then(|| Annotation::TakesOver { what: "a record set of this name and type".into(), put_back: false })
            .into_iter()
            .collect()
    }
}

#[async_trait]
impl Inventory for Route53Record {
    /// The record sets under the same name: a name the spec owns has no record it does not
    /// declare (an AAAA or a TXT added by hand).
    /// The name in its zone (`ZONE/NAME`), from the id.
    fn parent(&self, id: &str, _recorded: &Attrs) -> Option<Parent> {
        parse_id(id).ok().map(|(zone, name, _)| Parent(format!("{zone}/{name}")))
    }

    async fn children(&self, aws: &Aws, parent: &Parent) -> Result<Option<Siblings>, ProviderError> {
        let (zone, name) = parent.0.split_once('/').ok_or_else(|| {
            ProviderError::unexpected("ListResourceRecordSets", format!("`{}` names no zone and name", parent.0))
        })?;
        // Every type a name can hold fits in one page.
        let Some(sets) = sets_from(aws, zone, name, None, 20).await? else { return Ok(None) };
        let children = sets
            .iter()
            .filter(|s| fqdn(s.name()) == fqdn(name))
            .map(|s| {
                let rtype = s.r#type().as_str();
                Sibling::new(format!("{zone}/{}/{rtype}", fqdn(name)), format!("{rtype} record {}", fqdn(name)))
            })
            .collect();
        Ok(Some(Siblings { parent: format!("the name {} in zone {zone}", fqdn(name)), children }))
    }
}

impl Access<RecordPlanned> for Route53Record {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &["route53:ListResourceRecordSets", "route53:GetChange"],
            write: &["route53:ChangeResourceRecordSets"],
            delete: &["route53:ChangeResourceRecordSets"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &RecordPlanned, scope: &ArnScope) -> Vec<String> {
        let zone = ArnScope::part(Some(spec.zone_id.text()));
        vec![scope.arn("route53", "", "", &format!("hostedzone/{zone}")), scope.arn("route53", "", "", "change/*")]
    }
}

/// A name as Route53 compares it: lower case, one trailing dot, its `\DDD` octal escapes
/// decoded (Route53 returns `*.example.com` as `\052.example.com`).
fn fqdn(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    let mut rest = name.trim_end_matches('.');
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let digits = rest.get(i + 1..i + 4).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        match digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out.make_ascii_lowercase();
    out.push('.');
    out
}

/// Whether a live record set holds what the spec asks for (names compared as Route53 does).
fn same_records(live: &Record, spec: &Record) -> bool {
    let alias = |r: &Record| {
        r.alias.as_ref().map(|a| (fqdn(&a.name), a.zone_id.clone(), a.evaluate_target_health.unwrap_or(false)))
    };
    let records = |r: &Record| {
        let mut v = r.records.clone().unwrap_or_default();
        v.sort();
        v
    };
    let ttl = |r: &Record| if r.alias.is_some() { None } else { r.ttl.or(Some(300)) };
    alias(live) == alias(spec) && records(live) == records(spec) && ttl(live) == ttl(spec)
}

fn bare_zone_id(zone: &str) -> String {
    zone.trim_start_matches("/hostedzone/").to_string()
}

fn parse_id(id: &str) -> Result<(&str, &str, &str), ProviderError> {
    let mut parts = id.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(zone), Some(name), Some(rtype)) => Ok((zone, name, rtype)),
        _ => Err(ProviderError::new("ListResourceRecordSets", "InvalidId", format!("`{id}` is not ZONE/NAME/TYPE"))),
    }
}

async fn find_set(aws: &Aws, zone: &str, name: &str, rtype: &str) -> Result<Option<ResourceRecordSet>, ProviderError> {
    let this = |s: &ResourceRecordSet| fqdn(s.name()) == fqdn(name) && s.r#type().as_str() == rtype;
    // One listing from the name on holds all its types: a refresh reads the A and AAAA records
    // of one name with one call (see `Aws::read_once`).
    let key = format!("ListResourceRecordSets:{zone}:{}", fqdn(name));
    let listed = aws.read_once(&key, || sets_from(aws, zone, name, None, NAME_SETS)).await?;
    let Some(sets) = listed else { return Ok(None) };
    if let Some(set) = sets.iter().find(|s| this(s)) {
        return Ok(Some(set.clone()));
    }
    // A name with more sets than one listing holds (weighted or latency records): ask for the type.
    if sets.len() < NAME_SETS as usize {
        return Ok(None);
    }
    let Some(sets) = sets_from(aws, zone, name, Some(rtype), 1).await? else { return Ok(None) };
    Ok(sets.into_iter().find(this))
}

/// How many record sets one listing of a name asks for: more than one name has types.
const NAME_SETS: i32 = 20;

/// Up to `max` record sets of the zone in its order, from `name` (and `rtype`) on; `None` when
/// the zone is gone.
async fn sets_from(
    aws: &Aws,
    zone: &str,
    name: &str,
    rtype: Option<&str>,
    max: i32,
) -> Result<Option<Vec<ResourceRecordSet>>, ProviderError> {
    let got = aws
        .route53()
        .await
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .set_start_record_type(rtype.map(RrType::from))
        .max_items(max)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListResourceRecordSets", e));
    Ok(found(got)?.map(|out| out.resource_record_sets().to_vec()))
}

fn record(zone: &str, set: &ResourceRecordSet) -> Record {
    let records: Vec<String> = set.resource_records().iter().map(|r| r.value().to_string()).collect();
    Record {
        zone_id: zone.to_string(),
        name: set.name().to_string(),
        record_type: set.r#type().as_str().to_string(),
        alias: set.alias_target().map(|a| Alias {
            name: a.dns_name().to_string(),
            zone_id: a.hosted_zone_id().to_string(),
            evaluate_target_health: Some(a.evaluate_target_health()),
        }),
        ttl: set.ttl(),
        records: (!records.is_empty()).then_some(records),
        allow_overwrite: None,
    }
}

fn record_set(spec: &Record) -> Result<ResourceRecordSet, ProviderError> {
    let invalid = |e: aws_sdk_route53::error::BuildError| {
        ProviderError::new("ChangeResourceRecordSets", "InvalidInput", e.to_string())
    };
    let mut set = ResourceRecordSet::builder().name(fqdn(&spec.name)).r#type(RrType::from(spec.record_type.as_str()));
    if let Some(alias) = &spec.alias {
        set = set.alias_target(
            AliasTarget::builder()
                .dns_name(&alias.name)
                .hosted_zone_id(&alias.zone_id)
                .evaluate_target_health(alias.evaluate_target_health.unwrap_or(false))
                .build()
                .map_err(invalid)?,
        );
    } else {
        let records = spec
            .records
            .iter()
            .flatten()
            .map(|v| ResourceRecord::builder().value(v).build().map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        set = set.set_ttl(spec.ttl.or(Some(300))).set_resource_records(Some(records));
    }
    set.build().map_err(invalid)
}

/// Sends one change and waits until Route53 reports it INSYNC.
async fn change(aws: &Aws, zone: &str, action: ChangeAction, set: ResourceRecordSet) -> Result<(), ProviderError> {
    let invalid = |e: aws_sdk_route53::error::BuildError| {
        ProviderError::new("ChangeResourceRecordSets", "InvalidInput", e.to_string())
    };
    let route53 = aws.route53().await;
    let batch = ChangeBatch::builder()
        .changes(Change::builder().action(action).resource_record_set(set).build().map_err(invalid)?)
        .build()
        .map_err(invalid)?;
    let out = route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ChangeResourceRecordSets", e))?;
    let Some(info) = out.change_info() else { return Ok(()) };
    if info.status().as_str() == "INSYNC" {
        return Ok(());
    }
    let id = info.id();
    let look = || async {
        let got = route53.get_change().id(id).send().await.map_err(|e| ProviderError::from_sdk("GetChange", e))?;
        let insync = got.change_info().is_none_or(|c| c.status().as_str() == "INSYNC");
        Ok(if insync { Seen::Done(()) } else { Seen::Waiting })
    };
    let timed_out =
        |_| ProviderError::new("GetChange", "ChangeTimeout", format!("change {id} not INSYNC after 10 minutes"));
    // A change is PENDING for a while: the first look waits a pause too.
    tokio::time::sleep(INSYNC_POLL.pause(Duration::ZERO)).await;
    poll::until(INSYNC_POLL, INSYNC_TIMEOUT, look, timed_out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_compare_equal_to_their_plain_form() {
        // Route53 returns * as \052, and names without their trailing dot or case.
        assert_eq!(fqdn("\\052.Example.com"), "*.example.com.");
        assert_eq!(fqdn("*.example.com."), "*.example.com.");
        assert_eq!(fqdn("a\\100b.example.com"), "a@b.example.com.");
        assert_eq!(fqdn("odd\\x.example.com"), "odd\\x.example.com.");
    }

    fn rec(value: serde_json::Value) -> Record {
        serde_json::from_value(value).expect("record")
    }

    #[test]
    fn an_existing_record_is_ours_to_adopt_only_when_it_holds_what_the_spec_says() {
        // Same alias target (spelled differently): equal. Another target, or other values: not.
        let spec = rec(serde_json::json!({"zone_id": "Z", "name": "assets.example.com", "type": "A",
            "alias": {"name": "d1.cloudfront.net", "zone_id": "Z2FDTNDATAQYW2"}}));
        let live = rec(serde_json::json!({"zone_id": "Z", "name": "assets.example.com.", "type": "A",
            "alias": {"name": "D1.cloudfront.net.", "zone_id": "Z2FDTNDATAQYW2", "evaluate_target_health": false}}));
        assert!(same_records(&live, &spec));
        let other = rec(serde_json::json!({"zone_id": "Z", "name": "assets.example.com.", "type": "A",
            "alias": {"name": "d2.cloudfront.net.", "zone_id": "Z2FDTNDATAQYW2"}}));
        assert!(!same_records(&other, &spec));
        let plain = rec(
            serde_json::json!({"zone_id": "Z", "name": "assets.example.com.", "type": "A", "ttl": 300, "records": ["1.2.3.4"]}),
        );
        assert!(!same_records(&plain, &spec));
    }
}
