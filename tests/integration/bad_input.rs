//! Bad input from a file, the command line or the environment: refused whole, with a message
//! naming what is wrong, before any AWS call; never a panic, never a half-applied plan.

use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;

use serde_json::{Value, json};

use crate::harness::{Env, Workdir};

fn spec(purpose: &str) -> String {
    format!(
        "resources:\n  s3_bucket:\n    a:\n      name: edit-a\n      tags: {{ purpose: {purpose} }}\n    b:\n      name: edit-b\n"
    )
}

/// The bucket's `purpose` tag (the engine's ownership tags beside it are not the point here).
fn purpose(env: &Env, bucket: &str) -> Option<String> {
    let out = env.block_on(env.s3().get_bucket_tagging().bucket(bucket).send()).expect("tags");
    out.tag_set().iter().find(|t| t.key() == "purpose").map(|t| t.value().to_string())
}

fn buckets(env: &Env) -> Vec<String> {
    let out = env.block_on(env.s3().list_buckets().send()).expect("list");
    let mut names: Vec<String> = out.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect();
    names.sort();
    names
}

/// Writes `edit(plan)` to `to`, with its digest made to match (as someone crafting a plan by
/// hand could), so that the refusal tested is the plan's validation, not the digest.
fn craft(env: &Env, from: &str, to: &str, edit: impl FnOnce(&mut Value)) {
    let mut saved: Value = serde_json::from_str(&std::fs::read_to_string(env.path(from)).expect("plan")).expect("json");
    edit(&mut saved);
    saved["plan_digest"] = json!(cruddur_infra::plan::saved::content_digest(&saved));
    std::fs::write(env.path(to), serde_json::to_string_pretty(&saved).expect("json")).expect("write");
}

fn change<'a>(saved: &'a mut Value, addr: &str) -> &'a mut Value {
    let changes = saved["plan"]["changes"].as_array_mut().expect("changes");
    changes.iter_mut().find(|c| c["addr"] == addr).expect("the change")
}

