//! The thumbnail pipeline: decoding with limits (JPEG shrunk while decoding, see [`jpeg`]),
//! orientation, flattening, cover resize and JPEG encoding.

use std::io::Cursor;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::{jpeg, webp};

/// The most pixels an original may have (a 50 MP photo); larger headers are refused unread.
pub const MAX_PIXELS: u64 = 50_000_000;
/// The most memory `image` may allocate for one decode: the largest RGBA image allowed, and room.
const MEMORY_LIMIT: u64 = MAX_PIXELS * 4 + 64 * 1024 * 1024;

/// Why an upload could not be thumbnailed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThumbError {
    /// Not JPEG, PNG or WebP.
    #[error("not a JPEG, PNG or WebP image")]
    NotAnImage,
    /// The header claims more pixels than allowed: a decompression bomb or an absurd photo.
    #[error("the image is {width}x{height}, more than {MAX_PIXELS} pixels")]
    TooLarge { width: u32, height: u32 },
    /// Within the pixel limit, but decoding would need more memory than allowed (16 bits per
    /// channel and alpha on a near-limit image).
    #[error("decoding the image needs more than {} MiB, more than the thumbnailer allows", MEMORY_LIMIT >> 20)]
    OverMemoryLimit,
    /// The data ends early or is corrupt.
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

/// An image as decoded, perhaps already shrunk, and what is still to be done to it.
struct Decoded {
    img: DynamicImage,
    orientation: Orientation,
    /// Whether the decoder shrank each side by half or more (JPEG's DCT scaling, libwebp's
    /// rescaler): both average, so the image is already band-limited.
    shrunk_on_load: bool,
}

impl Decoded {
    fn whole((img, orientation): (DynamicImage, Orientation)) -> Self {
        Self { img, orientation, shrunk_on_load: false }
    }

    /// The filter for the last step. After the decoder's averaging has removed what would alias,
    /// Mitchell (B = C = 1/3) finishes without the ringing Lanczos3 adds, which costs JPEG bytes
    /// and buys no fidelity (measured: smaller files and a higher SSIM than sharp's on the
    /// shrunk JPEG and WebP benchmark images). A full-size or barely shrunk decode needs
    /// Lanczos3's sharper cut-off to keep its detail (Mitchell lost SSIM there).
    fn filter(&self) -> FilterType {
        if self.shrunk_on_load { FilterType::Mitchell } else { FilterType::Lanczos3 }
    }
}

/// A WIDTHxHEIGHT JPEG covering the image (centre crop), upright, on `background`.
pub fn thumbnail(bytes: &[u8], width: u32, height: u32, background: [u8; 3]) -> Result<Vec<u8>, ThumbError> {
    let mut decoded = match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => decode_jpeg(bytes, (width, height))?,
        Ok(ImageFormat::WebP) => decode_webp(bytes, (width, height))?,
        Ok(ImageFormat::Png) => Decoded::whole(decode_other(bytes, ImageFormat::Png)?),
        _ => return Err(ThumbError::NotAnImage),
    };
    let filter = decoded.filter();
    decoded.img.apply_orientation(decoded.orientation);
    let rgb = flatten(decoded.img, background);
    let resized = cover(rgb, width, height, filter)?;
    jpeg::encode(resized.buffer(), width, height)
}

/// A JPEG decoded already shrunk to the smallest DCT scale that covers the thumbnail, as
/// libvips does: most of a large JPEG's decode time is the inverse DCT and colour conversion of
/// pixels a thumbnail throws away. CMYK, which libjpeg-turbo does not turn into RGB, is decoded
/// at full size by `image`.
fn decode_jpeg(bytes: &[u8], target: (u32, u32)) -> Result<Decoded, ThumbError> {
    let header = jpeg::header(bytes)?;
    if header.cmyk {
        return Ok(Decoded::whole((decode_other(bytes, ImageFormat::Jpeg)?.0, header.orientation)));
    }
    let scale = jpeg::scale_for(&header, target);
    let rgb = jpeg::decode_scaled(bytes, scale)?;
    let shrunk_on_load = 2 * scale.num() <= scale.denom();
    Ok(Decoded { img: DynamicImage::ImageRgb8(rgb), orientation: header.orientation, shrunk_on_load })
}

