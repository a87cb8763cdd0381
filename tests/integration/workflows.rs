//! The GitHub workflows (`.github/workflows/plan.yml` and `drift.yml`) run as GitHub would run
//! them, against moto: each job's steps in order, with the repository variables set to the
//! stack's values and nothing else (no `.env`, no region but the `AWS_REGION` variable), their
//! `${{ ... }}` expressions and `if:` conditions evaluated, the marketplace actions played by
//! what they do (an artifact copied, a pull request recorded), `gh` recorded, and everything
//! else run for real with bash in a git checkout. Only the build steps are skipped: the binary
//! under test stands in for `target/release/cruddur-infra`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::Value;

use crate::harness::Env;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A workflow file as JSON.
fn workflow(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join(".github/workflows").join(name)).expect("the workflow");
    let docs = Yaml::load_from_str(&text).expect("valid YAML");
    to_json(&docs[0])
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => Value::from(f.into_inner()),
        Yaml::Representation(s, ..) => Value::String(s.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => {
            let key = |k: &Yaml| match to_json(k) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            Value::Object(map.iter().map(|(k, v)| (key(k), to_json(v))).collect())
        }
        _ => Value::Null,
    }
}

/// What a job left: its outputs, whether it failed, the steps it ran, the requests it made of
/// GitHub (`gh` calls and pull requests).
#[derive(Debug, Default)]
struct JobRun {
    ran: bool,
    failed: bool,
    outputs: BTreeMap<String, String>,
    steps_run: Vec<String>,
}

/// One repository's GitHub, as far as the workflows see it.
struct Github<'a> {
    env: &'a Env,
    /// The checkout the steps run in.
    work: PathBuf,
    vars: BTreeMap<String, String>,
    /// `github.*` values of the event (`event_name`, `event.pull_request.head.sha`, ...).
    context: BTreeMap<String, String>,
    /// Artifacts by name, and `runner.temp`.
    store: tempfile::TempDir,
    /// What `gh` and create-pull-request were asked, in order.
    requests: std::cell::RefCell<Vec<String>>,
}

