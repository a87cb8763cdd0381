//! Wires the thumbnailer handler to the Lambda runtime and one S3 client.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use thumbnailer::{Config, S3Storage, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Emulators (moto, LocalStack) serve buckets by path, not by host name.
    let path_style = std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| v == "true");
    let storage = S3Storage::new(aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk).force_path_style(path_style).build(),
    ));
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let (config, storage) = (&config, &storage);
        async move {
            handle(event.payload, config, storage)
                .await
                .map_err(|e| Diagnostic { error_type: "ThumbnailError".into(), error_message: e.to_string() })
        }
    }))
    .await
}
