//! Throughput of token verification, for `scripts/bench-lambdas`:
//! `bench_authorizer JWKS_URL POOL_ID CLIENT_ID TOKEN_FILE N` verifies the token N times (keys fetched
//! once, then cached, as in a warm Lambda), then measures the floor in the same run: N bare
//! RSA-2048 PKCS#1 v1.5 SHA-256 verifications of the same signature with the same library
//! (aws-lc) on an already parsed key. Prints `{"ops": N, "seconds": S, "floor_seconds": F}`.

use std::time::Instant;

use authorizer::{Config, HttpJwks, Verifier};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [jwks, pool, client, token_file, n] = args.as_slice() else {
        return Err("usage: bench_authorizer JWKS_URL POOL_ID CLIENT_ID TOKEN_FILE N".into());
    };
    let n: u32 = n.parse().map_err(|e| format!("N: {e}"))?;
    let token = std::fs::read_to_string(token_file).map_err(|e| format!("{token_file}: {e}"))?;
    let token = token.trim();
    let verifier = Verifier::new(Config::new("us-east-1", pool, client, Some(jwks.clone())), HttpJwks::new()?);
    verifier.verify(token).await.map_err(|e| format!("warm-up: {e:?}"))?;
    let start = Instant::now();
    for _ in 0..n {
        let claims = verifier.verify(token).await.map_err(|e| format!("{e:?}"))?;
        std::hint::black_box(claims);
    }
    let seconds = start.elapsed().as_secs_f64();

    // The floor: the signature check alone, on the key parsed once.
    let set: serde_json::Value = reqwest::get(jwks.as_str())
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let key = &set["keys"][0];
    let field = |name: &str| URL_SAFE_NO_PAD.decode(key[name].as_str().unwrap_or_default()).map_err(|e| e.to_string());
    let parsed = RsaPublicKeyComponents { n: field("n")?, e: field("e")? }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|e| e.to_string())?;
    let (signing_input, signature) = token.rsplit_once('.').ok_or("a token has three parts")?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|e| e.to_string())?;
    parsed.verify_sig(signing_input.as_bytes(), &signature).map_err(|_| "the floor's key does not verify the token")?;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(parsed.verify_sig(std::hint::black_box(signing_input.as_bytes()), &signature)).ok();
    }
    let floor_seconds = start.elapsed().as_secs_f64();
    println!(r#"{{"ops": {n}, "seconds": {seconds}, "floor_seconds": {floor_seconds}}}"#);
    Ok(())
}
