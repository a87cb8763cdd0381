//! The integration-test harness: a moto server of its own for each test, on 127.0.0.1, a
//! temporary working directory with the spec, the real `cruddur-infra` binary, and AWS SDK
//! clients pointed at the same server for checking results through the AWS API.
//!
//! Servers are pooled across tests and test processes (`cargo test` threads, `cargo nextest`
//! processes): a test takes a free server, resets it to an empty account, and gives it back
//! when it ends (or dies: the pool's locks are file locks). A server started for the pool stops
//! by itself after five idle minutes. Booting moto and importing its services costs seconds;
//! a reset costs tens of milliseconds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A moto server this test holds, given back to the pool when dropped.
pub struct Moto {
    pub port: u16,
    /// The pool slot, locked while this test holds the server.
    _slot: std::fs::File,
    /// Keeps the server from stopping as idle while this test holds it (a test may spend
    /// minutes between requests, e.g. waiting for a cold Lambda build on a busy CI machine);
    /// stops when the test gives the server back.
    _keepalive: KeepAlive,
}

/// Touches a held server every minute, so its idle clock never runs out under a test.
struct KeepAlive(Option<std::sync::mpsc::Sender<()>>);

impl KeepAlive {
    fn start(port: u16, every: Duration) -> KeepAlive {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let _ = pool_id(port);
            }
        });
        KeepAlive(Some(stop))
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread, which then ends.
        self.0.take();
    }
}

/// How long a pooled server waits for another test before it stops.
const IDLE_EXIT: Duration = Duration::from_secs(300);

