//! `route53_record`: a record set in a hosted zone, usually an alias (A/AAAA) to CloudFront.
//!
//! The id is `ZONE_ID/NAME/TYPE`. Names compare in lower case with a trailing dot, as Route53
//! returns them. Writes are UPSERTs that wait until the change is INSYNC.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde_json::{Value, json};

use super::attrs::{boolean, build, found, int, string, strings};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::{Aws, Created, Managed, ProviderError, ResourceKind};
use crate::addr::ResourceAddr;
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

/// How long Route53 may take to apply a change everywhere.
const INSYNC_TIMEOUT: Duration = Duration::from_secs(10 * 60);

#[async_trait]
impl ResourceKind for Route53Record {
    fn kind(&self) -> &'static str {
        "route53_record"
    }

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, attrs: &mut Attrs) {
        super::normalize::by_schema(&SCHEMA, attrs);
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
        _prior: &Attrs,
    ) -> Result<Option<Attrs>, ProviderError> {
        let (zone, name, rtype) = parse_id(id)?;
        let Some(set) = find(aws, zone, name, rtype).await? else { return Ok(None) };
        Ok(Some(attributes(zone, &set)))
    }

    async fn create(&self, aws: &Aws, _addr: &ResourceAddr, desired: &Attrs) -> Result<Created, ProviderError> {
        let zone = bare_zone_id(string(desired, "zone_id"));
        let set = record_set(desired)?;
        change(aws, &zone, ChangeAction::Upsert, set).await?;
        let id = format!("{zone}/{}/{}", fqdn(string(desired, "name")), string(desired, "type"));
        Ok(Created { id, attrs: Attrs::new() })
    }

    async fn update(&self, aws: &Aws, id: &str, desired: &Attrs, _changed: &[&str]) -> Result<Attrs, ProviderError> {
        let (zone, _, _) = parse_id(id)?;
        change(aws, zone, ChangeAction::Upsert, record_set(desired)?).await?;
        Ok(Attrs::new())
    }

    async fn delete(&self, aws: &Aws, id: &str, _prior: &Attrs) -> Result<(), ProviderError> {
        let (zone, name, rtype) = parse_id(id)?;
        // A DELETE must repeat the record set exactly as it is now.
        match find(aws, zone, name, rtype).await? {
            Some(set) => change(aws, zone, ChangeAction::Delete, set).await,
            None => Ok(()),
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

async fn find(aws: &Aws, zone: &str, name: &str, rtype: &str) -> Result<Option<ResourceRecordSet>, ProviderError> {
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

fn attributes(zone: &str, set: &ResourceRecordSet) -> Attrs {
    let alias = set.alias_target().map_or(Value::Null, |a| {
        Value::Object(build([
            ("name", json!(a.dns_name())),
            ("zone_id", json!(a.hosted_zone_id())),
            ("evaluate_target_health", json!(a.evaluate_target_health())),
        ]))
    });
    let records: Vec<&str> = set.resource_records().iter().map(|r| r.value()).collect();
    build([
        ("zone_id", json!(zone)),
        ("name", json!(set.name())),
        ("type", json!(set.r#type().as_str())),
        ("alias", alias),
        ("ttl", set.ttl().map_or(Value::Null, |t| json!(t))),
        ("records", if records.is_empty() { Value::Null } else { json!(records) }),
    ])
}

fn record_set(desired: &Attrs) -> Result<ResourceRecordSet, ProviderError> {
    let invalid = |e: aws_sdk_route53::error::BuildError| {
        ProviderError::new("ChangeResourceRecordSets", "InvalidInput", e.to_string())
    };
    let mut set =
        ResourceRecordSet::builder().name(fqdn(string(desired, "name"))).r#type(RrType::from(string(desired, "type")));
    if let Some(alias) = desired.get("alias").and_then(Value::as_object) {
        set = set.alias_target(
            AliasTarget::builder()
                .dns_name(string(alias, "name"))
                .hosted_zone_id(string(alias, "zone_id"))
                .evaluate_target_health(boolean(alias, "evaluate_target_health").unwrap_or(false))
                .build()
                .map_err(invalid)?,
        );
    } else {
        let records = strings(desired.get("records"))
            .into_iter()
            .map(|v| ResourceRecord::builder().value(v).build().map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        set = set.set_ttl(int(desired, "ttl").or(Some(300))).set_resource_records(Some(records));
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
    let mut delay = Duration::from_millis(500);
    while status != "INSYNC" {
        if started.elapsed() > INSYNC_TIMEOUT {
            return Err(ProviderError::new(
                "GetChange",
                "ChangeTimeout",
                format!("change {id} not INSYNC after 10 minutes"),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
        let got = route53.get_change().id(&id).send().await.map_err(|e| ProviderError::from_sdk("GetChange", e))?;
        status = got.change_info().map_or_else(|| "INSYNC".to_string(), |c| c.status().as_str().to_string());
    }
    Ok(())
}