impl Github<'_> {
    fn temp(&self) -> PathBuf {
        self.store.path().join("runner-temp")
    }

    /// The value of one expression path.
    fn value(
        &self,
        path: &str,
        steps: &BTreeMap<String, BTreeMap<String, String>>,
        needs: &BTreeMap<&str, JobRun>,
    ) -> String {
        let parts: Vec<&str> = path.split('.').collect();
        match parts.as_slice() {
            ["vars", name] => self.vars.get(*name).cloned().unwrap_or_default(),
            ["secrets", name] => format!("secret-{name}"),
            ["runner", "temp"] => self.temp().display().to_string(),
            ["github", "token"] => "github-token".into(),
            ["github", "repository"] => "cruddur/cruddur".into(),
            ["github", rest @ ..] => self.context.get(&rest.join(".")).cloned().unwrap_or_default(),
            ["steps", id, "outputs", name] => steps.get(*id).and_then(|o| o.get(*name)).cloned().unwrap_or_default(),
            ["needs", job, "outputs", name] => {
                needs.get(job).and_then(|j| j.outputs.get(*name)).cloned().unwrap_or_default()
            }
            ["needs", job, "result"] => match needs.get(job) {
                Some(j) if !j.ran => "skipped".into(),
                Some(j) if j.failed => "failure".into(),
                Some(_) => "success".into(),
                None => panic!("needs.{job}: not a job this one needs"),
            },
            _ => panic!("an expression the test does not know: {path}"),
        }
    }

    /// `text` with every `${{ ... }}` replaced by its value.
    fn substitute(
        &self,
        text: &str,
        steps: &BTreeMap<String, BTreeMap<String, String>>,
        needs: &BTreeMap<&str, JobRun>,
    ) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("a closed expression") + start;
            out.push_str(&self.value(rest[start + 3..end].trim(), steps, needs));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// An `if:` condition: `||` of `&&` of `always()`, `failure()`, `success()`, `A == 'x'`,
    /// `A != 'x'` (the forms the workflows use).
    fn condition(
        &self,
        cond: &str,
        failed: bool,
        steps: &BTreeMap<String, BTreeMap<String, String>>,
        needs: &BTreeMap<&str, JobRun>,
    ) -> bool {
        let operand = |o: &str| {
            let o = o.trim();
            match o.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
                Some(literal) => literal.to_string(),
                None => self.value(o, steps, needs),
            }
        };
        let term = |t: &str| {
            let t = t.trim();
            match t {
                "always()" => true,
                "failure()" => failed,
                "success()" => !failed,
                _ => match (t.split_once("!="), t.split_once("==")) {
                    (Some((a, b)), _) => operand(a) != operand(b),
                    (None, Some((a, b))) => operand(a) == operand(b),
                    _ => panic!("a condition the test does not know: {t}"),
                },
            }
        };
        let cond = cond.trim().trim_start_matches("${{").trim_end_matches("}}");
        let holds = cond.split("||").any(|any| any.split("&&").all(term));
        // Without a status function, a step runs only while nothing failed.
        holds && (cond.contains("always()") || cond.contains("failure()") || !failed)
    }

    /// Runs `job` of `wf` as GitHub would, after the jobs in `needs`.
    fn run_job(&self, wf: &Value, job: &str, needs: &BTreeMap<&str, JobRun>) -> JobRun {
        let spec = &wf["jobs"][job];
        let no_steps = BTreeMap::new();
        if let Some(cond) = spec["if"].as_str()
            && !self.condition(cond, false, &no_steps, needs)
        {
            return JobRun::default();
        }
        let mut base = self.env.command(&[]);
        // The region comes from the workflow (configure-aws-credentials), nothing else.
        base.env_remove("AWS_REGION").env_remove("AWS_DEFAULT_REGION");
        let mut env: BTreeMap<String, String> =
            base.get_envs().filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string()))).collect();
        // The Lambda sources, where this workspace keeps them (a checkout has them at the
        // spec's default paths; here they are built once for every test, not per checkout).
        for name in ["THUMBNAILER", "AUTHORIZER", "PRESIGNER"] {
            env.insert(format!("{name}_SOURCE"), format!("{ROOT}/lambdas/{}", name.to_ascii_lowercase()));
        }
        let gh_bin = self.store.path().join("bin");
        // `gh` records its arguments; everything else (git, jq, cargo) is the machine's.
        env.insert("PATH".into(), format!("{}:{}", gh_bin.display(), std::env::var("PATH").unwrap_or_default()));
        env.insert("GH_LOG".into(), self.store.path().join("gh.log").display().to_string());
        let mut steps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (name, value) in spec["env"].as_object().into_iter().flatten() {
            env.insert(name.clone(), self.substitute(value.as_str().unwrap_or_default(), &steps, needs));
        }
        let mut run = JobRun { ran: true, ..Default::default() };
        for step in spec["steps"].as_array().expect("steps") {
            let label = step["name"].as_str().or(step["uses"].as_str()).unwrap_or("a step").to_string();
            let wanted = match step["if"].as_str() {
                Some(cond) => self.condition(cond, run.failed, &steps, needs),
                None => !run.failed,
            };
            if !wanted {
                continue;
            }
            run.steps_run.push(label.clone());
            let with = |key: &str| step["with"][key].as_str().map(|v| self.substitute(v, &steps, needs));
            let mut outputs = BTreeMap::new();
            if let Some(action) = step["uses"].as_str() {
                let action = action.split('@').next().unwrap_or_default();
                self.play(action, &with, &mut env, &mut outputs);
            } else {
                let script = step["run"].as_str().expect("a run step");
                let building = ["cargo build", "rustup ", "scripts/ci/install-build-deps"];
                if building.iter().any(|b| script.trim_start().starts_with(b)) {
                    continue;
                }
                let output_file = self.store.path().join(format!("output-{}", run.steps_run.len()));
                std::fs::write(&output_file, "").expect("GITHUB_OUTPUT");
                let mut command = Command::new("bash");
                command.args(["-e", "-c", script]).current_dir(&self.work);
                command.env_remove("AWS_REGION").env_remove("AWS_DEFAULT_REGION").env_remove("AWS_PROFILE").envs(&env);
                command.env("GITHUB_OUTPUT", &output_file);
                for (name, value) in step["env"].as_object().into_iter().flatten() {
                    command.env(name, self.substitute(value.as_str().unwrap_or_default(), &steps, needs));
                }
                let out = command.output().expect("bash runs");
                if !out.status.success() {
                    run.failed = true;
                    eprintln!(
                        "{job} / {label} exited {:?}\n{}\n{}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                for line in std::fs::read_to_string(&output_file).unwrap_or_default().lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        outputs.insert(k.to_string(), v.to_string());
                    }
                }
            }
            if let Some(id) = step["id"].as_str() {
                steps.insert(id.to_string(), outputs);
            }
        }
        for (name, value) in spec["outputs"].as_object().into_iter().flatten() {
            run.outputs.insert(name.clone(), self.substitute(value.as_str().unwrap_or_default(), &steps, needs));
        }
        run
    }

    /// What a marketplace action does, as far as the next steps can tell.
    fn play(
        &self,
        action: &str,
        with: &dyn Fn(&str) -> Option<String>,
        env: &mut BTreeMap<String, String>,
        outputs: &mut BTreeMap<String, String>,
    ) {
        match action {
            "actions/checkout" | "Swatinem/rust-cache" => {}
            "aws-actions/configure-aws-credentials" => {
                let region = with("aws-region").unwrap_or_default();
                assert!(!region.is_empty(), "configure-aws-credentials gets no region: set the AWS_REGION variable");
                assert!(with("role-to-assume").is_some_and(|r| r.starts_with("secret-")), "a role from a secret");
                env.insert("AWS_REGION".into(), region.clone());
                env.insert("AWS_DEFAULT_REGION".into(), region);
            }
            "actions/upload-artifact" => {
                let dir = self.store.path().join("artifacts").join(with("name").expect("an artifact name"));
                std::fs::create_dir_all(&dir).expect("artifact dir");
                for path in with("path").expect("paths").lines().map(str::trim).filter(|p| !p.is_empty()) {
                    let from = self.work.join(path);
                    assert!(from.exists(), "upload-artifact: {path} was not written");
                    std::fs::copy(&from, dir.join(path)).expect("copied");
                }
            }
            "actions/download-artifact" => {
                let dir = self.store.path().join("artifacts").join(with("name").expect("an artifact name"));
                let to = with("path").map_or_else(|| self.work.clone(), PathBuf::from);
                std::fs::create_dir_all(&to).expect("download dir");
                for entry in std::fs::read_dir(&dir).expect("the artifact was uploaded") {
                    let entry = entry.expect("entry");
                    std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copied");
                }
            }
            "actions/create-github-app-token" => {
                assert!(with("client-id").is_some_and(|c| !c.is_empty()), "the app's client id is a variable");
                outputs.insert("token".into(), "app-token".into());
            }
            "peter-evans/create-pull-request" => {
                let token = with("token").unwrap_or_default();
                assert_eq!(token, "app-token", "a pull request opened with the workflow's token triggers no workflow");
                let body = with("body-path").expect("a body");
                let body = std::fs::read_to_string(&body).expect("the body file exists");
                let changed = git(&self.work, &["status", "--porcelain", "--", &with("add-paths").expect("paths")]);
                self.requests
                    .borrow_mut()
                    .push(format!("pull request [{}] changing {changed}\n{body}", with("title").unwrap_or_default()));
            }
            other => panic!("the test does not know the action {other}"),
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.email=ci@example.test", "-c", "user.name=ci"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The repository variables of the stack: what `stack()` wrote into `.env`, the region and the
/// state; the `.env` is removed so that nothing but the variables feeds the spec.
fn repository_variables(env: &Env) -> BTreeMap<String, String> {
    let dotenv = std::fs::read_to_string(env.path(".env")).expect(".env");
    let mut vars: BTreeMap<String, String> = dotenv
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.ends_with("_SOURCE"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    std::fs::remove_file(env.path(".env")).expect("no .env in a checkout");
    vars.insert("AWS_REGION".into(), "us-east-1".into());
    vars.insert("CRUDDUR_STATE".into(), "state/cruddur.json".into());
    vars.insert("CRUDDUR_BOT_CLIENT_ID".into(), "Iv1.bot".into());
    vars
}

/// The working directory as a checkout of the repository: the spec committed, the scripts
/// where a checkout has them, the binary where the build step puts it, and a `gh` that records
/// its arguments.
fn checkout(env: &Env, store: &Path) {
    std::os::unix::fs::symlink(Path::new(ROOT).join("scripts"), env.path("scripts")).expect("symlink");
    std::fs::create_dir_all(env.path("target/release")).expect("target");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cruddur-infra"), env.path("target/release/cruddur-infra"))
        .expect("the binary");
    std::fs::create_dir_all(store.join("bin")).expect("bin");
    let gh = store.join("bin/gh");
    std::fs::write(&gh, "#!/bin/sh\necho \"gh $*\" >> \"$GH_LOG\"\n").expect("gh");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(env.path(".gitignore"), "state/\ntarget/\nscripts\n").expect(".gitignore");
    git(env.work.dir.path(), &["init", "-q"]);
    git(env.work.dir.path(), &["add", "specs", ".gitignore"]);
    git(env.work.dir.path(), &["commit", "-q", "-m", "the stack"]);
}

#[test]
fn the_workflows_pass_every_spec_variable_and_take_the_region_from_a_variable() {
    // Every variable the stack is configured with reaches both workflows' jobs from a repository
    // variable, and no region is written into them.
    for name in ["plan.yml", "drift.yml"] {
        let text = std::fs::read_to_string(Path::new(ROOT).join(".github/workflows").join(name)).expect("workflow");
        assert!(!text.contains("us-east-1") && !text.contains("eu-west-1"), "{name} names a region");
        let wf = workflow(name);
        let job = if name == "plan.yml" { "plan" } else { "drift" };
        for var in [
            "AWS_REGION",
            "CRUDDUR_STATE",
            "CRUDDUR_STATE_ENCRYPTION",
            "UPLOADS_BUCKET_NAME",
            "ASSETS_BUCKET_NAME",
            "DOMAIN_NAME",
            "ASSETS_CERTIFICATE_ARN",
            "COGNITO_USER_POOL_ID",
            "COGNITO_USER_POOL_CLIENT_ID",
            "FRONTEND_ORIGIN",
            "THUMBING_WEBHOOK_URL",
            "NAME_PREFIX",
        ] {
            assert_eq!(wf["jobs"][job]["env"][var], format!("${{{{ vars.{var} }}}}"), "{name}: {var}");
        }
    }
}

#[test]
fn the_drift_and_plan_workflows_run_as_written_against_the_stack() {
    // The nightly drift job: clean on the applied stack; after a console edit it reports drift,
    // writes the adopting spec change, and the report job opens a pull request with the bot's
    // token that, applied, makes the plan empty. The plan job on a pull request: plans, posts the
    // comment, keeps no unsealed saved plan; a broadening change passes only with an approval
    // of the head commit.
    let env = Env::new();
    crate::stack::stack(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let store = tempfile::tempdir().expect("store");
    checkout(&env, store.path());
    let head = git(env.work.dir.path(), &["rev-parse", "HEAD"]);
    let mut gh = Github {
        env: &env,
        work: env.work.dir.path().to_path_buf(),
        vars: repository_variables(&env),
        context: BTreeMap::new(),
        store,
        requests: Default::default(),
    };
    std::fs::create_dir_all(gh.temp()).expect("runner.temp");
    let drift_wf = workflow("drift.yml");
    let none = BTreeMap::new();

    let clean = gh.run_job(&drift_wf, "drift", &none);
    assert!(!clean.failed, "the drift job failed on a clean stack: {clean:?}");
    assert_eq!(clean.outputs["code"], "0");
    let needs = BTreeMap::from([("drift", clean)]);
    assert!(!gh.run_job(&drift_wf, "report", &needs).ran, "no report without drift");

    // Someone tags the uploads bucket in the console.
    let s3 = env.s3();
    let tags = aws_sdk_s3::types::Tagging::builder()
        .tag_set(aws_sdk_s3::types::Tag::builder().key("owner").value("console").build().expect("tag"))
        .build()
        .expect("tagging");
    let current = env.block_on(s3.get_bucket_tagging().bucket("cruddur-uploads-test").send()).expect("tags");
    let mut all = current.tag_set().to_vec();
    all.extend(tags.tag_set().iter().cloned());
    let tagging = aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(all)).build().expect("tagging");
    env.block_on(s3.put_bucket_tagging().bucket("cruddur-uploads-test").tagging(tagging).send()).expect("tagged");

    let drifted = gh.run_job(&drift_wf, "drift", &none);
    assert!(!drifted.failed, "{drifted:?}");
    assert_eq!((drifted.outputs["code"].as_str(), drifted.outputs["changed"].as_str()), ("2", "true"));
    // The report job runs on a fresh checkout of main.
    git(&gh.work, &["checkout", "--", "specs"]);
    let needs = BTreeMap::from([("drift", drifted)]);
    let report = gh.run_job(&drift_wf, "report", &needs);
    assert!(report.failed, "drift leaves the run red");
    let requests = gh.requests.borrow().join("\n");
    assert!(requests.contains("pull request [Adopt infrastructure drift] changing M specs/cruddur.yaml"), "{requests}");
    assert!(requests.contains("owner"), "the report names the change: {requests}");
    // The pull request's spec change accepts what is live: nothing left to plan.
    let mut plan = env.command(&["plan", "--detailed-exitcode"]);
    for name in ["THUMBNAILER", "AUTHORIZER", "PRESIGNER"] {
        plan.env(format!("{name}_SOURCE"), format!("{ROOT}/lambdas/{}", name.to_ascii_lowercase()));
    }
    let plan = plan.envs(&gh.vars).output().expect("plan runs");
    let plan = crate::harness::Run::from(plan);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    git(&gh.work, &["checkout", "--", "specs"]);

    // The pull request's plan: the spec on main no longer matches AWS (the tag).
    let plan_wf = workflow("plan.yml");
    gh.context = BTreeMap::from([
        ("event_name".to_string(), "pull_request".to_string()),
        ("event.pull_request.head.sha".to_string(), head.clone()),
        ("event.pull_request.number".to_string(), "17".to_string()),
    ]);
    let plan = gh.run_job(&plan_wf, "plan", &none);
    assert!(!plan.failed, "{plan:?}");
    assert_eq!(plan.outputs["exitcode"], "2");
    assert!(!plan.steps_run.iter().any(|s| s.contains("saved plan")), "an unsealed saved plan is never uploaded");
    let needs = BTreeMap::from([("plan", plan)]);
    let comment = gh.run_job(&plan_wf, "comment", &needs);
    assert!(!comment.failed, "{comment:?}");
    let gh_log = std::fs::read_to_string(gh.store.path().join("gh.log")).expect("gh was called");
    assert!(gh_log.contains("gh pr comment 17 --edit-last --body-file plan.md"), "{gh_log}");

    // A change that broadens who can do what: red until the head commit is approved.
    let spec = std::fs::read_to_string(env.path("specs/cruddur.yaml")).expect("spec");
    let broader = spec.replace(
        r#"{ Sid: PutUploads, Effect: Allow, Action: "s3:PutObject""#,
        r#"{ Sid: PutUploads, Effect: Allow, Action: ["s3:PutObject", "s3:GetObject"]"#,
    );
    assert_ne!(spec, broader, "the spec still has the presigner's PutUploads statement");
    env.write_spec(&broader);
    let review = |commit: &str| {
        BTreeMap::from([
            ("event_name".to_string(), "pull_request_review".to_string()),
            ("event.pull_request.head.sha".to_string(), head.clone()),
            ("event.pull_request.number".to_string(), "17".to_string()),
            ("event.review.state".to_string(), "approved".to_string()),
            ("event.review.commit_id".to_string(), commit.to_string()),
            ("event.review.user.login".to_string(), "reviewer".to_string()),
        ])
    };
    gh.context = review("0123456789abcdef0123456789abcdef01234567");
    let stale = gh.run_job(&plan_wf, "plan", &none);
    assert_eq!(stale.outputs["exitcode"], "1", "an approval of another commit approves nothing");
    let md = std::fs::read_to_string(env.path("plan.md")).expect("plan.md");
    assert!(md.contains("approves nothing here"), "{md}");
    let needs = BTreeMap::from([("plan", stale)]);
    assert!(gh.run_job(&plan_wf, "comment", &needs).failed, "the required check is red");
    gh.context = review(&head);
    let approved = gh.run_job(&plan_wf, "plan", &none);
    assert_eq!(approved.outputs["exitcode"], "2", "the head's approval passes its broadening");
    let approval = std::fs::read_to_string(env.path("approval.txt")).expect("approval.txt");
    assert!(!approval.trim().is_empty(), "the fingerprints of what this commit's plan shows");
}