impl Moto {
    /// A free server from the pool, reset to an empty account; a new one if none is free.
    pub fn start() -> Moto {
        let dir = pool_dir();
        std::fs::create_dir_all(&dir).expect("the moto pool folder");
        let mut slots: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("the moto pool folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("slot-")))
            .collect();
        slots.sort();
        for path in slots {
            let Ok(mut slot) = std::fs::OpenOptions::new().read(true).write(true).open(&path) else { continue };
            if slot.try_lock().is_err() {
                continue;
            }
            let mut text = String::new();
            let _ = slot.read_to_string(&mut text);
            let recorded =
                text.split_once(' ').and_then(|(port, id)| Some((port.parse::<u16>().ok()?, id.to_string())));
            // The slot's own server, not another that took its port after it stopped.
            let port = match recorded.filter(|(port, id)| pool_id(*port).as_deref() == Some(id.as_str())) {
                Some((port, _)) => port,
                None => {
                    let (port, id) = boot();
                    slot.set_len(0).and_then(|_| std::io::Seek::rewind(&mut slot)).expect("slot");
                    write!(slot, "{port} {id}").expect("slot");
                    port
                }
            };
            let moto = Moto { port, _slot: slot, _keepalive: KeepAlive::start(port, IDLE_EXIT / 5) };
            moto.reset();
            return moto;
        }
        // None free: a new slot, locked before it is visible under its slot name.
        let name = format!("{}-{}", std::process::id(), fastrand::u64(..));
        let fresh = dir.join(format!("new-{name}"));
        let mut slot = std::fs::File::create_new(&fresh).expect("a new pool slot");
        slot.lock().expect("the new slot's lock");
        let (port, id) = boot();
        write!(slot, "{port} {id}").expect("slot");
        std::fs::rename(&fresh, dir.join(format!("slot-{name}"))).expect("the slot named");
        let moto = Moto { port, _slot: slot, _keepalive: KeepAlive::start(port, IDLE_EXIT / 5) };
        moto.reset();
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Turns IAM enforcement on from the next request: each must be signed by an IAM user's key
    /// and allowed by its policies (S3, SNS, IAM and STS are judged; see MOTO.md). Off again for
    /// the next test ([`Moto::reset`]).
    pub fn enforce_iam(&self) {
        http(self.port, "POST", "/moto-api/reset-auth", "0").expect("reset-auth");
    }

    /// Forgets everything, as a new account would look, IAM enforcement off.
    pub fn reset(&self) {
        http(self.port, "POST", "/moto-api/reset-auth", "inf").expect("moto reset-auth");
        http(self.port, "POST", "/moto-api/reset", "").expect("moto reset: no 2xx answer within 120 s");
        http(self.port, "POST", "/moto-api/config", r#"{"lambda":{"use_docker":false}}"#).expect("moto config");
    }
}

/// The pool of this moto installation and emulator script (a change to either starts a new
/// pool; the old one's servers stop when idle).
fn pool_dir() -> PathBuf {
    let script = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto/server.py")).unwrap_or_default();
    let mut key = moto_server().display().to_string().into_bytes();
    key.extend(script);
    // FNV-1a: a stable name, not a secret.
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    std::env::temp_dir().join(format!("cruddur-moto-pool-{hash:016x}"))
}

/// The pool id of the server on `port`, if one answers there.
fn pool_id(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /_cruddur/pool-id HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let ok = head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200");
    ok.then(|| body.trim().to_string()).filter(|id| !id.is_empty())
}

/// Starts a moto server for the pool on a free port, with a pool id of its own, and waits
/// until it answers.
fn boot() -> (u16, String) {
    boot_stopping_after(IDLE_EXIT)
}

fn boot_stopping_after(idle: Duration) -> (u16, String) {
    let id = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
    let exe = moto_server();
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let log = std::env::temp_dir().join(format!("moto-{port}.log"));
    // moto with the few AWS operations it lacks (tests/moto/server.py), run by the Python
    // that has moto installed; a bare moto_server elsewhere on the PATH runs as it is.
    let python = exe.with_file_name("python");
    let mut command = if python.exists() {
        let mut c = Command::new(python);
        c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto/server.py"));
        c
    } else {
        Command::new(&exe)
    };
    // Its own process group: a Ctrl-C of the test run does not stop a server another run uses.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        .env("CRUDDUR_MOTO_IDLE_EXIT", idle.as_secs().to_string())
        .env("CRUDDUR_MOTO_POOL_ID", &id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map(Stdio::from).unwrap_or(Stdio::null()))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    // It outlives the test that started it; reaped here if it stops while this process runs.
    std::thread::spawn(move || child.wait());
    // Generous: on a cold CI machine release builds in other tests share the two cores.
    let deadline = Instant::now() + Duration::from_secs(120);
    while http(port, "GET", "/moto-api/", "").is_none() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer on port {port} within 120 s (log: {})",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pool finds its servers again by this id: a server that does not give it back would
    // be replaced at every test, a silent boot per test (it was once, by a chunked answer).
    assert_eq!(pool_id(port).as_deref(), Some(id.as_str()), "the server on port {port} does not give its pool id back");
    (port, id)
}

/// A bare HTTP/1.0 request; the status line if the server answered 2xx. Its answer may take a
/// while: a reset after a whole-stack test forgets thousands of objects, and on a cold CI
/// machine release builds share the two cores (CI once failed a reset that took over 5 s).
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.lines().next()?.to_string();
    let ok = status.split_whitespace().nth(1).is_some_and(|c| c.starts_with('2'));
    ok.then_some(status)
}

/// `moto_server` from $MOTO_SERVER (scripts/test sets it), else the one scripts/ensure-moto
/// installs from PyPI into the repository's .venv: the one way moto is installed, for the tests,
/// the demo and the benchmarks alike.
fn moto_server() -> PathBuf {
    static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("MOTO_SERVER") {
                return PathBuf::from(p);
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ensure-moto");
            let out = Command::new(&script).stderr(Stdio::inherit()).output().expect("scripts/ensure-moto runs");
            assert!(out.status.success(), "scripts/ensure-moto could not install moto");
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stderr as one line: miette wraps long messages and draws a gutter (`│`) on the left.
    pub fn stderr_flat(&self) -> String {
        self.stderr.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ")
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

/// A temporary working directory and the real binary, for tests that never touch AWS
/// (diagnostics, the schema, building): no emulator is started for them.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    /// The build profile `source:` Lambdas are built with: dev (no LTO, seconds to rebuild)
    /// unless a test is about release builds.
    profile: std::cell::Cell<&'static str>,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir { dir: tempfile::tempdir().expect("tempdir"), profile: std::cell::Cell::new("dev") }
    }

    /// From now on the binary builds Lambdas as a user would by default, with the release
    /// (`lambda`, fat LTO) profile: for the tests about release builds and profiles.
    pub fn release_builds(&self) {
        self.profile.set("release");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `specs/cruddur.yaml` (the default spec path) in the working directory.
    pub fn write_spec(&self, text: &str) {
        self.write("specs/cruddur.yaml", text);
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// The binary in the working directory, with no colour and no terminal; AWS unreachable
    /// (an endpoint nothing listens on), so a test that touches it by mistake fails.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cruddur-infra"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("NO_COLOR", "1")
            .env("CRUDDUR_BUILD_PROFILE", self.profile.get())
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("the binary runs"))
    }
}

/// A test's own moto server and working directory, and the proxy the binary talks through
/// when a test injects faults.
pub struct Env {
    pub moto: Moto,
    pub work: Workdir,
    pub proxy: Option<crate::proxy::Proxy>,
    rt: tokio::runtime::Runtime,
}

impl Env {
    pub fn new() -> Env {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let work = Workdir::new();
        Env { moto: Moto::start(), work, proxy: None, rt }
    }

    /// An environment whose binary reaches moto through a fault-injecting proxy.
    pub fn with_proxy(mode: crate::proxy::Mode, seed: u64) -> Env {
        let mut env = Env::new();
        env.proxy = Some(crate::proxy::Proxy::start(env.moto.port, mode, seed));
        env
    }

    pub fn proxy(&self) -> &crate::proxy::Proxy {
        self.proxy.as_ref().expect("this environment has a proxy")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.path(rel)
    }

    /// Writes `specs/cruddur.yaml` (the default spec path) in the working directory.
    pub fn write_spec(&self, text: &str) {
        self.work.write_spec(text);
    }

    pub fn write(&self, rel: &str, text: &str) {
        self.work.write(rel, text);
    }

    /// The binary with the environment a user pointing at moto would have.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = self.work.command(args);
        c.env("AWS_ENDPOINT_URL", self.proxy.as_ref().map_or_else(|| self.moto.endpoint(), |p| p.endpoint()))
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("CRUDDUR_S3_FORCE_PATH_STYLE", "true");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("the binary runs"))
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// SDK configuration for moto, as a Lambda's client would load it.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        self.block_on(self.config())
    }

    async fn config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.moto.endpoint())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.block_on(async {
            let conf = aws_sdk_s3::config::Builder::from(&self.config().await).force_path_style(true).build();
            aws_sdk_s3::Client::from_conf(conf)
        })
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        self.block_on(async { aws_sdk_sns::Client::new(&self.config().await) })
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        self.block_on(async { aws_sdk_iam::Client::new(&self.config().await) })
    }

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        self.block_on(async { aws_sdk_lambda::Client::new(&self.config().await) })
    }

    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        self.block_on(async { aws_sdk_cloudfront::Client::new(&self.config().await) })
    }

    pub fn route53(&self) -> aws_sdk_route53::Client {
        self.block_on(async { aws_sdk_route53::Client::new(&self.config().await) })
    }

    pub fn apigw(&self) -> aws_sdk_apigatewayv2::Client {
        self.block_on(async { aws_sdk_apigatewayv2::Client::new(&self.config().await) })
    }

    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        self.block_on(async { aws_sdk_cloudwatchlogs::Client::new(&self.config().await) })
    }

    pub fn tagging(&self) -> aws_sdk_resourcegroupstagging::Client {
        self.block_on(async { aws_sdk_resourcegroupstagging::Client::new(&self.config().await) })
    }

    pub fn cognito(&self) -> aws_sdk_cognitoidentityprovider::Client {
        self.block_on(async { aws_sdk_cognitoidentityprovider::Client::new(&self.config().await) })
    }

    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("state/cruddur.json")).expect("state file exists");
        serde_json::from_str(&text).expect("state is valid JSON")
    }
}

