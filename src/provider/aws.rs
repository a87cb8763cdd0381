//! Shared AWS configuration and clients, created on first use so commands that make no AWS
//! call (validate, graph, a plan of an empty spec) never load credentials.
//!
//! The SDK's own retries are off in every client: the engine's retry policy
//! ([`crate::retry`]) is the one authority, so a creating call is never sent twice behind the
//! engine's back and every retry is counted and reported. Each attempt has a time limit, so a
//! connection that stops answering fails (and is retried) instead of hanging the apply.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use tokio::sync::OnceCell;

use super::ProviderError;
use crate::retry::{RetryNotice, RetryPolicy, Scope};

/// Settings for reaching AWS beyond the standard environment and profile chain.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    /// Path-style S3 addressing, for emulators reached by host name.
    pub s3_force_path_style: bool,
    /// Do not wait for deployments that AWS finishes in the background (CloudFront).
    pub no_wait: bool,
    /// Append one line per HTTP request (`service operation`) to this file.
    pub call_log: Option<PathBuf>,
    /// The command's retry policy: every AWS call of the command retries under it.
    pub retry: RetryPolicy,
    /// Who hears of a retry outside a resource's apply (a refresh, a listing, the state backend).
    pub on_retry: RetrySink,
}

/// How a retry is reported.
type Report = dyn Fn(&RetryNotice) + Send + Sync;

/// Where the command reports retries that belong to no resource being applied.
#[derive(Clone, Default)]
pub struct RetrySink(Option<Arc<Report>>);

impl RetrySink {
    pub fn new(report: impl Fn(&RetryNotice) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(report)))
    }
}

impl std::fmt::Debug for RetrySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "RetrySink(reports)" } else { "RetrySink(quiet)" })
    }
}

/// One SDK configuration and one client per service for the whole command, so connections
/// are reused across resources.
pub struct Aws {
    pub options: AwsOptions,
    call_log: Option<CallLog>,
    config: OnceCell<aws_config::SdkConfig>,
    account_id: OnceCell<(String, super::partition::Partition, Option<String>)>,
    s3: OnceCell<aws_sdk_s3::Client>,
    sns: OnceCell<aws_sdk_sns::Client>,
    sts: OnceCell<aws_sdk_sts::Client>,
    iam: OnceCell<aws_sdk_iam::Client>,
    lambda: OnceCell<aws_sdk_lambda::Client>,
    cloudfront: OnceCell<aws_sdk_cloudfront::Client>,
    route53: OnceCell<aws_sdk_route53::Client>,
    apigatewayv2: OnceCell<aws_sdk_apigatewayv2::Client>,
    cognito: OnceCell<aws_sdk_cognitoidentityprovider::Client>,
    kms: OnceCell<aws_sdk_kms::Client>,
    logs: OnceCell<aws_sdk_cloudwatchlogs::Client>,
    tagging: OnceCell<aws_sdk_resourcegroupstagging::Client>,
    /// One lock per thing AWS refuses concurrent writes to (an HTTP API, a function's policy).
    exclusive: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Clients for regions other than the configured one (an adopted bucket's, a user pool's).
    s3_regional: Mutex<std::collections::HashMap<String, aws_sdk_s3::Client>>,
    cognito_regional: Mutex<std::collections::HashMap<String, aws_sdk_cognitoidentityprovider::Client>>,
    kms_regional: Mutex<std::collections::HashMap<String, aws_sdk_kms::Client>>,
    /// Where buckets live, as learned this command.
    bucket_regions: Mutex<std::collections::HashMap<String, String>>,
    /// While a refresh runs: the answer of each read several resources make of one AWS object.
    shared_reads: Mutex<Option<std::collections::HashMap<String, SharedRead>>>,
}

/// One read's answer, asked once however many ask at the same time.
type SharedRead = Arc<OnceCell<Arc<dyn std::any::Any + Send + Sync>>>;

/// Reads shared while it lives (see [`Aws::share_reads`]).
pub struct SharedReads<'a>(&'a Aws);

impl Drop for SharedReads<'_> {
    fn drop(&mut self) {
        *self.0.shared_reads.lock().expect("not poisoned") = None;
    }
}

