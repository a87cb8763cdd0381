//! `lambda_function`: a function deployed from a zip artifact, served through its `live` alias.
//!
//! The id is the function name; renaming replaces the function. The artifact's base64 SHA-256
//! (`code_sha256`, derived at plan time) is compared with the `CodeSha256` of the version `live`
//! serves, so code is uploaded only when it changed, and what the plan compares is what runs.
//! `CreateFunction` carries everything, the ownership tags included; the first version and the
//! alias follow as the create's deferred update. Every update makes `$LATEST` what the spec
//! says, publishes it and points `live` at it ([`live`]): the same steps whatever the plan
//! listed, so an update interrupted anywhere is finished by running it again. A new role is not assumable by Lambda for a few seconds after IAM creates it: that
//! error is classed as propagating, which the engine waits out. Dependents wait until the
//! function is `Active` and its last update `Successful` ([`Kind::wait_ready`]); an update
//! first waits for one still in progress (an interrupted apply, a concurrent deploy).

use crate::permissions::deployer::{ArnScope, Deployer};
use crate::provider::Fields;
use crate::provider::facets::{Access, Annotate, Annotation, Artifact, ChangeView, Inventory, Parent, Stage};
use crate::provider::{DeclaredAs, KnownValue, Live};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::poll::{self, Seen};

use async_trait::async_trait;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, FunctionConfiguration, Runtime};
use aws_smithy_runtime_api::client::waiters::error::WaiterError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_with::skip_serializing_none;

use super::attrs::opt_string;
use super::int_in_range;
use super::schema::{AttrType, Attribute, ResourceSchema};
use super::typed::cannot_update;
use super::{
    Aws, Created, Declared, Deleted, ErrorClass, FindReason, Finding, Found, Held, Kind, Managed, Owner, Planned,
    Prior, ProviderError,
};
use crate::build::{self as artifacts, PrepareError, code_sha256};
use crate::value::Attrs;

pub mod live;
mod rollback;

pub struct LambdaFunction;

const ARCHITECTURES: &[&str] = &["x86_64", "arm64"];

/// Environment variables Lambda sets itself and refuses in a function's configuration.
const RESERVED_ENVIRONMENT: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// The runtime a function runs on when the spec names none: Amazon Linux 2023, glibc 2.34.
const DEFAULT_RUNTIME: &str = "provided.al2023";

static SCHEMA: ResourceSchema = ResourceSchema {
    attributes: &[
        Attribute::required("name", AttrType::String, "the function name")
            .force_new()
            .identity()
            .named(crate::provider::names::NameRule::Function),
        Attribute::required("role", AttrType::String, "ARN of the execution role"),
        Attribute::optional("runtime", AttrType::String, "the runtime [default: provided.al2023]"),
        Attribute::optional("handler", AttrType::String, "the handler [default: bootstrap]"),
        Attribute::optional(
            "architecture",
            AttrType::Enum(ARCHITECTURES),
            "x86_64 or arm64 (Graviton) [default: x86_64]",
        ),
        Attribute::optional("memory_size", AttrType::Int, "memory in MB [default: 128]"),
        Attribute::optional("timeout", AttrType::Int, "timeout in seconds [default: 3]"),
        Attribute::optional("environment", AttrType::Map(&AttrType::String), "environment variables"),
        Attribute::optional(
            "source",
            AttrType::String,
            "a cargo package (lambdas/<crate>) built and packaged by plan and apply",
        )
        .local(),
        Attribute::optional(
            "zip_file",
            AttrType::String,
            "a ready deployment zip, relative to the working directory (instead of source)",
        )
        .local(),
        Attribute::optional(
            "allow_dev_build",
            AttrType::Bool,
            "false refuses code built with --build-profile dev (for production stacks) [default: true]",
        )
        .local(),
        Attribute::derived("code_sha256", "base64 SHA-256 of the zip, compared with the deployed CodeSha256"),
        Attribute::derived(
            "build_profile",
            "release or dev: the cargo profile that built the code from source (--build-profile)",
        ),
        Attribute::optional(
            "keep_versions",
            AttrType::Int,
            "published versions kept for rollback; older ones are deleted, never one an alias serves [default: 5]",
        )
        .local(),
        Attribute::computed("arn", "the function ARN (unqualified: invokes $LATEST)"),
        Attribute::computed("invoke_arn", "the ARN API Gateway uses to invoke $LATEST"),
        Attribute::computed("version", "the published version the live alias serves"),
        Attribute::computed("live_arn", "the ARN of the live alias: what S3 notifications should invoke"),
        Attribute::computed("live_invoke_arn", "the ARN API Gateway uses to invoke the live alias"),
        Attribute::computed(
            "rolled_back_from",
            "the version `rollback` moved live away from, while live serves the older one",
        ),
    ],
};

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize, Fields, Planned)]
#[serde(deny_unknown_fields)]
pub struct Function {
    name: String,
    role: String,
    runtime: Option<String>,
    handler: Option<String>,
    architecture: Option<String>,
    memory_size: Option<i32>,
    timeout: Option<i32>,
    environment: Option<BTreeMap<String, String>>,
    source: Option<String>,
    zip_file: Option<String>,
    allow_dev_build: Option<bool>,
    keep_versions: Option<i32>,
    code_sha256: Option<String>,
    build_profile: Option<String>,
}

