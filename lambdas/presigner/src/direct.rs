//! Presigned PUT URLs signed with `aws-sigv4` directly, on a URL the SDK resolved once.
//!
//! The SDK's presign runs its whole request pipeline (endpoint rules, interceptors, identity
//! resolution) for every URL. Here the pipeline runs once, at start-up, to presign a probe
//! object: its URL gives the endpoint exactly as the SDK's own S3 endpoint rules resolve it
//! (virtual-hosted or path style, the region, FIPS or dual-stack as configured), so no rule is
//! written by hand. Each request then only appends the key and signs: a SHA-256 of the
//! canonical request and the HMAC chain. A test keeps every URL identical to the SDK's.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials as _;
use aws_sdk_s3::config::SharedCredentialsProvider;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use tokio::sync::Mutex;

use crate::{EXPIRES_IN, Presign};

/// The key the start-up presign is made for; replaced by each request's own.
const PROBE_KEY: &str = "cruddur-presigner-probe";

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

pub struct DirectPresigner {
    bucket: String,
    /// The probe URL up to its key, and its query before the signature (`x-id=PutObject`).
    prefix: String,
    query: String,
    region: String,
    provider: SharedCredentialsProvider,
    credentials: Mutex<Credentials>,
}

impl DirectPresigner {
    /// Resolves the endpoint for `bucket` through the SDK, once. `sdk` gives the region and
    /// the credentials; `path_style` names the bucket in the path, as emulators need.
    pub async fn new(sdk: &aws_config::SdkConfig, path_style: bool, bucket: &str) -> Result<Self, String> {
        let client = crate::S3Presigner::new(sdk, path_style).client().clone();
        let config = PresigningConfig::expires_in(EXPIRES_IN).map_err(|e| e.to_string())?;
        let probe =
            client.put_object().bucket(bucket).key(PROBE_KEY).presigned(config).await.map_err(|e| e.to_string())?;
        let url = probe.uri().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let prefix = path.strip_suffix(PROBE_KEY).ok_or("the SDK's URL does not end with its key")?.to_string();
        let query = query.split('&').filter(|p| !p.starts_with("X-Amz-")).collect::<Vec<_>>().join("&");
        let region = sdk.region().map(|r| r.to_string()).ok_or("no AWS region is configured")?;
        let provider = sdk.credentials_provider().ok_or("no AWS credentials provider is configured")?;
        let credentials = provider.provide_credentials().await.map_err(|e| e.to_string())?;
        Ok(Self { bucket: bucket.to_string(), prefix, query, region, provider, credentials: Mutex::new(credentials) })
    }

    /// The cached credentials, fetched again when they are about to expire.
    async fn credentials(&self) -> Result<Credentials, String> {
        let mut cached = self.credentials.lock().await;
        let stale = cached.expiry().is_some_and(|t| t <= SystemTime::now() + REFRESH_BEFORE);
        if stale {
            *cached = self.provider.provide_credentials().await.map_err(|e| e.to_string())?;
        }
        Ok(cached.clone())
    }

    /// The URL for `key`, signed as of `now` (tests pin the time).
    pub async fn presign_at(&self, key: &str, content_type: &str, now: SystemTime) -> Result<String, String> {
        let credentials = self.credentials().await?;
        let identity = credentials.into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(EXPIRES_IN);
        // S3's rules: the path is encoded once and never normalised.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let mut url = format!("{}{}", self.prefix, encode_key(key));
        if !self.query.is_empty() {
            url.push('?');
            url.push_str(&self.query);
        }
        let headers = [("content-type", content_type)];
        let request = SignableRequest::new("PUT", url.as_str(), headers.into_iter(), SignableBody::UnsignedPayload)
            .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
        let mut out = url;
        let mut separator = if out.contains('?') { '&' } else { '?' };
        for (name, value) in instructions.params() {
            out.push(separator);
            out.push_str(name);
            out.push('=');
            out.push_str(&query_encode(value));
            separator = '&';
        }
        Ok(out)
    }
}

impl Presign for DirectPresigner {
    async fn presign_put(&self, bucket: &str, key: &str, content_type: &str) -> Result<String, String> {
        if bucket != self.bucket {
            return Err(format!("this presigner signs for {}, not {bucket}", self.bucket));
        }
        self.presign_at(key, content_type, SystemTime::now()).await
    }
}

/// An object key as S3 paths carry it: every byte but unreserved characters and `/` escaped.
fn encode_key(key: &str) -> Cow<'_, str> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~/".contains(&b);
    if key.bytes().all(plain) {
        return Cow::Borrowed(key);
    }
    Cow::Owned(key.bytes().map(|b| if plain(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect())
}

/// A query value as SigV4 canonicalises it (unreserved characters kept, everything else escaped).
fn query_encode(value: &str) -> Cow<'_, str> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    if value.bytes().all(plain) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(value.bytes().map(|b| if plain(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect())
}
