//! `s3_bucket`: a bucket with its CORS rules, tags and public access block.
//!
//! The id is the bucket name. Renaming replaces the bucket (S3 cannot rename). Only the
//! settings the spec manages are read, one request each, concurrently.
//!
//! Creating is `CreateBucket` alone; CORS, tags and the public access block are separate S3
//! APIs, applied right after as an update. In us-east-1 S3 answers `CreateBucket` with success
//! for a bucket the account already owns, so the name is checked first: an existing bucket is
//! never mistaken for a new one. A bucket is recognised as ours by its ownership tags, or,
//! when a create died before tagging it, by being created after the create's intent.
//!
//! A bucket adopted from another region (the original stack's assets bucket may live anywhere)
//! is read and written in its own region: where it lives is recorded with it
//! (`bucket_regional_domain_name`), asked once with `GetBucketLocation` when it is adopted, and
//! learned again if S3 ever answers with a redirect to another region.
//!
//! S3 refuses to delete a bucket that holds objects (`BucketNotEmpty`): the error says how many
//! versions it holds. With `force_destroy: true` (a local setting, as in Terraform) every object
//! version and delete marker is deleted first, 1000 at a time.

use super::Fields;
use super::facets::{Access, Inventory};
use super::planned::{self, Case};
use crate::permissions::deployer::{ArnScope, Deployer};
use crate::permissions::rules;
use crate::provider::{Known, KnownValue};
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CorsConfiguration, CorsRule, CreateBucketConfiguration, Delete, ObjectIdentifier,
    PublicAccessBlockConfiguration, Tag, Tagging,
};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::ownership::{Tagged, is_engine_tag};
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::typed::cannot_update;
use super::{
    Aws, Created, Deleted, ErrorClass, FindReason, Found, Held, Kind, Managed, Owner, Planned, Prior, ProviderError,
};
use crate::value::Attrs;

pub struct S3Bucket;

/// The bucket settings that are separate S3 APIs, each read and written only when the spec sets it.
const SETTINGS: [&str; 3] = ["cors_rules", "tags", "public_access_block"];

const CORS_RULE: &[Attribute] = &[
    Attribute::optional("id", AttrType::String, "a name for the rule"),
    Attribute::required(
        "allowed_methods",
        AttrType::List(&AttrType::Enum(&["GET", "PUT", "POST", "DELETE", "HEAD"])),
        "HTTP methods the origins may use",
    ),
    Attribute::required(
        "allowed_origins",
        AttrType::List(&AttrType::String),
        "origins allowed to make cross-origin requests",
    ),
    Attribute::optional("allowed_headers", AttrType::List(&AttrType::String), "request headers allowed in a preflight"),
    Attribute::optional("expose_headers", AttrType::List(&AttrType::String), "response headers the browser may read"),
    Attribute::optional("max_age_seconds", AttrType::Int, "how long a browser may cache the preflight response"),
];

const PUBLIC_ACCESS_BLOCK: &[Attribute] = &[
    Attribute::optional("block_public_acls", AttrType::Bool, "reject requests that grant public ACLs"),
    Attribute::optional("ignore_public_acls", AttrType::Bool, "ignore public ACLs on the bucket and its objects"),
    Attribute::optional("block_public_policy", AttrType::Bool, "reject bucket policies that grant public access"),
    Attribute::optional("restrict_public_buckets", AttrType::Bool, "restrict access to buckets with public policies"),
];

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the globally unique bucket name").force_new().identity().named(super::names::NameRule::Bucket),
        Attribute::optional(
            "cors_rules",
            AttrType::List(&AttrType::Object(CORS_RULE)),
            "CORS rules, in the order S3 evaluates them",
        ),
        Attribute::optional("tags", AttrType::Map(&AttrType::String), "tags on the bucket"),
        Attribute::optional(
            "public_access_block",
            AttrType::Object(PUBLIC_ACCESS_BLOCK),
            "the bucket's public access block",
        ),
        Attribute::optional(
            "force_destroy",
            AttrType::Bool,
            "destroy deletes every object version first; without it a bucket holding objects is refused [default: false]",
        )
        .local(),
        Attribute::computed("arn", "arn:PARTITION:s3:::NAME"),
        Attribute::computed("bucket_regional_domain_name", "NAME.s3.REGION.amazonaws.com, for CloudFront origins"),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    name: String,
    cors_rules: Option<Vec<Cors>>,
    tags: Option<BTreeMap<String, String>>,
    public_access_block: Option<PublicAccessBlock>,
    force_destroy: Option<bool>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Planned)]