impl Function {
    fn runtime(&self) -> Runtime {
        Runtime::from(self.runtime.as_deref().unwrap_or(DEFAULT_RUNTIME))
    }
    fn handler(&self) -> &str {
        self.handler.as_deref().unwrap_or("bootstrap")
    }
    fn architecture(&self) -> Architecture {
        Architecture::from(self.architecture.as_deref().unwrap_or("x86_64"))
    }
    fn environment(&self) -> Environment {
        let vars = self.environment.clone().map(|m| m.into_iter().collect());
        Environment::builder().set_variables(vars).build()
    }
    /// The zip to upload (prepare put its path in `zip_file` for a `source`).
    fn zip(&self) -> Result<Vec<u8>, ProviderError> {
        let path = self.zip_file.as_deref().ok_or_else(|| {
            ProviderError::invalid_attributes(LambdaFunction::NAME, "no zip_file: the artifact was not prepared")
        })?;
        read_zip(path)
    }
}

impl Function {
    /// The function as AWS describes it: `c` is the configuration of the version `live` serves
    /// (`serving`), or of `$LATEST` when nothing is live; `prior` gives what AWS never sees.
    fn described(
        c: &FunctionConfiguration,
        id: &str,
        serving: bool,
        prior: &Prior<Function, FunctionComputed>,
    ) -> (Function, FunctionComputed) {
        let code_sha256 = c.code_sha256().filter(|_| serving);
        let version = c.version().filter(|_| serving).map(str::to_string);
        let spec = Function {
            name: c.function_name().unwrap_or(id).to_string(),
            role: c.role().unwrap_or_default().to_string(),
            runtime: c.runtime().map(|r| r.as_str().to_string()),
            handler: c.handler().map(str::to_string),
            architecture: Some(c.architectures().first().map_or("x86_64", |a| a.as_str()).to_string()),
            memory_size: c.memory_size(),
            timeout: c.timeout(),
            environment: Some(variables(c)),
            // The artifact's source and path are ours alone; AWS knows only its hash.
            source: prior.spec().and_then(|p| p.source.clone()),
            zip_file: prior.spec().and_then(|p| p.zip_file.clone()),
            allow_dev_build: prior.spec().and_then(|p| p.allow_dev_build),
            keep_versions: prior.spec().and_then(|p| p.keep_versions),
            code_sha256: code_sha256.map(str::to_string),
            // The version we published says which profile built it. Failing that (a version
            // published by an older engine), our record of deploying this very code does; a
            // record without a profile is from an engine that built release only.
            build_profile: live::build_profile_of(c.description().filter(|_| serving)).or_else(|| {
                prior
                    .spec()
                    .filter(|p| code_sha256.is_some() && p.code_sha256.as_deref() == code_sha256)
                    .and_then(|p| p.build_profile.clone().or_else(|| p.source.as_ref().map(|_| "release".to_string())))
            }),
        };
        let mut computed = FunctionComputed::of(c.function_arn().unwrap_or_default(), version);
        // A rollback is remembered while live still serves the version it chose.
        let rolled_back = prior.computed.as_ref().filter(|p| p.version.is_some() && p.version == computed.version);
        computed.rolled_back_from = rolled_back.and_then(|p| p.rolled_back_from.clone());
        (spec, computed)
    }
}

#[skip_serializing_none]
#[derive(Debug, Serialize, Deserialize)]
pub struct FunctionComputed {
    arn: String,
    invoke_arn: String,
    version: Option<String>,
    live_arn: String,
    live_invoke_arn: String,
    /// Always written (null when live serves what apply published), so that an apply after a
    /// rollback replaces the recorded value instead of keeping it.
    #[serialize_always]
    rolled_back_from: Option<String>,
}

impl FunctionComputed {
    /// From any ARN of the function (a version's or an alias's is cut to the function's).
    fn of(arn: &str, version: Option<String>) -> Self {
        let arn = arn.split(':').take(7).collect::<Vec<_>>().join(":");
        let live_arn = format!("{arn}:{}", live::ALIAS);
        Self {
            invoke_arn: invoke_arn(&arn),
            live_invoke_arn: invoke_arn(&live_arn),
            arn,
            live_arn,
            version,
            rolled_back_from: None,
        }
    }
}

