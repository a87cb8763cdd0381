//! Builds Lambda crates with cargo and packages their binary as `bootstrap` in a deterministic
//! zip, the artifact a `lambda_function` with `source:` deploys.
//!
//! *Guarantees*: the same source gives a byte-identical zip (sorted entries, fixed timestamps
//! and modes), so its SHA-256 changes only when the code does; when nothing the build reads has
//! changed (see [`fingerprint`]) the last zip is reused without running cargo at all; builds
//! run one at a time (they share a target directory) and each crate is built at most once per
//! command.
//!
//! *Errors*: a compile error is reported with cargo's messages (on stderr) and stops the plan,
//! before any AWS call.

mod archive;
mod fingerprint;
pub mod glibc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::Command;
use tokio::sync::Mutex;

pub use archive::{code_sha256, deterministic_zip};

/// A Lambda CPU architecture, and the Rust target that builds for it on `provided.al2023`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Architecture {
    X86_64,
    /// Graviton: cheaper per GB-second.
    Arm64,
}

impl Architecture {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "x86_64" => Some(Self::X86_64),
            "arm64" => Some(Self::Arm64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// glibc targets: this Debian's glibc gives a floor of GLIBC_2.34, which provided.al2023
    /// (glibc 2.34) runs.
    pub fn triple(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-gnu",
            Self::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }
}

/// Which cargo profile builds a Lambda: what CI deploys, or what a developer iterates with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum BuildProfile {
    /// The `lambda` profile (fat LTO, one codegen unit: small, fast zips), else `release`.
    #[default]
    Release,
    /// The `lambda-dev` profile: no LTO, many codegen units, incremental; the same optimisation
    /// levels, so the code runs about as fast, but the zip is larger and rebuilds take seconds.
    Dev,
}

impl BuildProfile {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "release" => Some(Self::Release),
            "dev" => Some(Self::Dev),
            _ => None,
        }
    }

    /// As recorded in the state and shown in plans.
    pub fn name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Dev => "dev",
        }
    }
}

/// A packaged Lambda.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub zip_path: PathBuf,
    /// Base64 SHA-256 of the zip, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    pub size: u64,
}

/// Why a Lambda could not be built or packaged.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The source is not a cargo package.
    #[error("{dir} is not a cargo package with a binary: {reason}")]
    NotACrate { dir: String, reason: String },
    /// cargo failed; its messages went to stderr.
    #[error("cargo build failed for {dir} ({target}): see cargo's messages above")]
    Cargo { dir: String, target: String },
    /// Reading the binary or writing the zip failed.
    #[error("packaging {dir}: {reason}")]
    Package { dir: String, reason: String },
    /// The binary needs a newer glibc than the Lambda runtime has: it would die at start.
    #[error(
        "{dir} ({target}) needs GLIBC_{}.{} (the symbol `{symbol}`), newer than the runtime's GLIBC_{}.{}: it would \
         fail to start on Lambda. Build on an older glibc (a container of the runtime's distribution, or `cargo \
         zigbuild --target {target}.{}.{}`), or target musl",
        needed.0, needed.1, floor.0, floor.1, floor.0, floor.1
    )]
    GlibcTooNew { dir: String, target: String, symbol: String, needed: glibc::GlibcVersion, floor: glibc::GlibcVersion },
}

/// Why the attributes a local artifact decides could not be filled in.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Building or packaging failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// What the spec gives cannot be built or read (both `source` and `zip_file`, an unreadable
    /// zip, a dev build of a function that allows none).
    #[error("{0}")]
    Invalid(String),
}

/// What a build reports as it goes; the CLI renders it (cargo's own progress and messages go
/// straight to stderr). Every method has an empty default.
pub trait BuildEvents: Send + Sync {
    /// cargo is about to run for `dir`.
    fn started(&self, _dir: &str, _arch: Architecture, _profile: &str) {}
    /// The crate is built and packaged.
    fn packaged(&self, _dir: &str, _arch: Architecture, _artifact: &Artifact, _elapsed: Duration) {}
    /// Something went wrong that does not stop the build (a stamp that could not be written).
    fn warning(&self, _message: &str) {}
}