/// A WebP shrunk while decoding by libwebp (see [`webp`]); animated ones through `image`.
fn decode_webp(bytes: &[u8], target: (u32, u32)) -> Result<Decoded, ThumbError> {
    let features = webp::features(bytes)?;
    if features.animated {
        return Ok(Decoded::whole(decode_other(bytes, ImageFormat::WebP)?));
    }
    // The EXIF chunk, if any, through `image`'s container parser (headers only, no pixels).
    let orientation = ImageReader::with_format(Cursor::new(bytes), ImageFormat::WebP)
        .into_decoder()
        .and_then(|mut d| d.orientation())
        .map_err(|e| classify(&e))?;
    let size = webp::scaled_size(&features, orientation, target);
    let img = webp::decode_scaled(bytes, &features, size)?;
    Ok(Decoded { img, orientation, shrunk_on_load: size.0 < features.width })
}

/// PNG, animated WebP (and CMYK JPEG) through `image`, with the pixel count checked before decoding.
fn decode_other(bytes: &[u8], format: ImageFormat) -> Result<(DynamicImage, Orientation), ThumbError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MEMORY_LIMIT);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| classify(&e))?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(ThumbError::TooLarge { width: w, height: h });
    }
    // `image` allocates the whole buffer before it decodes, whatever `max_alloc` says: checked here.
    if decoder.total_bytes() > MEMORY_LIMIT {
        return Err(ThumbError::OverMemoryLimit);
    }
    let orientation = decoder.orientation().map_err(|e| classify(&e))?;
    Ok((DynamicImage::from_decoder(decoder).map_err(|e| classify(&e))?, orientation))
}

fn classify(e: &image::ImageError) -> ThumbError {
    match e {
        image::ImageError::Limits(_) => ThumbError::OverMemoryLimit,
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
fn cover(rgb: image::RgbImage, width: u32, height: u32, filter: FilterType) -> Result<Image<'static>, ThumbError> {
    let (w, h) = rgb.dimensions();
    let src =
        Image::from_vec_u8(w, h, rgb.into_raw(), PixelType::U8x3).map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options =
        ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter)).fit_into_destination(Some((0.5, 0.5)));
    Resizer::new().resize(&src, &mut dst, &options).map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use turbojpeg::{Compressor, Image, PixelFormat};

    #[test]
    fn a_cmyk_jpeg_which_libjpeg_turbo_cannot_make_rgb_is_decoded_whole_and_thumbnailed() {
        // 1200x900 of pure cyan ink (C=255, M=Y=K=0): an Adobe CMYK JPEG as print tools write them.
        let (w, h) = (1200, 900);
        let pixels: Vec<u8> = (0..w * h).flat_map(|_| [255, 0, 0, 0]).collect();
        let mut c = Compressor::new().expect("compressor");
        c.set_quality(90).expect("quality");
        let cmyk = c
            .compress_to_vec(Image {
                pixels: pixels.as_slice(),
                width: w,
                pitch: 4 * w,
                height: h,
                format: PixelFormat::CMYK,
            })
            .expect("CMYK JPEG");
        assert!(jpeg::header(&cmyk).expect("header").cmyk);
        let out = image::load_from_memory(&thumbnail(&cmyk, 256, 256, [255; 3]).expect("thumbnail")).expect("decodes");
        assert_eq!((out.width(), out.height()), (256, 256));
        // Whatever the ink convention, the result is one flat colour, not noise or grey fill.
        let rgb = out.to_rgb8();
        let first = *rgb.get_pixel(0, 0);
        assert!(rgb.pixels().all(|p| p.0.iter().zip(first.0).all(|(a, b)| a.abs_diff(b) <= 3)), "{first:?}");
    }
}