/// How long one attempt of one request may take (an upload of a Lambda zip included).
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_attempt_timeout(ATTEMPT_TIMEOUT).build()
}

/// A client per service, built from the shared configuration with the call log attached,
/// without SDK retries.
macro_rules! client {
    ($field:ident, $sdk:ident) => {
        pub async fn $field(&self) -> &$sdk::Client {
            self.$field
                .get_or_init(|| async {
                    let mut builder = $sdk::config::Builder::from(self.config().await)
                        .retry_config(RetryConfig::disabled())
                        .timeout_config(timeouts());
                    if let Some(log) = &self.call_log {
                        builder = builder.interceptor(log.clone());
                    }
                    $sdk::Client::from_conf(builder.build())
                })
                .await
        }
    };
}

/// A client per service and region other than the configured one, kept once built: for
/// resources and lookups that live elsewhere (a bucket in another region, a user pool).
macro_rules! regional_client {
    ($(#[$doc:meta])* $name:ident, $default:ident, $cache:ident, $sdk:ident $(, $extra:ident)?) => {
        $(#[$doc])*
        pub async fn $name(&self, region: &str) -> $sdk::Client {
            if region == self.region().await {
                return self.$default().await.clone();
            }
            if let Some(client) = self.$cache.lock().expect("not poisoned").get(region) {
                return client.clone();
            }
            let builder = $sdk::config::Builder::from(self.config().await)
                .region(aws_config::Region::new(region.to_string()))
                .retry_config(RetryConfig::disabled())
                .timeout_config(timeouts());
            $(let builder = self.$extra(builder);)?
            let builder = match &self.call_log {
                Some(log) => builder.interceptor(log.clone()),
                None => builder,
            };
            let client = $sdk::Client::from_conf(builder.build());
            self.$cache.lock().expect("not poisoned").insert(region.to_string(), client.clone());
            client
        }
    };
}

impl Aws {
    regional_client!(
        /// The S3 client for `region` (the configured one's, or one of its own).
        s3_in, s3, s3_regional, aws_sdk_s3, s3_addressing
    );
    regional_client!(
        /// The Cognito client for `region`.
        cognito_in, cognito, cognito_regional, aws_sdk_cognitoidentityprovider
    );
    regional_client!(
        /// The KMS client for `region` (keys are regional: a key is used where it lives).
        kms_in, kms, kms_regional, aws_sdk_kms
    );

    /// S3 addressing as the options say (path style for emulators reached by host name).
    fn s3_addressing(&self, builder: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
        builder.force_path_style(self.options.s3_force_path_style)
    }

    pub fn new(options: AwsOptions) -> Self {
        let call_log = options.call_log.as_ref().and_then(|p| CallLog::open(p).ok());
        Self {
            options,
            call_log,
            config: OnceCell::new(),
            account_id: OnceCell::new(),
            s3: OnceCell::new(),
            sns: OnceCell::new(),
            sts: OnceCell::new(),
            iam: OnceCell::new(),
            lambda: OnceCell::new(),
            cloudfront: OnceCell::new(),
            route53: OnceCell::new(),
            apigatewayv2: OnceCell::new(),
            cognito: OnceCell::new(),
            kms: OnceCell::new(),
            logs: OnceCell::new(),
            tagging: OnceCell::new(),
            exclusive: Mutex::default(),
            s3_regional: Mutex::default(),
            cognito_regional: Mutex::default(),
            kms_regional: Mutex::default(),
            bucket_regions: Mutex::default(),
            shared_reads: Mutex::default(),
        }
    }

    /// Until the guard drops, a read made through [`Aws::read_once`] is asked of AWS once and its
    /// answer given to every resource that asks (a topic's attributes describe the topic and its
    /// policy; one listing holds a name's record sets). For a refresh, which writes nothing:
    /// after a write an answer would be stale.
    pub fn share_reads(&self) -> SharedReads<'_> {
        *self.shared_reads.lock().expect("not poisoned") = Some(Default::default());
        SharedReads(self)
    }

    /// `read()`'s answer, shared under `key` while [`Aws::share_reads`] is on; asked each time
    /// otherwise. A failed read is not kept: the next asker (a retry) asks again.
    pub async fn read_once<T, F, Fut>(&self, key: &str, read: F) -> Result<T, ProviderError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        // The answer's type is part of the key, so that one key never holds two types.
        let key = format!("{}:{key}", std::any::type_name::<T>());
        let cell = {
            let mut shared = self.shared_reads.lock().expect("not poisoned");
            shared.as_mut().map(|shared| shared.entry(key.clone()).or_default().clone())
        };
        let Some(cell) = cell else { return read().await };
        let answer = cell
            .get_or_try_init(|| async { read().await.map(|v| Arc::new(v) as Arc<dyn std::any::Any + Send + Sync>) })
            .await?;
        match answer.downcast_ref::<T>() {
            Some(v) => Ok(v.clone()),
            None => Err(ProviderError::unexpected("read", format!("a shared read under {key} holds another type"))),
        }
    }

    /// The command's retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.options.retry
    }

    /// The circumstances of a call that belongs to no resource being applied: its retries are
    /// reported to the command's [`RetrySink`].
    pub fn scope(&self) -> Scope<'_> {
        match &self.options.on_retry.0 {
            Some(report) => Scope { created_at: None, on_retry: report.as_ref() },
            None => Scope::quiet(),
        }
    }

    /// Runs `op` under the command's retry policy, reporting retries to its sink.
    pub async fn retried<T, F, Fut>(&self, op: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        self.retry().run(self.scope(), op).await
    }

    /// Remembers where a bucket lives, for [`Aws::s3_for`].
    pub fn note_bucket_region(&self, bucket: &str, region: &str) {
        self.bucket_regions.lock().expect("not poisoned").insert(bucket.to_string(), region.to_string());
    }

    /// Where a bucket lives, if this command learned it.
    pub fn known_bucket_region(&self, bucket: &str) -> Option<String> {
        self.bucket_regions.lock().expect("not poisoned").get(bucket).cloned()
    }

    /// The S3 client for a bucket: its region's, when this command learned it lives elsewhere.
    pub async fn s3_for(&self, bucket: &str) -> aws_sdk_s3::Client {
        match self.known_bucket_region(bucket) {
            Some(region) => self.s3_in(&region).await,
            None => self.s3().await.clone(),
        }
    }

    /// Waits until no other write to `key` runs in this command, and holds it until the guard
    /// drops: for what AWS refuses to change concurrently (API Gateway answers "concurrent
    /// modification" for writes to one API; Lambda loses policy statements written in parallel).
    pub async fn exclusive(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self.exclusive.lock().expect("not poisoned").entry(key).or_default().clone();
        lock.lock_owned().await
    }

    /// Uses `config` instead of the standard chain (for embedding the engine).
    pub fn with_config(config: aws_config::SdkConfig, options: AwsOptions) -> Self {
        let aws = Self::new(options);
        aws.config.set(config).expect("a new Aws has no configuration yet");
        aws
    }

    /// The configuration from the standard chain: environment (including `AWS_ENDPOINT_URL`),
    /// profiles, SSO.
    pub async fn config(&self) -> &aws_config::SdkConfig {
        self.config.get_or_init(|| aws_config::load_defaults(aws_config::BehaviorVersion::latest())).await
    }

    /// The region requests go to, as the SDK resolved it.
    pub async fn region(&self) -> String {
        self.config().await.region().map_or_else(|| "us-east-1".to_string(), |r| r.to_string())
    }

    /// The account the credentials belong to (one STS call per command, when first needed).
    pub async fn account_id(&self) -> Result<&str, ProviderError> {
        self.identity().await.map(|(account, _, _)| account.as_str())
    }

    /// The caller's ARN (the same one STS call as the account's).
    pub async fn caller_arn(&self) -> Result<Option<&str>, ProviderError> {
        self.identity().await.map(|(_, _, arn)| arn.as_deref())
    }

    /// The partition the credentials belong to (`aws`, `aws-cn`, `aws-us-gov`), from the ARN
    /// GetCallerIdentity reports: what every ARN the engine builds names.
    pub async fn partition(&self) -> Result<super::partition::Partition, ProviderError> {
        self.identity().await.map(|(_, partition, _)| *partition)
    }

    /// The account and partition of the credentials (the same one STS call).
    async fn identity(&self) -> Result<&(String, super::partition::Partition, Option<String>), ProviderError> {
        self.account_id
            .get_or_try_init(|| async {
                let sts = self.sts().await;
                let out = self
                    .retried(|| async {
                        sts.get_caller_identity()
                            .send()
                            .await
                            .map_err(|e| ProviderError::from_sdk("GetCallerIdentity", e))
                    })
                    .await?;
                let account = out
                    .account
                    .ok_or_else(|| ProviderError::unexpected("GetCallerIdentity", "no Account in the response"))?;
                let region = self.region().await;
                let partition = out
                    .arn
                    .as_deref()
                    .and_then(super::partition::of_arn)
                    .unwrap_or_else(|| super::partition::of_region(&region));
                Ok((account, partition, out.arn))
            })
            .await
    }

    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3
            .get_or_init(|| async {
                let mut builder = aws_sdk_s3::config::Builder::from(self.config().await)
                    .force_path_style(self.options.s3_force_path_style)
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(timeouts());
                if let Some(log) = &self.call_log {
                    builder = builder.interceptor(log.clone());
                }
                aws_sdk_s3::Client::from_conf(builder.build())
            })
            .await
    }

    client!(sns, aws_sdk_sns);
    client!(sts, aws_sdk_sts);
    client!(iam, aws_sdk_iam);
    client!(lambda, aws_sdk_lambda);
    client!(cloudfront, aws_sdk_cloudfront);
    client!(route53, aws_sdk_route53);
    client!(apigatewayv2, aws_sdk_apigatewayv2);
    client!(cognito, aws_sdk_cognitoidentityprovider);
    client!(kms, aws_sdk_kms);
    client!(logs, aws_sdk_cloudwatchlogs);
    client!(tagging, aws_sdk_resourcegroupstagging);
}

