//! Throughput of token verification, for `scripts/bench-lambdas`:
//! `bench_authorizer JWKS_URL POOL_ID CLIENT_ID TOKEN_FILE N` verifies the token N times (keys fetched
//! once, then cached, as in a warm Lambda) and prints `{"ops": N, "seconds": S}`.

use std::time::Instant;

use authorizer::{Config, HttpJwks, Verifier};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [jwks, pool, client, token_file, n] = args.as_slice() else {
        return Err("usage: bench_authorizer JWKS_URL POOL_ID CLIENT_ID TOKEN_FILE N".into());
    };
    let n: u32 = n.parse().map_err(|e| format!("N: {e}"))?;
    let token = std::fs::read_to_string(token_file).map_err(|e| format!("{token_file}: {e}"))?;
    let verifier = Verifier::new(Config::new("us-east-1", pool, client, Some(jwks.clone())), HttpJwks::new()?);
    verifier.verify(token.trim()).await.map_err(|e| format!("warm-up: {e:?}"))?;
    let start = Instant::now();
    for _ in 0..n {
        let claims = verifier.verify(token.trim()).await.map_err(|e| format!("{e:?}"))?;
        std::hint::black_box(claims);
    }
    println!(r#"{{"ops": {n}, "seconds": {}}}"#, start.elapsed().as_secs_f64());
    Ok(())
}