/// How long a function may take to become Active or finish an update.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// The parts of a function's configuration the engine reads, from an answer that carries them
/// under the same names as `FunctionConfiguration` (GetFunctionConfiguration, CreateFunction).
macro_rules! configuration {
    ($out:expr) => {{
        let out = $out;
        FunctionConfiguration::builder()
            .set_function_name(out.function_name)
            .set_function_arn(out.function_arn)
            .set_role(out.role)
            .set_runtime(out.runtime)
            .set_handler(out.handler)
            .set_architectures(out.architectures)
            .set_memory_size(out.memory_size)
            .set_timeout(out.timeout)
            .set_environment(out.environment)
            .set_code_sha256(out.code_sha256)
            .set_version(out.version)
            .set_description(out.description)
            .set_state(out.state)
            .set_last_update_status(out.last_update_status)
            .build()
    }};
}

/// Whether an attribute changes in place: `UpdateFunctionConfiguration` sets the
/// configuration, `UpdateFunctionCode` the code and its architecture, and a local input AWS
/// never sees (a new path to the same code) changes nothing there. A new name is a new function.
fn changes_in_place(field: FunctionField) -> bool {
    use FunctionField as F;
    match field {
        F::Role | F::Runtime | F::Handler | F::MemorySize | F::Timeout | F::Environment => true,
        F::CodeSha256 | F::Architecture => true,
        F::Source | F::ZipFile | F::AllowDevBuild | F::BuildProfile | F::KeepVersions => true,
        F::Name => false,
    }
}

#[async_trait]
impl Kind for LambdaFunction {
    const NAME: &'static str = "lambda_function";
    type Spec = Function;
    type Computed = FunctionComputed;
    const LIFECYCLE: crate::provider::Lifecycle = crate::provider::Lifecycle {
        lost_when_deleted: Some("its published versions (what rollback serves)"),
        ..crate::provider::Lifecycle::DEFAULT
    };

