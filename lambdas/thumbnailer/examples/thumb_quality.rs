//! How faithful thumbnails are, for `scripts/bench-lambdas`: `thumb_quality ORIGINAL THUMB...`
//! prints `{"ssim": [S, ...]}`, each THUMB's structural similarity (luma MSSIM, 1.0 = identical)
//! to the reference: ORIGINAL decoded at full size (no DCT scaling), turned upright, flattened on
//! white and scaled to cover 512x512 with Lanczos3 in one step. Any thumbnailer that shortcuts
//! (scaled decode, cheaper filters, lower quality) pays for it here.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageReader};

fn reference(path: &str) -> Result<image::GrayImage, String> {
    let mut decoder = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("{path}: {e}"))?
        .into_decoder()
        .map_err(|e| format!("{path}: {e}"))?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let flat: Vec<u8> = rgba
        .pixels()
        .flat_map(|p| {
            let a = u16::from(p[3]);
            [0, 1, 2].map(|c| ((u16::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8)
        })
        .collect();
    let src = Image::from_vec_u8(w, h, flat, PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(512, 512, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .fit_into_destination(Some((0.5, 0.5)));
    Resizer::new().resize(&src, &mut dst, &options).map_err(|e| e.to_string())?;
    let rgb = image::RgbImage::from_raw(512, 512, dst.into_vec()).ok_or("resize output")?;
    Ok(DynamicImage::ImageRgb8(rgb).into_luma8())
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let original = args.next().ok_or("ORIGINAL THUMB...")?;
    let reference = reference(&original)?;
    let mut scores = Vec::new();
    for thumb in args {
        let t = image::open(&thumb).map_err(|e| format!("{thumb}: {e}"))?.into_luma8();
        let sim = image_compare::gray_similarity_structure(&image_compare::Algorithm::MSSIMSimple, &reference, &t)
            .map_err(|e| format!("{thumb}: {e}"))?;
        scores.push(sim.score.to_string());
    }
    println!(r#"{{"ssim": [{}]}}"#, scores.join(", "));
    Ok(())
}
