//! Create, plan again, update, replace, drift and destroy of the first resource kinds.

use std::collections::BTreeMap;

use crate::harness::Env;

/// A spec with two buckets, a topic with a policy and tags, and an https subscription.
fn spec(uploads: &str, cors_rules: &str, purpose: &str) -> String {
    format!(
        r#"
variables:
  UPLOADS_BUCKET_NAME: {{ default: {uploads} }}
  FRONTEND_ORIGIN: {{ default: "https://app.example" }}
resources:
  s3_bucket:
    uploads:
      name: ${{var.UPLOADS_BUCKET_NAME}}
      cors_rules:{cors_rules}
      public_access_block:
        block_public_acls: true
        block_public_policy: true
      tags:
        app: cruddur
        purpose: {purpose}
    assets:
      name: assets.example.test
  sns_topic:
    assets:
      name: cruddur-assets
      display_name: Cruddur assets
      policy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{ Service: s3.amazonaws.com }}
            Action: sns:Publish
            Resource: "arn:aws:sns:*:*:cruddur-assets"
            Condition:
              ArnLike: {{ "aws:SourceArn": "${{s3_bucket.assets.arn}}" }}
      tags: {{ app: cruddur }}
  sns_subscription:
    webhook:
      topic_arn: ${{sns_topic.assets.arn}}
      protocol: https
      endpoint: https://hooks.example/avatar
outputs:
  uploads_bucket: ${{s3_bucket.uploads.name}}
  topic_arn: ${{sns_topic.assets.arn}}
"#
    )
}

const ONE_CORS_RULE: &str = r#"
        - allowed_methods: [PUT]
          allowed_origins: ["${var.FRONTEND_ORIGIN}"]
          allowed_headers: ["Content-Type"]
          max_age_seconds: 3000"#;

const TWO_CORS_RULES: &str = r#"
        - allowed_methods: [PUT]
          allowed_origins: ["${var.FRONTEND_ORIGIN}"]
          allowed_headers: ["Content-Type"]
          max_age_seconds: 3000
        - allowed_methods: [GET, HEAD]
          allowed_origins: ["*"]"#;

fn applied(env: &Env, text: &str) {
    env.write_spec(text);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
}

fn bucket_tags(env: &Env, bucket: &str) -> BTreeMap<String, String> {
    let out = env.block_on(env.s3().get_bucket_tagging().bucket(bucket).send()).expect("tags");
    out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
}

fn bucket_names(env: &Env) -> Vec<String> {
    let out = env.block_on(env.s3().list_buckets().send()).expect("list buckets");
    let mut names: Vec<String> = out.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect();
    names.sort();
    names
}

