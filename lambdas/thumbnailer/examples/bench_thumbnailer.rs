//! Throughput of the thumbnail path, for `scripts/bench-lambdas`: `bench_thumbnailer PHOTO N` thumbnails
//! PHOTO N times on one thread and prints `{"ops": N, "seconds": S}`.

use std::time::Instant;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (photo, n) = (args.next().ok_or("PHOTO")?, args.next().ok_or("N")?);
    let n: u32 = n.parse().map_err(|e| format!("N: {e}"))?;
    let bytes = std::fs::read(&photo).map_err(|e| format!("{photo}: {e}"))?;
    let start = Instant::now();
    for _ in 0..n {
        let out = thumbnailer::thumbnail(&bytes, 512, 512, [255; 3]).map_err(|e| e.to_string())?;
        std::hint::black_box(out);
    }
    println!(r#"{{"ops": {n}, "seconds": {}}}"#, start.elapsed().as_secs_f64());
    Ok(())
}
