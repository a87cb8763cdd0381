//! The command-line habits Terraform users bring: --chdir, --var and --var-file, version,
//! shell completions; and a saved plan that remembers its stage.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Env, Run};

const SPEC: &str = "variables:\n  BUCKET: { default: from-default }\nresources:\n  s3_bucket:\n    b: { name: \"habits-${var.BUCKET}${stage}\" }\n";

/// The bucket name the plan would create.
fn planned_name(run: Run) -> String {
    let plan: Value = serde_json::from_str(&run.expect_code(0).stdout).expect("plan JSON");
    let change = &plan["resource_changes"][0]["changes"];
    let name = change.as_array().expect("changes").iter().find(|c| c["attribute"] == "name").expect("name");
    name["after"].as_str().expect("a name").to_string()
}

#[test]
fn a_var_flag_beats_a_var_file_which_beats_the_environment_and_dotenv() {
    let env = Env::new();
    env.write_spec(SPEC);
    assert_eq!(planned_name(env.run(&["plan", "--json"])), "habits-from-default");
    env.write(".env", "BUCKET=from-dotenv\n");
    assert_eq!(planned_name(env.run(&["plan", "--json"])), "habits-from-dotenv");
    let with_env = |args: &[&str]| Run::from(env.command(args).env("BUCKET", "from-env").output().expect("runs"));
    assert_eq!(planned_name(with_env(&["plan", "--json"])), "habits-from-env");
    env.write("one.vars", "BUCKET=from-file-one\n");
    env.write("two.vars", "# later files win\nBUCKET=from-file-two\n");
    let files = ["plan", "--json", "--var-file", "one.vars", "--var-file", "two.vars"];
    assert_eq!(planned_name(with_env(&files)), "habits-from-file-two");
    let flag = [&files[..], &["--var", "BUCKET=from-flag"]].concat();
    assert_eq!(planned_name(with_env(&flag)), "habits-from-flag");
    // A value of the wrong type names where it came from.
    env.write_spec(&SPEC.replace("from-default", "3"));
    let refused = env.run(&["plan", "--var", "BUCKET=three"]).expect_code(1);
    assert!(
        refused.stderr_flat().contains("from the command line (--var, --var-file) is `three`"),
        "{}",
        refused.stderr
    );
    let bad = env.run(&["plan", "--var", "no-equals-sign"]).expect_code(1);
    assert!(bad.stderr.contains("is not NAME=VALUE"), "{}", bad.stderr);
}

#[test]
fn chdir_works_as_if_started_there_and_version_names_every_format() {
    let env = Env::new();
    env.write_spec(SPEC);
    let elsewhere = tempfile::tempdir().expect("a folder");
    let dir = env.path("");
    let mut command = env.command(&["--chdir", dir.to_str().expect("utf-8"), "validate"]);
    let out = Run::from(command.current_dir(elsewhere.path()).output().expect("runs")).expect_code(0);
    assert!(out.stdout.contains("specs/cruddur.yaml is valid"), "{}", out.stdout);
    let missing = env.run(&["--chdir", "no-such-folder", "validate"]).expect_code(1);
    assert!(missing.stderr_flat().contains("--chdir no-such-folder: cannot work there"), "{}", missing.stderr);

    let version: Value = serde_json::from_str(&env.run(&["version", "--json"]).expect_code(0).stdout).expect("json");
    assert_eq!(version["engine"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["state_format"], "2");
    assert_eq!(version["plan_json_format"], "1.5");
    assert_eq!(version["saved_plan_format"], "2");
    assert_eq!(version["apply_stream_format"], "1.0");
    let text = env.run(&["version"]).expect_code(0).stdout;
    assert!(text.starts_with(&format!("cruddur-infra {}\n", env!("CARGO_PKG_VERSION"))), "{text}");
}

#[test]
fn completions_load_in_bash_and_are_generated_for_zsh_and_fish() {
    let env = Env::new();
    let script = env.run(&["completions", "bash"]).expect_code(0).stdout;
    env.write("completions.bash", &script);
    let loaded = Command::new("bash")
        .arg("-c")
        .arg("source completions.bash && complete -p cruddur-infra")
        .current_dir(env.path(""))
        .output()
        .expect("bash runs");
    assert!(loaded.status.success(), "{}", String::from_utf8_lossy(&loaded.stderr));
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("cruddur-infra"));
    for shell in ["zsh", "fish"] {
        let script = env.run(&["completions", shell]).expect_code(0).stdout;
        assert!(script.contains("stages") && script.contains("--stage"), "{shell}: the subcommands and flags");
    }
}

#[test]
fn a_saved_plan_remembers_its_stage_and_refuses_another() {
    let env = Env::new();
    env.write_spec(SPEC);
    env.run(&["plan", "--stage", "pr-5", "--out", "pr5.plan"]).expect_code(0);
    let other = env.run(&["apply", "pr5.plan", "--stage", "pr-6"]).expect_code(1);
    assert!(other.stderr_flat().contains("was planned for stage pr-5, not for stage pr-6"), "{}", other.stderr);
    env.run(&["apply", "pr5.plan"]).expect_code(0);
    let buckets = env.block_on(env.s3().list_buckets().send()).expect("buckets");
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["habits-from-default-pr-5"]);
    assert!(env.path("state/cruddur.pr-5.json").exists());
    env.run(&["plan", "--detailed-exitcode", "--stage", "pr-5"]).expect_code(0);
}

