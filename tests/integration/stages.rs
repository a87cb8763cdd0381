//! Stages: copies of the stack beside the main one (`--stage NAME`), each with its own state
//! and names; `${stage}` is empty for the main stack. Counted through the AWS API.

use crate::harness::Env;

fn small(env: &Env) {
    env.write_spec(
        "resources:
  s3_bucket:
    b: { name: \"stages-bucket${stage}\", tags: { app: cruddur } }
  sns_topic:
    t: { name: \"stages-topic${stage}\" }
  sns_subscription:
    s: { topic_arn: \"${sns_topic.t.arn}\", protocol: https, endpoint: https://hooks.example/x }
",
    );
}

fn buckets(env: &Env) -> Vec<String> {
    let listed = env.block_on(env.s3().list_buckets().send()).expect("buckets");
    let mut names: Vec<String> = listed.buckets().iter().filter_map(|b| b.name()).map(str::to_string).collect();
    names.sort();
    names
}

fn topics(env: &Env) -> Vec<String> {
    let listed = env.block_on(env.sns().list_topics().send()).expect("topics");
    let mut names: Vec<String> = listed
        .topics()
        .iter()
        .filter_map(|t| t.topic_arn())
        .map(|a| a.rsplit(':').next().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn two_stages_and_the_main_stack_side_by_side_do_not_collide_and_destroying_one_leaves_the_others() {
    let env = Env::new();
    small(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.run(&["apply", "--auto-approve", "--stage", "pr-1"]).expect_code(0);
    let by_env = env.command(&["apply", "--auto-approve"]).env("CRUDDUR_STAGE", "pr-2").output().expect("runs");
    crate::harness::Run::from(by_env).expect_code(0);

    assert_eq!(buckets(&env), ["stages-bucket", "stages-bucket-pr-1", "stages-bucket-pr-2"]);
    assert_eq!(topics(&env), ["stages-topic", "stages-topic-pr-1", "stages-topic-pr-2"]);
    let subscriptions = env.block_on(env.sns().list_subscriptions().send()).expect("subscriptions");
    assert_eq!(subscriptions.subscriptions().len(), 3);
    for state in ["state/cruddur.json", "state/cruddur.pr-1.json", "state/cruddur.pr-2.json"] {
        assert!(env.path(state).exists(), "{state}");
    }
    for stage in [None, Some("pr-1"), Some("pr-2")] {
        let mut args = vec!["plan", "--detailed-exitcode"];
        args.extend(stage.iter().flat_map(|s| ["--stage", *s]));
        env.run(&args).expect_code(0);
    }

    env.run(&["destroy", "--auto-approve", "--stage", "pr-1"]).expect_code(0);
    assert_eq!(buckets(&env), ["stages-bucket", "stages-bucket-pr-2"]);
    assert_eq!(topics(&env), ["stages-topic", "stages-topic-pr-2"]);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode", "--stage", "pr-2"]).expect_code(0);
}

#[test]
fn validate_refuses_a_stage_whose_names_break_a_limit_or_are_the_main_stacks_before_any_aws_call() {
    let env = Env::new();
    env.write_spec(
        "resources:
  s3_bucket:
    long: { name: \"a-bucket-name-long-already-at-forty-five-chars${stage}\" }
  sns_topic:
    shared: { name: cruddur-everywhere }
",
    );
    let log = env.path("calls.log");
    let validate = |stage: &str| {
        let out = env.command(&["validate", "--stage", stage]).env("CRUDDUR_AWS_CALL_LOG", &log).output();
        crate::harness::Run::from(out.expect("runs"))
    };
    let refused = validate("preview-for-pull-request-1234").expect_code(1);
    let text = refused.stderr_flat();
    // The value in full (the terminal may wrap it), then the limit.
    let flat: String = text.split_whitespace().collect();
    assert!(
        flat.contains(
            "s3_bucket.long:`name`is`a-bucket-name-long-already-at-forty-five-chars-preview-for-pull-request-1234`"
        ),
        "{text}"
    );
    assert!(text.contains("which AWS refuses: it is 76 characters long; AWS allows 3-63"), "{text}");
    assert!(text.contains("cruddur.yaml:3"), "the file and line: {text}");
    assert!(text.contains("with the stage `preview-for-pull-request-1234` applied"), "{text}");
    // A name without ${stage} would be the main stack's object.
    assert!(
        text.contains(
            "sns_topic.shared: in stage `preview-for-pull-request-1234` it would be the main stack's own object"
        ),
        "{text}"
    );
    assert!(std::fs::read_to_string(&log).unwrap_or_default().is_empty(), "validate made an AWS call");

    // The main stack: both names are fine as they are.
    env.run(&["validate"]).expect_code(0);
    // A stage name every kind cannot take is refused as a flag.
    let bad = env.run(&["plan", "--stage", "PR_17"]).expect_code(1);
    assert!(bad.stderr.contains("lowercase letters, digits and hyphens only"), "{}", bad.stderr);
}

#[test]
fn the_shipped_stack_deploys_a_stage_beside_the_main_one_whose_plan_stays_empty() {
    let env = Env::new();
    crate::stack::stack(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let main_stack = crate::hostile::inventory(&env);
    env.run(&["apply", "--auto-approve", "--stage", "pr-17"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode", "--stage", "pr-17"]).expect_code(0);

    let functions = env.block_on(env.lambda().list_functions().send()).expect("functions");
    let mut names: Vec<&str> = functions.functions().iter().filter_map(|f| f.function_name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "cruddur-authorizer",
            "cruddur-pr-17-authorizer",
            "cruddur-pr-17-presigner",
            "cruddur-pr-17-thumbnailer",
            "cruddur-presigner",
            "cruddur-thumbnailer",
        ]
    );
    let apis = env.block_on(env.apigw().get_apis().send()).expect("apis");
    let mut apis: Vec<&str> = apis.items().iter().filter_map(|a| a.name()).collect();
    apis.sort_unstable();
    assert_eq!(apis, ["cruddur-avatars", "cruddur-pr-17-avatars"]);
    let distributions = env.block_on(env.cloudfront().list_distributions().send()).expect("distributions");
    let aliases: Vec<Vec<String>> = distributions
        .distribution_list()
        .map(|l| l.items().iter().map(|d| d.aliases().map(|a| a.items().to_vec()).unwrap_or_default()).collect())
        .unwrap_or_default();
    assert_eq!(aliases.len(), 2, "{aliases:?}");
    assert!(aliases.iter().any(|a| a == &["assets-pr-17.cruddur.test".to_string()]), "{aliases:?}");
    // The stage's assets bucket is its own; the main one's adopted bucket is the main stack's.
    assert!(buckets(&env).contains(&"assets.cruddur.test-pr-17".to_string()), "{:?}", buckets(&env));

    // Every taggable resource says which stage it belongs to; the main stack's say none.
    let tagged = stage_tags(&env);
    for (what, stage) in &tagged {
        let expected = what.contains("pr-17").then_some("pr-17");
        assert_eq!(stage.as_deref(), expected, "{what}: {tagged:#?}");
    }
    // Buckets (the main stack adopts its assets bucket), functions, topics, APIs, roles.
    assert_eq!(tagged.len(), 3 + 2 * 3 + 2 + 2 + 2 * 3, "{tagged:#?}");

    // Its state lost, the stage is destroyed from what AWS holds: every kind, the untaggable
    // ones (records, the access control, routes) found by their parent or stage-derived name.
    std::fs::remove_file(env.path("state/cruddur.pr-17.json")).expect("the stage's state deleted");
    let destroyed = env.run(&["stages", "destroy", "pr-17", "--auto-approve"]).expect_code(0);
    assert!(destroyed.stdout.contains("Stage pr-17 has no state at state/cruddur.pr-17.json"), "{}", destroyed.stdout);
    for line in ["route53_record.assets_ipv4 (", "cloudfront_origin_access_control.", "Stage pr-17 is gone"] {
        assert!(destroyed.stdout.contains(line), "{line}: {}", destroyed.stdout);
    }
    assert_eq!(crate::hostile::inventory(&env), main_stack, "AWS holds exactly the main stack:\n{}", destroyed.stdout);
    assert!(stage_tags(&env).values().all(Option::is_none), "{:#?}", stage_tags(&env));
    assert!(!env.path("state/cruddur.pr-17.json").exists(), "the rebuilt state is removed with the stage");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    let again = env.run(&["stages", "destroy", "pr-17", "--auto-approve"]).expect_code(1);
    assert!(again.stderr_flat().contains("there is no stage `pr-17`"), "{}", again.stderr);
}

/// The `cruddur-infra:stage` tag of each bucket, function, topic, API and role the stacks
/// made (the adopted assets bucket is the main stack's and carries no ownership tags).
fn stage_tags(env: &Env) -> std::collections::BTreeMap<String, Option<String>> {
    const TAG: &str = "cruddur-infra:stage";
    let mut out = std::collections::BTreeMap::new();
    for b in buckets(env).into_iter().filter(|b| b != "assets.cruddur.test") {
        let tags = env.block_on(env.s3().get_bucket_tagging().bucket(&b).send()).expect("bucket tags");
        let stage = tags.tag_set().iter().find(|t| t.key() == TAG).map(|t| t.value().to_string());
        out.insert(format!("bucket {b}"), stage);
    }
    let functions = env.block_on(env.lambda().list_functions().send()).expect("functions");
    for f in functions.functions() {
        let tags = env.block_on(env.lambda().list_tags().resource(f.function_arn().expect("arn")).send());
        let stage = tags.expect("function tags").tags().and_then(|t| t.get(TAG)).cloned();
        out.insert(format!("function {}", f.function_name().unwrap_or_default()), stage);
    }
    let topics = env.block_on(env.sns().list_topics().send()).expect("topics");
    for t in topics.topics().iter().filter_map(|t| t.topic_arn()) {
        let tags = env.block_on(env.sns().list_tags_for_resource().resource_arn(t).send()).expect("topic tags");
        out.insert(format!("topic {t}"), tags.tags().iter().find(|t| t.key() == TAG).map(|t| t.value().to_string()));
    }
    let apis = env.block_on(env.apigw().get_apis().send()).expect("apis");
    for a in apis.items() {
        out.insert(format!("api {}", a.name().unwrap_or_default()), a.tags().and_then(|t| t.get(TAG)).cloned());
    }
    let roles = env.block_on(env.iam().list_roles().send()).expect("roles");
    for r in roles.roles().iter().filter(|r| r.role_name().starts_with("cruddur-")) {
        let tags = env.block_on(env.iam().list_role_tags().role_name(r.role_name()).send()).expect("role tags");
        let stage = tags.tags().iter().find(|t| t.key() == TAG).map(|t| t.value().to_string());
        out.insert(format!("role {}", r.role_name()), stage);
    }
    out
}

/// The buckets of the stacks (the S3 state's bucket left out).
fn stack_buckets(env: &Env) -> Vec<String> {
    buckets(env).into_iter().filter(|b| b.starts_with("stages-bucket")).collect()
}

#[test]
fn stages_are_listed_destroyed_and_pruned_leaving_the_kept_ones_and_the_main_stack_whole() {
    for backend in ["local", "s3"] {
        // Through the test proxy, which can kill the command after any request.
        let env = Env::with_proxy(crate::proxy::Mode::Pass, 0);
        small(&env);
        let flags: Vec<&str> = if backend == "s3" {
            env.block_on(env.s3().create_bucket().bucket("stages-team-state").send()).expect("state bucket");
            vec!["--state", "s3://stages-team-state/envs/cruddur.json"]
        } else {
            vec![]
        };
        let run = |args: &[&str]| env.run(&[args, &flags[..]].concat());
        run(&["apply", "--auto-approve"]).expect_code(0);
        for stage in ["pr-1", "pr-2", "pr-3", "pr-4", "pr-5"] {
            run(&["apply", "--auto-approve", "--stage", stage]).expect_code(0);
        }
        let listed: serde_json::Value =
            serde_json::from_str(&run(&["stages", "list", "--json"]).expect_code(0).stdout).expect("json");
        let stages: Vec<(&str, u64)> = listed["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .map(|s| (s["stage"].as_str().unwrap_or_default(), s["resources"].as_u64().unwrap_or_default()))
            .collect();
        assert_eq!(stages, [("pr-1", 3), ("pr-2", 3), ("pr-3", 3), ("pr-4", 3), ("pr-5", 3)], "{backend}");

        run(&["stages", "destroy", "pr-1", "--auto-approve"]).expect_code(0);
        assert!(!stack_buckets(&env).contains(&"stages-bucket-pr-1".to_string()), "{backend}");
        let text = run(&["stages", "list"]).expect_code(0).stdout;
        assert!(
            !text.contains("pr-1") && text.contains("pr-2"),
            "{backend}: the destroyed stage's state is gone:\n{text}"
        );
        let missing = run(&["stages", "destroy", "pr-1", "--auto-approve"]).expect_code(1);
        assert!(missing.stderr_flat().contains("there is no stage `pr-1`"), "{backend}: {}", missing.stderr);

        // Nothing is older than an hour; without a terminal nothing goes unconfirmed.
        let recent = run(&["stages", "prune", "--keep", "pr-3", "--older-than", "1h", "--auto-approve"]).expect_code(0);
        assert!(recent.stdout.contains("Nothing to prune"), "{backend}: {}", recent.stdout);
        run(&["stages", "prune", "--keep", "pr-3"]).expect_code(1);
        assert_eq!(stack_buckets(&env).len(), 5, "{backend}: nothing destroyed unconfirmed");

        // A prune killed midway, then the same prune again: the kept stage and the main stack stay.
        env.write("keep.txt", "# open pull requests\npr-3\n");
        let prune = [&["stages", "prune", "--keep-file", "keep.txt", "--auto-approve"][..], &flags[..]].concat();
        assert!(crate::hostile::run_killed_after(&env, &prune, 9), "{backend}: the prune was killed");
        env.run(&prune).expect_code(0);
        assert_eq!(stack_buckets(&env), ["stages-bucket", "stages-bucket-pr-3"], "{backend}");
        assert_eq!(topics(&env), ["stages-topic", "stages-topic-pr-3"], "{backend}");
        let subscriptions = env.block_on(env.sns().list_subscriptions().send()).expect("subscriptions");
        assert_eq!(subscriptions.subscriptions().len(), 2, "{backend}");
        run(&["plan", "--detailed-exitcode"]).expect_code(0);
        run(&["plan", "--detailed-exitcode", "--stage", "pr-3"]).expect_code(0);
        // A wrong state path is an error naming it, never "no stages" (a nightly prune stays red).
        let typo = env.run(&["stages", "prune", "--keep", "pr-3", "--auto-approve", "--state", "state/typo.json"]);
        assert!(typo.expect_code(1).stderr_flat().contains("there is no state at state/typo.json"), "{backend}");
        let bad = run(&["stages", "list", "--stage", "pr-3"]).expect_code(1);
        assert!(bad.stderr_flat().contains("leave out --stage pr-3"), "{backend}: {}", bad.stderr);
    }
}

#[test]
fn a_stage_whose_state_was_deleted_is_found_by_its_tag_and_destroyed_from_what_aws_holds() {
    let env = Env::new();
    small(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    for stage in ["pr-1", "pr-2"] {
        env.run(&["apply", "--auto-approve", "--stage", stage]).expect_code(0);
    }
    std::fs::remove_file(env.path("state/cruddur.pr-2.json")).expect("the state deleted");

    let listed = env.run(&["stages", "list", "--json"]).expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON");
    let stages = doc["stages"].as_array().expect("stages");
    let lost = stages.iter().find(|s| s["stage"] == "pr-2").expect("pr-2 found in AWS");
    assert_eq!(lost["state_exists"], false, "{doc:#}");
    let arns: Vec<&str> =
        lost["tagged_in_aws"].as_array().expect("tagged").iter().filter_map(|r| r["arn"].as_str()).collect();
    assert!(arns.iter().any(|a| a.ends_with("stages-bucket-pr-2")), "{arns:?}");
    assert!(arns.iter().any(|a| a.ends_with("stages-topic-pr-2")), "{arns:?}");
    let kept = stages.iter().find(|s| s["stage"] == "pr-1").expect("pr-1");
    assert_eq!(kept["state_exists"], true);
    assert_eq!(kept["tagged_in_aws"].as_array().map(Vec::len), Some(2), "its bucket and topic: {doc:#}");
    assert!(stages.iter().all(|s| s["stage"] != ""), "the main stack is no stage: {doc:#}");
    let text = env.run(&["stages", "list"]).expect_code(0).stdout;
    assert!(text.contains("(lost: no state at state/cruddur.pr-2.json)"), "{text}");

    // Without a terminal nothing goes unconfirmed; the state is rebuilt all the same (reads only).
    env.run(&["stages", "destroy", "pr-2"]).expect_code(1);
    assert_eq!(buckets(&env), ["stages-bucket", "stages-bucket-pr-1", "stages-bucket-pr-2"], "nothing deleted");
    std::fs::remove_file(env.path("state/cruddur.pr-2.json")).expect("the rebuilt state, lost again");
    let destroyed = env.run(&["stages", "destroy", "pr-2", "--auto-approve"]).expect_code(0);
    for line in ["s3_bucket.b (stages-bucket-pr-2)", "sns_subscription.s (", "Stage pr-2 is gone"] {
        assert!(destroyed.stdout.contains(line), "{line}: {}", destroyed.stdout);
    }
    assert_eq!(buckets(&env), ["stages-bucket", "stages-bucket-pr-1"]);
    assert_eq!(topics(&env), ["stages-topic", "stages-topic-pr-1"]);
    let subscriptions = env.block_on(env.sns().list_subscriptions().send()).expect("subscriptions");
    assert_eq!(subscriptions.subscriptions().len(), 2);
    let text = env.run(&["stages", "list"]).expect_code(0).stdout;
    assert!(!text.contains("pr-2"), "{text}");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode", "--stage", "pr-1"]).expect_code(0);
}

/// What the tagging API lists for each stage: stage name -> how many resources.
fn tagged_stages(env: &Env) -> std::collections::BTreeMap<String, usize> {
    let listed = env.block_on(env.tagging().get_resources().send()).expect("tagged resources");
    let mut out = std::collections::BTreeMap::new();
    for r in listed.resource_tag_mapping_list() {
        if let Some(t) = r.tags().iter().find(|t| t.key() == "cruddur-infra:stage") {
            *out.entry(t.value().to_string()).or_default() += 1;
        }
    }
    out
}

#[test]
fn twelve_closed_stages_nine_with_state_and_three_without_are_pruned_leaving_the_open_ones_and_the_main_stack() {
    let env = Env::new();
    small(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let stages: Vec<String> = (1..=14).map(|n| format!("pr-{n}")).collect();
    for stage in &stages {
        env.run(&["apply", "--auto-approve", "--stage", stage]).expect_code(0);
    }
    // Pull requests 1-12 are closed; the clean-up of 10, 11 and 12 lost their states.
    for n in [10, 11, 12] {
        std::fs::remove_file(env.path(&format!("state/cruddur.pr-{n}.json"))).expect("state deleted");
    }
    let pruned = env.run(&["stages", "prune", "--keep", "pr-13,pr-14", "--auto-approve"]).expect_code(0);
    assert_eq!(pruned.stdout.matches("has no state at").count(), 3, "the three lost: {}", pruned.stdout);
    assert_eq!(pruned.stdout.matches("is gone: its state").count(), 12, "{}", pruned.stdout);

    let wanted: Vec<String> = ["", "-pr-13", "-pr-14"].iter().map(|s| format!("stages-bucket{s}")).collect::<Vec<_>>();
    assert_eq!(stack_buckets(&env), wanted);
    assert_eq!(topics(&env), ["stages-topic", "stages-topic-pr-13", "stages-topic-pr-14"]);
    let subscriptions = env.block_on(env.sns().list_subscriptions().send()).expect("subscriptions");
    assert_eq!(subscriptions.subscriptions().len(), 3);
    assert_eq!(tagged_stages(&env), [("pr-13".to_string(), 2), ("pr-14".to_string(), 2)].into_iter().collect());
    let mut states: Vec<String> = std::fs::read_dir(env.path("state"))
        .expect("state dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    states.sort();
    assert_eq!(states, ["cruddur.json", "cruddur.pr-13.json", "cruddur.pr-14.json"]);
    for stage in [None, Some("pr-13"), Some("pr-14")] {
        let mut args = vec!["plan", "--detailed-exitcode"];
        args.extend(stage.iter().flat_map(|s| ["--stage", *s]));
        env.run(&args).expect_code(0);
    }
}

#[test]
fn a_lost_stages_destroy_killed_after_any_request_is_finished_by_the_next_run() {
    // Killed while rebuilding (reads only), after the rebuilt state was saved, or mid-destroy:
    // the same command again leaves AWS holding the main stack alone and no stage state.
    let env = Env::with_proxy(crate::proxy::Mode::Pass, 0);
    small(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let destroy = ["stages", "destroy", "pr-2", "--auto-approve"];
    for k in 1.. {
        env.run(&["apply", "--auto-approve", "--stage", "pr-2"]).expect_code(0);
        std::fs::remove_file(env.path("state/cruddur.pr-2.json")).expect("the stage's state deleted");
        let killed = crate::hostile::run_killed_after(&env, &destroy, k);
        if killed {
            let again = env.run(&destroy);
            // Killed after its last request, the stage was already gone.
            let done_before = again.code == 1 && again.stderr_flat().contains("there is no stage `pr-2`");
            assert!(again.code == 0 || done_before, "killed after request {k}: {}\n{}", again.stdout, again.stderr);
        }
        assert_eq!(buckets(&env), ["stages-bucket"], "killed after request {k}");
        assert_eq!(topics(&env), ["stages-topic"], "killed after request {k}");
        let subscriptions = env.block_on(env.sns().list_subscriptions().send()).expect("subscriptions");
        assert_eq!(subscriptions.subscriptions().len(), 1, "killed after request {k}");
        assert!(!env.path("state/cruddur.pr-2.json").exists(), "killed after request {k}");
        if !killed {
            assert!(k > 5, "the destroy made {k} requests at most");
            break;
        }
    }
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}
