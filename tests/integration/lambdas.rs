//! The Lambda handlers against moto: a presigned URL that a browser-style PUT really uploads
//! through, and real access tokens issued by moto's Cognito through the authorizer.

use std::io::{Read, Write};
use std::net::TcpStream;

use authorizer::{Config as AuthConfig, Denied, HttpJwks, Verifier};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use presigner::{Config as PresignConfig, S3Presigner};

use crate::harness::Env;

/// A PUT like a browser's `fetch(url, {method: "PUT", headers, body})`; the status code.
pub(crate) fn put(url: &str, content_type: &str, body: &[u8]) -> u16 {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut s = TcpStream::connect(host).expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn a_presigned_url_takes_a_real_upload_and_carries_no_checksum() {
    // The presigner's URL accepts the bytes of a photo PUT with the Content-Type it names, and
    // has no checksum parameters that would make S3 reject real bytes.
    let env = Env::new();
    env.block_on(env.s3().create_bucket().bucket("uploads-bucket").send()).expect("bucket");
    let mut event: ApiGatewayV2httpRequest =
        serde_json::from_str(include_str!("../../lambdas/presigner/tests/fixtures/key_upload.json")).expect("fixture");
    event.body = Some(r#"{"extension": "png"}"#.into());
    let config = PresignConfig { bucket: "uploads-bucket".into(), allowed_origin: "*".into() };
    let signer = S3Presigner::new(&env.sdk_config(), true);
    let response = env.block_on(presigner::handle(event, &config, &signer));
    assert_eq!(response.status_code, 200);
    let body: serde_json::Value = match &response.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => serde_json::from_str(t).expect("json"),
        other => panic!("{other:?}"),
    };
    let url = body["url"].as_str().expect("url");
    let lower = url.to_ascii_lowercase();
    assert!(!lower.contains("checksum"), "no checksum parameters: {url}");
    assert!(lower.contains("x-amz-signedheaders=content-type%3bhost"), "Content-Type is signed: {url}");
    assert!(lower.contains("x-amz-expires=300"), "{url}");

    let photo = b"\x89PNG\r\n\x1a\n pretend these are the bytes of a real avatar".repeat(100);
    assert_eq!(put(url, "image/png", &photo), 200);
    let key = body["key"].as_str().expect("key");
    assert_eq!(key, "7a3e0c4e-8d7f-4a2b-9f1e-2c3d4e5f6a7b.png");
    let stored = env.block_on(env.s3().get_object().bucket("uploads-bucket").key(key).send()).expect("uploaded");
    assert_eq!(env.block_on(stored.body.collect()).expect("body").into_bytes().to_vec(), photo);
}

#[test]
fn real_cognito_access_tokens_are_allowed_and_id_tokens_and_other_clients_are_not() {
    // moto's Cognito issues RS256 tokens; the authorizer verifies them with the pool's JWKS
    // (served by moto) and the AWS issuer, and tells access tokens from id tokens.
    let env = Env::new();
    let cognito = env.cognito();
    let pool = env.block_on(cognito.create_user_pool().pool_name("users").send()).expect("pool");
    let pool_id = pool.user_pool().and_then(|p| p.id()).expect("id").to_string();
    let client = |name: &str| {
        let c = cognito
            .create_user_pool_client()
            .user_pool_id(&pool_id)
            .client_name(name)
            .explicit_auth_flows(aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .explicit_auth_flows(aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType::AllowRefreshTokenAuth);
        env.block_on(c.send()).expect("client").user_pool_client().and_then(|c| c.client_id()).expect("id").to_string()
    };
    let (web, other) = (client("web"), client("other"));
    env.block_on(cognito.admin_create_user().user_pool_id(&pool_id).username("andrew").send()).expect("user");
    let set = cognito
        .admin_set_user_password()
        .user_pool_id(&pool_id)
        .username("andrew")
        .password("Passw0rd!Passw0rd")
        .permanent(true);
    env.block_on(set.send()).expect("password");
    let login = |client_id: &str| {
        let auth = cognito
            .initiate_auth()
            .client_id(client_id)
            .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", "andrew")
            .auth_parameters("PASSWORD", "Passw0rd!Passw0rd");
        env.block_on(auth.send()).expect("login").authentication_result().cloned().expect("tokens")
    };
    let tokens = login(&web);
    let jwks = format!("{}/{pool_id}/.well-known/jwks.json", env.moto.endpoint());
    let verifier =
        Verifier::new(AuthConfig::new("us-east-1", &pool_id, &web, Some(jwks)), HttpJwks::new().expect("client"));

    let claims =
        env.block_on(verifier.verify(tokens.access_token().expect("access"))).expect("a real access token is valid");
    let user = env.block_on(cognito.admin_get_user().user_pool_id(&pool_id).username("andrew").send()).expect("user");
    let sub = user.user_attributes().iter().find(|a| a.name() == "sub").and_then(|a| a.value()).expect("sub");
    assert_eq!(claims.sub, sub);
    assert_eq!(
        env.block_on(verifier.verify(tokens.id_token().expect("id"))).expect_err("id token"),
        Denied::NotAnAccessToken
    );
    let others = login(&other);
    assert_eq!(
        env.block_on(verifier.verify(others.access_token().expect("access"))).expect_err("other client"),
        Denied::WrongClient
    );
}
