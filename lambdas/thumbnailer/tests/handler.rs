//! The thumbnailer handler on real images made here: a 12 MP photo, an EXIF-rotated photo, a PNG
//! with alpha, and hostile inputs (truncated, a decompression bomb, text named .jpg).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lambda_events::s3::S3Event;
use image::codecs::jpeg::JpegEncoder;
use image::{GenericImageView, ImageFormat, RgbImage, RgbaImage};
use thumbnailer::{Config, Storage, ThumbError, handle, output_key, thumbnail};

#[derive(Default)]
struct Memory(Mutex<HashMap<(String, String), Vec<u8>>>);

impl Storage for Memory {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        self.0.lock().expect("lock").get(&(bucket.into(), key.into())).cloned().ok_or(format!("NoSuchKey {key}"))
    }
    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
        self.0.lock().expect("lock").insert((bucket.into(), key.into()), body);
        Ok(())
    }
}

impl Memory {
    fn with(key: &str, bytes: Vec<u8>) -> Self {
        let m = Memory::default();
        m.0.lock().expect("lock").insert(("uploads".into(), key.into()), bytes);
        m
    }
    fn assets(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            self.0.lock().expect("lock").keys().filter(|(b, _)| b == "assets").map(|(_, k)| k.clone()).collect();
        keys.sort();
        keys
    }
    fn asset(&self, key: &str) -> Vec<u8> {
        self.0.lock().expect("lock")[&("assets".to_string(), key.to_string())].clone()
    }
}

fn config() -> Config {
    Config {
        dest_bucket: "assets".into(),
        folder_output: "avatars/processed/".into(),
        width: 512,
        height: 512,
        background: [255, 255, 255],
    }
}

fn event(raw_key: &str) -> S3Event {
    serde_json::from_str(&include_str!("fixtures/s3_put.json").replace("\"KEY\"", &format!("\"{raw_key}\"")))
        .expect("fixture")
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90).encode_image(img).expect("encode");
    out
}

/// A photo-like gradient.
fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128]))
}

/// Inserts an EXIF APP1 segment with the given Orientation right after the JPEG's SOI marker.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn decode(jpeg: &[u8]) -> image::DynamicImage {
    image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).expect("the output is a JPEG")
}

fn near(p: image::Rgba<u8>, rgb: [u8; 3]) -> bool {
    (0..3).all(|i| p[i].abs_diff(rgb[i]) < 40)
}

#[tokio::test]
async fn a_large_photo_becomes_a_512_square_jpeg_under_the_processed_folder() {
    // A 12 MP upload with a URL-encoded name is written as avatars/processed/<stem>.jpg.
    let storage = Memory::with("avatars/original/my photo(1).jpg", jpeg(&photo(4000, 3000)));
    let written = handle(event("avatars/original/my+photo%281%29.jpg"), &config(), &storage).await.expect("processed");
    assert_eq!(written, vec!["avatars/processed/my photo(1).jpg"]);
    let out = decode(&storage.asset("avatars/processed/my photo(1).jpg"));
    assert_eq!(out.dimensions(), (512, 512));
    // Cover, centre crop: the 4:3 photo loses its left and right edges, not its top and bottom.
    let left = out.get_pixel(0, 256);
    assert!(left[0] > 20, "the far-left (black-red) columns were cropped: {left:?}");
    assert!(out.get_pixel(256, 0)[1] < 20 && out.get_pixel(256, 511)[1] > 235, "top and bottom rows are kept");
}

