//! What reviewers and CI rely on: saved plans, JSON and Markdown plans, drift checks,
//! --target, import, the state subcommands, prevent_destroy and sensitive values.

use crate::harness::Env;

/// Two buckets, a topic and a subscription; `purpose` tags the uploads bucket.
fn spec(uploads: &str, purpose: &str) -> String {
    format!(
        r#"
resources:
  s3_bucket:
    uploads:
      name: {uploads}
      cors_rules: [{{ allowed_methods: [PUT], allowed_origins: ["https://app.example"] }}]
      tags: {{ purpose: {purpose} }}
    assets:
      name: assets-bucket
  sns_topic:
    assets:
      name: assets-topic
      tags: {{ bucket: "${{s3_bucket.assets.arn}}" }}
  sns_subscription:
    webhook:
      topic_arn: ${{sns_topic.assets.arn}}
      protocol: https
      endpoint: https://hooks.example/avatar
"#
    )
}

fn buckets(env: &Env) -> Vec<String> {
    let out = env.block_on(env.s3().list_buckets().send()).expect("list");
    let mut names: Vec<String> = out.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect();
    names.sort();
    names
}

#[test]
fn a_saved_plan_that_adopts_a_resource_applies_on_a_fresh_state() {
    // The first deploy through the pull-request workflow: `plan --out` on no state, with a
    // bucket the spec adopts by import_id; `apply FILE` carries it out and records the bucket.
    let env = Env::new();
    env.block_on(env.s3().create_bucket().bucket("made-by-hand").send()).expect("a bucket made by hand");
    let adopting = "      name: made-by-hand\n      import_id: made-by-hand\n";
    env.write_spec(&spec("uploads-1", "avatars").replace("      name: assets-bucket\n", adopting));
    let planned = env.run(&["plan", "--out", "first.plan"]).expect_code(0);
    assert!(planned.stdout.contains("s3_bucket.assets will be imported"), "{}", planned.stdout);
    env.run(&["apply", "first.plan"]).expect_code(0);
    assert_eq!(env.state()["resources"]["s3_bucket.assets"]["id"], "made-by-hand");
    assert_eq!(buckets(&env), vec!["made-by-hand", "uploads-1"]);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_saved_plan_is_carried_out_exactly_and_refused_once_stale() {
    // apply FILE does what the plan showed; after the state or the spec moved, it refuses.
    let env = Env::new();
    env.write_spec(&spec("uploads-1", "avatars"));
    env.run(&["plan", "--out", "first.plan"]).expect_code(0);
    assert!(buckets(&env).is_empty(), "plan changes nothing");
    let applied = env.run(&["apply", "first.plan"]).expect_code(0);
    assert!(applied.stdout.contains("Apply complete! Resources: 4 added"), "{}", applied.stdout);
    assert_eq!(buckets(&env), vec!["assets-bucket", "uploads-1"]);

    // The state moves under a saved plan: refused, nothing changed.
    env.write_spec(&spec("uploads-1", "profiles"));
    env.run(&["plan", "--out", "second.plan"]).expect_code(0);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let stale = env.run(&["apply", "second.plan"]).expect_code(1);
    assert!(stale.stderr_flat().contains("second.plan is stale: the state moved from serial"), "{}", stale.stderr);
    assert!(stale.stderr_flat().contains("run `cruddur-infra plan --out second.plan` again"), "{}", stale.stderr);

    // The spec moves under a saved plan: refused too.
    env.run(&["plan", "--out", "third.plan"]).expect_code(0);
    env.write_spec(&spec("uploads-1", "banners"));
    let stale = env.run(&["apply", "third.plan"]).expect_code(1);
    assert!(stale.stderr_flat().contains("or its variables changed since the plan was made"), "{}", stale.stderr);
    let tags = env.block_on(env.s3().get_bucket_tagging().bucket("uploads-1").send()).expect("tags");
    assert_eq!(tags.tag_set()[0].value(), "profiles", "the stale plans changed nothing");
}

#[test]
fn plan_json_and_markdown_describe_the_same_changes() {
    // The JSON plan has a format version, a summary and attribute-level changes with unknowns
    // marked; the Markdown plan has the summary first and a collapsible diff per resource.
    let env = Env::new();
    env.write_spec(&spec("uploads-2", "avatars"));
    let out = env.run(&["plan", "--json", "--detailed-exitcode"]).expect_code(2);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(plan["format_version"], "1.5");
    assert_eq!(
        plan["summary"],
        serde_json::json!({"import": 0, "add": 4, "change": 0, "destroy": 0, "forget": 0, "move": 0})
    );
    let sub = plan["resource_changes"]
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["address"] == "sns_subscription.webhook")
        .expect("sub");
    assert_eq!(sub["action"], "create");
    let topic_arn =
        sub["changes"].as_array().expect("changes").iter().find(|c| c["attribute"] == "topic_arn").expect("topic_arn");
    assert_eq!(
        (topic_arn["after"].clone(), topic_arn["after_unknown"].clone()),
        (serde_json::Value::Null, serde_json::json!(true))
    );

    let md = env.run(&["plan", "--markdown"]).expect_code(0).stdout;
    assert!(md.starts_with("### cruddur-infra plan: 4 to add, 0 to change, 0 to destroy\n"), "{md}");
    assert!(md.contains("| `+` | `s3_bucket.uploads` | create |"), "{md}");
    assert!(md.contains("<details><summary><code>+ s3_bucket.uploads</code></summary>\n\n```diff\n"), "{md}");
    assert!(md.contains("\n+       name ="), "diff lines start with their sign:\n{md}");
}