    fn schema(&self) -> &'static ResourceSchema {
        &SCHEMA
    }

    fn validate(&self, this: &DeclaredAs<'_, FunctionPlanned>, _all: &[Declared]) -> Vec<Finding> {
        let mut out = Vec::new();
        let (spec, addr) = (&this.spec, this.addr());
        match (spec.source.is_some(), spec.zip_file.is_some()) {
            (true, true) => out.push(
                Finding::at("zip_file", format!("{addr} gives both source and zip_file"))
                    .help("keep source (a cargo package the engine builds) or zip_file (a ready zip), not both"),
            ),
            (false, false) => out.push(
                Finding::on_resource(format!("{addr} has no code: give source or zip_file"))
                    .help("source: lambdas/<crate> builds a cargo package; zip_file: a ready deployment zip"),
            ),
            _ => {}
        }
        out.extend(int_in_range(addr, "memory_size", &spec.memory_size, 128..=10240, "MB"));
        out.extend(int_in_range(addr, "timeout", &spec.timeout, 1..=900, "seconds"));
        out.extend(int_in_range(addr, "keep_versions", &spec.keep_versions, 1..=100, "versions"));
        if let Some(vars) = spec.environment.known() {
            for name in vars.keys().filter(|k| RESERVED_ENVIRONMENT.contains(&k.as_str())) {
                out.push(
                    Finding::at("environment", format!("environment of {addr} sets {name}, which Lambda reserves"))
                        .help("Lambda sets it itself and refuses a function that sets it: choose another name"),
                );
            }
        }
        out
    }

    async fn read(
        &self,
        aws: &Aws,
        id: &str,
        _managed: &Managed<'_>,
        prior: &Prior<Function, FunctionComputed>,
    ) -> Result<Option<(Function, FunctionComputed)>, ProviderError> {
        let lambda = aws.lambda().await;
        // What runs is the version `live` serves. Without the alias (a create interrupted
        // before it, or someone deleted it) nothing runs through it: the code is reported as
        // none, so the plan updates the function, which publishes and points the alias.
        let (c, serving) = match aws.retried(|| live::configuration(lambda, id)).await? {
            Some(c) => (c, true),
            None => match aws.retried(|| get_function(aws, id)).await?.and_then(|out| out.configuration) {
                Some(c) => (c, false),
                None => return Ok(None),
            },
        };
        Ok(Some(Function::described(&c, id, serving, prior)))
    }

    async fn create(
        &self,
        aws: &Aws,
        spec: &Function,
        owner: &Owner,
    ) -> Result<Created<FunctionComputed, Self::Spec>, ProviderError> {
        let zip = spec.zip()?;
        let lambda = aws.lambda().await;
        let out = lambda
            .create_function()
            .function_name(&spec.name)
            .role(&spec.role)
            .runtime(spec.runtime())
            .handler(spec.handler())
            .architectures(spec.architecture())
            .set_memory_size(spec.memory_size)
            .set_timeout(spec.timeout)
            .environment(spec.environment())
            .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
            // The first version is published with the create; it takes the function's
            // description, which says how its code was built.
            .publish(true)
            .description(live::description(spec.build_profile.as_deref()))
            .set_tags(Some(owner.tags().into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
            .send()
            .await
            .map_err(|e| role_not_ready(ProviderError::from_sdk("CreateFunction", e)))?;
        let config = configuration!(out);
        let arn = config.function_arn().ok_or_else(|| ProviderError::unexpected("CreateFunction", "no FunctionArn"))?;
        let version = config.version().filter(|v| *v != "$LATEST");
        // Nothing is live until the alias points at the first version. Where it cannot be made
        // now (refused, its answer lost) the update right after the create publishes (finding
        // this version) and points it, as any later apply does if the process dies in between,
        // since the code reads as not live.
        let not_live =
            || Created::new(spec.name.clone(), FunctionComputed::of(arn, None)).deferring(&["code_sha256"], &[]);
        let Some(version) = version else { return Ok(not_live()) };
        if live::create(lambda, &spec.name, version).await.is_err() {
            return Ok(not_live());
        }
        let (observed, computed) =
            Function::described(&config, &spec.name, true, &Prior { spec: None, computed: None });
        Ok(Created::new(spec.name.clone(), computed).observed(observed))
    }

    async fn update(
        &self,
        aws: &Aws,
        id: &str,
        spec: &Function,
        changed: &[FunctionField],
        _owner: &Owner,
    ) -> Result<Option<FunctionComputed>, ProviderError> {
        if let Some(other) = changed.iter().find(|c| !changes_in_place(**c)) {
            return Err(cannot_update(Self::NAME, other.name()));
        }
        let code_sha256 = spec.code_sha256.as_deref().ok_or_else(|| {
            ProviderError::invalid_attributes(Self::NAME, "no code_sha256: the artifact was not prepared")
        })?;
        let lambda = aws.lambda().await;
        // Lambda refuses an update while another is in progress. The waiter's last read is
        // $LATEST as it stands, which is made what the spec says, whatever the plan listed:
        // after a rollback it holds the new code already, after an edit in the console it
        // holds the edit, and only the spec's values may be published.
        let latest = settled(lambda, id).await?;
        if configuration_differs(spec, &latest) {
            lambda
                .update_function_configuration()
                .function_name(id)
                .role(&spec.role)
                .runtime(spec.runtime())
                .handler(spec.handler())
                .set_memory_size(spec.memory_size)
                .set_timeout(spec.timeout)
                .environment(spec.environment())
                .send()
                .await
                .map_err(|e| role_not_ready(ProviderError::from_sdk("UpdateFunctionConfiguration", e)))?;
            settled(lambda, id).await?;
        }
        let same_architecture = latest.architectures().first().is_none_or(|a| *a == spec.architecture());
        if latest.code_sha256() != Some(code_sha256) || !same_architecture {
            lambda
                .update_function_code()
                .function_name(id)
                .zip_file(Blob::new(spec.zip()?))
                .architectures(spec.architecture())
                .send()
                .await
                .map_err(|e| ProviderError::from_sdk("UpdateFunctionCode", e))?;
            settled(lambda, id).await?;
        }
        let version = live::publish(lambda, id, code_sha256, spec.build_profile.as_deref()).await?;
        live::point(lambda, id, &version).await?;
        let keep = spec.keep_versions.unwrap_or(live::DEFAULT_KEEP_VERSIONS).max(1);
        live::prune(lambda, id, usize::try_from(keep).unwrap_or(1)).await?;
        Ok(Some(FunctionComputed::of(latest.function_arn().unwrap_or_default(), Some(version))))
    }

    async fn wait_ready(&self, aws: &Aws, id: &str, _spec: &Function) -> Result<(), ProviderError> {
        let lambda = aws.lambda().await;
        settled(lambda, id).await.map(|_| ())
    }

    async fn find(
        &self,
        aws: &Aws,
        spec: &Function,
        owner: &Owner,
        _reason: FindReason,
    ) -> Result<Option<Found>, ProviderError> {
        let Some(out) = get_function(aws, &spec.name).await? else { return Ok(None) };
        // Without `lambda:ListTags` AWS answers `TagsError` instead of the tags: that is "cannot
        // tell", never "untagged, so not ours".
        if let Some(refused) = out.tags_error() {
            return Err(tags_refused(&spec.name, refused.error_code(), refused.message()));
        }
        let tags = out.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
        Ok(Some(owner.judge_tagged_at_create(&spec.name, tags)))
    }

    async fn delete(
        &self,
        aws: &Aws,
        id: &str,
        _prior: &Prior<Function, FunctionComputed>,
    ) -> Result<Deleted, ProviderError> {
        let deleted = aws.lambda().await.delete_function().function_name(id).send().await;
        deleted.map_err(|e| ProviderError::from_sdk("DeleteFunction", e))?;
        Ok(Deleted::Yes)
    }

    fn access(&self) -> Option<&dyn Access<FunctionPlanned>> {
        Some(self)
    }

    fn artifact(&self) -> Option<&dyn Artifact> {
        Some(self)
    }

    fn operations(&self) -> Option<&dyn crate::provider::facets::Operations> {
        Some(self)
    }

    fn annotate(&self) -> Option<&dyn Annotate<FunctionPlanned, Live<Self>>> {
        Some(self)
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }
}

#[async_trait]
impl Inventory for LambdaFunction {
    /// The statements of its `live` alias's policy, where the spec's permissions go, listed by
    /// `lambda_permission` (the unqualified function's policy is listed only beside a managed
    /// permission on it).
    /// The statements of the live alias's policy, which lambda_permission lists.
    fn children_listed_by(&self, id: &str, _recorded: &Attrs) -> Vec<(&'static str, Parent)> {
        vec![("lambda_permission", Parent(format!("{id}:{}", live::ALIAS)))]
    }

    /// Aliases beside `live`, and versions published outside the engine (their description is
    /// not one it writes), made by hand or by another tool: nothing here manages them.
    async fn held(&self, aws: &Aws, id: &str, recorded: &Attrs) -> Result<Vec<Held>, ProviderError> {
        let mut pages = aws.lambda().await.list_aliases().function_name(id).into_paginator().send();
        let (mut out, mut live_version) = (Vec::new(), None);
        while let Some(page) = pages.next().await {
            let page = match page.map_err(|e| ProviderError::from_sdk("ListAliases", e)) {
                Ok(page) => page,
                Err(e) if e.is_not_found() => return Ok(vec![]),
                Err(e) => return Err(e),
            };
            live_version = live_version.or_else(|| {
                let live = page.aliases().iter().find(|a| a.name() == Some(live::ALIAS));
                live.and_then(|a| a.function_version()).map(str::to_string)
            });
            let others = page.aliases().iter().filter(|a| a.name() != Some(live::ALIAS));
            out.extend(others.map(|a| {
                let name = a.name().unwrap_or("?");
                Held::removable(
                    format!("alias:{name}"),
                    format!("alias {name} (version {})", a.function_version().unwrap_or("?")),
                )
            }));
        }
        // After the aliases: `drift --revert` removes in this order, and an alias may route to
        // such a version.
        let (mut latest, mut served) = (None, None);
        let mut pages = aws.lambda().await.list_versions_by_function().function_name(id).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page.map_err(|e| ProviderError::from_sdk("ListVersionsByFunction", e)) {
                Ok(page) => page,
                Err(e) if e.is_not_found() => return Ok(out),
                Err(e) => return Err(e),
            };
            let version = |n: Option<&str>| page.versions().iter().find(|v| n.is_some() && v.version() == n).cloned();
            latest = latest.or_else(|| version(Some("$LATEST")));
            served = served.or_else(|| version(live_version.as_deref()));
            // The version `live` serves is the engine's, whoever published it: PublishVersion
            // with nothing new answers with the newest version, which may be one made by hand.
            let foreign = page.versions().iter().filter(|v| {
                v.version().is_some_and(|n| n != "$LATEST")
                    && v.version() != live_version.as_deref()
                    && !v.description().is_some_and(|d| d.starts_with(live::OURS))
            });
            out.extend(foreign.map(|v| {
                let n = v.version().unwrap_or("?");
                let said = v.description().filter(|d| !d.is_empty()).map(|d| format!(", \"{d}\"")).unwrap_or_default();
                Held::removable(format!("version:{n}"), format!("version {n} (published outside cruddur-infra{said})"))
            }));
        }
        if let (Some(latest), Some(served)) = (latest, served) {
            out.extend(unpublished(&latest, &served, recorded));
        }
        Ok(out)
    }

    /// Deletes an alias beside `live`, or a version published outside the engine (AWS refuses
    /// while an alias routes to it: the error names it).
    async fn remove_held(&self, aws: &Aws, id: &str, key: &str) -> Result<(), ProviderError> {
        let lambda = aws.lambda().await;
        if key == LATEST_KEY {
            return restore_latest(lambda, id).await;
        }
        let deleted = match key.split_once(':') {
            Some(("alias", alias)) if alias != live::ALIAS => lambda
                .delete_alias()
                .function_name(id)
                .name(alias)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ProviderError::from_sdk("DeleteAlias", e)),
            Some(("version", n)) if n.parse::<u64>().is_ok() => lambda
                .delete_function()
                .function_name(id)
                .qualifier(n)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ProviderError::from_sdk("DeleteFunction", e)),
            _ => return Err(ProviderError::unexpected("RemoveUnmanaged", format!("`{key}` names nothing of {id}"))),
        };
        deleted.or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
    }
}

