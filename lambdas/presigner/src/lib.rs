//! `POST /avatars/key_upload`: answers `{"extension": "jpg"}` with a presigned S3 PUT URL for
//! `<sub>.<ext>` in the uploads bucket, valid for 5 minutes.
//!
//! *Guarantees*: the user is the `sub` the authorizer verified (never a token decoded here);
//! the URL carries no checksum parameters, so a browser can PUT real bytes to it; the response
//! names the Content-Type the upload must send (it is signed); every response has CORS headers;
//! errors are JSON with a 4xx/5xx status.

mod direct;

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use aws_sdk_s3::config::RequestChecksumCalculation;
use aws_sdk_s3::presigning::PresigningConfig;
use serde::Deserialize;
use serde_json::{Value, json};

/// How long a presigned URL is valid.
pub const EXPIRES_IN: Duration = Duration::from_secs(300);
/// Extensions an avatar may have, and the Content-Type each is uploaded with.
const ALLOWED: &[(&str, &str)] =
    &[("jpg", "image/jpeg"), ("jpeg", "image/jpeg"), ("png", "image/png"), ("webp", "image/webp")];
/// Larger bodies are refused before parsing.
const MAX_BODY: usize = 4096;

pub use direct::DirectPresigner;

/// Settings from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    pub bucket: String,
    /// Sent as Access-Control-Allow-Origin [default: *].
    pub allowed_origin: String,
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        let bucket = std::env::var("UPLOADS_BUCKET_NAME").map_err(|_| "UPLOADS_BUCKET_NAME is not set".to_string())?;
        let allowed_origin = std::env::var("ALLOWED_ORIGIN").unwrap_or_else(|_| "*".into());
        Ok(Self { bucket, allowed_origin })
    }
}

/// Signs PUT URLs; a trait so tests can see what is signed.
pub trait Presign {
    fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// The real signer: the AWS SDK, with checksums only when S3 requires them (never for a
/// presigned PUT), so the URL accepts whatever bytes the browser sends.
pub struct S3Presigner(aws_sdk_s3::Client);

impl S3Presigner {
    /// `force_path_style`: URLs name the bucket in the path, as emulators need.
    pub fn new(config: &aws_config::SdkConfig, force_path_style: bool) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        Self(aws_sdk_s3::Client::from_conf(conf))
    }

    pub fn from_client(client: aws_sdk_s3::Client) -> Self {
        Self(client)
    }

    /// The S3 client, configured as above.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.0
    }
}

impl Presign for S3Presigner {
    async fn presign_put(&self, bucket: &str, key: &str, content_type: &str) -> Result<String, String> {
        let config = PresigningConfig::expires_in(EXPIRES_IN).map_err(|e| e.to_string())?;
        let req = self.0.put_object().bucket(bucket).key(key).content_type(content_type).presigned(config).await;
        req.map(|r| r.uri().to_string()).map_err(|e| e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    extension: String,
}

/// Answers one request.
pub async fn handle(
    event: ApiGatewayV2httpRequest,
    config: &Config,
    presigner: &impl Presign,
) -> ApiGatewayV2httpResponse {
    match upload_url(&event, config, presigner).await {
        Ok(body) => respond(200, &body, config),
        Err((status, message)) => respond(status, &json!({ "error": message }), config),
    }
}

async fn upload_url(
    event: &ApiGatewayV2httpRequest,
    config: &Config,
    presigner: &impl Presign,
) -> Result<Value, (i64, String)> {
    let sub = caller(event).ok_or((401, "no authenticated user".to_string()))?;
    let body = event.body.as_deref().ok_or((400, "the body must be JSON: {\"extension\": \"jpg\"}".to_string()))?;
    if body.len() > MAX_BODY {
        return Err((400, "the body is too large".into()));
    }
    let text = if event.is_base64_encoded {
        decode_base64(body).ok_or((400, "the body is not valid base64".to_string()))?
    } else {
        body.to_string()
    };
    let shape = || (400, "the body must be JSON: {\"extension\": \"jpg\"}".to_string());
    // serde would also take a positional array for the struct; only an object is meant.
    let parsed: Value = serde_json::from_str(&text).map_err(|_| shape())?;
    if !parsed.is_object() {
        return Err(shape());
    }
    let request: UploadRequest = serde_json::from_value(parsed).map_err(|_| shape())?;
    let ext = request.extension.to_ascii_lowercase();
    let (ext, content_type) = ALLOWED.iter().find(|(e, _)| *e == ext).ok_or((
        400,
        format!("extension must be one of {}", ALLOWED.iter().map(|(e, _)| *e).collect::<Vec<_>>().join(", ")),
    ))?;
    let key = format!("{sub}.{ext}");
    let url = presigner
        .presign_put(&config.bucket, &key, content_type)
        .await
        .map_err(|e| (500, format!("cannot sign the upload: {e}")))?;
    Ok(json!({
        "url": url,
        "key": key,
        "method": "PUT",
        "headers": { "Content-Type": content_type },
        "expires_in": EXPIRES_IN.as_secs(),
    }))
}

/// The user id the authorizer put in its context, if it looks like one: a Cognito `sub` is a
/// UUID, and anything else could smuggle a path into the object key.
fn caller(event: &ApiGatewayV2httpRequest) -> Option<String> {
    let lambda = &event.request_context.authorizer.as_ref()?.fields;
    let sub = lambda.get("sub")?.as_str()?;
    let ok = !sub.is_empty() && sub.len() <= 128 && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then(|| sub.to_string())
}

fn respond(status: i64, body: &Value, config: &Config) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(origin) = HeaderValue::from_str(&config.allowed_origin) {
        headers.insert("access-control-allow-origin", origin);
    }
    headers.insert("access-control-allow-methods", HeaderValue::from_static("POST, OPTIONS"));
    headers.insert("access-control-allow-headers", HeaderValue::from_static("authorization, content-type"));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}

fn decode_base64(text: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    String::from_utf8(bytes).ok()
}