#[tokio::test]
async fn exif_orientation_is_applied_so_the_thumbnail_is_upright() {
    // Stored sideways (red left, blue right) with Orientation 6 (rotate 90° clockwise to view):
    // upright, red is on top and blue at the bottom.
    let sideways =
        RgbImage::from_fn(200, 100, |x, _| if x < 100 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
    let out = decode(&thumbnail(&with_orientation(&jpeg(&sideways), 6), 512, 512, [255, 255, 255]).expect("thumbnail"));
    assert!(near(out.get_pixel(256, 40), [255, 0, 0]), "top is red: {:?}", out.get_pixel(256, 40));
    assert!(near(out.get_pixel(256, 470), [0, 0, 255]), "bottom is blue: {:?}", out.get_pixel(256, 470));
}

#[tokio::test]
async fn a_large_rotated_photo_shrunk_while_decoding_is_upright_and_covers_the_square() {
    // 4000x2000 stored sideways with Orientation 6: decoded at 1/2 scale (2000x1000, which
    // still covers 512x512 once upright as 1000x2000), then turned: red on top, blue below.
    let sideways =
        RgbImage::from_fn(4000, 2000, |x, _| if x < 2000 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
    let out = decode(&thumbnail(&with_orientation(&jpeg(&sideways), 6), 512, 512, [255, 255, 255]).expect("thumbnail"));
    assert_eq!(out.dimensions(), (512, 512));
    assert!(near(out.get_pixel(256, 40), [255, 0, 0]), "top is red: {:?}", out.get_pixel(256, 40));
    assert!(near(out.get_pixel(256, 470), [0, 0, 255]), "bottom is blue: {:?}", out.get_pixel(256, 470));
}

#[tokio::test]
async fn a_large_greyscale_photo_is_thumbnailed() {
    let grey = image::GrayImage::from_fn(3000, 3000, |x, _| image::Luma([(x * 255 / 3000) as u8]));
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&grey).expect("encode");
    let out = decode(&thumbnail(&bytes, 512, 512, [255, 255, 255]).expect("thumbnail"));
    assert_eq!(out.dimensions(), (512, 512));
    let (left, right) = (out.get_pixel(10, 256), out.get_pixel(500, 256));
    assert!(left[0] < 20 && right[0] > 235 && left[0] == left[1], "a grey ramp, left dark: {left:?} {right:?}");
}

#[tokio::test]
async fn transparency_is_flattened_onto_the_background() {
    // A PNG that is transparent on the left and opaque green on the right.
    let img =
        RgbaImage::from_fn(
            300,
            300,
            |x, _| if x < 150 { image::Rgba([0, 0, 0, 0]) } else { image::Rgba([0, 200, 0, 255]) },
        );
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png).expect("png");
    let white = decode(&thumbnail(&png, 512, 512, [255, 255, 255]).expect("thumbnail"));
    assert!(near(white.get_pixel(60, 256), [255, 255, 255]) && near(white.get_pixel(450, 256), [0, 200, 0]));
    let navy = decode(&thumbnail(&png, 512, 512, [0, 0, 128]).expect("thumbnail"));
    assert!(near(navy.get_pixel(60, 256), [0, 0, 128]), "the background is configurable");
}

#[tokio::test]
async fn webp_is_accepted() {
    // WebP uploads are thumbnailed like the rest.
    let mut webp = Vec::new();
    image::DynamicImage::ImageRgb8(photo(640, 480))
        .write_to(&mut std::io::Cursor::new(&mut webp), ImageFormat::WebP)
        .expect("webp");
    let out = decode(&thumbnail(&webp, 512, 512, [255, 255, 255]).expect("thumbnail"));
    assert_eq!(out.dimensions(), (512, 512));
}

#[tokio::test]
async fn hostile_inputs_are_refused_and_nothing_is_written() {
    // Truncated, a bomb, and text named .jpg each fail with their reason; no output appears.
    let whole = jpeg(&photo(1200, 900));
    let truncated = whole[..whole.len() / 2].to_vec();
    assert!(matches!(thumbnail(&truncated, 512, 512, [255; 3]), Err(ThumbError::Corrupt(_))));
    assert_eq!(thumbnail(b"hello, I am not a photo\n", 512, 512, [255; 3]), Err(ThumbError::NotAnImage));
    let bomb = png_header(60_000, 60_000);
    let started = std::time::Instant::now();
    assert!(matches!(thumbnail(&bomb, 512, 512, [255; 3]), Err(ThumbError::TooLarge { .. })));
    assert!(started.elapsed().as_millis() < 500, "refused from the header, before decoding");

    for (name, bytes) in [("truncated.jpg", truncated), ("bomb.png", bomb), ("notes.jpg", b"hello".to_vec())] {
        let storage = Memory::with(&format!("avatars/original/{name}"), bytes);
        let err = handle(event(&format!("avatars/original/{name}")), &config(), &storage).await.expect_err(name);
        assert_eq!(err.failures.len(), 1, "{err}");
        assert!(storage.assets().is_empty(), "{name}: nothing written");
    }
}