impl Annotate<FunctionPlanned, Live<Self>> for LambdaFunction {
    /// An update after a rollback (or before anything was published) says so; code built with
    /// the dev profile is a warning whatever the plan does.
    fn annotate(&self, change: &ChangeView<'_, FunctionPlanned, Live<Self>>) -> Vec<Annotation> {
        let mut out = Vec::new();
        let computed = change.live.and_then(|l| l.computed.as_ref());
        if change.stage == Stage::Update {
            let version = computed.and_then(|c| c.version.as_deref());
            match (version, computed.and_then(|c| c.rolled_back_from.as_deref())) {
                (Some(version), Some(from)) => {
                    out.push(Annotation::RolledBack { version: version.into(), from: from.into() });
                }
                (None, _) if change.live.is_some() => {
                    out.push(Annotation::NothingPublished { alias: live::ALIAS.into() });
                }
                _ => {}
            }
        }
        let dev = artifacts::BuildProfile::Dev.name();
        let profile = change.desired.and_then(|d| d.build_profile.known());
        if change.stage != Stage::Destroy && profile.is_some_and(|p| p == dev) {
            out.push(Annotation::DevBuild);
        }
        out
    }
}

/// A function built from `source:` (or given as `zip_file:`): its code hash comes from the zip.
#[async_trait]
impl Artifact for LambdaFunction {
    fn inputs(&self) -> &'static [&'static str] {
        &["source", "zip_file", "architecture", "runtime"]
    }

    fn paths(&self) -> &'static [&'static str] {
        &["source", "zip_file"]
    }

    fn code_attributes(&self) -> &'static [&'static str] {
        &["code_sha256", "zip_file", "build_profile", "environment"]
    }

    fn sources(&self, attrs: &Attrs) -> Vec<std::path::PathBuf> {
        opt_string(attrs, "source").map(std::path::PathBuf::from).into_iter().collect()
    }

    async fn prepare(&self, builds: &artifacts::Builds, desired: &mut Attrs) -> Result<(), PrepareError> {
        let invalid = |m: &str| PrepareError::Invalid(m.to_string());
        match (opt_string(desired, "source"), opt_string(desired, "zip_file")) {
            (Some(_), Some(_)) => return Err(invalid("give either source or zip_file, not both")),
            (None, None) => return Err(invalid("give source (a cargo package) or zip_file")),
            (Some(source), None) => {
                let arch = opt_string(desired, "architecture").unwrap_or("x86_64");
                let arch = artifacts::Architecture::parse(arch)
                    .ok_or_else(|| invalid("architecture must be x86_64 or arm64"))?;
                let profile = builds.profile();
                if profile == artifacts::BuildProfile::Dev && desired.get("allow_dev_build") == Some(&json!(false)) {
                    return Err(invalid(
                        "allow_dev_build is false: this function deploys release builds only (plan without \
                         --build-profile dev)",
                    ));
                }
                let runtime = opt_string(desired, "runtime").unwrap_or(DEFAULT_RUNTIME);
                let glibc = artifacts::glibc::runtime_glibc(runtime);
                let artifact = builds.build(&builds.resolve(source), arch, glibc).await?;
                desired.insert("zip_file".into(), json!(artifact.zip_path.display().to_string()));
                desired.insert("code_sha256".into(), json!(artifact.code_sha256));
                desired.insert("build_profile".into(), json!(profile.name()));
            }
            (None, Some(path)) => {
                // What create and update read: the zip where the spec's folder says it is.
                let zip = builds.resolve(path).display().to_string();
                let bytes = read_zip(&zip).map_err(|e| PrepareError::Invalid(e.message))?;
                desired.insert("code_sha256".into(), json!(code_sha256(&bytes)));
                desired.insert("zip_file".into(), json!(zip));
            }
        }
        Ok(())
    }
}

