//! Decoding with limits, orientation, flattening, cover resize and JPEG encoding.

use std::io::Cursor;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// The most pixels an original may have (a 50 MP photo); larger headers are refused unread.
pub const MAX_PIXELS: u64 = 50_000_000;
/// JPEG quality of thumbnails.
const QUALITY: u8 = 85;

/// Why an upload could not be thumbnailed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThumbError {
    /// Not JPEG, PNG or WebP.
    #[error("not a JPEG, PNG or WebP image")]
    NotAnImage,
    /// The header claims more pixels than allowed: a decompression bomb or an absurd photo.
    #[error("the image is {width}x{height}, more than {MAX_PIXELS} pixels")]
    TooLarge { width: u32, height: u32 },
    /// The data ends early or is corrupt.
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

/// A WIDTHxHEIGHT JPEG covering the image (centre crop), upright, on `background`.
pub fn thumbnail(bytes: &[u8], width: u32, height: u32, background: [u8; 3]) -> Result<Vec<u8>, ThumbError> {
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|_| ThumbError::NotAnImage)?;
    match reader.format() {
        Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(ThumbError::Corrupt("the JPEG ends before its end-of-image marker (truncated upload?)".into()));
        }
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) => {}
        _ => return Err(ThumbError::NotAnImage),
    }
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4 + 64 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| classify(&e))?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(ThumbError::TooLarge { width: w, height: h });
    }
    let orientation = decoder.orientation().map_err(|e| classify(&e))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| classify(&e))?;
    img.apply_orientation(orientation);
    let rgb = flatten(img, background);
    let resized = cover(rgb, width, height)?;
    let mut out = Vec::with_capacity(64 * 1024);
    JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode(resized.buffer(), width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    Ok(out)
}

/// The JPEG decoder fills a truncated scan with grey rather than failing, so completeness is
/// checked here: an end-of-image marker (FF D9) must follow the last start-of-scan (FF DA).
/// Inside scan data a 0xFF byte is always followed by 0x00 or a restart marker, so FF D9 there
/// is the real end; an EXIF thumbnail's own FF D9 comes before the scan and does not count.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == marker);
    matches!((last(0xDA), last(0xD9)), (Some(sos), Some(eoi)) if eoi > sos)
}

fn classify(e: &image::ImageError) -> ThumbError {
    match e {
        image::ImageError::Limits(_) => ThumbError::TooLarge { width: 0, height: 0 },
        image::ImageError::Unsupported(_) => ThumbError::NotAnImage,
        other => ThumbError::Corrupt(other.to_string()),
    }
}

/// RGB pixels with any transparency composited onto `background`.
fn flatten(img: DynamicImage, background: [u8; 3]) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = image::RgbImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(src[3]);
        for c in 0..3 {
            dst[c] = ((u16::from(src[c]) * a + u16::from(background[c]) * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// Scales so the image covers `width`x`height`, cropping the overflow equally on both sides.
fn cover(rgb: image::RgbImage, width: u32, height: u32) -> Result<Image<'static>, ThumbError> {
    let (w, h) = rgb.dimensions();
    let src =
        Image::from_vec_u8(w, h, rgb.into_raw(), PixelType::U8x3).map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .fit_into_destination(Some((0.5, 0.5)));
    Resizer::new().resize(&src, &mut dst, &options).map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    Ok(dst)
}
