//! The authorizer handler with real RS256 tokens signed by a test key (served as the pool's
//! JWKS) and every kind of forged or wrong token: each must be denied, and only that.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use authorizer::{Config, Denied, FetchJwks, Verifier, handle};
use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const POOL: &str = "us-east-1_TestPool";
const CLIENT: &str = "test-client";
const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool";
const PRIVATE_KEY: &[u8] = include_bytes!("fixtures/test-key.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("fixtures/test-key.pub.pem");

/// Serves the fixture JWKS, counting fetches; or fails like an unreachable endpoint.
struct Keys {
    fetches: AtomicUsize,
    reachable: bool,
}

impl FetchJwks for &Keys {
    async fn fetch(&self, _url: &str) -> Result<JwkSet, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if !self.reachable {
            return Err("connection refused".into());
        }
        serde_json::from_str(include_str!("fixtures/jwks.json")).map_err(|e| e.to_string())
    }
}

fn keys() -> Keys {
    Keys { fetches: AtomicUsize::new(0), reachable: true }
}

fn verifier(keys: &Keys) -> Verifier<&Keys> {
    Verifier::new(Config::new("us-east-1", POOL, CLIENT, Some("https://keys.invalid/jwks.json".into())), keys)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

fn claims() -> Value {
    json!({
        "sub": "7a3e0c4e-8d7f-4a2b-9f1e-2c3d4e5f6a7b", "username": "andrew", "iss": ISSUER,
        "token_use": "access", "client_id": CLIENT, "exp": now() + 3600, "iat": now(), "auth_time": now()
    })
}

fn sign(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, claims, &EncodingKey::from_rsa_pem(PRIVATE_KEY).expect("test key")).expect("signs")
}

fn valid() -> String {
    sign(&claims(), "test-key-1")
}

fn with(key: &str, value: Value) -> String {
    let mut c = claims();
    c[key] = value;
    sign(&c, "test-key-1")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn request(authorization: &str) -> ApiGatewayV2CustomAuthorizerV2Request {
    let mut r: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_value(json!({
        "version": "2.0", "type": "REQUEST", "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abc/$default/POST/avatars/key_upload",
        "identitySource": [authorization], "routeKey": "POST /avatars/key_upload", "rawPath": "/avatars/key_upload",
        "headers": {"authorization": authorization},
        "requestContext": {"accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "POST", "path": "/avatars/key_upload", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "x"},
            "requestId": "r", "routeKey": "POST /avatars/key_upload", "stage": "$default", "time": "t", "timeEpoch": 0}
    }))
    .expect("request parses");
    if authorization.is_empty() {
        r.identity_source = None;
        r.headers.clear();
    }
    r
}

#[tokio::test]
async fn a_valid_access_token_is_allowed_with_sub_and_username_in_the_context() {
    // Bearer and bare forms both work; the context carries who the user is.
    let k = keys();
    let v = verifier(&k);
    for auth in [format!("Bearer {}", valid()), valid(), format!("bearer   {}", valid())] {
        let r = handle(request(&auth), &v).await;
        assert!(r.is_authorized, "{auth}");
        assert_eq!(r.context, json!({"sub": "7a3e0c4e-8d7f-4a2b-9f1e-2c3d4e5f6a7b", "username": "andrew"}));
    }
    assert_eq!(k.fetches.load(Ordering::SeqCst), 1, "keys are fetched once and cached across invocations");
}

#[tokio::test]
async fn each_forgery_and_each_wrong_claim_is_denied_for_its_own_reason() {
    // A valid signature does not rescue a wrong issuer, client, token use or time.
    let k = keys();
    let v = verifier(&k);
    let parts: Vec<String> = valid().split('.').map(str::to_string).collect();
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT","kid":"test-key-1"}"#), parts[1]);
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("test-key-1".into());
    let hs256 = encode(&hs, &claims(), &EncodingKey::from_secret(PUBLIC_KEY)).expect("hs256");
    let mut payload = claims();
    payload["sub"] = json!("someone-else");
    let tampered = format!("{}.{}.{}", parts[0], b64(payload.to_string().as_bytes()), parts[2]);
    let huge = format!(
        "{}.{}.{}",
        b64(format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(20_000)).as_bytes()),
        parts[1],
        parts[2]
    );
    type Case = (&'static str, String, fn(&Denied) -> bool);
    let cases: Vec<Case> = vec![
        ("alg none", none, |d| matches!(d, Denied::Malformed | Denied::Algorithm(_))),
        ("HS256 with the public key", hs256, |d| matches!(d, Denied::Algorithm(_))),
        ("unknown kid", sign(&claims(), "not-a-pool-key"), |d| *d == Denied::UnknownKey),
        (
            "wrong issuer",
            with("iss", json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other")),
            |d| matches!(d, Denied::Invalid(m) if m.contains("Issuer")),
        ),
        ("wrong client", with("client_id", json!("other-client")), |d| *d == Denied::WrongClient),
        ("id token", with("token_use", json!("id")), |d| *d == Denied::NotAnAccessToken),
        ("expired", with("exp", json!(now() - 3600)), |d| matches!(d, Denied::Invalid(m) if m.contains("Expired"))),
        (
            "not yet valid",
            with("nbf", json!(now() + 3600)),
            |d| matches!(d, Denied::Invalid(m) if m.contains("Immature")),
        ),
        ("tampered payload", tampered, |d| matches!(d, Denied::Invalid(m) if m.contains("Signature"))),
        ("garbage", "abc.def".into(), |d| *d == Denied::Malformed),
        ("huge header", huge, |d| *d == Denied::TooLarge),
    ];
    for (what, token, expected) in cases {
        let denied = v.verify(&token).await.expect_err(what);
        assert!(expected(&denied), "{what}: denied for the wrong reason: {denied:?}");
        assert!(!handle(request(&format!("Bearer {token}")), &v).await.is_authorized, "{what}");
    }
}

#[tokio::test]
async fn small_clock_skew_is_tolerated() {
    // exp a few seconds ago and nbf a few seconds ahead are within the leeway.
    let k = keys();
    let v = verifier(&k);
    assert!(v.verify(&with("exp", json!(now() - 5))).await.is_ok());
    assert!(v.verify(&with("nbf", json!(now() + 5))).await.is_ok());
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_at_most_every_thirty_seconds() {
    // A flood of tokens with unknown kids cannot turn into a flood of JWKS requests.
    let k = keys();
    let v = verifier(&k);
    assert!(v.verify(&valid()).await.is_ok());
    for _ in 0..20 {
        assert_eq!(v.verify(&sign(&claims(), "rotated-key")).await.expect_err("unknown"), Denied::UnknownKey);
    }
    assert_eq!(k.fetches.load(Ordering::SeqCst), 1, "the first fetch was under 30 s ago: no refetch");
}

#[tokio::test]
async fn unreachable_keys_deny_and_a_missing_header_denies() {
    // Fail closed: no keys, no entry; no token, no entry.
    let down = Keys { fetches: AtomicUsize::new(0), reachable: false };
    let v = verifier(&down);
    assert!(matches!(v.verify(&valid()).await, Err(Denied::KeysUnavailable(_))));
    assert!(!handle(request(&valid()), &v).await.is_authorized);
    let k = keys();
    let v = verifier(&k);
    assert!(!handle(request(""), &v).await.is_authorized);
    assert!(!handle(request("Basic dXNlcjpwYXNz"), &v).await.is_authorized);
}
