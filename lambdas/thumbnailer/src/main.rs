//! Wires the thumbnailer handler to the Lambda runtime and one S3 client.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use thumbnailer::{Config, S3Storage, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    let storage = S3Storage::new(aws_sdk_s3::Client::new(
        &aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
    ));
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let (config, storage) = (&config, &storage);
        async move { handle(event.payload, config, storage).await.map_err(Error::from) }
    }))
    .await
}
