//! Renames in a reviewed spec that never destroy by accident: `moved:` and `state mv` keep the
//! AWS object under the new address; AWS is checked through its API and the engine's calls.

use crate::harness::Env;

/// A bucket, a topic and a policy on the bucket that refers to it, under `bucket` and `topic`
/// as the resources' names in the spec; `extra` is appended (a `moved:` section).
fn spec(bucket: &str, topic: &str, tag: &str, extra: &str) -> String {
    format!(
        r#"
resources:
  s3_bucket:
    {bucket}:
      name: moves-uploads
      tags: {{ purpose: {tag} }}
  sns_topic:
    {topic}:
      name: moves-topic
  s3_bucket_policy:
    uploads:
      bucket: ${{s3_bucket.{bucket}.name}}
      policy:
        Version: "2012-10-17"
        Statement:
          - Sid: DenyInsecure
            Effect: Deny
            Principal: "*"
            Action: "s3:*"
            Resource: "arn:aws:s3:::moves-uploads/*"
            Condition: {{ Bool: {{ "aws:SecureTransport": "false" }} }}
{extra}"#
    )
}

const MOVED: &str = "moved:\n  - { from: s3_bucket.uploads, to: s3_bucket.avatar_uploads }\n  - { from: sns_topic.events, to: sns_topic.avatar_events }\n";

/// The calls that create or delete something, from the engine's call log.
fn creating_or_deleting(env: &Env) -> Vec<String> {
    let log = std::fs::read_to_string(env.path("calls.log")).unwrap_or_default();
    log.lines()
        .filter(|l| ["Create", "Delete", "Subscribe"].iter().any(|w| l.contains(w)))
        .map(str::to_string)
        .collect()
}