/// Reports nothing (tests, and commands that show no build progress).
struct Silent;
impl BuildEvents for Silent {}

/// What one build is of: a source directory, for an architecture, with a profile, checked
/// against a glibc.
type BuildKey = (PathBuf, Architecture, BuildProfile, Option<glibc::GlibcVersion>);

/// One command's builds: the profile it builds with, where progress is reported, and what it
/// built (each crate at most once per command). Made by the command and passed down to every
/// `prepare`: nothing about building is process-global. Clones share everything but can differ
/// in profile (see [`Builds::with_profile`]).
#[derive(Clone)]
pub struct Builds {
    profile: BuildProfile,
    shared: Arc<Shared>,
    /// The folder relative paths are resolved against (the spec's); empty: the working one.
    dir: PathBuf,
}

/// What every clone of one command's [`Builds`] shares.
struct Shared {
    events: Box<dyn BuildEvents>,
    /// Keyed by profile too: a clone with another profile finds none of these.
    built: std::sync::Mutex<HashMap<BuildKey, Artifact>>,
    /// One cargo at a time: builds share the workspace's target directory (and its lock).
    cargo: Mutex<()>,
}

impl std::fmt::Debug for Builds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builds").field("profile", &self.profile).finish_non_exhaustive()
    }
}

impl Default for Builds {
    /// Release builds, reported nowhere.
    fn default() -> Self {
        Self::new(BuildProfile::Release, Box::new(Silent))
    }
}

impl Builds {
    pub fn new(profile: BuildProfile, events: Box<dyn BuildEvents>) -> Self {
        let shared = Shared { events, built: std::sync::Mutex::new(HashMap::new()), cargo: Mutex::const_new(()) };
        Self { profile, shared: Arc::new(shared), dir: PathBuf::new() }
    }

    /// The profile this command builds with: `--build-profile`, or the one a saved plan was
    /// made with.
    pub fn profile(&self) -> BuildProfile {
        self.profile
    }

    /// The same builds with another profile (a saved plan's), reporting to the same place.
    pub fn with_profile(&self, profile: BuildProfile) -> Self {
        Self { profile, shared: self.shared.clone(), dir: self.dir.clone() }
    }

    /// The same builds, resolving relative paths against `dir` (a spec's folder).
    pub fn in_dir(&self, dir: &Path) -> Self {
        Self { profile: self.profile, shared: self.shared.clone(), dir: dir.to_path_buf() }
    }

    /// `path` as written in a spec, relative to its folder (an absolute path stays as it is),
    /// made absolute: canonical where it exists, so the same file reads the same from any
    /// working directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let joined = self.dir.join(path);
        std::fs::canonicalize(&joined).or_else(|_| std::path::absolute(&joined)).unwrap_or(joined)
    }

    /// Forgets what was built, so the next [`Builds::build`] checks the sources again (a watch
    /// round after a save).
    pub fn forget(&self) {
        self.shared.built.lock().expect("not poisoned").clear();
    }

    fn events(&self) -> &dyn BuildEvents {
        self.shared.events.as_ref()
    }
}