#[serde(deny_unknown_fields)]
struct Cors {
    id: Option<String>,
    allowed_methods: Vec<String>,
    allowed_origins: Vec<String>,
    allowed_headers: Option<Vec<String>>,
    expose_headers: Option<Vec<String>>,
    max_age_seconds: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Planned)]
#[serde(deny_unknown_fields)]
struct PublicAccessBlock {
    #[serde(default)]
    block_public_acls: bool,
    #[serde(default)]
    ignore_public_acls: bool,
    #[serde(default)]
    block_public_policy: bool,
    #[serde(default)]
    restrict_public_buckets: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BucketComputed {
    arn: String,
    bucket_regional_domain_name: String,
}

impl BucketComputed {
    /// What AWS computes for a bucket in `region` (whose partition its ARN and domain name).
    fn of(name: &str, region: &str) -> Self {
        let partition = super::partition::of_region(region);
        Self {
            arn: format!("arn:{}:s3:::{name}", partition.name),
            bucket_regional_domain_name: format!("{name}.s3.{region}.{}", partition.dns_suffix),
        }
    }
}

#[async_trait]
impl Kind for S3Bucket {
    const NAME: &'static str = "s3_bucket";
    type Spec = Bucket;
    type Computed = BucketComputed;
    const LIFECYCLE: crate::provider::Lifecycle = crate::provider::Lifecycle {
        lost_when_deleted: Some("the objects it holds"),
        ..crate::provider::Lifecycle::DEFAULT
    };

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn normalize(&self, spec: &mut BucketPlanned) {
        if let Some(rules) = spec.cors_rules.known_mut() {
            rules.iter_mut().filter_map(Known::known_mut).for_each(normalize_cors_rule);
        }
        planned::unset_when(&mut spec.force_destroy, &false);
        // S3 reports all four flags; a flag left out is false (the model's default), and all
        // false is no block.
        let no_block = Known::Known(false);
        if spec.public_access_block.known().is_some_and(|b| {
            [&b.block_public_acls, &b.ignore_public_acls, &b.block_public_policy, &b.restrict_public_buckets]
                .into_iter()
                .all(|flag| *flag == no_block)
        }) {
            spec.public_access_block = None;
        }
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        managed: &Managed<'_>,
        prior: &Prior<Bucket, BucketComputed>,
    ) -> Result<Option<(Bucket, BucketComputed)>, ProviderError> {
        // Where the bucket lives: recorded with it; asked once when it is adopted.
        let recorded = prior.computed.as_ref().and_then(|c| region_of(id, &c.bucket_regional_domain_name));
        let region = match recorded {
            Some(region) => region,
            None => match aws.retried(|| bucket_location(aws, id)).await? {
                Some(region) => region,
                None => return Ok(None),
            },
        };
        aws.note_bucket_region(id, &region);
        let s3 = &aws.s3_in(&region).await;
        // A bucket whose settings are read needs no HeadBucket: each read of a missing bucket
        // fails with NoSuchBucket. One request saved per bucket.
        if !SETTINGS.iter().any(|a| managed.has(a)) && !aws.retried(|| exists(s3, id)).await? {
            return Ok(None);
        }
        // Each setting's call is retried on its own: a throttled one does not ask the others again.
        let settings = tokio::try_join!(
            async {
                if managed.has("cors_rules") { aws.retried(|| read_cors(s3, id)).await.map(Some) } else { Ok(None) }
            },
            async {
                if managed.has("tags") {
                    aws.retried(|| read_tags(s3, id)).await.map(|t| Some(spec_tags(t)))
                } else {
                    Ok(None)
                }
            },
            async {
                if managed.has("public_access_block") {
                    aws.retried(|| read_public_access_block(s3, id)).await
                } else {
                    Ok(None)
                }
            },
        );
        let (cors_rules, tags, public_access_block) = match settings {
            Ok(read) => read,
            Err(e) if e.code == "NoSuchBucket" => return Ok(None),
            Err(e) => return Err(e),
        };
        // force_destroy is the engine's alone: AWS never sees it.
        let force_destroy = prior.spec().and_then(|p| p.force_destroy);
        let bucket = Bucket { name: id.to_string(), cors_rules, tags, public_access_block, force_destroy };
        Ok(Some((bucket, BucketComputed::of(id, &region))))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Bucket,
        _owner: &Owner,
    ) -> Result<Created<BucketComputed, Self::Spec>, ProviderError> {
        let s3 = aws.s3().await;
        let region = aws.region().await;
        let mut req = s3.create_bucket().bucket(&spec.name);
        if region == "us-east-1" {
            // us-east-1 answers 200 for a bucket this account owns already (and refuses an
            // explicit location constraint).
            if exists(s3, &spec.name).await? {
                return Err(ProviderError::new(
                    "CreateBucket",
                    "BucketAlreadyOwnedByYou",
                    format!("a bucket named {} exists in this account already", spec.name),
                ));
            }
        } else {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        req.send().await.map_err(|e| ProviderError::from_sdk("CreateBucket", e))?;
        aws.note_bucket_region(&spec.name, &region);
        // The settings are the spec's once the update right after has written them; each is
        // read only where the spec manages it.
        let created = Created::new(spec.name.clone(), BucketComputed::of(&spec.name, &region));
        Ok(created.deferring(&SETTINGS, &["tags"]).observed(spec.clone()))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Bucket,
        changed: &[BucketField],
        owner: &Owner,
    ) -> Result<Option<BucketComputed>, ProviderError> {
        in_bucket_region(aws, id, move |s3| async move {
            for &attr in changed {
                match attr {
                    BucketField::CorsRules => put_cors(&s3, id, spec.cors_rules.as_deref().unwrap_or_default()).await?,
                    BucketField::Tags => put_tags(&s3, id, spec.tags.as_ref(), owner).await?,
                    BucketField::PublicAccessBlock => {
                        put_public_access_block(&s3, id, spec.public_access_block.as_ref()).await?
                    }
                    BucketField::ForceDestroy => {}
                    BucketField::Name => return Err(cannot_update(Self::NAME, attr.name())),
                }
            }
            Ok(None)
        })
        .await
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Bucket,
        owner: &Owner,
        reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let name = spec.name.as_str();
        // Where the bucket lives: an adopted bucket may be in another region than the command.
        let head = in_bucket_region(aws, name, |s3| async move {
            s3.head_bucket().bucket(name).send().await.map_err(|e| ProviderError::from_sdk("HeadBucket", e))
        })
        .await;
        let s3 = aws.s3_for(name).await;
        match head {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) if e.status == Some(403) => {
                let why = "the name belongs to a bucket of another account".to_string();
                return Ok(Some(Found::NotOurs { id: name.to_string(), why }));
            }
            Err(e) => return Err(e),
        }
        let tags = read_tags(&s3, name).await?;
        match owner.judge_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Tagged::Ours => Ok(Some(Found::Ours { id: name.to_string() })),
            Tagged::Other(why) => Ok(Some(Found::NotOurs { id: name.to_string(), why })),
            Tagged::Untagged => {
                let listed = s3.list_buckets().send().await.map_err(|e| ProviderError::from_sdk("ListBuckets", e))?;
                let created = listed
                    .buckets()
                    .iter()
                    .find(|b| b.name() == Some(name))
                    .and_then(|b| b.creation_date())
                    .and_then(|d| u64::try_from(d.secs()).ok());
                Ok(Some(owner.judge_untagged(name, reason, created)))
            }
        }
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        prior: &Prior<Bucket, BucketComputed>,
    ) -> Result<Deleted, ProviderError> {
        in_bucket_region(aws, id, move |s3| async move { delete_in(&s3, id, prior.spec()).await }).await
    }

