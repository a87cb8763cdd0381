//! What a build's output depends on, hashed, so an unchanged Lambda is packaged without
//! running cargo (a no-op `cargo build --release` still costs seconds per crate).
//!
//! The fingerprint covers: every file of the package and of its path dependencies (skipping
//! `target/` and hidden directories), the workspace's `Cargo.lock` and root manifest (profiles
//! live there), the target triple, `rustc -vV`, and the environment variables that change how
//! cargo builds. A stamp beside the zip records the fingerprint it was built from; the zip is
//! reused only when both match and the zip's hash is the one recorded.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_lc_rs::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

/// Environment that changes what cargo produces: flags, and any profile, target (linker,
/// runner) or C compiler setting, whichever profile the build uses.
const BUILD_ENV_PREFIXES: &[&str] = &["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_PROFILE_", "CARGO_TARGET_", "CC_"];
/// Where output goes (the zip's path already says), and what `cargo test` sets for its tests.
const NOT_BUILD_ENV: &[&str] = &["CARGO_TARGET_DIR", "CARGO_TARGET_TMPDIR"];

/// The hex SHA-256 of everything the build reads.
pub fn fingerprint(dirs: &[PathBuf], workspace_root: &Path, triple: &str, rustc: &str) -> std::io::Result<String> {
    let mut hash = Context::new(&SHA256);
    let mut feed = |label: &str, bytes: &[u8]| {
        hash.update(&(label.len() as u64).to_le_bytes());
        hash.update(label.as_bytes());
        hash.update(&(bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    feed("triple", triple.as_bytes());
    feed("rustc", rustc.as_bytes());
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| BUILD_ENV_PREFIXES.iter().any(|p| k.starts_with(p)) && !NOT_BUILD_ENV.contains(&k.as_str()))
        .collect();
    env.sort();
    for (k, v) in env {
        feed(&k, v.as_bytes());
    }
    for name in ["Cargo.lock", "Cargo.toml", ".cargo/config.toml", "rust-toolchain.toml"] {
        let bytes = std::fs::read(workspace_root.join(name)).unwrap_or_default();
        feed(name, &bytes);
    }
    for dir in dirs {
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        for file in files {
            let rel = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy().into_owned();
            feed(&format!("{}:{rel}", dir.display()), &std::fs::read(&file)?);
        }
    }
    Ok(hash.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// `rustc -vV`, once per process: a toolchain change must rebuild.
pub async fn rustc_version() -> String {
    static VERSION: OnceLock<String> = OnceLock::new();
    if let Some(v) = VERSION.get() {
        return v.clone();
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = tokio::process::Command::new(rustc).arg("-vV").output().await;
    let v = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    VERSION.get_or_init(|| v).clone()
}

/// The record beside a zip of what it was built from.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Stamp {
    pub fingerprint: String,
    pub code_sha256: String,
    pub size: u64,
    /// What the zip's `bootstrap` needs of glibc, once read (reading means inflating the whole
    /// binary: every later command takes it from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glibc: Option<GlibcRead>,
}

/// The glibc a bootstrap needs, as read from it: `None` when it names no glibc version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GlibcRead {
    pub needs: Option<super::glibc::GlibcNeed>,
}

impl Stamp {
    pub fn path(zip: &Path) -> PathBuf {
        zip.with_extension("zip.stamp")
    }

    /// The stamp of `zip`, if it was built from `fingerprint` and the zip is still the one built.
    pub fn fresh(zip: &Path, fingerprint: &str) -> Option<Stamp> {
        let stamp: Stamp = serde_json::from_slice(&std::fs::read(Self::path(zip)).ok()?).ok()?;
        if stamp.fingerprint != fingerprint {
            return None;
        }
        let bytes = std::fs::read(zip).ok()?;
        (bytes.len() as u64 == stamp.size && super::code_sha256(&bytes) == stamp.code_sha256).then_some(stamp)
    }

    pub fn write(&self, zip: &Path) -> std::io::Result<()> {
        // Unique temporary name and a rename: a second engine reading it sees one stamp or the other.
        crate::atomic_file::write(&Self::path(zip), &serde_json::to_vec(self).map_err(std::io::Error::other)?, 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_source_byte_the_lock_file_or_the_target_changes_the_fingerprint_and_target_does_not() {
        let ws = tempfile::tempdir().expect("tempdir");
        let pkg = ws.path().join("lambdas/fn");
        std::fs::create_dir_all(pkg.join("src")).expect("mkdir");
        std::fs::create_dir_all(pkg.join("target/release")).expect("mkdir");
        std::fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"fn\"\n").expect("write");
        std::fs::write(pkg.join("src/main.rs"), "fn main() {}\n").expect("write");
        std::fs::write(ws.path().join("Cargo.lock"), "# lock\n").expect("write");
        let fp =
            || fingerprint(std::slice::from_ref(&pkg), ws.path(), "x86_64-unknown-linux-gnu", "rustc 1.95").unwrap();
        let base = fp();
        assert_eq!(fp(), base, "stable");

        std::fs::write(pkg.join("target/release/fn"), "build output").expect("write");
        assert_eq!(fp(), base, "build output is not an input");
        std::fs::write(pkg.join("src/main.rs"), "fn main() { }\n").expect("write");
        let edited = fp();
        assert_ne!(edited, base, "a source edit");
        std::fs::write(ws.path().join("Cargo.lock"), "# lock 2\n").expect("write");
        assert_ne!(fp(), edited, "a dependency update");
        let arm =
            fingerprint(std::slice::from_ref(&pkg), ws.path(), "aarch64-unknown-linux-gnu", "rustc 1.95").unwrap();
        assert_ne!(arm, fp(), "another target");
    }

    #[test]
    fn a_stamp_is_fresh_only_for_its_fingerprint_and_an_untouched_zip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = dir.path().join("bootstrap.zip");
        std::fs::write(&zip, b"zip bytes").expect("write");
        let stamp = Stamp {
            fingerprint: "abc".into(),
            code_sha256: super::super::code_sha256(b"zip bytes"),
            size: 9,
            glibc: None,
        };
        stamp.write(&zip).expect("stamp");
        assert_eq!(Stamp::fresh(&zip, "abc"), Some(stamp));
        assert_eq!(Stamp::fresh(&zip, "abd"), None, "other sources");
        std::fs::write(&zip, b"zip bytez").expect("write");
        assert_eq!(Stamp::fresh(&zip, "abc"), None, "the zip was replaced");
    }
}