#[test]
fn renames_with_moved_keep_each_aws_object_and_plan_only_the_edits_made_with_them() {
    let env = Env::new();
    env.write_spec(&spec("uploads", "events", "avatars", ""));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let topics_before = env.block_on(env.sns().list_topics().send()).expect("topics").topics().len();

    // Two renames, one of them with a tag edit; the policy follows its bucket's new address.
    env.write_spec(&spec("avatar_uploads", "avatar_events", "profiles", MOVED));
    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(plan.stdout.contains("# s3_bucket.uploads has moved to s3_bucket.avatar_uploads"), "{}", plan.stdout);
    assert!(plan.stdout.contains("# sns_topic.events has moved to sns_topic.avatar_events"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy, 2 to move."), "{}", plan.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["plan", "--json"]).expect_code(0).stdout).expect("plan json");
    assert_eq!(json["summary"]["move"], 2);
    let moved: Vec<(&str, &str)> = json["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| Some((c["moved_from"].as_str()?, c["address"].as_str()?)))
        .collect();
    assert_eq!(
        moved,
        [("s3_bucket.uploads", "s3_bucket.avatar_uploads"), ("sns_topic.events", "sns_topic.avatar_events")]
    );
    let markdown = env.run(&["plan", "--markdown"]).expect_code(0).stdout;
    assert!(markdown.contains("2 to move") && markdown.contains("moved from `sns_topic.events`"), "{markdown}");

    env.run(&["apply", "--auto-approve", "--aws-call-log", "calls.log"]).expect_code(0);
    assert_eq!(creating_or_deleting(&env), Vec::<String>::new(), "no AWS object made or removed");
    let buckets = env.block_on(env.s3().list_buckets().send()).expect("buckets");
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["moves-uploads"]);
    let tags = env.block_on(env.s3().get_bucket_tagging().bucket("moves-uploads").send()).expect("tags");
    assert!(
        tags.tag_set().iter().any(|t| t.key() == "purpose" && t.value() == "profiles"),
        "the edit made with the move"
    );
    assert_eq!(env.block_on(env.sns().list_topics().send()).expect("topics").topics().len(), topics_before);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    let listed = env.run(&["state", "list"]).expect_code(0).stdout;
    assert!(listed.contains("s3_bucket.avatar_uploads") && !listed.contains("s3_bucket.uploads\t"), "{listed}");
    // The moves stay in the spec for whoever has not applied yet; for this state they are done.
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.run(&["drift"]).expect_code(0);
}

#[test]
fn state_mv_renames_in_the_state_alone_and_the_renamed_spec_then_plans_nothing() {
    let env = Env::new();
    env.write_spec(&spec("uploads", "events", "avatars", ""));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let moved = env.run(&["state", "mv", "s3_bucket.uploads", "s3_bucket.avatar_uploads"]).expect_code(0);
    assert!(moved.stdout.contains("Moved s3_bucket.uploads to s3_bucket.avatar_uploads"), "{}", moved.stdout);
    env.run(&["state", "mv", "sns_topic.events", "sns_topic.avatar_events"]).expect_code(0);
    env.write_spec(&spec("avatar_uploads", "avatar_events", "avatars", ""));
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    // Run again (a rerun after a kill): nothing left to move, said so.
    let again = env.run(&["state", "mv", "s3_bucket.uploads", "s3_bucket.avatar_uploads"]).expect_code(0);
    assert!(again.stdout.contains("Nothing to move"), "{}", again.stdout);
    // Onto an address the state holds, or to another kind: refused, nothing changed.
    let onto = env.run(&["state", "mv", "s3_bucket.avatar_uploads", "s3_bucket_policy.uploads"]).expect_code(1);
    assert!(onto.stderr_flat().contains("the kind must stay s3_bucket"), "{}", onto.stderr);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_move_from_a_declared_address_a_chain_or_to_nothing_is_refused_by_validate_with_both_places() {
    let env = crate::harness::Workdir::new();
    let cases = [
        (
            spec("uploads", "events", "a", "moved:\n  - { from: s3_bucket.uploads, to: sns_topic.events }\n"),
            "the kind must stay s3_bucket",
        ),
        (
            spec(
                "uploads",
                "events",
                "a",
                "moved:\n  - { from: sns_topic.old, to: sns_topic.events }\n  - { from: sns_topic.events, to: sns_topic.newer }\n",
            ),
            "sns_topic.events is moved to sns_topic.newer, but is still declared",
        ),
        (
            spec(
                "uploads",
                "events",
                "a",
                "moved:\n  - { from: sns_topic.a, to: sns_topic.b }\n  - { from: sns_topic.b, to: sns_topic.events }\n",
            ),
            "moves chain: sns_topic.a -> sns_topic.b -> sns_topic.events",
        ),
        (
            spec("uploads", "events", "a", "moved:\n  - { from: sns_topic.gone, to: sns_topic.nowhere }\n"),
            "which the spec does not declare",
        ),
    ];
    for (text, said) in cases {
        env.write_spec(&text);
        let out = env.run(&["validate"]).expect_code(1);
        assert!(out.stderr_flat().contains(said), "{said}:\n{}", out.stderr);
    }
    // Both places are pointed at: the move and the declaration it collides with.
    env.write_spec(&spec("uploads", "events", "a", "moved:\n  - { from: s3_bucket.uploads, to: s3_bucket.other }\n"));
    let out = env.run(&["validate"]).expect_code(1);
    assert!(out.stderr.contains("this move") && out.stderr.contains("still declared here"), "{}", out.stderr);
}

#[test]
fn a_rename_without_moved_is_found_by_the_objects_name_and_the_plan_shows_the_line_that_says_it() {
    let env = Env::new();
    env.write_spec(&spec("uploads", "events", "avatars", ""));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&spec("avatar_uploads", "avatar_events", "avatars", ""));
    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    let text = plan.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains(
            "# s3_bucket.uploads has moved to s3_bucket.avatar_uploads: the same AWS object, found by its name"
        ),
        "{}",
        plan.stdout
    );
    assert!(text.contains("`moved: [{ from: sns_topic.events, to: sns_topic.avatar_events }]`"), "{}", plan.stdout);
    assert!(text.contains("Plan: 0 to add, 0 to change, 0 to destroy, 2 to move."), "{}", plan.stdout);
    env.run(&["apply", "--auto-approve", "--aws-call-log", "calls.log"]).expect_code(0);
    assert_eq!(creating_or_deleting(&env), Vec::<String>::new(), "no AWS object made or removed");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

/// The shipped spec with the resource `kind.name` renamed to `kind.name_renamed`, references
/// and `depends_on` included.
fn renamed(spec: &str, kind: &str, name: &str) -> String {
    let mut out = String::new();
    let mut section = "";
    let mut current_kind = "";
    for line in spec.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':');
        } else if section == "resources" && line.starts_with("  ") && !line.starts_with("   ") {
            current_kind = line.trim().trim_end_matches(':');
        }
        let declares = section == "resources" && current_kind == kind && line.starts_with(&format!("    {name}:"));
        let line = if declares {
            line.replacen(&format!("    {name}:"), &format!("    {name}_renamed:"), 1)
        } else {
            line.to_string()
        };
        out.push_str(&rename_refs(&line, &format!("{kind}.{name}")));
        out.push('\n');
    }
    out
}

