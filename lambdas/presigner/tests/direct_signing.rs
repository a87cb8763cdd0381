//! The direct signer's URLs are byte for byte the SDK's, at the same time with the same
//! credentials: for virtual-hosted and path-style endpoints, with and without a session token.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{Credentials, Region, SharedCredentialsProvider};
use aws_sdk_s3::presigning::PresigningConfig;
use presigner::{DirectPresigner, EXPIRES_IN, S3Presigner};

fn sdk(token: Option<&str>, region: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .region(Region::new(region.to_string()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            token.map(str::to_string),
            None,
            "test",
        )))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

#[tokio::test]
async fn direct_urls_are_the_sdks_urls() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_830_600);
    for (path_style, token, region) in
        [(false, None, "us-east-1"), (true, None, "us-east-1"), (false, Some("FwoGZXIvYXdzE+/session=="), "eu-west-2")]
    {
        let sdk = sdk(token, region);
        let client = S3Presigner::new(&sdk, path_style).client().clone();
        let direct = DirectPresigner::new(&sdk, path_style, "cruddur-uploaded-avatars").await.expect("resolves");
        for (key, content_type) in
            [("7a3e0c4e-8d7f-4a2b-9f1e-2c3d4e5f6a7b.jpg", "image/jpeg"), ("a b+c/ü.png", "image/png")]
        {
            let config = PresigningConfig::builder().start_time(at).expires_in(EXPIRES_IN).build().expect("config");
            let sdk = client
                .put_object()
                .bucket("cruddur-uploaded-avatars")
                .key(key)
                .content_type(content_type)
                .presigned(config)
                .await
                .expect("sdk presigns")
                .uri()
                .to_string();
            let ours = direct.presign_at(key, content_type, at).await.expect("signs");
            assert_eq!(ours, sdk, "path_style={path_style} token={token:?} key={key}");
        }
    }
}
