//! Lambdas built from source by plan and apply: deployed code matches the deterministic zip,
//! unchanged code is neither rebuilt nor uploaded, a compile error stops before AWS, and both
//! architectures produce binaries Lambda's provided.al2023 can run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Env, code_sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn function_spec(source: &str, arch: &str) -> String {
    format!(
        r#"
resources:
  iam_role:
    fn:
      name: fn-role
      assume_role_policy:
        Version: "2012-10-17"
        Statement: [{{ Effect: Allow, Principal: {{ Service: lambda.amazonaws.com }}, Action: "sts:AssumeRole" }}]
  lambda_function:
    fn:
      name: built-from-source
      role: ${{iam_role.fn.arn}}
      source: {source}
      architecture: {arch}
      environment: {{ USER_POOL_ID: us-east-1_x, CLIENT_ID: y }}
"#
    )
}

fn packaged(name: &str, arch: &str) -> PathBuf {
    crate::harness::packaged_release_zip(name, arch)
}

#[test]
fn a_source_crate_is_built_deployed_and_unchanged_code_is_not_uploaded_again() {
    // apply builds lambdas/authorizer, deploys the zip whose hash Lambda reports; a second
    // apply and a plan find nothing to do and make no changing Lambda call.
    let env = Env::new();
    env.work.release_builds();
    env.write_spec(&function_spec(&format!("{ROOT}/lambdas/authorizer"), "x86_64"));
    let first = env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(first.stdout.contains("+ code_sha256"), "{}", first.stdout);
    let zip = std::fs::read(packaged("authorizer", "x86_64")).expect("packaged zip");
    let f = env.block_on(env.lambda().get_function().function_name("built-from-source").send()).expect("function");
    assert_eq!(f.configuration().and_then(|c| c.code_sha256()), Some(code_sha256(&zip).as_str()));

    let again = env
        .command(&["apply", "--auto-approve"])
        .env("CRUDDUR_AWS_CALL_LOG", env.path("second.log"))
        .output()
        .expect("runs");
    assert!(again.status.success());
    let log = std::fs::read_to_string(env.path("second.log")).expect("log");
    for changing in ["CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration"] {
        assert!(!log.contains(changing), "unchanged code made a {changing} call:\n{log}");
    }
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_compile_error_stops_apply_before_any_aws_change_with_cargos_message() {
    // A crate that does not compile: cargo's error is shown, nothing is created.
    let env = Env::new();
    env.write(
        "broken/Cargo.toml",
        "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    );
    env.write("broken/src/main.rs", "fn main() { let x: u32 = \"not a number\"; }\n");
    env.write_spec(&function_spec(&env.path("broken").display().to_string(), "x86_64"));
    let out = env
        .command(&["apply", "--auto-approve"])
        .env("CRUDDUR_AWS_CALL_LOG", env.path("calls.log"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[E0308]: mismatched types"), "cargo's message is shown:\n{stderr}");
    assert!(stderr.contains("cargo build failed for"), "{stderr}");
    let log = std::fs::read_to_string(env.path("calls.log")).unwrap_or_default();
    assert!(!log.lines().any(|l| l.contains(" Create")), "no AWS change:\n{log}");
    assert!(
        env.block_on(env.iam().list_roles().send()).expect("roles").roles().iter().all(|r| r.role_name() != "fn-role")
    );
}

#[test]
fn every_lambda_builds_for_x86_64_with_the_right_cpu_and_glibc_floor() {
    release_builds_for(("x86_64", "X86-64"), None);
}

#[test]
fn every_lambda_builds_for_arm64_with_the_right_cpu_and_glibc_floor() {
    // In a target directory of its own (and so through CARGO_TARGET_DIR, as a user may set it):
    // cargo locks a target directory's profile folder for a whole build, so in the shared one
    // this build would wait for the x86_64 one and then leave a core idle through its
    // single-threaded fat-LTO links, the last minutes of a cold CI run.
    let own = crate::harness::target_dir_of(Path::new(ROOT)).join("arm64-release-tests");
    release_builds_for(("arm64", "AArch64"), Some(&own));
}

/// `cruddur-infra build` packages each crate for `arch` with the release profile; each bootstrap
/// is an ELF for that CPU needing at most GLIBC_2.34 (what provided.al2023 has).
fn release_builds_for((arch, machine): (&str, &str), target_dir: Option<&Path>) {
    let env = crate::harness::Workdir::new();
    env.release_builds();
    let mut spec = String::from("resources:\n  lambda_function:\n");
    for name in ["thumbnailer", "authorizer", "presigner"] {
        spec.push_str(&format!("    {name}:\n      name: {name}-{arch}\n      role: arn:aws:iam::123456789012:role/r\n      source: {ROOT}/lambdas/{name}\n      architecture: {arch}\n"));
    }
    env.write_spec(&spec);
    let mut build = env.command(&["build"]);
    if let Some(dir) = target_dir {
        build.env("CARGO_TARGET_DIR", dir);
    }
    let out = crate::harness::Run::from(build.output().expect("runs")).expect_code(0);
    assert!(out.stdout.contains("Built 3 artifact(s)."), "{}", out.stdout);
    for name in ["thumbnailer", "authorizer", "presigner"] {
        let zip = match target_dir {
            Some(dir) => crate::harness::packaged_in(dir, name, arch),
            None => packaged(name, arch),
        };
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).expect("zip")).expect("a zip");
        assert_eq!(archive.len(), 1, "{name}/{arch}: only bootstrap");
        let mut entry = archive.by_name("bootstrap").expect("bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let binary = env.path(&format!("{name}-{arch}.bin"));
        std::io::copy(&mut entry, &mut std::fs::File::create(&binary).expect("create")).expect("extract");
        let header = Command::new("readelf").arg("-h").arg(&binary).output().expect("readelf");
        assert!(String::from_utf8_lossy(&header.stdout).contains(machine), "{name}/{arch} is not {machine}");
        let floor = glibc_floor(&binary);
        assert!(floor <= (2, 34), "{name}/{arch} needs GLIBC_{}.{}, provided.al2023 has 2.34", floor.0, floor.1);
        // The size target (docs/lambdas.md: 10^6-byte MB): a dependency bump that outgrows it fails here.
        let size = std::fs::metadata(&zip).expect("zip").len();
        assert!(size < 5_000_000, "{name}/{arch}: the zip is {size} bytes, over the 5 MB target");
    }
}

/// The highest GLIBC_x.y version the binary's dynamic symbols require.
fn glibc_floor(binary: &Path) -> (u32, u32) {
    let out = Command::new("readelf").args(["--version-info", "--wide"]).arg(binary).output().expect("readelf");
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| c.is_whitespace())
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .unwrap_or((0, 0))
}

#[test]
fn changed_code_is_planned_as_a_code_hash_update_and_uploaded() {
    // Editing the crate's source changes the zip's hash: the plan shows it, apply uploads it,
    // and Lambda then reports the new hash.
    let env = Env::new();
    env.write(
        "tiny/Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    );
    env.write("tiny/src/main.rs", "fn main() { println!(\"v1\"); }\n");
    env.write_spec(&function_spec(&env.path("tiny").display().to_string(), "x86_64"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let first = env.block_on(env.lambda().get_function().function_name("built-from-source").send()).expect("function");
    let first = first.configuration().and_then(|c| c.code_sha256()).expect("hash").to_string();
    env.write("tiny/src/main.rs", "fn main() { println!(\"v2\"); }\n");
    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(plan.stdout.contains("# lambda_function.fn will be updated in-place"), "{}", plan.stdout);
    assert!(plan.stdout.contains(&format!("~ code_sha256 = \"{first}\" -> \"")), "{}", plan.stdout);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let zip = std::fs::read(
        crate::harness::target_dir_of(&env.path("tiny")).join("lambda-zips/tiny/x86_64-dev/bootstrap.zip"),
    )
    .expect("packaged");
    let now = env.block_on(env.lambda().get_function().function_name("built-from-source").send()).expect("function");
    assert_eq!(now.configuration().and_then(|c| c.code_sha256()), Some(code_sha256(&zip).as_str()));
    assert_ne!(code_sha256(&zip), first);
}

/// A crate with no dependencies, outside the workspace: builds in a second.
fn tiny_crate(env: &Env, body: &str) -> String {
    env.write(
        "hello/Cargo.toml",
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    );
    env.write("hello/src/main.rs", &format!("fn main() {{ println!(\"{body}\"); }}\n"));
    env.path("hello").display().to_string()
}

/// The version the live alias serves and its code.
fn live(env: &Env) -> (String, String) {
    let f = env.block_on(env.lambda().get_function().function_name("built-from-source").qualifier("live").send());
    let c = f.expect("the live alias").configuration.expect("configuration");
    (c.version.expect("version"), c.code_sha256.expect("CodeSha256"))
}

fn deployed_sha(env: &Env) -> String {
    let f = env.block_on(env.lambda().get_function().function_name("built-from-source").send()).expect("function");
    f.configuration().and_then(|c| c.code_sha256()).expect("CodeSha256").to_string()
}

#[test]
fn dev_profile_code_is_deployed_recorded_and_warned_about_until_a_release_build_replaces_it() {
    // `--build-profile dev` deploys the dev build (its own zip); plans with the same flag are
    // empty but warn; a release plan shows the profile going back, and after it nothing warns.
    let env = Env::new();
    env.work.release_builds();
    let source = tiny_crate(&env, "hello");
    env.write_spec(&function_spec(&source, "x86_64"));
    let zips = crate::harness::target_dir_of(Path::new(&source)).join("lambda-zips").join("hello");
    env.run(&["apply", "--auto-approve", "--build-profile", "dev"]).expect_code(0);
    let dev_zip = std::fs::read(zips.join("x86_64-dev/bootstrap.zip")).expect("the dev zip");
    assert_eq!(deployed_sha(&env), code_sha256(&dev_zip), "Lambda runs the dev build");

    let warning = "Warning: lambda_function.fn runs code built with --build-profile dev";
    let same = env.run(&["plan", "--detailed-exitcode", "--build-profile", "dev"]).expect_code(0);
    assert!(same.stdout.contains(warning), "{}", same.stdout);
    let json = env.run(&["plan", "--json", "--build-profile", "dev"]).expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert!(json["warnings"][0].as_str().is_some_and(|w| w.contains("lambda_function.fn")), "{json}");

    let back = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(back.stdout.contains(r#"build_profile = "dev" -> "release""#), "{}", back.stdout);
    assert!(back.stdout.contains("code_sha256"), "{}", back.stdout);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let release_zip = std::fs::read(zips.join("x86_64/bootstrap.zip")).expect("the release zip");
    assert_ne!(dev_zip, release_zip, "the profiles build different binaries");
    assert_eq!(deployed_sha(&env), code_sha256(&release_zip), "Lambda runs the release build");
    let clean = env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    assert!(!clean.stdout.contains("Warning"), "{}", clean.stdout);
}

#[test]
fn a_function_that_allows_no_dev_builds_refuses_one_before_any_aws_call() {
    let env = Env::new();
    env.work.release_builds();
    let source = tiny_crate(&env, "prod");
    env.write_spec(
        &function_spec(&source, "x86_64")
            .replace("      architecture:", "      allow_dev_build: false\n      architecture:"),
    );
    let out = env
        .command(&["plan", "--build-profile", "dev"])
        .env("CRUDDUR_AWS_CALL_LOG", env.path("calls.log"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lambda_function.fn") && stderr.contains("allow_dev_build is false"), "{stderr}");
    let log = std::fs::read_to_string(env.path("calls.log")).unwrap_or_default();
    assert!(!log.lines().any(|l| l.contains("Create") || l.contains("Update")), "no AWS change:\n{log}");
    // A release plan of the same spec is fine.
    env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
}

/// A child's output lines, collected as they come.
struct Lines(std::sync::Arc<std::sync::Mutex<String>>);

impl Lines {
    fn of(stream: impl std::io::Read + Send + 'static) -> Self {
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = text.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                let mut t = sink.lock().expect("not poisoned");
                t.push_str(&line);
                t.push('\n');
            }
        });
        Self(text)
    }

    fn text(&self) -> String {
        self.0.lock().expect("not poisoned").clone()
    }

    /// Waits until `needle` has appeared `times` times in all.
    fn wait_for(&self, needle: &str, times: usize, other: &Lines) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        while self.text().matches(needle).count() < times {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} (x{times}) within 300 s\n--- this stream\n{}\n--- the other\n{}",
                self.text(),
                other.text()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn watch_mode_deploys_each_saved_edit_keeps_the_old_code_when_the_build_breaks_and_stops_on_ctrl_c() {
    let env = Env::new();
    let source = tiny_crate(&env, "v1");
    env.write_spec(&function_spec(&source, "x86_64"));
    let (mut child, out, err) = start_watching(&env, Some(&env.path("calls.log")));
    let v1 = deployed_sha(&env);
    let calls = || std::fs::read_to_string(env.path("calls.log")).expect("the call log");
    let first_apply = calls().lines().count();

    // A save deploys the new build through a whole apply, and says how long it took.
    env.write("hello/src/main.rs", "fn main() { println!(\"v2\"); }\n");
    out.wait_for("lambda_function.fn live", 1, &err);
    let dev_zip = crate::harness::target_dir_of(Path::new(&source)).join("lambda-zips/hello/x86_64-dev/bootstrap.zip");
    let v2 = deployed_sha(&env);
    assert_ne!(v2, v1, "the edit is live");
    assert_eq!(v2, code_sha256(&std::fs::read(&dev_zip).expect("zip")), "and it is the new dev build");
    assert_eq!(live(&env), ("2".to_string(), v2.clone()), "published as version 2, which live serves");
    // The round read and wrote the function alone: not the role it did not change.
    let round: Vec<String> = calls().lines().skip(first_apply).map(str::to_string).collect();
    assert!(round.iter().all(|c| c.starts_with("Lambda ")), "{round:#?}");

    // A broken build shows cargo's error and deploys nothing: v2 keeps serving.
    env.write("hello/src/main.rs", "fn main() { let x: u32 = \"not a number\"; }\n");
    out.wait_for("keeps serving", 1, &err);
    assert!(err.text().contains("error[E0308]"), "cargo's message is shown:\n{}", err.text());
    assert_eq!(deployed_sha(&env), v2);
    assert_eq!(live(&env), ("2".to_string(), v2.clone()), "the old version keeps serving");

    // Ctrl-C stops watching (exit 0: its normal way out); the lock is free and the state true for the code that is live.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .expect("signal");
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status}\n{}\n{}", out.text(), err.text());
    assert!(out.text().contains("Stopped watching."), "{}", out.text());
    env.write("hello/src/main.rs", "fn main() { println!(\"v2\"); }\n");
    env.run(&["plan", "--detailed-exitcode", "--build-profile", "dev"]).expect_code(0);
    env.run(&["drift"]).expect_code(0);
}

#[test]
fn a_saved_plan_is_applied_with_the_build_profile_it_was_made_with() {
    // The plan's code is what apply checks and deploys: a dev plan applied without the flag
    // deploys the dev build, not a release build that was never reviewed.
    let env = Env::new();
    env.work.release_builds();
    let source = tiny_crate(&env, "saved");
    env.write_spec(&function_spec(&source, "x86_64"));
    env.run(&["plan", "--build-profile", "dev", "--out", "dev.plan"]).expect_code(0);
    env.run(&["apply", "dev.plan"]).expect_code(0);
    let zips = crate::harness::target_dir_of(Path::new(&source)).join("lambda-zips").join("hello");
    let dev_zip = std::fs::read(zips.join("x86_64-dev/bootstrap.zip")).expect("the dev zip");
    assert_eq!(deployed_sha(&env), code_sha256(&dev_zip));
    assert!(!zips.join("x86_64/bootstrap.zip").exists(), "no release build was made");
}

/// Starts `apply --watch` (dev builds) and waits until it watches; its AWS calls logged to
/// `call_log` if given.
fn start_watching(env: &Env, call_log: Option<&Path>) -> (std::process::Child, Lines, Lines) {
    let mut command = env.command(&["apply", "--auto-approve", "--watch", "--build-profile", "dev"]);
    if let Some(log) = call_log {
        command.env("CRUDDUR_AWS_CALL_LOG", log);
    }
    let mut child =
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("starts");
    let (out, err) = (Lines::of(child.stdout.take().expect("stdout")), Lines::of(child.stderr.take().expect("stderr")));
    out.wait_for("Watching", 1, &err);
    (child, out, err)
}

#[test]
fn a_watch_round_killed_after_any_request_is_finished_by_the_next_apply() {
    // A save starts a round (build, then an apply of the new code: update, publish, move the
    // alias); the engine is killed right after AWS answered request N of the round, for every
    // N. The next apply finishes the round: the plan is empty, drift is clean, one function,
    // and live serves the saved code as version 2, the only version published after 1.
    use crate::proxy::Mode;
    let env = Env::with_proxy(Mode::Pass, 0);
    let source = tiny_crate(&env, "v1");
    env.write_spec(&function_spec(&source, "x86_64"));
    let dev_zip = crate::harness::target_dir_of(Path::new(&source)).join("lambda-zips/hello/x86_64-dev/bootstrap.zip");
    let fresh = |env: &Env| {
        env.moto.reset();
        let _ = std::fs::remove_dir_all(env.path("state"));
        env.write("hello/src/main.rs", "fn main() { println!(\"v1\"); }\n");
        env.proxy().set_mode(Mode::Pass);
        env.run(&["apply", "--auto-approve", "--build-profile", "dev"]).expect_code(0);
    };
    let save_v2 = |env: &Env| env.write("hello/src/main.rs", "fn main() { println!(\"v2\"); }\n");

    // The reference round.
    fresh(&env);
    let (mut child, out, err) = start_watching(&env, None);
    env.proxy().set_mode(Mode::Pass);
    save_v2(&env);
    out.wait_for("lambda_function.fn live", 1, &err);
    let round: Vec<String> = env.proxy().seen().iter().map(|s| s.label()).collect();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .expect("signal");
    assert!(child.wait().expect("exits").success());
    let v2 = code_sha256(&std::fs::read(&dev_zip).expect("the v2 zip"));

    let mut killed = 0;
    for k in 1..=round.len() {
        let what = format!("after a kill at request {k} of the round ({})", round[k - 1]);
        fresh(&env);
        let (mut child, out, err) = start_watching(&env, None);
        env.proxy().set_mode(Mode::KillAfter(k));
        env.proxy().set_victim(child.id());
        save_v2(&env);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: never killed\n{}\n{}", out.text(), err.text());
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        killed += usize::from(std::os::unix::process::ExitStatusExt::signal(&status) == Some(9));
        env.proxy().set_mode(Mode::Pass);
        let again = env.run(&["apply", "--auto-approve", "--build-profile", "dev"]);
        assert_eq!(again.code, 0, "{what}: the next apply\n{}\n{}", again.stdout, again.stderr);
        let plan = env.run(&["plan", "--detailed-exitcode", "--build-profile", "dev"]);
        assert_eq!(plan.code, 0, "{what}: the plan is not empty\n{}", plan.stdout);
        env.run(&["drift"]).expect_code(0);
        assert_eq!(live(&env), ("2".to_string(), v2.clone()), "{what}: live serves the saved code as version 2");
        let versions = env.block_on(env.lambda().list_versions_by_function().function_name("built-from-source").send());
        let versions: Vec<String> =
            versions.expect("versions").versions().iter().filter_map(|v| v.version().map(str::to_string)).collect();
        assert_eq!(versions, ["$LATEST", "1", "2"], "{what}");
        let functions = env.block_on(env.lambda().list_functions().send()).expect("functions");
        assert_eq!(functions.functions().len(), 1, "{what}");
    }
    eprintln!("watch round: {} requests, killed after each: {round:?}", round.len());
    assert_eq!(killed, round.len(), "every run was killed");
}

#[test]
fn engines_building_the_same_lambda_at_once_each_package_it_and_agree_on_its_hash() {
    // Two commands (or two tests) building one package into one target directory: each must
    // come back with the zip, never with a half-written one or a temporary file the other moved.
    let work = crate::harness::Workdir::new();
    let nonce = uuid_like();
    work.write(
        "hello/Cargo.toml",
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    );
    work.write("hello/src/main.rs", &format!("fn main() {{ println!(\"{nonce}\"); }}\n"));
    let source = work.path("hello").display().to_string();
    work.write_spec(&format!(
        "resources:\n  lambda_function:\n    fn:\n      name: hello\n      role: arn:aws:iam::123456789012:role/r\n      source: {source}\n"
    ));
    let builders: Vec<_> = (0..6)
        .map(|_| {
            let mut c = work.command(&["build"]);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            c.spawn().expect("spawns")
        })
        .collect();
    let hashes: Vec<String> = builders
        .into_iter()
        .map(|b| {
            let out = b.wait_with_output().expect("waits");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            let line = stdout.lines().find(|l| l.contains("code_sha256 = ")).expect("a hash line").to_string();
            line.rsplit(' ').next().expect("the hash").trim_matches('"').to_string()
        })
        .collect();
    assert!(hashes.iter().all(|h| h == &hashes[0]), "{hashes:?}");
}

/// A value no earlier run used, so the build starts cold.
fn uuid_like() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    format!("{}-{}", std::process::id(), t.as_nanos())
}
