//! `route53_record`: a record set in a hosted zone, usually an alias (A/AAAA) to CloudFront.
//!
//! The id is `ZONE_ID/NAME/TYPE`. Names compare in lower case with a trailing dot, as Route53
//! returns them. Writes are UPSERTs that wait until the change is INSYNC, so sending one again
//! is harmless; a record set is found again by its name and type.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::attrs::found;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Deleted, FindReason, Found, Kind, Managed, NoComputed, Owner, ProviderError};
use crate::value::Attrs;

pub struct Route53Record;

const ALIAS: &[Attribute] = &[
    Attribute::required("name", AttrType::String, "the target's DNS name, e.g. a distribution's domain_name"),
    Attribute::required("zone_id", AttrType::String, "the target's hosted zone id"),
    Attribute::optional("evaluate_target_health", AttrType::Bool, "[default: false]"),
];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("zone_id", AttrType::String, "the hosted zone").force_new(),
        Attribute::required("name", AttrType::String, "the record name, e.g. assets.example.com").force_new(),
        Attribute::required("type", AttrType::Enum(&["A", "AAAA", "CNAME", "TXT", "MX", "NS"]), "the record type")
            .force_new(),
        Attribute::optional("alias", AttrType::Object(ALIAS), "an alias to an AWS resource (instead of records)"),
        Attribute::optional("ttl", AttrType::Int, "seconds, for plain records"),
        Attribute::optional("records", AttrType::List(&AttrType::String), "values, for plain records"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    zone_id: String,
    name: String,
    #[serde(rename = "type")]
    record_type: String,
    alias: Option<Alias>,
    ttl: Option<i64>,
    records: Option<Vec<String>>,
}

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize)]
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

#[async_trait]
impl Kind for Route53Record {
    const NAME: &'static str = "route53_record";
    type Spec = Record;
    type Computed = NoComputed;

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        if let Some(Value::String(name)) = attrs.get_mut("name") {
            *name = fqdn(name);
        }
        if let Some(Value::String(zone)) = attrs.get_mut("zone_id") {
            *zone = bare_zone_id(zone);
        }
        if let Some(Value::Object(alias)) = attrs.get_mut("alias") {
            if let Some(Value::String(name)) = alias.get_mut("name") {
                *name = fqdn(name);
            }
            if alias.get("evaluate_target_health") == Some(&Value::Bool(false)) {
                alias.remove("evaluate_target_health");
            }
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        _prior: Option<&Record>,
    ) -> Result<Option<(Record, NoComputed)>, ProviderError> {
        let (zone, name, rtype) = parse_id(id)?;
        let Some(set) = find_set(aws, zone, name, rtype).await? else { return Ok(None) };
        Ok(Some((record(zone, &set), NoComputed {})))
    }

    async fn create(&self, aws: &Aws, spec: &Record, _owner: &Owner) -> Result<Created<NoComputed>, ProviderError> {
        change(aws, &bare_zone_id(&spec.zone_id), ChangeAction::Upsert, record_set(spec)?).await?;
        Ok(Created::new(spec.id(), NoComputed {}))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Record,
        _changed: &[&str],
        _owner: &Owner,
    ) -> Result<Option<NoComputed>, ProviderError> {
        let (zone, _, _) = parse_id(id)?;
        change(aws, zone, ChangeAction::Upsert, record_set(spec)?).await?;
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
        let set = find_set(aws, &zone, &fqdn(&spec.name), &spec.record_type).await?;
        Ok(set.map(|_| Found::Ours { id: spec.id() }))
    }

    async fn delete(&self, aws: &Aws, id: &str) -> Result<Deleted, ProviderError> {
        let (zone, name, rtype) = parse_id(id)?;
        // A DELETE must repeat the record set exactly as it is now.
        match find_set(aws, zone, name, rtype).await? {
            Some(set) => change(aws, zone, ChangeAction::Delete, set).await.map(|()| Deleted::Yes),
            None => Ok(Deleted::Yes),
        }
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
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
    let got = aws
        .route53()
        .await
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(RrType::from(rtype))
        .max_items(1)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListResourceRecordSets", e));
    let Some(out) = found(got)? else { return Ok(None) };
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|s| fqdn(s.name()) == fqdn(name) && s.r#type().as_str() == rtype)
        .cloned())
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
    let (mut status, id) = (info.status().as_str().to_string(), info.id().to_string());
    let started = Instant::now();
    while status != "INSYNC" {
        let waited = started.elapsed();
        if waited > INSYNC_TIMEOUT {
            return Err(ProviderError::new(
                "GetChange",
                "ChangeTimeout",
                format!("change {id} not INSYNC after 10 minutes"),
            ));
        }
        tokio::time::sleep((waited / 10).clamp(Duration::from_millis(500), Duration::from_secs(10))).await;
        let got = route53.get_change().id(&id).send().await.map_err(|e| ProviderError::from_sdk("GetChange", e))?;
        status = got.change_info().map_or_else(|| "INSYNC".to_string(), |c| c.status().as_str().to_string());
    }
    Ok(())
}