#[test]
fn an_edited_saved_plan_is_refused_whole_before_any_aws_call() {
    let env = Env::new();
    env.write_spec(&spec("avatars"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.block_on(env.s3().create_bucket().bucket("outsider-bucket").send()).expect("a bucket not ours");
    env.write_spec(&spec("profiles"));
    env.run(&["plan", "--out", "p.plan"]).expect_code(0);
    let mode = std::fs::metadata(env.path("p.plan")).expect("saved").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a saved plan holds resolved values: its owner's only");
    // A hand edit that leaves the digest alone.
    let text = std::fs::read_to_string(env.path("p.plan")).expect("plan").replacen("profiles", "pwned", 1);
    std::fs::write(env.path("naive.plan"), text).expect("write");
    let mut cases: Vec<(&str, &str)> = vec![("naive.plan", "no longer matches the digest")];

    craft(&env, "p.plan", "kind.plan", |p| {
        change(p, "s3_bucket.a")["addr"] = json!("s3_bukket.a");
    });
    cases.push(("kind.plan", "is not a resource kind"));
    craft(&env, "p.plan", "undeclared.plan", |p| {
        let c = change(p, "s3_bucket.a");
        c["addr"] = json!("s3_bucket.zzz");
        c["id"] = Value::Null;
        c["action"] = json!("create");
    });
    cases.push(("undeclared.plan", "s3_bucket.zzz is not declared"));
    craft(&env, "p.plan", "no-id.plan", |p| change(p, "s3_bucket.a")["id"] = Value::Null);
    cases.push(("no-id.plan", "needs the resource's id"));
    craft(&env, "p.plan", "twice.plan", |p| {
        let c = change(p, "s3_bucket.a").clone();
        p["plan"]["changes"].as_array_mut().expect("changes").push(c);
    });
    cases.push(("twice.plan", "is listed twice"));
    craft(&env, "p.plan", "value.plan", |p| {
        change(p, "s3_bucket.a")["desired"]["tags"] = json!({"purpose": "pwned"});
    });
    cases.push(("value.plan", "`tags` is not what apply would send"));
    craft(&env, "p.plan", "delete-other.plan", |p| {
        let c = change(p, "s3_bucket.b");
        c["action"] = json!("delete");
        c["id"] = json!("outsider-bucket");
    });
    cases.push(("delete-other.plan", "the plan acts on id `outsider-bucket`"));
    craft(&env, "p.plan", "state.plan", |p| {
        p["plan"]["refreshed"]["resources"]["s3_bucket.b"]["id"] = json!("outsider-bucket");
    });
    cases.push(("state.plan", "the refreshed state gives it id `outsider-bucket`"));

    for (file, why) in cases {
        let log = env.path(&format!("{file}.calls"));
        let out = env.command(&["apply", file]).env("CRUDDUR_AWS_CALL_LOG", &log).output().expect("runs");
        // Wrapped at the renderer's width: compare words, not line breaks.
        let stderr =
            String::from_utf8_lossy(&out.stderr).replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.contains(why), "{file}: expected `{why}` in {stderr}");
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let changing: Vec<&str> =
            calls.lines().filter(|l| !l.contains(" Get") && !l.contains(" Head") && !l.contains(" List")).collect();
        assert!(changing.is_empty(), "{file}: nothing may change before the refusal: {changing:?}");
        // Checked through AWS: nothing moved.
        assert_eq!(purpose(&env, "edit-a").as_deref(), Some("avatars"), "{file}");
        assert_eq!(buckets(&env), ["edit-a", "edit-b", "outsider-bucket"], "{file}");
    }
    // The plan as written is carried out.
    env.run(&["apply", "p.plan"]).expect_code(0);
    assert_eq!(purpose(&env, "edit-a").as_deref(), Some("profiles"));
}

#[test]
fn variables_that_are_not_utf8_never_panic_and_are_named_when_the_spec_uses_them() {
    let work = Workdir::new();
    work.write_spec(
        "variables:\n  WEIRD: { default: fine }\nresources:\n  s3_bucket:\n    b: { name: \"${var.WEIRD}\" }\n",
    );
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe not utf-8");
    // One the spec does not use is none of its business.
    work.command(&["validate"])
        .env("UNRELATED", bad)
        .output()
        .map(|o| assert!(o.status.success(), "{o:?}"))
        .expect("runs");
    let out = work.command(&["validate"]).env("WEIRD", bad).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("variable `WEIRD` in the environment is not valid UTF-8"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_state_location_that_names_nothing_is_a_usage_error_with_exit_code_1() {
    let work = Workdir::new();
    work.write_spec("resources: {}\n");
    for (location, why) in [
        ("", "the state location is empty"),
        ("s3://", "names no object"),
        ("s3://bucket", "names no object"),
        ("s3://bucket/", "names no object"),
    ] {
        let out = work.run(&["plan", "--state", location]).expect_code(1);
        assert!(out.stderr.contains(why), "{location:?}: {}", out.stderr);
    }
}

#[test]
fn a_missing_state_is_an_error_for_the_commands_that_report_on_one() {
    // A nightly drift check pointed at a path with no state (a typo, a wrong CI variable) must
    // fail, naming the path, not report "No drift" forever; the same for output and state.
    let work = Workdir::new();
    work.write_spec("resources: {}\n");
    for args in [
        &["drift", "--state", "stat/typo.json"][..],
        &["drift", "--json", "--state", "stat/typo.json"],
        &["output", "--state", "stat/typo.json"],
        &["state", "list", "--state", "stat/typo.json"],
        &["state", "show", "s3_bucket.x", "--state", "stat/typo.json"],
        &["state", "rm", "s3_bucket.x", "--state", "stat/typo.json"],
    ] {
        let out = work.run(args).expect_code(1);
        assert!(out.stderr_flat().contains("there is no state at stat/typo.json"), "{args:?}: {}", out.stderr);
        assert!(out.stderr_flat().contains("only `plan` and `apply` start from no state"), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?} printed a report: {}", out.stdout);
    }
    assert!(!work.path("stat").exists(), "nothing was written for a missing state");
}

#[test]
fn a_broken_state_or_journal_is_named_with_the_resource_and_only_help_that_exists() {
    let work = Workdir::new();
    work.write_spec("resources: {}\n");
    work.write(
        "state/cruddur.json",
        r#"{"version": 2, "serial": 3, "lineage": "L1", "resources": {"s3_bucket.a": {"attributes": {}, "dependencies": []}}, "outputs": {}}"#,
    );
    let out = work.run(&["state", "list"]).expect_code(1);
    let err = out.stderr_flat();
    assert!(err.contains("resource `s3_bucket.a`") && err.contains("id"), "the entry and its missing field: {err}");
    assert!(!err.contains(".backup"), "no backup exists, so none is suggested: {err}");

    // A journal line of another state is refused, and the journal is the file named.
    work.write("state/cruddur.json", r#"{"version": 2, "serial": 3, "lineage": "L1", "resources": {}, "outputs": {}}"#);
    work.write(
        "state/cruddur.json.journal",
        "{\"lineage\":\"OTHER\",\"serial\":4,\"addr\":\"s3_bucket.x\",\"resource\":null}\n",
    );
    let out = work.run(&["state", "list"]).expect_code(1);
    let err = out.stderr_flat();
    assert!(err.contains("cruddur.json.journal") && err.contains("another state"), "{err}");
}

#[test]
fn missing_or_refused_credentials_fail_at_once_naming_the_fix() {
    // No credentials anywhere: the request is never signed, and the command says what to set
    // instead of retrying for minutes. Credentials AWS does not know: refused, not retried.
    let env = crate::harness::Env::new();
    // The lookup makes the plan ask AWS (GetCallerIdentity) before anything else.
    env.write_spec(
        "lookups:\n  caller_identity:\n    me: {}\nresources:\n  sns_topic:\n    t: { name: \"creds-${caller_identity.me.account_id}\" }\n",
    );
    let out = env
        .command(&["plan"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", env.path("no-credentials"))
        .env("AWS_CONFIG_FILE", env.path("no-config"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", env.path("home"))
        .output()
        .expect("runs");
    let run = crate::harness::Run::from(out).expect_code(1);
    let said = run.stderr_flat();
    assert!(said.contains("No AWS credentials were found"), "{said}");
    assert!(said.contains("AWS_ACCESS_KEY_ID") && said.contains("AWS_PROFILE"), "{said}");
    assert!(!said.contains("attempts"), "retried: {said}");

    // A key AWS does not know, on the first request of a command (reading an S3 state).
    env.block_on(env.s3().create_bucket().bucket("creds-state").send()).expect("bucket");
    env.moto.enforce_iam();
    let out = env
        .command(&["state", "list", "--state", "s3://creds-state/cruddur.json"])
        .env("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
        .output()
        .expect("runs");
    let run = crate::harness::Run::from(out).expect_code(1);
    let said = run.stderr_flat();
    assert!(said.contains("AWS refused the credentials themselves"), "{said}");
    assert!(!said.contains("attempts"), "retried: {said}");
}

#[test]
fn a_closed_standard_output_ends_printing_quietly_without_a_panic() {
    // `schema | head`, `iam-policy | head`: the reader goes away before the command writes.
    let work = Workdir::new();
    work.write_spec("resources:\n  s3_bucket:\n    a:\n      name: edit-a\n");
    for args in [&["schema"][..], &["schema", "--markdown"], &["iam-policy", "--for", "apply"]] {
        let mut child = work
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("it ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && stderr.trim().is_empty(), "{args:?} says nothing: {stderr}");
    }
}

#[test]
fn paths_in_a_spec_are_relative_to_its_folder_from_any_directory_and_validate_checks_them() {
    let work = Workdir::new();
    work.write("f.zip", "not read by validate");
    work.write("elsewhere/.keep", "");
    let spec = |zip: &str| {
        format!(
            "resources:\n  lambda_function:\n    f: {{ name: f, role: \"arn:aws:iam::123456789012:role/r\", zip_file: {zip} }}\n"
        )
    };
    let spec_path = work.path("specs/cruddur.yaml");
    let from_elsewhere = |args: &[&str]| {
        let out = work.command(args).current_dir(work.path("elsewhere")).output().expect("runs");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Relative to specs/: found wherever the command runs.
    work.write_spec(&spec("../f.zip"));
    let (code, stderr) = from_elsewhere(&["validate", "--spec", spec_path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{stderr}");
    // Relative to the working directory, as it used to be read: refused by validate, naming
    // the folder it is read from.
    work.write_spec(&spec("f.zip"));
    let (code, stderr) = from_elsewhere(&["validate", "--spec", spec_path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "{stderr}");
    let flat = stderr.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
    assert!(flat.contains("zip_file of lambda_function.f names f.zip, which does not exist"), "{flat}");
    assert!(flat.contains("relative to the spec's folder"), "{flat}");
}

#[test]
fn destroy_and_iam_policy_need_no_file_the_spec_names_since_they_build_nothing() {
    // A function's zip deleted along with the wish to keep it: destroy still destroys (plan,
    // apply and validate keep refusing the missing file, naming it).
    let env = Env::new();
    crate::aws_rules::bootstrap_zip(&env, "f.zip");
    env.write_spec(
        r#"
resources:
  iam_role:
    fn:
      name: gone-zip-role
      assume_role_policy:
        Version: "2012-10-17"
        Statement: [{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: "sts:AssumeRole" }]
  lambda_function:
    fn: { name: gone-zip-fn, role: "${iam_role.fn.arn}", zip_file: ../f.zip }
"#,
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    std::fs::remove_file(env.path("f.zip")).expect("the zip is gone");
    let plan = env.run(&["plan"]).expect_code(1);
    assert!(plan.stderr_flat().contains("which does not exist"), "{}", plan.stderr);
    env.run(&["destroy", "--auto-approve"]).expect_code(0);
    let functions = env.block_on(env.lambda().list_functions().send()).expect("functions");
    assert!(functions.functions().is_empty(), "destroyed");
    env.run(&["iam-policy", "--for", "destroy"]).expect_code(0);
}
