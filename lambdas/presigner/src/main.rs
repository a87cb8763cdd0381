//! Wires the presigner handler to the Lambda runtime and one S3 client.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use presigner::{Config, S3Presigner, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    let presigner = S3Presigner::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let (config, presigner) = (&config, &presigner);
        async move { Ok::<_, Error>(handle(event.payload, config, presigner).await) }
    }))
    .await
}
