//! Throughput of URL signing, for `scripts/bench-lambdas`: `bench_presigner N` signs N upload URLs
//! (static credentials, no network) and prints `{"ops": N, "seconds": S}`.

use std::time::Instant;

use presigner::{Presign, S3Presigner};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let n: u32 = std::env::args().nth(1).ok_or("N")?.parse().map_err(|e| format!("N: {e}"))?;
    let sdk = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(aws_sdk_s3::config::Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "bench",
        )))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let signer = S3Presigner::new(&sdk, false);
    let start = Instant::now();
    for i in 0..n {
        let key = format!("7a3e0c4e-8d7f-4a2b-9f1e-{i:012}.jpg");
        let url = signer.presign_put("cruddur-uploaded-avatars", &key, "image/jpeg").await?;
        std::hint::black_box(url);
    }
    println!(r#"{{"ops": {n}, "seconds": {}}}"#, start.elapsed().as_secs_f64());
    Ok(())
}
