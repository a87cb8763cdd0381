//! The thumbnailer: for each uploaded original in an S3 ObjectCreated event, writes a JPEG that
//! covers WIDTHxHEIGHT (centre crop), upright by its EXIF orientation, transparency flattened
//! onto a background, to `<FOLDER_OUTPUT><file stem>.jpg` in the destination bucket.
//!
//! *Guarantees*: JPEG, PNG and WebP in; anything else, a truncated file, or an image whose
//! header claims more than [`MAX_PIXELS`] is refused with an error before any pixel is decoded,
//! and nothing is written for it. The same input always gives the same bytes, so a redelivered
//! event rewrites identical objects.

mod image_ops;
pub mod jpeg;
mod webp;

use std::future::Future;

use aws_lambda_events::s3::S3Event;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;

pub use image_ops::{MAX_PIXELS, ThumbError, thumbnail};

/// Settings from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    pub dest_bucket: String,
    pub folder_output: String,
    pub width: u32,
    pub height: u32,
    /// What transparent pixels become [default: white].
    pub background: [u8; 3],
}

impl Config {
    /// DEST_BUCKET_NAME, FOLDER_OUTPUT (avatars/processed/), PROCESS_WIDTH and PROCESS_HEIGHT
    /// (512), BACKGROUND_COLOR (#ffffff).
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let dim = |k: &str| -> Result<u32, String> {
            var(k).map_or(Ok(512), |v| {
                v.parse().ok().filter(|n| (1..=4096).contains(n)).ok_or(format!("{k}={v} is not a size from 1 to 4096"))
            })
        };
        let background = match var("BACKGROUND_COLOR") {
            Some(hex) => parse_hex(&hex).ok_or(format!("BACKGROUND_COLOR={hex} is not #rrggbb"))?,
            None => [255, 255, 255],
        };
        Ok(Self {
            dest_bucket: var("DEST_BUCKET_NAME").ok_or("DEST_BUCKET_NAME is not set")?,
            folder_output: var("FOLDER_OUTPUT").unwrap_or_else(|| "avatars/processed/".into()),
            width: dim("PROCESS_WIDTH")?,
            height: dim("PROCESS_HEIGHT")?,
            background,
        })
    }
}

fn parse_hex(hex: &str) -> Option<[u8; 3]> {
    let h = hex.trim_start_matches('#');
    // Six ASCII hex digits: checked before slicing, so `ééé` (six bytes) is refused, not a panic.
    if h.len() != 6 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// Object storage; a trait so tests can watch what is read and written.
pub trait Storage: Sync {
    fn get(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Vec<u8>, String>> + Send;
    fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> impl Future<Output = Result<(), String>> + Send;
}

pub struct S3Storage(aws_sdk_s3::Client);

impl S3Storage {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self(client)
    }
}

impl Storage for S3Storage {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let out = self
            .0
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("GetObject s3://{bucket}/{key}: {}", DisplayErrorContext(&e)))?;
        let body = out.body.collect().await.map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
        self.0
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("image/jpeg")
            .cache_control("public, max-age=31536000, immutable")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| format!("PutObject s3://{bucket}/{key}: {}", DisplayErrorContext(&e)))?;
        Ok(())
    }
}

/// Why some records of an event were not processed (the others were).
#[derive(Debug, thiserror::Error)]
#[error("{} of {total} records failed: {}", failures.len(), failures.join("; "))]
pub struct EventError {
    pub total: usize,
    pub failures: Vec<String>,
}

/// Processes every record; returns the keys written.
pub async fn handle(event: S3Event, config: &Config, storage: &impl Storage) -> Result<Vec<String>, EventError> {
    let mut written = Vec::new();
    let mut failures = Vec::new();
    let total = event.records.len();
    for record in &event.records {
        let (Some(bucket), Some(raw_key)) = (record.s3.bucket.name.as_deref(), record.s3.object.key.as_deref()) else {
            failures.push("a record without a bucket or key".to_string());
            continue;
        };
        let key = object_key(raw_key);
        if bucket == config.dest_bucket && key.starts_with(&config.folder_output) {
            // Our own output: processing it again would loop.
            continue;
        }
        match process(bucket, &key, config, storage).await {
            Ok(out) => written.push(out),
            Err(e) => failures.push(format!("s3://{bucket}/{key}: {e}")),
        }
    }
    if failures.is_empty() { Ok(written) } else { Err(EventError { total, failures }) }
}

async fn process(bucket: &str, key: &str, config: &Config, storage: &impl Storage) -> Result<String, String> {
    let original = storage.get(bucket, key).await?;
    let jpeg = thumbnail(&original, config.width, config.height, config.background).map_err(|e| e.to_string())?;
    let out = output_key(key, &config.folder_output);
    storage.put(&config.dest_bucket, &out, jpeg).await?;
    Ok(out)
}

/// Keys in S3 events are URL-encoded with `+` for a space.
pub fn object_key(raw: &str) -> String {
    percent_encoding::percent_decode_str(&raw.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// `<folder><file stem>.jpg`: `avatars/original/me.png` -> `avatars/processed/me.jpg`.
pub fn output_key(key: &str, folder: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    format!("{folder}{stem}.jpg")
}

#[cfg(test)]
mod colour_tests {
    use super::parse_hex;

    #[test]
    fn a_colour_is_six_ascii_hex_digits_and_anything_else_is_an_error_not_a_panic() {
        assert_eq!(parse_hex("#ff8000"), Some([255, 128, 0]));
        assert_eq!(parse_hex("FF8000"), Some([255, 128, 0]));
        // Six bytes that are not six characters: slicing them by bytes would panic.
        for bad in ["ééé", "#ééé", "€€", "#12345", "#1234567", "#gg0000", "", "#"] {
            assert_eq!(parse_hex(bad), None, "{bad:?}");
        }
    }
}
