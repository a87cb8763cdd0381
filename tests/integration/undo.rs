//! `undo`: AWS put back to what an earlier state recorded, checked through the AWS API and by
//! plan and drift against the spec that state was applied from: a CORS change, an added
//! resource, a removed topic created again with what refers to it following its new ARN, the
//! whole stack after a destroy; what cannot come back is named and refused without
//! --allow-loss; saved undo plans; `undo --to`.

use crate::harness::Env;

/// A bucket with CORS from a variable, a topic and a policy that names the topic's ARN, the
/// account from a lookup, and an output.
fn spec(extra_bucket: bool, topic: bool) -> String {
    let extra = if extra_bucket { "    extra:\n      name: undo-extra-bucket\n" } else { "" };
    let topic = if topic {
        r#"  sns_topic:
    alerts:
      name: undo-alerts
  sns_topic_policy:
    alerts:
      topic_arn: ${sns_topic.alerts.arn}
      policy:
        Version: "2012-10-17"
        Statement:
          - Sid: S3Publishes
            Effect: Allow
            Principal: { Service: s3.amazonaws.com }
            Action: sns:Publish
            Resource: ${sns_topic.alerts.arn}
            Condition: { StringEquals: { "aws:SourceAccount": "${caller_identity.current.account_id}" } }
outputs:
  alerts_topic: ${sns_topic.alerts.arn}
"#
    } else {
        ""
    };
    format!(
        r#"
variables:
  ORIGIN: {{ default: "https://a.example" }}
lookups:
  caller_identity:
    current: {{}}
resources:
  s3_bucket:
    uploads:
      name: undo-uploads-bucket
      cors_rules:
        - allowed_methods: [PUT]
          allowed_origins: ["${{var.ORIGIN}}"]
{extra}{topic}"#
    )
}

fn origins(env: &Env) -> Vec<String> {
    let cors = env.block_on(env.s3().get_bucket_cors().bucket("undo-uploads-bucket").send()).expect("cors");
    cors.cors_rules().iter().flat_map(|r| r.allowed_origins().iter().cloned()).collect()
}

fn bucket_exists(env: &Env, name: &str) -> bool {
    env.block_on(env.s3().head_bucket().bucket(name).send()).is_ok()
}

fn topic_arns(env: &Env) -> Vec<String> {
    let topics = env.block_on(env.sns().list_topics().send()).expect("topics");
    topics.topics().iter().filter_map(|t| t.topic_arn().map(str::to_string)).collect()
}

/// After an undo, the spec it went back to plans nothing and drift finds nothing.
fn back_to(env: &Env, spec_text: &str) {
    env.write_spec(spec_text);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["drift"]).expect_code(0);
}

#[test]
fn undo_puts_back_a_cors_change_and_history_says_undo() {
    let env = Env::new();
    env.write_spec(&spec(false, false));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.run(&["apply", "--auto-approve", "--var", "ORIGIN=https://b.example"]).expect_code(0);
    assert_eq!(origins(&env), ["https://b.example"]);

    // The default is the state the last apply started from; the variable's value then is
    // part of what was recorded, whatever the environment says now.
    let undo = env.run(&["undo", "--auto-approve"]).expect_code(0);
    assert!(undo.stdout.contains("Undo: back to state serial"), "{}", undo.stdout);
    assert!(undo.stdout.contains("~ cors_rules"), "the plan shows the change back:\n{}", undo.stdout);
    assert_eq!(origins(&env), ["https://a.example"], "AWS holds the recorded origin again");
    back_to(&env, &spec(false, false));

    let history = env.run(&["state", "history", "--json"]).expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(doc["states"][0]["command"], "undo", "{doc:#}");
}

