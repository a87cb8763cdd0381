//! An API Gateway v2 REQUEST authorizer (payload 2.0, simple responses) that verifies Cognito
//! access tokens.
//!
//! *Guarantees*: fails closed: anything but a valid access token for this pool and client
//! (including the keys being unreachable) denies. Only RS256 with a key from the pool's JWKS
//! is accepted (`alg: none` and HMAC tokens are refused before any key is used). The issuer is
//! always `https://cognito-idp.<region>.amazonaws.com/<pool>`, whatever JWKS_URL says. Keys are
//! cached across invocations and fetched again on an unknown `kid`, at most every 30 s. No
//! token is ever logged.
//!
//! *Speed*: each JWKS key is parsed into an aws-lc public key once, when its set is fetched,
//! and every signature is verified on that parsed key; the token's three parts are decoded
//! once. What a verification costs is then the RSA-2048 check itself (measured against a bare
//! aws-lc verification in `examples/bench_authorizer.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// An unknown `kid` fetches the keys again at most this often.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Tokens longer than this are refused unread (Cognito access tokens are about 1 KB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Settings from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    pub issuer: String,
    pub client_id: String,
    pub jwks_url: String,
}

impl Config {
    /// USER_POOL_ID, CLIENT_ID, AWS_REGION, and optionally JWKS_URL.
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
        let pool = var("USER_POOL_ID")?;
        let region =
            std::env::var("AWS_REGION").ok().or_else(|| pool.split('_').next().map(str::to_string)).unwrap_or_default();
        Ok(Self::new(&region, &pool, &var("CLIENT_ID")?, std::env::var("JWKS_URL").ok()))
    }

    pub fn new(region: &str, pool: &str, client_id: &str, jwks_url: Option<String>) -> Self {
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool}");
        let jwks_url = jwks_url.unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        Self { issuer, client_id: client_id.to_string(), jwks_url }
    }
}

/// Where the keys come from; a trait so tests can serve their own.
pub trait FetchJwks: Send + Sync {
    fn fetch(&self, url: &str) -> impl Future<Output = Result<JwkSet, String>> + Send;
}

/// Keys over HTTPS, with a short timeout: a slow JWKS must not hold requests.
pub struct HttpJwks(reqwest::Client);

impl HttpJwks {
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().map_err(|e| e.to_string())?;
        Ok(Self(client))
    }
}

impl FetchJwks for HttpJwks {
    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let resp = self.0.get(url).send().await.map_err(|e| e.to_string())?;
        let resp = resp.error_for_status().map_err(|e| e.to_string())?;
        resp.json::<JwkSet>().await.map_err(|e| e.to_string())
    }
}

/// Why a request was denied (logged; never shown to the caller).
#[derive(Debug, PartialEq)]
pub enum Denied {
    NoToken,
    TooLarge,
    Malformed,
    Algorithm(String),
    UnknownKey,
    KeysUnavailable(String),
    Invalid(String),
    NotAnAccessToken,
    WrongClient,
}

/// What a valid token says about its user, and the claims every token is checked on.
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub token_use: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    pub iss: String,
    pub exp: u64,
    #[serde(default)]
    pub nbf: Option<u64>,
}

/// A token's header: only what decides how it is checked.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

struct KeyCache {
    keys: HashMap<String, Arc<ParsedPublicKey>>,
    fetched_at: Option<Instant>,
}

/// Verifies tokens for one pool and client, caching the pool's keys parsed.
pub struct Verifier<F> {
    config: Config,
    fetcher: F,
    cache: Mutex<KeyCache>,
}

/// Seconds since the epoch.
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl<F: FetchJwks> Verifier<F> {
    pub fn new(config: Config, fetcher: F) -> Self {
        Self { config, fetcher, cache: Mutex::new(KeyCache { keys: HashMap::new(), fetched_at: None }) }
    }

    /// The token's claims if it is a valid access token for this pool and client. The
    /// signature is checked before any claim is believed.
    pub async fn verify(&self, token: &str) -> Result<Claims, Denied> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Denied::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Denied::Malformed);
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| Denied::Malformed);
        let header: Header = serde_json::from_slice(&decode(header_b64)?).map_err(|_| Denied::Malformed)?;
        if header.alg != "RS256" {
            return Err(Denied::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(Denied::Malformed)?;
        let key = self.key(&kid).await?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        key.verify_sig(signing_input.as_bytes(), &decode(signature_b64)?)
            .map_err(|_| Denied::Invalid("InvalidSignature".into()))?;
        let claims: Claims = serde_json::from_slice(&decode(payload_b64)?)
            .map_err(|e| Denied::Invalid(format!("InvalidClaims: {e}")))?;
        let now = now();
        if claims.exp.saturating_add(LEEWAY_SECS) < now {
            return Err(Denied::Invalid("ExpiredSignature".into()));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS)) {
            return Err(Denied::Invalid("ImmatureSignature".into()));
        }
        if claims.iss != self.config.issuer {
            return Err(Denied::Invalid("InvalidIssuer".into()));
        }
        if claims.token_use.as_deref() != Some("access") {
            return Err(Denied::NotAnAccessToken);
        }
        if claims.client_id.as_deref() != Some(self.config.client_id.as_str()) {
            return Err(Denied::WrongClient);
        }
        Ok(claims)
    }

    /// The key for `kid`, fetching the key set when it is unknown (rate-limited).
    async fn key(&self, kid: &str) -> Result<Arc<ParsedPublicKey>, Denied> {
        let mut cache = self.cache.lock().await;
        if let Some(key) = cache.keys.get(kid) {
            return Ok(key.clone());
        }
        if cache.fetched_at.is_some_and(|t| t.elapsed() < MIN_REFETCH) {
            return Err(Denied::UnknownKey);
        }
        cache.fetched_at = Some(Instant::now());
        let set = self.fetcher.fetch(&self.config.jwks_url).await.map_err(Denied::KeysUnavailable)?;
        // Each RSA key parsed once, here; a key that does not parse is left out (its tokens
        // then fail as signed by an unknown key).
        cache.keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else { return None };
                let n = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
                let e = URL_SAFE_NO_PAD.decode(&rsa.e).ok()?;
                let parsed = RsaPublicKeyComponents { n, e }.to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256).ok()?;
                Some((jwk.common.key_id.clone()?, Arc::new(parsed)))
            })
            .collect();
        cache.keys.get(kid).cloned().ok_or(Denied::UnknownKey)
    }
}

/// The token from the identity source (the Authorization header): `Bearer <jwt>` or a bare JWT.
pub fn token(event: &ApiGatewayV2CustomAuthorizerV2Request) -> Option<String> {
    let raw = event
        .identity_source
        .as_ref()
        .and_then(|s| s.first().cloned())
        .or_else(|| event.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string))?;
    let raw = raw.trim();
    let token = match raw.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => raw,
    };
    (!token.is_empty()).then(|| token.to_string())
}

/// Answers one authorization request: allowed with `{sub, username}` in the context, or denied.
pub async fn handle<F: FetchJwks>(
    event: ApiGatewayV2CustomAuthorizerV2Request,
    verifier: &Verifier<F>,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let outcome = match token(&event) {
        Some(t) => verifier.verify(&t).await,
        None => Err(Denied::NoToken),
    };
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    match outcome {
        Ok(claims) => {
            response.is_authorized = true;
            response.context = json!({ "sub": claims.sub, "username": claims.username });
        }
        Err(reason) => {
            // The reason only: the token itself is a credential and is never logged.
            eprintln!("denied: {reason:?}");
            response.is_authorized = false;
            response.context = json!({});
        }
    }
    response
}
