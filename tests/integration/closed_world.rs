//! Closed-world drift: children added by hand in the scope of what the stack manages (a
//! statement in a function's policy, a second subscription on the topic, a route on the API, a
//! record under a name the spec owns) are reported by `drift`, exit 2, in every format.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};

use crate::harness::Env;
use crate::stack::state_id;

#[test]
fn children_added_by_hand_beside_managed_ones_are_reported_as_undeclared() {
    let env = Env::new();
    let pre = crate::stack::stack(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let clean = env.command(&["drift"]).env("CRUDDUR_AWS_CALL_LOG", env.path("drift.log")).output().expect("runs");
    let clean = crate::harness::Run::from(clean).expect_code(0);
    assert!(clean.stdout.contains("nothing undeclared"), "{}", clean.stdout);
    // The listing costs requests per parent on top of the refresh; a plan reads the same
    // resources (plus three lookups) and lists nothing: drift stays within twice the plan's.
    let requests = std::fs::read_to_string(env.path("drift.log")).expect("call log").lines().count();
    let plan = env.command(&["plan"]).env("CRUDDUR_AWS_CALL_LOG", env.path("plan.log")).output().expect("runs");
    crate::harness::Run::from(plan).expect_code(0);
    let refresh = std::fs::read_to_string(env.path("plan.log")).expect("call log").lines().count();
    eprintln!("drift of the undrifted stack: {requests} requests; a plan's refresh: {refresh}");
    assert!(requests <= 2 * refresh, "drift sent {requests} requests: more than twice a plan's {refresh}");

    let lambda = env.lambda();
    env.block_on(
        lambda
            .add_permission()
            .function_name("cruddur-presigner")
            .qualifier("live")
            .statement_id("HandMade")
            .action("lambda:InvokeFunction")
            .principal("events.amazonaws.com")
            .send(),
    )
    .expect("a statement by hand");
    let topic = state_id(&env, "sns_topic.assets");
    env.block_on(
        env.sns().subscribe().topic_arn(&topic).protocol("https").endpoint("https://other.example.test/x").send(),
    )
    .expect("a subscription by hand");
    let api = state_id(&env, "apigatewayv2_api.avatars");
    env.block_on(env.apigw().create_route().api_id(&api).route_key("GET /by-hand").send()).expect("a route by hand");
    let txt = ResourceRecordSet::builder()
        .name("assets.cruddur.test")
        .r#type(RrType::Txt)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value("\"hand\"").build().expect("record"))
        .build()
        .expect("set");
    let change = Change::builder().action(ChangeAction::Create).resource_record_set(txt).build().expect("change");
    env.block_on(
        env.route53()
            .change_resource_record_sets()
            .hosted_zone_id(&pre.zone_id)
            .change_batch(ChangeBatch::builder().changes(change).build().expect("batch"))
            .send(),
    )
    .expect("a record by hand");

    // Held by managed resources, managed by nothing: an alias beside live, an inline policy on a
    // role whose spec sets none, a stage on the API.
    env.block_on(lambda.create_alias().function_name("cruddur-authorizer").name("hand").function_version("1").send())
        .expect("an alias by hand");
    env.block_on(
        env.iam()
            .put_role_policy()
            .role_name("cruddur-authorizer")
            .policy_name("by-hand")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#)
            .send(),
    )
    .expect("an inline policy by hand");
    env.block_on(env.apigw().create_stage().api_id(&api).stage_name("manual").send()).expect("a stage by hand");
    // A version published by hand (after a change to $LATEST, as AWS publishes nothing new
    // otherwise).
    env.block_on(lambda.update_function_configuration().function_name("cruddur-presigner").description("hand").send())
        .expect("a configuration change by hand");
    let waited = std::time::Instant::now();
    while env
        .block_on(lambda.get_function_configuration().function_name("cruddur-presigner").send())
        .expect("config")
        .last_update_status()
        .is_some_and(|s| s.as_str() == "InProgress")
    {
        assert!(waited.elapsed() < std::time::Duration::from_secs(30), "the update never finished");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let hand_version = env
        .block_on(lambda.publish_version().function_name("cruddur-presigner").description("by hand").send())
        .expect("a version by hand")
        .version()
        .expect("its number")
        .to_string();

    let drift = env.run(&["drift"]).expect_code(2);
    for line in [
        "Not declared in the spec, in the scope of what it manages (8):",
        "+ alias hand (version 1) in lambda_function.authorizer",
        "+ inline policy by-hand in iam_role.authorizer",
        "+ stage manual in the API",
        "+ statement HandMade (principal events.amazonaws.com) in the policy of cruddur-presigner:live",
        "+ https subscription to https://other.example.test/x in the topic",
        "+ route GET /by-hand in the API",
        "+ TXT record assets.cruddur.test. in the name assets.cruddur.test.",
        &format!(
            "+ version {hand_version} (published outside cruddur-infra, \"by hand\") in lambda_function.presigner"
        ),
    ] {
        assert!(drift.stdout.contains(line), "missing `{line}` in\n{}", drift.stdout);
    }
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["drift", "--json"]).expect_code(2).stdout).expect("drift JSON");
    assert_eq!(json["drifted"], true);
    let kinds: Vec<&str> =
        json["undeclared"].as_array().expect("undeclared").iter().filter_map(|u| u["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "apigatewayv2_route",
            "apigatewayv2_stage",
            "iam_role",
            "lambda_function",
            "lambda_function",
            "lambda_permission",
            "route53_record",
            "sns_subscription"
        ]
    );
    let markdown = env.run(&["drift", "--markdown"]).expect_code(2).stdout;
    assert!(markdown.contains("0 resource(s) changed outside cruddur-infra, 8 undeclared"), "{markdown}");

    // Children someone manages elsewhere are ignored by the spec's drift.ignore: shown, not
    // counted.
    let spec = std::fs::read_to_string(env.path("specs/cruddur.yaml")).expect("the spec");
    env.write_spec(&format!("{spec}\ndrift:\n  ignore: [\"stage manual in the API *\", \"alias hand*\"]\n"));
    let drift = env.run(&["drift"]).expect_code(2);
    for line in [
        "Not declared in the spec, in the scope of what it manages (6):",
        "Ignored (drift.ignore in the spec):",
        ". stage manual in the API",
        ". alias hand (version 1) in lambda_function.authorizer",
    ] {
        assert!(drift.stdout.contains(line), "missing `{line}` in\n{}", drift.stdout);
    }
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["drift", "--json"]).expect_code(2).stdout).expect("drift JSON");
    let ignored = json["undeclared"].as_array().expect("undeclared").iter().filter(|u| u["ignored"] == true).count();
    assert_eq!(ignored, 2, "{json}");
    env.write_spec(&format!("{spec}\ndrift:\n  ignroe: []\n"));
    let typo = env.run(&["validate"]).expect_code(1);
    assert!(typo.stderr.contains("unknown drift setting `ignroe`"), "{}", typo.stderr);

    // drift --revert removes the statement, the subscription, the route and the record (as
    // resources the spec does not declare) and the inline policy (by the role's kind), and
    // leaves what the spec ignores (the stage, the alias).
    env.write_spec(&format!("{spec}\ndrift:\n  ignore: [\"stage manual in the API *\", \"alias hand*\"]\n"));
    let revert = env.run(&["drift", "--revert", "--auto-approve"]).expect_code(0);
    assert!(revert.stdout.contains("Undeclared children to remove (6):"), "{}", revert.stdout);
    let removed = format!("Removed version {hand_version} (published outside cruddur-infra, \"by hand\")");
    assert!(revert.stdout.contains(&removed), "{}", revert.stdout);
    assert!(revert.stdout.contains("Removed inline policy by-hand in iam_role.authorizer."), "{}", revert.stdout);
    assert!(revert.stdout.contains("Left in place (drift.ignore in the spec): 2"), "{}", revert.stdout);
    let after = env.run(&["drift"]).expect_code(0);
    assert!(after.stdout.contains("Ignored (drift.ignore in the spec):"), "{}", after.stdout);
    let inline = env.block_on(env.iam().list_role_policies().role_name("cruddur-authorizer").send()).expect("list");
    assert!(inline.policy_names().is_empty(), "the inline policy is gone: {:?}", inline.policy_names());
    let aliases = env.block_on(lambda.list_aliases().function_name("cruddur-authorizer").send()).expect("aliases");
    assert!(aliases.aliases().iter().any(|a| a.name() == Some("hand")), "the ignored alias stays");
    let versions =
        env.block_on(lambda.list_versions_by_function().function_name("cruddur-presigner").send()).expect("versions");
    assert!(versions.versions().iter().all(|v| v.version() != Some(hand_version.as_str())), "the version is gone");
    // Checked through AWS: each removed child is gone, the others are there.
    let routes = env.block_on(env.apigw().get_routes().api_id(&api).send()).expect("routes");
    assert!(routes.items().iter().all(|r| r.route_key() != Some("GET /by-hand")), "the route is gone");
    let subscriptions =
        env.block_on(env.sns().list_subscriptions_by_topic().topic_arn(&topic).send()).expect("subscriptions");
    assert!(
        subscriptions.subscriptions().iter().all(|s| s.endpoint() != Some("https://other.example.test/x")),
        "the subscription is gone"
    );
    let policy = env.block_on(lambda.get_policy().function_name("cruddur-presigner").qualifier("live").send());
    assert!(!policy.expect("policy").policy().unwrap_or_default().contains("HandMade"), "the statement is gone");
    let sets = env
        .block_on(env.route53().list_resource_record_sets().hosted_zone_id(&pre.zone_id).send())
        .expect("record sets");
    assert!(sets.resource_record_sets().iter().all(|s| s.r#type() != &RrType::Txt), "the TXT record is gone");
    let stages = env.block_on(env.apigw().get_stages().api_id(&api).send()).expect("stages");
    assert!(stages.items().iter().any(|s| s.stage_name() == Some("manual")), "the ignored stage stays");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn attributes_the_spec_leaves_unset_are_compared_with_the_snapshot_of_the_last_apply() {
    // A topic whose display name and a bucket whose CORS rules the spec leaves unset: the apply
    // records what AWS had; a display name set in the console, and a CORS rule added, are drift.
    let env = Env::new();
    env.write_spec(
        "resources:
  s3_bucket:
    plain:
      name: unset-attrs-bucket
  sns_topic:
    events:
      name: unset-attrs-topic
      tags: { team: avatars }
",
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let state = env.state();
    assert!(
        state["resources"]["sns_topic.events"]["unset"].is_object(),
        "the apply recorded a snapshot of what the spec leaves unset: {}",
        state["resources"]["sns_topic.events"]
    );
    env.run(&["drift"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);

    let topic = state_id(&env, "sns_topic.events");
    display_name_by_hand(&env, &topic);
    let rule = aws_sdk_s3::types::CorsRule::builder()
        .allowed_methods("GET")
        .allowed_origins("https://elsewhere.example.test")
        .build()
        .expect("rule");
    let cors = aws_sdk_s3::types::CorsConfiguration::builder().cors_rules(rule).build().expect("cors");
    env.block_on(env.s3().put_bucket_cors().bucket("unset-attrs-bucket").cors_configuration(cors).send())
        .expect("CORS by hand");

    let drift = env.run(&["drift"]).expect_code(2);
    assert!(drift.stdout.contains("sns_topic.events has changed"), "{}", drift.stdout);
    assert!(drift.stdout.contains("display_name") && drift.stdout.contains("not set in the spec"), "{}", drift.stdout);
    assert!(drift.stdout.contains("Console"), "{}", drift.stdout);
    assert!(drift.stdout.contains("CORS rule (GET from https://elsewhere.example.test)"), "{}", drift.stdout);
    let json = env.run(&["drift", "--json"]).expect_code(2);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let topic_entry =
        doc["resources"].as_array().expect("resources").iter().find(|r| r["address"] == "sns_topic.events");
    assert_eq!(topic_entry.map(|r| r["unset_in_spec"].clone()), Some(serde_json::json!(["display_name"])), "{doc}");
    // Unset attributes are not managed: the plan stays empty.
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);

    // drift --revert removes the CORS rule (the bucket's kind deletes it); the display name
    // stays, as the spec says nothing of it.
    let revert = env.run(&["drift", "--revert", "--auto-approve"]).expect_code(0);
    assert!(revert.stdout.contains("Removed CORS rule (GET from https://elsewhere.example.test)"), "{}", revert.stdout);
    let cors = env.block_on(env.s3().get_bucket_cors().bucket("unset-attrs-bucket").send());
    assert!(cors.is_err(), "the CORS configuration is gone: {cors:?}");
    let after = env.run(&["drift"]).expect_code(2);
    assert!(!after.stdout.contains("CORS rule") && after.stdout.contains("display_name"), "{}", after.stdout);
}

#[test]
fn drift_adopt_writes_the_spec_change_that_accepts_what_is_live_keeping_comments() {
    // A tag changed in the console, a display name the spec leaves unset set there, a
    // subscription added by hand: --adopt patches the spec (comments kept), the next apply
    // changes nothing in AWS, and drift is clean.
    let env = Env::new();
    let original = "# The avatars stack (kept by --adopt)
resources:
  s3_bucket:
    avatars:
      name: adopt-avatars-bucket   # uploads land here
      tags:
        stage: one   # the stage tag
        team: avatars
  sns_topic:
    events:
      name: adopt-events-topic
      tags: { team: avatars }
";
    env.write_spec(original);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.run(&["drift", "--adopt"]).expect_code(0);
    assert_eq!(std::fs::read_to_string(env.path("specs/cruddur.yaml")).expect("spec"), original, "no drift: untouched");

    let tags = aws_sdk_s3::types::Tagging::builder()
        .tag_set(aws_sdk_s3::types::Tag::builder().key("stage").value("two").build().expect("tag"))
        .tag_set(aws_sdk_s3::types::Tag::builder().key("team").value("avatars").build().expect("tag"))
        .build()
        .expect("tagging");
    env.block_on(env.s3().put_bucket_tagging().bucket("adopt-avatars-bucket").tagging(tags).send()).expect("retag");
    let topic = state_id(&env, "sns_topic.events");
    display_name_by_hand(&env, &topic);
    env.block_on(
        env.sns().subscribe().topic_arn(&topic).protocol("https").endpoint("https://adopt.example.test/x").send(),
    )
    .expect("a subscription by hand");
    env.run(&["drift"]).expect_code(2);

    let adopt = env.run(&["drift", "--adopt"]).expect_code(0);
    assert!(adopt.stdout.contains("Adopted into specs/cruddur.yaml (3):"), "{}", adopt.stdout);
    let spec = std::fs::read_to_string(env.path("specs/cruddur.yaml")).expect("spec");
    for kept in ["# The avatars stack (kept by --adopt)", "# uploads land here", "stage: two   # the stage tag"] {
        assert!(spec.contains(kept), "`{kept}` missing in\n{spec}");
    }
    assert!(spec.contains("      display_name: Console\n"), "{spec}");
    assert!(spec.contains("https subscription to https://adopt.example.test/x"), "{spec}");
    env.run(&["validate"]).expect_code(0);

    // Applying the adopted spec changes nothing in AWS, and records what is live.
    let apply = env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(apply.stdout.contains("No changes."), "{}", apply.stdout);
    env.run(&["drift"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

/// Sets a topic's display name as the console does, outside the engine.
fn display_name_by_hand(env: &Env, topic: &str) {
    let set =
        env.sns().set_topic_attributes().topic_arn(topic).attribute_name("DisplayName").attribute_value("Console");
    env.block_on(set.send()).expect("display name by hand");
}

#[test]
fn a_queue_target_added_to_a_managed_notification_is_drift_and_revert_removes_it_alone() {
    // Someone adds an SQS target to the bucket's notification configuration: drift names it,
    // `drift --revert` rewrites the configuration without it and keeps the managed topic target.
    let env = Env::new();
    env.write_spec(
        r#"
resources:
  s3_bucket:
    data: { name: queue-drift-data }
  sns_topic:
    events: { name: queue-drift-events }
  sns_topic_policy:
    events:
      topic_arn: ${sns_topic.events.arn}
      policy:
        Version: "2012-10-17"
        Statement: [{ Effect: Allow, Principal: { Service: s3.amazonaws.com }, Action: "sns:Publish", Resource: "${sns_topic.events.arn}" }]
  s3_bucket_notification:
    data:
      bucket: ${s3_bucket.data.name}
      topics: [{ topic_arn: "${sns_topic.events.arn}", events: ["s3:ObjectCreated:*"] }]
      depends_on: [sns_topic_policy.events]
"#,
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let s3 = env.s3();
    let current = env
        .block_on(s3.get_bucket_notification_configuration().bucket("queue-drift-data").send())
        .expect("configuration");
    let queue = "arn:aws:sqs:us-east-1:123456789012:by-hand";
    let by_hand = aws_sdk_s3::types::QueueConfiguration::builder()
        .queue_arn(queue)
        .events(aws_sdk_s3::types::Event::S3ObjectRemoved)
        .build()
        .expect("queue target");
    let config = aws_sdk_s3::types::NotificationConfiguration::builder()
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .queue_configurations(by_hand)
        .build();
    let put = s3.put_bucket_notification_configuration().bucket("queue-drift-data").notification_configuration(config);
    env.block_on(put.send()).expect("a queue target added by hand");

    let drift = env.run(&["drift"]).expect_code(2);
    assert!(drift.stdout.contains(&format!("queue target {queue}")), "{}", drift.stdout);
    let revert = env.run(&["drift", "--revert", "--auto-approve"]).expect_code(0);
    assert!(revert.stdout.contains(&format!("queue target {queue}")), "{}", revert.stdout);
    let after = env
        .block_on(s3.get_bucket_notification_configuration().bucket("queue-drift-data").send())
        .expect("configuration");
    assert!(after.queue_configurations().is_empty(), "{:?}", after.queue_configurations());
    assert_eq!(after.topic_configurations().len(), 1, "the managed topic target stays");
    env.run(&["drift"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

const REVERTED: &str = r#"resources:
  sns_topic:
    t: { name: revert-topic }
  sns_subscription:
    s: { topic_arn: "${sns_topic.t.arn}", protocol: https, endpoint: "https://ours.example.test/x" }
  iam_role:
    r:
      name: revert-role
      assume_role_policy:
        Version: "2012-10-17"
        Statement: [{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: "sts:AssumeRole" }]
  apigatewayv2_api:
    a: { name: revert-api, protocol_type: HTTP }
"#;

/// What someone adds by hand beside the managed resources: a subscription on the topic, an
/// inline policy on the role, a route and a stage on the API (each only if it is not there).
fn drift_by_hand(env: &Env) {
    let topic = state_id(env, "sns_topic.t");
    env.block_on(
        env.sns().subscribe().topic_arn(&topic).protocol("https").endpoint("https://other.example.test/x").send(),
    )
    .expect("a subscription by hand");
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;
    env.block_on(
        env.iam().put_role_policy().role_name("revert-role").policy_name("by-hand").policy_document(policy).send(),
    )
    .expect("an inline policy by hand");
    let api = state_id(env, "apigatewayv2_api.a");
    let routes = env.block_on(env.apigw().get_routes().api_id(&api).send()).expect("routes");
    if !routes.items().iter().any(|r| r.route_key() == Some("GET /by-hand")) {
        env.block_on(env.apigw().create_route().api_id(&api).route_key("GET /by-hand").send()).expect("a route");
    }
    let stages = env.block_on(env.apigw().get_stages().api_id(&api).send()).expect("stages");
    if !stages.items().iter().any(|s| s.stage_name() == Some("manual")) {
        env.block_on(env.apigw().create_stage().api_id(&api).stage_name("manual").send()).expect("a stage");
    }
}

/// AWS holds exactly what the spec declares: one subscription, no inline policy, no route,
/// no stage.
fn only_the_declared(env: &Env, what: &str) {
    let topic = state_id(env, "sns_topic.t");
    let subs = env.block_on(env.sns().list_subscriptions_by_topic().topic_arn(&topic).send()).expect("subscriptions");
    let endpoints: Vec<&str> = subs.subscriptions().iter().filter_map(|s| s.endpoint()).collect();
    assert_eq!(endpoints, ["https://ours.example.test/x"], "{what}");
    let policies = env.block_on(env.iam().list_role_policies().role_name("revert-role").send()).expect("policies");
    assert!(policies.policy_names().is_empty(), "{what}: {:?}", policies.policy_names());
    let api = state_id(env, "apigatewayv2_api.a");
    let routes = env.block_on(env.apigw().get_routes().api_id(&api).send()).expect("routes");
    assert!(routes.items().is_empty(), "{what}: {:?}", routes.items());
    let stages = env.block_on(env.apigw().get_stages().api_id(&api).send()).expect("stages");
    assert!(stages.items().is_empty(), "{what}: {:?}", stages.items());
}

#[test]
fn a_revert_killed_after_any_request_is_finished_by_the_next_revert_and_leaves_only_the_declared() {
    let env = Env::with_proxy(crate::proxy::Mode::Pass, 0);
    env.write_spec(REVERTED);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    drift_by_hand(&env);
    env.run(&["drift"]).expect_code(2);
    env.proxy().set_mode(crate::proxy::Mode::Pass);
    env.run(&["drift", "--revert", "--auto-approve"]).expect_code(0);
    let reference: Vec<String> = env.proxy().seen().iter().map(|s| format!("{} {}", s.service, s.operation)).collect();
    only_the_declared(&env, "after an uninterrupted revert");
    let points = crate::hostile::kill_points(reference.len(), 14, 26);
    let mut killed = 0;
    for &k in &points {
        let what = format!("after a kill at request {k} of {} ({})", reference.len(), reference[k - 1]);
        drift_by_hand(&env);
        killed += usize::from(crate::hostile::run_killed_after(&env, &["drift", "--revert", "--auto-approve"], k));
        let again = env.run(&["drift", "--revert", "--auto-approve"]);
        assert_eq!(again.code, 0, "the revert {what}:\n{}\n{}", again.stdout, again.stderr);
        only_the_declared(&env, &what);
        env.run(&["drift"]).expect_code(0);
        env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    }
    eprintln!("drift --revert: {} requests, killed after {points:?}: {reference:?}", reference.len());
    assert!(killed * 10 >= points.len() * 9, "only {killed} of {} runs were killed", points.len());
}

#[test]
fn a_revert_under_transient_failures_and_lost_answers_converges_on_the_first_try_for_five_seeds() {
    // 20% of requests fail before AWS sees them, 5% lose their answer after AWS did the work
    // (an Unsubscribe, a DeleteRoute that AWS carried out): the revert repeats what it must,
    // treats "already gone" as done, and ends with exactly the declared, on the first run.
    use crate::proxy::{Fate, Mode};
    let mut injected_in_all = 0;
    for seed in 1..=5 {
        let env = Env::with_proxy(Mode::Pass, seed);
        env.write_spec(REVERTED);
        env.run(&["apply", "--auto-approve"]).expect_code(0);
        drift_by_hand(&env);
        env.proxy().set_mode(Mode::Faults { transient: 0.20, lost: 0.05, latency: std::time::Duration::ZERO });
        let revert = env.run(&["drift", "--revert", "--auto-approve"]);
        let seen = env.proxy().seen();
        env.proxy().set_mode(Mode::Pass);
        let fates: Vec<String> = seen.iter().map(|s| format!("{} {:?}", s.label(), s.fate)).collect();
        assert_eq!(revert.code, 0, "seed {seed}:\n{}\n{}\n{}", revert.stdout, revert.stderr, fates.join("\n"));
        let injected = seen.iter().filter(|s| s.fate != Fate::Forwarded).count();
        eprintln!("seed {seed}: revert made {} requests, {injected} failed or lost", seen.len());
        injected_in_all += injected;
        only_the_declared(&env, &format!("seed {seed}"));
        env.run(&["drift"]).expect_code(0);
    }
    assert!(injected_in_all >= 10, "only {injected_in_all} faults injected in five seeds");
}