    fn access(&self) -> Option<&dyn Access<BucketPlanned>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

#[async_trait]
impl Inventory for S3Bucket {
    /// CORS rules, when the spec leaves `cors_rules` unset (set ones are compared as an
    /// attribute): one added in the console is drift.
    async fn held(&self, aws: &Aws, id: &str, recorded: &Attrs) -> Result<Vec<Held>, ProviderError> {
        if recorded.contains_key("cors_rules") {
            return Ok(vec![]);
        }
        let s3 = aws.s3_for(id).await;
        let rules = match read_cors(&s3, id).await {
            Err(e) if e.is_not_found() => return Ok(vec![]),
            other => other?,
        };
        Ok(rules
            .iter()
            .map(|r| {
                let name = r.id.as_deref().map(|id| format!(" {id}")).unwrap_or_default();
                let what =
                    format!("CORS rule{name} ({} from {})", r.allowed_methods.join(","), r.allowed_origins.join(","));
                // S3 removes a bucket's CORS rules all at once.
                Held::removable("cors", what)
            })
            .collect())
    }

    /// Deletes the bucket's CORS configuration (the spec leaves it unset).
    async fn remove_held(&self, aws: &Aws, id: &str, key: &str) -> Result<(), ProviderError> {
        if key != "cors" {
            return Err(ProviderError::unexpected("DeleteBucketCors", format!("`{key}` names nothing a bucket holds")));
        }
        let deleted = aws.s3_for(id).await.delete_bucket_cors().bucket(id).send().await;
        match deleted.map_err(|e| ProviderError::from_sdk("DeleteBucketCors", e)) {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Access<BucketPlanned> for S3Bucket {
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &[
                "s3:ListBucket",
                "s3:GetBucketLocation",
                "s3:GetBucketCORS",
                "s3:GetBucketTagging",
                "s3:GetBucketPublicAccessBlock",
                "s3:ListAllMyBuckets",
            ],
            write: &["s3:CreateBucket", "s3:PutBucketCORS", "s3:PutBucketTagging", "s3:PutBucketPublicAccessBlock"],
            delete: &["s3:DeleteBucket", "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            unscoped: &["s3:ListAllMyBuckets"],
        }
    }

    fn deployer_arns(&self, spec: &BucketPlanned, scope: &ArnScope) -> Vec<String> {
        let name = ArnScope::part(Some(spec.name.text()));
        vec![scope.arn("s3", "", "", &name), scope.arn("s3", "", "", &format!("{name}/*"))]
    }

    fn policy_findings(&self, spec: &BucketPlanned) -> Vec<(&'static str, String)> {
        let on = Known::Known(true);
        let pab = spec.public_access_block.known();
        let settings = pab.map(|p| {
            [
                ("block_public_acls", &p.block_public_acls),
                ("ignore_public_acls", &p.ignore_public_acls),
                ("block_public_policy", &p.block_public_policy),
                ("restrict_public_buckets", &p.restrict_public_buckets),
            ]
        });
        let off: Vec<&str> = match settings {
            Some(settings) => settings.into_iter().filter(|(_, v)| **v != on).map(|(name, _)| name).collect(),
            None => PUBLIC_ACCESS_BLOCK.iter().map(|a| a.name).collect(),
        };
        if off.is_empty() {
            return vec![];
        }
        vec![(rules::PUBLIC_ACCESS_BLOCK, format!("public_access_block leaves {} off", off.join(", ")))]
    }
}

/// Deletes the bucket with a client of its region (emptying it first with `force_destroy`).
async fn delete_in(s3: &aws_sdk_s3::Client, id: &str, prior: Option<&Bucket>) -> Result<Deleted, ProviderError> {
    let refused = match delete_bucket(s3, id).await {
        Err(e) if e.code == "BucketNotEmpty" => e,
        other => return other.map(|()| Deleted::Yes),
    };
    if prior.and_then(|p| p.force_destroy) != Some(true) {
        let held = match versions(s3, id, None, None).await {
            Ok((page, more)) if more => format!("more than {} object versions", page.len()),
            Ok((page, _)) => format!("{} object version(s) and delete marker(s)", page.len()),
            Err(_) => "objects".to_string(),
        };
        let message = format!(
            "{id} holds {held}: empty it, or set force_destroy: true (and apply) to have destroy delete them ({})",
            refused.message
        );
        return Err(ProviderError { message, ..refused });
    }
    empty(s3, id).await?;
    delete_bucket(s3, id).await?;
    Ok(Deleted::Yes)
}

/// The region in a bucket's regional domain name (`NAME.s3.REGION.amazonaws.com`).
fn region_of(bucket: &str, domain: &str) -> Option<String> {
    let region = domain.strip_prefix(bucket)?.strip_prefix(".s3.")?.strip_suffix(".amazonaws.com")?;
    (!region.is_empty() && !region.contains('.')).then(|| region.to_string())
}

/// Where a bucket lives, `None` if there is no such bucket. S3 names us-east-1 by no location
/// at all, and eu-west-1 by the legacy `EU`.
pub(super) async fn bucket_location(aws: &Aws, bucket: &str) -> Result<Option<String>, ProviderError> {
    let got = aws.s3().await.get_bucket_location().bucket(bucket).send().await;
    let out = match got.map_err(|e| ProviderError::from_sdk("GetBucketLocation", e)) {
        Ok(out) => out,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(region) => region.to_string(),
    }))
}

/// S3's answer to a request about a bucket sent to another region than the bucket's.
fn wrong_region(e: &ProviderError) -> bool {
    e.code == "PermanentRedirect"
        || e.status == Some(301)
        || (e.code == "AuthorizationHeaderMalformed" && e.message.contains("region"))
}

/// Runs `call` with the S3 client of `bucket`'s region as this command knows it. If S3 answers
/// that the bucket lives elsewhere, asks where, remembers it, and runs `call` there.
pub async fn in_bucket_region<'a, T, F, Fut>(aws: &'a Aws, bucket: &'a str, call: F) -> Result<T, ProviderError>
where
    F: Fn(aws_sdk_s3::Client) -> Fut + Send + Sync + 'a,
    Fut: std::future::Future<Output = Result<T, ProviderError>> + Send + 'a,
{
    match call(aws.s3_for(bucket).await).await {
        Err(e) if wrong_region(&e) => match bucket_location(aws, bucket).await? {
            Some(region) => {
                aws.note_bucket_region(bucket, &region);
                call(aws.s3_in(&region).await).await
            }
            None => Err(e),
        },
        other => other,
    }
}

async fn delete_bucket(s3: &aws_sdk_s3::Client, name: &str) -> Result<(), ProviderError> {
    s3.delete_bucket().bucket(name).send().await.map_err(|e| ProviderError::from_sdk("DeleteBucket", e))?;
    Ok(())
}

/// One page (up to 1000) of the bucket's object versions and delete markers, from the markers
/// given, and whether there are more.
async fn versions(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key_marker: Option<String>,
    version_marker: Option<String>,
) -> Result<(Vec<ObjectIdentifier>, bool), ProviderError> {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .set_key_marker(key_marker)
        .set_version_id_marker(version_marker)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("ListObjectVersions", e))?;
    let invalid =
        |e: aws_sdk_s3::error::BuildError| ProviderError::new("DeleteObjects", "InvalidObject", e.to_string());
    let versions = out.versions().iter().map(|v| (v.key(), v.version_id()));
    let markers = out.delete_markers().iter().map(|m| (m.key(), m.version_id()));
    let page = versions
        .chain(markers)
        .map(|(key, version)| {
            ObjectIdentifier::builder()
                .set_key(key.map(str::to_string))
                .set_version_id(version.map(str::to_string))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    Ok((page, out.is_truncated() == Some(true)))
}

/// Deletes every object version and delete marker in the bucket, a page of up to 1000 at a
/// time. Listing again from the start each time: what is deleted no longer shows.
async fn empty(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), ProviderError> {
    loop {
        let (page, _) = versions(s3, bucket, None, None).await?;
        if page.is_empty() {
            return Ok(());
        }
        let invalid =
            |e: aws_sdk_s3::error::BuildError| ProviderError::new("DeleteObjects", "InvalidObject", e.to_string());
        let delete = Delete::builder().set_objects(Some(page)).quiet(true).build().map_err(invalid)?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| ProviderError::from_sdk("DeleteObjects", e))?;
        if let Some(e) = out.errors().first() {
            let code = e.code().unwrap_or("DeleteObjectsFailed");
            return Err(ProviderError::new("DeleteObjects", code, e.message().unwrap_or_default()));
        }
    }
}

/// Whether the bucket exists and this account may use it. HEAD answers carry no body, so S3's
/// refusals come as bare statuses: 403 is a bucket of another account (bucket names are global),
/// 301 one in another region; both are named for what they are.
async fn exists(s3: &aws_sdk_s3::Client, name: &str) -> Result<bool, ProviderError> {
    match s3.head_bucket().bucket(name).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = ProviderError::from_sdk("HeadBucket", e);
            match e.status {
                _ if e.is_not_found() => Ok(false),
                Some(403) => Err(ProviderError::new(
                    "HeadBucket",
                    "BucketAlreadyExists",
                    format!("the bucket name {name} is taken by another AWS account (names are global): choose another"),
                )
                .with_class(ErrorClass::Fatal)),
                Some(301) => Err(ProviderError::new(
                    "HeadBucket",
                    "BucketAlreadyOwnedByYou",
                    format!("a bucket named {name} exists in another region (names are global): adopt it with import_id, or choose another name"),
                )
                .with_class(ErrorClass::Fatal)),
                _ => Err(e),
            }
        }
    }
}