impl Access<FunctionPlanned> for LambdaFunction {
    // drift lists the statements of the live alias's policy.
    // GetFunction returns a function's tags only to a caller allowed this: without them
    // a function whose create answer was lost cannot be told to be ours.
    // Versions beyond keep_versions.
    // drift --revert: an alias beside live.
    fn deployer(&self) -> Deployer {
        Deployer {
            read: &[
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
                "lambda:GetAlias",
                "lambda:ListAliases",
                "lambda:ListVersionsByFunction",
                // drift lists the statements of the live alias's policy.
                "lambda:GetPolicy",
                // GetFunction returns a function's tags only to a caller allowed this: without them
                // a function whose create answer was lost cannot be told to be ours.
                "lambda:ListTags",
            ],
            write: &[
                "lambda:CreateFunction",
                "lambda:TagResource",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:PublishVersion",
                "lambda:CreateAlias",
                "lambda:UpdateAlias",
                // Versions beyond keep_versions.
                "lambda:DeleteFunction",
                // drift --revert: an alias beside live.
                "lambda:DeleteAlias",
                "iam:PassRole",
            ],
            delete: &["lambda:DeleteFunction"],
            unscoped: &[],
        }
    }

    fn deployer_arns(&self, spec: &FunctionPlanned, scope: &ArnScope) -> Vec<String> {
        let function = scope.arn(
            "lambda",
            &scope.region,
            &scope.account,
            &format!("function:{}", ArnScope::part(Some(spec.name.text()))),
        );
        // The execution role it passes to Lambda.
        let role = match ArnScope::part(Some(spec.role.text())).as_str() {
            "*" => scope.arn("iam", "", &scope.account, "role/*"),
            arn => arn.to_string(),
        };
        vec![function.clone(), format!("{function}:*"), role]
    }
}