#[tokio::test]
async fn processing_the_same_event_twice_gives_the_same_bytes() {
    // Redelivery is harmless: the output is rewritten identically.
    let storage = Memory::with("avatars/original/me.png", jpeg(&photo(800, 600)));
    handle(event("avatars/original/me.png"), &config(), &storage).await.expect("first");
    let first = storage.asset("avatars/processed/me.jpg");
    handle(event("avatars/original/me.png"), &config(), &storage).await.expect("second");
    assert_eq!(first, storage.asset("avatars/processed/me.jpg"));
}

#[tokio::test]
async fn its_own_output_is_never_processed_again() {
    // An event for a processed avatar in the destination bucket is skipped, not looped on.
    let mut e = event("avatars/processed/me.jpg");
    e.records[0].s3.bucket.name = Some("assets".into());
    let storage = Memory::default();
    assert_eq!(handle(e, &config(), &storage).await.expect("skipped"), Vec::<String>::new());
}

#[test]
fn output_keys_use_the_file_stem() {
    // Folders and extensions of the original are dropped.
    assert_eq!(output_key("avatars/original/a.b.png", "avatars/processed/"), "avatars/processed/a.b.jpg");
    assert_eq!(output_key("noext", "out/"), "out/noext.jpg");
}

/// A PNG whose header claims `w`x`h` pixels, with a few bytes of data: a decompression bomb.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    png_header_of(w, h, 8, 2)
}

/// A PNG header (IHDR) for `w`x`h` at `depth` bits in colour type `colour`, and a token IDAT.
fn png_header_of(w: u32, h: u32, depth: u8, colour: u8) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc_input);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, colour, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn webp_of(img: image::DynamicImage) -> Vec<u8> {
    let mut webp = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut webp), ImageFormat::WebP).expect("webp");
    webp
}

#[tokio::test]
async fn a_large_webp_is_shrunk_while_decoding_and_stays_upright_and_in_colour() {
    // 2400x1800, red on the left and blue on the right: libwebp halves it twice while decoding.
    let img =
        RgbImage::from_fn(
            2400,
            1800,
            |x, _| if x < 1200 { image::Rgb([220, 20, 20]) } else { image::Rgb([20, 20, 220]) },
        );
    let out = decode(&thumbnail(&webp_of(image::DynamicImage::ImageRgb8(img)), 512, 512, [255; 3]).expect("thumbnail"));
    assert_eq!(out.dimensions(), (512, 512));
    assert!(near(out.get_pixel(40, 256), [220, 20, 20]), "{:?}", out.get_pixel(40, 256));
    assert!(near(out.get_pixel(470, 256), [20, 20, 220]), "{:?}", out.get_pixel(470, 256));
}

#[tokio::test]
async fn a_webp_cut_short_or_claiming_too_many_pixels_is_refused_before_decoding() {
    let whole = webp_of(image::DynamicImage::ImageRgb8(photo(900, 700)));
    let truncated = &whole[..whole.len() / 2];
    assert!(matches!(thumbnail(truncated, 512, 512, [255; 3]), Err(ThumbError::Corrupt(_))), "truncated");
    // A lossless (VP8L) header saying 16384x16384 (268 MP), and no pixel data.
    let bits: u32 = 16383 | (16383 << 14);
    let mut vp8l = vec![0x2F];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    let mut bomb = b"RIFF".to_vec();
    bomb.extend_from_slice(&(4 + 8 + vp8l.len() as u32).to_le_bytes());
    bomb.extend_from_slice(b"WEBPVP8L");
    bomb.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    bomb.extend_from_slice(&vp8l);
    assert_eq!(
        thumbnail(&bomb, 512, 512, [255; 3]),
        Err(ThumbError::TooLarge { width: 16384, height: 16384 }),
        "refused from the header"
    );
}

#[tokio::test]
async fn an_image_within_the_pixel_limit_that_needs_too_much_memory_is_refused_by_name() {
    // 7000x7000 is under 50 MP, but 16-bit RGBA needs 392 MB: refused, and not as "0x0".
    let heavy = png_header_of(7000, 7000, 16, 6);
    let err = thumbnail(&heavy, 512, 512, [255; 3]).expect_err("refused");
    assert_eq!(err, ThumbError::OverMemoryLimit);
    assert!(err.to_string().contains("more than") && !err.to_string().contains("0x0"), "{err}");
}
