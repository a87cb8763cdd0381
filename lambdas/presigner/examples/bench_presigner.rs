//! Throughput of URL signing, for `scripts/bench-lambdas`: `bench_presigner N` signs N upload URLs
//! (static credentials, no network) with the signer the Lambda uses, then measures the floor
//! in the same run: the SigV4 work alone, N times a SHA-256 of a canonical request of the same
//! shape and the five HMACs (four for the signing key, one for the signature). Prints
//! `{"ops": N, "seconds": S, "floor_seconds": F}`.

use std::time::{Instant, SystemTime};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use presigner::{DirectPresigner, Presign};
use sha2::{Digest, Sha256};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let n: u32 = std::env::args().nth(1).ok_or("N")?.parse().map_err(|e| format!("N: {e}"))?;
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let sdk =
        aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("AKIAIOSFODNN7EXAMPLE", secret, None, None, "bench"),
            ))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
    let bucket = "cruddur-uploaded-avatars";
    let signer = DirectPresigner::new(&sdk, false, bucket).await?;
    let start = Instant::now();
    let mut length = 0;
    for i in 0..n {
        let key = format!("7a3e0c4e-8d7f-4a2b-9f1e-{i:012}.jpg");
        let url = signer.presign_put(bucket, &key, "image/jpeg").await?;
        length = url.len();
        std::hint::black_box(url);
    }
    let seconds = start.elapsed().as_secs_f64();

    // The floor: what SigV4 itself must compute per URL.
    let now = SystemTime::now();
    let start = Instant::now();
    for i in 0..n {
        let canonical = format!(
            "PUT\n/7a3e0c4e-8d7f-4a2b-9f1e-{i:012}.jpg\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261129%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261129T010000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=content-type%3Bhost&x-id=PutObject\ncontent-type:image/jpeg\nhost:{bucket}.s3.us-east-1.amazonaws.com\n\ncontent-type;host\nUNSIGNED-PAYLOAD"
        );
        let hash = Sha256::digest(canonical.as_bytes());
        let string_to_sign =
            format!("AWS4-HMAC-SHA256\n20261129T010000Z\n20261129/us-east-1/s3/aws4_request\n{hash:x}");
        let key = generate_signing_key(secret, now, "us-east-1", "s3");
        std::hint::black_box(calculate_signature(key, string_to_sign.as_bytes()));
    }
    let floor_seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(length);
    println!(r#"{{"ops": {n}, "seconds": {seconds}, "floor_seconds": {floor_seconds}}}"#);
    Ok(())
}