impl Builds {
    /// Builds `source` for `arch` with this command's profile and packages it, unless the zip from
    /// the last build is of the same inputs; memoised for the command. Each profile has its own zip
    /// and stamp, so switching between them rebuilds nothing that is still current. With `glibc`
    /// (the runtime's version) the packaged `bootstrap` is refused if it needs a newer one.
    pub async fn build(
        &self,
        source: &Path,
        arch: Architecture,
        glibc: Option<glibc::GlibcVersion>,
    ) -> Result<Artifact, BuildError> {
        let profile = self.profile;
        let key = (source.to_path_buf(), arch, profile, glibc);
        if let Some(artifact) = self.shared.built.lock().expect("not poisoned").get(&key) {
            return Ok(artifact.clone());
        }
        let dir = source.display().to_string();
        let manifest = source.join("Cargo.toml");
        let (package, rustc) = tokio::join!(package(&manifest), fingerprint::rustc_version());
        let package = package.map_err(|reason| BuildError::NotACrate { dir: dir.clone(), reason })?;
        let package = Package { profile: package.cargo_profile(profile), ..package };
        let zips = package.target_dir.join("lambda-zips").join(&package.name);
        let zip_path = match profile {
            BuildProfile::Release => zips.join(arch.name()),
            BuildProfile::Dev => zips.join(format!("{}-dev", arch.name())),
        }
        .join("bootstrap.zip");
        let inputs = {
            let (dirs, root, triple) = (package.source_dirs.clone(), package.workspace_root.clone(), arch.triple());
            tokio::task::spawn_blocking(move || fingerprint::fingerprint(&dirs, &root, triple, &rustc))
                .await
                .map_err(|e| BuildError::Package { dir: dir.clone(), reason: e.to_string() })?
                .map_err(|e| BuildError::Package { dir: dir.clone(), reason: format!("reading the sources: {e}") })?
        };
        let (artifact, mut stamp, mut changed) = match fingerprint::Stamp::fresh(&zip_path, &inputs) {
            Some(stamp) => {
                let artifact = Artifact { zip_path, code_sha256: stamp.code_sha256.clone(), size: stamp.size };
                (artifact, stamp, false)
            }
            None => {
                let _one_at_a_time = self.shared.cargo.lock().await;
                // Another engine (a second command, a parallel test) may build the same package
                // into the same target directory: one of them at a time, and the later one takes
                // what the first built.
                let waiting = |lock: &Path| {
                    self.events().warning(&format!(
                        "{dir}: another cruddur-infra is building it into the same target directory; waiting for it \
                         (lock {})",
                        lock.display()
                    ));
                };
                let _one_process_at_a_time = zip_lock(&zip_path, waiting)
                    .await
                    .map_err(|e| BuildError::Package { dir: dir.clone(), reason: e })?;
                match fingerprint::Stamp::fresh(&zip_path, &inputs) {
                    Some(stamp) => {
                        let artifact = Artifact { zip_path, code_sha256: stamp.code_sha256.clone(), size: stamp.size };
                        (artifact, stamp, false)
                    }
                    None => {
                        let started = Instant::now();
                        self.events().started(&dir, arch, &package.profile);
                        let artifact = build_now(&dir, &manifest, &package, arch, &zip_path).await?;
                        self.events().packaged(&dir, arch, &artifact, started.elapsed());
                        let stamp = fingerprint::Stamp {
                            fingerprint: inputs,
                            code_sha256: artifact.code_sha256.clone(),
                            size: artifact.size,
                            glibc: None,
                        };
                        (artifact, stamp, true)
                    }
                }
            }
        };
        let checked = match glibc {
            Some(floor) => {
                let needs = match &stamp.glibc {
                    Some(read) => read.needs.clone(),
                    None => {
                        let needs = glibc_needed(&dir, &artifact.zip_path).await?;
                        stamp.glibc = Some(fingerprint::GlibcRead { needs: needs.clone() });
                        changed = true;
                        needs
                    }
                };
                check_glibc(&dir, arch, needs, floor)
            }
            None => Ok(()),
        };
        // Without a stamp the next command just runs cargo (or reads the bootstrap) again.
        if changed && let Err(e) = stamp.write(&artifact.zip_path) {
            self.events()
                .warning(&format!("cannot write {}: {e}", fingerprint::Stamp::path(&artifact.zip_path).display()));
        }
        checked?;
        self.shared.built.lock().expect("not poisoned").insert(key, artifact.clone());
        Ok(artifact)
    }
}

/// What the zip's `bootstrap` needs of glibc, read from its ELF symbol versions.
async fn glibc_needed(dir: &str, zip_path: &Path) -> Result<Option<glibc::GlibcNeed>, BuildError> {
    let package_err = |reason: String| BuildError::Package { dir: dir.to_string(), reason };
    let zip = tokio::fs::read(zip_path).await.map_err(|e| package_err(format!("{}: {e}", zip_path.display())))?;
    tokio::task::spawn_blocking(move || -> Result<Option<glibc::GlibcNeed>, String> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| e.to_string())?;
        let mut entry = archive.by_name("bootstrap").map_err(|e| format!("no bootstrap in the zip: {e}"))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| e.to_string())?;
        glibc::newest_needed(&bytes)
    })
    .await
    .map_err(|e| package_err(e.to_string()))?
    .map_err(|e| package_err(format!("reading the bootstrap's ELF symbol versions: {e}")))
}