#[test]
fn drift_reports_out_of_band_changes_and_ignores_spec_edits() {
    // drift compares the last apply with AWS: a spec edit is not drift; a deleted CORS
    // configuration and a deleted subscription are, in text, JSON and Markdown.
    let env = Env::new();
    env.write_spec(&spec("uploads-3", "avatars"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&spec("uploads-3", "edited-in-the-spec"));
    let none = env.run(&["drift"]).expect_code(0);
    assert!(none.stdout.contains("No drift"), "{}", none.stdout);

    env.block_on(env.s3().delete_bucket_cors().bucket("uploads-3").send()).expect("drift");
    let sns = env.sns();
    let subs = env.block_on(sns.list_subscriptions().send()).expect("subs");
    env.block_on(sns.unsubscribe().subscription_arn(subs.subscriptions()[0].subscription_arn().expect("arn")).send())
        .expect("drift");

    let text = env.run(&["drift"]).expect_code(2).stdout;
    assert!(text.contains("Drift detected: 2 resource(s)"), "{text}");
    assert!(text.contains("# s3_bucket.uploads has changed") && text.contains("~ cors_rules = ["), "{text}");
    assert!(text.contains("# sns_subscription.webhook has been deleted"), "{text}");
    assert!(!text.contains("edited-in-the-spec"), "spec edits are not drift:\n{text}");
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["drift", "--json"]).expect_code(2).stdout).expect("json");
    assert_eq!(json["drifted"], true);
    let deleted: Vec<&str> = json["resources"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|r| r["deleted"] == true)
        .filter_map(|r| r["address"].as_str())
        .collect();
    assert_eq!(deleted, vec!["sns_subscription.webhook"]);
    let md = env.run(&["drift", "--markdown"]).expect_code(2).stdout;
    assert!(
        md.contains("| `s3_bucket.uploads` | `cors_rules` changed |")
            && md.contains("| `sns_subscription.webhook` | **deleted** |"),
        "{md}"
    );
}

