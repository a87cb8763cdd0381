//! Versions and the `live` alias: each code apply publishes a version and points `live` at it,
//! only the newest `keep_versions` are kept, `rollback` serves an older one and the next plan
//! says so, and a code apply killed after any request converges on the next apply. Everything
//! is checked through the Lambda API.

use std::path::Path;

use serde_json::json;

use crate::harness::{Env, code_sha256};
use crate::hostile::run_killed_after;
use crate::proxy::Mode;

const FUNCTION: &str = "versioned";

fn spec(source: &str, keep: u32, env_value: &str) -> String {
    format!(
        r#"
resources:
  iam_role:
    fn:
      name: versioned-role
      assume_role_policy:
        Version: "2012-10-17"
        Statement: [{{ Effect: Allow, Principal: {{ Service: lambda.amazonaws.com }}, Action: "sts:AssumeRole" }}]
  lambda_function:
    fn:
      name: {FUNCTION}
      role: ${{iam_role.fn.arn}}
      source: {source}
      keep_versions: {keep}
      environment: {{ STAGE: {env_value} }}
"#
    )
}

/// A one-line crate at `dir` in the working directory printing `body`; its path.
fn crate_at(env: &Env, dir: &str, body: &str) -> String {
    env.write(
        &format!("{dir}/Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    );
    env.write(&format!("{dir}/src/main.rs"), &format!("fn main() {{ println!(\"{body}\"); }}\n"));
    env.path(dir).display().to_string()
}

/// The hash of the dev zip (what the tests build) the engine built from `source`.
fn built_sha(source: &str) -> String {
    let zip = crate::harness::target_dir_of(Path::new(source)).join("lambda-zips/hello/x86_64-dev/bootstrap.zip");
    code_sha256(&std::fs::read(zip).expect("the built zip"))
}

/// The version `live` points at and the code that version runs.
fn live(env: &Env) -> (String, String) {
    let lambda = env.lambda();
    let alias = env.block_on(lambda.get_alias().function_name(FUNCTION).name("live").send()).expect("live alias");
    let version = alias.function_version().expect("version").to_string();
    let f = env.block_on(lambda.get_function().function_name(FUNCTION).qualifier(&version).send()).expect("version");
    (version, f.configuration().and_then(|c| c.code_sha256()).expect("CodeSha256").to_string())
}

/// The published versions, oldest first.
fn versions(env: &Env) -> Vec<String> {
    let out = env.block_on(env.lambda().list_versions_by_function().function_name(FUNCTION).send()).expect("versions");
    out.versions().iter().filter_map(|v| v.version()).filter(|v| *v != "$LATEST").map(str::to_string).collect()
}

fn settled(env: &Env) {
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["drift"]).expect_code(0);
}

#[test]
fn each_code_apply_publishes_a_version_that_live_serves_and_only_the_newest_are_kept() {
    let env = Env::new();
    let mut shas = Vec::new();
    for (n, body) in ["one", "two", "three"].iter().enumerate() {
        let source = crate_at(&env, "hello", body);
        env.write_spec(&spec(&source, 2, "prod"));
        env.run(&["apply", "--auto-approve"]).expect_code(0);
        shas.push(built_sha(&source));
        assert_eq!(live(&env), ((n + 1).to_string(), shas[n].clone()), "after deploying `{body}`");
        settled(&env);
    }
    assert_eq!(versions(&env), ["2", "3"], "keep_versions: 2 deleted version 1");
    let state = env.state();
    assert_eq!(state["resources"]["lambda_function.fn"]["attributes"]["version"], "3");

    // A configuration change is published too: what live serves has it.
    let source = env.path("hello").display().to_string();
    env.write_spec(&spec(&source, 2, "staging"));
    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(plan.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{}", plan.stdout);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let lambda = env.lambda();
    let served = env.block_on(lambda.get_function().function_name(FUNCTION).qualifier("live").send()).expect("live");
    let vars = served.configuration().and_then(|c| c.environment()).and_then(|e| e.variables()).cloned();
    assert_eq!(vars.unwrap_or_default().get("STAGE").map(String::as_str), Some("staging"));
    assert_eq!(live(&env), ("4".to_string(), shas[2].clone()));
    assert_eq!(versions(&env), ["3", "4"], "numbers are never reused");
    settled(&env);
}

#[test]
fn rollback_serves_an_older_version_and_the_next_plan_says_the_source_differs_from_what_is_live() {
    let env = Env::new();
    let mut shas = Vec::new();
    for body in ["one", "two", "three"] {
        let source = crate_at(&env, "hello", body);
        env.write_spec(&spec(&source, 3, "prod"));
        env.run(&["apply", "--auto-approve"]).expect_code(0);
        shas.push(built_sha(&source));
    }
    let back = env.run(&["rollback", "lambda_function.fn"]).expect_code(0);
    assert!(back.stdout.contains("live serves version 2 (was 3)"), "{}", back.stdout);
    assert_eq!(live(&env), ("2".to_string(), shas[1].clone()));
    let recorded = &env.state()["resources"]["lambda_function.fn"]["attributes"];
    assert_eq!(recorded["code_sha256"], shas[1].as_str(), "the state records what is live");
    assert_eq!(recorded["rolled_back_from"], "3");
    // Nothing changed since the rollback: no drift. The spec still says version 3's code, and
    // the plan shows it instead of undoing the rollback silently.
    env.run(&["drift"]).expect_code(0);
    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    for line in [
        "# lambda_function.fn will be updated in-place",
        "live serves version 2, rolled back from 3: the source differs from what is live",
        &format!(r#"~ code_sha256 = "{}" -> "{}""#, shas[1], shas[2]),
    ] {
        assert!(plan.stdout.contains(line), "missing `{line}` in\n{}", plan.stdout);
    }
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["plan", "--json"]).expect_code(0).stdout).expect("plan --json");
    let change = &json["resource_changes"].as_array().expect("changes")[0];
    assert_eq!((&change["address"], &change["action_reason"]), (&json!("lambda_function.fn"), &json!("rolled_back")));

    let missing = env.run(&["rollback", "lambda_function.fn", "--to", "7"]).expect_code(1);
    assert!(missing.stderr.contains("has no version 7; kept: 1, 2, 3"), "{}", missing.stderr);
    let not_a_function = env.run(&["rollback", "iam_role.fn"]).expect_code(1);
    assert!(
        not_a_function
            .stderr_flat()
            .contains("iam_role.fn has no operation `rollback` (only lambda_function offers it)"),
        "{}",
        not_a_function.stderr
    );
    env.run(&["rollback", "lambda_function.fn", "--to", "1"]).expect_code(0);
    assert_eq!(live(&env), ("1".to_string(), shas[0].clone()));
    let oldest = env.run(&["rollback", "lambda_function.fn"]).expect_code(1);
    assert!(oldest.stderr.contains("NoEarlierVersion"), "{}", oldest.stderr);

    // apply deploys the source again: the version that has it is live, nothing new published.
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(live(&env), ("3".to_string(), shas[2].clone()));
    assert_eq!(versions(&env), ["1", "2", "3"]);
    assert!(env.state()["resources"]["lambda_function.fn"]["attributes"]["rolled_back_from"].is_null());
    settled(&env);
}

#[test]
fn a_code_apply_killed_after_any_request_converges_on_the_next_apply() {
    // For every request of a code-only apply: the old code deployed, the apply of the new code
    // killed right after AWS answered that request, then a plain apply. The new code is live,
    // published once, the plan is empty and drift is clean.
    let env = Env::with_proxy(Mode::Pass, 0);
    let (old, new) = (crate_at(&env, "old", "old"), crate_at(&env, "new", "new"));
    let deploy_old = || {
        env.moto.reset();
        let _ = std::fs::remove_dir_all(env.path("state"));
        env.write_spec(&spec(&old, 3, "prod"));
        env.run(&["apply", "--auto-approve"]).expect_code(0);
        env.write_spec(&spec(&new, 3, "prod"));
    };
    deploy_old();
    env.proxy().set_mode(Mode::Pass);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let reference: Vec<String> = env.proxy().seen().iter().map(|s| format!("{} {}", s.service, s.operation)).collect();
    let new_sha = built_sha(&new);
    assert_eq!(live(&env), ("2".to_string(), new_sha.clone()));
    let mut killed = 0;
    for k in 1..=reference.len() {
        deploy_old();
        killed += usize::from(run_killed_after(&env, &["apply", "--auto-approve"], k));
        let what = format!("after a kill at request {k} ({})", reference[k - 1]);
        let again = env.run(&["apply", "--auto-approve"]);
        assert_eq!(again.code, 0, "the apply {what}:\n{}\n{}", again.stdout, again.stderr);
        assert_eq!(live(&env), ("2".to_string(), new_sha.clone()), "live {what}");
        assert_eq!(versions(&env), ["1", "2"], "versions {what}");
        let plan = env.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(plan.code, 0, "the plan {what}:\n{}", plan.stdout);
        env.run(&["drift"]).expect_code(0);
    }
    eprintln!("code apply: {} requests, killed after each: {reference:?}", reference.len());
    assert!(killed * 10 >= reference.len() * 9, "only {killed} of {} runs were killed", reference.len());
}

/// Versions 1 and 2 published (code `one`, then `two`): their code hashes.
fn published_twice(env: &Env) -> Vec<String> {
    ["one", "two"]
        .iter()
        .map(|body| {
            let source = crate_at(env, body, body);
            env.write_spec(&spec(&source, 3, "prod"));
            env.run(&["apply", "--auto-approve"]).expect_code(0);
            built_sha(&source)
        })
        .collect()
}

#[test]
fn a_rollback_killed_after_any_request_leaves_a_state_that_the_next_rollback_and_apply_converge() {
    // The rollback records where live goes before it moves live: killed after any request, the
    // state is either right or corrected by the next read, and the rollback run again (or an
    // apply) finishes the job.
    let env = Env::with_proxy(Mode::Pass, 0);
    let shas = published_twice(&env);
    env.proxy().set_mode(Mode::Pass);
    env.run(&["rollback", "lambda_function.fn"]).expect_code(0);
    let reference: Vec<String> = env.proxy().seen().iter().map(|s| format!("{} {}", s.service, s.operation)).collect();
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(live(&env), ("2".to_string(), shas[1].clone()), "apply serves the source again");
    assert!(
        reference.iter().any(|r| r.starts_with("lambda PUT") && r.ends_with("aliases/live")),
        "the rollback moved live: {reference:?}"
    );
    let mut killed = 0;
    for k in 1..=reference.len() {
        let what = format!("after a kill at request {k} ({})", reference[k - 1]);
        killed += usize::from(run_killed_after(&env, &["rollback", "lambda_function.fn"], k));
        let again = env.run(&["rollback", "lambda_function.fn", "--to", "1"]);
        assert_eq!(again.code, 0, "the rollback {what}:\n{}\n{}", again.stdout, again.stderr);
        assert_eq!(live(&env), ("1".to_string(), shas[0].clone()), "live {what}");
        let recorded = &env.state()["resources"]["lambda_function.fn"]["attributes"];
        assert_eq!(
            (&recorded["version"], &recorded["rolled_back_from"], &recorded["code_sha256"]),
            (&json!("1"), &json!("2"), &json!(shas[0])),
            "the state {what}"
        );
        env.run(&["drift"]).expect_code(0);
        env.run(&["apply", "--auto-approve"]).expect_code(0);
        assert_eq!(live(&env).0, "2", "apply serves the source again {what}");
        assert_eq!(versions(&env), ["1", "2"], "nothing new published {what}");
        settled(&env);
    }
    eprintln!("rollback: {} requests, killed after each: {reference:?}", reference.len());
    assert!(killed * 10 >= reference.len() * 9, "only {killed} of {} runs were killed", reference.len());
}

#[test]
fn a_code_apply_waits_for_each_lambda_update_before_the_next_step_as_aws_requires() {
    // Through the strict emulator, a function is InProgress for a while after each update, and
    // AWS refuses another update or a publish meanwhile: the apply never meets that refusal.
    let env = Env::with_proxy(Mode::Pass, 0);
    let (old, new) = (crate_at(&env, "old", "old"), crate_at(&env, "new", "new"));
    let strict = env.proxy().set_strict(crate::strict::Clocks::short());
    env.write_spec(&spec(&old, 3, "prod"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&spec(&new, 3, "staging"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let refusals = strict.refusals();
    assert!(!refusals.iter().any(|r| r.starts_with("function update in progress")), "{refusals:?}");
    assert_eq!(live(&env), ("2".to_string(), built_sha(&new)));
    settled(&env);
}

/// Sets `$LATEST`'s timeout by hand, as the console does, without publishing a version.
fn timeout_by_hand(env: &Env, seconds: i32) {
    let update = env.lambda().update_function_configuration().function_name(FUNCTION).timeout(seconds);
    env.block_on(update.send()).expect("$LATEST edited");
}

#[test]
fn an_unpublished_edit_of_latest_is_drift_that_revert_undoes_and_adopt_publishes() {
    // A console edit of $LATEST runs nowhere (live serves a published version) and the next
    // apply would overwrite it: drift names it; revert puts $LATEST back; adopt writes the value
    // into the spec, and the apply then publishes it and points live at it.
    let env = Env::new();
    let source = crate_at(&env, "hello", "one");
    env.write_spec(&spec(&source, 5, "prod"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let latest_timeout = |env: &Env| {
        let c =
            env.block_on(env.lambda().get_function_configuration().function_name(FUNCTION).send()).expect("$LATEST");
        c.timeout().expect("timeout")
    };
    let before = latest_timeout(&env);
    timeout_by_hand(&env, 45);
    let drift = env.run(&["drift"]).expect_code(2);
    assert!(
        drift.stdout.contains(&format!("`$LATEST` holds changes not published: timeout {before} -> 45")),
        "{}",
        drift.stdout
    );
    env.run(&["drift", "--revert", "--auto-approve"]).expect_code(0);
    assert_eq!(latest_timeout(&env), before, "revert put $LATEST back");
    settled(&env);

    timeout_by_hand(&env, 45);
    let adopt = env.run(&["drift", "--adopt"]).expect_code(0);
    let spec_text = std::fs::read_to_string(env.path("specs/cruddur.yaml")).expect("spec");
    assert!(spec_text.contains("timeout: 45"), "{}\n{spec_text}", adopt.stdout);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let served =
        env.block_on(env.lambda().get_function().function_name(FUNCTION).qualifier("live").send()).expect("live");
    assert_eq!(served.configuration().and_then(|c| c.timeout()), Some(45), "live serves the adopted setting");
    settled(&env);
}

#[test]
fn a_rollback_to_a_version_whose_role_is_gone_is_refused_naming_it() {
    // A published version keeps the role it was published with: after the role was replaced
    // (renamed, so the old one was deleted), Lambda could not run the older version.
    let env = Env::new();
    let source = crate_at(&env, "hello", "one");
    env.write_spec(&spec(&source, 5, "prod"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&spec(&source, 5, "prod").replace("name: versioned-role", "name: versioned-role-2"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(live(&env).0, "2", "the role change published version 2");
    let refused = env.run(&["rollback", "lambda_function.fn"]).expect_code(1);
    let said = refused.stderr_flat();
    assert!(said.contains("runs as the role versioned-role, which no longer exists"), "{said}");
    assert_eq!(live(&env).0, "2", "live did not move");
}

#[test]
fn a_rollback_whose_update_alias_answer_is_lost_after_aws_moved_live_converges_on_the_first_try() {
    // AWS moved live, the answer never arrived: the call is repeated (it is idempotent), and
    // the state records what live serves, with nothing for the next command to repair.
    let env = Env::with_proxy(Mode::Pass, 0);
    let shas = published_twice(&env);
    let update_alias = format!("lambda PUT /2015-03-31/functions/{FUNCTION}/aliases/live");
    env.proxy().set_mode(Mode::LoseAnswersOf(vec![update_alias.clone()]));
    let back = env.run(&["rollback", "lambda_function.fn"]).expect_code(0);
    assert!(back.stdout.contains("live serves version 1 (was 2)"), "{}\n{}", back.stdout, back.stderr);
    let seen: Vec<String> = env.proxy().seen().iter().map(|s| format!("{} {}", s.service, s.operation)).collect();
    assert_eq!(seen.iter().filter(|s| **s == update_alias).count(), 2, "sent again after the lost answer: {seen:?}");
    assert_eq!(live(&env), ("1".to_string(), shas[0].clone()));
    let recorded = &env.state()["resources"]["lambda_function.fn"]["attributes"];
    assert_eq!((&recorded["version"], &recorded["rolled_back_from"]), (&json!("1"), &json!("2")));
    env.run(&["drift"]).expect_code(0);
}

#[test]
fn a_rollback_under_transient_failures_and_lost_answers_converges_on_the_first_try_for_five_seeds() {
    use crate::proxy::Fate;
    let mut injected_in_all = 0;
    for seed in 1..=5 {
        let env = Env::with_proxy(Mode::Pass, seed);
        let shas = published_twice(&env);
        env.proxy().set_mode(Mode::Faults { transient: 0.20, lost: 0.05, latency: std::time::Duration::ZERO });
        let back = env.run(&["rollback", "lambda_function.fn"]);
        let seen = env.proxy().seen();
        env.proxy().set_mode(Mode::Pass);
        let fates: Vec<String> = seen.iter().map(|s| format!("{} {:?}", s.label(), s.fate)).collect();
        assert_eq!(back.code, 0, "seed {seed}:\n{}\n{}\n{}", back.stdout, back.stderr, fates.join("\n"));
        assert_eq!(live(&env), ("1".to_string(), shas[0].clone()), "seed {seed}");
        let recorded = &env.state()["resources"]["lambda_function.fn"]["attributes"];
        assert_eq!((&recorded["version"], &recorded["rolled_back_from"]), (&json!("1"), &json!("2")), "seed {seed}");
        env.run(&["drift"]).expect_code(0);
        let injected = seen.iter().filter(|s| s.fate != Fate::Forwarded).count();
        eprintln!("seed {seed}: rollback made {} requests, {injected} failed or lost", seen.len());
        injected_in_all += injected;
    }
    assert!(injected_in_all >= 5, "only {injected_in_all} faults injected in five seeds");
}
