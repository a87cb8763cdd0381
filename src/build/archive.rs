//! Deterministic zips: the same files always give the same bytes.

use std::io::Write;

use base64::Engine as _;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// A zip of `(name, bytes, unix mode)` entries, sorted by name, each stamped 1980-01-01 00:00
/// with the given mode and compressed at a fixed level.
pub fn deterministic_zip(entries: &[(&str, &[u8], u32)]) -> zip::result::ZipResult<Vec<u8>> {
    let mut sorted: Vec<&(&str, &[u8], u32)> = entries.iter().collect();
    sorted.sort_by_key(|(name, _, _)| *name);
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes, mode) in sorted {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(9))
            .last_modified_time(DateTime::default())
            .unix_permissions(*mode);
        zip.start_file(*name, options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// The base64 SHA-256 Lambda reports as `CodeSha256`.
pub fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, zip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_in_any_order_give_identical_bytes() {
        // Order of input and time of packaging do not change the archive.
        let a = deterministic_zip(&[("bootstrap", b"\x7fELF...", 0o755), ("data.txt", b"x", 0o644)]).expect("zip");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = deterministic_zip(&[("data.txt", b"x", 0o644), ("bootstrap", b"\x7fELF...", 0o755)]).expect("zip");
        assert_eq!(a, b);
        assert_eq!(code_sha256(&a), code_sha256(&b));
    }

    #[test]
    fn bootstrap_is_executable_and_dated_1980() {
        // Lambda runs `bootstrap` only if its mode allows it.
        let z = deterministic_zip(&[("bootstrap", b"#!/bin/sh\n", 0o755)]).expect("zip");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(z)).expect("readable");
        let entry = archive.by_name("bootstrap").expect("entry");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        assert_eq!(entry.last_modified().map(|d| (d.year(), d.month(), d.day())), Some((1980, 1, 1)));
    }

    #[test]
    fn code_hash_is_base64_sha256_like_lambda_reports() {
        // The hash of "abc" in the form Lambda's CodeSha256 uses.
        assert_eq!(code_sha256(b"abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    }
}
