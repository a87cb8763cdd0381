//! Wires the authorizer handler to the Lambda runtime; the verifier (and its key cache) lives
//! as long as the execution environment, so keys are fetched once, not per request.

use authorizer::{Config, HttpJwks, Verifier, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let verifier = Verifier::new(Config::from_env()?, HttpJwks::new()?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let verifier = &verifier;
        async move { Ok::<_, Error>(handle(event.payload, verifier).await) }
    }))
    .await
}
