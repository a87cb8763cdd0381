//! Rendered diagnostics for bad specs: file, line, column and the bad value labelled.

use crate::harness::Workdir;

fn validate(env: &Workdir, name: &str, text: &str) -> String {
    env.write(name, text);
    let out = env.run(&["validate", "--spec", name]).expect_code(1);
    out.stderr
}

#[test]
fn a_cycle_shows_every_reference_on_it() {
    // Two topics whose tags reference each other form a cycle; both references are labelled.
    let env = Workdir::new();
    let stderr = validate(
        &env,
        "cycle.yaml",
        r#"resources:
  sns_topic:
    a:
      name: a
      tags: { peer: "${sns_topic.b.arn}" }
    b:
      name: b
      tags: { peer: "${sns_topic.a.arn}" }
"#,
    );
    insta::assert_snapshot!(stderr, @r#"
      × cycle.yaml: 1 problem in the spec

    Error: 
      × dependency cycle: sns_topic.a -> sns_topic.b -> sns_topic.a
       ╭─[cycle.yaml:5:22]
     4 │       name: a
     5 │       tags: { peer: "${sns_topic.b.arn}" }
       ·                      ─────────┬────────
       ·                               ╰── sns_topic.a depends on sns_topic.b
     6 │     b:
     7 │       name: b
     8 │       tags: { peer: "${sns_topic.a.arn}" }
       ·                      ─────────┬────────
       ·                               ╰── sns_topic.b depends on sns_topic.a
       ╰────
      help: break the cycle by moving one of these references into a resource of its own (e.g. a
            bucket policy)
    "#);
}

#[test]
fn every_problem_is_reported_in_one_run() {
    // A misspelled reference, an unknown attribute, a wrong type and an unknown kind all
    // come out together, each pointing at its line.
    let env = Workdir::new();
    let stderr = validate(
        &env,
        "typos.yaml",
        r#"resources:
  s3_bucket:
    uploads:
      name: uploads
      cros_rules: []
  sns_topic:
    t:
      name: t
      tags: { bucket: "${s3_bucket.upload.arn}" }
  sns_subscription:
    s:
      topic_arn: ${sns_topic.t.arn}
      protocol: htps
      endpoint: https://x
      raw_message_delivery: "yes"
  s3_buckett:
    x: {}
"#,
    );
    insta::assert_snapshot!(stderr, @r#"
      × typos.yaml: 5 problems in the spec

    Error: 
      × unknown attribute `cros_rules` on s3_bucket.uploads
       ╭─[typos.yaml:5:7]
     4 │       name: uploads
     5 │       cros_rules: []
       ·       ─────┬────
       ·            ╰── not an attribute of this kind
     6 │   sns_topic:
       ╰────
      help: did you mean `cors_rules`?

    Error: 
      × reference to undeclared resource `s3_bucket.upload`
        ╭─[typos.yaml:9:24]
      8 │       name: t
      9 │       tags: { bucket: "${s3_bucket.upload.arn}" }
        ·                        ───────────┬───────────
        ·                                   ╰── no such resource
     10 │   sns_subscription:
        ╰────
      help: did you mean `s3_bucket.uploads`?

    Error: 
      × `htps` is not a valid value for sns_subscription.s.protocol
        ╭─[typos.yaml:13:17]
     12 │       topic_arn: ${sns_topic.t.arn}
     13 │       protocol: htps
        ·                 ──┬─
        ·                   ╰── expected one of http, https, email, email-json, sms, sqs, application, lambda, firehose
     14 │       endpoint: https://x
        ╰────
      help: did you mean `https`?

    Error: 
      × sns_subscription.s.raw_message_delivery must be a boolean, not "yes"
        ╭─[typos.yaml:15:29]
     14 │       endpoint: https://x
     15 │       raw_message_delivery: "yes"
        ·                             ──┬──
        ·                               ╰── expected a boolean
     16 │   s3_buckett:
        ╰────

    Error: 
      × unknown resource kind `s3_buckett`
        ╭─[typos.yaml:16:3]
     15 │       raw_message_delivery: "yes"
     16 │   s3_buckett:
        ·   ─────┬────
        ·        ╰── not a resource kind
     17 │     x: {}
        ╰────
      help: did you mean `s3_bucket`?
    "#);
}

#[test]
fn a_variable_without_a_value_is_reported_once_where_it_is_declared_not_at_every_use() {
    // Reporting each use as an unknown variable would point the user at the wrong fix.
    let env = Workdir::new();
    let stderr = validate(
        &env,
        "novalue.yaml",
        r#"variables:
  TOPIC: { description: the topic's name }
resources:
  sns_topic:
    a: { name: "${var.TOPIC}" }
    b: { name: "${var.TOPIC}-b" }
"#,
    );
    assert!(stderr.contains("1 problem in the spec"), "{stderr}");
    assert!(stderr.contains("variable `TOPIC` has no value"), "{stderr}");
    assert!(stderr.contains("novalue.yaml:2:3"), "{stderr}");
    assert!(!stderr.contains("unknown variable"), "{stderr}");
}

#[test]
fn rules_aws_enforces_across_attributes_and_resources_are_caught_before_any_call() {
    // Each of these passes moto and fails on AWS; validate names each at its attribute.
    let env = Workdir::new();
    let stderr = validate(
        &env,
        "rules.yaml",
        r#"resources:
  lambda_function:
    f:
      name: f
      role: arn:aws:iam::123456789012:role/r
      source: lambdas/thumbnailer
      zip_file: f.zip
      memory_size: 1099511627776
      timeout: -1
  lambda_permission:
    from_s3: { function_name: "${lambda_function.f.name}", statement_id: s, action: "lambda:InvokeFunction", principal: s3.amazonaws.com }
  s3_bucket_notification:
    n:
      bucket: b
      lambda_functions:
        - { function_arn: "${lambda_function.f.arn}", events: ["s3:ObjectCreated:*"] }
  route53_record:
    r:
      zone_id: Z1
      name: assets.example.com
      type: A
      ttl: 300
      alias: { name: d.cloudfront.net, zone_id: Z2FDTNDATAQYW2 }
  cloudfront_distribution:
    d:
      origin_domain_name: b.s3.eu-west-1.amazonaws.com
      origin_id: o
      aliases: [assets.example.com]
      certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/x
"#,
    );
    let flat = stderr.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
    for expected in [
        "7 problems in the spec",
        "lambda_function.f gives both source and zip_file",
        "memory_size of lambda_function.f is 1099511627776: AWS takes 128 to 10240 MB",
        "timeout of lambda_function.f is -1: AWS takes 1 to 900 seconds",
        "s3_bucket_notification.n sends events to lambda_function.f, but a lambda_permission letting s3.amazonaws.com invoke it does not come before it",
        "add `depends_on: [lambda_permission.from_s3]` here",
        "route53_record.r is an alias: it takes no ttl",
        "certificate_arn of cloudfront_distribution.d is not an ACM certificate in us-east-1",
        "cloudfront_distribution.d has no cache_policy_id",
        "rules.yaml:9:7",
    ] {
        assert!(flat.contains(expected), "missing `{expected}` in\n{stderr}");
    }
}

#[test]
fn an_api_that_invokes_a_function_without_the_matching_permission_is_refused_by_validate() {
    // API Gateway checks no Lambda permission at create: an integration on the live alias with
    // a permission lacking `qualifier: live` (and an authorizer on the bare function with one
    // that has it) would apply and answer HTTP 500 to every request.
    let env = Workdir::new();
    let stderr = validate(
        &env,
        "api.yaml",
        r#"resources:
  lambda_function:
    f: { name: f, role: "arn:aws:iam::123456789012:role/r", zip_file: f.zip }
  apigatewayv2_api:
    a: { name: a, protocol_type: HTTP }
  apigatewayv2_integration:
    i:
      api_id: ${apigatewayv2_api.a.api_id}
      integration_type: AWS_PROXY
      integration_uri: ${lambda_function.f.live_invoke_arn}
      payload_format_version: "2.0"
  apigatewayv2_authorizer:
    z:
      api_id: ${apigatewayv2_api.a.api_id}
      name: z
      authorizer_type: REQUEST
      authorizer_uri: ${lambda_function.f.invoke_arn}
      identity_sources: [$request.header.Authorization]
      payload_format_version: "2.0"
  lambda_permission:
    from_api:
      function_name: ${lambda_function.f.name}
      qualifier: live
      statement_id: api
      action: lambda:InvokeFunction
      principal: apigateway.amazonaws.com
"#,
    );
    let flat = stderr.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
    assert!(flat.contains("apigatewayv2_authorizer.z invokes it (lambda_function.f.invoke_arn), but no lambda_permission lets apigateway.amazonaws.com do so"), "{stderr}");
    assert!(
        flat.contains(
            "a lambda_permission for lambda_function.f with principal apigateway.amazonaws.com and no qualifier"
        ),
        "{stderr}"
    );
    assert!(
        !flat.contains("apigatewayv2_integration.i invokes"),
        "the integration's alias permission exists: {stderr}"
    );
}

#[test]
fn reserved_lambda_variables_and_website_origins_are_refused_by_validate() {
    // Lambda refuses a function that sets a variable it reserves; an origin access control
    // works only with a bucket's REST endpoint, never its website endpoint.
    let env = Workdir::new();
    let stderr = validate(
        &env,
        "reserved.yaml",
        r#"resources:
  lambda_function:
    f: { name: f, role: "arn:aws:iam::123456789012:role/r", zip_file: f.zip, environment: { AWS_REGION: eu-west-1, STAGE: prod } }
  cloudfront_distribution:
    d:
      origin_domain_name: b.s3-website-us-east-1.amazonaws.com
      origin_id: o
      origin_access_control_id: E123
      cache_policy_id: 658327ea-f89d-4fab-a63d-7e88639e58f6
"#,
    );
    let flat = stderr.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
    assert!(flat.contains("environment of lambda_function.f sets AWS_REGION, which Lambda reserves"), "{stderr}");
    assert!(!flat.contains("sets STAGE"), "{stderr}");
    assert!(flat.contains("reads the S3 website endpoint b.s3-website-us-east-1.amazonaws.com"), "{stderr}");
}
