//! Wires the presigner handler to the Lambda runtime and one S3 client.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use presigner::{Config, DirectPresigner, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Emulators (moto, LocalStack) serve buckets by path, not by host name.
    let path_style = std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| v == "true");
    // The SDK resolves the bucket's endpoint once; each URL is then signed directly.
    let presigner = DirectPresigner::new(&sdk, path_style, &config.bucket).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let (config, presigner) = (&config, &presigner);
        async move { Ok::<_, Error>(handle(event.payload, config, presigner).await) }
    }))
    .await
}
