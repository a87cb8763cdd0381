//! The presigner handler, called directly with fixture events and a signer that records what
//! it was asked to sign.

use std::sync::Mutex;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use presigner::{Config, Presign, handle};
use serde_json::Value;

/// Records each (bucket, key, content type) it signs.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String, String)>>);

impl Presign for Recorder {
    async fn presign_put(&self, bucket: &str, key: &str, content_type: &str) -> Result<String, String> {
        self.0.lock().expect("lock").push((bucket.into(), key.into(), content_type.into()));
        Ok(format!("https://{bucket}.s3.amazonaws.com/{key}?X-Amz-Signature=abc"))
    }
}

fn event() -> ApiGatewayV2httpRequest {
    serde_json::from_str(include_str!("fixtures/key_upload.json")).expect("fixture parses")
}

fn config() -> Config {
    Config { bucket: "uploads".into(), allowed_origin: "https://cruddur.local".into() }
}

fn with_body(body: &str) -> ApiGatewayV2httpRequest {
    let mut e = event();
    e.body = Some(body.into());
    e
}

async fn call(e: ApiGatewayV2httpRequest) -> (i64, Value, ApiGatewayV2httpResponse) {
    let r = handle(e, &config(), &Recorder::default()).await;
    let body = match &r.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => serde_json::from_str(t).expect("JSON body"),
        other => panic!("body {other:?}"),
    };
    (r.status_code, body, r)
}

#[tokio::test]
async fn signs_a_put_for_the_authorizers_sub_with_the_content_type_to_send() {
    // The key is <sub>.<ext>; the response says which Content-Type the upload must carry.
    let recorder = Recorder::default();
    let r = handle(event(), &config(), &recorder).await;
    assert_eq!(r.status_code, 200);
    let signed = recorder.0.lock().expect("lock").clone();
    assert_eq!(
        signed,
        vec![("uploads".into(), "7a3e0c4e-8d7f-4a2b-9f1e-2c3d4e5f6a7b.jpg".into(), "image/jpeg".into())]
    );
    let (_, body, _) = call(event()).await;
    assert_eq!(body["key"], "7a3e0c4e-8d7f-4a2b-9f1e-2c3d4e5f6a7b.jpg");
    assert_eq!(body["headers"]["Content-Type"], "image/jpeg");
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["expires_in"], 300);
}

#[tokio::test]
async fn every_allowed_extension_maps_to_its_content_type_whatever_its_case() {
    // jpg, jpeg, png, webp in any case; the key uses the lower-case extension.
    for (ext, ct) in [("jpg", "image/jpeg"), ("JPEG", "image/jpeg"), ("png", "image/png"), ("WebP", "image/webp")] {
        let (status, body, _) = call(with_body(&format!("{{\"extension\": \"{ext}\"}}"))).await;
        assert_eq!(status, 200, "{ext}");
        assert_eq!(body["headers"]["Content-Type"], ct);
        assert!(body["key"].as_str().expect("key").ends_with(&format!(".{}", ext.to_ascii_lowercase())));
    }
}

#[tokio::test]
async fn hostile_extensions_and_bodies_are_400_with_json_errors() {
    // Traversal, unknown types, wrong shapes, extra fields, garbage, oversize: all refused.
    let bodies = [
        r#"{"extension": "../../etc/passwd"}"#,
        r#"{"extension": "jpg/../../x"}"#,
        r#"{"extension": "exe"}"#,
        r#"{"extension": ""}"#,
        r#"{"extension": "jpg\u0000.png"}"#,
        r#"{"extension": 5}"#,
        r#"{"extension": "jpg", "key": "someone-else.jpg"}"#,
        r#"{}"#,
        r#"["jpg"]"#,
        "not json",
        "",
    ];
    for b in bodies {
        let (status, body, _) = call(with_body(b)).await;
        assert_eq!(status, 400, "{b}");
        assert!(body["error"].is_string(), "{b}: {body}");
    }
    let huge = format!("{{\"extension\": \"{}\"}}", "a".repeat(10_000));
    assert_eq!(call(with_body(&huge)).await.0, 400);
    let mut no_body = event();
    no_body.body = None;
    assert_eq!(call(no_body).await.0, 400);
}

#[tokio::test]
async fn without_an_authorizer_context_or_with_a_hostile_sub_it_is_401() {
    // No verified user, no URL; a sub that could smuggle a path is not a user either.
    let mut e = event();
    e.request_context.authorizer = None;
    let (status, body, _) = call(e).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("no authenticated user")));
    for sub in ["../../admin", "a/b", "", "x y"] {
        let mut e = event();
        if let Some(a) = e.request_context.authorizer.as_mut() {
            a.fields.insert("sub".into(), Value::String(sub.into()));
        }
        assert_eq!(call(e).await.0, 401, "{sub:?}");
    }
}

#[tokio::test]
async fn every_response_has_cors_headers() {
    // Success and failure alike carry the CORS headers a browser needs to read them.
    for e in [event(), with_body("nope")] {
        let (_, _, r) = call(e).await;
        assert_eq!(
            r.headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
            Some("https://cruddur.local")
        );
        assert!(r.headers.contains_key("access-control-allow-headers"));
        assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    }
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded() {
    // API Gateway may base64-encode the body.
    let mut e = with_body("eyJleHRlbnNpb24iOiAicG5nIn0=");
    e.is_base64_encoded = true;
    let (status, body, _) = call(e).await;
    assert_eq!(status, 200);
    assert_eq!(body["headers"]["Content-Type"], "image/png");
}