#[test]
fn apply_creates_what_the_spec_declares_and_second_plan_is_empty() {
    // An empty account gets both buckets, the topic and the subscription with their settings;
    // planning again right after finds nothing to do.
    let env = Env::new();
    applied(&env, &spec("uploads-a", ONE_CORS_RULE, "avatars"));

    assert_eq!(bucket_names(&env), vec!["assets.example.test", "uploads-a"]);
    let s3 = env.s3();
    let cors = env.block_on(s3.get_bucket_cors().bucket("uploads-a").send()).expect("cors");
    let rule = &cors.cors_rules()[0];
    assert_eq!(rule.allowed_methods(), ["PUT"]);
    assert_eq!(rule.allowed_origins(), ["https://app.example"]);
    assert_eq!(rule.max_age_seconds(), Some(3000));
    // The spec's tags, and the two the engine writes on everything it creates.
    let lineage = env.state()["lineage"].as_str().expect("lineage").to_string();
    assert_eq!(
        bucket_tags(&env, "uploads-a"),
        BTreeMap::from([
            ("app".into(), "cruddur".into()),
            ("purpose".into(), "avatars".into()),
            ("cruddur-infra:address".into(), "s3_bucket.uploads".into()),
            ("cruddur-infra:lineage".into(), lineage),
        ])
    );
    let pab = env.block_on(s3.get_public_access_block().bucket("uploads-a").send()).expect("pab");
    let pab = pab.public_access_block_configuration().expect("configured");
    assert_eq!(
        (pab.block_public_acls(), pab.block_public_policy(), pab.ignore_public_acls()),
        (Some(true), Some(true), Some(false))
    );

    let sns = env.sns();
    let topics = env.block_on(sns.list_topics().send()).expect("topics");
    let arn = topics.topics()[0].topic_arn().expect("arn").to_string();
    assert!(arn.ends_with(":cruddur-assets"), "{arn}");
    let attrs =
        env.block_on(sns.get_topic_attributes().topic_arn(&arn).send()).expect("attrs").attributes.unwrap_or_default();
    assert_eq!(attrs.get("DisplayName").map(String::as_str), Some("Cruddur assets"));
    let policy: serde_json::Value = serde_json::from_str(&attrs["Policy"]).expect("policy JSON");
    // Sent in normalised form: one-element lists where the spec wrote a single string.
    assert_eq!(
        policy["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"],
        serde_json::json!(["arn:aws:s3:::assets.example.test"])
    );
    let subs = env.block_on(sns.list_subscriptions_by_topic().topic_arn(&arn).send()).expect("subs");
    assert_eq!(subs.subscriptions().len(), 1);
    assert_eq!(subs.subscriptions()[0].endpoint(), Some("https://hooks.example/avatar"));
    assert_eq!(subs.subscriptions()[0].protocol(), Some("https"));

    let again = env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    let out = env.run(&["output", "topic_arn", "--raw"]).expect_code(0);
    assert_eq!(out.stdout.trim(), arn);
}