/// Refuses the zip if its `bootstrap` needs a newer glibc than `floor`.
fn check_glibc(
    dir: &str,
    arch: Architecture,
    needs: Option<glibc::GlibcNeed>,
    floor: glibc::GlibcVersion,
) -> Result<(), BuildError> {
    match needs {
        Some(need) if need.version > floor => Err(BuildError::GlibcTooNew {
            dir: dir.to_string(),
            target: arch.triple().to_string(),
            symbol: need.symbol,
            needed: need.version,
            floor,
        }),
        _ => Ok(()),
    }
}

/// Holds an exclusive lock on a file beside `zip_path` (made with its folder if missing) until
/// the returned file is dropped; the OS releases it if the process dies. When another process
/// holds it, says so through `waiting` before it waits.
async fn zip_lock(zip_path: &Path, waiting: impl FnOnce(&Path)) -> Result<std::fs::File, String> {
    let path = zip_path.with_extension("zip.lock");
    let folder = path.parent().expect("the zip is in a directory");
    std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => waiting(&path),
        Err(std::fs::TryLockError::Error(e)) => return Err(format!("locking {}: {e}", path.display())),
    }
    tokio::task::spawn_blocking(move || {
        file.lock().map_err(|e| format!("locking {}: {e}", path.display()))?;
        Ok(file)
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn build_now(
    dir: &str,
    manifest: &Path,
    package: &Package,
    arch: Architecture,
    zip_path: &Path,
) -> Result<Artifact, BuildError> {
    let dir = dir.to_string();
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["build", "--profile", &package.profile, "--target", arch.triple(), "--bin", &package.bin])
        .arg("--manifest-path")
        .arg(manifest);
    if package.profile == DEV_PROFILE && !package.defines_dev_profile {
        // A workspace without its own `lambda-dev`: the same profile, defined on the command line.
        for setting in DEV_PROFILE_SETTINGS {
            cargo.args(["--config", setting]);
        }
    }
    if arch == Architecture::Arm64 {
        // Debian's cross toolchain, unless the user configured another.
        for (var, value) in [
            ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc"),
            ("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc"),
        ] {
            if std::env::var_os(var).is_none() {
                cargo.env(var, value);
            }
        }
    }
    // cargo's progress and errors go to our stderr; stdout stays the plan's.
    cargo.stdout(std::process::Stdio::null());
    let status = cargo
        .status()
        .await
        .map_err(|e| BuildError::NotACrate { dir: dir.clone(), reason: format!("cannot run cargo: {e}") })?;
    if !status.success() {
        return Err(BuildError::Cargo { dir, target: arch.triple().into() });
    }
    let binary = package.target_dir.join(arch.triple()).join(&package.profile).join(&package.bin);
    let package_err = |reason: String| BuildError::Package { dir: dir.clone(), reason };
    let bytes = tokio::fs::read(&binary).await.map_err(|e| package_err(format!("{}: {e}", binary.display())))?;
    let zip = deterministic_zip(&[("bootstrap", &bytes, 0o755)]).map_err(|e| package_err(e.to_string()))?;
    let (path, bytes) = (zip_path.to_path_buf(), zip.clone());
    tokio::task::spawn_blocking(move || crate::atomic_file::write(&path, &bytes, 0o644))
        .await
        .map_err(|e| package_err(e.to_string()))?
        .map_err(|e| package_err(format!("{}: {e}", zip_path.display())))?;
    Ok(Artifact { zip_path: zip_path.to_path_buf(), code_sha256: code_sha256(&zip), size: zip.len() as u64 })
}

/// The cargo profile of dev builds.
const DEV_PROFILE: &str = "lambda-dev";
/// `lambda-dev` for a workspace that does not define it: release code, built the fast way.
const DEV_PROFILE_SETTINGS: &[&str] = &[
    "profile.lambda-dev.inherits=\"release\"",
    "profile.lambda-dev.lto=false",
    "profile.lambda-dev.codegen-units=256",
    "profile.lambda-dev.incremental=true",
];

impl Package {
    fn cargo_profile(&self, profile: BuildProfile) -> String {
        match profile {
            BuildProfile::Release => self.profile.clone(),
            BuildProfile::Dev => DEV_PROFILE.to_string(),
        }
    }
}

struct Package {
    name: String,
    bin: String,
    target_dir: PathBuf,
    workspace_root: PathBuf,
    /// The cargo profile: for a release build `lambda` where the workspace defines that profile
    /// (size-optimised, see Cargo.toml), else `release`; for a dev build `lambda-dev`.
    profile: String,
    /// Whether the workspace defines `[profile.lambda-dev]` (else it is given with `--config`).
    defines_dev_profile: bool,
    /// The package's directory and those of its path dependencies: the build's own sources.
    source_dirs: Vec<PathBuf>,
}

/// The package's name, its binary and where cargo puts build output, from `cargo metadata`.
async fn package(manifest: &Path) -> Result<Package, String> {
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .output()
        .await
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let meta: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let wanted = std::fs::canonicalize(manifest).map_err(|e| e.to_string())?;
    let pkg = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["manifest_path"].as_str().and_then(|m| std::fs::canonicalize(m).ok()) == Some(wanted.clone()))
        .ok_or("no package at this path")?;
    let bin = pkg["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
        .and_then(|t| t["name"].as_str())
        .ok_or("the package has no binary")?;
    let mut source_dirs = vec![wanted.parent().ok_or("a manifest in a directory")?.to_path_buf()];
    source_dirs.extend(
        pkg["dependencies"].as_array().into_iter().flatten().filter_map(|d| d["path"].as_str()).map(PathBuf::from),
    );
    let workspace_root = PathBuf::from(meta["workspace_root"].as_str().ok_or("no workspace_root")?);
    let root_manifest = std::fs::read_to_string(workspace_root.join("Cargo.toml")).unwrap_or_default();
    let defines = |profile: &str| root_manifest.lines().any(|l| l.trim() == format!("[profile.{profile}]"));
    let profile = if defines("lambda") { "lambda" } else { "release" };
    Ok(Package {
        defines_dev_profile: defines(DEV_PROFILE),
        name: pkg["name"].as_str().unwrap_or(bin).to_string(),
        bin: bin.to_string(),
        target_dir: PathBuf::from(meta["target_directory"].as_str().ok_or("no target_directory")?),
        workspace_root,
        profile: profile.to_string(),
        source_dirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrap_needing_a_newer_glibc_than_the_runtime_is_refused_naming_the_symbol() {
        let need = |minor| Some(glibc::GlibcNeed { version: (2, minor), symbol: "memcpy".into() });
        let refused = check_glibc("lambdas/x", Architecture::X86_64, need(38), (2, 34)).expect_err("too new");
        let message = refused.to_string();
        assert!(message.contains("GLIBC_2.38") || message.contains("2.38"), "{message}");
        assert!(matches!(refused, BuildError::GlibcTooNew { ref symbol, .. } if symbol == "memcpy"));
        assert!(check_glibc("lambdas/x", Architecture::X86_64, need(34), (2, 34)).is_ok());
        assert!(check_glibc("lambdas/x", Architecture::X86_64, None, (2, 34)).is_ok(), "a static binary");
    }

    #[test]
    fn what_a_bootstrap_needs_of_glibc_is_kept_in_its_stamp() {
        // Read once (inflating the whole bootstrap); every later command takes it from there.
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = dir.path().join("bootstrap.zip");
        std::fs::write(&zip, b"zip bytes").expect("zip");
        let needs = Some(glibc::GlibcNeed { version: (2, 34), symbol: "__libc_start_main".into() });
        let stamp = fingerprint::Stamp {
            fingerprint: "f".into(),
            code_sha256: code_sha256(b"zip bytes"),
            size: 9,
            glibc: Some(fingerprint::GlibcRead { needs: needs.clone() }),
        };
        stamp.write(&zip).expect("written");
        let read = fingerprint::Stamp::fresh(&zip, "f").expect("fresh");
        assert_eq!(read.glibc, Some(fingerprint::GlibcRead { needs }));
    }
}