/// Methods are upper case, header names compare case-insensitively, and the order of
/// methods, origins and headers within a rule carries no meaning.
fn normalize_cors_rule(rule: &mut CorsPlanned) {
    let lists = [
        (Some(&mut rule.allowed_methods), Case::Upper),
        (Some(&mut rule.allowed_origins), Case::AsWritten),
        (rule.allowed_headers.as_mut(), Case::Lower),
        (rule.expose_headers.as_mut(), Case::Lower),
    ];
    for (list, case) in lists {
        if let Some(items) = list.and_then(Known::known_mut) {
            case.spell_sorted(items);
            items.dedup();
        }
    }
}

async fn read_cors(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<Cors>, ProviderError> {
    let out = match s3.get_bucket_cors().bucket(bucket).send().await {
        Ok(out) => out,
        Err(e) => {
            let e = ProviderError::from_sdk("GetBucketCors", e);
            return if e.code == "NoSuchCORSConfiguration" { Ok(vec![]) } else { Err(e) };
        }
    };
    Ok(out
        .cors_rules()
        .iter()
        .map(|r| Cors {
            id: r.id().map(str::to_string),
            allowed_methods: r.allowed_methods().to_vec(),
            allowed_origins: r.allowed_origins().to_vec(),
            allowed_headers: Some(r.allowed_headers().to_vec()),
            expose_headers: Some(r.expose_headers().to_vec()),
            max_age_seconds: r.max_age_seconds(),
        })
        .collect())
}

async fn put_cors(s3: &aws_sdk_s3::Client, bucket: &str, rules: &[Cors]) -> Result<(), ProviderError> {
    if rules.is_empty() {
        let deleted = s3.delete_bucket_cors().bucket(bucket).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteBucketCors", e))?;
        return Ok(());
    }
    let invalid =
        |e: aws_sdk_s3::error::BuildError| ProviderError::new("PutBucketCors", "InvalidCorsRule", e.to_string());
    let mut config = CorsConfiguration::builder();
    for r in rules {
        let rule = CorsRule::builder()
            .set_id(r.id.clone())
            .set_allowed_methods(Some(r.allowed_methods.clone()))
            .set_allowed_origins(Some(r.allowed_origins.clone()))
            .set_allowed_headers(r.allowed_headers.clone().filter(|v| !v.is_empty()))
            .set_expose_headers(r.expose_headers.clone().filter(|v| !v.is_empty()))
            .set_max_age_seconds(r.max_age_seconds)
            .build()
            .map_err(invalid)?;
        config = config.cors_rules(rule);
    }
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(config.build().map_err(invalid)?)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutBucketCors", e))?;
    Ok(())
}

/// Every tag on the bucket, the engine's own included.
async fn read_tags(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<BTreeMap<String, String>, ProviderError> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()),
        Err(e) => {
            let e = ProviderError::from_sdk("GetBucketTagging", e);
            if e.code == "NoSuchTagSet" || e.code == "NoSuchTagSetError" { Ok(BTreeMap::new()) } else { Err(e) }
        }
    }
}

