//! Rules real AWS enforces that moto does not, or that the engine must follow whatever the
//! emulator does: each test sets up the situation through the AWS API and checks the outcome
//! there.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};

use crate::harness::Env;

/// A hosted zone `rules.test`.
fn zone(env: &Env) -> String {
    let route53 = env.route53();
    let zone =
        env.block_on(route53.create_hosted_zone().name("rules.test").caller_reference("z").send()).expect("zone");
    zone.hosted_zone().expect("zone").id().trim_start_matches("/hostedzone/").to_string()
}

/// The spec of one A record `www.rules.test` with these values (and `extra` settings).
fn record_spec(env: &Env, zone_id: &str, values: &str, extra: &str) {
    env.write_spec(&format!(
        "resources:\n  route53_record:\n    www:\n      zone_id: {zone_id}\n      name: www.rules.test\n      type: A\n      \
         ttl: 300\n      records: [{values}]\n{extra}"
    ));
}

/// Creates `www.rules.test A` by hand, as the original stack's console clicks did (with the
/// trailing dot: moto compares names as written, where Route53 does not).
fn record_by_hand(env: &Env, zone_id: &str, value: &str) {
    let set = ResourceRecordSet::builder()
        .name("www.rules.test.")
        .r#type(RrType::A)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(value).build().expect("record"))
        .build()
        .expect("set");
    let change = Change::builder().action(ChangeAction::Create).resource_record_set(set).build().expect("change");
    let batch = ChangeBatch::builder().changes(change).build().expect("batch");
    env.block_on(env.route53().change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send())
        .expect("made by hand");
}

