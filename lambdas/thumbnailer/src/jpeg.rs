//! JPEG in and out through libjpeg-turbo (the `turbojpeg` crate's bundled, SIMD build): decoding
//! already shrunk by DCT scaling, which is where a thumbnail's time goes, and encoding with
//! optimised Huffman tables, as sharp does by default.

use std::cell::RefCell;

use image::metadata::Orientation;
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

use crate::image_ops::{MAX_PIXELS, ThumbError};

/// JPEG quality of thumbnails: the original Lambda's (sharp's default), so avatars cost no more
/// CloudFront bytes than they did.
pub const QUALITY: i32 = 80;

thread_local! {
    // One handle each per thread: tj3Init allocates and sets up tables, every call reuses them.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

fn corrupt(e: turbojpeg::Error) -> ThumbError {
    ThumbError::Corrupt(e.to_string())
}

/// What the header says, read once: size, colour space, and the EXIF orientation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// CMYK and YCCK cannot be turned into RGB by libjpeg-turbo; the caller decodes those itself.
    pub cmyk: bool,
    pub orientation: Orientation,
}

/// Reads the frame header (libjpeg-turbo) and the orientation (the EXIF APP1 segment, found by
/// walking the markers before the first scan). A JPEG that ends before its end-of-image marker
/// is refused here: the decoder would fill the missing rows with grey rather than fail.
pub fn header(bytes: &[u8]) -> Result<Header, ThumbError> {
    if !is_complete(bytes) {
        return Err(ThumbError::Corrupt("the JPEG ends before its end-of-image marker (truncated upload?)".into()));
    }
    let h = with_decompressor(|d| d.read_header(bytes)).map_err(corrupt)?;
    let (width, height) = (u32::try_from(h.width).unwrap_or(u32::MAX), u32::try_from(h.height).unwrap_or(u32::MAX));
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ThumbError::TooLarge { width, height });
    }
    let orientation = exif_segment(bytes).and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms);
    Ok(Header { width, height, cmyk: matches!(h.colorspace, Colorspace::CMYK | Colorspace::YCCK), orientation })
}

/// The smallest DCT scaling (1/8, 2/8, ... 8/8 of each side) whose output, once turned upright,
/// still covers `target`: every pixel not decoded is inverse-DCT and colour-conversion work saved.
pub fn scale_for(header: &Header, (tw, th): (u32, u32)) -> ScalingFactor {
    let (w, h) = (header.width as usize, header.height as usize);
    let (uw, uh) = if quarter_turn(header.orientation) { (h, w) } else { (w, h) };
    (1..=8)
        .map(|n| ScalingFactor::new(n, 8))
        .find(|s| s.scale(uw) >= tw as usize && s.scale(uh) >= th as usize)
        .unwrap_or(ScalingFactor::ONE)
}

/// Whether the orientation swaps width and height.
pub fn quarter_turn(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// The image decoded to RGB at `scale` (as stored, before orientation).
pub fn decode_scaled(bytes: &[u8], scale: ScalingFactor) -> Result<image::RgbImage, ThumbError> {
    with_decompressor(|d| {
        d.set_scaling_factor(scale)?;
        let h = d.read_header(bytes)?.scaled(scale);
        let mut pixels = vec![0; 3 * h.width * h.height];
        d.decompress(
            bytes,
            Image {
                pixels: pixels.as_mut_slice(),
                width: h.width,
                pitch: 3 * h.width,
                height: h.height,
                format: PixelFormat::RGB,
            },
        )?;
        Ok((h.width, h.height, pixels))
    })
    .map_err(corrupt)
    .and_then(|(w, h, pixels)| {
        image::RgbImage::from_raw(w as u32, h as u32, pixels)
            .ok_or_else(|| ThumbError::Corrupt("the JPEG decoded to fewer pixels than its header says".into()))
    })
}

/// Baseline JPEG at [`QUALITY`], 4:2:0, Huffman tables optimised for this image (sharp's
/// `optimiseCoding`, on by default there): a few percent smaller for a fraction of a millisecond.
pub fn encode(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ThumbError> {
    COMPRESSOR
        .with_borrow_mut(|slot| {
            let c = match slot {
                Some(c) => c,
                None => {
                    let mut c = Compressor::new()?;
                    c.set_quality(QUALITY)?;
                    c.set_subsamp(Subsamp::Sub2x2)?;
                    c.set_optimize(true)?;
                    slot.insert(c)
                }
            };
            let (w, h) = (width as usize, height as usize);
            c.compress_to_vec(Image { pixels: rgb, width: w, pitch: 3 * w, height: h, format: PixelFormat::RGB })
        })
        .map_err(corrupt)
}

fn with_decompressor<T>(f: impl FnOnce(&mut Decompressor) -> turbojpeg::Result<T>) -> turbojpeg::Result<T> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let d = match slot {
            Some(d) => d,
            None => slot.insert(Decompressor::new()?),
        };
        f(d)
    })
}