/// The tags the spec manages: all but the engine's ownership tags.
fn spec_tags(mut tags: BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.retain(|k, _| !is_engine_tag(k));
    tags
}

/// Makes the bucket's tags exactly the spec's plus the ownership tags (S3 replaces the set).
async fn put_tags(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    tags: Option<&BTreeMap<String, String>>,
    owner: &Owner,
) -> Result<(), ProviderError> {
    let invalid =
        |e: aws_sdk_s3::error::BuildError| ProviderError::new("PutBucketTagging", "InvalidTag", e.to_string());
    let ownership = owner.tags();
    let all = tags
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(ownership.iter().map(|(k, v)| (*k, v.as_str())));
    let tag_set =
        all.map(|(k, v)| Tag::builder().key(k).value(v).build()).collect::<Result<Vec<_>, _>>().map_err(invalid)?;
    let tagging = Tagging::builder().set_tag_set(Some(tag_set)).build().map_err(invalid)?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutBucketTagging", e))?;
    Ok(())
}

async fn read_public_access_block(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Option<PublicAccessBlock>, ProviderError> {
    match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => Ok(out.public_access_block_configuration().map(|c| PublicAccessBlock {
            block_public_acls: c.block_public_acls().unwrap_or(false),
            ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
            block_public_policy: c.block_public_policy().unwrap_or(false),
            restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
        })),
        Err(e) => {
            let e = ProviderError::from_sdk("GetPublicAccessBlock", e);
            if e.code == "NoSuchPublicAccessBlockConfiguration" { Ok(None) } else { Err(e) }
        }
    }
}