#[test]
fn target_limits_plan_and_apply_to_a_resource_and_what_it_needs() {
    // --target the subscription: it, its topic and the bucket the topic references are
    // created; the uploads bucket is left alone.
    let env = Env::new();
    env.write_spec(&spec("uploads-4", "avatars"));
    let plan = env.run(&["plan", "--target", "sns_subscription.webhook"]).expect_code(0);
    assert!(plan.stdout.contains("Plan: 3 to add"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("s3_bucket.uploads"), "{}", plan.stdout);
    assert!(plan.stderr.contains("--target is in effect"), "{}", plan.stderr);
    env.run(&["apply", "--auto-approve", "--target", "sns_subscription.webhook"]).expect_code(0);
    assert_eq!(buckets(&env), vec!["assets-bucket"]);
    let missing = env.run(&["plan", "--target", "s3_bucket.nope"]).expect_code(1);
    assert!(missing.stderr.contains("--target s3_bucket.nope: no such resource"), "{}", missing.stderr);
    // Destroying the topic takes its subscription with it, and nothing else.
    env.run(&["destroy", "--auto-approve", "--target", "sns_topic.assets"]).expect_code(0);
    assert!(env.block_on(env.sns().list_topics().send()).expect("topics").topics().is_empty());
    assert_eq!(buckets(&env), vec!["assets-bucket"]);
}

#[test]
fn import_then_plan_is_empty_and_state_commands_inspect_and_forget() {
    // A bucket made by hand is imported under the spec's address; the next plan is empty;
    // state list/show/rm work without touching AWS.
    let env = Env::new();
    let s3 = env.s3();
    env.block_on(s3.create_bucket().bucket("legacy-avatars").send()).expect("made by hand");
    let tag = aws_sdk_s3::types::Tag::builder().key("team").value("web").build().expect("tag");
    let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().expect("tagging");
    env.block_on(s3.put_bucket_tagging().bucket("legacy-avatars").tagging(tagging).send()).expect("tags");
    env.write_spec("resources:\n  s3_bucket:\n    legacy:\n      name: legacy-avatars\n      tags: { team: web }\n");

    let imported = env.run(&["import", "s3_bucket.legacy", "legacy-avatars"]).expect_code(0);
    assert!(imported.stdout.contains("s3_bucket.legacy imported"), "{}", imported.stdout);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    // The same import again (a run killed after it saved) is done already; another id is not.
    let again = env.run(&["import", "s3_bucket.legacy", "legacy-avatars"]).expect_code(0);
    assert!(again.stdout.contains("already in the state as `legacy-avatars`: nothing to import"), "{}", again.stdout);
    let other = env.run(&["import", "s3_bucket.legacy", "other-avatars"]).expect_code(1);
    assert!(other.stderr.contains("already in the state as `legacy-avatars`"), "{}", other.stderr);

    assert_eq!(env.run(&["state", "list"]).expect_code(0).stdout, "s3_bucket.legacy\tlegacy-avatars\n");
    let show = env.run(&["state", "show", "s3_bucket.legacy"]).expect_code(0).stdout;
    assert!(show.contains("\"id\": \"legacy-avatars\"") && show.contains("\"team\": \"web\""), "{show}");
    env.run(&["state", "rm", "s3_bucket.legacy"]).expect_code(0);
    assert_eq!(env.run(&["state", "list"]).expect_code(0).stdout, "");
    assert_eq!(buckets(&env), vec!["legacy-avatars"], "state rm leaves AWS alone");
}

#[test]
fn prevent_destroy_stops_a_plan_that_would_destroy_or_replace() {
    // A protected bucket cannot be renamed (replace), removed from the spec, or destroyed.
    let env = Env::new();
    let protected = |name: &str| {
        format!(
            "resources:\n  s3_bucket:\n    keep:\n      name: {name}\n      lifecycle: {{ prevent_destroy: true }}\n"
        )
    };
    env.write_spec(&protected("precious"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&protected("renamed"));
    let replace = env.run(&["plan"]).expect_code(1);
    let message = replace.stderr_flat();
    assert!(message.contains("s3_bucket.keep has lifecycle.prevent_destroy set, but the plan would replace it (name cannot change in place)"), "{message}");
    env.write_spec("resources: {}\n");
    let removed = env.run(&["plan"]).expect_code(1);
    assert!(removed.stderr_flat().contains("but the plan would destroy it"), "{}", removed.stderr);
    env.write_spec(&protected("precious"));
    env.run(&["destroy", "--auto-approve"]).expect_code(1);
    assert_eq!(buckets(&env), vec!["precious"]);
}

#[test]
fn sensitive_values_are_masked_in_plans_state_show_and_outputs() {
    // A sensitive variable's value never appears in plan text, JSON, state show or outputs,
    // unless the JSON is asked for it explicitly.
    let env = Env::new();
    env.write_spec(
        "variables:\n  WEBHOOK_TOKEN: { default: s3cr3t-t0ken, sensitive: true }\n\
         resources:\n  sns_topic:\n    t:\n      name: t\n      tags: { token: \"${var.WEBHOOK_TOKEN}\" }\n\
         outputs:\n  token_tag: ${var.WEBHOOK_TOKEN}\n",
    );
    let plan = env.run(&["plan"]).expect_code(0).stdout;
    assert!(plan.contains("+ tags = \"(sensitive value)\"") && !plan.contains("s3cr3t"), "{plan}");
    let json = env.run(&["plan", "--json"]).expect_code(0).stdout;
    assert!(!json.contains("s3cr3t"), "{json}");
    let shown = env.run(&["plan", "--json", "--show-sensitive"]).expect_code(0).stdout;
    assert!(shown.contains("s3cr3t-t0ken"), "asked for explicitly");
    let applied = env.run(&["apply", "--auto-approve"]).expect_code(0).stdout;
    assert!(!applied.contains("s3cr3t"), "{applied}");
    assert!(applied.contains("token_tag = <sensitive>"), "{applied}");
    assert!(!env.run(&["state", "show", "sns_topic.t"]).expect_code(0).stdout.contains("s3cr3t"));
    // The whole state too, with the declarations undo plans from.
    let whole = env.run(&["state", "show"]).expect_code(0).stdout;
    assert!(whole.contains("\"declaration\"") && !whole.contains("s3cr3t"), "{whole}");
    assert_eq!(env.run(&["output", "token_tag", "--raw"]).expect_code(0).stdout, "s3cr3t-t0ken\n", "named explicitly");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("state/cruddur.json")).expect("state").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the state holds the secret: owner only");
    }
    // A plan back to the secret (undo of a change of it) masks it as the spec's own plan does.
    let changed = env.run(&["plan", "--var", "WEBHOOK_TOKEN=an0ther-t0ken"]).expect_code(0).stdout;
    assert!(changed.contains("~ tags = (sensitive value)") && !changed.contains("an0ther"), "{changed}");
    env.run(&["apply", "--auto-approve", "--var", "WEBHOOK_TOKEN=an0ther-t0ken"]).expect_code(0);
    let undo = env.run(&["undo", "--out", "undo.plan"]).expect_code(0);
    assert!(undo.stdout.contains("(sensitive value)"), "{}", undo.stdout);
    assert!(!undo.stdout.contains("s3cr3t") && !undo.stdout.contains("an0ther"), "{}", undo.stdout);
}