#[test]
fn undo_deletes_what_was_added_and_names_what_a_second_undo_cannot_bring_back() {
    let env = Env::new();
    env.write_spec(&spec(false, false));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&spec(true, false));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(bucket_exists(&env, "undo-extra-bucket"));
    env.block_on(env.s3().put_object().bucket("undo-extra-bucket").key("k").body(b"v".to_vec().into()).send())
        .expect("an object in it");

    // Deleting the bucket deletes what it holds: named, and refused without --allow-loss.
    let refused = env.run(&["undo", "--auto-approve"]).expect_code(1);
    assert!(
        refused.stdout.contains("s3_bucket.extra is deleted: the objects it holds go with it"),
        "{}",
        refused.stdout
    );
    assert!(refused.stderr_flat().contains("--allow-loss"), "{}", refused.stderr);
    assert!(bucket_exists(&env, "undo-extra-bucket"), "nothing ran");
    env.block_on(env.s3().delete_object().bucket("undo-extra-bucket").key("k").send()).expect("emptied");

    env.run(&["undo", "--auto-approve", "--allow-loss"]).expect_code(0);
    assert!(!bucket_exists(&env, "undo-extra-bucket"), "the bucket created since is gone");
    back_to(&env, &spec(false, false));

    // Undo again goes back to before the undo: the bucket comes back, empty, and says so.
    let again = env.run(&["undo", "--auto-approve"]).expect_code(1);
    assert!(again.stdout.contains("s3_bucket.extra is created again, empty"), "{}", again.stdout);
    env.run(&["undo", "--auto-approve", "--allow-loss"]).expect_code(0);
    assert!(bucket_exists(&env, "undo-extra-bucket"));
    back_to(&env, &spec(true, false));
}

#[test]
fn a_removed_topic_is_created_again_and_what_refers_to_it_follows_its_new_arn() {
    let env = Env::new();
    env.write_spec(&spec(false, true));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let first = topic_arns(&env);
    assert_eq!(first.len(), 1);
    env.write_spec(&spec(false, false));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(topic_arns(&env).is_empty(), "the topic was deleted");
    let removed_at = env.state()["serial"].as_u64().expect("serial");

    // Saved, reviewed, then applied as a file, like any plan.
    let out = env.run(&["undo", "--out", "undo.plan"]).expect_code(0);
    assert!(
        out.stdout.contains("+ sns_topic.alerts") || out.stdout.contains("sns_topic.alerts will be created"),
        "{}",
        out.stdout
    );
    assert!(topic_arns(&env).is_empty(), "--out changes nothing");
    env.run(&["apply", "undo.plan"]).expect_code(0);

    let arns = topic_arns(&env);
    assert_eq!(arns.len(), 1, "one topic again: {arns:?}");
    let attrs = env.block_on(env.sns().get_topic_attributes().topic_arn(&arns[0]).send()).expect("attributes");
    let policy = attrs.attributes().and_then(|a| a.get("Policy")).expect("a policy").clone();
    assert!(policy.contains(&arns[0]), "the policy names the topic's ARN now: {policy}");
    let outputs = env.run(&["output", "--json"]).expect_code(0);
    assert!(outputs.stdout.contains(&arns[0]), "{}", outputs.stdout);
    back_to(&env, &spec(false, true));

    // `--to` a serial that is not kept is named.
    let missing = env.run(&["undo", "--to", &(removed_at + 1000).to_string()]).expect_code(1);
    assert!(missing.stderr_flat().contains("is not kept"), "{}", missing.stderr);
}

#[test]
fn undo_after_destroy_brings_back_every_kind_of_the_stack() {
    // Every kind, created again from what the state recorded before the destroy: the same
    // counts through the AWS API, and the shipped spec plans nothing and drifts nowhere.
    let env = Env::new();
    crate::stack::stack(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let applied = crate::hostile::inventory(&env);
    assert_eq!(applied, crate::hostile::declared());
    env.run(&["destroy", "--auto-approve"]).expect_code(0);

    let refused = env.run(&["undo", "--auto-approve"]).expect_code(1);
    assert!(refused.stdout.contains("is created again, empty"), "{}", refused.stdout);
    assert_eq!(crate::hostile::inventory(&env)["function"], 0, "nothing ran before --allow-loss");
    let undo = env.run(&["undo", "--auto-approve", "--allow-loss"]).expect_code(0);
    assert_eq!(crate::hostile::inventory(&env), applied, "{}", undo.stdout);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["drift"]).expect_code(0);
}