#[test]
fn editing_the_spec_plans_exactly_that_update_and_apply_makes_it() {
    // Adding a CORS rule and changing a tag is one in-place update of one bucket, nothing else.
    let env = Env::new();
    applied(&env, &spec("uploads-b", ONE_CORS_RULE, "avatars"));
    env.write_spec(&spec("uploads-b", TWO_CORS_RULES, "profile-pictures"));

    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    insta::assert_snapshot!(plan.stdout, @r#"
    cruddur-infra will perform the following actions:

      # s3_bucket.uploads will be updated in-place
      ~ s3_bucket "uploads" {
          ~ cors_rules = [
              + {"allowed_methods":["GET","HEAD"],"allowed_origins":["*"]}
                # (1 unchanged element hidden)
            ]
          ~ tags       = {
              ~ "purpose" = "avatars" -> "profile-pictures"
                # (1 unchanged entry hidden)
            }
        }

    Policy rules:
      FAILED  s3_bucket.assets [public-access-block]: public_access_block leaves block_public_acls, ignore_public_acls, block_public_policy, restrict_public_buckets off
      FAILED  s3_bucket.uploads [public-access-block]: public_access_block leaves ignore_public_acls, restrict_public_buckets off

    Plan: 0 to add, 1 to change, 0 to destroy.
    "#);

    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let cors = env.block_on(env.s3().get_bucket_cors().bucket("uploads-b").send()).expect("cors");
    assert_eq!(cors.cors_rules().len(), 2);
    assert_eq!(cors.cors_rules()[1].allowed_methods(), ["GET", "HEAD"]);
    assert_eq!(bucket_tags(&env, "uploads-b")["purpose"], "profile-pictures");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn renaming_a_bucket_plans_a_replace_and_says_why() {
    // A bucket cannot be renamed: the plan says -/+ because of `name`; apply swaps the buckets.
    let env = Env::new();
    applied(&env, &spec("uploads-old", ONE_CORS_RULE, "avatars"));
    env.write_spec(&spec("uploads-new", ONE_CORS_RULE, "avatars"));

    let plan = env.run(&["plan"]).expect_code(0);
    assert!(
        plan.stdout.contains("# s3_bucket.uploads must be replaced (`name` cannot be changed in place)"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains(r#"~ name = "uploads-old" -> "uploads-new" # forces replacement"#), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 1 to add, 0 to change, 1 to destroy."), "{}", plan.stdout);

    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(bucket_names(&env), vec!["assets.example.test", "uploads-new"]);
    let cors = env.block_on(env.s3().get_bucket_cors().bucket("uploads-new").send()).expect("cors on the new bucket");
    assert_eq!(cors.cors_rules().len(), 1);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_replacement_that_follows_another_names_the_chain_back_to_the_edit() {
    // Renaming the topic replaces it (`name`); the subscription is replaced too, because its
    // `topic_arn` is the topic's ARN, new with the new topic. Each format says so, link by link.
    let env = Env::new();
    let before = spec("uploads-chain", ONE_CORS_RULE, "avatars");
    applied(&env, &before);
    env.write_spec(&before.replace("name: cruddur-assets", "name: cruddur-assets-2"));
    let chain = "topic_arn cannot change in place <- sns_topic.assets.arn is new (replaced) <- sns_topic.assets.name \
                 cannot change in place: edited in the spec (or a variable it uses)";

    let text = env.run(&["plan"]).expect_code(0).stdout;
    assert!(text.contains(&format!("  # sns_subscription.webhook must be replaced (`topic_arn` cannot be changed in place)\n  #   because {chain}\n")), "{text}");
    // The topic's own replacement is the edit itself: the headline says all there is.
    assert!(text.contains("  # sns_topic.assets must be replaced (`name` cannot be changed in place)\n-/+"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["plan", "--json"]).expect_code(0).stdout).expect("json");
    let changes = json["resource_changes"].as_array().expect("changes");
    let sub = changes.iter().find(|c| c["address"] == "sns_subscription.webhook").expect("the subscription");
    let causes = sub["replace_causes"].as_array().expect("causes");
    assert_eq!(causes.len(), 1, "{sub}");
    let steps: Vec<(String, String, String)> = causes[0]["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|l| {
            (
                l["address"].as_str().unwrap_or_default().into(),
                l["attribute"].as_str().unwrap_or_default().into(),
                l["step"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let expected = [
        ("sns_subscription.webhook", "topic_arn", "forces_replacement"),
        ("sns_topic.assets", "arn", "new_with_replacement"),
        ("sns_topic.assets", "name", "forces_replacement"),
    ];
    assert_eq!(steps, expected.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())), "{sub}");
    assert_eq!(causes[0]["origin"], "spec");
    assert_eq!(causes[0]["text"], chain);
    let topic = changes.iter().find(|c| c["address"] == "sns_topic.assets").expect("the topic");
    assert_eq!(topic["replace_causes"][0]["chain"].as_array().map(Vec::len), Some(1), "{topic}");

    let md = env.run(&["plan", "--markdown"]).expect_code(0).stdout;
    assert!(md.contains(&format!("| `-/+` | `sns_subscription.webhook` | **replace** | {chain} |")), "{md}");
}

#[test]
fn a_change_made_behind_our_back_shows_in_the_next_plan() {
    // CORS deleted with the SDK is drift: the plan puts it back, and apply does.
    let env = Env::new();
    applied(&env, &spec("uploads-c", ONE_CORS_RULE, "avatars"));
    env.block_on(env.s3().delete_bucket_cors().bucket("uploads-c").send()).expect("delete cors");

    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    insta::assert_snapshot!(plan.stdout, @r#"
    cruddur-infra will perform the following actions:

      # s3_bucket.uploads will be updated in-place
      ~ s3_bucket "uploads" {
          ~ cors_rules = [
              + {
                  + "allowed_methods" = ["PUT"]
                  + "allowed_origins" = ["https://app.example"]
                  + "allowed_headers" = ["content-type"]
                  + "max_age_seconds" = 3000
                }
            ]
        }

    Policy rules:
      FAILED  s3_bucket.assets [public-access-block]: public_access_block leaves block_public_acls, ignore_public_acls, block_public_policy, restrict_public_buckets off
      FAILED  s3_bucket.uploads [public-access-block]: public_access_block leaves ignore_public_acls, restrict_public_buckets off

    Plan: 0 to add, 1 to change, 0 to destroy.
    "#);

    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let cors = env.block_on(env.s3().get_bucket_cors().bucket("uploads-c").send()).expect("cors is back");
    assert_eq!(cors.cors_rules()[0].allowed_origins(), ["https://app.example"]);
}

#[test]
fn a_resource_deleted_behind_our_back_is_created_again() {
    // A subscription removed outside the engine is planned as a create, with the reason.
    let env = Env::new();
    applied(&env, &spec("uploads-d", ONE_CORS_RULE, "avatars"));
    let sns = env.sns();
    let subs = env.block_on(sns.list_subscriptions().send()).expect("subs");
    let arn = subs.subscriptions()[0].subscription_arn().expect("arn").to_string();
    env.block_on(sns.unsubscribe().subscription_arn(arn).send()).expect("unsubscribe");

    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(
        plan.stdout.contains("# sns_subscription.webhook will be created (it was deleted outside cruddur-infra)"),
        "{}",
        plan.stdout
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(env.block_on(sns.list_subscriptions().send()).expect("subs").subscriptions().len(), 1);
}

#[test]
fn destroy_leaves_nothing() {
    // After destroy no bucket, topic or subscription is left, and the state is empty.
    let env = Env::new();
    applied(&env, &spec("uploads-e", ONE_CORS_RULE, "avatars"));
    let out = env.run(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(out.stdout.contains("Destroy complete! Resources: 0 added, 0 changed, 4 destroyed."), "{}", out.stdout);

    assert!(bucket_names(&env).is_empty());
    let sns = env.sns();
    assert!(env.block_on(sns.list_topics().send()).expect("topics").topics().is_empty());
    assert!(env.block_on(sns.list_subscriptions().send()).expect("subs").subscriptions().is_empty());
    assert_eq!(env.state()["resources"], serde_json::json!({}));
}

#[test]
fn apply_without_a_terminal_or_auto_approve_changes_nothing() {
    // Without a terminal to confirm on, apply refuses and creates nothing.
    let env = Env::new();
    env.write_spec(&spec("uploads-f", ONE_CORS_RULE, "avatars"));
    let out = env.run(&["apply"]).expect_code(1);
    assert!(out.stderr.contains("pass --auto-approve"), "{}", out.stderr);
    assert!(bucket_names(&env).is_empty());
}

#[test]
fn a_failed_resource_skips_only_its_dependents() {
    // A topic AWS refuses fails with its error code; the subscription that needs it is skipped,
    // the bucket it does not need is still created, and the failure is reported once.
    let env = Env::new();
    env.write_spec(
        r#"
resources:
  sns_topic:
    bad:
      # A name AWS refuses (`:`) known only at apply, so validate cannot refuse it first.
      name: "${s3_bucket.independent.arn}"
  sns_subscription:
    needs_bad:
      topic_arn: ${sns_topic.bad.arn}
      protocol: https
      endpoint: https://hooks.example/x
  s3_bucket:
    independent:
      name: independent
"#,
    );
    let out = env.run(&["apply", "--auto-approve"]).expect_code(1);
    let error = "Error: sns_topic.bad: create failed: CreateTopic failed: InvalidParameter";
    assert_eq!(out.stderr.matches(error).count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("sns_subscription.needs_bad: not applied because sns_topic.bad failed"),
        "{}",
        out.stderr
    );
    assert_eq!(bucket_names(&env), vec!["independent"]);
    assert!(env.block_on(env.sns().list_topics().send()).expect("topics").topics().is_empty());
    let state = env.state();
    assert!(state["resources"]["s3_bucket.independent"]["id"].is_string());
    assert!(state["resources"].get("sns_topic.bad").is_none());
}

#[test]
fn a_bucket_without_tags_in_the_spec_still_carries_the_ownership_tags_and_they_never_show_as_changes() {
    // The engine tags everything it creates with its address and the state's lineage, even where
    // the spec sets no tags; adding spec tags later keeps them, and no plan ever shows them.
    let env = Env::new();
    applied(&env, "resources:\n  s3_bucket:\n    plain: { name: plain-bucket }\n");
    let lineage = env.state()["lineage"].as_str().expect("lineage").to_string();
    let ownership = BTreeMap::from([
        ("cruddur-infra:address".to_string(), "s3_bucket.plain".to_string()),
        ("cruddur-infra:lineage".to_string(), lineage),
    ]);
    assert_eq!(bucket_tags(&env, "plain-bucket"), ownership);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    applied(&env, "resources:\n  s3_bucket:\n    plain: { name: plain-bucket, tags: { team: web } }\n");
    let mut expected = ownership.clone();
    expected.insert("team".into(), "web".into());
    assert_eq!(bucket_tags(&env, "plain-bucket"), expected);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    applied(&env, "resources:\n  s3_bucket:\n    plain: { name: plain-bucket, tags: {} }\n");
    assert_eq!(bucket_tags(&env, "plain-bucket"), ownership, "removing the spec's tags keeps the engine's");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_log_group_is_created_updated_in_place_drift_checked_replaced_and_destroyed() {
    // The group a function's logs go to: retention and tags change in place, a retention set in
    // the console is drift that apply puts back, a new name replaces it, destroy removes it.
    let env = Env::new();
    let spec = |name: &str, days: u32, team: &str| {
        format!(
            "resources:\n  log_group:\n    fn:\n      name: {name}\n      retention_in_days: {days}\n      tags: {{ team: {team} }}\n"
        )
    };
    let logs = env.logs();
    let group = |name: &str| {
        let out = env.block_on(logs.describe_log_groups().log_group_name_prefix(name).send()).expect("groups");
        out.log_groups().iter().find(|g| g.log_group_name() == Some(name)).cloned()
    };
    env.write_spec(&spec("/aws/lambda/lg-one", 14, "avatars"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let made = group("/aws/lambda/lg-one").expect("the group");
    assert_eq!(made.retention_in_days(), Some(14));
    let arn = made.arn().expect("arn").trim_end_matches(":*").to_string();
    let tags = env.block_on(logs.list_tags_for_resource().resource_arn(&arn).send()).expect("tags");
    let tags = tags.tags().cloned().unwrap_or_default();
    assert_eq!(tags.get("team").map(String::as_str), Some("avatars"));
    assert!(tags.contains_key("cruddur-infra:address"), "ownership tags: {tags:?}");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);

    env.write_spec(&spec("/aws/lambda/lg-one", 30, "media"));
    let update = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(update.stdout.contains("# log_group.fn will be updated in-place"), "{}", update.stdout);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(group("/aws/lambda/lg-one").and_then(|g| g.retention_in_days()), Some(30));
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);

    let put = logs.put_retention_policy().log_group_name("/aws/lambda/lg-one").retention_in_days(1);
    env.block_on(put.send()).expect("retention set in the console");
    let drift = env.run(&["drift"]).expect_code(2);
    assert!(drift.stdout.contains("retention_in_days"), "{}", drift.stdout);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(group("/aws/lambda/lg-one").and_then(|g| g.retention_in_days()), Some(30), "apply put it back");

    env.write_spec(&spec("/aws/lambda/lg-two", 30, "media"));
    let replace = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(replace.stdout.contains("must be replaced"), "{}", replace.stdout);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(group("/aws/lambda/lg-one").is_none() && group("/aws/lambda/lg-two").is_some());
    env.run(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(group("/aws/lambda/lg-two").is_none(), "destroy removed it");
}