fn record_values(env: &Env, zone_id: &str) -> Vec<String> {
    let sets = env.block_on(env.route53().list_resource_record_sets().hosted_zone_id(zone_id).send()).expect("sets");
    let set = sets.resource_record_sets().iter().find(|s| s.r#type().as_str() == "A").expect("the A record");
    set.resource_records().iter().map(|r| r.value().to_string()).collect()
}

#[test]
fn a_record_made_by_hand_is_never_taken_over_silently() {
    // A different www A record exists: apply stops naming it and the import command, and
    // leaves it as it was; with allow_overwrite the plan says it takes it over, and it does.
    let env = Env::new();
    let zone_id = zone(&env);
    record_spec(&env, &zone_id, "10.0.0.1", "");
    record_by_hand(&env, &zone_id, "192.0.2.7");
    let apply = env.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    let err = apply.stderr_flat();
    assert!(err.contains("exists with other values") && err.contains("allow_overwrite: true"), "{err}");
    assert!(err.contains("cruddur-infra import route53_record.www"), "{err}");
    assert_eq!(record_values(&env, &zone_id), ["192.0.2.7"], "left as it was");
    assert!(!env.state()["resources"].as_object().expect("resources").contains_key("route53_record.www"));

    record_spec(&env, &zone_id, "10.0.0.1", "      allow_overwrite: true\n");
    let plan = env.run(&["plan"]).expect_code(0);
    assert!(plan.stdout.contains("is taken over"), "{}", plan.stdout);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(record_values(&env, &zone_id), ["10.0.0.1"]);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_record_made_by_hand_that_already_says_what_the_spec_says_is_adopted() {
    // The same values: nothing to take over; the record is adopted and the next plan is empty.
    let env = Env::new();
    let zone_id = zone(&env);
    record_spec(&env, &zone_id, "10.0.0.1", "");
    record_by_hand(&env, &zone_id, "10.0.0.1");
    let apply = env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(apply.stdout.contains("adopting it"), "{}", apply.stdout);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn notification_settings_the_spec_does_not_manage_survive_apply_and_destroy() {
    // A queue target and EventBridge delivery were set up on the bucket by hand. S3 replaces a
    // bucket's whole configuration on every write: the engine writes them back each time.
    use aws_sdk_s3::types::{Event, EventBridgeConfiguration, NotificationConfiguration, QueueConfiguration};
    let env = Env::new();
    let s3 = env.s3();
    env.block_on(s3.create_bucket().bucket("rules-bucket").send()).expect("bucket");
    let queue = "arn:aws:sqs:us-east-1:123456789012:audit";
    let by_hand = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(queue)
                .events(Event::from("s3:ObjectRemoved:*"))
                .build()
                .expect("q"),
        )
        .event_bridge_configuration(EventBridgeConfiguration::builder().build())
        .build();
    let put = s3.put_bucket_notification_configuration().bucket("rules-bucket").notification_configuration(by_hand);
    env.block_on(put.send()).expect("set by hand");
    env.write_spec(
        "resources:\n  sns_topic:\n    t:\n      name: rules-topic\n      policy: { Version: '2012-10-17', Statement: [{ Effect: Allow, Principal: { Service: s3.amazonaws.com }, Action: 'sns:Publish', Resource: '*' }] }\n  s3_bucket_notification:\n    n:\n      bucket: rules-bucket\n      \
         topics:\n        - { topic_arn: '${sns_topic.t.arn}', events: ['s3:ObjectCreated:*'] }\n",
    );
    let kept = |env: &Env| {
        let c = env
            .block_on(env.s3().get_bucket_notification_configuration().bucket("rules-bucket").send())
            .expect("config");
        (
            c.queue_configurations().iter().map(|q| q.queue_arn().to_string()).collect::<Vec<_>>(),
            c.event_bridge_configuration().is_some(),
            c.topic_configurations().len(),
        )
    };
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(kept(&env), (vec![queue.to_string()], true, 1));
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(kept(&env), (vec![queue.to_string()], true, 0), "only the engine's target is gone");
}

fn buckets(env: &Env) -> Vec<String> {
    let out = env.block_on(env.s3().list_buckets().send()).expect("buckets");
    out.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect()
}

#[test]
fn a_bucket_holding_objects_is_destroyed_only_with_force_destroy_and_the_refusal_says_how_many() {
    // S3 refuses to delete a bucket that holds objects: destroy says how many versions it
    // holds and what to do; with force_destroy it deletes them and then the bucket.
    let env = Env::new();
    env.write_spec("resources:\n  s3_bucket:\n    b: { name: full-bucket }\n");
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let s3 = env.s3();
    for key in ["a.jpg", "b.jpg", "c.jpg"] {
        env.block_on(s3.put_object().bucket("full-bucket").key(key).body(b"x".to_vec().into()).send()).expect("put");
    }
    let destroy = env.run(&["destroy", "--auto-approve"]);
    assert_eq!(destroy.code, 1);
    let err = destroy.stderr_flat();
    assert!(
        err.contains("BucketNotEmpty")
            && err.contains("holds 3 object version(s)")
            && err.contains("force_destroy: true"),
        "{err}"
    );
    assert_eq!(buckets(&env), ["full-bucket"]);

    env.write_spec("resources:\n  s3_bucket:\n    b: { name: full-bucket, force_destroy: true }\n");
    let apply = env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(apply.stdout.contains("+ force_destroy = true"), "{}", apply.stdout);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(buckets(&env).is_empty());
}

#[test]
fn an_adopted_bucket_is_forgotten_on_destroy_unless_the_spec_opts_in_to_deleting_it() {
    // The bucket existed before (import_id): destroy keeps it and says so; with
    // lifecycle.retain_on_destroy: false it is deleted like one the engine made.
    let env = Env::new();
    env.block_on(env.s3().create_bucket().bucket("made-by-hand").send()).expect("bucket");
    let spec = "resources:\n  s3_bucket:\n    kept:\n      import_id: made-by-hand\n      name: made-by-hand\n      tags: { app: cruddur }\n    ours: { name: made-by-us }\n";
    env.write_spec(spec);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let destroy = env.run(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(
        destroy.stdout.contains("# s3_bucket.kept will no longer be managed: it is kept in AWS"),
        "{}",
        destroy.stdout
    );
    assert!(destroy.stdout.contains("1 to destroy, 1 to forget"), "{}", destroy.stdout);
    assert!(destroy.stdout.contains("1 destroyed, 1 forgotten (kept in AWS)"), "{}", destroy.stdout);
    assert_eq!(buckets(&env), ["made-by-hand"]);
    assert_eq!(env.state()["resources"], serde_json::json!({}));

    env.write_spec(&spec.replace(
        "      import_id: made-by-hand\n",
        "      import_id: made-by-hand\n      lifecycle: { retain_on_destroy: false }\n",
    ));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.run(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(buckets(&env).is_empty(), "deleted when the spec says so");
}

#[test]
fn a_user_pool_in_another_region_is_looked_up_where_it_lives() {
    // The configured region is us-east-1; the pool's id says eu-west-1, and there it is found.
    let env = Env::new();
    let conf = aws_sdk_cognitoidentityprovider::config::Builder::from(&env.sdk_config())
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    let cognito = aws_sdk_cognitoidentityprovider::Client::from_conf(conf);
    let pool = env.block_on(cognito.create_user_pool().pool_name("far-away").send()).expect("pool");
    let id = pool.user_pool().and_then(|p| p.id()).expect("id").to_string();
    assert!(id.starts_with("eu-west-1_"), "{id}");
    env.write_spec(&format!(
        "lookups:\n  cognito_user_pool:\n    users: {{ id: {id} }}\noutputs:\n  issuer: ${{cognito_user_pool.users.issuer}}\n  name: ${{cognito_user_pool.users.name}}\n"
    ));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let out = env.run(&["output", "--json"]).expect_code(0);
    let outputs: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(outputs["issuer"]["value"], format!("https://cognito-idp.eu-west-1.amazonaws.com/{id}"));
    assert_eq!(outputs["name"]["value"], "far-away");
}

#[test]
fn a_bucket_adopted_from_another_region_is_addressed_in_its_region() {
    // The hand-made bucket lives in eu-west-1 while the engine works in us-east-1: its regional
    // domain name (what a CloudFront origin uses) names eu-west-1, and its settings are written.
    let env = Env::new();
    let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    env.block_on(env.s3().create_bucket().bucket("far-assets").create_bucket_configuration(location).send())
        .expect("bucket in eu-west-1");
    env.write_spec(
        "resources:\n  s3_bucket:\n    assets:\n      import_id: far-assets\n      name: far-assets\n      tags: { app: cruddur }\n\
         outputs:\n  origin: ${s3_bucket.assets.bucket_regional_domain_name}\n",
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let out = env.run(&["output", "origin", "--raw"]).expect_code(0);
    assert_eq!(out.stdout.trim(), "far-assets.s3.eu-west-1.amazonaws.com");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

/// A zip holding a `bootstrap` (never run: moto runs no code).
pub(crate) fn bootstrap_zip(env: &Env, name: &str) {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default()).expect("entry");
    std::io::Write::write_all(&mut zip, b"#!/bin/sh\n").expect("write");
    zip.finish().expect("zip");
    env.write(name, "");
    std::fs::write(env.path(name), out.into_inner()).expect("zip written");
}

#[test]
fn a_function_whose_tags_the_caller_cannot_read_is_never_judged_someone_elses() {
    // GetFunction returns tags only to a caller allowed lambda:ListTags (else `TagsError`).
    // After a lost CreateFunction answer, the engine must say it cannot tell and name the
    // permission, not call the function someone else's; allowed again, it adopts it, once.
    let env = Env::with_proxy(crate::proxy::Mode::Pass, 0);
    bootstrap_zip(&env, "f.zip");
    let role = r#"
resources:
  iam_role:
    fn:
      name: tags-role
      assume_role_policy:
        Version: "2012-10-17"
        Statement: [{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: "sts:AssumeRole" }]
"#;
    // The role first, so that the lost answer is the create's, not a refusal of a new role.
    env.write_spec(role);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&format!(
        "{role}  lambda_function:\n    fn: {{ name: tagged-fn, role: \"${{iam_role.fn.arn}}\", zip_file: ../f.zip }}\n"
    ));
    let strict = env.proxy().set_strict(crate::strict::Clocks::short());
    strict.refuse_tags(true);
    env.proxy().set_mode(crate::proxy::Mode::LoseAnswersOf(vec!["lambda POST /2015-03-31/functions".into()]));
    let refused = env.run(&["apply", "--auto-approve"]).expect_code(1);
    let said = refused.stderr_flat();
    assert!(said.contains("lambda:ListTags"), "{said}");
    assert!(!said.contains("import"), "not offered as someone else's: {said}");
    strict.refuse_tags(false);
    env.proxy().set_mode(crate::proxy::Mode::Pass);
    let apply = env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(apply.stdout.contains("lambda_function.fn"), "{}", apply.stdout);
    let functions = env.block_on(env.lambda().list_functions().send()).expect("functions");
    assert_eq!(functions.functions().len(), 1, "one function, adopted");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn an_authorizer_replaced_while_a_route_uses_it_keeps_its_name_on_aws() {
    // Authorizer names are unique in an API, and the replacement is made before the old one
    // can go (the route refers to it): the old one moves aside, the new one takes the name,
    // the route moves to it, the old one is deleted; one authorizer is left, the plan is empty.
    let env = Env::with_proxy(crate::proxy::Mode::Pass, 0);
    let strict = env.proxy().set_strict(crate::strict::Clocks::short());
    let spec = |kind: &str| {
        format!(
            r#"
resources:
  apigatewayv2_api:
    a: {{ name: names-api, protocol_type: HTTP }}
  apigatewayv2_authorizer:
    auth:
      api_id: ${{apigatewayv2_api.a.api_id}}
      name: CognitoAuthorizer
      authorizer_type: {kind}
      authorizer_uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:a/invocations
      identity_sources: [$request.header.Authorization]
      payload_format_version: "2.0"
  apigatewayv2_route:
    r:
      api_id: ${{apigatewayv2_api.a.api_id}}
      route_key: GET /me
      authorization_type: CUSTOM
      authorizer_id: ${{apigatewayv2_authorizer.auth.authorizer_id}}
"#
        )
    };
    env.write_spec(&spec("REQUEST"));
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.write_spec(&spec("JWT"));
    let replaced = env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert!(replaced.stdout.contains("apigatewayv2_authorizer.auth"), "{}", replaced.stdout);
    assert!(!strict.refusals().iter().any(|r| r.starts_with("authorizer name taken")), "{:?}", strict.refusals());
    let api = crate::stack::state_id(&env, "apigatewayv2_api.a");
    let authorizers = env.block_on(env.apigw().get_authorizers().api_id(&api).send()).expect("authorizers");
    let left: Vec<(&str, &str)> =
        authorizers.items().iter().map(|a| (a.name().unwrap_or("?"), a.authorizer_id().unwrap_or("?"))).collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, "CognitoAuthorizer");
    let routes = env.block_on(env.apigw().get_routes().api_id(&api).send()).expect("routes");
    assert_eq!(routes.items()[0].authorizer_id(), Some(left[0].1), "the route uses the new one");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn documents_found_on_an_adopted_bucket_are_replaced_only_when_allowed_and_put_back_on_destroy() {
    // The hand-made bucket the stack adopts has a policy and a topic target already (the old
    // distribution reads through one, a team listens on the other). The stack's own refuses to
    // replace them, naming what is there; with allow_overwrite it replaces them, and destroy
    // leaves the bucket with what it had.
    let env = Env::new();
    let s3 = env.s3();
    env.block_on(s3.create_bucket().bucket("adopted-assets").send()).expect("bucket made by hand");
    let theirs = r#"{"Version":"2012-10-17","Statement":[{"Sid":"OldCdn","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::adopted-assets/*"}]}"#;
    env.block_on(s3.put_bucket_policy().bucket("adopted-assets").policy(theirs).send()).expect("their policy");
    let sns = env.sns();
    let team = env.block_on(sns.create_topic().name("team-topic").send()).expect("topic");
    let team_arn = team.topic_arn().expect("arn").to_string();
    let target = aws_sdk_s3::types::TopicConfiguration::builder()
        .topic_arn(&team_arn)
        .events(aws_sdk_s3::types::Event::S3ObjectRemovedDelete)
        .build()
        .expect("target");
    let config = aws_sdk_s3::types::NotificationConfiguration::builder().topic_configurations(target).build();
    let put = s3.put_bucket_notification_configuration().bucket("adopted-assets").notification_configuration(config);
    env.block_on(put.send()).expect("their notification target");

    let spec = |overwrite: bool| {
        let allow = if overwrite { "      allow_overwrite: true\n" } else { "" };
        format!(
            r#"
resources:
  s3_bucket:
    assets: {{ name: adopted-assets, import_id: adopted-assets }}
  sns_topic:
    events: {{ name: stack-events }}
  sns_topic_policy:
    events:
      topic_arn: ${{sns_topic.events.arn}}
      policy:
        Version: "2012-10-17"
        Statement: [{{ Effect: Allow, Principal: {{ Service: s3.amazonaws.com }}, Action: "sns:Publish", Resource: "${{sns_topic.events.arn}}" }}]
  s3_bucket_policy:
    assets:
      bucket: ${{s3_bucket.assets.name}}
{allow}      policy:
        Version: "2012-10-17"
        Statement: [{{ Sid: Stack, Effect: Allow, Principal: {{ Service: cloudfront.amazonaws.com }}, Action: "s3:GetObject", Resource: "arn:aws:s3:::adopted-assets/*" }}]
  s3_bucket_notification:
    assets:
      bucket: ${{s3_bucket.assets.name}}
{allow}      topics: [{{ topic_arn: "${{sns_topic.events.arn}}", events: ["s3:ObjectCreated:*"] }}]
      depends_on: [sns_topic_policy.events]
"#
        )
    };
    let policy_sids = |env: &Env| {
        let out = env.block_on(env.s3().get_bucket_policy().bucket("adopted-assets").send()).expect("policy");
        let doc: serde_json::Value = serde_json::from_str(out.policy().expect("text")).expect("json");
        doc["Statement"].as_array().expect("statements").iter().map(|s| s["Sid"].to_string()).collect::<Vec<_>>()
    };
    let topic_targets = |env: &Env| {
        let out = env
            .block_on(env.s3().get_bucket_notification_configuration().bucket("adopted-assets").send())
            .expect("configuration");
        out.topic_configurations().iter().map(|t| t.topic_arn().to_string()).collect::<Vec<_>>()
    };

    env.write_spec(&spec(false));
    let refused = env.run(&["apply", "--auto-approve"]).expect_code(1);
    let said = refused.stderr_flat();
    assert!(said.contains("the bucket adopted-assets has a policy already") && said.contains("OldCdn"), "{said}");
    assert!(said.contains("allow_overwrite: true"), "{said}");
    assert_eq!(policy_sids(&env), ["\"OldCdn\""], "nothing was written over it");
    assert_eq!(topic_targets(&env), std::slice::from_ref(&team_arn));

    env.write_spec(&spec(true));
    let plan = env.run(&["plan"]).expect_code(0);
    assert!(
        plan.stdout
            .contains("allow_overwrite: a policy the bucket has there already is replaced, and put back on destroy"),
        "{}",
        plan.stdout
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(policy_sids(&env), ["\"Stack\""]);
    assert!(topic_targets(&env).iter().all(|t| t.ends_with(":stack-events")), "{:?}", topic_targets(&env));
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);

    env.run(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(policy_sids(&env), ["\"OldCdn\""], "destroy put their policy back");
    assert_eq!(topic_targets(&env), [team_arn], "and their notification target");
}

#[test]
fn the_distribution_list_names_each_distributions_origins_as_aws_does() {
    // A lost CreateDistributionWithTags answer is recovered by listing distributions and
    // reading the config of those with our origin: the list must carry the origins, as
    // CloudFront's DistributionSummary does.
    let env = Env::new();
    env.write_spec(
        "resources:\n  s3_bucket:\n    origin: { name: listed-origin }\n  cloudfront_distribution:\n    d:\n      \
         origin_domain_name: ${s3_bucket.origin.bucket_regional_domain_name}\n      origin_id: origin\n      \
         enabled: true\n      cache_policy_id: 658327ea-f89d-4fab-a63d-7e88639e58f6\n",
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let listed = env.block_on(env.cloudfront().list_distributions().send()).expect("list");
    let items = listed.distribution_list().expect("a list").items();
    assert_eq!(items.len(), 1);
    let origins: Vec<&str> =
        items[0].origins().map(|o| o.items().iter().map(|o| o.domain_name()).collect()).unwrap_or_default();
    assert_eq!(origins, ["listed-origin.s3.us-east-1.amazonaws.com"], "{:?}", items[0]);
}
