//! The state's history: every command that writes the state keeps the one it started from,
//! stamped with who wrote it; `state history`, `state show --serial` and `state diff` read
//! them, on a local file and on S3, and the oldest beyond `--state-history` go.

use serde_json::Value;

use crate::harness::Env;

fn spec(env: &Env, tag: &str, extra: bool) {
    let extra = if extra { "    extra:\n      name: history-extra-bucket\n" } else { "" };
    env.write_spec(&format!(
        "resources:\n  s3_bucket:\n    a:\n      name: history-a-bucket\n      tags: {{ v: \"{tag}\" }}\n{extra}"
    ));
}

fn history(env: &Env, flags: &[&str]) -> Vec<Value> {
    let args: Vec<&str> = ["state", "history", "--json"].iter().chain(flags).copied().collect();
    let out = env.run(&args).expect_code(0);
    let doc: Value = serde_json::from_str(&out.stdout).expect("history JSON");
    doc["states"].as_array().expect("states").clone()
}

fn names(row: &Value, change: &str) -> Vec<String> {
    row["change"][change].as_array().into_iter().flatten().map(|v| v.as_str().unwrap_or_default().into()).collect()
}

/// Where the earlier states of `backend` are kept, by name.
fn kept(env: &Env, backend: &str) -> Vec<String> {
    if backend == "local" {
        let dir = env.path("state/cruddur.json.history");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        return names;
    }
    let listed = env.block_on(env.s3().list_objects_v2().bucket("history-team-state").prefix("s.json.history/").send());
    listed.expect("list").contents().iter().filter_map(|o| o.key()).map(str::to_string).collect()
}

#[test]
fn every_command_that_writes_keeps_the_state_it_started_from_and_history_says_who_and_what() {
    for backend in ["local", "s3"] {
        let env = Env::new();
        let flags: Vec<&str> = if backend == "s3" {
            env.block_on(env.s3().create_bucket().bucket("history-team-state").send()).expect("state bucket");
            vec!["--state", "s3://history-team-state/s.json"]
        } else {
            vec![]
        };
        let run = |args: &[&str]| env.run(&[args, &flags[..]].concat());
        spec(&env, "1", false);
        run(&["apply", "--auto-approve"]).expect_code(0);
        spec(&env, "2", false);
        run(&["apply", "--auto-approve"]).expect_code(0);
        spec(&env, "2", true);
        run(&["apply", "--auto-approve"]).expect_code(0);
        run(&["state", "rm", "s3_bucket.extra"]).expect_code(0);
        let before_plan = kept(&env, backend);
        run(&["plan"]).expect_code(0);
        assert_eq!(kept(&env, backend), before_plan, "{backend}: a plan writes nothing, and keeps nothing");

        let rows = history(&env, &flags);
        let commands: Vec<&str> = rows.iter().map(|r| r["command"].as_str().unwrap_or_default()).collect();
        assert_eq!(commands, ["state rm", "apply", "apply", "apply"], "{backend}: newest first: {rows:#?}");
        assert_eq!(rows.iter().filter(|r| r["current"] == true).count(), 1);
        assert_eq!(rows[0]["current"], true);
        for row in &rows {
            let by = row["by"].as_str().unwrap_or_default();
            assert!(by.starts_with("arn:aws:"), "{backend}: who wrote it is the caller's ARN: {row}");
        }
        assert_eq!(names(&rows[0], "removed"), ["s3_bucket.extra"], "{backend}");
        assert_eq!(names(&rows[1], "added"), ["s3_bucket.extra"], "{backend}");
        assert_eq!(names(&rows[2], "changed"), ["s3_bucket.a"], "{backend}");
        assert_eq!(rows[3]["change"], Value::Null, "{backend}: the oldest kept has nothing before it");
        let serial = |i: usize| rows[i]["serial"].as_u64().expect("serial").to_string();

        let text = run(&["state", "history"]).expect_code(0).stdout;
        assert!(text.contains("+0 ~0 -1: - s3_bucket.extra  (current)"), "{backend}:\n{text}");

        let diff = run(&["state", "diff", &serial(3), &serial(2)]).expect_code(0).stdout;
        assert!(diff.contains("~ s3_bucket.a\n    tags: {\"v\":\"1\"} -> {\"v\":\"2\"}"), "{backend}:\n{diff}");
        let diff = run(&["state", "diff", &serial(3), "--json"]).expect_code(0).stdout;
        let diff: Value = serde_json::from_str(&diff).expect("diff JSON");
        let changed: Vec<(&str, &str)> = diff["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| (r["addr"].as_str().unwrap_or_default(), r["change"].as_str().unwrap_or_default()))
            .collect();
        assert_eq!(changed, [("s3_bucket.a", "changed")], "{backend}: extra came and went: {diff}");

        let shown = run(&["state", "show", "s3_bucket.a", "--serial", &serial(3)]).expect_code(0).stdout;
        assert!(shown.contains("\"v\": \"1\""), "{backend}:\n{shown}");
        let whole = run(&["state", "show", "--serial", &serial(1)]).expect_code(0).stdout;
        assert!(whole.contains("history-extra-bucket"), "{backend}:\n{whole}");
        let missing = run(&["state", "show", "--serial", "999"]).expect_code(1);
        assert!(missing.stderr_flat().contains("has no serial 999 (kept:"), "{backend}: {}", missing.stderr);

        // At most N earlier states stay: the oldest go.
        spec(&env, "3", false);
        let mut keep_two = vec!["apply", "--auto-approve", "--state-history", "2"];
        keep_two.extend(&flags);
        env.run(&keep_two).expect_code(0);
        assert_eq!(kept(&env, backend).len(), 2, "{backend}: {:?}", kept(&env, backend));
        assert_eq!(history(&env, &flags).len(), 3, "{backend}: two kept and the current one");
    }
}
