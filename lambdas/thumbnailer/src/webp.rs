//! WebP decoded by libwebp (the `libwebp-sys` crate's bundled build), shrunk while decoding: its
//! rescaler averages each output row as the rows are decoded, so the full-size image is never
//! held, as libvips does for WebP. Animated WebP, which `WebPDecode` refuses, is left to `image`
//! (its first frame).
//!
//! The thumbnailer's only `unsafe` code is here: two calls into libwebp (read the header, decode
//! into a buffer we own), each with its safety argument. The workspace denies `unsafe_code`;
//! this module alone is allowed it, and every `unsafe` block in it carries a `SAFETY:` comment.
#![allow(unsafe_code)]

use image::metadata::Orientation;
use libwebp_sys::{VP8StatusCode, WEBP_CSP_MODE, WebPDecode, WebPDecoderConfig, WebPGetFeatures};

use crate::image_ops::{MAX_PIXELS, ThumbError};
use crate::jpeg::quarter_turn;

/// What the bitstream header says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub animated: bool,
}

/// Reads the header; refuses more than [`MAX_PIXELS`] before anything is decoded.
pub fn features(bytes: &[u8]) -> Result<Features, ThumbError> {
    let mut config = WebPDecoderConfig::new().map_err(|()| corrupt("libwebp version mismatch"))?;
    // SAFETY: libwebp reads at most `bytes.len()` bytes from the slice and writes only the
    // features struct, which we own.
    let status = unsafe { WebPGetFeatures(bytes.as_ptr(), bytes.len(), &mut config.input) };
    check(status)?;
    let f = &config.input;
    let (width, height) = (u32::try_from(f.width).unwrap_or(0), u32::try_from(f.height).unwrap_or(0));
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ThumbError::TooLarge { width, height });
    }
    Ok(Features { width, height, alpha: f.has_alpha != 0, animated: f.has_animation != 0 })
}

/// The size (as stored) to decode to: the image halved as often as it still covers `target`
/// once upright (1/2, 1/4 or 1/8 of each side, as JPEG's DCT scaling and libvips's WebP
/// shrink-on-load), or whole. The decoder's rescaler averages, so what it drops is filtered, not
/// aliased; the cover resize does the rest.
pub fn scaled_size(f: &Features, orientation: Orientation, (tw, th): (u32, u32)) -> (u32, u32) {
    let (uw, uh) = if quarter_turn(orientation) { (f.height, f.width) } else { (f.width, f.height) };
    let halved = |side: u32, times: u32| side.div_ceil(1 << times);
    let times = (1..=3).rev().find(|&t| halved(uw, t) >= tw && halved(uh, t) >= th).unwrap_or(0);
    (halved(f.width, times), halved(f.height, times))
}

/// Decodes to RGB (RGBA when the image has alpha) at `size`, as stored (before orientation).
pub fn decode_scaled(bytes: &[u8], f: &Features, (w, h): (u32, u32)) -> Result<image::DynamicImage, ThumbError> {
    let mut config = WebPDecoderConfig::new().map_err(|()| corrupt("libwebp version mismatch"))?;
    let channels: usize = if f.alpha { 4 } else { 3 };
    let stride = w as usize * channels;
    let mut pixels = vec![0u8; stride * h as usize];
    if (w, h) != (f.width, f.height) {
        config.options.use_scaling = 1;
        config.options.scaled_width = w as i32;
        config.options.scaled_height = h as i32;
    }
    config.output.colorspace = if f.alpha { WEBP_CSP_MODE::MODE_RGBA } else { WEBP_CSP_MODE::MODE_RGB };
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = pixels.as_mut_ptr();
    config.output.u.RGBA.stride = stride as i32;
    config.output.u.RGBA.size = pixels.len();
    // SAFETY: the output buffer is `pixels` (external memory: libwebp writes into it, never frees
    // it), sized stride x height for the scaled size libwebp was told; `bytes` is only read.
    // `pixels` outlives the call, and nothing else aliases it.
    let status = unsafe { WebPDecode(bytes.as_ptr(), bytes.len(), &mut config) };
    check(status)?;
    let short = || ThumbError::Corrupt("the WebP decoded to fewer pixels than its header says".into());
    Ok(if f.alpha {
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, pixels).ok_or_else(short)?)
    } else {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels).ok_or_else(short)?)
    })
}

fn corrupt(why: &str) -> ThumbError {
    ThumbError::Corrupt(why.to_string())
}

fn check(status: VP8StatusCode) -> Result<(), ThumbError> {
    match status {
        VP8StatusCode::VP8_STATUS_OK => Ok(()),
        VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => Err(corrupt("the WebP ends early (truncated upload?)")),
        VP8StatusCode::VP8_STATUS_UNSUPPORTED_FEATURE => Err(ThumbError::NotAnImage),
        other => Err(ThumbError::Corrupt(format!("the WebP cannot be decoded ({other:?})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_webp_is_halved_while_decoding_as_often_as_it_still_covers_and_a_small_one_is_whole() {
        // 4000x3000 -> 512x512 needs 683x512: 1/4 (1000x750) covers it, 1/8 (500x375) does not.
        let f = Features { width: 4000, height: 3000, alpha: false, animated: false };
        assert_eq!(scaled_size(&f, Orientation::NoTransforms, (512, 512)), (1000, 750));
        // Stored sideways 1500x2001: upright 2001x1500, so 1/2 (751 upright high) covers.
        let f = Features { width: 1500, height: 2001, alpha: false, animated: false };
        assert_eq!(scaled_size(&f, Orientation::Rotate90, (512, 512)), (750, 1001));
        let f = Features { width: 800, height: 800, alpha: true, animated: false };
        assert_eq!(scaled_size(&f, Orientation::NoTransforms, (512, 512)), (800, 800));
    }

    #[test]
    fn what_is_not_webp_or_is_cut_short_is_an_error_not_a_crash() {
        assert!(features(b"RIFF\x10\0\0\0WEBPVP8 ").is_err());
        assert!(features(b"").is_err());
        assert!(features(&[0xFF; 64]).is_err());
    }
}