/// Base64 SHA-256, as Lambda reports `CodeSha256`; computed here, not by the engine under test.
pub fn code_sha256(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// Cargo's target directory for the workspace at `manifest_dir`, as cargo itself reports it
/// (`CARGO_TARGET_DIR`, `build.target-dir` and the default all apply), so the tests find what
/// the engine built wherever a developer keeps build output.
pub fn target_dir_of(manifest_dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    PathBuf::from(meta["target_directory"].as_str().expect("a target directory"))
}

/// Where the engine packages the Lambda crate `name` of this workspace for `arch` with the
/// dev profile the tests build with.
pub fn packaged_zip(name: &str, arch: &str) -> PathBuf {
    packaged(name, &format!("{arch}-dev"))
}

/// Where the engine packages a release build of the Lambda crate `name` for `arch`.
pub fn packaged_release_zip(name: &str, arch: &str) -> PathBuf {
    packaged(name, arch)
}

fn packaged(name: &str, folder: &str) -> PathBuf {
    static TARGET: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let target = TARGET.get_or_init(|| target_dir_of(Path::new(env!("CARGO_MANIFEST_DIR"))));
    packaged_in(target, name, folder)
}

/// Where the engine packages the Lambda crate `name` into `folder` (`x86_64`, `arm64-dev`, ...)
/// under the target directory `target`.
pub fn packaged_in(target: &Path, name: &str, folder: &str) -> PathBuf {
    target.join("lambda-zips").join(name).join(folder).join("bootstrap.zip")
}

#[test]
fn a_pool_slot_whose_port_another_server_took_is_never_taken_for_it() {
    // A pooled server stopped when idle, and another server now listens on its port: a test
    // taking that slot must start a server of its own, not reset the other one under its test.
    let held = Env::new();
    held.block_on(held.s3().create_bucket().bucket("still-mine").send()).expect("a bucket");
    let fake = pool_dir().join(format!("slot-0-fake-{}", fastrand::u64(..)));
    std::fs::write(&fake, format!("{} not-its-id", held.moto.port)).expect("a stale slot");
    let others: Vec<Env> = (0..3).map(|_| Env::new()).collect();
    assert!(others.iter().all(|e| e.moto.port != held.moto.port), "a held server is never handed out");
    let buckets = held.block_on(held.s3().list_buckets().send()).expect("buckets");
    assert_eq!(buckets.buckets().len(), 1, "the held server was not reset");
    drop(others);
    let _ = std::fs::remove_file(fake);
}

#[test]
fn a_held_server_outlives_its_idle_time_and_a_released_one_stops() {
    // A test may wait minutes for a cold Lambda build without sending a request (CI found it:
    // three stack tests lost their server mid-build). Scaled down: 6 s idle, touched every 2 s.
    let (port, id) = boot_stopping_after(Duration::from_secs(6));
    let keepalive = KeepAlive::start(port, Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(16));
    assert_eq!(pool_id(port).as_deref(), Some(id.as_str()), "the held server stopped while held");
    drop(keepalive);
    // The server checks every 5 s: gone within idle + 5 s + slack.
    let deadline = Instant::now() + Duration::from_secs(30);
    // A bare connection is not a request: it does not reset the idle clock.
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "a released server did not stop when idle");
        std::thread::sleep(Duration::from_millis(500));
    }
}
