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
    let reader_format = reader.format();
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
    let shrunk = match reader_format {
        Some(ImageFormat::Jpeg) => decode_jpeg_shrunk(bytes, (w, h), orientation, (width, height))?,
        _ => None,
    };
    let mut img = match shrunk {
        Some(img) => img,
        None => DynamicImage::from_decoder(decoder).map_err(|e| classify(&e))?,
    };
    img.apply_orientation(orientation);
    let rgb = flatten(img, background);
    let resized = cover(rgb, width, height)?;
    let mut out = Vec::with_capacity(64 * 1024);
    JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode(resized.buffer(), width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    Ok(out)
}

/// A JPEG decoded already shrunk (DCT scaling: 1/2, 1/4 or 1/8 of each side, whichever is the
/// smallest that still covers the thumbnail once oriented), as libvips does. Most of a large
/// JPEG's decode time is the inverse DCT and colour conversion of pixels a thumbnail throws
/// away. `None` for what this path does not handle (CMYK), which takes the full-size path.
fn decode_jpeg_shrunk(
    bytes: &[u8],
    (w, h): (u32, u32),
    orientation: image::metadata::Orientation,
    (width, height): (u32, u32),
) -> Result<Option<DynamicImage>, ThumbError> {
    use image::metadata::Orientation::{Rotate90, Rotate90FlipH, Rotate270, Rotate270FlipH};
    // The cover scale is decided on the upright image, whose sides are swapped by a quarter turn.
    let (upright_w, upright_h) =
        if matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH) { (h, w) } else { (w, h) };
    let scale = (f64::from(width) / f64::from(upright_w)).max(f64::from(height) / f64::from(upright_h));
    if scale > 0.5 {
        return Ok(None); // no DCT scaling step fits; decode at full size
    }
    let need = |side: u32| (f64::from(side) * scale).ceil().min(f64::from(u16::MAX)) as u16;
    let corrupt = |e: jpeg_decoder::Error| ThumbError::Corrupt(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size((MAX_PIXELS * 4) as usize);
    decoder.read_info().map_err(corrupt)?;
    let (sw, sh) = decoder.scale(need(w), need(h)).map_err(corrupt)?;
    let format = decoder.info().map(|i| i.pixel_format);
    let pixels = decoder.decode().map_err(corrupt)?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let short = || ThumbError::Corrupt("the JPEG decoded to fewer pixels than its header says".into());
    Ok(match format {
        Some(jpeg_decoder::PixelFormat::RGB24) => {
            Some(DynamicImage::ImageRgb8(image::RgbImage::from_raw(sw, sh, pixels).ok_or_else(short)?))
        }
        Some(jpeg_decoder::PixelFormat::L8) => {
            Some(DynamicImage::ImageLuma8(image::GrayImage::from_raw(sw, sh, pixels).ok_or_else(short)?))
        }
        _ => None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::metadata::Orientation;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img).expect("encode");
        out
    }

    #[test]
    fn a_large_jpeg_is_decoded_at_the_smallest_scale_that_still_covers_the_thumbnail() {
        // 4000x3000 -> 512x512 needs 683x512: 1/4 (1000x750) covers it, 1/8 (500x375) does not.
        let img = decode_jpeg_shrunk(&jpeg(4000, 3000), (4000, 3000), Orientation::NoTransforms, (512, 512))
            .expect("decodes")
            .expect("shrunk");
        assert_eq!((img.width(), img.height()), (1000, 750));
        // Sideways (a quarter turn): upright it is 2000x4000, so 1024x512 is needed before turning.
        let img = decode_jpeg_shrunk(&jpeg(4000, 2000), (4000, 2000), Orientation::Rotate90, (512, 512))
            .expect("decodes")
            .expect("shrunk");
        assert_eq!((img.width(), img.height()), (2000, 1000));
    }

    #[test]
    fn a_jpeg_with_no_scaling_step_to_spare_is_left_to_the_full_size_path() {
        let none = decode_jpeg_shrunk(&jpeg(900, 700), (900, 700), Orientation::NoTransforms, (512, 512));
        assert_eq!(none.expect("no error").map(|i| i.width()), None);
    }
}
