//! The deployer's own least-privilege policies (`iam-policy --for COMMAND`): each command runs
//! with a user holding only its policy on moto with IAM enforcement on (the S3, SNS and IAM part
//! of a stack: moto refuses Lambda, API Gateway, CloudFront and Route53 to every enforced user),
//! and the AWS call log of a whole-stack apply, plan, drift and destroy holds no action outside
//! the printed policy.

use std::collections::BTreeSet;

use aws_sdk_iam::config::Credentials;

use crate::harness::Env;

/// The operations whose IAM actions are named otherwise: (service prefix, operation, actions).
const NAMED_OTHERWISE: &[(&str, &str, &[&str])] = &[
    ("s3", "HeadBucket", &["ListBucket"]),
    ("s3", "ListObjectsV2", &["ListBucket"]),
    ("s3", "ListBuckets", &["ListAllMyBuckets"]),
    ("s3", "ListObjectVersions", &["ListBucketVersions"]),
    ("s3", "GetBucketNotificationConfiguration", &["GetBucketNotification"]),
    ("s3", "PutBucketNotificationConfiguration", &["PutBucketNotification"]),
    ("s3", "GetBucketCors", &["GetBucketCORS"]),
    ("s3", "PutBucketCors", &["PutBucketCORS"]),
    ("s3", "DeleteBucketCors", &["PutBucketCORS"]),
    ("s3", "DeleteBucketTagging", &["PutBucketTagging"]),
    ("s3", "GetPublicAccessBlock", &["GetBucketPublicAccessBlock"]),
    ("s3", "PutPublicAccessBlock", &["PutBucketPublicAccessBlock"]),
    ("s3", "DeletePublicAccessBlock", &["PutBucketPublicAccessBlock"]),
    ("s3", "DeleteObjects", &["DeleteObject", "DeleteObjectVersion"]),
    ("s3", "HeadObject", &["GetObject"]),
    ("cloudfront", "CreateDistributionWithTags", &["CreateDistribution", "TagResource"]),
];