async fn get_function(
    aws: &Aws,
    name: &str,
) -> Result<Option<aws_sdk_lambda::operation::get_function::GetFunctionOutput>, ProviderError> {
    match aws.lambda().await.get_function().function_name(name).send().await {
        Ok(out) => Ok(Some(out)),
        Err(e) => {
            let e = ProviderError::from_sdk("GetFunction", e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

/// A function's environment variables, none as an empty map.
/// How `remove_unmanaged` names unpublished changes to `$LATEST`.
const LATEST_KEY: &str = "$LATEST";

/// The settings `$LATEST` holds that the version `live` serves does not: an edit in the
/// console, which no invocation runs and the next apply would overwrite.
fn unpublished(latest: &FunctionConfiguration, served: &FunctionConfiguration, recorded: &Attrs) -> Option<Held> {
    // After a rollback `live` serves an older version on purpose: `$LATEST` differing is known.
    if recorded.get("rolled_back_from").is_some_and(|v| !v.is_null()) {
        return None;
    }
    let settings = |c: &FunctionConfiguration| -> [(&'static str, serde_json::Value); 6] {
        [
            ("role", json!(c.role())),
            ("handler", json!(c.handler())),
            ("runtime", json!(c.runtime().map(|r| r.as_str()))),
            ("memory_size", json!(c.memory_size())),
            ("timeout", json!(c.timeout())),
            ("environment", json!(variables(c))),
        ]
    };
    let was: BTreeMap<&str, serde_json::Value> = settings(served).into_iter().collect();
    let changed: Vec<(String, serde_json::Value)> = settings(latest)
        .into_iter()
        .filter(|(attr, now)| !now.is_null() && was.get(attr) != Some(now))
        .map(|(attr, now)| (attr.to_string(), now))
        .collect();
    if changed.is_empty() {
        return None;
    }
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let list: Vec<String> = changed
        .iter()
        .map(|(attr, now)| {
            format!("{attr} {} -> {}", was.get(attr.as_str()).map(shown).unwrap_or_default(), shown(now))
        })
        .collect();
    let what = format!("`$LATEST` holds changes not published: {}", list.join(", "));
    Some(Held::removable(LATEST_KEY, what).adopted_as(changed))
}

/// Puts `$LATEST`'s settings back to those of the version `live` serves (`drift --revert`).
async fn restore_latest(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<(), ProviderError> {
    let Some(live) = live::configuration(lambda, name).await? else { return Ok(()) };
    settled(lambda, name).await?;
    lambda
        .update_function_configuration()
        .function_name(name)
        .set_role(live.role().map(str::to_string))
        .set_handler(live.handler().map(str::to_string))
        .set_runtime(live.runtime().cloned())
        .set_memory_size(live.memory_size())
        .set_timeout(live.timeout())
        .environment(Environment::builder().set_variables(Some(variables(&live).into_iter().collect())).build())
        .send()
        .await
        .map_err(|e| ProviderError::from_sdk("UpdateFunctionConfiguration", e))?;
    settled(lambda, name).await.map(|_| ())
}

fn variables(c: &FunctionConfiguration) -> BTreeMap<String, String> {
    let vars = c.environment().and_then(|e| e.variables());
    vars.map(|v| v.clone().into_iter().collect()).unwrap_or_default()
}

/// Whether `$LATEST` differs from the spec in a setting the spec gives.
fn configuration_differs(spec: &Function, latest: &FunctionConfiguration) -> bool {
    let differs = |want: Option<i32>, have: Option<i32>| want.is_some() && want != have;
    latest.role() != Some(spec.role.as_str())
        || latest.runtime() != Some(&spec.runtime())
        || latest.handler() != Some(spec.handler())
        || differs(spec.memory_size, latest.memory_size())
        || differs(spec.timeout, latest.timeout())
        || spec.environment.clone().unwrap_or_default() != variables(latest)
}

fn read_zip(path: &str) -> Result<Vec<u8>, ProviderError> {
    std::fs::read(path).map_err(|e| ProviderError::new("ReadArtifact", "ArtifactUnreadable", format!("{path}: {e}")))
}

/// The URI API Gateway invokes a function by: in the function's partition and region.
fn invoke_arn(function_arn: &str) -> String {
    let mut parts = function_arn.split(':');
    let partition = parts.nth(1).unwrap_or("aws");
    let region = parts.nth(1).unwrap_or("us-east-1");
    format!("arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
}

/// The one validation error that is worth waiting out: IAM has not propagated the new role.
fn role_not_ready(e: ProviderError) -> ProviderError {
    let message = e.message.to_ascii_lowercase();
    if e.code == "InvalidParameterValueException" && message.contains("role") && message.contains("assume") {
        e.with_class(ErrorClass::Propagating)
    } else {
        e
    }
}

/// A waiter that gave up: a failed poll keeps the poll's own class (a 5xx is retried); a
/// final state (the function `Failed`) or the time limit is final. A function left waiting
/// stays recorded as still creating, and the next apply waits again.
fn waiter_error<O, E>(code: &str, name: &str, what: &str, e: WaiterError<O, E>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e {
        WaiterError::OperationFailed(failed) => ProviderError::from_sdk("GetFunction", failed.into_error()),
        WaiterError::ExceededMaxWait(_) => {
            ProviderError::new("GetFunction", code, format!("{name} {what} within {}s", READY_TIMEOUT.as_secs()))
                .with_class(ErrorClass::Fatal)
        }
        other => {
            ProviderError::new("GetFunction", code, format!("{name} {what}: {other}")).with_class(ErrorClass::Fatal)
        }
    }
}

/// How a function is polled until it is neither `Pending` nor updating.
const SETTLED_POLL: crate::poll::Poll =
    crate::poll::Poll { share: 10, floor: Duration::from_millis(500), ceiling: Duration::from_secs(5) };

/// Waits while the function is `Pending` (being created) or an update of it is `InProgress`;
/// its configuration as the last poll read it. One call answers both: `GetFunctionConfiguration`
/// carries the state and the last update's status. `Active` is ready; so is `Inactive` (a
/// function idle for weeks): Lambda reactivates it on its next invocation, which no deploy can
/// wait for, and AWS's own `FunctionActiveV2` waiter would poll it until its deadline. A
/// `Failed` state or update is final.
async fn settled(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<FunctionConfiguration, ProviderError> {
    use aws_sdk_lambda::types::{LastUpdateStatus, State};
    let failed = |code: &'static str, what: &str, reason: Option<&str>, reason_code: Option<&str>| {
        let reason = reason.unwrap_or("Lambda gives no reason");
        let why = reason_code.unwrap_or("Failed");
        ProviderError::new("GetFunctionConfiguration", code, format!("{name} {what} ({why}): {reason}"))
            .with_class(ErrorClass::Fatal)
    };
    let look = || async {
        let out = lambda.get_function_configuration().function_name(name).send().await;
        let out = out.map_err(|e| ProviderError::from_sdk("GetFunctionConfiguration", e))?;
        if out.state() == Some(&State::Failed) {
            let code = out.state_reason_code().map(|c| c.as_str());
            return Err(failed("FunctionFailed", "failed to become Active", out.state_reason(), code));
        }
        if out.last_update_status() == Some(&LastUpdateStatus::Failed) {
            let code = out.last_update_status_reason_code().map(|c| c.as_str());
            return Err(failed("FunctionUpdateFailed", "failed to update", out.last_update_status_reason(), code));
        }
        let busy =
            out.state() == Some(&State::Pending) || out.last_update_status() == Some(&LastUpdateStatus::InProgress);
        Ok(if busy { Seen::Waiting } else { Seen::Done(configuration!(out)) })
    };
    let timed_out = |_| {
        ProviderError::new(
            "GetFunctionConfiguration",
            "FunctionNotReady",
            format!("{name} did not become Active and finish updating within {} s", READY_TIMEOUT.as_secs()),
        )
    };
    poll::until(SETTLED_POLL, READY_TIMEOUT, look, timed_out).await
}

/// GetFunction's answer when the caller may not read the function's tags.
fn tags_refused(name: &str, code: &str, message: &str) -> ProviderError {
    ProviderError::new(
        "GetFunction",
        code.to_string(),
        format!(
            "the tags of {name} could not be read ({message}), so whether cruddur-infra made it cannot be told: allow \
             lambda:ListTags (`cruddur-infra iam-policy` grants it) and run the command again"
        ),
    )
    .with_class(ErrorClass::Fatal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_role_propagation_error_is_waited_out() {
        // "cannot be assumed" is propagating; other validation errors are final.
        let e = role_not_ready(ProviderError::new(
            "CreateFunction",
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        ));
        assert_eq!(e.class, ErrorClass::Propagating);
        let e = role_not_ready(ProviderError::new(
            "CreateFunction",
            "InvalidParameterValueException",
            "Unsupported runtime",
        ));
        assert_eq!(e.class, ErrorClass::Fatal);
    }
}
