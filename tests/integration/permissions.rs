//! Who can do what, as a reviewer sees it: the plan's permission section, the broadening gate
//! and its approvals, and the built-in policy rules with their waivers. Checked against moto:
//! a refused apply changes nothing in IAM or S3.

use crate::harness::Env;

/// A role reading (and, with `put`, writing) a bucket's objects, and the bucket's policy
/// letting CloudFront read (with the SourceArn condition unless `bare`).
fn spec(put: bool, bare: bool, extra: &str) -> String {
    let actions = if put { r#"["s3:GetObject", "s3:PutObject"]"# } else { r#"["s3:GetObject"]"# };
    let condition = if bare {
        String::new()
    } else {
        r#"
            Condition: { StringEquals: { "AWS:SourceArn": "arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE" } }"#
            .to_string()
    };
    format!(
        r#"
resources:
  s3_bucket:
    data:
      name: perm-data
      public_access_block: {{ block_public_acls: true, ignore_public_acls: true, block_public_policy: true, restrict_public_buckets: true }}
  s3_bucket_policy:
    data:
      bucket: ${{s3_bucket.data.name}}
      policy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{ Service: cloudfront.amazonaws.com }}
            Action: s3:GetObject
            Resource: ${{s3_bucket.data.arn}}/*{condition}
  iam_role:
    worker:
      name: perm-worker
      assume_role_policy:
        Version: "2012-10-17"
        Statement: [{{ Effect: Allow, Principal: {{ Service: lambda.amazonaws.com }}, Action: "sts:AssumeRole" }}]
      inline_policies:
        objects:
          Version: "2012-10-17"
          Statement: [{{ Effect: Allow, Action: {actions}, Resource: "${{s3_bucket.data.arn}}/*" }}]
{extra}"#
    )
}

fn role_policy(env: &Env) -> String {
    let got = env.block_on(env.iam().get_role_policy().role_name("perm-worker").policy_name("objects").send());
    got.expect("the inline policy").policy_document().to_string()
}

#[test]
fn a_plan_shows_who_can_now_do_what_and_broadening_waits_for_an_approval() {
    let env = Env::new();
    env.write_spec(&spec(false, false, ""));
    env.run(&["apply", "--auto-approve", "--require-approval", "broadening", "--approve-broadening"]).expect_code(0);
    let quiet = env.run(&["plan", "--detailed-exitcode", "--require-approval", "broadening"]).expect_code(0);
    assert!(!quiet.stdout.contains("Permission changes"), "{}", quiet.stdout);

    // The role may now write objects, and the bucket policy loses its SourceArn condition.
    env.write_spec(&spec(true, true, ""));
    let plan = env.run(&["plan"]).expect_code(0);
    for line in [
        "Permission changes (principal -> action -> resource):",
        "# iam_role.worker",
        "+ iam_role.worker -> s3:PutObject -> arn:aws:s3:::perm-data/*  [broadening: a new action;",
        "# s3_bucket_policy.data",
        "- service:cloudfront.amazonaws.com -> s3:GetObject -> arn:aws:s3:::perm-data/* if StringEquals aws:sourcearn",
        "+ service:cloudfront.amazonaws.com -> s3:GetObject -> arn:aws:s3:::perm-data/*  [broadening: a condition removed;",
        "FAILED  s3_bucket_policy.data [bucket-read-through-cloudfront]",
    ] {
        assert!(plan.stdout.contains(line), "missing `{line}` in\n{}", plan.stdout);
    }
    let refused = env.run(&["plan", "--require-approval", "broadening"]).expect_code(1);
    assert!(
        refused.stderr.contains("s3:PutObject") && refused.stderr.contains("a condition removed"),
        "{}",
        refused.stderr
    );

    // The JSON plan lists each statement with its fingerprint; an approval file names them.
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["plan", "--json"]).expect_code(0).stdout).expect("plan JSON");
    let broadening: Vec<String> = json["permission_changes"]
        .as_array()
        .expect("permission_changes")
        .iter()
        .flat_map(|pc| pc["statements"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["broadening"] == true)
        .map(|s| s["fingerprint"].as_str().expect("fingerprint").to_string())
        .collect();
    assert_eq!(broadening.len(), 2, "{json}");
    env.write("approved.txt", &format!("# approved by a reviewer\n{}\n", broadening[0]));
    let partly = env.run(&["plan", "--require-approval", "broadening", "--approval-file", "approved.txt"]);
    let partly = partly.expect_code(1);
    assert!(!partly.stderr.contains(&broadening[0]) && partly.stderr.contains(&broadening[1]), "{}", partly.stderr);
    env.write("approved.txt", &broadening.join("\n"));
    env.run(&["plan", "--require-approval", "broadening", "--approval-file", "approved.txt"]).expect_code(0);
    let markdown = env.run(&["plan", "--markdown"]).expect_code(0).stdout;
    assert!(markdown.contains("#### Who can now do what (2 broadening)"), "{markdown}");

    // An apply the gate stops changes nothing; an approved one does.
    env.run(&["apply", "--auto-approve", "--require-approval", "broadening"]).expect_code(1);
    assert!(!role_policy(&env).contains("PutObject"), "the refused apply changed the role");
    env.run(&["apply", "--auto-approve", "--require-approval", "broadening", "--approval-file", "approved.txt"])
        .expect_code(0);
    assert!(role_policy(&env).contains("PutObject"), "{}", role_policy(&env));
    env.run(&["plan", "--detailed-exitcode", "--require-approval", "broadening"]).expect_code(0);

    // Taking access away needs no approval.
    env.write_spec(&spec(false, false, ""));
    let narrower = env.run(&["plan", "--require-approval", "broadening"]).expect_code(0);
    assert!(narrower.stdout.contains("- iam_role.worker -> s3:PutObject"), "{}", narrower.stdout);
}

#[test]
fn policy_rules_fail_a_policy_check_unless_the_resource_waives_them_with_a_reason() {
    let env = Env::new();
    let open_bucket = r#"  sns_topic:
    t: { name: perm-topic }
  sns_subscription:
    hook:
      topic_arn: ${sns_topic.t.arn}
      protocol: http
      endpoint: http://hooks.example.test/x
"#;
    env.write_spec(
        &spec(false, false, open_bucket)
            .replace("s3_bucket:\n    data:", "s3_bucket:\n    open: { name: perm-open }\n    data:"),
    );
    let failed = env.run(&["plan", "--policy-check"]).expect_code(1);
    for rule in ["s3_bucket.open [public-access-block]", "sns_subscription.hook [https-subscription]"] {
        assert!(failed.stderr.contains(rule), "missing `{rule}` in\n{}", failed.stderr);
    }
    assert!(!failed.stderr.contains("s3_bucket.data"), "the blocked bucket passes:\n{}", failed.stderr);

    let waived = open_bucket.replace(
        "      endpoint: http://hooks.example.test/x\n",
        "      endpoint: http://hooks.example.test/x\n      waivers: { https-subscription: \"a test listener on the VPC\" }\n",
    );
    let text = spec(false, false, &waived).replace(
        "s3_bucket:\n    data:",
        "s3_bucket:\n    open: { name: perm-open, waivers: { public-access-block: \"serves a public website\" } }\n    data:",
    );
    env.write_spec(&text);
    let passed = env.run(&["plan", "--policy-check"]).expect_code(0);
    assert!(
        passed.stdout.contains("waived  s3_bucket.open [public-access-block]")
            && passed.stdout.contains("(waiver: serves a public website)"),
        "{}",
        passed.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["plan", "--json"]).expect_code(0).stdout).expect("plan JSON");
    let findings = json["policy_findings"].as_array().expect("findings");
    assert!(findings.iter().all(|f| f["waived"] == true), "{json}");

    // A waiver must name a rule and give a reason.
    env.write_spec(&text.replace("public-access-block: \"serves a public website\"", "public-acces-block: \"typo\""));
    let typo = env.run(&["validate"]).expect_code(1);
    assert!(typo.stderr.contains("`public-acces-block` is not a policy rule"), "{}", typo.stderr);
}

#[test]
fn the_shipped_stack_passes_every_policy_rule() {
    let env = Env::new();
    crate::stack::stack(&env);
    let plan = env.run(&["plan", "--policy-check"]).expect_code(0);
    assert!(!plan.stdout.contains("Policy rules:"), "{}", plan.stdout);
    // Everything is new: every statement is broadening, and the gate names them.
    let gate = env.run(&["plan", "--require-approval", "broadening"]).expect_code(1);
    for who in ["lambda:InvokeFunction", "s3:PutObject", "sts:AssumeRole"] {
        assert!(gate.stderr.contains(who), "missing `{who}` in\n{}", gate.stderr);
    }
}
