//! The avatar flow end to end with the artifacts apply deployed: the real `bootstrap` binaries,
//! unpacked from the zips whose CodeSha256 moto reports, run through a Runtime API emulator
//! against moto, each with the environment its deployed function configuration holds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use serde_json::{Value, json};

use crate::harness::{Env, code_sha256};
use crate::lambdas::put;
use crate::runtime_api::{Outcome, Runtime, Webhook};
use crate::stack::stack;

/// The deployed function's zip, checked against the CodeSha256 moto holds, unpacked; and the
/// environment its configuration sets.
fn deployed(env: &Env, function: &str, dir: &Path) -> (PathBuf, Vec<(String, String)>) {
    let crate_name = function.trim_start_matches("cruddur-");
    let zip_path = crate::harness::packaged_zip(crate_name, "x86_64");
    let bytes = std::fs::read(&zip_path).unwrap_or_else(|e| panic!("{}: {e}", zip_path.display()));
    let config =
        env.block_on(env.lambda().get_function_configuration().function_name(function).send()).expect("configuration");
    assert_eq!(config.code_sha256(), Some(code_sha256(&bytes).as_str()), "{function} runs the zip apply deployed");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut entry = archive.by_name("bootstrap").expect("bootstrap in the zip");
    let mut binary = Vec::new();
    entry.read_to_end(&mut binary).expect("unzip");
    let path = dir.join(crate_name).join("bootstrap");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    std::fs::write(&path, binary).expect("write bootstrap");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.unix_mode().expect("mode"))).expect("chmod");
    let mut vars: Vec<(String, String)> = config
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    // What the Lambda service gives a function, pointed at the emulator.
    vars.extend(
        [
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            ("AWS_ENDPOINT_URL", &env.moto.endpoint()),
            ("S3_FORCE_PATH_STYLE", "true"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    (path, vars)
}

/// An API Gateway HTTP API (payload 2.0) request authorizer event for the upload route.
fn authorizer_event(authorization: &str) -> Value {
    json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/POST/avatars/key_upload",
        "identitySource": [authorization],
        "routeKey": "POST /avatars/key_upload",
        "rawPath": "/avatars/key_upload",
        "rawQueryString": "",
        "headers": { "authorization": authorization, "content-type": "application/json" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": { "method": "POST", "path": "/avatars/key_upload", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "Mozilla/5.0" },
            "requestId": "e2e", "routeKey": "POST /avatars/key_upload", "stage": "$default",
            "time": "28/Nov/2026:01:50:00 +0000", "timeEpoch": 1795830600000u64
        }
    })
}

/// The S3 ObjectCreated event S3 sends the thumbnailer: the key is URL-encoded.
fn s3_event(bucket: &str, key: &str, size: usize) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../lambdas/thumbnailer/tests/fixtures/s3_put.json")).expect("fixture");
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = bucket.into();
    s3["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
    s3["object"]["key"] =
        percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string().into();
    s3["object"]["size"] = size.into();
    event
}

/// A 4000x3000 photo-like JPEG (12 MP, as a phone takes).
fn photo() -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(4000, 3000, |x, y| image::Rgb([(x / 16) as u8, (y / 12) as u8, ((x + y) / 28) as u8]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img).expect("encode");
    out
}