async fn put_public_access_block(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    pab: Option<&PublicAccessBlock>,
) -> Result<(), ProviderError> {
    let Some(pab) = pab else {
        match s3.delete_public_access_block().bucket(bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let e = ProviderError::from_sdk("DeletePublicAccessBlock", e);
                // Already without a block: done.
                return if e.code == "NoSuchPublicAccessBlockConfiguration" { Ok(()) } else { Err(e) };
            }
        }
    };
    let config = PublicAccessBlockConfiguration::builder()
        .block_public_acls(pab.block_public_acls)
        .ignore_public_acls(pab.ignore_public_acls)
        .block_public_policy(pab.block_public_policy)
        .restrict_public_buckets(pab.restrict_public_buckets)
        .build();
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(config)
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("PutPublicAccessBlock", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ResourceKind, Typed};
    use serde_json::json;

    #[test]
    fn cors_rules_differing_only_in_case_and_order_normalise_equal() {
        // Lower-case methods, mixed-case headers and reordered origins are the same rule to S3.
        let mut a: Attrs = serde_json::from_value(json!({"name": "b", "cors_rules": [{"allowed_methods": ["put", "GET"], "allowed_origins": ["https://b", "https://a"], "allowed_headers": ["Content-Type"], "expose_headers": []}]})).expect("object");
        let mut b: Attrs = serde_json::from_value(json!({"name": "b", "cors_rules": [{"allowed_methods": ["GET", "PUT"], "allowed_origins": ["https://a", "https://b"], "allowed_headers": ["content-type"]}]})).expect("object");
        Typed(S3Bucket).normalize(&mut a);
        Typed(S3Bucket).normalize(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn all_false_public_access_block_equals_none() {
        // S3 without a block and a block of four false flags mean the same thing.
        let mut a: Attrs = serde_json::from_value(json!({"name": "b", "public_access_block": {"block_public_acls": false, "ignore_public_acls": false, "block_public_policy": false, "restrict_public_buckets": false}})).expect("object");
        Typed(S3Bucket).normalize(&mut a);
        assert_eq!(a.get("public_access_block"), None);
    }

    #[test]
    fn a_buckets_region_is_read_back_from_its_regional_domain_name() {
        // The recorded domain name says where the bucket lives, dots in its name or not.
        assert_eq!(
            region_of("assets.cruddur.com", "assets.cruddur.com.s3.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("b", "b.s3.us-east-1.amazonaws.com").as_deref(), Some("us-east-1"));
        assert_eq!(region_of("b", "other.s3.us-east-1.amazonaws.com"), None);
    }

    #[test]
    fn the_engines_own_tags_are_not_the_specs() {
        // Ownership tags on the bucket never show as a difference in `tags`.
        let tags = BTreeMap::from([
            ("app".to_string(), "cruddur".to_string()),
            ("cruddur-infra:address".to_string(), "s3_bucket.a".to_string()),
        ]);
        assert_eq!(spec_tags(tags), BTreeMap::from([("app".to_string(), "cruddur".to_string())]));
    }

    #[test]
    fn a_missing_bucket_name_is_an_error_not_an_empty_string() {
        // The typed model refuses attributes without their required values.
        let err = crate::provider::typed::decode::<Bucket>("s3_bucket", &Attrs::new()).expect_err("refused");
        assert!(err.to_string().contains("missing field `name`"), "{err}");
    }
}