/// Records every HTTP request sent (retries included) as `service operation METHOD path`,
/// with the If-Match header when there is one, in the order sent.
#[derive(Clone, Debug)]
struct CallLog {
    file: Arc<Mutex<File>>,
}

impl CallLog {
    fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file: Arc::new(Mutex::new(file)) })
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let path = request
            .uri()
            .split_once("://")
            .map_or(request.uri(), |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
        let if_match = request.headers().get("if-match").map(|etag| format!(" if-match={etag}")).unwrap_or_default();
        if let (Some(meta), Ok(mut file)) = (cfg.load::<Metadata>(), self.file.lock()) {
            let _ = writeln!(file, "{} {} {} {path}{if_match}", meta.service(), meta.name(), request.method());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn reads_are_shared_while_the_guard_lives_and_never_after() {
        let aws = Aws::new(AwsOptions::default());
        let asked = AtomicUsize::new(0);
        let read = || async {
            asked.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ProviderError>(7u32)
        };
        // Outside a refresh every read asks.
        aws.read_once("topic", read).await.expect("read");
        aws.read_once("topic", read).await.expect("read");
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        {
            let _shared = aws.share_reads();
            let (a, b) = tokio::join!(aws.read_once("topic", read), aws.read_once("topic", read));
            assert_eq!((a.expect("read"), b.expect("read")), (7, 7));
            assert_eq!(asked.load(Ordering::SeqCst), 3, "one read for two askers");
            aws.read_once("another", read).await.expect("read");
            assert_eq!(asked.load(Ordering::SeqCst), 4, "another key is another read");
        }
        // After the refresh (writes may follow) nothing is remembered.
        aws.read_once("topic", read).await.expect("read");
        assert_eq!(asked.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_failed_shared_read_is_asked_again() {
        let aws = Aws::new(AwsOptions::default());
        let _shared = aws.share_reads();
        let failing = || async { Err::<u32, _>(ProviderError::new("GetTopicAttributes", "Throttling", "slow down")) };
        assert!(aws.read_once("topic", failing).await.is_err());
        let answer = aws.read_once("topic", || async { Ok::<_, ProviderError>(1u32) }).await;
        assert_eq!(answer.expect("the retry reads"), 1);
    }
}