/// Every `KIND.NAME` in `line` followed by a character that cannot continue a name.
fn rename_refs(line: &str, addr: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(addr) {
        let after = &rest[at + addr.len()..];
        let whole = !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let before_ok = !rest[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        out.push_str(addr);
        if whole && before_ok {
            out.push_str("_renamed");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[test]
fn each_resource_of_the_shipped_stack_renamed_alone_is_planned_as_a_move_and_nothing_else() {
    let env = Env::new();
    crate::stack::stack(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let original = std::fs::read_to_string(env.path("specs/cruddur.yaml")).expect("the spec");
    let state = env.state();
    let addrs: Vec<String> = state["resources"].as_object().expect("resources").keys().cloned().collect();
    let mut moves = 0;
    for addr in &addrs {
        let (kind, name) = addr.split_once('.').expect("KIND.NAME");
        env.write_spec(&renamed(&original, kind, name));
        let plan = env.run(&["plan", "--json"]);
        assert_eq!(plan.code, 0, "{addr}: {}", plan.stderr);
        let json: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan json");
        let s = &json["summary"];
        assert_eq!(
            (s["add"].as_u64(), s["destroy"].as_u64(), s["move"].as_u64()),
            (Some(0), Some(0), Some(1)),
            "{addr}: {s}"
        );
        let changed: Vec<&str> = json["resource_changes"]
            .as_array()
            .expect("changes")
            .iter()
            .filter(|c| c["action"] != "no_op")
            .filter_map(|c| c["address"].as_str())
            .collect();
        assert_eq!(changed, Vec::<&str>::new(), "{addr}: a pure rename changes nothing");
        moves += 1;
    }
    eprintln!("{moves} single renames of the shipped stack, each planned as one move");
    assert_eq!(moves, addrs.len());
    assert!(moves >= 26, "{moves}");
    // Five at once, with an edit beside them: five moves and that one change, then applied.
    let mut five = original.clone();
    for addr in [
        "s3_bucket.uploads",
        "sns_topic.assets",
        "iam_role.presigner",
        "apigatewayv2_route.key_upload",
        "cloudfront_distribution.assets",
    ] {
        let (kind, name) = addr.split_once('.').expect("KIND.NAME");
        five = renamed(&five, kind, name);
    }
    let five = five.replacen("retention_in_days: 14", "retention_in_days: 30", 1);
    env.write_spec(&five);
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["plan", "--json"]).expect_code(0).stdout).expect("plan json");
    let s = &json["summary"];
    assert_eq!(
        (s["add"].as_u64(), s["change"].as_u64(), s["destroy"].as_u64(), s["move"].as_u64()),
        (Some(0), Some(1), Some(0), Some(5)),
        "{s}"
    );
    env.run(&["apply", "--auto-approve", "--aws-call-log", "calls.log"]).expect_code(0);
    assert_eq!(creating_or_deleting(&env), Vec::<String>::new(), "no AWS object made or removed");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_kind_without_a_name_moves_only_when_one_leaves_and_one_arrives_alike_and_two_candidates_are_refused() {
    // HTTP API names are not unique: an API renamed alone with the same settings is a move;
    // two alike renamed at once could be either, and the plan names the line that decides.
    let env = Env::new();
    let apis = |names: [&str; 2], settings: [&str; 2]| {
        format!(
            "resources:\n  apigatewayv2_api:\n    {}: {{ name: twin, protocol_type: HTTP, description: {} }}\n    {}: {{ name: twin, protocol_type: HTTP, description: {} }}\n",
            names[0], settings[0], names[1], settings[1]
        )
    };
    env.write_spec(&apis(["a", "b"], ["same", "same"]));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&apis(["a", "c"], ["same", "same"]));
    let plan = env.run(&["plan"]).expect_code(0);
    let text = plan.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("# apigatewayv2_api.b has moved to apigatewayv2_api.c"), "{}", plan.stdout);
    assert!(
        text.contains("found as the only apigatewayv2_api to leave and to arrive, with the same settings"),
        "{text}"
    );
    env.write_spec(&apis(["c", "d"], ["same", "same"]));
    let refused = env.run(&["plan"]).expect_code(1);
    let said = refused.stderr_flat();
    assert!(said.contains("may be a rename of any of") && said.contains("moved:"), "{said}");
    // apply refuses the same way, before any AWS change.
    env.run(&["apply", "--auto-approve"]).expect_code(1);
    let apis_in_aws = env.block_on(env.apigw().get_apis().send()).expect("apis");
    assert_eq!(apis_in_aws.items().len(), 2, "nothing was made or removed");
}

#[test]
fn a_kind_without_a_name_renamed_beside_a_new_unlike_one_is_a_move_and_a_create() {
    // Only arrivals alike the one that left compete for it: a new API with other settings is
    // simply created.
    let env = Env::new();
    env.write_spec("resources:\n  apigatewayv2_api:\n    a: { name: solo, protocol_type: HTTP, description: first }\n");
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(
        "resources:\n  apigatewayv2_api:\n    b: { name: solo, protocol_type: HTTP, description: first }\n    \
         c: { name: other, protocol_type: HTTP, description: second }\n",
    );
    let plan = env.run(&["plan"]).expect_code(0);
    let text = plan.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("# apigatewayv2_api.a has moved to apigatewayv2_api.b"), "{}", plan.stdout);
    assert!(text.contains("Plan: 1 to add, 0 to change, 0 to destroy, 1 to move."), "{}", plan.stdout);
}