#[test]
fn the_packaged_lambdas_serve_the_avatar_flow_end_to_end() {
    let env = Env::new();
    let pre = stack(&env);
    let webhook = Webhook::start();
    let apply = env
        .command(&["apply", "--auto-approve"])
        .env("THUMBING_WEBHOOK_URL", webhook.url("/avatar"))
        .env("THUMBING_WEBHOOK_PROTOCOL", "http")
        .output()
        .expect("runs");
    assert!(apply.status.success(), "{}", String::from_utf8_lossy(&apply.stderr));

    // A user signs up and logs in, as the frontend does.
    let cognito = env.cognito();
    env.block_on(cognito.admin_create_user().user_pool_id(&pre.pool_id).username("andrew").send()).expect("user");
    let set = cognito
        .admin_set_user_password()
        .user_pool_id(&pre.pool_id)
        .username("andrew")
        .password("Passw0rd!Passw0rd")
        .permanent(true);
    env.block_on(set.send()).expect("password");
    let login = cognito
        .initiate_auth()
        .client_id(&pre.client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "andrew")
        .auth_parameters("PASSWORD", "Passw0rd!Passw0rd");
    let tokens = env.block_on(login.send()).expect("login").authentication_result().cloned().expect("tokens");
    let access = tokens.access_token().expect("access token").to_string();

    let bin = env.path("task");
    let runtime = |function: &str, extra: &[(&str, String)]| {
        let (bootstrap, mut vars) = deployed(&env, function, &bin);
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        Runtime::start(&bootstrap, function, &vars, env.path(&format!("{function}.log")))
    };

    // The authorizer allows the real token and denies a forged one.
    let jwks = format!("{}/{}/.well-known/jwks.json", env.moto.endpoint(), pre.pool_id);
    let mut authorizer = runtime("cruddur-authorizer", &[("JWKS_URL", jwks)]);
    let allowed = match authorizer.invoke(&authorizer_event(&format!("Bearer {access}"))) {
        Outcome::Response(r) => r,
        other => panic!("{other:?}\n{}", authorizer.log()),
    };
    assert_eq!(allowed["isAuthorized"], true, "{allowed}");
    assert_eq!(allowed["context"]["username"], "andrew");
    let user =
        env.block_on(cognito.admin_get_user().user_pool_id(&pre.pool_id).username("andrew").send()).expect("user");
    let sub = user.user_attributes().iter().find(|a| a.name() == "sub").and_then(|a| a.value()).expect("sub");
    assert_eq!(allowed["context"]["sub"], sub);
    let mut parts: Vec<String> = access.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect(); // a tampered payload under the original signature
    match authorizer.invoke(&authorizer_event(&format!("Bearer {}", parts.join(".")))) {
        Outcome::Response(r) => assert_eq!(r["isAuthorized"], false, "{r}"),
        other => panic!("{other:?}"),
    }
    assert!(!authorizer.log().contains(&access), "the authorizer never logs a token");

    // The presigner, given the context the authorizer returned, hands out an upload URL.
    let mut presigner = runtime("cruddur-presigner", &[]);
    let mut request: Value =
        serde_json::from_str(include_str!("../../lambdas/presigner/tests/fixtures/key_upload.json")).expect("fixture");
    request["requestContext"]["authorizer"]["lambda"] = allowed["context"].clone();
    request["body"] = r#"{"extension": "jpg"}"#.into();
    let response = match presigner.invoke(&request) {
        Outcome::Response(r) => r,
        other => panic!("{other:?}\n{}", presigner.log()),
    };
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().expect("body")).expect("json body");
    let key = body["key"].as_str().expect("key").to_string();
    assert_eq!(key, format!("{sub}.jpg"));
    let url = body["url"].as_str().expect("url");

    let mut thumbnailer = runtime("cruddur-thumbnailer", &[]);
    let uploads = "cruddur-uploads-test";
    let processed = format!("avatars/processed/{sub}.jpg");
    let s3 = env.s3();

    // A text file named .jpg: the thumbnailer reports an error through the Runtime API, and
    // writes nothing.
    assert_eq!(put(url, "image/jpeg", b"not a photo at all\n"), 200);
    match thumbnailer.invoke(&s3_event(uploads, &key, 19)) {
        Outcome::Error(e) => {
            assert!(e["errorMessage"].as_str().unwrap_or_default().contains("not a JPEG, PNG or WebP image"), "{e}")
        }
        other => panic!("a text file must fail: {other:?}"),
    }
    let listed =
        env.block_on(s3.list_objects_v2().bucket("assets.cruddur.test").prefix("avatars/").send()).expect("list");
    assert_eq!(listed.key_count(), Some(0), "nothing written for a failed image");

    // The real photo: uploaded through the URL, thumbnailed to 512x512 under avatars/processed/.
    let photo = photo();
    assert_eq!(put(url, "image/jpeg", &photo), 200);
    match thumbnailer.invoke(&s3_event(uploads, &key, photo.len())) {
        Outcome::Response(_) => {}
        other => panic!("{other:?}\n{}", thumbnailer.log()),
    }
    let out = env.block_on(s3.get_object().bucket("assets.cruddur.test").key(&processed).send()).expect("thumbnail");
    assert_eq!(out.content_type(), Some("image/jpeg"));
    let bytes = env.block_on(out.body.collect()).expect("body").into_bytes();
    let thumb = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).expect("a JPEG");
    assert_eq!((thumb.width(), thumb.height()), (512, 512));

    // The assets bucket's notification reached the topic, which delivered it to the webhook.
    // S3 sends an s3:TestEvent when the notification is configured; then the object's event.
    let s3_message = loop {
        let delivered = webhook.next(Duration::from_secs(30)).expect("the webhook was called with the event");
        let notification: Value = serde_json::from_str(&delivered).expect("SNS JSON");
        assert_eq!(notification["Type"], "Notification");
        let message: Value = serde_json::from_str(notification["Message"].as_str().expect("message")).expect("JSON");
        if message["Event"] != "s3:TestEvent" {
            break message;
        }
    };
    assert_eq!(s3_message["Records"][0]["eventName"], "ObjectCreated:Put", "{s3_message}");
    let key = s3_message["Records"][0]["s3"]["object"]["key"].as_str().expect("key"); // URL-encoded
    assert_eq!(percent_encoding::percent_decode_str(key).decode_utf8_lossy(), processed, "{s3_message}");
}