#[test]
fn show_prints_a_saved_plan_in_every_format_without_an_aws_call() {
    let env = Env::new();
    env.write_spec(SPEC);
    let planned = env.run(&["plan", "--out", "b.plan"]).expect_code(0).stdout;
    let nowhere = |args: &[&str]| {
        // No AWS at all: an endpoint nothing listens on, and a call log that must stay empty.
        let out = env
            .command(args)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("CRUDDUR_AWS_CALL_LOG", env.path("show-calls.log"))
            .output()
            .expect("runs");
        Run::from(out).expect_code(0)
    };
    let text = nowhere(&["show", "b.plan"]).stdout;
    assert!(text.contains("Saved plan b.plan for state/cruddur.json at serial 0"), "{text}");
    assert!(
        text.contains("# s3_bucket.b will be created") && planned.contains("# s3_bucket.b will be created"),
        "{text}"
    );
    assert!(text.contains("Plan: 1 to add, 0 to change, 0 to destroy."), "{text}");
    let json: Value = serde_json::from_str(&nowhere(&["show", "b.plan", "--json"]).stdout).expect("json");
    assert_eq!(json["summary"]["add"], 1);
    assert_eq!(json["format_version"], "1.5");
    let md = nowhere(&["show", "b.plan", "--markdown"]).stdout;
    assert!(md.contains("### cruddur-infra plan: 1 to add"), "{md}");
    assert!(std::fs::read_to_string(env.path("show-calls.log")).unwrap_or_default().is_empty(), "show called AWS");
}

#[test]
fn replace_plans_and_makes_a_new_object_for_a_resource_that_would_not_change() {
    let env = Env::new();
    env.write_spec(
        "resources:\n  sns_topic:\n    t: { name: habits-topic }\n  sns_subscription:\n    s: { topic_arn: \"${sns_topic.t.arn}\", protocol: https, endpoint: https://hooks.example/x }\n",
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let before = env.block_on(env.sns().list_subscriptions().send()).expect("subscriptions");
    let before: Vec<String> =
        before.subscriptions().iter().filter_map(|s| s.subscription_arn()).map(str::to_string).collect();
    let plan = env.run(&["plan", "--replace", "sns_subscription.s"]).expect_code(0).stdout;
    assert!(plan.contains("# sns_subscription.s must be replaced (--replace asks for it)"), "{plan}");
    assert!(plan.contains("Plan: 1 to add, 0 to change, 1 to destroy."), "{plan}");
    let json: Value =
        serde_json::from_str(&env.run(&["plan", "--json", "--replace", "sns_subscription.s"]).expect_code(0).stdout)
            .expect("json");
    let change =
        json["resource_changes"].as_array().expect("changes").iter().find(|c| c["address"] == "sns_subscription.s");
    assert_eq!(change.expect("the subscription")["action_reason"], "replace_requested");
    let unknown = env.run(&["plan", "--replace", "sns_subscription.nope"]).expect_code(1);
    assert!(unknown.stderr_flat().contains("--replace sns_subscription.nope: the spec declares no such resource"));

    env.run(&["apply", "--auto-approve", "--replace", "sns_subscription.s"]).expect_code(0);
    let after = env.block_on(env.sns().list_subscriptions().send()).expect("subscriptions");
    let after: Vec<String> =
        after.subscriptions().iter().filter_map(|s| s.subscription_arn()).map(str::to_string).collect();
    assert_eq!(after.len(), 1, "one subscription, a new one: {after:?}");
    assert_ne!(after, before, "the subscription is a new object");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn validate_json_gives_each_problem_its_file_line_column_severity_and_code() {
    let env = Env::new();
    env.write_spec(SPEC);
    let ok: Value = serde_json::from_str(&env.run(&["validate", "--json"]).expect_code(0).stdout).expect("json");
    assert_eq!((ok["valid"].clone(), ok["resources"].clone()), (Value::Bool(true), Value::from(1)));
    env.write_spec("resources:\n  s3_bucket:\n    b: { name: UPPER }\n  sns_topik:\n    t: { name: x }\n");
    let out = env.run(&["validate", "--json"]).expect_code(1);
    let doc: Value = serde_json::from_str(&out.stdout).expect("json on stdout even when invalid");
    assert_eq!(doc["valid"], false);
    let diagnostics = doc["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diagnostics.len(), 2, "{doc:#}");
    let bucket = diagnostics
        .iter()
        .find(|d| d["message"].as_str().unwrap_or_default().contains("s3_bucket.b"))
        .expect("the name");
    assert_eq!((bucket["line"].as_u64(), bucket["column"].as_u64()), (Some(3), Some(10)), "{bucket}");
    assert_eq!(bucket["severity"], "error");
    assert_eq!(bucket["code"], "cruddur::spec::invalid");
    assert_eq!(bucket["file"], "specs/cruddur.yaml");
    let kind =
        diagnostics.iter().find(|d| d["message"].as_str().unwrap_or_default().contains("sns_topik")).expect("the kind");
    assert_eq!(kind["line"].as_u64(), Some(4), "{kind}");
}