/// The IAM action a call-log line (`Service Operation METHOD path`) needs.
fn iam_actions(line: &str) -> Vec<String> {
    // SERVICE (maybe several words) OPERATION METHOD PATH ...
    let words: Vec<&str> = line.split(' ').collect();
    let at =
        words.iter().position(|w| ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"].contains(w)).expect("a method");
    let (service, op, method) = (words[..at - 1].join(" "), words[at - 1], words[at]);
    let prefix = match service.as_str() {
        "S3" => "s3",
        "SNS" => "sns",
        "IAM" => "iam",
        "Lambda" => "lambda",
        "STS" => "sts",
        "CloudFront" => "cloudfront",
        "Route53" | "Route 53" => "route53",
        "Cognito Identity Provider" | "CognitoIdentityProvider" => "cognito-idp",
        "CloudWatch Logs" | "CloudWatchLogs" => "logs",
        "Resource Groups Tagging API" | "ResourceGroupsTaggingAPI" => "tag",
        // API Gateway authorises by HTTP method on the resource path.
        "ApiGatewayV2" => return vec![format!("apigateway:{method}")],
        other => panic!("a call to an unexpected service: {other} ({line})"),
    };
    // Where the IAM action is not the operation's name.
    let named = match NAMED_OTHERWISE.iter().find(|(p, o, _)| *p == prefix && *o == op) {
        Some((_, _, actions)) => actions.to_vec(),
        None => vec![op],
    };
    named.into_iter().map(|a| format!("{prefix}:{a}")).collect()
}

fn policy(env: &Env, command: &str) -> serde_json::Value {
    let out = env.run(&["iam-policy", "--for", command]).expect_code(0);
    serde_json::from_str(&out.stdout).expect("a policy document")
}

fn actions(policy: &serde_json::Value) -> BTreeSet<String> {
    let statements = policy["Statement"].as_array().expect("statements");
    statements
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .map(|a| a.as_str().expect("action").to_string())
        .collect()
}

/// Whether an IAM action changes something.
fn writes(action: &str) -> bool {
    const VERBS: &[&str] = &[
        "Create",
        "Put",
        "Delete",
        "Update",
        "Add",
        "Remove",
        "Publish",
        "Tag",
        "Untag",
        "Attach",
        "Detach",
        "Set",
        "Subscribe",
        "Unsubscribe",
        "Change",
        "Pass",
    ];
    let name = action.split(':').nth(1).unwrap_or(action);
    VERBS.iter().any(|v| name.starts_with(v)) || ["POST", "PATCH", "PUT", "DELETE"].contains(&name)
}

/// The IAM actions the logged calls of one command needed.
fn logged(env: &Env, args: &[&str], log: &str) -> BTreeSet<String> {
    let out = env.command(args).env("CRUDDUR_AWS_CALL_LOG", env.path(log)).output().expect("runs");
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(env.path(log)).expect("the call log");
    text.lines().flat_map(iam_actions).collect()
}

#[test]
fn every_call_of_a_whole_stack_apply_plan_drift_and_destroy_is_in_its_printed_policy() {
    let env = Env::new();
    crate::stack::stack(&env);
    let apply_policy = actions(&policy(&env, "apply"));
    let plan_policy = actions(&policy(&env, "plan"));
    let used = logged(&env, &["apply", "--auto-approve"], "apply.log");
    let missing: Vec<&String> = used.iter().filter(|a| !apply_policy.contains(*a)).collect();
    assert!(missing.is_empty(), "apply called {missing:?}, not in its policy {apply_policy:#?}");
    let used = logged(&env, &["plan", "--detailed-exitcode"], "plan.log");
    let missing: Vec<&String> = used.iter().filter(|a| !plan_policy.contains(*a)).collect();
    assert!(missing.is_empty(), "plan called {missing:?}, not in its policy {plan_policy:#?}");
    let drift_policy = actions(&policy(&env, "drift"));
    let used = logged(&env, &["drift"], "drift.log");
    let missing: Vec<&String> = used.iter().filter(|a| !drift_policy.contains(*a)).collect();
    assert!(missing.is_empty(), "drift called {missing:?}, not in its policy {drift_policy:#?}");
    for read_only in [&plan_policy, &drift_policy] {
        let writes: Vec<&String> = read_only.iter().filter(|a| writes(a)).collect();
        assert!(writes.is_empty(), "a read-only policy grants {writes:?}");
    }
    let destroy_policy = actions(&policy(&env, "destroy"));
    let used = logged(&env, &["destroy", "--auto-approve"], "destroy.log");
    let missing: Vec<&String> = used.iter().filter(|a| !destroy_policy.contains(*a)).collect();
    assert!(missing.is_empty(), "destroy called {missing:?}, not in its policy {destroy_policy:#?}");

    // A stage whose state is lost is destroyed from what AWS holds within the same policy: the
    // tagging API, each kind's find and the deletes.
    env.run(&["apply", "--auto-approve", "--stage", "pr-9"]).expect_code(0);
    std::fs::remove_file(env.path("state/cruddur.pr-9.json")).expect("the stage's state deleted");
    let out = env.run(&["iam-policy", "--for", "destroy", "--stage", "pr-9"]).expect_code(0);
    let stage_policy = actions(&serde_json::from_str(&out.stdout).expect("a policy document"));
    let used = logged(&env, &["stages", "destroy", "pr-9", "--auto-approve"], "stages.log");
    assert!(used.contains("tag:GetResources"), "{used:#?}");
    let missing: Vec<&String> = used.iter().filter(|a| !stage_policy.contains(*a)).collect();
    assert!(missing.is_empty(), "stages destroy called {missing:?}, not in its policy {stage_policy:#?}");
}

/// An S3, SNS and IAM stack: what moto's IAM enforcement can judge.
const SPEC: &str = r#"
resources:
  s3_bucket:
    data:
      name: deployer-data
      public_access_block: { block_public_acls: true, ignore_public_acls: true, block_public_policy: true, restrict_public_buckets: true }
      tags: { app: cruddur }
  s3_bucket_notification:
    data:
      bucket: ${s3_bucket.data.name}
      topics: [{ topic_arn: "${sns_topic.events.arn}", events: ["s3:ObjectCreated:*"] }]
      depends_on: [sns_topic_policy.events]
  sns_topic:
    events: { name: deployer-events, tags: { app: cruddur } }
  sns_topic_policy:
    events:
      topic_arn: ${sns_topic.events.arn}
      policy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { Service: s3.amazonaws.com }
            Action: sns:Publish
            Resource: ${sns_topic.events.arn}
  sns_subscription:
    hook: { topic_arn: "${sns_topic.events.arn}", protocol: https, endpoint: "https://hooks.example.test/x" }
  iam_role:
    worker:
      name: deployer-worker
      assume_role_policy:
        Version: "2012-10-17"
        Statement: [{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: "sts:AssumeRole" }]
      inline_policies:
        objects:
          Version: "2012-10-17"
          Statement: [{ Effect: Allow, Action: "s3:GetObject", Resource: "arn:aws:s3:::deployer-data/*" }]
"#;

/// A user holding only `policy`; its access key.
fn user(env: &Env, iam: &aws_sdk_iam::Client, name: &str, policy: &serde_json::Value) -> (String, String) {
    env.block_on(iam.create_user().user_name(name).send()).expect("user");
    let document = policy.to_string();
    env.block_on(iam.put_user_policy().user_name(name).policy_name("only").policy_document(document).send())
        .expect("policy");
    let key = env.block_on(iam.create_access_key().user_name(name).send()).expect("key");
    let key = key.access_key().expect("key");
    (key.access_key_id().to_string(), key.secret_access_key().to_string())
}

/// The printed policy as moto can judge it. moto judges actions other than S3's against
/// resource `*` only: those statements are widened to `*` (their actions unchanged); S3's keep
/// their ARNs. And moto 5.2.6 judges an S3 request by its API operation's name where AWS (and
/// moto 5.2.1) use the IAM action's (`GetBucketNotificationConfiguration` for
/// `s3:GetBucketNotification`): a statement granting every IAM action of such an operation also
/// names the operation, so the same policy is judged alike by either moto.
fn as_moto_judges(mut policy: serde_json::Value) -> serde_json::Value {
    for s in policy["Statement"].as_array_mut().expect("statements") {
        let actions: Vec<String> =
            s["Action"].as_array().expect("actions").iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
        if !actions.iter().all(|a| a.starts_with("s3:")) {
            s["Resource"] = serde_json::json!("*");
        }
        let mut named = actions.clone();
        for (prefix, op, needs) in NAMED_OTHERWISE.iter().filter(|(p, ..)| *p == "s3") {
            if needs.iter().all(|n| actions.contains(&format!("{prefix}:{n}"))) {
                named.push(format!("{prefix}:{op}"));
            }
        }
        s["Action"] = serde_json::json!(named);
    }
    policy
}

fn run_as(env: &Env, key: &(String, String), args: &[&str]) -> crate::harness::Run {
    let out =
        env.command(args).env("AWS_ACCESS_KEY_ID", &key.0).env("AWS_SECRET_ACCESS_KEY", &key.1).output().expect("runs");
    crate::harness::Run::from(out)
}

#[test]
fn each_command_succeeds_with_a_user_holding_only_its_policy_under_iam_enforcement() {
    let env = Env::new();
    env.write_spec(SPEC);
    let iam = env.iam();
    let mut keys = std::collections::BTreeMap::new();
    for command in ["apply", "plan", "drift", "destroy"] {
        let printed = policy(&env, command);
        keys.insert(command, user(&env, &iam, &format!("deployer-{command}"), &as_moto_judges(printed)));
    }
    let admin = user(
        &env,
        &iam,
        "admin",
        &serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    );
    env.moto.enforce_iam();
    let admin_s3 = {
        let creds = Credentials::new(&admin.0, &admin.1, None, None, "admin");
        let config = env.sdk_config();
        let conf =
            aws_sdk_s3::config::Builder::from(&config).credentials_provider(creds).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(conf)
    };

    run_as(&env, &keys["apply"], &["apply", "--auto-approve"]).expect_code(0);
    let tags =
        env.block_on(admin_s3.get_bucket_tagging().bucket("deployer-data").send()).expect("the bucket, through admin");
    assert!(tags.tag_set().iter().any(|t| t.key() == "app"));
    run_as(&env, &keys["plan"], &["plan", "--detailed-exitcode"]).expect_code(0);
    run_as(&env, &keys["drift"], &["drift"]).expect_code(0);
    // Enforcement is on: the read-only user cannot apply a change.
    env.write_spec(&SPEC.replace(
        "tags: { app: cruddur }\n  s3_bucket_notification",
        "tags: { app: cruddur-2 }\n  s3_bucket_notification",
    ));
    let refused = run_as(&env, &keys["plan"], &["apply", "--auto-approve"]).expect_code(1);
    assert!(refused.stderr.contains("AccessDenied"), "{}", refused.stderr);
    run_as(&env, &keys["apply"], &["apply", "--auto-approve"]).expect_code(0);
    run_as(&env, &keys["destroy"], &["destroy", "--auto-approve"]).expect_code(0);
    let left = env.block_on(admin_s3.list_buckets().send()).expect("buckets");
    assert!(left.buckets().is_empty(), "{:?}", left.buckets());
}