/// An end-of-image marker (FF D9) must follow the last start-of-scan (FF DA). Inside scan data
/// a 0xFF byte is always followed by 0x00 or a restart marker, so FF D9 there is the real end; an
/// EXIF thumbnail's own FF D9 comes before the scan and does not count.
fn is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == marker);
    matches!((last(0xDA), last(0xD9)), (Some(sos), Some(eoi)) if eoi > sos)
}

/// The TIFF payload of the first `Exif\0\0` APP1 segment before the first scan, if any.
fn exif_segment(bytes: &[u8]) -> Option<&[u8]> {
    let mut at = 2; // after SOI
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None; // not a marker where one must be: leave orientation alone
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None; // the scan starts: no EXIF comes after it
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let body = bytes.get(at + 4..at + 2 + len)?;
        if marker == 0xE1 && body.starts_with(b"Exif\0\0") {
            return Some(&body[6..]);
        }
        at += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(w: u32, h: u32, orientation: Orientation) -> Header {
        Header { width: w, height: h, cmyk: false, orientation }
    }

    #[test]
    fn the_scale_is_the_smallest_eighth_that_still_covers_the_upright_thumbnail() {
        // 4000x3000 -> 512x512 needs 683x512: 2/8 (1000x750) covers it, 1/8 (500x375) does not.
        assert_eq!(scale_for(&header_of(4000, 3000, Orientation::NoTransforms), (512, 512)), ScalingFactor::new(1, 4));
        // Sideways 4000x1200: upright 1200x4000, whose short side needs 512 of 1200: 4/8.
        let s = scale_for(&header_of(4000, 1200, Orientation::Rotate90), (512, 512));
        assert_eq!((s.num(), s.denom()), (1, 2));
        // 600x600: 7/8 (525) still covers 512; 540x540: 7/8 (473) does not, so it is decoded whole.
        assert_eq!(scale_for(&header_of(600, 600, Orientation::NoTransforms), (512, 512)), ScalingFactor::new(7, 8));
        assert_eq!(scale_for(&header_of(540, 540, Orientation::NoTransforms), (512, 512)), ScalingFactor::ONE);
    }

    #[test]
    fn orientation_is_read_from_the_exif_segment_and_absent_or_broken_exif_means_none() {
        // SOI, APP1 Exif with a little-endian TIFF whose IFD0 has Orientation = 6, then SOS, EOI.
        let tiff: &[u8] = &[
            b'I', b'I', 42, 0, 8, 0, 0, 0, // header, IFD0 at 8
            1, 0, // one entry
            0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, // Orientation, SHORT, 1, value 6
            0, 0, 0, 0, // no next IFD
        ];
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
        jpeg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
        jpeg.extend_from_slice(b"Exif\0\0");
        jpeg.extend_from_slice(tiff);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
        assert_eq!(exif_segment(&jpeg).and_then(Orientation::from_exif_chunk), Some(Orientation::Rotate90));
        assert_eq!(exif_segment(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 0xFF, 0xD9]), None);
        // A segment length running past the end is no segment, not a panic.
        assert_eq!(exif_segment(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, b'E']), None);
        assert_eq!(exif_segment(&[0xFF, 0xD8, 0xFF]), None);
    }
}
