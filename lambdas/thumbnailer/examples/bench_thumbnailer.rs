//! Throughput of the thumbnail path, for `scripts/bench-lambdas`:
//! `bench_thumbnailer PHOTO N [OUT]` thumbnails PHOTO N times on one thread, writes the last
//! thumbnail to OUT, and prints `{"ops": N, "seconds": S, "floor_seconds": F, "bytes": B}`.
//!
//! The floor, for a JPEG, is libjpeg-turbo's DCT-scaled decode of the same file to the same
//! scale, alone, N times in the same process: the work no thumbnailer of this file can skip.
//! Other formats have no floor measured (`null`).

use std::time::Instant;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (photo, n) = (args.next().ok_or("PHOTO")?, args.next().ok_or("N")?);
    let out_path = args.next();
    let n: u32 = n.parse().map_err(|e| format!("N: {e}"))?;
    let bytes = std::fs::read(&photo).map_err(|e| format!("{photo}: {e}"))?;
    let thumb = || thumbnailer::thumbnail(&bytes, 512, 512, [255; 3]).map_err(|e| e.to_string());
    let first = thumb()?; // warm-up: the decoder and encoder handles are made once per process
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(thumb()?);
    }
    let seconds = start.elapsed().as_secs_f64();

    let floor = match image::guess_format(&bytes) {
        Ok(image::ImageFormat::Jpeg) => {
            let header = thumbnailer::jpeg::header(&bytes).map_err(|e| e.to_string())?;
            let scale = thumbnailer::jpeg::scale_for(&header, (512, 512));
            thumbnailer::jpeg::decode_scaled(&bytes, scale).map_err(|e| e.to_string())?;
            let start = Instant::now();
            for _ in 0..n {
                std::hint::black_box(thumbnailer::jpeg::decode_scaled(&bytes, scale).map_err(|e| e.to_string())?);
            }
            start.elapsed().as_secs_f64().to_string()
        }
        _ => "null".into(),
    };
    if let Some(path) = out_path {
        std::fs::write(&path, &first).map_err(|e| format!("{path}: {e}"))?;
    }
    println!(r#"{{"ops": {n}, "seconds": {seconds}, "floor_seconds": {floor}, "bytes": {}}}"#, first.len());
    Ok(())
}
